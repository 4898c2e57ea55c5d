//! A registry client for one registry: plain HTTP where allowed (loopback, or hosts the
//! user names with `--insecure-registry`), credentials from the environment for now.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::reference::is_loopback;

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Hosts spoken to over plain HTTP besides loopback (`--insecure-registry`).
    pub insecure: Vec<String>,
    /// Concurrent blob uploads.
    pub jobs: usize,
}

/// Default concurrent uploads, as go-containerregistry's `remote.Write`.
pub const DEFAULT_JOBS: usize = 4;

impl RegistryOptions {
    /// The upload concurrency, at least 1.
    pub fn jobs(&self) -> usize {
        if self.jobs == 0 {
            DEFAULT_JOBS
        } else {
            self.jobs
        }
    }
}

/// A client for the registry `reference` lives on, with its credentials stored.
pub async fn client_for(reference: &Reference, options: &RegistryOptions) -> Client {
    let registry = reference.resolve_registry().to_string();
    let mut plain_http: Vec<String> = options.insecure.clone();
    if is_loopback(&registry) {
        plain_http.push(registry.clone());
    }
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain_http),
        // One streamed PUT with Content-Length per blob: the fastest path measured
        // against distribution (chunked mode is fixed 4 MiB sequential PATCHes).
        use_monolithic_push: true,
        ..ClientConfig::default()
    });
    client.store_auth_if_needed(&registry, &credentials()).await;
    client
}

/// `HOIST_REGISTRY_USERNAME` / `HOIST_REGISTRY_PASSWORD`, else anonymous. (Docker
/// config files and credential helpers come with the auth work.)
pub fn credentials() -> RegistryAuth {
    match (
        std::env::var("HOIST_REGISTRY_USERNAME"),
        std::env::var("HOIST_REGISTRY_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) if !user.is_empty() => RegistryAuth::Basic(user, password),
        _ => RegistryAuth::Anonymous,
    }
}
