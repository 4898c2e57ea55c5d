//! Bases hoist did not write: layouts and archives made by skopeo, a layout whose tag
//! names a single manifest, and a base config with fields hoist does not model.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::{
    BASE_AMD64_MANIFEST, Layout, REF_NAME, Sandbox, base_layout, copy_tree, digest_of, stdout,
    str_at, success, tool,
};

/// A config with one layer from `src`, base given by flag.
fn project() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write("src/a.txt", "a\n");
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
    );
    sandbox
}

fn build(sandbox: &Sandbox, base: &str) -> Layout {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .args(["--base", base])
        .arg("--output")
        .arg(sandbox.oci("out"));
    success(&mut command);
    Layout::open(sandbox.path("out"))
}

#[test]
fn bases_written_by_skopeo() {
    let sandbox = project();
    let source = format!("oci:{}:1.0", base_layout().display());

    // skopeo's oci-archive (one platform: skopeo copies amd64 from the index).
    let archive = sandbox.path("skopeo.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("oci-archive:{}:1.0", archive.display()),
        ],
    );
    let layout = build(&sandbox, &format!("oci-archive:{}:1.0", archive.display()));
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].architecture(), "amd64");
    assert_eq!(images[0].layer_digests().len(), 2);
    let index = layout.json(str_at(&layout.entry("latest"), "/digest"));
    assert_eq!(
        index["annotations"]["org.opencontainers.image.base.digest"], BASE_AMD64_MANIFEST,
        "the base is the manifest the tag names"
    );
    let mut command = sandbox.hoist();
    command
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display()));
    let text = stdout(&success(&mut command));
    assert!(text.contains(BASE_AMD64_MANIFEST), "{text}");
    fs::remove_dir_all(sandbox.path("out")).unwrap();

    // A layout whose tag names one arm64 manifest: its platform comes from the config.
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--override-arch",
            "arm64",
            &source,
            &sandbox.oci("single:1"),
        ],
    );
    let layout = build(&sandbox, &sandbox.oci("single:1"));
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].architecture(), "arm64");
    assert_eq!(images[0].config["architecture"], "arm64");
    assert_eq!(images[0].config["variant"], "v8");
}

/// Rewrites the amd64 config of the base layout at `dir` with `edit`, and the
/// manifest, index and index.json above it so every digest matches again.
fn edit_amd64_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let layout = Layout::open(dir);
    let write_blob = |value: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        let digest = digest_of(&bytes);
        fs::write(layout.blob_path(&digest), &bytes).unwrap();
        (digest, bytes.len())
    };
    let mut manifest = layout.json(BASE_AMD64_MANIFEST);
    let mut config = layout.json(str_at(&manifest, "/config/digest"));
    edit(&mut config);
    let (config_digest, config_size) = write_blob(&config);
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_size);
    let (manifest_digest, manifest_size) = write_blob(&manifest);

    let mut top = layout.index_json();
    let entry = &mut top["manifests"][0];
    let mut index = layout.json(str_at(entry, "/digest"));
    for descriptor in index["manifests"].as_array_mut().unwrap() {
        if descriptor["digest"] == BASE_AMD64_MANIFEST {
            descriptor["digest"] = json!(manifest_digest);
            descriptor["size"] = json!(manifest_size);
        }
    }
    let (index_digest, index_size) = write_blob(&index);
    entry["digest"] = json!(index_digest);
    entry["size"] = json!(index_size);
    assert_eq!(entry["annotations"][REF_NAME], "1.0");
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn base_config_fields_hoist_does_not_model_are_kept() {
    let sandbox = project();
    let base = sandbox.path("base");
    copy_tree(&base_layout(), &base);
    let extras = json!({
        "OnBuild": ["RUN echo hi"],
        "ArgsEscaped": true,
        "Shell": ["/bin/sh", "-c"],
        "Healthcheck": {"Test": ["NONE"]},
        "Labels": {"from.base": "yes", "overridden": "base"},
        "Env": ["PATH=/usr/bin:/bin", "TZ=UTC", "HOME=/root"],
    });
    edit_amd64_config(&base, |config| {
        for (key, value) in extras.as_object().unwrap() {
            config["config"][key] = value.clone();
        }
        config["com.example.vendor"] = json!({"kept": [1, 2, 3]});
        config["author"] = json!("someone");
    });
    // The edited fixture is sound: skopeo reads it.
    tool(
        "skopeo",
        &["inspect", "--raw", &format!("oci:{}:1.0", base.display())],
    );
    sandbox.write(
        "hoist.toml",
        r#"[image]
base = "oci:base:1.0"
platforms = ["linux/amd64"]

[[layer]]
from = "src"
to = "/srv"

[config]
env = { TZ = "Asia/Tokyo", LANG = "C" }
labels = { overridden = "ours" }
"#,
    );
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out"));
    success(&mut command);
    let layout = Layout::open(sandbox.path("out"));
    let config = &layout.platforms("latest")[0].config;
    let c = &config["config"];
    assert_eq!(c["OnBuild"], extras["OnBuild"]);
    assert_eq!(c["ArgsEscaped"], true);
    assert_eq!(c["Shell"], extras["Shell"]);
    assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(c["Cmd"], json!(["sh"]));
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/usr/bin:/bin",
            "TZ=Asia/Tokyo",
            "HOME=/root",
            "LANG=C"
        ]),
        "replaced in place, new ones appended"
    );
    assert_eq!(
        c["Labels"],
        json!({"from.base": "yes", "overridden": "ours"})
    );
    assert_eq!(config["com.example.vendor"], json!({"kept": [1, 2, 3]}));
    assert_eq!(config["author"], "someone");
}
