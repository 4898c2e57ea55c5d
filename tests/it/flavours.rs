//! Manifest flavours and compression: a Docker schema-2 base kept or converted to
//! OCI, zstd layers, and a scratch base.

use std::fs;

use serde_json::Value;

use crate::common::umoci_unpack;
use crate::common::{
    BASE_AMD64_CONFIG, BASE_AMD64_LAYER, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST,
    Layout, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Sandbox,
    digest_of, example_config, failure, parse_json, repo, stdout, str_at, success, tool,
};

fn docker_base() -> String {
    format!("oci:{}:1.0", repo().join("testdata/base-docker").display())
}

/// `hoist inspect --json oci:<sandbox>/out`.
fn inspect_json(sandbox: &Sandbox) -> Value {
    let mut command = sandbox.hoist();
    command.arg("inspect").arg("--json").arg(sandbox.oci("out"));
    parse_json(&stdout(&success(&mut command)))
}

#[test]
fn docker_base_keeps_docker_media_types() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &["--base", &docker_base()]);

    let inspected = inspect_json(&sandbox);
    assert_eq!(inspected["descriptor"]["mediaType"], DOCKER_LIST);
    assert_eq!(inspected["index"]["mediaType"], DOCKER_LIST);
    assert!(
        inspected["index"].get("annotations").is_none(),
        "Docker schema 2 has no annotations: {:#}",
        inspected["index"]
    );
    let manifests = inspected["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for m in manifests {
        assert_eq!(m["manifest"]["mediaType"], DOCKER_MANIFEST);
        assert!(m["manifest"].get("annotations").is_none());
        assert_eq!(m["config"]["config"]["Env"][1], "PORT=8080");
    }

    let layout = Layout::open(sandbox.path("out"));
    let entry = layout.entry("latest");
    assert_eq!(entry["mediaType"], DOCKER_LIST);
    let index = layout.json(str_at(&entry, "/digest"));
    assert_eq!(index["mediaType"], DOCKER_LIST);
    assert!(index.get("annotations").is_none());
    for image in layout.platforms("latest") {
        assert_eq!(image.descriptor["mediaType"], DOCKER_MANIFEST);
        assert_eq!(image.manifest["mediaType"], DOCKER_MANIFEST);
        assert_eq!(image.manifest["config"]["mediaType"], DOCKER_CONFIG);
        assert!(image.manifest.get("annotations").is_none());
        let layers = image.manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 4);
        for layer in layers {
            assert_eq!(layer["mediaType"], DOCKER_LAYER);
        }
        assert_eq!(image.config["config"]["User"], "1000:1000");
    }
}

#[test]
fn format_oci_converts_a_docker_base() {
    let sandbox = Sandbox::new();
    sandbox.build_example(
        &sandbox.oci("out"),
        &["--base", &docker_base(), "--format", "oci"],
    );
    let layout = Layout::open(sandbox.path("out"));
    let entry = layout.entry("latest");
    assert_eq!(entry["mediaType"], OCI_INDEX);
    let index = layout.json(str_at(&entry, "/digest"));
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.vendor"],
        "acme"
    );
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 2);
    for image in &images {
        assert_eq!(image.descriptor["mediaType"], OCI_MANIFEST);
        assert_eq!(image.manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(image.manifest["config"]["mediaType"], OCI_CONFIG);
        for layer in image.manifest["layers"].as_array().unwrap() {
            assert_eq!(layer["mediaType"], OCI_LAYER_GZIP);
        }
        assert_eq!(
            image.manifest["annotations"]["org.opencontainers.image.vendor"],
            "acme"
        );
    }
    // The base layer's bytes are unchanged by the conversion; only its media type.
    assert_eq!(images[0].layer_digests()[0], BASE_AMD64_LAYER);
    // The layout is readable by skopeo's OCI transport (OCI media types only).
    let raw = tool("skopeo", &["inspect", "--raw", &sandbox.oci("out:latest")]);
    assert_eq!(parse_json(&raw)["mediaType"], OCI_INDEX);
}

#[test]
fn zstd_on_a_docker_base_needs_format_oci() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .args(["--base", &docker_base(), "--compression", "zstd"])
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = failure(&mut command);
    assert!(err.contains("--format oci"), "stderr:\n{err}");
    assert!(!sandbox.path("out").exists());

    // As the message says: with --format oci it builds, with zstd layers.
    sandbox.build_example(
        &sandbox.oci("out"),
        &[
            "--base",
            &docker_base(),
            "--compression",
            "zstd",
            "--format",
            "oci",
        ],
    );
    let layout = Layout::open(sandbox.path("out"));
    for image in layout.platforms("latest") {
        assert_eq!(image.manifest["mediaType"], OCI_MANIFEST);
        let layers = image.manifest["layers"].as_array().unwrap();
        assert_eq!(
            layers[0]["mediaType"], OCI_LAYER_GZIP,
            "base layer as it was"
        );
        assert_eq!(layers[1]["mediaType"], OCI_LAYER_ZSTD);
        assert_eq!(layers[2]["mediaType"], OCI_LAYER_ZSTD);
    }
}

#[test]
fn zstd_layers_are_read_by_zstd_skopeo_and_umoci() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out"), &["--compression", "zstd"]);
    let layout = Layout::open(sandbox.path("out"));
    let images = layout.platforms("latest");
    let amd64 = &images[0];
    let layers = amd64.manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["mediaType"], OCI_LAYER_GZIP,
        "base layer as it was"
    );
    let diff_ids = amd64.config["rootfs"]["diff_ids"].as_array().unwrap();
    for (layer, diff_id) in layers.iter().zip(diff_ids).skip(1) {
        assert_eq!(layer["mediaType"], OCI_LAYER_ZSTD);
        let blob = layout.blob_path(str_at(layer, "/digest"));
        let tar = sandbox.path("layer.tar");
        tool(
            "zstd",
            &[
                "-d",
                "-q",
                "-f",
                blob.to_str().unwrap(),
                "-o",
                tar.to_str().unwrap(),
            ],
        );
        assert_eq!(
            digest_of(&fs::read(&tar).unwrap()),
            diff_id.as_str().unwrap(),
            "zstd -d gives the tar named by the diff_id"
        );
    }

    // skopeo copies the zstd layers as they are...
    let copy = sandbox.path("x");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "amd64",
            &sandbox.oci("out:latest"),
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let copied = Layout::open(&copy);
    let manifest = copied.json(str_at(&copied.entry("1"), "/digest"));
    assert_eq!(
        manifest["layers"], amd64.manifest["layers"],
        "the zstd layers copied unchanged"
    );
    // ...but umoci 0.4.7 (Debian) rejects tar+zstd layers ("blob is not correct
    // mediatype"), so have skopeo decompress them (checking each blob's digest on the
    // way) and recompress as gzip for umoci to unpack.
    let copy = sandbox.path("x-gzip");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "amd64",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
            &sandbox.oci("out:latest"),
            &format!("oci:{}:1", copy.display()),
        ],
    );
    let bundle = sandbox.path("bundle");
    umoci_unpack(&copy, "1", &bundle);
    assert_eq!(
        fs::read(bundle.join("rootfs/app/main.py")).unwrap(),
        fs::read(crate::common::example_dir().join("backend/main.py")).unwrap()
    );
    assert!(!bundle.join("rootfs/etc/nginx/conf.d/default.conf").exists());
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

#[test]
fn scratch_base_with_one_layer() {
    let sandbox = Sandbox::new();
    sandbox.write("site/hello.txt", "hello\n");
    let config = sandbox.write(
        "hoist.toml",
        r#"[image]
base = "oci:does-not-matter:1.0"

[[layer]]
from = "site"
to = "/srv"
"#,
    );
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .args(["--base", "scratch", "--platform", "linux/amd64"])
        .arg("--output")
        .arg(sandbox.oci("out"));
    success(&mut command);

    let layout = Layout::open(sandbox.path("out"));
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image.config["architecture"], "amd64");
    assert_eq!(image.config["os"], "linux");
    assert_eq!(image.manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(
        image.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1
    );
    assert_eq!(image.manifest["layers"].as_array().unwrap().len(), 1);
    assert_ne!(
        str_at(&image.manifest, "/config/digest"),
        BASE_AMD64_CONFIG,
        "not the busybox base"
    );
    let history = image.config["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["created_by"], "hoist: site → /srv");

    let tar = crate::common::gunzip(&layout.blob(&image.layer_digests()[0]));
    let entries = crate::common::tar_map(&crate::common::tar_entries(&tar));
    assert_eq!(entries["srv/hello.txt"].data, b"hello\n");
    assert!(entries.contains_key("srv/"));
}
