//! Destinations, one folder each.
//!
//! A destination's folder holds its `manifest.toml` (catalog entry and
//! settings schema), its `logo.svg`, and its code, declared in its
//! `mod.rs`: the event mapping, the device adapter (`device.rs`) and the
//! cloud forwarder (`cloud.rs`), as they land. Adding a destination is one
//! folder here and one line in the [`registry!`] below, which also says
//! which of them the folder has.

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod device;

/// `(slug, manifest, logo)` of one destination folder.
pub type Entry = (&'static str, &'static str, &'static str);

/// Declares each destination's module and lists its manifest and logo in
/// [`REGISTRY`]. A destination's line names what its folder implements:
/// `[device]` a device adapter (`device.rs` with its `mapping.rs`), `:
/// cloud` a cloud forwarder (`cloud.rs`), e.g. `mixpanel [device]: cloud`.
/// [`ADAPTERS`] and [`forwarder`] are built from those marks, so the test
/// lists derive from the registry.
macro_rules! registry {
    ($($slug:ident $([$device:ident])? $(: $cloud:ident)?),* $(,)?) => {
        $(pub mod $slug;)*

        /// Every destination, in the order of the registry.
        pub const REGISTRY: &[Entry] = &[$((
            stringify!($slug),
            include_str!(concat!(stringify!($slug), "/manifest.toml")),
            include_str!(concat!(stringify!($slug), "/logo.svg")),
        )),*];

        /// Every device adapter, reached natively for tests and tools. The
        /// browser module reaches each through its own export only (see
        /// [`device::exchange`]), so this list is not built there.
        #[cfg(feature = "catalog")]
        pub const ADAPTERS: &[Adapted] = &[$($(Adapted {
            slug: stringify!($slug),
            setup: <$slug::$device::Device as device::Adapter>::setup,
            init: <$slug::$device::Device as device::Adapter>::init,
            map: <$slug::$device::Device as device::Adapter>::map,
        },)?)*];

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

/// One device adapter's entry points, as [`ADAPTERS`] lists them.
#[cfg(feature = "catalog")]
pub struct Adapted {
    pub slug: &'static str,
    pub setup: fn(&device::Value) -> device::Setup,
    pub init: fn(&device::Value) -> Vec<device::Call>,
    pub map: fn(&device::Value, &device::Value) -> Vec<device::Call>,
}

registry! {
    amplitude [device]: cloud,
    crisp [device],
    customerio [device]: cloud,
    facebook_conversions_api: cloud,
    facebook_pixel [device],
    google_analytics_4 [device]: cloud,
    google_tag_manager [device],
    hotjar [device],
    intercom [device]: cloud,
    klaviyo [device]: cloud,
    mixpanel [device]: cloud,
    postgres,
    posthog [device]: cloud,
    slack: cloud,
    webhook: cloud,
}

/// The catalog built from every registered destination.
#[cfg(feature = "catalog")]
pub fn catalog() -> Result<switchyard_catalog::Catalog, switchyard_catalog::CatalogError> {
    switchyard_catalog::Catalog::from_manifests(REGISTRY.iter().copied())
}
