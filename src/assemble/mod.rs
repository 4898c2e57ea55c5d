//! Assembly: base image + new layers + config edits → one manifest per platform → an
//! index. Pure data in, an [`Image`] value out; writing it anywhere is the sinks' job
//! (`crate::publish`), so one build can go to a layout, an archive or (later) a registry.
//!
//! A layer identical across platforms is built once and shared by every manifest: its
//! bytes do not depend on the platform, only on its sources and settings.

pub mod base;
pub mod config_edit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hoist_layers::{BlobStore, BuildOptions, BuiltLayer, Digest, Progress};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::oci::canonical::{JsonBlob, to_canonical};
use crate::oci::layout::Layout;
use crate::oci::media::{self, Flavour};
use crate::oci::model::{
    Annotations, BASE_DIGEST, BASE_NAME, Descriptor, HOIST_COMPRESSION, HOIST_COMPRESSION_LEVEL,
    HOIST_SOURCE_DATE_EPOCH, HOIST_VERSION, Index, Manifest,
};
use crate::oci::platform::Platform;
use crate::plan::{Format, Plan};
use base::{BaseImage, BasePlatform};

/// Where a blob's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobSource {
    /// A file we wrote and hashed ourselves (the layer store).
    Trusted(PathBuf),
    /// A file from elsewhere (a base layout): verified against its digest when copied.
    Unverified(PathBuf),
    /// A document held in memory (configs, manifests, the index).
    Bytes(Vec<u8>),
    /// A base layer left in its registry (see
    /// [`RegistryOptions::base_layers_on_demand`](crate::registry::client::RegistryOptions)):
    /// fetched into the cache at this path from [`Image::base_origin`] only if a push
    /// must upload it.
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

/// Reports assembly progress to the user interface.
pub trait Observer: Sync {
    /// A layer build is starting; returns its byte progress sink.
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_>;
    /// A layer is done.
    fn layer_finished(&self, label: &str, layer: &BuiltLayer);
}

/// An observer that reports nothing.
pub struct Silent;

impl Observer for Silent {
    fn layer_started(&self, _label: &str) -> Box<dyn Progress + '_> {
        Box::new(hoist_layers::NoProgress)
    }
    fn layer_finished(&self, _label: &str, _layer: &BuiltLayer) {}
}

/// Builds the image a plan describes. New layers go into `store`; `scratch_dir` is a
/// private temporary directory (for unpacking archive bases).
pub fn assemble(
    plan: &Plan,
    store: &BlobStore,
    options: &BuildOptions,
    registry: &crate::registry::transport::Transport,
    scratch_dir: &Path,
    observer: &dyn Observer,
) -> Result<Image> {
    let fetch = base::Fetch {
        store,
        transport: registry,
        platforms: plan.platforms.as_deref(),
    };
    let base = BaseImage::load(&plan.base, scratch_dir, Some(&fetch))?;
    let selected = base.select(plan.platforms.as_deref(), &plan.base_name)?;
    let flavour = match plan.format {
        Format::Keep => base.flavour,
        Format::Oci => Flavour::Oci,
    };
    if flavour.layer(plan.compression.media_type()).is_none() {
        return Err(Error::InvalidValue {
            field: "compression".into(),
            message: format!(
                "the base {} uses Docker media types, which have no {} layers; pass --format oci",
                plan.base_name,
                plan.compression.media_type()
            ),
        });
    }

    check_layer_platforms(plan, &base)?;

    // Build each layer once, and only if some selected platform uses it.
    let uses = |layer: &crate::plan::PlannedLayer, platform: &Platform| {
        layer
            .platforms
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| platform.satisfies(p)))
    };
    let mut built: Vec<Option<BuiltLayer>> = Vec::with_capacity(plan.layers.len());
    for layer in &plan.layers {
        if selected.iter().any(|p| uses(layer, &p.platform)) {
            let progress = observer.layer_started(&layer.label);
            let result = hoist_layers::build_layer(&layer.spec, store, options, progress.as_ref())?;
            drop(progress);
            observer.layer_finished(&layer.label, &result);
            built.push(Some(result));
        } else {
            built.push(None);
        }
    }

    let created = rfc3339(plan.epoch);
    let mut blobs: BTreeMap<Digest, Blob> = BTreeMap::new();
    let mut platforms = Vec::with_capacity(selected.len());
    for base_platform in &selected {
        let new_layers: Vec<(&crate::plan::PlannedLayer, &BuiltLayer)> = plan
            .layers
            .iter()
            .zip(&built)
            .filter(|(layer, _)| uses(layer, &base_platform.platform))
            .filter_map(|(layer, b)| b.as_ref().map(|b| (layer, b)))
            .collect();
        let image = platform_image(
            plan,
            &base,
            base_platform,
            flavour,
            &new_layers,
            &created,
            store,
            &mut blobs,
        )?;
        platforms.push(image);
    }

    let mut index = Index::new(Some(flavour.index()));
    index.manifests = platforms.iter().map(|p| p.descriptor.clone()).collect();
    if flavour == Flavour::Oci {
        index.annotations = Some(annotations(plan, base.digest.as_ref()));
    }
    let index_blob = json_blob(&index, "index")?;
    let descriptor = Descriptor::new(
        flavour.index(),
        index_blob.digest.clone(),
        index_blob.size(),
    );
    insert_bytes(&mut blobs, index_blob);
    let base_origin = base.repository.clone().map(|repository| BaseOrigin {
        repository,
        layers: selected
            .iter()
            .flat_map(|p| p.manifest.layers.iter().map(|l| l.digest.clone()))
            .collect(),
        cache: store.root().to_path_buf(),
    });
    Ok(Image {
        flavour,
        descriptor,
        index: Some(index),
        platforms,
        blobs,
        name: plan.name.clone(),
        base_origin,
    })
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
fn layer_reports(manifest: &Manifest, config: &Value, origin: &str) -> Vec<LayerReport> {
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

#[allow(clippy::too_many_arguments)]
fn platform_image(
    plan: &Plan,
    base: &BaseImage,
    base_platform: &BasePlatform,
    flavour: Flavour,
    new_layers: &[(&crate::plan::PlannedLayer, &BuiltLayer)],
    created: &str,
    store: &BlobStore,
    blobs: &mut BTreeMap<Digest, Blob>,
) -> Result<PlatformImage> {
    let mut config = base_platform.config.clone();
    plan.config_edits.apply(&mut config);
    {
        let root = config.as_object_mut().ok_or_else(|| Error::Layout {
            path: base
                .layout
                .as_ref()
                .map(|l| l.root().to_path_buf())
                .unwrap_or_default(),
            reason: format!(
                "config of {} is not a JSON object",
                base_platform.descriptor.digest
            ),
        })?;
        root.insert("created".into(), json!(created));
        let rootfs = root
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        let diff_ids = rootfs
            .as_object_mut()
            .map(|r| r.entry("diff_ids").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut);
        if let Some(diff_ids) = diff_ids {
            diff_ids.extend(new_layers.iter().map(|(_, b)| json!(b.diff_id.to_string())));
        }
        let history = root.entry("history").or_insert_with(|| json!([]));
        if let Some(history) = history.as_array_mut() {
            history.extend(new_layers.iter().map(|(layer, _)| {
                json!({
                    "created": created,
                    "created_by": format!("hoist: {} → {}", layer.label, layer.spec.dest),
                    "comment": "hoist",
                })
            }));
        }
    }
    let config_blob = json_blob(&config, "config")?;

    let mut layers = Vec::new();
    let mut reports = layer_reports(&base_platform.manifest, &base_platform.config, "base");
    for (layer, report) in base_platform.manifest.layers.iter().zip(&mut reports) {
        let mut descriptor = layer.clone();
        if flavour == Flavour::Oci {
            descriptor.media_type = media::to_oci(&layer.media_type).to_string();
            report.media_type.clone_from(&descriptor.media_type);
        }
        if layer.media_type != media::DOCKER_FOREIGN_LAYER_GZIP
            && let Some(path) = base::base_blob_path(base, &layer.digest)
        {
            // Not in the cache of a registry base: left in the registry, fetched
            // only if a push has to upload it.
            let source = if base.repository.is_some() && !path.exists() {
                BlobSource::OnDemand(path)
            } else {
                BlobSource::Unverified(path)
            };
            blobs.entry(layer.digest.clone()).or_insert(Blob {
                size: layer.size,
                source,
            });
        }
        layers.push(descriptor);
    }
    for (layer, built) in new_layers {
        let media_type = flavour
            .layer(&built.media_type)
            .expect("checked before building")
            .to_string();
        blobs.entry(built.digest.clone()).or_insert(Blob {
            size: built.size,
            source: BlobSource::Trusted(store.path(&built.digest)),
        });
        reports.push(LayerReport {
            digest: built.digest.clone(),
            diff_id: Some(built.diff_id.clone()),
            size: built.size,
            media_type: media_type.clone(),
            origin: layer.label.clone(),
            cached: built.from_cache,
        });
        layers.push(Descriptor::new(
            media_type,
            built.digest.clone(),
            built.size,
        ));
    }

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(flavour.manifest().to_string()),
        config: Descriptor::new(
            flavour.config(),
            config_blob.digest.clone(),
            config_blob.size(),
        ),
        layers,
        annotations: if flavour == Flavour::Oci {
            let base_digest = base
                .digest
                .as_ref()
                .map(|_| &base_platform.descriptor.digest);
            Some(annotations(plan, base_digest))
        } else {
            None
        },
        extra: BTreeMap::new(),
    };
    insert_bytes(blobs, config_blob);
    let manifest_blob = json_blob(&manifest, "manifest")?;
    let mut descriptor = Descriptor::new(
        flavour.manifest(),
        manifest_blob.digest.clone(),
        manifest_blob.size(),
    );
    descriptor.platform = Some(base_platform.platform.clone());
    insert_bytes(blobs, manifest_blob);
    Ok(PlatformImage {
        platform: base_platform.platform.clone(),
        descriptor,
        manifest,
        layers: reports,
    })
}

/// A layer limited to a platform the base does not have is a typo that would silently
/// build a different image. (Against the base, not the platforms being built: narrowing
/// a build with `--platform` legitimately leaves some layers unused. Scratch has no
/// platform list to check against.)
fn check_layer_platforms(plan: &Plan, base: &BaseImage) -> Result<()> {
    if base.layout.is_none() {
        return Ok(());
    }
    for (i, layer) in plan.layers.iter().enumerate() {
        for wanted in layer.platforms.iter().flatten() {
            if !base.platforms.iter().any(|p| p.platform.satisfies(wanted)) {
                return Err(Error::InvalidValue {
                    field: format!("layer[{}].platform", i + 1),
                    message: format!(
                        "the base {} has no platform {wanted} (it has: {})",
                        plan.base_name,
                        base.platforms
                            .iter()
                            .map(|p| p.platform.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The user's annotations plus the base image's name and digest (a scratch image has
/// no base to name), plus every other input `hoist verify` needs to rebuild the image
/// (docs/reproducibility.md): hoist's version, the compression and the epoch.
///
/// Recording the version makes the digest change with every hoist release, even when
/// the bytes of layers and configs do not: deliberate, since a verifier must know which
/// hoist to rebuild with.
fn annotations(plan: &Plan, base_digest: Option<&Digest>) -> Annotations {
    let mut map: Annotations = plan.annotations.clone();
    if let Some(digest) = base_digest {
        map.entry(BASE_NAME.into())
            .or_insert_with(|| plan.base_name.clone());
        map.entry(BASE_DIGEST.into())
            .or_insert_with(|| digest.to_string());
    }
    let (kind, level) = match plan.compression {
        hoist_layers::Compression::Gzip { level } => ("gzip", i64::from(level)),
        hoist_layers::Compression::Zstd { level } => ("zstd", i64::from(level)),
    };
    for (key, value) in [
        (HOIST_VERSION, env!("CARGO_PKG_VERSION").to_string()),
        (HOIST_COMPRESSION, kind.to_string()),
        (HOIST_COMPRESSION_LEVEL, level.to_string()),
        (HOIST_SOURCE_DATE_EPOCH, plan.epoch.to_string()),
    ] {
        map.entry(key.into()).or_insert(value);
    }
    map
}

fn json_blob<T: serde::Serialize>(value: &T, what: &str) -> Result<JsonBlob> {
    to_canonical(value).map_err(|e| Error::InvalidValue {
        field: what.to_string(),
        message: format!("cannot be serialised: {e}"),
    })
}

fn insert_bytes(blobs: &mut BTreeMap<Digest, Blob>, blob: JsonBlob) {
    let size = blob.size();
    blobs.entry(blob.digest).or_insert(Blob {
        size,
        source: BlobSource::Bytes(blob.bytes),
    });
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp (`1970-01-01T00:00:00Z`).
pub fn rfc3339(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let rem = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_epochs_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
