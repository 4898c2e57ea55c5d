//! Sinks: where a built [`Image`] goes. One trait, one implementation per output kind
//! (`oci:` layout, `oci-archive:`, `docker-archive:`); registries join later.
//!
//! Every sink writes blobs first and the document that names them last, through a
//! temporary file and a rename, so an interrupted write never leaves a layout or
//! archive that points at missing content.

pub mod archive;
pub mod layout;

use std::fs::File;

use std::path::Path;

use hoist_layers::{BlobStore, Digest};

use crate::error::{Error, IoContext, Result};
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

/// A layout's `index.json` bytes, canonical like every document we write.
pub(crate) fn index_json(index: &Index, output: &Path) -> Result<Vec<u8>> {
    to_canonical(index)
        .map(|blob| blob.bytes)
        .map_err(|e| Error::Output {
            path: output.to_path_buf(),
            reason: format!("cannot serialise index.json: {e}"),
        })
}

/// Puts one blob into a store: hard link when we wrote it ourselves (a 1 GiB layer
/// must not be copied again), verified copy when it came from elsewhere.
pub(crate) fn store_blob(store: &BlobStore, digest: &Digest, blob: &Blob) -> Result<u64> {
    if store.contains(digest) {
        return Ok(0);
    }
    match &blob.source {
        BlobSource::Bytes(bytes) => {
            store.put(bytes)?;
        }
        BlobSource::Trusted(path) => {
            if std::fs::hard_link(path, store.path(digest)).is_err() {
                let file = File::open(path).at(path)?;
                store.import(file, digest)?;
            }
        }
        // OnDemand never reaches a sink (builds with an output fetch every base layer);
        // if it did, the missing file is named.
        BlobSource::Unverified(path) | BlobSource::OnDemand(path) => {
            let file = File::open(path).at(path)?;
            store.import(file, digest).map_err(|e| Error::Output {
                path: store.root().to_path_buf(),
                reason: format!("copying base blob {}: {e}", path.display()),
            })?;
        }
    }
    Ok(blob.size)
}
