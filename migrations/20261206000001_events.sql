-- The change feed: one event per effective change, appended in the statement (or the
-- transaction) that makes the change, so an event exists exactly when its change committed.
-- (Entry events: every statement writing a history row also appends its event, see
-- `announce_entry_changes!` in src/db/events.rs.)
--
-- An event's place in the feed (`position`) is not its `event_id`: ids are drawn when rows
-- are inserted, and transactions commit in another order, so a reader following ids would
-- skip a row whose transaction commits after a later id was read. Positions are given after
-- commit, by `events_sequence`, one sequencer at a time, to rows it can see: whatever a
-- reader has seen up to position p, nothing can later appear at or before p.
CREATE TABLE events (
    -- The order events were written in, which for one entry is the order of its revisions.
    -- No index: nothing looks an event up by it (the sequencer updates rows by ctid), and
    -- every index here is paid twice per write (the insert, and the sequencer's update).
    event_id      bigint GENERATED ALWAYS AS IDENTITY,
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
    changes       jsonb,
    -- The writing transaction: lets the sequencer look only at events of transactions that
    -- may have ended since it last looked, not at every row it ever placed.
    xact          xid8 NOT NULL DEFAULT pg_current_xact_id()
);
-- Partial, so an insert touches neither: the sequencer fills them.
CREATE UNIQUE INDEX events_position_idx ON events (position) WHERE position IS NOT NULL;
CREATE INDEX events_project_position_idx ON events (project_id, position)
    WHERE position IS NOT NULL;
-- What the sequencer has not placed yet, by transaction: its scans start where the last
-- one left off, past the (dead, until vacuumed) entries of every event placed before.
CREATE INDEX events_unsequenced_idx ON events (xact) WHERE position IS NULL;

-- The feed's ends: the last position given, and the last one pruned (a cursor before it
-- has lost events: 410); and the sequencer's mark: every event of a transaction older than
-- `placed_below` has been placed.
CREATE TABLE event_feed (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position  bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0,
    placed_below   xid8 NOT NULL DEFAULT '0'
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
    below xid8;
    horizon xid8;
    newest bigint;
    placed_count integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7408431590166071365) THEN
        RETURN NULL;
    END IF;
    -- Every transaction older than the oldest one running now has ended, so the next
    -- statement (a later snapshot) sees all of their events.
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    SELECT last_position, placed_below INTO last_given, below FROM event_feed;
    -- By ctid: only this function (under its lock) changes unplaced rows.
    WITH waiting AS (
        SELECT ctid AS row, event_id FROM events
        WHERE position IS NULL AND xact >= below
        ORDER BY event_id LIMIT batch
    ), placed AS (
        UPDATE events AS e SET position = w.position
        FROM (SELECT row, last_given + row_number() OVER (ORDER BY event_id) AS position
              FROM waiting) AS w
        WHERE e.ctid = w.row
        RETURNING e.position
    )
    SELECT max(position), count(*) INTO newest, placed_count FROM placed;
    UPDATE event_feed SET
        last_position = coalesce(newest, last_given),
        -- All that was waiting got placed: nothing older than the horizon is left.
        placed_below = CASE WHEN placed_count < batch THEN greatest(below, horizon) ELSE below END
    WHERE newest IS NOT NULL OR (placed_count < batch AND below < horizon);
    IF newest IS NULL THEN
        RETURN last_given;
    END IF;
    PERFORM pg_notify('labcat_events', newest::text);
    RETURN newest;
END $$;
