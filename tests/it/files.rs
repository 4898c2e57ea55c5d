//! Files, not only directories: `[[layer]] files = [{ from, to, mode }]` and a
//! single-file `from`, judged by `umoci unpack` (files at their paths, modes right) and
//! by reading the layer tars (parents 0755 root, owners, mtimes); conflicts named; the
//! same digest on every build, SOURCE_DATE_EPOCH respected.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{
    Layout, Sandbox, base_layout, failure, gunzip, last_line, stderr, stdout, str_at, success,
    tar_entries, tar_map, umoci_unpack,
};

const TOML: &str = r#"[image]
base = "oci:BASE:1.0"
platforms = ["linux/amd64"]
tags = ["files"]

[[layer]]
from = "site"
to = "/srv/www"

[[layer]]
owner = "101:102"
files = [
  { from = "start.sh", to = "/usr/local/bin/start", mode = "0755" },
  { from = "deploy/nginx.conf", to = "/etc/nginx/" },
  { from = "deploy/supervisord.conf", to = "/etc/supervisor/conf.d/supervisord.conf", mode = "0600" },
]

[[layer]]
from = "config/app.ini"
to = "/etc/app/app.ini"
"#;

/// A project: a site directory, a 0644 start script, two config files and a
/// single-file layer source.
fn project(sandbox: &Sandbox) {
    fs::write(
        sandbox.path("hoist.toml"),
        TOML.replace("BASE", base_layout().to_str().unwrap()),
    )
    .unwrap();
    for (path, text, mode) in [
        ("site/index.html", "<h1>hi</h1>\n", 0o644),
        (
            "start.sh",
            "#!/bin/sh\nexec nginx -g 'daemon off;'\n",
            0o644,
        ),
        ("deploy/nginx.conf", "events {}\n", 0o644),
        (
            "deploy/supervisord.conf",
            "[supervisord]\nnodaemon=true\n",
            0o644,
        ),
        ("config/app.ini", "[app]\nport = 8080\n", 0o640),
    ] {
        let file = sandbox.write(path, text);
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The new layers' entries (the base has one layer).
fn new_layers(layout: &Layout, tag: &str) -> Vec<Vec<crate::common::TarEntry>> {
    let image = &layout.platforms(tag)[0];
    image.layer_digests()[1..]
        .iter()
        .map(|digest| tar_entries(&gunzip(&layout.blob(digest))))
        .collect()
}

#[test]
fn files_land_at_their_paths_with_their_modes() {
    let sandbox = Sandbox::new();
    project(&sandbox);
    let output = success(sandbox.build().arg("--output").arg(sandbox.oci("out")));

    // Progress names every layer distinctly, numbered by its position in the image
    // (the base's one layer is 1), as `hoist inspect` numbers them.
    let err = stderr(&output);
    let inspected = stdout(&success(
        sandbox.hoist().arg("inspect").arg(sandbox.oci("out")),
    ));
    for (n, line) in [
        "layer 2 (site → /srv/www): sha256:",
        "layer 3 (start.sh → /usr/local/bin/start, deploy/nginx.conf → /etc/nginx/nginx.conf, deploy/supervisord.conf → /etc/supervisor/conf.d/supervisord.conf): sha256:",
        "layer 4 (config/app.ini → /etc/app/app.ini): sha256:",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(err.contains(line), "expected {line:?} in:\n{err}");
        let digest = err
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|d| d.split_whitespace().next())
            .expect("the layer's digest");
        let row = format!("{}  {digest}", n + 2);
        assert!(
            inspected.lines().any(|l| l.trim_start().starts_with(&row)),
            "inspect numbers {digest} as {}:\n{inspected}",
            n + 2
        );
    }

    // The judge: umoci's rootfs.
    let rootfs = umoci_unpack(&sandbox.path("out"), "files", &sandbox.path("bundle"));
    for (path, text, mode) in [
        ("srv/www/index.html", "<h1>hi</h1>\n", 0o644),
        (
            "usr/local/bin/start",
            "#!/bin/sh\nexec nginx -g 'daemon off;'\n",
            0o755,
        ),
        ("etc/nginx/nginx.conf", "events {}\n", 0o644),
        (
            "etc/supervisor/conf.d/supervisord.conf",
            "[supervisord]\nnodaemon=true\n",
            0o600,
        ),
        ("etc/app/app.ini", "[app]\nport = 8080\n", 0o640),
    ] {
        let file = rootfs.join(path);
        assert_eq!(fs::read_to_string(&file).unwrap(), text, "{path}");
        assert_eq!(mode_of(&file), mode, "{path}: mode");
    }
    for dir in [
        "usr/local/bin",
        "etc/nginx",
        "etc/supervisor/conf.d",
        "etc/app",
    ] {
        assert_eq!(mode_of(&rootfs.join(dir)), 0o755, "{dir}: mode");
    }
    // The source script is left as it was.
    assert_eq!(mode_of(&sandbox.path("start.sh")), 0o644);

    // The tars: parents 0755 root-owned, files owned by the layer's owner.
    let layout = Layout::open(sandbox.path("out"));
    let layers = new_layers(&layout, "files");
    assert_eq!(layers.len(), 3);
    let files = tar_map(&layers[1]);
    let summary: Vec<(&str, u32, u64, u64)> = layers[1]
        .iter()
        .map(|e| (e.path.as_str(), e.mode & 0o7777, e.uid, e.gid))
        .collect();
    assert_eq!(
        summary,
        [
            ("etc/", 0o755, 0, 0),
            ("etc/nginx/", 0o755, 0, 0),
            ("etc/nginx/nginx.conf", 0o644, 101, 102),
            ("etc/supervisor/", 0o755, 0, 0),
            ("etc/supervisor/conf.d/", 0o755, 0, 0),
            ("etc/supervisor/conf.d/supervisord.conf", 0o600, 101, 102),
            ("usr/", 0o755, 0, 0),
            ("usr/local/", 0o755, 0, 0),
            ("usr/local/bin/", 0o755, 0, 0),
            ("usr/local/bin/start", 0o755, 101, 102),
        ]
    );
    assert_eq!(files["etc/nginx/nginx.conf"].kind, tar::EntryType::Regular);
    let single: Vec<&str> = layers[2].iter().map(|e| e.path.as_str()).collect();
    assert_eq!(single, ["etc/", "etc/app/", "etc/app/app.ini"]);

    // History names each layer by what it copied.
    let config = &layout.platforms("files")[0].config;
    let history: Vec<&str> = config["history"].as_array().unwrap()[1..]
        .iter()
        .map(|h| str_at(h, "/created_by"))
        .collect();
    assert_eq!(
        history,
        [
            "hoist: site → /srv/www",
            "hoist: start.sh → /usr/local/bin/start, deploy/nginx.conf → /etc/nginx/nginx.conf, deploy/supervisord.conf → /etc/supervisor/conf.d/supervisord.conf",
            "hoist: config/app.ini → /etc/app/app.ini",
        ]
    );

    // --json names the files layer by its sources.
    let json = stdout(&success(
        sandbox
            .build()
            .arg("--json")
            .arg("--output")
            .arg(sandbox.oci("again")),
    ));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let text = json.to_string();
    assert!(
        text.contains("\"files: start.sh, deploy/nginx.conf, deploy/supervisord.conf\""),
        "{text}"
    );
}

#[test]
fn two_files_on_one_path_are_an_error_naming_both() {
    let sandbox = Sandbox::new();
    project(&sandbox);
    fs::write(
        sandbox.path("hoist.toml"),
        "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"site\"\nto = \"/srv\"\n[[layer]]\nfiles = [\n  { from = \"deploy/nginx.conf\", to = \"/etc/nginx/nginx.conf\" },\n  { from = \"start.sh\", to = \"/usr/bin/start\" },\n  { from = \"deploy/supervisord.conf\", to = \"/etc/nginx//nginx.conf\" },\n]\n",
    )
    .unwrap();
    let err = failure(sandbox.build().arg("--output").arg(sandbox.oci("out")));
    assert!(err.contains("layer[1].files[2].to"), "{err}");
    assert!(
        err.contains(
            "/etc/nginx/nginx.conf is also the destination of layer[1].files[0] (deploy/nginx.conf)"
        ),
        "{err}"
    );
    assert!(err.contains("deploy/supervisord.conf"), "{err}");
    assert!(!sandbox.path("out").exists(), "nothing written");

    // A listed file where the directory layer already has an entry: both named.
    fs::write(
        sandbox.path("hoist.toml"),
        "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"site\"\nto = \"/srv\"\nfiles = [{ from = \"start.sh\", to = \"/srv/index.html\" }]\n",
    )
    .unwrap();
    let err = failure(sandbox.build().arg("--output").arg(sandbox.oci("out")));
    assert!(
        err.contains("layer 1 (site → /srv, start.sh → /srv/index.html): /srv/index.html is in the layer twice"),
        "{err}"
    );
    assert!(err.contains("site/index.html"), "{err}");
    assert!(err.contains("start.sh"), "{err}");

    // A directory in `files`, a bad mode: the layer and key are named.
    for (entry, key, detail) in [
        (
            "{ from = \"deploy\", to = \"/etc/x\" }",
            "layer[0].files[0].from",
            "is a directory",
        ),
        (
            "{ from = \"start.sh\", to = \"/s\", mode = \"75x\" }",
            "layer[0].files[0].mode",
            "octal",
        ),
        (
            "{ from = \"start.sh\", to = \"s\" }",
            "layer[0].files[0].to",
            "absolute",
        ),
    ] {
        fs::write(
            sandbox.path("hoist.toml"),
            format!("[image]\nbase = \"scratch\"\n[[layer]]\nfiles = [{entry}]\n"),
        )
        .unwrap();
        let err = failure(sandbox.build().arg("--output").arg(sandbox.oci("out")));
        assert!(err.contains(key) && err.contains(detail), "{key}: {err}");
    }
}

#[test]
fn files_layers_are_reproducible_and_follow_source_date_epoch() {
    let first = Sandbox::new();
    project(&first);
    let second = Sandbox::new();
    // The same project written in another order, at other times, with another umask
    // for the file whose mode the config sets.
    fs::create_dir_all(second.path("deploy")).unwrap();
    project(&second);
    fs::set_permissions(second.path("start.sh"), fs::Permissions::from_mode(0o600)).unwrap();
    filetime::set_file_mtime(
        second.path("deploy/nginx.conf"),
        filetime::FileTime::from_unix_time(2_000_000_000, 0),
    )
    .unwrap();

    let digest = |sandbox: &Sandbox, epoch: Option<&str>| {
        let mut command = sandbox.build();
        command.arg("--output").arg(sandbox.oci("out"));
        if let Some(epoch) = epoch {
            command.env("SOURCE_DATE_EPOCH", epoch);
        }
        last_line(&stdout(&success(&mut command))).to_owned()
    };
    let one = digest(&first, None);
    assert_eq!(one, digest(&second, None), "same inputs, same digest");
    // A cached rebuild gives it again.
    assert_eq!(one, digest(&first, None));

    let dated = digest(&first, Some("1700000000"));
    assert_ne!(dated, one);
    assert_eq!(dated, digest(&second, Some("1700000000")));
    let layout = Layout::open(first.path("out"));
    for layer in new_layers(&layout, "files") {
        for entry in layer {
            assert_eq!(entry.mtime, 1_700_000_000, "{}", entry.path);
        }
    }

    // `hoist verify` rebuilds the files layers from the other checkout...
    let verify = |config: &Sandbox| {
        let mut command = first.hoist();
        command
            .arg("verify")
            .arg("--cache-dir")
            .arg(first.cache())
            .arg("--config")
            .arg(config.path("hoist.toml"))
            .arg(format!("{}:files", first.oci("out")));
        command.output().unwrap()
    };
    let output = verify(&second);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("verified"), "{}", stdout(&output));
    // ...and a changed mode is a different image, down to the file.
    let toml = fs::read_to_string(second.path("hoist.toml")).unwrap();
    fs::write(
        second.path("hoist.toml"),
        toml.replace("mode = \"0755\"", "mode = \"0750\""),
    )
    .unwrap();
    let output = verify(&second);
    assert!(!output.status.success());
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert!(said.contains("usr/local/bin/start"), "{said}");
}
