//! The registry as layer cache, mounts from where a blob was pushed before, and split
//! builds (issue 12), against a real registry whose access log shows every request.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{Sandbox, base_layout, copy_tree, example_dir, last_line, parse_json, stdout};
use crate::registry::{Registry, Request, ok};

/// A copy of the dashboard example in the sandbox (so a test may change its files),
/// built on the committed base layout.
fn project(sandbox: &Sandbox) -> std::path::PathBuf {
    let root = sandbox.path("project");
    for dir in ["frontend/dist", "backend"] {
        copy_tree(&example_dir().join(dir), &root.join(dir));
    }
    let toml = fs::read_to_string(example_dir().join("hoist.toml"))
        .unwrap()
        .replace(
            "oci:../../testdata/base:1.0",
            &format!("oci:{}:1.0", base_layout().display()),
        );
    fs::write(root.join("hoist.toml"), toml).unwrap();
    root.join("hoist.toml")
}

/// `hoist build --config CONFIG --cache-dir CACHE --json ARGS…`: the `--json` report.
fn build(
    sandbox: &Sandbox,
    registry: &Registry,
    config: &Path,
    cache: &str,
    args: &[&str],
) -> Value {
    let mut command = sandbox.hoist();
    command
        .arg("build")
        .arg("--config")
        .arg(config)
        .arg("--cache-dir")
        .arg(sandbox.path(cache))
        .arg("--json")
        // These tests count layer downloads and uploads. An SBOM lists what every layer
        // holds, so it reads a reused layer's bytes (a download on a fresh runner:
        // docs/design.md); tests/it/sbom.rs covers pushes with SBOMs.
        .arg("--no-sbom")
        .args(args);
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// The requests logged since `skip` requests.
fn since(registry: &Registry, skip: usize) -> Vec<Request> {
    registry.requests().into_iter().skip(skip).collect()
}

/// None of `layers` was fetched (`GET …/blobs/DIGEST`) by `requests`.
fn assert_no_layer_downloaded(requests: &[Request], layers: &[String]) {
    assert!(
        !requests
            .iter()
            .filter_map(Request::blob_get)
            .any(|d| layers.iter().any(|l| l == d)),
        "no layer was downloaded: {requests:#?}"
    );
}

fn uploads(requests: &[Request]) -> Vec<String> {
    requests.iter().filter_map(Request::uploaded_blob).collect()
}

/// Per new layer (origin ≠ base) of the first platform: (origin, digest, reused, cached).
fn new_layers(report: &Value) -> Vec<(String, String, bool, bool)> {
    report["platforms"][0]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["origin"] != "base")
        .map(|l| {
            (
                l["origin"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
                l["reused"].as_bool().expect("reused is a bool"),
                l["cached"].as_bool().expect("cached is a bool"),
            )
        })
        .collect()
}

/// A fresh runner (empty cache) rebuilding unchanged sources finds every layer in the
/// image its push target's tag names: nothing archived, nothing uploaded, no layer
/// downloaded, the same digest. A changed file rebuilds its layer only; `--no-cache`
/// reads no registry image and builds everything, to the same digest.
#[test]
fn a_fresh_runner_reuses_unchanged_layers_from_the_registry() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let target = registry.reference("acme/app");
    let push = ["--push-to", &target, "--tag", "1.0"];

    let cold = build(&sandbox, &registry, &config, "cold", &push);
    let layers = new_layers(&cold);
    assert_eq!(
        layers.len(),
        3,
        "front end, Python packages, back end: {cold}"
    );
    assert!(layers.iter().all(|(_, _, reused, _)| !reused), "{cold}");
    let digest = cold["digest"].as_str().unwrap().to_string();
    // Every new layer descriptor carries its key.
    let manifest: Value = serde_json::from_slice(
        &registry.manifest("acme/app", cold["platforms"][0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    let keyed: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["annotations"]["io.hoist.layer.key"].is_string())
        .collect();
    assert_eq!(keyed.len(), 3, "{manifest}");

    let before = registry.requests().len();
    let fresh = build(&sandbox, &registry, &config, "fresh", &push);
    let requests = since(&registry, before);
    assert_eq!(
        fresh["digest"],
        digest.as_str(),
        "same digest on a fresh runner"
    );
    for (origin, _, reused, cached) in new_layers(&fresh) {
        assert!(reused && !cached, "{origin} should be reused: {fresh}");
    }
    assert_eq!(fresh["blobs_uploaded"], 0, "{fresh}");
    assert!(uploads(&requests).is_empty(), "{requests:#?}");
    let layer_digests: Vec<String> = layers.iter().map(|l| l.1.clone()).collect();
    assert_no_layer_downloaded(&requests, &layer_digests);
    assert!(
        !requests.iter().any(|r| r.manifest_put().is_some()),
        "nothing was PUT: {requests:#?}"
    );
    // The fresh cache holds no layer blob: nothing was archived.
    for (_, layer, _, _) in &layers {
        let hex = layer.strip_prefix("sha256:").unwrap();
        assert!(!sandbox.path("fresh/blobs/sha256").join(hex).exists());
    }

    // One changed file: its layer is rebuilt and uploaded, the others reused.
    let main = config.parent().unwrap().join("backend/main.py");
    let mut text = fs::read_to_string(&main).unwrap();
    text.push_str("\n# changed\n");
    fs::write(&main, text).unwrap();
    let before = registry.requests().len();
    let changed = build(&sandbox, &registry, &config, "changed", &push);
    let requests = since(&registry, before);
    let after = new_layers(&changed);
    assert_ne!(changed["digest"], digest.as_str());
    assert!(after[0].2, "the front end is reused: {changed}");
    assert!(after[1].2, "the Python packages are reused: {changed}");
    assert!(!after[2].2, "the back end is rebuilt: {changed}");
    assert_eq!((&after[0].1, &after[1].1), (&layers[0].1, &layers[1].1));
    assert_ne!(after[2].1, layers[2].1);
    let uploaded = uploads(&requests);
    assert!(uploaded.contains(&after[2].1), "{uploaded:?}");
    assert!(!uploaded.contains(&after[0].1), "{uploaded:?}");
    assert!(!uploaded.contains(&after[1].1), "{uploaded:?}");
    // The rebuilt layer plus the two configs (one per platform).
    assert_eq!(uploaded.len(), 3, "{uploaded:?}");

    // --no-cache reads no image of the registry and rebuilds everything.
    fs::write(
        &main,
        fs::read_to_string(example_dir().join("backend/main.py")).unwrap(),
    )
    .unwrap();
    let before = registry.requests().len();
    let rebuilt = build(
        &sandbox,
        &registry,
        &config,
        "nocache",
        &[&push[..], &["--no-cache"]].concat(),
    );
    let requests = since(&registry, before);
    assert_eq!(rebuilt["digest"], digest.as_str());
    assert!(new_layers(&rebuilt).iter().all(|l| !l.2), "{rebuilt}");
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "GET" && r.route().contains("/manifests/")),
        "--no-cache reads no manifest: {requests:#?}"
    );
}

/// `--cache-from` names another repository's image: its layers are reused and mounted
/// from there into the new repository, never uploaded.
#[test]
fn cache_from_another_repository_mounts_instead_of_uploading() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let main = registry.reference("acme/main");
    build(&sandbox, &registry, &config, "one", &["--push-to", &main]);

    let before = registry.requests().len();
    let branch = registry.reference("acme/branch");
    let cache_from = format!("{main}:latest");
    let report = build(
        &sandbox,
        &registry,
        &config,
        "two",
        &["--push-to", &branch, "--cache-from", &cache_from],
    );
    let requests = since(&registry, before);
    assert!(new_layers(&report).iter().all(|l| l.2), "{report}");
    let layers: Vec<String> = new_layers(&report).into_iter().map(|l| l.1).collect();
    let mounted: Vec<String> = requests.iter().filter_map(Request::mounted_blob).collect();
    for layer in &layers {
        assert!(mounted.contains(layer), "{layer} mounted: {requests:#?}");
    }
    let uploaded = uploads(&requests);
    assert!(
        !uploaded.iter().any(|u| layers.contains(u)),
        "no layer uploaded: {uploaded:?}"
    );
}

/// The cache remembers which repositories received each blob: a push of the same
/// image to a second repository of the registry mounts every blob, uploads none.
#[test]
fn a_second_repository_gets_mounts_not_uploads() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let first = build(
        &sandbox,
        &registry,
        &config,
        "cache",
        &["--push-to", &registry.reference("team/one")],
    );
    assert!(first["blobs_uploaded"].as_u64().unwrap() > 0);

    let before = registry.requests().len();
    let second = build(
        &sandbox,
        &registry,
        &config,
        "cache",
        &["--push-to", &registry.reference("team/two")],
    );
    let requests = since(&registry, before);
    assert_eq!(second["digest"], first["digest"]);
    assert!(uploads(&requests).is_empty(), "{requests:#?}");
    let mounted: Vec<String> = requests.iter().filter_map(Request::mounted_blob).collect();
    assert_eq!(
        mounted.len() as u64,
        first["blobs_uploaded"].as_u64().unwrap(),
        "every blob uploaded to team/one is mounted into team/two: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.mounted_blob().is_some())
            .all(|r| r.query("from").as_deref() == Some("team/one")),
        "{requests:#?}"
    );
    assert_eq!(second["blobs_mounted"].as_u64(), Some(mounted.len() as u64));
}

/// Runner `i` of a split build: `platform` alone, on a fresh cache, pushed to `repo` by
/// digest with `--digest-file`; the `--json` report and the digest the file holds.
fn split_build(
    sandbox: &Sandbox,
    registry: &Registry,
    config: &Path,
    i: usize,
    platform: &str,
    repo: &str,
) -> (Value, String) {
    let digest_file = sandbox.path(&format!("digest-{i}"));
    let report = build(
        sandbox,
        registry,
        config,
        &format!("runner-{i}"),
        &[
            "--platform",
            platform,
            "--push-to",
            repo,
            "--by-digest",
            "--digest-file",
            digest_file.to_str().unwrap(),
        ],
    );
    let digest = fs::read_to_string(&digest_file).unwrap().trim().to_string();
    (report, digest)
}

/// Split builds: each platform built on its own (fresh cache, pushed by digest, no
/// tag), then `hoist index create` over the digests gives the one-runner build's
/// index digest, moving no blob, tags last.
#[test]
fn split_builds_and_index_create_give_the_one_runner_digest() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let one = build(
        &sandbox,
        &registry,
        &config,
        "one-runner",
        &["--push-to", &registry.reference("acme/one"), "--tag", "1.0"],
    );

    let split = registry.reference("acme/split");
    let mut sources = Vec::new();
    for (i, platform) in ["linux/amd64", "linux/arm64"].iter().enumerate() {
        let (report, digest) = split_build(&sandbox, &registry, &config, i, platform, &split);
        assert_eq!(report["digest"], digest.as_str());
        assert_eq!(
            report["media_type"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(report["tags"], serde_json::json!([]), "{report}");
        assert_eq!(digest, one["platforms"][i]["digest"].as_str().unwrap());
        sources.push(format!("{split}@{digest}"));
    }
    let tags = registry.http_get("/v2/acme/split/tags/list", &[]).unwrap();
    assert!(
        !String::from_utf8_lossy(&tags.body).contains("\"1.0\""),
        "by-digest pushes set no tag"
    );

    let before = registry.requests().len();
    let mut command = sandbox.hoist();
    command
        .args([
            "index",
            "create",
            &format!("{split}:1.0"),
            "--tag",
            "latest",
            "--json",
        ])
        .args(&sources);
    let report = parse_json(&stdout(&ok(&mut command, &registry)));
    let requests = since(&registry, before);
    assert_eq!(report["digest"], one["digest"], "{report}");
    assert!(
        !requests.iter().any(Request::is_upload_traffic),
        "no blob moved: {requests:#?}"
    );
    let puts: Vec<&str> = requests.iter().filter_map(Request::manifest_put).collect();
    assert_eq!(
        puts.len(),
        3,
        "the index by digest, then two tags: {puts:?}"
    );
    assert!(
        puts[0].starts_with("sha256:") && puts[1..] == ["1.0", "latest"],
        "{puts:?}"
    );
    let by_tag = registry.manifest("acme/split", "1.0");
    assert_eq!(
        crate::common::digest_of(&by_tag),
        one["digest"].as_str().unwrap()
    );

    // An index given as a source is flattened: the same index again.
    let mut command = sandbox.hoist();
    command.args([
        "index",
        "create",
        &format!("{split}:flat"),
        &format!("{split}:1.0"),
    ]);
    let out = stdout(&ok(&mut command, &registry));
    assert!(
        last_line(&out).ends_with(one["digest"].as_str().unwrap()),
        "{out}"
    );
}

/// Writes `value` as a blob of the layout at `dir`; returns its descriptor fields.
fn put_blob(dir: &Path, value: &Value) -> (String, usize) {
    let bytes = serde_json::to_vec(value).unwrap();
    let digest = crate::common::digest_of(&bytes);
    fs::write(dir.join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
    (digest, bytes.len())
}

/// A copy of the test base whose index entries and configs disagree on the platform,
/// as real bases do: arm64's entry says `variant: v8` over a config without one (the
/// case issue 17 names), amd64's says `variant: v3` over a config without one, and an
/// arm entry with no variant stands over a config saying `v7`.
fn disagreeing_base(sandbox: &Sandbox) -> std::path::PathBuf {
    let dir = sandbox.path("disagreeing-base");
    crate::common::copy_tree(&base_layout(), &dir);
    let images = crate::common::Layout::open(&dir).platforms("1.0");
    let (amd64, arm64) = (&images[0], &images[1]);
    let mut entries = Vec::new();
    for (image, architecture, config_variant, entry_platform) in [
        (
            amd64,
            "amd64",
            None,
            serde_json::json!({"architecture": "amd64", "os": "linux", "variant": "v3"}),
        ),
        (
            arm64,
            "arm64",
            None,
            serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
        ),
        (
            arm64,
            "arm",
            Some("v7"),
            serde_json::json!({"architecture": "arm", "os": "linux"}),
        ),
    ] {
        let mut config = image.config.clone();
        config["architecture"] = architecture.into();
        match config_variant {
            Some(variant) => config["variant"] = variant.into(),
            None => {
                config.as_object_mut().unwrap().remove("variant");
            }
        }
        let (digest, size) = put_blob(&dir, &config);
        let mut manifest = image.manifest.clone();
        manifest["config"]["digest"] = digest.into();
        manifest["config"]["size"] = size.into();
        let (digest, size) = put_blob(&dir, &manifest);
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": entry_platform,
        }));
    }
    let index_media = "application/vnd.oci.image.index.v1+json";
    let (digest, size) = put_blob(
        &dir,
        &serde_json::json!({"schemaVersion": 2, "mediaType": index_media, "manifests": entries}),
    );
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": index_media,
        "manifests": [{
            "mediaType": index_media,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    dir
}

/// Issue 17: split builds on a base whose index and configs disagree on the platform.
/// Each per-platform push records the entry's platform on its manifest where the
/// config says otherwise (`io.hoist.platform`), and `hoist index create` takes it from
/// there: the one-runner build's index, digest for digest, with every entry's platform
/// the base's own.
#[test]
fn index_create_keeps_the_base_entries_platforms_the_configs_disagree_with() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let base = disagreeing_base(&sandbox);
    let platforms = ["linux/amd64/v3", "linux/arm64/v8", "linux/arm"];
    let toml = fs::read_to_string(&config).unwrap();
    let toml = toml
        .replace(
            &format!("oci:{}:1.0", base_layout().display()),
            &format!("oci:{}:1.0", base.display()),
        )
        .replace(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]",
            &format!("platforms = {platforms:?}"),
        );
    assert!(toml.contains("linux/amd64/v3"), "{toml}");
    fs::write(&config, toml).unwrap();

    let one = build(
        &sandbox,
        &registry,
        &config,
        "one-runner",
        &["--push-to", &registry.reference("acme/one"), "--tag", "1.0"],
    );
    let one_index: Value =
        serde_json::from_slice(&registry.manifest("acme/one", one["digest"].as_str().unwrap()))
            .unwrap();
    let entry_platforms: Vec<&Value> = one_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        entry_platforms,
        [
            &serde_json::json!({"architecture": "amd64", "os": "linux", "variant": "v3"}),
            &serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
            &serde_json::json!({"architecture": "arm", "os": "linux"}),
        ],
        "the base's entries, verbatim"
    );

    let split = registry.reference("acme/split");
    let mut sources = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let (_, digest) = split_build(&sandbox, &registry, &config, i, platform, &split);
        assert_eq!(digest, one["platforms"][i]["digest"].as_str().unwrap());
        let manifest: Value =
            serde_json::from_slice(&registry.manifest("acme/split", &digest)).unwrap();
        let recorded = manifest["annotations"]["io.hoist.platform"].as_str();
        // Only where the config would give another platform (arm64's `v8` is what a
        // config without a variant means): an ordinary image is unchanged.
        assert_eq!(
            recorded.is_some(),
            i != 1,
            "{platform}: {:#}",
            manifest["annotations"]
        );
        if let Some(recorded) = recorded {
            assert_eq!(&parse_json(recorded), entry_platforms[i]);
        }
        sources.push(format!("{split}@{digest}"));
    }
    let mut command = sandbox.hoist();
    command
        .args(["index", "create", &format!("{split}:1.0"), "--json"])
        .args(&sources);
    let report = parse_json(&stdout(&ok(&mut command, &registry)));
    assert_eq!(report["digest"], one["digest"], "{report}");
    assert_eq!(
        registry.manifest("acme/split", "1.0"),
        registry.manifest("acme/one", "1.0"),
        "the same index document"
    );
}

/// `curl -X PUT` of a manifest or index (`media_type`) to `repo`'s `reference`.
fn put_manifest(registry: &Registry, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), bytes).unwrap();
    crate::common::tool(
        "curl",
        &[
            "-fsS".to_string(),
            "-X".into(),
            "PUT".into(),
            "-H".into(),
            format!("Content-Type: {media_type}"),
            "--data-binary".into(),
            format!("@{}", file.path().display()),
            format!("http://{}/v2/{repo}/manifests/{reference}", registry.host()),
        ],
    );
}

/// The trust model: a registry image that records a wrong key makes a build reuse a
/// wrong layer, and `hoist verify` (which never reads the registry's keys) catches it.
#[test]
fn a_lying_key_in_the_registry_is_caught_by_verify() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let app = registry.reference("acme/app");
    let honest = build(
        &sandbox,
        &registry,
        &config,
        "a",
        &["--push-to", &app, "--tag", "1.0"],
    );

    // The key of the back end after an edit, from an honest push elsewhere.
    let main = config.parent().unwrap().join("backend/main.py");
    let mut text = fs::read_to_string(&main).unwrap();
    text.push_str("\n# edited\n");
    fs::write(&main, text).unwrap();
    let edited = build(
        &sandbox,
        &registry,
        &config,
        "b",
        &["--push-to", &registry.reference("acme/elsewhere")],
    );
    let key_of = |repo: &str, manifest: &str| -> String {
        let manifest: Value = serde_json::from_slice(&registry.manifest(repo, manifest)).unwrap();
        manifest["layers"].as_array().unwrap().last().unwrap()["annotations"]["io.hoist.layer.key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let edited_key = key_of(
        "acme/elsewhere",
        edited["platforms"][0]["digest"].as_str().unwrap(),
    );

    // acme/app:1.0 now claims the old back-end layer is the edited sources' layer.
    let index: Value =
        serde_json::from_slice(&registry.manifest("acme/app", honest["digest"].as_str().unwrap()))
            .unwrap();
    let mut lying_index = index.clone();
    for (i, entry) in index["manifests"].as_array().unwrap().iter().enumerate() {
        let digest = entry["digest"].as_str().unwrap();
        let mut manifest: Value =
            serde_json::from_slice(&registry.manifest("acme/app", digest)).unwrap();
        let last = manifest["layers"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap();
        last["annotations"]["io.hoist.layer.key"] = Value::String(edited_key.clone());
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let lying_digest = crate::common::digest_of(&bytes);
        put_manifest(
            &registry,
            "acme/app",
            &lying_digest,
            entry["mediaType"].as_str().unwrap(),
            &bytes,
        );
        lying_index["manifests"][i]["digest"] = Value::String(lying_digest);
        lying_index["manifests"][i]["size"] = Value::from(bytes.len());
    }
    put_manifest(
        &registry,
        "acme/app",
        "1.0",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&lying_index).unwrap(),
    );

    // A fresh runner believes it: the back end is "reused", with the old bytes.
    let fooled = build(
        &sandbox,
        &registry,
        &config,
        "c",
        &["--push-to", &app, "--tag", "1.0"],
    );
    let layers = new_layers(&fooled);
    assert!(layers[2].2, "the lie was believed: {fooled}");
    assert_eq!(
        layers[2].1,
        new_layers(&honest)[2].1,
        "the old back-end layer"
    );
    assert_ne!(fooled["digest"], edited["digest"]);

    // verify rebuilds every layer from the checkout and says the image is not it.
    let mut command = sandbox.hoist();
    command
        .arg("verify")
        .arg("--cache-dir")
        .arg(sandbox.path("verify"))
        .arg("--config")
        .arg(&config)
        .arg(format!("{app}:1.0"));
    let output = crate::registry::run(&mut command, crate::registry::HOIST_LIMIT);
    assert_eq!(
        output.status.code(),
        Some(1),
        "verify must report the mismatch:\n{}\n{}",
        stdout(&output),
        crate::common::stderr(&output)
    );
}

/// `hoist build --json --push-to TARGET` with SBOMs on (the default): the report.
fn push_with_sboms(
    sandbox: &Sandbox,
    registry: &Registry,
    config: &Path,
    target: &str,
    cache: &str,
) -> Value {
    let mut command = sandbox.hoist();
    command
        .args(["build", "--json", "--push-to", target, "--config"])
        .arg(config)
        .arg("--cache-dir")
        .arg(sandbox.path(cache));
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// With SBOMs on (the default), a fresh runner rebuilding an unchanged image takes each
/// platform's SBOM from the registry (the one the cold build attached to that very
/// manifest) instead of downloading the reused layers to read them: no layer is
/// downloaded, nothing uploaded, the same SBOM bytes.
#[test]
fn a_fresh_runner_takes_an_unchanged_images_sboms_from_the_registry() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let config = project(&sandbox);
    let target = registry.reference("acme/app");
    let with_sboms = |cache: &str| push_with_sboms(&sandbox, &registry, &config, &target, cache);
    let cold = with_sboms("cold");
    let layer_digests: Vec<String> = new_layers(&cold).into_iter().map(|l| l.1).collect();
    let subject = cold["platforms"][0]["digest"].as_str().unwrap().to_string();
    let sbom_tag = format!("sha256-{}", &subject[7..]);
    let index_before = registry.manifest("acme/app", &sbom_tag);

    let before = registry.requests().len();
    let fresh = with_sboms("fresh");
    let requests = since(&registry, before);
    assert_eq!(fresh["digest"], cold["digest"]);
    assert!(
        new_layers(&fresh).iter().all(|l| l.2),
        "every layer reused: {fresh}"
    );
    assert!(uploads(&requests).is_empty(), "{requests:#?}");
    assert_no_layer_downloaded(&requests, &layer_digests);
    // The same SBOM: the fallback index still lists exactly the cold build's.
    assert_eq!(registry.manifest("acme/app", &sbom_tag), index_before);
}

/// The same with the base in the registry: a fresh runner rebuilding the unchanged
/// image neither downloads the base's layers (the SBOM attached to each platform
/// manifest serves) nor the reused ones. A build whose SBOM must be made (a changed
/// layer) still fetches the base layers it reads, once per cache.
#[test]
fn a_fresh_runner_on_a_registry_base_fetches_no_base_layer_for_the_sbom() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = registry.reference("acme/base:1.0");
    let mut push = sandbox.hoist();
    push.arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg(&base);
    ok(&mut push, &registry);
    let config = project(&sandbox);
    let toml = fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("oci:{}:1.0", base_layout().display()), &base);
    fs::write(&config, toml).unwrap();
    let target = registry.reference("acme/app");
    let with_sboms = |cache: &str| push_with_sboms(&sandbox, &registry, &config, &target, cache);
    let base_layers = |report: &Value| -> Vec<String> {
        report["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["layers"].as_array().unwrap())
            .filter(|l| l["origin"] == "base")
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let before = registry.requests().len();
    let cold = with_sboms("cold");
    let from_base = base_layers(&cold);
    assert!(!from_base.is_empty(), "{cold}");
    // A cold build makes the SBOMs: it reads the base's package databases.
    let downloaded: Vec<String> = since(&registry, before)
        .iter()
        .filter_map(Request::blob_get)
        .map(str::to_string)
        .collect();
    assert!(
        from_base.iter().all(|l| downloaded.contains(l)),
        "the cold build read the base layers: {downloaded:?}"
    );

    let before = registry.requests().len();
    let fresh = with_sboms("fresh");
    let requests = since(&registry, before);
    assert_eq!(fresh["digest"], cold["digest"]);
    assert!(uploads(&requests).is_empty(), "{requests:#?}");
    let mut every_layer = from_base;
    every_layer.extend(new_layers(&cold).into_iter().map(|l| l.1));
    assert_no_layer_downloaded(&requests, &every_layer);
}
