//! Python dependencies as layers (issue 18): a lock file in, installed packages out
//! for two platforms, judged by the host's CPython 3.11 (imports and a call from the
//! unpacked linux/amd64 image, `pip list --path`), `file` (the arm64 extension module
//! is an aarch64 ELF) and the layout itself (the shared layer has one digest in both
//! manifests). Real wheels come from `target/wheels` (fetched by `.ci/run`, pinned by
//! sha256); the edge cases use small wheels the tests write with Python's `zipfile`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use crate::common::{Layout, Sandbox, failure, repo, require_tool, sha256_hex, stdout, success};

const ORJSON_X86: &str =
    "orjson-3.10.12-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
const ORJSON_ARM: &str =
    "orjson-3.10.12-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl";
const PURE: [&str; 6] = [
    "six-1.17.0-py2.py3-none-any.whl",
    "idna-3.10-py3-none-any.whl",
    "typing_extensions-4.12.2-py3-none-any.whl",
    "click-8.1.7-py3-none-any.whl",
    "h11-0.14.0-py3-none-any.whl",
    "uvicorn-0.32.1-py3-none-any.whl",
];
const SITE: &str = "opt/venv/lib/python3.11/site-packages";

/// `target/wheels`, made by `.ci/run`.
pub(crate) fn wheels() -> PathBuf {
    let dir = repo().join("target/wheels");
    assert!(
        dir.join(ORJSON_ARM).is_file(),
        "{} is missing wheels: run .ci/run (it fetches them, pinned by sha256)",
        dir.display()
    );
    dir
}

pub(crate) fn hash_of(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap())
}

/// A requirements lock (as `uv pip compile --generate-hashes` writes it) for the
/// real wheels: `name==version` and one `--hash` per wheel file.
pub(crate) fn real_lock() -> String {
    let dir = wheels();
    let mut lock = String::from("# uv pip compile --universal --generate-hashes\n");
    for file in PURE.iter().chain(&[ORJSON_X86]) {
        let mut parts = file.split('-');
        let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
        let marker = if name == "typing_extensions" {
            " ; python_version < \"3.11\""
        } else {
            ""
        };
        let _ = write!(
            lock,
            "{name}=={version}{marker} \\\n    --hash=sha256:{}",
            hash_of(&dir.join(file))
        );
        if name == "orjson" {
            let _ = write!(
                lock,
                " \\\n    --hash=sha256:{}",
                hash_of(&dir.join(ORJSON_ARM))
            );
        }
        lock.push_str("\n    # via app\n");
    }
    lock
}

/// A project in the sandbox: the lock `lock_name`, a wheelhouse holding `files` from
/// `target/wheels` (none, and no `wheelhouse` key, for `None`), and a hoist.toml for
/// amd64 and arm64 (`python` adds keys).
pub(crate) fn project_with(
    sandbox: &Sandbox,
    lock_name: &str,
    lock: &str,
    files: Option<&[&str]>,
    python: &str,
) {
    sandbox.write(lock_name, lock);
    if let Some(files) = files {
        fs::create_dir_all(sandbox.path("wheels")).unwrap();
        for file in files {
            fs::copy(wheels().join(file), sandbox.path("wheels").join(file)).unwrap();
        }
    }
    let wheelhouse = if files.is_some() {
        ", wheelhouse = \"wheels\""
    } else {
        ""
    };
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"{lock_name}\"{wheelhouse}, version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\"{python} }}\n"
        ),
    );
}

fn project(sandbox: &Sandbox, lock: &str, files: &[&str], python: &str) {
    project_with(sandbox, "requirements.lock", lock, Some(files), python);
}

pub(crate) fn all_real() -> Vec<&'static str> {
    PURE.iter()
        .copied()
        .chain([ORJSON_X86, ORJSON_ARM])
        .collect()
}

/// Builds to `<sandbox>/<out>:1`; stdout (the digest) and stderr (progress).
pub(crate) fn build(sandbox: &Sandbox, out: &str, extra: &[&str]) -> (String, String) {
    let output = success(
        sandbox
            .build()
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci(out)))
            .args(extra),
    );
    (stdout(&output), crate::common::stderr(&output))
}

/// Each platform's layer digests, by architecture.
pub(crate) fn layers(sandbox: &Sandbox, out: &str) -> Vec<(String, Vec<String>)> {
    Layout::open(sandbox.path(out))
        .platforms("1")
        .iter()
        .map(|p| (p.architecture().to_owned(), p.layer_digests()))
        .collect()
}

/// Unpacks the `arch` image's layers into `<sandbox>/<dir>` with GNU tar.
pub(crate) fn unpack(sandbox: &Sandbox, out: &str, arch: &str, dir: &str) -> PathBuf {
    let layout = Layout::open(sandbox.path(out));
    let root = sandbox.path(dir);
    fs::create_dir_all(&root).unwrap();
    let (_, digests) = layers(sandbox, out)
        .into_iter()
        .find(|(a, _)| a == arch)
        .unwrap();
    for digest in digests {
        let status = Std::new("tar")
            .arg("-xzf")
            .arg(layout.blob_path(&digest))
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
    }
    root
}

/// `python3 -c CODE` with `site` first on the path; stdout. The wheels are cp311: the
/// host's `python3` must be CPython 3.11 (Debian bookworm's is).
pub(crate) fn python(site: &Path, code: &str) -> String {
    let version = Std::new("python3")
        .args([
            "-c",
            "import sys; print(sys.implementation.name, *sys.version_info[:2])",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "cpython 3 11",
        "the judge is the host's CPython 3.11"
    );
    let output = Std::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys; sys.path.insert(0, {:?}); {code}",
            site.display().to_string()
        ))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `pip list --format freeze --path SITE`: the distributions pip finds installed
/// there, one `name==version` a line. The pip of target/venv (made by .ci/run):
/// Debian's python3 has no pip module.
pub(crate) fn pip_list(site: &Path) -> String {
    let pip = repo().join("target/venv/bin/pip");
    assert!(pip.is_file(), "{} is missing: run .ci/run", pip.display());
    let listed = Std::new(pip)
        .args([
            "list",
            "--disable-pip-version-check",
            "--format",
            "freeze",
            "--path",
        ])
        .arg(site)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    String::from_utf8(listed.stdout).unwrap()
}

/// Every path under `root` (not following links).
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn a_lock_installs_for_two_platforms_with_one_shared_pure_layer() {
    require_tool("file");
    let sandbox = Sandbox::new();
    project(
        &sandbox,
        &real_lock(),
        &all_real(),
        ", venv = \"/opt/venv\"",
    );
    build(&sandbox, "out", &[]);

    // One layer both manifests share (the venv and the pure wheels), one of its own each.
    let images = layers(&sandbox, "out");
    assert_eq!(images.len(), 2);
    let (amd, arm) = (&images[0].1, &images[1].1);
    assert_eq!((amd.len(), arm.len()), (2, 2), "{images:?}");
    assert_eq!(amd[0], arm[0], "the pure layer is shared");
    assert_ne!(amd[1], arm[1], "each platform has its own native layer");

    // The host's CPython imports from the amd64 image and calls into the native module.
    let root = unpack(&sandbox, "out", "amd64", "amd64");
    let site = root.join(SITE);
    let out = python(
        &site,
        "import orjson, six, uvicorn, click, h11, idna; print(orjson.dumps({'a': [1, 2]}).decode(), uvicorn.__version__, orjson.__file__)",
    );
    assert!(out.starts_with("{\"a\":[1,2]} 0.32.1 "), "{out}");
    assert!(
        out.contains(&site.display().to_string()),
        "imported from the image: {out}"
    );
    // typing_extensions' marker (python_version < "3.11") leaves it out on 3.11.
    assert!(!site.join("typing_extensions.py").exists());

    // pip reads the installed distributions.
    let listed = pip_list(&site);
    for pinned in [
        "click==8.1.7",
        "h11==0.14.0",
        "idna==3.10",
        "orjson==3.10.12",
        "six==1.17.0",
        "uvicorn==0.32.1",
    ] {
        assert!(
            listed.lines().any(|l| l == pinned),
            "{pinned} in:\n{listed}"
        );
    }

    // The console script runs uvicorn with the venv's interpreter.
    let script = fs::read_to_string(root.join("opt/venv/bin/uvicorn")).unwrap();
    assert!(script.starts_with("#!/opt/venv/bin/python\n"), "{script}");
    let version = Std::new("python3")
        .arg(root.join("opt/venv/bin/uvicorn"))
        .arg("--version")
        .env("PYTHONPATH", &site)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("Running uvicorn 0.32.1"),
        "{version:?}"
    );
    assert_eq!(
        fs::read_link(root.join("opt/venv/bin/python")).unwrap(),
        Path::new("/usr/local/bin/python3.11")
    );
    let cfg = fs::read_to_string(root.join("opt/venv/pyvenv.cfg")).unwrap();
    assert!(
        cfg.contains("home = /usr/local/bin\n") && cfg.contains("version = 3.11"),
        "{cfg}"
    );

    // Installed as an installer would, and nothing of the build host's.
    let record = fs::read_to_string(site.join("uvicorn-0.32.1.dist-info/RECORD")).unwrap();
    assert!(
        record
            .lines()
            .any(|l| l.starts_with("../../../bin/uvicorn,sha256=")),
        "{record}"
    );
    assert_eq!(
        fs::read_to_string(site.join("uvicorn-0.32.1.dist-info/INSTALLER")).unwrap(),
        "hoist\n"
    );
    let host = sandbox.root().display().to_string();
    let mut files = 0;
    for path in tree(&root) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            Path::new(&name).extension().is_none_or(|e| e != "pyc") && name != "direct_url.json",
            "{}",
            path.display()
        );
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_file() {
            files += 1;
            let bytes = fs::read(&path).unwrap();
            assert!(
                !bytes.windows(host.len()).any(|w| w == host.as_bytes()),
                "host path in {}",
                path.display()
            );
        }
    }
    assert!(files > 100, "{files} files");

    // The arm64 image's extension module is an aarch64 ELF.
    let arm_root = unpack(&sandbox, "out", "arm64", "arm64");
    let so = fs::read_dir(arm_root.join(SITE).join("orjson"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "so"))
        .unwrap();
    let described = crate::common::tool("file", &[so.as_os_str()]);
    assert!(
        described.contains("ELF 64-bit") && described.contains("aarch64"),
        "{described}"
    );
}

#[test]
fn python_layers_are_reproducible_and_cached() {
    let sandbox = Sandbox::new();
    project(&sandbox, &real_lock(), &all_real(), "");
    let first = build(&sandbox, "a", &[]);
    let again = build(&sandbox, "b", &[]);
    let uncached = build(&sandbox, "c", &["--no-cache"]);
    assert_eq!(first.0, again.0);
    assert_eq!(first.0, uncached.0);
    // An unchanged lock: every python layer is a cache hit (shared, amd64, arm64).
    let hits = again
        .1
        .lines()
        .filter(|l| l.contains("python requirements.lock") && l.ends_with(", cached)"))
        .count();
    assert_eq!(hits, 3, "{}", again.1);
    assert!(!first.1.contains("cached"), "{}", first.1);
    // Without venv: the interpreter's own site-packages, scripts in /usr/local/bin.
    let root = unpack(&sandbox, "a", "amd64", "root");
    assert!(
        root.join("usr/local/lib/python3.11/site-packages/orjson")
            .is_dir()
    );
    let script = fs::read_to_string(root.join("usr/local/bin/uvicorn")).unwrap();
    assert!(
        script.starts_with("#!/usr/local/bin/python3.11\n"),
        "{script}"
    );
}

/// Builds the sandbox's project, expecting a refusal before any output; stderr.
pub(crate) fn refused(sandbox: &Sandbox) -> String {
    let err = failure(
        sandbox
            .build()
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("out"))),
    );
    assert!(!sandbox.path("out").exists(), "nothing written:\n{err}");
    err
}

/// A layer after a Python layer is named by its `[[layer]]` (`layer[1]`), not by its
/// place among the built layers: the Python table became three (one shared, one per
/// platform for orjson) before the platforms were checked, and the error said
/// `layer[4].platform`.
#[test]
fn a_layer_after_a_python_layer_is_named_by_its_table() {
    let sandbox = Sandbox::new();
    project(&sandbox, &real_lock(), &all_real(), "");
    sandbox.write("app/main.py", "print('app')\n");
    let config = fs::read_to_string(sandbox.path("hoist.toml")).unwrap();
    sandbox.write(
        "hoist.toml",
        &format!(
            "{config}\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\nplatform = \"linux/s390x\"\n"
        ),
    );
    let err = refused(&sandbox);
    assert!(
        err.contains("layer[1].platform: the base scratch has no platform linux/s390x"),
        "{err}"
    );
}

#[test]
fn bad_locks_and_missing_wheels_are_refused_by_name_before_any_output() {
    let lock = real_lock();

    // No aarch64 wheel in the wheelhouse: named with its platform, and only that.
    let sandbox = Sandbox::new();
    let mut x86_only = all_real();
    x86_only.retain(|f| *f != ORJSON_ARM);
    project(&sandbox, &lock, &x86_only, "");
    let err = refused(&sandbox);
    assert!(err.contains("orjson==3.10.12 for linux/arm64"), "{err}");
    assert!(!err.contains("for linux/amd64"), "{err}");

    // A tampered wheel matches no locked hash: the package and the file are named.
    let sandbox = Sandbox::new();
    project(&sandbox, &lock, &all_real(), "");
    let six = sandbox.path("wheels").join(PURE[0]);
    let mut bytes = fs::read(&six).unwrap();
    bytes.push(b'\n');
    fs::write(&six, &bytes).unwrap();
    let err = refused(&sandbox);
    assert!(
        err.contains("six==1.17.0 for linux/amd64") && err.contains("six==1.17.0 for linux/arm64"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} has sha256 {}", PURE[0], sha256_hex(&bytes))),
        "{err}"
    );

    // Unpinned and unhashed lines: the package and the line.
    for (line, detail) in [
        (
            "click>=8.0 --hash=sha256:ae74fb96c20a0277a1d615f1e4d73c8414f5a98db8b799a7931d1582f3390c28",
            "is not pinned",
        ),
        ("click==8.1.7", "no --hash"),
    ] {
        let sandbox = Sandbox::new();
        let text = format!("{lock}{line}\n");
        let number = text.lines().count();
        project(&sandbox, &text, &all_real(), "");
        let err = refused(&sandbox);
        assert!(
            err.contains(&format!("requirements.lock:{number}: click: ")),
            "{err}"
        );
        assert!(err.contains(detail), "{err}");
    }

    // An sdist-only package and a missing platform wheel, in one error (a pylock.toml).
    let sandbox = Sandbox::new();
    let orjson = hash_of(&wheels().join(ORJSON_X86));
    let six = hash_of(&wheels().join(PURE[0]));
    let pylock = format!(
        "lock-version = \"1.0\"\ncreated-by = \"test\"\n\n[[packages]]\nname = \"psycopg2\"\nversion = \"2.9.10\"\nsdist = {{ name = \"psycopg2-2.9.10.tar.gz\", hashes = {{ sha256 = \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\" }} }}\n\n[[packages]]\nname = \"orjson\"\nversion = \"3.10.12\"\nwheels = [{{ name = \"{ORJSON_X86}\", hashes = {{ sha256 = \"{orjson}\" }} }}]\n\n[[packages]]\nname = \"six\"\nversion = \"1.17.0\"\nwheels = [{{ name = \"{}\", hashes = {{ sha256 = \"{six}\" }} }}]\n",
        PURE[0]
    );
    project_with(
        &sandbox,
        "pylock.toml",
        &pylock,
        Some(&[ORJSON_X86, PURE[0]]),
        "",
    );
    let err = refused(&sandbox);
    for expected in [
        "psycopg2==2.9.10 for linux/amd64",
        "psycopg2==2.9.10 for linux/arm64",
        "only a source distribution",
        "orjson==3.10.12 for linux/arm64",
    ] {
        assert!(err.contains(expected), "{expected} in:\n{err}");
    }
    assert!(!err.contains("six=="), "{err}");
}

/// Writes a wheel with Python's `zipfile`: `files` (name → text), RECORD computed,
/// except that the names in `lie` get a wrong hash and those in `unrecorded` none.
const MAKE_WHEEL: &str = r#"
import base64, hashlib, json, sys, zipfile
out, spec = sys.argv[1], json.loads(sys.argv[2])
dist = spec["dist_info"]
rows = []
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in spec["files"].items():
        data = text.encode()
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100755 if name in spec.get("exec", []) else 0o100644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)
        if name in spec.get("unrecorded", []):
            continue
        if name in spec.get("lie", []):
            data = data + b"x"
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(text.encode())}")
    rows.append(f"{dist}/RECORD,,")
    z.writestr(zipfile.ZipInfo(f"{dist}/RECORD", (1980, 1, 1, 0, 0, 0)), "\n".join(rows) + "\n")
"#;

/// A synthetic pure wheel `{name}-1.0-py3-none-any.whl` in `<sandbox>/wheels` with
/// `files` besides its metadata; `extra` adds keys to the spec (`lie`, `unrecorded`,
/// `exec`). Returns its sha256.
pub(crate) fn make_wheel(
    sandbox: &Sandbox,
    name: &str,
    files: &[(&str, &str)],
    extra: &str,
) -> String {
    let dist = format!("{name}-1.0.dist-info");
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    all.push((
        format!("{dist}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"),
    ));
    all.push((
        format!("{dist}/WHEEL"),
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n".into(),
    ));
    let files: serde_json::Map<String, serde_json::Value> =
        all.into_iter().map(|(n, t)| (n, t.into())).collect();
    let spec = format!(
        "{{\"dist_info\": {:?}, \"files\": {}{extra}}}",
        dist,
        serde_json::Value::Object(files)
    );
    fs::create_dir_all(sandbox.path("wheels")).unwrap();
    let path = sandbox.path(&format!("wheels/{name}-1.0-py3-none-any.whl"));
    let status = Std::new("python3")
        .arg("-c")
        .arg(MAKE_WHEEL)
        .arg(&path)
        .arg(&spec)
        .status()
        .unwrap();
    assert!(status.success(), "{spec}");
    hash_of(&path)
}

/// The files of the `arch` image's layers: path → (mode, content).
pub(crate) fn image_files(
    sandbox: &Sandbox,
    out: &str,
    arch: &str,
) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    image_entries(sandbox, out, arch)
        .into_iter()
        .map(|(path, entry)| (path, (entry.mode, entry.data)))
        .collect()
}

/// The entries of the `arch` image's layers by path, the upper layer's where several
/// hold one.
pub(crate) fn image_entries(
    sandbox: &Sandbox,
    out: &str,
    arch: &str,
) -> std::collections::BTreeMap<String, crate::common::TarEntry> {
    let layout = Layout::open(sandbox.path(out));
    let (_, digests) = layers(sandbox, out)
        .into_iter()
        .find(|(a, _)| a == arch)
        .unwrap();
    let mut files = std::collections::BTreeMap::new();
    for digest in digests {
        let tar = crate::common::gunzip(&layout.blob(&digest));
        for entry in crate::common::tar_entries(&tar) {
            files.insert(entry.path.clone(), entry);
        }
    }
    files
}

#[test]
fn data_directories_scripts_and_markers_install_where_an_installer_puts_them() {
    let sandbox = Sandbox::new();
    let demo = make_wheel(
        &sandbox,
        "demo",
        &[
            (
                "demo/__init__.py",
                "def main():\n    print('demo main')\ndef gui():\n    pass\n",
            ),
            (
                "demo-1.0.data/scripts/demo-tool",
                "#!python\nprint('tool')\n",
            ),
            ("demo-1.0.data/scripts/demo-sh", "#!/bin/sh\necho hi\n"),
            ("demo-1.0.data/data/share/demo/readme.txt", "read me\n"),
            ("demo-1.0.data/headers/demo.h", "int demo(void);\n"),
            ("demo-1.0.data/purelib/demo_extra.py", "EXTRA = 1\n"),
            ("demo-1.0.data/platlib/demo_plat.py", "PLAT = 2\n"),
            ("demo/run.sh", "#!/bin/sh\n"),
            (
                "demo-1.0.dist-info/entry_points.txt",
                "[console_scripts]\ndemo = demo:main\n\n[gui_scripts]\ndemo-gui = demo:gui\n\n[other.group]\nx = y:z\n",
            ),
        ],
        ", \"exec\": [\"demo/run.sh\"]",
    );
    let armonly = make_wheel(&sandbox, "armonly", &[("armonly.py", "ARM = True\n")], "");
    sandbox.write(
        "requirements.lock",
        &format!(
            "demo==1.0 --hash=sha256:{demo}\narmonly==1.0 ; platform_machine == \"aarch64\" --hash=sha256:{armonly}\n"
        ),
    );
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }\n",
    );
    build(&sandbox, "out", &[]);

    let amd = image_files(&sandbox, "out", "amd64");
    let site = "opt/venv/lib/python3.11/site-packages";
    let file = |path: &str| {
        amd.get(path)
            .unwrap_or_else(|| panic!("{path} in {:#?}", amd.keys().collect::<Vec<_>>()))
    };
    assert_eq!(
        file("opt/venv/bin/demo-tool"),
        &(0o755, b"#!/opt/venv/bin/python\nprint('tool')\n".to_vec())
    );
    // A script with a shebang of its own (or a binary) streams unchanged, executable.
    assert_eq!(
        file("opt/venv/bin/demo-sh"),
        &(0o755, b"#!/bin/sh\necho hi\n".to_vec())
    );
    assert_eq!(file("opt/venv/share/demo/readme.txt").1, b"read me\n");
    assert_eq!(
        file("opt/venv/include/site/python3.11/demo/demo.h").1,
        b"int demo(void);\n"
    );
    assert_eq!(file(&format!("{site}/demo_extra.py")).1, b"EXTRA = 1\n");
    assert_eq!(file(&format!("{site}/demo_plat.py")).1, b"PLAT = 2\n");
    assert_eq!(file(&format!("{site}/demo/run.sh")).0, 0o755);
    assert_eq!(file(&format!("{site}/demo/__init__.py")).0, 0o644);
    let gui = String::from_utf8(file("opt/venv/bin/demo-gui").1.clone()).unwrap();
    assert!(
        gui.starts_with("#!/opt/venv/bin/python\n") && gui.contains("from demo import gui"),
        "{gui}"
    );
    assert!(
        !amd.contains_key("opt/venv/bin/x"),
        "only console and gui scripts"
    );
    // The marker: armonly only in the arm64 image.
    assert!(!amd.keys().any(|p| p.contains("armonly")));
    let arm = image_files(&sandbox, "out", "arm64");
    assert!(arm.contains_key(&format!("{site}/armonly.py")));

    // Every RECORD row, judged by Python: the installed file has that hash and size.
    let root = unpack(&sandbox, "out", "amd64", "amd64");
    let checked = python(
        &root.join(site),
        &format!(
            "import base64, csv, hashlib, os\nsite = {:?}\nn = 0\nfor row in csv.reader(open(os.path.join(site, 'demo-1.0.dist-info/RECORD'))):\n    path, digest, size = row\n    data = open(os.path.normpath(os.path.join(site, path)), 'rb').read()\n    if digest:\n        assert digest == 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode(), path\n        assert int(size) == len(data), path\n        n += 1\nprint(n)",
            root.join(site).display().to_string()
        ),
    );
    // 9 members, METADATA, WHEEL, INSTALLER, provenance_url.json and the two generated
    // scripts.
    assert_eq!(checked.trim(), "15", "rows with hashes");
    let ran = Std::new("python3")
        .arg(root.join("opt/venv/bin/demo"))
        .env("PYTHONPATH", root.join(site))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "demo main\n");
}

#[test]
fn a_wheel_whose_content_disagrees_with_its_record_is_refused_by_name() {
    for (extra, detail) in [
        (
            ", \"lie\": [\"bad/__init__.py\"]",
            "/opt/venv/lib/python3.11/site-packages/bad/__init__.py: its content has sha256",
        ),
        (
            ", \"unrecorded\": [\"bad/__init__.py\"]",
            "bad/__init__.py is not in the wheel's RECORD",
        ),
    ] {
        let sandbox = Sandbox::new();
        let bad = make_wheel(&sandbox, "bad", &[("bad/__init__.py", "X = 1\n")], extra);
        sandbox.write(
            "requirements.lock",
            &format!("bad==1.0 --hash=sha256:{bad}\n"),
        );
        sandbox.write(
            "hoist.toml",
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }\n",
        );
        let err = refused(&sandbox);
        assert!(err.contains("bad-1.0-py3-none-any.whl"), "{err}");
        assert!(err.contains(detail), "{detail} in:\n{err}");
    }
}

/// A PEP 503 index of `files` (name → bytes) served by `python3 -m http.server` on
/// 127.0.0.1; killed when dropped.
pub(crate) struct SimpleIndex {
    child: std::process::Child,
    pub(crate) url: String,
}

impl SimpleIndex {
    pub(crate) fn serve(sandbox: &Sandbox, files: &[(&str, Vec<u8>, String)]) -> SimpleIndex {
        SimpleIndex::serve_as(sandbox, files, None)
    }

    /// The index answering only requests with Basic `auth` (`user:password`): 401
    /// otherwise; each request's Authorization header is appended to `<sandbox>/auth.log`.
    pub(crate) fn serve_as(
        sandbox: &Sandbox,
        files: &[(&str, Vec<u8>, String)],
        auth: Option<&str>,
    ) -> SimpleIndex {
        SimpleIndex::serve_in(sandbox, "index", files, auth)
    }

    /// [`SimpleIndex::serve_as`] from `<sandbox>/<dir>`, logging to `<sandbox>/auth.log`
    /// for `index`, else `<sandbox>/<dir>.log` (several indexes in one sandbox).
    pub(crate) fn serve_in(
        sandbox: &Sandbox,
        dir: &str,
        files: &[(&str, Vec<u8>, String)],
        auth: Option<&str>,
    ) -> SimpleIndex {
        let root = sandbox.path(dir);
        let log = if dir == "index" {
            sandbox.path("auth.log")
        } else {
            sandbox.path(&format!("{dir}.log"))
        };
        fs::create_dir_all(root.join("files")).unwrap();
        let mut projects: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for (file, bytes, sha256) in files {
            fs::write(root.join("files").join(file), bytes).unwrap();
            let project = file
                .split('-')
                .next()
                .unwrap()
                .replace('_', "-")
                .to_lowercase();
            let _ = writeln!(
                projects.entry(project).or_default(),
                "<a href=\"../../files/{file}#sha256={sha256}\">{file}</a><br/>"
            );
        }
        for (project, links) in &projects {
            let dir = root.join("simple").join(project);
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("index.html"),
                format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n"),
            )
            .unwrap();
        }
        let mut child = match auth {
            None => {
                let mut command = Std::new("python3");
                command
                    .args([
                        "-u",
                        "-m",
                        "http.server",
                        "0",
                        "--bind",
                        "127.0.0.1",
                        "--directory",
                    ])
                    .arg(&root);
                command
            }
            Some(pair) => {
                let script = sandbox.write("auth_server.py", AUTH_SERVER);
                let mut command = Std::new("python3");
                command.arg("-u").arg(script).arg(&root).arg(pair).arg(&log);
                command
            }
        }
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_owned();
        SimpleIndex {
            child,
            url: format!("http://127.0.0.1:{port}/simple"),
        }
    }
}

/// `python3 auth_server.py ROOT USER:PASSWORD LOG`: a static server on 127.0.0.1 that
/// answers 401 without that Basic authorization (`-`: asks for none), and logs what
/// each request sent to LOG.
const AUTH_SERVER: &str = r#"
import base64, functools, http.server, os, sys
root, pair, log = sys.argv[1], sys.argv[2], sys.argv[3]
want = "Basic " + base64.b64encode(pair.encode()).decode()
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"{self.path} {self.headers.get('Authorization')}\n")
        if pair != "-" and self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.end_headers()
            return
        super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
print(f"Serving HTTP on 127.0.0.1 port {server.server_address[1]} (auth)", flush=True)
server.serve_forever()
"#;

impl Drop for SimpleIndex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn real_files() -> Vec<(&'static str, Vec<u8>, String)> {
    all_real()
        .into_iter()
        .map(|f| {
            let bytes = fs::read(wheels().join(f)).unwrap();
            let sha = sha256_hex(&bytes);
            (f, bytes, sha)
        })
        .collect()
}

#[test]
fn wheels_from_a_simple_index_make_the_same_image_and_stay_in_the_cache() {
    // The reference: the same lock from a wheelhouse.
    let reference = Sandbox::new();
    project(
        &reference,
        &real_lock(),
        &all_real(),
        ", venv = \"/opt/venv\"",
    );
    let (expected, _) = build(&reference, "out", &[]);

    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve(&sandbox, &real_files());
    let python = format!(", venv = \"/opt/venv\", index = \"{}\"", index.url);
    project_with(&sandbox, "requirements.lock", &real_lock(), None, &python);
    let (digest, _) = build(&sandbox, "out", &[]);
    assert_eq!(
        digest, expected,
        "an index and a wheelhouse give the same image"
    );
    let cached = sandbox.cache().join("python-wheels");
    assert_eq!(
        fs::read_dir(&cached).unwrap().count(),
        7,
        "six wheels and one orjson per platform, by sha256"
    );

    // The index gone: the cache answers.
    drop(index);
    let (again, _) = build(&sandbox, "again", &["--no-cache"]);
    assert_eq!(again, expected);
}

#[test]
fn an_index_serving_other_bytes_is_refused_with_the_url() {
    let sandbox = Sandbox::new();
    let mut files = real_files();
    let arm = files.iter_mut().find(|f| f.0 == ORJSON_ARM).unwrap();
    arm.1.push(0);
    let index = SimpleIndex::serve(&sandbox, &files);
    let python = format!(", index = \"{}\"", index.url);
    project_with(&sandbox, "requirements.lock", &real_lock(), None, &python);
    let err = refused(&sandbox);
    assert!(err.contains(&format!("/files/{ORJSON_ARM}")), "{err}");
    assert!(err.contains("not the locked"), "{err}");
    assert!(
        !sandbox
            .cache()
            .join(format!(
                "python-wheels/{}/{ORJSON_ARM}",
                hash_of(&wheels().join(ORJSON_ARM))
            ))
            .exists()
    );
}

#[test]
fn a_uv_lock_installs_what_the_project_reaches_from_the_urls_it_names() {
    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve(&sandbox, &real_files());
    let files = index.url.trim_end_matches("/simple").to_owned() + "/files";
    let wheel = |file: &str| {
        format!(
            "{{ url = \"{files}/{file}\", hash = \"sha256:{}\", size = {} }}",
            hash_of(&wheels().join(file)),
            fs::metadata(wheels().join(file)).unwrap().len()
        )
    };
    let package = |name: &str, version: &str, deps: &str, wheels: &[&str]| {
        let wheels: Vec<String> = wheels.iter().map(|w| wheel(w)).collect();
        format!(
            "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\ndependencies = [{deps}]\nwheels = [{}]\n\n",
            wheels.join(", ")
        )
    };
    let mut lock = String::from(
        "version = 1\nrequires-python = \">=3.11\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\ndependencies = [\n    { name = \"uvicorn\" },\n    { name = \"orjson\" },\n    { name = \"colorama\", marker = \"sys_platform == 'win32'\" },\n    { name = \"six\", marker = \"platform_machine == 'aarch64'\" },\n]\n\n[package.dev-dependencies]\ndev = [{ name = \"idna\" }]\n\n",
    );
    lock += &package(
        "uvicorn",
        "0.32.1",
        "{ name = \"click\" }, { name = \"h11\" }",
        &[PURE[5]],
    );
    lock += &package("click", "8.1.7", "", &[PURE[3]]);
    lock += &package("h11", "0.14.0", "", &[PURE[4]]);
    lock += &package("orjson", "3.10.12", "", &[ORJSON_X86, ORJSON_ARM]);
    lock += &package("six", "1.17.0", "", &[PURE[0]]);
    lock += &package("idna", "3.10", "", &[PURE[1]]);
    // Not served: only a Windows marker leads to it.
    lock += "[[package]]\nname = \"colorama\"\nversion = \"0.4.6\"\nsource = { registry = \"https://pypi.org/simple\" }\nwheels = [{ url = \"https://files.example/colorama-0.4.6-py2.py3-none-any.whl\", hash = \"sha256:4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6\", size = 25335 }]\n";
    let python = format!(", venv = \"/opt/venv\", index = \"{}\"", index.url);
    project_with(&sandbox, "uv.lock", &lock, None, &python);
    build(&sandbox, "out", &[]);

    let site = "opt/venv/lib/python3.11/site-packages";
    let installed = |arch: &str| {
        let mut names: Vec<String> = image_files(&sandbox, "out", arch)
            .keys()
            .filter_map(|p| {
                p.strip_prefix(&format!("{site}/"))?
                    .strip_suffix(".dist-info/RECORD")
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        installed("amd64"),
        [
            "click-8.1.7",
            "h11-0.14.0",
            "orjson-3.10.12",
            "uvicorn-0.32.1"
        ]
    );
    assert_eq!(
        installed("arm64"),
        [
            "click-8.1.7",
            "h11-0.14.0",
            "orjson-3.10.12",
            "six-1.17.0",
            "uvicorn-0.32.1"
        ]
    );
    // Where each wheel came from, as the SBOM reads it: the lock's URL and sha256.
    let files = image_files(&sandbox, "out", "amd64");
    let (_, provenance) = &files[&format!("{site}/h11-0.14.0.dist-info/provenance_url.json")];
    let provenance: serde_json::Value = serde_json::from_slice(provenance).unwrap();
    let h11 = "h11-0.14.0-py3-none-any.whl";
    assert_eq!(provenance["filename"], h11);
    assert_eq!(
        provenance["archive_info"]["hashes"]["sha256"],
        hash_of(&wheels().join(h11))
    );
    assert!(
        provenance["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{h11}")),
        "{provenance}"
    );
}

#[test]
fn the_sboms_list_every_installed_package_with_its_purl_wheel_and_sha256() {
    let sandbox = Sandbox::new();
    project(
        &sandbox,
        &real_lock(),
        &all_real(),
        ", venv = \"/opt/venv\"",
    );
    let toml = fs::read_to_string(sandbox.path("hoist.toml")).unwrap();
    sandbox.write("hoist.toml", &toml.replace("sbom = false\n", ""));
    build(&sandbox, "out", &[]);

    let layout = Layout::open(sandbox.path("out"));
    let mut documents = 0;
    for entry in layout.index_json()["manifests"].as_array().unwrap() {
        if entry["artifactType"] != "application/spdx+json" {
            continue;
        }
        documents += 1;
        let manifest = layout.json(entry["digest"].as_str().unwrap());
        let document: serde_json::Value =
            serde_json::from_slice(&layout.blob(manifest["layers"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let purls: Vec<&str> = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
            .filter_map(|r| r["referenceLocator"].as_str())
            .collect();
        for expected in [
            "pkg:pypi/orjson@3.10.12",
            "pkg:pypi/uvicorn@0.32.1",
            "pkg:pypi/click@8.1.7",
            "pkg:pypi/h11@0.14.0",
            "pkg:pypi/idna@3.10",
            "pkg:pypi/six@1.17.0",
        ] {
            assert!(purls.contains(&expected), "{expected} in {purls:?}");
        }
        assert!(
            !purls.iter().any(|p| p.contains("typing-extensions")),
            "{purls:?}"
        );
        // Each wheel's file name and sha256 (from the lock), and no download
        // location for a wheelhouse's file.
        for package in document["packages"].as_array().unwrap() {
            let Some(file) = package["packageFileName"].as_str() else {
                continue;
            };
            let wheel = wheels().join(file);
            assert_eq!(package["checksums"][0]["algorithm"], "SHA256", "{package}");
            assert_eq!(
                package["checksums"][0]["checksumValue"],
                hash_of(&wheel),
                "{package}"
            );
            assert_eq!(package["downloadLocation"], "NOASSERTION", "{package}");
        }
        let files: Vec<&str> = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["packageFileName"].as_str())
            .collect();
        assert_eq!(files.len(), 6, "{files:?}");
        assert!(
            files.contains(&"six-1.17.0-py2.py3-none-any.whl"),
            "{files:?}"
        );
        assert!(
            files.iter().any(|f| f.starts_with("orjson-3.10.12-cp311")),
            "{files:?}"
        );
        crate::sbom::assert_valid_spdx(
            &sandbox,
            &serde_json::to_vec(&document).unwrap(),
            &format!("sbom-{documents}.json"),
        );
    }
    assert_eq!(documents, 2, "one SBOM per platform");
}

#[test]
fn a_pylock_naming_local_wheels_needs_no_wheelhouse_or_index() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.path("vendor")).unwrap();
    let mut packages = String::new();
    for (name, version, files) in [
        ("six", "1.17.0", vec![PURE[0]]),
        ("orjson", "3.10.12", vec![ORJSON_X86, ORJSON_ARM]),
    ] {
        let wheels: Vec<String> = files
            .iter()
            .map(|file| {
                fs::copy(wheels().join(file), sandbox.path("vendor").join(file)).unwrap();
                format!(
                    "{{ path = \"vendor/{file}\", hashes = {{ sha256 = \"{}\" }} }}",
                    hash_of(&wheels().join(file))
                )
            })
            .collect();
        let _ = write!(
            packages,
            "\n[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\nwheels = [{}]\n",
            wheels.join(", ")
        );
    }
    let lock = format!("lock-version = \"1.0\"\ncreated-by = \"test\"\n{packages}");
    // An index nobody serves: any request to it fails the build.
    let python = ", index = \"http://127.0.0.1:9/simple\"";
    project_with(&sandbox, "pylock.toml", &lock, None, python);
    build(&sandbox, "out", &[]);
    let arm = image_files(&sandbox, "out", "arm64");
    let site = "usr/local/lib/python3.11/site-packages";
    assert!(arm.contains_key(&format!("{site}/six.py")));
    assert!(arm.contains_key(&format!("{site}/orjson-3.10.12.dist-info/RECORD")));
}

#[test]
fn target_installs_into_that_site_packages_owned_as_asked() {
    let sandbox = Sandbox::new();
    let demo = make_wheel(
        &sandbox,
        "demo",
        &[
            ("demo/__init__.py", "def main():\n    pass\n"),
            (
                "demo-1.0.dist-info/entry_points.txt",
                "[console_scripts]\ndemo = demo:main\n",
            ),
        ],
        "",
    );
    sandbox.write(
        "requirements.lock",
        &format!("demo==1.0 --hash=sha256:{demo}\n"),
    );
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\nowner = \"1000:1000\"\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.12\", libc = \"glibc-2.28\", target = \"/srv/site\", interpreter = \"/usr/bin/python3\" }\n",
    );
    build(&sandbox, "out", &[]);
    let layout = Layout::open(sandbox.path("out"));
    let (_, digests) = layers(&sandbox, "out").remove(0);
    let tar = crate::common::gunzip(&layout.blob(&digests[0]));
    let entries = crate::common::tar_entries(&tar);
    let find = |path: &str| {
        entries.iter().find(|e| e.path == path).unwrap_or_else(|| {
            panic!(
                "{path} in {:?}",
                entries.iter().map(|e| &e.path).collect::<Vec<_>>()
            )
        })
    };
    let init = find("srv/site/demo/__init__.py");
    assert_eq!((init.uid, init.gid), (1000, 1000));
    let script = find("usr/local/bin/demo");
    assert!(script.data.starts_with(b"#!/usr/bin/python3\n"));
    let record =
        String::from_utf8(find("srv/site/demo-1.0.dist-info/RECORD").data.clone()).unwrap();
    assert!(
        record.contains("../../usr/local/bin/demo,sha256="),
        "{record}"
    );
}

/// Builds a base image at `<sandbox>/<name>:1` whose config has `env` and whose one
/// layer holds `files` (path, content): a stand-in for `python:3.11-slim` with only
/// what hoist reads of it.
fn base_image(sandbox: &Sandbox, name: &str, env: &str, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        sandbox.write(&format!("{name}-root/{path}"), text);
    }
    fs::create_dir_all(sandbox.path(&format!("{name}-root"))).unwrap();
    build_base(
        sandbox,
        name,
        &format!("[[layer]]\nfrom = \"{name}-root\"\nto = \"/\"\n\n[config]\nenv = {{ {env} }}\n"),
    )
}

/// Builds `<sandbox>/<name>:1` for linux/amd64 and linux/arm64 from scratch with the
/// `[[layer]]` and `[config]` tables `tables`; its reference.
pub(crate) fn build_base(sandbox: &Sandbox, name: &str, tables: &str) -> String {
    let config = sandbox.write(
        &format!("{name}.toml"),
        &format!(
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n{tables}"
        ),
    );
    success(
        sandbox
            .build()
            .arg("--config")
            .arg(&config)
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci(name))),
    );
    format!("{}:1", sandbox.oci(name))
}

const DPKG_LIBC: &str = "Package: base-files\nVersion: 12.4\n\nPackage: libc6\nStatus: install ok installed\nVersion: VERSION\n";

#[test]
fn version_and_libc_come_from_the_base_unless_set() {
    let sandbox = Sandbox::new();
    let debian = base_image(
        &sandbox,
        "debian",
        "PYTHON_VERSION = \"3.11.9\"",
        &[(
            "var/lib/dpkg/status",
            &DPKG_LIBC.replace("VERSION", "2.36-9+deb12u4"),
        )],
    );
    let old = base_image(
        &sandbox,
        "old",
        "PYTHON_VERSION = \"3.11.9\"",
        &[(
            "var/lib/dpkg/status",
            &DPKG_LIBC.replace("VERSION", "2.12-1"),
        )],
    );
    let bare = base_image(
        &sandbox,
        "bare",
        "LANG = \"C.UTF-8\"",
        &[("etc/motd", "hi\n")],
    );
    let write = |base: &str, python: &str| {
        sandbox.write(
            "hoist.toml",
            &format!(
                "[image]\nbase = \"{base}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = false\n\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\", venv = \"/opt/venv\"{python} }}\n"
            ),
        );
    };
    sandbox.write("requirements.lock", &real_lock());
    fs::create_dir_all(sandbox.path("wheels")).unwrap();
    for file in all_real() {
        fs::copy(wheels().join(file), sandbox.path("wheels").join(file)).unwrap();
    }

    // PYTHON_VERSION 3.11.9 and glibc 2.36: cp311 manylinux_2_17 wheels fit.
    write(&debian, "");
    build(&sandbox, "ok", &[]);
    let site = unpack(&sandbox, "ok", "amd64", "amd64");
    let cfg = fs::read_to_string(site.join("opt/venv/pyvenv.cfg")).unwrap();
    assert!(cfg.contains("version = 3.11.9"), "{cfg}");
    assert!(site.join(SITE).join("orjson").is_dir());

    // The base's glibc 2.12 is older than manylinux_2_17: orjson is refused, naming it.
    write(&old, "");
    let err = refused(&sandbox);
    assert!(
        err.contains("orjson") && err.contains("glibc 2.12"),
        "{err}"
    );
    // An explicit setting wins over the base.
    write(&old, ", libc = \"glibc-2.17\"");
    build(&sandbox, "explicit", &[]);

    // A base that says nothing: the key to set is named.
    write(&bare, "");
    let err = refused(&sandbox);
    assert!(err.contains("layer[0].python.version"), "{err}");
    write(&bare, ", version = \"3.11\"");
    let err = refused(&sandbox);
    assert!(err.contains("layer[0].python.libc"), "{err}");
}

#[test]
fn offline_builds_use_the_wheel_cache_under_cache_dir_and_never_the_index() {
    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve(&sandbox, &real_files());
    let python = format!(", venv = \"/opt/venv\", index = \"{}\"", index.url);
    project_with(&sandbox, "requirements.lock", &real_lock(), None, &python);

    // A cold cache offline: nothing is downloaded, the missing wheels are named.
    let err = failure(
        sandbox
            .build()
            .arg("--offline")
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("cold"))),
    );
    assert!(
        err.contains("orjson==3.10.12") && err.contains("--offline"),
        "{err}"
    );
    assert!(!sandbox.cache().join("python-wheels").exists(), "{err}");

    let (online, _) = build(&sandbox, "out", &[]);
    assert!(sandbox.cache().join("python-wheels").is_dir());
    assert!(!sandbox.path("xdg-cache/hoist/python-wheels").exists());
    drop(index);
    let (offline, _) = build(&sandbox, "again", &["--offline", "--no-cache"]);
    assert_eq!(offline, online);
}

#[test]
fn index_credentials_from_the_url_or_netrc_reach_the_index_and_are_never_printed() {
    let sandbox = Sandbox::new();
    let index = SimpleIndex::serve_as(&sandbox, &real_files(), Some("me:s3cret-pw"));
    let with_url = |url: &str| {
        project_with(
            &sandbox,
            "requirements.lock",
            &real_lock(),
            None,
            &format!(", venv = \"/opt/venv\", index = \"{url}\""),
        );
    };
    // No credentials: the index's 401 is named with its URL.
    with_url(&index.url);
    let err = refused(&sandbox);
    assert!(err.contains("401") && err.contains(&index.url), "{err}");

    // In the URL: used, and the password never printed.
    let port_url = index.url.replace("http://", "http://me:s3cret-pw@");
    with_url(&port_url);
    let output = success(
        sandbox
            .build()
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("out"))),
    );
    let printed = format!("{}{}", stdout(&output), crate::common::stderr(&output));
    assert!(!printed.contains("s3cret"), "{printed}");

    // From a netrc file (NETRC), on a fresh cache.
    with_url(&index.url);
    sandbox.write(
        "netrc",
        "machine example.org login no password no\nmachine 127.0.0.1 login me password s3cret-pw\n",
    );
    success(
        sandbox
            .hoist()
            .env("NETRC", sandbox.path("netrc"))
            .arg("build")
            .arg("--cache-dir")
            .arg(sandbox.path("cache2"))
            .arg("--output")
            .arg(format!("{}:1", sandbox.oci("out2"))),
    );
    let log = fs::read_to_string(sandbox.path("auth.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("/files/") && l.ends_with("Basic bWU6czNjcmV0LXB3")),
        "{log}"
    );
}

#[test]
fn verify_names_the_python_package_whose_files_differ() {
    let sandbox = Sandbox::new();
    let lock = |alpha: &str, beta: &str| {
        sandbox.write(
            "requirements.lock",
            &format!("alpha==1.0 --hash=sha256:{alpha}\nbeta==1.0 --hash=sha256:{beta}\n"),
        );
    };
    let alpha = make_wheel(&sandbox, "alpha", &[("alpha/__init__.py", "A = 1\n")], "");
    let beta = make_wheel(&sandbox, "beta", &[("beta/__init__.py", "B = 1\n")], "");
    lock(&alpha, &beta);
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.28\", interpreter = \"/usr/local/bin/python3.11\", venv = \"/opt/venv\" }\n",
    );
    build(&sandbox, "out", &[]);
    let verify = || {
        sandbox
            .hoist()
            .arg("verify")
            .arg("--cache-dir")
            .arg(sandbox.cache())
            .arg("--config")
            .arg(sandbox.path("hoist.toml"))
            .arg(format!("{}:1", sandbox.oci("out")))
            .output()
            .unwrap()
    };
    let same = verify();
    assert!(same.status.success(), "{}", crate::common::stderr(&same));

    // beta's wheel rebuilt with other content (and locked again): verify names beta.
    let beta = make_wheel(&sandbox, "beta", &[("beta/__init__.py", "B = 2\n")], "");
    lock(&alpha, &beta);
    let output = verify();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("Python packages that differ: beta==1.0 (linux/amd64, layer 1)"),
        "{text}"
    );
    assert!(!text.contains("alpha=="), "{text}");
}
