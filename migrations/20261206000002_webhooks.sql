-- Webhooks: a project's subscriptions to its events, and one delivery record per event and
-- webhook, kept until delivered or given up (then pruned with the events).
CREATE TABLE webhooks (
    webhook_id           uuid PRIMARY KEY,
    project_id           uuid NOT NULL REFERENCES projects ON DELETE CASCADE,
    url                  text NOT NULL,
    events               text[] NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    disabled_reason      text,
    -- The signing secret, sealed with the server's webhook key (it is needed to sign, so it
    -- cannot be hashed). After a rotation the previous one signs too, until it expires.
    secret               bytea NOT NULL,
    previous_secret      bytea,
    previous_expires_at  timestamptz,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- The feed position up to which events have become deliveries.
    cursor               bigint NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_project_idx ON webhooks (project_id);

CREATE TABLE webhook_deliveries (
    delivery_id      uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    -- The event's feed position: one delivery per event and webhook.
    position         bigint NOT NULL,
    event_type       text NOT NULL,
    -- Deliveries of one entry go in order: one waits while an earlier one is pending.
    data_id          uuid,
    -- The body, as first sent: every attempt sends the same bytes, even once the event is
    -- pruned.
    payload          text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- Set while an instance is making an attempt; another instance takes over after it.
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, position)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, position)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_entry_idx ON webhook_deliveries (webhook_id, data_id, position)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, position);
