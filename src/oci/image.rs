//! The image value every transport reads and writes: an index (or one manifest), each
//! platform's manifest and config, and where every blob's bytes are ([`BlobSource`]).
//! Layouts, archives and registries are opened into one (the `open` module), assembly
//! makes one from a base, and sinks and the registry push consume one, so a build, a
//! pull and a push all move the same value (go-containerregistry's shape).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hoist_layers::Digest;
use serde_json::Value;

use super::artifact::Referrer;
use super::canonical::to_canonical;
use super::media::{self, Flavour};
use super::model::{Descriptor, Index, Manifest};
use super::platform::Platform;
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
    /// A layer left in its registry (a base's, opened without `fetch_layers` as builds
    /// whose only output is a push are, or one reused from the registry): fetched into
    /// the cache at this path from [`Image::base_origin`] (or the
    /// [`Image::layer_origins`] entry holding it) only if a push must upload it.
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
    /// Whether the layer was reused from the registry (an image there recorded its
    /// key): nothing was archived or compressed.
    pub reused: bool,
}

/// One platform's image: its manifest and config.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    /// The platform (as the index entry gives it, kept verbatim in ours).
    pub platform: Platform,
    /// The index entry pointing at the manifest.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config document.
    pub config: Value,
    /// Its layers, base first.
    pub layers: Vec<LayerReport>,
}

impl PlatformImage {
    /// A platform image as read: its layers reported as `base`.
    pub fn read(
        platform: Platform,
        descriptor: Descriptor,
        manifest: Manifest,
        config: Value,
    ) -> PlatformImage {
        let layers = layer_reports(&manifest, &config, "base");
        PlatformImage {
            platform,
            descriptor,
            manifest,
            config,
            layers,
        }
    }
}

/// An image: an index (or one manifest), its platforms, and where every blob is.
#[derive(Clone, Debug)]
pub struct Image {
    /// Manifest flavour.
    pub flavour: Flavour,
    /// Descriptor of the index (or of the one manifest).
    pub descriptor: Descriptor,
    /// The index document; `None` when the image is a single manifest (`hoist push`
    /// of a layout whose tag names one manifest).
    pub index: Option<Index>,
    /// One entry per platform image, in index order (an index's attestations and
    /// nested indexes are not platforms).
    pub platforms: Vec<PlatformImage>,
    /// Every blob the index reaches (layers, configs, manifests, the index itself),
    /// keyed by digest; sinks write them in [`Image::blob_order`].
    pub blobs: BTreeMap<Digest, Blob>,
    /// Repository name from the plan.
    pub name: Option<String>,
    /// The registry repository the image (or, for a build, its base) came from: its
    /// blobs are mounted from there, and `OnDemand` ones fetched from there.
    pub base_origin: Option<BaseOrigin>,
    /// Other repositories holding some of a built image's new layers (reused from the
    /// registry: `registry::layer_source`): a push mounts or fetches them from there,
    /// as it does the base's.
    pub layer_origins: Vec<BaseOrigin>,
    /// Artifacts about the image or its platform manifests (SBOMs, provenance): written
    /// into layouts beside it and pushed as referrers after it.
    pub referrers: Vec<Referrer>,
}

/// An annotation of `index`, else of the first of `platforms`' manifests: where hoist
/// records what an image was built from (`io.hoist.*`, the OCI labels). Shared by
/// [`Image`] and the images `diff` and `verify` open.
pub fn recorded_annotation<'a>(
    index: Option<&'a Index>,
    platforms: &'a [PlatformImage],
    key: &str,
) -> Option<&'a str> {
    index
        .and_then(|index| index.annotations.as_ref()?.get(key))
        .or_else(|| platforms.first()?.manifest.annotations.as_ref()?.get(key))
        .map(String::as_str)
}

impl Image {
    /// An annotation of the index, else of the first platform's manifest: where hoist
    /// records what an image was built from (`io.hoist.*`, the OCI labels).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        recorded_annotation(self.index.as_ref(), &self.platforms, key)
    }

    /// The first platform's config labels (those with string values).
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.platforms
            .first()
            .and_then(|p| p.config.pointer("/config/Labels")?.as_object())
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

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

    /// The image as its one platform's manifest alone, without the index (a push by
    /// digest for split builds); `None` unless it holds exactly one platform.
    pub fn single_platform(&self) -> Option<Image> {
        let [platform] = self.platforms.as_slice() else {
            return None;
        };
        let mut single = self.clone();
        single.blobs.remove(&self.descriptor.digest);
        single.index = None;
        single.descriptor = Descriptor::new(
            platform.descriptor.media_type.clone(),
            platform.descriptor.digest.clone(),
            platform.descriptor.size,
        );
        Some(single)
    }

    /// Its platforms, `["linux/amd64", "linux/arm64"]`, in the index's order.
    pub fn platform_list(&self) -> Vec<String> {
        self.platforms
            .iter()
            .map(|p| p.platform.to_string())
            .collect()
    }

    /// Its platforms, `linux/amd64, linux/arm64`, for errors that list them.
    pub fn platform_names(&self) -> String {
        self.platform_list().join(", ")
    }

    /// Total size of all blobs in the image.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum()
    }
}

impl Image {
    /// An image as a transport read it: `top` (an index or manifest) and its platform
    /// images, every blob where `locate` says (a layout's file, the cache's, or left
    /// in the registry). Foreign layers have no blob.
    pub fn read(
        flavour: Flavour,
        top: Descriptor,
        index: Option<Index>,
        platforms: Vec<PlatformImage>,
        locate: impl Fn(&Digest) -> BlobSource,
        base_origin: Option<BaseOrigin>,
    ) -> Image {
        let mut blobs = BTreeMap::new();
        let mut put = |descriptor: &Descriptor| {
            blobs
                .entry(descriptor.digest.clone())
                .or_insert_with(|| Blob {
                    size: descriptor.size,
                    source: locate(&descriptor.digest),
                });
        };
        for platform in &platforms {
            let manifest = &platform.manifest;
            for layer in &manifest.layers {
                if layer.media_type != media::DOCKER_FOREIGN_LAYER_GZIP {
                    put(layer);
                }
            }
            put(&manifest.config);
            put(&platform.descriptor);
        }
        put(&top);
        Image {
            flavour,
            descriptor: top,
            index,
            platforms,
            blobs,
            name: None,
            base_origin,
            layer_origins: Vec::new(),
            referrers: Vec::new(),
        }
    }

    /// The image as a copy of it is written (`hoist push`, `hoist pull`): under its own
    /// digest, each platform's entry naming its platform. When it holds only some of
    /// its index's entries (`hoist pull --platform`), `subset` allows a new index over
    /// those; otherwise that is an error naming `source`, so a push never silently
    /// drops attestations or nested indexes.
    pub fn for_copy(&self, source: &str, subset: bool) -> Result<Image> {
        let mut copy = self.clone();
        copy.name = None;
        copy.descriptor = Descriptor::new(
            self.descriptor.media_type.clone(),
            self.descriptor.digest.clone(),
            self.descriptor.size,
        );
        for platform in &mut copy.platforms {
            platform.descriptor.platform = Some(platform.platform.clone());
        }
        let partial = self
            .index
            .as_ref()
            .is_some_and(|index| index.manifests.len() != self.platforms.len());
        if !partial {
            return Ok(copy);
        }
        if !subset {
            return Err(Error::Location {
                input: source.to_string(),
                reason: format!(
                    "index {} lists {} entries, of which {} are platform images; attestations and nested indexes cannot be pushed yet",
                    self.descriptor.digest,
                    self.index.as_ref().map_or(0, |i| i.manifests.len()),
                    self.platforms.len()
                ),
            });
        }
        // The platforms held, under a new index of the same flavour (its annotations
        // kept): the digest differs from the source's full index.
        let mut index = self.index.clone().expect("partial means an index");
        index.manifests = self
            .platforms
            .iter()
            .map(|p| p.descriptor.clone())
            .collect();
        let blob = to_canonical(&index).expect("an index read as JSON serialises");
        copy.blobs.remove(&copy.descriptor.digest);
        copy.descriptor = Descriptor::new(
            self.descriptor.media_type.clone(),
            blob.digest.clone(),
            blob.size(),
        );
        copy.blobs.insert(
            blob.digest.clone(),
            Blob {
                size: blob.size(),
                source: BlobSource::Bytes(blob.bytes),
            },
        );
        copy.index = Some(index);
        // Artifacts about the source's full index are not about this one.
        let top = copy.descriptor.digest.clone();
        let kept: BTreeSet<Digest> = copy
            .platforms
            .iter()
            .map(|p| p.descriptor.digest.clone())
            .chain(std::iter::once(top))
            .collect();
        copy.referrers.retain(|r| kept.contains(&r.subject.digest));
        Ok(copy)
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
            reused: false,
        })
        .collect()
}
