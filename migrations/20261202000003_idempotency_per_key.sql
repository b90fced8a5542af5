-- Idempotency keys belong to the API key that sent them, not to its user: a stored answer is
-- replayed only to the key that made it (a read-only key's 403 must not be replayed to the
-- same user's read-write key, nor a read-write key's 201 to a read-only one).
--
-- The rows kept so far name only a user, so they cannot be given to a key: they are dropped.
-- A retry that arrives across the upgrade runs again rather than being replayed.
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_keys (
    key_id          uuid NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    -- The request holding the claim: only it may complete or release the row.
    claim_id        uuid NOT NULL,
    fingerprint     bytea NOT NULL,
    -- All three NULL while the claiming request is still being handled.
    status          smallint,
    headers         jsonb,
    body            bytea,
    -- When the row may be claimed afresh (and pruned): a claim lasts as long as a request
    -- may (server.request_timeout_ms), a stored answer writes.idempotency_ttl_seconds.
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (key_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
