//! `hoist verify`: the reproducibility matrix (two builds under different conditions
//! give one digest and verify each other), each single change named exactly in the
//! output, and verification of an image pushed to a real registry.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use filetime::FileTime;

use crate::common::tool_within;
use crate::common::{
    Sandbox, base_layout, copy_tree, digest_of, example_dir, files_under, last_line,
    normalise_modes, parse_json, stdout, success,
};
use crate::registry::{HOIST_LIMIT, Registry, ok};

/// The dashboard example with modes normalised (so a checkout's umask does not
/// matter), the base at a path inside the tree, and a symlink in the backend. Its
/// Python packages come from the lock and the wheelhouse as in the example.
const APP_TOML: &str = r#"[image]
name = "ghcr.io/acme/dashboard"
base = "oci:base:1.0"
platforms = ["linux/amd64", "linux/arm64"]

[[layer]]
from = "frontend/dist"
to = "/usr/share/nginx/html"
exclude = ["*.map", "node_modules/"]
modes = "normalize"

[[layer]]
python = { lock = "backend/requirements.lock", wheelhouse = "backend/wheels", version = "3.11", libc = "glibc-2.36", target = "/usr/local/lib/python3.11/site-packages" }

[[layer]]
from = "backend"
to = "/app"
owner = "1000:1000"
exclude = ["wheels/"]
modes = "normalize"

[config]
entrypoint = ["python3"]
cmd = ["/app/main.py"]
env = { PORT = "8080" }
workdir = "/app"
labels = { "org.opencontainers.image.title" = "dashboard" }
"#;

/// How a checkout of the app differs from another.
#[derive(Clone, Copy)]
pub struct Checkout {
    /// Create files in reverse order.
    pub reverse: bool,
    /// The mtime every source file gets.
    pub mtime: i64,
    /// Modes as a umask-077 checkout leaves them (0600 files, 0700 directories)
    /// instead of 0644/0755.
    pub private_modes: bool,
}

pub const PLAIN: Checkout = Checkout {
    reverse: false,
    mtime: 1_000_000,
    private_modes: false,
};

/// Writes the app's sources at `root` (hoist.toml, `base/`, `frontend/dist`,
/// `backend` with a `current -> main.py` symlink).
pub fn app_tree(root: &Path, checkout: Checkout) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("hoist.toml"), APP_TOML).unwrap();
    copy_tree(&base_layout(), &root.join("base"));
    let mut files = Vec::new();
    for dir in ["frontend/dist", "backend"] {
        for file in files_under(&example_dir().join(dir)) {
            files.push(Path::new(dir).join(file));
        }
    }
    if checkout.reverse {
        files.reverse();
    }
    for file in &files {
        let target = root.join(file);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(example_dir().join(file), &target).unwrap();
    }
    std::os::unix::fs::symlink("main.py", root.join("backend/current")).unwrap();
    for dir in ["frontend", "backend"] {
        normalise_modes(&root.join(dir));
        if checkout.private_modes {
            restrict_modes(&root.join(dir));
        }
        set_mtimes(&root.join(dir), FileTime::from_unix_time(checkout.mtime, 0));
    }
}

fn restrict_modes(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            restrict_modes(&entry.unwrap().path());
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
    } else if meta.is_file() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn set_mtimes(path: &Path, time: FileTime) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            set_mtimes(&entry.unwrap().path(), time);
        }
    }
    filetime::set_symlink_file_times(path, time, time).unwrap();
}

/// `hoist build --config <tree>/hoist.toml --output <out>`; returns the digest.
fn build(sandbox: &Sandbox, tree: &Path, out: &str) -> String {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(out);
    last_line(&stdout(&success(&mut command))).to_string()
}

/// `hoist verify --config <tree>/hoist.toml IMAGE [extra…]`, whatever its exit code.
fn verify(sandbox: &Sandbox, tree: &Path, image: &str, extra: &[&str]) -> Output {
    let mut command = sandbox.hoist();
    command
        .arg("verify")
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg(image)
        .args(extra);
    command.output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The user nobody runs the second build when the tests run as root; otherwise only
/// HOME, USER, LOGNAME and the umask can differ, which is what a different user
/// changes for a rootless build besides the uid.
const OTHER_UID: u32 = 65534;

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The reproducibility matrix: build one in `checkout-one` (files in order, mtime
/// 1e6, `--jobs 1`, UTC, C locale); build two elsewhere, deeper (files created in
/// reverse order, other mtimes, umask-077 modes in the checkout, `--jobs 4`, Tokyo
/// time, a German locale, another HOME/USER, umask 077, and, when the tests run as
/// root, another uid). Same digest, and each verifies with the other's checkout.
#[test]
fn builds_in_different_conditions_give_one_digest_and_verify() {
    let one = Sandbox::new();
    let tree_one = one.path("checkout-one");
    app_tree(&tree_one, PLAIN);
    let mut command = one.build();
    command
        .arg("--config")
        .arg(tree_one.join("hoist.toml"))
        .arg("--output")
        .arg(one.oci("out"))
        .args(["--jobs", "1"])
        .env("TZ", "UTC")
        .env("LANG", "C")
        .env("LC_ALL", "C");
    let first = last_line(&stdout(&success(&mut command))).to_string();

    let two = Sandbox::new();
    let home = two.path("home/builder");
    fs::create_dir_all(&home).unwrap();
    let tree_two = two.path("somewhere/much/deeper/checkout-two");
    app_tree(
        &tree_two,
        Checkout {
            reverse: true,
            mtime: 1_600_000_000,
            private_modes: true,
        },
    );
    let as_other_user = running_as_root();
    let mut command = if as_other_user {
        let status = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{OTHER_UID}:{OTHER_UID}"))
            .arg(two.root())
            .status()
            .unwrap();
        assert!(status.success(), "chown the second sandbox to nobody");
        let mut command = Command::new("setpriv");
        command.args([
            format!("--reuid={OTHER_UID}"),
            format!("--regid={OTHER_UID}"),
            "--clear-groups".into(),
        ]);
        command
    } else {
        Command::new("env")
    };
    command
        .current_dir(two.root())
        .args(["sh", "-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .arg("build")
        .arg("--cache-dir")
        .arg(two.cache())
        .arg("--config")
        .arg(tree_two.join("hoist.toml"))
        .arg("--output")
        .arg(two.oci("out"))
        .args(["--jobs", "4"])
        .env("CI", "true")
        .env("XDG_CACHE_HOME", two.path("xdg-cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env("TZ", "Asia/Tokyo")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("HOME", &home)
        .env("USER", "builder")
        .env("LOGNAME", "builder");
    let second = last_line(&stdout(&success(&mut command))).to_string();
    assert_eq!(
        first, second,
        "the same sources must give the same digest (second build as another uid: {as_other_user})"
    );

    // Each build verifies against the other checkout.
    let output = verify(&one, &tree_two, &two.oci("out"), &[]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    assert_eq!(
        last_line(&stdout(&output)),
        format!("verified oci:{}@{second}", two.path("out").display())
    );
    let output = verify(&two, &tree_one, &one.oci("out"), &["--jobs", "2"]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
}

/// One change to the sources, and the lines `hoist verify` must print for it, and
/// only it, among its file-level (`    /…`) and config-level lines.
struct Case {
    what: &'static str,
    change: fn(&Path),
    expected: fn(&Path) -> Vec<String>,
}

fn file_digest(path: &Path) -> String {
    digest_of(&fs::read(path).unwrap())
}

fn edit_toml(tree: &Path, from: &str, to: &str) {
    let path = tree.join("hoist.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} in the app's hoist.toml");
    fs::write(path, text.replace(from, to)).unwrap();
}

fn content_change(tree: &Path) {
    let path = tree.join("backend/requirements.in");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("flask==3.0.0\n");
    fs::write(path, text).unwrap();
}

fn content_expected(tree: &Path) -> Vec<String> {
    let new = tree.join("backend/requirements.in");
    let old = example_dir().join("backend/requirements.in");
    vec![format!(
        "/app/requirements.in: content {} ({} bytes) → {} ({} bytes)",
        file_digest(&old),
        fs::metadata(&old).unwrap().len(),
        file_digest(&new),
        fs::metadata(&new).unwrap().len()
    )]
}

const CASES: &[Case] = &[
    Case {
        what: "file content",
        change: content_change,
        expected: content_expected,
    },
    Case {
        what: "file mode",
        change: |tree| {
            fs::set_permissions(
                tree.join("backend/main.py"),
                fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        },
        expected: |_| vec!["/app/main.py: mode 0644 → 0755".into()],
    },
    Case {
        what: "symlink target",
        change: |tree| {
            let link = tree.join("backend/current");
            fs::remove_file(&link).unwrap();
            std::os::unix::fs::symlink("requirements.in", &link).unwrap();
            filetime::set_symlink_file_times(
                &link,
                FileTime::from_unix_time(1_000_000, 0),
                FileTime::from_unix_time(1_000_000, 0),
            )
            .unwrap();
        },
        expected: |_| vec![r#"/app/current: link target "main.py" → "requirements.in""#.into()],
    },
    Case {
        what: "env var",
        change: |tree| edit_toml(tree, r#"PORT = "8080""#, r#"PORT = "9090""#),
        expected: |_| vec![r#"env PORT: "8080" → "9090""#.into()],
    },
    Case {
        what: "label",
        change: |tree| {
            edit_toml(
                tree,
                r#""org.opencontainers.image.title" = "dashboard""#,
                r#""org.opencontainers.image.title" = "board""#,
            );
        },
        expected: |_| vec![r#"label org.opencontainers.image.title: "dashboard" → "board""#.into()],
    },
];

/// The lines naming a file or config difference, trimmed: file lines (`/…: …`) and
/// config field lines (indented under a `config:` line), without the `rootfs.diff_ids`
/// lines that follow from any layer change.
fn named_differences(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("    "))
        .map(str::trim)
        .filter(|line| !line.starts_with("rootfs.diff_ids["))
        .map(str::to_string)
        .collect()
}

#[test]
fn each_single_change_is_named_exactly() {
    let sandbox = Sandbox::new();
    let published_tree = sandbox.path("published");
    app_tree(&published_tree, PLAIN);
    let published = sandbox.oci("image");
    let digest = build(&sandbox, &published_tree, &published);

    for (i, case) in CASES.iter().enumerate() {
        let tree = sandbox.path(&format!("changed-{i}"));
        app_tree(&tree, PLAIN);
        (case.change)(&tree);
        let output = verify(&sandbox, &tree, &published, &[]);
        assert_eq!(code(&output), 1, "{}: {}", case.what, describe(&output));
        let text = stdout(&output);
        assert!(
            text.starts_with(&format!(
                "NOT verified: {published} is {digest}, but rebuilding"
            )),
            "{}: {text}",
            case.what
        );
        let expected = (case.expected)(&tree);
        // Both platforms carry the same layers and config edits: each difference is
        // named once per platform, and nothing else is.
        let mut twice = expected.clone();
        twice.extend(expected);
        assert_eq!(named_differences(&text), twice, "{}:\n{text}", case.what);

        // --json carries the same, as data.
        let output = verify(&sandbox, &tree, &published, &["--json"]);
        assert_eq!(code(&output), 1, "{}: {}", case.what, describe(&output));
        let json = parse_json(&stdout(&output));
        assert_eq!(json["verified"], false);
        assert_eq!(json["published"], digest.as_str());
        assert_eq!(json["inputs"]["source_date_epoch"], "0");
        assert_eq!(json["diff"]["platforms"][0]["status"], "changed");
    }
}

#[test]
fn verify_honours_the_recorded_epoch_and_compression() {
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    app_tree(&tree, PLAIN);
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("image"))
        .args(["--compression", "zstd", "--compression-level", "5"])
        .env("SOURCE_DATE_EPOCH", "1700000000");
    let digest = last_line(&stdout(&success(&mut command))).to_string();
    // No flag and no SOURCE_DATE_EPOCH here: verify takes them from the image.
    let output = verify(&sandbox, &tree, &sandbox.oci("image"), &["--json"]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let json = parse_json(&stdout(&output));
    assert_eq!(json["verified"], true);
    assert_eq!(json["rebuilt"], digest.as_str());
    assert_eq!(json["inputs"]["compression"], "zstd");
    assert_eq!(json["inputs"]["compression_level"], 5);
    assert_eq!(json["inputs"]["source_date_epoch"], "1700000000");
}

/// `skopeo copy --all` between two references of `registry`.
fn skopeo_copy(source: &str, destination: &str) {
    tool_within(
        HOIST_LIMIT,
        "skopeo",
        &[
            "copy",
            "--all",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            source,
            destination,
        ],
    );
}

/// The app built on a registry base and pushed with `hoist build --push-to`, then
/// verified from another machine's cache, against the registry image. The base's tag
/// is moved before verifying: verify must rebuild on the recorded base digest.
#[test]
fn verify_an_image_pushed_by_build_push() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    skopeo_copy(
        &format!("oci:{}:1.0", base_layout().display()),
        &registry.docker("library/busybase:1.0"),
    );
    let tree = sandbox.path("tree");
    app_tree(&tree, PLAIN);
    let base = registry.reference("library/busybase:1.0");
    edit_toml(
        &tree,
        r#"base = "oci:base:1.0""#,
        &format!(r#"base = "{base}""#),
    );
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--push-to")
        .arg(registry.reference("acme/app:1.0"));
    let pushed = last_line(&stdout(&ok(&mut command, &registry))).to_string();
    // The base tag now names another image (the app itself).
    skopeo_copy(
        &registry.docker("acme/app:1.0"),
        &registry.docker("library/busybase:1.0"),
    );
    let puts_before = manifest_puts(&registry);

    // A fresh cache: everything the verifier knows comes from the registry.
    let verifier = Sandbox::new();
    let output = verify(&verifier, &tree, &registry.reference("acme/app:1.0"), &[]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    assert_eq!(
        last_line(&stdout(&output)),
        format!("verified {}@{pushed}", registry.reference("acme/app"))
    );
    assert_eq!(
        manifest_puts(&registry),
        puts_before,
        "verify must never push"
    );

    // A change in the checkout is caught against the registry image too.
    content_change(&tree);
    let output = verify(&verifier, &tree, &registry.reference("acme/app:1.0"), &[]);
    assert_eq!(code(&output), 1, "{}", describe(&output));
    let expected = content_expected(&tree);
    let names = named_differences(&stdout(&output));
    assert_eq!(names, [expected.clone(), expected].concat());
}

fn manifest_puts(registry: &Registry) -> usize {
    registry
        .requests()
        .iter()
        .filter(|r| r.manifest_put().is_some())
        .count()
}

#[test]
fn verify_reports_what_it_cannot_do_with_exit_2() {
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    app_tree(&tree, PLAIN);
    let output = verify(&sandbox, &tree, &sandbox.oci("missing"), &[]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        err.starts_with("error: ") && err.contains(&sandbox.path("missing").display().to_string()),
        "{err}"
    );
}

/// Used by `diff.rs`: the app tree's path in a sandbox.
pub fn app(sandbox: &Sandbox, name: &str) -> PathBuf {
    let tree = sandbox.path(name);
    app_tree(&tree, PLAIN);
    tree
}

/// An image whose index says another hoist built it: verify says so on stderr, and its
/// diff names the version annotation and shows everything below the index equal.
#[test]
fn another_hoist_version_is_named() {
    let sandbox = Sandbox::new();
    let tree = app(&sandbox, "tree");
    let built = build(&sandbox, &tree, &sandbox.oci("image"));
    let layout = sandbox.path("image");
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(&built)).unwrap()).unwrap();
    index["annotations"]["io.hoist.version"] = "0.0.1".into();
    let bytes = serde_json::to_vec(&index).unwrap();
    let older = digest_of(&bytes);
    fs::write(blob(&older), &bytes).unwrap();
    let index_json = fs::read_to_string(layout.join("index.json")).unwrap();
    fs::write(
        layout.join("index.json"),
        index_json.replace(&built, &older),
    )
    .unwrap();

    let output = verify(&sandbox, &tree, &sandbox.oci("image"), &[]);
    assert_eq!(code(&output), 1, "{}", describe(&output));
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        err.contains(&format!(
            "was built by hoist 0.0.1, this is hoist {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{err}"
    );
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "index:".to_string(),
            format!(
                "  annotation io.hoist.version: \"0.0.1\" → \"{}\"",
                env!("CARGO_PKG_VERSION")
            ),
            format!(
                "platform linux/amd64: equal ({})",
                index["manifests"][0]["digest"].as_str().unwrap()
            ),
            format!(
                "platform linux/arm64/v8: equal ({})",
                index["manifests"][1]["digest"].as_str().unwrap()
            ),
        ],
        "{text}"
    );
}
