//! SBOMs and size budgets, end to end through the binary. Judges: the SPDX project's
//! own validator (`pyspdxtools`, PyPI `spdx-tools`, installed by `.ci/run` into
//! `target/venv`), our reading of the documents (package names and versions against
//! the fixtures, wheel hashes against the example's lock and wheels), the real registry (the referrers fallback tag read back over HTTP)
//! and its access log (an over-budget build uploads nothing).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::Value;

use crate::common::{Layout, Sandbox, copy_tree, example_dir, parse_json, repo, stdout, success};
use crate::registry::{HOIST_LIMIT, Registry, fails, ok, run};

const SPDX: &str = "application/spdx+json";

/// `target/venv/bin/pyspdxtools` (made by `.ci/run`).
fn pyspdxtools() -> PathBuf {
    let path = repo().join("target/venv/bin/pyspdxtools");
    assert!(
        path.is_file(),
        "{} is missing: run .ci/run (it installs spdx-tools into target/venv)",
        path.display()
    );
    path
}

/// Asserts the SPDX tools accept the document.
pub fn assert_valid_spdx(sandbox: &Sandbox, document: &[u8], name: &str) {
    let file = sandbox.path(name);
    fs::write(&file, document).unwrap();
    let output = StdCommand::new(pyspdxtools())
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pyspdxtools rejects {name}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The example on `testdata/base-dpkg` (amd64 only), with `extra` lines in [image].
fn dpkg_example(sandbox: &Sandbox, extra: &str) -> PathBuf {
    let tree = sandbox.path("tree");
    if !tree.exists() {
        copy_tree(&example_dir(), &tree);
    }
    let toml = fs::read_to_string(example_dir().join("hoist.toml")).unwrap();
    let base = repo().join("testdata/base-dpkg");
    let toml = toml
        .replace(
            "base = \"oci:../../testdata/base:1.0\"     # paths relative to this file",
            &format!("base = \"oci:{}:1.0\"\n{extra}", base.display()),
        )
        .replace(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]",
            "platforms = [\"linux/amd64\"]",
        );
    let path = tree.join("hoist.toml");
    fs::write(&path, toml).unwrap();
    path
}

/// The SPDX documents a layout lists, by the digest of the manifest they are about.
fn layout_sboms(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let layout = Layout::open(dir);
    let index = layout.index_json();
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        if entry["artifactType"] != SPDX {
            continue;
        }
        assert!(
            entry["annotations"]
                .get("org.opencontainers.image.ref.name")
                .is_none()
        );
        let manifest = layout.json(entry["digest"].as_str().unwrap());
        assert_eq!(manifest["artifactType"], SPDX);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(
            layout.blob(manifest["config"]["digest"].as_str().unwrap()),
            b"{}"
        );
        let document = layout.blob(manifest["layers"][0]["digest"].as_str().unwrap());
        out.push((
            manifest["subject"]["digest"].as_str().unwrap().to_string(),
            document,
        ));
    }
    out
}

/// `(name, version, purl)` of every package but the image itself.
fn packages(document: &[u8]) -> Vec<(String, String, String)> {
    let value: Value = serde_json::from_slice(document).unwrap();
    value["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let purl = p["externalRefs"]
                .as_array()
                .and_then(|r| r.first())
                .map(|r| r["referenceLocator"].as_str().unwrap().to_string())
                .unwrap_or_default();
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap_or_default().to_string(),
                purl,
            )
        })
        .collect()
}

/// The `algorithm` checksum of the file `name` an SPDX document lists.
fn file_checksum(document: &Value, name: &str, algorithm: &str) -> String {
    let file = document["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == name)
        .unwrap_or_else(|| panic!("{name} listed"));
    file["checksums"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["algorithm"] == algorithm)
        .unwrap()["checksumValue"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The example's Python packages, installed from `backend/requirements.lock`, are
/// listed once each (nothing else is a PyPI package) with their purl, the wheel's
/// file name and the sha256 of the wheel in `backend/wheels/`, which the lock names;
/// no download location: the wheels came from the wheelhouse.
fn assert_locked_packages(document: &Value) {
    let lock = fs::read_to_string(example_dir().join("backend/requirements.lock")).unwrap();
    let pypi: Vec<&Value> = document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|r| r.starts_with("pkg:pypi/"))
        })
        .collect();
    let expected = [
        (
            "six",
            "1.17.0",
            "pkg:pypi/six@1.17.0",
            "six-1.17.0-py2.py3-none-any.whl",
        ),
        (
            "typing_extensions",
            "4.12.2",
            "pkg:pypi/typing-extensions@4.12.2",
            "typing_extensions-4.12.2-py3-none-any.whl",
        ),
    ];
    assert_eq!(pypi.len(), expected.len(), "{pypi:#?}");
    for (name, version, purl, wheel) in expected {
        let package = pypi
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {pypi:#?}"));
        assert_eq!(package["versionInfo"], version, "{package}");
        assert_eq!(package["externalRefs"][0]["referenceLocator"], purl);
        assert_eq!(package["packageFileName"], wheel, "{package}");
        let sha256 = crate::common::sha256_hex(
            &fs::read(example_dir().join("backend/wheels").join(wheel)).unwrap(),
        );
        assert!(lock.contains(&format!("--hash=sha256:{sha256}")), "{wheel}");
        assert_eq!(
            package["checksums"],
            serde_json::json!([{"algorithm": "SHA256", "checksumValue": sha256}])
        );
        assert_eq!(package["downloadLocation"], "NOASSERTION", "{package}");
    }
}

#[test]
fn the_example_gets_a_valid_deterministic_sbom_per_platform() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let sboms = layout_sboms(&sandbox.path("out"));
    let layout = Layout::open(sandbox.path("out"));
    let platforms = layout.platforms("latest");
    assert_eq!(sboms.len(), 2, "one SBOM per platform");
    for platform in &platforms {
        let digest = platform.descriptor["digest"].as_str().unwrap().to_string();
        let (_, document) = sboms
            .iter()
            .find(|(subject, _)| *subject == digest)
            .unwrap_or_else(|| panic!("no SBOM about {digest}"));
        assert_valid_spdx(
            &sandbox,
            document,
            &format!("{}.spdx.json", platform.architecture()),
        );
        let value: Value = serde_json::from_slice(document).unwrap();
        assert_eq!(value["spdxVersion"], "SPDX-2.3");
        assert_eq!(value["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        assert_locked_packages(&value);
        let image = &value["packages"][0];
        assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(image["versionInfo"], digest.as_str());
        let purl = image["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap();
        assert!(
            purl.starts_with(&format!(
                "pkg:oci/dashboard@sha256%3A{}?arch={}",
                &digest[7..],
                platform.architecture()
            )),
            "{purl}"
        );
    }

    // A second build in another sandbox (other paths, other cache): the same bytes.
    let other = Sandbox::new();
    other.build_example(&other.oci("out"), &[]);
    assert_eq!(layout_sboms(&other.path("out")), sboms);
    // The layer scans are cached; a rebuild from them gives the same bytes too.
    let scans = std::fs::read_dir(sandbox.cache().join("sbom-scans"))
        .expect("cached layer scans")
        .count();
    assert!(scans > 0);
    sandbox.build_example(&sandbox.oci("again"), &[]);
    assert_eq!(layout_sboms(&sandbox.path("again")), sboms);

    // `hoist sbom` prints the attached document; CycloneDX lists the same packages.
    let mut command = sandbox.hoist();
    command.args(["sbom", &sandbox.oci("out"), "--platform", "linux/amd64"]);
    let printed = stdout(&success(&mut command));
    let amd64 = platforms
        .iter()
        .find(|p| p.architecture() == "amd64")
        .unwrap();
    let attached = &sboms
        .iter()
        .find(|(s, _)| *s == amd64.descriptor["digest"].as_str().unwrap())
        .unwrap()
        .1;
    assert_eq!(printed.trim_end().as_bytes(), attached.as_slice());
    let mut command = sandbox.hoist();
    command.args([
        "sbom",
        &sandbox.oci("out"),
        "--platform",
        "linux/amd64",
        "--format",
        "cyclonedx",
    ]);
    let cyclonedx = parse_json(&stdout(&success(&mut command)));
    assert_eq!(cyclonedx["specVersion"], "1.6");
    assert!(
        cyclonedx["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purl"] == "pkg:pypi/six@1.17.0")
    );
    // Several platforms and no --platform: refused, naming them.
    let mut command = sandbox.hoist();
    command.args(["sbom", &sandbox.oci("out")]);
    let err = crate::common::failure(&mut command);
    assert!(err.contains("--platform"), "{err}");

    // --no-sbom: nothing attached; `hoist sbom` says so.
    let bare = Sandbox::new();
    bare.build_example(&bare.oci("out"), &["--no-sbom"]);
    assert!(layout_sboms(&bare.path("out")).is_empty());
    let mut command = bare.hoist();
    command.args(["sbom", &bare.oci("out"), "--platform", "linux/amd64"]);
    let err = crate::common::failure(&mut command);
    assert!(err.contains("no SBOM is attached"), "{err}");
}

#[test]
fn a_dpkg_base_has_its_packages_listed_and_files_are_hashed() {
    let sandbox = Sandbox::new();
    let config = dpkg_example(&sandbox, "sbom_files = true");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(sandbox.oci("out"));
    success(&mut command);
    let sboms = layout_sboms(&sandbox.path("out"));
    let [(_, document)] = sboms.as_slice() else {
        panic!("one platform, one SBOM: {}", sboms.len());
    };
    assert_valid_spdx(&sandbox, document, "dpkg.spdx.json");
    let listed = packages(document);
    for (name, version, purl) in [
        (
            "base-files",
            "12.4+deb12u5",
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
        ),
        (
            "busybox-static",
            "1:1.35.0-4+deb12u1+b1",
            "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64&distro=debian-12",
        ),
        (
            "libc6",
            "2.36-9+deb12u7",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12",
        ),
        (
            "tzdata",
            "2024a-0+deb12u1",
            "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
        ),
        ("six", "1.17.0", "pkg:pypi/six@1.17.0"),
    ] {
        assert!(
            listed
                .iter()
                .any(|p| p.0 == name && p.1 == version && p.2 == purl),
            "{name} missing from {listed:?}"
        );
    }
    assert!(
        !listed.iter().any(|p| p.0 == "nano"),
        "a removed package is not listed"
    );
    assert!(
        listed.iter().any(|p| p.0 == "debian" && p.1 == "12"),
        "{listed:?}"
    );
    // Every file of the new layers, with the SHA-256 of its bytes on disk.
    let value: Value = serde_json::from_slice(document).unwrap();
    let files = value["files"].as_array().unwrap();
    let sha256 = file_checksum(&value, "./app/main.py", "SHA256");
    assert_eq!(
        sha256,
        crate::common::sha256_hex(&fs::read(example_dir().join("backend/main.py")).unwrap())
    );
    assert!(
        files
            .iter()
            .any(|f| f["fileName"] == "./usr/share/nginx/html/index.html")
    );
    // No base file is listed as a file of the image.
    assert!(!files.iter().any(|f| f["fileName"] == "./bin/busybox"));
}

/// `HOST/REPO` tags and the referrers fallback index of `subject`.
fn fallback_index(registry: &Registry, repo: &str, subject: &str) -> Value {
    let tag = format!("sha256-{}", &subject[7..]);
    serde_json::from_slice(&registry.manifest(repo, &tag)).unwrap()
}

#[test]
fn pushed_sboms_are_found_through_the_referrers_fallback_tag() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let config = dpkg_example(&sandbox, "");
    let target = registry.reference("acme/dashboard");
    let push = |config: &Path| {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(config)
            .arg("--push-to")
            .arg(&target)
            .arg("--json");
        parse_json(&stdout(&ok(&mut command, &registry)))
    };
    let report = push(&config);
    let subject = report["platforms"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let index = fallback_index(&registry, "acme/dashboard", &subject);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(entries[0]["artifactType"], SPDX);
    // The registry serves the artifact manifest, whose subject is the platform manifest.
    let artifact: Value = serde_json::from_slice(
        &registry.manifest("acme/dashboard", entries[0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(artifact["subject"]["digest"], subject.as_str());

    // `hoist sbom` of the registry image finds it through the fallback tag.
    let mut command = sandbox.hoist();
    command.args(["sbom", &format!("{target}:latest")]);
    let printed = stdout(&ok(&mut command, &registry));
    assert_valid_spdx(&sandbox, printed.trim_end().as_bytes(), "pushed.spdx.json");
    assert!(packages(printed.as_bytes()).iter().any(|p| p.0 == "libc6"));
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.route().contains("/referrers/") && r.status == 404),
        "the referrers API was asked first"
    );

    // hoist verify compares the attached SBOM with the rebuild's (same inputs, same
    // bytes); a config whose SBOM would differ (it lists files) is not verified.
    let verify = |config: &Path| {
        let mut command = sandbox.hoist();
        command
            .args(["verify", &format!("{target}:latest"), "--config"])
            .arg(config)
            .arg("--cache-dir")
            .arg(sandbox.cache());
        run(&mut command, HOIST_LIMIT)
    };
    let output = verify(&config);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let with_files = dpkg_example(&sandbox, "sbom_files = true");
    let output = verify(&with_files);
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the SBOM attached to") && said.contains(&subject),
        "{said}"
    );

    // Another SBOM of the same image (with files): the first stays in the index.
    let again = push(&with_files);
    assert_eq!(
        again["platforms"][0]["digest"],
        subject.as_str(),
        "same image"
    );
    let index = fallback_index(&registry, "acme/dashboard", &subject);
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{index}");
    assert_eq!(listed[0], entries[0]["digest"].as_str().unwrap());
    // The same one a third time: no duplicate, and the tag is not PUT again.
    let tag = format!("sha256-{}", &subject[7..]);
    let puts_before = tag_puts(&registry, &tag);
    push(&with_files);
    let index = fallback_index(&registry, "acme/dashboard", &subject);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(tag_puts(&registry, &tag), puts_before);
}

fn tag_puts(registry: &Registry, tag: &str) -> usize {
    registry
        .requests()
        .iter()
        .filter(|r| r.manifest_put() == Some(tag))
        .count()
}

/// The dashboard example copied into the sandbox's `tree/`, its base the committed
/// layout; answers the directory and its hoist.toml's text.
fn example_tree(sandbox: &Sandbox) -> (std::path::PathBuf, String) {
    let tree = sandbox.path("tree");
    copy_tree(&example_dir(), &tree);
    let toml = fs::read_to_string(tree.join("hoist.toml")).unwrap();
    let base = repo().join("testdata/base");
    let toml = toml.replace(
        "base = \"oci:../../testdata/base:1.0\"",
        &format!("base = \"oci:{}:1.0\"", base.display()),
    );
    (tree, toml)
}

#[test]
fn an_over_budget_build_uploads_nothing_and_names_the_breach() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let (tree, toml) = example_tree(&sandbox);
    fs::write(
        tree.join("hoist.toml"),
        format!("{toml}\n[budget]\nmax_size = \"1MB\"\n"),
    )
    .unwrap();
    // A push by digest (a split build's one-platform push) has the same budget.
    for by_digest in [&[][..], &["--platform", "linux/amd64", "--by-digest"]] {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(tree.join("hoist.toml"))
            .args(by_digest)
            .arg("--push-to")
            .arg(registry.reference("acme/dashboard"));
        let before = registry.requests().len();
        let err = fails(&mut command, HOIST_LIMIT);
        assert!(err.contains("over budget"), "{by_digest:?}: {err}");
        assert!(err.contains("platform linux/"), "{err}");
        assert!(err.contains("budget.max_size"), "{err}");
        assert!(err.contains("1000000 bytes"), "{err}");
        assert!(err.contains("largest new layers: "), "{err}");
        // Only reads: the preflight and the registry as layer cache read the target's
        // tags first; nothing is uploaded.
        let new_requests = &registry.requests()[before..];
        assert!(
            new_requests
                .iter()
                .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
            "{by_digest:?}: an over-budget build only reads: {new_requests:?}"
        );
    }

    // Within budget (and an unpacked limit): built, and --json carries every size.
    fs::write(
        tree.join("hoist.toml"),
        format!("{toml}\n[budget]\nmax_size = \"10MB\"\nmax_unpacked = \"20MiB\"\n"),
    )
    .unwrap();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out"))
        .arg("--json");
    let report = parse_json(&stdout(&run(&mut command, HOIST_LIMIT)));
    let sizes = report["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    for platform in sizes {
        let layers = platform["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 4);
        let compressed: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
        assert!(
            platform["size"].as_u64().unwrap() > compressed,
            "config counted"
        );
        let unpacked: u64 = layers.iter().map(|l| l["unpacked"].as_u64().unwrap()).sum();
        assert_eq!(platform["unpacked"].as_u64().unwrap(), unpacked);
        assert!(unpacked > compressed);
    }
    // An unpacked limit breached names it.
    fs::write(
        tree.join("hoist.toml"),
        format!("{toml}\n[budget]\nmax_unpacked = \"1MiB\"\n"),
    )
    .unwrap();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out2"));
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(err.contains("budget.max_unpacked"), "{err}");
    assert!(!sandbox.path("out2").exists(), "nothing written");
}

/// A new layer's SBOM facts are gathered while the layer is written; the SBOM is the
/// same byte for byte as the one read back from the stored layer (a layer-cache hit
/// whose scan is not cached is read that way) and as a `--no-cache` build's: for a
/// tree with `dist-info`, `egg-info`, `node_modules` and a whiteout, files listed.
#[test]
fn the_sbom_gathered_while_building_equals_the_one_read_from_the_layer() {
    let sandbox = Sandbox::new();
    let config = dpkg_example(&sandbox, "sbom_files = true");
    let site = sandbox.path("tree/site");
    for (path, text) in [
        (
            "lib/demo-2.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo\nVersion: 2.1\nLicense: MIT\n",
        ),
        (
            "lib/old-0.9.egg-info/PKG-INFO",
            "Metadata-Version: 1.1\nName: old\nVersion: 0.9\n",
        ),
        (
            "js/node_modules/left-pad/package.json",
            r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
        ),
        (
            "js/node_modules/@scope/pkg/package.json",
            r#"{"name":"@scope/pkg","version":"0.1.0"}"#,
        ),
        ("js/index.js", "console.log(1)\n"),
    ] {
        fs::create_dir_all(site.join(path).parent().unwrap()).unwrap();
        fs::write(site.join(path), text).unwrap();
    }
    let mut toml = fs::read_to_string(&config).unwrap();
    toml.push_str("\n[[layer]]\nfrom = \"site\"\nto = \"/srv\"\nremove = [\"/etc/motd\"]\n");
    fs::write(&config, toml).unwrap();
    let cache = sandbox.path("stream-cache");
    let build = |out: &str, extra: &[&str]| {
        let mut command = sandbox.hoist();
        command
            .arg("build")
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--config")
            .arg(&config)
            .arg("--output")
            .arg(sandbox.oci(out))
            .args(extra);
        success(&mut command);
        let sboms = layout_sboms(&sandbox.path(out));
        let [(_, document)] = sboms.as_slice() else {
            panic!("one platform, one SBOM: {}", sboms.len());
        };
        document.clone()
    };
    let streamed = build("streamed", &[]);
    let scans = cache.join("sbom-scans");
    assert!(
        fs::read_dir(&scans).unwrap().count() > 0,
        "the gathered scans are cached"
    );
    // The layers are cache hits now (nothing written, nothing gathered): without
    // their cached scans, the SBOM reads every layer back.
    fs::remove_dir_all(&scans).unwrap();
    let read_back = build("read", &[]);
    assert_eq!(
        String::from_utf8_lossy(&streamed),
        String::from_utf8_lossy(&read_back)
    );
    assert_eq!(streamed, build("uncached", &["--no-cache"]));
    assert_valid_spdx(&sandbox, &streamed, "streamed.spdx.json");
    let listed = packages(&streamed);
    for (name, version) in [
        ("demo", "2.1"),
        ("old", "0.9"),
        ("left-pad", "1.3.0"),
        ("@scope/pkg", "0.1.0"),
        ("six", "1.17.0"),
    ] {
        assert!(
            listed.iter().any(|p| p.0 == name && p.1 == version),
            "{name} missing from {listed:?}"
        );
    }
    let value: Value = serde_json::from_slice(&streamed).unwrap();
    let sha1 = file_checksum(&value, "./srv/js/index.js", "SHA1");
    let expected = <sha1::Sha1 as sha2::Digest>::digest(b"console.log(1)\n");
    assert_eq!(sha1, crate::common::hex(&expected));
}
