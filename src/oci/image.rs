//! The image value every transport reads and writes: an index (or one manifest), each
//! platform's manifest, and where every blob's bytes are ([`BlobSource`]). Assembly
//! produces one; layouts, archives and registries are opened into one
//! ([`Image::from_layout`]) and sinks consume one, so a build, a pull and a push all
//! move the same value (go-containerregistry's shape).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hoist_layers::Digest;
use serde_json::Value;

use super::canonical::to_canonical;
use super::layout::Layout;
use super::media::{self, Flavour};
use super::model::{Descriptor, Index, Manifest};
use super::platform::Platform;
use super::source::BaseImage;
use crate::error::{Error, Result};

/// Where a blob's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobSource {
    /// A file we wrote and hashed ourselves (the layer store).
    Trusted(PathBuf),
    /// A file from elsewhere (a base layout): verified against its digest when copied.
    Unverified(PathBuf),
    /// A document held in memory (configs, manifests, the index).
    Bytes(Vec<u8>),
    /// A base layer left in its registry (opened without `fetch_layers`, as builds whose
    /// only output is a push are): fetched into the cache at this path from
    /// [`Image::base_origin`] only if a push must upload it.
    OnDemand(PathBuf),
}

/// Where a registry base came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseOrigin {
    /// The base's repository (and reference).
    pub repository: oci_spec::distribution::Reference,
    /// The base's layers in the image: a push to another repository of the same
    /// registry mounts them instead of uploading.
    pub layers: BTreeSet<Digest>,
    /// The cache its blobs are fetched into.
    pub cache: PathBuf,
}

/// One blob of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its size in bytes.
    pub size: u64,
    /// Where it is.
    pub source: BlobSource,
}

/// One layer of a platform's image, for reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerReport {
    /// Compressed digest.
    pub digest: Digest,
    /// Uncompressed digest (from the config's `rootfs.diff_ids`).
    pub diff_id: Option<Digest>,
    /// Compressed size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// `base` or the source it was built from.
    pub origin: String,
    /// Whether the layer came from the layer cache.
    pub cached: bool,
}

/// One platform's manifest in the built image.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    /// The platform.
    pub platform: Platform,
    /// The index entry pointing at the manifest.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// Its layers, base first.
    pub layers: Vec<LayerReport>,
}

/// A built image: an index, its manifests, and where every blob is.
#[derive(Clone, Debug)]
pub struct Image {
    /// Manifest flavour.
    pub flavour: Flavour,
    /// Descriptor of the index.
    pub descriptor: Descriptor,
    /// The index document; `None` when the image is a single manifest (`hoist push`
    /// of a layout whose tag names one manifest).
    pub index: Option<Index>,
    /// One entry per platform, in index order.
    pub platforms: Vec<PlatformImage>,
    /// Every blob the index reaches (layers, configs, manifests, the index itself),
    /// keyed by digest; sinks write them in [`Image::blob_order`].
    pub blobs: BTreeMap<Digest, Blob>,
    /// Repository name from the plan.
    pub name: Option<String>,
    /// The registry base this image is built on, if any.
    pub base_origin: Option<BaseOrigin>,
}

impl Image {
    /// Blobs in the order a sink should write them: layers, then configs, then
    /// manifests, then the index, so that nothing written refers to what is not yet
    /// there.
    pub fn blob_order(&self) -> Vec<&Digest> {
        let layers = self
            .platforms
            .iter()
            .flat_map(|p| p.manifest.layers.iter().map(|l| &l.digest));
        let configs = self.platforms.iter().map(|p| &p.manifest.config.digest);
        let manifests = self.platforms.iter().map(|p| &p.descriptor.digest);
        let mut order: Vec<&Digest> = Vec::new();
        for digest in layers
            .chain(configs)
            .chain(manifests)
            .chain(std::iter::once(&self.descriptor.digest))
        {
            // Foreign layers are not stored, so they have no blob to write.
            if self.blobs.contains_key(digest) && !order.contains(&digest) {
                order.push(digest);
            }
        }
        order
    }

    /// Total size of all blobs in the image.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum()
    }
}

impl Image {
    /// An image read from an OCI layout, every blob to be verified when copied or
    /// pushed (the registry checks each digest it receives).
    ///
    /// When the source holds only some of its index's platforms (`hoist pull
    /// --platform`), `subset` allows writing a new index over those; otherwise that is
    /// an error, so a push never silently drops attestations or nested indexes.
    pub fn from_layout(source: &BaseImage, subset: bool) -> Result<Image> {
        let (Some(layout), Some(top)) = (&source.layout, &source.top) else {
            return Err(Error::Location {
                input: "scratch".into(),
                reason: "scratch is a base, not an image to push".into(),
            });
        };
        let partial = source
            .index
            .as_ref()
            .is_some_and(|index| index.manifests.len() != source.platforms.len());
        if partial && subset {
            return Ok(Image::subset_of(source, layout));
        }
        if let Some(index) = source.index.as_ref().filter(|_| partial) {
            return Err(Error::Layout {
                path: layout.root().to_path_buf(),
                reason: format!(
                    "index {} lists {} entries, of which {} are platform images; attestations and nested indexes cannot be pushed yet",
                    top.digest,
                    index.manifests.len(),
                    source.platforms.len()
                ),
            });
        }
        Ok(Image::from_layout_entries(source, layout))
    }

    /// Every platform of `source` with its blobs in `layout`, under `source`'s own top
    /// descriptor.
    fn from_layout_entries(source: &BaseImage, layout: &Layout) -> Image {
        let top = source
            .top
            .as_ref()
            .expect("a layout image has a top descriptor");
        let unverified = |descriptor: &Descriptor| Blob {
            size: descriptor.size,
            source: BlobSource::Unverified(layout.blob_path(&descriptor.digest)),
        };
        let mut blobs = BTreeMap::new();
        let mut platforms = Vec::with_capacity(source.platforms.len());
        for platform in &source.platforms {
            let manifest = &platform.manifest;
            for layer in &manifest.layers {
                if layer.media_type != media::DOCKER_FOREIGN_LAYER_GZIP {
                    blobs.insert(layer.digest.clone(), unverified(layer));
                }
            }
            blobs.insert(manifest.config.digest.clone(), unverified(&manifest.config));
            blobs.insert(
                platform.descriptor.digest.clone(),
                unverified(&platform.descriptor),
            );
            let mut descriptor = platform.descriptor.clone();
            descriptor.platform = Some(platform.platform.clone());
            platforms.push(PlatformImage {
                platform: platform.platform.clone(),
                descriptor,
                manifest: manifest.clone(),
                layers: layer_reports(manifest, &platform.config, "base"),
            });
        }
        blobs.insert(top.digest.clone(), unverified(top));
        Image {
            flavour: source.flavour,
            descriptor: Descriptor::new(top.media_type.clone(), top.digest.clone(), top.size),
            index: source.index.clone(),
            platforms,
            blobs,
            name: None,
            base_origin: None,
        }
    }
}

impl Image {
    /// The platforms `source` holds under a new index of the same flavour (its
    /// annotations kept): the digest differs from the source's full index.
    fn subset_of(source: &BaseImage, layout: &Layout) -> Image {
        let mut index = source.index.clone().expect("only called for indexes");
        index.manifests = source
            .platforms
            .iter()
            .map(|p| p.descriptor.clone())
            .collect();
        let blob = to_canonical(&index).expect("an index read as JSON serialises");
        let media_type = source
            .top
            .as_ref()
            .map_or(media::OCI_INDEX, |t| t.media_type.as_str());
        let mut full = Image::from_layout_entries(source, layout);
        full.blobs.remove(&full.descriptor.digest);
        full.descriptor = Descriptor::new(media_type, blob.digest.clone(), blob.size());
        full.blobs.insert(
            blob.digest.clone(),
            Blob {
                size: blob.size(),
                source: BlobSource::Bytes(blob.bytes),
            },
        );
        full.index = Some(index);
        full
    }
}

/// Reports for a manifest's layers, diff_ids taken from its config.
pub fn layer_reports(manifest: &Manifest, config: &Value, origin: &str) -> Vec<LayerReport> {
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| LayerReport {
            digest: layer.digest.clone(),
            diff_id: diff_ids
                .get(i)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
            size: layer.size,
            media_type: layer.media_type.clone(),
            origin: origin.to_string(),
            cached: false,
        })
        .collect()
}
