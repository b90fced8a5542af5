-- The sequencer answers the events of the batch it cut, in order, so the instance that cut it
-- hands them to its live subscribers without reading them back (`feed_window`). No rows:
-- nothing committed since the last batch, or another instance's sequencer holds the lock.
DROP FUNCTION events_sequence();
CREATE FUNCTION events_sequence()
RETURNS TABLE ("position" bigint, type text, project_id uuid, data_id uuid, revision bigint,
               occurred_at timestamptz, actor_user_id text, actor_key_id uuid, changes jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cut pg_snapshot;
    previous_cut pg_snapshot;
    last_given bigint;
    size bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7408431590166071365) THEN
        RETURN;
    END IF;
    cut := pg_current_snapshot();
    SELECT f.last_position, f.snapshot INTO last_given, previous_cut FROM event_feed AS f;
    -- This statement's snapshot is taken after `cut`: it sees every transaction `cut` does.
    RETURN QUERY
    SELECT last_given + e.place, e.type, e.project_id, e.data_id, e.revision, e.occurred_at,
           e.actor_user_id, e.actor_key_id, e.changes
    FROM event_batch(cut, previous_cut) AS e
    ORDER BY e.place;
    GET DIAGNOSTICS size = ROW_COUNT;
    IF size = 0 THEN
        -- Nothing committed: the next batch starts from the same mark.
        RETURN;
    END IF;
    INSERT INTO event_batches (last_position, first_position, snapshot, previous)
    VALUES (last_given + size, last_given + 1, cut, previous_cut);
    UPDATE event_feed SET last_position = last_given + size, snapshot = cut;
    PERFORM pg_notify('labcat_events', (last_given + size)::text);
END $$;
