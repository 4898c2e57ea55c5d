//! Sinks: where a built [`Image`] goes. One trait, one implementation per output kind
//! (`oci:` layout, `oci-archive:`, `docker-archive:`); registries join later.
//!
//! Every sink writes blobs first and the document that names them last, through a
//! temporary file and a rename, so an interrupted write never leaves a layout or
//! archive that points at missing content.

pub mod archive;
pub mod layout;

use std::path::Path;

use hoist_layers::{BlobStore, Digest};

use crate::error::{Error, Result};
use crate::oci::artifact::{EMPTY_BYTES, Referrer, empty_config};
use crate::oci::canonical::to_canonical;
use crate::oci::image::{Blob, BlobSource, Image};
use crate::oci::location::{Location, Selector};
use crate::oci::model::{Descriptor, Index, REF_NAME};

/// What a sink did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Bytes of blobs newly written (blobs already present are not counted).
    pub bytes_written: u64,
    /// Where the image was written, for messages.
    pub target: String,
}

/// A destination for built images.
pub trait Sink {
    /// Checks, before anything is built, that the output can be written (a path that
    /// is not a layout, a missing parent directory); writes nothing.
    fn preflight(&self) -> Result<()>;
    /// Writes `image`, naming it with `tags` where the output holds tags.
    fn write(&self, image: &Image, tags: &[String]) -> Result<WriteReport>;
}

/// The sink for an output location.
pub fn sink_for(location: &Location) -> Result<Box<dyn Sink>> {
    match location {
        Location::OciLayout { path, selector } => Ok(Box::new(layout::LayoutSink {
            path: path.clone(),
            tag: output_tag(location, selector)?,
        })),
        Location::OciArchive { path, selector } => Ok(Box::new(archive::OciArchiveSink {
            path: path.clone(),
            tag: output_tag(location, selector)?,
        })),
        Location::DockerArchive { path, reference } => Ok(Box::new(archive::DockerArchiveSink {
            path: path.clone(),
            reference: reference.clone(),
        })),
        Location::Registry { .. } => Err(Error::Location {
            input: location.to_string(),
            reason: "registries are not an --output; use --push-to (or hoist push)".into(),
        }),
        Location::Scratch => Err(Error::Location {
            input: location.to_string(),
            reason: "scratch is a base, not an output".into(),
        }),
    }
}

fn output_tag(location: &Location, selector: &Selector) -> Result<Option<String>> {
    match selector {
        Selector::Default => Ok(None),
        Selector::Tag(tag) => Ok(Some(tag.clone())),
        Selector::Digest(_) => Err(Error::Location {
            input: location.to_string(),
            reason: "an output is named by a tag, not a digest".into(),
        }),
    }
}

/// The tags an output gets: its own (`oci:DIR:TAG`) first, then the plan's; `latest`
/// when there are none, so a rebuild replaces the previous entry instead of piling up
/// untagged ones.
pub fn effective_tags(own: Option<&str>, plan_tags: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = own.into_iter().map(str::to_string).collect();
    for tag in plan_tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if tags.is_empty() {
        tags.push("latest".into());
    }
    tags
}

/// The `index.json` entries naming `image` once per tag (`org.opencontainers.image.ref.name`).
pub(crate) fn tagged_entries(image: &Image, tags: &[String]) -> Vec<Descriptor> {
    tags.iter()
        .map(|tag| {
            let mut entry = image.descriptor.clone();
            entry
                .annotations
                .get_or_insert_with(Default::default)
                .insert(REF_NAME.into(), tag.clone());
            entry
        })
        .collect()
}

/// The `index.json` entries of the image's referrers (untagged, with their
/// `artifactType`), as oras lists artifacts in a layout.
pub(crate) fn referrer_entries(image: &Image) -> Vec<Descriptor> {
    image
        .referrers
        .iter()
        .map(|r| r.descriptor.clone())
        .collect()
}

/// Puts the image's referrers (the empty config, each document, each manifest) into
/// a store; answers the bytes newly written.
pub(crate) fn store_referrers(store: &BlobStore, image: &Image) -> Result<u64> {
    let mut written = 0;
    for referrer in &image.referrers {
        for (digest, bytes) in referrer_blobs(referrer) {
            let blob = Blob {
                size: bytes.len() as u64,
                source: BlobSource::Bytes(bytes.to_vec()),
            };
            written += store_blob(store, &digest, &blob)?;
        }
    }
    Ok(written)
}

/// A referrer's blobs, in the order a store takes them (the manifest last).
pub(crate) fn referrer_blobs(referrer: &Referrer) -> [(Digest, &[u8]); 3] {
    [
        (empty_config().digest, EMPTY_BYTES),
        (referrer.layer.digest.clone(), &referrer.document),
        (referrer.descriptor.digest.clone(), &referrer.manifest),
    ]
}

/// A layout's `index.json` bytes, canonical like every document we write.
pub(crate) fn index_json(index: &Index, output: &Path) -> Result<Vec<u8>> {
    to_canonical(index)
        .map(|blob| blob.bytes)
        .map_err(|e| Error::Output {
            path: output.to_path_buf(),
            reason: format!("cannot serialise index.json: {e}"),
        })
}

/// Puts one blob into a store (an output layout), never leaving bad bytes under its
/// name: a blob already there is kept only if it checks out (a layout written earlier
/// may hard-link a cache file later found corrupt); our own layers are hard-linked (a
/// 1 GiB layer must not be copied again), verified before that (free when this run
/// built or checked it); blobs from elsewhere are copied with their digest checked on
/// the way, so a mismatch never reaches the blob's name.
pub(crate) fn store_blob(store: &BlobStore, digest: &Digest, blob: &Blob) -> Result<u64> {
    let target = store.path(digest);
    let in_the_way = match store.check(digest, blob.size) {
        Ok(()) => return Ok(0),
        Err(hoist_layers::Error::BlobMissing { .. }) => false,
        // Replaced below, by a rename over it.
        Err(_) => true,
    };
    match &blob.source {
        BlobSource::Bytes(bytes) => {
            let (found, _) = store.put(bytes)?;
            if &found != digest {
                return Err(Error::Output {
                    path: store.root().to_path_buf(),
                    reason: format!("document {digest} hashes to {found}: not written"),
                });
            }
        }
        BlobSource::Trusted(path) => {
            crate::oci::layout::verify_blob_file(path, digest, blob.size)?;
            // A link needs the name free; a bad file in the way is replaced by a
            // verified copy instead (rare: a repair), as is a link across filesystems.
            if in_the_way || std::fs::hard_link(path, &target).is_err() {
                store.import_file(path, digest, blob.size)?;
            }
        }
        // OnDemand never reaches a sink (builds with an output fetch every base layer);
        // if it did, the missing file is named.
        BlobSource::Unverified(path) | BlobSource::OnDemand(path) => {
            store
                .import_file(path, digest, blob.size)
                .map_err(|e| Error::Output {
                    path: store.root().to_path_buf(),
                    reason: format!("copying a base blob: {e}"),
                })?;
        }
    }
    Ok(blob.size)
}
