-- Which schema version `metadata_valid` and `metadata_errors` were found under (the
-- `metadata_schemas.schema_id`; NULL when no schema applied or the entry was not checked
-- yet). A write whose result is known valid whenever the stored document was valid (a merge
-- decided from its patch alone) may skip checking the merged document only if the stored
-- one was found valid under the very version that applies now.
ALTER TABLE data_entries ADD COLUMN metadata_schema_id bigint;

-- As before, and the new column is no change of its own either.
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
                            'metadata_errors', 'metadata_schema_id')
              AND before -> k IS DISTINCT FROM after -> k
            UNION ALL
            SELECT 'metadata', diff
            FROM (SELECT jsonb_key_diff(before -> 'metadata', after -> 'metadata') AS diff) AS d
            WHERE diff <> '{}'::jsonb
        ) AS changes);
END;
$$;
