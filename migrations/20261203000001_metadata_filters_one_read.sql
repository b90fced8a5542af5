-- Metadata filters read the document once per row, however many there are. Each
-- `metadata @> $n` in a WHERE clause fetches and decompresses the stored document again, so
-- 32 filters on an entry holding a large array did 32 (or, with a number's string form, 64)
-- full reads of it per row. plpgsql detoasts an argument once when it binds it, so the
-- filters after the first (which stays in the statement, where the GIN index answers it) are
-- tested here, on that one copy.
--
-- `filters` is a JSON array with one element per filter: the array of documents any one of
-- which the metadata must contain (a value's string form and its JSON form).
CREATE FUNCTION metadata_contains_all(doc jsonb, filters jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    alternatives jsonb;
    candidate jsonb;
    matched boolean;
BEGIN
    FOR alternatives IN SELECT jsonb_array_elements(filters) LOOP
        matched := false;
        FOR candidate IN SELECT jsonb_array_elements(alternatives) LOOP
            IF doc @> candidate THEN
                matched := true;
                EXIT;
            END IF;
        END LOOP;
        IF NOT matched THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END;
$$;
