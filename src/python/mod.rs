//! Python dependencies as image layers: a lock file in, installed packages out, for
//! every target platform, with no Python run.
//!
//! [`plan`] reads the lock ([`lock`]), finds each locked file by its sha256 (a
//! wheelhouse directory; never by name alone), evaluates markers ([`marker`]) and picks
//! the best wheel by its tags ([`tags`]) for each platform, and plans each wheel's
//! installation ([`wheel`]) as an [`EntrySource`] whose
//! members stream from the archive into the layer. Packages whose chosen wheel is the
//! same file on every platform make one layer all platforms share; the others one
//! layer per platform. Every package missing a wheel for some platform is reported at
//! once, before anything is built.

pub mod base;
pub mod credentials;
mod index;
pub mod lock;
pub mod marker;
pub mod tags;
mod uvlock;
pub mod wheel;
mod zip;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use hoist_layers::{
    BlobStore, EntrySource, HashingWriter, SharedSource, SourceEntry, SourceError, SourceKind,
};
use sha2::{Digest as _, Sha256};

use lock::LockedPackage;
use marker::Environment;
use tags::{Libc, Target, WheelName};
use wheel::{InstallLayout, WheelInstall};

/// The most wheel files a wheelhouse may hold.
const MAX_WHEELHOUSE_FILES: usize = 100_000;

/// What can go wrong planning Python layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PythonError {
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The lock is malformed, or a package in it is not pinned and hashed.
    #[error("{origin}: {message}")]
    Lock {
        /// `requirements.lock:12`, `pylock.toml: packages[3] (six)`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A wheel is malformed, or its content disagrees with its own RECORD.
    #[error("wheel {file}: {message}")]
    Wheel {
        /// The wheel's file name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Packages without a usable wheel for some platform: every one, at once.
    #[error("no installable wheel for:\n{}", missing.join("\n"))]
    MissingWheels {
        /// One line per package × platform.
        missing: Vec<String>,
    },
    /// A package index or download failed, or served bytes that are not the locked ones.
    #[error("{url}: {message}")]
    Index {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A virtual environment or a script needs the image's interpreter, and neither
    /// the settings nor the base name it.
    #[error(
        "{what} needs the image's interpreter for {platform}, and the base image does not tell it"
    )]
    NoInterpreter {
        /// `the virtual environment`, `the console script uvicorn of uvicorn-0.32.1-….whl`.
        what: String,
        /// The platform.
        platform: String,
    },
    /// A marker could not be evaluated.
    #[error("{origin}: marker: {message}")]
    Marker {
        /// Where the package is in the lock.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A `[[layer]] python = {…}`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonSettings {
    /// The lock file.
    pub lock: PathBuf,
    /// A directory of wheel files.
    pub wheelhouse: Option<PathBuf>,
    /// Simple indexes (PEP 503/691) to download the wheels the wheelhouse lacks from,
    /// in the order they are asked (the extra indexes, then the default one).
    pub indexes: Vec<String>,
    /// Where downloaded wheels are kept, by sha256 (`<dir>/<sha256>/<file name>`).
    pub wheel_cache: PathBuf,
    /// Install into a virtual environment at this image path (`/opt/venv`).
    pub venv: Option<String>,
    /// Install into this site-packages directory instead (`None` with no venv: the
    /// interpreter's own, `/usr/local/lib/python3.X/site-packages`).
    pub target: Option<String>,
    /// `--offline`: no index or URL is asked; wheels come from the wheelhouse, the
    /// lock's local files and the wheel cache.
    pub offline: bool,
}

/// One platform image's interpreter: what its wheels must fit and its scripts run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// Its version, `3.11` or `3.11.9`.
    pub version: String,
    /// Its path in the image (`/usr/local/bin/python3.11`), when known: a virtual
    /// environment's links and console scripts' shebangs name it.
    pub path: Option<String>,
    /// The image's C library (the manylinux/musllinux level it accepts).
    pub libc: Libc,
}

impl Interpreter {
    fn minor(&self) -> Result<u32, PythonError> {
        self.version
            .strip_prefix("3.")
            .and_then(|m| m.split('.').next())
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| PythonError::Lock {
                origin: "python.version".into(),
                message: format!(
                    "`{}`: expected a CPython 3 version such as 3.11",
                    self.version
                ),
            })
    }
}

/// One target platform: its name (`linux/arm64`), its machine (`aarch64`) and its
/// image's interpreter (platforms of one base may differ in each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPlatform {
    /// As the image names it.
    pub name: String,
    /// `x86_64`, `aarch64`, `armv7l`.
    pub machine: String,
    /// Its image's interpreter.
    pub interpreter: Interpreter,
}

/// A wheel chosen for installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenWheel {
    /// The package's normalised name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The wheel's file name.
    pub file: String,
    /// Its sha256, lowercase hex (checked).
    pub sha256: String,
    /// Where the lock says it comes from, when it says (pylock.toml, uv.lock).
    pub url: Option<String>,
}

/// A layer several platforms share: those whose interpreters install alike (every
/// platform, unless their bases' interpreters differ).
#[derive(Debug)]
pub struct SharedLayer {
    /// The platforms (indices into those given to [`plan`]).
    pub platforms: Vec<usize>,
    /// The venv skeleton and the wheels the same file on each of them.
    pub sources: Vec<SharedSource>,
    /// Those wheels.
    pub wheels: Vec<ChosenWheel>,
}

/// The planned layers: those groups of platforms share, and one per platform for the
/// rest (index into the platforms given to [`plan`]; empty when every wheel is shared).
#[derive(Debug)]
pub struct PythonLayers {
    /// One per group of platforms with the same interpreter.
    pub shared: Vec<SharedLayer>,
    /// Per platform: the sources and wheels of its own layer.
    pub native: Vec<(Vec<SharedSource>, Vec<ChosenWheel>)>,
}

/// PEP 503 name normalisation: lowercase, runs of `-`, `_`, `.` → `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

impl PythonSettings {
    /// Where things go in an image with `interpreter`.
    pub fn layout(&self, interpreter: &Interpreter) -> Result<InstallLayout, PythonError> {
        let minor = interpreter.minor()?;
        let python = format!("python3.{minor}");
        Ok(match (&self.venv, &self.target) {
            (Some(venv), _) => {
                let venv = venv.trim_end_matches('/');
                InstallLayout {
                    site_packages: format!("{venv}/lib/{python}/site-packages"),
                    scripts: format!("{venv}/bin"),
                    data: venv.to_owned(),
                    headers: format!("{venv}/include/site/{python}"),
                    interpreter: Some(format!("{venv}/bin/python")),
                }
            }
            (None, target) => InstallLayout {
                site_packages: target.as_deref().map_or_else(
                    || format!("/usr/local/lib/{python}/site-packages"),
                    |t| t.trim_end_matches('/').to_owned(),
                ),
                scripts: "/usr/local/bin".into(),
                data: "/usr/local".into(),
                headers: format!("/usr/local/include/{python}"),
                interpreter: interpreter.path.clone(),
            },
        })
    }
}

/// Plans the layers installing `lock` (read from `settings.lock`) for each of
/// `platforms`; the wheels taken from or downloaded into the wheel cache are leased in
/// `store` (see `hold`).
pub fn plan(
    settings: &PythonSettings,
    lock: &lock::Lock,
    platforms: &[TargetPlatform],
    store: Option<&BlobStore>,
) -> Result<PythonLayers, PythonError> {
    let mut files = match &settings.wheelhouse {
        Some(dir) => scan_wheelhouse(dir)?,
        None => BTreeMap::new(),
    };
    let targets = targets(platforms)?;
    // Per platform: the packages its markers select.
    let wanted = targets
        .iter()
        .map(|(_, env)| lock.select(env))
        .collect::<Result<Vec<_>, _>>()?;
    add_cached(&lock.packages, &settings.wheel_cache, store, &mut files)?;
    add_local(&lock.packages, &mut files)?;
    if !settings.offline {
        fetch_missing(settings, store, &targets, &wanted, &mut files)?;
    }
    let chosen = choose(platforms, &targets, &wanted, &files).map_err(|e| match e {
        PythonError::MissingWheels { mut missing } if settings.offline => {
            missing.push(format!(
                "  (--offline: no index or URL was asked; only the wheelhouse, the lock's local files and the wheel cache {})",
                settings.wheel_cache.display()
            ));
            PythonError::MissingWheels { missing }
        }
        other => other,
    })?;
    split_layers(settings, platforms, &chosen)
}

/// Each platform's tags and marker environment, from its own interpreter.
fn targets(platforms: &[TargetPlatform]) -> Result<Vec<(Target, Environment)>, PythonError> {
    platforms
        .iter()
        .map(|platform| {
            let interpreter = &platform.interpreter;
            let minor = interpreter.minor()?;
            let full_version = if interpreter.version.matches('.').count() >= 2 {
                interpreter.version.clone()
            } else {
                format!("{}.0", interpreter.version)
            };
            let target = Target {
                minor,
                machine: platform.machine.clone(),
                libc: interpreter.libc,
            };
            let env = Environment {
                python_version: format!("3.{minor}"),
                python_full_version: full_version,
                platform_machine: platform.machine.clone(),
            };
            Ok((target, env))
        })
        .collect()
}

/// Per platform, per wanted package: the chosen wheel and its file; every package ×
/// platform without one in one error.
fn choose(
    platforms: &[TargetPlatform],
    targets: &[(Target, Environment)],
    wanted: &[Vec<&LockedPackage>],
    files: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Vec<(ChosenWheel, PathBuf)>>, PythonError> {
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for ((platform, (target, _)), selected) in platforms.iter().zip(targets).zip(wanted) {
        let mut picks = Vec::new();
        for package in selected {
            match pick(package, target, files) {
                Ok(pick) => picks.push(pick),
                Err(reason) => missing.push(format!(
                    "  {}=={} for {} ({}): {reason}",
                    package.name, package.version, platform.name, package.origin
                )),
            }
        }
        chosen.push(picks);
    }
    if missing.is_empty() {
        Ok(chosen)
    } else {
        Err(PythonError::MissingWheels { missing })
    }
}

/// Per group of platforms whose interpreters install alike (same version and path),
/// one shared layer (the venv's files and every wheel chosen on all of them); each
/// platform's own layer for the rest.
fn split_layers(
    settings: &PythonSettings,
    platforms: &[TargetPlatform],
    chosen: &[Vec<(ChosenWheel, PathBuf)>],
) -> Result<PythonLayers, PythonError> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let alike = |j: &usize| {
            let other: &Interpreter = &platforms[*j].interpreter;
            (&other.version, &other.path)
                == (&platform.interpreter.version, &platform.interpreter.path)
        };
        match groups.iter_mut().find(|g| g.first().is_some_and(alike)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut shared = Vec::new();
    let mut native: Vec<(Vec<SharedSource>, Vec<ChosenWheel>)> =
        platforms.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for group in groups {
        let first = &platforms[group[0]];
        let layout = settings.layout(&first.interpreter)?;
        let picks = |i: &usize| chosen.get(*i).map_or(&[][..], Vec::as_slice);
        let everywhere: BTreeSet<&str> = picks(&group[0])
            .iter()
            .filter(|(w, _)| {
                group
                    .iter()
                    .all(|i| picks(i).iter().any(|(o, _)| o.sha256 == w.sha256))
            })
            .map(|(w, _)| w.sha256.as_str())
            .collect();
        let mut layer = SharedLayer {
            platforms: group.clone(),
            sources: Vec::new(),
            wheels: Vec::new(),
        };
        if let Some(venv) = &settings.venv {
            let path =
                first
                    .interpreter
                    .path
                    .as_deref()
                    .ok_or_else(|| PythonError::NoInterpreter {
                        what: "the virtual environment".into(),
                        platform: first.name.clone(),
                    })?;
            layer.sources.push(SharedSource::new(VenvSkeleton::new(
                venv,
                path,
                &first.interpreter.version,
            )));
        }
        for (n, i) in group.iter().enumerate() {
            for (wheel, path) in picks(i) {
                let is_shared = everywhere.contains(wheel.sha256.as_str());
                if is_shared && n > 0 {
                    continue;
                }
                let install = WheelInstall::plan(path, wheel, &layout).map_err(|e| match e {
                    PythonError::NoInterpreter { what, .. } => PythonError::NoInterpreter {
                        what,
                        platform: platforms[*i].name.clone(),
                    },
                    other => other,
                })?;
                let install = SharedSource::new(install);
                if is_shared {
                    layer.sources.push(install);
                    layer.wheels.push(wheel.clone());
                } else {
                    native[*i].0.push(install);
                    native[*i].1.push(wheel.clone());
                }
            }
        }
        shared.push(layer);
    }
    Ok(PythonLayers { shared, native })
}

/// The best wheel for `package` on `target` among the files the lock accepts, or why
/// there is none.
fn pick(
    package: &LockedPackage,
    target: &Target,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(ChosenWheel, PathBuf), String> {
    let supported = target.supported_tags();
    let mut candidates = Vec::new();
    let mut seen_wheels = Vec::new();
    for hash in &package.hashes {
        let Some(path) = files.get(hash) else {
            continue;
        };
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(name) = WheelName::parse(&file) else {
            continue;
        };
        if name.name != package.name {
            continue;
        }
        seen_wheels.push(file.clone());
        if let Some(rank) = target.rank(&name, &supported) {
            candidates.push((rank, file, hash.clone(), path.clone()));
        }
    }
    candidates.sort();
    if let Some((_, file, sha256, path)) = candidates.into_iter().next() {
        let url = package
            .wheels
            .iter()
            .find(|w| w.sha256 == sha256)
            .and_then(|w| w.url.clone());
        return Ok((
            ChosenWheel {
                name: package.name.clone(),
                version: package.version.clone(),
                file,
                sha256,
                url,
            },
            path,
        ));
    }
    let locked: Vec<&str> = package.wheels.iter().map(|w| w.file.as_str()).collect();
    Err(if !seen_wheels.is_empty() {
        format!(
            "no wheel fits cp3{} on {} with {} (found: {})",
            target.minor,
            target.machine,
            target.libc,
            seen_wheels.join(", ")
        )
    } else if package.sdist && locked.is_empty() {
        "only a source distribution is locked; hoist installs wheels (build one on a native runner into the wheelhouse, or use a binary package such as psycopg2-binary)".to_owned()
    } else {
        // Files of this name whose bytes the lock does not name: altered, or another build.
        let strangers: Vec<String> = files
            .iter()
            .filter_map(|(hash, path)| {
                let file = path.file_name()?.to_string_lossy().into_owned();
                let name = WheelName::parse(&file).ok()?;
                (name.name == package.name).then(|| format!("{file} has sha256 {hash}"))
            })
            .collect();
        if strangers.is_empty() {
            "none of its locked hashes matches a wheel in the wheelhouse or the index".to_owned()
        } else {
            format!(
                "none of its locked hashes matches a wheel in the wheelhouse or the index ({}, which the lock does not name)",
                strangers.join("; ")
            )
        }
    })
}

/// Leases the wheel cache's entry `sha256` (hex) in `store` for this process and stamps
/// its use (prune's order), as the store does its blobs, before the wheel is looked at:
/// a concurrent `hoist cache prune` then either spares it or has already removed it
/// (and the build downloads it, as on any miss). Best effort, as for blobs: a cache
/// that cannot record a lease still builds.
fn hold(store: Option<&BlobStore>, sha256: &str) {
    if let (Some(store), Ok(digest)) = (store, format!("sha256:{sha256}").parse()) {
        let _ = store.hold(&digest);
    }
}

/// Adds the wheels of the cache whose sha256 a package of the lock names (each leased
/// in `store` first, then hashed again: the cache is a directory anyone with access
/// could have changed).
fn add_cached(
    packages: &[LockedPackage],
    cache: &Path,
    store: Option<&BlobStore>,
    files: &mut BTreeMap<String, PathBuf>,
) -> Result<(), PythonError> {
    for hash in packages.iter().flat_map(|p| &p.hashes) {
        if files.contains_key(hash) {
            continue;
        }
        // Only what the cache may hold is leased (a lease stamps its use); the listing
        // after the lease sees the wheel unless a prune removed it before.
        if !cache.join(hash).is_dir() {
            continue;
        }
        hold(store, hash);
        let Ok(listing) = std::fs::read_dir(cache.join(hash)) else {
            continue;
        };
        for path in listing.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_some_and(|e| e == "whl") && sha256_file(&path)? == *hash {
                files.insert(hash.clone(), path);
                break;
            }
        }
    }
    Ok(())
}

/// Adds the local wheel files a lock names (`path`), when they hash to their lock's
/// sha256; a missing or different file is left to the other sources.
fn add_local(
    packages: &[LockedPackage],
    files: &mut BTreeMap<String, PathBuf>,
) -> Result<(), PythonError> {
    for wheel in packages.iter().flat_map(|p| &p.wheels) {
        let Some(path) = &wheel.path else {
            continue;
        };
        if files.contains_key(&wheel.sha256) || !path.is_file() {
            continue;
        }
        if sha256_file(path)? == wheel.sha256 {
            files.insert(wheel.sha256.clone(), path.clone());
        }
    }
    Ok(())
}

/// For every package some platform has no wheel for yet, the best files by tags among
/// those the lock names with URLs, or else those the indexes list with a locked hash:
/// downloaded into the cache and added to `files`. The indexes are asked in order, as
/// uv's first-index strategy does, the next one only for a package some platform still
/// has no wheel for (the lock's hashes decide which bytes are taken, wherever from).
fn fetch_missing(
    settings: &PythonSettings,
    store: Option<&BlobStore>,
    targets: &[(Target, Environment)],
    wanted: &[Vec<&LockedPackage>],
    files: &mut BTreeMap<String, PathBuf>,
) -> Result<(), PythonError> {
    let mut client: Option<index::Index> = None;
    let mut done = BTreeSet::new();
    for ((target, _), selected) in targets.iter().zip(wanted) {
        for package in selected {
            if pick(package, target, files).is_ok() || !done.insert(package.name.clone()) {
                continue;
            }
            let mut candidates: Vec<index::IndexFile> = package
                .wheels
                .iter()
                .filter_map(|w| {
                    Some(index::IndexFile {
                        file: w.file.clone(),
                        url: w.url.clone()?,
                        sha256: w.sha256.clone(),
                        size: w.size,
                        listed_by: None,
                    })
                })
                .collect();
            if candidates.is_empty() && !settings.indexes.is_empty() {
                let index = connect(&mut client, &settings.indexes)?;
                for i in 0..index.count() {
                    for file in index.list(i, &package.name)?.unwrap_or_default() {
                        let locked = package.hashes.contains(&file.sha256);
                        if locked && !candidates.iter().any(|c| c.sha256 == file.sha256) {
                            candidates.push(file);
                        }
                    }
                    let served = |(t, _): &(Target, Environment)| {
                        pick(package, t, files).is_ok() || best(t, package, &candidates).is_some()
                    };
                    if targets.iter().all(served) {
                        break;
                    }
                }
            }
            // The best candidate for each platform (not only this one: one listing
            // serves them all).
            let needed: BTreeSet<&str> = targets
                .iter()
                .filter_map(|(t, _)| best(t, package, &candidates))
                .map(|f| f.sha256.as_str())
                .collect();
            for file in candidates
                .iter()
                .filter(|f| needed.contains(f.sha256.as_str()))
            {
                if files.contains_key(&file.sha256) {
                    continue;
                }
                let index = connect(&mut client, &settings.indexes)?;
                hold(store, &file.sha256);
                let path = index.download(file, &settings.wheel_cache)?;
                files.insert(file.sha256.clone(), path);
            }
        }
    }
    Ok(())
}

/// The client in `slot`, made for `indexes` on first use.
fn connect<'a>(
    slot: &'a mut Option<index::Index>,
    indexes: &[String],
) -> Result<&'a index::Index, PythonError> {
    if slot.is_none() {
        *slot = Some(index::Index::new(indexes)?);
    }
    Ok(slot.as_ref().expect("set above"))
}

/// The best of `candidates` (files with a hash `package` locks) for `target` by tags
/// (ties by file name), if one fits.
fn best<'a>(
    target: &Target,
    package: &LockedPackage,
    candidates: &'a [index::IndexFile],
) -> Option<&'a index::IndexFile> {
    let supported = target.supported_tags();
    candidates
        .iter()
        .filter(|f| package.hashes.contains(&f.sha256))
        .filter_map(|f| {
            let name = WheelName::parse(&f.file).ok()?;
            (name.name == package.name).then_some(())?;
            Some((target.rank(&name, &supported)?, &f.file, f))
        })
        .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)))
        .map(|(_, _, f)| f)
}

fn sha256_file(path: &Path) -> Result<String, PythonError> {
    let mut hasher = HashingWriter::new(std::io::sink());
    let mut file = File::open(path).map_err(|source| PythonError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    std::io::copy(&mut file, &mut hasher).map_err(|source| PythonError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, digest, _) = hasher.finish();
    Ok(digest.hex().to_owned())
}

/// sha256 (hex) → path of every `*.whl` in `dir` (not recursive).
fn scan_wheelhouse(dir: &Path) -> Result<BTreeMap<String, PathBuf>, PythonError> {
    let io = |path: &Path, source| PythonError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut files = BTreeMap::new();
    let mut listing: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl") && p.is_file())
        .take(MAX_WHEELHOUSE_FILES + 1)
        .collect();
    if listing.len() > MAX_WHEELHOUSE_FILES {
        return Err(io(
            dir,
            std::io::Error::other(format!("more than {MAX_WHEELHOUSE_FILES} wheels")),
        ));
    }
    listing.sort();
    for path in listing {
        files.insert(sha256_file(&path)?, path);
    }
    Ok(files)
}

/// A venv's own files: `pyvenv.cfg` and `bin/python*` links to the image's interpreter.
#[derive(Debug)]
struct VenvSkeleton {
    entries: Vec<SourceEntry>,
    contents: Vec<Vec<u8>>,
}

impl VenvSkeleton {
    fn new(venv: &str, interpreter: &str, version: &str) -> Self {
        let venv = venv.trim_end_matches('/');
        let home = Path::new(interpreter)
            .parent()
            .map_or_else(|| "/usr/local/bin".to_owned(), |p| p.display().to_string());
        let cfg =
            format!("home = {home}\ninclude-system-site-packages = false\nversion = {version}\n")
                .into_bytes();
        let short: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        let link = |name: &str, target: &str| SourceEntry {
            path: format!("{venv}/bin/{name}"),
            kind: SourceKind::Symlink {
                target: target.to_owned(),
            },
            mode: 0o777,
        };
        let entries = vec![
            SourceEntry {
                path: format!("{venv}/pyvenv.cfg"),
                kind: SourceKind::File {
                    size: cfg.len() as u64,
                    sha256: Sha256::digest(&cfg).into(),
                },
                mode: 0o644,
            },
            link("python", interpreter),
            link("python3", "python"),
            link(&format!("python{short}"), "python"),
        ];
        VenvSkeleton {
            entries,
            contents: vec![cfg],
        }
    }
}

impl EntrySource for VenvSkeleton {
    fn name(&self) -> String {
        "the virtual environment".into()
    }

    fn entries(&self) -> Result<Vec<SourceEntry>, SourceError> {
        Ok(self.entries.clone())
    }

    fn open(&self, index: usize) -> Result<Box<dyn std::io::Read + '_>, SourceError> {
        let bytes = self.contents.get(index).ok_or("no such entry")?;
        Ok(Box::new(bytes.as_slice()))
    }
}
