-- Change history and idempotency keys.

-- One row per effective change of a data entry, written by the same statement as the
-- change itself. No foreign key to data_entries: history outlives a deleted entry.
CREATE TABLE data_entry_history (
    history_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    data_id       uuid NOT NULL,
    owner_id      text NOT NULL,
    -- The entry's revision after the change (for a delete: one past the last revision).
    revision      bigint NOT NULL,
    operation     text NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    changed_at    timestamptz NOT NULL,
    actor_user_id text NOT NULL,
    actor_key_id  uuid,
    request_id    text,
    -- {"field": {"before": …, "after": …}}; metadata as a key-level diff under "metadata".
    changes       jsonb NOT NULL,
    UNIQUE (data_id, revision)
);
CREATE INDEX data_entry_history_owner_idx ON data_entry_history (owner_id, data_id);

-- {"key": {"before": …, "after": …}} for every top-level key whose value differs.
CREATE FUNCTION jsonb_key_diff(before jsonb, after jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        jsonb_object_agg(k, jsonb_build_object('before', before -> k, 'after', after -> k)),
        '{}'::jsonb)
    FROM (SELECT jsonb_object_keys(coalesce(before, '{}'::jsonb))
          UNION
          SELECT jsonb_object_keys(coalesce(after, '{}'::jsonb))) AS keys (k)
    WHERE before -> k IS DISTINCT FROM after -> k
$$;

-- The per-field changes between two versions of an entry (as jsonb rows); metadata as a
-- key-level diff. Bookkeeping columns (revision, last_updated) are left out.
CREATE FUNCTION data_entry_changes(before jsonb, after jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
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
    ) AS changes
$$;

-- A POST or PATCH sent with an Idempotency-Key: the first response is kept and replayed
-- to retries with the same key and body. `status IS NULL` while the first is in flight.
CREATE TABLE idempotency_keys (
    user_id         text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    fingerprint     bytea NOT NULL,
    status          smallint,
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
