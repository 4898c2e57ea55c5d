//! Pushing an [`Image`] to a repository: each blob once (a layer `HEAD`ed, then
//! mounted or uploaded only when the registry lacks it; a config or artifact blob,
//! new with its image, uploaded straight away), bounded concurrency, layers and
//! artifact blobs before configs, manifests by digest with children before the index,
//! then the image's referrers (SBOMs), tags last. An image the registry holds whole
//! (its index `HEAD`ed, its referrers listed) is not PUT again, nor is a tag naming it,
//! so an unchanged re-push PUTs nothing.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt, stream};
use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde::Serialize;

use super::pull::BlobFetcher;
use super::pushed::PushedRecords;
use super::repository::Mount;
use super::scheduler::BlobOutcome;
use super::transport::{Access, Repository, Transport};
use super::upload::BlobBody;
use crate::error::{Error, Result};
use crate::oci::image::{Blob, BlobSource, Image};
use crate::oci::layout::{read_blob_file, verify_blob_file};

/// What a push did (the `--json` fields of `hoist push` and `hoist build --push`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// Digest of the pushed index (or manifest).
    pub digest: String,
    /// `REGISTRY/REPO@DIGEST`.
    pub reference: String,
    /// Tags pointed at it.
    pub tags: Vec<String>,
    /// Platforms it holds.
    pub platforms: Vec<String>,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository of the same registry (the base's, a reused
    /// layer's, or one the cache records as having received the blob).
    pub blobs_mounted: u64,
    /// Blobs the registry already had.
    pub blobs_skipped: u64,
    /// Bytes of blobs uploaded.
    pub bytes_uploaded: u64,
    /// Base layers downloaded from the base's registry during the push, because the
    /// target neither had them nor could mount them.
    pub base_blobs_fetched: u64,
}

enum Outcome {
    Skipped,
    Mounted,
    Uploaded { bytes: u64, fetched: bool },
}

/// Pushes `image` to `target`'s repository and tags it with `tags`.
pub async fn push(
    image: &Image,
    target: &Reference,
    tags: &[String],
    transport: &Transport,
) -> Result<PushReport> {
    let options = transport.options();
    let records = options.pushed_records.as_deref().map(PushedRecords::new);
    let sources = MountSources::new(image, target, records.as_ref());
    // The command's other targets on this registry too: a blob a sibling uploads
    // first is mounted from it.
    let ledger = transport.ledger();
    ledger.announce(target.registry(), target.repository());
    let siblings = ledger.siblings(target.registry(), target.repository());
    let mut mount_from: Vec<&str> = sources.repositories();
    mount_from.extend(siblings.iter().map(String::as_str));
    mount_from.sort_unstable();
    mount_from.dedup();
    let blobs = transport
        .repository(
            target,
            Access::Push {
                mount_from: &mount_from,
            },
        )
        .await?;
    let fetchers = Fetchers::new(image, transport).await?;

    let mut report = PushReport {
        digest: image.descriptor.digest.to_string(),
        reference: format!(
            "{}/{}@{}",
            target.registry(),
            target.repository(),
            image.descriptor.digest
        ),
        tags: tags.to_vec(),
        platforms: image.platform_list(),
        ..PushReport::default()
    };

    // The SBOMs' blobs (their documents, the empty config) go the way of the image's
    // own: once per command, mounted where a sibling put them, counted.
    let artifacts = artifact_blobs(image);
    let blob_count = unique(
        image
            .platforms
            .iter()
            .flat_map(|p| p.manifest.layers.iter().chain([&p.manifest.config]))
            .map(|d| &d.digest)
            .chain(artifacts.keys()),
    )
    .len() as u64;
    if complete_there(&blobs, image).await? {
        // An unchanged image: a registry accepts a manifest only once what it names
        // is there, so the image by digest vouches for its blobs and children; with
        // its SBOMs listed, nothing is missing. Only the tags are left.
        report.blobs_skipped = blob_count;
        for _ in 0..blob_count {
            blobs
                .registry
                .counts
                .blob(&blobs.display(), BlobOutcome::Skipped);
        }
        let top = document_bytes(image, &image.descriptor.digest)?;
        put_tags(&blobs, image, &top, tags, false).await?;
        return Ok(report);
    }
    let layers = unique(
        image
            .platforms
            .iter()
            .flat_map(|p| p.manifest.layers.iter().map(|l| &l.digest)),
    )
    .into_iter()
    .filter(|d| image.blobs.contains_key(d))
    .collect::<Vec<_>>();
    let configs = unique(image.platforms.iter().map(|p| &p.manifest.config.digest));
    let artifact_digests: Vec<&Digest> = artifacts
        .keys()
        .filter(|d| !image.blobs.contains_key(*d))
        .collect();
    let is_layer: BTreeSet<&Digest> = layers.iter().copied().collect();
    // Every blob at once, layers first: a blob upload needs no other blob (the
    // registry checks what a manifest names only when the manifest is put), and each
    // wave waited for its slowest blob.
    let all: Vec<&Digest> = layers
        .into_iter()
        .chain(configs)
        .chain(artifact_digests)
        .collect();
    let outcomes: Vec<Outcome> = stream::iter(all)
        .map(|digest| async {
            let (mount_from, maybe_here) = sources.for_blob(digest);
            // A layer may be anywhere already (a base's, one an earlier release
            // pushed): asked about first. Configs and artifacts are this image's.
            let ask = if maybe_here {
                Ask::Recorded
            } else if is_layer.contains(digest) {
                Ask::Layer
            } else {
                Ask::New
            };
            let outcome = upload_blob(
                &blobs,
                digest,
                image
                    .blobs
                    .get(digest)
                    .unwrap_or_else(|| &artifacts[digest]),
                (mount_from, ask),
                &fetchers,
                transport,
            )
            .await?;
            if let Some(records) = &records {
                records.record(target.registry(), target.repository(), digest)?;
            }
            Ok::<_, Error>(outcome)
        })
        .buffer_unordered(options.jobs())
        .try_collect()
        .await?;
    for outcome in outcomes {
        match outcome {
            Outcome::Skipped => report.blobs_skipped += 1,
            Outcome::Mounted => report.blobs_mounted += 1,
            Outcome::Uploaded { bytes, fetched } => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += bytes;
                report.base_blobs_fetched += u64::from(fetched);
            }
        }
    }

    put_manifests(&blobs, image, tags).await?;
    Ok(report)
}

/// Children by digest before the index that names them, tags last (until then,
/// nothing a user pulls by tag has changed). A child is `PUT` without a `HEAD`
/// first: the image is not there whole, so its children are most likely new, and
/// putting one again changes nothing and costs what the `HEAD` would. (One after
/// another: with many images pushed at once the requests in flight are bounded
/// anyway, and the first final error stops the rest.)
async fn put_manifests(blobs: &Repository, image: &Image, tags: &[String]) -> Result<()> {
    for platform in &image.platforms {
        let descriptor = &platform.descriptor;
        if descriptor.digest != image.descriptor.digest {
            let bytes = document_bytes(image, &descriptor.digest)?;
            blobs
                .put_manifest(descriptor.digest.as_str(), &descriptor.media_type, &bytes)
                .await?;
        }
    }
    let top = document_bytes(image, &image.descriptor.digest)?;
    let digest = &image.descriptor.digest;
    let media_type = &image.descriptor.media_type;
    // Artifacts about the image (its SBOMs) once their subjects are there, before the
    // tags: a tag names the image with everything attached to it. Those of one
    // subject one after another (each adds itself to the subject's referrers tag),
    // the subjects at once; those about the children alongside the index's PUT,
    // those about the index after it.
    let mut by_subject: BTreeMap<&Digest, Vec<&crate::oci::artifact::Referrer>> = BTreeMap::new();
    for referrer in &image.referrers {
        by_subject
            .entry(&referrer.subject.digest)
            .or_default()
            .push(referrer);
    }
    let about_top = by_subject.remove(digest);
    let (top_was_new, ()) = futures_util::future::try_join(
        blobs.put_manifest_unless_there(digest.as_str(), digest, media_type, &top),
        attach_all(blobs, by_subject.into_values()),
    )
    .await?;
    attach_all(blobs, about_top).await?;
    put_tags(blobs, image, &top, tags, top_was_new).await
}

/// Attaches each group's referrers, the groups at once, one after another within a
/// group (they share a subject, and its referrers tag).
async fn attach_all<'r>(
    blobs: &Repository,
    groups: impl IntoIterator<Item = Vec<&'r crate::oci::artifact::Referrer>>,
) -> Result<()> {
    futures_util::future::try_join_all(groups.into_iter().map(|referrers| async move {
        for referrer in referrers {
            super::referrers::attach_referrer_manifest(blobs, referrer).await?;
        }
        Ok::<_, Error>(())
    }))
    .await?;
    Ok(())
}

/// Points `tags` of `target`'s repository at `image`, which is there by digest already
/// (pushed with no tags): the second step of a release that moves tags only once every
/// image is up everywhere. Each tag is a HEAD, and a PUT unless it names the image.
pub async fn tag_pushed(
    image: &Image,
    target: &Reference,
    tags: &[String],
    transport: &Transport,
) -> Result<()> {
    let blobs = transport
        .repository(target, Access::Push { mount_from: &[] })
        .await?;
    let top = document_bytes(image, &image.descriptor.digest)?;
    put_tags(&blobs, image, &top, tags, false).await
}

/// Points `tag` of `repository` at `image` (there by digest already) with one PUT,
/// for a caller that read the tag just before; answers the PUT's own round trip
/// ([`Repository::put_manifest_timed`]).
pub async fn put_tag(
    repository: &Repository,
    image: &Image,
    tag: &str,
) -> Result<std::time::Duration> {
    let top = document_bytes(image, &image.descriptor.digest)?;
    repository
        .put_manifest_timed(tag, &image.descriptor.media_type, &top)
        .await
}

async fn put_tags(
    blobs: &Repository,
    image: &Image,
    top: &[u8],
    tags: &[String],
    top_was_new: bool,
) -> Result<()> {
    let digest = &image.descriptor.digest;
    let media_type = &image.descriptor.media_type;
    for tag in tags {
        // A registry that lacked the image by digest cannot have had a tag on it.
        if top_was_new {
            blobs.put_manifest(tag, media_type, top).await?;
        } else {
            blobs
                .put_manifest_unless_there(tag, digest, media_type, top)
                .await?;
        }
    }
    Ok(())
}

/// The blobs of `image`'s referrers (SBOM documents, the empty config), by digest.
fn artifact_blobs(image: &Image) -> BTreeMap<Digest, Blob> {
    image
        .referrers
        .iter()
        .flat_map(super::referrers::referrer_blobs)
        .map(|(digest, bytes)| {
            let blob = Blob {
                size: bytes.len() as u64,
                source: BlobSource::Bytes(bytes.to_vec()),
            };
            (digest, blob)
        })
        .collect()
}

/// Whether `blobs`' repository holds `image` by digest with every SBOM of it listed
/// among its subject's referrers: one `HEAD`, and one referrers `GET` per subject
/// (all at once), for an image pushed before.
async fn complete_there(blobs: &Repository, image: &Image) -> Result<bool> {
    let digest = &image.descriptor.digest;
    if blobs.was_unknown() || blobs.manifest_digest(digest.as_str()).await?.as_ref() != Some(digest)
    {
        return Ok(false);
    }
    let mut by_subject: BTreeMap<&Digest, Vec<&Digest>> = BTreeMap::new();
    for referrer in &image.referrers {
        by_subject
            .entry(&referrer.subject.digest)
            .or_default()
            .push(&referrer.descriptor.digest);
    }
    let listed =
        futures_util::future::try_join_all(by_subject.iter().map(|(subject, wanted)| async move {
            let there = super::referrers::list(blobs, subject, None).await?;
            Ok::<_, Error>(wanted.iter().all(|w| there.iter().any(|d| &d.digest == *w)))
        }))
        .await?;
    Ok(listed.into_iter().all(|all| all))
}

/// Digests in first-seen order, each once: a layer shared by platforms goes up once.
fn unique<'a>(digests: impl Iterator<Item = &'a Digest>) -> Vec<&'a Digest> {
    let mut seen = BTreeSet::new();
    digests.filter(|d| seen.insert(*d)).collect()
}

/// Where each blob can be mounted from: other repositories of the target's registry
/// that hold it — the base's, those a reused layer came from
/// ([`Image::layer_origins`]), and those the pushed-records say received it.
struct MountSources {
    /// Per blob, candidate repositories in order of preference.
    per_blob: BTreeMap<Digest, Vec<String>>,
    /// Blobs the target repository itself may hold already: a record says it received
    /// them, or they were reused from its own images.
    maybe_here: BTreeSet<Digest>,
}

impl MountSources {
    fn new(image: &Image, target: &Reference, records: Option<&PushedRecords>) -> MountSources {
        let mut per_blob: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        let mut maybe_here = BTreeSet::new();
        let mut add = |digest: &Digest, repository: &str| {
            if repository == target.repository() {
                maybe_here.insert(digest.clone());
                return;
            }
            let list = per_blob.entry(digest.clone()).or_default();
            if !list.iter().any(|r| r == repository) {
                list.push(repository.to_string());
            }
        };
        for origin in image.base_origin.iter().chain(&image.layer_origins) {
            if origin.repository.registry() == target.registry() {
                for digest in &origin.layers {
                    add(digest, origin.repository.repository());
                }
            }
        }
        if let Some(records) = records {
            for digest in image.blobs.keys() {
                for repository in records.repositories(target.registry(), digest) {
                    add(digest, &repository);
                }
            }
        }
        per_blob.retain(|_, list| !list.is_empty());
        MountSources {
            per_blob,
            maybe_here,
        }
    }

    /// Every candidate repository (the push token's extra pull scopes).
    fn repositories(&self) -> Vec<&str> {
        let all: BTreeSet<&str> = self
            .per_blob
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        all.into_iter().collect()
    }

    /// The candidates to mount `digest` from, and whether the target may hold it.
    fn for_blob(&self, digest: &Digest) -> (&[String], bool) {
        (
            self.per_blob.get(digest).map_or(&[], Vec::as_slice),
            self.maybe_here.contains(digest),
        )
    }
}

/// Fetchers for blobs left in their registry (`OnDemand`): one per repository holding
/// some, the base's and the reused layers'.
/// Fetches (verified, into the cache) the layers a build left in a registry (its
/// registry base's, the new ones it reused): for a step that must read them (the SBOM's
/// scan). Only those `wanted` says yes to.
pub async fn fetch_layers_on_demand(
    image: &Image,
    transport: &Transport,
    wanted: &dyn Fn(&Digest) -> bool,
) -> Result<()> {
    let fetchers = Fetchers::new(image, transport).await?;
    for origin in image.base_origin.iter().chain(&image.layer_origins) {
        for digest in origin.layers.iter().filter(|d| wanted(d)) {
            if let Some(blob) = image.blobs.get(digest)
                && matches!(blob.source, BlobSource::OnDemand(_))
            {
                fetchers.fetch(digest, blob.size).await?;
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Fetchers {
    by_origin: Vec<(BTreeSet<Digest>, BlobFetcher)>,
}

impl Fetchers {
    async fn new(image: &Image, transport: &Transport) -> Result<Fetchers> {
        let mut by_origin = Vec::new();
        for origin in image.base_origin.iter().chain(&image.layer_origins) {
            let on_demand = origin.layers.iter().any(|digest| {
                image
                    .blobs
                    .get(digest)
                    .is_some_and(|b| matches!(b.source, BlobSource::OnDemand(_)))
            });
            if on_demand {
                let fetcher =
                    BlobFetcher::new(&origin.repository, &origin.cache, transport).await?;
                by_origin.push((origin.layers.clone(), fetcher));
            }
        }
        Ok(Fetchers { by_origin })
    }

    async fn fetch(&self, digest: &Digest, size: u64) -> Result<()> {
        let (_, fetcher) = self
            .by_origin
            .iter()
            .find(|(layers, _)| layers.contains(digest))
            .expect("a fetcher exists for every blob on demand");
        fetcher.fetch(digest, size).await
    }
}

/// Puts one blob into `blobs`' repository, once per command: under the blob's slot
/// of the command's ledger ([`super::scheduler`]), so that a sibling push needing it
/// waits for this one and then mounts it rather than uploading it again.
async fn upload_blob(
    blobs: &Repository,
    digest: &Digest,
    blob: &Blob,
    sources: (&[String], Ask),
    fetchers: &Fetchers,
    transport: &Transport,
) -> Result<Outcome> {
    let slot = transport.ledger().slot(&blobs.registry.name, digest);
    let mut holders = slot.lock().await;
    let outcome = put_blob(blobs, digest, blob, sources, &holders, fetchers, transport).await?;
    holders.insert(blobs.name.clone());
    blobs.registry.counts.blob(
        &blobs.display(),
        match outcome {
            Outcome::Skipped => BlobOutcome::Skipped,
            Outcome::Mounted => BlobOutcome::Mounted,
            Outcome::Uploaded { .. } => BlobOutcome::Uploaded,
        },
    );
    Ok(outcome)
}

/// A handle on `target`'s repository for putting artifacts about an image pushed
/// there (signatures, provenance): its token may pull from the command's other
/// targets on the registry, so that an artifact blob one of them holds is mounted.
pub async fn artifact_repository(target: &Reference, transport: &Transport) -> Result<Repository> {
    let ledger = transport.ledger();
    ledger.announce(target.registry(), target.repository());
    let siblings = ledger.siblings(target.registry(), target.repository());
    let mount_from: Vec<&str> = siblings.iter().map(String::as_str).collect();
    transport
        .repository(
            target,
            Access::Push {
                mount_from: &mount_from,
            },
        )
        .await
}

/// Puts an artifact's small blob (a signature payload or its config, a provenance
/// envelope, the empty config) into `repository` the way a push puts an image's:
/// through the command's ledger, so each goes up once per command, is mounted where
/// this command put it before, and is counted with the others.
pub async fn put_artifact_blob(
    repository: &Repository,
    digest: &Digest,
    bytes: &[u8],
    transport: &Transport,
) -> Result<()> {
    let blob = Blob {
        size: bytes.len() as u64,
        source: BlobSource::Bytes(bytes.to_vec()),
    };
    // No other source to try: where this command put it is in the ledger. Each is
    // about one image (new ones are new), so it goes up without a HEAD first.
    upload_blob(
        repository,
        digest,
        &blob,
        (&[], Ask::New),
        &Fetchers::default(),
        transport,
    )
    .await?;
    Ok(())
}

async fn put_blob(
    blobs: &Repository,
    digest: &Digest,
    blob: &Blob,
    sources: (&[String], Ask),
    holders: &super::scheduler::Holders,
    fetchers: &Fetchers,
    transport: &Transport,
) -> Result<Outcome> {
    let (mount_from, ask) = sources;
    // This command put it there already: no need to ask.
    if holders.contains(&blobs.name) {
        return Ok(Outcome::Skipped);
    }
    // A declined mount's `202` opens an upload session: the upload goes there rather
    // than through a second `POST`.
    let mut opened = None;
    // Where this command put it: a mount that cannot be stale, tried first and
    // without a HEAD (a registry that lacks the blob here answers the mount 201).
    if let Some(holder) = holders.iter().next() {
        match blobs.mount(digest, holder).await {
            Mount::Mounted => return Ok(Outcome::Mounted),
            Mount::Declined(session) => opened = session,
        }
    }
    if opened.is_none()
        && worth_a_head(blob, ask, blobs.was_unknown())
        && blobs.blob_exists(digest).await?
    {
        return Ok(Outcome::Skipped);
    }
    // A 201 mounts the blob without moving a byte; any other answer means try the
    // next source, then upload it. At most two tries: records may be stale.
    for source in mount_from.iter().take(2) {
        match blobs.mount(digest, source).await {
            Mount::Mounted => return Ok(Outcome::Mounted),
            Mount::Declined(Some(session)) => opened = Some(session),
            Mount::Declined(None) => {}
        }
    }
    let progress = transport.upload_progress();
    let mut fetched = false;
    if let BlobSource::OnDemand(_) = &blob.source {
        // The one case a registry layer's bytes are needed: fetch it into the cache,
        // then upload it from there like any other.
        fetchers.fetch(digest, blob.size).await?;
        fetched = true;
    }
    let body = match &blob.source {
        BlobSource::Bytes(bytes) => BlobBody::Bytes(bytes),
        // Streamed from the file, never held in memory, and only once it is known to
        // be the blob's bytes (no link out of its layout, its digest checked): not
        // one byte of anything else is sent.
        BlobSource::Trusted(path) | BlobSource::Unverified(path) | BlobSource::OnDemand(path) => {
            let (checked, digest, size) = (path.clone(), digest.clone(), blob.size);
            let file =
                tokio::task::spawn_blocking(move || verify_blob_file(&checked, &digest, size))
                    .await
                    .map_err(|e| Error::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e),
                    })??;
            BlobBody::File { file, path }
        }
    };
    let progress = progress.blob_started(&blobs.display(), digest, blob.size);
    blobs
        .upload(digest, blob.size, &body, &progress, opened)
        .await?;
    Ok(Outcome::Uploaded {
        bytes: blob.size,
        fetched,
    })
}

/// Blobs up to this size whose bytes are here are uploaded without asking first
/// whether the registry has them, unless the caller says to ask: a new image's
/// configs and SBOM documents are new, and sending one again costs less than a round
/// trip for every one of them.
const ASK_FIRST_ABOVE: u64 = 1 << 20;

/// Why a blob might be in the repository already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// A record says the repository received it ([`super::pushed`]).
    Recorded,
    /// A layer: a base's, or one an earlier push put there.
    Layer,
    /// A config or artifact blob: new with its image.
    New,
}

/// Whether a `HEAD` before uploading `blob` is worth its round trip: when a record
/// says the repository received it; else never in a repository the registry did not
/// know at this command's census (`unknown`: 404 `NAME_UNKNOWN`, a first push;
/// distribution answers so too for one holding only untagged images, where at worst a
/// blob goes up again); else for a layer, a blob whose bytes would have to be fetched
/// first (a registry base's layer), or a big one.
fn worth_a_head(blob: &Blob, ask: Ask, unknown: bool) -> bool {
    match ask {
        Ask::Recorded => true,
        _ if unknown => false,
        Ask::Layer => true,
        Ask::New => matches!(blob.source, BlobSource::OnDemand(_)) || blob.size > ASK_FIRST_ABOVE,
    }
}

/// A manifest's or index's exact bytes (pushed as they are: their digest is their name).
fn document_bytes(image: &Image, digest: &Digest) -> Result<Vec<u8>> {
    let blob = &image.blobs[digest];
    match &blob.source {
        BlobSource::Bytes(bytes) => Ok(bytes.clone()),
        // Documents are always local; only base layers are ever on demand.
        BlobSource::Trusted(path) | BlobSource::Unverified(path) | BlobSource::OnDemand(path) => {
            read_blob_file(path, digest, blob.size)
        }
    }
}
