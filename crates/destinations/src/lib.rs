//! Destinations, one folder each.
//!
//! A destination's folder holds its `manifest.toml` (catalog entry and
//! settings schema), its `logo.svg`, and its code: the event mapping, the
//! device adapter and the cloud forwarder, as they land. Adding a
//! destination is one folder here and one line in [`registry`].

mod registry;

pub use registry::{REGISTRY, catalog};
