//! Helpers shared by the integration tests: a per-test sandbox that runs `hoist`
//! with its own cache, a reader for OCI layouts, tar/gzip readers and third-party
//! tool runners.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// `testdata/base` index digest (tag `1.0`), pinned in testdata/README.md.
pub const BASE_INDEX: &str =
    "sha256:b9f6b0f29f0c26a9cbda5b28b1c0ba2fb4a5fb2e60cd6d98eac27e09cf273ec5";
/// `testdata/base` linux/amd64 manifest.
pub const BASE_AMD64_MANIFEST: &str =
    "sha256:45f43c3cfb1dda9d2f0c737096c1aaf90f5c58c48a4e964c4b964038444351f6";
/// `testdata/base` linux/arm64/v8 manifest.
pub const BASE_ARM64_MANIFEST: &str =
    "sha256:1b3d8f951af9f7f782af1271953f3b44a7fddb303b7bb9a5a3566176053fc146";
/// The amd64 base layer (tar+gzip), the same blob in both fixtures.
pub const BASE_AMD64_LAYER: &str =
    "sha256:2c33e7942e3cd421975826adfb8f346c8d23f340b23994bd47886ef48e05d092";
/// The arm64 base layer (tar+gzip).
pub const BASE_ARM64_LAYER: &str =
    "sha256:7dae619da975d9ab5f357380268c555258a0156a3faa7b742190eb990399878a";
/// The amd64 config blob (both fixtures).
pub const BASE_AMD64_CONFIG: &str =
    "sha256:6d02627f170ace567e5c19b56e1d428d621bdcdd6524b521d1fe15f2331b33fc";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The repository root (the `hoist` package's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/dashboard`.
pub fn example_dir() -> PathBuf {
    repo().join("examples/dashboard")
}

/// `examples/dashboard/hoist.toml`.
pub fn example_config() -> PathBuf {
    example_dir().join("hoist.toml")
}

/// `testdata/base` (OCI flavour).
pub fn base_layout() -> PathBuf {
    repo().join("testdata/base")
}

/// Panics unless `name` is an executable on `PATH`: the tools that judge our output
/// are part of the test suite, not optional extras.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    assert!(found, "{name} is missing: run .ci/run (it installs it)");
}

/// Runs a third-party tool and returns its output, whatever its exit status.
pub fn tool_output<S: AsRef<OsStr>>(name: &str, args: &[S]) -> Output {
    require_tool(name);
    std::process::Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

/// Runs a third-party tool, asserting success, and returns its stdout.
pub fn tool<S: AsRef<OsStr>>(name: &str, args: &[S]) -> String {
    let output = tool_output(name, args);
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        output.status.success(),
        "{name} {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        shown.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// Runs a third-party tool under a time limit, asserting it finished in time and
/// succeeded; returns its stdout.
pub fn tool_within<S: AsRef<OsStr>>(limit: std::time::Duration, name: &str, args: &[S]) -> String {
    require_tool(name);
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    let started = std::time::Instant::now();
    let output = Command::new(name)
        .args(args)
        .timeout(limit)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        started.elapsed() < limit
            && std::os::unix::process::ExitStatusExt::signal(&output.status).is_none(),
        "{name} {} did not finish within {limit:?} ({})",
        shown.join(" "),
        output.status
    );
    assert!(
        output.status.success(),
        "{name} {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        shown.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// A temporary directory for one test: outputs, cache and inputs all live in it.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("hoist-it-")
                .tempdir()
                .expect("creating a temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The test's own layer cache.
    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `oci:<sandbox>/<relative>` (plus `:tag` if the caller appends one).
    pub fn oci(&self, relative: &str) -> String {
        format!("oci:{}", self.path(relative).display())
    }

    /// `hoist` with a clean, deterministic environment, run from the sandbox.
    pub fn hoist(&self) -> Command {
        Command::from_std(self.hoist_process())
    }

    /// [`Sandbox::hoist`] as a `std::process::Command`, for tests that run several
    /// hoist processes at once (`spawn`).
    pub fn hoist_process(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        command
            .current_dir(self.root())
            .env("CI", "true")
            // Belt and braces: even a forgotten --cache-dir stays in the sandbox.
            .env("XDG_CACHE_HOME", self.path("xdg-cache"))
            // No credentials but the test's own: the user's docker and podman logins
            // stay out (REGISTRY_AUTH_FILE set: podman's other auth.json files are
            // not read either).
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.path("containers/auth.json"))
            .env_remove("HOIST_REGISTRY_USERNAME")
            .env_remove("HOIST_REGISTRY_PASSWORD")
            // Nor the user's package index (Python layers read it as pip and uv do).
            .env_remove("UV_DEFAULT_INDEX")
            .env_remove("UV_INDEX_URL")
            .env_remove("PIP_INDEX_URL")
            .env_remove("UV_INDEX")
            .env_remove("UV_EXTRA_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("SOURCE_DATE_EPOCH");
        // uv's per-index credentials (`UV_INDEX_<NAME>_USERNAME`) too.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("UV_INDEX_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// `hoist build --cache-dir <sandbox>/cache`.
    pub fn build(&self) -> Command {
        let mut command = self.hoist();
        command.arg("build").arg("--cache-dir").arg(self.cache());
        command
    }

    /// Builds the dashboard example to `output`, asserting success; returns stdout.
    /// Dated 0 (`SOURCE_DATE_EPOCH=0`, the default outside git): the example lives in
    /// hoist's own checkout, where the default is the HEAD commit's time, which every
    /// commit moves (that default: features.rs, finding.rs).
    pub fn build_example(&self, output: &str, extra: &[&str]) -> String {
        let mut command = self.build();
        command
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("--config")
            .arg(example_config())
            .arg("--output")
            .arg(output)
            .args(extra);
        stdout(&success(&mut command))
    }

    /// Writes `text` to `<sandbox>/<relative>`, creating parent directories.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

/// Runs `command`, asserting exit 0 (the assertion prints stdout and stderr).
pub fn success(command: &mut Command) -> Output {
    command.assert().success().get_output().clone()
}

/// Runs `command`, asserting exit 1 (a failure, not a usage error); returns stderr.
pub fn failure(command: &mut Command) -> String {
    let output = command.assert().code(1).get_output().clone();
    let err = stderr(&output);
    assert!(
        err.contains("error"),
        "a failure should print an error message, got stderr:\n{err}"
    );
    err
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// The last non-empty line of `text`.
pub fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no output line in {text:?}"))
        .trim()
}

/// Asserts `s` is `sha256:` and 64 lowercase hex digits.
pub fn assert_digest(s: &str) {
    let hex = s
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{s:?} is not a sha256 digest"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{s:?} is not a sha256 digest"
    );
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Parses JSON text, with the text in the panic message when it is not JSON.
pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// A string field of a JSON value (panics with the document if absent).
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

/// An OCI image layout on disk.
pub struct Layout {
    pub root: PathBuf,
}

/// One platform's image as read from a layout.
pub struct PlatformImage {
    /// The descriptor's platform object.
    pub platform: Value,
    pub descriptor: Value,
    pub manifest: Value,
    pub config: Value,
}

impl PlatformImage {
    pub fn architecture(&self) -> &str {
        str_at(&self.platform, "/architecture")
    }

    pub fn layer_digests(&self) -> Vec<String> {
        self.manifest["layers"]
            .as_array()
            .expect("manifest layers")
            .iter()
            .map(|l| str_at(l, "/digest").to_owned())
            .collect()
    }
}

impl Layout {
    pub fn open(root: impl Into<PathBuf>) -> Layout {
        let root = root.into();
        assert!(
            root.join("oci-layout").is_file(),
            "{} is not an OCI layout",
            root.display()
        );
        Layout { root }
    }

    /// The parsed `index.json`.
    pub fn index_json(&self) -> Value {
        parse_json(&fs::read_to_string(self.root.join("index.json")).expect("index.json"))
    }

    /// The `ref.name` annotations in `index.json`, in order (the untagged artifacts
    /// listed beside images, their SBOMs, have none).
    pub fn ref_names(&self) -> Vec<String> {
        self.index_json()["manifests"]
            .as_array()
            .expect("index.json manifests")
            .iter()
            .filter(|m| m.get("artifactType").is_none())
            .map(|m| str_at(m, &format!("/annotations/{REF_NAME}")).to_owned())
            .collect()
    }

    /// The `index.json` entry whose ref name is `tag` (panics if not exactly one).
    pub fn entry(&self, tag: &str) -> Value {
        let index = self.index_json();
        let matching: Vec<_> = index["manifests"]
            .as_array()
            .expect("index.json manifests")
            .iter()
            .filter(|m| m["annotations"][REF_NAME] == tag)
            .cloned()
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one index.json entry named {tag:?} in {index:#}"
        );
        matching.into_iter().next().unwrap()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.root.join("blobs/sha256").join(hex)
    }

    /// A blob's bytes, checked against its digest.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        let bytes =
            fs::read(&path).unwrap_or_else(|e| panic!("reading blob {}: {e}", path.display()));
        assert_eq!(digest_of(&bytes), digest, "blob {} content", path.display());
        bytes
    }

    pub fn json(&self, digest: &str) -> Value {
        parse_json(std::str::from_utf8(&self.blob(digest)).expect("JSON blob is UTF-8"))
    }

    /// Every platform image under the image index tagged `tag`.
    pub fn platforms(&self, tag: &str) -> Vec<PlatformImage> {
        let entry = self.entry(tag);
        let index = self.json(str_at(&entry, "/digest"));
        index["manifests"]
            .as_array()
            .expect("image index manifests")
            .iter()
            .map(|descriptor| {
                let manifest = self.json(str_at(descriptor, "/digest"));
                let config = self.json(str_at(&manifest, "/config/digest"));
                PlatformImage {
                    platform: descriptor["platform"].clone(),
                    descriptor: descriptor.clone(),
                    manifest,
                    config,
                }
            })
            .collect()
    }

    /// Total size of every file under `blobs/`.
    pub fn blob_bytes(&self) -> u64 {
        fs::read_dir(self.root.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }
}

/// One member of a tar archive, as written.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// The member name as stored (PAX `path` applied), directories with their `/`.
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Symlink target or hard-link target, as stored.
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// Every member of an uncompressed tar, in archive order.
pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .expect("tar entries")
        .map(|entry| {
            let mut entry = entry.expect("tar entry");
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("UTF-8 path");
            let header = entry.header().clone();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).expect("UTF-8 link name"));
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("tar entry data");
            TarEntry {
                path,
                kind: header.entry_type(),
                mode: header.mode().expect("mode"),
                uid: header.uid().expect("uid"),
                gid: header.gid().expect("gid"),
                mtime: header.mtime().expect("mtime"),
                link,
                data,
            }
        })
        .collect()
}

/// Tar members by path.
pub fn tar_map(entries: &[TarEntry]) -> BTreeMap<String, TarEntry> {
    entries
        .iter()
        .map(|e| (e.path.clone(), e.clone()))
        .collect()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// Copies a directory tree (files, directories, symlinks), keeping permission bits.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for source in entries {
        let target = to.join(source.file_name().unwrap());
        let meta = fs::symlink_metadata(&source).unwrap();
        if meta.is_dir() {
            copy_tree(&source, &target);
            fs::set_permissions(&target, meta.permissions()).unwrap();
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source).unwrap(), &target).unwrap();
        } else {
            fs::copy(&source, &target).unwrap();
        }
    }
}

/// Sets every directory under `root` (and `root`) to 0755 and every file to 0644, so
/// the umask of whoever checked the sources out does not reach a digest.
pub fn normalise_modes(root: &Path) {
    let meta = fs::symlink_metadata(root).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(root).unwrap() {
            normalise_modes(&entry.unwrap().path());
        }
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    } else if meta.is_file() {
        fs::set_permissions(root, fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Every file (not directory) under `root`, as paths relative to it, sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

/// `umoci unpack --rootless` of `layout:tag` into `bundle`; returns the bundle's rootfs.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

/// An OCI layout at `dir` with one linux/amd64 image of one gzip layer `gz` whose
/// uncompressed digest is `diff_id`; answers `oci:DIR` and the layer's digest.
pub fn layout_with_gzip_layer(dir: &Path, gz: &[u8], diff_id: &str) -> (String, String) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer_digest, layer_size) = put(gz);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let (config_digest, config_size) = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
        }]}))
        .unwrap(),
    )
    .unwrap();
    (format!("oci:{}", dir.display()), layer_digest)
}
