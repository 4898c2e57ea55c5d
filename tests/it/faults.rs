//! Registry faults: `hoist` pushing and pulling through [`FaultProxy`] (see
//! `proxy.rs`) in front of a real registry. Transient faults (connections reset
//! mid-upload, 5xx with or without a distribution error envelope, 429, a download cut
//! short) are retried until the push or pull succeeds, and what lands in the registry
//! is checked straight at the registry, bypassing the proxy. Persistent and final
//! faults fail with exit 1 and leave no tag behind.
//!
//! Timing is judged by events, never by a wall-clock ceiling (machines are shared and
//! noisy): how many attempts the proxy saw, what came after a final error, and lower
//! bounds from the proxy's timestamps (a retry comes no sooner than its backoff).
//! [`LIMIT`] only keeps a hung run from hanging the suite.
//!
//! What `hoist` retries (src/registry/retry.rs): connection errors, 408, 429, 5xx and
//! the TOOMANYREQUESTS code, [`ATTEMPTS`] attempts with waits of 250 ms doubling,
//! capped at 8 s, jittered to [half, whole], or what `Retry-After` asks (at most 60 s).

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{
    Layout, Sandbox, assert_digest, digest_of, example_config, example_dir, parse_json, stderr,
    stdout, str_at, tool_within, umoci_unpack,
};
use crate::proxy::{Exchange, Fault, FaultPlan, FaultProxy, Outcome};
use crate::registry::{HOIST_LIMIT, Registry, skopeo_raw};

/// When a hoist or skopeo run here is killed as hung: a guard, not a speed claim.
const LIMIT: Duration = HOIST_LIMIT;
/// hoist's attempts per operation (`retry::ATTEMPTS`).
const ATTEMPTS: usize = 6;
/// hoist's first wait and its cap (`retry.rs`).
const FIRST_WAIT: Duration = Duration::from_millis(250);
const LONGEST_WAIT: Duration = Duration::from_secs(8);
/// How long a stalled request is held unanswered: longer than the run may last, so
/// only hoist's own request timeout can end it.
const STALL_HOLD: Duration = Duration::from_secs(2 * LIMIT.as_secs());
/// The request timeout the stall test sets (`HOIST_REGISTRY_TIMEOUT`, seconds).
const STALL_TIMEOUT_SECS: u64 = 2;
/// Where uploads and downloads are cut (at most half-way through the body).
const CUT_AFTER: usize = 1024;
/// Where the faulted pushes go.
const REPO: &str = "acme/app";
const TAG: &str = "1";

/// Runs `command` under `limit` (panics if it had to be killed); returns the output
/// and when it finished.
fn run(command: &mut Command, limit: Duration) -> (Output, Instant) {
    let output = crate::registry::run(command, limit);
    (output, Instant::now())
}

/// What a failed assertion about a faulted run should show: the command's output,
/// what the proxy did and the registry's log.
fn context(output: &Output, proxy: &FaultProxy, registry: &Registry) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}\nproxy log:\n{}\nregistry log:\n{}",
        output.status,
        stdout(output),
        stderr(output),
        proxy.log_text(),
        registry.log_tail()
    )
}

/// Runs `command` (bounded), asserting success.
fn succeeds(command: &mut Command, proxy: &FaultProxy, registry: &Registry) -> Output {
    let (output, _) = run(command, LIMIT);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        context(&output, proxy, registry)
    );
    output
}

/// Runs `command` (bounded), asserting exit 1 (a failure, not a usage error) with an
/// error message. Returns stderr.
fn fails(command: &mut Command, proxy: &FaultProxy, registry: &Registry) -> String {
    let (output, _) = run(command, LIMIT);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} should have failed with exit 1:\n{}",
        context(&output, proxy, registry)
    );
    let err = stderr(&output);
    assert!(
        err.contains("error"),
        "a failure should print an error message:\n{}",
        context(&output, proxy, registry)
    );
    err
}

pub fn upstream(registry: &Registry) -> SocketAddr {
    registry.host().parse().expect("the registry's address")
}

/// `hoist build` of the dashboard example pushed to `<host>/acme/app:1`, `--json`.
fn build_push(sandbox: &Sandbox, host: &str) -> Command {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(format!("{host}/{REPO}:{TAG}"))
        .arg("--json");
    command
}

/// The digest in a `--json` push report.
fn reported_digest(output: &Output) -> String {
    let report: Value = parse_json(&stdout(output));
    let digest = str_at(&report, "/digest").to_owned();
    assert_digest(&digest);
    digest
}

/// The registry itself (not the proxy) serves `acme/app:1` as exactly the image
/// `digest` names, and skopeo + umoci make the example's files of it.
fn assert_pushed_intact(sandbox: &Sandbox, registry: &Registry, digest: &str) {
    let raw = skopeo_raw(registry, &format!("{REPO}:{TAG}"));
    assert_eq!(
        digest_of(&raw),
        digest,
        "the registry's {REPO}:{TAG} is not the image hoist reported:\n{}",
        String::from_utf8_lossy(&raw)
    );
    let pulled = sandbox.path("pulled");
    tool_within(
        LIMIT,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--override-arch",
            "arm64",
            &registry.docker(&format!("{REPO}:{TAG}")),
            &format!("oci:{}:{TAG}", pulled.display()),
        ],
    );
    let rootfs = umoci_unpack(&pulled, TAG, &sandbox.path("bundle"));
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).expect("rootfs/app/main.py"),
        fs::read(example_dir().join("backend/main.py")).unwrap(),
        "app/main.py of the pushed arm64 image"
    );
}

/// The registry has no tag `tag` in `repo`: the manifest GET is a 404 and the tags
/// list (if the repository has one at all) does not name it.
fn assert_no_tag(registry: &Registry, repo: &str, tag: &str) {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let response = registry.http_get(&path, &[]).expect("GET of the tag");
    assert_eq!(
        response.status,
        404,
        "GET {path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    let path = format!("/v2/{repo}/tags/list");
    let response = registry.http_get(&path, &[]).expect("GET of the tags list");
    match response.status {
        404 => {}
        200 => {
            let list = parse_json(&String::from_utf8_lossy(&response.body));
            let tags: Vec<&str> = list["tags"]
                .as_array()
                .map(|tags| tags.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert!(!tags.contains(&tag), "{path} names {tag}: {list}");
        }
        other => panic!(
            "GET {path}: {other} {}",
            String::from_utf8_lossy(&response.body)
        ),
    }
    crate::common::require_tool("skopeo");
    let mut skopeo = Command::new("skopeo");
    skopeo.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &registry.docker(&format!("{repo}:{tag}")),
    ]);
    let inspect = crate::registry::run(&mut skopeo, LIMIT);
    assert!(
        !inspect.status.success(),
        "skopeo found {repo}:{tag}:\n{}",
        String::from_utf8_lossy(&inspect.stdout)
    );
}

fn is_manifest_put(e: &Exchange) -> bool {
    e.method == "PUT" && e.route().contains("/manifests/")
}

fn is_upload_put(e: &Exchange) -> bool {
    e.method == "PUT" && e.route().contains("/blobs/uploads/")
}

fn is_upload_post(e: &Exchange) -> bool {
    e.method == "POST" && e.route().contains("/blobs/uploads/")
}

/// The wait hoist makes before attempt `attempt + 2` is within
/// [ceiling / 2, ceiling] for this ceiling.
fn backoff_ceiling(attempt: u32) -> Duration {
    FIRST_WAIT.saturating_mul(1 << attempt).min(LONGEST_WAIT)
}

#[test]
fn push_survives_connections_reset_mid_upload() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    // Blob uploads are one PUT each (monolithic, with Content-Length): the first two
    // are torn down after 1 KiB of body (at most half of it).
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().first(
            2,
            "PUT",
            "/blobs/uploads/",
            Fault::ResetRequestBody { after: CUT_AFTER },
        ),
    );
    let output = succeeds(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let digest = reported_digest(&output);
    let log = proxy.exchanges();
    let why = context(&output, &proxy, &registry);
    assert_eq!(proxy.rule_hits(0), 2, "{why}");
    assert_eq!(proxy.faults_injected(), 2, "{why}");
    for reset in log.iter().filter(|e| e.faulted()) {
        match reset.outcome {
            Some(Outcome::Reset { body_bytes, .. }) => {
                let declared = reset.content_length.expect("an upload PUT has a length");
                assert!(
                    body_bytes == CUT_AFTER.min(declared / 2) && body_bytes > 0,
                    "not cut after min({CUT_AFTER}, half) body bytes: {reset}\n{why}"
                );
            }
            ref other => panic!("{other:?}\n{why}"),
        }
    }

    // Each retry opened a new upload session: every upload PUT names a session of
    // its own, and there is one session (POST) per PUT.
    let puts: Vec<&Exchange> = log.iter().filter(|e| is_upload_put(e)).collect();
    let sessions: BTreeSet<&str> = puts.iter().map(|e| e.route()).collect();
    assert_eq!(
        sessions.len(),
        puts.len(),
        "an upload session was reused:\n{why}"
    );
    assert_eq!(
        log.iter().filter(|e| is_upload_post(e)).count(),
        puts.len(),
        "{why}"
    );
    // Every blob the registry stored was completed once; the cut PUTs never reached it.
    let completed: Vec<String> = registry
        .requests()
        .iter()
        .filter_map(crate::registry::Request::uploaded_blob)
        .collect();
    let distinct: BTreeSet<&String> = completed.iter().collect();
    assert_eq!(distinct.len(), completed.len(), "{completed:#?}\n{why}");
    assert_eq!(completed.len() + 2, puts.len(), "{completed:#?}\n{why}");

    assert_pushed_intact(&sandbox, &registry, &digest);
}

#[test]
fn push_survives_server_errors_on_manifests_and_heads() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new()
            .first(2, "PUT", "/manifests/", Fault::envelope(500, "UNKNOWN"))
            .first(3, "HEAD", "/blobs/", Fault::status(503))
            // No tag listing: the blobs of a repository the registry does not know
            // would not be asked about at all.
            .always("GET", "/tags/list", Fault::status(500)),
    );
    let output = succeeds(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let digest = reported_digest(&output);
    let why = context(&output, &proxy, &registry);
    assert_eq!(proxy.rule_hits(0), 2, "{why}");
    assert_eq!(proxy.rule_hits(1), 3, "{why}");

    // Each blob whose HEAD got a 503 was asked about again, and the registry's answer
    // (404: not there yet) then led to its upload.
    let log = proxy.exchanges();
    for refused in log.iter().filter(|e| e.method == "HEAD" && e.faulted()) {
        assert!(
            log.iter().any(|e| e.method == "HEAD"
                && e.path == refused.path
                && e.outcome == Some(Outcome::Forwarded(404))),
            "{} was not retried:\n{why}",
            refused.path
        );
    }

    // The two failed manifest PUTs were both the first manifest, retried until it
    // went in; every manifest then went in once.
    let puts: Vec<&Exchange> = log.iter().filter(|e| is_manifest_put(e)).collect();
    assert!(puts.len() >= 3, "{why}");
    assert!(puts[0].faulted() && puts[1].faulted(), "{why}");
    assert!(
        puts[0].path == puts[1].path && puts[1].path == puts[2].path,
        "the failed manifest PUT was not retried first:\n{why}"
    );
    assert_eq!(puts[2].outcome, Some(Outcome::Forwarded(201)), "{why}");
    let stored: Vec<&str> = puts[2..].iter().map(|e| e.route()).collect();
    let distinct: BTreeSet<&&str> = stored.iter().collect();
    assert_eq!(
        distinct.len(),
        stored.len(),
        "a manifest was put twice:\n{why}"
    );
    assert!(
        stored
            .last()
            .is_some_and(|r| r.ends_with(&format!("/manifests/{TAG}"))),
        "the tag was not put last:\n{why}"
    );

    assert_pushed_intact(&sandbox, &registry, &digest);
}

#[test]
fn push_survives_rate_limiting_of_upload_sessions() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().first(
            2,
            "POST",
            "/blobs/uploads/",
            Fault::envelope(429, "TOOMANYREQUESTS").with_header("Retry-After", "1"),
        ),
    );
    let output = succeeds(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let digest = reported_digest(&output);
    let why = context(&output, &proxy, &registry);
    assert_eq!(proxy.rule_hits(0), 2, "{why}");
    let log = proxy.exchanges();
    let posts = log.iter().filter(|e| is_upload_post(e)).count();
    let puts = log.iter().filter(|e| is_upload_put(e)).count();
    assert_eq!(
        posts,
        puts + 2,
        "each refused session should be asked for again, once:\n{why}"
    );
    assert_pushed_intact(&sandbox, &registry, &digest);
}

/// A 429's `Retry-After` is waited for: the same request (a blob `HEAD`, which names
/// its blob) comes again only after the second it asks for, where the backoff alone
/// would wait a quarter of one.
#[test]
fn push_waits_as_long_as_retry_after_says() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new()
            .first(
                1,
                "HEAD",
                "/blobs/sha256:",
                Fault::envelope(429, "TOOMANYREQUESTS").with_header("Retry-After", "1"),
            )
            // No tag listing: the blobs of a repository the registry does not know
            // would not be asked about at all.
            .always("GET", "/tags/list", Fault::status(500)),
    );
    let output = succeeds(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let digest = reported_digest(&output);
    let why = context(&output, &proxy, &registry);
    let log = proxy.exchanges();
    let refused = log
        .iter()
        .find(|e| e.faulted() && e.method == "HEAD")
        .unwrap_or_else(|| panic!("no 429 was injected:\n{why}"));
    let done = refused.done.expect("answered");
    let again = log
        .iter()
        .find(|e| e.method == "HEAD" && e.path == refused.path && e.at > done)
        .unwrap_or_else(|| panic!("the refused HEAD was not asked again:\n{why}"));
    assert!(
        again.at - done >= Duration::from_millis(950),
        "asked again after {:?}, not after the second Retry-After asks for:\n{why}",
        again.at - done
    );
    assert_pushed_intact(&sandbox, &registry, &digest);
}

/// A registry that refuses a blob in one request (413, as registries with a cap on a
/// request's size answer) gets it in `PATCH`ed chunks and a closing `PUT` instead.
#[test]
fn push_falls_back_to_chunks_when_a_whole_blob_is_too_large() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().first(
            1,
            "PUT",
            "/blobs/uploads/",
            Fault::envelope(413, "SIZE_INVALID"),
        ),
    );
    let output = succeeds(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let digest = reported_digest(&output);
    let why = context(&output, &proxy, &registry);
    assert_eq!(proxy.faults_injected(), 1, "{why}");
    let log = proxy.exchanges();
    let patches: Vec<&Exchange> = log
        .iter()
        .filter(|e| e.method == "PATCH" && e.route().contains("/blobs/uploads/"))
        .collect();
    assert!(!patches.is_empty(), "no chunk was sent:\n{why}");
    for patch in &patches {
        let length = patch.content_length.unwrap_or(usize::MAX);
        assert!(
            length > 0 && length <= 4 << 20,
            "a chunk of {length} bytes:\n{why}"
        );
    }
    // Each chunked upload ends with a PUT ?digest= that carries no body.
    assert!(
        log.iter()
            .any(|e| is_upload_put(e) && e.content_length == Some(0)),
        "no closing PUT:\n{why}"
    );
    assert_pushed_intact(&sandbox, &registry, &digest);
}

#[test]
fn push_gives_up_on_persistent_server_errors_and_leaves_no_tag() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always("PUT", "/manifests/", Fault::envelope(500, "UNKNOWN")),
    );
    let err = fails(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let why = format!("stderr:\n{err}\nproxy log:\n{}", proxy.log_text());
    assert!(
        err.contains(&proxy.host()),
        "the error should name the registry {}:\n{why}",
        proxy.host()
    );

    // The first manifest (a platform manifest, by digest) was tried ATTEMPTS times;
    // nothing after it, least of all the tag, was put.
    let puts: Vec<Exchange> = proxy
        .exchanges()
        .into_iter()
        .filter(is_manifest_put)
        .collect();
    assert_eq!(puts.len(), ATTEMPTS, "{why}");
    assert!(
        puts.iter().all(|e| e.path == puts[0].path),
        "only the first manifest should have been tried:\n{why}"
    );
    assert!(puts[0].route().contains("/manifests/sha256:"), "{why}");
    assert!(
        puts.iter().all(|e| e.outcome
            == Some(Outcome::Injected {
                rule: 0,
                status: 500
            })),
        "{why}"
    );
    // The waits between attempts follow the backoff: each at least half its ceiling
    // (the jitter's floor). How long they take at most is not judged here: a loaded
    // machine may stretch any wait.
    for (attempt, pair) in puts.windows(2).enumerate() {
        let answered = pair[0].done.expect("answered");
        let gap = pair[1].at.saturating_duration_since(answered);
        let ceiling = backoff_ceiling(attempt as u32);
        assert!(
            gap >= ceiling / 2,
            "retry {} came {gap:?} after the 500, before the backoff's minimum {:?}:\n{why}",
            attempt + 1,
            ceiling / 2
        );
    }
    // After the last attempt hoist gave up: nothing more was sent.
    let last_answer = puts[ATTEMPTS - 1].done.expect("answered");
    let later: Vec<String> = proxy
        .exchanges()
        .iter()
        .filter(|e| e.at > last_answer)
        .map(ToString::to_string)
        .collect();
    assert!(later.is_empty(), "sent after giving up: {later:?}\n{why}");

    assert_no_tag(&registry, REPO, TAG);
    assert!(
        !registry
            .requests()
            .iter()
            .any(|r| r.manifest_put().is_some()),
        "no manifest should have reached the registry:\n{}",
        registry.log_tail()
    );
}

#[test]
fn push_does_not_retry_a_final_error() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always("PUT", "/manifests/", Fault::envelope(404, "NAME_UNKNOWN")),
    );
    let err = fails(&mut build_push(&sandbox, &proxy.host()), &proxy, &registry);
    let why = format!("stderr:\n{err}\nproxy log:\n{}", proxy.log_text());
    let puts: Vec<Exchange> = proxy
        .exchanges()
        .into_iter()
        .filter(is_manifest_put)
        .collect();
    assert_eq!(puts.len(), 1, "a 404 was retried:\n{why}");
    assert_eq!(
        puts[0].outcome,
        Some(Outcome::Injected {
            rule: 0,
            status: 404
        }),
        "{why}"
    );
    // No retry series after the 404: the 404 was the last request hoist sent.
    let answered = puts[0].done.expect("answered");
    let later: Vec<String> = proxy
        .exchanges()
        .iter()
        .filter(|e| e.at > answered)
        .map(ToString::to_string)
        .collect();
    assert!(later.is_empty(), "sent after the 404: {later:?}\n{why}");
    assert!(err.contains(&proxy.host()), "{why}");
    assert_no_tag(&registry, REPO, TAG);
}

#[test]
fn pull_survives_a_cut_download_and_a_503() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    // The image goes in straight, no proxy.
    let mut push = build_push(&sandbox, &registry.host());
    let (output, _) = run(&mut push, LIMIT);
    assert!(
        output.status.success(),
        "{push:?}:\n{}\n{}",
        stderr(&output),
        registry.log_tail()
    );
    let digest = reported_digest(&output);

    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new()
            .first(
                1,
                "GET",
                "/blobs/sha256:",
                Fault::CutResponseBody { after: CUT_AFTER },
            )
            .first(1, "GET", "/manifests/", Fault::status(503)),
    );
    let mut pull = sandbox.hoist();
    pull.arg("pull")
        .arg(proxy.reference(&format!("{REPO}:{TAG}")))
        .arg("--output")
        .arg(sandbox.oci("m"))
        .arg("--cache-dir")
        .arg(sandbox.path("c"));
    let output = succeeds(&mut pull, &proxy, &registry);
    let why = context(&output, &proxy, &registry);
    assert_eq!(proxy.rule_hits(0), 1, "{why}");
    assert_eq!(proxy.rule_hits(1), 1, "{why}");

    // The cut blob was fetched again, whole; the manifest after the 503.
    let log = proxy.exchanges();
    let cut = log
        .iter()
        .find(|e| matches!(e.outcome, Some(Outcome::Cut { .. })))
        .unwrap_or_else(|| panic!("no cut download:\n{why}"));
    assert!(
        matches!(cut.outcome, Some(Outcome::Cut { status: 200, body_bytes, .. }) if body_bytes > 0),
        "{why}"
    );
    assert!(
        log.iter().any(|e| e.method == "GET"
            && e.path == cut.path
            && e.outcome == Some(Outcome::Forwarded(200))),
        "the cut blob was not downloaded again:\n{why}"
    );
    let first_manifest = log
        .iter()
        .find(|e| e.method == "GET" && e.path.contains("/manifests/"))
        .expect("a manifest GET");
    assert_eq!(
        first_manifest.outcome,
        Some(Outcome::Injected {
            rule: 1,
            status: 503
        }),
        "{why}"
    );
    assert!(
        log.iter()
            .any(|e| e.path == first_manifest.path && e.outcome == Some(Outcome::Forwarded(200))),
        "the manifest was not fetched again:\n{why}"
    );

    // The layout holds the registry's index, byte for byte, under the tag.
    let registry_index = registry.manifest(REPO, TAG);
    assert_eq!(digest_of(&registry_index), digest);
    let layout = Layout::open(sandbox.path("m"));
    assert_eq!(str_at(&layout.entry(TAG), "/digest"), digest, "{why}");
    assert_eq!(layout.blob(&digest), registry_index);
    // And every blob of every platform is there and intact.
    for platform in layout.platforms(TAG) {
        for layer in platform.layer_digests() {
            layout.blob(&layer);
        }
    }
    assert_eq!(
        stdout(&output).trim(),
        digest,
        "hoist pull prints the index digest"
    );
    // The cut attempt left no partial blob behind in the cache.
    let leftovers: Vec<String> = fs::read_dir(sandbox.path("c"))
        .expect("the pull's cache")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".hoist-tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary blobs left in the cache: {leftovers:?}"
    );
}

/// A registry that serves wrong bytes: a platform manifest fetched by digest whose
/// content hashes to something else, a blob whose bytes are not its digest's, an
/// index that is not JSON. Each pull fails, names the document or blob and the
/// registry, and writes no output.
#[test]
fn pull_refuses_tampered_documents_and_blobs() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let mut push = build_push(&sandbox, &registry.host());
    let (output, _) = run(&mut push, LIMIT);
    assert!(output.status.success(), "{}", stderr(&output));

    let tampered = |rule: FaultPlan, name: &str, expect: &[&str]| {
        let proxy = FaultProxy::start(upstream(&registry), rule);
        let mut pull = sandbox.hoist();
        pull.arg("pull")
            .arg(proxy.reference(&format!("{REPO}:{TAG}")))
            .arg("--output")
            .arg(sandbox.oci(name))
            .arg("--cache-dir")
            .arg(sandbox.path(&format!("cache-{name}")));
        let err = fails(&mut pull, &proxy, &registry);
        let why = format!("stderr:\n{err}\nproxy log:\n{}", proxy.log_text());
        assert!(proxy.faults_injected() >= 1, "{why}");
        assert!(
            err.contains(&proxy.host()),
            "the registry is not named:\n{why}"
        );
        for word in expect {
            assert!(err.contains(word), "`{word}` missing:\n{why}");
        }
        assert!(!sandbox.path(name).exists(), "output written:\n{why}");
    };
    let respond = |content_type: &str, body: &[u8]| Fault::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.to_vec(),
    };
    tampered(
        FaultPlan::new().always(
            "GET",
            "/manifests/sha256:",
            respond(
                "application/vnd.oci.image.manifest.v1+json",
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#,
            ),
        ),
        "manifest",
        &["sha256:"],
    );
    tampered(
        FaultPlan::new().always(
            "GET",
            "/blobs/sha256:",
            respond("application/octet-stream", b"not the blob you asked for"),
        ),
        "blob",
        &["blob sha256:", "digest"],
    );
    tampered(
        FaultPlan::new().always(
            "GET",
            &format!("/manifests/{TAG}"),
            respond(
                "application/vnd.oci.image.index.v1+json",
                b"{ this is not json",
            ),
        ),
        "index",
        &[REPO],
    );
}

#[test]
fn push_recovers_from_a_stalled_registry() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    // The first manifest PUT is read and never answered (for longer than the push may
    // take): only a request timeout, and then a retry, gets the push through.
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().first(1, "PUT", "/manifests/", Fault::Stall { hold: STALL_HOLD }),
    );
    let mut command = build_push(&sandbox, &proxy.host());
    // The silence allowed before a request fails (30 s by default), short for the test.
    command.env("HOIST_REGISTRY_TIMEOUT", STALL_TIMEOUT_SECS.to_string());
    let output = succeeds(&mut command, &proxy, &registry);
    let why = context(&output, &proxy, &registry);
    // hoist hung up on the stalled request itself (the proxy would have held it past
    // the end of the run), no sooner than its timeout, and sent it again.
    let log = proxy.exchanges();
    let stalled = log
        .iter()
        .find(|e| {
            matches!(
                e.outcome,
                Some(Outcome::Stalled {
                    client_gone: true,
                    ..
                })
            )
        })
        .unwrap_or_else(|| panic!("no stalled request that hoist gave up on:\n{why}"));
    let Some(Outcome::Stalled { held, .. }) = stalled.outcome else {
        unreachable!()
    };
    // (The proxy's clock starts once it has read the request, a moment after hoist's
    // last write started hoist's: hence the small allowance.)
    let timeout = Duration::from_secs(STALL_TIMEOUT_SECS);
    assert!(
        held + Duration::from_millis(250) >= timeout,
        "hoist gave up on the stalled request after {held:?}, before its {timeout:?} timeout:\n{why}"
    );
    assert!(
        log.iter()
            .any(|e| e.at > stalled.at && is_manifest_put(e) && e.path == stalled.path),
        "the stalled manifest PUT was not sent again:\n{why}"
    );
    assert_pushed_intact(&sandbox, &registry, &reported_digest(&output));
}
