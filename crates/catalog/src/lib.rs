//! The destination catalog: what each destination is, which connection
//! modes and methods it has, and which settings it needs.
//!
//! Definitions are written as `manifest.toml` files in the destinations'
//! folders (crate `switchyard-destinations`) and parsed here. This crate
//! knows nothing of storage or HTTP.

mod definition;
pub mod routing;
mod settings;

pub use definition::{Category, Definition, Method, Mode, ModeInfo, Setting, SettingType};
pub use settings::{SettingsError, validate_settings};

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("manifest of `{slug}`: {message}")]
    Manifest { slug: String, message: String },
    #[error("two destinations share the slug `{0}`")]
    DuplicateSlug(String),
}

/// All destinations, in catalog order (by name).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    destinations: Vec<Definition>,
}

impl Catalog {
    /// Builds the catalog from `(slug, manifest TOML, logo SVG)` triples.
    pub fn from_manifests<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<Catalog, CatalogError> {
        let mut destinations = Vec::new();
        for (slug, manifest, logo) in entries {
            let def = Definition::parse(slug, manifest, logo)?;
            if destinations.iter().any(|d: &Definition| d.slug == def.slug) {
                return Err(CatalogError::DuplicateSlug(def.slug));
            }
            destinations.push(def);
        }
        destinations.sort_by_key(|d| d.name.to_lowercase());
        Ok(Catalog { destinations })
    }

    pub fn all(&self) -> &[Definition] {
        &self.destinations
    }

    pub fn get(&self, slug: &str) -> Option<&Definition> {
        self.destinations.iter().find(|d| d.slug == slug)
    }

    /// Destinations whose name, slug, description or category contains
    /// `query` (case-insensitive), optionally in one category.
    pub fn search(&self, query: Option<&str>, category: Option<&str>) -> Vec<&Definition> {
        let query = query
            .map(str::to_lowercase)
            .filter(|q| !q.trim().is_empty());
        self.destinations
            .iter()
            .filter(|d| category.is_none_or(|c| d.categories.iter().any(|k| k.matches(c))))
            .filter(|d| query.as_deref().is_none_or(|q| d.matches(q)))
            .collect()
    }
}
