//! A real OCI registry for the push tests: Debian's `docker-registry` (the CNCF
//! distribution registry 2.8) serving plain HTTP on 127.0.0.1, one per test, with its
//! storage, config and log in a temporary directory of its own.
//!
//! The registry writes an Apache combined-format access log line per request to its
//! stdout, next to its own logrus lines on stderr; both go to one file, and
//! [`Registry::requests`] reads the access lines back, in the order the registry
//! finished the requests:
//!
//! ```text
//! 127.0.0.1 - - [23/Nov/2026:12:38:13 +0000] "PUT /v2/acme/x/blobs/uploads/f868…?_state=…&digest=sha256%3A2c33… HTTP/1.1" 201 0 "" "skopeo/1.9.3"
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use tempfile::TempDir;

use crate::common::{require_tool, stderr, stdout, tool_within};

/// How long a registry may take to answer `GET /v2/` after it was started.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How often the start-up wait polls.
const POLL: Duration = Duration::from_millis(50);
/// Fresh ports tried when the registry cannot bind the one it was given.
const START_ATTEMPTS: usize = 5;
/// The registry's log file (stdout and stderr), in its temp dir.
const LOG: &str = "registry.log";
/// The query that marks the harness's own sync requests in the access log.
const SYNC_QUERY: &str = "hoist-test-sync=";

/// One request from the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as logged: path and query, percent-encoding kept.
    pub path: String,
    pub status: u16,
}

impl Request {
    /// The path without its query.
    pub fn route(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(route, _)| route)
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }

    /// The digest of the blob a successful request finished uploading: the closing
    /// `PUT …/blobs/uploads/<id>?digest=…` of a chunked or monolithic upload, or a
    /// single `POST …/blobs/uploads/?digest=…`. Cross-repository mounts
    /// (`POST …?mount=…&from=…`) are not uploads.
    pub fn uploaded_blob(&self) -> Option<String> {
        let completes = match self.method.as_str() {
            "PUT" => true,
            "POST" => self.query("mount").is_none(),
            _ => false,
        };
        if completes && self.status == 201 && self.route().contains("/blobs/uploads/") {
            self.query("digest")
        } else {
            None
        }
    }

    /// The blob a successful cross-repository mount (`POST …?mount=<digest>&from=…`,
    /// answered 201) linked in.
    pub fn mounted_blob(&self) -> Option<String> {
        if self.method == "POST" && self.status == 201 && self.route().contains("/blobs/uploads/") {
            self.query("mount")
        } else {
            None
        }
    }

    /// Whether this request is part of a blob upload (start, chunk or finish).
    pub fn is_upload_traffic(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT")
            && self.route().contains("/blobs/uploads/")
    }

    /// `Some(reference)` for a manifest PUT (`PUT /v2/<repo>/manifests/<reference>`),
    /// the reference being a tag or a `sha256:` digest.
    pub fn manifest_put(&self) -> Option<&str> {
        if self.method != "PUT" {
            return None;
        }
        let (_, reference) = self.route().rsplit_once("/manifests/")?;
        Some(reference)
    }

    /// `Some(digest)` for a `HEAD /v2/<repo>/blobs/<digest>`.
    pub fn blob_head(&self) -> Option<&str> {
        if self.method != "HEAD" {
            return None;
        }
        let (_, digest) = self.route().rsplit_once("/blobs/")?;
        (!digest.contains('/')).then_some(digest)
    }

    /// `Some(digest)` for a blob download: `GET /v2/<repo>/blobs/<digest>`, whatever
    /// the answer.
    pub fn blob_get(&self) -> Option<&str> {
        if self.method != "GET" {
            return None;
        }
        let (_, digest) = self.route().rsplit_once("/blobs/")?;
        (!digest.contains('/')).then_some(digest)
    }

    /// The repository a `/v2/<repo>/(blobs|manifests)/…` request is about.
    pub fn repository(&self) -> Option<&str> {
        let rest = self.route().strip_prefix("/v2/")?;
        ["/blobs/", "/manifests/"]
            .iter()
            .filter_map(|kind| rest.rsplit_once(kind).map(|(repo, _)| repo))
            .min_by_key(|repo| repo.len())
    }
}

/// The longest any registry command in the tests may take (they move ~2 MiB over
/// loopback).
pub const HOIST_LIMIT: Duration = Duration::from_mins(2);
/// How long a command aimed at a dead registry may take to give up.
pub const DEAD_LIMIT: Duration = Duration::from_mins(1);

/// Runs `command` with a time limit; panics if it had to be killed.
pub fn run(command: &mut Command, limit: Duration) -> Output {
    let started = Instant::now();
    let output = command
        .timeout(limit)
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let took = started.elapsed();
    assert!(
        took < limit && output.status.signal().is_none(),
        "{command:?} did not finish within {limit:?} (killed: {}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    output
}

/// Runs `command` (bounded by [`HOIST_LIMIT`]), asserting exit 0; the registry log's
/// tail is in the message.
pub fn ok(command: &mut Command, registry: &Registry) -> Output {
    let output = run(command, HOIST_LIMIT);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\nregistry log:\n{}",
        output.status,
        stdout(&output),
        stderr(&output),
        registry.log_tail()
    );
    output
}

/// Runs `command` (bounded by `limit`), asserting exit 1 (a failure: docs/cli.md,
/// "Exit codes"; 2 would mean bad usage) with an error message; returns stderr.
pub fn fails(command: &mut Command, limit: Duration) -> String {
    let output = run(command, limit);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} should fail with exit 1, it exited {}:\nstdout:\n{}\nstderr:\n{err}",
        output.status,
        stdout(&output)
    );
    assert!(
        err.contains("error"),
        "a failure should print an error message, got stderr:\n{err}"
    );
    err
}

/// `skopeo inspect --raw` of `<repo>:<tag>` (or `@digest`) on the registry (bounded).
pub fn skopeo_raw(registry: &Registry, reference: &str) -> Vec<u8> {
    tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &registry.docker(reference),
        ],
    )
    .into_bytes()
}

/// An HTTP response from [`Registry::http_get`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A running `docker-registry serve`, killed when dropped.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
    syncs: AtomicU32,
    /// An `auth:` section is configured: unauthenticated requests get 401.
    auth: bool,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers
    /// 200. Panics (with the log's tail) if it does not within 10 s.
    pub fn start() -> Registry {
        Registry::start_with_auth(None)
    }

    /// Like [`Registry::start`], with `auth` (a top-level `auth:` YAML section, e.g. a
    /// `token:` block) appended to the config. With auth, the start-up wait takes the
    /// registry's 401 on `GET /v2/` as ready.
    pub fn start_with_auth(auth: Option<&str>) -> Registry {
        let ready = if auth.is_some() { 401 } else { 200 };
        Registry::start_with_config(auth, ready)
    }

    /// Like [`Registry::start`], with `extra` appended to the config right after the
    /// `http:` section's keys (so it may continue it, e.g. with an indented `tls:`
    /// block, then add top-level sections such as `auth:`); ready when a plain
    /// `GET /v2/` answers `ready` (400 for a registry that speaks TLS).
    pub fn start_with_config(extra: Option<&str>, ready: u16) -> Registry {
        let auth = extra;
        require_tool("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .expect("creating the registry's temp dir");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(dir.path(), port, auth);
            match wait_ready(&mut child, port, &dir.path().join(LOG), ready) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        dir,
                        syncs: AtomicU32::new(0),
                        auth: auth.is_some(),
                    };
                }
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        log.contains("address already in use"),
                        "docker-registry did not start on 127.0.0.1:{port}; its log ends with:\n{}",
                        tail(&log, 40)
                    );
                    // Someone took the port between our probe and the registry's bind.
                    last_log = log;
                }
            }
        }
        panic!(
            "docker-registry could not bind a free port in {START_ATTEMPTS} attempts; \
             last log:\n{}",
            tail(&last_log, 40)
        );
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<repo>` (plus `:tag` or `@digest` if the caller appends one).
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// `docker://127.0.0.1:PORT/<reference>`, for skopeo.
    pub fn docker(&self, reference: &str) -> String {
        format!("docker://{}/{reference}", self.host())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG)
    }

    /// The whole log: logrus lines and access lines.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last lines of the log, for assertion messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 60)
    }

    /// Every request the registry has answered so far, in log order.
    ///
    /// The registry logs a request just after answering it, so a client that has just
    /// exited may be ahead of the log. This first sends a marked request of its own and
    /// waits (bounded) until that is logged; the marked requests are left out.
    pub fn requests(&self) -> Vec<Request> {
        let n = self.syncs.fetch_add(1, Ordering::Relaxed);
        let marker = format!("/v2/?{SYNC_QUERY}{n}");
        let response = self
            .http_get(&marker, &[])
            .unwrap_or_else(|e| panic!("GET {marker} on {}: {e}", self.host()));
        let expected = if self.auth { 401 } else { 200 };
        assert_eq!(
            response.status,
            expected,
            "GET {marker}:\n{}",
            self.log_tail()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let requests = parse_access_log(&self.log());
            if requests.iter().any(|r| r.path == marker) {
                return requests
                    .into_iter()
                    .filter(|r| !r.path.contains(SYNC_QUERY))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not log {marker} within 5 s; its log ends with:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A plain HTTP/1.0 GET of `path` on the registry.
    pub fn http_get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        http_get(self.port, path, headers)
    }

    /// The bytes of `<repo>`'s manifest `reference` (tag or digest), as stored.
    pub fn manifest(&self, repo: &str, reference: &str) -> Vec<u8> {
        let accept = [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
        .join(", ");
        let path = format!("/v2/{repo}/manifests/{reference}");
        let response = self
            .http_get(&path, &[("Accept", &accept)])
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.host()));
        assert_eq!(
            response.status,
            200,
            "GET {path}: {}\n{}",
            String::from_utf8_lossy(&response.body),
            self.log_tail()
        );
        response.body
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `GET /v2/` until it answers 200 (401 with `auth`); on failure returns the log
/// and why.
fn wait_ready(child: &mut Child, port: u16, log: &Path, ready: u16) -> Result<(), String> {
    let read_log = || {
        fs::read(log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + START_LIMIT;
    let polls = START_LIMIT.as_millis() / POLL.as_millis();
    for _ in 0..=polls {
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                return Err(format!(
                    "{}\n(docker-registry exited: {status})",
                    read_log()
                ));
            }
            Err(e) => return Err(format!("{}\n(polling docker-registry: {e})", read_log())),
        }
        if http_get(port, "/v2/", &[]).is_ok_and(|r| r.status == ready) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    Err(format!(
        "{}\n(no {ready} from GET /v2/ within {START_LIMIT:?})",
        read_log()
    ))
}

/// Writes the config for `port` into `root` and starts the registry on it, its stdout
/// and stderr written to `root/registry.log` (a fresh one); `auth`, if any, is appended.
fn spawn(root: &Path, port: u16, auth: Option<&str>) -> Child {
    let config = root.join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\n\
             log:\n\
             \x20 level: info\n\
             \x20 formatter: text\n\
             \x20 accesslog:\n\
             \x20   disabled: false\n\
             storage:\n\
             \x20 filesystem:\n\
             \x20   rootdirectory: {}\n\
             \x20 delete:\n\
             \x20   enabled: true\n\
             \x20 maintenance:\n\
             \x20   uploadpurging:\n\
             \x20     enabled: false\n\
             http:\n\
             \x20 addr: 127.0.0.1:{port}\n\
             \x20 secret: hoist-integration-tests\n\
             {}",
            root.join("storage").display(),
            auth.unwrap_or("")
        ),
    )
    .expect("writing the registry config");
    let _ = fs::remove_file(root.join(LOG));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(LOG))
        .expect("opening the registry log");
    let err = log.try_clone().expect("cloning the registry log handle");
    std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting docker-registry (run .ci/run, it installs it): {e}"))
}

/// A loopback port nothing listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A loopback port that stays refused for the whole test run: a socket is bound to it
/// and kept, never listening, so connections get a reset and no registry a later test
/// starts can take the port (a released [`free_port`] can be, and was: one test's
/// "dead" registry turned out to be another test's live one).
pub fn dead_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("creating a socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("binding 127.0.0.1:0");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("a bound socket's address")
        .port();
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(socket);
    port
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port`, with short timeouts.
fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The access lines of a registry log:
/// `IP - USER [DATE] "METHOD TARGET PROTO" STATUS SIZE "REFERER" "AGENT"`.
/// The registry's own logrus lines (`time="…" level=… msg=…`) are skipped.
pub fn parse_access_log(log: &str) -> Vec<Request> {
    log.lines().filter_map(parse_access_line).collect()
}

fn parse_access_line(line: &str) -> Option<Request> {
    if line.starts_with("time=") {
        return None;
    }
    let (_, rest) = line.split_once("] \"")?;
    let (request_line, rest) = rest.split_once("\" ")?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    let proto = parts.next()?;
    if !proto.starts_with("HTTP/") || parts.next().is_some() || !path.starts_with('/') {
        return None;
    }
    let status = rest.split(' ').next()?.parse().ok()?;
    Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
    })
}

/// `%XX` escapes and `+` (form encoding) decoded; shared by the access-log parser and
/// the token server.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<_> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn registry_harness_serves_v2() {
    let registry = Registry::start();
    let response = registry.http_get("/v2/", &[]).expect("GET /v2/");
    assert_eq!(response.status, 200, "{}", registry.log_tail());
    assert_eq!(response.body, b"{}");
    assert!(
        response
            .headers
            .iter()
            .any(|(name, value)| name == "docker-distribution-api-version"
                && value == "registry/2.0"),
        "{response:?}"
    );
    let response = registry
        .http_get("/v2/acme/app/manifests/latest", &[])
        .expect("GET of a missing manifest");
    assert_eq!(response.status, 404);

    let requests = registry.requests();
    let gets: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/v2/")
        .collect();
    // The start-up poll's GETs and ours, all answered 200.
    assert!(gets.len() >= 2, "{requests:?}");
    assert!(gets.iter().all(|r| r.status == 200), "{requests:?}");
    assert_eq!(
        requests.last(),
        Some(&Request {
            method: "GET".into(),
            path: "/v2/acme/app/manifests/latest".into(),
            status: 404,
        }),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.path.contains(SYNC_QUERY)),
        "{requests:?}"
    );
    // A second look sees the same requests: sync markers never leak in.
    assert_eq!(registry.requests(), requests);
}

#[test]
fn access_log_lines_parse() {
    let log = concat!(
        "time=\"2026-11-23T12:38:13.32Z\" level=info msg=\"response completed\" ",
        "http.request.method=PUT http.request.uri=\"/v2/acme/x/blobs/uploads/f8?_state=s\" ",
        "http.response.status=201\n",
        "127.0.0.1 - - [23/Nov/2026:12:38:13 +0000] \"PUT /v2/acme/x/blobs/uploads/f8?_state=s",
        "%3D%3D&digest=sha256%3A2c33 HTTP/1.1\" 201 0 \"\" \"skopeo/1.9.3\"\n",
        "127.0.0.1 - - [23/Nov/2026:12:38:13 +0000] \"HEAD /v2/acme/x/blobs/sha256:7dae ",
        "HTTP/1.1\" 404 157 \"\" \"skopeo/1.9.3\"\n",
        "127.0.0.1 - - [23/Nov/2026:12:38:13 +0000] \"POST /v2/acme/y/blobs/uploads/?mount=",
        "sha256:7dae&from=acme/x HTTP/1.1\" 201 0 \"\" \"hoist\"\n",
        "127.0.0.1 - - [23/Nov/2026:12:38:13 +0000] \"PUT /v2/acme/x/manifests/1 HTTP/1.1\" ",
        "201 0 \"\" \"skopeo/1.9.3\"\n",
    );
    let requests = parse_access_log(log);
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].route(), "/v2/acme/x/blobs/uploads/f8");
    assert_eq!(requests[0].query("_state").as_deref(), Some("s=="));
    assert_eq!(requests[0].uploaded_blob().as_deref(), Some("sha256:2c33"));
    assert_eq!(requests[1].blob_head(), Some("sha256:7dae"));
    assert_eq!(requests[1].status, 404);
    assert_eq!(requests[2].uploaded_blob(), None);
    assert_eq!(requests[2].mounted_blob().as_deref(), Some("sha256:7dae"));
    assert_eq!(requests[3].manifest_put(), Some("1"));
    assert!(requests[..3].iter().all(|r| r.manifest_put().is_none()));
}
