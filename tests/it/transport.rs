//! The registry transport (src/registry/transport.rs), judged by what the real
//! registry logged and what the fault proxy saw: how often a command probes
//! `GET /v2/`, that an unchanged re-push PUTs no manifest, that a manifest fetch
//! answered `429` waits as long as `Retry-After` says, how registry failures read
//! (the reference, what is wrong, the fix, exit code 1), and that a reference the
//! transport could never reach is refused before anything is built.

use std::time::Duration;

use crate::common::{
    Sandbox, base_layout, digest_of, example_config, parse_json, stderr, stdout, str_at,
};
use crate::proxy::{Fault, FaultPlan, FaultProxy, Outcome};
use crate::pull_tag::{BASE_REPO, seed_base};
use crate::registry::{HOIST_LIMIT, Registry, Request, fails, ok, run};
use crate::token_auth::{Fixture, hoist};

/// `GET /v2/` requests among `requests`.
fn probes(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.route() == "/v2/")
        .count()
}

/// Manifest PUTs among `requests`, by the reference they were PUT under.
fn manifest_puts(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(Request::manifest_put)
        .map(str::to_owned)
        .collect()
}

/// `hoist build` of the dashboard example on `base`, pushed to `target`, `--json`.
fn build_push_on(sandbox: &Sandbox, base: &str, target: &str) -> assert_cmd::Command {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(base)
        .arg("--push-to")
        .arg(target)
        .arg("--json")
        // The image alone: its requests are counted exactly (and SBOMs would fetch
        // the base's layers, which these tests say stay in the registry).
        .arg("--no-sbom");
    command
}

#[test]
fn build_push_on_a_base_in_the_same_registry_probes_at_most_once() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let target = registry.reference("acme/app:1");
    let before = registry.requests().len();
    let output = ok(&mut build_push_on(&sandbox, &base, &target), &registry);
    let report = parse_json(&stdout(&output));
    let requests = registry.requests()[before..].to_vec();
    assert!(
        probes(&requests) <= 1,
        "{} GET /v2/ probes in one build --push: {requests:#?}",
        probes(&requests)
    );
    // Base layers were mounted from the base's repository (same registry), and
    // everything the build made went up: the push did its work.
    assert_eq!(report["blobs_mounted"], 2, "{report:#}");
    let digest = str_at(&report, "/digest").to_owned();
    assert_eq!(digest_of(&registry.manifest("acme/app", "1")), digest);
    // Two platform manifests, the index, the tag.
    assert_eq!(manifest_puts(&requests).len(), 4, "{requests:#?}");
}

#[test]
fn an_unchanged_re_push_to_the_same_tag_puts_no_manifest() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let target = registry.reference("acme/app:1");
    let first = ok(&mut build_push_on(&sandbox, &base, &target), &registry);
    let digest = str_at(&parse_json(&stdout(&first)), "/digest").to_owned();

    let before = registry.requests().len();
    let again = ok(&mut build_push_on(&sandbox, &base, &target), &registry);
    let report = parse_json(&stdout(&again));
    assert_eq!(
        str_at(&report, "/digest"),
        digest,
        "the build is reproducible"
    );
    let requests = registry.requests()[before..].to_vec();
    assert_eq!(
        manifest_puts(&requests),
        Vec::<String>::new(),
        "an unchanged re-push PUT manifests: {requests:#?}"
    );
    assert!(
        !requests.iter().any(Request::is_upload_traffic),
        "{requests:#?}"
    );
    assert!(probes(&requests) <= 1, "{requests:#?}");
    assert_eq!(report["blobs_uploaded"], 0, "{report:#}");

    // A new tag on the same image PUTs that tag only.
    let before = registry.requests().len();
    let retag = registry.reference("acme/app:2");
    ok(&mut build_push_on(&sandbox, &base, &retag), &registry);
    let requests = registry.requests()[before..].to_vec();
    assert_eq!(manifest_puts(&requests), ["2"], "{requests:#?}");
    assert_eq!(digest_of(&registry.manifest("acme/app", "2")), digest);
}

/// A manifest fetch answered `429 Too Many Requests` with `Retry-After: 2` is asked
/// again no sooner than 2 s later (the backoff alone would wait a quarter second).
/// The bound is measured from when the refused request arrived at the proxy, which
/// is before the 429 left it: a lower bound, never an upper one.
#[test]
fn a_manifest_fetch_answered_429_waits_for_retry_after() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    seed_base(&registry);
    let proxy = FaultProxy::start(
        registry.host().parse().expect("the registry's address"),
        FaultPlan::new().first(
            1,
            "GET",
            "/manifests/",
            Fault::envelope(429, "TOOMANYREQUESTS").with_header("Retry-After", "2"),
        ),
    );
    let mut pull = sandbox.hoist();
    pull.arg("pull")
        .arg(proxy.reference(&format!("{BASE_REPO}:1.0")))
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    let output = run(&mut pull, HOIST_LIMIT);
    let why = format!("stderr:\n{}\nproxy:\n{}", stderr(&output), proxy.log_text());
    assert!(output.status.success(), "{why}");
    assert_eq!(proxy.rule_hits(0), 1, "{why}");
    let log = proxy.exchanges();
    let refused = log
        .iter()
        .find(|e| e.faulted())
        .unwrap_or_else(|| panic!("no 429 was injected:\n{why}"));
    assert_eq!(
        refused.outcome,
        Some(Outcome::Injected {
            rule: 0,
            status: 429
        })
    );
    let again = log
        .iter()
        .find(|e| e.method == "GET" && e.path == refused.path && e.at > refused.at)
        .unwrap_or_else(|| panic!("the refused manifest was not asked again:\n{why}"));
    let waited = again.at.duration_since(refused.at);
    assert!(
        waited >= Duration::from_secs(2),
        "asked again after {waited:?}, sooner than Retry-After's 2 s:\n{why}"
    );
    assert_eq!(again.outcome, Some(Outcome::Forwarded(200)), "{why}");
}

#[test]
fn a_missing_tag_is_named_with_exit_code_1() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    seed_base(&registry);
    let missing = registry.reference(&format!("{BASE_REPO}:9.9.9"));
    let mut pull = sandbox.hoist();
    pull.arg("pull")
        .arg(&missing)
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    let err = fails(&mut pull, HOIST_LIMIT);
    assert!(
        err.contains(&format!("{missing}: no such tag")),
        "the error should read `{missing}: no such tag`:\n{err}"
    );
    assert!(!err.contains("envelope"), "{err}");
    assert!(!sandbox.path("pulled").exists(), "nothing is written");

    // As a build base: the same words, before any layer is built.
    let mut build = sandbox.build();
    build
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(&missing)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = fails(&mut build, HOIST_LIMIT);
    assert!(err.contains(&format!("{missing}: no such tag")), "{err}");

    // A repository nobody pushed to.
    let nowhere = registry.reference("acme/nothing:1");
    let mut pull = sandbox.hoist();
    pull.arg("pull")
        .arg(&nowhere)
        .arg("--output")
        .arg(sandbox.oci("pulled"))
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"));
    let err = fails(&mut pull, HOIST_LIMIT);
    assert!(err.contains(&format!("{nowhere}: no such")), "{err}");
}

/// A registry that wants credentials nobody gave: the message says what to run.
#[test]
fn a_401_without_credentials_says_to_run_hoist_login() {
    let sandbox = Sandbox::new();
    let htpasswd = sandbox.write(
        "htpasswd",
        &format!(
            "{}:{}\n",
            crate::token_auth::USER,
            crate::login::HTPASSWD_HASH
        ),
    );
    let registry = Registry::start_with_auth(Some(&format!(
        "auth:\n  htpasswd:\n    realm: hoist-test\n    path: \"{}\"\n",
        htpasswd.display()
    )));
    let host = registry.host();
    let mut push = hoist(&sandbox);
    push.arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg(registry.reference("acme/app:1"));
    let err = fails(&mut push, HOIST_LIMIT);
    assert!(err.contains(&format!("hoist login {host}")), "{err}");
    assert!(err.contains(&registry.reference("acme/app")), "{err}");

    // Behind token auth, an anonymous push gets a token without push rights.
    let fixture = Fixture::start();
    let host = fixture.registry.host();
    let mut push = hoist(&sandbox);
    push.arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg(fixture.registry.reference("acme/app:1"));
    let err = fails(&mut push, HOIST_LIMIT);
    assert!(err.contains(&format!("hoist login {host}")), "{err}");
}

/// Behind token auth, one build --push on a base in the same registry asks the token
/// server once per scope set (the base's pull; the target's push with the base's
/// pull for mounts), not once per request.
#[test]
fn tokens_are_fetched_once_per_scope_set() {
    let sandbox = Sandbox::new();
    let fixture = Fixture::start();
    let mut seed = hoist(&sandbox);
    seed.arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg(fixture.registry.reference(&format!("{BASE_REPO}:1.0")));
    crate::token_auth::with_password(&mut seed);
    ok(&mut seed, &fixture.registry);

    let before = fixture.tokens.requests().len();
    let registry_before = fixture.registry.requests().len();
    let mut command = hoist(&sandbox);
    command
        .arg("build")
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(fixture.registry.reference(&format!("{BASE_REPO}:1.0")))
        .arg("--push-to")
        .arg(fixture.registry.reference("acme/app:1"));
    crate::token_auth::with_password(&mut command);
    ok(&mut command, &fixture.registry);
    let tokens = fixture.tokens.requests()[before..].to_vec();
    let mut scope_sets: Vec<Vec<String>> = tokens.iter().map(|r| r.scopes.clone()).collect();
    scope_sets.sort();
    let asked = scope_sets.len();
    scope_sets.dedup();
    assert_eq!(
        asked,
        scope_sets.len(),
        "a scope set was asked for more than once: {tokens:#?}"
    );
    assert!(tokens.iter().all(|r| r.status == 200), "{tokens:#?}");
    let requests = fixture.registry.requests()[registry_before..].to_vec();
    assert!(probes(&requests) <= 1, "{requests:#?}");
}

/// A port out of range cannot be reached: refused when the reference is read, naming
/// it, before a layer is built.
#[test]
fn a_push_target_with_a_bad_port_fails_before_building() {
    let sandbox = Sandbox::new();
    let mut build = sandbox.build();
    build
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg("127.0.0.1:99999/x");
    let err = fails(&mut build, HOIST_LIMIT);
    assert!(err.contains("`127.0.0.1:99999/x`"), "{err}");
    assert!(err.contains("99999"), "{err}");
    assert!(err.contains("port"), "{err}");
    assert!(
        !err.contains("layer"),
        "no layer progress before the refusal:\n{err}"
    );
    let cached: Vec<_> = walk(&sandbox.cache());
    assert!(cached.is_empty(), "the cache was written: {cached:?}");

    for bad in ["127.0.0.1:0/x", "127.0.0.1:65536/x"] {
        let mut build = sandbox.build();
        build
            .arg("--config")
            .arg(example_config())
            .arg("--push-to")
            .arg(bad);
        let err = fails(&mut build, HOIST_LIMIT);
        assert!(err.contains(&format!("`{bad}`")), "{err}");
    }
    assert!(walk(&sandbox.cache()).is_empty());
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
