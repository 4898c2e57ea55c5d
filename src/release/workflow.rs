//! `hoist release`: check the checkout, bump the version files, commit and tag, build
//! through the one [`Builder`], keep moving tags from going backwards, push every tag.
//! The CLI turns flags into a [`Request`] and prints the [`Outcome`]; progress notes go
//! to the `note` callback as they happen.

use std::path::{Path, PathBuf};

use oci_spec::distribution::Reference;
use semver::Version;

use super::bump::{Bump, PreLabel, bump};
use super::forward::{check_forward, tag_states_blocking};
use super::git::Git;
use super::labels::label_plan;
use super::settings::{ReleaseSettings, VersionFiles};
use super::tags::{self, TagContext};
use super::{ReleaseError, Result};
use crate::config::ConfigFile;
use crate::oci::platform::Platform;
use crate::oci::reference;
use crate::pipeline::{Builder, Outputs, PushTarget};
use crate::plan::{Overrides, resolve};
use crate::registry::push::PushReport;
use crate::registry::transport::Transport;

/// What `hoist release` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The config file.
    pub config: PathBuf,
    /// `patch`, `minor`, `major`, `pre`, `release` or a version; `None` with `resume`.
    pub target: Option<String>,
    /// The pre-release label for `pre`.
    pub pre: Option<String>,
    /// The annotated tag's message.
    pub message: Option<String>,
    /// Say what would happen; change nothing.
    pub dry_run: bool,
    /// Stop after the build.
    pub build_only: bool,
    /// Make no commit and no tag.
    pub no_git: bool,
    /// Move moving tags even backwards.
    pub force_tags: bool,
    /// Allow a branch other than the default one.
    pub allow_branch: bool,
    /// The branch of a detached-HEAD checkout.
    pub branch: Option<String>,
    /// Finish a release whose push failed.
    pub resume: bool,
    /// The repository to push to instead of `[image].name`.
    pub push_to: Option<String>,
    /// Platforms to build instead of `[image].platforms`.
    pub platforms: Vec<String>,
    /// `--no-sbom`.
    pub no_sbom: bool,
}

/// How a release ended.
#[derive(Debug)]
pub enum Outcome {
    /// `--dry-run`: what would happen.
    DryRun(Box<DryRun>),
    /// `--build-only`: built, not pushed.
    Built {
        /// The version built.
        version: Version,
        /// The image's digest.
        digest: String,
    },
    /// Pushed with its tags.
    Released(Box<Released>),
}

/// The plan a dry run shows.
#[derive(Debug)]
pub struct DryRun {
    /// The version files.
    pub files: VersionFiles,
    /// The version now.
    pub old: Version,
    /// The version released.
    pub new: Version,
    /// Whether a failed release is resumed.
    pub resume: bool,
    /// Whether a release commit would be made.
    pub commit: bool,
    /// Whether the tag would be made.
    pub tag: bool,
    /// The branch released from.
    pub branch: Option<String>,
    /// The image tags.
    pub tags: Vec<String>,
    /// The platforms built (`None`: every platform of the base).
    pub platforms: Option<Vec<Platform>>,
    /// The repository pushed to (`None`: build only).
    pub target: Option<String>,
}

/// Moving tags left where they were, each with the version it names.
pub type KeptTags = Vec<(String, Version)>;

/// A finished release.
#[derive(Debug)]
pub struct Released {
    /// The version before.
    pub previous: Version,
    /// The version released.
    pub version: Version,
    /// Whether a failed release was finished.
    pub resumed: bool,
    /// The push.
    pub report: PushReport,
    /// `HOST/REPO`.
    pub repository: String,
    /// Moving tags left where they were, with the version they name.
    pub kept: KeptTags,
}

/// The config, its release settings and the directory it is in.
pub struct Project {
    /// The config file.
    pub config: PathBuf,
    /// Its contents.
    pub file: ConfigFile,
    /// Its `[version]` and `[tags]`.
    pub settings: ReleaseSettings,
    /// The directory it is in.
    pub dir: PathBuf,
}

impl Project {
    /// Reads the config and its release settings.
    pub fn load(config: &Path) -> Result<Project> {
        let file = ConfigFile::load(config)?;
        let settings = ReleaseSettings::resolve(config, &file)?;
        let dir = crate::fsutil::parent_dir(config).to_path_buf();
        Ok(Project {
            config: config.to_path_buf(),
            file,
            settings,
            dir,
        })
    }

    /// The git checkout the config is in.
    pub fn git(&self) -> Result<Git> {
        Git::discover(&self.dir).map_err(|e| {
            step(
                format!("{} is not in a git checkout", self.dir.display()),
                e,
            )
        })
    }
}

fn refused(message: String) -> ReleaseError {
    ReleaseError::Refused(message)
}

fn step(context: String, source: impl Into<ReleaseError>) -> ReleaseError {
    ReleaseError::Step {
        context,
        source: Box::new(source.into()),
    }
}

/// Runs a release.
pub fn release(
    request: &Request,
    builder: &Builder,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let project = Project::load(&request.config)?;
    let files = project.settings.read()?;
    refuse_disagreeing(&files)?;
    let git = if request.no_git {
        Git::discover(&project.dir).ok()
    } else {
        Some(project.git()?)
    };
    let current = files.version().clone();
    let target = if request.build_only {
        None
    } else {
        Some(push_target(request, &project, transport)?)
    };
    let resume = should_resume(request, git.as_ref(), &current, target.as_ref(), transport)?;
    let new = if resume {
        current.clone()
    } else {
        let wanted = request.target.as_deref().unwrap_or_default();
        bump_by_name(wanted, request.pre.as_deref(), &current)?
    };
    let changes_files = new != current;
    let make_commit = !request.no_git && !resume && changes_files;
    let make_tag = !request.no_git && !resume;
    if !resume && !request.no_git {
        let git = git.as_ref().expect("a checkout unless --no-git");
        if !changes_files {
            return Err(refused(format!(
                "the version is {current} already; to push it again after a failed release, run `hoist release --resume` on its release commit (or `hoist release {current} --no-git`)"
            )));
        }
        check_git(
            git,
            &files,
            request.allow_branch,
            request.branch.as_deref(),
            &format!("v{new}"),
        )?;
    }

    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let overrides = Overrides {
        platforms: request.platforms.clone(),
        ..Overrides::default()
    };
    let mut plan = resolve(&project.config, &project.file, &overrides, epoch.as_deref())?;
    plan.sbom &= !request.no_sbom;
    // The tags as of now; after the release commit, {sha} names that commit.
    let tags_now = || -> Result<(TagContext, Vec<String>)> {
        let context = tag_context(
            git.as_ref(),
            Some(new.clone()),
            None,
            request.branch.clone(),
        )?;
        let tags = tags::compute(&project.settings.rules, project.settings.latest, &context)?;
        Ok((context, tags))
    };
    if request.dry_run {
        let (context, tags) = tags_now()?;
        return Ok(Outcome::DryRun(Box::new(DryRun {
            files,
            old: current,
            new,
            resume,
            commit: make_commit,
            tag: make_tag,
            branch: context.branch,
            tags,
            platforms: plan.platforms.clone(),
            target: target.as_ref().map(repository_name),
        })));
    }

    if resume {
        note(format!(
            "resuming the release of v{new}: HEAD is its release commit"
        ));
    } else {
        commit_and_tag(
            request,
            git.as_ref(),
            &files,
            &current,
            &new,
            make_commit,
            note,
        )?;
    }
    // The commit just made is what {sha} rules and the revision label name.
    let (context, release_tags) = tags_now()?;
    label_plan(&project.config, &project.file, &mut plan, Some(&new))?;

    let resume_hint = if request.no_git {
        format!("run `hoist release {new} --no-git` to try again")
    } else {
        format!(
            "the release commit and tag v{new} are made; run `hoist release --resume` (or the same `hoist release` command) to build and push what is missing"
        )
    };
    let image = builder
        .build(&plan, target.is_some())
        .map_err(|e| step(format!("building v{new} failed; {resume_hint}"), e))?;
    // Before anything is uploaded: sizes, and growth against the previous release.
    let checked = (builder, &plan, &image, target.as_ref(), &current);
    check_budget(checked, transport, note)
        .map_err(|e| step(format!("v{new}: nothing pushed"), e))?;
    let Some(target) = target else {
        return Ok(Outcome::Built {
            version: new,
            digest: image.descriptor.digest.to_string(),
        });
    };

    let (push_tags, kept) = if request.force_tags {
        (release_tags, Vec::new())
    } else {
        forward_tags(
            &project,
            &context,
            &target,
            &new,
            release_tags,
            transport,
            note,
        )
        .map_err(|e| {
            step(
                format!(
                    "checking the tags of {}; {resume_hint}",
                    repository_name(&target)
                ),
                e,
            )
        })?
    };
    let report = push_image(builder, &image, &target, push_tags).map_err(|e| {
        step(
            format!(
                "pushing v{new} to {} failed; {resume_hint}",
                repository_name(&target)
            ),
            e,
        )
    })?;
    Ok(Outcome::Released(Box::new(Released {
        previous: current,
        version: new,
        resumed: resume,
        report,
        repository: repository_name(&target),
        kept,
    })))
}

/// `[budget]`: sizes, then growth against the image the previous version's tag names
/// in the target repository.
fn check_budget(
    (builder, plan, image, target, previous): (
        &Builder,
        &crate::plan::Plan,
        &crate::oci::image::Image,
        Option<&Reference>,
        &Version,
    ),
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> crate::Result<()> {
    builder.check_budget(plan, image)?;
    if let Some(target) = target {
        crate::budget::check_previous_release(
            image,
            &plan.budget,
            target,
            &previous.to_string(),
            transport,
            note,
        )?;
    }
    Ok(())
}

/// Pushes the release image with its tags.
fn push_image(
    builder: &Builder,
    image: &crate::oci::image::Image,
    target: &Reference,
    tags: Vec<String>,
) -> crate::Result<PushReport> {
    let outputs = Outputs {
        sink: None,
        push: Some(PushTarget {
            reference: target.clone(),
            tags,
        }),
    };
    let published = builder.publish(image, &outputs)?;
    Ok(published.pushed.expect("a push was asked for"))
}

fn refuse_disagreeing(files: &VersionFiles) -> Result<()> {
    let disagreeing = files.disagreeing();
    if disagreeing.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "the version files disagree ({}); run `hoist version check` and fix them first",
        disagreeing
            .iter()
            .map(|f| format!("{}:{} has {}", f.path.display(), f.line, f.version))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// A release whose push failed left HEAD on its commit and tag: finish it (asked with
/// `--resume`, or when the registry lacks the version's tag).
fn should_resume(
    request: &Request,
    git: Option<&Git>,
    current: &Version,
    target: Option<&Reference>,
    transport: &Transport,
) -> Result<bool> {
    let resumable =
        !request.no_git && git.is_some_and(|g| is_release_head(g, current).unwrap_or(false));
    if request.resume {
        if !resumable {
            return Err(refused(format!(
                "--resume: nothing to resume: HEAD is not the release commit of v{current} (\"Release v{current}\" tagged v{current})"
            )));
        }
        return Ok(true);
    }
    let (true, Some(target)) = (resumable, target) else {
        return Ok(false);
    };
    // Resumed only when the registry lacks the version's tag; after a complete release
    // a new bump is what the user asks for.
    let states = tag_states_blocking(target, &[current.to_string()], transport).map_err(|e| {
        step(
            format!(
                "HEAD is the release commit of v{current}: checking whether {} has its tag {current}",
                repository_name(target)
            ),
            e,
        )
    })?;
    Ok(states.iter().any(|s| s.digest.is_none()))
}

fn commit_and_tag(
    request: &Request,
    git: Option<&Git>,
    files: &VersionFiles,
    current: &Version,
    new: &Version,
    make_commit: bool,
    note: &mut dyn FnMut(String),
) -> Result<()> {
    if new != current {
        files.write(new)?;
        note(format!("{current} → {new}"));
    }
    let Some(git) = git.filter(|_| !request.no_git) else {
        return Ok(());
    };
    let paths: Vec<PathBuf> = files.all().map(|f| f.path.clone()).collect();
    if make_commit {
        git.commit(&paths, &format!("Release v{new}"))?;
    }
    let notes = request
        .message
        .clone()
        .unwrap_or_else(|| format!("Release v{new}"));
    git.tag_annotated(&format!("v{new}"), &notes)?;
    note(format!("committed \"Release v{new}\" and tagged v{new}"));
    Ok(())
}

/// Tags only move forward: a moving tag that names a higher version stays where it is.
/// Returns the tags to push and those kept.
fn forward_tags(
    project: &Project,
    context: &TagContext,
    target: &Reference,
    new: &Version,
    mut push_tags: Vec<String>,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<(Vec<String>, KeptTags)> {
    let moving = tags::moving_tags(&project.settings.rules, project.settings.latest, context)?;
    let states = tag_states_blocking(target, &moving, transport)?;
    let check = check_forward(&states, new);
    for tag in &check.unknown {
        note(format!(
            "warning: the image tag {tag} names an image whose version cannot be told; moving it to {new}"
        ));
    }
    for (tag, current) in &check.kept {
        note(format!(
            "kept tag {tag} on {current}: {new} is lower and tags only move forward (--force-tags moves it)"
        ));
        push_tags.retain(|t| t != tag);
    }
    Ok((push_tags, check.kept))
}

/// `HOST/REPO`, as the user wrote it (no `:latest`).
pub fn repository_name(target: &Reference) -> String {
    format!("{}/{}", target.registry(), target.repository())
}

/// HEAD is `Release vX`, tagged `vX`, and X is the version in the files.
fn is_release_head(git: &Git, current: &Version) -> Result<bool> {
    let head = git.head_sha()?;
    Ok(
        git.tag_commit(&format!("v{current}")).as_deref() == Some(head.as_str())
            && git.head_subject()? == format!("Release v{current}"),
    )
}

fn push_target(request: &Request, project: &Project, transport: &Transport) -> Result<Reference> {
    let input = match (&request.push_to, &project.file.image.name) {
        (Some(to), _) => to.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => {
            return Err(refused(format!(
                "hoist release pushes to image.name: set it in {} or pass --push-to (or --build-only)",
                project.config.display()
            )));
        }
    };
    if transport.options().offline {
        return Err(refused(
            "--offline and hoist release cannot go together: pushing needs the network (use --build-only)".into(),
        ));
    }
    if reference::explicit_tag(&input).is_some() {
        return Err(refused(format!(
            "`{input}`: name the repository only; the tags come from [tags].rules"
        )));
    }
    Ok(reference::parse(&input)?)
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
    let version_paths: Vec<PathBuf> = files
        .all()
        .map(|f| std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone()))
        .collect();
    let dirty: Vec<String> = git
        .dirty_files()?
        .into_iter()
        .filter(|relative| {
            let path = git.root.join(relative);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            !version_paths.contains(&path)
        })
        .collect();
    if !dirty.is_empty() {
        return Err(refused(format!(
            "the working tree has changes besides the version files: {} (commit or stash them first)",
            dirty.join(", ")
        )));
    }
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
