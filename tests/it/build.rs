//! The dashboard example built into an `oci:` layout: index, manifests, configs,
//! annotations, the `--json` summary and `--digest-file`.

use serde_json::{Value, json};

use crate::common::{
    BASE_AMD64_LAYER, BASE_AMD64_MANIFEST, BASE_ARM64_LAYER, BASE_ARM64_MANIFEST, BASE_INDEX,
    Layout, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, Sandbox, assert_digest,
    last_line, parse_json, str_at,
};

const BASE_NAME: &str = "oci:../../testdata/base:1.0";

#[test]
fn example_build_writes_a_two_platform_index() {
    let sandbox = Sandbox::new();
    let stdout = sandbox.build_example(&sandbox.oci("out"), &[]);
    let digest = last_line(&stdout);
    assert_digest(digest);

    let layout = Layout::open(sandbox.path("out"));
    let top = layout.index_json();
    assert_eq!(top["schemaVersion"], 2);
    let entries = top["manifests"].as_array().unwrap();
    // One image, and its two SBOMs (untagged artifacts, tests/it/sbom.rs).
    assert_eq!(entries.len(), 3, "one image in a fresh layout: {top:#}");
    assert!(
        entries[1..]
            .iter()
            .all(|e| e["artifactType"] == "application/spdx+json")
    );
    let entry = &entries[0];
    assert_eq!(entry["annotations"][REF_NAME], "latest");
    assert_eq!(
        str_at(entry, "/digest"),
        digest,
        "stdout digest = index.json"
    );
    assert_eq!(str_at(entry, "/mediaType"), OCI_INDEX);
    let index_bytes = layout.blob(digest);
    assert_eq!(entry["size"], index_bytes.len());

    let index = layout.json(digest);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let annotations = &index["annotations"];
    assert_eq!(annotations["org.opencontainers.image.base.name"], BASE_NAME);
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        BASE_INDEX
    );
    assert_eq!(annotations["org.opencontainers.image.vendor"], "acme");

    let platforms = layout.platforms("latest");
    assert_eq!(platforms.len(), 2);
    assert_eq!(
        platforms[0].platform,
        json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(
        platforms[1].platform,
        json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
    );

    let mut new_layers = Vec::new();
    for (image, base_layer, base_manifest) in [
        (&platforms[0], BASE_AMD64_LAYER, BASE_AMD64_MANIFEST),
        (&platforms[1], BASE_ARM64_LAYER, BASE_ARM64_MANIFEST),
    ] {
        let arch = image.architecture();
        assert_eq!(str_at(&image.descriptor, "/mediaType"), OCI_MANIFEST);
        let manifest = &image.manifest;
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 4, "{arch}: 1 base + 3 new layers");
        assert_eq!(layers[0]["digest"], base_layer, "{arch}: base layer kept");
        for layer in layers {
            assert_eq!(layer["mediaType"], OCI_LAYER_GZIP);
            let size = layer["size"].as_u64().unwrap();
            let blob = layout.blob(str_at(layer, "/digest"));
            assert_eq!(blob.len() as u64, size, "{arch}: layer size");
        }
        new_layers.push(image.layer_digests()[1..].to_vec());

        let annotations = &manifest["annotations"];
        assert_eq!(annotations["org.opencontainers.image.base.name"], BASE_NAME);
        assert_eq!(
            annotations["org.opencontainers.image.base.digest"], base_manifest,
            "{arch}: the base manifest of that platform"
        );
        assert_eq!(annotations["org.opencontainers.image.vendor"], "acme");

        assert_example_config(&image.config, arch);
    }
    assert_eq!(
        new_layers[0], new_layers[1],
        "the new layers are built once and shared by both platforms"
    );
    assert_ne!(new_layers[0][0], new_layers[0][1]);
    assert_ne!(new_layers[0][1], new_layers[0][2]);
}

fn assert_example_config(config: &Value, arch: &str) {
    assert_eq!(config["architecture"], arch);
    assert_eq!(config["os"], "linux");
    if arch == "arm64" {
        assert_eq!(config["variant"], "v8");
    }
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    let c = &config["config"];
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PORT=8080"
        ]),
        "{arch}: PATH kept from the base, PORT appended"
    );
    assert_eq!(c["Entrypoint"], json!(["python3"]));
    assert_eq!(c["Cmd"], json!(["/app/main.py"]));
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(
        c["Labels"],
        json!({"org.opencontainers.image.title": "dashboard"})
    );
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD", "wget", "-qO-", "http://localhost:8080/health"],
            "Interval": 30_000_000_000_u64,
            "Timeout": 5_000_000_000_u64,
            "Retries": 3
        }),
        "{arch}: durations in nanoseconds"
    );

    assert_eq!(config["rootfs"]["type"], "layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 4);
    for d in diff_ids {
        assert_digest(d.as_str().unwrap());
    }

    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{arch}: base entry + 3 hoist entries");
    assert!(
        str_at(&history[0], "/created_by").starts_with("testdata/make-base.sh"),
        "{arch}: the base's history entry comes first: {:#}",
        history[0]
    );
    assert_eq!(
        history[1]["created_by"],
        "hoist: frontend/dist → /usr/share/nginx/html"
    );
    // The lock's two wheels are pure Python: one layer for every platform.
    assert_eq!(
        history[2]["created_by"],
        "hoist: python backend/requirements.lock → /usr/local/lib/python3.11/site-packages, every platform"
    );
    assert_eq!(history[3]["created_by"], "hoist: backend → /app");
    for entry in &history[1..] {
        assert_eq!(entry["created"], "1970-01-01T00:00:00Z");
        assert_ne!(entry["empty_layer"], true);
    }
}

#[test]
fn example_build_json_summary() {
    let sandbox = Sandbox::new();
    // No SBOMs: the layout then holds exactly the image's blobs, which `bytes` counts.
    let stdout = sandbox.build_example(&sandbox.oci("out"), &["--json", "--no-sbom"]);
    let summary = parse_json(&stdout);
    let layout = Layout::open(sandbox.path("out"));
    let entry = layout.entry("latest");

    assert_eq!(summary["digest"], entry["digest"]);
    assert_eq!(summary["media_type"], OCI_INDEX);
    let platforms = summary["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    let names: Vec<_> = platforms.iter().map(|p| str_at(p, "/platform")).collect();
    assert_eq!(names[0], "linux/amd64");
    assert!(
        names[1] == "linux/arm64/v8" || names[1] == "linux/arm64",
        "{names:?}"
    );

    let images = layout.platforms("latest");
    for (platform, image) in platforms.iter().zip(&images) {
        assert_eq!(platform["digest"], image.descriptor["digest"]);
        let layers = platform["layers"].as_array().unwrap();
        let origins: Vec<_> = layers.iter().map(|l| str_at(l, "/origin")).collect();
        assert_eq!(
            origins,
            [
                "base",
                "frontend/dist",
                "python: backend/requirements.lock",
                "backend"
            ]
        );
        for ((layer, in_manifest), diff_id) in layers
            .iter()
            .zip(image.manifest["layers"].as_array().unwrap())
            .zip(image.config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            assert_eq!(layer["digest"], in_manifest["digest"]);
            assert_eq!(layer["size"], in_manifest["size"]);
            assert_eq!(layer["media_type"], in_manifest["mediaType"]);
            assert_eq!(&layer["diff_id"], diff_id);
            assert_eq!(layer["cached"], false, "fresh cache: nothing cached");
        }
    }
    assert_eq!(
        summary["bytes"].as_u64().unwrap(),
        layout.blob_bytes(),
        "bytes = every blob of the image, base layers included"
    );
}

#[test]
fn digest_file_holds_the_digest_and_a_newline() {
    let sandbox = Sandbox::new();
    let file = sandbox.path("digest.txt");
    let stdout = sandbox.build_example(
        &sandbox.oci("out"),
        &["--digest-file", file.to_str().unwrap()],
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, format!("{}\n", last_line(&stdout)));
    assert_eq!(
        written.trim_end(),
        str_at(
            &Layout::open(sandbox.path("out")).entry("latest"),
            "/digest"
        )
    );
}

#[test]
fn build_without_output_prints_the_digest_and_writes_only_the_cache() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.build();
    command
        // Dated as build_example dates it.
        .env("SOURCE_DATE_EPOCH", "0")
        .arg("--config")
        .arg(crate::common::example_config());
    let stdout = crate::common::stdout(&crate::common::success(&mut command));
    let digest = last_line(&stdout);
    assert_digest(digest);

    // Same digest as writing it out.
    let other = Sandbox::new();
    let written = other.build_example(&other.oci("out"), &[]);
    assert_eq!(last_line(&written), digest);

    let mut names: Vec<_> = std::fs::read_dir(sandbox.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cache"], "nothing written but the cache");
}
