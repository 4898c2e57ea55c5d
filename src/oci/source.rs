//! An image as read from a transport: the documents (index or manifest, each
//! platform's manifest and config), every one verified against its digest, and where
//! the blobs are (a layout's `blobs/`, or a registry with a cache). `scratch` is an
//! image with no platforms: [`BaseImage::select`] makes an empty one per platform.

use std::path::PathBuf;

use hoist_layers::Digest;
use serde_json::{Value, json};

use super::layout::Layout;
use super::location::Selector;
use super::media::{self, Flavour};
use super::model::{Descriptor, Index, Manifest};
use super::platform::{Platform, platform_of_config};
use crate::error::{Error, Result};

/// One platform's image inside the base.
#[derive(Clone, Debug)]
pub struct BasePlatform {
    /// The platform as the base's index entry gives it (kept verbatim in our index).
    pub platform: Platform,
    /// Descriptor of the manifest for this platform (its index entry).
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config document.
    pub config: Value,
}

/// A resolved base image.
#[derive(Clone, Debug)]
pub struct BaseImage {
    /// Manifest flavour of the base.
    pub flavour: Flavour,
    /// Digest of what the base reference points at (index or manifest); `None` for scratch.
    pub digest: Option<Digest>,
    /// Every platform the base has, in its index order.
    pub platforms: Vec<BasePlatform>,
    /// Where base layer blobs are read from; `None` for scratch.
    pub layout: Option<Layout>,
    /// The entry the reference resolved to; `None` for scratch.
    pub top: Option<Descriptor>,
    /// The index, when the reference names one.
    pub index: Option<Index>,
    /// The registry repository the base came from: its blobs can be mounted, not
    /// uploaded, when pushing to another repository of the same registry.
    pub repository: Option<oci_spec::distribution::Reference>,
}

impl BaseImage {
    /// The scratch image: no platforms until [`BaseImage::select`] makes them.
    pub fn scratch() -> BaseImage {
        BaseImage {
            flavour: Flavour::Oci,
            digest: None,
            platforms: Vec::new(),
            layout: None,
            top: None,
            index: None,
            repository: None,
        }
    }

    /// The base's image for each requested platform (all of them when `wanted` is
    /// `None`); for scratch, an empty image per platform (default: the host's).
    pub fn select(
        &self,
        wanted: Option<&[Platform]>,
        base_name: &str,
    ) -> Result<Vec<BasePlatform>> {
        if self.layout.is_none() {
            let platforms = wanted.map_or_else(|| vec![Platform::host()], <[Platform]>::to_vec);
            return Ok(platforms.into_iter().map(scratch_platform).collect());
        }
        let Some(wanted) = wanted else {
            return Ok(self.platforms.clone());
        };
        wanted
            .iter()
            .map(|want| {
                self.platforms
                    .iter()
                    .find(|p| p.platform.satisfies(want))
                    .cloned()
                    .ok_or_else(|| Error::PlatformMissing {
                        base: base_name.to_string(),
                        platform: want.to_string(),
                        available: self
                            .platforms
                            .iter()
                            .map(|p| p.platform.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            })
            .collect()
    }
}

fn scratch_platform(platform: Platform) -> BasePlatform {
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = json!(variant);
    }
    BasePlatform {
        platform,
        descriptor: Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b""), 0),
        manifest: Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, Digest::sha256_of(b""), 0),
            layers: Vec::new(),
            annotations: None,
            extra: std::collections::BTreeMap::new(),
        },
        config,
    }
}

/// The image `selector` names in `layout`, every document read verified.
pub fn load_layout(layout: Layout, selector: &Selector) -> Result<BaseImage> {
    let top = layout.resolve(selector)?;
    let fail = |reason: String| Error::Layout {
        path: layout.root().to_path_buf(),
        reason,
    };
    let mut platforms = Vec::new();
    let flavour;
    let mut top_index = None;
    if media::is_index(&top.media_type) {
        let index: Index = layout.read_json(&top, "index")?;
        index
            .check_media_type(&top.media_type)
            .map_err(|reason| fail(format!("index {}: {reason}", top.digest)))?;
        flavour = Flavour::of(&top.media_type).unwrap_or(Flavour::Oci);
        for entry in &index.manifests {
            if !media::is_manifest(&entry.media_type) {
                continue; // nested indexes and artifacts are not images we can build on
            }
            let Some(platform) = entry.platform.clone() else {
                continue;
            };
            // Attestation manifests (buildx provenance) are listed as unknown/unknown.
            if platform.os == "unknown" || platform.architecture == "unknown" {
                continue;
            }
            platforms.push(load_platform(&layout, entry, Some(platform))?);
        }
        if platforms.is_empty() {
            return Err(fail(format!(
                "index {} lists no platform images",
                top.digest
            )));
        }
        top_index = Some(index);
    } else if media::is_manifest(&top.media_type) {
        flavour = Flavour::of(&top.media_type).unwrap_or(Flavour::Oci);
        platforms.push(load_platform(&layout, &top, top.platform.clone())?);
    } else {
        return Err(fail(format!(
            "{selector} is a {} ({}), not an image index or manifest",
            top.media_type, top.digest
        )));
    }
    Ok(BaseImage {
        flavour,
        digest: Some(top.digest.clone()),
        platforms,
        layout: Some(layout),
        top: Some(top),
        index: top_index,
        repository: None,
    })
}

fn load_platform(
    layout: &Layout,
    entry: &Descriptor,
    platform: Option<Platform>,
) -> Result<BasePlatform> {
    let manifest: Manifest = layout.read_json(entry, "manifest")?;
    manifest
        .check_media_types(&entry.media_type)
        .map_err(|reason| Error::Layout {
            path: layout.root().to_path_buf(),
            reason: format!("manifest {}: {reason}", entry.digest),
        })?;
    let config: Value = layout.read_json(&manifest.config, "config")?;
    for layer in &manifest.layers {
        // Foreign layers (Windows bases) are fetched from their URLs by runtimes, not stored.
        if layer.media_type != media::DOCKER_FOREIGN_LAYER_GZIP {
            layout.check_present(layer)?;
        }
    }
    let platform = match platform {
        Some(platform) => platform,
        None => platform_of_config(&config).ok_or_else(|| Error::Layout {
            path: layout.root().to_path_buf(),
            reason: format!("config {} names no os/architecture", manifest.config.digest),
        })?,
    };
    Ok(BasePlatform {
        platform,
        descriptor: entry.clone(),
        manifest,
        config,
    })
}

/// Where a base layer's blob is, for sinks to copy (and verify) it.
pub fn base_blob_path(base: &BaseImage, digest: &Digest) -> Option<PathBuf> {
    base.layout.as_ref().map(|layout| layout.blob_path(digest))
}
