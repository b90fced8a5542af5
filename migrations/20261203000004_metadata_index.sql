-- Metadata queries a scientist writes (issue 14): what search needs next to each document,
-- kept by triggers so every write path (native, /v2, bulk) maintains it in the statement
-- that changes the entry. The document itself is never rewritten: normalised values live
-- here.

-- Units a filter or a stored quantity may use, with their conversion to SI
-- (si = value * factor + "offset"). labcat refreshes this table from its own list at every
-- start (`domain::units`), so Rust and SQL cannot drift apart.
CREATE TABLE units (
    symbol text PRIMARY KEY,
    dimension text NOT NULL,
    factor double precision NOT NULL,
    "offset" double precision NOT NULL
);

CREATE FUNCTION metadata_is_quantity(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_typeof(value -> 'value') = 'number'
                    AND jsonb_typeof(value -> 'unit') = 'string', false)
$$;

-- Every value in a document with its path from the root. Array elements sit at the array's
-- own path (a filter matches an array when any element matches). A quantity is walked into
-- too, so its `value` and `unit` can be filtered on themselves; `in_quantity` marks what
-- lies inside one (key discovery lists the quantity alone).
CREATE FUNCTION metadata_nodes(doc jsonb)
RETURNS TABLE (path text[], value jsonb, in_quantity boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH RECURSIVE walk (path, value, in_quantity) AS (
        SELECT ARRAY[member.key], member.value, false FROM jsonb_each(doc) AS member
        UNION ALL
        SELECT CASE WHEN child.key IS NULL THEN walk.path ELSE walk.path || child.key END,
               child.value, walk.in_quantity OR metadata_is_quantity(walk.value)
        FROM walk
        CROSS JOIN LATERAL (
            SELECT member.key, member.value
            FROM jsonb_each(CASE WHEN jsonb_typeof(walk.value) = 'object'
                                 THEN walk.value END) AS member
            UNION ALL
            SELECT NULL, element
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(walk.value) = 'array'
                                           THEN walk.value END) AS element
        ) AS child
    )
    SELECT path, value, in_quantity FROM walk
$$;

-- The leaves: scalars, quantities ({"value": <number>, "unit": <string>}) and empty
-- objects or arrays, typed.
CREATE FUNCTION metadata_leaves(doc jsonb)
RETURNS TABLE (path text[], type text, value jsonb, in_quantity boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT path,
           CASE WHEN metadata_is_quantity(value) THEN 'quantity' ELSE jsonb_typeof(value) END,
           value, in_quantity
    FROM metadata_nodes(doc)
    WHERE CASE jsonb_typeof(value)
              WHEN 'object' THEN value = '{}' OR metadata_is_quantity(value)
              WHEN 'array' THEN value = '[]'
              ELSE true
          END
$$;

-- An RFC 3339 date-time as seconds since the epoch, or NULL for anything else (including a
-- well-formed one that names no real instant, such as February 30th).
CREATE FUNCTION metadata_instant(text text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF text !~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$' THEN
        RETURN NULL;
    END IF;
    -- Only strings that look like one pay for the subtransaction of an exception block.
    BEGIN
        RETURN extract(epoch FROM text::timestamptz);
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END;
END;
$$;

-- What range, existence and unit-aware filters look up, one row per fact:
--   kind 'present'  — the path (or a longer one through it) holds a value; value 0
--   kind 'number'   — a number at the path, or a quantity's value as written
--   kind 'instant'  — an RFC 3339 string at the path, in epoch seconds
--   kind <dimension> ('temperature', 'pressure', …) — a quantity at the path in SI units
CREATE TABLE metadata_values (
    data_id uuid NOT NULL,
    path text[] NOT NULL,
    kind text NOT NULL,
    value double precision NOT NULL
);
CREATE INDEX metadata_values_lookup_idx ON metadata_values (path, kind, value, data_id);
CREATE INDEX metadata_values_entry_idx ON metadata_values (data_id);

CREATE FUNCTION metadata_values_of(doc jsonb)
RETURNS TABLE (path text[], kind text, value double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT DISTINCT node.path, fact.kind, fact.value
    FROM metadata_nodes(doc) AS node
    CROSS JOIN LATERAL (
        SELECT 'present', 0::double precision
        UNION ALL
        SELECT 'number', (node.value #>> '{}')::double precision
        WHERE jsonb_typeof(node.value) = 'number'
        UNION ALL
        SELECT 'number', (node.value ->> 'value')::double precision
        WHERE metadata_is_quantity(node.value)
        UNION ALL
        -- Beyond ±1e280 a conversion could overflow; such a value is kept as written only.
        SELECT unit.dimension,
               (node.value ->> 'value')::double precision * unit.factor + unit."offset"
        FROM units AS unit
        WHERE metadata_is_quantity(node.value) AND unit.symbol = node.value ->> 'unit'
          AND abs((node.value ->> 'value')::double precision) < 1e280
        UNION ALL
        SELECT 'instant', instant
        FROM metadata_instant(node.value #>> '{}') AS instant
        WHERE jsonb_typeof(node.value) = 'string' AND node.value #>> '{}' ~ '^\d{4}-'
          AND instant IS NOT NULL
    ) AS fact (kind, value)
$$;

-- Brings an entry's rows to what its document now holds, touching only the facts that
-- changed: a PATCH that sets one number rewrites one row, not the entry's whole index.
CREATE FUNCTION metadata_values_maintain() RETURNS trigger
LANGUAGE plpgsql
-- The walk's row estimates are guesses (a hundred members per object, compounded), large
-- enough to make PostgreSQL JIT-compile a statement that runs in microseconds.
SET jit = off
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM metadata_values WHERE data_id = OLD.data_id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO metadata_values (data_id, path, kind, value)
        SELECT NEW.data_id, fact.path, fact.kind, fact.value
        FROM metadata_values_of(NEW.metadata) AS fact;
        RETURN NULL;
    END IF;
    WITH fact AS (SELECT * FROM metadata_values_of(NEW.metadata)),
    gone AS (
        DELETE FROM metadata_values AS stored
        WHERE stored.data_id = NEW.data_id
          AND NOT EXISTS (SELECT 1 FROM fact
                          WHERE (fact.path, fact.kind, fact.value)
                              = (stored.path, stored.kind, stored.value))
    )
    INSERT INTO metadata_values (data_id, path, kind, value)
    SELECT NEW.data_id, fact.path, fact.kind, fact.value
    FROM fact
    WHERE NOT EXISTS (SELECT 1 FROM metadata_values AS stored
                      WHERE stored.data_id = NEW.data_id
                        AND (stored.path, stored.kind, stored.value)
                          = (fact.path, fact.kind, fact.value));
    RETURN NULL;
END;
$$;

CREATE TRIGGER metadata_values_on_insert AFTER INSERT ON data_entries
    FOR EACH ROW EXECUTE FUNCTION metadata_values_maintain();
CREATE TRIGGER metadata_values_on_update AFTER UPDATE OF metadata ON data_entries
    FOR EACH ROW WHEN (OLD.metadata IS DISTINCT FROM NEW.metadata)
    EXECUTE FUNCTION metadata_values_maintain();
CREATE TRIGGER metadata_values_on_delete AFTER DELETE ON data_entries
    FOR EACH ROW EXECUTE FUNCTION metadata_values_maintain();

-- Entries stored before this migration.
INSERT INTO metadata_values (data_id, path, kind, value)
SELECT entry.data_id, fact.path, fact.kind, fact.value
FROM data_entries AS entry, metadata_values_of(entry.metadata) AS fact;

-- The sort key of `order_by=metadata.<path>`: numbers, and quantities in SI, first
-- (rank 0), then strings in byte order (rank 1; collation "C" is the same on every
-- server), then any other value (rank 2), then entries without the path (rank 3).
CREATE TYPE metadata_sort_key AS (rank smallint, number double precision, text text COLLATE "C");

CREATE FUNCTION metadata_sort_key(doc jsonb, path text[]) RETURNS metadata_sort_key
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value IS NULL THEN (3, 0, '')::metadata_sort_key
        WHEN jsonb_typeof(value) = 'number'
            THEN (0, (value #>> '{}')::double precision, '')::metadata_sort_key
        WHEN jsonb_typeof(value) = 'string' THEN (1, 0, value #>> '{}')::metadata_sort_key
        WHEN metadata_is_quantity(value) AND si IS NOT NULL THEN (0, si, '')::metadata_sort_key
        ELSE (2, 0, '')::metadata_sort_key
    END
    FROM (SELECT doc #> path) AS at (value)
    LEFT JOIN LATERAL (
        SELECT (value ->> 'value')::double precision * unit.factor + unit."offset"
        FROM units AS unit
        WHERE metadata_is_quantity(value) AND unit.symbol = value ->> 'unit'
          AND abs((value ->> 'value')::double precision) < 1e280
    ) AS converted (si) ON true
$$;

-- `q=<words>`: the words of the name and of every metadata string, split at anything not a
-- letter or digit, lower-cased and nothing else (the 'simple' configuration: no stemming,
-- so GaN and SrTiO3 stay themselves). A GIN index over them answers "a word starting with
-- this": about ten index entries a write, where trigrams of the same text were forty and
-- cost a quarter of PATCH throughput.
CREATE FUNCTION entry_text(raw_name text, doc jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN raw_name || coalesce(E'\n' || (
        SELECT string_agg(value #>> '{}', E'\n')
        FROM jsonb_path_query(doc, 'strict $.**') AS value
        WHERE jsonb_typeof(value) = 'string'), '');
END;
$$;

CREATE FUNCTION words_of(text text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple', regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))
$$;

CREATE FUNCTION entry_words(raw_name text, doc jsonb) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN words_of(entry_text(raw_name, doc));
END;
$$;

CREATE INDEX data_entries_words_idx ON data_entries
    USING gin (entry_words(raw_name, metadata)) WITH (fastupdate = off);

-- Every word of every `q` word must begin some word of the entry: `GaN_buffer` asks for a
-- word starting with "gan" and one starting with "buffer".
CREATE FUNCTION words_query(words text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg(quote_literal(lexeme) || ':*', ' & ')::tsquery
    FROM unnest(words) AS word, unnest(tsvector_to_array(words_of(word))) AS lexeme
$$;

DROP FUNCTION entry_has_words(text, jsonb, text[]);
