//! Destinations, one folder each.
//!
//! A destination's folder holds its `manifest.toml` (catalog entry and
//! settings schema), its `logo.svg`, and its code: the event mapping, the
//! device adapter and the cloud forwarder, as they land. Adding a
//! destination is one folder here and one line in [`registry`].

pub mod device;
mod registry;

// Destinations with an event mapping; their folders' `mod.rs` name the parts.
pub mod amplitude;
pub mod customerio;
pub mod facebook_pixel;
pub mod google_analytics_4;
pub mod google_tag_manager;
pub mod hotjar;
pub mod intercom;
pub mod klaviyo;
pub mod mixpanel;
pub mod posthog;

pub use registry::{REGISTRY, catalog};
