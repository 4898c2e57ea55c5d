//! The job of `hoist release`: preflight (every repository reached with the
//! credentials, the version's tag read) before the release commit and git tag exist;
//! then the version files, commit and tag ([`crate::release::workflow`]); every image
//! built through the one [`Builder`] and checked against its budget; every image
//! pushed everywhere by digest and signed; only then the tags, each checked right
//! before it moves. If one push fails, no image gets a new tag anywhere, and the same
//! command (or `--resume`) finishes the release.

use oci_spec::distribution::Reference;
use semver::Version;

use super::{Env, PlanOverrides, Result, attest, plan_for, step};
use crate::oci::image::Image;
use crate::oci::platform::Platform;
use crate::pipeline::Builder;
use crate::plan::{Overrides, Plan};
use crate::registry::layer_source::cache_references;
use crate::release::ReleaseError;
use crate::release::forward::probe_tags;
use crate::release::rollout::{self, ImageTargets, Rollout};
use crate::release::steps::{future_commit, future_sha_tag};
use crate::release::tags;
use crate::release::transaction;
use crate::release::workflow::{
    DryRun, DryRunImage, Outcome, Prepared, Released, Request, commit_and_tag, prepare,
    resume_hint, tag_context,
};
use crate::sign::PrivateKey;
use crate::workspace::Member;

/// Runs a release; `note` hears progress as it happens.
pub fn release(
    request: &Request,
    builder: &mut Builder,
    sign_key: Option<&PrivateKey>,
    note: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let env = Env::from_process();
    let transport = builder.transport();
    let prepared = prepare(request, transport)?;
    if request.dry_run {
        return Ok(Outcome::DryRun(Box::new(dry_run(request, prepared, &env)?)));
    }
    if !request.build_only {
        preflight(&prepared, builder)?;
    }
    if request.force_tags {
        note(format!(
            "WARNING: --force-tags: the tags of v{} are put even where they name another image, and latest, {{major}}, {{major}}.{{minor}} even backwards",
            prepared.new
        ));
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
        &project.workspace.members,
        &targets,
        builder,
        &env,
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
        new: &new,
        release_tags: &release_tags,
        force_tags: request.force_tags,
        hint: &hint,
    };
    // Signed (and their provenance attached) once every image is up, before any tag
    // moves: a tag never names an unsigned image.
    let sign = |i: usize, repository: &Reference| -> std::result::Result<(), ReleaseError> {
        let Some(key) = sign_key else {
            return Ok(());
        };
        let (member, plan, image) = &images[i];
        attest(key, &member.config, plan, image, repository, transport)
            .map(|_| ())
            .map_err(|e| match e {
                super::JobError::Hoist(inner) => ReleaseError::Registry(inner),
                super::JobError::Release(inner) => inner,
                other => ReleaseError::Refused(other.to_string()),
            })
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

/// Before the release commit and git tag exist: every repository answers, takes the
/// credentials, and does not hold the version already (a new release commit makes
/// another image; without one, the build decides, before any upload).
fn preflight(prepared: &Prepared, builder: &Builder) -> Result<()> {
    let version = prepared.new.to_string();
    for repository in prepared.targets.iter().flat_map(|t| &t.repositories) {
        let name = rollout::repository_name(repository);
        let existing = probe_tags(
            repository,
            std::slice::from_ref(&version),
            builder.transport(),
        )
        .map_err(|e| {
            step(
                format!(
                    "checking {name} before the release: nothing was committed, tagged or pushed"
                ),
                e,
            )
        })?;
        if let Some((_, Some(digest))) = existing.first()
            && prepared.make_commit
        {
            return Err(ReleaseError::Refused(format!(
                "{name}:{version} exists already ({digest}): a released version never changes, and a new release commit would make another image; release another version (nothing was committed, tagged or pushed)"
            ))
            .into());
        }
    }
    Ok(())
}

fn dry_run(request: &Request, prepared: Prepared, env: &Env) -> Result<DryRun> {
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
        let plan = member_plan(request, member, &prepared.new, env)?;
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

fn member_plan(request: &Request, member: &Member, new: &Version, env: &Env) -> Result<Plan> {
    let overrides = PlanOverrides {
        overrides: Overrides {
            platforms: request.platforms.clone(),
            ..Overrides::default()
        },
        no_sbom: request.no_sbom,
        version: Some(new),
        epoch: None,
    };
    plan_for(&member.config, &member.file, &overrides, env)
}

/// Builds every image, labelled with the new version; each reuses the layers its
/// first repository already holds (under the release's tags, or `latest`), as
/// `hoist build --push` does.
fn build_all<'p>(
    request: &Request,
    members: &'p [Member],
    targets: &[ImageTargets],
    builder: &mut Builder,
    env: &Env,
    (previous, new, release_tags): (&Version, &Version, &[String]),
    (hint, note): (&str, &mut dyn FnMut(String)),
) -> Result<Vec<(&'p Member, Plan, Image)>> {
    let mut images = Vec::new();
    let reuse = |target: &ImageTargets| {
        let first = target.repositories.first().map(|r| (r, release_tags));
        cache_references(first, &[])
    };
    builder.prefetch_registry_layers(&targets.iter().map(reuse).collect::<Vec<_>>());
    for (member, target) in members.iter().zip(targets) {
        let plan = member_plan(request, member, new, env)?;
        builder.reuse_registry_layers(&reuse(target)).map_err(|e| {
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
    plan: &Plan,
    image: &Image,
    repository: Option<&Reference>,
    previous: &Version,
    note: &mut dyn FnMut(String),
) -> crate::Result<()> {
    crate::budget::check(image, &plan.budget)?;
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
