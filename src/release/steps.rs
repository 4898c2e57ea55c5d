//! The release's pure steps and checks: versions as users write them, bumps by name,
//! the tag rules' inputs, and the checkout checks made before a release commit.

use std::path::PathBuf;

use semver::Version;

use super::bump::{Bump, PreLabel, bump};
use super::git::Git;
use super::settings::{VersionFiles, same_file};
use super::tags::TagContext;
use super::{ReleaseError, Result};

pub(super) fn refused(message: String) -> ReleaseError {
    ReleaseError::Refused(message)
}

pub(super) fn step(context: String, source: impl Into<ReleaseError>) -> ReleaseError {
    ReleaseError::Step {
        context,
        source: Box::new(source.into()),
    }
}

/// A version as the user writes it (`1.2.3` or `v1.2.3`).
pub fn parse_version(text: &str, what: &str) -> Result<Version> {
    Version::parse(text.strip_prefix('v').unwrap_or(text)).map_err(|e| {
        refused(format!(
            "{what}: `{text}` is not a SemVer 2.0.0 version (X.Y.Z[-PRE]): {e}"
        ))
    })
}

/// The version `name` (`major`, `minor`, `patch`, `pre`, `release`, or a version)
/// makes of `current`; `pre` is the pre-release label for `pre`.
pub fn bump_by_name(name: &str, pre: Option<&str>, current: &Version) -> Result<Version> {
    let kind = match name {
        "major" => Bump::Major,
        "minor" => Bump::Minor,
        "patch" => Bump::Patch,
        "release" => Bump::Release,
        "pre" => Bump::Pre(pre_label(pre, current)?),
        _ => {
            return parse_version(name, "hoist release").map_err(|e| {
                step(
                    "expected patch, minor, major, pre, release or a version such as 1.2.3".into(),
                    e,
                )
            });
        }
    };
    if pre.is_some() && name != "pre" {
        return Err(refused("--pre goes with `pre` only".into()));
    }
    bump(current, kind)
}

/// `--pre`, else the current pre-release's label, else alpha.
fn pre_label(pre: Option<&str>, current: &Version) -> Result<PreLabel> {
    match pre {
        Some(label) => label
            .parse()
            .map_err(|e: String| refused(format!("--pre {e}"))),
        None => Ok(current
            .pre
            .as_str()
            .split('.')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(PreLabel::Alpha)),
    }
}

/// The tag rules' inputs: the version, the commit (`sha`, else HEAD's) and the branch
/// (`branch`, else git's).
pub fn tag_context(
    git: Option<&Git>,
    version: Option<Version>,
    sha: Option<String>,
    branch: Option<String>,
) -> Result<TagContext> {
    let sha = match sha {
        Some(sha) => Some(sha),
        None => git.map(Git::head_sha).transpose()?,
    };
    let branch = match branch {
        Some(branch) => Some(branch),
        None => git.map(Git::branch).transpose()?.flatten(),
    };
    Ok(TagContext {
        version,
        sha,
        branch,
        default_branch: git.and_then(Git::default_branch),
    })
}

/// Refuses a commit or tag on a dirty tree (version files aside), on a branch other
/// than the default one (unless allowed), or when the tag exists. Returns the branch.
pub fn check_git(
    git: &Git,
    files: &VersionFiles,
    allow_branch: bool,
    branch: Option<&str>,
    tag: &str,
) -> Result<Option<String>> {
    check_clean(git, files, "a release commit")?;
    let branch = match branch {
        Some(given) => Some(given.to_string()),
        None => git.branch()?,
    };
    if !allow_branch {
        let default = git.default_branch();
        if branch.is_none() || branch != default {
            return Err(refused(format!(
                "releases are made from the default branch ({}), not {}; pass --allow-branch to release from here",
                default
                    .as_deref()
                    .unwrap_or("unknown: no origin/HEAD, main or master"),
                branch
                    .as_deref()
                    .map_or("a detached HEAD".to_string(), |b| format!("branch {b}"))
            )));
        }
    }
    if git.tag_commit(tag).is_some() {
        return Err(refused(format!("the git tag {tag} exists already")));
    }
    Ok(branch)
}

/// Refuses a working tree with changes besides the version files, naming them; `what`
/// says what needs it clean.
pub fn check_clean(git: &Git, files: &VersionFiles, what: &str) -> Result<()> {
    let version_paths: Vec<PathBuf> = files.paths().iter().map(|p| same_file(p)).collect();
    let dirty: Vec<String> = git
        .dirty_files()?
        .into_iter()
        .filter(|relative| !version_paths.contains(&same_file(&git.root.join(relative))))
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "{what} needs a clean working tree, and it has changes besides the version files: {} (commit or stash them first)",
        dirty.join(", ")
    )))
}

/// What a dry run puts for the commit a release is about to make: its sha cannot be
/// known before it exists (it hashes the commit time), and HEAD's would name the
/// wrong commit. Not hex, so no real sha is ever mistaken for it.
const FUTURE_SHA: &str = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

/// The tag rules' inputs for the release commit not made yet (see [`future_sha_tag`]).
pub fn future_commit(mut context: TagContext) -> TagContext {
    context.sha = Some(FUTURE_SHA.to_string());
    context
}

/// A tag filled in with [`future_commit`], its sha shown as `<release-commit>` (or
/// `<release-commit-sha7>` for `{sha7}`).
pub fn future_sha_tag(tag: &str) -> String {
    tag.replace(FUTURE_SHA, "<release-commit>")
        .replace(&FUTURE_SHA[..7], "<release-commit-sha7>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_names_the_release_commit_it_cannot_know() {
        let context = future_commit(TagContext {
            version: Some(Version::new(1, 2, 0)),
            sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
            branch: Some("main".into()),
            default_branch: Some("main".into()),
        });
        let rules: Vec<String> = ["{version}", "sha-{sha7}", "{sha}", "latest"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let tags: Vec<String> =
            super::super::tags::compute(&rules, super::super::tags::Latest::Auto, &context)
                .unwrap()
                .iter()
                .map(|t| future_sha_tag(t))
                .collect();
        assert_eq!(
            tags,
            [
                "1.2.0",
                "sha-<release-commit-sha7>",
                "<release-commit>",
                "latest"
            ]
        );
    }
}
