//! `hoist diff A B`: exit codes, the text and JSON forms, registry images whose equal
//! layers are never fetched, and layer tars that try to escape the root (tar-slip).

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::common::{
    Sandbox, digest_of, last_line, layout_with_gzip_layer, parse_json, stdout, success,
};
use crate::registry::{Registry, ok};
use crate::verify::app;

fn diff(sandbox: &Sandbox, a: &str, b: &str, extra: &[&str]) -> Output {
    let mut command = sandbox.hoist();
    command
        .arg("diff")
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .arg(a)
        .arg(b)
        .args(extra);
    command.output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn build(sandbox: &Sandbox, tree: &Path, out: &str, extra: &[&str]) -> String {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(out)
        .args(extra);
    last_line(&stdout(&success(&mut command))).to_string()
}

#[test]
fn identical_images_exit_0() {
    let sandbox = Sandbox::new();
    let tree = app(&sandbox, "tree");
    let digest = build(&sandbox, &tree, &sandbox.oci("one"), &[]);
    let archive = format!("oci-archive:{}", sandbox.path("two.tar").display());
    build(&sandbox, &tree, &archive, &[]);
    let output = diff(&sandbox, &sandbox.oci("one"), &archive, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "identical: {} and {archive} are both {digest}\n",
            sandbox.oci("one"),
        )
    );
}

#[test]
fn different_images_exit_1_with_each_level_named() {
    let sandbox = Sandbox::new();
    let tree = app(&sandbox, "tree");
    let a = build(&sandbox, &tree, &sandbox.oci("one"), &[]);
    fs::write(tree.join("backend/new.txt"), "new\n").unwrap();
    let b = build(
        &sandbox,
        &tree,
        &sandbox.oci("two"),
        &["--env", "MODE=prod", "--platform", "linux/amd64"],
    );

    let output = diff(&sandbox, &sandbox.oci("one"), &sandbox.oci("two"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("a: {} {a}", sandbox.oci("one")));
    assert_eq!(lines[1], format!("b: {} {b}", sandbox.oci("two")));
    for expected in [
        "    env MODE: added \"prod\"",
        &format!(
            "    /app/new.txt: added (file, mode 0644, owner 1000:1000, {} (4 bytes))",
            digest_of(b"new\n")
        ),
        "  layers 1, 2, 3: equal",
        "platform linux/arm64/v8: only in a",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{text}"
        );
    }

    let output = diff(
        &sandbox,
        &sandbox.oci("one"),
        &sandbox.oci("two"),
        &["--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let json = parse_json(&stdout(&output));
    assert_eq!(json["identical"], false);
    let amd64 = &json["platforms"][0];
    assert_eq!(amd64["platform"], "linux/amd64");
    assert_eq!(amd64["status"], "changed");
    let statuses: Vec<&Value> = amd64["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!("equal"),
            &json!("equal"),
            &json!("equal"),
            &json!("changed")
        ]
    );
    assert_eq!(
        amd64["layers"][3]["files"],
        json!([{
            "path": "/app/new.txt",
            "status": "added",
            "changes": [],
            "b": {"kind": "file", "mode": 0o644, "uid": 1000, "gid": 1000, "size": 4,
                  "sha256": digest_of(b"new\n"), "mtime": 0},
        }])
    );
    assert!(
        amd64["config"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "env MODE", "a": null, "b": "prod"})),
        "{amd64:#}"
    );
    assert_eq!(json["platforms"][1]["status"], "removed");
}

/// Two images in one registry repository that share every layer but the backend: the
/// diff fetches the two backend layers and nothing else of the layers.
#[test]
fn registry_diff_never_fetches_equal_layers() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let tree = app(&sandbox, "tree");
    let push = |tag: &str| {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(tree.join("hoist.toml"))
            .arg("--push-to")
            .arg(registry.reference(&format!("acme/app:{tag}")))
            .arg("--json");
        parse_json(&stdout(&ok(&mut command, &registry)))
    };
    let one = push("one");
    fs::write(tree.join("backend/requirements.in"), "flask\n").unwrap();
    let two = push("two");
    let backend = |summary: &Value| summary["platforms"][0]["layers"][3]["digest"].clone();
    let changed = [backend(&one), backend(&two)];
    let all_layers: Vec<Value> = [&one, &two]
        .iter()
        .flat_map(|s| s["platforms"].as_array().unwrap().clone())
        .flat_map(|p| p["layers"].as_array().unwrap().clone())
        .map(|l| l["digest"].clone())
        .collect();
    let before = registry.requests().len();

    let differ = Sandbox::new();
    let output = diff(
        &differ,
        &registry.reference("acme/app:one"),
        &registry.reference("acme/app:two"),
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stdout(&output).contains("    /app/requirements.in: content "),
        "{}",
        describe(&output)
    );
    let fetched: Vec<String> = registry.requests()[before..]
        .iter()
        .filter_map(|r| r.blob_get().map(str::to_string))
        .collect();
    let fetched_layers: std::collections::BTreeSet<&String> = fetched
        .iter()
        .filter(|d| all_layers.contains(&json!(d)))
        .collect();
    let expected: std::collections::BTreeSet<String> = changed
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        fetched_layers,
        expected.iter().collect(),
        "only the changed layers are fetched (all blob GETs: {fetched:?})"
    );
}

/// A one-platform OCI layout at `dir` whose only layer is `layer` (gzip), returned as
/// `oci:DIR`, with the layer digest.
fn layout_with_layer(dir: &Path, layer: &[u8]) -> (String, String) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(layer).unwrap();
    layout_with_gzip_layer(dir, &gz.finish().unwrap(), &digest_of(layer))
}

/// A tar of one regular file whose name is written raw into the header (the tar
/// crate refuses `..` when building, which is the point).
pub fn tar_with_entry(name: &str) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(b"evil");
    out.resize(1024, 0);
    out.extend_from_slice(&[0; 1024]);
    out
}

#[test]
fn layers_escaping_the_root_are_refused_with_exit_2() {
    let sandbox = Sandbox::new();
    let (good, _) = layout_with_layer(&sandbox.path("good"), &tar_with_entry("app/ok"));
    for (name, entry, reason) in [
        (
            "parent",
            "app/../../x",
            "has a `..` component (it would climb out of the root)",
        ),
        (
            "climbing",
            "../x",
            "has a `..` component (it would climb out of the root)",
        ),
    ] {
        let (bad, layer) = layout_with_layer(&sandbox.path(name), &tar_with_entry(entry));
        let output = diff(&sandbox, &good, &bad, &[]);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            err.trim_end(),
            format!("error: layer {layer}: entry `{entry}` {reason}"),
            "{}",
            describe(&output)
        );
        // Nothing was extracted anywhere: the only files are the two layouts.
        assert!(!sandbox.path("x").exists() && !sandbox.root().join("../x").exists());
    }
}

#[test]
fn a_missing_image_is_an_error_with_exit_2() {
    let sandbox = Sandbox::new();
    let output = diff(
        &sandbox,
        &sandbox.oci("nowhere"),
        &sandbox.oci("nowhere-else"),
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&sandbox.path("nowhere").display().to_string()),
        "{}",
        describe(&output)
    );
}

/// `docker-archive:` on either side: hoist's own archives (blob form) and skopeo's
/// (docker's legacy `ID/layer.tar` form, whose layers are symbolic links to
/// uncompressed tars). The config keeps its digest; layers compare by their files.
#[test]
fn docker_archives_are_read_in_both_forms() {
    let sandbox = Sandbox::new();
    let tree = app(&sandbox, "tree");
    let platform = ["--platform", "linux/arm64"];
    build(&sandbox, &tree, &sandbox.oci("one"), &platform);
    let ours = format!(
        "docker-archive:{}:acme/app:1",
        sandbox.path("ours.tar").display()
    );
    build(&sandbox, &tree, &ours, &platform);

    // hoist's archive: the same config and layer blobs (only the OCI annotations,
    // which a docker archive cannot hold, differ).
    let output = diff(&sandbox, &ours, &sandbox.oci("one"), &[]);
    let text = describe(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("layers 1, 2, 3, 4: equal"), "{text}");
    assert!(
        !text.contains("config:"),
        "the config is the same blob: {text}"
    );

    // skopeo's legacy archive: uncompressed layers, the same files.
    let legacy = sandbox.path("skopeo.tar");
    sandbox.write(
        "policy.json",
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    );
    crate::common::tool(
        "skopeo",
        &[
            "--policy",
            &sandbox.path("policy.json").display().to_string(),
            "--override-arch",
            "arm64",
            "copy",
            &format!("{}:latest", sandbox.oci("one")),
            &format!("docker-archive:{}:acme/app:1", legacy.display()),
        ],
    );
    let legacy = format!("docker-archive:{}", legacy.display());
    let output = diff(&sandbox, &legacy, &sandbox.oci("one"), &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = parse_json(&stdout(&output));
    let platform = &report["platforms"][0];
    assert_eq!(platform["config"], json!([]), "{report:#}");
    let layers = platform["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4, "{report:#}");
    for layer in layers {
        assert_eq!(layer["files"], json!([]), "no file differs: {report:#}");
        assert!(
            layer["note"]
                .as_str()
                .unwrap_or_default()
                .contains("same entries"),
            "{report:#}"
        );
    }

    // inspect reads it too, naming the platform.
    let mut inspect = sandbox.hoist();
    inspect.arg("inspect").arg(&legacy);
    assert!(stdout(&success(&mut inspect)).contains("platform linux/arm64"));

    // push takes it to a registry, where it is the same image.
    let registry = Registry::start();
    let mut push = sandbox.hoist();
    push.arg("push")
        .arg(&legacy)
        .arg(registry.reference("acme/legacy:1"));
    ok(&mut push, &registry);
    let output = diff(&sandbox, &registry.reference("acme/legacy:1"), &legacy, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    // An archive whose manifest.json points outside it is refused, naming the path.
    let evil = sandbox.path("evil.tar");
    let mut builder = tar::Builder::new(fs::File::create(&evil).unwrap());
    let manifest = br#"[{"Config":"../../etc/passwd","RepoTags":[],"Layers":[]}]"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", &manifest[..])
        .unwrap();
    builder.finish().unwrap();
    drop(builder);
    let output = diff(
        &sandbox,
        &format!("docker-archive:{}", evil.display()),
        &sandbox.oci("one"),
        &[],
    );
    let text = describe(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("outside the archive"), "{text}");
}

#[test]
fn a_layer_blob_linked_out_of_its_layout_is_refused_with_exit_2() {
    let sandbox = Sandbox::new();
    let (good, _) = layout_with_layer(&sandbox.path("good"), &tar_with_entry("app/ok"));
    let (linked, layer) = layout_with_layer(&sandbox.path("linked"), &tar_with_entry("app/no"));
    // The same bytes, outside the layout, reached through a link: still refused.
    let blob = sandbox
        .path("linked/blobs/sha256")
        .join(&layer["sha256:".len()..]);
    let outside = sandbox.path("outside.tar.gz");
    fs::rename(&blob, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &blob).unwrap();
    let output = diff(&sandbox, &good, &linked, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&layer["sha256:".len()..]) && err.contains("symbolic link"),
        "{}",
        describe(&output)
    );
}
