//! The one registry transport: every request hoist makes to a registry, pulls and
//! pushes alike, goes through a [`Transport`]. A command creates one and hands it to
//! everything it does (base loading, push, tag, diff and verify fetches, release's
//! tag lookups), so that per registry:
//!
//! * nothing is probed: there is no `GET /v2/` of our own. The first request goes
//!   out as it is; a 401 brings the registry's `WWW-Authenticate` challenge, which is
//!   remembered, so later requests carry credentials from the start. (A loopback
//!   registry with `--ca-file` is asked once, over TLS, whether it speaks TLS.)
//! * the challenge is followed once per scope set: a Bearer token is fetched for the
//!   scopes of a [`Repository`] handle (`repository:R:pull`, or `R:pull,push` plus
//!   `M:pull` for each mount source) and reused by every request with those scopes,
//!   concurrent ones included; Basic credentials are sent once the registry asked.
//! * a 401 after credentials were sent (a token expired mid-command) renews them once
//!   and makes the request again.
//! * one retry policy ([`super::retry`]): connection errors, 408, 429, 5xx, with the
//!   registry's `Retry-After` honoured (capped at a minute).
//! * failures are typed ([`super::answer::RegistryAnswer`]): the HTTP status and the
//!   registry's error codes, worded for the reference they are about.
//! * credentials go only to the registry's own origin (`Registry::may_authorize`,
//!   asked by every request, redirect hops and upload `Location`s included).
//! * every request is bounded in time ([`super::pace`]): a deadline, and a minimum
//!   rate for blob bodies.
//! * at most `--registry-jobs` requests are in flight at once (the command's
//!   members, platforms, artifacts and tags together): a request holds a permit
//!   from before it is sent until its answer is dropped, body read; a 429 halves
//!   the bound for the rest of the command ([`super::window`]); every request is
//!   counted ([`super::scheduler`]).
//!
//! The requests themselves live in `repository.rs` (blobs, manifests, tags) and
//! `upload.rs` (blob uploads).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use oci_spec::distribution::{ErrorCode, Reference};
use reqwest::{StatusCode, header};

use super::answer::{Lookup, RegistryAnswer, RegistryError, parse_errors};
use super::auth::{Found, RegistryAuth, resolve};
use super::client::{RegistryOptions, http_client, speaks_plain_http};
use super::login::{Challenge, api_host};
use super::pace::{self, Sending};
use super::progress::{Quiet, UploadProgress};
use super::retry::{Again, is_transient_status, retrying};
use super::scheduler::{BlobLedger, RequestCounts, RequestStats};
use crate::error::{Error, Result};
use crate::oci::reference::is_loopback;

/// The most of an error body read (it is only for the message).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Every registry request of one command. Cheap to clone: clones share the
/// per-registry state (credentials, the challenge learnt, tokens).
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    options: RegistryOptions,
    /// Told about every blob upload.
    upload_progress: Arc<dyn UploadProgress>,
    /// Per registry name, its state once the first request needed it.
    registries: Mutex<BTreeMap<String, Arc<tokio::sync::OnceCell<Arc<Registry>>>>>,
    /// Every request, counted.
    counts: Arc<RequestCounts>,
    /// Blobs put somewhere by this command, per registry and digest.
    ledger: BlobLedger,
}

/// What a [`Repository`] handle may do, which decides the token scopes it asks for.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// Read manifests, blobs and tags.
    Pull,
    /// Read and write, and mount blobs from these other repositories of the registry.
    Push {
        /// Repositories blobs may be mounted from (`pull` is asked for each).
        mount_from: &'a [&'a str],
    },
}

impl Transport {
    /// A transport for one command, reaching registries as `options` say.
    pub fn new(options: RegistryOptions) -> Transport {
        Transport::with_upload_progress(options, Arc::new(Quiet))
    }

    /// A transport that tells `upload_progress` about every blob it uploads.
    pub fn with_upload_progress(
        options: RegistryOptions,
        upload_progress: Arc<dyn UploadProgress>,
    ) -> Transport {
        Transport {
            shared: Arc::new(Shared {
                options,
                upload_progress,
                registries: Mutex::new(BTreeMap::new()),
                counts: Arc::default(),
                ledger: BlobLedger::default(),
            }),
        }
    }

    /// How registries are reached.
    pub fn options(&self) -> &RegistryOptions {
        &self.shared.options
    }

    /// The requests made so far, by method, and the bytes uploaded.
    pub fn request_stats(&self) -> RequestStats {
        self.shared.counts.snapshot()
    }

    /// Marks the start of a phase of the command (for [`Self::request_stats`]).
    pub fn phase(&self, name: &str) {
        self.shared.counts.phase(name);
    }

    /// The command's ledger of blobs pushed (the per-digest once-guard).
    pub fn ledger(&self) -> &BlobLedger {
        &self.shared.ledger
    }

    /// Who hears about uploads.
    pub fn upload_progress(&self) -> &dyn UploadProgress {
        self.shared.upload_progress.as_ref()
    }

    /// A handle on `reference`'s repository for requests with `access`.
    pub async fn repository(
        &self,
        reference: &Reference,
        access: Access<'_>,
    ) -> Result<Repository> {
        let name = reference.registry();
        if self.options().offline {
            return Err(Error::Registry {
                registry: name.to_string(),
                message: format!("--offline: {} would need the network", reference.whole()),
            });
        }
        let cell = Arc::clone(
            self.shared
                .registries
                .lock()
                .expect("registry map")
                .entry(name.to_string())
                .or_default(),
        );
        let registry = cell
            .get_or_try_init(|| async {
                Registry::connect(name, self.options(), Arc::clone(&self.shared.counts))
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(Repository::new(
            Arc::clone(registry),
            reference.repository(),
            access,
        ))
    }
}

/// What is known of one registry for the rest of the command.
pub(super) struct Registry {
    /// As references name it (`127.0.0.1:5000`, `docker.io`).
    pub(super) name: String,
    pub(super) http: reqwest::Client,
    /// `SCHEME://HOST` of its API.
    origin: String,
    /// [`Self::origin`] parsed: the one origin its credentials go to.
    home: reqwest::Url,
    credentials: Found,
    /// The `WWW-Authenticate` challenge of its first 401; `None` until then.
    challenge: RwLock<Option<Challenge>>,
    /// `Authorization` values of Bearer tokens, per scope set; the async lock makes
    /// concurrent requests with the same scopes wait for one token instead of each
    /// fetching their own.
    tokens: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<Option<String>>>>>,
    /// Upload in chunks rather than one `PUT`: GHCR from the start (it caps a request
    /// body), any registry once it has answered a whole blob with 413.
    pub(super) chunked: AtomicBool,
    /// The bound on requests in flight (`--registry-jobs`, cut by 429s).
    window: super::window::Window,
    pub(super) counts: Arc<RequestCounts>,
    /// Documents read by digest this command, by repository and digest: immutable,
    /// so asked for once ([`super::scheduler::Documents`]).
    pub(super) documents: super::scheduler::Documents,
    /// What each tag names, once looked up or put ([`super::scheduler::TagMemo`]).
    pub(super) tags: super::scheduler::TagMemo,
    /// Each repository's tags as one listing answered them ([`super::scheduler::TagCensus`]).
    pub(super) census: super::scheduler::TagCensus,
    /// Whether the registry has the referrers API, once its first answer told:
    /// 404 means it has none (one that has it must not answer 404, distribution-spec
    /// 1.1), so it is not asked again this command and the referrers tag is read
    /// instead. Held while the first question is asked: the others wait for it.
    pub(super) referrers_api: tokio::sync::Mutex<Option<bool>>,
}

impl Registry {
    /// The scheme, client and credentials for `name`; refuses to send credentials
    /// over plain HTTP to another machine.
    async fn connect(
        name: &str,
        options: &RegistryOptions,
        counts: Arc<RequestCounts>,
    ) -> Result<Registry> {
        let host = api_host(name);
        let plain = speaks_plain_http(name, options).await;
        let (credentials, source) = resolve(name, options.credentials.as_ref())?;
        if plain && !is_loopback(host) && credentials != Found::Auth(RegistryAuth::Anonymous) {
            return Err(Error::Registry {
                registry: name.to_string(),
                message: format!(
                    "refusing to send credentials (from {source}) over plain HTTP to a host that is not this machine; use TLS (--ca-file for a private CA) or drop --insecure-registry"
                ),
            });
        }
        let scheme = if plain { "http" } else { "https" };
        let origin = format!("{scheme}://{host}");
        let home = reqwest::Url::parse(&origin).map_err(|e| Error::Registry {
            registry: name.to_string(),
            message: format!("{origin} is not a URL: {e}"),
        })?;
        Ok(Registry {
            name: name.to_string(),
            http: http_client(name, options, plain)?,
            origin,
            home,
            credentials,
            challenge: RwLock::new(None),
            tokens: Mutex::new(BTreeMap::new()),
            chunked: AtomicBool::new(name == "ghcr.io"),
            window: super::window::Window::new(options.registry_jobs()),
            counts,
            documents: super::scheduler::Documents::default(),
            tags: super::scheduler::TagMemo::default(),
            census: super::scheduler::TagCensus::default(),
            referrers_api: tokio::sync::Mutex::new(None),
        })
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge.read().expect("challenge lock").clone()
    }

    fn basic(&self) -> Option<String> {
        match &self.credentials {
            Found::Auth(RegistryAuth::Basic(user, password)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            _ => None,
        }
    }

    fn token_slot(&self, scopes: &[String]) -> Arc<tokio::sync::Mutex<Option<String>>> {
        Arc::clone(
            self.tokens
                .lock()
                .expect("token map")
                .entry(scopes.join(" "))
                .or_default(),
        )
    }

    /// The `Authorization` to send with a request for `scopes`, as far as the
    /// registry has told us how it authenticates (nothing before its first 401).
    async fn authorization(
        &self,
        scopes: &[String],
    ) -> std::result::Result<Option<String>, Failure> {
        match self.challenge() {
            None | Some(Challenge::Other(_)) => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic()),
            Some(Challenge::Bearer { realm, service }) => {
                let slot = self.token_slot(scopes);
                let mut held = slot.lock().await;
                if held.is_none() {
                    let token = self.token(&realm, service.as_deref(), scopes).await?;
                    *held = Some(format!("Bearer {token}"));
                }
                Ok(held.clone())
            }
        }
    }

    /// After a 401 to a request sent with `sent`: the registry's challenge is learnt,
    /// and fresh credentials made (a first token, or a new one for an expired one),
    /// unless another request renewed them meanwhile. `None`: nothing better to send.
    async fn renew(
        &self,
        scopes: &[String],
        sent: Option<&str>,
        challenge: Option<Challenge>,
    ) -> std::result::Result<Option<String>, Failure> {
        if let Some(challenge) = challenge {
            *self.challenge.write().expect("challenge lock") = Some(challenge);
        }
        match self.challenge() {
            None | Some(Challenge::Other(_)) => Ok(None),
            Some(Challenge::Basic) if matches!(self.credentials, Found::IdentityToken(_)) => {
                Err(Failure::Local(Error::Registry {
                    registry: self.name.clone(),
                    message: format!(
                        "the registry asks for Basic credentials; the stored identity token works only with the Bearer token flow: log in with a username and password (hoist login {})",
                        self.name
                    ),
                }))
            }
            // The same Basic credentials again would get the same answer.
            Some(Challenge::Basic) => Ok(self.basic().filter(|basic| Some(basic.as_str()) != sent)),
            Some(Challenge::Bearer { realm, service }) => {
                let slot = self.token_slot(scopes);
                let mut held = slot.lock().await;
                if held.is_some() && held.as_deref() != sent {
                    return Ok(held.clone());
                }
                let token = self.token(&realm, service.as_deref(), scopes).await?;
                *held = Some(format!("Bearer {token}"));
                Ok(held.clone())
            }
        }
    }

    /// A Bearer token for `scopes` from the token endpoint `realm`.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> std::result::Result<String, Failure> {
        match &self.credentials {
            Found::IdentityToken(refresh) => {
                super::token::refresh_grant(&self.http, realm, service, scopes, refresh).await
            }
            Found::Auth(RegistryAuth::Basic(user, password)) => {
                super::token::fetch(&self.http, realm, service, scopes, Some((user, password)))
                    .await
            }
            Found::Auth(RegistryAuth::Anonymous) => {
                super::token::fetch(&self.http, realm, service, scopes, None).await
            }
        }
    }

    /// Whether this registry was given credentials to present.
    fn has_credentials(&self) -> bool {
        self.credentials != Found::Auth(RegistryAuth::Anonymous)
    }

    /// Whether a request to `url` may carry this registry's credentials: only when it
    /// goes to the origin (scheme, host, port) the registry reference names. Every
    /// request asks, each redirect hop and upload `Location` included, so a storage
    /// host (and wherever it redirects to) or a `Location` elsewhere gets none, as
    /// with docker and crane. A hop from an HTTPS registry to plain HTTP is refused.
    pub(super) fn may_authorize(&self, url: &reqwest::Url) -> std::result::Result<bool, Failure> {
        if self.home.scheme() == "https" && url.scheme() != "https" {
            return Err(Failure::Refused(format!(
                "refusing to follow the registry from HTTPS to {}",
                without_query(url)
            )));
        }
        Ok(url.origin() == self.home.origin())
    }
}

/// `url` without its query (a pre-signed storage URL's query is a credential).
pub(super) fn without_query(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Requests to one repository of a registry, with the token scopes of its [`Access`].
pub struct Repository {
    pub(super) registry: Arc<Registry>,
    /// `acme/app`.
    pub(super) name: String,
    /// `SCHEME://HOST/v2/REPO`.
    pub(super) url: String,
    scopes: Vec<String>,
}

/// An answer to a request, and whether it was sent with credentials.
pub(super) struct Answered {
    pub(super) response: reqwest::Response,
    pub(super) authenticated: bool,
    /// When the request was sent: a document's deadline counts from here.
    pub(super) started: tokio::time::Instant,
    /// Its place among the requests in flight, given back when the answer is dropped
    /// (its body read or abandoned). Drop an answer before the next request of the
    /// same task: holding one while waiting for another permit could wait forever.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Answered {
    pub(super) fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The answer as a failure: status, `Retry-After` and the registry's errors.
    pub(super) async fn failure(self) -> Failure {
        let status = self.response.status();
        let retry_after = self
            .response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| super::retry::retry_after(v, SystemTime::now()));
        let body = pace::document(self.response, self.started, ERROR_BODY_LIMIT)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let errors = parse_errors(&body);
        let detail = (errors.is_empty() && !body.is_empty())
            .then(|| {
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty());
        Failure::Status {
            status,
            retry_after,
            errors,
            detail,
            authenticated: self.authenticated,
        }
    }
}

impl Answered {
    /// Reads the rest of a small body (a 404's error document) so that the
    /// connection goes back to the pool: an answer dropped unread closes it, and the
    /// next request pays for a new connection (a TLS handshake on a real network).
    /// Bounded like an error body; a longer one closes the connection after all.
    pub(super) async fn drain(self) {
        let _ = pace::document(self.response, self.started, ERROR_BODY_LIMIT).await;
    }

    /// Up to `limit` bytes of the body, whole within the deadline ([`pace`]);
    /// `Ok(None)` when it is longer or breaks off.
    pub(super) async fn document(
        self,
        limit: usize,
    ) -> std::result::Result<Option<Vec<u8>>, Failure> {
        pace::document(self.response, self.started, limit).await
    }
}

/// How one request went wrong.
#[derive(Debug)]
pub(super) enum Failure {
    /// The registry (or its token server) answered with an error status.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        errors: Vec<RegistryError>,
        detail: Option<String>,
        authenticated: bool,
    },
    /// No answer: connection refused or reset, timeout, a body cut off.
    Transport(String),
    /// Something local (reading the blob's file), or a refusal of ours.
    Local(Error),
    /// What hoist will not take (final, not retried): an answer slower than the
    /// bounds of [`pace`], a hop from HTTPS to plain HTTP, a 401 from another origin.
    Refused(String),
    /// The registry refused the blob in one request (413): try again in chunks.
    SwitchToChunks,
}

impl Failure {
    /// The retry policy.
    pub(super) fn retry(&self) -> Again {
        match self {
            Failure::Status {
                status,
                retry_after,
                errors,
                ..
            } if is_transient_status(status.as_u16())
                || errors
                    .iter()
                    .any(|e| e.code == Some(ErrorCode::TooManyRequests)) =>
            {
                retry_after.map_or(Again::Backoff, Again::After)
            }
            Failure::Transport(_) => Again::Backoff,
            Failure::SwitchToChunks => Again::After(Duration::ZERO),
            _ => Again::Never,
        }
    }
}

pub(super) fn transport_failure(error: &reqwest::Error) -> Failure {
    // A host that does not resolve stays so for longer than any backoff: final.
    if let Some(unresolved) = super::dns::unresolved(error) {
        return Failure::Refused(format!(
            "{unresolved} (the name does not resolve: check its spelling, DNS and the network; not retried)"
        ));
    }
    Failure::Transport(super::describe(error))
}

impl Repository {
    fn new(registry: Arc<Registry>, name: &str, access: Access<'_>) -> Repository {
        let scopes = match access {
            Access::Pull => vec![format!("repository:{name}:pull")],
            // A mount needs pull on the source as well as push on the target, as
            // go-containerregistry asks.
            Access::Push { mount_from } => std::iter::once(format!("repository:{name}:pull,push"))
                .chain(
                    mount_from
                        .iter()
                        .filter(|source| **source != name)
                        .map(|source| format!("repository:{source}:pull")),
                )
                .collect(),
        };
        Repository {
            url: format!("{}/v2/{name}", registry.origin),
            name: name.to_string(),
            registry,
            scopes,
        }
    }

    /// Requests to another repository of the registry under this handle's scopes and
    /// token (which cover it when it is one of a push handle's mount sources).
    pub fn sibling(&self, name: &str) -> Repository {
        Repository {
            registry: Arc::clone(&self.registry),
            name: name.to_string(),
            url: format!("{}/v2/{name}", self.registry.origin),
            scopes: self.scopes.clone(),
        }
    }

    /// `REGISTRY/REPO`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.registry.name, self.name)
    }

    pub(super) fn http(&self) -> &reqwest::Client {
        &self.registry.http
    }

    /// Sends with the credentials this repository's scopes have; a 401 gets fresh
    /// ones (the registry's first challenge, or a renewal) and one more try.
    pub(super) async fn send(
        &self,
        request: impl Fn() -> std::result::Result<reqwest::RequestBuilder, Failure>,
    ) -> std::result::Result<Answered, Failure> {
        self.send_streaming(|| Ok((request()?, None))).await
    }

    /// [`Self::send`] of a request whose body we stream and meter (an upload): the
    /// pace of its sending is judged ([`pace`]).
    pub(super) async fn send_streaming(
        &self,
        request: impl Fn() -> std::result::Result<(reqwest::RequestBuilder, Option<Sending>), Failure>,
    ) -> std::result::Result<Answered, Failure> {
        let registry = &self.registry;
        let (builder, sending) = request()?;
        let built = builder.build().map_err(|e| transport_failure(&e))?;
        if !registry.may_authorize(built.url())? {
            // Elsewhere (a storage host, a foreign upload Location): no credentials,
            // and its 401 teaches nothing about the registry's challenge.
            let shown = without_query(built.url());
            let answered = self.exchange(built, sending.as_ref(), None).await?;
            if answered.status() == StatusCode::UNAUTHORIZED {
                return Err(Failure::Refused(format!(
                    "{shown} wants credentials (401), but it is not the registry's origin {}, the only one they go to",
                    registry.origin
                )));
            }
            return Ok(answered);
        }
        let current = registry.authorization(&self.scopes).await?;
        let answered = self
            .exchange(built, sending.as_ref(), current.as_deref())
            .await?;
        if answered.status() != StatusCode::UNAUTHORIZED {
            return Ok(answered);
        }
        let challenge = answered
            .response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse);
        let Some(renewed) = registry
            .renew(&self.scopes, current.as_deref(), challenge)
            .await?
        else {
            return Ok(answered);
        };
        drop(answered);
        let (builder, sending) = request()?;
        let built = builder.build().map_err(|e| transport_failure(&e))?;
        self.exchange(built, sending.as_ref(), Some(&renewed)).await
    }

    /// One request with `authorization` (when given), under the time bounds.
    async fn exchange(
        &self,
        mut request: reqwest::Request,
        sending: Option<&Sending>,
        authorization: Option<&str>,
    ) -> std::result::Result<Answered, Failure> {
        if let Some(value) = authorization {
            let mut value = header::HeaderValue::from_str(value).map_err(|_| {
                Failure::Transport("the registry's token is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let permit = self
            .registry
            .window
            .enter()
            .await
            .map_err(|_| Failure::Transport("the request limiter was closed".into()))?;
        self.registry
            .counts
            .count(&self.display(), request.method().as_str());
        let started = tokio::time::Instant::now();
        let response = pace::head(self.http(), request, sending).await?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS
            && let Some(bound) = self.registry.window.too_many(started)
        {
            self.registry.counts.cut(&self.registry.name, bound);
        }
        Ok(Answered {
            response,
            authenticated: authorization.is_some() && self.registry.has_credentials(),
            started,
            _permit: permit,
        })
    }

    /// [`Self::send`] of a request that cannot fail to build.
    pub(super) async fn send_simple(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<Answered, Failure> {
        self.send(|| Ok(request())).await
    }

    /// `operation` under the retry policy.
    pub(super) async fn retrying<T, F, Fut>(&self, operation: F) -> std::result::Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        retrying(operation, Failure::retry).await
    }

    /// The error a failed request ends in: `subject` names what it was about (a
    /// reference), `request` what was asked.
    pub(super) fn error(
        &self,
        subject: String,
        request: String,
        lookup: Option<Lookup>,
        failure: Failure,
    ) -> Error {
        match failure {
            Failure::Status {
                status,
                errors,
                detail,
                authenticated,
                ..
            } => Error::RegistryAnswer(Box::new(RegistryAnswer {
                reference: subject,
                registry: self.registry.name.clone(),
                request,
                lookup,
                status: status.as_u16(),
                errors,
                detail,
                authenticated,
            })),
            Failure::Transport(message) | Failure::Refused(message) => Error::Registry {
                registry: self.registry.name.clone(),
                message: format!("{subject}: {request}: {message}"),
            },
            Failure::Local(error) => error,
            Failure::SwitchToChunks => Error::Registry {
                registry: self.registry.name.clone(),
                message: format!(
                    "{subject}: {request}: the blob is too large for one request (413), also in chunks"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            errors: Vec::new(),
            detail: None,
            authenticated: false,
        }
    }

    #[test]
    fn the_retry_policy_covers_fetches_and_pushes_alike() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert_eq!(status(code).retry(), Again::Backoff, "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert_eq!(status(code).retry(), Again::Never, "{code}");
        }
        let asked = Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(2)),
            errors: Vec::new(),
            detail: None,
            authenticated: false,
        };
        assert_eq!(asked.retry(), Again::After(Duration::from_secs(2)));
        assert_eq!(Failure::Transport("reset".into()).retry(), Again::Backoff);
        // Too slow is final: six attempts would make the bound six times longer.
        assert_eq!(Failure::Refused("too slow".into()).retry(), Again::Never);
        let local = Failure::Local(Error::InvalidValue {
            field: "x".into(),
            message: "y".into(),
        });
        assert_eq!(local.retry(), Again::Never);
    }

    fn registry(origin: &str) -> Registry {
        // main() installs the TLS provider; a client cannot be built without one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Registry {
            name: "127.0.0.1:5000".into(),
            http: reqwest::Client::new(),
            origin: origin.into(),
            home: reqwest::Url::parse(origin).unwrap(),
            credentials: Found::Auth(RegistryAuth::Anonymous),
            challenge: RwLock::new(None),
            tokens: Mutex::new(BTreeMap::new()),
            chunked: AtomicBool::new(false),
            window: crate::registry::window::Window::new(1),
            counts: Arc::default(),
            documents: crate::registry::scheduler::Documents::default(),
            tags: crate::registry::scheduler::TagMemo::default(),
            census: crate::registry::scheduler::TagCensus::default(),
            referrers_api: tokio::sync::Mutex::new(None),
        }
    }

    fn judged(registry: &Registry, url: &str) -> std::result::Result<bool, String> {
        registry
            .may_authorize(&reqwest::Url::parse(url).unwrap())
            .map_err(|f| format!("{f:?}"))
    }

    #[test]
    fn credentials_go_to_the_registry_origin_only() {
        let plain = registry("http://127.0.0.1:5000");
        assert_eq!(
            judged(&plain, "http://127.0.0.1:5000/v2/a/blobs/x"),
            Ok(true)
        );
        // Another port, another loopback address, a name for the same address, another
        // scheme: other origins.
        for elsewhere in [
            "http://127.0.0.1:5001/v2/a/blobs/x",
            "http://127.0.0.2:5000/v2/a/blobs/x",
            "http://localhost:5000/v2/a/blobs/x",
            "https://127.0.0.1:5000/v2/a/blobs/x",
        ] {
            assert_eq!(judged(&plain, elsewhere), Ok(false), "{elsewhere}");
        }
        let tls = registry("https://registry.example");
        assert_eq!(judged(&tls, "https://registry.example:443/v2/x"), Ok(true));
        assert_eq!(judged(&tls, "https://REGISTRY.example/v2/x"), Ok(true));
        assert_eq!(judged(&tls, "https://storage.example/x?sig=1"), Ok(false));
        assert_eq!(judged(&tls, "https://registry.example:8443/x"), Ok(false));
        let refused = judged(&tls, "http://registry.example/v2/x?sig=secret").unwrap_err();
        assert!(
            refused.contains(
                "refusing to follow the registry from HTTPS to http://registry.example/v2/x"
            ) && !refused.contains("secret"),
            "{refused}"
        );
    }

    #[test]
    fn scopes_follow_access() {
        let registry = Arc::new(registry("http://127.0.0.1:5000"));
        let pull = Repository::new(Arc::clone(&registry), "acme/app", Access::Pull);
        assert_eq!(pull.scopes, ["repository:acme/app:pull"]);
        assert_eq!(pull.url, "http://127.0.0.1:5000/v2/acme/app");
        let push = Repository::new(
            registry,
            "acme/app",
            Access::Push {
                mount_from: &["library/base", "acme/app"],
            },
        );
        assert_eq!(
            push.scopes,
            [
                "repository:acme/app:pull,push",
                "repository:library/base:pull"
            ]
        );
    }
}
