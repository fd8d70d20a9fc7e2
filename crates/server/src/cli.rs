//! The admin commands of `switchyard`: the same operations as the admin
//! API, on the instance's storage directly, for scripts (`--json`, exit
//! status 1 with a message on error).

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_catalog::{Catalog, Definition, SettingType};

use crate::AppState;
use crate::boot;
use crate::config::{DeliveryConfig, StoreConfig};
use crate::service::{AddConnection, Admin, ConnectionView, SourceView, UpdateConnection};

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// List sources.
    List,
    /// Create a source; prints its write key.
    Create { name: String },
    /// Show one source.
    Show { id: String },
    /// Rename a source.
    Rename { id: String, name: String },
    /// Give a source a new write key; the old one stops working.
    RotateKey { id: String },
    /// Delete a source and its connections.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List a source's connections, with warnings.
    List { source: String },
    /// Connect a destination to a source.
    Add {
        source: String,
        /// The destination's catalog slug, e.g. `mixpanel`.
        destination: String,
        /// `device` or `cloud`; needed when the destination has both.
        #[arg(long)]
        mode: Option<String>,
        /// A setting, `key=value`; repeat for each.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Enable it at once.
        #[arg(long)]
        enable: bool,
    },
    /// Show one connection.
    Show { id: String },
    /// Change a connection's settings or mode.
    Set {
        id: String,
        #[arg(long)]
        mode: Option<String>,
        /// A setting, `key=value`; `key=` removes it.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Enable a connection.
    Enable { id: String },
    /// Disable a connection.
    Disable { id: String },
    /// Remove a connection.
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// A cloud connection's delivery: cursor, events behind, dead letters.
    Status { connection: String },
    /// List a connection's dead letters, oldest first.
    DeadLetters {
        connection: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead letters again (all, or those given with --id), now.
    Retry {
        connection: String,
        #[arg(long = "id")]
        ids: Vec<i64>,
    },
    /// Discard dead letters (all, or those given with --id).
    Discard {
        connection: String,
        #[arg(long = "id")]
        ids: Vec<i64>,
    },
    /// Re-send the events received in a time range (RFC 3339), now.
    Replay {
        connection: String,
        #[arg(long)]
        from: String,
        /// Now when absent.
        #[arg(long)]
        to: Option<String>,
    },
    /// Send one event (a sample Order Completed, or --event JSON) now and
    /// show each request and the vendor's answer.
    Test {
        connection: String,
        #[arg(long)]
        event: Option<String>,
    },
}

/// Output either as JSON or as lines for people.
pub struct Output {
    pub json: bool,
}

impl Output {
    fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&mut String)) -> anyhow::Result<()> {
        let mut text = String::new();
        if self.json {
            text = serde_json::to_string_pretty(value)?;
            text.push('\n');
        } else {
            human(&mut text);
        }
        std::io::stdout().write_all(text.as_bytes())?;
        Ok(())
    }
}

/// `switchyard deliveries ...`: cloud delivery's durable state, and the
/// operations that send (retry, replay, test), run here until they end.
pub async fn deliveries(
    state: &AppState,
    cmd: DeliveriesCommand,
    out: &Output,
) -> anyhow::Result<()> {
    let done = deliveries_run(state, cmd, out).await;
    // What this process delivered counts with the rest.
    state.delivery.flush().await;
    done
}

async fn deliveries_run(
    state: &AppState,
    cmd: DeliveriesCommand,
    out: &Output,
) -> anyhow::Result<()> {
    let admin = Admin::new(state);
    let ids = |ids: Vec<i64>| (!ids.is_empty()).then_some(ids);
    match cmd {
        DeliveriesCommand::Status { connection } => {
            let c = admin.cloud_connection(&connection).await?;
            let o = state.delivery.overview(&c).await?;
            let failures = state.delivery.failures(&c.id).await?;
            let mut status = serde_json::to_value(&o)?;
            status["destination"] = c.destination.clone().into();
            status["enabled"] = c.enabled.into();
            status["recent_failures"] = serde_json::to_value(&failures)?;
            out.emit(&status, |t| status_lines(&c, &o, &failures, t))
        }
        DeliveriesCommand::DeadLetters { connection, limit } => {
            admin.connection_stored(&connection).await?;
            if !(1..=100_000).contains(&limit) {
                bail!("--limit must be from 1 to 100000");
            }
            let letters = state
                .delivery_store
                .dead_letters(&connection, limit)
                .await?;
            let rows: Vec<Value> = letters
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "id": d.id, "message_id": d.message_id, "reason": d.reason,
                        "attempts": d.attempts, "failed_at": d.failed_at,
                        "event": serde_json::from_str::<Value>(&d.event).unwrap_or(Value::Null),
                        "request": d.request, "response": d.response,
                    })
                })
                .collect();
            out.emit(&rows, |t| {
                if letters.is_empty() {
                    t.push_str("no dead letters\n");
                }
                for d in &letters {
                    t.push_str(&format!(
                        "{}  {}  {}  {} attempt(s)  {}\n",
                        d.id, d.failed_at, d.message_id, d.attempts, d.reason
                    ));
                }
            })
        }
        DeliveriesCommand::Retry {
            connection,
            ids: given,
        } => {
            let c = admin.cloud_connection(&connection).await?;
            let (sent, left) = state.delivery.retry_dead_letters_now(c, ids(given)).await?;
            let result = serde_json::json!({"retried": sent, "dead_letters": left});
            out.emit(&result, |t| {
                t.push_str(&format!("retried {sent} dead letter(s); {left} left\n"))
            })
        }
        DeliveriesCommand::Discard {
            connection,
            ids: given,
        } => {
            admin.connection_stored(&connection).await?;
            let given = ids(given);
            let n = state
                .delivery_store
                .remove_dead_letters(&connection, given.as_deref())
                .await?;
            let result = serde_json::json!({"discarded": n});
            out.emit(&result, |t| t.push_str(&format!("discarded {n}\n")))
        }
        DeliveriesCommand::Replay {
            connection,
            from,
            to,
        } => {
            let c = admin.cloud_connection(&connection).await?;
            let to = to.unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            });
            let started = state.delivery.replay(c, from, to).await?;
            // Progress on stderr while it runs, the result on stdout.
            let mut shown = (u64::MAX, u64::MAX);
            let r = loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let Some(r) = state.delivery.replay_status(&started.id).await? else {
                    bail!("replay {} is gone", started.id);
                };
                if r.done {
                    break r;
                }
                if (r.read, r.delivered) != shown {
                    shown = (r.read, r.delivered);
                    eprintln!(
                        "replay {}: {} read, {} delivered, {} dead-lettered so far",
                        r.id, r.read, r.delivered, r.dead_lettered
                    );
                }
            };
            out.emit(&r, |t| {
                t.push_str(&format!(
                    "replayed {} to {}: {} read, {} delivered, {} filtered, {} dead-lettered{}\n",
                    r.from,
                    r.to,
                    r.read,
                    r.delivered,
                    r.filtered,
                    r.dead_lettered,
                    r.error
                        .as_deref()
                        .map_or(String::new(), |e| format!(" ({e})"))
                ))
            })?;
            if r.error.is_some() {
                bail!("the replay stopped");
            }
            Ok(())
        }
        DeliveriesCommand::Test { connection, event } => {
            let c = admin.cloud_connection(&connection).await?;
            let event: Value = match event {
                Some(text) => serde_json::from_str(&text).context("--event is not JSON")?,
                None => crate::routes::delivery::sample(),
            };
            if !event.is_object() {
                bail!(
                    "--event is not an object: give one Segment event, e.g. {{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u\"}}"
                );
            }
            let text = serde_json::json!({"batch": [event]}).to_string();
            let mut batch = switchyard_spec::parse_batch(text.as_bytes(), chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!("--event: {e}"))?;
            let normalized = batch.events.pop().context("--event is empty")?;
            let event: Value = serde_json::from_str(&normalized.json)?;
            let report = state.delivery.test_event(&c, event).await?;
            out.emit(&report, |t| {
                if let Some(why) = &report.skipped {
                    t.push_str(&format!("not sent: {why}\n"));
                }
                for x in &report.exchanges {
                    t.push_str(&format!("{}\n{}\n", x.outcome, x.request));
                    if let Some(r) = &x.response {
                        t.push_str(&format!("{r}\n"));
                    }
                }
            })
        }
    }
}

/// Opens the instance for an admin command: storage and catalog, no
/// server, no admin token needed (access to the data is the permission).
/// The longest run of non-blank characters a message shows whole.
const LONGEST_WORD: usize = 80;

/// `message` as it is safe to print on an operator's terminal: control
/// and bidirectional characters escaped (an echoed argument cannot move
/// the cursor or reorder the line), line breaks kept only where `lines`,
/// and a run of non-blank characters longer than 80 cut to its start.
pub fn printable(message: &str, lines: bool) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut run = 0;
    for c in message.chars() {
        if c == '\n' && lines {
            out.push(c);
            run = 0;
            continue;
        }
        if c.is_whitespace() && !c.is_control() {
            out.push(c);
            run = 0;
            continue;
        }
        run += 1;
        if run > LONGEST_WORD {
            if run == LONGEST_WORD + 1 {
                out.push('…');
            }
            continue;
        }
        if c.is_control() || crate::service::is_bidi(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

pub async fn state(store: &StoreConfig) -> anyhow::Result<AppState> {
    state_with(store, &DeliveryConfig::default()).await
}

/// [`state`], with delivery as `config` says (the `deliveries` commands
/// send, so they follow the operator's outbound allow-list and timeouts).
pub async fn state_with(store: &StoreConfig, config: &DeliveryConfig) -> anyhow::Result<AppState> {
    let stores = boot::open_stores(store).await?;
    let catalog = std::sync::Arc::new(boot::catalog()?);
    let engine = config
        .engine()
        .map_err(|e| anyhow::anyhow!("delivery settings: {e}"))?;
    let delivery = boot::delivery(&stores, catalog.clone(), engine)?;
    Ok(AppState {
        config: stores.config,
        events: stores.events,
        delivery_store: stores.delivery,
        delivery,
        metrics: Default::default(),
        metrics_public: false,
        live: tokio::sync::broadcast::channel(1).0,
        catalog,
        artifacts: std::sync::Arc::new(Err(switchyard_bundler::BundleError::Template)),
        admin_token: "".into(),
        public_url: None,
        loader_max_age: 0,
        public: Default::default(),
        limits: Default::default(),
        trusted_proxies: Default::default(),
        demo: false,
    })
}

fn status_lines(
    c: &switchyard_store::Connection,
    o: &switchyard_delivery::Overview,
    failures: &[switchyard_delivery::Failure],
    t: &mut String,
) {
    t.push_str(&format!(
        "{}  {}  {}  {}\n",
        c.id,
        c.destination,
        if c.enabled { "enabled" } else { "disabled" },
        if o.running {
            "delivering in this process"
        } else {
            "not delivering in this process"
        }
    ));
    t.push_str(&format!(
        "  cursor {}  {} event(s) behind  {} retrying ({} set aside)  {} dead letter(s)\n",
        o.cursor.map_or("none".into(), |c| c.to_string()),
        o.lag,
        o.retrying,
        o.set_aside,
        o.dead_letters
    ));
    for (label, w) in [("last hour", &o.last_hour), ("last day", &o.last_day)] {
        let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v} ms"));
        t.push_str(&format!(
            "  {label:<9}  received {}  delivered {}  dead-lettered {}  failed attempts {}  latency p50 {} p99 {}\n",
            w.received,
            w.delivered,
            w.dead_lettered,
            w.failed_attempts,
            ms(w.latency_p50_ms),
            ms(w.latency_p99_ms)
        ));
        if !w.filtered.is_empty() {
            let reasons: Vec<String> = w
                .filtered
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            t.push_str(&format!("             filtered: {}\n", reasons.join(", ")));
        }
    }
    if failures.is_empty() {
        t.push_str("  no recent failures\n");
    }
    for f in failures.iter().take(5) {
        let first = f
            .response
            .as_deref()
            .and_then(|r| r.lines().next())
            .unwrap_or("no answer");
        t.push_str(&format!(
            "  {}  {}  {}  {}  ({})\n",
            f.at,
            f.outcome,
            f.message_ids.join(","),
            f.reason,
            first
        ));
    }
}

fn source_line(s: &SourceView, out: &mut String) {
    out.push_str(&format!(
        "{}  {}  write key {}  revision {}  {} connection(s)  sends: {}\n",
        s.id,
        s.name,
        s.write_key,
        s.revision,
        s.connections,
        if s.methods.is_empty() {
            "nothing yet".into()
        } else {
            s.methods.join(", ")
        }
    ));
}

fn connection_lines(c: &ConnectionView, out: &mut String) {
    out.push_str(&format!(
        "{}  {} ({})  {} mode  {}\n",
        c.id,
        c.destination_name,
        c.destination,
        c.mode.as_str(),
        if c.enabled { "enabled" } else { "disabled" }
    ));
    for (k, v) in &c.settings {
        out.push_str(&format!(
            "    {k} = {}\n",
            v.as_str().map_or_else(|| v.to_string(), str::to_string)
        ));
    }
    for w in &c.warnings {
        out.push_str(&format!("    warning: {}\n", w.message));
    }
}

pub async fn catalog(
    catalog: &Catalog,
    query: Option<&str>,
    category: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let found: Vec<&Definition> = catalog.search(query, category);
    if category.is_some() && found.is_empty() && catalog.search(None, category).is_empty() {
        let names: Vec<&str> = switchyard_catalog::Category::ALL
            .iter()
            .map(|c| c.name())
            .collect();
        bail!(
            "unknown category `{}`: use one of {}",
            category.unwrap_or_default(),
            names.join(", ")
        );
    }
    out.emit(&found, |text| {
        for d in &found {
            let categories: Vec<&str> = d.categories.iter().map(|c| c.name()).collect();
            let modes: Vec<String> = d
                .modes
                .iter()
                .map(|m| {
                    let mut s = m.mode.as_str().to_string();
                    if !m.available {
                        s.push_str(" (not available yet)");
                    }
                    s
                })
                .collect();
            text.push_str(&format!(
                "{:<26} {:<28} {:<24} {}\n",
                d.slug,
                d.name,
                categories.join(", "),
                modes.join(", ")
            ));
        }
    })
}

pub async fn sources(state: &AppState, cmd: SourcesCommand, out: &Output) -> anyhow::Result<()> {
    let admin = Admin::new(state);
    match cmd {
        SourcesCommand::List => {
            let all = admin.sources().await?;
            out.emit(&all, |t| all.iter().for_each(|s| source_line(s, t)))
        }
        SourcesCommand::Create { name } => {
            let s = admin.create_source(Some(&name)).await?;
            out.emit(&s, |t| source_line(&s, t))
        }
        SourcesCommand::Show { id } => {
            let s = admin.source(&id).await?;
            out.emit(&s, |t| source_line(&s, t))
        }
        SourcesCommand::Rename { id, name } => {
            let s = admin.rename_source(&id, Some(&name)).await?;
            out.emit(&s, |t| source_line(&s, t))
        }
        SourcesCommand::RotateKey { id } => {
            let s = admin.rotate_write_key(&id).await?;
            out.emit(&s, |t| source_line(&s, t))
        }
        SourcesCommand::Delete { id } => {
            admin.delete_source(&id).await?;
            out.emit(&serde_json::json!({"deleted": id}), |t| {
                t.push_str(&format!("deleted {id}\n"))
            })
        }
    }
}

/// A number as typed: whole numbers stay integers (`5432`, not `5432.0`).
fn number(raw: &str) -> anyhow::Result<Value> {
    let raw = raw.trim();
    if let Ok(i) = raw.parse::<i64>() {
        return Ok(Value::from(i));
    }
    let f: f64 = raw.parse()?;
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .context("not a finite number")
}

/// Parses `key=value` pairs, typing each value by the destination's schema:
/// numbers and booleans parsed, lists split on commas, maps as JSON.
fn parse_settings(
    def: Option<&Definition>,
    pairs: &[String],
) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            bail!("`{pair}` is not KEY=VALUE");
        };
        let key = key.trim();
        let kind = def
            .and_then(|d| d.settings.iter().find(|s| s.key == key))
            .map(|s| s.kind);
        let value = if raw.is_empty() {
            Value::Null
        } else {
            match kind {
                Some(SettingType::Number) => {
                    number(raw).with_context(|| format!("{key}: `{raw}` is not a number"))?
                }
                Some(SettingType::Boolean) => match raw.trim() {
                    "true" | "yes" | "on" => Value::Bool(true),
                    "false" | "no" | "off" => Value::Bool(false),
                    _ => bail!("{key}: `{raw}` is not true or false"),
                },
                Some(SettingType::List) => Value::Array(
                    raw.split(',')
                        .map(|v| Value::String(v.trim().to_string()))
                        .filter(|v| v != "")
                        .collect(),
                ),
                Some(SettingType::Map) => serde_json::from_str(raw)
                    .with_context(|| format!("{key}: `{raw}` is not a JSON object"))?,
                _ => Value::String(raw.to_string()),
            }
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

pub async fn connections(
    state: &AppState,
    cmd: ConnectionsCommand,
    out: &Output,
) -> anyhow::Result<()> {
    let admin = Admin::new(state);
    let one = |c: ConnectionView| out.emit(&c, |t| connection_lines(&c, t));
    match cmd {
        ConnectionsCommand::List { source } => {
            let all = admin.connections(&source).await?;
            out.emit(&all, |t| all.iter().for_each(|c| connection_lines(c, t)))
        }
        ConnectionsCommand::Add {
            source,
            destination,
            mode,
            settings,
            enable,
        } => {
            let mut settings = parse_settings(state.catalog.get(&destination), &settings)?;
            settings.retain(|_, v| !v.is_null());
            let c = admin
                .add_connection(
                    &source,
                    AddConnection {
                        destination: Some(destination),
                        mode,
                        settings: Some(settings),
                        enabled: Some(enable),
                    },
                )
                .await?;
            one(c)
        }
        ConnectionsCommand::Show { id } => one(admin.connection(&id).await?),
        ConnectionsCommand::Set { id, mode, settings } => {
            let current = admin.connection(&id).await?;
            let settings = parse_settings(state.catalog.get(&current.destination), &settings)?;
            let update = UpdateConnection {
                mode,
                settings: (!settings.is_empty()).then_some(settings),
                enabled: None,
            };
            one(admin.update_connection(&id, update).await?)
        }
        ConnectionsCommand::Enable { id } => one(admin
            .update_connection(
                &id,
                UpdateConnection {
                    enabled: Some(true),
                    ..Default::default()
                },
            )
            .await?),
        ConnectionsCommand::Disable { id } => one(admin
            .update_connection(
                &id,
                UpdateConnection {
                    enabled: Some(false),
                    ..Default::default()
                },
            )
            .await?),
        ConnectionsCommand::Remove { id } => {
            admin.remove_connection(&id).await?;
            out.emit(&serde_json::json!({"deleted": id}), |t| {
                t.push_str(&format!("removed {id}\n"))
            })
        }
    }
}
