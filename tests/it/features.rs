//! Config semantics beyond the example (docs/config.md): config edits, exclude
//! patterns, file kinds and modes in layers, per-platform layers, platform aliases,
//! docker-archive tags, selection by digest.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};

use crate::common::{
    Layout, Sandbox, TarEntry, base_layout, gunzip, last_line, parse_json, stdout, str_at, success,
    tar_entries, tar_map, tool,
};

/// Builds `<sandbox>/hoist.toml` into `oci:<sandbox>/out` with `extra` flags; returns
/// the layout.
fn build(sandbox: &Sandbox, extra: &[&str]) -> Layout {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out"))
        .args(extra);
    success(&mut command);
    Layout::open(sandbox.path("out"))
}

fn base() -> String {
    format!("oci:{}:1.0", base_layout().display())
}

#[test]
fn config_edits_merge_over_the_base() {
    let sandbox = Sandbox::new();
    sandbox.write("src/hello.txt", "hello\n");
    sandbox.write(
        "hoist.toml",
        &format!(
            r#"[image]
base = "{}"
platforms = ["linux/amd64"]

[[layer]]
from = "src"
to = "/srv"

[config]
entrypoint = ["/bin/busybox", "echo"]
env = {{ PATH = "/opt/bin", LANG = "C.UTF-8" }}
ports = ["80", "53/udp"]
volumes = ["/data"]
labels = {{ team = "web", tier = "front" }}
"#,
            base()
        ),
    );
    let layout = build(
        &sandbox,
        &["--env", "PATH=/flag/bin", "--label", "tier=back"],
    );
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 1);
    let c = &images[0].config["config"];
    assert_eq!(c["Entrypoint"], json!(["/bin/busybox", "echo"]));
    assert!(
        c.get("Cmd").is_none_or(Value::is_null),
        "entrypoint without cmd clears the base's Cmd [\"sh\"]: {c:#}"
    );
    assert_eq!(
        c["Env"],
        json!(["PATH=/flag/bin", "LANG=C.UTF-8"]),
        "PATH replaced in place (the flag beats the file), LANG appended"
    );
    assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Volumes"], json!({"/data": {}}));
    assert_eq!(c["Labels"], json!({"team": "web", "tier": "back"}));
}

/// Sets `path`'s permission bits exactly (whatever the umask).
fn chmod(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn layer_contents_excludes_links_modes_and_long_names() {
    let sandbox = Sandbox::new();
    let long_dir = format!("{}/{}", "d".repeat(60), "e".repeat(60));
    for (file, text) in [
        ("src/keep.txt", "keep\n"),
        ("src/app.js.map", "map\n"),
        ("src/keep.map", "wanted map\n"),
        ("src/build/out.txt", "anchored: excluded\n"),
        ("src/sub/build/x.txt", "not at the root: kept\n"),
        ("src/node_modules/pkg/index.js", "dir: excluded\n"),
        ("src/sub/node_modules", "a file: kept\n"),
        ("src/suid", "#!/bin/sh\n"),
        ("src/group-writable", "g+w\n"),
        (&format!("src/{long_dir}/long.txt"), "long\n"),
    ] {
        sandbox.write(file, text);
    }
    crate::common::normalise_modes(&sandbox.path("src"));
    chmod(&sandbox.path("src/suid"), 0o4755);
    chmod(&sandbox.path("src/group-writable"), 0o664);
    chmod(&sandbox.path("src/sub"), 0o775);
    std::os::unix::fs::symlink("keep.txt", sandbox.path("src/link")).unwrap();
    fs::hard_link(sandbox.path("src/keep.txt"), sandbox.path("src/hard.txt")).unwrap();
    // A hard link whose other name is excluded (and sorts first) must carry its data.
    fs::hard_link(sandbox.path("src/keep.txt"), sandbox.path("src/a.map")).unwrap();
    sandbox.write(
        "hoist.toml",
        r#"[image]
base = "scratch"
platforms = ["linux/amd64"]

[[layer]]
from = "src"
to = "/srv"
exclude = ["*.map", "!keep.map", "/build", "node_modules/"]

[[layer]]
from = "src"
to = "/norm"
modes = "normalize"
exclude = ["*.map", "!keep.map", "/build", "node_modules/"]
"#,
    );
    let layout = build(&sandbox, &[]);
    let image = &layout.platforms("latest")[0];
    let layers: Vec<BTreeMap<String, TarEntry>> = image.layer_digests()[..]
        .iter()
        .map(|d| tar_map(&tar_entries(&gunzip(&layout.blob(d)))))
        .collect();
    assert_eq!(layers.len(), 2);

    let keep = &layers[0];
    let names: Vec<_> = keep.keys().cloned().collect();
    for present in [
        "srv/",
        "srv/keep.txt",
        "srv/keep.map",
        "srv/sub/",
        "srv/sub/build/x.txt",
        "srv/sub/node_modules",
        "srv/link",
        "srv/hard.txt",
        "srv/suid",
        &format!("srv/{long_dir}/long.txt"),
    ] {
        assert!(keep.contains_key(present), "{present} missing: {names:#?}");
    }
    for absent in [
        "srv/a.map",
        "srv/app.js.map",
        "srv/build/",
        "srv/build/out.txt",
    ] {
        assert!(!keep.contains_key(absent), "{absent} not excluded");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("srv/node_modules")),
        "node_modules/ excluded and not descended into: {names:#?}"
    );

    let link = &keep["srv/link"];
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(
        link.link.as_deref(),
        Some("keep.txt"),
        "target kept as written"
    );

    // Hard links: the first path in archive order carries the data, the other links to it.
    let (first, second) = (&keep["srv/hard.txt"], &keep["srv/keep.txt"]);
    assert_eq!(first.kind, tar::EntryType::Regular);
    assert_eq!(first.data, b"keep\n");
    assert_eq!(second.kind, tar::EntryType::Link);
    assert_eq!(second.link.as_deref(), Some("srv/hard.txt"));

    assert_eq!(
        keep[&format!("srv/{long_dir}/long.txt")].data,
        b"long\n",
        "a name over 100 bytes survives (PAX)"
    );
    assert_eq!(keep["srv/suid"].mode & 0o7777, 0o4755, "setuid kept");
    assert_eq!(keep["srv/group-writable"].mode & 0o7777, 0o664);
    assert_eq!(keep["srv/sub/"].mode & 0o7777, 0o775);

    let norm = &layers[1];
    assert_eq!(norm["norm/suid"].mode & 0o7777, 0o4755, "special bits kept");
    assert_eq!(norm["norm/group-writable"].mode & 0o7777, 0o644);
    assert_eq!(norm["norm/sub/"].mode & 0o7777, 0o755);
    assert_eq!(norm["norm/keep.map"].mode & 0o7777, 0o644);
}

#[test]
fn per_platform_layers_and_platform_aliases() {
    let sandbox = Sandbox::new();
    sandbox.write("all/a.txt", "all\n");
    sandbox.write("arm/b.txt", "arm only\n");
    sandbox.write(
        "hoist.toml",
        &format!(
            r#"[image]
base = "{}"

[[layer]]
from = "arm"
to = "/arm"
platform = "linux/arm64"

[[layer]]
from = "all"
to = "/all"
"#,
            base()
        ),
    );
    // No platforms: every platform the base has.
    let layout = build(&sandbox, &[]);
    let images = layout.platforms("latest");
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].architecture(), "amd64");
    assert_eq!(images[0].layer_digests().len(), 2, "base + all");
    assert_eq!(images[1].architecture(), "arm64");
    assert_eq!(images[1].layer_digests().len(), 3, "base + arm + all");
    assert_eq!(images[0].layer_digests()[1], images[1].layer_digests()[2]);
    let history: Vec<_> = images[1].config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| str_at(h, "/created_by").to_owned())
        .collect();
    assert_eq!(history[1..], ["hoist: arm → /arm", "hoist: all → /all"]);

    // Aliases name the same platforms, so the same image.
    let digest = str_at(&layout.entry("latest"), "/digest").to_owned();
    let other = Sandbox::new();
    for (file, text) in [
        ("all/a.txt", "all\n"),
        ("arm/b.txt", "arm only\n"),
        (
            "hoist.toml",
            &fs::read_to_string(sandbox.path("hoist.toml")).unwrap(),
        ),
    ] {
        other.write(file, text);
    }
    let aliased = build(&other, &["--platform", "linux/x86_64,linux/aarch64"]);
    assert_eq!(str_at(&aliased.entry("latest"), "/digest"), digest);
    let variant = build(
        &other,
        &["--platform", "linux/amd64", "--platform", "linux/arm64/v8"],
    );
    assert_eq!(str_at(&variant.entry("latest"), "/digest"), digest);
}

#[test]
fn docker_archive_repo_tags_from_image_name() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("d.tar");
    sandbox.build_example(
        &format!("docker-archive:{}", archive.display()),
        &[
            "--platform",
            "linux/amd64",
            "--tag",
            "1.0",
            "--tag",
            "stable",
        ],
    );
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let manifest = tar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
        .map(|mut e| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            parse_json(&text)
        })
        .expect("manifest.json in the archive");
    assert_eq!(
        manifest[0]["RepoTags"],
        json!([
            "ghcr.io/acme/dashboard:1.0",
            "ghcr.io/acme/dashboard:stable"
        ]),
        "[image].name with each tag"
    );
    let inspected = parse_json(&tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", archive.display())],
    ));
    assert_eq!(inspected["Architecture"], "amd64");
}

#[test]
fn inspect_by_digest_and_source_date_epoch_zero() {
    let sandbox = Sandbox::new();
    let plain = last_line(&sandbox.build_example(&sandbox.oci("out"), &[])).to_owned();
    // Without SOURCE_DATE_EPOCH, the example (in hoist's checkout) is dated by the HEAD
    // commit's time, 0 outside git; the image records it and is the same image as one
    // built with that epoch given.
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(crate::common::example_config())
        .arg("--output")
        .arg(sandbox.oci("dated"));
    let dated = last_line(&stdout(&success(&mut command))).to_owned();
    let head_time = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct", "HEAD"])
        .current_dir(crate::common::example_dir())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "0".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    let recorded = Layout::open(sandbox.path("dated")).json(&dated)["annotations"]
        ["io.hoist.source-date-epoch"]
        .clone();
    assert_eq!(recorded, head_time.as_str(), "the HEAD commit's time");
    let mut command = sandbox.build();
    command
        .env("SOURCE_DATE_EPOCH", &head_time)
        .arg("--config")
        .arg(crate::common::example_config());
    assert_eq!(last_line(&stdout(&success(&mut command))), dated);

    let mut command = sandbox.hoist();
    command
        .arg("inspect")
        .arg("--json")
        .arg(format!("{}@{plain}", sandbox.oci("out")));
    let json = parse_json(&stdout(&success(&mut command)));
    assert_eq!(json["descriptor"]["digest"], plain.as_str());
    assert_eq!(json["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn healthcheck_durations_and_values_containing_equals() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "hoist.toml",
        &format!(
            r#"[image]
base = "{}"
platforms = ["linux/amd64"]

[config]
healthcheck = {{ test = ["CMD-SHELL", "true"], interval = "1m30s", timeout = "500ms", start_period = "2s", start_interval = "1s", retries = 2 }}
"#,
            base()
        ),
    );
    let layout = build(&sandbox, &["--env", "A=b=c", "--label", "k=v=w"]);
    let c = &layout.platforms("latest")[0].config["config"];
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "true"],
            "Interval": 90_000_000_000_u64,
            "Timeout": 500_000_000_u64,
            "StartPeriod": 2_000_000_000_u64,
            "StartInterval": 1_000_000_000_u64,
            "Retries": 2
        })
    );
    assert_eq!(c["Cmd"], json!(["sh"]), "the base's Cmd kept");
    assert_eq!(
        c["Env"].as_array().unwrap().last().unwrap(),
        "A=b=c",
        "split at the first ="
    );
    assert_eq!(c["Labels"]["k"], "v=w");
}

#[test]
fn image_tags_then_tag_flags() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"{}\"\nplatforms = [\"linux/amd64\"]\ntags = [\"t1\", \"t2\"]\n",
            base()
        ),
    );
    let layout = build(&sandbox, &["--tag", "t3"]);
    assert_eq!(layout.ref_names(), ["t1", "t2", "t3"]);
}

#[test]
fn remove_only_layer_and_single_owner_id() {
    let sandbox = Sandbox::new();
    sandbox.write("src/a.txt", "a\n");
    sandbox.write(
        "hoist.toml",
        &format!(
            r#"[image]
base = "{}"
platforms = ["linux/amd64"]

[[layer]]
to = "/"
remove = ["/etc/passwd", "/tmp"]

[[layer]]
from = "src"
to = "/opt/app"
owner = "7"
"#,
            base()
        ),
    );
    let layout = build(&sandbox, &[]);
    let image = &layout.platforms("latest")[0];
    let digests = image.layer_digests();
    assert_eq!(digests.len(), 3);
    let whiteouts = tar_map(&tar_entries(&gunzip(&layout.blob(&digests[1]))));
    for path in ["etc/.wh.passwd", ".wh.tmp"] {
        let entry = whiteouts
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing: {:?}", whiteouts.keys()));
        assert_eq!(entry.kind, tar::EntryType::Regular);
        assert!(entry.data.is_empty());
    }
    let files = tar_map(&tar_entries(&gunzip(&layout.blob(&digests[2]))));
    assert_eq!(
        (files["opt/"].uid, files["opt/"].gid),
        (0, 0),
        "parents root"
    );
    let app = &files["opt/app/"];
    assert_eq!(
        (app.uid, app.gid),
        (7, 7),
        "`to` itself owned, uid means uid:uid"
    );
    let a = &files["opt/app/a.txt"];
    assert_eq!((a.uid, a.gid), (7, 7));
}

#[test]
fn base_without_tag_by_digest_and_from_an_archive() {
    let sandbox = Sandbox::new();
    sandbox.write("src/a.txt", "a\n");
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
    );
    let base_dir = base_layout();
    // The layout holds one image: no tag needed. By digest: the index.json entry.
    for base in [
        format!("oci:{}", base_dir.display()),
        format!("oci:{}@{}", base_dir.display(), crate::common::BASE_INDEX),
    ] {
        let layout = build(&sandbox, &["--base", &base]);
        let index = layout.json(str_at(&layout.entry("latest"), "/digest"));
        assert_eq!(
            index["annotations"]["org.opencontainers.image.base.digest"],
            crate::common::BASE_INDEX,
            "{base}"
        );
        assert_eq!(
            index["annotations"]["org.opencontainers.image.base.name"],
            base.as_str()
        );
        let images = layout.platforms("latest");
        assert_eq!(images.len(), 2, "{base}: every platform of the base");
        assert_eq!(images[0].layer_digests().len(), 2);
        fs::remove_dir_all(sandbox.path("out")).unwrap();
    }

    // An oci-archive written by hoist is a base for the next build.
    let archive = sandbox.path("first.tar");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .args(["--base", &format!("oci:{}:1.0", base_dir.display())])
        .arg("--output")
        .arg(format!("oci-archive:{}", archive.display()));
    let first = last_line(&stdout(&success(&mut command))).to_owned();
    let layout = build(
        &sandbox,
        &["--base", &format!("oci-archive:{}", archive.display())],
    );
    let index = layout.json(str_at(&layout.entry("latest"), "/digest"));
    assert_eq!(
        index["annotations"]["org.opencontainers.image.base.digest"],
        first.as_str()
    );
    for image in layout.platforms("latest") {
        assert_eq!(image.layer_digests().len(), 3, "busybox + srv + srv again");
        assert_eq!(
            image.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            3
        );
    }
}
