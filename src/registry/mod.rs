//! The registry edge: references, a client configured for the registry at hand, and
//! pushing images with content-addressed dedup. Async (tokio, via oci-client) lives
//! here and nowhere else; callers cross in with [`block_on`].
//!
//! Pushing follows go-containerregistry's `remote.Write`: every blob once (HEAD first,
//! upload only what is missing), layers before configs, children before the index,
//! and tags last, so that no tag ever points at an incomplete image.

pub mod auth;
pub mod client;
pub(crate) mod credential_helper;
pub mod credential_store;
pub mod login;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod push_client;
pub mod retry;
pub mod tag;

use crate::error::{Error, Result};

/// An error with its causes (`error sending request: … : invalid peer certificate:
/// UnknownIssuer`): reqwest keeps the useful part of a TLS or connection failure in
/// the source chain, which `Display` alone drops.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Runs a future to completion on a runtime made for it (the CLI is synchronous).
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Registry {
            registry: String::new(),
            message: format!("cannot start the I/O runtime: {e}"),
        })?;
    runtime.block_on(future)
}
