//! The Bearer token flow Docker Hub and GHCR use, against distribution's `auth: token`:
//! the registry (see `registry.rs`) answers 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client asks the realm (a
//! token server of our own, below) for a token with HTTP Basic credentials, and the
//! registry checks the RS256-signed JWT it gets against the certificate in its
//! `rootcertbundle` (the JWT carries that certificate in `x5c`).
//!
//! The token server's policy: `ci:s3cret` gets what it asks for (`pull`, `push`);
//! wrong credentials get 401; **anonymous requests get a token with `pull` rights
//! only** (as Docker Hub does for public repositories), so an anonymous pull works and
//! an anonymous push is refused by the registry.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use crate::common::{
    Sandbox, assert_digest, digest_of, example_config, last_line, stderr, stdout, tool, tool_within,
};
use crate::registry::{HOIST_LIMIT, Registry, fails, ok, percent_decode, run};

pub(crate) const USER: &str = "ci";
pub(crate) const PASSWORD: &str = "s3cret";
/// The identity token (OAuth2 refresh token) the token server accepts for [`USER`].
const IDENTITY_TOKEN: &str = "refresh-0123456789";
const SERVICE: &str = "hoist-test-registry";
const ISSUER: &str = "hoist-test-issuer";
/// The longest the token server lives (its accept loop ends then even if not dropped).
const SERVER_LIFETIME: Duration = Duration::from_mins(10);

/// One request the token server answered.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    /// The Basic user, if the request carried credentials.
    pub(crate) user: Option<String>,
    /// Whether the credentials were `ci:s3cret`.
    pub(crate) authenticated: bool,
    pub(crate) service: Option<String>,
    pub(crate) account: Option<String>,
    /// `scope=` values, percent-decoded, in order.
    pub(crate) scopes: Vec<String>,
    pub(crate) status: u16,
    /// `grant_type` of a POST (the OAuth2 refresh-token grant).
    pub(crate) grant: Option<String>,
}

/// What every connection handler shares.
struct State {
    key: RsaKeyPair,
    /// The certificate (DER) whose key signs the tokens.
    cert_der: Vec<u8>,
    requests: Mutex<Vec<TokenRequest>>,
}

/// A token server on 127.0.0.1 with its signing key and certificate in a temp dir;
/// stopped when dropped.
pub(crate) struct TokenServer {
    port: u16,
    dir: tempfile::TempDir,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    fn start() -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("hoist-token-")
            .tempdir()
            .expect("creating the token server's temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &path("key.pem"),
                "-out",
                &path("cert.pem"),
                "-days",
                "2",
                "-subj",
                "/CN=hoist-test-token-issuer",
            ],
        );
        tool(
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &path("key.pem"),
                "-outform",
                "DER",
                "-out",
                &path("key.pk8"),
            ],
        );
        tool(
            "openssl",
            &[
                "x509",
                "-in",
                &path("cert.pem"),
                "-outform",
                "DER",
                "-out",
                &path("cert.der"),
            ],
        );
        let key_der = std::fs::read(path("key.pk8")).expect("reading the PKCS#8 key");
        let key = RsaKeyPair::from_pkcs8(&key_der).expect("ring accepts the PKCS#8 key");
        let cert_der = std::fs::read(path("cert.der")).expect("reading the DER certificate");

        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        let port = listener.local_addr().expect("token server address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking token listener");
        let state = Arc::new(State {
            key,
            cert_der,
            requests: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let until = Instant::now() + SERVER_LIFETIME;
                let mut handlers = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = Arc::clone(&state);
                            handlers.push(std::thread::spawn(move || serve(&state, stream)));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // Handlers are bounded by their socket timeouts.
                for handler in handlers {
                    let _ = handler.join();
                }
            })
        };
        TokenServer {
            port,
            dir,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn cert_pem(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The registry config's `auth:` section pointing at this server.
    fn registry_auth(&self) -> String {
        format!(
            "auth:\n\
             \x20 token:\n\
             \x20   realm: \"http://127.0.0.1:{}/token\"\n\
             \x20   service: \"{SERVICE}\"\n\
             \x20   issuer: \"{ISSUER}\"\n\
             \x20   rootcertbundle: \"{}\"\n",
            self.port,
            self.cert_pem().display()
        )
    }

    pub(crate) fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().expect("token log lock").clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one HTTP request on `stream` and closes it.
fn serve(state: &State, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    let mut content_length = 0usize;
    for _ in 0..100 {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            } else if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    // A POST (the OAuth2 refresh-token grant) carries its parameters as a form body.
    let mut body = vec![0; content_length.min(64 * 1024)];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    let form = String::from_utf8_lossy(&body).into_owned();
    let post = request_line.starts_with("POST ");
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let (route, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .chain(form.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(key, _)| key == "scope")
        // A client may also put several scopes space-separated in one parameter.
        .flat_map(|(_, value)| value.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|scope| !scope.is_empty())
        .collect();

    let credentials = authorization.as_deref().and_then(|value| {
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_owned(), password == PASSWORD && user == USER))
    });
    let mut record = TokenRequest {
        user: credentials.as_ref().map(|(user, _)| user.clone()),
        authenticated: credentials.as_ref().is_some_and(|(_, good)| *good),
        service: param("service"),
        account: param("account"),
        scopes: scopes.clone(),
        status: 200,
        grant: None,
    };

    let refresh_token = param("refresh_token");
    if post {
        record.grant = param("grant_type");
        if record.grant.as_deref() == Some("refresh_token")
            && refresh_token.as_deref() == Some(IDENTITY_TOKEN)
        {
            record.user = Some(USER.to_owned());
            record.authenticated = true;
        }
    }
    let response = if route != "/token" {
        record.status = 404;
        http_response(
            404,
            "Not Found",
            &[],
            "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}",
        )
    } else if (authorization.is_some() || post) && !record.authenticated {
        // Wrong or unreadable credentials: refused, as Docker Hub and GHCR do.
        record.status = 401;
        http_response(
            401,
            "Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"hoist-test-token\"")],
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}",
        )
    } else {
        let allowed: &[&str] = if record.authenticated {
            &["pull", "push"]
        } else {
            &["pull"]
        };
        let subject = record.user.clone().unwrap_or_default();
        let body = token_body(state, &subject, &scopes, allowed);
        http_response(200, "OK", &[("Content-Type", "application/json")], &body)
    };
    state.requests.lock().expect("token log lock").push(record);
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn http_response(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(response, "{name}: {value}\r\n");
    }
    response.push_str("\r\n");
    response.push_str(body);
    response
}

/// The token endpoint's JSON: a JWT granting, per requested repository scope, the
/// requested actions that are in `allowed`.
fn token_body(state: &State, subject: &str, scopes: &[String], allowed: &[&str]) -> String {
    let mut access = Vec::new();
    for scope in scopes {
        // type:name:actions, the name possibly holding colons (never in our tests).
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|action| allowed.contains(action))
            .collect();
        access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut jti = [0u8; 16];
    SystemRandom::new().fill(&mut jti).expect("random jti");
    let jti = jti.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5c": [base64(&state.cert_der, STANDARD, true)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 60,
        "iat": now,
        "jti": jti,
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), URL_SAFE, false),
        base64(claims.to_string().as_bytes(), URL_SAFE, false)
    );
    let mut signature = vec![0; state.key.public().modulus_len()];
    state
        .key
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("RS256 signing");
    let jwt = format!("{signing_input}.{}", base64(&signature, URL_SAFE, false));
    serde_json::json!({
        "token": jwt,
        "access_token": jwt,
        "expires_in": 300,
        "issued_at": rfc3339(now),
    })
    .to_string()
}

pub(crate) const STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(crate) fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[(n >> (18 - 6 * i)) as usize & 63]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = STANDARD.iter().position(|&c| c == byte)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).expect("a plausible date");
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A token server and a registry that trusts it.
pub(crate) struct Fixture {
    // Dropped in this order: the registry first, then its token server.
    pub(crate) registry: Registry,
    pub(crate) tokens: TokenServer,
}

impl Fixture {
    pub(crate) fn start() -> Fixture {
        let tokens = TokenServer::start();
        let registry = Registry::start_with_auth(Some(&tokens.registry_auth()));
        Fixture { registry, tokens }
    }
}

/// `hoist` with no credentials from the environment: no `HOIST_REGISTRY_*`, and
/// docker's and podman's files pointed into the sandbox (where there are none unless a
/// test writes one).
pub(crate) fn hoist(sandbox: &Sandbox) -> Command {
    let mut command = sandbox.hoist();
    command
        .env_remove("HOIST_REGISTRY_USERNAME")
        .env_remove("HOIST_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", sandbox.path("no-docker-config"))
        .env("REGISTRY_AUTH_FILE", sandbox.path("no-auth.json"))
        .env("XDG_RUNTIME_DIR", sandbox.path("run"))
        .env("HOME", sandbox.path("home"));
    command
}

/// `hoist build --cache-dir <sandbox>/cache` with [`hoist`]'s environment.
fn build(sandbox: &Sandbox) -> Command {
    let mut command = hoist(sandbox);
    command.arg("build").arg("--cache-dir").arg(sandbox.cache());
    command
}

/// `-u ci --password-stdin`, the password on stdin.
pub(crate) fn with_password(command: &mut Command) -> &mut Command {
    command
        .args(["-u", USER, "--password-stdin"])
        .write_stdin(format!("{PASSWORD}\n"))
}

/// Neither the password nor the Basic header value ever appears in `text`.
pub(crate) fn assert_no_secret(text: &str) {
    let basic = base64(format!("{USER}:{PASSWORD}").as_bytes(), STANDARD, true);
    assert!(
        !text.contains(PASSWORD) && !text.contains(&basic),
        "a secret leaked into the output:\n{text}"
    );
}

pub(crate) fn output_text(output: &std::process::Output) -> String {
    format!("{}\n{}", stdout(output), stderr(output))
}

/// Builds the dashboard example and pushes it to `acme/app:1` with `-u ci
/// --password-stdin`; returns the index digest.
fn push_app_1(sandbox: &Sandbox, fixture: &Fixture) -> String {
    let mut command = build(sandbox);
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(fixture.registry.reference("acme/app:1"));
    with_password(&mut command);
    let output = ok(&mut command, &fixture.registry);
    assert_no_secret(&output_text(&output));
    let digest = last_line(&stdout(&output)).to_owned();
    assert_digest(&digest);
    digest
}

/// `skopeo inspect --raw --creds ci:s3cret` of `reference` on the registry.
fn skopeo_raw_with_creds(registry: &Registry, reference: &str) -> Vec<u8> {
    tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            "--tls-verify=false",
            &registry.docker(reference),
        ],
    )
    .into_bytes()
}

/// Builds the dashboard example into `<sandbox>/layout` (no registry involved).
pub(crate) fn build_layout(sandbox: &Sandbox) -> String {
    let mut command = build(sandbox);
    command
        .arg("--config")
        .arg(example_config())
        .arg("--output")
        .arg(sandbox.oci("layout:2"));
    let output = run(&mut command, HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    last_line(&stdout(&output)).to_owned()
}

#[test]
fn token_auth_build_push_with_password_stdin() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let digest = push_app_1(&sandbox, &fixture);

    // What the registry serves (read with credentials) is what hoist reported.
    let raw = skopeo_raw_with_creds(&fixture.registry, "acme/app:1");
    assert_eq!(digest_of(&raw), digest);

    let requests = fixture.tokens.requests();
    let push = requests
        .iter()
        .find(|r| {
            r.scopes
                .iter()
                .any(|s| s == "repository:acme/app:pull,push")
        })
        .unwrap_or_else(|| {
            panic!("no token request for repository:acme/app:pull,push: {requests:#?}")
        });
    assert_eq!(push.user.as_deref(), Some(USER), "{push:?}");
    assert!(push.authenticated, "{push:?}");
    assert_eq!(push.status, 200, "{push:?}");
    assert_eq!(push.service.as_deref(), Some(SERVICE), "{push:?}");
    // `account=`, when a client sends it (skopeo does), names the Basic user.
    assert!(
        requests
            .iter()
            .all(|r| r.account.is_none() || r.account == r.user),
        "{requests:#?}"
    );
    // hoist always authenticated: no request went without credentials.
    let hoist_requests: Vec<_> = requests.iter().filter(|r| r.user.is_none()).collect();
    assert!(
        hoist_requests.is_empty(),
        "anonymous token requests: {requests:#?}"
    );
}

#[test]
fn token_auth_credentials_from_docker_config() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let digest = build_layout(&sandbox);
    let host = fixture.registry.host();
    let auth = base64(format!("{USER}:{PASSWORD}").as_bytes(), STANDARD, true);
    sandbox.write(
        "docker/config.json",
        &format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"),
    );

    let mut command = hoist(&sandbox);
    command
        .env("DOCKER_CONFIG", sandbox.path("docker"))
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:2"));
    let output = ok(&mut command, &fixture.registry);
    assert_no_secret(&output_text(&output));
    assert_eq!(
        last_line(&stdout(&output)),
        format!("{}@{digest}", fixture.registry.reference("acme/app"))
    );
    assert_eq!(
        digest_of(&skopeo_raw_with_creds(&fixture.registry, "acme/app:2")),
        digest
    );
    let requests = fixture.tokens.requests();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.scopes
                .iter()
                .any(|s| s == "repository:acme/app:pull,push")),
        "{requests:#?}"
    );
}

#[test]
fn token_auth_wrong_password_fails_without_printing_it() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    build_layout(&sandbox);
    let mut command = hoist(&sandbox);
    command
        .env("HOIST_REGISTRY_USERNAME", USER)
        .env("HOIST_REGISTRY_PASSWORD", "wrong")
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:3"));
    let output = run(&mut command, HOIST_LIMIT);
    let text = output_text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a wrong password pushed:\n{text}"
    );
    assert!(text.contains("error"), "{text}");
    assert!(
        text.contains(&fixture.registry.host()),
        "the error should name the registry:\n{text}"
    );
    assert!(
        !text.contains("wrong"),
        "the password is in the output:\n{text}"
    );
    assert_no_secret(&text);
    assert!(
        text.contains("credentials") && text.contains("HOIST_REGISTRY_USERNAME"),
        "the error should say where hoist looks for credentials:\n{text}"
    );

    let requests = fixture.tokens.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.user.as_deref() == Some(USER) && r.status == 401),
        "the token server should have refused the wrong password: {requests:#?}"
    );
    assert!(
        requests.iter().all(|r| r.status != 200 || r.user.is_none()),
        "{requests:#?}"
    );
    // Nothing was tagged.
    let response = fixture
        .registry
        .http_get("/v2/acme/app/manifests/3", &[])
        .expect("GET of the tag");
    assert_eq!(response.status, 401, "the registry still wants a token");
}

#[test]
fn token_auth_anonymous_can_pull_but_not_push() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let digest = push_app_1(&sandbox, &fixture);
    let before = fixture.tokens.requests().len();

    // Anonymous push: the token server grants pull only, the registry refuses.
    let mut command = hoist(&sandbox);
    command
        .arg("push")
        .arg(format!(
            "oci:{}:1.0",
            crate::common::base_layout().display()
        ))
        .arg(fixture.registry.reference("acme/app:anon"));
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains(&fixture.registry.host()),
        "the error should name the registry:\n{err}"
    );
    let anonymous: Vec<_> = fixture.tokens.requests()[before..].to_vec();
    assert!(
        anonymous
            .iter()
            .any(|r| r.user.is_none() && r.scopes.iter().any(|s| s.ends_with(":pull,push"))),
        "the anonymous push should have asked for push rights: {anonymous:#?}"
    );
    assert!(anonymous.iter().all(|r| r.user.is_none()), "{anonymous:#?}");
    // The tag was not created.
    assert_eq!(
        digest_of(&skopeo_raw_with_creds(&fixture.registry, "acme/app:1")),
        digest
    );
    let tags = tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "list-tags",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            "--tls-verify=false",
            &fixture.registry.docker("acme/app"),
        ],
    );
    assert!(!tags.contains("anon"), "{tags}");

    // Anonymous pull of the pushed image works (pull rights only are enough).
    let mut command = hoist(&sandbox);
    command
        .arg("pull")
        .arg(fixture.registry.reference("acme/app:1"))
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    let output = ok(&mut command, &fixture.registry);
    assert_eq!(last_line(&stdout(&output)), digest);
    let pulls: Vec<_> = fixture.tokens.requests();
    assert!(
        pulls
            .iter()
            .any(|r| r.user.is_none() && r.scopes.iter().any(|s| s == "repository:acme/app:pull")),
        "{pulls:#?}"
    );
}

#[test]
fn token_auth_registry_base_with_password_stdin() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let pushed = push_app_1(&sandbox, &fixture);
    let before = fixture.tokens.requests().len();

    // A cache of its own, so the base's blobs come from the registry, with a token.
    let mut command = hoist(&sandbox);
    command.arg("build");
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(fixture.registry.reference("acme/app:1"))
        .arg("--cache-dir")
        .arg(sandbox.path("base-cache"))
        .arg("--output")
        .arg(sandbox.oci("on-app"));
    with_password(&mut command);
    let output = ok(&mut command, &fixture.registry);
    assert_no_secret(&output_text(&output));
    let digest = last_line(&stdout(&output)).to_owned();
    assert_digest(&digest);
    assert_ne!(digest, pushed, "a build on the image is a new image");
    let layout = crate::common::Layout::open(sandbox.path("on-app"));
    let entry = layout.entry("latest");
    let annotations = &layout.json(crate::common::str_at(&entry, "/digest"))["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"], pushed,
        "{annotations:#}"
    );
    let requests = fixture.tokens.requests()[before..].to_vec();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:acme/app:pull"))),
        "{requests:#?}"
    );
}

/// A token that expires mid-push: the registry answers a blob upload with 401 (here a
/// proxy in front of it does, once, as an expired token would get), and hoist fetches
/// a new token and makes the request again instead of failing the push.
#[test]
fn token_auth_renews_a_token_that_expires_mid_push() {
    use crate::proxy::{Fault, FaultPlan, FaultProxy};
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    build_layout(&sandbox);
    let challenge = format!(
        "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"{SERVICE}\",scope=\"repository:acme/app:pull,push\"",
        fixture.tokens.port
    );
    let proxy = FaultProxy::start(
        fixture
            .registry
            .host()
            .parse()
            .expect("the registry's address"),
        FaultPlan::new().first(
            1,
            "PUT",
            "/blobs/uploads/",
            Fault::envelope(401, "UNAUTHORIZED").with_header("WWW-Authenticate", &challenge),
        ),
    );
    let mut command = hoist(&sandbox);
    command
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(proxy.reference("acme/app:renewed"));
    with_password(&mut command);
    let output = run(&mut command, HOIST_LIMIT);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}\n{}", proxy.log_text());
    assert_eq!(proxy.faults_injected(), 1, "{}", proxy.log_text());
    let push_tokens = fixture
        .tokens
        .requests()
        .iter()
        .filter(|r| {
            r.authenticated
                && r.scopes
                    .iter()
                    .any(|s| s == "repository:acme/app:pull,push")
        })
        .count();
    assert!(
        push_tokens >= 2,
        "a new token should have been fetched after the 401: {:#?}",
        fixture.tokens.requests()
    );
    let digest = last_line(&stdout(&output))
        .rsplit('@')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        digest_of(&skopeo_raw_with_creds(
            &fixture.registry,
            "acme/app:renewed"
        )),
        digest
    );
}

/// A docker config holding an identity token (as `az acr login` or docker's browser
/// login leave): hoist trades it for an access token (the OAuth2 refresh-token grant)
/// and pushes with that; a token the server does not know fails, naming the registry.
#[test]
fn token_auth_identity_token_from_docker_config() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let digest = build_layout(&sandbox);
    let host = fixture.registry.host();
    let config = |token: &str| {
        let auth = base64(b"<token>:", STANDARD, true);
        sandbox.write(
            "docker/config.json",
            &format!(
                "{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\",\"identitytoken\":\"{token}\"}}}}}}"
            ),
        );
    };
    config(IDENTITY_TOKEN);
    let mut command = hoist(&sandbox);
    command
        .env("DOCKER_CONFIG", sandbox.path("docker"))
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:identity"));
    let output = ok(&mut command, &fixture.registry);
    let text = output_text(&output);
    assert!(!text.contains(IDENTITY_TOKEN), "the token leaked:\n{text}");
    assert_eq!(
        digest_of(&skopeo_raw_with_creds(
            &fixture.registry,
            "acme/app:identity"
        )),
        digest
    );
    let requests = fixture.tokens.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.grant.as_deref() == Some("refresh_token")
                && r.authenticated
                && r.scopes
                    .iter()
                    .any(|s| s == "repository:acme/app:pull,push")),
        "no refresh-token grant for the repository: {requests:#?}"
    );

    config("refresh-unknown");
    let mut command = hoist(&sandbox);
    command
        .env("DOCKER_CONFIG", sandbox.path("docker"))
        .arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(fixture.registry.reference("acme/app:identity2"));
    let text = fails(&mut command, HOIST_LIMIT);
    assert!(text.contains("identity token"), "{text}");
    assert!(text.contains(&host), "{text}");
    assert!(
        !text.contains("refresh-unknown"),
        "the token leaked:\n{text}"
    );
}

/// Registries redirect blob downloads to storage elsewhere (S3, a CDN): the token goes
/// to the registry, never to the storage host. Here a proxy redirects every blob
/// `GET` to a recording server on another port, which answers 404 (the pull fails;
/// what matters is what the storage server was sent).
#[test]
fn token_auth_credentials_do_not_follow_a_redirect_to_another_host() {
    use crate::proxy::{Fault, FaultPlan, FaultProxy};
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    push_app_1(&sandbox, &fixture);

    let storage = TcpListener::bind("127.0.0.1:0").expect("binding the storage server");
    let storage_port = storage.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let server = std::thread::spawn(move || {
        storage.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            match storage.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    for _ in 0..100 {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    recorded.lock().unwrap().push(head);
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !recorded.lock().unwrap().is_empty() {
                        // Let a retry or two arrive, then stop.
                        std::thread::sleep(Duration::from_millis(500));
                        if let Ok((mut stream, _)) = storage.accept() {
                            let _ = stream.write_all(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        }
    });
    let proxy = FaultProxy::start(
        fixture
            .registry
            .host()
            .parse()
            .expect("the registry's address"),
        FaultPlan::new().always(
            "GET",
            "/blobs/sha256:",
            Fault::status(307).with_header(
                "Location",
                &format!("http://127.0.0.1:{storage_port}/storage/blob"),
            ),
        ),
    );
    let mut pull = hoist(&sandbox);
    pull.arg("pull")
        .arg(proxy.reference("acme/app:1"))
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    with_password(&mut pull);
    let output = run(&mut pull, HOIST_LIMIT);
    server.join().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let heads = seen.lock().unwrap().clone();
    assert!(
        !heads.is_empty(),
        "the redirect was not followed: {}",
        proxy.log_text()
    );
    for head in &heads {
        assert!(head.starts_with("GET /storage/blob"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "credentials went to the storage host:\n{head}"
        );
    }
}

/// A mount needs pull rights on the source repository as well as push rights on the
/// target: behind token auth hoist asks for both in one token, so a build on a base
/// from another repository of the registry mounts every base layer.
#[test]
fn token_auth_mounts_base_layers_from_another_repository() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    push_app_1(&sandbox, &fixture);
    let mut command = build(&sandbox);
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(fixture.registry.reference("acme/app:1"))
        .arg("--push-to")
        .arg(fixture.registry.reference("acme/other:1"))
        .arg("--json");
    with_password(&mut command);
    let output = ok(&mut command, &fixture.registry);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    // The base (the app image) has 5 distinct layers: one base layer per platform and
    // the three app layers both platforms share; all are mounted, none uploaded.
    assert_eq!(report["blobs_mounted"], 5, "{report:#}");
    assert_eq!(report["base_blobs_fetched"], 0, "{report:#}");
    let requests = fixture.tokens.requests();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.scopes
                .iter()
                .any(|s| s == "repository:acme/other:pull,push")
            && r.scopes.iter().any(|s| s == "repository:acme/app:pull")),
        "no token asked for both repositories: {requests:#?}"
    );
}
