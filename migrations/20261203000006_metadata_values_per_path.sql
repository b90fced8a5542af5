-- One partition of `metadata_values` per declared path (issue 14). In one table PostgreSQL
-- estimated a range on one path from a single histogram of `value` over every path and
-- kind (382k facts estimated, 9,953 real at 1M entries) and answered a sorted range by a
-- sequential scan of data_entries. A partition has statistics of its own, so the estimate
-- is the path's; and a path is dropped by dropping its partition, not by deleting rows.
DROP TABLE metadata_values;
CREATE TABLE metadata_values (
    data_id uuid NOT NULL,
    path text[] NOT NULL,
    kind text NOT NULL,
    value double precision NOT NULL
) PARTITION BY LIST (path);
-- Within a partition the path is one value, so the key starts at the kind.
CREATE INDEX metadata_values_lookup_idx ON metadata_values (kind, value, data_id);
CREATE INDEX metadata_values_entry_idx ON metadata_values (data_id);

-- A path's partition is named from a digest of the path: keys are any text, names are not.
CREATE FUNCTION metadata_values_partition(path text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'metadata_values_' || md5(path::text)
$$;

-- Declares `path`: its partition, then its facts over every stored entry. One path at a
-- time: with the path a constant the walk is planned for it (about 70 µs an entry), while
-- one statement over several paths was planned for none and ran many times longer.
CREATE FUNCTION metadata_index_declare(path text[]) RETURNS void
LANGUAGE plpgsql
SET jit = off
AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I PARTITION OF metadata_values FOR VALUES IN (%L)',
                   metadata_values_partition(path), path);
    INSERT INTO metadata_indexed_paths VALUES (path);
    INSERT INTO metadata_values (data_id, path, kind, value)
    SELECT entry.data_id, path, fact.kind, fact.value
    FROM data_entries AS entry
    CROSS JOIN LATERAL metadata_values_at(entry.metadata, path) AS fact;
END;
$$;

-- Forgets `path`: its partition goes with its facts.
CREATE FUNCTION metadata_index_forget(path text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metadata_indexed_paths AS indexed WHERE indexed.path = metadata_index_forget.path;
    EXECUTE format('DROP TABLE %I', metadata_values_partition(path));
END;
$$;

-- The facts went with the old table: labcat declares its paths again at start-up.
DELETE FROM metadata_indexed_paths;
