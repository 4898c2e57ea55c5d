//! Pushing an [`Image`] to a repository: each blob once (HEAD, then a streamed upload
//! only when the registry lacks it), bounded concurrency, layers before configs,
//! manifests by digest with children before the index, then the image's referrers
//! (SBOMs), tags last. A manifest or tag
//! the registry already holds at that digest is not PUT again (HEAD first), so an
//! unchanged re-push PUTs nothing.

use std::collections::BTreeSet;

use futures_util::{StreamExt, TryStreamExt, stream};
use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde::Serialize;

use super::pull::BlobFetcher;
use super::repository::Mount;
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
    /// Blobs mounted from another repository of the same registry (the base's).
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
    let mount_sources: Vec<&str> = image
        .base_origin
        .iter()
        .filter(|origin| origin.repository.registry() == target.registry())
        .map(|origin| origin.repository.repository())
        .collect();
    let blobs = transport
        .repository(
            target,
            Access::Push {
                mount_from: &mount_sources,
            },
        )
        .await?;
    let fetcher = match &image.base_origin {
        Some(origin)
            if image
                .blobs
                .values()
                .any(|b| matches!(b.source, BlobSource::OnDemand(_))) =>
        {
            Some(BlobFetcher::new(&origin.repository, &origin.cache, transport).await?)
        }
        _ => None,
    };

    let mut report = PushReport {
        digest: image.descriptor.digest.to_string(),
        reference: format!(
            "{}/{}@{}",
            target.registry(),
            target.repository(),
            image.descriptor.digest
        ),
        tags: tags.to_vec(),
        platforms: image
            .platforms
            .iter()
            .map(|p| p.platform.to_string())
            .collect(),
        ..PushReport::default()
    };

    // Layers first, then configs: a registry may check that a config's layers exist.
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
    for phase in [layers, configs] {
        let outcomes: Vec<Outcome> = stream::iter(phase)
            .map(|digest| {
                let mount_from = mount_source_for(image, target, digest);
                upload_blob(
                    &blobs,
                    digest,
                    &image.blobs[digest],
                    mount_from,
                    fetcher.as_ref(),
                )
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
    }

    put_manifests(&blobs, image, tags).await?;
    Ok(report)
}

/// Children by digest before the index that names them, tags last (until then,
/// nothing a user pulls by tag has changed); each unless the registry holds it at that
/// digest already.
async fn put_manifests(blobs: &Repository, image: &Image, tags: &[String]) -> Result<()> {
    for platform in &image.platforms {
        let descriptor = &platform.descriptor;
        if descriptor.digest != image.descriptor.digest {
            let bytes = document_bytes(image, &descriptor.digest)?;
            blobs
                .put_manifest_unless_there(
                    descriptor.digest.as_str(),
                    &descriptor.digest,
                    &descriptor.media_type,
                    &bytes,
                )
                .await?;
        }
    }
    let top = document_bytes(image, &image.descriptor.digest)?;
    let digest = &image.descriptor.digest;
    let media_type = &image.descriptor.media_type;
    let top_was_new = blobs
        .put_manifest_unless_there(digest.as_str(), digest, media_type, &top)
        .await?;
    // Artifacts about the image (its SBOMs) once their subjects are there, before the
    // tags: a tag names the image with everything attached to it.
    for referrer in &image.referrers {
        super::referrers::attach_referrer(blobs, referrer).await?;
    }
    for tag in tags {
        // A registry that lacked the image by digest cannot have had a tag on it.
        if top_was_new {
            blobs.put_manifest(tag, media_type, &top).await?;
        } else {
            blobs
                .put_manifest_unless_there(tag, digest, media_type, &top)
                .await?;
        }
    }
    Ok(())
}

/// Digests in first-seen order, each once: a layer shared by platforms goes up once.
fn unique<'a>(digests: impl Iterator<Item = &'a Digest>) -> Vec<&'a Digest> {
    let mut seen = BTreeSet::new();
    digests.filter(|d| seen.insert(*d)).collect()
}

/// The repository a blob can be mounted from: the base's, when it holds the blob and is
/// another repository of the target's registry.
fn mount_source_for<'a>(
    image: &'a Image,
    target: &Reference,
    digest: &Digest,
) -> Option<&'a Reference> {
    let origin = image.base_origin.as_ref()?;
    let source = &origin.repository;
    (origin.layers.contains(digest)
        && source.registry() == target.registry()
        && source.repository() != target.repository())
    .then_some(source)
}

async fn upload_blob(
    blobs: &Repository,
    digest: &Digest,
    blob: &Blob,
    mount_from: Option<&Reference>,
    fetcher: Option<&BlobFetcher>,
) -> Result<Outcome> {
    if blobs.blob_exists(digest).await? {
        return Ok(Outcome::Skipped);
    }
    // A 201 mounts the blob without moving a byte; any other answer means upload it.
    if let Some(source) = mount_from
        && let Mount::Mounted = blobs.mount(digest, source.repository()).await
    {
        return Ok(Outcome::Mounted);
    }
    let mut fetched = false;
    if let BlobSource::OnDemand(_) = &blob.source {
        // The one case a base layer's bytes are needed: fetch it into the cache, then
        // upload it from there like any other.
        let fetcher = fetcher.expect("a fetcher exists when a blob is on demand");
        fetcher.fetch(digest, blob.size).await?;
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
    blobs.upload(digest, blob.size, &body).await?;
    Ok(Outcome::Uploaded {
        bytes: blob.size,
        fetched,
    })
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
