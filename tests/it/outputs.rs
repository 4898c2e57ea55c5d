//! Output kinds: `oci-archive:`, `docker-archive:`, and `oci:` layouts that already
//! hold other images; tags.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;

use crate::common::umoci_unpack;
use crate::common::{
    Layout, Sandbox, example_config, failure, last_line, parse_json, stdout, str_at, success, tool,
};

/// The members of a tar file on disk, by name.
fn archive_members(path: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name.trim_start_matches("./").to_owned(), data)
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

#[test]
fn oci_archive_is_read_by_skopeo_and_hoist_inspect() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("img.tar");
    fs::write(&archive, "an older file, replaced whole\n").unwrap();
    let out = sandbox.build_example(&format!("oci-archive:{}", archive.display()), &[]);
    let digest = last_line(&out);

    let members = archive_members(&archive);
    let index = parse_json(std::str::from_utf8(&members["index.json"]).unwrap());
    assert_eq!(index["manifests"][0]["digest"], digest);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert!(members.contains_key("oci-layout"));
    assert!(members.contains_key(&format!("blobs/sha256/{}", &digest[7..])));

    let inspected = tool(
        "skopeo",
        &[
            "inspect",
            "--override-arch",
            "arm64",
            &format!("oci-archive:{}:latest", archive.display()),
        ],
    );
    let inspected = parse_json(&inspected);
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);
    assert!(
        inspected["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "PORT=8080")
    );

    let mut command = sandbox.hoist();
    command
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display()));
    let text = stdout(&success(&mut command));
    assert!(text.contains(digest), "inspect shows the digest:\n{text}");
    assert!(text.contains("linux/amd64") && text.contains("linux/arm64"));
}

#[test]
fn docker_archive_for_one_platform() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("d.tar");
    sandbox.build_example(
        &format!("docker-archive:{}:acme/dash:1", archive.display()),
        &["--platform", "linux/arm64"],
    );

    let inspected = tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", archive.display())],
    );
    let inspected = parse_json(&inspected);
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);

    let members = archive_members(&archive);
    let manifest = parse_json(std::str::from_utf8(&members["manifest.json"]).unwrap());
    let images = manifest.as_array().expect("manifest.json is a list");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["RepoTags"], serde_json::json!(["acme/dash:1"]));
    let config_name = str_at(&images[0], "/Config");
    let config = parse_json(std::str::from_utf8(&members[config_name]).unwrap());
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    for layer in images[0]["Layers"].as_array().unwrap() {
        assert!(
            members.contains_key(layer.as_str().unwrap()),
            "{layer} listed but not in the archive"
        );
    }

    // What `docker load` would get: copy it out and unpack it.
    let copy = sandbox.path("from-archive");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let bundle = sandbox.path("bundle");
    umoci_unpack(&copy, "1", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).unwrap(),
        fs::read(crate::common::example_dir().join("backend/main.py")).unwrap()
    );
    assert!(!rootfs.join("etc/nginx/conf.d/default.conf").exists());
    assert!(rootfs.join("bin/busybox").is_file());
}

#[test]
fn docker_archive_with_two_platforms_needs_platform() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("d.tar");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--output")
        .arg(format!("docker-archive:{}:acme/dash:1", archive.display()));
    let err = failure(&mut command);
    assert!(err.contains("--platform"), "stderr:\n{err}");
    assert!(!archive.exists(), "nothing left at {}", archive.display());
}

fn build_tagged(sandbox: &Sandbox, output: &str, extra: &[&str]) -> String {
    last_line(&sandbox.build_example(output, extra)).to_owned()
}

#[test]
fn layout_keeps_other_images_and_replaces_same_tag() {
    let sandbox = Sandbox::new();
    let a1 = build_tagged(&sandbox, &sandbox.oci("out:a"), &["--label", "which=a1"]);
    let b = build_tagged(&sandbox, &sandbox.oci("out:b"), &["--label", "which=b"]);
    assert_ne!(a1, b);
    let layout = Layout::open(sandbox.path("out"));
    assert_eq!(layout.ref_names(), ["a", "b"]);
    assert_eq!(layout.entry("a")["digest"], a1.as_str());
    assert_eq!(layout.entry("b")["digest"], b.as_str());
    // Both images are complete.
    assert_eq!(layout.platforms("a").len(), 2);
    assert_eq!(layout.platforms("b").len(), 2);

    let a2 = build_tagged(&sandbox, &sandbox.oci("out:a"), &["--label", "which=a2"]);
    assert_ne!(a1, a2);
    let mut refs = layout.ref_names();
    refs.sort();
    assert_eq!(
        refs,
        ["a", "b"],
        "rebuilding :a replaces it, not duplicates"
    );
    assert_eq!(layout.entry("a")["digest"], a2.as_str());
    assert_eq!(layout.entry("b")["digest"], b.as_str());
    let b_images = layout.platforms("b");
    assert_eq!(
        b_images[0].config["config"]["Labels"]["which"], "b",
        "image b untouched"
    );
}

#[test]
fn tag_flags_give_one_ref_each() {
    let sandbox = Sandbox::new();
    let digest = build_tagged(&sandbox, &sandbox.oci("out"), &["--tag", "x", "--tag", "y"]);
    let layout = Layout::open(sandbox.path("out"));
    assert_eq!(
        layout.ref_names(),
        ["x", "y"],
        "no `latest` when tags are given"
    );
    assert_eq!(layout.entry("x")["digest"], digest.as_str());
    assert_eq!(layout.entry("y")["digest"], digest.as_str());

    let digest = build_tagged(&sandbox, &sandbox.oci("out2:1.2.3"), &["--tag", "x"]);
    let layout = Layout::open(sandbox.path("out2"));
    assert_eq!(
        layout.ref_names(),
        ["1.2.3", "x"],
        "the location's tag first, then --tag"
    );
    assert_eq!(layout.entry("1.2.3")["digest"], digest.as_str());

    let archive = sandbox.path("img.tar");
    build_tagged(
        &sandbox,
        &format!("oci-archive:{}:v1", archive.display()),
        &["--tag", "v1-extra"],
    );
    let index = parse_json(std::str::from_utf8(&archive_members(&archive)["index.json"]).unwrap());
    let refs: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_at(m, "/annotations/org.opencontainers.image.ref.name"))
        .collect();
    assert_eq!(refs, ["v1", "v1-extra"], "archive tags as for a layout");
}

/// Output files get the permissions any other tool gives them under the caller's
/// umask (skopeo writes index.json 0644 under umask 022), not a temp file's 0600.
#[test]
fn outputs_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let sandbox = Sandbox::new();
    let mode = |relative: &str| {
        fs::metadata(sandbox.path(relative))
            .unwrap_or_else(|e| panic!("{relative}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for (output, extra) in [
        (sandbox.oci("layout"), &["--digest-file", "digest.txt"][..]),
        (
            format!("oci-archive:{}", sandbox.path("img.tar").display()),
            &[],
        ),
        (
            format!("docker-archive:{}", sandbox.path("d.tar").display()),
            &["--platform", "linux/amd64"],
        ),
    ] {
        // std::process::Command cannot set a umask without unsafe code: let sh do it.
        let mut command = assert_cmd::Command::new("sh");
        command
            .current_dir(sandbox.root())
            .env("CI", "true")
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("-c")
            .arg("umask 022 && exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_hoist"))
            .arg("build")
            .arg("--cache-dir")
            .arg(sandbox.cache())
            .arg("--config")
            .arg(example_config())
            .arg("--output")
            .arg(&output)
            .args(extra);
        success(&mut command);
    }
    for file in [
        "layout/index.json",
        "layout/oci-layout",
        "digest.txt",
        "img.tar",
        "d.tar",
    ] {
        assert_eq!(mode(file), 0o644, "{file} mode under umask 022");
    }
    let layout = Layout::open(sandbox.path("layout"));
    let digest = str_at(&layout.entry("latest"), "/digest").to_owned();
    let index = layout.blob_path(&digest);
    assert_eq!(
        fs::metadata(index).unwrap().permissions().mode() & 0o777,
        0o644,
        "blobs"
    );
}

/// A layout written by another tool: hoist adds its image beside the existing one,
/// which stays readable.
#[test]
fn build_into_a_layout_written_by_skopeo() {
    let sandbox = Sandbox::new();
    let base = format!("oci:{}:1.0", crate::common::base_layout().display());
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "arm64",
            &base,
            &sandbox.oci("out:theirs"),
        ],
    );
    let theirs = Layout::open(sandbox.path("out")).entry("theirs");
    let digest = build_tagged(&sandbox, &sandbox.oci("out:ours"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let mut refs = layout.ref_names();
    refs.sort();
    assert_eq!(refs, ["ours", "theirs"]);
    assert_eq!(layout.entry("theirs"), theirs, "their entry kept as it was");
    assert_eq!(layout.entry("ours")["digest"], digest.as_str());
    let inspected = parse_json(&tool("skopeo", &["inspect", &sandbox.oci("out:theirs")]));
    assert_eq!(inspected["Architecture"], "arm64");
    let raw = tool("skopeo", &["inspect", "--raw", &sandbox.oci("out:ours")]);
    assert_eq!(raw.as_bytes(), layout.blob(&digest));
}

#[test]
fn build_into_an_empty_existing_dir() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.path("out")).unwrap();
    let digest = build_tagged(&sandbox, &sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    assert_eq!(layout.entry("latest")["digest"], digest.as_str());
    assert_eq!(
        fs::read_to_string(sandbox.path("out/oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
}
