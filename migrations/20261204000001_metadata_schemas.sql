-- Metadata schemas per project and data type (issue 15). Every PUT adds a version; the
-- current one is the only row of its (project, target) that is not retired. `target` is a
-- char_source_type, or 'default' for the types that have no schema of their own.
CREATE TABLE metadata_schemas (
    schema_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    target     text NOT NULL
               CHECK (target = 'default' OR target::char_source_type::text = target),
    version    integer NOT NULL CHECK (version >= 1),
    mode       text NOT NULL CHECK (mode IN ('enforce', 'report')),
    schema     jsonb NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set when a later version replaced it or the schema was deleted.
    retired_at timestamptz,
    UNIQUE (project_id, target, version)
);
CREATE UNIQUE INDEX metadata_schemas_current_idx ON metadata_schemas (project_id, target)
    WHERE retired_at IS NULL;

-- What the schema that applies said of the entry's metadata when it was last checked:
-- NULL when no schema applies. Derived state: changing it is not a change of the entry
-- (no revision, no history row).
ALTER TABLE data_entries ADD COLUMN metadata_valid boolean, ADD COLUMN metadata_errors jsonb;
-- `GET /data_entries?metadata_valid=false` looks for the few flagged entries of a project.
CREATE INDEX data_entries_metadata_invalid_idx ON data_entries (project_id, data_id)
    WHERE metadata_valid = false;

-- The schema version a change was checked against (NULL: none applied).
ALTER TABLE data_entry_history ADD COLUMN schema_target text, ADD COLUMN schema_version integer;

-- As before, and the validity columns are no change of their own (they follow the metadata
-- and the schema, which the history records).
CREATE OR REPLACE FUNCTION data_entry_changes(before jsonb, after jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_object_agg(field, change), '{}'::jsonb)
        FROM (
            SELECT k AS field,
                   jsonb_build_object('before', before -> k, 'after', after -> k) AS change
            FROM jsonb_object_keys(coalesce(after, before)) AS keys (k)
            WHERE k NOT IN ('metadata', 'revision', 'last_updated', 'metadata_valid',
                            'metadata_errors')
              AND before -> k IS DISTINCT FROM after -> k
            UNION ALL
            SELECT 'metadata', diff
            FROM (SELECT jsonb_key_diff(before -> 'metadata', after -> 'metadata') AS diff) AS d
            WHERE diff <> '{}'::jsonb
        ) AS changes);
END;
$$;
