//! How registries are reached: [`RegistryOptions`] (the flags), plain HTTP where
//! allowed (loopback, or hosts the user names with `--insecure-registry`), and the
//! HTTP client every request of [`super::transport`] goes through.

use std::collections::BTreeMap;

use super::auth::ExplicitCredentials;
use crate::error::{Error, Result};
use crate::oci::reference::is_loopback;

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Hosts spoken to over plain HTTP besides loopback (`--insecure-registry`).
    pub insecure: Vec<String>,
    /// Concurrent blob uploads.
    pub jobs: usize,
    /// Requests in flight at once to one registry, all of a command's work together
    /// (`--registry-jobs`); 0: [`DEFAULT_REGISTRY_JOBS`].
    pub registry_jobs: usize,
    /// `--username` / `--password-stdin`, which win over stored credentials.
    pub credentials: Option<ExplicitCredentials>,
    /// Extra trusted CA certificates (PEM files): `--ca-file`, and `SSL_CERT_FILE`.
    pub ca_files: Vec<std::path::PathBuf>,
    /// Use only the cache and local layouts: never open a connection (`--offline`).
    pub offline: bool,
    /// Try TLS before plain HTTP with loopback registries (`--ca-file` was given).
    pub try_tls_on_loopback: bool,
    /// The cache directory whose `pushed/` records which repositories received which
    /// blobs ([`super::pushed`]): pushes read it to mount instead of uploading, and
    /// add to it. `None`: no records.
    pub pushed_records: Option<std::path::PathBuf>,
}

/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a response may go silent before the request counts as failed, unless
/// `HOIST_REGISTRY_TIMEOUT` (seconds) says otherwise.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) fn read_timeout() -> std::time::Duration {
    std::env::var("HOIST_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&seconds| seconds > 0)
        .map_or(READ_TIMEOUT, std::time::Duration::from_secs)
}

/// Default concurrent uploads, as go-containerregistry's `remote.Write`.
pub const DEFAULT_JOBS: usize = 4;

/// Default requests in flight at once per registry: enough to hide a 20 ms round
/// trip behind the others (issue 19's 30-image release: 8 left a cold release 1.5 to
/// 1.75 times its loopback time, every slot busy even on loopback; 12 brought it to
/// 1.2 to 1.4 with at most 14 connections), few enough to stay far from the 114
/// connections issue 19 measured without a bound. A registry that answers 429 gets
/// half as many from then on ([`super::window`]).
pub const DEFAULT_REGISTRY_JOBS: usize = 12;

impl RegistryOptions {
    /// Requests in flight at once per registry: [`DEFAULT_REGISTRY_JOBS`] for 0, at
    /// most [`hoist_layers::MAX_THREADS`] (as [`Self::jobs`]).
    pub fn registry_jobs(&self) -> usize {
        if self.registry_jobs == 0 {
            DEFAULT_REGISTRY_JOBS
        } else {
            self.registry_jobs.min(hoist_layers::MAX_THREADS)
        }
    }

    /// The transfer concurrency: [`DEFAULT_JOBS`] for 0, at most
    /// [`hoist_layers::MAX_THREADS`] (the bound the binary's `--jobs` enforces; a library
    /// caller asking for more gets that many, not one connection per blob of a huge image).
    pub fn jobs(&self) -> usize {
        if self.jobs == 0 {
            DEFAULT_JOBS
        } else {
            self.jobs.min(hoist_layers::MAX_THREADS)
        }
    }
}

/// Whether `registry` is spoken to over plain HTTP: hosts named with
/// `--insecure-registry`, and loopback hosts. With `--ca-file`, a loopback registry is
/// first tried over TLS (a local registry behind a private CA), as docker tries HTTPS
/// first for the registries it may speak plain HTTP to; the answer is kept for the
/// rest of the run.
pub async fn speaks_plain_http(registry: &str, options: &RegistryOptions) -> bool {
    static PROBED: std::sync::OnceLock<std::sync::Mutex<BTreeMap<String, bool>>> =
        std::sync::OnceLock::new();
    if options.insecure.iter().any(|host| host == registry) {
        return true;
    }
    if !is_loopback(registry) {
        return false;
    }
    if !options.try_tls_on_loopback {
        return true;
    }
    let probed = PROBED.get_or_init(Default::default);
    if let Some(&plain) = probed.lock().expect("probe cache").get(registry) {
        return plain;
    }
    let answers_tls = match http_client(registry, options, false) {
        Ok(http) => http
            .get(version_url(registry, false))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .is_ok(),
        Err(_) => false,
    };
    probed
        .lock()
        .expect("probe cache")
        .insert(registry.to_string(), !answers_tls);
    !answers_tls
}

/// The PEM contents of `--ca-file`s (and `SSL_CERT_FILE`), each checked to hold a
/// certificate so a wrong path fails here, naming the file, not at the TLS handshake.
pub fn extra_root_certificates(options: &RegistryOptions) -> Result<Vec<Vec<u8>>> {
    options
        .ca_files
        .iter()
        .map(|path| {
            let data = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            if String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
                Ok(data)
            } else {
                Err(Error::InvalidValue {
                    field: "--ca-file".into(),
                    message: format!("{} holds no PEM certificate", path.display()),
                })
            }
        })
        .collect()
}

/// The HTTP client for `registry`: timeouts (a registry that stops answering becomes
/// an error, which is retried; the read timeout is between reads, so long uploads are
/// fine; `pace.rs` adds a deadline and a minimum rate), the trusted certificates;
/// redirects are never followed by reqwest (the transport follows those of blob
/// downloads itself, each hop judged against the registry's origin by
/// `Registry::may_authorize`).
pub(crate) fn http_client(
    registry: &str,
    options: &RegistryOptions,
    plain: bool,
) -> Result<reqwest::Client> {
    let fail = |message: String| Error::Registry {
        registry: registry.to_string(),
        message,
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // A name that does not resolve is told from other failures (not retried).
        .dns_resolver(std::sync::Arc::new(super::dns::SystemResolver))
        .read_timeout(read_timeout())
        // Never: reqwest judges a hop by the hop before it, not by the registry's
        // origin, and a probe has no reason to follow one at all.
        .redirect(reqwest::redirect::Policy::none())
        // Registries (and their operators) see who is asking.
        .user_agent(USER_AGENT)
        // No more idle connections kept than requests may be in flight: the bound on
        // requests is then one on connections too.
        .pool_max_idle_per_host(options.registry_jobs());
    if plain {
        // No TLS: skip loading the system's CA certificates.
        builder = builder.tls_certs_only([]);
    } else {
        let roots = extra_root_certificates(options)?
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("--ca-file: {e}")))?;
        builder = builder.tls_certs_merge(roots);
    }
    builder
        .build()
        .map_err(|e| fail(format!("cannot set up HTTP: {}", super::describe(&e))))
}

/// The `User-Agent` of every request: `hoist/VERSION`.
pub const USER_AGENT: &str = concat!("hoist/", env!("CARGO_PKG_VERSION"));

/// `GET` here answers whether a registry is there and how it authenticates.
pub(crate) fn version_url(host: &str, plain: bool) -> String {
    let scheme = if plain { "http" } else { "https" };
    format!("{scheme}://{host}/v2/")
}
