-- labcat core schema: users, API keys, physical samples, data entries.

CREATE TABLE users (
    user_id    text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9_.@-]{1,128}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id       uuid PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- The public, non-secret start of the key ("lc_" + 8 chars): what lists and logs show.
    prefix       text NOT NULL,
    -- SHA-256 of the whole secret; the secret itself is never stored.
    key_hash     bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    name         text NOT NULL DEFAULT '' CHECK (char_length(name) <= 256),
    scopes       text[] NOT NULL
                 CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'admin']),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TYPE char_source_type AS ENUM (
    'rheed_video', 'xps', 'sem', 'metrology', 'optical', 'raman', 'photoluminescence',
    'ellipsometry', 'sims', 'oes', 'xrd', 'afm'
);
CREATE TYPE pipeline_status AS ENUM ('success', 'pending', 'error', 'running');

CREATE TABLE physical_samples (
    physical_sample_id uuid PRIMARY KEY,
    user_id            text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 1024),
    created_at         timestamptz NOT NULL DEFAULT now()
);
-- The Atomscale SDK matches sample names case-insensitively after trimming.
CREATE UNIQUE INDEX physical_samples_owner_name_key
    ON physical_samples (user_id, lower(btrim(name)));

CREATE TABLE data_entries (
    data_id            uuid PRIMARY KEY,
    user_id            text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    raw_name           text NOT NULL CHECK (char_length(raw_name) BETWEEN 1 AND 1024),
    char_source_type   char_source_type NOT NULL,
    pipeline_status    pipeline_status NOT NULL DEFAULT 'pending',
    physical_sample_id uuid REFERENCES physical_samples (physical_sample_id) ON DELETE SET NULL,
    raw_size_gb        double precision CHECK (raw_size_gb >= 0 AND raw_size_gb <> 'Infinity'),
    metadata           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    revision           bigint NOT NULL DEFAULT 1,
    upload_datetime    timestamptz NOT NULL DEFAULT now(),
    last_updated       timestamptz NOT NULL DEFAULT now()
);
-- Every read is scoped to the owner; these serve the list orderings and the keyset cursor.
CREATE INDEX data_entries_owner_upload_idx ON data_entries (user_id, upload_datetime, data_id);
CREATE INDEX data_entries_owner_updated_idx ON data_entries (user_id, last_updated, data_id);
CREATE INDEX data_entries_physical_sample_idx ON data_entries (physical_sample_id);
-- Containment (@>) lookups for metadata.<key>=<value> filters.
CREATE INDEX data_entries_metadata_idx ON data_entries USING gin (metadata jsonb_path_ops);

-- RFC 7396 JSON Merge Patch: objects merge recursively, null deletes, anything else replaces.
-- Done in the database so a merge is one UPDATE on a locked row: concurrent merges serialise
-- on the row lock and none can lose another's keys.
CREATE FUNCTION jsonb_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb;
    k text;
    v jsonb;
BEGIN
    IF patch IS NULL THEN
        RETURN target;
    END IF;
    IF jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        result := '{}'::jsonb;
    ELSE
        result := target;
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(patch) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            result := result - k;
        ELSE
            result := result || jsonb_build_object(k, jsonb_merge_patch(result -> k, v));
        END IF;
    END LOOP;
    RETURN result;
END;
$$;

-- Limits that only the merged document can break (the request alone is checked in Rust).
-- Raises SQLSTATE LC001 (too many top-level keys) or LC002 (too large); the service maps
-- both to a 422 naming the limit.
CREATE FUNCTION metadata_within_limits(doc jsonb, max_keys integer, max_bytes integer)
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
    byte_count := octet_length(doc::text);
    IF byte_count > max_bytes THEN
        RAISE EXCEPTION 'metadata would be % bytes; the limit is %', byte_count, max_bytes
            USING ERRCODE = 'LC002';
    END IF;
    RETURN doc;
END;
$$;
