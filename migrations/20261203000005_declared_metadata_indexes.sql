-- Facts only for declared paths (issue 14). Keeping facts for every path made every PATCH
-- rewrite rows in `metadata_values` (a counter that changes on every write is a new row
-- each time): about a third of PATCH throughput. Now the settings name the paths search
-- keeps facts for (`search.indexed_paths`, synced at every start into this table); a
-- filter on another path gives the same answer from the document itself, unindexed.
CREATE TABLE metadata_indexed_paths (
    path text[] PRIMARY KEY
);

-- The facts at exactly `path` in `doc` (array elements sit at the array's own path, so
-- this is not `doc #> path`). Only the path's top-level member is walked.
CREATE FUNCTION metadata_values_at(doc jsonb, path text[])
RETURNS TABLE (kind text, value double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT fact.kind, fact.value
    FROM (SELECT doc -> path[1]) AS head (member),
         metadata_values_of(jsonb_build_object(path[1], head.member)) AS fact
    WHERE head.member IS NOT NULL AND fact.path = metadata_values_at.path
$$;

-- An update touches only the facts of indexed paths under top-level members that changed,
-- computed from the old and the new document (the stored rows are not read), and returns
-- at once when no indexed path is under a changed member: the common write pays one probe
-- of a small table.
CREATE OR REPLACE FUNCTION metadata_values_maintain() RETURNS trigger
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
        SELECT NEW.data_id, indexed.path, fact.kind, fact.value
        FROM metadata_indexed_paths AS indexed,
             metadata_values_at(NEW.metadata, indexed.path) AS fact;
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM metadata_indexed_paths AS indexed
                   WHERE OLD.metadata -> indexed.path[1]
                         IS DISTINCT FROM NEW.metadata -> indexed.path[1]) THEN
        RETURN NULL;
    END IF;
    WITH fact AS (
        SELECT indexed.path, fact.kind, fact.value,
               bool_or(side.was) AS was, bool_or(NOT side.was) AS is
        FROM metadata_indexed_paths AS indexed
        CROSS JOIN LATERAL (VALUES (true, OLD.metadata), (false, NEW.metadata)) AS side (was, doc)
        CROSS JOIN LATERAL metadata_values_at(side.doc, indexed.path) AS fact
        WHERE OLD.metadata -> indexed.path[1] IS DISTINCT FROM NEW.metadata -> indexed.path[1]
        GROUP BY indexed.path, fact.kind, fact.value
    ),
    gone AS (
        DELETE FROM metadata_values AS stored
        USING fact
        WHERE NOT fact.is
          AND (stored.path, stored.kind, stored.value, stored.data_id)
            = (fact.path, fact.kind, fact.value, NEW.data_id)
    )
    INSERT INTO metadata_values (data_id, path, kind, value)
    SELECT NEW.data_id, fact.path, fact.kind, fact.value
    FROM fact
    WHERE NOT fact.was;
    RETURN NULL;
END;
$$;

-- Nothing is declared yet: labcat fills the facts of its declared paths at start-up.
TRUNCATE metadata_values;
