//! The tag census (`Repository::take_tag_census`): one `GET …/tags/list?n=1000` per
//! repository, taken unless a pinned tag of the push is there already (a re-release),
//! answers for the tags that move and the referrers tags it does not list, but never
//! for a pinned tag, and only when the list is provably whole. Here a
//! [`FaultProxy`] in front of the real registry answers the listing with a lie: a
//! published version tag still cannot move, and a list with a next page is not taken
//! as whole.

use std::process::Output;

use assert_cmd::Command;

use crate::common::{Sandbox, digest_of, example_config, stderr, stdout};
use crate::faults::upstream;
use crate::proxy::{Exchange, Fault, FaultPlan, FaultProxy};
use crate::registry::{HOIST_LIMIT, Registry, run};

/// `hoist build` of the example pushed to `HOST/acme/app` with `tags`, and `label` set
/// (another label value: another image).
fn push(sandbox: &Sandbox, host: &str, tags: &[&str], label: &str) -> Output {
    let mut command: Command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(format!("{host}/acme/app"))
        .args(["--label", &format!("census.test={label}")]);
    for tag in tags {
        command.args(["--tag", tag]);
    }
    run(&mut command, HOIST_LIMIT)
}

/// A proxy whose tag listings answer `tags` (with `headers`), and forward all else.
fn lying_proxy(registry: &Registry, tags: &[&str], headers: &[(&str, &str)]) -> FaultProxy {
    let body = serde_json::json!({ "name": "acme/app", "tags": tags }).to_string();
    let mut fault = Fault::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.into_bytes(),
    };
    for (name, value) in headers {
        fault = fault.with_header(name, value);
    }
    FaultProxy::start(
        upstream(registry),
        FaultPlan::new().always("GET", "/tags/list", fault),
    )
}

fn asked(log: &[Exchange], method: &str, route: &str) -> bool {
    log.iter().any(|e| e.method == method && e.route() == route)
}

#[test]
fn a_listing_that_omits_a_version_tag_cannot_move_it() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let first = push(&sandbox, &registry.host(), &["1.0.0"], "one");
    assert!(first.status.success(), "{}", stderr(&first));
    let published = digest_of(&registry.manifest("acme/app", "1.0.0"));

    // The listing says the repository has no tags at all.
    let proxy = lying_proxy(&registry, &[], &[]);
    let second = push(&sandbox, &proxy.host(), &["1.0.0"], "two");
    let log = proxy.exchanges();
    let why = format!("{}\n{}", stderr(&second), proxy.log_text());
    assert_eq!(second.status.code(), Some(1), "{why}");
    assert!(
        stderr(&second).contains(":1.0.0 names") && stderr(&second).contains("never moves"),
        "{why}"
    );
    // The version tag is asked on its own, whatever a listing says (here none is
    // taken: a repository holding the version tag is a re-release).
    assert!(asked(&log, "HEAD", "/v2/acme/app/manifests/1.0.0"), "{why}");
    assert_eq!(
        digest_of(&registry.manifest("acme/app", "1.0.0")),
        published,
        "{why}"
    );
}

#[test]
fn a_listing_with_a_next_page_is_not_taken_as_whole() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let first = push(&sandbox, &registry.host(), &["edge"], "one");
    assert!(first.status.success(), "{}", stderr(&first));
    // One page that lacks `edge`, and says more follow.
    let link = r#"</v2/acme/app/tags/list?n=1000&last=a>; rel="next""#;
    let proxy = lying_proxy(&registry, &["a"], &[("Link", link)]);
    let second = push(&sandbox, &proxy.host(), &["edge"], "one");
    let log = proxy.exchanges();
    let why = format!("{}\n{}", stderr(&second), proxy.log_text());
    assert!(second.status.success(), "{why}");
    assert!(asked(&log, "GET", "/v2/acme/app/tags/list"), "{why}");
    // Asked on its own, found naming the same image: not put again.
    assert!(asked(&log, "HEAD", "/v2/acme/app/manifests/edge"), "{why}");
    assert!(!asked(&log, "PUT", "/v2/acme/app/manifests/edge"), "{why}");
    let _ = stdout(&second);
}

#[test]
fn a_whole_listing_spares_the_lookups_of_absent_tags() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = lying_proxy(&registry, &[], &[]);
    // A first push: the listing (truthful here: nothing is there) answers for the
    // moving tag and the referrers tags of the SBOMs; the version tag is asked.
    let output = push(&sandbox, &proxy.host(), &["1.0.0", "edge"], "one");
    let log = proxy.exchanges();
    let why = format!("{}\n{}", stderr(&output), proxy.log_text());
    assert!(output.status.success(), "{why}");
    let lookups: Vec<&Exchange> = log
        .iter()
        .filter(|e| {
            matches!(e.method.as_str(), "HEAD" | "GET") && e.route().contains("/manifests/")
        })
        .filter(|e| !e.route().contains("sha256:"))
        .collect();
    let routes: Vec<&str> = lookups.iter().map(|e| e.route()).collect();
    assert_eq!(
        routes,
        [
            "/v2/acme/app/manifests/1.0.0",
            "/v2/acme/app/manifests/1.0.0"
        ],
        "only the version tag, before its put and in the recheck after it: {why}"
    );
    assert!(asked(&log, "PUT", "/v2/acme/app/manifests/edge"), "{why}");
}

#[test]
fn a_repository_the_registry_does_not_know_gets_no_existence_checks() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let output = push(&sandbox, &registry.host(), &["1.0.0", "edge"], "one");
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = registry.requests();
    let why = format!("{requests:#?}");
    // The listing said 404 NAME_UNKNOWN: no blob or image HEADs, no referrers tag
    // read; only the version tag is asked (before its put, and the recheck after).
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.route() == "/v2/acme/app/tags/list" && r.status == 404),
        "{why}"
    );
    assert!(requests.iter().all(|r| r.blob_head().is_none()), "{why}");
    let looked_up: Vec<&str> = requests
        .iter()
        .filter(|r| {
            matches!(r.method.as_str(), "HEAD" | "GET") && r.route().contains("/manifests/")
        })
        .map(crate::registry::Request::route)
        .collect();
    assert_eq!(
        looked_up,
        [
            "/v2/acme/app/manifests/1.0.0",
            "/v2/acme/app/manifests/1.0.0"
        ],
        "{why}"
    );
    // And what went up is whole: the same push again finds everything there.
    let again = push(&sandbox, &registry.host(), &["1.0.0", "edge"], "one");
    assert!(again.status.success(), "{}", stderr(&again));
    let second = &registry.requests()[requests.len()..];
    assert!(
        second
            .iter()
            .all(|r| r.manifest_put().is_none() && r.uploaded_blob().is_none()),
        "{second:#?}"
    );
}

/// Distribution answers the listing of a repository holding only untagged images
/// (a by-digest push without SBOMs: no referrers tag either) with 404 `NAME_UNKNOWN`
/// too: a second such push (a CI job run again) still asks about the blobs its
/// records say the repository received, and uploads none of them again.
#[test]
fn a_repository_of_untagged_images_is_asked_about_what_the_records_name() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let by_digest = || {
        let mut command: Command = sandbox.build();
        command
            .arg("--config")
            .arg(example_config())
            .arg("--push-to")
            .arg(format!("{}/acme/app", registry.host()))
            .args(["--by-digest", "--no-sbom"]);
        run(&mut command, HOIST_LIMIT)
    };
    let first = by_digest();
    assert!(first.status.success(), "{}", stderr(&first));
    let before = registry.requests().len();
    let again = by_digest();
    assert!(again.status.success(), "{}", stderr(&again));
    let second = &registry.requests()[before..];
    let why = format!("{second:#?}");
    assert!(
        second
            .iter()
            .any(|r| r.route() == "/v2/acme/app/tags/list" && r.status == 404),
        "{why}"
    );
    assert!(second.iter().any(|r| r.blob_head().is_some()), "{why}");
    assert!(second.iter().all(|r| r.uploaded_blob().is_none()), "{why}");
}

/// A version tag's lookup that fails ends the preflight there: no listing is asked
/// for after it, and the push fails naming the refusal.
#[test]
fn a_failed_version_tag_lookup_asks_for_no_listing() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        upstream(&registry),
        FaultPlan::new().always("HEAD", "/manifests/1.0.0", Fault::envelope(403, "DENIED")),
    );
    let output = push(&sandbox, &proxy.host(), &["1.0.0", "edge"], "one");
    let log = proxy.exchanges();
    let why = format!("{}\n{}", stderr(&output), proxy.log_text());
    assert_eq!(output.status.code(), Some(1), "{why}");
    assert!(stderr(&output).contains("1.0.0"), "{why}");
    assert!(asked(&log, "HEAD", "/v2/acme/app/manifests/1.0.0"), "{why}");
    assert!(!asked(&log, "GET", "/v2/acme/app/tags/list"), "{why}");
    assert!(log.iter().all(|e| e.method != "PUT"), "{why}");
}
