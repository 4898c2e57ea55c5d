//! `hoist index create`: an index over manifests already in a registry (split builds:
//! each platform built and pushed by digest on its own runner, then merged), like
//! `docker buildx imagetools create`. Indexes given as sources are flattened into their
//! entries. Platforms are read from the manifests' configs; the index's annotations are
//! those its manifests share ([`index_annotations`]), so the index is byte for byte the
//! one a one-runner build of the same inputs writes, as long as the manifests are given
//! in the build's platform order. No layer moves: sources in the target repository are
//! only referenced; sources in another repository of the same registry are mounted.

use std::collections::BTreeSet;

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde::Serialize;
use serde_json::Value;

use super::manifest::fetch_manifest;
use super::repository::Mount;
use super::transport::{Access, Repository, Transport};
use crate::error::{Error, Result};
use crate::oci::canonical::to_canonical;
use crate::oci::media::{self, Flavour};
use crate::oci::model::{Descriptor, HOIST_PLATFORM, Index, Manifest, index_annotations};
use crate::oci::platform::{Platform, platform_of_config};
use crate::oci::reference::with_digest;

/// The largest config read to learn a platform (`oci::limits`).
const CONFIG_LIMIT: usize = crate::oci::limits::CONFIG_LIMIT as usize;

/// What `hoist index create` did (its `--json` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IndexReport {
    /// Digest of the index.
    pub digest: String,
    /// `REGISTRY/REPO@DIGEST`.
    pub reference: String,
    /// Tags pointed at it.
    pub tags: Vec<String>,
    /// Its entries: `PLATFORM DIGEST`, in order.
    pub manifests: Vec<String>,
    /// Whether the registry lacked the index (false: it held it already).
    pub created: bool,
    /// Manifests copied from another repository of the registry (blobs mounted).
    pub manifests_copied: u64,
}

/// One entry of the index to be.
struct Entry {
    descriptor: Descriptor,
    manifest: Manifest,
    bytes: Vec<u8>,
    /// The repository it is in.
    source: Reference,
}

fn error(reference: &Reference, message: String) -> Error {
    Error::Registry {
        registry: reference.registry().to_string(),
        message,
    }
}

/// Makes an index in `target`'s repository over `sources` (manifests or indexes, by
/// digest or tag, in the target's registry) and points `tags` at it, last.
pub async fn create_index(
    target: &Reference,
    tags: &[String],
    sources: &[Reference],
    transport: &Transport,
) -> Result<IndexReport> {
    if sources.is_empty() {
        return Err(error(target, "an index needs at least one manifest".into()));
    }
    for source in sources {
        if source.registry() != target.registry() {
            return Err(error(
                source,
                format!(
                    "{} is in another registry than {}: copy it there first (hoist push, skopeo copy)",
                    source.whole(),
                    target.whole()
                ),
            ));
        }
    }
    let others: BTreeSet<&str> = sources
        .iter()
        .map(Reference::repository)
        .filter(|r| *r != target.repository())
        .collect();
    let others: Vec<&str> = others.into_iter().collect();
    let repository = transport
        .repository(
            target,
            Access::Push {
                mount_from: &others,
            },
        )
        .await?;

    let mut entries: Vec<Entry> = Vec::new();
    for source in sources {
        let handle = repository.sibling(source.repository());
        for entry in read_entries(&handle, source).await? {
            if !entries
                .iter()
                .any(|e| e.descriptor.digest == entry.descriptor.digest)
            {
                entries.push(entry);
            }
        }
    }

    let flavour = Flavour::of(&entries[0].descriptor.media_type).unwrap_or(Flavour::Oci);
    if entries
        .iter()
        .any(|e| Flavour::of(&e.descriptor.media_type) != Some(flavour))
    {
        return Err(error(
            target,
            "the manifests mix OCI and Docker media types: one index cannot hold both".into(),
        ));
    }
    let mut index = Index::new(Some(flavour.index()));
    index.manifests = entries.iter().map(|e| e.descriptor.clone()).collect();
    index.annotations = index_annotations(entries.iter().map(|e| e.manifest.annotations.as_ref()));
    let blob = to_canonical(&index).map_err(|e| error(target, format!("index: {e}")))?;

    let mut copied = 0;
    for entry in &entries {
        if entry.source.repository() != target.repository() {
            copy_manifest(&repository, entry).await?;
            copied += 1;
        }
    }
    let digest = blob.digest.clone();
    let media_type = flavour.index();
    let created = repository
        .put_manifest_unless_there(digest.as_str(), &digest, media_type, &blob.bytes)
        .await?;
    for tag in tags {
        repository
            .put_manifest_unless_there(tag, &digest, media_type, &blob.bytes)
            .await?;
    }
    Ok(IndexReport {
        digest: digest.to_string(),
        reference: format!("{}/{}@{digest}", target.registry(), target.repository()),
        tags: tags.to_vec(),
        manifests: entries
            .iter()
            .map(|e| {
                let platform = e.descriptor.platform.as_ref();
                format!(
                    "{} {}",
                    platform.map_or_else(|| "unknown".to_string(), ToString::to_string),
                    e.descriptor.digest
                )
            })
            .collect(),
        created,
        manifests_copied: copied,
    })
}

/// The manifests `source` names: itself, or an index's entries (flattened).
async fn read_entries(repository: &Repository, source: &Reference) -> Result<Vec<Entry>> {
    let (top, bytes) = fetch_manifest(repository, source, source.digest()).await?;
    if !media::is_index(&top.media_type) {
        return Ok(vec![
            manifest_entry(repository, source, top, bytes, None).await?,
        ]);
    }
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| error(source, format!("index {} is malformed: {e}", top.digest)))?;
    let mut entries = Vec::new();
    for child in index.manifests {
        if !media::is_manifest(&child.media_type) {
            return Err(error(
                source,
                format!(
                    "index {} holds {} ({}): nested indexes are not flattened further",
                    top.digest, child.digest, child.media_type
                ),
            ));
        }
        let reference = with_digest(source, child.digest.as_str());
        let (descriptor, bytes) =
            fetch_manifest(repository, &reference, Some(child.digest.as_str())).await?;
        entries.push(manifest_entry(repository, &reference, descriptor, bytes, Some(child)).await?);
    }
    Ok(entries)
}

/// One manifest as an index entry: its platform from its config (an index entry's own
/// platform and annotations, when flattening, are kept as they were).
async fn manifest_entry(
    repository: &Repository,
    source: &Reference,
    top: Descriptor,
    bytes: Vec<u8>,
    from_index: Option<Descriptor>,
) -> Result<Entry> {
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| error(source, format!("manifest {} is malformed: {e}", top.digest)))?;
    manifest
        .check_media_types(&top.media_type)
        .map_err(|reason| error(source, format!("manifest {}: {reason}", top.digest)))?;
    let recorded = recorded_platform(&manifest).map_err(|e| {
        error(
            source,
            format!("manifest {}: {HOIST_PLATFORM}: {e}", top.digest),
        )
    })?;
    let descriptor = match (from_index, recorded) {
        (Some(entry), _) if entry.platform.is_some() => entry,
        // The platform the build put in its own index entry (the base's, where the
        // config says otherwise).
        (_, Some(platform)) => {
            let mut descriptor = Descriptor::new(top.media_type.clone(), top.digest, top.size);
            descriptor.platform = Some(platform);
            descriptor
        }
        _ => {
            let config = repository
                .blob_bytes(&manifest.config.digest, CONFIG_LIMIT)
                .await?;
            let config: Value = serde_json::from_slice(&config).map_err(|e| {
                error(
                    source,
                    format!("config {} is malformed: {e}", manifest.config.digest),
                )
            })?;
            let platform = platform_of_config(&config).ok_or_else(|| {
                error(
                    source,
                    format!("config {} names no os/architecture", manifest.config.digest),
                )
            })?;
            let mut descriptor = Descriptor::new(top.media_type.clone(), top.digest, top.size);
            descriptor.platform = Some(platform);
            descriptor
        }
    };
    Ok(Entry {
        descriptor,
        manifest,
        bytes,
        source: source.clone(),
    })
}

/// The index-entry platform a build recorded on its manifest ([`HOIST_PLATFORM`]), if
/// any.
fn recorded_platform(manifest: &Manifest) -> std::result::Result<Option<Platform>, String> {
    manifest
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(HOIST_PLATFORM))
        .map(|text| serde_json::from_str(text).map_err(|e| e.to_string()))
        .transpose()
}

/// Puts a manifest of another repository into the target: its blobs mounted (never
/// uploaded: the bytes are in the registry already), then the manifest by digest.
async fn copy_manifest(repository: &Repository, entry: &Entry) -> Result<()> {
    let from = entry.source.repository();
    let blobs = std::iter::once(&entry.manifest.config).chain(
        entry
            .manifest
            .layers
            .iter()
            .filter(|l| l.media_type != media::DOCKER_FOREIGN_LAYER_GZIP),
    );
    for blob in blobs {
        if repository.blob_exists(&blob.digest).await? {
            continue;
        }
        if let Mount::Declined(_) = repository.mount(&blob.digest, from).await {
            return Err(error(
                &entry.source,
                format!(
                    "the registry declined to mount blob {} from {from} into {}",
                    blob.digest,
                    repository.display()
                ),
            ));
        }
    }
    let digest: &Digest = &entry.descriptor.digest;
    repository
        .put_manifest_unless_there(
            digest.as_str(),
            digest,
            &entry.descriptor.media_type,
            &entry.bytes,
        )
        .await?;
    Ok(())
}
