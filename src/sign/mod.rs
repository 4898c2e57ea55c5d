//! Signatures and provenance on published images, offline and with a key pair (no
//! transparency log, no OIDC), in the formats cosign and in-toto tools read:
//!
//! - [`key`]: cosign's key files (`cosign.key`, `cosign.pub`), ECDSA P-256.
//! - [`password`]: where a key's password comes from (environment, else a prompt).
//! - [`payload`]: cosign's simple-signing payload (what a signature is about).
//! - [`cosign`]: signatures stored under the `sha256-<hex>.sig` tag, as cosign and
//!   containers/image read them: [`sign_pushed`] signs an image in a registry,
//!   [`verify_pushed`] checks its signatures.
//! - [`dsse`]: DSSE envelopes (the signed wrapper of in-toto statements).
//! - [`provenance`]: the SLSA v1 provenance statement of a build, signed in a DSSE
//!   envelope and attached to the index as a referrer.

pub mod cosign;
pub mod dsse;
pub mod key;
pub mod password;
pub mod payload;
pub mod provenance;

use std::path::PathBuf;

pub use cosign::{SignReport, sign_pushed, verify_pushed};
pub use key::{PrivateKey, PublicKey};

/// What can go wrong signing or checking signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A key file cannot be read as one, or does not decrypt.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file cannot be read or written.
    #[error("key file {}: {source}", path.display())]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file cannot be written (the file error kept as the source).
    #[error("{0}")]
    KeyWrite(#[source] crate::Error),
    /// No password: none in the environment, and no terminal to ask on.
    #[error("{0}")]
    Password(String),
    /// The operating system's random generator failed, or a key cannot be encoded.
    #[error("key material: {0}")]
    Random(String),
    /// A signature is missing, does not verify or is about something else.
    #[error("signature of {manifest}: {reason}")]
    Signature {
        /// The manifest the signature should be about (`REPO@sha256:…`).
        manifest: String,
        /// What is wrong.
        reason: String,
    },
    /// A provenance attestation is missing, does not verify, or names other inputs.
    #[error("provenance of {subject}: {reason}")]
    Provenance {
        /// What it should be about.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading from or writing to the registry failed: what was being done, about
    /// which image, with the registry's error kept as the source (the CLI finds the
    /// registry's answer in the chain).
    #[error("{doing}: {source}")]
    Registry {
        /// What was being done, naming the reference (`signing HOST/REPO@sha256:…`).
        doing: String,
        /// The registry's error.
        source: crate::Error,
    },
}

impl SignError {
    /// The library error inside, when this is one (for the CLI's credential hints).
    pub fn library(&self) -> Option<&crate::Error> {
        match self {
            SignError::Registry { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Wraps a registry error with what was being done (`doing` names the reference).
pub(crate) fn in_registry(doing: impl Into<String>) -> impl FnOnce(crate::Error) -> SignError {
    let doing = doing.into();
    move |source| SignError::Registry { doing, source }
}
