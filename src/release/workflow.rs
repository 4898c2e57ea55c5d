//! `hoist release`'s git and version half: what a release is asked ([`Request`]) and
//! how it ends ([`Outcome`]), the project, the checks on the checkout, the version
//! worked out ([`prepare`]), the version files written, committed and tagged as one
//! transaction ([`commit_and_tag`]). The job (`job/release.rs`, above this module)
//! runs the release: preflight, this, then build, budget, pushes, signatures and tags.

use std::path::{Path, PathBuf};

use oci_spec::distribution::Reference;
use semver::Version;
use serde::Serialize;

use super::Result;
use super::forward::tag_states_blocking;
use super::git::Git;
use super::journal::{Record, Step};
use super::rollout::{self, ImageTargets};
use super::settings::{ReleaseCommit, ReleaseSettings, VersionFiles};
use super::steps::{check_clean, refused, step};
use super::transaction::{self, GitSteps, Transaction};
use crate::registry::transport::Transport;
use crate::workspace;

pub use super::steps::{bump_by_name, check_git, parse_version, tag_context};
pub use rollout::{KeptTags, ReleasedImage, ReleasedPush};

/// What `hoist release` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The config file (a workspace root, a member's, or a lone image's).
    pub config: PathBuf,
    /// `-p`: the workspace members released (all when empty).
    pub packages: Vec<String>,
    /// `patch`, `minor`, `major`, `pre`, `release` or a version; `None` with `resume`.
    pub target: Option<String>,
    /// The pre-release label for `pre`.
    pub pre: Option<String>,
    /// The annotated tag's message.
    pub message: Option<String>,
    /// Say what would happen; change nothing.
    pub dry_run: bool,
    /// Build only: no version file, commit, tag or push changes.
    pub build_only: bool,
    /// Make no commit and no tag.
    pub no_git: bool,
    /// Move moving tags even backwards.
    pub force_tags: bool,
    /// Allow a branch other than the default one.
    pub allow_branch: bool,
    /// The branch of a detached-HEAD checkout.
    pub branch: Option<String>,
    /// Finish an interrupted release.
    pub resume: bool,
    /// The repositories to push to instead of `[image].name` (one image only).
    pub push_to: Vec<String>,
    /// Platforms to build instead of `[image].platforms`.
    pub platforms: Vec<String>,
    /// `--no-sbom`.
    pub no_sbom: bool,
    /// `--growth`: print each image's growth against the previous release (also
    /// printed, and checked, wherever `[budget] max_growth` is set).
    pub growth: bool,
    /// `--by-digest`: push (with SBOMs and signatures) and move no tag: one runner's
    /// part of a release split across runners.
    pub by_digest: bool,
    /// `--from`: the metadata files of the runners' `--by-digest` parts; build and
    /// push nothing, check every member is there, move the tags.
    pub from: Vec<PathBuf>,
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
        /// Each image's name and digest.
        images: Vec<(String, String)>,
    },
    /// Pushed with its tags.
    Released(Box<Released>),
}

/// The plan a dry run shows.
#[derive(Debug, Serialize)]
pub struct DryRun {
    /// The version files.
    #[serde(skip)]
    pub files: VersionFiles,
    /// The version now.
    pub old: String,
    /// The version released.
    pub new: String,
    /// Whether a failed release is resumed.
    pub resume: bool,
    /// The subject of the release commit that would be made.
    pub commit: Option<String>,
    /// The git tag that would be made.
    pub tag: Option<String>,
    /// The branch released from.
    pub branch: Option<String>,
    /// The image tags.
    pub tags: Vec<String>,
    /// Whether `latest` was left out because HEAD is detached and no branch was given.
    pub latest_left_out: bool,
    /// The images released, with their platforms and repositories.
    pub images: Vec<DryRunImage>,
}

/// One image of a dry run.
#[derive(Debug, Serialize)]
pub struct DryRunImage {
    /// The member's name.
    pub name: String,
    /// The platforms built (`None`: every platform of the base).
    pub platforms: Option<Vec<String>>,
    /// The repositories pushed to (empty: build only).
    pub repositories: Vec<String>,
}

/// A finished release.
#[derive(Debug)]
pub struct Released {
    /// The version before.
    pub previous: Version,
    /// The version released.
    pub version: Version,
    /// Whether a failed release was finished.
    pub resumed: bool,
    /// Every image, with its pushes.
    pub images: Vec<ReleasedImage>,
    /// `--by-digest`: pushed, no tag moved.
    pub by_digest: bool,
    /// The commit the images were built from (HEAD, or the release commit).
    pub commit: Option<String>,
    /// Members whose previous image was kept (`[workspace] keep_unchanged`), with the
    /// version their image names.
    pub unchanged: Vec<(String, String)>,
}

/// The project, its release settings and the directory its root config is in.
pub struct Project {
    /// The images and the config that holds `[version]` and `[tags]`.
    pub workspace: workspace::Project,
    /// Its `[version]` and `[tags]`.
    pub settings: ReleaseSettings,
    /// The directory the root config is in.
    pub dir: PathBuf,
}

impl Project {
    /// Reads the project `config` belongs to, with the members `packages` picks.
    pub fn load(config: &Path, packages: &[String]) -> Result<Project> {
        let workspace = workspace::load(config, packages)?;
        let settings = ReleaseSettings::resolve(&workspace.config, &workspace.file)?;
        let dir = crate::fsutil::parent_dir(&workspace.config).to_path_buf();
        Ok(Project {
            workspace,
            settings,
            dir,
        })
    }

    /// The git checkout the project is in.
    pub fn git(&self) -> Result<Git> {
        Git::discover(&self.dir).map_err(|e| {
            step(
                format!("{} is not in a git checkout", self.dir.display()),
                e,
            )
        })
    }
}

/// The release's state once the checks are made: the version, git, where each image
/// goes.
pub struct Prepared {
    /// The project.
    pub project: Project,
    /// Its version files.
    pub files: VersionFiles,
    /// Its checkout (`None` with `--no-git` outside one).
    pub git: Option<Git>,
    /// The version the files hold.
    pub current: Version,
    /// The version released.
    pub new: Version,
    /// Whether a failed release is finished.
    pub resume: bool,
    /// Whether a release commit is made.
    pub make_commit: bool,
    /// Whether the git tag is made.
    pub make_tag: bool,
    /// Where each image goes.
    pub targets: Vec<ImageTargets>,
}

/// Loads the project, checks it and the checkout, and works out the version: an
/// interrupted release's (from the journal: never bumped again), else the bump asked.
pub fn prepare(request: &Request, transport: &Transport) -> Result<Prepared> {
    let project = Project::load(&request.config, &request.packages)?;
    let git = if request.no_git {
        Git::discover(&project.dir).ok()
    } else {
        Some(project.git()?)
    };
    let pending = match git.as_ref().filter(|_| !request.build_only) {
        Some(git) => transaction::pending(git, &project.settings, request.dry_run)?,
        None => None,
    };
    if let Some(record) = &pending {
        transaction::check_mode(record, request.no_git)?;
    }
    let files = project.settings.read()?;
    if pending.is_none() {
        refuse_disagreeing(&files)?;
    }
    let targets = if request.build_only {
        project
            .workspace
            .members
            .iter()
            .map(|m| ImageTargets::build_only(m.name.clone()))
            .collect()
    } else {
        rollout::targets(&project.workspace, &request.push_to, transport)?
    };
    let found = files.version().clone();
    let resume = should_resume(
        request,
        git.as_ref(),
        (&project, pending.as_ref()),
        &found,
        &targets,
        transport,
    )?;
    let (current, new) = versions(request, pending.as_ref(), resume, found)?;
    let changes_files = new != current;
    if let Some(git) = git.as_ref().filter(|_| !request.no_git) {
        if resume || pending.is_some() {
            // What is built must be what the release commit holds.
            check_clean(git, &files, "--resume")?;
        } else if !changes_files {
            return Err(refused(format!(
                "the version is {current} already; to push it again after a failed release, run `hoist release --resume` on its release commit (or `hoist release {current} --no-git`)"
            )));
        } else {
            check_git(
                git,
                &files,
                request.allow_branch,
                request.branch.as_deref(),
                &project.settings.commit.tag(&new),
            )?;
        }
    }
    let in_git = !request.no_git && !request.build_only;
    let (make_commit, make_tag) = match &pending {
        Some(record) => (
            in_git && record.commit.is_some() && record.step < Step::Committed,
            in_git && record.tag.is_some() && record.step < Step::Tagged,
        ),
        None => (in_git && !resume && changes_files, in_git && !resume),
    };
    Ok(Prepared {
        project,
        files,
        git,
        current,
        new,
        resume,
        make_commit,
        make_tag,
        targets,
    })
}

/// The version before and after the release: the interrupted release's (the same
/// command finishes it), else the version found when resuming, else the bump asked.
fn versions(
    request: &Request,
    pending: Option<&Record>,
    resume: bool,
    found: Version,
) -> Result<(Version, Version)> {
    let wanted = request.target.as_deref().unwrap_or_default();
    let bump = |from: &Version| bump_by_name(wanted, request.pre.as_deref(), from);
    match pending {
        Some(record) => {
            let asked: Option<transaction::Asked> = request.target.as_ref().map(|_| &bump as _);
            transaction::same_version(record, asked, "`hoist release --resume`")
        }
        None if resume => Ok((found.clone(), found)),
        None => {
            let new = bump(&found)?;
            Ok((found, new))
        }
    }
}

/// How to go on when a step after the release commit fails.
pub fn resume_hint(request: &Request, new: &Version) -> String {
    if request.no_git {
        format!("run `hoist release {new} --no-git` to try again")
    } else if request.build_only {
        format!("nothing was changed; run the same command to build v{new} again")
    } else {
        format!(
            "the release commit of v{new} and its git tag are made; {}",
            transaction::FINISH_RELEASE
        )
    }
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
/// `--resume`, or when any image's repository lacks the version's tag). The journal
/// says so when this checkout made the release; HEAD's subject and tag (by the
/// `[release]` templates) when it did not (a fresh clone, an older hoist).
fn should_resume(
    request: &Request,
    git: Option<&Git>,
    (project, pending): (&Project, Option<&Record>),
    current: &Version,
    targets: &[ImageTargets],
    transport: &Transport,
) -> Result<bool> {
    if let Some(record) = pending {
        return Ok(record.prepared());
    }
    let commit = &project.settings.commit;
    let resumable = !request.no_git
        && !request.build_only
        && git.is_some_and(|g| is_release_head(g, commit, current).unwrap_or(false));
    if request.resume {
        if !resumable {
            return Err(refused(format!(
                "--resume: nothing to resume: no interrupted release in the journal, and HEAD is not the release commit of v{current} (\"{}\" tagged {})",
                commit.subject(current),
                commit.tag(current)
            )));
        }
        return Ok(true);
    }
    if !resumable {
        return Ok(false);
    }
    // Resumed only when a repository lacks the version's tag; after a complete release
    // a new bump is what the user asks for.
    for repository in targets.iter().flat_map(|t| &t.repositories) {
        if lacks_tag(repository, current, transport)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lacks_tag(repository: &Reference, current: &Version, transport: &Transport) -> Result<bool> {
    let states =
        tag_states_blocking(repository, &[current.to_string()], transport).map_err(|e| {
            step(
                format!(
                    "HEAD is the release commit of v{current}: checking whether {} has its tag {current}",
                    rollout::repository_name(repository)
                ),
                e,
            )
        })?;
    Ok(states.iter().any(|s| s.digest.is_none()))
}

/// The version files, the release commit and its git tag, as one transaction
/// ([`transaction`]): an interrupted one is finished, a refused commit undone.
pub fn commit_and_tag(
    request: &Request,
    git: Option<&Git>,
    (settings, files): (&ReleaseSettings, &VersionFiles),
    (current, new): (&Version, &Version),
    make_commit: bool,
    note: &mut dyn FnMut(String),
) -> Result<()> {
    if request.build_only {
        note(format!(
            "--build-only: v{new} is built from the checkout as it is; no version file, commit or tag is changed"
        ));
        return Ok(());
    }
    let Some(git) = git else {
        // No checkout, so no journal: all or nothing within this run only.
        if new != current {
            transaction::write_version(None, settings, files, new)?;
            note(format!("{current} → {new}"));
        }
        return Ok(());
    };
    let mut txn = if let Some(record) = transaction::pending(git, settings, false)? {
        note(format!(
            "finishing the interrupted release of v{} ({})",
            record.version,
            transaction::describe(record.step)
        ));
        Transaction::resume(git, record)?
    } else if new == current {
        // --no-git on the version the files hold: nothing to write.
        return Ok(());
    } else {
        let steps = GitSteps {
            commit: make_commit,
            tag: !request.no_git,
            notes: request.message.as_deref(),
            release: true,
        };
        let txn = Transaction::begin(git, settings, files, new, steps)?;
        note(format!("{current} → {new}"));
        txn
    };
    txn.run(transaction::FINISH_RELEASE)?;
    if request.no_git {
        return Ok(());
    }
    let record = txn.record();
    let subject = record.commit.as_deref().and_then(|m| m.lines().next());
    note(format!(
        "committed \"{}\" and tagged {}",
        subject.unwrap_or_default(),
        record
            .tag
            .as_ref()
            .map_or("nothing", |(tag, _)| tag.as_str())
    ));
    Ok(())
}

/// HEAD is the release commit of `current` (its subject by the `[release]` template)
/// and carries its git tag.
fn is_release_head(git: &Git, commit: &ReleaseCommit, current: &Version) -> Result<bool> {
    let head = git.head_sha()?;
    Ok(
        git.tag_commit(&commit.tag(current)).as_deref() == Some(head.as_str())
            && git.head_subject()? == commit.subject(current),
    )
}
