-- The feed without a second write per change. An entry's history row, written in the
-- statement that makes the change, is its event: nothing else is written for it. (Copying
-- it into `events`, and giving that row its position by an UPDATE after commit, cost a
-- PATCH a fifth of its throughput.) `events` keeps the events no history row tells:
-- samples created, members changed.
--
-- Positions are given by batch, not by row. Every `events.sequence_interval_ms` the
-- sequencer takes a snapshot; a batch is what committed between its snapshot and the one
-- before: the rows whose transaction (`xact`) is visible in the one and not in the other.
-- Nothing can join a batch once it is recorded, so its events, in their fixed order
-- (`event_batch`), take the positions `first_position ..= last_position`, and whatever a
-- reader has seen up to position p, nothing can later appear at or before p. For one entry
-- the order is its revisions': the second of two writers waits for the first's row lock, so
-- it commits later (a later batch) or draws a later `history_id` (later in the batch).

-- Added without its default first: a volatile default would stamp every existing row with
-- this migration's transaction. Rows from before have none and are in no batch.
ALTER TABLE data_entry_history ADD COLUMN xact xid8;
ALTER TABLE data_entry_history ALTER COLUMN xact SET DEFAULT pg_current_xact_id();
CREATE INDEX data_entry_history_xact_idx ON data_entry_history (xact) WHERE xact IS NOT NULL;

-- The events of the old design were copies (entry events) or are in no batch: the feed
-- starts again after its last position, and a cursor before it has lost them (410).
DELETE FROM events;
UPDATE event_feed SET pruned_through = last_position;
DROP FUNCTION events_sequence(integer);
DROP INDEX events_position_idx, events_project_position_idx, events_unsequenced_idx;
ALTER TABLE events DROP COLUMN position, DROP COLUMN history_id;
CREATE INDEX events_xact_idx ON events (xact);

-- The sequencer's mark: the snapshot the last batch was cut at.
ALTER TABLE event_feed DROP COLUMN placed_below,
    ADD COLUMN snapshot pg_snapshot NOT NULL DEFAULT pg_current_snapshot();

CREATE TABLE event_batches (
    last_position  bigint PRIMARY KEY,
    first_position bigint NOT NULL,
    -- Its events committed before `snapshot` and after `previous` (the batch before's).
    snapshot       pg_snapshot NOT NULL,
    previous       pg_snapshot NOT NULL,
    made_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_batches_made_at_idx ON event_batches (made_at);

-- The events of the batch between the snapshots `since` and `cut`, each with its `place` in it
-- (1, 2, …): history rows in the order their ids were drawn (a move is two events: the
-- entry's new project is told it moved, the old one only that it left), then the events
-- rows in theirs. Its transactions are those visible in `cut` and not in `since`: from
-- `since`'s end to `cut`'s, and those `since` saw running (two index scans,
-- not one over every transaction since the oldest one running).
--
-- PL/pgSQL, not SQL, for both functions here: it keeps its plans for the session, where a
-- SQL function that cannot be inlined is planned again at every call (see
-- 20261125000001_cheaper_writes.sql).
CREATE FUNCTION event_batch(cut pg_snapshot, since pg_snapshot)
RETURNS TABLE (place bigint, type text, project_id uuid, data_id uuid, revision bigint,
               occurred_at timestamptz, actor_user_id text, actor_key_id uuid, changes jsonb)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH written AS (
        SELECT h.* FROM data_entry_history AS h
        WHERE h.xact >= pg_snapshot_xmax(since) AND h.xact < pg_snapshot_xmax(cut)
          AND pg_visible_in_snapshot(h.xact, cut)
        UNION ALL
        SELECT h.* FROM data_entry_history AS h
        WHERE h.xact = ANY (ARRAY(SELECT pg_snapshot_xip(since)))
          AND pg_visible_in_snapshot(h.xact, cut)
    ), told AS (
        SELECT e.* FROM events AS e
        WHERE e.xact >= pg_snapshot_xmax(since) AND e.xact < pg_snapshot_xmax(cut)
          AND pg_visible_in_snapshot(e.xact, cut)
        UNION ALL
        SELECT e.* FROM events AS e
        WHERE e.xact = ANY (ARRAY(SELECT pg_snapshot_xip(since)))
          AND pg_visible_in_snapshot(e.xact, cut)
    ), batch AS (
        SELECT 0 AS source, h.history_id AS id, 0 AS part,
               CASE h.operation
                   WHEN 'create' THEN 'entry.created'
                   WHEN 'delete' THEN 'entry.deleted'
                   ELSE CASE WHEN h.changes ? 'project_id' THEN 'entry.moved'
                             ELSE 'entry.updated' END
               END AS type,
               h.project_id, h.data_id, h.revision, h.changed_at AS occurred_at,
               h.actor_user_id, h.actor_key_id, h.changes
        FROM written AS h
        UNION ALL
        SELECT 0, h.history_id, 1, 'entry.moved', (h.changes -> 'project_id' ->> 'before')::uuid,
               h.data_id, h.revision, h.changed_at, h.actor_user_id, h.actor_key_id,
               jsonb_build_object('project_id', jsonb_build_object(
                   'before', h.changes -> 'project_id' -> 'before'))
        FROM written AS h
        WHERE h.operation = 'update' AND h.changes ? 'project_id'
        UNION ALL
        SELECT 1, e.event_id, 0, e.type, e.project_id, e.data_id, e.revision, e.occurred_at,
               e.actor_user_id, e.actor_key_id, e.changes
        FROM told AS e
    )
    SELECT row_number() OVER (ORDER BY source, id, part), type, project_id, data_id, revision,
           occurred_at, actor_user_id, actor_key_id, changes
    FROM batch;
END $$;

-- The events at positions after `after` up to `upto`, in order.
CREATE FUNCTION feed_window(after bigint, upto bigint)
RETURNS TABLE ("position" bigint, type text, project_id uuid, data_id uuid, revision bigint,
               occurred_at timestamptz, actor_user_id text, actor_key_id uuid, changes jsonb)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT b.first_position - 1 + e.place, e.type, e.project_id, e.data_id, e.revision,
           e.occurred_at, e.actor_user_id, e.actor_key_id, e.changes
    FROM event_batches AS b
    CROSS JOIN LATERAL event_batch(b.snapshot, b.previous) AS e
    -- The batches holding (after, upto]: by their ends, so both bounds use the index.
    WHERE b.last_position > after
      AND b.last_position <= coalesce((SELECT min(last_position) FROM event_batches
                                       WHERE last_position >= upto), upto)
      AND b.first_position - 1 + e.place > after
      AND b.first_position - 1 + e.place <= upto
    ORDER BY 1;
END $$;

-- Cuts a batch of what committed since the last one, and tells listening instances its
-- last position; the feed's last position either way. `NULL` when another sequencer holds
-- the lock (it will cut it).
CREATE FUNCTION events_sequence() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cut pg_snapshot;
    previous_cut pg_snapshot;
    last_given bigint;
    size bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7408431590166071365) THEN
        RETURN NULL;
    END IF;
    cut := pg_current_snapshot();
    SELECT last_position, snapshot INTO last_given, previous_cut FROM event_feed;
    -- This statement's snapshot is taken after `cut`: it sees every transaction `cut` does.
    SELECT count(*) INTO size FROM event_batch(cut, previous_cut);
    IF size = 0 THEN
        -- Nothing committed: the next batch starts from the same mark.
        RETURN last_given;
    END IF;
    INSERT INTO event_batches (last_position, first_position, snapshot, previous)
    VALUES (last_given + size, last_given + 1, cut, previous_cut);
    UPDATE event_feed SET last_position = last_given + size, snapshot = cut;
    PERFORM pg_notify('labcat_events', (last_given + size)::text);
    RETURN last_given + size;
END $$;
