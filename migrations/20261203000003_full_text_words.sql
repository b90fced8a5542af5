-- `q=<words>`: every word must occur, case-insensitively, in the entry's name or in some
-- string value anywhere in its metadata. plpgsql binds (and so detoasts) the document once
-- for all the words; ILIKE with escaped wildcards matches the word as written, with no
-- stemming that would turn GaN or SrTiO3 into something else.
CREATE FUNCTION entry_has_words(raw_name text, doc jsonb, patterns text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    pattern text;
    strings text[];
BEGIN
    FOREACH pattern IN ARRAY patterns LOOP
        CONTINUE WHEN raw_name ILIKE pattern;
        IF strings IS NULL THEN
            SELECT coalesce(array_agg(value #>> '{}'), '{}') INTO strings
            FROM jsonb_path_query(doc, 'strict $.**') AS value
            WHERE jsonb_typeof(value) = 'string';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM unnest(strings) AS s WHERE s ILIKE pattern) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END;
$$;
