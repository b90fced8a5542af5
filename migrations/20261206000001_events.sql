-- The change feed: one event per effective change, appended in the statement (or the
-- transaction) that makes the change, so an event exists exactly when its change committed.
--
-- An event's place in the feed (`position`) is not its `event_id`: ids are drawn when rows
-- are inserted, and transactions commit in another order, so a reader following ids would
-- skip a row whose transaction commits after a later id was read. Positions are given after
-- commit, by `events_sequence`, one sequencer at a time, to rows it can see: whatever a
-- reader has seen up to position p, nothing can later appear at or before p.
CREATE TABLE events (
    event_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position      bigint,
    type          text NOT NULL,
    project_id    uuid NOT NULL,
    data_id       uuid,
    -- An entry event's revision after the change (a delete: one past the last).
    revision      bigint,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor_user_id text NOT NULL,
    actor_key_id  uuid,
    -- Entry events take their `changes` from the history row, rather than a second copy.
    history_id    bigint,
    changes       jsonb
);
-- Partial, so an insert touches neither: the sequencer fills them.
CREATE UNIQUE INDEX events_position_idx ON events (position) WHERE position IS NOT NULL;
CREATE INDEX events_project_position_idx ON events (project_id, position)
    WHERE position IS NOT NULL;
-- What the sequencer has not placed yet.
CREATE INDEX events_unsequenced_idx ON events (event_id) WHERE position IS NULL;

-- The feed's ends: the last position given, and the last one pruned (a cursor before it
-- has lost events: 410).
CREATE TABLE event_feed (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position  bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO event_feed DEFAULT VALUES;

-- Places up to `batch` committed events, in the order their ids were drawn (for one entry,
-- the order its row lock was taken: its revisions), after the last position given; then
-- tells listening instances the new last position. `NULL` when another sequencer holds the
-- lock (it will place them).
CREATE FUNCTION events_sequence(batch integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    last_given bigint;
    newest bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7408431590166071365) THEN
        RETURN NULL;
    END IF;
    SELECT last_position INTO last_given FROM event_feed;
    WITH waiting AS (
        SELECT event_id FROM events WHERE position IS NULL ORDER BY event_id LIMIT batch
    ), placed AS (
        UPDATE events AS e SET position = w.position
        FROM (SELECT event_id, last_given + row_number() OVER (ORDER BY event_id) AS position
              FROM waiting) AS w
        WHERE e.event_id = w.event_id
        RETURNING e.position
    )
    SELECT max(position) INTO newest FROM placed;
    IF newest IS NULL THEN
        RETURN last_given;
    END IF;
    UPDATE event_feed SET last_position = newest;
    PERFORM pg_notify('labcat_events', newest::text);
    RETURN newest;
END $$;

-- Entry events come from the history rows, whichever statement writes them: a create, an
-- update (a move when the project changed) or a delete. The project a moved entry left is
-- told it left, and nothing about where it went.
CREATE FUNCTION data_entry_history_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, project_id, data_id, revision, occurred_at, actor_user_id,
                        actor_key_id, history_id, changes)
    SELECT CASE h.operation
               WHEN 'create' THEN 'entry.created'
               WHEN 'delete' THEN 'entry.deleted'
               WHEN 'update' THEN CASE WHEN h.changes ? 'project_id' THEN 'entry.moved'
                                       ELSE 'entry.updated' END
           END,
           h.project_id, h.data_id, h.revision, h.changed_at, h.actor_user_id,
           h.actor_key_id, h.history_id, NULL
    FROM announced AS h
    WHERE h.project_id IS NOT NULL
    UNION ALL
    SELECT 'entry.moved', (h.changes -> 'project_id' ->> 'before')::uuid, h.data_id,
           h.revision, h.changed_at, h.actor_user_id, h.actor_key_id, NULL,
           jsonb_build_object('project_id',
                              jsonb_build_object('before', h.changes -> 'project_id' -> 'before'))
    FROM announced AS h
    WHERE h.operation = 'update' AND h.changes ? 'project_id';
    RETURN NULL;
END $$;

CREATE TRIGGER data_entry_history_announce
    AFTER INSERT ON data_entry_history
    REFERENCING NEW TABLE AS announced
    FOR EACH STATEMENT EXECUTE FUNCTION data_entry_history_announce();
