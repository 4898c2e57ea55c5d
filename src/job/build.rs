//! The job of `hoist build`: for each image, preflight (outputs, each registry
//! reached with the credentials, the tags it will set read) before anything is built,
//! then build → budget → publish (sink, pushes by digest) → attach → tags. A
//! `--by-digest` push goes through the same budget as any other.

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use semver::Version;

use super::members::{Known, MemberOutput, build_members};
use super::{Attested, JobError, Result, attest, step};
use crate::assemble::Observer;
use crate::budget::PlatformSize;
use crate::engine::Engine;
use crate::oci::image::Image;
use crate::pipeline::{Builder, PushTarget};
use crate::plan::Plan;
use crate::publish::{Sink, WriteReport};
use crate::registry::layer_source::RegistryLayers;
use crate::registry::push::PushReport;
use crate::release::forward::{MovePolicy, move_tags, probe_tags, refuse_pinned_elsewhere};
use crate::sign::PrivateKey;
use crate::workspace::Member;

/// Where a built image goes besides the cache.
#[derive(Default)]
pub struct Outputs {
    /// `--output`: a layout or archive, with the tags it names the image by.
    pub sink: Option<(Box<dyn Sink>, Vec<String>)>,
    /// `--push`: the repositories pushed to (one build, the same digest in each), with
    /// the tags pushed there.
    pub pushes: Vec<PushTarget>,
    /// `--load`: the local engine the host's platform image goes into, with the
    /// `NAME:TAG`s it is loaded under.
    pub load: Option<(Engine, Vec<String>)>,
}

/// One image of the command: its plan, where it goes, and what its build may reuse.
pub struct Target<'m> {
    /// The workspace member (or the lone image).
    pub member: &'m Member,
    /// Its resolved plan ([`super::plan_for`]).
    pub plan: Plan,
    /// Its outputs.
    pub outputs: Outputs,
    /// `--by-digest`: one platform's manifest alone, untagged.
    pub by_digest: bool,
    /// Registry images whose layers the build may reuse (pushes only).
    pub reuse: Vec<Reference>,
    /// What each push's tags name now, read by [`Job::preflight`].
    existing: Vec<Vec<(String, Option<Digest>)>>,
}

impl<'m> Target<'m> {
    /// An image to build with `plan` into `outputs`.
    pub fn new(member: &'m Member, plan: Plan, outputs: Outputs) -> Target<'m> {
        Target {
            member,
            plan,
            outputs,
            by_digest: false,
            reuse: Vec::new(),
            existing: Vec::new(),
        }
    }
}

/// What the outputs reported.
#[derive(Debug, Default)]
pub struct Published {
    /// The sink's report, when there was one.
    pub written: Option<WriteReport>,
    /// The engine's report of `--load` (`Loaded image: …`), when there was one.
    pub loaded: Option<String>,
    /// One report per push, in the order of [`Outputs::pushes`]; `tags` are the tags
    /// that name the image now.
    pub pushed: Vec<PushReport>,
    /// Each platform image's sizes, as the budget check measured them.
    pub sizes: Vec<PlatformSize>,
    /// Per push, the signatures and provenance attached (with a signing key).
    pub attested: Vec<Attested>,
    /// Per push, the rolling tags left where they were, with the version they name.
    pub kept: Vec<Vec<(String, Option<Version>)>>,
}

/// The job: one builder (one cache, one transport) for every image of the command.
pub struct Job<'a> {
    /// The build pipeline.
    pub builder: Builder<'a>,
    /// Signs and attests every push when given.
    pub sign_key: Option<&'a PrivateKey>,
    /// `--force-tags`: pinned and rolling tags move anyway.
    pub force_tags: bool,
}

impl Job<'_> {
    /// Checks `target` before anything is built: its outputs can be written, and each
    /// registry it pushes to answers, takes the credentials, and has its tags read.
    pub fn preflight(&self, target: &mut Target) -> Result<()> {
        if let Some((sink, _)) = &target.outputs.sink {
            sink.preflight()?;
        }
        if let Some((engine, _)) = &target.outputs.load {
            engine.preflight()?;
        }
        target.existing = target
            .outputs
            .pushes
            .iter()
            .map(|push| {
                probe_tags(&push.reference, &push.tags, self.builder.transport()).map_err(|e| {
                    step(
                        format!(
                            "checking {}/{} before building: nothing was built or pushed",
                            push.reference.registry(),
                            push.reference.repository()
                        ),
                        e,
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Builds every target (a workspace's members at once, up to the builder's jobs,
    /// progress in target order: [`super::members`]), then publishes each in turn:
    /// budget, sink, load, pushes by digest, signatures, tags. `note` hears the tag
    /// decisions, `done` each target's outcome as it is published. In a workspace
    /// (`named`) the first failure and every line name the member.
    pub fn run(
        &self,
        (targets, named): (&[Target], bool),
        note: &mut dyn FnMut(String),
        done: &mut dyn FnMut(&Target, Image, Published),
    ) -> Result<()> {
        let lists: Vec<Vec<Reference>> = targets.iter().map(|t| t.reuse.clone()).collect();
        let names: Vec<String> = targets.iter().map(|t| t.member.name.clone()).collect();
        let wanted: Vec<Wanted> = targets.iter().map(Wanted::of).collect();
        let builder = &self.builder;
        // In a workspace, the first failure names its member.
        let failed = |what: &str, i: usize, e: JobError| {
            if named {
                step(format!("{what} {} failed", names[i]), e)
            } else {
                e
            }
        };
        let one = |i: usize, known: Known, out: &MemberOutput| {
            let known = known.map_err(|e| failed("reading the registry layers of", i, e.into()))?;
            build(builder, &wanted[i], known.as_ref(), out).map_err(|e| failed("building", i, e))
        };
        let images = build_members(builder, (&names, named, &lists), note, |image| image, &one)?;
        for (i, (target, image)) in targets.iter().zip(images).enumerate() {
            let mut named_note = |line: String| {
                note(if named {
                    format!("{}: {line}", target.member.name)
                } else {
                    line
                });
            };
            let published = self
                .publish(target, &image, &mut named_note)
                .map_err(|e| failed("publishing", i, e))?;
            done(target, image, published);
        }
        Ok(())
    }

    /// Checks the budget of `image` (built for `target`), writes and pushes it (by
    /// digest), signs each push, then points the tags at it.
    fn publish(
        &self,
        target: &Target,
        image: &Image,
        note: &mut dyn FnMut(String),
    ) -> Result<Published> {
        let outputs = &target.outputs;
        // Before any output: an over-budget image is neither written nor uploaded.
        let sizes = crate::budget::check(image, &target.plan.budget)?;
        if !self.force_tags {
            for (push, existing) in outputs.pushes.iter().zip(&target.existing) {
                refuse_pinned_elsewhere(&push.reference, existing, &image.descriptor.digest)?;
            }
        }
        let written = match &outputs.sink {
            Some((sink, tags)) => Some(sink.write(image, tags)?),
            None => None,
        };
        let loaded = match &outputs.load {
            Some((engine, repo_tags)) => Some(engine.load(image, repo_tags)?),
            None => None,
        };
        let untagged: Vec<PushTarget> = outputs
            .pushes
            .iter()
            .map(|push| PushTarget {
                reference: push.reference.clone(),
                tags: Vec::new(),
            })
            .collect();
        let pairs: Vec<(&Image, &PushTarget)> = untagged.iter().map(|p| (image, p)).collect();
        let mut pushed = self
            .builder
            .push_all(&pairs)
            .into_iter()
            .collect::<crate::Result<Vec<_>>>()?;
        let mut attested = Vec::new();
        if let Some(key) = self.sign_key {
            for push in &outputs.pushes {
                let config = &target.member.config;
                attested.push(attest(
                    key,
                    config,
                    &target.plan,
                    image,
                    &push.reference,
                    self.builder.transport(),
                )?);
            }
        }
        let version = super::image_version(image);
        let policy = MovePolicy {
            version: version.as_ref(),
            force: self.force_tags,
            ..MovePolicy::default()
        };
        let mut kept = Vec::new();
        for ((push, report), seen) in outputs.pushes.iter().zip(&mut pushed).zip(&target.existing) {
            let moved = move_tags(
                image,
                &push.reference,
                &push.tags,
                seen,
                &policy,
                self.builder.transport(),
                note,
            )?;
            report.tags = moved.tags;
            kept.push(moved.kept);
        }
        Ok(Published {
            written,
            loaded,
            pushed,
            sizes,
            attested,
            kept,
        })
    }
}

/// What a target's build needs (its outputs stay behind: a sink is not shared
/// between threads).
struct Wanted<'t> {
    plan: &'t Plan,
    /// Only pushes: a registry base's layers stay there until a push needs them.
    on_demand: bool,
    by_digest: bool,
}

impl<'t> Wanted<'t> {
    fn of(target: &'t Target) -> Wanted<'t> {
        let outputs = &target.outputs;
        Wanted {
            plan: &target.plan,
            // A sink and an engine's load need every layer's bytes here.
            on_demand: outputs.sink.is_none() && outputs.load.is_none(),
            by_digest: target.by_digest,
        }
    }
}

/// Builds what `wanted` says, reusing `known`, reporting to `observer`.
fn build(
    builder: &Builder,
    wanted: &Wanted,
    known: Option<&RegistryLayers>,
    observer: &dyn Observer,
) -> Result<Image> {
    let built = builder.build_with(wanted.plan, wanted.on_demand, known, observer)?;
    Ok(if wanted.by_digest {
        built.single_platform().unwrap_or(built)
    } else {
        built
    })
}
