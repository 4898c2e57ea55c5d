//! Third-party judges of the dashboard example's output: skopeo reads and copies it,
//! umoci unpacks it into a root filesystem, oci-image-tool validates every document.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::umoci_unpack;
use crate::common::{
    Layout, REF_NAME, Sandbox, copy_tree, example_dir, parse_json, str_at, tool, tool_output,
};

#[test]
fn skopeo_reads_the_same_index_bytes() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let digest = str_at(&layout.entry("latest"), "/digest").to_owned();

    let raw = tool("skopeo", &["inspect", "--raw", &sandbox.oci("out:latest")]);
    crate::common::parse_json(&raw);
    assert_eq!(
        raw.as_bytes(),
        layout.blob(&digest),
        "skopeo serves the index bytes we wrote"
    );
}

/// Copies one platform out with skopeo, unpacks it with umoci and checks the root
/// filesystem: our layers applied (whiteout included) over the base's.
fn unpack_and_check(sandbox: &Sandbox, arch: &str) {
    let copy = sandbox.path(&format!("x-{arch}"));
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            arch,
            &sandbox.oci("out:latest"),
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let bundle = sandbox.path(&format!("bundle-{arch}"));
    umoci_unpack(&copy, "1", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("app/main.py")).unwrap(),
        fs::read(example_dir().join("backend/main.py")).unwrap(),
        "{arch}: /app/main.py"
    );
    assert!(
        rootfs.join("usr/share/nginx/html/index.html").is_file(),
        "{arch}: index.html"
    );
    assert!(
        rootfs
            .join("usr/share/nginx/html/assets/app.1476bccc.js")
            .is_file()
    );
    let maps: Vec<_> = crate::common::files_under(&rootfs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "map"))
        .collect();
    assert!(
        maps.is_empty(),
        "{arch}: source maps in the image: {maps:?}"
    );
    assert!(
        rootfs.join("etc/nginx/conf.d").is_dir(),
        "{arch}: the whiteout removes the file, not its directory"
    );
    assert!(
        !rootfs.join("etc/nginx/conf.d/default.conf").exists(),
        "{arch}: the whiteout must delete default.conf"
    );
    assert!(
        !rootfs.join("etc/nginx/conf.d/.wh.default.conf").exists(),
        "{arch}: the whiteout itself is not a file in the rootfs"
    );
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "{arch}: base layer kept"
    );
    assert!(rootfs.join("etc/passwd").is_file());

    if arch == "amd64" && std::env::consts::ARCH == "x86_64" {
        let echoed = std::process::Command::new(rootfs.join("bin/busybox"))
            .args(["echo", "ok"])
            .output()
            .expect("running the unpacked busybox");
        assert!(echoed.status.success(), "{echoed:?}");
        assert_eq!(echoed.stdout, b"ok\n");
    }
    let oci_config = fs::read_to_string(bundle.join("config.json")).unwrap();
    let oci_config = crate::common::parse_json(&oci_config);
    assert_eq!(
        oci_config["process"]["args"],
        json!(["python3", "/app/main.py"]),
        "{arch}: umoci's runtime config from Entrypoint + Cmd"
    );
    assert_eq!(oci_config["process"]["cwd"], "/app");
}

#[test]
fn skopeo_and_umoci_unpack_amd64() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    unpack_and_check(&sandbox, "amd64");
}

#[test]
fn skopeo_and_umoci_unpack_arm64() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    unpack_and_check(&sandbox, "arm64");
}

#[test]
fn skopeo_copies_to_a_docker_archive() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let archive = sandbox.path("d.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "arm64",
            &sandbox.oci("out:latest"),
            &format!("docker-archive:{}:acme/dash:1", archive.display()),
        ],
    );
    let inspected = tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", archive.display())],
    );
    let inspected = crate::common::parse_json(&inspected);
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);
}

fn validate(kind: &str, path: &Path) {
    let out = tool(
        "oci-image-tool",
        &["validate", "--type", kind, path.to_str().unwrap()],
    );
    assert!(
        out.contains("Validation succeeded"),
        "oci-image-tool validate --type {kind} {}: {out}",
        path.display()
    );
}

#[test]
fn oci_image_tool_validates_every_document() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &[]);
    let layout = Layout::open(sandbox.path("out"));
    let index_digest = str_at(&layout.entry("latest"), "/digest").to_owned();
    validate("imageIndex", &layout.blob_path(&index_digest));
    let images = layout.platforms("latest");
    for image in &images {
        validate(
            "manifest",
            &layout.blob_path(str_at(&image.descriptor, "/digest")),
        );
        validate(
            "config",
            &layout.blob_path(str_at(&image.manifest, "/config/digest")),
        );
    }

    oci_image_tool_validates(&sandbox, &layout.root);
}

/// oci-image-tool validates every platform image of the layout's `latest`, blobs
/// included. It skips a tag that names an index, so each platform manifest is listed
/// directly in a copy's index.json.
pub(crate) fn oci_image_tool_validates(sandbox: &Sandbox, layout: &Path) {
    let flat = sandbox.path(&format!(
        "flat-{}",
        layout.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&flat);
    copy_tree(layout, &flat);
    let index_json = parse_json(&fs::read_to_string(layout.join("index.json")).unwrap());
    let latest = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == "latest")
        .expect("a latest entry");
    let index = parse_json(
        &fs::read_to_string(
            layout
                .join("blobs/sha256")
                .join(&str_at(latest, "/digest")["sha256:".len()..]),
        )
        .unwrap(),
    );
    let mut names = Vec::new();
    let manifests: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|descriptor| {
            let name = str_at(descriptor, "/platform/architecture").to_owned();
            names.push(name.clone());
            json!({
                "mediaType": descriptor["mediaType"],
                "digest": descriptor["digest"],
                "size": descriptor["size"],
                "annotations": { REF_NAME: name },
            })
        })
        .collect();
    fs::write(
        flat.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
    for name in names {
        let output = tool_output(
            "oci-image-tool",
            &[
                "validate",
                "--type",
                "image",
                "--ref",
                &format!("name={name}"),
                flat.to_str().unwrap(),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("Validation succeeded"),
            "oci-image-tool validate --type image --ref name={name} {}: {text}",
            layout.display()
        );
    }
}
