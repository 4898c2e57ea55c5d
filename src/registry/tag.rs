//! Retagging without re-uploading (`hoist tag`, and rollback: point a tag back at an
//! earlier digest). Within one repository it is a single manifest PUT; into another
//! repository of the same registry every blob is mounted, not downloaded, and children
//! go up before the index, the tag last.

use oci_spec::distribution::Reference;
use serde::Serialize;

use super::manifest::fetch_manifest;
use super::repository::Mount;
use super::transport::{Access, Transport};
use crate::error::{Error, Result};
use crate::oci::media;
use crate::oci::model::{Index, Manifest};
use crate::oci::reference::{with_digest, with_tag};

/// What a retag did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TagReport {
    /// The digest the tag now names.
    pub digest: String,
    /// `REGISTRY/REPO:TAG`.
    pub reference: String,
    /// Blobs mounted into the destination repository.
    pub blobs_mounted: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
}

/// Points `destination`'s tag at what `source` names.
pub async fn retag(
    source: &Reference,
    destination: &Reference,
    tag: &str,
    transport: &Transport,
) -> Result<TagReport> {
    let registry = source.registry().to_string();
    if destination.registry() != registry {
        return Err(Error::Reference {
            input: destination.whole(),
            reason: format!(
                "is on another registry than {}; copy across registries with hoist pull and hoist push",
                source.whole()
            ),
        });
    }
    // Pull on the source is in the destination's scopes (mounts need it): the
    // source's manifests are read under the same token.
    let requests = transport
        .repository(
            destination,
            Access::Push {
                mount_from: &[source.repository()],
            },
        )
        .await?;
    let reader = requests.sibling(source.repository());
    let reader = &reader;
    let fail = |message: String| Error::Registry {
        registry: registry.clone(),
        message,
    };
    let (top_descriptor, top) = fetch_manifest(reader, source, source.digest()).await?;
    let digest = top_descriptor.digest;
    let media_type = top_descriptor.media_type;
    let mut report = TagReport {
        digest: digest.to_string(),
        reference: with_tag(destination, tag).whole(),
        ..TagReport::default()
    };
    if destination.repository() != source.repository() {
        let mut children = Vec::new();
        if media::is_index(&media_type) {
            let index: Index = serde_json::from_slice(&top)
                .map_err(|e| fail(format!("index {digest} is malformed: {e}")))?;
            for entry in &index.manifests {
                let child = with_digest(source, entry.digest.as_str());
                let (descriptor, bytes) =
                    fetch_manifest(reader, &child, Some(entry.digest.as_str())).await?;
                children.push((entry.digest.clone(), bytes, descriptor.media_type));
            }
        } else {
            children.push((digest.clone(), top.clone(), media_type.clone()));
        }
        for (child_digest, bytes, _) in &children {
            let manifest: Manifest = serde_json::from_slice(bytes)
                .map_err(|e| fail(format!("manifest {child_digest} is malformed: {e}")))?;
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                if blob.media_type == media::DOCKER_FOREIGN_LAYER_GZIP {
                    continue;
                }
                if requests.blob_exists(&blob.digest).await? {
                    report.blobs_skipped += 1;
                    continue;
                }
                // No bytes here to upload instead: the mount must succeed.
                if let Mount::Declined(_) = requests.mount(&blob.digest, source.repository()).await
                {
                    return Err(fail(format!(
                        "the registry would not mount blob {} from {} into {}",
                        blob.digest,
                        source.repository(),
                        destination.repository()
                    )));
                }
                report.blobs_mounted += 1;
            }
        }
        for (child_digest, bytes, child_type) in children.iter().filter(|c| c.0 != digest) {
            requests
                .put_manifest_unless_there(child_digest.as_str(), child_digest, child_type, bytes)
                .await?;
        }
        requests
            .put_manifest_unless_there(digest.as_str(), &digest, &media_type, &top)
            .await?;
    }
    requests
        .put_manifest_unless_there(tag, &digest, &media_type, &top)
        .await?;
    Ok(report)
}
