//! Assembly: base image + new layers + config edits → one manifest per platform → an
//! index. Pure data in, an [`Image`] value out; writing it anywhere is the sinks' job
//! (`crate::publish`), so one build can go to a layout, an archive or (later) a registry.
//!
//! A layer identical across platforms is built once and shared by every manifest: its
//! bytes do not depend on the platform, only on its sources and settings.

use std::collections::BTreeMap;

use hoist_layers::{
    BlobStore, BuildOptions, BuiltLayer, Digest, EntryObserver, KnownLayers, LayerGate, NoGate,
    NoKnownLayers, NoObserver, Progress,
};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::oci::canonical::{JsonBlob, rfc3339, to_canonical};
use crate::oci::image::{BaseOrigin, Blob, BlobSource, Image, LayerReport, PlatformImage};
use crate::oci::media::{self, Flavour};
use crate::oci::model::{
    Annotations, BASE_DIGEST, BASE_INDEX_DIGEST, BASE_NAME, Descriptor, HOIST_COMPRESSION,
    HOIST_COMPRESSION_LEVEL, HOIST_PLATFORM, HOIST_SOURCE_DATE_EPOCH, HOIST_VERSION, Index,
    LAYER_KEY, Manifest, index_annotations,
};
use crate::oci::platform::{Platform, platform_of_config};
use crate::oci::source::select_platforms;
use crate::plan::{Format, Plan, PlannedLayer};
/// Reports assembly progress to the user interface.
pub trait Observer: Sync {
    /// A layer build is starting (`label` is its title, `layer 2 (config → /etc/app)`,
    /// numbered by its position in the image as `hoist inspect` shows it); returns its
    /// byte progress sink.
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_>;
    /// A layer is done.
    fn layer_finished(&self, label: &str, layer: &BuiltLayer);
    /// What watches the entries of the layer about to be built while they are written
    /// (the SBOM's facts of new layers); none by default.
    fn layer_entries(&self) -> Option<Box<dyn EntryObserver + '_>> {
        None
    }
}

/// An observer that reports nothing.
pub struct Silent;

impl Observer for Silent {
    fn layer_started(&self, _label: &str) -> Box<dyn Progress + '_> {
        Box::new(hoist_layers::NoProgress)
    }
    fn layer_finished(&self, _label: &str, _layer: &BuiltLayer) {}
}

/// Builds the image a plan describes onto `base` (opened by the caller through
/// [`crate::open::open`]). New layers go into `store`.
pub fn assemble(
    plan: &Plan,
    base: Option<&Image>,
    store: &BlobStore,
    options: &BuildOptions,
    observer: &dyn Observer,
) -> Result<Image> {
    assemble_reusing(
        plan,
        base,
        store,
        options,
        observer,
        (&NoKnownLayers, &NoGate),
    )
}

/// [`assemble`], with layers `known` holds under their key taken from there instead of
/// built (`hoist_layers::build_layer_observed`): their blobs are `OnDemand`, left where
/// they are until a push needs their bytes. `gate` makes builds running at once build
/// a layer they share once.
pub fn assemble_reusing(
    plan: &Plan,
    base: Option<&Image>,
    store: &BlobStore,
    options: &BuildOptions,
    observer: &dyn Observer,
    reuse: (&dyn KnownLayers, &dyn LayerGate),
) -> Result<Image> {
    let selected = select_platforms(base, plan.platforms.as_deref(), &plan.base_name)?;
    let flavour = match plan.format {
        Format::Keep => base.map_or(Flavour::Oci, |b| b.flavour),
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

    check_layer_platforms(plan, base, &selected)?;
    let built = build_layers(plan, &selected, store, options, observer, reuse)?;

    let created = rfc3339(plan.epoch);
    let mut blobs: BTreeMap<Digest, Blob> = BTreeMap::new();
    let mut platforms = Vec::with_capacity(selected.len());
    for base_platform in &selected {
        let new_layers: Vec<(&PlannedLayer, &BuiltLayer)> = plan
            .layers
            .iter()
            .zip(&built)
            .filter(|(layer, _)| uses(layer, &base_platform.platform))
            .filter_map(|(layer, b)| b.as_ref().map(|b| (layer, b)))
            .collect();
        let target = Target {
            plan,
            base,
            flavour,
            created: &created,
            store,
        };
        platforms.push(target.platform_image(base_platform, &new_layers, &mut blobs)?);
    }
    index_image(plan, base, &selected, flavour, platforms, blobs)
}

/// Whether a layer goes into a platform's image (`platform = [...]` limits it).
fn uses(layer: &PlannedLayer, platform: &Platform) -> bool {
    layer
        .platforms
        .as_ref()
        .is_none_or(|list| list.iter().any(|p| platform.satisfies(p)))
}

/// What progress lines and errors call planned layer `i`: `layer N (summary)`, N its
/// 1-based position in the image, base layers first, as `hoist inspect` and `hoist
/// diff` number layers. A layer only some platforms take says which (`layer 3 in
/// linux/arm64 (…)`), each with its position where they differ.
fn title(plan: &Plan, i: usize, selected: &[PlatformImage]) -> String {
    let layer = &plan.layers[i];
    let positions: Vec<(usize, &Platform)> = selected
        .iter()
        .filter(|p| uses(layer, &p.platform))
        .map(|p| {
            let before = plan.layers[..i]
                .iter()
                .filter(|l| uses(l, &p.platform))
                .count();
            (p.manifest.layers.len() + before + 1, &p.platform)
        })
        .collect();
    let first = positions.first().map_or(i + 1, |(n, _)| *n);
    let same = positions.iter().all(|(n, _)| *n == first);
    let place = match (same, layer.platforms.is_some()) {
        (true, false) => format!("layer {first}"),
        (true, true) => format!(
            "layer {first} in {}",
            positions
                .iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (false, _) => format!(
            "layer {}",
            positions
                .iter()
                .map(|(n, p)| format!("{n} in {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{place} ({})", layer.summary)
}

/// Builds each layer once, and only if some selected platform uses it; `None` for a
/// layer no selected platform takes.
fn build_layers(
    plan: &Plan,
    selected: &[PlatformImage],
    store: &BlobStore,
    options: &BuildOptions,
    observer: &dyn Observer,
    reuse: (&dyn KnownLayers, &dyn LayerGate),
) -> Result<Vec<Option<BuiltLayer>>> {
    let mut built = Vec::with_capacity(plan.layers.len());
    for (i, layer) in plan.layers.iter().enumerate() {
        if selected.iter().any(|p| uses(layer, &p.platform)) {
            let title = title(plan, i, selected);
            let progress = observer.layer_started(&title);
            let mut entries = observer.layer_entries();
            let result = hoist_layers::build_layer_observed(
                &layer.spec,
                store,
                options,
                progress.as_ref(),
                reuse,
                entries.as_deref_mut().unwrap_or(&mut NoObserver),
            )
            .map_err(|source| Error::BuildLayer {
                layer: title.clone(),
                source: Box::new(source),
            })?;
            drop((progress, entries));
            observer.layer_finished(&title, &result);
            built.push(Some(result));
        } else {
            built.push(None);
        }
    }
    Ok(built)
}

/// The index over the platform images, and the image value naming every blob.
fn index_image(
    plan: &Plan,
    base: Option<&Image>,
    selected: &[PlatformImage],
    flavour: Flavour,
    platforms: Vec<PlatformImage>,
    mut blobs: BTreeMap<Digest, Blob>,
) -> Result<Image> {
    let mut index = Index::new(Some(flavour.index()));
    index.manifests = platforms.iter().map(|p| p.descriptor.clone()).collect();
    // The manifests' shared annotations, the base index's digest as the base: what
    // `hoist index create` derives from the same manifests (split builds).
    index.annotations =
        index_annotations(platforms.iter().map(|p| p.manifest.annotations.as_ref()));
    let index_blob = json_blob(&index, "index")?;
    let descriptor = Descriptor::new(
        flavour.index(),
        index_blob.digest.clone(),
        index_blob.size(),
    );
    insert_bytes(&mut blobs, index_blob);
    // The layers of the selected platforms are what a push may mount from the base.
    let base_origin = base
        .and_then(|b| b.base_origin.as_ref())
        .map(|origin| BaseOrigin {
            repository: origin.repository.clone(),
            layers: selected
                .iter()
                .flat_map(|p| p.manifest.layers.iter().map(|l| l.digest.clone()))
                .collect(),
            cache: origin.cache.clone(),
        });
    Ok(Image {
        flavour,
        descriptor,
        index: Some(index),
        platforms,
        blobs,
        name: plan.names.first().cloned(),
        base_origin,
        layer_origins: Vec::new(),
        referrers: Vec::new(),
    })
}

/// What every platform image of one build shares.
struct Target<'a> {
    plan: &'a Plan,
    base: Option<&'a Image>,
    flavour: Flavour,
    created: &'a str,
    store: &'a BlobStore,
}

impl Target<'_> {
    /// One platform's image: the base's layers, then the new ones, under an edited
    /// config; every blob it names is added to `blobs`.
    fn platform_image(
        &self,
        base_platform: &PlatformImage,
        new_layers: &[(&PlannedLayer, &BuiltLayer)],
        blobs: &mut BTreeMap<Digest, Blob>,
    ) -> Result<PlatformImage> {
        let config = self.edited_config(base_platform, new_layers)?;
        let config_blob = json_blob(&config, "config")?;
        let (layers, reports) = self.layers(base_platform, new_layers, blobs);
        let flavour = self.flavour;
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
                Some(self.manifest_annotations(base_platform, &config)?)
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
            config,
            layers: reports,
        })
    }

    /// A platform manifest's annotations: the plan's, its base manifest as the base,
    /// and the base's index (when there is one) for the image's index to name.
    fn manifest_annotations(
        &self,
        base_platform: &PlatformImage,
        config: &serde_json::Value,
    ) -> Result<Annotations> {
        let base_digest = self.base.map(|_| &base_platform.descriptor.digest);
        let mut map = annotations(self.plan, base_digest);
        // The index entry keeps the base's platform verbatim; where the config (all a
        // split build's merge can read) would give another one, the manifest says which.
        if platform_of_config(config).as_ref() != Some(&base_platform.platform) {
            let platform = json_blob(&base_platform.platform, "platform")?;
            map.insert(
                HOIST_PLATFORM.to_string(),
                String::from_utf8_lossy(&platform.bytes).into_owned(),
            );
        }
        if let Some(base) = self.base
            && base.descriptor.digest != base_platform.descriptor.digest
            && !self.plan.annotations.contains_key(BASE_DIGEST)
        {
            map.insert(
                BASE_INDEX_DIGEST.to_string(),
                base.descriptor.digest.to_string(),
            );
        }
        Ok(map)
    }

    /// The base's config with the plan's edits, `created`, and the new layers'
    /// diff_ids and history entries.
    fn edited_config(
        &self,
        base_platform: &PlatformImage,
        new_layers: &[(&PlannedLayer, &BuiltLayer)],
    ) -> Result<Value> {
        let created = self.created;
        let mut config = base_platform.config.clone();
        self.plan.config_edits.apply(&mut config);
        let root = config.as_object_mut().ok_or_else(|| Error::Location {
            input: self.plan.base_name.clone(),
            reason: format!(
                "the config of {} is not a JSON object",
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
                    "created_by": layer.created_by,
                    "comment": "hoist",
                })
            }));
        }
        Ok(config)
    }

    /// The manifest's layer descriptors and their reports: the base's (retyped to OCI
    /// when converting), then the new ones; each blob recorded in `blobs`.
    fn layers(
        &self,
        base_platform: &PlatformImage,
        new_layers: &[(&PlannedLayer, &BuiltLayer)],
        blobs: &mut BTreeMap<Digest, Blob>,
    ) -> (Vec<Descriptor>, Vec<LayerReport>) {
        let mut layers = Vec::new();
        let mut reports = base_platform.layers.clone();
        for (layer, report) in base_platform.manifest.layers.iter().zip(&mut reports) {
            let mut descriptor = layer.clone();
            if self.flavour == Flavour::Oci {
                descriptor.media_type = media::to_oci(&layer.media_type).to_string();
                report.media_type.clone_from(&descriptor.media_type);
            }
            // The blob where the base has it (foreign layers have none).
            if let Some(blob) = self.base.and_then(|b| b.blobs.get(&layer.digest)) {
                blobs
                    .entry(layer.digest.clone())
                    .or_insert_with(|| blob.clone());
            }
            layers.push(descriptor);
        }
        for (layer, built) in new_layers {
            let media_type = self
                .flavour
                .layer(&built.media_type)
                .expect("checked before building")
                .to_string();
            let path = self.store.path(&built.digest);
            blobs.entry(built.digest.clone()).or_insert(Blob {
                size: built.size,
                // A layer reused from a registry stays there until a push needs it.
                source: if built.known {
                    BlobSource::OnDemand(path)
                } else {
                    BlobSource::Trusted(path)
                },
            });
            reports.push(LayerReport {
                digest: built.digest.clone(),
                diff_id: Some(built.diff_id.clone()),
                size: built.size,
                media_type: media_type.clone(),
                origin: layer.label.clone(),
                cached: built.from_cache,
                reused: built.known,
            });
            let mut descriptor = Descriptor::new(media_type, built.digest.clone(), built.size);
            if self.flavour == Flavour::Oci {
                descriptor.annotations = Some(Annotations::from([(
                    LAYER_KEY.into(),
                    built.key.to_string(),
                )]));
            }
            layers.push(descriptor);
        }
        (layers, reports)
    }
}

/// A layer limited to a platform the base does not have is a typo that would silently
/// build a different image. (Against the base, not the platforms being built: narrowing
/// a build with `--platform` legitimately leaves some layers unused.) Scratch has every
/// platform, so there the check is against the platforms being built.
fn check_layer_platforms(
    plan: &Plan,
    base: Option<&Image>,
    selected: &[PlatformImage],
) -> Result<()> {
    let (known, what) = match base {
        None => (selected, "is built for"),
        Some(base) => (base.platforms.as_slice(), "has"),
    };
    for layer in &plan.layers {
        for wanted in layer.platforms.iter().flatten() {
            if !known.iter().any(|p| p.platform.satisfies(wanted)) {
                let platforms: Vec<String> = known.iter().map(|p| p.platform.to_string()).collect();
                return Err(Error::InvalidValue {
                    field: format!("layer[{}].platform", layer.number),
                    message: format!(
                        "the base {} has no platform {wanted} (it {what}: {})",
                        plan.base_name,
                        platforms.join(", ")
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
