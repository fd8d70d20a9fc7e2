//! Which connections get an event, and where: the one decision the bundle
//! route (device destinations in the loader, cloud ones as `unbundled`) and
//! cloud delivery (whether a worker sends an event) both make, as Segment
//! makes it.

use serde_json::Value;

use crate::{Definition, Method, Mode};

/// Why an event is not sent to a connection. Each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Per-call `integrations` turn the destination off (`{Mixpanel:
    /// false}`, or `{All: false}` without an explicit `true`).
    IntegrationsOff,
    /// The browser's device mode already had it (`_metadata.bundled`).
    Bundled,
    /// The destination does not take this call in this mode.
    MethodNotAccepted,
}

impl Skip {
    pub const ALL: [Skip; 3] = [
        Skip::IntegrationsOff,
        Skip::Bundled,
        Skip::MethodNotAccepted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::IntegrationsOff => "integrations_off",
            Skip::Bundled => "bundled",
            Skip::MethodNotAccepted => "method_not_accepted",
        }
    }
}

/// The mode a connection is active in: enabled, and its mode one the
/// destination has and offers (available). `None` means it gets nothing.
pub fn active_mode(def: &Definition, mode: Mode, enabled: bool) -> Option<Mode> {
    if !enabled {
        return None;
    }
    def.modes
        .iter()
        .find(|m| m.mode == mode && m.available)
        .map(|m| m.mode)
}

/// Whether the destination `def`, in `mode`, gets `event` (Segment's wire
/// JSON), and if not, why. Device mode's own checks run in the browser, so
/// `bundled` applies to cloud mode only.
pub fn route(def: &Definition, mode: Mode, event: &Value) -> Result<(), Skip> {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .and_then(Method::from_name);
    let accepted = def
        .mode(mode)
        .is_some_and(|m| kind.is_some_and(|k| m.methods.contains(&k)));
    if !accepted {
        return Err(Skip::MethodNotAccepted);
    }
    if !integration_enabled(def, event.get("integrations")) {
        return Err(Skip::IntegrationsOff);
    }
    if mode == Mode::Cloud && bundled(def, event) {
        return Err(Skip::Bundled);
    }
    Ok(())
}

/// Whether a name in an event's `integrations` or `_metadata` is this
/// destination's: its catalog name as Segment's libraries write it, in any
/// case, or its slug.
fn names(def: &Definition, key: &str) -> bool {
    key == def.name || key.eq_ignore_ascii_case(&def.name) || key == def.slug
}

fn integration_enabled(def: &Definition, integrations: Option<&Value>) -> bool {
    let Some(Value::Object(map)) = integrations else {
        return true;
    };
    let truthy = |v: &Value| !matches!(v, Value::Bool(false) | Value::Null);
    if let Some((_, v)) = map.iter().find(|(k, _)| names(def, k)) {
        return truthy(v);
    }
    map.get("All").is_none_or(truthy)
}

fn bundled(def: &Definition, event: &Value) -> bool {
    event
        .pointer("/_metadata/bundled")
        .and_then(Value::as_array)
        .is_some_and(|names_| {
            names_
                .iter()
                .filter_map(Value::as_str)
                .any(|n| names(def, n))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mixpanel() -> Definition {
        Definition::parse(
            "mixpanel",
            r#"
            name = "Mixpanel"
            description = "d"
            categories = ["Analytics"]
            website = "https://mixpanel.com"
            [[modes]]
            mode = "device"
            methods = ["track"]
            available = true
            [[modes]]
            mode = "cloud"
            methods = ["track", "identify"]
            available = true
            "#,
            "<svg/>",
        )
        .unwrap()
    }

    #[test]
    fn per_call_integrations_bundled_and_methods_decide() {
        let def = mixpanel();
        let cases = [
            (json!({"type": "track"}), Ok(())),
            (json!({"type": "identify"}), Ok(())),
            (json!({"type": "page"}), Err(Skip::MethodNotAccepted)),
            (json!({"type": "nonsense"}), Err(Skip::MethodNotAccepted)),
            (
                json!({"type": "track", "integrations": {"Mixpanel": false}}),
                Err(Skip::IntegrationsOff),
            ),
            (
                json!({"type": "track", "integrations": {"mixpanel": false}}),
                Err(Skip::IntegrationsOff),
            ),
            (
                json!({"type": "track", "integrations": {"Amplitude": false}}),
                Ok(()),
            ),
            (
                json!({"type": "track", "integrations": {"All": false}}),
                Err(Skip::IntegrationsOff),
            ),
            (
                json!({"type": "track", "integrations": {"All": false, "Mixpanel": true}}),
                Ok(()),
            ),
            (
                json!({"type": "track", "integrations": {"All": false, "Mixpanel": {"option": 1}}}),
                Ok(()),
            ),
            (
                json!({"type": "track", "integrations": {"All": true, "Mixpanel": false}}),
                Err(Skip::IntegrationsOff),
            ),
            (
                json!({"type": "track", "_metadata": {"bundled": ["Mixpanel"]}}),
                Err(Skip::Bundled),
            ),
            (
                json!({"type": "track", "_metadata": {"bundled": ["Amplitude"], "unbundled": ["Mixpanel"]}}),
                Ok(()),
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(route(&def, Mode::Cloud, &event), expected, "{event}");
        }
        // The browser's own checks cover device mode: bundled is not a
        // reason there.
        let bundled = json!({"type": "track", "_metadata": {"bundled": ["Mixpanel"]}});
        assert_eq!(route(&def, Mode::Device, &bundled), Ok(()));
        assert_eq!(
            route(&def, Mode::Device, &json!({"type": "identify"})),
            Err(Skip::MethodNotAccepted)
        );
    }

    #[test]
    fn only_an_enabled_connection_in_an_available_mode_is_active() {
        let mut def = mixpanel();
        assert_eq!(active_mode(&def, Mode::Cloud, true), Some(Mode::Cloud));
        assert_eq!(active_mode(&def, Mode::Device, true), Some(Mode::Device));
        assert_eq!(active_mode(&def, Mode::Cloud, false), None);
        def.modes[1].available = false;
        assert_eq!(active_mode(&def, Mode::Cloud, true), None);
        def.modes.truncate(1);
        assert_eq!(
            active_mode(&def, Mode::Cloud, true),
            None,
            "a mode it has not"
        );
    }
}
