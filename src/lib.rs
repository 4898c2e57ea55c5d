//! hoist: a daemonless, rootless OCI image assembler.
//!
//! Data flows one way: **inputs → layers → image → sink**.
//!
//! - [`config`] reads `hoist.toml`; [`plan`] folds it with flags and the environment
//!   into a validated [`plan::Plan`].
//! - [`hoist_layers`] (a separate crate) turns directories into compressed,
//!   content-addressed layer blobs, deterministically.
//! - [`assemble`] puts base + layers + config edits together into an
//!   [`oci::image::Image`]: one manifest per platform under an index.
//! - [`publish`] writes an image to a sink: an OCI layout, an `oci-archive` or a
//!   `docker-archive`; [`registry`] pushes it to a registry.
//! - [`oci`] holds the data model (descriptors, manifests, platforms, canonical JSON)
//!   and layout reading; [`inspect`] renders images for people; [`diff`] compares two
//!   images down to the files (`hoist diff`, `hoist verify`).
//! - [`release`] reads and bumps project versions, computes image tags from them and
//!   keeps moving tags (`latest`, `1`) from going backwards.

#![deny(missing_docs)]

pub mod assemble;
pub mod config;
pub mod diff;
pub mod error;
pub mod fsutil;
pub mod inspect;
pub mod oci;
pub mod open;
pub mod pipeline;
pub mod plan;
pub mod publish;
pub mod registry;
pub mod release;

pub use error::{Error, Result};
