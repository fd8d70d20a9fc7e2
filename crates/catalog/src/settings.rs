use serde_json::{Map, Value};

use crate::{Definition, Mode, SettingType};

/// A setting that is missing or invalid, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label} {reason}")]
pub struct SettingsError {
    /// The setting's key.
    pub field: String,
    pub label: String,
    pub reason: String,
}

/// Checks `settings` against the definition's schema for `mode`, and
/// returns them with defaults filled in. Unknown keys are refused, so a
/// typo is not silently ignored.
pub fn validate_settings(
    def: &Definition,
    mode: Mode,
    settings: &Map<String, Value>,
) -> Result<Map<String, Value>, SettingsError> {
    let mut out = Map::new();
    for key in settings.keys() {
        if !def.settings.iter().any(|s| &s.key == key) {
            return Err(SettingsError {
                field: key.clone(),
                label: key.clone(),
                reason: ["is not a setting of ", &def.name].concat(),
            });
        }
    }
    for s in def.settings_for(mode) {
        let fail = |reason: &str| SettingsError {
            field: s.key.clone(),
            label: s.label.clone(),
            reason: reason.to_string(),
        };
        let value = match settings.get(&s.key) {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) if v.trim().is_empty() => None,
            Some(v) => Some(v),
        };
        let Some(value) = value else {
            if s.required {
                return Err(fail("is required"));
            }
            if let Some(d) = &s.default {
                out.insert(s.key.clone(), d.clone());
            }
            continue;
        };
        let ok = match s.kind {
            SettingType::String | SettingType::Password => value.is_string(),
            SettingType::Number => value.is_number(),
            SettingType::Boolean => value.is_boolean(),
            SettingType::Select => value
                .as_str()
                .is_some_and(|v| s.choices.iter().any(|c| c == v)),
            SettingType::List => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            SettingType::Map => value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
        };
        if !ok {
            let expected = match s.kind {
                SettingType::String | SettingType::Password => "must be text".to_string(),
                SettingType::Number => "must be a number".to_string(),
                SettingType::Boolean => "must be true or false".to_string(),
                SettingType::Select => ["must be one of: ", &s.choices.join(", ")].concat(),
                SettingType::List => "must be a list of text values".to_string(),
                SettingType::Map => "must map names to text values".to_string(),
            };
            return Err(fail(&expected));
        }
        if let (Some(pattern), Some(text)) = (&s.pattern, value.as_str()) {
            let re = regex::Regex::new(&["^(?:", pattern, ")$"].concat())
                .map_err(|_| fail("has a validation pattern that does not compile"))?;
            if !re.is_match(text.trim()) {
                let reason = if s.help.is_empty() {
                    "is not in the expected format".to_string()
                } else {
                    ["is not in the expected format: ", &s.help].concat()
                };
                return Err(fail(&reason));
            }
        }
        out.insert(s.key.clone(), value.clone());
    }
    Ok(out)
}
