//! Reading an OCI layout into an [`Image`] (every document verified against its
//! digest, blobs left in the layout's `blobs/`), and choosing a base's platforms;
//! `scratch` has no image: [`select_platforms`] makes an empty one per platform.

use hoist_layers::Digest;
use serde_json::{Value, json};

use super::artifact::{ArtifactManifest, Referrer, artifact_type_of};
use super::image::{BlobSource, Image, PlatformImage};
use super::layout::Layout;
use super::location::Selector;
use super::media::{self, Flavour};
use super::model::{Descriptor, Index, Manifest};
use super::platform::{Platform, platform_of_config};
use crate::error::{Error, Result};

/// The base's image for each requested platform (all of them when `wanted` is `None`);
/// for scratch (`None`), an empty image per platform (default: the host's).
pub fn select_platforms(
    base: Option<&Image>,
    wanted: Option<&[Platform]>,
    base_name: &str,
) -> Result<Vec<PlatformImage>> {
    let Some(base) = base else {
        let platforms = wanted.map_or_else(|| vec![Platform::host()], <[Platform]>::to_vec);
        return Ok(platforms.into_iter().map(scratch_platform).collect());
    };
    let Some(wanted) = wanted else {
        return Ok(base.platforms.clone());
    };
    wanted
        .iter()
        .map(|want| {
            base.platforms
                .iter()
                .find(|p| p.platform.satisfies(want))
                .cloned()
                .ok_or_else(|| Error::PlatformMissing {
                    base: base_name.to_string(),
                    platform: want.to_string(),
                    available: base.platform_names(),
                })
        })
        .collect()
}
fn scratch_platform(platform: Platform) -> PlatformImage {
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
    PlatformImage {
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
        layers: Vec::new(),
    }
}

/// The image `selector` names in `layout`, every document read verified.
pub fn load_layout(layout: &Layout, selector: &Selector) -> Result<Image> {
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
            platforms.push(load_platform(layout, entry, Some(platform))?);
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
        platforms.push(load_platform(layout, &top, top.platform.clone())?);
    } else {
        return Err(fail(format!(
            "{selector} is a {} ({}), not an image index or manifest",
            top.media_type, top.digest
        )));
    }
    let locate = |digest: &Digest| BlobSource::Unverified(layout.blob_path(digest));
    let mut image = Image::read(flavour, top, top_index, platforms, locate, None);
    image.referrers = layout_referrers(layout, &image)?;
    Ok(image)
}

/// The artifacts `index.json` lists whose subject is the image or one of its platform
/// manifests (as hoist and oras write them), documents verified.
fn layout_referrers(layout: &Layout, image: &Image) -> Result<Vec<Referrer>> {
    let subjects: Vec<&Descriptor> = image
        .platforms
        .iter()
        .map(|p| &p.descriptor)
        .chain(std::iter::once(&image.descriptor))
        .collect();
    let mut referrers = Vec::new();
    for entry in layout.index()?.manifests {
        if artifact_type_of(&entry).is_none() || !media::is_manifest(&entry.media_type) {
            continue;
        }
        let manifest_bytes = layout.read_verified(&entry)?;
        let manifest: ArtifactManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| Error::Json {
                what: "artifact manifest",
                digest: entry.digest.clone(),
                path: layout.blob_path(&entry.digest),
                source,
            })?;
        let (Some(subject), Some(layer)) = (&manifest.subject, manifest.layers.first()) else {
            continue;
        };
        let Some(subject) = subjects.iter().find(|s| s.digest == subject.digest) else {
            continue;
        };
        let document = layout.read_verified(layer)?;
        referrers.push(Referrer {
            descriptor: entry.clone(),
            manifest: manifest_bytes,
            layer: layer.clone(),
            document,
            subject: Descriptor::new(
                subject.media_type.clone(),
                subject.digest.clone(),
                subject.size,
            ),
        });
    }
    Ok(referrers)
}

fn load_platform(
    layout: &Layout,
    entry: &Descriptor,
    platform: Option<Platform>,
) -> Result<PlatformImage> {
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
    Ok(PlatformImage::read(
        platform,
        entry.clone(),
        manifest,
        config,
    ))
}
