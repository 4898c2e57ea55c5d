//! `hoist.toml`: the raw file as the user wrote it. Unknown keys are rejected (with the
//! key and line) rather than ignored: a typo such as `entrypiont` must not build an
//! image that silently lacks its entrypoint. Resolution into settings is in `plan`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[image]`: what to build on and for.
    #[serde(default)]
    pub image: ImageSection,
    /// `[[layer]]`: the new layers, in order.
    #[serde(default, rename = "layer")]
    pub layers: Vec<LayerSection>,
    /// `[config]`: edits merged over the base image's config.
    #[serde(default)]
    pub config: ConfigSection,
    /// `[annotations]`: put on every manifest and on the index.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `[version]`: where the project keeps its version (releases).
    pub version: Option<VersionSection>,
    /// `[tags]`: which tags a version yields (releases).
    pub tags: Option<TagsSection>,
    /// `[release]`: the release commit's message and the git tag's name.
    pub release: Option<ReleaseSection>,
    /// `[budget]`: size limits.
    pub budget: Option<BudgetSection>,
    /// `[workspace]`: this file is a workspace root listing member configs.
    pub workspace: Option<WorkspaceSection>,
    /// Not in the file: what a workspace member takes from its root (set when the
    /// workspace loads a member).
    #[serde(skip)]
    pub inherited: Inherited,
    /// Not in the file: the sha256 of the exact bytes [`ConfigFile::load`] parsed (the
    /// provenance records it, not a later read: the file may change during a build).
    #[serde(skip)]
    pub digest: Option<hoist_layers::Digest>,
}

/// `[workspace]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSection {
    /// Member directories (each holding a `hoist.toml`), relative to the root; globs.
    pub members: Vec<String>,
    /// Directories left out (paths or globs), relative to the root.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `[workspace.image]`: defaults for every member's `[image]`.
    #[serde(default)]
    pub image: ImageSection,
    /// A release keeps a member's previous image (its digest, and the version and
    /// commit its labels name) when nothing it is built from changed.
    #[serde(default)]
    pub keep_unchanged: bool,
}

/// What a workspace member's config takes from its workspace root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inherited {
    /// The member's name (its directory's): the default image title.
    pub member: Option<String>,
    /// The workspace root's directory: `[version]` paths, and an inherited
    /// `image.base`, are relative to it.
    pub root_dir: Option<std::path::PathBuf>,
    /// Whether `image.base` came from `[workspace.image]`.
    pub base_from_root: bool,
}

/// `[release]`: what the release commit and its git tag are called.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSection {
    /// The release commit's message; `{version}` is the new version (default
    /// `"Release v{version}"`).
    pub commit_message: Option<String>,
    /// The git tag's name; `{version}` is the new version (default `"v{version}"`).
    pub tag: Option<String>,
}

/// `[version]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionSection {
    /// The file the version is read from (`pyproject.toml`, `package.json`,
    /// `Cargo.toml`, `*.py`, `Chart.yaml`, `VERSION`, or any file with a pattern),
    /// relative to the config file.
    pub source: VersionFileRef,
    /// Files that carry the same version, written on every bump or set.
    #[serde(default)]
    pub sync: Vec<VersionFileRef>,
}

/// A version file: a path (its kind told by its name), or `{ path, pattern }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum VersionFileRef {
    /// `"pyproject.toml"`.
    Path(String),
    /// `{ path = "deploy/values.yaml", pattern = 'tag: "(?P<version>[^"]+)"' }`.
    Pattern(PatternFile),
}

impl Default for VersionFileRef {
    fn default() -> Self {
        VersionFileRef::Path(String::new())
    }
}

impl VersionFileRef {
    /// The path as written.
    pub fn path(&self) -> &str {
        match self {
            VersionFileRef::Path(path) => path,
            VersionFileRef::Pattern(file) => &file.path,
        }
    }

    /// The pattern, if one is given.
    pub fn pattern(&self) -> Option<&str> {
        match self {
            VersionFileRef::Path(_) => None,
            VersionFileRef::Pattern(file) => Some(&file.pattern),
        }
    }
}

/// `{ path, pattern }`: any file, the version found by a regular expression.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatternFile {
    /// The file, relative to the config file.
    pub path: String,
    /// A regular expression matching exactly once, whose `version` group
    /// (`(?P<version>…)`) is the version.
    pub pattern: String,
}

/// `[tags]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagsSection {
    /// Tag templates (`{version}`, `{major}.{minor}`, `sha-{sha7}`, `latest`, …).
    pub rules: Option<Vec<String>>,
    /// `"auto"`, `true` or `false`: when `latest` is given.
    pub latest: Option<LatestSetting>,
}

/// `latest = "auto" | true | false`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LatestSetting {
    /// `true` or `false`.
    Bool(bool),
    /// A word (only `auto` is valid; checked when resolved).
    Word(String),
}

/// `[image]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Repository the image is for, e.g. `ghcr.io/acme/dashboard`, or several (one
    /// build, pushed to each).
    pub name: Option<OneOrMany>,
    /// Base image location, relative to the config file.
    pub base: Option<String>,
    /// Platforms to build; default: every platform the base has.
    pub platforms: Option<Vec<String>>,
    /// `gzip` (default) or `zstd`.
    pub compression: Option<String>,
    /// Compression level (gzip 1–9, default 6; zstd 1–22, default 3).
    pub compression_level: Option<i32>,
    /// `keep` (the base's manifest flavour, default) or `oci`.
    pub format: Option<String>,
    /// Tags given to the image in outputs that hold tags.
    pub tags: Option<Vec<String>>,
    /// Attach an SPDX SBOM to every platform image (default `true`).
    pub sbom: Option<bool>,
    /// List every file of the new layers, with its hashes, in the SBOM (default `false`).
    pub sbom_files: Option<bool>,
}

/// `[budget]`: size limits checked after the build, before anything is uploaded.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Largest compressed size of a platform image, base included (`"250MB"`).
    pub max_size: Option<String>,
    /// Largest uncompressed size of a platform image (`"800MB"`).
    pub max_unpacked: Option<String>,
    /// Largest growth against the previous release's image (`"10%"`).
    pub max_growth: Option<String>,
}

/// One `[[layer]]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LayerSection {
    /// Source directory (or a single file), relative to the config file.
    pub from: Option<String>,
    /// Absolute destination in the image: the directory `from`'s contents go into, or
    /// the path of a single-file `from` (a trailing `/` puts it inside, by its name).
    pub to: Option<String>,
    /// Permission bits of a single-file `from`, as an octal string (`"0755"`).
    pub mode: Option<ModeValue>,
    /// Single files, each at its own path in the image.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// gitignore-style patterns, relative to `from`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `uid:gid` or `uid` for every entry; default `0:0`.
    pub owner: Option<String>,
    /// `keep` (default) or `normalize` (0755 dirs and executables, 0644 files).
    pub modes: Option<String>,
    /// Absolute paths to delete from the image below (OCI whiteouts).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Only in these platforms' images.
    pub platform: Option<OneOrMany>,
    /// Python packages installed from a lock (`python = { lock = "requirements.lock", … }`):
    /// a layer all platforms share and one per platform.
    pub python: Option<PythonSection>,
}

/// `[[layer]].python`: Python dependencies installed from a lock file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonSection {
    /// The lock: a requirements file with `==` pins and `--hash`es, or a `pylock.toml`;
    /// relative to the config file.
    pub lock: String,
    /// A directory of wheel files, relative to the config file.
    pub wheelhouse: Option<String>,
    /// A simple index (PEP 503/691) for the wheels the wheelhouse lacks; default PyPI
    /// when there is no wheelhouse.
    pub index: Option<String>,
    /// Install into a virtual environment at this image path.
    pub venv: Option<String>,
    /// Install into this site-packages directory instead.
    pub target: Option<String>,
    /// The image's Python version (`"3.11"`).
    pub version: Option<String>,
    /// The image's interpreter; default `/usr/local/bin/python<version>`.
    pub interpreter: Option<String>,
    /// The image's C library: `glibc-2.N` (default `glibc-2.28`) or `musl-1.N`.
    pub libc: Option<String>,
}

/// One entry of `[[layer]].files`: `{ from = "start.sh", to = "/usr/local/bin/start",
/// mode = "0755" }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file, relative to the config file.
    pub from: String,
    /// Its absolute path in the image (a trailing `/` puts it inside, by its name).
    pub to: String,
    /// Its permission bits, as an octal string (`"0755"`); default: as on disk.
    pub mode: Option<ModeValue>,
}

/// A file mode as written: an octal string, or a number (refused when resolved: TOML's
/// `755` is decimal, and `0o755` is easy to mistype as that).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ModeValue {
    /// `"0755"`.
    Text(String),
    /// `0o755` or `755`.
    Number(i64),
}

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

/// `[config]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigSection {
    /// Replaces the entrypoint (and, as in a Dockerfile, clears an inherited cmd).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the cmd.
    pub cmd: Option<Vec<String>>,
    /// Merged into the base `Env` by name.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    /// Added to the exposed ports (`80`, `80/tcp`, `53/udp`).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Added to the volumes.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Merged into the labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Signal that stops the container.
    pub stop_signal: Option<String>,
    /// Docker health check.
    pub healthcheck: Option<HealthcheckSection>,
}

/// `[config.healthcheck]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckSection {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Between checks, e.g. `30s`.
    pub interval: Option<String>,
    /// Before a check counts as failed.
    pub timeout: Option<String>,
    /// Grace period after start.
    pub start_period: Option<String>,
    /// Between checks during the start period.
    pub start_interval: Option<String>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<u32>,
}

impl ConfigFile {
    /// The directory `image.base` is relative to: the workspace root's for a base
    /// inherited from `[workspace.image]`, else the config file's (at `config`).
    pub fn base_dir<'a>(&'a self, config: &'a Path) -> &'a Path {
        match &self.inherited.root_dir {
            Some(root) if self.inherited.base_from_root => root,
            _ => config.parent().unwrap_or(Path::new(".")),
        }
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let cannot_read = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let bytes =
            crate::fsutil::read_bounded(path, crate::fsutil::PROJECT_FILE_LIMIT, "a config file")
                .map_err(|error| match error {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    cannot_read(format!(
                        "cannot read: {source}; name the config file with --config FILE"
                    ))
                }
                Error::Io { source, .. } => cannot_read(format!("cannot read: {source}")),
                other => other,
            })?;
        let digest = hoist_layers::Digest::sha256_of(&bytes);
        let text = String::from_utf8(bytes)
            .map_err(|e| cannot_read(format!("cannot read: it is not UTF-8 text ({e})")))?;
        let mut file = ConfigFile::parse(&text).map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })?;
        file.digest = Some(digest);
        Ok(file)
    }

    /// Parses config text; the error message carries the key path, line and column.
    pub fn parse(text: &str) -> std::result::Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| {
            let message = readable(e.to_string().trim_end());
            match e.span().and_then(|span| key_path_at(text, span.start)) {
                Some(path) => format!("`{path}`: {message}"),
                None => message,
            }
        })
    }
}

/// The config file name every command reads by default.
pub const DEFAULT_CONFIG: &str = "hoist.toml";

/// The config file a command reads: `given` when it exists or is not the default
/// name; else the nearest `hoist.toml` in the working directory's parents (run from
/// a subdirectory of the project), searching up to the top of the git checkout, or
/// the file system's root outside git. Not found: an error naming where it looked and
/// `--config`.
pub fn locate(given: &Path) -> Result<std::path::PathBuf> {
    if given != Path::new(DEFAULT_CONFIG) || given.exists() {
        return Ok(given.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        path: ".".into(),
        source,
    })?;
    let mut searched = cwd.as_path();
    for dir in cwd.ancestors() {
        searched = dir;
        let candidate = dir.join(DEFAULT_CONFIG);
        if candidate.is_file() {
            return Ok(candidate);
        }
        // The checkout's top: a project's hoist.toml is inside its repository.
        if dir.join(".git").exists() {
            break;
        }
    }
    Err(Error::Config {
        path: given.to_path_buf(),
        message: format!(
            "not found in {} nor in any directory above it up to {}; run hoist in the project's directory or name the config file with --config FILE",
            cwd.display(),
            searched.display()
        ),
    })
}

/// serde's words for our untagged enums and structs, in the user's terms.
fn readable(message: &str) -> String {
    message
        .replace(
            "data did not match any variant of untagged enum OneOrMany",
            "expected a string or a list of strings",
        )
        .replace(
            "data did not match any variant of untagged enum LatestSetting",
            "expected true, false or \"auto\"",
        )
        .replace("expected struct ImageSection", "expected a table")
        .replace("expected struct LayerSection", "expected a table")
        .replace("expected struct FileEntry", "expected a table")
        .replace(
            "data did not match any variant of untagged enum VersionFileRef",
            "expected a path, or { path = \"…\", pattern = '…(?P<version>…)…' }",
        )
        .replace(
            "data did not match any variant of untagged enum ModeValue",
            "expected an octal string such as \"0755\"",
        )
        .replace("expected struct ConfigSection", "expected a table")
        .replace("expected struct HealthcheckSection", "expected a table")
        .replace("expected struct VersionSection", "expected a table")
        .replace("expected struct TagsSection", "expected a table")
        .replace("expected struct ReleaseSection", "expected a table")
        .replace("expected struct WorkspaceSection", "expected a table")
}

/// The key path (`config.env.PORT`, `layer[2].platform`, `config.cmd[1]`) of what is at
/// byte `offset`. toml's own message quotes only the line, which for a value in a
/// multi-line array, or a second `[[layer]]`, does not say which key is wrong.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let document = toml_edit::Document::parse(text).ok()?;
    let mut path = Vec::new();
    let found = match document.as_item() {
        toml_edit::Item::Table(root) => in_table(root, None, offset, &mut path),
        _ => false,
    };
    let path = path.concat();
    (found && !path.is_empty()).then(|| path.trim_start_matches('.').to_string())
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|span| span.start <= offset && offset < span.end)
}

fn in_table(
    table: &dyn toml_edit::TableLike,
    span: Option<std::ops::Range<usize>>,
    offset: usize,
    path: &mut Vec<String>,
) -> bool {
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        path.push(format!(".{name}"));
        if contains(key.span(), offset) || in_item(item, offset, path) {
            return true;
        }
        path.pop();
    }
    // The table itself: its header, or an inline table, when a key is missing.
    contains(span, offset)
}

fn in_item(item: &toml_edit::Item, offset: usize, path: &mut Vec<String>) -> bool {
    match item {
        toml_edit::Item::Table(table) => in_table(table, table.span(), offset, path),
        toml_edit::Item::ArrayOfTables(tables) => {
            for (i, table) in tables.iter().enumerate() {
                // From 0, as plan and the provenance name layers (`layer[0].to`).
                path.push(format!("[{i}]"));
                if in_table(table, table.span(), offset, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        toml_edit::Item::Value(value) => in_value(value, offset, path),
        toml_edit::Item::None => false,
    }
}

fn in_value(value: &toml_edit::Value, offset: usize, path: &mut Vec<String>) -> bool {
    match value {
        toml_edit::Value::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                path.push(format!("[{i}]"));
                if in_value(element, offset, path) {
                    return true;
                }
                path.pop();
            }
            contains(array.span(), offset)
        }
        toml_edit::Value::InlineTable(table) => in_table(table, table.span(), offset, path),
        other => contains(other.span(), offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file (and a lock, read the same way) is refused from its size before
    /// it is read: a sparse 5 GiB hoist.toml costs nothing.
    #[test]
    fn a_huge_config_file_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.toml");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(5 << 30)
            .unwrap();
        let err = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("hoist.toml"), "{err}");
        assert!(
            err.contains("over the limit of 67108864 bytes for a config file"),
            "{err}"
        );
        let err = crate::python::lock::read_lock(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("over the limit of 67108864 bytes for a lock"),
            "{err}"
        );
    }

    /// The digest is of the bytes parsed, taken as they are read.
    #[test]
    fn a_loaded_config_carries_the_sha256_of_the_bytes_it_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.toml");
        let text = "[image]\nbase = \"scratch\"\n";
        std::fs::write(&path, text).unwrap();
        let file = ConfigFile::load(&path).unwrap();
        std::fs::write(&path, "[image]\nbase = \"other\"\n").unwrap();
        assert_eq!(
            file.digest,
            Some(hoist_layers::Digest::sha256_of(text.as_bytes()))
        );
        assert_eq!(ConfigFile::parse(text).unwrap().digest, None);
    }

    /// docs/config.md documents `[budget]`: its example parses, and each key has a row.
    #[test]
    fn the_budget_section_is_documented() {
        use crate::plan::budget::{parse_percent, parse_size};
        let docs = include_str!("../docs/config.md");
        let section = docs
            .split("\n## `[budget]`")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/config.md has a [budget] section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("with an example");
        let file = ConfigFile::parse(example).expect("the example parses");
        let budget = file.budget.expect("the example sets [budget]");
        let resolved = [
            budget.max_size.as_deref(),
            budget.max_unpacked.as_deref(),
            budget.max_growth.as_deref(),
        ];
        assert!(resolved.iter().all(Option::is_some), "{resolved:?}");
        assert_eq!(
            parse_size("max_size", resolved[0].unwrap()).unwrap(),
            250_000_000
        );
        assert!(parse_size("max_unpacked", resolved[1].unwrap()).is_ok());
        assert!(parse_percent("max_growth", resolved[2].unwrap()).is_ok());
        for key in ["max_size", "max_unpacked", "max_growth"] {
            assert!(section.contains(&format!("| `{key}` |")), "{key} has a row");
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let file = ConfigFile::parse(
            r#"
            [image]
            name = "ghcr.io/acme/dashboard"
            base = "oci:testdata/base:1.0"
            platforms = ["linux/amd64", "linux/arm64"]
            [[layer]]
            from = "frontend/dist"
            to = "/usr/share/nginx/html"
            exclude = ["*.map", "node_modules/"]
            [[layer]]
            from = "backend"
            to = "/app"
            owner = "1000:1000"
            platform = "linux/amd64"
            [config]
            entrypoint = ["python"]
            env = { PORT = "8080" }
            healthcheck = { test = ["CMD", "true"], interval = "30s", retries = 3 }
            [annotations]
            "org.opencontainers.image.vendor" = "acme"
            "#,
        )
        .unwrap();
        assert_eq!(file.layers.len(), 2);
        assert_eq!(
            file.layers[1].platform,
            Some(OneOrMany::One("linux/amd64".into()))
        );
        assert_eq!(file.config.env["PORT"], "8080");
        assert_eq!(file.config.healthcheck.unwrap().retries, Some(3));
        assert_eq!(file.annotations["org.opencontainers.image.vendor"], "acme");
    }

    #[test]
    fn unknown_keys_are_rejected_by_name_and_line() {
        let err =
            ConfigFile::parse("[image]\nbase = \"scratch\"\n\n[config]\nentrypiont = [\"x\"]\n")
                .unwrap_err();
        assert!(err.contains("entrypiont"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        let err = ConfigFile::parse("[imgae]\n").unwrap_err();
        assert!(err.contains("imgae"), "{err}");
    }

    /// Found by tests/it/props/config_plan.rs: toml's message quotes the line only, so
    /// a wrong element of a multi-line array, or a key of the second `[[layer]]`, was
    /// not named.
    #[test]
    fn type_errors_name_the_key_path() {
        for (text, path) in [
            (
                "[annotations]\n\"org.opencontainers.image.vendor\" = 0\n",
                "`annotations.org.opencontainers.image.vendor`",
            ),
            (
                "[config]\nentrypoint = [\n  \"a\",\n  5,\n]\n",
                "`config.entrypoint[1]`",
            ),
            (
                "[[layer]]\nfrom = \"a\"\n[[layer]]\nplatform = 3\n",
                "`layer[1].platform`",
            ),
            (
                "[config]\nhealthcheck = { test = [\"NONE\"], retries = -1 }\n",
                "`config.healthcheck.retries`",
            ),
            (
                "[config.healthcheck]\nretries = 1\n",
                "`config.healthcheck`",
            ),
            ("image = 3\n", "`image`"),
        ] {
            let err = ConfigFile::parse(text).unwrap_err();
            assert!(err.contains(path), "expected {path} in: {err}\n{text}");
        }
        let err = ConfigFile::parse("[[layer]]\nplatform = 3\n").unwrap_err();
        assert!(
            err.contains("expected a string or a list of strings"),
            "{err}"
        );
        assert!(!err.contains("untagged"), "{err}");
    }
}
