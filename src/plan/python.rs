//! A `[[layer]] python = {…}`: resolved here into a [`PendingPython`] (every key
//! checked, the lock read and hashed once, the wheelhouse seen to exist), then planned by the build
//! once its base is open ([`Plan::expand_python`]): the Python version and C library
//! the settings leave out are read from the base, and wheels are found in the
//! wheelhouse, hoist's wheel cache (under `--cache-dir`) or, unless `--offline`, the
//! index. The layers: one every platform shares (the venv's own files and the wheels
//! that are the same file everywhere) and one per platform for the rest. Every error
//! names the key: `layer[2].python.lock`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_layers::{Compression, LayerSpec};

use super::{Plan, PlannedLayer, invalid};
use crate::config::{LayerSection, PythonSection};
use crate::error::Result;
use crate::oci::platform::Platform;
use crate::python::lock::LockFile;
use crate::python::tags::{Libc, machine_of};
use crate::python::{self, Interpreter, PythonError, PythonSettings, TargetPlatform};

/// The index used when neither `index` nor `wheelhouse` is given.
const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// Where downloaded wheels are kept under hoist's cache directory, by sha256 (the
/// cache layout is hoist-layers' to describe: its symlink refusal covers this too).
pub const WHEEL_CACHE_DIR: &str = hoist_layers::prune::PYTHON_WHEELS_DIR;

/// A `[[layer]] python` resolved but not planned yet: its layers depend on the base.
#[derive(Clone, Debug)]
pub struct PendingPython {
    /// Where its layers go among the plan's layers.
    pub at: usize,
    /// Its `[[layer]]` number, from 0.
    number: usize,
    /// The lock as written (progress lines, history).
    lock_name: String,
    /// Settings (the interpreter is each platform's: given, else from the base).
    settings: PythonSettings,
    /// The lock, read once when the plan is resolved: the build installs, and the
    /// provenance records, these bytes even if the file changes during the build.
    read: Arc<LockFile>,
    /// `version` as given.
    version: Option<String>,
    /// `interpreter` as given.
    interpreter: Option<String>,
    /// `libc` as given.
    libc: Option<Libc>,
    /// Each platform's machine (`x86_64`), in the order of `platforms`.
    machines: Vec<String>,
    platforms: Vec<Platform>,
    uid: u32,
    gid: u32,
    epoch: u64,
    compression: Compression,
}

/// What one platform image of the base says about its interpreter (each `None` when
/// it does not say).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseFacts {
    /// `PYTHON_VERSION` from its config (what the official `python` images set).
    pub config_version: Option<String>,
    /// The interpreter its files ship: version (`3.11`) and path
    /// (`/usr/bin/python3.11`), see [`crate::python::base::interpreter`].
    pub shipped: Option<(String, String)>,
    /// Its C library, from its package database.
    pub libc: Option<Libc>,
}

/// What the build knows when it plans Python layers: what each platform of the base
/// says, hoist's cache directory and `--offline`.
#[derive(Clone, Debug, Default)]
pub struct PythonContext {
    /// Per platform of the base image, what it says (empty: no base).
    pub base: Vec<(Platform, BaseFacts)>,
    /// hoist's cache directory (`--cache-dir`).
    pub cache_dir: PathBuf,
    /// The build's store of that cache: the wheels the build takes from the cache or
    /// downloads into it are leased there, as its blobs are, before they are looked at,
    /// so a concurrent `hoist cache prune` spares them (`None`: not leased).
    pub store: Option<hoist_layers::BlobStore>,
    /// `--offline`.
    pub offline: bool,
}

impl PendingPython {
    /// Whether planning needs the base's files: `libc` is not given (its package
    /// database tells), or `interpreter` is not and `version` is not either, or a venv
    /// links to it (where it is tells). With `version` and `libc` given and no venv, a
    /// push leaves the base's layers in the registry (mounted, never downloaded): the
    /// interpreter is then only as `interpreter` or `PYTHON_VERSION` say, and console
    /// scripts need one of them. Never dependent on the build's outputs, so every
    /// output gets the same layers.
    pub fn needs_base_files(&self) -> bool {
        self.libc.is_none()
            || (self.interpreter.is_none()
                && (self.version.is_none() || self.settings.venv.is_some()))
    }

    /// The lock file.
    pub fn lock(&self) -> &Path {
        &self.settings.lock
    }

    /// The sha256 of the lock's bytes as read (and installed).
    pub fn lock_digest(&self) -> &hoist_layers::Digest {
        &self.read.digest
    }

    /// The lock's name among a provenance's inputs: `layer[N].python.lock`, N its
    /// `[[layer]]` number from 0 (as the statement numbers every layer).
    pub fn input_name(&self) -> String {
        format!("layer[{}].python.lock", self.number)
    }

    fn field(&self, key: &str) -> String {
        format!("layer[{}].python{key}", self.number)
    }

    /// The interpreter of `platform`'s image: each of version, path and C library as
    /// given (a version also from the name of the interpreter given, `python3.11`),
    /// else as its base says (the config's `PYTHON_VERSION`, else the interpreter it
    /// ships; the path of the interpreter it ships, else the official
    /// images' `/usr/local/bin/python3.X` when `PYTHON_VERSION` says it is one of them).
    fn interpreter(&self, platform: &Platform, context: &PythonContext) -> Result<Interpreter> {
        let facts = context
            .base
            .iter()
            .find(|(p, _)| p.satisfies(platform))
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        // Only what this layer's settings ask the files for: the same settings give the
        // same layers whatever other layers made the build read.
        let facts = BaseFacts {
            shipped: facts.shipped.filter(|_| self.needs_base_files()),
            ..facts
        };
        // What is set wins: `version`, else the version `interpreter` is named for.
        let version = self
            .version
            .clone()
            .or_else(|| {
                self.interpreter
                    .as_deref()
                    .and_then(python::base::version_of_path)
            })
            .or_else(|| facts.config_version.clone())
            .or_else(|| facts.shipped.as_ref().map(|(v, _)| v.clone()))
            .ok_or_else(|| {
                invalid(
                    &self.field(".version"),
                    &format!("missing, and the base image for {platform} sets no PYTHON_VERSION and ships no python3.X in /usr/local/bin or /usr/bin: give the image's Python version, e.g. version = \"3.11\" (and interpreter = \"/usr/bin/python3.11\" for a venv or console scripts)"),
                )
            })?;
        let short = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        let path = self.interpreter.clone().or_else(|| {
            let shipped = facts
                .shipped
                .filter(|(v, _)| short(v) == short(&version))
                .map(|(_, p)| p);
            shipped.or_else(|| {
                facts
                    .config_version
                    .filter(|v| short(v) == short(&version))
                    .map(|_| format!("/usr/local/bin/python{}", short(&version)))
            })
        });
        let libc = self.libc.or(facts.libc).ok_or_else(|| {
            invalid(
                &self.field(".libc"),
                &format!("missing, and the base image for {platform} has no libc6 (dpkg) or musl (apk) package: give the image's C library, e.g. libc = \"glibc-2.36\" or \"musl-1.2\""),
            )
        })?;
        Ok(Interpreter {
            version,
            path,
            libc,
        })
    }

    /// The layers, planned for `context`.
    fn plan(&self, context: &PythonContext) -> Result<Vec<PlannedLayer>> {
        let targets = self
            .platforms
            .iter()
            .zip(&self.machines)
            .map(|(platform, machine)| {
                Ok(TargetPlatform {
                    name: platform.to_string(),
                    machine: machine.clone(),
                    interpreter: self.interpreter(platform, context)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let settings = PythonSettings {
            wheel_cache: context.cache_dir.join(WHEEL_CACHE_DIR),
            offline: context.offline,
            ..self.settings.clone()
        };
        let planned = python::plan(&settings, &self.read.lock, &targets, context.store.as_ref()).map_err(|e| match e {
            PythonError::NoInterpreter { what, platform } => invalid(
                &self.field(".interpreter"),
                &format!("missing: {what} needs the image's interpreter for {platform}, and the base image does not tell it (no python3.X in /usr/local/bin or /usr/bin): give its path, e.g. interpreter = \"/usr/bin/python3.11\""),
            ),
            other => other.into(),
        })?;
        let into = settings.venv.clone().unwrap_or_else(|| {
            targets
                .first()
                .and_then(|t| settings.layout(&t.interpreter).ok())
                .map(|l| l.site_packages)
                .unwrap_or_default()
        });
        let spec = |sources| LayerSpec {
            source: None,
            dest: "/".into(),
            excludes: Vec::new(),
            files: Vec::new(),
            sources,
            uid: self.uid,
            gid: self.gid,
            modes: hoist_layers::ModePolicy::Keep,
            remove: Vec::new(),
            mtime: self.epoch,
            compression: self.compression,
        };
        let names = |what: &str, count: usize| {
            let summary = format!("python {} → {into}, {what}", self.lock_name);
            PlannedLayer {
                label: format!("python: {}", self.lock_name),
                summary: format!(
                    "{summary}, {count} wheel{}",
                    if count == 1 { "" } else { "s" }
                ),
                created_by: format!("hoist: {summary}"),
                spec: spec(Vec::new()),
                platforms: None,
                number: self.number,
            }
        };
        let mut layers = Vec::new();
        let everyone = planned.shared.len() == 1;
        for group in planned.shared {
            if group.sources.is_empty() {
                continue;
            }
            let members: Vec<Platform> = group
                .platforms
                .iter()
                .filter_map(|i| self.platforms.get(*i).cloned())
                .collect();
            let what = if everyone {
                "every platform".to_owned()
            } else {
                members
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut shared = names(&what, group.wheels.len());
            shared.spec.sources = group.sources;
            shared.platforms = (!everyone).then_some(members);
            layers.push(shared);
        }
        for (platform, (sources, wheels)) in self.platforms.iter().zip(planned.native) {
            if sources.is_empty() {
                continue;
            }
            let mut own = names(&platform.to_string(), wheels.len());
            own.spec.sources = sources;
            own.platforms = Some(vec![platform.clone()]);
            layers.push(own);
        }
        Ok(layers)
    }
}

impl Plan {
    /// This plan with its Python layers planned for `context` (the build calls this
    /// once the base is open); a plan without any is returned as it is.
    ///
    /// # Errors
    /// A setting neither given nor read from the base (naming the key), an unreadable
    /// lock or wheel, a package without a wheel for some platform.
    pub fn expand_python(&self, context: &PythonContext) -> Result<Plan> {
        let mut plan = self.clone();
        plan.python = Vec::new();
        // From the last: each insertion leaves the earlier positions as they were.
        for pending in self.python.iter().rev() {
            let layers = pending.plan(context)?;
            plan.layers.splice(pending.at..pending.at, layers);
        }
        super::layer::distinct_history(&mut plan.layers);
        Ok(plan)
    }
}

/// `[[layer]]` number `i` (from 0), whose `python` is `section`, checked; its layers go
/// at the start of the plan's until the caller sets [`PendingPython::at`].
pub(super) fn resolve_python(
    i: usize,
    layer: &LayerSection,
    section: &PythonSection,
    config_dir: &Path,
    epoch: u64,
    compression: Compression,
    platforms: Option<&[Platform]>,
) -> Result<PendingPython> {
    let field = |key: &str| format!("layer[{i}].python{key}");
    let others = [
        ("from", layer.from.is_some()),
        ("to", layer.to.is_some()),
        ("files", !layer.files.is_empty()),
        ("exclude", !layer.exclude.is_empty()),
        ("mode", layer.mode.is_some()),
        ("modes", layer.modes.is_some()),
        ("remove", !layer.remove.is_empty()),
        ("platform", layer.platform.is_some()),
    ];
    if let Some((key, _)) = others.iter().find(|(_, set)| *set) {
        return Err(invalid(
            &format!("layer[{i}].{key}"),
            "a `python` layer takes only `python` and `owner`: put the project's own files in a [[layer]] of their own",
        ));
    }
    let platforms = platforms.ok_or_else(|| {
        invalid(
            &field(""),
            "needs the image's platforms listed (image.platforms or --platform): wheels are chosen per platform",
        )
    })?;
    let machines = platforms
        .iter()
        .map(|p| {
            machine_of(&p.architecture, p.variant.as_deref())
                .filter(|_| p.os == "linux")
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(
                        &field(""),
                        &format!("no wheel platform tag is known for {p}"),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let (settings, libc) = settings(section, config_dir, &field)?;
    let (uid, gid) = super::layer::layer_owner(i, layer)?;
    let read = Arc::new(python::lock::read_lock(&settings.lock)?);
    Ok(PendingPython {
        at: 0,
        number: i,
        lock_name: section.lock.clone(),
        settings,
        read,
        version: section.version.clone(),
        interpreter: section.interpreter.clone(),
        libc,
        machines,
        platforms: platforms.to_vec(),
        uid,
        gid,
        epoch,
        compression,
    })
}

/// The settings as given, and `libc` as given.
fn settings(
    section: &PythonSection,
    config_dir: &Path,
    field: &dyn Fn(&str) -> String,
) -> Result<(PythonSettings, Option<Libc>)> {
    if let Some(version) = &section.version
        && (!version.starts_with("3.") || version.split('.').any(|p| p.parse::<u32>().is_err()))
    {
        return Err(invalid(
            &field(".version"),
            &format!("`{version}`: expected a version such as 3.11"),
        ));
    }
    let libc = section
        .libc
        .as_deref()
        .map(Libc::parse)
        .transpose()
        .map_err(|m| invalid(&field(".libc"), &m))?;
    for (key, path) in [
        (".venv", &section.venv),
        (".target", &section.target),
        (".interpreter", &section.interpreter),
    ] {
        if let Some(path) = path {
            super::check_image_path(path).map_err(|m| invalid(&field(key), &m))?;
        }
    }
    if section.venv.is_some() && section.target.is_some() {
        return Err(invalid(
            &field(".target"),
            "give either venv or target, not both",
        ));
    }
    let lock = config_dir.join(&section.lock);
    if !lock.is_file() {
        return Err(invalid(
            &field(".lock"),
            &format!("{} is not a file", lock.display()),
        ));
    }
    let wheelhouse = section.wheelhouse.as_ref().map(|w| config_dir.join(w));
    if let Some(dir) = wheelhouse.as_ref().filter(|d| !d.is_dir()) {
        return Err(invalid(
            &field(".wheelhouse"),
            &format!("{} is not a directory", dir.display()),
        ));
    }
    // The layer's index, else the one the environment names for pip and uv (also
    // beside a wheelhouse, as pip's --find-links with PIP_INDEX_URL); else a
    // wheelhouse alone is an air-gapped install, and without one, PyPI. The extra
    // indexes the environment names come first, as uv asks them before the default.
    let default = match (&section.index, &wheelhouse) {
        (Some(index), _) => Some((field(".index"), index.clone())),
        (None, _) if let Some((variable, url)) = python::credentials::index_from_env() => {
            Some((format!("{variable} (the index of {})", field("")), url))
        }
        (None, Some(_)) => None,
        (None, None) => Some((field(".index"), DEFAULT_INDEX.to_owned())),
    };
    let extras = python::credentials::extra_indexes_from_env()
        .into_iter()
        .map(|(variable, url)| (format!("{variable} (an index of {})", field("")), url));
    let mut indexes = Vec::new();
    for (key, url) in extras.chain(default) {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(
                &key,
                &format!(
                    "`{}`: expected an http(s) URL",
                    python::credentials::redact(&url)
                ),
            ));
        }
        if !indexes.contains(&url) {
            indexes.push(url);
        }
    }
    let settings = PythonSettings {
        lock,
        wheelhouse,
        indexes,
        wheel_cache: PathBuf::new(),
        venv: section.venv.clone(),
        target: section.target.clone(),
        offline: false,
    };
    Ok((settings, libc))
}

#[cfg(test)]
mod tests {
    use super::{BaseFacts, PythonContext};
    use crate::config::ConfigFile;
    use crate::oci::platform::Platform;
    use crate::plan::{Overrides, resolve};
    use crate::python::tags::Libc;

    /// The error of resolving `[[layer]]` `layer` over a project with a lock and an
    /// empty wheelhouse, for `platforms`.
    fn error(platforms: &str, layer: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.lock"), "").unwrap();
        std::fs::create_dir(dir.path().join("wheels")).unwrap();
        let text = format!("[image]\nbase = \"scratch\"\n{platforms}\n[[layer]]\n{layer}\n");
        let file = ConfigFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        resolve(
            &dir.path().join("hoist.toml"),
            &file,
            &Overrides::default(),
            None,
        )
        .err()
        .unwrap_or_else(|| panic!("accepted:\n{text}"))
        .to_string()
    }

    #[test]
    fn python_layer_settings_are_checked_by_key() {
        let two = "platforms = [\"linux/amd64\", \"linux/arm64\"]";
        let ok = "lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\"";
        let cases = [
            ("", format!("python = {{ {ok} }}"), "layer[0].python", "platforms"),
            (two, format!("python = {{ {ok} }}\nfrom = \"x\""), "layer[0].from", "only `python`"),
            (two, format!("python = {{ {ok}, libc = \"glibc2.36\" }}"), "layer[0].python.libc", "glibc-2.N"),
            (two, format!("python = {{ {ok}, venv = \"opt/venv\" }}"), "layer[0].python.venv", "absolute"),
            (two, format!("python = {{ {ok}, venv = \"/v\", target = \"/t\" }}"), "layer[0].python.target", "not both"),
            (two, "python = { lock = \"nope.lock\", version = \"3.11\" }".into(), "layer[0].python.lock", "not a file"),
            (two, format!("python = {{ {ok}, index = \"ftp://x\" }}"), "layer[0].python.index", "http"),
            (two, "python = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"2.7\" }".into(), "layer[0].python.version", "3.11"),
            ("platforms = [\"linux/s390x\", \"windows/amd64\"]", format!("python = {{ {ok} }}"), "layer[0].python", "windows/amd64"),
        ];
        for (platforms, layer, field, detail) in cases {
            let err = error(platforms, &layer);
            assert!(
                err.contains(field) && err.contains(detail),
                "{field}, {detail}: {err}\n{layer}"
            );
        }
    }

    /// The lock is read and hashed once, when the plan resolves: the build installs
    /// (and the provenance names) those bytes even if the file changes afterwards.
    #[test]
    fn the_lock_is_read_and_hashed_once_when_the_plan_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("requirements.lock");
        std::fs::write(&lock, "# nothing\n").unwrap();
        std::fs::create_dir(dir.path().join("wheels")).unwrap();
        let text = "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.36\" }\n";
        let file = ConfigFile::parse(text).unwrap();
        let config = dir.path().join("hoist.toml");
        let plan = resolve(&config, &file, &Overrides::default(), None).unwrap();
        // Now unpinned: a fresh read would refuse it.
        std::fs::write(&lock, "six\n").unwrap();
        assert_eq!(
            plan.python[0].lock_digest(),
            &hoist_layers::Digest::sha256_of(b"# nothing\n")
        );
        let context = PythonContext {
            cache_dir: dir.path().join("cache"),
            ..PythonContext::default()
        };
        assert!(plan.expand_python(&context).unwrap().layers.is_empty());
        let err = resolve(&config, &file, &Overrides::default(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("requirements.lock:1"), "{err}");
    }

    /// A wheel the build took from the cache is leased in the build's store, as its
    /// blobs are: a prune that would remove everything keeps it while the build lives,
    /// and removes it once the build is gone.
    #[test]
    fn a_cached_wheel_the_build_uses_is_leased_against_prune() {
        use hoist_layers::prune::{PrunePolicy, prune};
        let six = "six-1.17.0-py2.py3-none-any.whl";
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/dashboard/backend/wheels")
                .join(six),
        )
        .unwrap();
        let digest = hoist_layers::Digest::sha256_of(&bytes);
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let cached = cache.join(super::WHEEL_CACHE_DIR).join(digest.hex());
        std::fs::create_dir_all(&cached).unwrap();
        std::fs::write(cached.join(six), &bytes).unwrap();
        std::fs::write(
            dir.path().join("requirements.lock"),
            format!("six==1.17.0 --hash={digest}\n"),
        )
        .unwrap();
        let text = "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n[[layer]]\npython = { lock = \"requirements.lock\", version = \"3.11\", libc = \"glibc-2.36\", target = \"/app/deps\" }\n";
        let file = ConfigFile::parse(text).unwrap();
        let plan = resolve(
            &dir.path().join("hoist.toml"),
            &file,
            &Overrides::default(),
            None,
        )
        .unwrap();
        let context = PythonContext {
            cache_dir: cache.clone(),
            store: Some(hoist_layers::BlobStore::open_cache(&cache).unwrap()),
            offline: true,
            ..PythonContext::default()
        };
        let planned = plan.expand_python(&context).unwrap();
        assert_eq!(planned.layers.len(), 1);
        let everything = PrunePolicy {
            max_size: Some(0),
            ..PrunePolicy::default()
        };
        let report = prune(&cache, &everything, std::time::SystemTime::now()).unwrap();
        assert!(report.removed.is_empty(), "{report:?}");
        assert_eq!(report.kept_in_use.len(), 1);
        assert_eq!(report.kept_in_use[0].digest, digest);
        assert!(cached.join(six).is_file());
        // The build is over: its lease goes, and the wheel with the next prune.
        drop(context);
        let report = prune(&cache, &everything, std::time::SystemTime::now()).unwrap();
        assert_eq!(report.removed.len(), 1, "{report:?}");
        assert!(!cached.exists());
    }

    #[test]
    fn an_empty_lock_plans_no_layer_and_a_venv_one_shared_layer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.lock"), "# nothing\n").unwrap();
        std::fs::create_dir(dir.path().join("wheels")).unwrap();
        let resolved = |python: &str| {
            let text = format!(
                "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\"{python} }}\n"
            );
            let file = ConfigFile::parse(&text).unwrap();
            resolve(
                &dir.path().join("hoist.toml"),
                &file,
                &Overrides::default(),
                None,
            )
            .unwrap()
        };
        let context = PythonContext {
            cache_dir: dir.path().join("cache"),
            ..PythonContext::default()
        };
        let plan = |python: &str| resolved(python).expand_python(&context).unwrap();
        let set =
            ", version = \"3.11\", libc = \"glibc-2.36\", interpreter = \"/usr/bin/python3.11\"";
        assert!(plan(set).layers.is_empty());
        let venv = plan(&format!("{set}, venv = \"/opt/venv\""));
        assert!(venv.python.is_empty());
        assert_eq!(venv.layers.len(), 1);
        assert_eq!(venv.layers[0].platforms, None);
        assert_eq!(venv.layers[0].label, "python: requirements.lock");
        assert_eq!(venv.layers[0].spec.sources.len(), 1);
        // What the settings leave out comes from the base, else the key is named.
        let bare = resolved("");
        assert_eq!(bare.python.len(), 1);
        let err = bare.expand_python(&context).unwrap_err().to_string();
        assert!(
            err.contains("layer[0].python.version") && err.contains("PYTHON_VERSION"),
            "{err}"
        );
        let base = |facts: [BaseFacts; 2]| PythonContext {
            base: ["linux/amd64", "linux/arm64/v8"]
                .map(|p| p.parse::<Platform>().unwrap())
                .into_iter()
                .zip(facts)
                .collect(),
            ..context.clone()
        };
        let official = BaseFacts {
            config_version: Some("3.11.9".into()),
            ..BaseFacts::default()
        };
        let from_base = base([official.clone(), official.clone()]);
        let err = bare.expand_python(&from_base).unwrap_err().to_string();
        assert!(
            err.contains("layer[0].python.libc") && err.contains("libc6"),
            "{err}"
        );
        // Each platform's own facts: arm64's base says nothing of its C library.
        let musl = BaseFacts {
            libc: Some(Libc::Musl(2)),
            ..official.clone()
        };
        let err = bare
            .expand_python(&base([musl.clone(), official]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer[0].python.libc") && err.contains("linux/arm64"),
            "{err}"
        );
        assert!(
            bare.expand_python(&base([musl.clone(), musl]))
                .unwrap()
                .layers
                .is_empty()
        );
        // A venv needs the interpreter's path: neither given nor shipped, it is named.
        let venv = resolved(", venv = \"/opt/venv\", version = \"3.11\", libc = \"musl-1.2\"");
        let err = venv.expand_python(&context).unwrap_err().to_string();
        assert!(
            err.contains("layer[0].python.interpreter") && err.contains("virtual environment"),
            "{err}"
        );
        // The interpreter's name tells the version when nothing else does.
        let named = resolved(
            ", venv = \"/opt/venv\", interpreter = \"/opt/py/bin/python3.12\", libc = \"musl-1.2\"",
        );
        let planned = named.expand_python(&context).unwrap();
        assert_eq!(planned.layers.len(), 1);
        assert!(planned.layers[0].summary.contains("/opt/venv"));
        let shipped = BaseFacts {
            shipped: Some(("3.11".into(), "/usr/bin/python3.11".into())),
            ..BaseFacts::default()
        };
        let planned = venv
            .expand_python(&base([shipped.clone(), shipped]))
            .unwrap();
        assert_eq!(planned.layers.len(), 1);
    }
}
