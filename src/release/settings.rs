//! The `[version]` and `[tags]` sections of `hoist.toml`, resolved: paths made
//! relative to the config file, the `latest` policy checked, and the version files
//! read and compared.

use std::path::{Path, PathBuf};

use semver::Version;

use super::tags::{DEFAULT_RULES, Latest};
use super::version_file::{VersionFile, VersionFileSpec, VersionPattern, write_all};
use super::{ReleaseError, Result};
use crate::config::{ConfigFile, LatestSetting, VersionFileRef};

/// What releases need from the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSettings {
    /// `[version].source`, resolved; `None` when there is no `[version]` section.
    pub source: Option<VersionFileSpec>,
    /// `[version].sync`, resolved.
    pub sync: Vec<VersionFileSpec>,
    /// `[tags].rules` (default [`DEFAULT_RULES`]).
    pub rules: Vec<String>,
    /// `[tags].latest`.
    pub latest: Latest,
}

impl ReleaseSettings {
    /// The settings of `file`, read from `config_path`.
    pub fn resolve(config_path: &Path, file: &ConfigFile) -> Result<ReleaseSettings> {
        // A workspace member's [version] is its root's, with paths relative to the root.
        let dir = file
            .inherited
            .root_dir
            .as_deref()
            .unwrap_or_else(|| config_path.parent().unwrap_or(Path::new(".")));
        let (source, sync) = match &file.version {
            Some(section) => {
                let source = spec(dir, &section.source, "version.source")?;
                let sync = section
                    .sync
                    .iter()
                    .enumerate()
                    .map(|(i, file)| spec(dir, file, &format!("version.sync[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                (Some(source), sync)
            }
            None => (None, Vec::new()),
        };
        let tags = file.tags.clone().unwrap_or_default();
        let rules = tags
            .rules
            .unwrap_or_else(|| DEFAULT_RULES.iter().map(ToString::to_string).collect());
        if rules.iter().any(|r| r.trim().is_empty()) {
            return Err(setting("tags.rules", "holds an empty rule"));
        }
        let latest = match tags.latest {
            None => Latest::Auto,
            Some(LatestSetting::Bool(true)) => Latest::Always,
            Some(LatestSetting::Bool(false)) => Latest::Never,
            Some(LatestSetting::Word(word)) if word == "auto" => Latest::Auto,
            Some(LatestSetting::Word(word)) => {
                return Err(setting(
                    "tags.latest",
                    &format!("`{word}`: expected \"auto\", true or false"),
                ));
            }
        };
        Ok(ReleaseSettings {
            source,
            sync,
            rules,
            latest,
        })
    }

    /// The source file, or an error saying `[version]` is needed.
    pub fn source(&self) -> Result<&VersionFileSpec> {
        self.source.as_ref().ok_or_else(|| {
            setting(
                "version",
                "hoist.toml has no [version] section: add one with source = \"pyproject.toml\" (or package.json, Cargo.toml, VERSION)",
            )
        })
    }

    /// Reads the source and every sync file.
    pub fn read(&self) -> Result<VersionFiles> {
        let source = self.source()?.read()?;
        let sync = self
            .sync
            .iter()
            .map(VersionFileSpec::read)
            .collect::<Result<Vec<_>>>()?;
        Ok(VersionFiles { source, sync })
    }
}

/// The version files as read.
#[derive(Clone, Debug)]
pub struct VersionFiles {
    /// `[version].source`.
    pub source: VersionFile,
    /// `[version].sync`.
    pub sync: Vec<VersionFile>,
}

impl VersionFiles {
    /// The version (the source's).
    pub fn version(&self) -> &Version {
        &self.source.version
    }

    /// Every file, source first.
    pub fn all(&self) -> impl Iterator<Item = &VersionFile> {
        std::iter::once(&self.source).chain(&self.sync)
    }

    /// Sync files whose version differs from the source's.
    pub fn disagreeing(&self) -> Vec<&VersionFile> {
        self.sync
            .iter()
            .filter(|f| f.version != self.source.version)
            .collect()
    }

    /// Every file with `version` in place, rendered (nothing written).
    pub fn render(&self, version: &Version) -> Vec<(PathBuf, String)> {
        self.all()
            .map(|f| (f.path.clone(), f.render(version)))
            .collect()
    }

    /// Writes `version` into every file, all or none.
    pub fn write(&self, version: &Version) -> Result<()> {
        write_all(&self.render(version))
    }
}

/// One `[version]` file (`field` names it in errors): the path made relative to the
/// config's directory `dir`, the pattern compiled.
fn spec(dir: &Path, file: &VersionFileRef, field: &str) -> Result<VersionFileSpec> {
    let key = |sub: &str| match file {
        VersionFileRef::Path(_) => field.to_string(),
        VersionFileRef::Pattern(_) => format!("{field}.{sub}"),
    };
    if file.path().trim().is_empty() {
        return Err(setting(&key("path"), "is empty: name the version file"));
    }
    let pattern = file
        .pattern()
        .map(VersionPattern::new)
        .transpose()
        .map_err(|message| setting(&key("pattern"), &message))?;
    Ok(VersionFileSpec {
        path: dir.join(file.path()),
        pattern,
    })
}

fn setting(field: &str, message: &str) -> ReleaseError {
    ReleaseError::Setting {
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str) -> Result<ReleaseSettings> {
        let file = ConfigFile::parse(toml).unwrap();
        ReleaseSettings::resolve(Path::new("/p/hoist.toml"), &file)
    }

    #[test]
    fn resolves_paths_rules_and_latest() {
        let s = resolve(
            "[version]\nsource = \"pyproject.toml\"\nsync = [\"frontend/package.json\"]\n[tags]\nlatest = false\n",
        )
        .unwrap();
        assert_eq!(
            s.source,
            Some(VersionFileSpec::by_name("/p/pyproject.toml"))
        );
        assert_eq!(
            s.sync,
            [VersionFileSpec::by_name("/p/frontend/package.json")]
        );
        assert_eq!(s.rules, DEFAULT_RULES);
        assert_eq!(s.latest, Latest::Never);
        let s = resolve("[tags]\nrules = [\"edge\"]\nlatest = true\n").unwrap();
        assert_eq!(s.source, None);
        assert_eq!(s.latest, Latest::Always);
        assert!(s.source().unwrap_err().to_string().contains("[version]"));
        assert_eq!(
            resolve("[tags]\nlatest = \"auto\"\n").unwrap().latest,
            Latest::Auto
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let err = resolve("[tags]\nlatest = \"sometimes\"\n").unwrap_err();
        assert!(err.to_string().contains("tags.latest"), "{err}");
        let err = resolve("[version]\nsource = \"\"\n").unwrap_err();
        assert!(err.to_string().contains("version.source"), "{err}");
        let err = resolve(
            "[version]\nsource = \"VERSION\"\nsync = [\"a.py\", { path = \"v.yaml\", pattern = 'tag: (.*)' }]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid version.sync[1].pattern: `tag: (.*)` has no `(?P<version>"),
            "{err}"
        );
        let err = resolve("[version]\nsource = { path = \"v.yaml\", pattern = '(?P<version>' }\n")
            .unwrap_err();
        assert!(err.to_string().contains("version.source.pattern"), "{err}");
        let err = ConfigFile::parse(
            "[version]\nsource = \"VERSION\"\nsync = [{ path = \"v\", patern = \"x\" }]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("`version.sync`") && err.contains("pattern ="),
            "{err}"
        );
        let err = ConfigFile::parse("[version]\nsource = \"VERSION\"\nsnyc = []\n").unwrap_err();
        assert!(err.contains("snyc"), "{err}");
    }
}
