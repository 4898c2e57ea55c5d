//! The requests of a push (blobs, then manifests and tags), spoken directly (reqwest,
//! as oci-client does) for what
//! oci-client hides: a `Retry-After` on a 429 or 503 is waited for, and a token that
//! expires mid-push (a 401 after it worked) is renewed and the request made again.
//! Tokens still come from oci-client's `auth` (the Bearer flow of Docker Hub, GHCR…).
//!
//! Per blob, one straight line as go-containerregistry's `uploadOne`: `HEAD` → present:
//! done; else `POST …/uploads/?mount=&from=` when another repository of the registry
//! holds it (201: done); else `POST …/uploads/` for a session and one streamed `PUT`
//! with `Content-Length` and `?digest=` (the registry checks the digest). A registry
//! that caps a request's size (GHCR, or any that answers a whole blob with 413) gets
//! `PATCH`es of 4 MiB (or its `OCI-Chunk-Min-Length`, if larger) and a closing `PUT`.
//! Each retry of an upload opens a new session and reads the file again.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use hoist_layers::Digest;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use reqwest::{StatusCode, header};
use tokio::io::AsyncReadExt as _;
use tokio::sync::RwLock;
use tokio_util::io::ReaderStream;

use super::client::{Credentials, RegistryOptions, http_client};
use super::login::{Challenge, bearer_token};
use super::retry::{ATTEMPTS, backoff};
use crate::error::{Error, Result};

/// The longest `Retry-After` honoured: a registry asking for more is asked again sooner
/// rather than left to stall the push.
const LONGEST_RETRY_AFTER: Duration = Duration::from_mins(1);

/// What a blob's bytes are read from.
pub enum BlobBody<'a> {
    /// In memory (configs).
    Bytes(&'a [u8]),
    /// A file, streamed.
    File(&'a Path),
}

/// The requests of a push to one repository.
pub struct PushClient {
    credentials: RegistryAuth,
    /// What a token is asked for: push to the target, pull from mount sources.
    scopes: Vec<String>,
    target: Reference,
    registry: String,
    http: reqwest::Client,
    /// `SCHEME://HOST/v2/REPO`.
    repository_url: String,
    /// The `Authorization` value in use; `None` until a registry asks for one.
    authorization: RwLock<Option<String>>,
    /// Upload in chunks rather than one `PUT`: GHCR from the start (it caps a request
    /// body), any registry once it has answered a whole blob with 413.
    chunked: AtomicBool,
}

/// An open upload session.
struct Session {
    /// Where the next request of the upload goes.
    url: reqwest::Url,
    /// `OCI-Chunk-Min-Length`: the smallest chunk the registry takes (0: any).
    min_chunk: u64,
}

/// The chunk size: 4 MiB (GHCR's cap on a request body), or the registry's minimum
/// when that is larger.
fn chunk_size(min_chunk: u64) -> u64 {
    const CHUNK: u64 = 4 << 20;
    CHUNK.max(min_chunk)
}

/// The `Location` an upload answer names, resolved against the request's URL.
fn next_location(response: &reqwest::Response) -> std::result::Result<reqwest::Url, Failure> {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| Failure::Transport(format!("{} without a Location", response.status())))?;
    response
        .url()
        .join(location)
        .map_err(|e| Failure::Transport(format!("bad Location `{location}`: {e}")))
}

fn local(path: &Path, source: std::io::Error) -> Failure {
    Failure::Local(Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// How one request went wrong.
#[derive(Debug)]
enum Failure {
    /// The registry answered with an error status.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No answer: connection refused or reset, timeout, a body cut off.
    Transport(String),
    /// Something local (reading the blob's file).
    Local(Error),
    /// The registry refused the blob in one request (413): try again in chunks.
    SwitchToChunks,
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            Failure::Transport(_) | Failure::SwitchToChunks => true,
            Failure::Local(_) => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status {
                status, message, ..
            } => write!(f, "{status}: {message}"),
            Failure::Transport(message) => f.write_str(message),
            Failure::Local(error) => write!(f, "{error}"),
            Failure::SwitchToChunks => f.write_str("413: the blob is too large for one request"),
        }
    }
}

/// What a mount request achieved.
pub enum Mount {
    /// The blob is in the repository now.
    Mounted,
    /// The registry declined (or could not: no access to the source); upload it.
    Declined,
}

impl PushClient {
    /// Requests to `target`'s repository with `credentials`, which may
    /// mount blobs from the repositories `mount_sources` (of the same registry).
    pub fn new(
        credentials: &Credentials,
        target: &Reference,
        mount_sources: &[&str],
        options: &RegistryOptions,
    ) -> Result<PushClient> {
        let registry = target.resolve_registry().to_string();
        let plain = credentials.plain;
        let scheme = if plain { "http" } else { "https" };
        Ok(PushClient {
            credentials: credentials.auth.clone(),
            scopes: std::iter::once(format!("repository:{}:pull,push", target.repository()))
                .chain(
                    mount_sources
                        .iter()
                        .filter(|source| **source != target.repository())
                        .map(|source| format!("repository:{source}:pull")),
                )
                .collect(),
            repository_url: format!("{scheme}://{registry}/v2/{}", target.repository()),
            http: http_client(&registry, options, plain)?,
            target: target.clone(),
            // GHCR caps the size of one request: chunks from the start.
            chunked: AtomicBool::new(registry == "ghcr.io"),
            registry,
            authorization: RwLock::new(None),
        })
    }

    fn error(&self, what: &str, failure: &Failure) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message: format!("{what} ({}): {failure}", self.target.repository()),
        }
    }

    /// Whether the repository holds the blob (`HEAD`).
    pub async fn exists(&self, digest: &Digest) -> Result<bool> {
        let url = format!("{}/blobs/{digest}", self.repository_url);
        self.retrying(|| async {
            let response = self.send(|| self.http.head(&url)).await?;
            match response.status() {
                StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(failure_of(response).await),
            }
        })
        .await
        .map_err(|f| self.error(&format!("HEAD of blob {digest}"), &f))
    }

    /// Asks the registry to mount the blob from another repository of its own.
    pub async fn mount(&self, digest: &Digest, from: &Reference) -> Mount {
        let url = format!("{}/blobs/uploads/", self.repository_url);
        let query = [("mount", digest.as_str()), ("from", from.repository())];
        let outcome = self
            .retrying(|| async {
                let response = self.send(|| self.http.post(&url).query(&query)).await?;
                match response.status() {
                    StatusCode::CREATED => Ok(Mount::Mounted),
                    // 202: it opened an upload session instead (no access to the
                    // source, or mounting disabled); the session is left to expire.
                    status if status.is_success() => Ok(Mount::Declined),
                    _ => Err(failure_of(response).await),
                }
            })
            .await;
        outcome.unwrap_or(Mount::Declined)
    }

    /// Uploads the blob: a new session, then one streamed `PUT` (or, for a registry
    /// that needs it, `PATCH`es of a bounded size and a closing `PUT`).
    pub async fn upload(&self, digest: &Digest, size: u64, body: &BlobBody<'_>) -> Result<()> {
        self.retrying(|| async {
            let session = self.start_session().await?;
            if self.chunked.load(Ordering::Relaxed) {
                self.put_chunks(digest, size, body, session).await
            } else {
                self.put_whole(digest, size, body, session).await
            }
        })
        .await
        .map_err(|f| self.error(&format!("uploading blob {digest}"), &f))
    }

    /// `POST …/blobs/uploads/`: the session's URL and the registry's smallest chunk.
    async fn start_session(&self) -> std::result::Result<Session, Failure> {
        let start = format!("{}/blobs/uploads/", self.repository_url);
        let response = expect(
            self.send(|| self.http.post(&start)).await?,
            StatusCode::ACCEPTED,
        )
        .await?;
        let min_chunk = response
            .headers()
            .get("OCI-Chunk-Min-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Session {
            url: next_location(&response)?,
            min_chunk,
        })
    }

    /// One `PUT ?digest=` with the whole blob, streamed.
    async fn put_whole(
        &self,
        digest: &Digest,
        size: u64,
        body: &BlobBody<'_>,
        session: Session,
    ) -> std::result::Result<(), Failure> {
        let mut url = session.url;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let request = || -> std::result::Result<reqwest::RequestBuilder, Failure> {
            let put = self
                .http
                .put(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size);
            Ok(match body {
                BlobBody::Bytes(bytes) => put.body(bytes.to_vec()),
                BlobBody::File(path) => {
                    let file = std::fs::File::open(path).map_err(|e| local(path, e))?;
                    let stream =
                        ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20);
                    put.body(reqwest::Body::wrap_stream(stream))
                }
            })
        };
        let response = self.send_fallible(request).await?;
        match response.status() {
            StatusCode::CREATED => Ok(()),
            // The registry will not take the blob in one request: from now on it gets
            // chunks (a fresh session; the retry comes at once).
            StatusCode::PAYLOAD_TOO_LARGE => {
                self.chunked.store(true, Ordering::Relaxed);
                Err(Failure::SwitchToChunks)
            }
            _ => Err(failure_of(response).await),
        }
    }

    /// `PATCH`es of [`chunk_size`] bytes with `Content-Range`, each to the location the
    /// previous answer gave, then `PUT ?digest=` with no body.
    async fn put_chunks(
        &self,
        digest: &Digest,
        size: u64,
        body: &BlobBody<'_>,
        session: Session,
    ) -> std::result::Result<(), Failure> {
        let chunk = chunk_size(session.min_chunk);
        let mut url = session.url;
        let mut file = match body {
            BlobBody::File(path) => Some((
                tokio::fs::File::open(path)
                    .await
                    .map_err(|e| local(path, e))?,
                *path,
            )),
            BlobBody::Bytes(_) => None,
        };
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let bytes = match (&mut file, body) {
                (Some((file, path)), _) => {
                    let mut buffer = vec![0u8; usize::try_from(length).unwrap_or(usize::MAX)];
                    file.read_exact(&mut buffer)
                        .await
                        .map_err(|e| local(path, e))?;
                    buffer
                }
                (None, BlobBody::Bytes(bytes)) => bytes
                    [usize::try_from(offset).unwrap_or(usize::MAX)..]
                    [..usize::try_from(length).unwrap_or(usize::MAX)]
                    .to_vec(),
                (None, BlobBody::File(_)) => unreachable!("a file body has its file"),
            };
            let range = format!("{offset}-{}", offset + length - 1);
            let response = self
                .send(|| {
                    self.http
                        .patch(url.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, range.as_str())
                        .header(header::CONTENT_LENGTH, length)
                        .body(bytes.clone())
                })
                .await?;
            let response = expect(response, StatusCode::ACCEPTED).await?;
            url = next_location(&response)?;
            offset += length;
        }
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let response = self
            .send(|| self.http.put(url.clone()).header(header::CONTENT_LENGTH, 0))
            .await?;
        expect(response, StatusCode::CREATED).await.map(drop)
    }

    /// `PUT …/manifests/REFERENCE` (a digest or a tag) of a manifest or index's exact
    /// bytes.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let url = format!("{}/manifests/{reference}", self.repository_url);
        self.retrying(|| async {
            let response = self
                .send(|| {
                    self.http
                        .put(&url)
                        .header(header::CONTENT_TYPE, media_type)
                        .body(bytes.to_vec())
                })
                .await?;
            expect(response, StatusCode::CREATED).await.map(drop)
        })
        .await
        .map_err(|f| self.error(&format!("putting manifest {reference}"), &f))
    }

    /// `operation` until it succeeds, fails for good, or has had [`ATTEMPTS`]; waits
    /// as long as the registry's `Retry-After` says, else backs off.
    async fn retrying<T, F, Fut>(&self, mut operation: F) -> std::result::Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut attempt = 0;
        loop {
            match operation().await {
                Err(failure) if attempt + 1 < ATTEMPTS && failure.is_transient() => {
                    let wait = match &failure {
                        Failure::Status {
                            retry_after: Some(wait),
                            ..
                        } => (*wait).min(LONGEST_RETRY_AFTER),
                        Failure::SwitchToChunks => Duration::ZERO,
                        _ => backoff(attempt),
                    };
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<reqwest::Response, Failure> {
        self.send_fallible(|| Ok(request())).await
    }

    /// Sends with the current credentials; a 401 gets fresh ones (a first token, or a
    /// renewed one when it expired mid-push) and one more try.
    async fn send_fallible(
        &self,
        request: impl Fn() -> std::result::Result<reqwest::RequestBuilder, Failure>,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let current = self.authorization.read().await.clone();
        let response = with_authorization(request()?, current.as_deref())
            .send()
            .await
            .map_err(|e| transport(&e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse);
        let renewed = self.authenticate(challenge).await?;
        if renewed.is_none() {
            return Ok(response);
        }
        with_authorization(request()?, renewed.as_deref())
            .send()
            .await
            .map_err(|e| transport(&e))
    }

    /// New credentials for what the registry's challenge asks: for the Bearer flow, a
    /// token for pushing to the repository and pulling from the repositories blobs may
    /// be mounted from (a mount needs both, as go-containerregistry asks); for Basic,
    /// the user and password. `None` when there are none to give.
    async fn authenticate(
        &self,
        challenge: Option<Challenge>,
    ) -> std::result::Result<Option<String>, Failure> {
        let refused = |message: String| Failure::Status {
            status: StatusCode::UNAUTHORIZED,
            retry_after: None,
            message: format!("authentication failed: {message}"),
        };
        let value = match (challenge, &self.credentials) {
            // An access token traded for an identity token: the one we have.
            (_, RegistryAuth::Bearer(token)) => Some(format!("Bearer {token}")),
            (Some(Challenge::Bearer { realm, service }), credentials) => {
                let basic = match credentials {
                    RegistryAuth::Basic(user, password) => Some((user.as_str(), password.as_str())),
                    _ => None,
                };
                let token =
                    bearer_token(&self.http, &realm, service.as_deref(), &self.scopes, basic)
                        .await
                        .map_err(refused)?;
                Some(format!("Bearer {token}"))
            }
            (_, RegistryAuth::Basic(user, password)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            (_, RegistryAuth::Anonymous) => None,
        };
        value.clone_into(&mut *self.authorization.write().await);
        Ok(value)
    }
}

fn with_authorization(
    request: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> reqwest::RequestBuilder {
    match authorization {
        Some(value) => request.header(header::AUTHORIZATION, value),
        None => request,
    }
}

fn transport(error: &reqwest::Error) -> Failure {
    Failure::Transport(super::describe(error))
}

/// `response` if it has the status a successful step answers, else its failure.
async fn expect(
    response: reqwest::Response,
    status: StatusCode,
) -> std::result::Result<reqwest::Response, Failure> {
    if response.status() == status {
        Ok(response)
    } else {
        Err(failure_of(response).await)
    }
}

/// An error answer: its status, `Retry-After` (seconds) and the registry's message.
async fn failure_of(response: reqwest::Response) -> Failure {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["code"].as_str().unwrap_or_default(),
                            e["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    Failure::Status {
        status,
        retry_after,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            message: String::new(),
        }
    }

    #[test]
    fn chunks_are_4_mib_unless_the_registry_wants_more() {
        assert_eq!(chunk_size(0), 4 << 20);
        assert_eq!(chunk_size(1 << 20), 4 << 20);
        assert_eq!(chunk_size(10 << 20), 10 << 20);
    }

    #[test]
    fn transient_answers_are_told_from_final_ones() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(Failure::Transport("connection reset".into()).is_transient());
        let local = Failure::Local(Error::InvalidValue {
            field: "x".into(),
            message: "y".into(),
        });
        assert!(!local.is_transient());
    }
}
