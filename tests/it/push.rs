//! `hoist push` and `hoist build --push` against a real registry (`docker-registry`,
//! see `registry.rs`), judged by skopeo, umoci and the registry's own access log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use serde_json::Value;

use crate::common::{
    BASE_INDEX, Layout, OCI_INDEX, Sandbox, base_layout, digest_of, example_config, example_dir,
    last_line, parse_json, stdout, str_at, tool, umoci_unpack,
};
use crate::pull_tag::EXAMPLE_BLOBS;
use crate::registry::{
    DEAD_LIMIT, HOIST_LIMIT as PUSH_LIMIT, Registry, Request, dead_port, fails, ok, skopeo_raw,
};

/// `hoist build` of the dashboard example, pushed to `<registry>/<repo>` with `tags`;
/// returns the `--json` report.
fn build_and_push(sandbox: &Sandbox, registry: &Registry, repo: &str, tags: &[&str]) -> Value {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push")
        .arg("--push-to")
        .arg(registry.reference(repo))
        .arg("--json")
        // The image alone: these tests count its blobs and manifests exactly (SBOM
        // pushes are tests/it/sbom.rs's).
        .arg("--no-sbom");
    for tag in tags {
        command.args(["--tag", tag]);
    }
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// `hoist push SOURCE DEST [extra…]`; returns stdout.
fn push(
    sandbox: &Sandbox,
    registry: &Registry,
    source: &str,
    dest: &str,
    extra: &[&str],
) -> String {
    let mut command = sandbox.hoist();
    command.arg("push").arg(source).arg(dest).args(extra);
    stdout(&ok(&mut command, registry))
}

/// The digest in the `HOST/REPO@sha256:…` line `hoist push` prints last.
fn pushed_digest(out: &str, registry: &Registry, repo: &str) -> String {
    let line = last_line(out);
    let digest = line
        .strip_prefix(&format!("{}@", registry.reference(repo)))
        .unwrap_or_else(|| {
            panic!(
                "expected {}@sha256:… as the last line, got {line:?}",
                registry.reference(repo)
            )
        });
    crate::common::assert_digest(digest);
    digest.to_owned()
}

/// Every blob the index `index_digest` in `repo` references (configs and layers of
/// every platform), with its size, read back from the registry.
fn blobs_of(registry: &Registry, repo: &str, index_digest: &str) -> BTreeMap<String, u64> {
    let index = parse_json(
        std::str::from_utf8(&registry.manifest(repo, index_digest)).expect("UTF-8 index"),
    );
    let mut blobs = BTreeMap::new();
    for child in index["manifests"].as_array().expect("index manifests") {
        let bytes = registry.manifest(repo, str_at(child, "/digest"));
        assert_eq!(digest_of(&bytes), str_at(child, "/digest"));
        let manifest = parse_json(std::str::from_utf8(&bytes).expect("UTF-8 manifest"));
        let layers = manifest["layers"].as_array().expect("manifest layers");
        for descriptor in std::iter::once(&manifest["config"]).chain(layers) {
            let size = descriptor["size"].as_u64().expect("descriptor size");
            blobs.insert(str_at(descriptor, "/digest").to_owned(), size);
        }
    }
    blobs
}

/// The digests of the blob uploads the registry completed, in order.
fn uploads(requests: &[Request]) -> Vec<String> {
    requests.iter().filter_map(Request::uploaded_blob).collect()
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key:?} in {value:#}"))
}

#[test]
fn build_push_to_registry() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let report = build_and_push(&sandbox, &registry, "acme/dashboard", &["1.0.0", "latest"]);
    let digest = str_at(&report, "/digest");
    crate::common::assert_digest(digest);
    assert_eq!(
        str_at(&report, "/reference"),
        format!("{}@{digest}", registry.reference("acme/dashboard")),
        "{report:#}"
    );
    let tags: BTreeSet<_> = report["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().expect("tag"))
        .collect();
    assert_eq!(tags, BTreeSet::from(["1.0.0", "latest"]), "{report:#}");
    assert_eq!(report["platforms"].as_array().map(Vec::len), Some(2));

    // What the registry serves at the tag is the image hoist reported.
    let raw = skopeo_raw(&registry, "acme/dashboard:1.0.0");
    assert_eq!(digest_of(&raw), digest);
    let index = parse_json(std::str::from_utf8(&raw).unwrap());
    assert_eq!(index["mediaType"], OCI_INDEX, "{index:#}");
    let architectures: BTreeSet<_> = index["manifests"]
        .as_array()
        .expect("index manifests")
        .iter()
        .map(|m| str_at(m, "/platform/architecture").to_owned())
        .collect();
    assert_eq!(
        architectures,
        BTreeSet::from(["amd64".to_owned(), "arm64".to_owned()])
    );
    assert_eq!(
        digest_of(&skopeo_raw(&registry, "acme/dashboard:latest")),
        digest,
        "latest names the same index"
    );

    // skopeo pulls the arm64 image; umoci unpacks it to the example's files.
    let pulled = sandbox.path("pulled");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--override-arch",
            "arm64",
            &registry.docker("acme/dashboard:1.0.0"),
            &format!("oci:{}:1", pulled.display()),
        ],
    );
    let rootfs = umoci_unpack(&pulled, "1", &sandbox.path("bundle"));
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).expect("rootfs/app/main.py"),
        fs::read(example_dir().join("backend/main.py")).unwrap()
    );
    assert!(rootfs.join("bin/busybox").is_file(), "rootfs/bin/busybox");
    assert!(
        !rootfs.join("etc/nginx/conf.d/default.conf").exists(),
        "the example removes etc/nginx/conf.d/default.conf"
    );
}

#[test]
fn push_uploads_each_blob_once_and_skips_present_ones() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = "acme/dashboard";
    // The harness's own readiness check is in the log too.
    let before = registry.requests().len();
    let first = build_and_push(&sandbox, &registry, repo, &["1.0.0", "latest"]);
    let first_logged = registry.requests().len() - before;
    let digest = str_at(&first, "/digest");
    let blobs = blobs_of(&registry, repo, digest);
    assert_eq!(blobs.len() as u64, EXAMPLE_BLOBS, "{blobs:#?}");

    let requests = registry.requests();
    let uploaded = uploads(&requests);
    let distinct: BTreeSet<_> = uploaded.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        uploaded.len(),
        "a blob was uploaded twice: {uploaded:#?}"
    );
    assert_eq!(
        distinct,
        blobs.keys().cloned().collect::<BTreeSet<_>>(),
        "the uploads are exactly the image's blobs"
    );
    // The registry did not know the repository (its tag listing, the census, said
    // 404 NAME_UNKNOWN): no blob or image is asked about; every blob goes straight to
    // an upload session: POST, then PUT.
    assert!(
        requests
            .iter()
            .any(|r| r.route() == format!("/v2/{repo}/tags/list") && r.status == 404),
        "{requests:#?}"
    );
    let posts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.route().contains("/blobs/uploads/"))
        .count();
    assert_eq!(posts, uploaded.len(), "one POST per upload: {requests:#?}");
    let heads = requests.iter().filter(|r| r.blob_head().is_some()).count();
    assert_eq!(heads, 0, "{requests:#?}");
    let by_digest_heads = requests
        .iter()
        .filter(|r| r.method == "HEAD" && r.route().contains("/manifests/sha256:"))
        .count();
    assert_eq!(by_digest_heads, 0, "{requests:#?}");
    assert_eq!(count(&first, "blobs_uploaded"), EXAMPLE_BLOBS, "{first:#}");
    assert_eq!(count(&first, "blobs_mounted"), 0, "{first:#}");
    assert_eq!(count(&first, "blobs_skipped"), 0, "{first:#}");
    assert_eq!(
        count(&first, "bytes_uploaded"),
        blobs.values().sum::<u64>(),
        "{first:#}"
    );

    // The same push again finds every blob there and uploads nothing.
    let second = build_and_push(&sandbox, &registry, repo, &["1.0.0", "latest"]);
    assert_eq!(str_at(&second, "/digest"), digest);
    assert_eq!(count(&second, "blobs_uploaded"), 0, "{second:#}");
    assert_eq!(count(&second, "bytes_uploaded"), 0, "{second:#}");
    assert_eq!(count(&second, "blobs_mounted"), 0, "{second:#}");
    assert_eq!(count(&second, "blobs_skipped"), EXAMPLE_BLOBS, "{second:#}");
    let again = registry.requests();
    let new = &again[requests.len()..];
    assert!(
        !new.iter().any(Request::is_upload_traffic),
        "the second push started uploads: {new:#?}"
    );
    assert_eq!(uploads(&again), uploaded);
    // An open registry is probed once at most (`GET /v2/`), not before every request:
    // the unchanged push is the registry-cache lookup (a HEAD per tag, the image
    // read once by digest); the index, read by digest, is there (the registry
    // accepted it only once its blobs and children were there, so it vouches for
    // them: no blob is asked about); each tag, looked up once per command, names it
    // already, so nothing is PUT.
    let probes = new.iter().filter(|r| r.route() == "/v2/").count();
    assert!(probes <= 1, "{probes} probes of /v2/: {new:#?}");
    let blob_heads = new.iter().filter(|r| r.blob_head().is_some()).count();
    assert_eq!(blob_heads, 0, "{new:#?}");
    let manifest_heads = new
        .iter()
        .filter(|r| r.method == "HEAD" && r.route().contains("/manifests/"))
        .count();
    // The two tags, once each (the layer cache's lookup answers the tag moves too).
    assert_eq!(manifest_heads, 2, "{new:#?}");
    assert!(
        !new.iter().any(|r| r.manifest_put().is_some()),
        "an unchanged push PUT manifests: {new:#?}"
    );
    // `hoist build --push --json` reports what it asked of the registry as release and
    // push do: every request the registry logged, and the blobs as the push counted them.
    for (report, logged, uploaded) in [
        (&first, first_logged, EXAMPLE_BLOBS),
        (&second, new.len(), 0),
    ] {
        let stats = &report["registry"];
        assert_eq!(
            stats["total"].as_u64(),
            Some(u64::try_from(logged).unwrap()),
            "{stats:#}"
        );
        assert_eq!(
            crate::schedule::phase_names(stats),
            ["prepare", "build"],
            "{stats:#}"
        );
        assert_eq!(
            stats["blobs"]["uploaded"].as_u64(),
            Some(uploaded),
            "{stats:#}"
        );
        assert_eq!(
            stats["blobs"]["skipped"], report["blobs_skipped"],
            "{report:#}"
        );
        assert_eq!(
            stats["bytes_uploaded"], report["bytes_uploaded"],
            "{report:#}"
        );
    }
}

#[test]
fn push_tags_last() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let report = build_and_push(&sandbox, &registry, "acme/dashboard", &["1.0.0", "latest"]);
    let digest = str_at(&report, "/digest");
    let requests = registry.requests();
    let manifest_puts: Vec<(usize, &str)> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.manifest_put().map(|reference| (i, reference)))
        .collect();
    for (i, _) in &manifest_puts {
        assert_eq!(requests[*i].status, 201, "{:?}", requests[*i]);
    }
    let (by_digest, by_tag): (Vec<_>, Vec<_>) = manifest_puts
        .iter()
        .partition(|(_, reference)| reference.starts_with("sha256:"));
    let tags: BTreeSet<_> = by_tag.iter().map(|(_, tag)| *tag).collect();
    assert_eq!(
        tags,
        BTreeSet::from(["1.0.0", "latest"]),
        "{manifest_puts:#?}"
    );
    assert_eq!(by_tag.len(), 2, "each tag is put once: {manifest_puts:#?}");

    // The two platform manifests, then the index, by digest.
    let index =
        parse_json(std::str::from_utf8(&registry.manifest("acme/dashboard", digest)).unwrap());
    let children: BTreeSet<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_at(m, "/digest"))
        .collect();
    let put_digests: BTreeSet<_> = by_digest.iter().map(|(_, d)| *d).collect();
    let mut expected = children.clone();
    expected.insert(digest);
    assert_eq!(put_digests, expected, "{manifest_puts:#?}");
    let index_put = by_digest
        .iter()
        .find(|(_, d)| *d == digest)
        .map(|(i, _)| *i)
        .unwrap();
    for (i, child) in by_digest.iter().filter(|(_, d)| children.contains(d)) {
        assert!(
            *i < index_put,
            "{child} was put after the index: {requests:#?}"
        );
    }

    let first_tag = by_tag.iter().map(|(i, _)| *i).min().unwrap();
    let last_upload = requests
        .iter()
        .rposition(|r| r.uploaded_blob().is_some())
        .expect("blob uploads");
    let last_by_digest = by_digest.iter().map(|(i, _)| *i).max().unwrap();
    assert!(
        last_upload < first_tag && last_by_digest < first_tag,
        "a tag was put before the blobs and manifests it names: {requests:#?}"
    );
}

#[test]
fn push_layout_and_archive() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let index_digest = str_at(&layout.entry("latest"), "/digest").to_owned();

    let out = push(
        &sandbox,
        &registry,
        &format!("{}:latest", sandbox.oci("out")),
        &registry.reference("other/repo:v1"),
        &[],
    );
    assert_eq!(pushed_digest(&out, &registry, "other/repo"), index_digest);
    assert_eq!(
        skopeo_raw(&registry, "other/repo:v1"),
        layout.blob(&index_digest),
        "the registry serves the layout's index bytes"
    );

    // An archive, to a destination without a tag: that is `latest`.
    let archive = sandbox.path("image.tar");
    sandbox.build_example(&format!("oci-archive:{}", archive.display()), &[]);
    let report = parse_json(&push(
        &sandbox,
        &registry,
        &format!("oci-archive:{}", archive.display()),
        &registry.reference("other/archived"),
        &["--json"],
    ));
    assert_eq!(str_at(&report, "/digest"), index_digest, "{report:#}");
    assert_eq!(
        str_at(&report, "/reference"),
        format!("{}@{index_digest}", registry.reference("other/archived")),
        "{report:#}"
    );
    assert_eq!(report["tags"], serde_json::json!(["latest"]), "{report:#}");
    assert_eq!(
        report["platforms"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(
        skopeo_raw(&registry, "other/archived:latest"),
        layout.blob(&index_digest)
    );
}

#[test]
fn push_jobs_do_not_change_the_digest() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let source = format!("{}:latest", sandbox.oci("out"));
    let expected = str_at(
        &Layout::open(sandbox.path("out")).entry("latest"),
        "/digest",
    )
    .to_owned();
    for (jobs, repo) in [("1", "jobs/one"), ("8", "jobs/eight")] {
        let out = push(
            &sandbox,
            &registry,
            &source,
            &registry.reference(&format!("{repo}:1")),
            &["--jobs", jobs],
        );
        assert_eq!(
            pushed_digest(&out, &registry, repo),
            expected,
            "--jobs {jobs}"
        );
        assert_eq!(
            digest_of(&registry.manifest(repo, "1")),
            expected,
            "--jobs {jobs}"
        );
    }
}

#[test]
fn push_rejects_a_bad_reference() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.hoist();
    command
        .arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg("not a ref");
    let err = fails(&mut command, PUSH_LIMIT);
    assert!(err.contains("not a ref"), "{err}");
}

#[test]
fn push_names_a_missing_source() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let mut command = sandbox.hoist();
    command
        .arg("push")
        .arg("oci:/nonexistent")
        .arg(registry.reference("a/b"));
    let err = fails(&mut command, PUSH_LIMIT);
    assert!(err.contains("/nonexistent"), "{err}");
    assert!(
        !registry.requests().iter().any(|r| r.method != "GET"),
        "nothing was written to the registry"
    );
}

#[test]
fn push_to_a_dead_registry_fails_in_bounded_time() {
    let sandbox = Sandbox::new();
    let host = format!("127.0.0.1:{}", dead_port());
    let mut command = sandbox.hoist();
    command
        .arg("push")
        .arg(format!("oci:{}:1.0", base_layout().display()))
        .arg(format!("{host}/a/b:1"));
    let err = fails(&mut command, DEAD_LIMIT);
    assert!(err.contains(&host), "the error should name {host}:\n{err}");
}

#[test]
fn build_push_needs_a_name() {
    let sandbox = Sandbox::new();
    sandbox.write("src/a.txt", "a\n");
    let config = sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
    );
    let mut command = sandbox.build();
    command.arg("--config").arg(config).arg("--push");
    let err = fails(&mut command, PUSH_LIMIT);
    assert!(err.contains("image.name"), "{err}");
}

#[test]
fn push_fixture_to_loopback_hosts() {
    // The committed base fixture, pushed as is: its index digest is pinned. Loopback
    // registries speak plain HTTP without --insecure-registry, by address or by name.
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let source = format!("oci:{}:1.0", base_layout().display());
    let out = push(
        &sandbox,
        &registry,
        &source,
        &registry.reference("fixtures/base:1.0"),
        &[],
    );
    assert_eq!(pushed_digest(&out, &registry, "fixtures/base"), BASE_INDEX);
    assert_eq!(
        digest_of(&skopeo_raw(&registry, "fixtures/base:1.0")),
        BASE_INDEX
    );

    let by_name = registry.host().replace("127.0.0.1", "localhost");
    let out = push(
        &sandbox,
        &registry,
        &source,
        &format!("{by_name}/fixtures/named"),
        &[],
    );
    assert_eq!(
        last_line(&out),
        format!("{by_name}/fixtures/named@{BASE_INDEX}")
    );
    assert_eq!(
        digest_of(&registry.manifest("fixtures/named", "latest")),
        BASE_INDEX
    );
}

#[test]
fn inspect_and_push_read_registry_references() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let report = build_and_push(&sandbox, &registry, "acme/inspected", &["1.0"]);
    let digest = str_at(&report, "/digest").to_string();

    let mut command = sandbox.hoist();
    command
        .arg("inspect")
        .arg("--json")
        .arg(registry.reference("acme/inspected:1.0"));
    let json = parse_json(&stdout(&ok(&mut command, &registry)));
    assert_eq!(str_at(&json, "/descriptor/digest"), digest);
    let manifests = json["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "both platforms listed: {json}");
    assert_eq!(manifests[1]["platform"]["architecture"], "arm64");
    // Inspecting reads documents only: no layer blob was downloaded.
    let layer_gets = registry
        .requests()
        .iter()
        .filter(|r| r.blob_get().is_some() && r.repository() == Some("acme/inspected"))
        .filter_map(|r| r.blob_get().map(str::to_string))
        .filter(|digest| {
            manifests.iter().any(|m| {
                m["manifest"]["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["digest"] == digest.as_str())
            })
        })
        .count();
    assert_eq!(
        layer_gets,
        0,
        "inspect fetched layers:\n{}",
        registry.log_tail()
    );

    // A registry image is a push source too: copied to another repository.
    let mut command = sandbox.hoist();
    command
        .arg("push")
        .arg(registry.reference("acme/inspected:1.0"))
        .arg(registry.reference("acme/copied:2.0"))
        .arg("--cache-dir")
        .arg(sandbox.cache());
    let pushed = stdout(&ok(&mut command, &registry));
    assert!(pushed.contains(&digest), "{pushed}");
    let copied: Value = serde_json::from_slice(&registry.manifest("acme/copied", "2.0")).unwrap();
    assert_eq!(digest_of(&registry.manifest("acme/copied", "2.0")), digest);
    assert_eq!(copied["manifests"].as_array().unwrap().len(), 2);
}

/// A cross-repository mount the registry declines answers `202 Accepted` with an upload
/// session (OCI distribution spec; distribution does so when the source lacks the
/// blob): the upload goes into that session, with no second `POST`. The cache's
/// records are made to name a repository that holds nothing, so every mount of the
/// second push is declined.
#[test]
fn a_declined_mount_carries_the_upload_in_its_session() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let first = build_and_push(&sandbox, &registry, "acme/first", &["1.0.0"]);
    let digest = str_at(&first, "/digest");
    let blobs = blobs_of(&registry, "acme/first", digest);
    let records = sandbox
        .cache()
        .join("pushed")
        .join(registry.host().replace(':', "_"));
    for blob in blobs.keys() {
        let record = records.join(blob.strip_prefix("sha256:").unwrap());
        assert!(
            record.is_file(),
            "no record of {blob} in {}",
            records.display()
        );
        fs::write(&record, "acme/ghost\n").unwrap();
    }

    let before = registry.requests().len();
    let second = build_and_push(&sandbox, &registry, "acme/second", &["1.0.0"]);
    let requests: Vec<Request> = registry.requests().split_off(before);
    assert_eq!(str_at(&second, "/digest"), digest);
    assert_eq!(
        count(&second, "blobs_uploaded"),
        EXAMPLE_BLOBS,
        "{second:#}"
    );
    assert_eq!(count(&second, "blobs_mounted"), 0, "{second:#}");
    let posts: Vec<&Request> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.route().contains("/blobs/uploads/"))
        .collect();
    // One POST per blob, each the declined mount (202), none a fresh session: every
    // upload below went into a session a mount opened.
    assert_eq!(posts.len(), blobs.len(), "{requests:#?}");
    for post in &posts {
        assert_eq!(post.status, 202, "{post:?}");
        assert_eq!(
            post.query("from").as_deref(),
            Some("acme/ghost"),
            "{post:?}"
        );
        assert!(
            post.query("mount").is_some_and(|m| blobs.contains_key(&m)),
            "{post:?}"
        );
    }
    let uploaded: BTreeSet<String> = uploads(&requests).into_iter().collect();
    assert_eq!(
        uploaded,
        blobs.keys().cloned().collect::<BTreeSet<_>>(),
        "{requests:#?}"
    );
    assert_eq!(
        skopeo_raw(&registry, "acme/second:1.0.0"),
        registry.manifest("acme/first", digest),
        "the second repository serves the same image"
    );
}
