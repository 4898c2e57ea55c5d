//! The `[version]` and `[tags]` sections of `hoist.toml`, resolved: paths made
//! relative to the config file, the `latest` policy checked, and the version files
//! read and compared.

use std::path::{Path, PathBuf};

use semver::Version;

use super::journal::Edit;
use super::tags::{DEFAULT_RULES, Latest};
use super::version_file::{VersionFile, VersionFileSpec, VersionPattern};
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
    /// `[release]`: the release commit's message and the git tag's name.
    pub commit: ReleaseCommit,
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
        let release = file.release.clone().unwrap_or_default();
        let commit = ReleaseCommit::new(release.commit_message.as_deref(), release.tag.as_deref())?;
        Ok(ReleaseSettings {
            source,
            sync,
            rules,
            latest,
            commit,
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

/// The release commit and its git tag: the one place their names are made
/// (`[release] commit_message` and `tag`, `{version}` filled in), for `hoist release`
/// and `hoist version bump --commit` alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseCommit {
    message: String,
    tag: String,
}

impl Default for ReleaseCommit {
    fn default() -> ReleaseCommit {
        ReleaseCommit {
            message: ReleaseCommit::DEFAULT_MESSAGE.into(),
            tag: ReleaseCommit::DEFAULT_TAG.into(),
        }
    }
}

impl ReleaseCommit {
    /// The message when `[release] commit_message` is not set.
    pub const DEFAULT_MESSAGE: &str = "Release v{version}";
    /// The tag when `[release] tag` is not set.
    pub const DEFAULT_TAG: &str = "v{version}";

    /// The templates, checked: each holds `{version}` and no other placeholder; the
    /// tag is a valid git tag name whatever the version.
    pub fn new(message: Option<&str>, tag: Option<&str>) -> Result<ReleaseCommit> {
        let message = message.unwrap_or(Self::DEFAULT_MESSAGE);
        let tag = tag.unwrap_or(Self::DEFAULT_TAG);
        check_template("release.commit_message", message)?;
        check_template("release.tag", tag)?;
        if message.trim().is_empty() || message.starts_with(char::is_whitespace) {
            return Err(setting(
                "release.commit_message",
                "must start with its subject line",
            ));
        }
        // git check-ref-format's rules, for the characters a template can bring.
        let bad = tag.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        }) || tag.contains("..")
            || tag.contains("@{")
            || tag.contains("//")
            || tag.starts_with(['-', '/', '.'])
            || tag.ends_with(['/', '.'])
            || Path::new(tag).extension().is_some_and(|e| e == "lock");
        if bad {
            return Err(setting(
                "release.tag",
                &format!(
                    "`{tag}` does not make a valid git tag name (no spaces, `..`, `~^:?*[\\`, leading `-`)"
                ),
            ));
        }
        Ok(ReleaseCommit {
            message: message.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The release commit's message for `version`.
    pub fn message(&self, version: &Version) -> String {
        self.message.replace("{version}", &version.to_string())
    }

    /// The release commit's subject (the message's first line) for `version`.
    pub fn subject(&self, version: &Version) -> String {
        self.message(version)
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    /// The git tag's name for `version`.
    pub fn tag(&self, version: &Version) -> String {
        self.tag.replace("{version}", &version.to_string())
    }
}

/// A `[release]` template holds `{version}` and no other placeholder.
fn check_template(field: &str, template: &str) -> Result<()> {
    let rest = template.replace("{version}", "");
    if rest.len() == template.len() {
        return Err(setting(field, &format!("`{template}` has no {{version}}")));
    }
    if rest.contains(['{', '}']) {
        return Err(setting(
            field,
            &format!("`{template}`: the one placeholder is {{version}}"),
        ));
    }
    Ok(())
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

    /// The edit of each file putting `version` in place (nothing written): one edit
    /// per file, in the order the files are listed. A file listed twice (plainly and
    /// with a pattern) gets both changes: each entry is applied to the text the
    /// entries before it made, found again in that text.
    pub fn edits(&self, version: &Version) -> Result<Vec<Edit>> {
        let mut edits: Vec<Edit> = Vec::new();
        for file in self.all() {
            let key = same_file(&file.path);
            let found = edits.iter().position(|e| same_file(&e.path) == key);
            let text = found.map_or_else(|| file.text.clone(), |i| edits[i].after.clone());
            let after = VersionFile::parse(&file.path, file.kind.clone(), text)?.render(version);
            match found {
                Some(i) => edits[i].after = after,
                None => edits.push(Edit {
                    path: file.path.clone(),
                    before: file.text.clone(),
                    after,
                }),
            }
        }
        Ok(edits)
    }

    /// The files, each once, in the order listed.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for file in self.all() {
            if !paths.iter().any(|p| same_file(p) == same_file(&file.path)) {
                paths.push(file.path.clone());
            }
        }
        paths
    }
}

/// What tells two spellings of one file apart (`a/VERSION`, `a/./VERSION`).
pub(super) fn same_file(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.components().collect())
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
        assert_eq!(s.commit, ReleaseCommit::default());
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

    #[test]
    fn the_release_commit_and_tag_follow_their_templates() {
        let s = resolve(
            "[release]\ncommit_message = \"chore(release): v{version}\\n\\nSigned-off-by: bot\"\ntag = \"release-{version}\"\n",
        )
        .unwrap();
        let v = Version::parse("1.2.0-rc.1").unwrap();
        assert_eq!(s.commit.subject(&v), "chore(release): v1.2.0-rc.1");
        assert_eq!(
            s.commit.message(&v),
            "chore(release): v1.2.0-rc.1\n\nSigned-off-by: bot"
        );
        assert_eq!(s.commit.tag(&v), "release-1.2.0-rc.1");
        let default = ReleaseCommit::default();
        assert_eq!(default.message(&v), "Release v1.2.0-rc.1");
        assert_eq!(default.tag(&v), "v1.2.0-rc.1");
        for (toml, field, detail) in [
            ("[release]\ntag = \"stable\"\n", "release.tag", "{version}"),
            (
                "[release]\ntag = \"v {version}\"\n",
                "release.tag",
                "valid git tag",
            ),
            (
                "[release]\ntag = \"-{version}\"\n",
                "release.tag",
                "valid git tag",
            ),
            (
                "[release]\ncommit_message = \"Release {sha}\"\n",
                "release.commit_message",
                "{version}",
            ),
            (
                "[release]\ncommit_message = \"{version} {branch}\"\n",
                "release.commit_message",
                "one placeholder",
            ),
        ] {
            let err = resolve(toml).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains(detail), "{toml}: {err}");
        }
        let err = ConfigFile::parse("[release]\nmessage = \"x\"\n").unwrap_err();
        assert!(err.contains("message"), "{err}");
    }

    #[test]
    fn a_file_listed_twice_gets_both_edits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("VERSION"), "1.0.0\n").unwrap();
        std::fs::write(p.join("app.env"), "IMAGE=app:1.0.0\nCHART=1.0.0\n").unwrap();
        let toml = "[version]\nsource = \"VERSION\"\nsync = [{ path = \"app.env\", pattern = 'IMAGE=app:(?P<version>\\S+)' }, { path = \"./app.env\", pattern = 'CHART=(?P<version>\\S+)' }]\n";
        let file = ConfigFile::parse(toml).unwrap();
        let settings = ReleaseSettings::resolve(&p.join("hoist.toml"), &file).unwrap();
        let files = settings.read().unwrap();
        let edits = files.edits(&Version::parse("1.10.0").unwrap()).unwrap();
        assert_eq!(edits.len(), 2, "one edit per file: {edits:?}");
        assert_eq!(edits[0].after, "1.10.0\n");
        assert_eq!(edits[1].before, "IMAGE=app:1.0.0\nCHART=1.0.0\n");
        assert_eq!(edits[1].after, "IMAGE=app:1.10.0\nCHART=1.10.0\n");
        assert_eq!(files.paths().len(), 2);
    }
}
