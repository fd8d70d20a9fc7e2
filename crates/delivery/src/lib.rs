//! Cloud-mode delivery: every enabled cloud connection has a worker that
//! reads its source's events from the durable log after the connection's
//! cursor, asks routing whether each event is for it, batches them to the
//! destination's limits, has the destination's pure forwarder build the
//! vendor's requests, sends them, and retries or dead-letters what fails.
//!
//! - A connection's worker never waits for another's: each is its own task,
//!   with its own pacing and backoff.
//! - At least once: the cursor moves after the vendor answered; a crash
//!   before that sends the batch again, and vendors dedupe by the key the
//!   forwarder takes from the messageId.
//! - A failing event does not block the ones behind it: a refused batch is
//!   split and each event sent alone, so only the refused one is
//!   dead-lettered; a batch that keeps failing retryably is halved, down
//!   to the one event, which is set aside (stored, retried on its own
//!   schedule, the cursor moving on) while the destination takes others.
//!   Everything retried is retried for the retry window, then
//!   dead-lettered.
//! - What delivery counts is stored every second, so the overview reads
//!   the same after a restart and from the CLI.
//!
//! This crate knows no HTTP status codes of its own API and decides no
//! routing: that is `switchyard_catalog::routing`.

pub mod outbound;
pub mod stats;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;
use switchyard_catalog::{Catalog, Definition, Mode, routing};
use switchyard_destinations::cloud::{Forwarder, Outcome, Settings};
use switchyard_store::{ConfigStore, Connection, DeliveryStore, EventLog, Handled, ReplayRecord};
use tokio::sync::watch;

pub use stats::{ConnectionStats, Failure, Point, Totals};
use worker::Describe;

/// How often what delivery counted is stored.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// The one error type of delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
}

/// How delivery behaves; every duration can be shortened for tests.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long an event is retried before it is dead-lettered.
    pub retry_window: Duration,
    /// The first backoff; each retry doubles it, with jitter, up to
    /// `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A vendor's request that takes longer than this is retried.
    pub request_timeout: Duration,
    /// How often workers look at the log when nothing woke them, and how
    /// often connections are looked at for changes.
    pub poll: Duration,
    /// Loopback, private and link-local addresses delivery may reach.
    pub allow: outbound::Allow,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            retry_window: Duration::from_secs(4 * 3600),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            request_timeout: Duration::from_secs(15),
            poll: Duration::from_millis(500),
            allow: outbound::Allow::default(),
        }
    }
}

/// What delivery needs from the rest of the server.
#[derive(Clone)]
pub struct Deps {
    pub config_store: Arc<dyn ConfigStore>,
    pub store: Arc<dyn DeliveryStore>,
    pub log: Arc<dyn EventLog>,
    pub catalog: Arc<Catalog>,
}

/// A replay's progress.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Replay {
    pub id: String,
    pub connection_id: String,
    pub from: String,
    pub to: String,
    /// Events of the range read so far.
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    pub dead_lettered: u64,
    pub done: bool,
    pub error: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

impl Replay {
    fn record(&self) -> ReplayRecord {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        ReplayRecord {
            id: self.id.clone(),
            connection_id: self.connection_id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            read: n(self.read),
            filtered: n(self.filtered),
            delivered: n(self.delivered),
            dead_lettered: n(self.dead_lettered),
            done: self.done,
            error: self.error.clone(),
            started_at: self.started_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    fn of(r: ReplayRecord) -> Replay {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Replay {
            id: r.id,
            connection_id: r.connection_id,
            from: r.from,
            to: r.to,
            read: n(r.read),
            filtered: n(r.filtered),
            delivered: n(r.delivered),
            dead_lettered: n(r.dead_lettered),
            done: r.done,
            error: r.error,
            started_at: r.started_at,
            updated_at: r.updated_at,
        }
    }
}

/// A connection's delivery at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub connection_id: String,
    /// Whether a worker is delivering for it now.
    pub running: bool,
    pub last_hour: Totals,
    pub last_day: Totals,
    /// Events waiting for a retry now: in place, and set aside.
    pub retrying: i64,
    /// Of those, the events set aside to be retried on their own.
    pub set_aside: i64,
    pub dead_letters: i64,
    /// Events of the source after the connection's cursor.
    pub lag: i64,
    pub cursor: Option<i64>,
    /// Delivered and failed per minute over the last hour.
    pub chart: Vec<Point>,
}

/// One request and its answer, as the event tester shows them.
#[derive(Debug, Clone, Serialize)]
pub struct TestExchange {
    pub request: String,
    pub status: Option<u16>,
    pub response: Option<String>,
    pub outcome: String,
}

/// The event tester's report.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Why the event would not be sent (routing or the destination), if so.
    pub skipped: Option<String>,
    pub exchanges: Vec<TestExchange>,
}

struct Running {
    connection: watch::Sender<Connection>,
    stop: watch::Sender<bool>,
}

pub(crate) struct Inner {
    pub(crate) deps: Deps,
    pub(crate) config: Config,
    pub(crate) http: reqwest::Client,
    /// Raised after every append: workers waiting for events wake up.
    pub(crate) appended: watch::Sender<u64>,
    workers: Mutex<HashMap<String, Running>>,
    stats: Mutex<HashMap<String, Arc<ConnectionStats>>>,
    /// The replays this process is running.
    replaying: Mutex<std::collections::HashSet<String>>,
    /// Wakes the supervisor after a configuration change.
    changed: tokio::sync::Notify,
}

/// The delivery engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// The destination's definition and forwarder, when its cloud mode is
/// usable.
fn cloud_of<'a>(
    catalog: &'a Catalog,
    destination: &str,
) -> Option<(&'a Definition, &'static dyn Forwarder)> {
    let def = catalog.get(destination)?;
    let forwarder = switchyard_destinations::forwarder(destination)?;
    Some((def, forwarder))
}

pub(crate) fn settings_of(connection: &Connection) -> Settings {
    serde_json::from_str(&connection.settings).unwrap_or_default()
}

impl Engine {
    /// Builds the engine; nothing runs until [`Engine::start`].
    pub fn new(deps: Deps, config: Config) -> Result<Engine, DeliveryError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(outbound::Resolver {
                allow: Arc::new(config.allow.clone()),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                deps,
                config,
                http,
                appended: watch::channel(0).0,
                workers: Mutex::new(HashMap::new()),
                stats: Mutex::new(HashMap::new()),
                replaying: Mutex::new(std::collections::HashSet::new()),
                changed: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Starts the supervisor, which keeps one worker per enabled cloud
    /// connection, on the current tokio runtime.
    pub fn start(&self) {
        let engine = self.clone();
        tokio::spawn(async move { engine.supervise().await });
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(STATS_EVERY).await;
                engine.flush().await;
            }
        });
    }

    /// Stores what every connection counted since the last flush; what
    /// cannot be stored now is kept for the next.
    pub async fn flush(&self) {
        let all = self.all_stats();
        let mut minutes = Vec::new();
        let mut failures = Vec::new();
        let mut taken = Vec::new();
        for (id, stats) in &all {
            let (m, f) = stats.take(id);
            if !m.is_empty() || !f.is_empty() {
                taken.push((stats.clone(), m.clone(), f.clone()));
            }
            minutes.extend(m);
            failures.extend(f);
        }
        if taken.is_empty() {
            return;
        }
        let store = &self.inner.deps.store;
        let stored = match store.add_stats(minutes).await {
            Ok(()) => store.add_failures(failures).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            tracing::warn!("delivery: cannot store the statistics: {e}");
            for (stats, m, f) in taken {
                stats.put_back(m, f);
            }
        }
    }

    /// Tells the workers that events were appended.
    pub fn appended(&self) {
        self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Tells the supervisor the configuration changed, so a disabled
    /// connection stops and a new one starts at once.
    pub fn config_changed(&self) {
        self.inner.changed.notify_one();
    }

    pub(crate) fn stats_of(&self, connection_id: &str) -> Arc<ConnectionStats> {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(connection_id.to_string())
            .or_default()
            .clone()
    }

    async fn supervise(&self) {
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!("delivery: cannot read the connections: {e}");
            }
            let _ =
                tokio::time::timeout(self.inner.config.poll, self.inner.changed.notified()).await;
        }
    }

    /// Starts a worker for each enabled cloud connection that has none,
    /// hands changed settings to running ones, and stops the others.
    pub async fn reconcile(&self) -> Result<(), DeliveryError> {
        let deps = &self.inner.deps;
        let mut active: HashMap<String, Connection> = HashMap::new();
        for source in deps.config_store.sources().await? {
            for c in deps.config_store.connections(&source.id).await? {
                let Some((def, _)) = cloud_of(&deps.catalog, &c.destination) else {
                    continue;
                };
                if routing::active_mode(def, c.mode, c.enabled) == Some(Mode::Cloud) {
                    active.insert(c.id.clone(), c);
                }
            }
        }
        let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.retain(|id, running| {
            let keep = active.contains_key(id);
            if !keep {
                let _ = running.stop.send(true);
            }
            keep
        });
        for (id, connection) in active {
            match workers.get(&id) {
                Some(running) => {
                    if *running.connection.borrow() != connection {
                        let _ = running.connection.send(connection);
                    }
                }
                None => {
                    let (connection_tx, connection_rx) = watch::channel(connection);
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let worker = worker::Worker::new(self.clone(), connection_rx, stop_rx);
                    tokio::spawn(worker.run());
                    workers.insert(
                        id,
                        Running {
                            connection: connection_tx,
                            stop: stop_tx,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether a worker is delivering for the connection now.
    pub fn is_running(&self, connection_id: &str) -> bool {
        self.inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(connection_id)
    }

    /// The connection's delivery overview.
    pub async fn overview(&self, connection: &Connection) -> Result<Overview, DeliveryError> {
        self.flush().await;
        let deps = &self.inner.deps;
        let in_place = self.stats_of(&connection.id).retrying_now();
        let cursor = deps.store.cursor(&connection.id).await?;
        let lag = match cursor {
            Some(c) => deps.log.count_after(&connection.source_id, c).await?,
            None => 0,
        };
        let rows = deps
            .store
            .stats(&connection.id, stats::now_minute() - 24 * 60)
            .await?;
        let set_aside = deps.store.retry_count(&connection.id).await?;
        Ok(Overview {
            connection_id: connection.id.clone(),
            running: self.is_running(&connection.id),
            last_hour: stats::totals(&rows, 60),
            last_day: stats::totals(&rows, 24 * 60),
            retrying: in_place + set_aside,
            set_aside,
            dead_letters: deps.store.dead_letter_count(&connection.id).await?,
            lag,
            cursor,
            chart: stats::chart(&rows, 60),
        })
    }

    /// The connection's recent failed attempts, newest first.
    pub async fn failures(&self, connection_id: &str) -> Result<Vec<Failure>, DeliveryError> {
        self.flush().await;
        let records = self
            .inner
            .deps
            .store
            .failures(connection_id, switchyard_store::FAILURES_KEPT)
            .await?;
        Ok(records.into_iter().map(Failure::from).collect())
    }

    /// Puts a connection's cursor at the head of the log: it gets what
    /// arrives from now on (a new or re-enabled connection).
    pub async fn start_at_head(&self, connection_id: &str) -> Result<(), DeliveryError> {
        let head = self.inner.deps.log.head().await?;
        self.inner
            .deps
            .store
            .advance(connection_id, head, Handled::default())
            .await?;
        Ok(())
    }

    /// The statistics of every connection delivery has seen, by id.
    pub fn all_stats(&self) -> Vec<(String, Arc<ConnectionStats>)> {
        let stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = stats.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn connection_parts(
        &self,
        connection: &Connection,
    ) -> Result<(&Definition, &'static dyn Forwarder), DeliveryError> {
        cloud_of(&self.inner.deps.catalog, &connection.destination).ok_or_else(|| {
            DeliveryError::Invalid(format!(
                "{} has no cloud mode to deliver with",
                connection.destination
            ))
        })
    }

    /// Sends one event to the connection now, once, without retries, and
    /// reports each request and answer (secrets redacted).
    pub async fn test_event(
        &self,
        connection: &Connection,
        event: Json,
    ) -> Result<TestReport, DeliveryError> {
        let (def, forwarder) = self.connection_parts(connection)?;
        if let Err(skip) = routing::route(def, Mode::Cloud, &event) {
            return Ok(TestReport {
                skipped: Some(skip.as_str().to_string()),
                exchanges: Vec::new(),
            });
        }
        let settings = settings_of(connection);
        let built = forwarder.build(std::slice::from_ref(&event), &settings);
        if let Some((_, reason)) = built.skipped.first().or(built.rejected.first()) {
            return Ok(TestReport {
                skipped: Some(reason.clone()),
                exchanges: Vec::new(),
            });
        }
        let secrets = worker::secrets(def, &settings);
        let mut exchanges = Vec::new();
        for first in built.requests {
            // A follow-up the vendor's answer asks for is sent too, once.
            let mut next = Some((first, true));
            while let Some((request, may_follow)) = next.take() {
                let (outcome, answer) = worker::attempt(&self.inner, forwarder, &request).await;
                exchanges.push(TestExchange {
                    request: worker::describe_request(&request, &secrets),
                    status: answer.as_ref().map(|a| a.status),
                    response: answer.as_ref().map(|a| worker::redact(&a.text(), &secrets)),
                    outcome: worker::redact(&outcome.describe(), &secrets),
                });
                if let Outcome::Then(follow) = outcome
                    && may_follow
                {
                    next = Some((*follow, false));
                }
            }
        }
        Ok(TestReport {
            skipped: None,
            exchanges,
        })
    }

    /// Re-sends the connection's events received from `from` to `to` (RFC
    /// 3339) in the background; its progress is [`Engine::replay_status`].
    pub async fn replay(
        &self,
        connection: Connection,
        from: String,
        to: String,
    ) -> Result<Replay, DeliveryError> {
        let replay = self.new_replay(&connection, &from, &to).await?;
        let engine = self.clone();
        let started = replay.clone();
        tokio::spawn(async move { worker::replay(engine, connection, started).await });
        Ok(replay)
    }

    /// [`Engine::replay`], waiting for it to end: the replay as it ended.
    pub async fn replay_now(
        &self,
        connection: Connection,
        from: String,
        to: String,
    ) -> Result<Replay, DeliveryError> {
        let replay = self.new_replay(&connection, &from, &to).await?;
        let id = replay.id.clone();
        worker::replay(self.clone(), connection, replay).await;
        self.replay_status(&id)
            .await?
            .ok_or_else(|| DeliveryError::NotFound(format!("replay {id}")))
    }

    async fn new_replay(
        &self,
        connection: &Connection,
        from: &str,
        to: &str,
    ) -> Result<Replay, DeliveryError> {
        self.connection_parts(connection)?;
        for (what, t) in [("from", from), ("to", to)] {
            if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                return Err(DeliveryError::Invalid(format!(
                    "`{what}` must be an RFC 3339 date and time, e.g. 2026-12-01T00:00:00Z"
                )));
            }
        }
        let (from, to) = (normal_time(from), normal_time(to));
        if from > to {
            return Err(DeliveryError::Invalid("`from` is after `to`".into()));
        }
        let at = worker::now();
        let replay = Replay {
            id: format!("rpl_{:016x}", rand::random::<u64>()),
            connection_id: connection.id.clone(),
            from,
            to,
            started_at: at.clone(),
            updated_at: at,
            ..Replay::default()
        };
        self.inner.deps.store.save_replay(replay.record()).await?;
        self.replaying().insert(replay.id.clone());
        Ok(replay)
    }

    fn replaying(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner
            .replaying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a replay's progress; one that is done is no longer this
    /// process's to run.
    pub(crate) async fn save_replay(&self, replay: &Replay) {
        let mut record = replay.record();
        record.updated_at = worker::now();
        if let Err(e) = self.inner.deps.store.save_replay(record).await {
            tracing::warn!("delivery: cannot save the progress of {}: {e}", replay.id);
        }
        if replay.done {
            self.replaying().remove(&replay.id);
        }
    }

    /// A replay that did not end and that no process runs (the server
    /// stopped during it) is shown ended, with why.
    fn as_seen(&self, r: ReplayRecord) -> Replay {
        let mut replay = Replay::of(r);
        if !replay.done && !self.replaying().contains(&replay.id) {
            replay.done = true;
            replay.error = Some(
                "the server stopped before the replay ended; start it again to send the rest"
                    .into(),
            );
        }
        replay
    }

    pub async fn replay_status(&self, id: &str) -> Result<Option<Replay>, DeliveryError> {
        let record = self.inner.deps.store.replay(id).await?;
        Ok(record.map(|r| self.as_seen(r)))
    }

    /// The replays of a connection, newest first.
    pub async fn replays(&self, connection_id: &str) -> Result<Vec<Replay>, DeliveryError> {
        let records = self.inner.deps.store.replays(connection_id, 50).await?;
        Ok(records.into_iter().map(|r| self.as_seen(r)).collect())
    }

    /// Sends the connection's dead letters (the given ids, or all) again,
    /// in the background: each delivered one is removed, each failing one
    /// is dead-lettered again with its new reason. Returns how many go.
    pub async fn retry_dead_letters(
        &self,
        connection: Connection,
        ids: Option<Vec<i64>>,
    ) -> Result<usize, DeliveryError> {
        let letters = self.dead_letters_of(&connection, ids).await?;
        let n = letters.len();
        let engine = self.clone();
        tokio::spawn(async move { worker::retry_dead_letters(engine, connection, letters).await });
        Ok(n)
    }

    /// [`Engine::retry_dead_letters`], waiting for it to end; returns how
    /// many were sent and how many are dead letters still.
    pub async fn retry_dead_letters_now(
        &self,
        connection: Connection,
        ids: Option<Vec<i64>>,
    ) -> Result<(usize, i64), DeliveryError> {
        let letters = self.dead_letters_of(&connection, ids).await?;
        let n = letters.len();
        worker::retry_dead_letters(self.clone(), connection.clone(), letters).await;
        let left = self
            .inner
            .deps
            .store
            .dead_letter_count(&connection.id)
            .await?;
        Ok((n, left))
    }

    async fn dead_letters_of(
        &self,
        connection: &Connection,
        ids: Option<Vec<i64>>,
    ) -> Result<Vec<switchyard_store::DeadLetter>, DeliveryError> {
        self.connection_parts(connection)?;
        let store = &self.inner.deps.store;
        let mut letters = store.dead_letters(&connection.id, 100_000).await?;
        if let Some(ids) = &ids {
            letters.retain(|d| ids.contains(&d.id));
        }
        Ok(letters)
    }
}

/// An RFC 3339 time as the log stores `received_at`: UTC, milliseconds.
fn normal_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_else(|_| t.to_string())
}
