//! The change feed's statements: cutting batches of committed events (`events_sequence`),
//! reading them in feed order (`feed_window`), and recording the events that no history
//! row tells.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use uuid::Uuid;

use super::DbResult;
use super::access::reachable;
use super::data_entries::Actor;
use crate::domain::event::{self, Event, FeedQuery};
use crate::domain::{Access, EventType, Role};

/// The feed's ends, as one statement saw them.
#[derive(Debug, Clone, Copy)]
pub struct FeedEnds {
    /// The newest position given: every event at or before it has committed and is placed.
    pub last_position: i64,
    /// Events at or before this were pruned.
    pub pruned_through: i64,
}

/// One window of the feed for a reader, and the ends it was read against.
pub struct Page {
    pub events: Vec<Event>,
    pub ends: FeedEnds,
    /// The reader has seen, or may not see, every event up to this position: the last
    /// event's when the page is full, else the window's end.
    pub read_through: i64,
}

/// Positions one statement looks at for a reader's page: events are numbered in batches
/// and a window is read whole, whatever share of it the reader may see.
const WINDOW: i64 = 5_000;

/// Events after `after` (looking no further than one window) that `query` asks for and
/// `access` may read (read at the time of reading: a member removed reads nothing more of
/// the project), oldest first, at most `limit`; with the feed's ends from the same snapshot.
pub async fn page(
    pool: &PgPool,
    access: Access<'_>,
    query: &FeedQuery,
    after: i64,
    limit: usize,
) -> DbResult<Page> {
    const PAGE: &str = concat!(
        "SELECT f.last_position, f.pruned_through, w.upto, e.*
         FROM event_feed AS f
         CROSS JOIN LATERAL (SELECT least(f.last_position, $1 + $8) AS upto) AS w
         LEFT JOIN LATERAL (
             SELECT e.* FROM feed_window($1, w.upto) AS e
             WHERE ($4::uuid IS NULL OR e.project_id = $4)
               AND ($5::text[] IS NULL OR e.type = ANY($5))
               AND ",
        reachable!("e.project_id", "$2", "$6", "$3"),
        "
             ORDER BY e.position
             LIMIT $7
         ) AS e ON true
         ORDER BY e.position"
    );
    let types: Option<Vec<&str>> = query
        .types
        .as_ref()
        .map(|types| types.iter().map(|t| t.as_str()).collect());
    let rows = sqlx::query(PAGE)
        .bind(after)
        .bind(access.user_id)
        .bind(access.projects)
        .bind(query.project_id)
        .bind(types)
        .bind(Role::Viewer)
        .bind(limit_as_i64(limit))
        .bind(WINDOW.max(limit_as_i64(limit)))
        .fetch_all(pool)
        .await?;
    page_of(&rows, after, limit)
}

/// The events after `after` (within one window) of any of `projects`, of any of `types`,
/// whoever may read them: what those projects' webhooks are sent, read once for all of
/// them. With the feed's ends from the same snapshot.
pub async fn of_projects(
    conn: &mut PgConnection,
    projects: &[Uuid],
    types: &[&str],
    after: i64,
    limit: usize,
) -> DbResult<Page> {
    const OF_PROJECTS: &str = "SELECT f.last_position, f.pruned_through, w.upto, e.*
         FROM event_feed AS f
         CROSS JOIN LATERAL (SELECT least(f.last_position, $1 + $5) AS upto) AS w
         LEFT JOIN LATERAL (
             SELECT e.* FROM feed_window($1, w.upto) AS e
             WHERE e.project_id = ANY($2) AND e.type = ANY($3)
             ORDER BY e.position
             LIMIT $4
         ) AS e ON true
         ORDER BY e.position";
    let rows = sqlx::query(OF_PROJECTS)
        .bind(after)
        .bind(projects)
        .bind(types)
        .bind(limit_as_i64(limit))
        .bind(WINDOW.max(limit_as_i64(limit)))
        .fetch_all(conn)
        .await?;
    page_of(&rows, after, limit)
}

fn page_of(rows: &[PgRow], after: i64, limit: usize) -> DbResult<Page> {
    let Some(first) = rows.first() else {
        unreachable!("event_feed holds its one row from the migration on")
    };
    let ends = FeedEnds {
        last_position: first.try_get("last_position")?,
        pruned_through: first.try_get("pruned_through")?,
    };
    let window_end: i64 = first.try_get("upto")?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        if row.try_get::<Option<i64>, _>("position")?.is_some() {
            events.push(event_from(row)?);
        }
    }
    let read_through = match events.last() {
        Some(last) if events.len() == limit => last.position,
        _ => window_end.max(after),
    };
    Ok(Page {
        events,
        ends,
        read_through,
    })
}

/// Every event after `after`, whoever may read it, oldest first, at most `limit`: what an
/// instance reads once to hand to all its live subscribers, each of which applies its
/// caller's access. Positions have no gaps: fewer than `limit` is the feed's end.
pub async fn newer(pool: &PgPool, after: i64, limit: usize) -> DbResult<Vec<Event>> {
    let rows = sqlx::query("SELECT * FROM feed_window($1, $1 + $2)")
        .bind(after)
        .bind(limit_as_i64(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| Ok(event_from(row)?)).collect()
}

fn event_from(row: &PgRow) -> Result<Event, sqlx::Error> {
    let type_name: String = row.try_get("type")?;
    let event_type = type_name
        .parse::<EventType>()
        .map_err(|()| sqlx::Error::Decode(format!("{type_name:?} is not an event type").into()))?;
    let changes: Option<sqlx::types::Json<Value>> = row.try_get("changes")?;
    Ok(Event {
        position: row.try_get("position")?,
        event_type,
        project_id: row.try_get("project_id")?,
        data_id: row.try_get("data_id")?,
        revision: row.try_get("revision")?,
        occurred_at: row.try_get::<DateTime<Utc>, _>("occurred_at")?,
        actor: event::Actor {
            user_id: row.try_get("actor_user_id")?,
            key_id: row.try_get("actor_key_id")?,
        },
        changes: changes.map(|json| json.0),
    })
}

fn limit_as_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The feed's ends now.
pub async fn ends(pool: &PgPool) -> DbResult<FeedEnds> {
    let row = sqlx::query("SELECT last_position, pruned_through FROM event_feed")
        .fetch_one(pool)
        .await?;
    Ok(FeedEnds {
        last_position: row.try_get("last_position")?,
        pruned_through: row.try_get("pruned_through")?,
    })
}

/// Cuts a batch of what committed since the last one and answers its events, oldest first;
/// none when nothing did, or another instance's sequencer is at it.
pub async fn sequence(pool: &PgPool) -> DbResult<Vec<Event>> {
    let rows = sqlx::query("SELECT * FROM events_sequence()")
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| Ok(event_from(row)?)).collect()
}

/// For each of `keys` that still works (neither revoked nor expired), the projects it may
/// read now: its user's, narrowed to the key's own projects (what its `Principal`'s access
/// is made of). A key missing from the answer has stopped working. One statement for any
/// number of keys: an instance rechecks all its live subscribers with one.
pub async fn readable_projects(pool: &PgPool, keys: &[Uuid]) -> DbResult<HashMap<Uuid, Vec<Uuid>>> {
    const READABLE: &str = concat!(
        "SELECT k.key_id, ARRAY(SELECT p.project_id FROM projects AS p WHERE ",
        reachable!("p.project_id", "k.user_id", "$2", "k.projects"),
        ") FROM api_keys AS k
         WHERE k.key_id = ANY($1) AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > now())"
    );
    let rows: Vec<(Uuid, Vec<Uuid>)> = sqlx::query_as(READABLE)
        .bind(keys)
        .bind(Role::Viewer)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Records that `user`'s role in `project` went from `before` to `after` (`None`: no
/// member), in the transaction that changed it.
pub async fn record_member_change(
    db: impl PgExecutor<'_>,
    project: Uuid,
    actor: &Actor<'_>,
    user: &str,
    before: Option<Role>,
    after: Option<Role>,
) -> DbResult<()> {
    if before == after {
        return Ok(());
    }
    let changes = json!({
        "user_id": user,
        "role": {"before": before.map(Role::as_str), "after": after.map(Role::as_str)},
    });
    sqlx::query(
        "INSERT INTO events (type, project_id, actor_user_id, actor_key_id, changes)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(EventType::MemberChanged.as_str())
    .bind(project)
    .bind(actor.user_id)
    .bind(actor.key_id)
    .bind(sqlx::types::Json(changes))
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the batches cut longer than `retention` ago, and the events rows in them (the
/// history rows stay: they are the entries' history); returns how many events the feed
/// lost.
pub async fn prune(pool: &PgPool, retention: Duration) -> DbResult<u64> {
    let pruned: Option<i64> = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM event_batches WHERE made_at < now() - $1::interval
             RETURNING first_position, last_position, snapshot
         ), newest_gone AS (
             SELECT snapshot FROM gone ORDER BY last_position DESC LIMIT 1
         ), told_gone AS (
             DELETE FROM events AS e USING newest_gone AS g
             WHERE e.xact < pg_snapshot_xmax(g.snapshot)
               AND pg_visible_in_snapshot(e.xact, g.snapshot)
         ), moved AS (
             UPDATE event_feed
             SET pruned_through = greatest(pruned_through,
                                           (SELECT max(last_position) FROM gone))
             WHERE EXISTS (SELECT 1 FROM gone)
         )
         SELECT sum(last_position - first_position + 1)::bigint FROM gone",
    )
    .bind(format!("{} seconds", retention.as_secs()))
    .fetch_one(pool)
    .await?;
    Ok(pruned.map_or(0, |pruned| u64::try_from(pruned).unwrap_or(0)))
}
