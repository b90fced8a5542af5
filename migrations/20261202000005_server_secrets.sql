-- Secrets every labcat instance on this database shares: the key cursors are signed with,
-- so a cursor made by one instance is accepted by all, and a forged one by none. Made by
-- the first instance that needs it (random bytes from Rust), never shown.
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL CHECK (octet_length(secret) = 32)
);
