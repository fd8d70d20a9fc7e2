use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// A catalog category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    Analytics,
    #[serde(rename = "Email Marketing")]
    EmailMarketing,
    #[serde(rename = "Live Chat")]
    LiveChat,
    Advertising,
    #[serde(rename = "Heatmaps & Recordings")]
    HeatmapsRecordings,
    #[serde(rename = "Tag Managers")]
    TagManagers,
    #[serde(rename = "Raw Data")]
    RawData,
    Warehouses,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Analytics,
        Category::EmailMarketing,
        Category::LiveChat,
        Category::Advertising,
        Category::HeatmapsRecordings,
        Category::TagManagers,
        Category::RawData,
        Category::Warehouses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Analytics => "Analytics",
            Category::EmailMarketing => "Email Marketing",
            Category::LiveChat => "Live Chat",
            Category::Advertising => "Advertising",
            Category::HeatmapsRecordings => "Heatmaps & Recordings",
            Category::TagManagers => "Tag Managers",
            Category::RawData => "Raw Data",
            Category::Warehouses => "Warehouses",
        }
    }

    pub(crate) fn matches(self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }
}

/// A connection mode: the spec's own type, which connections are stored
/// with too.
pub use switchyard_spec::Mode;

/// A call of Segment's spec, as a destination accepts it: the spec's own
/// type, so the tracking API, the catalog and routing share one.
pub use switchyard_spec::EventType as Method;

/// One connection mode of a destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeInfo {
    pub mode: Mode,
    /// The calls this mode translates.
    pub methods: Vec<Method>,
    /// False until the mode's implementation has landed; such a mode is
    /// listed but cannot be chosen.
    #[serde(default)]
    pub available: bool,
}

/// The type of a setting, which decides its form field and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    String,
    Password,
    Number,
    Boolean,
    Select,
    List,
    Map,
}

/// One setting of a destination's settings schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub help: String,
    #[serde(rename = "type")]
    pub kind: SettingType,
    #[serde(default)]
    pub required: bool,
    /// A secret setting is write-only: never returned by the API, never in
    /// a bundle or a settings response.
    #[serde(default)]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// A regular expression a string value must match, written for people
    /// to read in the manifest and checked by the settings validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The modes that use this setting; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<Mode>,
}

/// A destination's definition, as its `manifest.toml` states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(default)]
    pub slug: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<Category>,
    pub website: String,
    /// The vendor script a device-mode adapter loads by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_url: Option<String>,
    pub modes: Vec<ModeInfo>,
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// Part of the starting set the admin suggests to a new site owner
    /// (one tool per category among Analytics, Email Marketing, Live Chat).
    #[serde(default)]
    pub recommended: bool,
    /// The logo, an SVG document.
    #[serde(default, skip_serializing)]
    pub logo: String,
}

impl Definition {
    pub(crate) fn parse(
        slug: &str,
        manifest: &str,
        logo: &str,
    ) -> Result<Definition, CatalogError> {
        let err = |message: String| CatalogError::Manifest {
            slug: slug.to_string(),
            message,
        };
        let mut def: Definition = toml::from_str(manifest).map_err(|e| err(e.to_string()))?;
        def.slug = slug.to_string();
        def.logo = logo.to_string();
        if def.categories.is_empty() {
            return Err(err("no category".into()));
        }
        if def.modes.is_empty() {
            return Err(err("no connection mode".into()));
        }
        if !logo.trim_start().starts_with("<svg") {
            return Err(err("logo is not an SVG document".into()));
        }
        for s in &def.settings {
            if s.kind == SettingType::Select && s.choices.is_empty() {
                return Err(err(
                    ["setting `", &s.key, "` is a select without choices"].concat()
                ));
            }
        }
        Ok(def)
    }

    pub fn mode(&self, mode: Mode) -> Option<&ModeInfo> {
        self.modes.iter().find(|m| m.mode == mode)
    }

    /// The settings a mode uses.
    pub fn settings_for(&self, mode: Mode) -> impl Iterator<Item = &Setting> {
        self.settings
            .iter()
            .filter(move |s| s.modes.is_empty() || s.modes.contains(&mode))
    }

    pub(crate) fn matches(&self, query_lower: &str) -> bool {
        self.name.to_lowercase().contains(query_lower)
            || self.slug.contains(query_lower)
            || self.description.to_lowercase().contains(query_lower)
            || self
                .categories
                .iter()
                .any(|c| c.name().to_lowercase().contains(query_lower))
    }
}
