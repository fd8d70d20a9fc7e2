use switchyard_catalog::{Catalog, CatalogError};

/// `(slug, manifest, logo)` of one destination folder.
pub type Entry = (&'static str, &'static str, &'static str);

macro_rules! destination {
    ($slug:ident) => {
        (
            stringify!($slug),
            include_str!(concat!(stringify!($slug), "/manifest.toml")),
            include_str!(concat!(stringify!($slug), "/logo.svg")),
        )
    };
}

/// Every destination: one line each.
pub const REGISTRY: &[Entry] = &[
    destination!(amplitude),
    destination!(crisp),
    destination!(customerio),
    destination!(facebook_conversions_api),
    destination!(facebook_pixel),
    destination!(google_analytics_4),
    destination!(google_tag_manager),
    destination!(hotjar),
    destination!(intercom),
    destination!(klaviyo),
    destination!(mixpanel),
    destination!(postgres),
    destination!(posthog),
    destination!(slack),
    destination!(webhook),
];

/// The catalog built from every registered destination.
pub fn catalog() -> Result<Catalog, CatalogError> {
    Catalog::from_manifests(REGISTRY.iter().copied())
}
