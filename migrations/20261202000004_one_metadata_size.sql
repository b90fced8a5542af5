-- One measure of a metadata document's size on every write (create, PATCH, PUT, merges,
-- /v2, bulk): its bytes as compact JSON, with no whitespace between tokens, written out as
-- PostgreSQL stores it. Creates were measured as the request was sent and later writes as
-- PostgreSQL's text form, which puts a space after every ',' and ':': a document accepted
-- at creation ({"a": [1, 1, …]} with 100,000 elements) made every later merge a 422.

-- The document's size as compact JSON, in bytes. jsonb's text form has no whitespace but the
-- one space after each ',' and ':' between tokens; spaces inside strings are content, so the
-- strings are set aside and the spaces left are counted.
CREATE FUNCTION jsonb_compact_size(doc jsonb) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    printed text := doc::text;
    structure text := regexp_replace(printed, '"(?:[^"\\]|\\.)*"', '', 'g');
BEGIN
    RETURN octet_length(printed)
           - (octet_length(structure) - octet_length(replace(structure, ' ', '')));
END;
$$;

-- As before (SQLSTATE LC001 for too many top-level keys, LC002 for too large), with the size
-- measured as above. The compact form is never longer than the text form, so a document whose
-- text form is within the limit needs no second look: the common case costs what it did.
CREATE OR REPLACE FUNCTION metadata_within_limits(doc jsonb, max_keys integer, max_bytes integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    key_count integer;
    byte_count integer;
BEGIN
    SELECT count(*) INTO key_count FROM jsonb_object_keys(doc);
    IF key_count > max_keys THEN
        RAISE EXCEPTION 'metadata would have % top-level keys; the limit is %', key_count, max_keys
            USING ERRCODE = 'LC001';
    END IF;
    IF octet_length(doc::text) > max_bytes THEN
        byte_count := jsonb_compact_size(doc);
        IF byte_count > max_bytes THEN
            RAISE EXCEPTION 'metadata would be % bytes as compact JSON; the limit is % bytes',
                byte_count, max_bytes
                USING ERRCODE = 'LC002';
        END IF;
    END IF;
    RETURN doc;
END;
$$;
