-- Cheaper writes. Profiling PATCH (bench/run) showed PostgreSQL spending over a third of its
-- time parsing and planning the bodies of the SQL-language history functions, which it does
-- again on every call of a function it cannot inline.

-- The history diff functions of creates and deletes, as PL/pgSQL: it keeps its plans for the
-- session. Same statements, same results. (Updates use `field_change` and an inline
-- metadata diff instead; see db::data_entries::update.)

CREATE OR REPLACE FUNCTION jsonb_key_diff(before jsonb, after jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT coalesce(
            jsonb_object_agg(k, jsonb_build_object('before', before -> k, 'after', after -> k)),
            '{}'::jsonb)
        FROM (SELECT jsonb_object_keys(coalesce(before, '{}'::jsonb))
              UNION
              SELECT jsonb_object_keys(coalesce(after, '{}'::jsonb))) AS keys (k)
        WHERE before -> k IS DISTINCT FROM after -> k);
END;
$$;

CREATE OR REPLACE FUNCTION data_entry_changes(before jsonb, after jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_object_agg(field, change), '{}'::jsonb)
        FROM (
            SELECT k AS field,
                   jsonb_build_object('before', before -> k, 'after', after -> k) AS change
            FROM jsonb_object_keys(coalesce(after, before)) AS keys (k)
            WHERE k NOT IN ('metadata', 'revision', 'last_updated')
              AND before -> k IS DISTINCT FROM after -> k
            UNION ALL
            SELECT 'metadata', diff
            FROM (SELECT jsonb_key_diff(before -> 'metadata', after -> 'metadata') AS diff) AS d
            WHERE diff <> '{}'::jsonb
        ) AS changes);
END;
$$;

-- {"<field>": {"before": …, "after": …}} when the value changed, else {}. A one-expression
-- SQL function: the planner inlines it, so it costs what the expression costs.
CREATE FUNCTION field_change(field text, before anyelement, after anyelement) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN before IS DISTINCT FROM after
                THEN jsonb_build_object(field, jsonb_build_object('before', before, 'after', after))
                ELSE '{}'::jsonb END
$$;

-- History is read per entry (data_id, revision), which the unique index serves; nothing
-- reads by owner alone, and every write paid for this index.
DROP INDEX data_entry_history_owner_idx;

-- GIN's pending list ("fastupdate") makes most inserts cheap and the one that finds the list
-- full flush all of it: that writer waits for everyone's work. Every PATCH updates these
-- indexes; inserting directly keeps each write's cost its own.
ALTER INDEX data_entries_metadata_idx SET (fastupdate = off);
ALTER INDEX data_entries_tags_idx SET (fastupdate = off);
