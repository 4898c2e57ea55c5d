//! A `[[layer]] python = {…}`: the layers installing a Python lock, planned through
//! [`crate::python`]: one layer every platform shares (the venv's own files and the
//! wheels that are the same file everywhere) and one per platform for the rest. Every
//! error names the key: `layer[2].python.lock`.

use std::path::{Path, PathBuf};

use hoist_layers::{Compression, LayerSpec};

use super::{PlannedLayer, invalid};
use crate::config::{LayerSection, PythonSection};
use crate::error::Result;
use crate::oci::platform::Platform;
use crate::python::tags::{Libc, machine_of};
use crate::python::{self, PythonSettings, TargetPlatform};

/// The glibc level assumed when `libc` is not given: Debian 10 / RHEL 8, which every
/// maintained glibc base meets (bookworm has 2.36).
const DEFAULT_LIBC: Libc = Libc::Glibc(28);

/// The index used when neither `index` nor `wheelhouse` is given.
const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// Where downloaded wheels are kept: `$XDG_CACHE_HOME/hoist/python-wheels` (as the
/// default `--cache-dir`; the flag does not move it yet).
fn wheel_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("hoist-cache"));
    base.join("hoist").join("python-wheels")
}

/// The layers of `[[layer]]` number `i` (from 0), whose `python` is `section`.
pub(super) fn plan_python(
    i: usize,
    layer: &LayerSection,
    section: &PythonSection,
    config_dir: &Path,
    epoch: u64,
    compression: Compression,
    platforms: Option<&[Platform]>,
) -> Result<Vec<PlannedLayer>> {
    let field = |key: &str| format!("layer[{}].python{key}", i + 1);
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
            &format!("layer[{}].{key}", i + 1),
            "a `python` layer takes only `python` and `owner`: put the project's own files in a [[layer]] of their own",
        ));
    }
    let platforms = platforms.ok_or_else(|| {
        invalid(
            &field(""),
            "needs the image's platforms listed (image.platforms or --platform): wheels are chosen per platform",
        )
    })?;
    let targets = platforms
        .iter()
        .map(|p| {
            let machine = machine_of(&p.architecture, p.variant.as_deref())
                .filter(|_| p.os == "linux")
                .ok_or_else(|| {
                    invalid(
                        &field(""),
                        &format!("no wheel platform tag is known for {p}"),
                    )
                })?;
            Ok(TargetPlatform {
                name: p.to_string(),
                machine: machine.to_owned(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let settings = settings(section, config_dir, &field)?;
    let planned = python::plan(&settings, &targets)?;
    let (uid, gid) = super::layer::layer_owner(i, layer)?;
    let into = settings.venv.clone().unwrap_or_else(|| {
        settings
            .layout()
            .map(|l| l.site_packages)
            .unwrap_or_default()
    });
    let spec = |sources| LayerSpec {
        source: None,
        dest: "/".into(),
        excludes: Vec::new(),
        files: Vec::new(),
        sources,
        uid,
        gid,
        modes: hoist_layers::ModePolicy::Keep,
        remove: Vec::new(),
        mtime: epoch,
        compression,
    };
    let names = |what: &str, count: usize| {
        let summary = format!("python {} → {into}, {what}", section.lock);
        PlannedLayer {
            label: format!("python: {}", section.lock),
            summary: format!(
                "{summary}, {count} wheel{}",
                if count == 1 { "" } else { "s" }
            ),
            created_by: format!("hoist: {summary}"),
            spec: spec(Vec::new()),
            platforms: None,
        }
    };
    let mut layers = Vec::new();
    if !planned.shared.is_empty() {
        let mut shared = names("every platform", planned.shared_wheels.len());
        shared.spec.sources = planned.shared;
        layers.push(shared);
    }
    for (platform, (sources, wheels)) in platforms.iter().zip(planned.native) {
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

fn settings(
    section: &PythonSection,
    config_dir: &Path,
    field: &dyn Fn(&str) -> String,
) -> Result<PythonSettings> {
    let version = section.version.clone().ok_or_else(|| {
        invalid(
            &field(".version"),
            "missing: the image's Python version, e.g. version = \"3.11\"",
        )
    })?;
    if !version.starts_with("3.") || version.split('.').any(|p| p.parse::<u32>().is_err()) {
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
        .map_err(|m| invalid(&field(".libc"), &m))?
        .unwrap_or(DEFAULT_LIBC);
    for (key, path) in [(".venv", &section.venv), (".target", &section.target)] {
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
    let short: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    // A wheelhouse alone is an air-gapped install; without one, PyPI.
    let index = match (&section.index, &wheelhouse) {
        (Some(index), _) => Some(index.trim_end_matches('/').to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_INDEX.to_owned()),
    };
    if let Some(url) = &index
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(invalid(
            &field(".index"),
            &format!("`{url}`: expected an http(s) URL"),
        ));
    }
    Ok(PythonSettings {
        lock,
        wheelhouse,
        index,
        wheel_cache: wheel_cache(),
        interpreter: section
            .interpreter
            .clone()
            .unwrap_or_else(|| format!("/usr/local/bin/python{short}")),
        version,
        venv: section.venv.clone(),
        target: section.target.clone(),
        libc,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigFile;
    use crate::plan::{Overrides, resolve};

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
            ("", format!("python = {{ {ok} }}"), "layer[1].python", "platforms"),
            (two, format!("python = {{ {ok} }}\nfrom = \"x\""), "layer[1].from", "only `python`"),
            (two, "python = { lock = \"requirements.lock\", wheelhouse = \"wheels\" }".into(), "layer[1].python.version", "missing"),
            (two, format!("python = {{ {ok}, libc = \"glibc2.36\" }}"), "layer[1].python.libc", "glibc-2.N"),
            (two, format!("python = {{ {ok}, venv = \"opt/venv\" }}"), "layer[1].python.venv", "absolute"),
            (two, format!("python = {{ {ok}, venv = \"/v\", target = \"/t\" }}"), "layer[1].python.target", "not both"),
            (two, "python = { lock = \"nope.lock\", version = \"3.11\" }".into(), "layer[1].python.lock", "not a file"),
            (two, format!("python = {{ {ok}, index = \"ftp://x\" }}"), "layer[1].python.index", "http"),
            (two, "python = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"2.7\" }".into(), "layer[1].python.version", "3.11"),
            ("platforms = [\"linux/s390x\", \"windows/amd64\"]", format!("python = {{ {ok} }}"), "layer[1].python", "windows/amd64"),
        ];
        for (platforms, layer, field, detail) in cases {
            let err = error(platforms, &layer);
            assert!(
                err.contains(field) && err.contains(detail),
                "{field}, {detail}: {err}\n{layer}"
            );
        }
    }

    #[test]
    fn an_empty_lock_plans_no_layer_and_a_venv_one_shared_layer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.lock"), "# nothing\n").unwrap();
        std::fs::create_dir(dir.path().join("wheels")).unwrap();
        let plan = |python: &str| {
            let text = format!(
                "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n[[layer]]\npython = {{ lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\"{python} }}\n"
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
        assert!(plan("").layers.is_empty());
        let venv = plan(", venv = \"/opt/venv\"");
        assert_eq!(venv.layers.len(), 1);
        assert_eq!(venv.layers[0].platforms, None);
        assert_eq!(venv.layers[0].label, "python: requirements.lock");
        assert_eq!(venv.layers[0].spec.sources.len(), 1);
    }
}
