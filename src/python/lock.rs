//! Lock files: what to install, exactly. A requirements file in which every line is
//! pinned (`==`) and hashed (`--hash=sha256:…`), or a PEP 751 `pylock.toml`.
//!
//! hoist resolves nothing: a line that is not pinned, or not hashed, is an error naming
//! the package and the line, since installing it would take whatever an index serves
//! today. Extras are ignored (a lock lists the packages they pull in); markers are kept
//! and evaluated per platform.

use std::path::Path;

use super::marker::{Environment, Marker};
use super::{PythonError, normalize};

/// One package of a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedPackage {
    /// Normalised name (PEP 503).
    pub name: String,
    /// The pinned version.
    pub version: String,
    /// Install only where this holds.
    pub marker: Option<Marker>,
    /// The sha256 (lowercase hex) of every file the lock accepts for it.
    pub hashes: Vec<String>,
    /// The wheels the lock names (a pylock.toml does; a requirements file names none).
    pub wheels: Vec<LockedWheel>,
    /// Whether the lock names a source distribution for it.
    pub sdist: bool,
    /// Where it is in the lock: `requirements.lock:12` or `pylock.toml: packages[3]`.
    pub origin: String,
}

/// A wheel a lock names, with its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedWheel {
    /// The file name (`six-1.17.0-py2.py3-none-any.whl`).
    pub file: String,
    /// Where it can be downloaded, if the lock says.
    pub url: Option<String>,
    /// sha256, lowercase hex.
    pub sha256: String,
    /// Its size, if the lock says.
    pub size: Option<u64>,
    /// A local file the lock names (relative to the lock's directory until
    /// [`read_lock`] joins it).
    pub path: Option<std::path::PathBuf>,
}

impl LockedWheel {
    /// A wheel named by `name`, or else by the last segment of `url` or `path` (with
    /// `%2B` decoded: `+` in local versions); `None` without any of them.
    pub(super) fn new(
        name: Option<&str>,
        url: Option<&str>,
        path: Option<&str>,
        sha256: &str,
        size: Option<u64>,
    ) -> Option<LockedWheel> {
        let file = match name {
            Some(name) => name.to_owned(),
            None => url
                .or(path)?
                .rsplit('/')
                .next()?
                .replace("%2B", "+")
                .replace("%2b", "+"),
        };
        Some(LockedWheel {
            file,
            url: url.map(str::to_owned),
            sha256: sha256.to_ascii_lowercase(),
            size,
            path: path.map(Into::into),
        })
    }
}

/// A lock: its packages, and for a lock that records the dependency graph (uv.lock)
/// how to walk it; the others list exactly what to install, under their markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// Every package.
    pub packages: Vec<LockedPackage>,
    /// The graph, when the lock has one.
    pub graph: Option<Graph>,
}

/// Which packages a uv.lock installs: those reachable from its roots (the project's
/// own packages, not installed themselves) along edges whose markers hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// Indices of the root packages.
    pub roots: Vec<usize>,
    /// Per package: its dependencies.
    pub dependencies: Vec<Vec<Edge>>,
    /// Per package: its optional dependencies by extra.
    pub optional: Vec<std::collections::BTreeMap<String, Vec<Edge>>>,
}

/// A dependency: the package it leads to, under which marker, with which extras.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Index of the package depended on.
    pub to: usize,
    /// Followed only where this holds.
    pub marker: Option<Marker>,
    /// Extras of the package depended on that are followed too.
    pub extras: Vec<String>,
}

impl Lock {
    /// The packages to install in `env`, in lock order.
    pub fn select(&self, env: &Environment) -> Result<Vec<&LockedPackage>, PythonError> {
        let holds = |marker: &Option<Marker>, origin: &str| match marker {
            None => Ok(true),
            Some(marker) => marker.evaluate(env).map_err(|message| PythonError::Marker {
                origin: origin.to_owned(),
                message,
            }),
        };
        let Some(graph) = &self.graph else {
            let mut selected = Vec::new();
            for package in &self.packages {
                if holds(&package.marker, &package.origin)? {
                    selected.push(package);
                }
            }
            return Ok(selected);
        };
        let mut reached = vec![false; self.packages.len()];
        let mut extras_seen = std::collections::BTreeSet::new();
        let mut stack: Vec<(usize, Vec<String>)> =
            graph.roots.iter().map(|&r| (r, Vec::new())).collect();
        while let Some((at, extras)) = stack.pop() {
            let origin = &self.packages[at].origin;
            let mut edges: Vec<&Edge> = Vec::new();
            if !reached[at] {
                reached[at] = true;
                edges.extend(&graph.dependencies[at]);
            }
            for extra in extras {
                if extras_seen.insert((at, extra.clone())) {
                    edges.extend(graph.optional[at].get(&extra).into_iter().flatten());
                }
            }
            for edge in edges {
                if holds(&edge.marker, origin)? {
                    stack.push((edge.to, edge.extras.clone()));
                }
            }
        }
        Ok(self
            .packages
            .iter()
            .enumerate()
            .filter(|(i, _)| reached[*i] && !graph.roots.contains(i))
            .map(|(_, p)| p)
            .collect())
    }
}

/// A lock as the build read it: what it says, and the sha256 of the exact bytes parsed
/// (the provenance records these, not a later read: the file may change during a build).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockFile {
    /// Its packages (and graph).
    pub lock: Lock,
    /// The sha256 of the bytes it was parsed from.
    pub digest: hoist_layers::Digest,
}

/// Reads the lock at `path`: `uv.lock`, `*.toml` as a pylock.toml, anything else as
/// requirements; hashed as read.
pub fn read_lock(path: &Path) -> Result<LockFile, PythonError> {
    let bytes = crate::fsutil::read_bounded(path, crate::fsutil::PROJECT_FILE_LIMIT, "a lock")
        .map_err(|error| PythonError::Io {
            path: path.to_path_buf(),
            source: match error {
                crate::Error::Io { source, .. } => source,
                // Over the limit: the message names the size and the limit.
                other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
            },
        })?;
    let digest = hoist_layers::Digest::sha256_of(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| PythonError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut lock = if name == "uv.lock" {
        super::uvlock::parse_uv_lock(&text, &name)?
    } else {
        parse_listing(path, &text, &name)?
    };
    // Local wheels are named relative to the lock.
    let dir = path.parent().unwrap_or(Path::new("."));
    for wheel in lock.packages.iter_mut().flat_map(|p| &mut p.wheels) {
        if let Some(local) = &wheel.path {
            wheel.path = Some(dir.join(local));
        }
    }
    Ok(LockFile { lock, digest })
}

/// A requirements file or a pylock.toml (by its extension).
fn parse_listing(path: &Path, text: &str, name: &str) -> Result<Lock, PythonError> {
    let toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let packages = if toml {
        parse_pylock(text, name)?
    } else {
        parse_requirements(text, name)?
    };
    Ok(Lock {
        packages,
        graph: None,
    })
}

pub(super) fn lock_error(origin: impl Into<String>, message: impl Into<String>) -> PythonError {
    PythonError::Lock {
        origin: origin.into(),
        message: message.into(),
    }
}

/// Parses a requirements file (`file` names it in errors).
pub fn parse_requirements(text: &str, file: &str) -> Result<Vec<LockedPackage>, PythonError> {
    let mut packages = Vec::new();
    for (line_number, line) in logical_lines(text) {
        let origin = format!("{file}:{line_number}");
        let line = strip_comment(&line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            check_option(line, &origin)?;
            continue;
        }
        packages.push(parse_requirement(line, origin)?);
    }
    Ok(packages)
}

/// Lines with their `\` continuations joined, each with the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut joined) = current.take().unwrap_or((i + 1, String::new()));
        if let Some(head) = raw.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            current = Some((start, joined));
        } else {
            joined.push_str(raw);
            lines.push((start, joined));
        }
    }
    lines.extend(current);
    lines
}

/// Drops a `#` comment: at the start, or after whitespace (a `#` inside a URL stays).
fn strip_comment(line: &str) -> String {
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return line[..i].to_owned();
        }
        previous = c;
    }
    line.to_owned()
}

/// Options a lock may carry; the ones that would change what gets installed are
/// refused.
fn check_option(line: &str, origin: &str) -> Result<(), PythonError> {
    let option = line.split(['=', ' ']).next().unwrap_or(line);
    match option {
        "--index-url" | "-i" | "--extra-index-url" | "--find-links" | "-f" | "--trusted-host"
        | "--no-binary" | "--only-binary" | "--prefer-binary" | "--require-hashes"
        | "--no-index" | "--pre" => Ok(()),
        "-r" | "--requirement" | "-c" | "--constraint" => Err(lock_error(
            origin,
            format!(
                "`{line}`: nested requirement files are not followed; give hoist one lock with every package"
            ),
        )),
        "-e" | "--editable" => Err(lock_error(
            origin,
            format!(
                "`{line}`: editable installs are not supported; the project's own code goes in a [[layer]] of its own"
            ),
        )),
        other => Err(lock_error(origin, format!("unknown option `{other}`"))),
    }
}

/// One requirement line: `name[extras]==version ; marker --hash=sha256:… …`.
fn parse_requirement(line: &str, origin: String) -> Result<LockedPackage, PythonError> {
    let (spec, options) = match line.find("--") {
        Some(at) => (line[..at].trim(), &line[at..]),
        None => (line, ""),
    };
    let (spec, marker) = match spec.split_once(';') {
        Some((spec, marker)) => (spec.trim(), Some(marker.trim())),
        None => (spec, None),
    };
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let raw_name = &spec[..name_end];
    if raw_name.is_empty() {
        return Err(lock_error(origin, format!("`{line}`: no package name")));
    }
    let mut rest = spec[name_end..].trim_start();
    if rest.starts_with('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| lock_error(&origin, format!("{raw_name}: unclosed `[` of extras")))?;
        rest = rest[close + 1..].trim_start();
    }
    let unpinned = |what: &str| {
        lock_error(
            &origin,
            format!(
                "{raw_name}: {what}; hoist installs exactly what a lock names (`{raw_name}==VERSION --hash=sha256:…`, as `uv pip compile --generate-hashes` or `pip-compile --generate-hashes` write)"
            ),
        )
    };
    let version = rest
        .strip_prefix("===")
        .or_else(|| rest.strip_prefix("=="))
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && !v.contains('*')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'))
        })
        .ok_or_else(|| {
            if rest.starts_with('@') {
                unpinned("a direct URL is not a pinned version")
            } else if rest.is_empty() {
                unpinned("not pinned to a version")
            } else {
                unpinned(&format!("`{rest}` is not pinned to one version with =="))
            }
        })?;
    let mut hashes = Vec::new();
    let mut tokens = options.split_whitespace();
    while let Some(token) = tokens.next() {
        let value = match token.strip_prefix("--hash") {
            Some("") => tokens.next().unwrap_or_default(),
            Some(v) if v.starts_with('=') => &v[1..],
            _ => {
                return Err(lock_error(
                    &origin,
                    format!("{raw_name}: unexpected `{token}` after the requirement"),
                ));
            }
        };
        match value.split_once(':') {
            Some(("sha256", hex)) if is_sha256(hex) => hashes.push(hex.to_ascii_lowercase()),
            Some(("sha256", _)) => {
                return Err(lock_error(
                    &origin,
                    format!("{raw_name}: `{value}` is not a sha256"),
                ));
            }
            // Other algorithms are allowed alongside; hoist checks sha256.
            Some(_) => {}
            None => {
                return Err(lock_error(
                    &origin,
                    format!("{raw_name}: bad hash `{value}`"),
                ));
            }
        }
    }
    if hashes.is_empty() {
        return Err(unpinned(
            "no --hash=sha256:… (an unhashed line would install whatever bytes an index serves)",
        ));
    }
    let marker = marker
        .map(|m| Marker::parse(m).map_err(|e| lock_error(&origin, format!("{raw_name}: {e}"))))
        .transpose()?;
    Ok(LockedPackage {
        name: normalize(raw_name),
        version: version.to_owned(),
        marker,
        hashes,
        wheels: Vec::new(),
        sdist: false,
        origin,
    })
}

pub(super) fn is_sha256(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(serde::Deserialize)]
struct PyLock {
    #[serde(rename = "lock-version")]
    lock_version: Option<String>,
    #[serde(default)]
    packages: Vec<PyLockPackage>,
}

#[derive(serde::Deserialize)]
struct PyLockPackage {
    name: String,
    version: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    wheels: Vec<PyLockFile>,
    sdist: Option<PyLockFile>,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<toml::Value>,
}

#[derive(serde::Deserialize)]
struct PyLockFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// Parses a PEP 751 `pylock.toml` (`file` names it in errors).
pub fn parse_pylock(text: &str, file: &str) -> Result<Vec<LockedPackage>, PythonError> {
    let lock: PyLock = toml::from_str(text).map_err(|e| lock_error(file, e.to_string()))?;
    match lock.lock_version.as_deref() {
        Some(v) if v.starts_with("1.") || v == "1" => {}
        other => {
            return Err(lock_error(
                file,
                format!("lock-version {other:?}: hoist reads version 1 of PEP 751"),
            ));
        }
    }
    let mut packages = Vec::new();
    for (i, package) in lock.packages.into_iter().enumerate() {
        let origin = format!("{file}: packages[{i}] ({})", package.name);
        if package.vcs.is_some() || package.directory.is_some() || package.archive.is_some() {
            return Err(lock_error(
                origin,
                "a VCS, directory or archive source is not installed by hoist: only wheels",
            ));
        }
        let version = package
            .version
            .ok_or_else(|| lock_error(&origin, "no version: the lock does not pin it"))?;
        let mut wheels = Vec::new();
        for (j, wheel) in package.wheels.iter().enumerate() {
            let at = format!("{origin}.wheels[{j}]");
            let sha256 = wheel
                .hashes
                .get("sha256")
                .filter(|h| is_sha256(h))
                .ok_or_else(|| lock_error(&at, "no sha256 in hashes"))?;
            wheels.push(
                LockedWheel::new(
                    wheel.name.as_deref(),
                    wheel.url.as_deref(),
                    wheel.path.as_deref(),
                    sha256,
                    wheel.size,
                )
                .ok_or_else(|| lock_error(&at, "neither name, url nor path"))?,
            );
        }
        let marker = package
            .marker
            .as_deref()
            .map(|m| Marker::parse(m).map_err(|e| lock_error(&origin, e)))
            .transpose()?;
        packages.push(LockedPackage {
            name: normalize(&package.name),
            version,
            marker,
            hashes: wheels.iter().map(|w| w.sha256.clone()).collect(),
            wheels,
            sdist: package.sdist.is_some(),
            origin,
        });
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn error(text: &str) -> String {
        parse_requirements(text, "requirements.lock")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn pinned_hashed_requirements_parse() {
        let text = format!(
            "# generated by uv\n--index-url https://pypi.org/simple\n\nanyio==4.6.2 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n    # via starlette\nUvicorn[standard]==0.32.1 ; python_version >= \"3.8\" --hash=sha256:{B}\ncolorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash sha256:{A} --hash=md5:00\n"
        );
        let packages = parse_requirements(&text, "requirements.lock").unwrap();
        assert_eq!(packages.len(), 3);
        assert_eq!(packages[0].name, "anyio");
        assert_eq!(packages[0].version, "4.6.2");
        assert_eq!(packages[0].hashes, [A, B]);
        assert_eq!(packages[0].origin, "requirements.lock:4");
        assert_eq!(packages[1].name, "uvicorn");
        assert!(packages[1].marker.is_some());
        assert_eq!(packages[2].hashes, [A]);
        assert_eq!(packages[2].origin, "requirements.lock:9");
    }

    #[test]
    fn unpinned_unhashed_and_unsupported_lines_are_named() {
        let cases = [
            (
                format!("six==1.17.0 --hash=sha256:{A}\nfastapi>=0.100 --hash=sha256:{A}\n"),
                "requirements.lock:2",
                "fastapi",
            ),
            (
                "six==1.17.0\n".to_owned(),
                "requirements.lock:1",
                "no --hash",
            ),
            (
                format!("a==1 --hash=sha256:{A}\n\nrequests --hash=sha256:{A}\n"),
                "requirements.lock:3",
                "not pinned",
            ),
            (format!("six==1.* --hash=sha256:{A}\n"), ":1", "six"),
            (
                format!("six @ https://x/six.whl --hash=sha256:{A}\n"),
                ":1",
                "direct URL",
            ),
            ("-e .\n".to_owned(), ":1", "editable"),
            ("-r other.txt\n".to_owned(), ":1", "nested"),
            (
                "six==1.17.0 --hash=sha256:abc\n".to_owned(),
                ":1",
                "not a sha256",
            ),
            (
                format!("six==1 ; python_version >> '3' --hash=sha256:{A}\n"),
                ":1",
                "six",
            ),
        ];
        for (text, at, detail) in cases {
            let err = error(&text);
            assert!(err.contains(at) && err.contains(detail), "{err}\n{text}");
        }
    }

    #[test]
    fn a_pylock_names_wheels_with_hashes() {
        let text = format!(
            r#"lock-version = "1.0"
created-by = "uv"
[[packages]]
name = "Six"
version = "1.17.0"
wheels = [{{ url = "https://files.example/six-1.17.0-py2.py3-none-any.whl", size = 11050, hashes = {{ sha256 = "{A}" }} }}]
[[packages]]
name = "psycopg2"
version = "2.9.10"
marker = "sys_platform == 'linux'"
sdist = {{ name = "psycopg2-2.9.10.tar.gz", hashes = {{ sha256 = "{B}" }} }}
"#
        );
        let packages = parse_pylock(&text, "pylock.toml").unwrap();
        assert_eq!(packages[0].name, "six");
        assert_eq!(
            packages[0].wheels[0].file,
            "six-1.17.0-py2.py3-none-any.whl"
        );
        assert_eq!(packages[0].wheels[0].size, Some(11050));
        assert_eq!(packages[0].hashes, [A]);
        assert!(packages[1].sdist && packages[1].wheels.is_empty());
        assert!(packages[1].marker.is_some());
        let err = parse_pylock(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"x\"\n",
            "pylock.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("packages[0] (x)") && err.contains("no version"),
            "{err}"
        );
        let err = parse_pylock("lock-version = \"2.0\"\n", "pylock.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lock-version"), "{err}");
    }
}
