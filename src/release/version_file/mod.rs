//! Version files: where a project keeps its version, read with the line it is on and
//! rewritten by replacing **only the version string's bytes**, so comments, key order,
//! indentation and quoting stay exactly as the user wrote them.
//!
//! The kind is told by the file name: `pyproject.toml` (`[project].version`, else
//! `[tool.poetry].version`), `Cargo.toml` (`[package].version`, else
//! `[workspace.package].version`), `*.json` (the top-level `"version"`, as in
//! package.json), `*.py` (the module-level `__version__ = "…"`, `python.rs`),
//! `Chart.yaml` (the top-level `appVersion`, `chart.rs`), anything else a plain file
//! holding just the version (`VERSION`). Any file can also be given with a pattern
//! whose `version` group marks the version (`pattern.rs`); that wins over the name.
//!
//! TOML is parsed with toml_edit, whose parsed documents keep each value's byte span;
//! JSON is validated with serde_json (which reports line and column) and the span of
//! the top-level `"version"` string is found by a small scanner (`json.rs`); Python and
//! YAML by scanners of their own. Splicing the new version into that span is the whole
//! edit: nothing else of the file is re-rendered.

mod chart;
mod json;
mod pattern;
mod python;

use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use semver::Version;

pub use pattern::VersionPattern;

use super::{ReleaseError, Result, line_of};

/// A version file as configured: its path, and the pattern that finds the version in
/// it when the name alone does not say (`sync = [{ path, pattern }]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionFileSpec {
    /// The file.
    pub path: PathBuf,
    /// The pattern with a `version` group; `None`: the kind is told by the name.
    pub pattern: Option<VersionPattern>,
}

impl VersionFileSpec {
    /// A file whose kind is told by its name.
    pub fn by_name(path: impl Into<PathBuf>) -> VersionFileSpec {
        VersionFileSpec {
            path: path.into(),
            pattern: None,
        }
    }

    /// Its kind: the pattern's, else by the name.
    pub fn kind(&self) -> Result<FileKind> {
        match &self.pattern {
            Some(pattern) => Ok(FileKind::Pattern(pattern.clone())),
            None => FileKind::detect(&self.path),
        }
    }

    /// Reads the file and finds its version.
    pub fn read(&self) -> Result<VersionFile> {
        VersionFile::read_as(&self.path, self.kind()?)
    }
}

/// How a version file keeps its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `pyproject.toml`.
    Pyproject,
    /// `Cargo.toml`.
    Cargo,
    /// `package.json` or another JSON file with a top-level `"version"`.
    Json,
    /// A Python module with a module-level `__version__ = "…"` (`*.py`).
    Python,
    /// A Helm chart's `Chart.yaml`: the top-level `appVersion`.
    Chart,
    /// A file holding only the version (`VERSION`).
    Plain,
    /// Any file: the `version` group of the pattern's one match.
    Pattern(VersionPattern),
}

impl FileKind {
    /// The kind of the file at `path`, by its name.
    pub fn detect(path: &Path) -> Result<FileKind> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        Ok(match name {
            "pyproject.toml" => FileKind::Pyproject,
            "Cargo.toml" => FileKind::Cargo,
            "Chart.yaml" | "Chart.yml" => FileKind::Chart,
            _ if has_extension(name, "json") => FileKind::Json,
            _ if has_extension(name, "py") => FileKind::Python,
            // Another TOML or YAML file has no known place for a version: refusing
            // (the message points at patterns) beats treating its whole text as one.
            _ if has_extension(name, "toml")
                || has_extension(name, "yaml")
                || has_extension(name, "yml")
                || name.is_empty() =>
            {
                return Err(ReleaseError::UnknownKind {
                    path: path.to_path_buf(),
                });
            }
            _ => FileKind::Plain,
        })
    }
}

fn has_extension(name: &str, extension: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// Project metadata some version files carry (for the OCI labels).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The package name.
    pub name: Option<String>,
    /// Its one-line description.
    pub description: Option<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// Home page, else repository URL.
    pub url: Option<String>,
}

/// A version file as read: its text and where the version is in it.
#[derive(Clone, Debug)]
pub struct VersionFile {
    /// The file.
    pub path: PathBuf,
    /// Its kind.
    pub kind: FileKind,
    /// The whole text as read.
    pub text: String,
    /// The version.
    pub version: Version,
    /// 1-based line the version is on.
    pub line: usize,
    /// Byte range of the version's characters (inside any quotes).
    span: Range<usize>,
}

/// The largest version file read: a `package.json`, `pyproject.toml` or chart is a few
/// kilobytes; `hoist init` reads files it only guesses are version files.
const MAX_VERSION_FILE: u64 = 4 * 1024 * 1024;

impl VersionFile {
    /// Reads `path` and finds its version.
    pub fn read(path: &Path) -> Result<VersionFile> {
        VersionFile::read_as(path, FileKind::detect(path)?)
    }

    /// Reads `path` as a file of `kind`.
    pub fn read_as(path: &Path, kind: FileKind) -> Result<VersionFile> {
        let bytes = crate::fsutil::read_bounded(path, MAX_VERSION_FILE, "a version file")?;
        let text = String::from_utf8(bytes).map_err(|e| ReleaseError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        VersionFile::parse(path, kind, text)
    }

    /// Finds the version in `text`, read from `path` (named in errors).
    pub fn parse(path: &Path, kind: FileKind, text: String) -> Result<VersionFile> {
        let span = match &kind {
            FileKind::Pyproject => toml_version_span(
                path,
                &text,
                &[&["project", "version"], &["tool", "poetry", "version"]],
            )?,
            FileKind::Cargo => toml_version_span(
                path,
                &text,
                &[
                    &["package", "version"],
                    &["workspace", "package", "version"],
                ],
            )?,
            FileKind::Json => json::json_version_span(path, &text)?,
            FileKind::Python => python::python_version_span(path, &text)?,
            FileKind::Chart => chart::chart_version_span(path, &text)?,
            FileKind::Plain => plain_version_span(path, &text)?,
            FileKind::Pattern(pattern) => pattern.span(path, &text)?,
        };
        let raw = &text[span.clone()];
        let line = line_of(&text, span.start);
        let version = Version::parse(raw).map_err(|e| ReleaseError::NotSemver {
            path: path.to_path_buf(),
            line,
            value: raw.to_string(),
            reason: e.to_string(),
        })?;
        Ok(VersionFile {
            path: path.to_path_buf(),
            kind,
            text,
            version,
            line,
            span,
        })
    }

    /// The text with `version` in place of the current one, every other byte kept.
    pub fn render(&self, version: &Version) -> String {
        let mut text = String::with_capacity(self.text.len() + 16);
        text.push_str(&self.text[..self.span.start]);
        text.push_str(&version.to_string());
        text.push_str(&self.text[self.span.end..]);
        text
    }

    /// Name, description, license and URL, where the file's kind keeps them.
    pub fn metadata(&self) -> Metadata {
        match &self.kind {
            FileKind::Plain | FileKind::Python | FileKind::Pattern(_) => Metadata::default(),
            FileKind::Chart => {
                let text = |key: &str| match chart::top_level_scalar(&self.text, key) {
                    chart::Found::Scalar(span) => Some(self.text[span].to_string()),
                    _ => None,
                };
                Metadata {
                    name: text("name"),
                    description: text("description"),
                    license: None,
                    url: text("home"),
                }
            }
            FileKind::Json => {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&self.text) else {
                    return Metadata::default();
                };
                let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(String::from);
                let repository = json.get("repository").and_then(|r| {
                    r.as_str()
                        .or_else(|| r.get("url").and_then(|u| u.as_str()))
                        .map(String::from)
                });
                Metadata {
                    name: text("name"),
                    description: text("description"),
                    license: text("license"),
                    url: text("homepage").or(repository),
                }
            }
            FileKind::Pyproject | FileKind::Cargo => {
                let Ok(toml) = self.text.parse::<toml::Table>() else {
                    return Metadata::default();
                };
                let table = |path: &[&str]| {
                    path.iter()
                        .try_fold(&toml, |t, key| t.get(*key).and_then(|v| v.as_table()))
                };
                let section = if self.kind == FileKind::Cargo {
                    table(&["package"])
                } else {
                    table(&["project"]).or_else(|| table(&["tool", "poetry"]))
                };
                let Some(section) = section else {
                    return Metadata::default();
                };
                let text = |key: &str| section.get(key).and_then(|v| v.as_str()).map(String::from);
                // PEP 621 allows `license = { text = "MIT" }`; poetry and cargo a string.
                let license = text("license").or_else(|| {
                    section
                        .get("license")
                        .and_then(|l| l.get("text"))
                        .and_then(|t| t.as_str())
                        .map(String::from)
                });
                let pep621_url = section.get("urls").and_then(|urls| {
                    ["Homepage", "homepage", "Repository", "repository", "Source"]
                        .iter()
                        .find_map(|k| urls.get(*k).and_then(|u| u.as_str()))
                        .map(String::from)
                });
                Metadata {
                    name: text("name"),
                    description: text("description"),
                    license,
                    url: text("homepage")
                        .or(pep621_url)
                        .or_else(|| text("repository")),
                }
            }
        }
    }
}

/// The span of the first of `paths` (e.g. `project.version`) that holds a string.
fn toml_version_span(path: &Path, text: &str, paths: &[&[&str]]) -> Result<Range<usize>> {
    let document = toml_edit::Document::parse(text).map_err(|e| ReleaseError::Malformed {
        path: path.to_path_buf(),
        line: e.span().map_or(1, |span| line_of(text, span.start)),
        message: e.message().to_string(),
    })?;
    for keys in paths {
        let mut item = document.as_item();
        let mut found = true;
        for key in *keys {
            let Some(next) = item.get(key) else {
                found = false;
                break;
            };
            item = next;
        }
        if !found {
            continue;
        }
        match item.as_str() {
            Some(value) => {
                let span = item.span().ok_or_else(|| ReleaseError::Malformed {
                    path: path.to_path_buf(),
                    line: 1,
                    message: format!("no position for {}", keys.join(".")),
                })?;
                return inner_span(path, text, span, value);
            }
            // `version.workspace = true` in a member, or `dynamic = ["version"]`: the
            // version lives elsewhere; try the next place.
            None if item.is_table_like() => {}
            None => {
                return Err(ReleaseError::Malformed {
                    path: path.to_path_buf(),
                    line: item.span().map_or(1, |s| line_of(text, s.start)),
                    message: format!("{} is not a string", keys.join(".")),
                });
            }
        }
    }
    Err(ReleaseError::NoVersion {
        path: path.to_path_buf(),
        expected: format!(
            "expected a string at {}",
            paths
                .iter()
                .map(|p| p.join("."))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

/// Within a quoted value's span, the bytes of the value itself. Versions have no escape
/// sequences, so the decoded value appears literally between the quotes; one that does
/// not (an escaped character) is refused rather than rewritten wrongly.
pub(super) fn inner_span(
    path: &Path,
    text: &str,
    span: Range<usize>,
    value: &str,
) -> Result<Range<usize>> {
    let quoted = &text[span.clone()];
    let quote_len = quoted
        .bytes()
        .take_while(|b| matches!(b, b'"' | b'\''))
        .count();
    if quoted.len() >= 2 * quote_len
        && &quoted[quote_len..quoted.len() - quote_len] == value
        && quote_len > 0
    {
        return Ok(span.start + quote_len..span.end - quote_len);
    }
    Err(ReleaseError::Malformed {
        path: path.to_path_buf(),
        line: line_of(text, span.start),
        message: format!("the version {quoted} uses escapes; write it plainly"),
    })
}

/// The first non-blank line, trimmed: everything around it (the trailing newline) is
/// kept on rewrite.
fn plain_version_span(path: &Path, text: &str) -> Result<Range<usize>> {
    let start = text.len() - text.trim_start().len();
    let line_end = text[start..]
        .find(['\n', '\r'])
        .map_or(text.len(), |i| start + i);
    let end = start + text[start..line_end].trim_end().len();
    if start == end {
        return Err(ReleaseError::NoVersion {
            path: path.to_path_buf(),
            expected: "the file is empty".into(),
        });
    }
    if !text[line_end..].trim().is_empty() {
        return Err(ReleaseError::Malformed {
            path: path.to_path_buf(),
            line: line_of(text, line_end) + 1,
            message: "a plain version file holds one line, the version".into(),
        });
    }
    Ok(start..end)
}

/// Writes every `(path, text)` or none: each text goes to a temporary file beside its
/// target (same file system, the original's permissions), and only when all are
/// written and synced are they renamed into place. Under SIGKILL between two renames
/// this alone cannot be all-or-nothing: in a git checkout the release journal records
/// the texts first, and the next run completes the set
/// ([`super::transaction`]). A failure before the renames
/// deletes the temporary files (nothing changed); a rename failing midway (which a
/// same-directory rename practically never does) puts back the files already replaced.
pub fn write_all(files: &[(PathBuf, String)]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReleaseError::Io { path, source }
    };
    let mut staged = Vec::with_capacity(files.len());
    for (path, text) in files {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Locked while open, like every temporary file hoist makes: one a killed run
        // left beside a version file is swept by the next run.
        hoist_layers::sweep_temp_files(dir);
        let mut temp = crate::fsutil::temp_file_in(dir)?;
        temp.write_all(text.as_bytes()).map_err(io(path))?;
        temp.as_file().sync_all().map_err(io(path))?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(temp.path(), meta.permissions()).map_err(io(path))?;
        }
        let original = std::fs::read(path).ok();
        staged.push((temp, path, original));
    }
    super::journal::kill_point("temps-written");
    let mut replaced: Vec<(&PathBuf, Option<Vec<u8>>)> = Vec::new();
    for (temp, path, original) in staged {
        if !replaced.is_empty() {
            super::journal::kill_point(&format!("renamed-{}", replaced.len()));
        }
        if let Err(e) = temp.persist(path) {
            for (done, original) in replaced {
                if let Some(bytes) = original {
                    let _ = std::fs::write(done, bytes);
                }
            }
            return Err(ReleaseError::Io {
                path: path.clone(),
                source: e.error,
            });
        }
        replaced.push((path, original));
    }
    // The renames themselves made durable (a journal step may follow).
    for (path, _) in &replaced {
        super::journal::sync_dir(crate::fsutil::parent_dir(path)).map_err(io(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<VersionFile> {
        let path = Path::new(name);
        VersionFile::parse(path, FileKind::detect(path)?, text.to_string())
    }

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn kinds_by_name() {
        let kind = |n: &str| FileKind::detect(Path::new(n)).ok();
        assert_eq!(kind("a/pyproject.toml"), Some(FileKind::Pyproject));
        assert_eq!(kind("Cargo.toml"), Some(FileKind::Cargo));
        assert_eq!(kind("frontend/package.json"), Some(FileKind::Json));
        assert_eq!(kind("VERSION"), Some(FileKind::Plain));
        assert_eq!(kind("version.txt"), Some(FileKind::Plain));
        assert_eq!(kind("hoist.toml"), None);
        assert_eq!(kind("sdk/gati/version.py"), Some(FileKind::Python));
        assert_eq!(kind("chart/Chart.yaml"), Some(FileKind::Chart));
        assert_eq!(kind("deploy/values.yaml"), None);
    }

    #[test]
    fn reads_each_kind_with_its_line() {
        let cases = [
            (
                "pyproject.toml",
                "[build-system]\nrequires = []\n\n[project]\nname = \"x\"\nversion = \"1.2.3\"\n",
                6,
            ),
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"x\"\nversion = '0.4.0-rc.1'\n",
                3,
            ),
            (
                "Cargo.toml",
                "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
                3,
            ),
            (
                "Cargo.toml",
                "[workspace]\nmembers = []\n[workspace.package]\nversion = \"2.0.0\"\n",
                4,
            ),
            (
                "Cargo.toml",
                "[package]\nname = \"x\"\nversion.workspace = true\n[workspace.package]\nversion = \"3.1.4\"\n",
                5,
            ),
            (
                "package.json",
                "{\n  \"name\": \"x\",\n  \"dependencies\": {\"version\": \"9.9.9\"},\n  \"version\": \"0.1.0\"\n}\n",
                4,
            ),
            ("VERSION", "1.0.0\n", 1),
            ("VERSION", "\n  1.0.0  \n\n", 2),
        ];
        for (name, text, line) in cases {
            let file = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(file.line, line, "{name}:\n{text}");
            assert!(!file.version.to_string().is_empty());
        }
        assert_eq!(
            parse("package.json", "{\"version\":\"0.1.0\"}")
                .unwrap()
                .version,
            v("0.1.0")
        );
    }

    #[test]
    fn rewrites_only_the_version_bytes() {
        let cases = [
            (
                "pyproject.toml",
                "# top\n[project]\nname = \"x\"  # name\nversion   =   '1.2.3' # keep me\n",
                "# top\n[project]\nname = \"x\"  # name\nversion   =   '1.3.0' # keep me\n",
            ),
            (
                "package.json",
                "{\n    \"version\" : \"1.2.3\",\n    \"a\": [1, {\"version\": \"x\"}]\n}",
                "{\n    \"version\" : \"1.3.0\",\n    \"a\": [1, {\"version\": \"x\"}]\n}",
            ),
            ("VERSION", "1.2.3\n", "1.3.0\n"),
            ("VERSION", "1.2.3", "1.3.0"),
        ];
        for (name, before, after) in cases {
            let file = parse(name, before).unwrap();
            assert_eq!(file.render(&v("1.3.0")), after, "{name}");
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nversion = \"1.2\"\n",
                "pyproject.toml:3:",
                "1.2",
            ),
            (
                "pyproject.toml",
                "[project]\nname = \"x\n",
                "pyproject.toml:2:",
                "",
            ),
            (
                "package.json",
                "{\n  \"version\": \"1.0.0\",\n}\n",
                "package.json:3:",
                "",
            ),
            (
                "package.json",
                "{\n  \"version\": 1\n}\n",
                "package.json:2:",
                "not a string",
            ),
            (
                "package.json",
                "{\"name\": \"x\"}",
                "package.json: no version",
                "",
            ),
            (
                "Cargo.toml",
                "[package]\nname = \"x\"\n",
                "Cargo.toml: no version",
                "package.version",
            ),
            ("VERSION", "v1.0.0\n", "VERSION:1:", "v1.0.0"),
            ("VERSION", "1.0.0\nmore\n", "VERSION:2:", "one line"),
            (
                "pyproject.toml",
                "[project]\nversion = \"1.0.\\u0030\"\n",
                "pyproject.toml:2:",
                "escapes",
            ),
        ];
        for (name, text, prefix, detail) in cases {
            let err = parse(name, text).unwrap_err().to_string();
            assert!(
                err.starts_with(prefix),
                "{name}: expected {prefix:?}, got {err}"
            );
            assert!(err.contains(detail), "{name}: expected {detail:?} in {err}");
        }
    }

    #[test]
    fn metadata_from_each_kind() {
        let py = parse(
            "pyproject.toml",
            "[project]\nname = \"dash\"\nversion = \"1.0.0\"\ndescription = \"A board\"\nlicense = { text = \"MIT\" }\n[project.urls]\nHomepage = \"https://x.example\"\n",
        )
        .unwrap();
        assert_eq!(
            py.metadata(),
            Metadata {
                name: Some("dash".into()),
                description: Some("A board".into()),
                license: Some("MIT".into()),
                url: Some("https://x.example".into()),
            }
        );
        let json = parse(
            "package.json",
            "{\"name\":\"f\",\"version\":\"1.0.0\",\"license\":\"ISC\",\"repository\":{\"url\":\"https://r.example\"}}",
        )
        .unwrap();
        assert_eq!(json.metadata().license.as_deref(), Some("ISC"));
        assert_eq!(json.metadata().url.as_deref(), Some("https://r.example"));
        assert_eq!(
            parse("VERSION", "1.0.0").unwrap().metadata(),
            Metadata::default()
        );
    }

    /// testdata/release/before/* bumped to 1.3.0 must equal testdata/release/after/*
    /// byte for byte: comments, key order, indentation, quoting, line endings (the
    /// values.yaml is CRLF) and the other `version` keys all kept.
    #[test]
    fn golden_files_change_only_their_version() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/release");
        let files = [
            ("pyproject.toml", None),
            ("poetry/pyproject.toml", None),
            ("package.json", None),
            ("workspace/Cargo.toml", None),
            ("VERSION", None),
            ("sdk/gati/version.py", None),
            ("chart/Chart.yaml", None),
            ("deploy/values.yaml", Some(r#"tag: "(?P<version>[^"]+)""#)),
        ];
        for (name, pattern) in files {
            let spec = VersionFileSpec {
                path: root.join("before").join(name),
                pattern: pattern.map(|p| VersionPattern::new(p).unwrap()),
            };
            let file = spec.read().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(file.version, v("1.2.3"), "{name}");
            let bumped =
                super::super::bump::bump(&file.version, super::super::bump::Bump::Minor).unwrap();
            let expected = std::fs::read_to_string(root.join("after").join(name)).unwrap();
            assert_eq!(file.render(&bumped), expected, "{name}");
            let changed = file
                .text
                .split_inclusive('\n')
                .zip(expected.split_inclusive('\n'))
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(changed, 1, "{name}: exactly the version line changes");
        }
        let chart = VersionFile::read(&root.join("before/chart/Chart.yaml")).unwrap();
        assert_eq!(
            chart.metadata(),
            Metadata {
                name: Some("gati-backend".into()),
                description: None,
                license: None,
                url: Some("https://github.com/acme/gati".into()),
            }
        );
        // Other YAML files need a pattern: their whole text is no version.
        let err = VersionFile::read(&root.join("before/deploy/values.yaml")).unwrap_err();
        assert!(err.to_string().contains("give a pattern"), "{err}");
    }

    #[test]
    fn a_huge_version_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package.json");
        // Sparse: 5 GiB on paper, nothing on disk.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(5 << 30)
            .unwrap();
        let err = VersionFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("package.json"), "{err}");
        assert!(
            err.contains("over the limit of 4194304 bytes for a version file"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_write_changes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("VERSION");
        std::fs::write(&a, "1.0.0\n").unwrap();
        let gone = dir.path().join("gone/VERSION");
        let result = write_all(&[(a.clone(), "2.0.0\n".into()), (gone, "2.0.0\n".into())]);
        assert!(result.unwrap_err().to_string().contains("gone"));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "1.0.0\n");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
    }
}
