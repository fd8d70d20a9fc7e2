//! The site owner's operations on sources and connections, shared by the
//! admin API and the command line: validation against the catalog,
//! warnings, and secret settings kept write-only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_catalog::{Definition, Method, Mode, routing, validate_settings};
use switchyard_store::{Connection, ConnectionUpdate, NewConnection, Source};

use crate::{AppError, AppState};

/// What a secret setting reads as once saved: it is write-only.
pub const SECRET_MASK: &str = "••••••••";

/// The longest source name accepted, in characters.
const MAX_NAME: usize = 200;

/// A source as the API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub id: String,
    pub name: String,
    pub write_key: String,
    pub revision: i64,
    pub created_at: String,
    /// The calls this source has sent (`page`, `track`, ...).
    pub methods: Vec<String>,
    pub connections: usize,
}

/// Something about a connection the site owner should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `unsupported_methods`, `mode_unavailable`, `mode_unsupported`,
    /// `duplicate`, `unknown_destination`.
    pub code: &'static str,
    pub message: String,
}

/// A connection as the API and CLI show it: secrets masked, with warnings.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub source_id: String,
    pub destination: String,
    pub destination_name: String,
    pub mode: Mode,
    pub enabled: bool,
    pub settings: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub warnings: Vec<Warning>,
}

/// `POST /api/sources/{id}/connections`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddConnection {
    pub destination: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub settings: Option<Map<String, Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /api/connections/{id}`: each field optional. `settings` are
/// merged into the saved ones; a key set to `null` is removed, and a secret
/// sent back as [`SECRET_MASK`] keeps its saved value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    pub enabled: Option<bool>,
    pub mode: Option<String>,
    pub settings: Option<Map<String, Value>>,
}

/// The admin operations over one app state.
pub struct Admin<'a> {
    state: &'a AppState,
}

fn parse_mode(mode: Option<&str>, def: &Definition) -> Result<Mode, AppError> {
    let names: Vec<&str> = def.modes.iter().map(|m| m.mode.as_str()).collect();
    let choose = || ["choose one of: ", &names.join(", ")].concat();
    let mode = match mode {
        None | Some("") if def.modes.len() == 1 => return Ok(def.modes[0].mode),
        None | Some("") => {
            return Err(AppError::unprocessable(
                "mode",
                ["mode is required: ", &choose()].concat(),
            ));
        }
        Some("device") => Mode::Device,
        Some("cloud") => Mode::Cloud,
        Some(other) => {
            return Err(AppError::unprocessable(
                "mode",
                ["unknown mode `", other, "`: ", &choose()].concat(),
            ));
        }
    };
    if def.mode(mode).is_none() {
        return Err(AppError::unprocessable(
            "mode",
            [&def.name, " has no ", mode.as_str(), " mode: ", &choose()].concat(),
        ));
    }
    Ok(mode)
}

fn validate(
    def: &Definition,
    mode: Mode,
    settings: &Map<String, Value>,
) -> Result<Map<String, Value>, AppError> {
    validate_settings(def, mode, settings)
        .map_err(|e| AppError::unprocessable(["settings.", &e.field].concat(), e.to_string()))
}

/// Characters that reorder the text around them (Unicode's bidirectional
/// embeddings, overrides, isolates and marks).
pub fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn check_name(name: Option<&str>) -> Result<String, AppError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AppError::unprocessable("name", "name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::unprocessable(
            "name",
            "name must be at most 200 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "name",
            "name must not contain control characters",
        ));
    }
    if name.chars().any(is_bidi) {
        return Err(AppError::unprocessable(
            "name",
            "name must not contain characters that reorder text (bidirectional controls)",
        ));
    }
    Ok(name.to_string())
}

impl<'a> Admin<'a> {
    pub fn new(state: &'a AppState) -> Admin<'a> {
        Admin { state }
    }

    fn definition(&self, slug: &str) -> Option<&'a Definition> {
        self.state.catalog.get(slug)
    }

    async fn source_row(&self, id: &str) -> Result<Source, AppError> {
        self.state
            .config
            .source(id)
            .await?
            .ok_or_else(|| AppError::NotFound(["no source ", id].concat()))
    }

    async fn connection_row(&self, id: &str) -> Result<Connection, AppError> {
        self.state
            .config
            .connection(id)
            .await?
            .ok_or_else(|| AppError::NotFound(["no connection ", id].concat()))
    }

    async fn source_view(&self, s: Source) -> Result<SourceView, AppError> {
        let methods = self.state.events.methods_seen(&s.id).await?;
        let connections = self.state.config.connections(&s.id).await?.len();
        Ok(SourceView {
            id: s.id,
            name: s.name,
            write_key: s.write_key,
            revision: s.revision,
            created_at: s.created_at,
            methods,
            connections,
        })
    }

    pub async fn sources(&self) -> Result<Vec<SourceView>, AppError> {
        let mut out = Vec::new();
        for s in self.state.config.sources().await? {
            out.push(self.source_view(s).await?);
        }
        Ok(out)
    }

    pub async fn source(&self, id: &str) -> Result<SourceView, AppError> {
        let s = self.source_row(id).await?;
        self.source_view(s).await
    }

    pub async fn create_source(&self, name: Option<&str>) -> Result<SourceView, AppError> {
        let name = check_name(name)?;
        let s = self.state.config.create_source(&name).await?;
        self.source_view(s).await
    }

    pub async fn rename_source(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<SourceView, AppError> {
        let name = check_name(name)?;
        self.source_row(id).await?;
        let s = self.state.config.rename_source(id, &name).await?;
        self.state.public.forget();
        self.source_view(s).await
    }

    pub async fn rotate_write_key(&self, id: &str) -> Result<SourceView, AppError> {
        self.source_row(id).await?;
        let s = self.state.config.rotate_write_key(id).await?;
        self.state.public.forget();
        self.source_view(s).await
    }

    pub async fn delete_source(&self, id: &str) -> Result<(), AppError> {
        self.source_row(id).await?;
        self.state.config.delete_source(id).await?;
        self.state.public.forget();
        Ok(())
    }

    /// A source's connections, each with its warnings.
    pub async fn connections(&self, source_id: &str) -> Result<Vec<ConnectionView>, AppError> {
        self.source_row(source_id).await?;
        let rows = self.state.config.connections(source_id).await?;
        let seen = self.state.events.methods_seen(source_id).await?;
        Ok(rows.iter().map(|c| self.view(c, &rows, &seen)).collect())
    }

    pub async fn connection(&self, id: &str) -> Result<ConnectionView, AppError> {
        let c = self.connection_row(id).await?;
        let rows = self.state.config.connections(&c.source_id).await?;
        let seen = self.state.events.methods_seen(&c.source_id).await?;
        Ok(self.view(&c, &rows, &seen))
    }

    pub async fn add_connection(
        &self,
        source_id: &str,
        req: AddConnection,
    ) -> Result<ConnectionView, AppError> {
        self.source_row(source_id).await?;
        let slug = req
            .destination
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if slug.is_empty() {
            return Err(AppError::unprocessable(
                "destination",
                "destination is required: a catalog slug such as `mixpanel`",
            ));
        }
        let def = self.definition(slug).ok_or_else(|| {
            AppError::unprocessable(
                "destination",
                ["no destination `", slug, "` in the catalog"].concat(),
            )
        })?;
        let mode = parse_mode(req.mode.as_deref(), def)?;
        let settings = validate(def, mode, &req.settings.unwrap_or_default())?;
        let created = self
            .state
            .config
            .create_connection(NewConnection {
                source_id: source_id.to_string(),
                destination: def.slug.clone(),
                mode,
                enabled: req.enabled.unwrap_or(false),
                settings: Value::Object(settings).to_string(),
            })
            .await?;
        self.delivery_changed(None, &created).await?;
        self.connection(&created.id).await
    }

    pub async fn update_connection(
        &self,
        id: &str,
        req: UpdateConnection,
    ) -> Result<ConnectionView, AppError> {
        let current = self.connection_row(id).await?;
        let mut update = ConnectionUpdate {
            enabled: req.enabled,
            ..ConnectionUpdate::default()
        };
        if req.mode.is_some() || req.settings.is_some() {
            let def = self.definition(&current.destination).ok_or_else(|| {
                AppError::unprocessable(
                    "destination",
                    [
                        "destination `",
                        &current.destination,
                        "` is no longer in the catalog",
                    ]
                    .concat(),
                )
            })?;
            let mode = match req.mode.as_deref() {
                Some(m) => parse_mode(Some(m), def)?,
                None => parse_mode(Some(current.mode.as_str()), def)?,
            };
            let changes = req.settings.unwrap_or_default();
            // A key the destination does not have at all is a typo, refused
            // as on creation; only the old mode's settings are dropped below.
            if let Some(key) = changes
                .keys()
                .find(|k| !def.settings.iter().any(|s| &s.key == *k))
            {
                return Err(AppError::unprocessable(
                    ["settings.", key].concat(),
                    [key, " is not a setting of ", &def.name].concat(),
                ));
            }
            let mut merged = saved_settings(&current);
            for (key, value) in changes {
                let secret = def.settings.iter().any(|s| s.key == key && s.secret);
                match value {
                    Value::Null => {
                        merged.remove(&key);
                    }
                    Value::String(v) if secret && (v == SECRET_MASK || v.is_empty()) => {}
                    v => {
                        merged.insert(key, v);
                    }
                }
            }
            // Settings of the old mode that the new one does not use are
            // dropped rather than refused.
            merged.retain(|k, _| def.settings_for(mode).any(|s| &s.key == k));
            let settings = validate(def, mode, &merged)?;
            update.mode = Some(mode);
            update.settings = Some(Value::Object(settings).to_string());
        }
        let updated = self.state.config.update_connection(id, update).await?;
        self.delivery_changed(Some(&current), &updated).await?;
        self.connection(id).await
    }

    pub async fn remove_connection(&self, id: &str) -> Result<(), AppError> {
        self.connection_row(id).await?;
        self.state.config.delete_connection(id).await?;
        self.state.public.forget();
        self.state.delivery.config_changed();
        Ok(())
    }

    /// A connection the server delivers to when enabled (in an available
    /// cloud mode), or a 422 saying it is not one.
    pub async fn cloud_connection(&self, id: &str) -> Result<Connection, AppError> {
        let c = self.connection_row(id).await?;
        let cloud = self
            .definition(&c.destination)
            .is_some_and(|def| routing::active_mode(def, c.mode, true) == Some(Mode::Cloud));
        if !cloud {
            return Err(AppError::unprocessable(
                "mode",
                "the server delivers only to cloud-mode connections; this one is not",
            ));
        }
        Ok(c)
    }

    /// A connection as stored, or a 404.
    pub async fn connection_stored(&self, id: &str) -> Result<Connection, AppError> {
        self.connection_row(id).await
    }

    /// Whether the server delivers to `c` (enabled, in an available cloud
    /// mode).
    fn delivered(&self, c: &Connection) -> bool {
        self.definition(&c.destination)
            .is_some_and(|def| routing::active_mode(def, c.mode, c.enabled) == Some(Mode::Cloud))
    }

    /// After a change: a connection the server starts delivering to gets
    /// what arrives from now on (not the events from before it was on),
    /// and delivery hears of the change at once.
    async fn delivery_changed(
        &self,
        before: Option<&Connection>,
        after: &Connection,
    ) -> Result<(), AppError> {
        let was = before.is_some_and(|b| self.delivered(b));
        if !was && self.delivered(after) {
            self.state.delivery.start_at_head(&after.id).await?;
        }
        self.state.public.forget();
        self.state.delivery.config_changed();
        Ok(())
    }

    fn view(&self, c: &Connection, siblings: &[Connection], seen: &[String]) -> ConnectionView {
        let def = self.definition(&c.destination);
        let mut settings = saved_settings(c);
        let mut warnings = Vec::new();
        let name = def.map_or(c.destination.as_str(), |d| d.name.as_str());
        match def {
            None => {
                // Which of its settings were secret is the catalog's to
                // say, and it no longer can: every value is masked.
                for v in settings.values_mut() {
                    *v = Value::String(SECRET_MASK.to_string());
                }
                warnings.push(Warning {
                    code: "unknown_destination",
                    message: [
                        "`",
                        &c.destination,
                        "` is no longer in the catalog: nothing is delivered to it",
                    ]
                    .concat(),
                })
            }
            Some(def) => {
                for s in def.settings.iter().filter(|s| s.secret) {
                    if let Some(v) = settings.get_mut(&s.key) {
                        *v = Value::String(SECRET_MASK.to_string());
                    }
                }
                match def.modes.iter().find(|m| m.mode == c.mode) {
                    None => warnings.push(Warning {
                        code: "mode_unsupported",
                        message: [name, " has no ", c.mode.as_str(), " mode"].concat(),
                    }),
                    Some(info) => {
                        if !info.available {
                            warnings.push(Warning {
                                code: "mode_unavailable",
                                message: [
                                    &capitalise(c.mode.as_str()),
                                    " mode of ",
                                    name,
                                    " is not available yet: events are not delivered to it",
                                ]
                                .concat(),
                            });
                        }
                        let unsupported: Vec<&str> = seen
                            .iter()
                            .map(String::as_str)
                            .filter(|m| !info.methods.iter().any(|a| Method::as_str(*a) == *m))
                            .collect();
                        if !unsupported.is_empty() {
                            warnings.push(Warning {
                                code: "unsupported_methods",
                                message: [
                                    name,
                                    " does not accept ",
                                    &unsupported.join(", "),
                                    " calls in ",
                                    c.mode.as_str(),
                                    " mode, and this source sends them",
                                ]
                                .concat(),
                            });
                        }
                    }
                }
            }
        }
        let same = siblings
            .iter()
            .filter(|o| o.destination == c.destination)
            .count();
        if same > 1 {
            warnings.push(Warning {
                code: "duplicate",
                message: [
                    name,
                    " is connected to this source ",
                    &same.to_string(),
                    " times: enabled copies each receive every event",
                ]
                .concat(),
            });
        }
        ConnectionView {
            id: c.id.clone(),
            source_id: c.source_id.clone(),
            destination: c.destination.clone(),
            destination_name: name.to_string(),
            mode: c.mode,
            enabled: c.enabled,
            settings,
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
            warnings,
        }
    }
}

fn saved_settings(c: &Connection) -> Map<String, Value> {
    match serde_json::from_str(&c.settings) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
