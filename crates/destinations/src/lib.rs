//! Destinations, one folder each.
//!
//! A destination's folder holds its `manifest.toml` (catalog entry and
//! settings schema), its `logo.svg`, and its code, declared in its
//! `mod.rs`: the event mapping, the device adapter (`device.rs`) and the
//! cloud forwarder (`cloud.rs`), as they land. Adding a destination is one
//! folder here and one line in the [`registry!`] below.

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod device;

/// `(slug, manifest, logo)` of one destination folder.
pub type Entry = (&'static str, &'static str, &'static str);

/// Declares each destination's module and lists its manifest and logo in
/// [`REGISTRY`]. A destination with a cloud forwarder says so on its line
/// (`mixpanel: cloud`): [`forwarder`] then reaches its `cloud::Cloud`.
macro_rules! registry {
    ($($slug:ident $(: $cloud:ident)?),* $(,)?) => {
        $(pub mod $slug;)*

        /// Every destination, in the order of the registry.
        pub const REGISTRY: &[Entry] = &[$((
            stringify!($slug),
            include_str!(concat!(stringify!($slug), "/manifest.toml")),
            include_str!(concat!(stringify!($slug), "/logo.svg")),
        )),*];

        /// The cloud forwarder of the destination `slug`, if it has one.
        #[cfg(feature = "cloud")]
        pub fn forwarder(slug: &str) -> Option<&'static dyn cloud::Forwarder> {
            match slug {
                $($(stringify!($slug) => Some(&$slug::$cloud::Cloud),)?)*
                _ => None,
            }
        }
    };
}

registry! {
    amplitude: cloud,
    crisp,
    customerio: cloud,
    facebook_conversions_api: cloud,
    facebook_pixel,
    google_analytics_4: cloud,
    google_tag_manager,
    hotjar,
    intercom: cloud,
    klaviyo: cloud,
    mixpanel: cloud,
    postgres,
    posthog: cloud,
    slack: cloud,
    webhook: cloud,
}

/// The catalog built from every registered destination.
#[cfg(feature = "catalog")]
pub fn catalog() -> Result<switchyard_catalog::Catalog, switchyard_catalog::CatalogError> {
    switchyard_catalog::Catalog::from_manifests(REGISTRY.iter().copied())
}
