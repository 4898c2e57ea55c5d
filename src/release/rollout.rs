//! The push half of a release: every image to every repository it goes to, by digest
//! and without tags first; then, once every image is up everywhere, the tags. A failed
//! push therefore moves no tag anywhere, and running the release again finishes it
//! (each blob and manifest already there is only a HEAD).

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use semver::Version;
use serde::Serialize;

use super::Result;
use super::forward::{MovePolicy, TagMove, move_all_tags, probe, refuse_pinned_elsewhere};
use super::steps::{refused, step};
use crate::config::OneOrMany;
use crate::oci::image::Image;
use crate::oci::reference;
use crate::pipeline::{Builder, PushTarget};
use crate::registry::push::PushReport;
use crate::registry::transport::Transport;
use crate::workspace;

/// What each tag of a release named in one repository before the push.
type TagsSeen = Vec<(String, Option<Digest>)>;

/// Images signed at once (each a thread; their requests share the transport's bound).
const SIGNING_THREADS: usize = 8;

/// Moving tags left where they were, each with the version it names.
pub type KeptTags = Vec<(String, Version)>;

/// Per image, the pushes [`Rollout::push_as_built`] made (one result per repository),
/// `None` for those it left to [`Rollout::run`].
pub type EarlyPushes = Vec<Option<Vec<crate::Result<PushReport>>>>;

/// Where one image of the release goes.
#[derive(Clone, Debug)]
pub struct ImageTargets {
    /// The member's name.
    pub member: String,
    /// The repositories (no tag), in order: `[image].name`, or `--push-to`.
    pub repositories: Vec<Reference>,
}

impl ImageTargets {
    /// An image that is built and not pushed.
    pub fn build_only(member: String) -> ImageTargets {
        ImageTargets {
            member,
            repositories: Vec::new(),
        }
    }
}

/// One released image.
#[derive(Debug, Serialize)]
pub struct ReleasedImage {
    /// The member's name.
    pub name: String,
    /// The index (or manifest) digest, the same in every repository.
    pub digest: String,
    /// One entry per repository.
    pub pushes: Vec<ReleasedPush>,
}

/// One image in one repository.
#[derive(Debug, Serialize)]
pub struct ReleasedPush {
    /// `HOST/REPO`.
    pub repository: String,
    /// The push (its `tags` are the tags moved).
    pub report: PushReport,
    /// Moving tags left where they were, with the version they name.
    #[serde(serialize_with = "serialize_kept")]
    pub kept: KeptTags,
}

impl ReleasedPush {
    /// The kept tags as `--json` shows them: `[{"tag", "version"}]`.
    pub fn kept_json(&self) -> serde_json::Value {
        kept_json(&self.kept)
    }
}

fn kept_json(kept: &KeptTags) -> serde_json::Value {
    kept.iter()
        .map(|(tag, version)| serde_json::json!({"tag": tag, "version": version.to_string()}))
        .collect()
}

fn serialize_kept<S: serde::Serializer>(
    kept: &KeptTags,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    kept_json(kept).serialize(serializer)
}

/// The repositories each image goes to: `push_to` (one image only), else each member's
/// `[image].name`. Checked before anything is built or changed.
pub fn targets(
    project: &workspace::Project,
    push_to: &[String],
    transport: &Transport,
) -> Result<Vec<ImageTargets>> {
    if transport.options().offline {
        return Err(refused(
            "--offline and hoist release cannot go together: pushing needs the network (use --build-only)".into(),
        ));
    }
    if !push_to.is_empty() && project.members.len() != 1 {
        return Err(refused(format!(
            "--push-to names the repositories of one image, but {} are released ({}): pick one with -p, or set [image].name in each member",
            project.members.len(),
            workspace::names(&project.members)
        )));
    }
    project
        .members
        .iter()
        .map(|member| {
            let names = if push_to.is_empty() {
                member.file.image.name.as_ref().map(OneOrMany::to_vec).unwrap_or_default()
            } else {
                push_to.to_vec()
            };
            if names.is_empty() {
                return Err(refused(format!(
                    "hoist release pushes to image.name: set it in {} or pass --push-to (or --build-only)",
                    member.config.display()
                )));
            }
            let repositories = names
                .iter()
                .map(|input| {
                    if reference::explicit_tag(input).is_some() {
                        return Err(refused(format!(
                            "`{input}`: name the repository only; the tags come from [tags].rules"
                        )));
                    }
                    Ok(reference::parse(input)?)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ImageTargets {
                member: member.name.clone(),
                repositories,
            })
        })
        .collect()
}

/// The tag side of a release.
pub struct Rollout<'a> {
    /// The version released.
    pub new: &'a Version,
    /// The tags the rules give.
    pub release_tags: &'a [String],
    /// Move tags even backwards, or off another image.
    pub force_tags: bool,
    /// How to go on after a failure.
    pub hint: &'a str,
    /// A workspace's: each image's notes start with its member's name.
    pub named: bool,
}

impl Rollout<'_> {
    /// Pushes every image everywhere by digest, then moves the tags.
    /// `early`: per image, the pushes [`Self::push_as_built`] made already (one
    /// result per repository), `None` for those left to push here.
    pub fn run(
        &self,
        images: &[(&ImageTargets, &Image)],
        early: EarlyPushes,
        (builder, transport): (&Builder, &Transport),
        sign: &(dyn Fn(usize, &Reference) -> Result<()> + Sync),
        note: &mut dyn FnMut(String),
    ) -> Result<Vec<ReleasedImage>> {
        let new = self.new;
        // Before anything is uploaded: what each tag names now; a tag naming this
        // version (or commit) that names another image already stays there.
        transport.phase("read tags");
        let seen = self.read_all_tags(images, transport)?;
        transport.phase("push");
        // Every image up everywhere, no tag moved yet.
        let untagged: Vec<(usize, &Reference, PushTarget)> = images
            .iter()
            .enumerate()
            .flat_map(|(i, (target, _))| {
                target.repositories.iter().map(move |repository| {
                    let push = PushTarget {
                        reference: repository.clone(),
                        tags: Vec::new(),
                    };
                    (i, repository, push)
                })
            })
            .collect();
        // Those not pushed while the others built, all at once now.
        let pushes: Vec<(&Image, &PushTarget)> = untagged
            .iter()
            .filter(|(i, _, _)| early.get(*i).is_none_or(Option::is_none))
            .map(|(i, _, push)| (images[*i].1, push))
            .collect();
        let mut late = builder.push_all(&pushes).into_iter();
        let mut early: Vec<_> = early
            .into_iter()
            .map(|pushed| pushed.map(Vec::into_iter))
            .collect();
        let results = untagged.iter().map(|(i, _, _)| {
            match early.get_mut(*i).and_then(Option::as_mut) {
                Some(pushed) => pushed.next(),
                None => late.next(),
            }
            .expect("one push result per image and repository")
        });
        let results: Vec<crate::Result<PushReport>> = results.collect();
        let mut released: Vec<Vec<PushReport>> = images.iter().map(|_| Vec::new()).collect();
        for ((i, repository, _), result) in untagged.iter().zip(results) {
            let report = result.map_err(|e| {
                step(
                    format!(
                        "pushing v{new} of {} to {} failed; no tag was moved anywhere; {}",
                        images[*i].0.member,
                        repository_name(repository),
                        self.hint
                    ),
                    e,
                )
            })?;
            released[*i].push(report);
        }
        super::journal::kill_point("pushed");
        transport.phase("sign");
        self.sign_all(&untagged, images, sign)?;
        super::journal::kill_point("signed");
        transport.phase("tags");
        note(format!(
            "every image of v{new} is up in every repository: moving the tags"
        ));
        let policy = MovePolicy {
            version: Some(new),
            force: self.force_tags,
            ..MovePolicy::default()
        };
        // Every tag of every image and repository together: pinned ones first.
        let moves: Vec<TagMove> = images
            .iter()
            .zip(&seen)
            .flat_map(|((target, image), seen)| {
                target
                    .repositories
                    .iter()
                    .zip(seen)
                    .map(|(repository, seen)| TagMove {
                        image,
                        target: repository,
                        tags: self.release_tags,
                        seen,
                        member: self.named.then_some(target.member.as_str()),
                    })
            })
            .collect();
        let mut moved = move_all_tags(&moves, &policy, transport, note).into_iter();
        super::journal::kill_point("tags-moved");
        let mut images_out = Vec::new();
        for ((target, image), reports) in images.iter().zip(released) {
            let mut pushes = Vec::new();
            for (repository, mut report) in target.repositories.iter().zip(reports) {
                let moved = moved.next().expect("one result per move").map_err(|e| {
                    step(
                        format!(
                            "tagging v{new} of {} in {} failed; {}",
                            target.member,
                            repository_name(repository),
                            self.hint
                        ),
                        e,
                    )
                })?;
                report.tags = moved.tags;
                pushes.push(ReleasedPush {
                    repository: repository_name(repository),
                    report,
                    kept: moved
                        .kept
                        .into_iter()
                        .filter_map(|(tag, version)| Some((tag, version?)))
                        .collect(),
                });
            }
            images_out.push(ReleasedImage {
                name: target.member.clone(),
                digest: image.descriptor.digest.to_string(),
                pushes,
            });
        }
        Ok(images_out)
    }

    /// Pushes each image by digest to its repositories as soon as `built` hands it over
    /// (with its index), while the release's other members still build: registry work
    /// overlaps the builds, within the transport's bound. Each image's tags are judged
    /// first, as [`Self::run`] does before any upload; once one is refused nothing more
    /// is pushed here (`run` then reports the refusal). Answers, per image, its pushes
    /// (one result per repository), `None` for those not pushed here.
    pub fn push_as_built(
        &self,
        targets: &[ImageTargets],
        transport: &Transport,
        built: tokio::sync::mpsc::UnboundedReceiver<(usize, Image)>,
    ) -> EarlyPushes {
        use futures_util::StreamExt as _;
        // Every target first: each push's token may then pull (mount) from them all.
        for repository in targets.iter().flat_map(|t| &t.repositories) {
            transport
                .ledger()
                .announce(repository.registry(), repository.repository());
        }
        let refused = std::sync::atomic::AtomicBool::new(false);
        let incoming = futures_util::stream::unfold(built, |mut built| async move {
            built.recv().await.map(|next| (next, built))
        });
        let refused = &refused;
        let pushed = crate::registry::block_on(async {
            Ok(incoming
                .map(|(i, image)| async move {
                    let pushed = self.push_one(&targets[i], &image, transport, refused).await;
                    (i, pushed)
                })
                .buffer_unordered(targets.len().max(1))
                .collect::<Vec<_>>()
                .await)
        });
        let mut early: EarlyPushes = targets.iter().map(|_| None).collect();
        // The runtime failing to start leaves every image to `run`.
        for (i, pushed) in pushed.unwrap_or_default() {
            early[i] = pushed;
        }
        early
    }

    /// One image of [`Self::push_as_built`] to each of its repositories, unless its
    /// tags are refused there (or another image's were): `None` then.
    async fn push_one(
        &self,
        target: &ImageTargets,
        image: &Image,
        transport: &Transport,
        refused: &std::sync::atomic::AtomicBool,
    ) -> Option<Vec<crate::Result<PushReport>>> {
        use std::sync::atomic::Ordering;
        for repository in &target.repositories {
            if refused.load(Ordering::SeqCst) {
                return None;
            }
            // Answered from the command's tag memo: the preflight read them.
            let fine = probe(repository, self.release_tags, transport)
                .await
                .is_ok_and(|existing| {
                    self.force_tags
                        || refuse_pinned_elsewhere(repository, &existing, &image.descriptor.digest)
                            .is_ok()
                });
            if !fine {
                refused.store(true, Ordering::SeqCst);
                return None;
            }
        }
        Some(
            futures_util::future::join_all(
                target.repositories.iter().map(|repository| {
                    crate::registry::push::push(image, repository, &[], transport)
                }),
            )
            .await,
        )
    }

    /// Signs (and attests) each pushed image in each repository, several at once: the
    /// transport bounds their requests. The first failure, in push order, is the answer.
    fn sign_all(
        &self,
        untagged: &[(usize, &Reference, PushTarget)],
        images: &[(&ImageTargets, &Image)],
        sign: &(dyn Fn(usize, &Reference) -> Result<()> + Sync),
    ) -> Result<()> {
        let new = self.new;
        let results: Vec<Result<()>> = untagged
            .chunks(SIGNING_THREADS)
            .flat_map(|chunk| {
                std::thread::scope(|scope| {
                    let running: Vec<_> = chunk
                        .iter()
                        .map(|(i, repository, _)| scope.spawn(move || sign(*i, repository)))
                        .collect();
                    running
                        .into_iter()
                        .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for ((i, repository, _), result) in untagged.iter().zip(results) {
            result.map_err(|e| {
                step(
                    format!(
                        "signing v{new} of {} in {} failed; no tag was moved anywhere; {}",
                        images[*i].0.member,
                        repository_name(repository),
                        self.hint
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// What the release's tags name in every repository of every image, read at once;
    /// refuses the release when a pinned tag names another image ([`Self::judge_tags`]).
    fn read_all_tags(
        &self,
        images: &[(&ImageTargets, &Image)],
        transport: &Transport,
    ) -> Result<Vec<Vec<TagsSeen>>> {
        let pairs: Vec<(&Reference, &Image)> = images
            .iter()
            .flat_map(|(target, image)| target.repositories.iter().map(move |r| (r, *image)))
            .collect();
        let read = crate::registry::block_on(async {
            Ok(futures_util::future::join_all(
                pairs
                    .iter()
                    .map(|(repository, _)| probe(repository, self.release_tags, transport)),
            )
            .await)
        })?;
        let mut judged = pairs
            .iter()
            .zip(read)
            .map(|((repository, image), existing)| self.judge_tags(repository, image, existing));
        let mut seen = Vec::new();
        for (target, _) in images {
            let mut per_repository = Vec::new();
            for _ in &target.repositories {
                per_repository.push(judged.next().expect("one reading per repository")?);
            }
            seen.push(per_repository);
        }
        Ok(seen)
    }

    /// What the release's tags name in `repository` now; refuses the release when one
    /// of its pinned tags (`1.2.3`, `sha-…`) names another image than `image`.
    fn judge_tags(
        &self,
        repository: &Reference,
        image: &Image,
        existing: crate::Result<Vec<(String, Option<Digest>)>>,
    ) -> Result<Vec<(String, Option<Digest>)>> {
        let existing = existing.map_err(|e| {
            step(
                format!(
                    "reading the tags of {}; {}",
                    repository_name(repository),
                    self.hint
                ),
                e,
            )
        })?;
        if self.force_tags {
            return Ok(existing);
        }
        refuse_pinned_elsewhere(repository, &existing, &image.descriptor.digest).map_err(|e| {
            step(
                format!(
                    "v{} was not released: nothing was pushed and no tag moved",
                    self.new
                ),
                e,
            )
        })?;
        Ok(existing)
    }
}

/// `HOST/REPO`, as the user wrote it (no `:latest`).
pub fn repository_name(target: &Reference) -> String {
    format!("{}/{}", target.registry(), target.repository())
}
