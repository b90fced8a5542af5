//! The change feed: reading it page by page (`GET /events`), and following it live.
//!
//! Each instance runs four tasks. The *sequencer* cuts what committed since it last
//! looked into a batch of the feed (`events_sequence`; one instance at a time does it,
//! every `sequence_interval` while events keep coming); the *listener* hears, on one
//! connection of its own, when any instance has placed some; the *hub* then reads the new
//! events once and hands them to every live subscriber of this instance; the *access
//! rechecker* asks, every `recheck` and in one statement for all of them, what each key with
//! a live subscriber may read now. A subscriber is a task and a channel, not a connection:
//! it catches up from the database (its access applied in the statement), then takes the
//! hub's events, keeping those of the projects its caller may read, as the rechecker last
//! found, or as it asks itself when the caller's membership changes. Losing access, or its
//! key, ends the subscription.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db;
use crate::domain::event::{Event, FeedQuery};
use crate::error::ApiError;

/// Events read per statement.
const BATCH: usize = 1000;
/// The sequencer's pause after a call that placed nothing doubles up to this.
const IDLE_SEQUENCE_INTERVAL: Duration = Duration::from_millis(200);
/// How often the hub looks at the feed's end without being told (the listener's
/// connection may be down).
const HUB_POLL: Duration = Duration::from_secs(1);
/// Batches the hub keeps for subscribers that are behind; one further behind catches up
/// from the database.
const HUB_CAPACITY: usize = 256;
/// Events waiting for one slow client.
const SUBSCRIBER_BUFFER: usize = 256;
const CHANNEL: &str = "labcat_events";

pub struct FeedSettings {
    /// The sequencer's pause while events keep coming.
    pub sequence_interval: Duration,
    /// How often a subscription asks whether its caller may still read what it follows.
    pub recheck: Duration,
}

/// The live feed of this instance; its tasks stop when it is dropped.
pub struct Feed {
    hub: Arc<Hub>,
    tasks: Vec<JoinHandle<()>>,
}

struct Hub {
    /// For what subscribers ask on behalf of their callers, like requests do.
    pool: PgPool,
    /// For the hub's own work (reading new events, rechecking access): never a request's
    /// connection.
    background: PgPool,
    /// New events, a batch per read: a subscriber wakes once per batch, not per event.
    published: broadcast::Sender<Arc<Published>>,
    /// The newest position the hub has handed out (or skipped, with nobody listening).
    position: AtomicI64,
    /// Set when the instance shuts down: subscriptions end.
    closed: watch::Sender<bool>,
    /// What each key with a live subscriber may read, one entry per key however many
    /// streams it has open: rechecked together every `recheck`, not once per stream.
    access: Mutex<HashMap<Uuid, watch::Sender<KeyAccess>>>,
    recheck: Duration,
}

/// The feed's newest position as this instance last heard it, with the events of the batch
/// that ends there when this instance's sequencer cut it (then the hub need not read them).
#[derive(Debug, Clone, Default)]
struct Placed {
    last_position: i64,
    batch: Option<Arc<[Event]>>,
}

impl Placed {
    /// Moves on to `last_position` (with its `batch`, if known); only ever forwards.
    fn raise(&mut self, last_position: i64, batch: Option<Arc<[Event]>>) -> bool {
        let raised = last_position > self.last_position;
        if raised {
            *self = Self {
                last_position,
                batch,
            };
        }
        raised
    }
}

/// A batch of new events as the hub hands it out, with each project's events found once for
/// all subscribers: one that follows a project looks at that project's events only, so a
/// batch costs the idle subscribers of a quiet project next to nothing however busy the
/// rest of the catalogue is.
struct Published {
    events: Arc<[Event]>,
    /// Indices into `events`, per project, in feed order.
    by_project: HashMap<Uuid, Vec<usize>>,
}

impl Published {
    fn new(events: Arc<[Event]>) -> Self {
        let mut by_project: HashMap<Uuid, Vec<usize>> = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            by_project.entry(event.project_id).or_default().push(index);
        }
        Self { events, by_project }
    }

    /// The events of `project`, or all of them.
    fn of(&self, project: Option<Uuid>) -> Box<dyn Iterator<Item = &Event> + Send + '_> {
        match project {
            Some(project) => Box::new(
                self.by_project
                    .get(&project)
                    .into_iter()
                    .flatten()
                    .map(|&index| &self.events[index]),
            ),
            None => Box::new(self.events.iter()),
        }
    }

    fn last_position(&self) -> Option<i64> {
        self.events.last().map(|last| last.position)
    }
}

/// What a key may read (`None`: it stopped working), and when that was asked: a newer
/// answer replaces an older one, never the other way round.
#[derive(Debug, Clone)]
struct KeyAccess {
    asked_at: Instant,
    projects: Option<Arc<HashSet<Uuid>>>,
}

impl KeyAccess {
    /// Asks the database what `key` may read now.
    async fn ask(pool: &PgPool, key: Uuid) -> Result<Self, db::DbError> {
        let asked_at = Instant::now();
        let mut readable = db::events::readable_projects(pool, &[key]).await?;
        Ok(Self::answered(asked_at, readable.remove(&key)))
    }

    fn answered(asked_at: Instant, projects: Option<Vec<Uuid>>) -> Self {
        Self {
            asked_at,
            projects: projects.map(|projects| Arc::new(projects.into_iter().collect())),
        }
    }
}

impl Feed {
    /// `pool` serves callers (pages, a subscription's catch-up); `background` the feed's own
    /// tasks.
    pub fn start(pool: PgPool, background: PgPool, settings: FeedSettings) -> Self {
        let (placed, placed_rx) = watch::channel(Placed::default());
        let hub = Arc::new(Hub {
            pool,
            background: background.clone(),
            published: broadcast::channel(HUB_CAPACITY).0,
            position: AtomicI64::new(-1),
            closed: watch::channel(false).0,
            access: Mutex::default(),
            recheck: settings.recheck,
        });
        let placed = Arc::new(placed);
        let tasks = vec![
            tokio::spawn(sequence(
                background.clone(),
                settings.sequence_interval,
                placed.clone(),
            )),
            tokio::spawn(listen(background, placed.clone())),
            tokio::spawn(publish(hub.clone(), placed_rx)),
            tokio::spawn(recheck_access(hub.clone())),
        ];
        Self { hub, tasks }
    }

    /// Ends every subscription (at shutdown, so no stream holds the server open) and stops
    /// the feed's tasks.
    pub fn close(&self) {
        self.hub.closed.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }

    /// One page of events for `principal`: those after `query.after` (the oldest kept when
    /// absent) that it may read now.
    pub async fn page(
        &self,
        principal: &Principal,
        query: &FeedQuery,
    ) -> Result<Vec<Event>, ApiError> {
        let pool = &self.hub.pool;
        if query.project_id.is_some() {
            self.readable(principal, query).await?;
        }
        let mut after = query.after.unwrap_or(0);
        let mut events = Vec::new();
        // A window may hold nothing the caller may read: read on until the page is full
        // or the feed's end is reached, so a short page means "no more".
        loop {
            let limit = query.limit - events.len();
            let page = db::events::page(pool, principal.access(), query, after, limit).await?;
            if events.is_empty() {
                check_cursor(after, page.ends)?;
            }
            events.extend(page.events);
            after = page.read_through;
            if events.len() == query.limit || after >= page.ends.last_position {
                return Ok(events);
            }
        }
    }

    /// Follows the feed for `principal` from `query.after` (from now when absent). The
    /// receiver ends when the caller loses access, the key stops working, or the instance
    /// shuts down.
    pub async fn subscribe(
        &self,
        principal: Principal,
        query: FeedQuery,
    ) -> Result<mpsc::Receiver<Event>, ApiError> {
        let pool = &self.hub.pool;
        let readable = self.readable(&principal, &query).await?;
        let access = self.hub.follow_access(principal.key_id, readable.clone());
        // Listening before the start is read: nothing placed after it can be missed.
        let live = self.hub.published.subscribe();
        let ends = db::events::ends(pool).await?;
        let after = match query.after {
            Some(after) => {
                check_cursor(after, ends)?;
                after
            }
            None => ends.last_position,
        };
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        let subscription = Subscription {
            hub: self.hub.clone(),
            principal,
            query,
            projects: readable.projects.unwrap_or_default(),
            access,
            after,
            sender,
        };
        tokio::spawn(subscription.run(live));
        Ok(receiver)
    }
}

impl Feed {
    /// What `principal` may read now; a 404 when `query` asks for a project it may not
    /// (exactly what a missing project gets), a 401 when its key stopped working.
    async fn readable(
        &self,
        principal: &Principal,
        query: &FeedQuery,
    ) -> Result<KeyAccess, ApiError> {
        let readable = KeyAccess::ask(&self.hub.pool, principal.key_id).await?;
        let Some(projects) = &readable.projects else {
            return Err(ApiError::Unauthorized);
        };
        match query.project_id {
            Some(project) if !projects.contains(&project) => Err(project_not_found(project)),
            _ => Ok(readable),
        }
    }
}

impl Hub {
    fn access(&self) -> MutexGuard<'_, HashMap<Uuid, watch::Sender<KeyAccess>>> {
        self.access.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows what `key` may read from `known` on. The receiver starts out marked changed,
    /// so a subscriber compares its own answer with the newest one at once.
    fn follow_access(&self, key: Uuid, known: KeyAccess) -> watch::Receiver<KeyAccess> {
        let mut access = self.access();
        let sender = access
            .entry(key)
            .or_insert_with(|| watch::channel(known.clone()).0);
        offer(sender, known);
        let mut receiver = sender.subscribe();
        receiver.mark_changed();
        receiver
    }

    /// Hands each answer to the subscribers of its key, unless a newer one has been.
    fn tell_access(&self, answers: impl IntoIterator<Item = (Uuid, KeyAccess)>) {
        let access = self.access();
        for (key, answer) in answers {
            if let Some(sender) = access.get(&key) {
                offer(sender, answer);
            }
        }
    }
}

/// Keeps `answer` when it is newer than the one `sender` holds; wakes the receivers only
/// when what the key may read changed.
fn offer(sender: &watch::Sender<KeyAccess>, answer: KeyAccess) {
    sender.send_if_modified(|known| {
        if answer.asked_at <= known.asked_at {
            return false;
        }
        let changed = known.projects != answer.projects;
        *known = answer;
        changed
    });
}

/// Asks the database every `recheck` what each key with a live subscriber on this instance
/// may read now: one statement for all of them, so idle streams cost no queries of their
/// own.
async fn recheck_access(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(hub.recheck);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let keys: Vec<Uuid> = {
            let mut access = hub.access();
            access.retain(|_, sender| sender.receiver_count() > 0);
            access.keys().copied().collect()
        };
        if keys.is_empty() {
            continue;
        }
        let asked_at = Instant::now();
        match db::events::readable_projects(&hub.background, &keys).await {
            Ok(mut readable) => hub.tell_access(keys.into_iter().map(|key| {
                let answer = KeyAccess::answered(asked_at, readable.remove(&key));
                (key, answer)
            })),
            // Streams go on: nothing about access can change while the database is away.
            Err(error) => {
                tracing::warn!(%error, "could not recheck what live subscribers may read")
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.close();
    }
}

fn project_not_found(project: Uuid) -> ApiError {
    ApiError::NotFound {
        what: "project",
        id: project.to_string(),
    }
}

/// A cursor the feed has pruned past has lost events (410); one beyond its end never came
/// from it (400).
fn check_cursor(after: i64, ends: db::events::FeedEnds) -> Result<(), ApiError> {
    if after < ends.pruned_through {
        return Err(ApiError::CursorExpired {
            oldest: ends.pruned_through,
        });
    }
    if after > ends.last_position {
        return Err(ApiError::BadQuery(vec![crate::domain::FieldError::new(
            "after",
            "invalid_cursor",
            format!(
                "'after' is beyond the newest event ({}); it did not come from this feed",
                ends.last_position
            ),
        )]));
    }
    Ok(())
}

/// Places committed events, quickly while they keep coming, backing off while there are
/// none. Every instance runs one; the advisory lock lets one place at a time.
async fn sequence(pool: PgPool, busy: Duration, placed: Arc<watch::Sender<Placed>>) {
    // Where the feed ends when this instance starts: the hub goes on from there.
    if let Ok(ends) = db::events::ends(&pool).await {
        placed.send_if_modified(|known| known.raise(ends.last_position, None));
    }
    let mut pause = busy;
    loop {
        tokio::time::sleep(pause).await;
        match db::events::sequence(&pool).await {
            Ok(batch) => match batch.last().map(|last| last.position) {
                Some(last_position) => {
                    placed.send_if_modified(|known| known.raise(last_position, Some(batch.into())));
                    pause = busy;
                }
                None => pause = (pause * 2).min(IDLE_SEQUENCE_INTERVAL).max(busy),
            },
            Err(error) => {
                tracing::warn!(%error, "could not place events in the feed");
                pause = IDLE_SEQUENCE_INTERVAL;
            }
        }
    }
}

/// Hears other instances' sequencers. A connection of its own (outside the request pool),
/// reconnected after an outage; the hub's own polling covers the gap.
async fn listen(pool: PgPool, placed: Arc<watch::Sender<Placed>>) {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    loop {
        let mut listener = match PgListener::connect_with(&own).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "event listener cannot connect; retrying");
                tokio::time::sleep(HUB_POLL).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::debug!(%error, "event listener cannot listen; retrying");
            tokio::time::sleep(HUB_POLL).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(notification) => {
                    if let Ok(position) = notification.payload().parse::<i64>() {
                        placed.send_if_modified(|known| known.raise(position, None));
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "event listener lost its connection");
                    break;
                }
            }
        }
    }
}

/// Reads what was placed since it last looked, once for all subscribers, and hands it out.
async fn publish(hub: Arc<Hub>, mut placed: watch::Receiver<Placed>) {
    loop {
        let Placed {
            last_position: target,
            mut batch,
        } = placed.borrow_and_update().clone();
        let target = if target > hub.position.load(Ordering::Acquire) {
            target
        } else {
            batch = None;
            // Not told of anything new: look at the feed's end now and then anyway.
            match tokio::time::timeout(HUB_POLL, placed.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return,
                Err(_) => match db::events::ends(&hub.background).await {
                    Ok(ends) => ends.last_position,
                    Err(_) => continue,
                },
            }
        };
        if let Err(error) = catch_up_hub(&hub, target, batch).await {
            tracing::warn!(%error, "could not read the feed for live subscribers");
            tokio::time::sleep(HUB_POLL).await;
        }
    }
}

/// Hands out the events up to `target`: `batch` (which ends there) as it is when it starts
/// right after the hub's position (this instance cut it), else read from the database.
async fn catch_up_hub(
    hub: &Hub,
    target: i64,
    batch: Option<Arc<[Event]>>,
) -> Result<(), db::DbError> {
    let mut position = hub.position.load(Ordering::Acquire);
    if position < 0 || hub.published.receiver_count() == 0 {
        // Nobody to tell (or just started): a subscriber catches up from the database on
        // its own, from its own cursor, up to where the hub goes on.
        hub.position.store(target, Ordering::Release);
        return Ok(());
    }
    if let Some(batch) =
        batch.filter(|batch| batch.first().map(|first| first.position) == Some(position + 1))
    {
        // No receivers left is no error: the next call skips ahead.
        let _ = hub.published.send(Arc::new(Published::new(batch)));
        hub.position.store(target, Ordering::Release);
        return Ok(());
    }
    while position < target {
        let events = db::events::newer(&hub.background, position, BATCH).await?;
        let Some(last) = events.last() else { break };
        position = last.position;
        // No receivers left is no error: the next call skips ahead.
        let _ = hub.published.send(Arc::new(Published::new(events.into())));
        hub.position.store(position, Ordering::Release);
    }
    hub.position.fetch_max(target, Ordering::AcqRel);
    Ok(())
}

async fn until_closed(mut closed: watch::Receiver<bool>) {
    // An error is the hub gone: closed all the same.
    let _ = closed.wait_for(|closed| *closed).await;
}

struct Subscription {
    hub: Arc<Hub>,
    principal: Principal,
    query: FeedQuery,
    /// What the caller may read, as the database last said.
    projects: Arc<HashSet<Uuid>>,
    /// Newer answers to that, from the hub's rechecks and the caller's other streams.
    access: watch::Receiver<KeyAccess>,
    /// The position of the last event the caller was sent or passed over.
    after: i64,
    sender: mpsc::Sender<Event>,
}

/// Why a subscription ends early.
enum End {
    /// The client went away, or the instance is shutting down.
    Closed,
    /// The caller lost access to something it followed, or its key.
    AccessLost,
}

impl Subscription {
    async fn run(mut self, mut live: broadcast::Receiver<Arc<Published>>) {
        let ended = loop {
            if let Err(end) = self.catch_up().await {
                break end;
            }
            match self.follow(&mut live).await {
                // Too far behind the hub: back to the database from where it is.
                Ok(()) => live = live.resubscribe(),
                Err(end) => break end,
            }
        };
        if matches!(ended, End::AccessLost) {
            tracing::debug!(user = %self.principal.user_id, "live feed ended: access lost");
        }
    }

    /// Sends what the database holds after `after`, the caller's access applied in the
    /// statement, until it has read up to the feed's end.
    async fn catch_up(&mut self) -> Result<(), End> {
        loop {
            let page = db::events::page(
                &self.hub.pool,
                self.principal.access(),
                &self.query,
                self.after,
                BATCH,
            )
            .await
            .map_err(|_| End::Closed)?;
            for event in page.events {
                self.send(event).await?;
            }
            self.after = page.read_through;
            if self.after >= page.ends.last_position {
                return Ok(());
            }
        }
    }

    /// Passes on the hub's events until the hub has dropped some for being too far ahead
    /// (`Ok`), or the subscription ends.
    async fn follow(&mut self, live: &mut broadcast::Receiver<Arc<Published>>) -> Result<(), End> {
        let closed = until_closed(self.hub.closed.subscribe());
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = self.sender.closed() => return Err(End::Closed),
                () = &mut closed => return Err(End::Closed),
                changed = self.access.changed() => match changed {
                    Ok(()) => {
                        let now = self.access.borrow_and_update().projects.clone();
                        self.keep_reading(now)?;
                    }
                    Err(_) => return Err(End::Closed),
                },
                received = live.recv() => match received {
                    Ok(batch) => {
                        // A subscriber of one project passes over the rest unseen: what
                        // it may learn there (a member change) is not about what it follows.
                        for event in batch.of(self.query.project_id) {
                            self.pass_on(event).await?;
                        }
                        if let Some(last) = batch.last_position() {
                            self.after = self.after.max(last);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return Ok(()),
                    Err(broadcast::error::RecvError::Closed) => return Err(End::Closed),
                },
            }
        }
    }

    async fn pass_on(&mut self, event: &Event) -> Result<(), End> {
        if event.position <= self.after {
            return Ok(());
        }
        if event.member_changed() == Some(self.principal.user_id.as_str()) {
            self.recheck().await?;
        }
        self.after = event.position;
        if self.projects.contains(&event.project_id) && self.query.wants(event) {
            self.send(event.clone()).await?;
        }
        Ok(())
    }

    async fn send(&self, event: Event) -> Result<(), End> {
        self.sender.send(event).await.map_err(|_| End::Closed)
    }

    /// Asks the database what the caller may read now (its membership changed), and tells
    /// the caller's other streams too.
    async fn recheck(&mut self) -> Result<(), End> {
        let key = self.principal.key_id;
        let answer = KeyAccess::ask(&self.hub.pool, key)
            .await
            .map_err(|_| End::Closed)?;
        self.hub.tell_access([(key, answer.clone())]);
        self.keep_reading(answer.projects)
    }

    /// Follows `now`, what the caller may read. A project it could read and cannot any more
    /// (or a key revoked) ends the subscription: the client reconnects and learns where it
    /// stands, rather than silently being told less.
    fn keep_reading(&mut self, now: Option<Arc<HashSet<Uuid>>>) -> Result<(), End> {
        let Some(now) = now else {
            return Err(End::AccessLost);
        };
        if !self.projects.is_subset(&now) {
            return Err(End::AccessLost);
        }
        self.projects = now;
        Ok(())
    }
}
