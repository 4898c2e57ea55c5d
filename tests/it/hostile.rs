//! A hostile registry on loopback (issue 16): where credentials go, and how long hoist
//! waits. The real registry (htpasswd Basic auth) sits behind [`FaultProxy`]s that
//! answer some requests themselves: blob downloads redirected to "storage" servers
//! that redirect again, an upload session whose `Location` is elsewhere, answers
//! trickled a byte at a time. A TLS registry of our own (Python, below) redirects to
//! plain HTTP. Origins differ by port (127.0.0.1:A and 127.0.0.1:B are different
//! origins), which is what the credential rule judges by.
//!
//! Judged by what each server saw (its `Authorization` headers) and what hoist said.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{Layout, Sandbox, last_line, stdout};
use crate::proxy::{Exchange, Fault, FaultPlan, FaultProxy};
use crate::registry::{HOIST_LIMIT, Registry, run};
use crate::token_auth::{
    PASSWORD, USER, assert_no_secret, build_layout, hoist, output_text, with_password,
};

/// The silence timeout the trickle tests set (`HOIST_REGISTRY_TIMEOUT`): the rate
/// window is this, the deadline twice this (src/registry/pace.rs).
const TIMEOUT_SECS: u64 = 2;
/// How often a trickling server sends a byte: often enough that the silence timeout
/// never fires, so only the new bounds can end the wait.
const TRICKLE: Duration = Duration::from_millis(300);
/// A pre-signed storage URL's query: never shown in errors.
const SIGNATURE: &str = "X-Amz-Signature=presigned-secret";

/// `acme/app:1`, pushed with credentials straight to `registry` (no proxy): the
/// dashboard example of `<sandbox>/layout`.
fn seed(sandbox: &Sandbox, registry: &Registry, credentials: bool) -> String {
    let digest = build_layout(sandbox);
    let mut push = hoist(sandbox);
    push.arg("push")
        .arg(sandbox.oci("layout:2"))
        .arg(registry.reference("acme/app:1"));
    if credentials {
        with_password(&mut push);
    }
    let output = run(&mut push, HOIST_LIMIT);
    assert!(output.status.success(), "{}", output_text(&output));
    digest
}

/// `hoist pull REFERENCE` into `<sandbox>/pulled`, with a cache of its own.
fn pull(sandbox: &Sandbox, reference: &str) -> assert_cmd::Command {
    let mut pull = hoist(sandbox);
    pull.arg("pull")
        .arg(reference)
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    pull
}

/// What `output` says, asserting it is a failure (exit 1) naming the registry `front`.
fn fails_naming(output: &std::process::Output, front: &FaultProxy) -> String {
    let text = output_text(output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{text}\n{}",
        front.log_text()
    );
    assert!(
        text.contains(&format!("registry {}", front.host())),
        "{text}"
    );
    text
}

fn upstream(registry: &Registry) -> std::net::SocketAddr {
    registry.host().parse().expect("the registry's address")
}

/// `(amd64, arm64)` base layers of the seeded image: different blobs.
fn base_layers(sandbox: &Sandbox) -> (Layout, String, String) {
    let layout = Layout::open(sandbox.path("layout"));
    let platforms = layout.platforms("2");
    let amd64 = platforms[0].layer_digests()[0].clone();
    let arm64 = platforms[1].layer_digests()[0].clone();
    assert_ne!(amd64, arm64);
    (layout, amd64, arm64)
}

fn redirect(location: &str) -> Fault {
    Fault::status(307).with_header("Location", location)
}

/// Every request `server` saw, none with credentials.
fn assert_no_credentials(server: &FaultProxy, name: &str) {
    let seen = server.exchanges();
    assert!(!seen.is_empty(), "{name} saw no request");
    let carried: Vec<&Exchange> = seen.iter().filter(|e| e.authorization.is_some()).collect();
    assert!(
        carried.is_empty(),
        "{name} received credentials: {carried:#?}\n{}",
        server.log_text()
    );
}

fn basic(exchange: &Exchange) -> bool {
    exchange
        .authorization
        .as_deref()
        .is_some_and(|value| value.starts_with("Basic "))
}

/// A blob download redirected to a storage host, which redirects to itself, then to
/// another host: no hop past the registry gets the password (the hop to itself got
/// it before: the check compared with the previous hop). A redirect within the
/// registry's own origin keeps its credentials, and the pull completes.
#[test]
fn a_redirected_blob_download_carries_credentials_to_the_registry_only() {
    let sandbox = Sandbox::new();
    let registry = crate::login::htpasswd_registry(&sandbox);
    let digest = seed(&sandbox, &registry, true);
    let (layout, far, near) = base_layers(&sandbox);

    let last = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always(
            "GET",
            "/final/",
            Fault::Respond {
                status: 200,
                headers: Vec::new(),
                body: layout.blob(&far),
            },
        ),
    );
    let storage = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new()
            .always(
                "GET",
                "/storage/",
                redirect(&format!("/again/{far}?{SIGNATURE}")),
            )
            .always(
                "GET",
                "/again/",
                redirect(&format!("http://{}/final/{far}?{SIGNATURE}", last.host())),
            ),
    );
    let front = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new()
            .always(
                "GET",
                &format!("/blobs/{far}"),
                redirect(&format!(
                    "http://{}/storage/{far}?{SIGNATURE}",
                    storage.host()
                )),
            )
            .first(
                1,
                "GET",
                &format!("/blobs/{near}"),
                redirect(&format!("/v2/acme/app/blobs/{near}?hop=same-origin")),
            ),
    );

    let mut pull = pull(&sandbox, &front.reference("acme/app:1"));
    let output = run(with_password(&mut pull), HOIST_LIMIT);
    let text = output_text(&output);
    assert!(
        output.status.success(),
        "{text}\nfront:\n{}\nstorage:\n{}",
        front.log_text(),
        storage.log_text()
    );
    assert_eq!(last_line(&stdout(&output)), digest);
    assert_no_secret(&text);
    assert_eq!(
        Layout::open(sandbox.path("pulled")).blob(&far),
        layout.blob(&far)
    );

    // Both storage hops (the second to the storage host itself) and the last host:
    // no credentials.
    assert_eq!(storage.exchanges().len(), 2, "{}", storage.log_text());
    assert_no_credentials(&storage, "the storage host");
    assert_eq!(last.exchanges().len(), 1, "{}", last.log_text());
    assert_no_credentials(&last, "the host the storage redirected to");
    // The same-origin hop kept them (the registry wants them: it served the blob).
    let hop = front
        .exchanges()
        .into_iter()
        .find(|e| e.path.contains("hop=same-origin"))
        .unwrap_or_else(|| panic!("no same-origin hop:\n{}", front.log_text()));
    assert!(basic(&hop), "{hop:?}");
}

/// An upload session whose `Location` is on another origin: the upload goes there
/// without credentials (as docker and crane send it), so a host there that wants
/// them refuses it, and the push fails naming the registry. Same-origin `Location`s (every other
/// session) carry them, and the push through an honest front succeeds.
#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let sandbox = Sandbox::new();
    let registry = crate::login::htpasswd_registry(&sandbox);
    let digest = build_layout(&sandbox);
    // Elsewhere wants credentials too (as the registry behind it would): it never
    // gets them, so the upload is refused.
    let elsewhere = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always(
            "PUT",
            "/",
            Fault::status(401).with_header("WWW-Authenticate", "Basic realm=\"elsewhere\""),
        ),
    );
    let front = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().first(
            1,
            "POST",
            "/blobs/uploads/",
            Fault::status(202).with_header(
                "Location",
                &format!(
                    "http://{}/v2/acme/app/blobs/uploads/elsewhere?_state=x",
                    elsewhere.host()
                ),
            ),
        ),
    );
    let push = |to: &FaultProxy| {
        let mut push = hoist(&sandbox);
        push.arg("push")
            .arg(sandbox.oci("layout:2"))
            .arg(to.reference("acme/app:1"));
        run(with_password(&mut push), HOIST_LIMIT)
    };

    let text = fails_naming(&push(&front), &front);
    assert!(
        text.contains(&format!(
            "http://{}/v2/acme/app/blobs/uploads/elsewhere wants credentials (401), but it is not the registry's origin http://{}",
            elsewhere.host(),
            front.host()
        )),
        "{text}"
    );
    assert_no_secret(&text);
    assert_no_credentials(&elsewhere, "the foreign upload Location");
    assert!(
        elsewhere.exchanges().iter().any(|e| e.method == "PUT"),
        "{}",
        elsewhere.log_text()
    );

    let honest = FaultProxy::start(upstream(&registry), FaultPlan::new());
    let output = push(&honest);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(last_line(&stdout(&output)).ends_with(&digest));
    let uploads: Vec<Exchange> = honest
        .exchanges()
        .into_iter()
        .filter(|e| e.method == "PUT" && e.path.contains("/blobs/uploads/"))
        .collect();
    assert!(!uploads.is_empty(), "{}", honest.log_text());
    assert!(uploads.iter().all(basic), "{}", honest.log_text());
}

/// A TLS registry (Python's `ssl`, with a certificate of a CA the test makes) that
/// wants Basic credentials, serves one manifest, and redirects every blob request to
/// `argv[4]`. Writes its port to `argv[3]`.
const TLS_REGISTRY: &str = r#"
import base64, http.server, ssl, sys
cert, key, port_file, redirect, manifest_file, user, password = sys.argv[1:8]
manifest = open(manifest_file, "rb").read()
expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        if self.headers.get("Authorization") != expected:
            return self.answer(401, [("WWW-Authenticate", 'Basic realm="hostile"')])
        if "/manifests/" in self.path:
            return self.answer(200, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")], manifest)
        if "/blobs/" in self.path:
            return self.answer(307, [("Location", redirect)])
        self.answer(404, [])
    do_HEAD = do_GET
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
open(port_file + ".tmp", "w").write(str(server.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

/// The Python TLS registry, killed when dropped.
struct TlsRegistry {
    child: Child,
    port: u16,
}

impl TlsRegistry {
    fn start(certs: &Path, redirect: &str, manifest: &Path) -> TlsRegistry {
        let port_file = certs.join("port");
        let child = std::process::Command::new("python3")
            .arg("-c")
            .arg(TLS_REGISTRY)
            .arg(certs.join("server.pem"))
            .arg(certs.join("server.key"))
            .arg(&port_file)
            .arg(redirect)
            .arg(manifest)
            .args([USER, PASSWORD])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let mut registry = TlsRegistry { child, port: 0 };
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                registry.port = text.trim().parse().expect("a port");
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the TLS registry did not start");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS registry whose blob download redirects to plain HTTP: refused, naming the
/// registry and the URL (without its signed query); the plain-HTTP host is never
/// contacted, so it cannot see the credentials or the request.
#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let sandbox = Sandbox::new();
    let certs = sandbox.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::tls::make_certificates(&certs);
    build_layout(&sandbox);
    let layout = Layout::open(sandbox.path("layout"));
    let image = &layout.platforms("2")[0];
    let manifest = sandbox.path("manifest.json");
    std::fs::write(
        &manifest,
        layout.blob(image.descriptor["digest"].as_str().unwrap()),
    )
    .unwrap();
    // The plain-HTTP host would serve anything it is asked (it forwards to nothing).
    let plain = FaultProxy::start(
        "127.0.0.1:9".parse().unwrap(),
        FaultPlan::new().always("GET", "/", Fault::status(200)),
    );
    let target = format!("http://{}/config?{SIGNATURE}", plain.host());
    let tls = TlsRegistry::start(&certs, &target, &manifest);

    let mut inspect = hoist(&sandbox);
    inspect
        .arg("inspect")
        .arg("--ca-file")
        .arg(certs.join("ca.pem"))
        .arg("--cache-dir")
        .arg(sandbox.path("inspect-cache"))
        .arg(format!("{}/acme/app:1", tls.host()));
    let output = run(with_password(&mut inspect), HOIST_LIMIT);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&tls.host()), "{text}");
    assert!(
        text.contains(&format!(
            "refusing to follow the registry from HTTPS to http://{}/config",
            plain.host()
        )),
        "{text}"
    );
    assert!(!text.contains(SIGNATURE), "{text}");
    assert_no_secret(&text);
    assert!(plain.exchanges().is_empty(), "{}", plain.log_text());
}

/// A registry that trickles its manifest a byte at a time, never silent for as long
/// as the silence timeout: `hoist inspect` gives up at the deadline (twice the
/// timeout), naming the registry, and does not ask again (a retry would only be as
/// slow).
#[test]
fn a_trickled_manifest_is_given_up_at_the_deadline() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    seed(&sandbox, &registry, false);
    let front = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always("GET", "/manifests/", Fault::Trickle { every: TRICKLE }),
    );
    let mut inspect = hoist(&sandbox);
    inspect
        .env("HOIST_REGISTRY_TIMEOUT", TIMEOUT_SECS.to_string())
        .arg("inspect")
        .arg("--cache-dir")
        .arg(sandbox.path("inspect-cache"))
        .arg(front.reference("acme/app:1"));
    let text = fails_naming(&run(&mut inspect, HOIST_LIMIT), &front);
    assert!(
        text.contains(&format!(
            "the answer was not whole within {} s",
            2 * TIMEOUT_SECS
        )),
        "{text}"
    );
    let gets = front
        .exchanges()
        .iter()
        .filter(|e| e.method == "GET" && e.path.contains("/manifests/"))
        .count();
    assert_eq!(gets, 1, "{}", front.log_text());
}

/// A blob trickled a byte at a time: the download is given up one rate window in,
/// with how slow it was and the minimum it must keep; not retried.
#[test]
fn a_trickled_blob_is_given_up_under_the_minimum_rate() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = seed(&sandbox, &registry, false);
    let (_, layer, _) = base_layers(&sandbox);
    let front = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always(
            "GET",
            &format!("/blobs/{layer}"),
            Fault::Trickle { every: TRICKLE },
        ),
    );
    let mut pull = pull(&sandbox, &front.reference(&format!("acme/app@{digest}")));
    pull.env("HOIST_REGISTRY_TIMEOUT", TIMEOUT_SECS.to_string());
    let text = fails_naming(&run(&mut pull, HOIST_LIMIT), &front);
    assert!(text.contains(&layer), "{text}");
    assert!(
        text.contains(&format!(
            "in the last {TIMEOUT_SECS} s, under the 32 KiB/s a transfer must keep"
        )),
        "{text}"
    );
    let gets = front
        .exchanges()
        .iter()
        .filter(|e| e.path.contains(&layer))
        .count();
    assert_eq!(gets, 1, "{}", front.log_text());
}
