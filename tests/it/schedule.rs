//! One scheduler for a command's registry work (issue 19), against the real
//! `docker-registry`: a blob several members need goes up once (the access log counts
//! the uploads), the requests in flight never exceed `--registry-jobs` (the fault
//! proxy, one request per connection, sees when each began and ended), and an
//! unchanged re-release asks a few questions per image, not one per blob.

use std::fmt::Write as _;

use serde_json::Value;

use crate::common::{Sandbox, base_layout, parse_json, stdout};
use crate::proxy::{Exchange, Fault, FaultPlan, FaultProxy};
use crate::registry::{Registry, Request, ok};

/// Members of the test workspace: each holds the shared layer and one of its own.
pub(crate) const MEMBERS: [&str; 4] = ["api", "web", "worker", "cron"];

/// A workspace whose members, all in `host`'s `acme/` repositories, share a layer
/// (the same files to the same place) and have one of their own; two platforms.
pub(crate) fn shared_layer_workspace(sandbox: &Sandbox, host: &str) {
    sandbox.write(
        "ws/hoist.toml",
        &format!(
            "[workspace]\nmembers = [\"services/*\"]\n\n[workspace.image]\nbase = \"oci:{}:1.0\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[version]\nsource = \"VERSION\"\n",
            base_layout().display()
        ),
    );
    sandbox.write("ws/VERSION", "1.0.0\n");
    // Large enough that a second upload of it would show.
    let shared = (0..20_000).fold(String::new(), |mut text, i| {
        writeln!(text, "line {i}").unwrap();
        text
    });
    for member in MEMBERS {
        sandbox.write(&format!("ws/services/{member}/deps/lib.py"), &shared);
        sandbox.write(
            &format!("ws/services/{member}/app/main.py"),
            &format!("print('{member}')\n"),
        );
        sandbox.write(
            &format!("ws/services/{member}/hoist.toml"),
            &format!(
                "[image]\nname = \"{host}/acme/{member}\"\n\n[[layer]]\nfrom = \"deps\"\nto = \"/deps\"\n\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n"
            ),
        );
    }
}

/// `hoist release 1.0.0 --no-git --json` of the workspace, plus `extra`.
fn release(sandbox: &Sandbox, registry: &Registry, extra: &[&str]) -> Value {
    let mut command = release_command(sandbox, extra);
    command.arg("--json");
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// `hoist release 1.0.0 --no-git` in the workspace, with `extra` flags.
pub(crate) fn release_command(sandbox: &Sandbox, extra: &[&str]) -> assert_cmd::Command {
    let mut command = sandbox.hoist();
    command
        .current_dir(sandbox.path("ws"))
        .args(["release", "1.0.0", "--no-git", "--branch", "main"])
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .args(extra);
    command
}

/// The digests of the layers every member's manifests share.
fn shared_layers(registry: &Registry) -> Vec<String> {
    let layers_of = |member: &str| -> std::collections::BTreeSet<String> {
        let index = parse_json(
            std::str::from_utf8(&registry.manifest(&format!("acme/{member}"), "1.0.0")).unwrap(),
        );
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|entry| {
                let digest = entry["digest"].as_str().unwrap();
                let manifest = parse_json(
                    std::str::from_utf8(&registry.manifest(&format!("acme/{member}"), digest))
                        .unwrap(),
                );
                manifest["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut shared = layers_of(MEMBERS[0]);
    for member in &MEMBERS[1..] {
        let theirs = layers_of(member);
        shared.retain(|d| theirs.contains(d));
    }
    shared.into_iter().collect()
}

#[test]
fn members_sharing_a_layer_upload_it_once_and_mount_it_elsewhere() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    let report = release(&sandbox, &registry, &[]);
    let requests = registry.requests();
    let shared = shared_layers(&registry);
    // The base's layer, and the shared `deps` layer (one per platform: same files,
    // same digest on both).
    assert!(shared.len() >= 2, "{shared:?}");
    for digest in &shared {
        let uploads = requests
            .iter()
            .filter(|r| r.uploaded_blob().as_deref() == Some(digest.as_str()))
            .count();
        let mounts = requests
            .iter()
            .filter(|r| r.mounted_blob().as_deref() == Some(digest.as_str()))
            .count();
        assert_eq!(
            uploads, 1,
            "{digest} uploaded {uploads} times: {requests:#?}"
        );
        assert_eq!(mounts, MEMBERS.len() - 1, "{digest}: {requests:#?}");
    }
    // Every request counted, and the bytes uploaded are those the uploads carried.
    let stats = &report["registry"];
    let total = stats["total"].as_u64().unwrap();
    let by_method: u64 = stats["by_method"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, by_method, "{stats:#}");
    assert!(stats["bytes_uploaded"].as_u64().unwrap() > 0, "{stats:#}");
    assert_eq!(
        phase_names(stats),
        ["prepare", "read tags", "push", "sign", "tags"]
    );
    // Every request says who asks.
    let log = registry.log();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"PUT /v2/acme/"))
        .collect();
    assert!(!access.is_empty());
    let agent = format!("\"hoist/{}\"", env!("CARGO_PKG_VERSION"));
    for line in access {
        assert!(line.contains(&agent), "no {agent} in {line}");
    }
}

/// The names of the phases in a `--json` document's `registry` object, in order.
pub(crate) fn phase_names(stats: &Value) -> Vec<&str> {
    stats["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

/// How many requests the proxy was serving (one request per connection) after each
/// start or end, in time order: each from its head's arrival until the proxy began to
/// write its answer (the client cannot end a request sooner, so this never counts
/// more than it had at once); the proxy's own answers (an injected 429) end when done.
fn in_flight(exchanges: &[Exchange]) -> Vec<(std::time::Instant, i32)> {
    let mut events: Vec<(std::time::Instant, i32)> = Vec::new();
    for exchange in exchanges {
        let answered = exchange.answering.or(exchange.done);
        events.push((exchange.at, 1));
        events.push((answered.expect("every exchange answered"), -1));
    }
    // Ends before starts at the same instant: back to back is not at once.
    events.sort_by_key(|&(at, delta)| (at, delta));
    let mut now = 0;
    events
        .into_iter()
        .map(|(at, delta)| {
            now += delta;
            (at, now)
        })
        .collect()
}

/// The most requests the proxy served at once ([`in_flight`]).
pub(crate) fn most_at_once(exchanges: &[Exchange]) -> usize {
    let most = in_flight(exchanges)
        .iter()
        .map(|&(_, n)| n)
        .max()
        .unwrap_or(0);
    usize::try_from(most).unwrap()
}

/// The last instant at which the proxy served more than `bound` requests at once
/// ([`in_flight`]); `None` if it never did.
fn last_over(exchanges: &[Exchange], bound: i32) -> Option<std::time::Instant> {
    in_flight(exchanges)
        .into_iter()
        .rev()
        .find(|&(_, n)| n > bound)
        .map(|(at, _)| at)
}

/// A registry that answers 429 is asked less at once for the rest of the command:
/// `--registry-jobs 4` halved to 2, and the tag moves (all put at once, the last
/// phase) go out two at a time. The release completes, and `--json` says so.
#[test]
fn a_429_halves_the_requests_in_flight_for_the_rest_of_the_command() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        crate::faults::upstream(&registry),
        FaultPlan::new().first(
            1,
            "POST",
            "/blobs/uploads/",
            Fault::envelope(429, "TOOMANYREQUESTS").with_header("Retry-After", "0"),
        ),
    );
    shared_layer_workspace(&sandbox, &proxy.host());
    let report = release(&sandbox, &registry, &["--registry-jobs", "4"]);
    let exchanges = proxy.exchanges();
    let why = format!("{report:#}\n{}", proxy.log_text());
    assert_eq!(proxy.faults_injected(), 1, "{why}");
    assert_eq!(
        report["registry"]["in_flight_cut_to"][proxy.host()],
        serde_json::json!(2),
        "{why}"
    );
    let refused = exchanges.iter().find(|e| e.faulted()).expect("the 429");
    let tag_puts: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| {
            e.method == "PUT" && e.route().contains("/manifests/") && !e.route().contains("sha256")
        })
        .collect();
    assert_eq!(tag_puts.len(), MEMBERS.len() * 3, "{why}");
    // From some moment after the 429 on, never more than 2 at once: all the tag
    // moves come after it (with 4 they would go out 4 at a time).
    let last = last_over(&exchanges, 2).map_or(refused.at, |last| last.max(refused.at));
    assert!(
        tag_puts.iter().all(|e| e.at > last),
        "the tag moves went out more than two at a time after the 429: {why}"
    );
}

#[test]
fn requests_in_flight_never_exceed_registry_jobs() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(crate::faults::upstream(&registry), FaultPlan::new());
    shared_layer_workspace(&sandbox, &proxy.host());
    for jobs in [2, 3] {
        let report = release(&sandbox, &registry, &["--registry-jobs", &jobs.to_string()]);
        let most = most_at_once(&proxy.exchanges());
        assert!(
            (1..=jobs).contains(&most),
            "{most} requests at once with --registry-jobs {jobs}: {report:#}"
        );
    }
    // The flag is checked like --jobs.
    let mut command = sandbox.hoist();
    command.args(["release", "1.0.0", "--no-git", "--registry-jobs", "0"]);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--registry-jobs"));
}

/// An unchanged re-release, per image, as measured (11): the release's tags and
/// `latest`, each looked up once however many steps ask (the preflight, the
/// layer-cache lookup, the forward-only checks, the tag moves: 4); the image read
/// once by digest (index, two manifests and their configs: 5), which also answers the
/// push's question whether the index is there; no growth check (neither `max_growth`
/// nor `--growth`); per platform the SBOM's referrers tag (2), this registry having
/// answered the one referrers API question of the command ([`NO_OP_REQUESTS_ONCE`])
/// with 404. Before the tag memo 18 (each version tag looked up 3 times, the rolling
/// ones twice, the index HEADed after it was read, the referrers API asked per
/// platform); before issue 19 the push alone asked about every blob, manifest, SBOM
/// blob and tag (25 per image in benches/workspace-scale.sh).
const NO_OP_REQUESTS_PER_IMAGE: usize = 11;
/// Requests of an unchanged re-release that are not per image: the referrers API,
/// asked once per registry.
const NO_OP_REQUESTS_ONCE: usize = 1;

#[test]
fn an_unchanged_re_release_asks_a_few_questions_per_image() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    release(&sandbox, &registry, &[]);
    let before = registry.requests().len();
    let report = release(&sandbox, &registry, &[]);
    let requests = registry.requests();
    let again: Vec<&Request> = requests[before..].iter().collect();
    assert!(
        !again
            .iter()
            .any(|r| r.is_upload_traffic() || r.manifest_put().is_some()),
        "an unchanged re-release wrote: {again:#?}"
    );
    assert!(
        again.len() <= NO_OP_REQUESTS_PER_IMAGE * MEMBERS.len() + NO_OP_REQUESTS_ONCE,
        "{} requests for {} unchanged images: {again:#?}",
        again.len(),
        MEMBERS.len()
    );
    // What hoist counted is what the registry saw.
    assert_eq!(
        report["registry"]["total"].as_u64().unwrap(),
        u64::try_from(again.len()).unwrap(),
        "{report:#}"
    );
}

/// The growth table (and its reads of the previous image) only where asked for: not
/// by default, for every image with `[budget] max_growth` (the root's, taken by each
/// member) or with `--growth`.
#[test]
fn the_growth_table_is_printed_only_with_max_growth_or_growth() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    release(&sandbox, &registry, &[]);
    let notes = |extra: &[&str]| {
        crate::common::stderr(&ok(&mut release_command(&sandbox, extra), &registry))
    };
    let plain = notes(&[]);
    assert!(!plain.contains("growth against"), "{plain}");
    let asked = notes(&["--growth"]);
    assert_eq!(
        asked.matches("growth against ").count(),
        MEMBERS.len(),
        "{asked}"
    );
    let root = sandbox.path("ws/hoist.toml");
    let config = std::fs::read_to_string(&root).unwrap();
    sandbox.write(
        "ws/hoist.toml",
        &format!("{config}\n[budget]\nmax_growth = \"50%\"\n"),
    );
    let budgeted = notes(&[]);
    assert_eq!(
        budgeted.matches("growth against ").count(),
        MEMBERS.len(),
        "{budgeted}"
    );
}

/// Manifest lookups by tag (`HEAD` or `GET …/manifests/TAG`), per repository and tag.
fn tag_lookups(requests: &[Request]) -> std::collections::BTreeMap<String, usize> {
    let mut lookups = std::collections::BTreeMap::new();
    for request in requests {
        if !matches!(request.method.as_str(), "HEAD" | "GET") {
            continue;
        }
        if let Some((repository, tag)) = request.route().split_once("/manifests/")
            && !tag.contains(':')
        {
            *lookups.entry(format!("{repository}:{tag}")).or_default() += 1;
        }
    }
    lookups
}

/// Tag list requests (`GET …/tags/list`), per repository.
fn tag_listings(requests: &[Request]) -> std::collections::BTreeMap<String, usize> {
    let mut listings = std::collections::BTreeMap::new();
    for request in requests {
        if request.method == "GET"
            && let Some(repository) = request.route().strip_suffix("/tags/list")
        {
            *listings.entry(repository.to_string()).or_default() += 1;
        }
    }
    listings
}

/// At most one lookup per tag per run: the release's tags are asked about by its
/// preflight, its layer-cache lookup, its forward-only and immutability checks and
/// its tag moves, and each is asked once; a tag the release puts is not asked about
/// again (but for the pinned tags' one deliberate second look for a concurrent
/// release, after their put). Where the version tag is not there yet, one tag
/// listing per repository (its census) answers for the tags that move and the
/// referrers tags it does not list: a first release asks about none of them, while
/// the pinned version tag is always asked.
#[test]
fn every_tag_is_looked_up_once_per_release() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    release(&sandbox, &registry, &[]);
    let cold = registry.requests();
    let first = tag_lookups(&cold);
    let listed = tag_listings(&cold);
    for member in MEMBERS {
        let repository = format!("/v2/acme/{member}");
        assert_eq!(listed.get(&repository), Some(&1), "{listed:#?}");
        for tag in ["1", "1.0", "latest"] {
            assert_eq!(
                first.get(&format!("{repository}:{tag}")),
                None,
                "{first:#?}"
            );
        }
        // Looked up, put, and looked at again after its put: the recheck.
        assert_eq!(
            first.get(&format!("{repository}:1.0.0")),
            Some(&2),
            "{first:#?}"
        );
    }
    assert!(
        first.keys().all(|k| !k.contains(":sha256-")),
        "a new subject's referrers tag was looked up: {first:#?}"
    );
    let put: std::collections::BTreeSet<String> = cold
        .iter()
        .filter_map(|r| {
            let (repository, _) = r.route().rsplit_once("/manifests/")?;
            r.manifest_put()
                .filter(|reference| !reference.contains(':'))
                .map(|tag| format!("{repository}:{tag}"))
        })
        .collect();
    // Unchanged: the version tag is there (a re-release: no census), so every tag
    // of the release and `latest` asked once, nothing put.
    release(&sandbox, &registry, &[]);
    let requests = registry.requests();
    let again = &requests[cold.len()..];
    let lookups = tag_lookups(again);
    let release_tags: std::collections::BTreeSet<String> = lookups
        .keys()
        .filter(|k| !k.contains(":sha256-"))
        .cloned()
        .collect();
    let put_release_tags: std::collections::BTreeSet<String> = put
        .iter()
        .filter(|k| !k.contains(":sha256-"))
        .cloned()
        .collect();
    assert!(release_tags.is_superset(&put_release_tags), "{lookups:#?}");
    assert_eq!(put_release_tags.len(), MEMBERS.len() * 3, "{put:#?}");
    assert_eq!(release_tags.len(), MEMBERS.len() * 4, "{lookups:#?}");
    assert!(lookups.values().all(|&n| n == 1), "{lookups:#?}");
    assert!(tag_listings(again).is_empty(), "{again:#?}");
    assert!(
        again.iter().all(|r| r.manifest_put().is_none()),
        "{again:#?}"
    );
}

/// Artifact blobs go the images' way (issue 19): a signed workspace release puts the
/// SBOM documents, the empty config, the signature payloads and their configs and the
/// provenance envelopes through the command's blob ledger, so each distinct blob is
/// uploaded once in the whole release (the empty config, which every SBOM and
/// provenance of every image names, once, and mounted into the other repositories),
/// and `--json`'s `registry.blobs` counts what the registry saw.
#[test]
fn a_signed_release_uploads_each_artifact_blob_once() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    let mut generate = sandbox.hoist();
    generate
        .args(["key", "generate", "--output-key-prefix", "cosign"])
        .env("HOIST_KEY_PASSWORD", "artifacts")
        .env_remove("COSIGN_PASSWORD");
    crate::common::success(&mut generate);
    let key = sandbox.path("cosign.key");
    let mut command = release_command(&sandbox, &["--sign-key", key.to_str().unwrap()]);
    command
        .arg("--json")
        .env("HOIST_KEY_PASSWORD", "artifacts")
        .env_remove("COSIGN_PASSWORD");
    let report = parse_json(&stdout(&ok(&mut command, &registry)));
    let requests = registry.requests();
    let mut uploads = std::collections::BTreeMap::<String, usize>::new();
    for digest in requests.iter().filter_map(Request::uploaded_blob) {
        *uploads.entry(digest).or_default() += 1;
    }
    let twice: Vec<_> = uploads.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "uploaded more than once: {twice:?}");
    // Each image's two signatures (index, one per platform manifest: three) each
    // have a payload and a config; the empty config is among the uploads.
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_eq!(uploads.get(empty), Some(&1), "{uploads:#?}");
    let empty_mounts = requests
        .iter()
        .filter(|r| r.mounted_blob().as_deref() == Some(empty))
        .count();
    assert_eq!(empty_mounts, MEMBERS.len() - 1, "{requests:#?}");
    // Asked about once: where the ledger says it is, nobody asks again (the
    // provenance of each image names it too).
    let empty_heads = requests
        .iter()
        .filter(|r| r.blob_head() == Some(empty))
        .count();
    assert!(
        empty_heads <= 1,
        "{empty_heads} HEADs of the empty config: {requests:#?}"
    );
    // Signature tags hold their layers: every payload blob was uploaded.
    for member in MEMBERS {
        let index = parse_json(
            std::str::from_utf8(&registry.manifest(&format!("acme/{member}"), "1.0.0")).unwrap(),
        );
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let tag = format!("{}.sig", digest.replace(':', "-"));
        let signature = parse_json(
            std::str::from_utf8(&registry.manifest(&format!("acme/{member}"), &tag)).unwrap(),
        );
        for layer in signature["layers"].as_array().unwrap() {
            let payload = layer["digest"].as_str().unwrap();
            assert_eq!(uploads.get(payload), Some(&1), "{payload}: {uploads:#?}");
        }
    }
    // What hoist counted is what the registry saw.
    let blobs = &report["registry"]["blobs"];
    assert_eq!(
        blobs["uploaded"].as_u64().unwrap(),
        u64::try_from(uploads.values().sum::<usize>()).unwrap(),
        "{blobs:#}"
    );
    let mounts = requests
        .iter()
        .filter(|r| r.mounted_blob().is_some())
        .count();
    assert_eq!(
        blobs["mounted"].as_u64().unwrap(),
        u64::try_from(mounts).unwrap(),
        "{blobs:#}"
    );
}

/// The images of a release are pushed by digest as they are built, each only once its
/// own pinned tags are judged: a member whose version tag names another image already
/// is refused before any of its bytes go up, a new member may be pushed by digest
/// meanwhile, and no tag moves anywhere.
#[test]
fn a_refused_member_is_never_uploaded_and_no_tag_moves() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    release(&sandbox, &registry, &[]);
    let released = registry.manifest("acme/web", "1.0.0");

    // web changes (1.0.0 is released: refused); a new member is not released yet.
    sandbox.write("ws/services/web/app/main.py", "print('web, changed')\n");
    sandbox.write("ws/services/extra/app/main.py", "print('extra')\n");
    sandbox.write(
        "ws/services/extra/hoist.toml",
        &format!(
            "[image]\nname = \"{}/acme/extra\"\n\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n",
            registry.host()
        ),
    );
    let before = registry.requests().len();
    let err = crate::registry::fails(
        &mut release_command(&sandbox, &[]),
        crate::registry::HOIST_LIMIT,
    );
    assert!(err.contains("acme/web:1.0.0"), "{err}");
    let requests: Vec<Request> = registry.requests().split_off(before);
    let web: Vec<&Request> = requests
        .iter()
        .filter(|r| r.repository() == Some("acme/web"))
        .filter(|r| r.is_upload_traffic() || r.manifest_put().is_some())
        .collect();
    assert!(web.is_empty(), "the refused member went up: {web:#?}");
    let tag_puts: Vec<&Request> = requests
        .iter()
        // Not a digest, nor a referrers tag (`sha256-<hex>`: an SBOM attached to an
        // image pushed by digest): a release tag.
        .filter(|r| r.manifest_put().is_some_and(|m| !m.starts_with("sha256")))
        .collect();
    assert!(tag_puts.is_empty(), "a tag moved: {tag_puts:#?}");
    assert_eq!(registry.manifest("acme/web", "1.0.0"), released);
    let extra_tag = registry
        .http_get("/v2/acme/extra/manifests/1.0.0", &[])
        .unwrap()
        .status;
    assert_eq!(extra_tag, 404, "the new member was tagged");
}
