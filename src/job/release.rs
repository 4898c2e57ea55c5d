//! The job of `hoist release`: preflight (every repository reached with the
//! credentials, the version's tag read) before the release commit and git tag exist;
//! then the version files, commit and tag ([`crate::release::workflow`]); every image
//! built through the one [`Builder`] and checked against its budget; every image
//! pushed everywhere by digest and signed; only then the tags, each checked right
//! before it moves. If one push fails, no image gets a new tag anywhere, and the same
//! command (or `--resume`) finishes the release.

use oci_spec::distribution::Reference;
use semver::Version;

use super::members::{Known, MemberOutput, Slots, build_members};
use super::{Env, PlanOverrides, Result, attest, plan_for, step};
use crate::assemble::Observer;
use crate::oci::image::Image;
use crate::oci::platform::Platform;
use crate::pipeline::Builder;
use crate::plan::{Overrides, Plan};
use crate::registry::layer_source::{RegistryLayers, cache_references};
use crate::release::ReleaseError;
use crate::release::forward::probe;
use crate::release::labels::{BUILD_NAMES, VERSION, name_as};
use crate::release::rollout::{self, EarlyPushes, ImageTargets, Rollout};
use crate::release::split;
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
    builder: &Builder,
    sign_key: Option<&PrivateKey>,
    note: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let env = Env::from_process();
    let transport = builder.transport();
    let prepared = prepare(request, transport)?;
    if !request.from.is_empty() {
        return Ok(Outcome::Released(Box::new(finish_split(
            request, prepared, builder, note,
        )?)));
    }
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
    // --by-digest: one runner's part; the final job (--from) moves the tags.
    let tags_moved: &[String] = if request.by_digest {
        &[]
    } else {
        &release_tags
    };
    let rollout = Rollout {
        new: &new,
        release_tags: tags_moved,
        force_tags: request.force_tags,
        hint: &hint,
        named: project.workspace.is_workspace,
    };
    let members = (
        project.workspace.members.as_slice(),
        project.workspace.keeps_unchanged(),
        project.workspace.is_workspace,
    );
    let (images, early) = build_and_push(
        request,
        (members, &targets),
        (builder, &rollout),
        &env,
        (&current, &new, &release_tags),
        (&hint, note),
    )?;
    if request.build_only {
        return Ok(Outcome::Built {
            version: new,
            images: images
                .iter()
                .map(|built| {
                    (
                        built.member.name.clone(),
                        built.image.descriptor.digest.to_string(),
                    )
                })
                .collect(),
        });
    }
    // Signed (and their provenance attached) once every image is up, before any tag
    // moves: a tag never names an unsigned image.
    let sign = |i: usize, repository: &Reference| -> std::result::Result<(), ReleaseError> {
        let Some(key) = sign_key else {
            return Ok(());
        };
        let built = &images[i];
        attest(
            key,
            &built.member.config,
            &built.plan,
            &built.image,
            repository,
            transport,
        )
        .map(|_| ())
        .map_err(release_error)
    };
    let pairs: Vec<(&ImageTargets, &Image)> = targets
        .iter()
        .zip(images.iter().map(|built| &built.image))
        .collect();
    let released = rollout.run(&pairs, early, (builder, transport), &sign, note)?;
    if request.by_digest {
        note(format!(
            "--by-digest: v{new} is pushed and signed, no tag moved; `hoist release {new} --no-git --from FILE…` with every part's --metadata-file moves them"
        ));
    }
    transaction::finish(git.as_ref())?;
    Ok(Outcome::Released(Box::new(Released {
        previous: current,
        version: new,
        resumed: resume,
        images: released,
        by_digest: request.by_digest,
        commit: context.sha.clone(),
        unchanged: images
            .iter()
            .filter_map(|b| Some((b.member.name.clone(), b.kept.clone()?)))
            .collect(),
    })))
}

/// The final job of a release split across runners: the runners' `--by-digest`
/// records read, every member of the workspace found there and in its registries,
/// then the tags moved by the release rules. Nothing is built or uploaded.
fn finish_split(
    request: &Request,
    prepared: Prepared,
    builder: &Builder,
    note: &mut dyn FnMut(String),
) -> Result<Released> {
    let context = tag_context(
        prepared.git.as_ref(),
        Some(prepared.new.clone()),
        None,
        request.branch.clone(),
    )?;
    let settings = &prepared.project.settings;
    let release_tags = tags::compute(&settings.rules, settings.latest, &context)?;
    let records = split::read_records(&request.from)?;
    let parts = split::Parts {
        version: &prepared.new,
        commit: context.sha.as_deref(),
        targets: &prepared.targets,
    };
    let found = parts.check(&records)?;
    let images = split::tag_all(
        &parts,
        &found,
        (&release_tags, request.force_tags),
        (builder.store(), builder.transport()),
        note,
    )?;
    Ok(Released {
        previous: prepared.current,
        version: prepared.new,
        resumed: false,
        images,
        by_digest: false,
        commit: context.sha,
        unchanged: Vec::new(),
    })
}

/// Before the release commit and git tag exist: every repository answers, takes the
/// credentials, and does not hold the version already (a new release commit makes
/// another image; without one, the build decides, before any upload).
fn preflight(prepared: &Prepared, builder: &Builder) -> Result<()> {
    let version = prepared.new.to_string();
    let repositories: Vec<&Reference> = prepared
        .targets
        .iter()
        .flat_map(|t| &t.repositories)
        .collect();
    // Every repository's HEAD at once (within the scheduler's bound), judged in order.
    let transport = builder.transport();
    let answers = crate::registry::block_on(async {
        Ok(futures_util::future::join_all(
            repositories
                .iter()
                .map(|repository| probe(repository, std::slice::from_ref(&version), transport)),
        )
        .await)
    })?;
    for (repository, existing) in repositories.into_iter().zip(answers) {
        let name = rollout::repository_name(repository);
        let existing = existing.map_err(|e| {
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
        let plan = member_plan(request, member, &prepared.new, None, env)?;
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

fn member_plan(
    request: &Request,
    member: &Member,
    new: &Version,
    epoch: Option<&str>,
    env: &Env,
) -> Result<Plan> {
    let overrides = PlanOverrides {
        overrides: Overrides {
            platforms: request.platforms.clone(),
            ..Overrides::default()
        },
        no_sbom: request.no_sbom,
        version: Some(new),
        epoch,
    };
    plan_for(&member.config, &member.file, &overrides, env)
}

/// What [`build_all`] hands each image to as soon as it is built (with its index).
type HandOver<'a> = &'a (dyn Fn(usize, &Image) + Sync);

/// [`build_all`], each image pushed by digest as soon as it is built (and passed its
/// budget) while the others build ([`Rollout::push_as_built`]; no tag moves before
/// every image is up); nothing pushed with `--build-only`.
fn build_and_push<'p>(
    request: &Request,
    (members, targets): ((&'p [Member], bool, bool), &[ImageTargets]),
    (builder, rollout): (&Builder, &Rollout),
    env: &Env,
    versions: (&Version, &Version, &[String]),
    (hint, note): (&str, &mut dyn FnMut(String)),
) -> Result<(Vec<Built<'p>>, EarlyPushes)> {
    if request.build_only {
        let images = build_all(
            request,
            members,
            targets,
            (builder, None),
            env,
            versions,
            (hint, note),
        )?;
        return Ok((images, Vec::new()));
    }
    std::thread::scope(|scope| {
        let (sender, built) = tokio::sync::mpsc::unbounded_channel();
        let transport = builder.transport();
        let pusher = scope.spawn(|| rollout.push_as_built(targets, transport, built));
        let hand_over = |i: usize, image: &Image| {
            // Sent while the pusher runs: it stops only once the channel closes.
            let _ = sender.send((i, image.clone()));
        };
        let images = build_all(
            request,
            members,
            targets,
            (builder, Some(&hand_over)),
            env,
            versions,
            (hint, note),
        );
        // Closed: the pusher finishes what it was handed, then answers.
        drop(sender);
        let early = pusher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        images.map(|images| (images, early))
    })
}

/// Builds every image, labelled with the new version; each reuses the layers its
/// first repository already holds (under the release's tags, or `latest`), as
/// `hoist build --push` does. With `[workspace] keep_unchanged`, a member whose image
/// built as its previous release's (same labels) comes out as that very image.
fn build_all<'p>(
    request: &Request,
    (members, keep, named): (&'p [Member], bool, bool),
    targets: &[ImageTargets],
    (builder, hand_over): (&Builder, Option<HandOver>),
    env: &Env,
    (previous, new, release_tags): (&Version, &Version, &[String]),
    (hint, note): (&str, &mut dyn FnMut(String)),
) -> Result<Vec<Built<'p>>> {
    let reuse = |target: &ImageTargets| {
        let first = target.repositories.first().map(|r| (r, release_tags));
        cache_references(first, &[])
    };
    let lists: Vec<_> = targets.iter().map(reuse).collect();
    // Each member's previous release, read on a thread of its own while the members
    // build (each waits for its own only), within the transport's bound.
    let earlier_all: Slots<crate::Result<Option<Earlier>>> = Slots::new(members.len());
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let one = |i: usize, known: Known, out: &MemberOutput| -> Result<Built<'p>> {
        let (member, target) = (&members[i], &targets[i]);
        let known = known.map_err(|e| {
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
        let earlier = earlier_all
            .take(i)
            .map_err(|e| step(format!("reading v{previous} of {}; {hint}", member.name), e))?;
        let on_demand = !target.repositories.is_empty();
        let (plan, image, kept) = build_member(
            request,
            member,
            (builder, known.as_ref(), out),
            env,
            new,
            earlier.as_ref(),
            on_demand,
        )
        .map_err(|e| {
            step(
                format!("building v{new} of {} failed; {hint}", member.name),
                e,
            )
        })?;
        if let Some(version) = &kept {
            out.note(format!(
                "{}: nothing it is built from changed since v{version}: v{new} is its image {} (keep_unchanged)",
                member.name, image.descriptor.digest
            ));
        }
        // Before anything is uploaded: sizes, and growth against the previous release.
        let growth_against = target
            .repositories
            .first()
            .filter(|_| request.growth || plan.budget.max_growth.is_some());
        check_budget(
            builder,
            &plan,
            &image,
            growth_against,
            previous,
            &mut |line| out.note(out.named(&line)),
        )
        .map_err(|e| step(format!("v{new} of {}: nothing pushed", member.name), e))?;
        if let Some(hand_over) = hand_over {
            hand_over(i, &image);
        }
        Ok(Built {
            member,
            plan,
            image,
            kept,
        })
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            earlier_all.fill_by(
                |ready| earlier_releases(builder, targets, keep, previous, ready),
                || super::members::reader_gone("the previous releases"),
            );
        });
        build_members(
            builder,
            (&names, named, &lists),
            note,
            |built: &mut Built| &mut built.image,
            &one,
        )
    })
}

/// One built image of a release.
struct Built<'p> {
    member: &'p Member,
    plan: Plan,
    image: Image,
    /// The version named by the previous image it is (`keep_unchanged`).
    kept: Option<String>,
}

/// A member's previous release (`[workspace] keep_unchanged`): the image its version's
/// tag names, with what names that build.
struct Earlier {
    digest: hoist_layers::Digest,
    /// Its first platform's config labels.
    labels: std::collections::BTreeMap<String, String>,
    /// Its build names as annotated (`version`, `revision`, `created`).
    annotations: std::collections::BTreeMap<String, String>,
    /// The epoch it records (`io.hoist.source-date-epoch`).
    epoch: Option<String>,
}

/// Every member's previous release (`[workspace] keep_unchanged`; `None` for all
/// without it, or for a member without a repository), read all at once (within the
/// scheduler's per-registry bound) and handed to `ready` with its index as soon as it
/// is read; every index gets an answer. One after another, a 30-member workspace
/// waited for ~30 × 5 round trips; before the builds, they waited for them all.
fn earlier_releases(
    builder: &Builder,
    targets: &[ImageTargets],
    keep: bool,
    previous: &Version,
    ready: &(dyn Fn(usize, crate::Result<Option<Earlier>>) + Sync),
) {
    let (store, transport) = (builder.store(), builder.transport());
    crate::registry::read_each(
        targets.len(),
        |i| async move {
            match targets[i].repositories.first().filter(|_| keep) {
                Some(repository) => earlier_release(store, transport, repository, previous).await,
                None => Ok(None),
            }
        },
        ready,
    );
}

/// The image `previous`'s tag names in `repository`, read (documents only), or `None`
/// when there is none.
async fn earlier_release(
    store: &hoist_layers::BlobStore,
    transport: &crate::registry::transport::Transport,
    repository: &Reference,
    previous: &Version,
) -> crate::Result<Option<Earlier>> {
    let tag = previous.to_string();
    let found = probe(repository, std::slice::from_ref(&tag), transport).await?;
    let Some((_, Some(digest))) = found.into_iter().next() else {
        return Ok(None);
    };
    let pinned = crate::oci::reference::parse(&format!(
        "{}@{digest}",
        rollout::repository_name(repository)
    ))?;
    let image = crate::registry::pull::load_base(&pinned, None, store, transport, false).await?;
    let labels = image.labels();
    let annotations = BUILD_NAMES
        .iter()
        .filter_map(|key| Some((key.to_string(), image.annotation(key)?.to_string())))
        .collect();
    let epoch = image
        .annotation(crate::oci::model::HOIST_SOURCE_DATE_EPOCH)
        .map(str::to_string);
    Ok(Some(Earlier {
        digest,
        labels,
        annotations,
        epoch,
    }))
}

/// The epoch a member's build is dated with (`SOURCE_DATE_EPOCH`, the files' mtimes
/// and `created`): an earlier image's own when the build is to come out as it (its
/// content last changed then), else the environment's. The one place a release picks
/// a member's epoch.
fn member_epoch<'e>(env: &'e Env, earlier: Option<&'e Earlier>) -> Option<&'e str> {
    earlier
        .and_then(|e| e.epoch.as_deref())
        .or(env.source_date_epoch.as_deref())
}

/// Builds a member: first named as its previous release (`earlier`), which gives that
/// very image when nothing it is built from changed (answered with the version it
/// names); otherwise labelled with the new version. The second build reuses the
/// first's layers from the cache when the epoch is the same.
fn build_member(
    request: &Request,
    member: &Member,
    (builder, known, observer): (&Builder, Option<&RegistryLayers>, &dyn Observer),
    env: &Env,
    new: &Version,
    earlier: Option<&Earlier>,
    on_demand: bool,
) -> Result<(Plan, Image, Option<String>)> {
    if let Some(earlier) = earlier {
        let mut plan = member_plan(request, member, new, member_epoch(env, Some(earlier)), env)?;
        name_as(&mut plan, &earlier.labels, &earlier.annotations);
        let image = builder.build_with(&plan, on_demand, known, observer)?;
        if image.descriptor.digest == earlier.digest {
            let version = earlier.labels.get(VERSION).cloned().unwrap_or_default();
            return Ok((plan, image, Some(version)));
        }
    }
    let plan = member_plan(request, member, new, member_epoch(env, None), env)?;
    let image = builder.build_with(&plan, on_demand, known, observer)?;
    Ok((plan, image, None))
}

/// `[budget]`: sizes, then growth against the image the previous version's tag names
/// in `repository` (the image's first; `None` when neither `max_growth` nor
/// `--growth` asks for it, which spares its round trips).
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

/// A job error as a release step's: the registry's answer and what was being done
/// (a signing failure names its image) kept in the chain.
fn release_error(error: super::JobError) -> ReleaseError {
    match error {
        super::JobError::Hoist(inner) => ReleaseError::Registry(inner),
        super::JobError::Release(inner) => inner,
        super::JobError::Step { context, source } => ReleaseError::Step {
            context,
            source: Box::new(release_error(*source)),
        },
        other => ReleaseError::Refused(other.to_string()),
    }
}
