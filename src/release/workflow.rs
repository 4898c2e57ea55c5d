//! `hoist release`: check the checkout, bump the version files, commit and tag, build
//! every image of the project through the one [`Builder`], keep moving tags from going
//! backwards, push every image to every registry, and only then move the tags: if one
//! push fails, no image gets a new tag anywhere, and the same command (or `--resume`)
//! finishes the release. The CLI turns flags into a [`Request`] and prints the
//! [`Outcome`]; progress notes go to the `note` callback as they happen.

use std::path::{Path, PathBuf};

use oci_spec::distribution::Reference;
use semver::Version;
use serde::Serialize;

use super::forward::tag_states_blocking;
use super::git::Git;
use super::journal::{Record, Step};
use super::labels::label_plan;
use super::rollout::{self, ImageTargets, Rollout};
use super::settings::{ReleaseCommit, ReleaseSettings, VersionFiles};
use super::steps::{check_clean, future_commit, future_sha_tag, refused, step};
use super::tags;
use super::transaction::{self, GitSteps, Transaction};
use super::{ReleaseError, Result};
use crate::oci::image::Image;
use crate::oci::platform::Platform;
use crate::pipeline::Builder;
use crate::plan::{Overrides, resolve};
use crate::registry::layer_source::cache_references;
use crate::registry::transport::Transport;
use crate::sign::{PrivateKey, SignError};
use crate::workspace::{self, Member};

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
struct Prepared {
    project: Project,
    files: VersionFiles,
    git: Option<Git>,
    current: Version,
    new: Version,
    resume: bool,
    make_commit: bool,
    make_tag: bool,
    targets: Vec<ImageTargets>,
}

/// Runs a release.
pub fn release(
    request: &Request,
    builder: &mut Builder,
    transport: &Transport,
    sign_key: Option<&PrivateKey>,
    note: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let prepared = prepare(request, transport)?;
    if request.dry_run {
        return Ok(Outcome::DryRun(Box::new(dry_run(request, prepared)?)));
    }
    let Prepared {
        project,
        files,
        git,
        current,
        new,
        resume,
        make_commit,
        targets,
        ..
    } = prepared;
    if resume {
        note(format!(
            "resuming the release of v{new}: HEAD is its release commit"
        ));
    } else {
        commit_and_tag(
            request,
            git.as_ref(),
            (&project.settings, &files),
            (&current, &new),
            make_commit,
            note,
        )?;
    }
    // The commit just made is what {sha} rules and the revision label name.
    let context = tag_context(
        git.as_ref(),
        Some(new.clone()),
        None,
        request.branch.clone(),
    )?;
    let release_tags = tags::compute(&project.settings.rules, project.settings.latest, &context)?;
    if tags::latest_left_out(&project.settings.rules, project.settings.latest, &context) {
        note(tags::LATEST_LEFT_OUT.to_string());
    }
    let hint = resume_hint(request, &new);
    let images = build_all(
        request,
        &project,
        &targets,
        builder,
        (&current, &new, &release_tags),
        (&hint, note),
    )?;
    if request.build_only {
        return Ok(Outcome::Built {
            version: new,
            images: images
                .iter()
                .map(|(member, _, image)| {
                    (member.name.clone(), image.descriptor.digest.to_string())
                })
                .collect(),
        });
    }
    let rollout = Rollout {
        settings: &project.settings,
        context: &context,
        new: &new,
        release_tags: &release_tags,
        force_tags: request.force_tags,
        hint: &hint,
    };
    // Signed (and their provenance attached) once every image is up, before any tag
    // moves: a tag never names an unsigned image.
    let sign = |i: usize, repository: &Reference| -> Result<()> {
        match sign_key {
            Some(key) => sign_release_image(key, &images[i], repository, transport),
            None => Ok(()),
        }
    };
    let pairs: Vec<(&ImageTargets, &Image)> = targets
        .iter()
        .zip(images.iter().map(|(_, _, image)| image))
        .collect();
    let released = rollout.run(&pairs, builder, transport, &sign, note)?;
    transaction::finish(git.as_ref())?;
    Ok(Outcome::Released(Box::new(Released {
        previous: current,
        version: new,
        resumed: resume,
        images: released,
    })))
}

/// Loads the project, checks it and the checkout, and works out the version: an
/// interrupted release's (from the journal: never bumped again), else the bump asked.
fn prepare(request: &Request, transport: &Transport) -> Result<Prepared> {
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

fn dry_run(request: &Request, prepared: Prepared) -> Result<DryRun> {
    let mut context = tag_context(
        prepared.git.as_ref(),
        Some(prepared.new.clone()),
        None,
        request.branch.clone(),
    )?;
    if prepared.make_commit {
        // The images will carry the release commit's sha, not HEAD's.
        context = future_commit(context);
    }
    let settings = &prepared.project.settings;
    let tags: Vec<String> = tags::compute(&settings.rules, settings.latest, &context)?
        .iter()
        .map(|t| future_sha_tag(t))
        .collect();
    let latest_left_out = tags::latest_left_out(&settings.rules, settings.latest, &context);
    let mut images = Vec::new();
    for (member, target) in prepared
        .project
        .workspace
        .members
        .iter()
        .zip(&prepared.targets)
    {
        let plan = member_plan(request, member)?;
        images.push(DryRunImage {
            name: member.name.clone(),
            platforms: plan
                .platforms
                .map(|p| p.iter().map(Platform::to_string).collect()),
            repositories: target
                .repositories
                .iter()
                .map(rollout::repository_name)
                .collect(),
        });
    }
    Ok(DryRun {
        old: prepared.current.to_string(),
        new: prepared.new.to_string(),
        files: prepared.files,
        resume: prepared.resume,
        commit: prepared
            .make_commit
            .then(|| settings.commit.subject(&prepared.new)),
        tag: prepared
            .make_tag
            .then(|| settings.commit.tag(&prepared.new)),
        branch: context.branch,
        tags,
        latest_left_out,
        images,
    })
}

fn member_plan(request: &Request, member: &Member) -> Result<crate::plan::Plan> {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let overrides = Overrides {
        platforms: request.platforms.clone(),
        ..Overrides::default()
    };
    let mut plan = resolve(&member.config, &member.file, &overrides, epoch.as_deref())?;
    plan.sbom &= !request.no_sbom;
    Ok(plan)
}

/// Builds every image, labelled with the new version; each reuses the layers its
/// first repository already holds (under the release's tags, or `latest`), as
/// `hoist build --push` does.
fn build_all<'p>(
    request: &Request,
    project: &'p Project,
    targets: &[ImageTargets],
    builder: &mut Builder,
    (previous, new, release_tags): (&Version, &Version, &[String]),
    (hint, note): (&str, &mut dyn FnMut(String)),
) -> Result<Vec<(&'p Member, crate::plan::Plan, Image)>> {
    let mut images = Vec::new();
    for (member, target) in project.workspace.members.iter().zip(targets) {
        let mut plan = member_plan(request, member)?;
        label_plan(&member.config, &member.file, &mut plan, Some(new))?;
        let first = target.repositories.first().map(|r| (r, release_tags));
        builder
            .reuse_registry_layers(&cache_references(first, &[]))
            .map_err(|e| {
                step(
                    format!(
                        "reading the layers {} holds already; {hint}",
                        target
                            .repositories
                            .first()
                            .map_or_else(String::new, rollout::repository_name)
                    ),
                    e,
                )
            })?;
        let image = builder
            .build(&plan, !target.repositories.is_empty())
            .map_err(|e| {
                step(
                    format!("building v{new} of {} failed; {hint}", member.name),
                    e,
                )
            })?;
        // Before anything is uploaded: sizes, and growth against the previous release.
        check_budget(
            builder,
            &plan,
            &image,
            target.repositories.first(),
            previous,
            note,
        )
        .map_err(|e| step(format!("v{new} of {}: nothing pushed", member.name), e))?;
        images.push((member, plan, image));
    }
    Ok(images)
}

/// `[budget]`: sizes, then growth against the image the previous version's tag names
/// in the image's first repository.
fn check_budget(
    builder: &Builder,
    plan: &crate::plan::Plan,
    image: &Image,
    repository: Option<&Reference>,
    previous: &Version,
    note: &mut dyn FnMut(String),
) -> crate::Result<()> {
    builder.check_budget(plan, image)?;
    if let Some(repository) = repository {
        crate::budget::check_previous_release(
            image,
            &plan.budget,
            repository,
            &previous.to_string(),
            builder.transport(),
            note,
        )?;
    }
    Ok(())
}

/// Signs one released image in one repository (index and manifests, cosign's `.sig`
/// tags) and attaches its signed provenance.
fn sign_release_image(
    key: &PrivateKey,
    (member, plan, image): &(&Member, crate::plan::Plan, Image),
    repository: &Reference,
    transport: &Transport,
) -> Result<()> {
    let pushed = format!(
        "{}@{}",
        rollout::repository_name(repository),
        image.descriptor.digest
    );
    let target = crate::oci::reference::parse(&pushed)?;
    let facts = super::attest::provenance_facts(&member.config, plan, image, &pushed)?;
    let signing = async {
        crate::sign::sign_pushed(transport, &target, key, &std::collections::BTreeMap::new())
            .await?;
        crate::sign::provenance::attach_provenance(
            transport,
            &target,
            &image.descriptor,
            &facts,
            key,
        )
        .await?;
        Ok::<_, SignError>(())
    };
    let mut outcome = None;
    crate::registry::block_on(async {
        outcome = Some(signing.await);
        Ok(())
    })?;
    outcome.expect("the signing ran").map_err(|e| match e {
        // A registry's answer stays typed (the CLI's credential hint reads it).
        SignError::Registry(inner) => ReleaseError::Registry(inner),
        other => refused(format!("signing {pushed}: {other}")),
    })
}

/// How to go on when a step after the release commit fails.
fn resume_hint(request: &Request, new: &Version) -> String {
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
fn commit_and_tag(
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
