//! The registry edge: references, the one [`transport::Transport`] every registry
//! request of a command goes through, and the registry as a source (pull, base
//! images) and a sink (push with content-addressed dedup, tag). Async (tokio,
//! reqwest) lives here and nowhere else; callers cross in with [`block_on`].
//!
//! Pushing follows go-containerregistry's `remote.Write`: every blob once (HEAD first,
//! upload only what is missing), layers before configs, children before the index,
//! and tags last, so that no tag ever points at an incomplete image.

pub mod answer;
pub mod auth;
pub mod client;
pub(crate) mod credential_helper;
pub mod credential_store;
mod dns;
pub mod index;
pub mod layer_source;
pub mod login;
pub mod manifest;
pub mod pace;
pub mod progress;
pub mod pull;
pub mod push;
pub mod pushed;
pub mod referrers;
pub mod repository;
pub mod retry;
pub mod scheduler;
pub mod tag;
mod token;
pub mod transport;
pub mod upload;
pub mod window;

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

/// Runs a future to completion on the process's I/O runtime (the CLI is
/// synchronous). One runtime for the whole process, not one per call: the connections
/// a [`transport::Transport`] keeps open belong to the runtime that opened them, and
/// one transport serves every call of a command.
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = if let Some(runtime) = RUNTIME.get() {
        runtime
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Registry {
                registry: String::new(),
                message: format!("cannot start the I/O runtime: {e}"),
            })?;
        // Two threads racing here build two; one is kept, the other dropped.
        RUNTIME.get_or_init(|| runtime)
    };
    runtime.block_on(future)
}

/// Runs `read(i)` for every `i < count` at once on the I/O runtime (the transport
/// bounds their requests) and hands each answer to `ready` with its index as soon as
/// it comes, for a caller whose other threads wait for their own answer only. Every
/// index gets one: the runtime's error for all when it cannot start.
pub fn read_each<T, F, Fut>(count: usize, read: F, ready: &(dyn Fn(usize, Result<T>) + Sync))
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let ran = block_on(async {
        futures_util::future::join_all((0..count).map(|i| {
            let answer = read(i);
            async move { ready(i, answer.await) }
        }))
        .await;
        Ok(())
    });
    if let Err(error) = ran {
        for i in 0..count {
            ready(
                i,
                Err(Error::Registry {
                    registry: String::new(),
                    message: error.to_string(),
                }),
            );
        }
    }
}
