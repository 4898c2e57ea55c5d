//! hoist: a daemonless, rootless OCI image assembler.
//!
//! Data flow goes one way: **inputs → layers → image → sinks**.
//!
//! - [`config`] reads `hoist.toml`; [`workspace`] finds the images of a project (a
//!   workspace's members, or one image); [`plan`] folds it with flags and the environment
//!   into a validated [`plan::Plan`].
//! - [`hoist_layers`] (a separate crate) turns directories into compressed,
//!   content-addressed layer blobs, deterministically.
//! - [`open`] reads an image from any location (layout, archive, registry, scratch)
//!   into the one image value of [`oci`] ([`oci::image::Image`]).
//! - [`assemble`] puts base + layers + config edits together into an
//!   [`oci::image::Image`]: one manifest per platform under an index.
//! - [`publish`] writes an image to an OCI layout, an `oci-archive` or a
//!   `docker-archive`; [`registry`] is the registry transport (pulls and pushes).
//! - [`pipeline`] is the one build pipeline (plan → base → layers → assemble →
//!   outputs) that `build`, [`release`] and [`verify`] use.
//! - [`sbom`] writes an SPDX SBOM per platform image (attached as an OCI artifact)
//!   and reads them back.
//! - [`inspect`] renders images for people; [`diff`] compares two images down to the
//!   files; [`verify`] rebuilds a published image and compares.
//! - [`sign`] signs published images (cosign-compatible key pairs) and writes and
//!   checks their provenance (in-toto/SLSA in DSSE envelopes).
//! - [`init`] writes a hoist.toml from a project's Dockerfile or compose file.
//! - [`release`] reads and bumps project versions, computes image tags, keeps moving
//!   tags (`latest`, `1`) from going backwards, and runs `hoist release`.

#![deny(missing_docs)]
// The workspace lint is `deny` only so that hoist-layers can allow its SHA-NI module;
// this crate has none.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod budget;
pub mod config;
pub mod diff;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod init;
pub mod inspect;
pub mod job;
pub mod oci;
pub mod open;
pub mod pipeline;
pub mod plan;
pub mod publish;
pub mod python;
pub mod registry;
pub mod release;
pub mod sbom;
pub mod sign;
pub mod tar_reader;
pub mod verify;
pub mod workspace;

pub use error::{Error, Result};
