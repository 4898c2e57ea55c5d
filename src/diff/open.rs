//! Opening an image to compare: its documents now, its layers only when asked.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use hoist_layers::{BlobStore, Digest};
use oci_spec::distribution::Reference;

use super::layer::{LayerListing, list_layer};
use crate::error::{Error, IoContext, Result};
use crate::oci::image::{Blob, BlobSource, PlatformImage};
use crate::oci::location::Location;
use crate::oci::model::{Annotations, Descriptor, Index};
use crate::open::{OpenOptions, open};
use crate::registry::transport::Transport;

/// An image opened for comparison: index, manifests and configs read and verified;
/// layers read on demand.
pub struct OpenedImage {
    /// The image as named by the user.
    pub name: String,
    /// The descriptor of the top-level document (index or manifest).
    pub top: Descriptor,
    /// The index, when the image has one.
    pub index: Option<Index>,
    /// Every platform image.
    pub platforms: Vec<PlatformImage>,
    /// Where each blob is (a layout's file, the cache's, or left in the registry).
    blobs: BTreeMap<Digest, Blob>,
    /// For blobs left in a registry: where to fetch them from, and into which cache.
    remote: Option<Box<RegistryBlobs>>,
}

struct RegistryBlobs {
    reference: Reference,
    store: BlobStore,
    transport: Transport,
}

impl OpenedImage {
    /// Opens `location` (named `name` in reports). Archives are unpacked into
    /// `scratch_dir`; registry documents are fetched into `store`, layers later.
    pub fn open(
        name: &str,
        location: &Location,
        scratch_dir: &std::path::Path,
        store: &BlobStore,
        transport: &Transport,
    ) -> Result<OpenedImage> {
        if *location == Location::Scratch {
            return Err(Error::Location {
                input: location.to_string(),
                reason: "diff reads oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] and registry references"
                    .into(),
            });
        }
        let open_options = OpenOptions {
            scratch_dir,
            store,
            transport,
            platforms: None,
            // Layers are read only where the two sides differ: leave them where they are.
            fetch_layers: false,
        };
        let image = open(location, &open_options)?;
        let remote = image.base_origin.as_ref().map(|origin| {
            Box::new(RegistryBlobs {
                reference: origin.repository.clone(),
                store: store.clone(),
                transport: transport.clone(),
            })
        });
        Ok(OpenedImage {
            name: name.to_string(),
            top: image.descriptor,
            index: image.index,
            platforms: image.platforms,
            blobs: image.blobs,
            remote,
        })
    }

    /// The index's annotations (none for a single-manifest image).
    pub fn index_annotations(&self) -> Option<&Annotations> {
        self.index.as_ref().and_then(|i| i.annotations.as_ref())
    }

    /// One annotation, from the index or else from the first manifest.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        crate::oci::image::recorded_annotation(self.index.as_ref(), &self.platforms, key)
    }

    /// Streams one layer and lists its entries, verifying the blob's digest.
    pub fn list_layer(&self, layer: &Descriptor) -> Result<LayerListing> {
        let mut blob = self.open_layer(layer)?;
        let listing = list_layer(&mut blob, &layer.digest)?;
        blob.finish()?;
        Ok(listing)
    }

    /// A layer blob to stream: fetched first from a registry, read from a layout.
    pub fn open_layer(&self, layer: &Descriptor) -> Result<LayerBlob> {
        let not_here = || Error::LayerRead {
            layer: layer.digest.clone(),
            message: format!("{} holds no blob for this layer", self.name),
        };
        let path = match self.blobs.get(&layer.digest).map(|b| &b.source) {
            Some(BlobSource::Unverified(path) | BlobSource::Trusted(path)) => path.clone(),
            Some(BlobSource::OnDemand(path)) => {
                let remote = self.remote.as_ref().ok_or_else(not_here)?;
                crate::registry::block_on(crate::registry::pull::fetch_blob(
                    &remote.reference,
                    layer,
                    &remote.store,
                    &remote.transport,
                ))?;
                path.clone()
            }
            Some(BlobSource::Bytes(_)) | None => return Err(not_here()),
        };
        // The rules every blob read obeys: a regular file inside its layout (no link
        // out of it), of the descriptor's size, hashed as it is read.
        let reader = hoist_layers::open_blob(&path, &layer.digest, layer.size)?.reader();
        Ok(LayerBlob { reader, path })
    }
}

/// A layer blob being read, hashed on the way: [`LayerBlob::finish`] checks that what
/// was read is what the descriptor promised (a corrupt layout is named, not diffed).
pub struct LayerBlob {
    reader: hoist_layers::BlobReader,
    path: PathBuf,
}

impl Read for LayerBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl LayerBlob {
    /// Reads what the tar reader left (it stops at the end-of-archive blocks) and
    /// checks the digest.
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self.reader, &mut io::sink()).at(&self.path)?;
        self.reader.finish()?;
        Ok(())
    }
}

impl std::fmt::Debug for OpenedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedImage")
            .field("name", &self.name)
            .field("top", &self.top.digest)
            .finish_non_exhaustive()
    }
}
