//! Registries as sources: bases pulled from a registry (`base = "HOST/REPO:TAG"`,
//! `--base`), cross-repository mounts when pushing on top of them, `hoist pull` and
//! `hoist tag`, against a real `docker-registry` (see `registry.rs`) and judged by
//! skopeo, umoci and the registry's own access log.
//!
//! The base is the committed `testdata/base:1.0`, copied into the registry by skopeo
//! (not by hoist) as `library/busybase:1.0`, so its index digest is the pinned
//! [`BASE_INDEX`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{
    BASE_AMD64_CONFIG, BASE_AMD64_LAYER, BASE_AMD64_MANIFEST, BASE_ARM64_LAYER,
    BASE_ARM64_MANIFEST, BASE_INDEX, Layout, OCI_INDEX, Sandbox, assert_digest, base_layout,
    copy_tree, digest_of, example_config, example_dir, files_under, last_line, parse_json, stdout,
    str_at, tool_within,
};
use crate::registry::{
    DEAD_LIMIT, HOIST_LIMIT, Registry, Request, dead_port, fails, ok, run, skopeo_raw,
};

/// Where [`seed_base`] puts the base in the registry.
pub(crate) const BASE_REPO: &str = "library/busybase";
const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// Distinct blobs of the dashboard example: 2 base layers, 3 new layers (shared by
/// both platforms: front end, Python packages, back end), 2 configs.
pub(crate) const EXAMPLE_BLOBS: u64 = 7;

/// Copies `testdata/base:1.0` (both platforms) into `registry` as
/// `library/busybase:1.0` with skopeo; returns `HOST/library/busybase:1.0`.
pub(crate) fn seed_base(registry: &Registry) -> String {
    tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "copy".to_owned(),
            "--all".to_owned(),
            "--quiet".to_owned(),
            "--dest-tls-verify=false".to_owned(),
            format!("oci:{}:1.0", base_layout().display()),
            registry.docker(&format!("{BASE_REPO}:1.0")),
        ],
    );
    assert_eq!(
        digest_of(&registry.manifest(BASE_REPO, "1.0")),
        BASE_INDEX,
        "skopeo copied the fixture's index as it is"
    );
    registry.reference(&format!("{BASE_REPO}:1.0"))
}

/// `hoist build` of the dashboard example on `base` (as `--base`), with the sandbox's
/// cache, plus `extra`; bounded, asserting success. Returns stdout.
fn build_on(sandbox: &Sandbox, registry: &Registry, base: &str, extra: &[&str]) -> String {
    let mut command = sandbox.build();
    command
        // Dated as a copy of the example outside git is (see Sandbox::build_example).
        .env("SOURCE_DATE_EPOCH", "0")
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(base)
        .args(extra);
    stdout(&ok(&mut command, registry))
}

/// `hoist build` of the dashboard example on its committed base, pushed to
/// `<registry>/<repo_tag>` (plus `extra`); returns the index digest.
fn push_example(sandbox: &Sandbox, registry: &Registry, repo_tag: &str, extra: &[&str]) -> String {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--push-to")
        .arg(registry.reference(repo_tag))
        .arg("--json")
        .args(extra);
    let report = parse_json(&stdout(&ok(&mut command, registry)));
    let digest = str_at(&report, "/digest").to_owned();
    assert_digest(&digest);
    digest
}

/// `hoist pull REFERENCE --output OUTPUT [extra…]` with a cache of its own (not the
/// one the sandbox's builds fill, so a pull downloads what it mirrors).
fn pull(sandbox: &Sandbox, reference: &str, output: &str, extra: &[&str]) -> Command {
    let mut command = sandbox.hoist();
    command
        .arg("pull")
        .arg(reference)
        .arg("--output")
        .arg(output)
        .arg("--cache-dir")
        .arg(sandbox.path("pull-cache"))
        .args(extra);
    command
}

/// `hoist tag SOURCE DESTINATION [extra…]`.
fn tag(sandbox: &Sandbox, source: &str, destination: &str, extra: &[&str]) -> Command {
    let mut command = sandbox.hoist();
    command.arg("tag").arg(source).arg(destination).args(extra);
    command
}

/// The digests of the blobs downloaded (`GET …/blobs/<digest>`) in `requests`.
fn blob_gets(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(Request::blob_get)
        .map(str::to_owned)
        .collect()
}

/// The digests of the blob uploads the registry completed.
fn uploads(requests: &[Request]) -> Vec<String> {
    requests.iter().filter_map(Request::uploaded_blob).collect()
}

/// `(digest, from)` of every successful cross-repository mount.
fn mounts(requests: &[Request]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter_map(|r| {
            r.mounted_blob()
                .map(|digest| (digest, r.query("from").unwrap_or_default()))
        })
        .collect()
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key:?} in {value:#}"))
}

/// The committed base's platform images by architecture.
fn base_images() -> BTreeMap<String, crate::common::PlatformImage> {
    Layout::open(base_layout())
        .platforms("1.0")
        .into_iter()
        .map(|image| (image.architecture().to_owned(), image))
        .collect()
}

/// The annotations of the index at `tag` in `layout`.
fn index_annotations(layout: &Layout, tag: &str) -> Value {
    let entry = layout.entry(tag);
    layout.json(str_at(&entry, "/digest"))["annotations"].clone()
}

/// skopeo copies the arm64 image of `source` (any skopeo transport reference) into a
/// fresh layout, and umoci unpacks it; returns the root filesystem.
pub fn unpack_arm64(sandbox: &Sandbox, source: &str, name: &str) -> PathBuf {
    let copy = sandbox.path(&format!("{name}-copy"));
    tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--override-arch",
            "arm64",
            source,
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let bundle = sandbox.path(&format!("{name}-bundle"));
    tool_within(
        HOIST_LIMIT,
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:1", copy.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

/// The example's files and the base's busybox are in `rootfs`.
fn assert_example_rootfs(rootfs: &Path) {
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "{}/bin/busybox",
        rootfs.display()
    );
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).expect("rootfs/app/main.py"),
        fs::read(example_dir().join("backend/main.py")).unwrap()
    );
}

/// Every blob `layout` holds under the index `index_digest`, read (and so verified
/// against its digest): the index, manifests, configs and layers.
fn assert_complete(layout: &Layout, index_digest: &str) -> BTreeSet<String> {
    let index = layout.json(index_digest);
    let mut blobs = BTreeSet::from([index_digest.to_owned()]);
    for child in index["manifests"].as_array().expect("index manifests") {
        let digest = str_at(child, "/digest");
        let manifest = layout.json(digest);
        blobs.insert(digest.to_owned());
        let layers = manifest["layers"].as_array().expect("manifest layers");
        for descriptor in std::iter::once(&manifest["config"]).chain(layers) {
            let blob = str_at(descriptor, "/digest");
            let bytes = layout.blob(blob);
            assert_eq!(Some(bytes.len() as u64), descriptor["size"].as_u64());
            blobs.insert(blob.to_owned());
        }
    }
    blobs
}

// ---------------------------------------------------------------------------------
// Registry bases
// ---------------------------------------------------------------------------------

#[test]
fn build_on_a_registry_base() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let out = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("out")],
    );
    let layout = Layout::open(sandbox.path("out"));
    let index_digest = str_at(&layout.entry("latest"), "/digest").to_owned();
    assert_eq!(last_line(&out), index_digest);

    // The index names the base as given and pins the registry's index digest.
    let annotations = index_annotations(&layout, "latest");
    assert_eq!(annotations[BASE_NAME], base.as_str(), "{annotations:#}");
    assert_eq!(annotations[BASE_DIGEST], BASE_INDEX, "{annotations:#}");

    // Each platform starts with the registry's (= the fixture's) layers, and its
    // manifest pins the base manifest of that platform.
    let bases = base_images();
    let images = layout.platforms("latest");
    let arches: BTreeSet<_> = images.iter().map(|i| i.architecture().to_owned()).collect();
    assert_eq!(arches, BTreeSet::from(["amd64".into(), "arm64".into()]));
    for image in &images {
        let arch = image.architecture();
        let base_image = &bases[arch];
        let base_layers = base_image.layer_digests();
        let layers = image.layer_digests();
        assert_eq!(
            layers[..base_layers.len()],
            base_layers[..],
            "{arch}: the base layers come first, as the registry serves them"
        );
        assert_eq!(layers.len(), base_layers.len() + 3, "{arch}: {layers:#?}");
        let expected = if arch == "amd64" {
            BASE_AMD64_MANIFEST
        } else {
            BASE_ARM64_MANIFEST
        };
        assert_eq!(str_at(&base_image.descriptor, "/digest"), expected);
        assert_eq!(
            image.manifest["annotations"][BASE_DIGEST], expected,
            "{arch}: {:#}",
            image.manifest
        );
        assert_eq!(image.manifest["annotations"][BASE_NAME], base.as_str());
    }
    assert_eq!(
        images
            .iter()
            .map(|i| i.layer_digests()[0].clone())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([BASE_AMD64_LAYER.to_owned(), BASE_ARM64_LAYER.to_owned()])
    );

    // Apart from the base's name in the annotations, it is the image built on the
    // committed layout: same configs, same layers.
    sandbox.build_example(&sandbox.oci("local"), &[]);
    let local: BTreeMap<_, _> = Layout::open(sandbox.path("local"))
        .platforms("latest")
        .into_iter()
        .map(|image| (image.architecture().to_owned(), image))
        .collect();
    for image in &images {
        let twin = &local[image.architecture()];
        assert_eq!(image.config, twin.config, "{}", image.architecture());
        assert_eq!(
            image.manifest["config"],
            twin.manifest["config"],
            "{}",
            image.architecture()
        );
        assert_eq!(image.manifest["layers"], twin.manifest["layers"]);
    }

    // Third parties read it: skopeo copies the arm64 image, umoci unpacks it.
    let rootfs = unpack_arm64(&sandbox, &format!("{}:latest", sandbox.oci("out")), "arm64");
    assert_example_rootfs(&rootfs);
}

#[test]
fn registry_base_in_the_config_file() {
    // `base = "HOST/REPO:TAG"` in hoist.toml is the same base as `--base`: a copy of the
    // example with its base line rewritten builds the very same image (same digest).
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let tree = sandbox.path("dashboard");
    fs::create_dir_all(&tree).unwrap();
    copy_tree(&example_dir(), &tree);
    let config = tree.join("hoist.toml");
    let text = fs::read_to_string(&config).unwrap();
    let base_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("base ="))
        .expect("the example's base line")
        .to_owned();
    fs::write(
        &config,
        text.replace(&base_line, &format!("base = \"{base}\"")),
    )
    .unwrap();

    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(sandbox.oci("from-file"));
    let from_file = last_line(&stdout(&ok(&mut command, &registry))).to_owned();
    let from_flag = last_line(&build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("from-flag")],
    ))
    .to_owned();
    assert_eq!(from_file, from_flag, "config-file base vs --base");
    let annotations = index_annotations(&Layout::open(sandbox.path("from-file")), "latest");
    assert_eq!(annotations[BASE_NAME], base.as_str(), "{annotations:#}");
    assert_eq!(annotations[BASE_DIGEST], BASE_INDEX, "{annotations:#}");
}

#[test]
fn registry_base_with_docker_prefix() {
    // skopeo's `docker://` spelling is accepted; the annotation keeps the base as
    // written (docs/config.md), and the layers are the registry's.
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = format!("docker://{}", seed_base(&registry));
    build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("out")],
    );
    let layout = Layout::open(sandbox.path("out"));
    let annotations = index_annotations(&layout, "latest");
    assert_eq!(annotations[BASE_NAME], base.as_str(), "{annotations:#}");
    assert_eq!(annotations[BASE_DIGEST], BASE_INDEX, "{annotations:#}");
    let bases = base_images();
    for image in layout.platforms("latest") {
        assert_eq!(
            image.layer_digests()[0],
            bases[image.architecture()].layer_digests()[0]
        );
    }
}

#[test]
fn registry_base_fetches_only_the_chosen_platform() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let before = registry.requests().len();
    build_on(
        &sandbox,
        &registry,
        &base,
        &["--platform", "linux/arm64", "--output", &sandbox.oci("out")],
    );
    let requests = registry.requests();
    let new = &requests[before..];
    let gets = blob_gets(new);
    for amd64 in [BASE_AMD64_LAYER, BASE_AMD64_CONFIG] {
        assert!(
            !gets.iter().any(|d| d == amd64),
            "an arm64-only build downloaded the amd64 blob {amd64}: {new:#?}"
        );
    }
    assert!(
        !new.iter().any(|r| r.path.ends_with(BASE_AMD64_MANIFEST)),
        "an arm64-only build fetched the amd64 manifest: {new:#?}"
    );
    assert_eq!(
        gets.iter().filter(|d| *d == BASE_ARM64_LAYER).count(),
        1,
        "the arm64 layer is downloaded once: {new:#?}"
    );
    assert!(
        new.iter()
            .filter(|r| r.blob_get().is_some())
            .all(|r| r.status == 200 && r.repository() == Some(BASE_REPO)),
        "{new:#?}"
    );

    let layout = Layout::open(sandbox.path("out"));
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].architecture(), "arm64");
    assert_eq!(images[0].layer_digests()[0], BASE_ARM64_LAYER);
}

#[test]
fn registry_base_second_build_downloads_no_blob() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let before = registry.requests().len();
    let first = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("one")],
    );
    let requests = registry.requests();
    let gets = blob_gets(&requests[before..]);
    let distinct: BTreeSet<_> = gets.iter().cloned().collect();
    assert_eq!(
        gets.len(),
        distinct.len(),
        "a base blob was downloaded twice: {gets:#?}"
    );
    // The base's blobs: two layers and two configs.
    let bases = base_images();
    let expected: BTreeSet<String> = bases
        .values()
        .flat_map(|image| {
            let mut blobs = image.layer_digests();
            blobs.push(str_at(&image.manifest, "/config/digest").to_owned());
            blobs
        })
        .collect();
    assert_eq!(
        distinct, expected,
        "the first build downloads the base's blobs"
    );

    let second = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("two")],
    );
    assert_eq!(last_line(&second), last_line(&first));
    let again = registry.requests();
    let new = &again[requests.len()..];
    assert!(
        blob_gets(new).is_empty(),
        "the second build downloaded blobs it had cached: {new:#?}"
    );
    assert!(
        !new.iter().any(|r| r.method != "GET" && r.method != "HEAD"),
        "{new:#?}"
    );
}

#[test]
fn registry_base_without_the_platform_lists_what_it_has() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let before = registry.requests().len();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(&base)
        .arg("--platform")
        .arg("linux/s390x")
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = fails(&mut command, HOIST_LIMIT);
    for needle in [
        "linux/s390x",
        "linux/amd64",
        "linux/arm64/v8",
        base.as_str(),
    ] {
        assert!(
            err.contains(needle),
            "the error should name {needle}:\n{err}"
        );
    }
    assert!(!sandbox.path("out").exists(), "nothing is written");
    let new = &registry.requests()[before..];
    assert!(blob_gets(new).is_empty(), "no blob is downloaded: {new:#?}");
}

#[test]
fn registry_base_unknown_tag_names_the_reference() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    seed_base(&registry);
    let missing = registry.reference(&format!("{BASE_REPO}:9.9"));
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(&missing)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let output = run(&mut command, HOIST_LIMIT);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = crate::common::stderr(&output);
    assert!(
        err.contains(&missing),
        "the error should name {missing}:\n{err}"
    );
    assert!(!sandbox.path("out").exists(), "nothing is written");
}

#[test]
fn registry_base_on_a_dead_port_fails_in_bounded_time() {
    let sandbox = Sandbox::new();
    let host = format!("127.0.0.1:{}", dead_port());
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--base")
        .arg(format!("{host}/{BASE_REPO}:1.0"))
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = fails(&mut command, DEAD_LIMIT);
    assert!(err.contains(&host), "the error should name {host}:\n{err}");
    assert!(!sandbox.path("out").exists(), "nothing is written");
}

// ---------------------------------------------------------------------------------
// Cross-repository mounts
// ---------------------------------------------------------------------------------

#[test]
fn build_push_mounts_the_base_layers() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let before = registry.requests().len();
    let target = registry.reference("acme/app:1");
    let report = parse_json(&build_on(
        &sandbox,
        &registry,
        &base,
        // No SBOMs: they read every base layer (docs/config.md, `sbom`), and this
        // is about the layers a push alone needs.
        &["--push-to", &target, "--json", "--no-sbom"],
    ));
    assert_eq!(count(&report, "blobs_mounted"), 2, "{report:#}");
    // The three new layers and the two configs.
    assert_eq!(count(&report, "blobs_uploaded"), 5, "{report:#}");
    assert_eq!(count(&report, "blobs_skipped"), 0, "{report:#}");
    assert_eq!(count(&report, "base_blobs_fetched"), 0, "{report:#}");
    let digest = str_at(&report, "/digest");

    let requests = registry.requests();
    let new = &requests[before..];
    let base_layers = BTreeSet::from([BASE_AMD64_LAYER.to_owned(), BASE_ARM64_LAYER.to_owned()]);
    // Mountable base layers are never downloaded, nor kept in the cache.
    let fetched = blob_gets(new);
    assert!(
        base_layers.iter().all(|layer| !fetched.contains(layer)),
        "a mountable base layer was downloaded: {fetched:#?}"
    );
    for layer in &base_layers {
        let hex = layer.trim_start_matches("sha256:");
        assert!(
            !sandbox.cache().join("blobs/sha256").join(hex).exists(),
            "{layer} is in the cache"
        );
    }
    let mounted = mounts(new);
    assert_eq!(
        mounted
            .iter()
            .map(|(d, _)| d.clone())
            .collect::<BTreeSet<_>>(),
        base_layers,
        "the two base layers are mounted: {new:#?}"
    );
    assert_eq!(mounted.len(), 2, "{mounted:#?}");
    for (digest, from) in &mounted {
        assert_eq!(from, BASE_REPO, "{digest} mounted from {from}");
    }
    for request in new.iter().filter(|r| r.query("mount").is_some()) {
        assert_eq!(request.status, 201, "{request:?}");
        assert!(
            request.route().starts_with("/v2/acme/app/blobs/uploads/"),
            "{request:?}"
        );
    }
    let uploaded = uploads(new);
    assert_eq!(uploaded.len(), 5, "{new:#?}");
    for layer in &base_layers {
        assert!(
            !uploaded.contains(layer)
                && !new.iter().any(|r| {
                    r.is_upload_traffic() && r.query("digest").as_ref() == Some(layer)
                }),
            "the base layer {layer} was uploaded, not mounted: {new:#?}"
        );
    }

    // The registry serves a complete image at the tag: skopeo and umoci read it.
    assert_eq!(digest_of(&skopeo_raw(&registry, "acme/app:1")), digest);
    let rootfs = unpack_arm64(&sandbox, &registry.docker("acme/app:1"), "pushed");
    assert_example_rootfs(&rootfs);
}

#[test]
fn build_push_to_another_registry_uploads() {
    // Mounts only work within one registry: a base from A pushed to B is uploaded.
    let sandbox = Sandbox::new();
    let source = Registry::start();
    let dest = Registry::start();
    let base = seed_base(&source);
    let before = source.requests().len();
    let report = parse_json(&build_on(
        &sandbox,
        &dest,
        &base,
        // No SBOMs: they read every base layer first (docs/config.md, `sbom`).
        &[
            "--push-to",
            &dest.reference("acme/app:1"),
            "--json",
            "--no-sbom",
        ],
    ));
    assert_eq!(count(&report, "blobs_mounted"), 0, "{report:#}");
    assert_eq!(
        count(&report, "blobs_uploaded"),
        EXAMPLE_BLOBS,
        "{report:#}"
    );
    // The two base layers had to move: fetched from A (during the push), once each.
    assert_eq!(count(&report, "base_blobs_fetched"), 2, "{report:#}");
    let fetched = blob_gets(&source.requests()[before..]);
    for layer in [BASE_AMD64_LAYER, BASE_ARM64_LAYER] {
        assert_eq!(
            fetched.iter().filter(|d| d.as_str() == layer).count(),
            1,
            "{layer} fetched once: {fetched:#?}"
        );
    }
    let on_dest = dest.requests();
    assert!(mounts(&on_dest).is_empty(), "{on_dest:#?}");
    let uploaded: BTreeSet<_> = uploads(&on_dest).into_iter().collect();
    assert!(
        uploaded.contains(BASE_AMD64_LAYER) && uploaded.contains(BASE_ARM64_LAYER),
        "the base layers are uploaded to the other registry: {on_dest:#?}"
    );
    let new_on_source = &source.requests()[before..];
    assert!(
        new_on_source
            .iter()
            .all(|r| r.method == "GET" || r.method == "HEAD"),
        "nothing is written to the base's registry: {new_on_source:#?}"
    );
    assert_eq!(
        digest_of(&skopeo_raw(&dest, "acme/app:1")),
        str_at(&report, "/digest")
    );

    // Another machine (an empty cache) rebuilding the same image: B has every layer,
    // so no base layer is downloaded from A and nothing is uploaded.
    let fresh = Sandbox::new();
    let before = source.requests().len();
    let again = parse_json(&build_on(
        &fresh,
        &dest,
        &base,
        &[
            "--push-to",
            &dest.reference("acme/app:1"),
            "--json",
            "--no-sbom",
        ],
    ));
    assert_eq!(str_at(&again, "/digest"), str_at(&report, "/digest"));
    assert_eq!(count(&again, "blobs_uploaded"), 0, "{again:#}");
    assert_eq!(count(&again, "base_blobs_fetched"), 0, "{again:#}");
    let fetched = blob_gets(&source.requests()[before..]);
    assert!(
        !fetched.contains(&BASE_AMD64_LAYER.to_owned())
            && !fetched.contains(&BASE_ARM64_LAYER.to_owned()),
        "{fetched:#?}"
    );
}

// ---------------------------------------------------------------------------------
// hoist pull
// ---------------------------------------------------------------------------------

#[test]
fn pull_mirrors_every_platform_byte_for_byte() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    let source = registry.reference("acme/app:1");
    let out = stdout(&ok(
        &mut pull(&sandbox, &source, &sandbox.oci("pulled"), &[]),
        &registry,
    ));
    assert_eq!(last_line(&out), digest, "the printed digest");

    let remote = skopeo_raw(&registry, "acme/app:1");
    let local = tool_within(
        HOIST_LIMIT,
        "skopeo",
        &["inspect", "--raw", &format!("{}:1", sandbox.oci("pulled"))],
    )
    .into_bytes();
    assert_eq!(
        digest_of(&local),
        digest_of(&remote),
        "the layout's index bytes are the registry's"
    );
    assert_eq!(digest_of(&remote), digest);

    let layout = Layout::open(sandbox.path("pulled"));
    assert_eq!(
        layout.ref_names(),
        ["1"],
        "the source's tag names the entry"
    );
    assert_eq!(layout.entry("1")["mediaType"], OCI_INDEX);
    let blobs = assert_complete(&layout, &digest);
    // The index, 2 manifests and the 7 distinct blobs; nothing else.
    assert_eq!(blobs.len() as u64, 3 + EXAMPLE_BLOBS, "{blobs:#?}");
    let on_disk: BTreeSet<_> = files_under(&layout.root.join("blobs/sha256"))
        .into_iter()
        .map(|p| format!("sha256:{}", p.display()))
        .collect();
    assert_eq!(on_disk, blobs, "the layout holds exactly the image's blobs");
}

#[test]
fn pull_one_platform() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    let source_index = parse_json(
        std::str::from_utf8(&registry.manifest("acme/app", &digest)).expect("UTF-8 index"),
    );
    let entry_of = |arch: &str| {
        source_index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .map_or_else(
                || panic!("no {arch} entry in {source_index:#}"),
                |m| str_at(m, "/digest").to_owned(),
            )
    };
    let arm64_manifest = entry_of("arm64");
    let blobs_of = |manifest_digest: &str| -> BTreeSet<String> {
        let manifest = parse_json(
            std::str::from_utf8(&registry.manifest("acme/app", manifest_digest)).unwrap(),
        );
        let layers = manifest["layers"].as_array().unwrap();
        std::iter::once(&manifest["config"])
            .chain(layers)
            .map(|d| str_at(d, "/digest").to_owned())
            .collect()
    };
    let arm64_blobs = blobs_of(&arm64_manifest);
    let amd64_only: BTreeSet<String> = blobs_of(&entry_of("amd64"))
        .difference(&arm64_blobs)
        .cloned()
        .collect();
    assert!(amd64_only.contains(BASE_AMD64_LAYER), "{amd64_only:#?}");
    let before = registry.requests().len();
    let out = stdout(&ok(
        &mut pull(
            &sandbox,
            &registry.reference("acme/app:1"),
            &sandbox.oci("arm"),
            &["--platform", "linux/arm64"],
        ),
        &registry,
    ));
    let printed = last_line(&out).to_owned();
    assert_digest(&printed);
    assert_ne!(printed, digest, "a subset gets a new index");

    let layout = Layout::open(sandbox.path("arm"));
    let entry = layout.entry("1");
    assert_eq!(str_at(&entry, "/digest"), printed);
    let index = layout.json(&printed);
    let manifests = index["manifests"].as_array().expect("index manifests");
    assert_eq!(manifests.len(), 1, "{index:#}");
    assert_eq!(manifests[0]["platform"]["architecture"], "arm64");
    assert_eq!(
        str_at(&manifests[0], "/digest"),
        arm64_manifest,
        "the platform manifest is the registry's, unchanged"
    );
    assert_complete(&layout, &printed);

    // Only the arm64 image's blobs were downloaded (the amd64 base layer above all).
    let new = &registry.requests()[before..];
    let gets: BTreeSet<String> = blob_gets(new).into_iter().collect();
    assert!(
        !gets.contains(BASE_AMD64_LAYER),
        "the amd64 base layer was downloaded: {new:#?}"
    );
    assert!(
        gets.is_disjoint(&amd64_only),
        "amd64-only blobs were downloaded: {new:#?}"
    );
    assert_eq!(gets, arm64_blobs, "the arm64 blobs, each once: {new:#?}");
    assert_eq!(
        blob_gets(new).len(),
        gets.len(),
        "a blob was downloaded twice: {new:#?}"
    );
    assert!(
        !new.iter().any(|r| r.path.ends_with(&entry_of("amd64"))),
        "the amd64 manifest was fetched: {new:#?}"
    );

    // skopeo and umoci read the pulled layout.
    let rootfs = unpack_arm64(&sandbox, &format!("{}:1", sandbox.oci("arm")), "arm");
    assert_example_rootfs(&rootfs);
}

#[test]
fn pull_output_tag_names_the_entry() {
    // `oci:DIR:TAG` names the entry TAG (the source's tag is only the fallback), as
    // skopeo copy does.
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    ok(
        &mut pull(
            &sandbox,
            &registry.reference("acme/app:1"),
            &format!("{}:mirror", sandbox.oci("out")),
            &[],
        ),
        &registry,
    );
    let layout = Layout::open(sandbox.path("out"));
    assert_eq!(str_at(&layout.entry("mirror"), "/digest"), digest);
    assert_eq!(
        layout.ref_names(),
        ["mirror"],
        "pull REF:1 --output oci:DIR:mirror: {:#}",
        layout.index_json()
    );
}

#[test]
fn pull_unknown_tag_names_it() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    push_example(&sandbox, &registry, "acme/app:1", &[]);
    let missing = registry.reference("acme/app:nope");
    let err = fails(
        &mut pull(&sandbox, &missing, &sandbox.oci("out"), &[]),
        HOIST_LIMIT,
    );
    assert!(
        err.contains(&missing),
        "the error should name {missing}:\n{err}"
    );
    assert!(
        !sandbox.path("out").join("index.json").exists(),
        "no layout is written"
    );
}

#[test]
fn pull_refuses_a_docker_archive() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    push_example(&sandbox, &registry, "acme/app:1", &[]);
    let before = registry.requests().len();
    let archive = sandbox.path("x.tar");
    let err = fails(
        &mut pull(
            &sandbox,
            &registry.reference("acme/app:1"),
            &format!("docker-archive:{}", archive.display()),
            &[],
        ),
        HOIST_LIMIT,
    );
    assert!(
        err.contains("docker-archive:") && err.contains("oci:"),
        "the error should refuse docker-archive: and name what pull writes:\n{err}"
    );
    assert!(!archive.exists(), "no archive is written");
    let new = &registry.requests()[before..];
    assert!(
        new.iter().all(|r| r.route() == "/v2/"),
        "nothing is fetched: {new:#?}"
    );
}

#[test]
fn pull_refuses_a_non_layout_directory_before_downloading() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    push_example(&sandbox, &registry, "acme/app:1", &[]);
    let dir = sandbox.path("notes");
    sandbox.write("notes/todo.txt", "keep me\n");
    let before = registry.requests().len();
    let err = fails(
        &mut pull(
            &sandbox,
            &registry.reference("acme/app:1"),
            &sandbox.oci("notes"),
            &[],
        ),
        HOIST_LIMIT,
    );
    assert!(
        err.contains(dir.to_str().unwrap()),
        "the error should name {}:\n{err}",
        dir.display()
    );
    assert_eq!(
        files_under(&dir),
        [PathBuf::from("todo.txt")],
        "the directory is left alone"
    );
    assert_eq!(
        fs::read_to_string(dir.join("todo.txt")).unwrap(),
        "keep me\n"
    );
    let new = &registry.requests()[before..];
    assert!(
        !new.iter()
            .any(|r| r.blob_get().is_some() || r.route().contains("/manifests/")),
        "refused only after contacting the registry: {new:#?}"
    );
}

// ---------------------------------------------------------------------------------
// hoist tag
// ---------------------------------------------------------------------------------

#[test]
fn tag_within_a_repository_puts_one_manifest() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    let before = registry.requests().len();
    let out = stdout(&ok(
        &mut tag(
            &sandbox,
            &registry.reference("acme/app:1"),
            &registry.reference("acme/app:stable"),
            &[],
        ),
        &registry,
    ));
    let line = last_line(&out);
    assert!(
        line.ends_with(&format!("@{digest}")),
        "expected …@{digest} as the last line, got {line:?}"
    );
    assert_eq!(
        line,
        format!("{}@{digest}", registry.reference("acme/app:stable"))
    );
    assert_eq!(
        skopeo_raw(&registry, "acme/app:stable"),
        skopeo_raw(&registry, "acme/app:1"),
        ":stable serves :1's bytes"
    );

    let new = &registry.requests()[before..];
    assert!(
        !new.iter().any(Request::is_upload_traffic),
        "a retag in one repository uploads or mounts nothing: {new:#?}"
    );
    let others: Vec<_> = new
        .iter()
        .filter(|r| r.route() != "/v2/")
        .filter(|r| !(r.route().contains("/manifests/") && r.method != "DELETE"))
        .collect();
    assert!(others.is_empty(), "only manifest requests: {others:#?}");
    let puts: Vec<_> = new.iter().filter_map(Request::manifest_put).collect();
    assert_eq!(puts, ["stable"], "{new:#?}");
}

#[test]
fn tag_into_another_repository_mounts_every_blob() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    let before = registry.requests().len();
    let report = parse_json(&stdout(&ok(
        &mut tag(
            &sandbox,
            &registry.reference("acme/app:1"),
            &registry.reference("prod/app:1.0"),
            &["--json"],
        ),
        &registry,
    )));
    assert_eq!(str_at(&report, "/digest"), digest, "{report:#}");
    assert_eq!(
        str_at(&report, "/reference"),
        registry.reference("prod/app:1.0"),
        "{report:#}"
    );
    assert_eq!(count(&report, "blobs_mounted"), EXAMPLE_BLOBS, "{report:#}");

    let new = &registry.requests()[before..];
    assert!(uploads(new).is_empty(), "nothing is uploaded: {new:#?}");
    assert!(
        !new.iter()
            .any(|r| r.is_upload_traffic() && r.query("mount").is_none()),
        "no upload is even started: {new:#?}"
    );
    let mounted = mounts(new);
    let distinct: BTreeSet<_> = mounted.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(distinct.len() as u64, EXAMPLE_BLOBS, "{mounted:#?}");
    assert_eq!(mounted.len(), distinct.len(), "each blob mounted once");
    assert!(
        mounted.iter().all(|(_, from)| from == "acme/app"),
        "{mounted:#?}"
    );
    assert!(
        distinct.contains(BASE_AMD64_LAYER) && distinct.contains(BASE_ARM64_LAYER),
        "{mounted:#?}"
    );
    assert!(
        new.iter().all(|r| r.blob_get().is_none()),
        "no blob is downloaded: {new:#?}"
    );

    // The destination serves the same bytes and a complete image.
    assert_eq!(
        skopeo_raw(&registry, "prod/app:1.0"),
        skopeo_raw(&registry, "acme/app:1")
    );
    let rootfs = unpack_arm64(&sandbox, &registry.docker("prod/app:1.0"), "prod");
    assert_example_rootfs(&rootfs);
}

#[test]
fn tag_rolls_back_to_an_older_digest() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let old = push_example(
        &sandbox,
        &registry,
        "acme/app:1",
        &["--tag", "latest", "--label", "release=1"],
    );
    let new = push_example(
        &sandbox,
        &registry,
        "acme/app:2",
        &["--tag", "latest", "--label", "release=2"],
    );
    assert_ne!(old, new);
    assert_eq!(digest_of(&registry.manifest("acme/app", "latest")), new);

    let out = stdout(&ok(
        &mut tag(
            &sandbox,
            &registry.reference(&format!("acme/app@{old}")),
            &registry.reference("acme/app:latest"),
            &[],
        ),
        &registry,
    ));
    assert_eq!(
        last_line(&out),
        format!("{}@{old}", registry.reference("acme/app:latest"))
    );
    assert_eq!(
        digest_of(&skopeo_raw(&registry, "acme/app:latest")),
        old,
        ":latest is back at the old image"
    );
    assert_eq!(
        digest_of(&registry.manifest("acme/app", "2")),
        new,
        ":2 is untouched"
    );
}

#[test]
fn tag_across_registries_is_refused() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let other = Registry::start();
    let digest = push_example(&sandbox, &registry, "acme/app:1", &[]);
    let source = registry.reference("acme/app:1");
    let dest = other.reference("acme/app:1");
    let err = fails(&mut tag(&sandbox, &source, &dest, &[]), HOIST_LIMIT);
    for needle in [source.as_str(), dest.as_str(), "pull", "push"] {
        assert!(
            err.contains(needle),
            "the error should name {needle}:\n{err}"
        );
    }
    let on_other = other.requests();
    assert!(
        on_other
            .iter()
            .all(|r| r.method == "GET" && r.route() == "/v2/"),
        "nothing reaches the other registry: {on_other:#?}"
    );
    assert_eq!(digest_of(&registry.manifest("acme/app", "1")), digest);
}

#[test]
fn offline_builds_from_the_cache_alone_and_names_what_is_missing() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let offline_build = |output: &str| {
        let mut command = sandbox.build();
        command
            // Dated as build_on dates it.
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("--config")
            .arg(example_config())
            .arg("--base")
            .arg(&base)
            .arg("--offline")
            .arg("--output")
            .arg(sandbox.oci(output));
        command
    };

    // Never resolved on this machine: refused before any request, naming the base.
    let before = registry.requests().len();
    let err = fails(&mut offline_build("never"), HOIST_LIMIT);
    assert!(
        err.contains("offline") && err.contains(&base),
        "the error names the base: {err}"
    );
    assert_eq!(registry.requests().len(), before, "--offline made requests");

    // Once online, then offline: the same digest, and the registry hears nothing.
    let online = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("online")],
    );
    let seen = registry.requests().len();
    let offline = stdout(&ok(&mut offline_build("offline"), &registry));
    assert_eq!(last_line(&offline), last_line(&online));
    assert_eq!(registry.requests().len(), seen, "--offline made requests");

    // A base layer gone from the cache is named, not fetched.
    let hex = BASE_AMD64_LAYER.trim_start_matches("sha256:");
    fs::remove_file(sandbox.cache().join("blobs/sha256").join(hex)).unwrap();
    let err = fails(&mut offline_build("missing"), HOIST_LIMIT);
    assert!(
        err.contains(BASE_AMD64_LAYER) && err.contains("not in the cache"),
        "the error names the missing blob: {err}"
    );
    assert_eq!(registry.requests().len(), seen, "--offline made requests");
}

#[test]
fn registry_base_corrupt_in_the_cache_is_fetched_again() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let base = seed_base(&registry);
    let first = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("one")],
    );
    let cached = sandbox
        .cache()
        .join("blobs/sha256")
        .join(&BASE_AMD64_LAYER["sha256:".len()..]);
    crate::integrity::flip_a_byte(&cached);

    let before = registry.requests().len();
    let second = build_on(
        &sandbox,
        &registry,
        &base,
        &["--output", &sandbox.oci("two")],
    );
    assert_eq!(last_line(&second), last_line(&first), "same image");
    let new = registry.requests();
    assert_eq!(
        blob_gets(&new[before..]),
        [BASE_AMD64_LAYER],
        "only the corrupt base layer is fetched again"
    );
    assert_eq!(
        digest_of(&std::fs::read(&cached).unwrap()),
        BASE_AMD64_LAYER,
        "the cache holds the right bytes again"
    );
    let written = sandbox
        .path("two/blobs/sha256")
        .join(&BASE_AMD64_LAYER["sha256:".len()..]);
    assert_eq!(
        digest_of(&std::fs::read(written).unwrap()),
        BASE_AMD64_LAYER
    );
}
