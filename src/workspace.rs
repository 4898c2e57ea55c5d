//! Projects of several images: a `hoist.toml` with `[workspace]` lists member
//! directories (globs, minus `exclude`), each holding an ordinary one-image
//! `hoist.toml`. The root owns the one `[version]` and `[tags]`; `[workspace.image]`
//! gives defaults for every member's `[image]` (a member's own key wins).
//!
//! [`load`] turns the config a command was given into a [`Project`]: a workspace root
//! (every member, or those `-p` picks), a member (found inside a workspace: that member,
//! with the workspace's version and tags), or a lone image. Members are named by their
//! directory and come in sorted order, so every command walks them the same way.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};

use crate::config::{ConfigFile, ImageSection, Inherited, WorkspaceSection};
use crate::error::{Error, Result};

/// The file name a member directory holds.
pub const CONFIG_NAME: &str = "hoist.toml";

/// What a command acts on.
#[derive(Clone, Debug)]
pub struct Project {
    /// The config holding `[version]` and `[tags]`: the workspace root's, or the lone
    /// image's.
    pub config: PathBuf,
    /// Its contents.
    pub file: ConfigFile,
    /// Whether `config` is a workspace root (commands then report per member).
    pub is_workspace: bool,
    /// The images, in order: every selected member, or the lone image.
    pub members: Vec<Member>,
}

impl Project {
    /// `[workspace] keep_unchanged`: a release keeps an unchanged member's previous
    /// image.
    pub fn keeps_unchanged(&self) -> bool {
        self.file
            .workspace
            .as_ref()
            .is_some_and(|w| w.keep_unchanged)
    }
}

/// One image of a project.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its directory's name (for a lone image: its directory's, or `image`).
    pub name: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its config, with what it takes from the workspace filled in.
    pub file: ConfigFile,
}

/// Loads the project `config` belongs to; `packages` (`-p`) picks members by name.
pub fn load(config: &Path, packages: &[String]) -> Result<Project> {
    let file = ConfigFile::load(config)?;
    let project = match &file.workspace {
        Some(section) => {
            check_root(config, &file)?;
            let members = members(config, &file, section)?;
            Project {
                config: config.to_path_buf(),
                file,
                is_workspace: true,
                members,
            }
        }
        None => match enclosing_workspace(config)? {
            Some((root, root_file)) => {
                let member = member(&root, &root_file, config, file)?;
                Project {
                    config: root,
                    file: root_file,
                    is_workspace: false,
                    members: vec![member],
                }
            }
            None => lone(config, file),
        },
    };
    select(project, packages)
}

fn lone(config: &Path, file: ConfigFile) -> Project {
    let name = dir_name(crate::fsutil::parent_dir(config)).unwrap_or_else(|| "image".into());
    Project {
        config: config.to_path_buf(),
        file: file.clone(),
        is_workspace: false,
        members: vec![Member {
            name,
            config: config.to_path_buf(),
            file,
        }],
    }
}

/// Keeps the members `packages` names (all when it is empty).
fn select(mut project: Project, packages: &[String]) -> Result<Project> {
    if packages.is_empty() {
        return Ok(project);
    }
    for wanted in packages {
        if !project.members.iter().any(|m| &m.name == wanted) {
            return Err(invalid(
                "--package",
                &format!(
                    "`{wanted}`: no such member in {} (members: {})",
                    project.config.display(),
                    names(&project.members)
                ),
            ));
        }
    }
    project.members.retain(|m| packages.contains(&m.name));
    Ok(project)
}

impl Project {
    /// In a workspace, the member each repository (`HOST/REPO`) receives pushes for:
    /// `push_to` (one member) or each member's `[image].name`; progress lines about a
    /// repository name that member. Empty outside a workspace, and for names that do
    /// not parse (the command reports those itself).
    pub fn members_by_repository(
        &self,
        push_to: &[String],
    ) -> std::collections::BTreeMap<String, String> {
        let mut by_repository = std::collections::BTreeMap::new();
        if !self.is_workspace {
            return by_repository;
        }
        for member in &self.members {
            let names = if push_to.is_empty() {
                member
                    .file
                    .image
                    .name
                    .as_ref()
                    .map(crate::config::OneOrMany::to_vec)
                    .unwrap_or_default()
            } else {
                push_to.to_vec()
            };
            for name in names {
                if let Ok(reference) = crate::oci::reference::parse(&name) {
                    let repository = format!("{}/{}", reference.registry(), reference.repository());
                    by_repository.insert(repository, member.name.clone());
                }
            }
        }
        by_repository
    }
}

/// The members' names, comma-separated.
pub fn names(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A workspace root holds the workspace's settings, not an image of its own.
fn check_root(config: &Path, file: &ConfigFile) -> Result<()> {
    let has_image = file.image != ImageSection::default()
        || !file.layers.is_empty()
        || file.config != crate::config::ConfigSection::default()
        || !file.annotations.is_empty();
    if has_image {
        return Err(config_error(
            config,
            "a workspace root builds no image of its own: move [image], [[layer]], [config] and [annotations] into a member (defaults for every member go in [workspace.image])",
        ));
    }
    Ok(())
}

/// The member directories `section` names, each loaded, sorted by name.
fn members(root: &Path, root_file: &ConfigFile, section: &WorkspaceSection) -> Result<Vec<Member>> {
    let root_dir = crate::fsutil::parent_dir(root);
    if section.members.is_empty() {
        return Err(config_error(
            root,
            "`workspace.members` is empty: list the member directories (globs such as \"services/*\")",
        ));
    }
    let excluded = section
        .exclude
        .iter()
        .map(|pattern| matcher(root, "workspace.exclude", pattern))
        .collect::<Result<Vec<_>>>()?;
    let mut dirs = Vec::new();
    for pattern in &section.members {
        let found = expand(root_dir, pattern).map_err(|message| {
            config_error(
                root,
                &format!("`workspace.members`: `{pattern}`: {message}"),
            )
        })?;
        let is_glob = pattern.contains(['*', '?', '[', '{']);
        let mut matched = 0;
        for relative in found {
            if excluded.iter().any(|m| m.is_match(&relative)) {
                continue;
            }
            let config = root_dir.join(&relative).join(CONFIG_NAME);
            if config.is_file() {
                matched += 1;
                dirs.push(relative);
            } else if !is_glob {
                return Err(config_error(
                    root,
                    &format!(
                        "`workspace.members`: {} holds no {CONFIG_NAME}",
                        root_dir.join(&relative).display()
                    ),
                ));
            }
        }
        if matched == 0 && is_glob {
            return Err(config_error(
                root,
                &format!(
                    "`workspace.members`: `{pattern}` matches no directory holding a {CONFIG_NAME}"
                ),
            ));
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut members: Vec<Member> = Vec::new();
    for relative in dirs {
        let config = root_dir.join(&relative).join(CONFIG_NAME);
        let file = ConfigFile::load(&config)?;
        let member = member(root, root_file, &config, file)?;
        if let Some(other) = members.iter().find(|m| m.name == member.name) {
            return Err(config_error(
                root,
                &format!(
                    "two members are named `{}`: {} and {} (a member is named by its directory)",
                    member.name,
                    other.config.display(),
                    member.config.display()
                ),
            ));
        }
        members.push(member);
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// A member's config with the workspace's defaults, version and tags in it.
fn member(
    root: &Path,
    root_file: &ConfigFile,
    config: &Path,
    mut file: ConfigFile,
) -> Result<Member> {
    let dir = crate::fsutil::parent_dir(config);
    let name =
        dir_name(dir).ok_or_else(|| config_error(config, "a member directory needs a name"))?;
    for (present, section) in [
        (file.version.is_some(), "[version]"),
        (file.tags.is_some(), "[tags]"),
        (file.release.is_some(), "[release]"),
        (file.workspace.is_some(), "[workspace]"),
    ] {
        if present {
            return Err(config_error(
                config,
                &format!(
                    "{section} belongs in the workspace root {}: a workspace has one version, one release commit and one set of tag rules",
                    root.display()
                ),
            ));
        }
    }
    let defaults = root_file
        .workspace
        .as_ref()
        .map(|w| w.image.clone())
        .unwrap_or_default();
    let base_from_root = file.image.base.is_none() && defaults.base.is_some();
    inherit(&mut file.image, defaults);
    // The root's [budget], for members that set none of their own.
    if file.budget.is_none() {
        file.budget.clone_from(&root_file.budget);
    }
    file.version.clone_from(&root_file.version);
    file.tags.clone_from(&root_file.tags);
    file.release.clone_from(&root_file.release);
    file.inherited = Inherited {
        member: Some(name.clone()),
        root_dir: Some(crate::fsutil::parent_dir(root).to_path_buf()),
        base_from_root,
    };
    Ok(Member {
        name,
        config: config.to_path_buf(),
        file,
    })
}

/// Fills every key the member left unset from `[workspace.image]`.
fn inherit(image: &mut ImageSection, defaults: ImageSection) {
    let ImageSection {
        name,
        base,
        platforms,
        compression,
        compression_level,
        format,
        tags,
        sbom,
        sbom_files,
    } = defaults;
    image.name = image.name.take().or(name);
    image.base = image.base.take().or(base);
    image.platforms = image.platforms.take().or(platforms);
    image.compression = image.compression.take().or(compression);
    image.compression_level = image.compression_level.or(compression_level);
    image.format = image.format.take().or(format);
    image.tags = image.tags.take().or(tags);
    image.sbom = image.sbom.or(sbom);
    image.sbom_files = image.sbom_files.or(sbom_files);
}

/// The nearest workspace root above `config`'s directory that lists that directory as
/// a member.
fn enclosing_workspace(config: &Path) -> Result<Option<(PathBuf, ConfigFile)>> {
    let Ok(dir) = crate::fsutil::parent_dir(config).canonicalize() else {
        return Ok(None);
    };
    for ancestor in dir.ancestors().skip(1) {
        let candidate = ancestor.join(CONFIG_NAME);
        // A file that is not there or not readable is no root; one over the limit is
        // an error naming it, not silently passed over.
        let bytes = match crate::fsutil::read_bounded(
            &candidate,
            crate::fsutil::PROJECT_FILE_LIMIT,
            "a config file",
        ) {
            Ok(bytes) => bytes,
            Err(Error::Io { .. }) => continue,
            Err(other) => return Err(other),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        if !declares_workspace(&text) {
            continue;
        }
        let root_file = ConfigFile::load(&candidate)?;
        let section = root_file.workspace.clone().unwrap_or_default();
        let listed = members(&candidate, &root_file, &section)?.iter().any(|m| {
            crate::fsutil::parent_dir(&m.config)
                .canonicalize()
                .ok()
                .as_deref()
                == Some(&dir)
        });
        // The first workspace above decides, as in cargo: one that leaves this
        // directory out (or excludes it) makes it a lone image.
        return Ok(listed.then_some((candidate, root_file)));
    }
    Ok(None)
}

/// Whether a config text has a `[workspace]` table (an unparsable file that looks as
/// if it does counts: loading it then reports the error).
fn declares_workspace(text: &str) -> bool {
    match text.parse::<toml::Table>() {
        Ok(table) => table.contains_key("workspace"),
        Err(_) => text
            .lines()
            .any(|l| l.trim_start().starts_with("[workspace")),
    }
}

/// The directories under `root_dir` a members pattern matches, relative to it.
fn expand(root_dir: &Path, pattern: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() || Path::new(pattern).is_absolute() {
        return Err("expected a directory relative to the workspace root".into());
    }
    let mut found = vec![PathBuf::new()];
    for component in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if component == ".." {
            return Err("members live below the workspace root (no `..`)".into());
        }
        let matcher = Glob::new(component)
            .map_err(|e| e.to_string())?
            .compile_matcher();
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(root_dir.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if entry.path().is_dir() && matcher.is_match(&name) {
                    next.push(dir.join(name));
                }
            }
        }
        found = next;
    }
    found.sort();
    Ok(found)
}

fn matcher(root: &Path, field: &str, pattern: &str) -> Result<GlobMatcher> {
    Glob::new(pattern.trim_end_matches('/'))
        .map(|g| g.compile_matcher())
        .map_err(|e| config_error(root, &format!("`{field}`: `{pattern}`: {e}")))
}

fn dir_name(dir: &Path) -> Option<String> {
    let dir = if dir.as_os_str().is_empty() || dir == Path::new(".") {
        std::env::current_dir().ok()?
    } else {
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    };
    dir.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn config_error(path: &Path, message: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidValue {
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("hoist.toml"),
            "[workspace]\nmembers = [\"services/*\", \"tools/cli\"]\nexclude = [\"services/legacy\"]\n\n[workspace.image]\nbase = \"oci:base:1.0\"\nplatforms = [\"linux/amd64\"]\n\n[version]\nsource = \"VERSION\"\n",
        );
        write(&root.join("VERSION"), "0.1.0\n");
        write(
            &root.join("services/web/hoist.toml"),
            "[image]\nname = \"r/web\"\n",
        );
        write(
            &root.join("services/api/hoist.toml"),
            "[image]\nname = [\"r/api\", \"m/api\"]\nbase = \"scratch\"\n",
        );
        write(&root.join("services/legacy/hoist.toml"), "[image]\n");
        std::fs::create_dir_all(root.join("services/docs")).unwrap();
        write(&root.join("tools/cli/hoist.toml"), "[image]\n");
        dir
    }

    #[test]
    fn members_are_found_sorted_excluded_and_given_the_defaults() {
        let dir = workspace();
        let project = load(&dir.path().join("hoist.toml"), &[]).unwrap();
        assert!(project.is_workspace);
        assert_eq!(names(&project.members), "api, cli, web");
        let web = &project.members[2];
        assert_eq!(web.file.image.base.as_deref(), Some("oci:base:1.0"));
        assert!(web.file.inherited.base_from_root);
        assert_eq!(web.file.inherited.member.as_deref(), Some("web"));
        assert!(web.file.version.is_some());
        let api = &project.members[0];
        assert_eq!(api.file.image.base.as_deref(), Some("scratch"));
        assert!(!api.file.inherited.base_from_root);
        assert_eq!(api.file.image.platforms.as_ref().unwrap(), &["linux/amd64"]);
    }

    #[test]
    fn a_member_config_finds_its_workspace() {
        let dir = workspace();
        let project = load(&dir.path().join("services/web/hoist.toml"), &[]).unwrap();
        assert!(!project.is_workspace);
        assert_eq!(project.config, dir.path().join("hoist.toml"));
        assert_eq!(names(&project.members), "web");
        // An excluded directory is a lone image.
        let legacy = load(&dir.path().join("services/legacy/hoist.toml"), &[]).unwrap();
        assert!(legacy.members[0].file.version.is_none());
        assert_eq!(legacy.members[0].name, "legacy");
    }

    #[test]
    fn packages_pick_members_and_unknown_ones_are_named() {
        let dir = workspace();
        let config = dir.path().join("hoist.toml");
        let project = load(&config, &["web".into(), "api".into()]).unwrap();
        assert_eq!(names(&project.members), "api, web");
        let err = load(&config, &["nope".into()]).unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("api, cli, web"),
            "{err}"
        );
    }

    #[test]
    fn members_may_not_carry_their_own_version_or_tags() {
        let dir = workspace();
        let member = dir.path().join("services/web/hoist.toml");
        write(&member, "[image]\n[tags]\nrules = [\"x\"]\n");
        let err = load(&dir.path().join("hoist.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("services/web/hoist.toml") && err.contains("[tags]"),
            "{err}"
        );
        write(&member, "[image]\n[release]\ntag = \"web-{version}\"\n");
        let err = load(&dir.path().join("hoist.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[release] belongs in the workspace root"),
            "{err}"
        );
    }

    #[test]
    fn bad_roots_are_refused_by_name() {
        let dir = workspace();
        let root = dir.path().join("hoist.toml");
        write(&root, "[workspace]\nmembers = [\"nothing/*\"]\n");
        let err = load(&root, &[]).unwrap_err().to_string();
        assert!(err.contains("`nothing/*` matches no directory"), "{err}");
        write(&root, "[workspace]\nmembers = [\"services/docs\"]\n");
        let err = load(&root, &[]).unwrap_err().to_string();
        assert!(err.contains("holds no hoist.toml"), "{err}");
        write(
            &root,
            "[workspace]\nmembers = [\"services/*\"]\n[image]\nbase = \"scratch\"\n",
        );
        let err = load(&root, &[]).unwrap_err().to_string();
        assert!(err.contains("builds no image of its own"), "{err}");
        write(&root, "[workspace]\nmembers = [\"../x\"]\n");
        let err = load(&root, &[]).unwrap_err().to_string();
        assert!(err.contains("no `..`"), "{err}");
    }
}
