-- Sessions of the web UI (issue 17): a browser signs in with an API key and gets a session
-- cookie instead. Only the SHA-256 of the session token is stored, like keys' secrets. A
-- session acts as its key: revoking or expiring the key ends it (every use joins api_keys).
CREATE TABLE ui_sessions (
    session_hash bytea PRIMARY KEY CHECK (length(session_hash) = 32),
    key_id       uuid NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX ui_sessions_key_id_idx ON ui_sessions (key_id);
CREATE INDEX ui_sessions_expires_at_idx ON ui_sessions (expires_at);
