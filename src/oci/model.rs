//! Descriptors, manifests and indexes as they travel on the wire.
//!
//! Fields we do not model are kept in `extra` so that a base manifest read and
//! written again loses nothing (a registry-specific field, a `data` payload).

use std::collections::BTreeMap;

use hoist_layers::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::platform::Platform;

/// Annotation maps are sorted so that the JSON we write is canonical.
pub type Annotations = BTreeMap<String, String>;

/// A content descriptor: what a blob is, where to find it, how big it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content (an int64 in the spec; larger is refused).
    #[serde(deserialize_with = "int64_size")]
    pub size: u64,
    /// Platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Fields we carry along without interpreting.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    /// A plain descriptor with no platform or annotations.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// Sizes are int64 in the image spec, and in the Go clients and registries that read
/// what we write: a larger number is no size anything can hold, so it is refused here
/// rather than carried along into a manifest of ours.
fn int64_size<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let size = u64::deserialize(deserializer)?;
    if i64::try_from(size).is_err() {
        return Err(serde::de::Error::custom(format!(
            "size {size} is larger than an int64"
        )));
    }
    Ok(size)
}

/// The annotation that names a tag inside an OCI image layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation: the reference of the image this one was built on.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation: the digest of the image this one was built on.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// Annotation: the hoist version that built the image (a rebuild with another version
/// may legitimately differ, so `hoist verify` reports it first).
pub const HOIST_VERSION: &str = "io.hoist.version";
/// Annotation: the layer compression, `gzip` or `zstd`.
pub const HOIST_COMPRESSION: &str = "io.hoist.compression";
/// Annotation: the compression level, as a decimal number.
pub const HOIST_COMPRESSION_LEVEL: &str = "io.hoist.compression.level";
/// Annotation: the `SOURCE_DATE_EPOCH` the image was built with (seconds; `0` when
/// unset), which fixes file mtimes, `created` and history dates.
pub const HOIST_SOURCE_DATE_EPOCH: &str = "io.hoist.source-date-epoch";

/// Annotation on each layer descriptor hoist built: the key of the layer's inputs
/// (`sha256:…`, hoist-layers' content key, versioned by its format and hoist's
/// version). A later build whose sources give the same key reuses the layer from the
/// registry instead of archiving it again (docs/design.md, "The registry as layer
/// cache").
pub const LAYER_KEY: &str = "io.hoist.layer.key";
/// Annotation on each platform manifest built on a base *index*: that index's digest.
/// The image's own index records it as [`BASE_DIGEST`] (a manifest's `base.digest` is
/// the base's manifest for its platform), so `hoist index create` over manifests pushed
/// by split builds writes the index a one-runner build writes.
pub const BASE_INDEX_DIGEST: &str = "io.hoist.base.index-digest";
/// Annotation on a platform manifest whose index entry's platform is not what its config
/// says (a base index naming `linux/arm64` over a config that says `variant: v8`, or
/// `linux/amd64/v3` over one with no variant): that entry's platform, as JSON. `hoist
/// index create` takes an entry's platform from it before the config, so the index it
/// makes over split builds' manifests is the one-runner build's. Absent when the two
/// agree, so it changes no other image.
pub const HOIST_PLATFORM: &str = "io.hoist.platform";

/// The annotations of an index over manifests annotated `children`: those every child
/// has with the same value, with [`BASE_DIGEST`] taken from the children's
/// [`BASE_INDEX_DIGEST`] (which itself stays on the manifests), less [`HOIST_PLATFORM`]. A build's index and one
/// `hoist index create` makes from the same manifests are the same document.
pub fn index_annotations<'a>(
    children: impl IntoIterator<Item = Option<&'a Annotations>>,
) -> Option<Annotations> {
    let mut children = children.into_iter();
    let mut shared = children.next()??.clone();
    for child in children {
        let child = child?;
        shared.retain(|key, value| child.get(key) == Some(value));
    }
    // A platform is a manifest's, never the index's (one platform shares its own).
    shared.remove(HOIST_PLATFORM);
    if let Some(index_digest) = shared.remove(BASE_INDEX_DIGEST) {
        shared.insert(BASE_DIGEST.to_string(), index_digest);
    }
    (!shared.is_empty()).then_some(shared)
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type; optional in OCI, required by Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations (OCI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Fields we carry along without interpreting (`subject`, `artifactType`, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Manifest {
    /// Checks the media types against the descriptor the manifest was reached by: its
    /// own `mediaType`, if given, is that one (the image spec's rule), the config is an
    /// image config and every layer a layer. An artifact (a Helm chart, a signature)
    /// parses as a manifest too, and building on it would make an image of junk.
    pub fn check_media_types(&self, descriptor_media_type: &str) -> Result<(), String> {
        if let Some(own) = &self.media_type
            && own != descriptor_media_type
        {
            return Err(format!(
                "its mediaType {own} differs from its descriptor's {descriptor_media_type}"
            ));
        }
        if !super::media::is_config(&self.config.media_type) {
            return Err(format!(
                "its config {} is a {:?}, not an image config",
                self.config.digest, self.config.media_type
            ));
        }
        match self
            .layers
            .iter()
            .find(|l| !super::media::is_layer(&l.media_type))
        {
            Some(layer) => Err(format!(
                "its layer {} is a {:?}, not a layer",
                layer.digest, layer.media_type
            )),
            None => Ok(()),
        }
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Media type; optional in OCI (and absent from layout `index.json` files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Fields we carry along without interpreting.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    /// Checks the index's own `mediaType`, if given, against its descriptor's.
    pub fn check_media_type(&self, descriptor_media_type: &str) -> Result<(), String> {
        match &self.media_type {
            Some(own) if own != descriptor_media_type => Err(format!(
                "its mediaType {own} differs from its descriptor's {descriptor_media_type}"
            )),
            _ => Ok(()),
        }
    }

    /// An empty index of the given media type.
    pub fn new(media_type: Option<&str>) -> Index {
        Index {
            schema_version: 2,
            media_type: media_type.map(str::to_string),
            manifests: Vec::new(),
            annotations: None,
            extra: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// An index over manifests built on a base index names that index as its base;
    /// what the manifests do not share stays off the index.
    #[test]
    fn index_annotations_are_the_shared_ones_with_the_base_index() {
        let amd64 = annotations(&[
            (BASE_NAME, "oci:base:1.0"),
            (BASE_DIGEST, "sha256:aaaa"),
            (BASE_INDEX_DIGEST, "sha256:index"),
            (HOIST_VERSION, "0.1.0"),
            ("only.amd64", "x"),
        ]);
        let arm64 = annotations(&[
            (BASE_NAME, "oci:base:1.0"),
            (BASE_DIGEST, "sha256:bbbb"),
            (BASE_INDEX_DIGEST, "sha256:index"),
            (HOIST_VERSION, "0.1.0"),
        ]);
        assert_eq!(
            index_annotations([Some(&amd64), Some(&arm64)]),
            Some(annotations(&[
                (BASE_NAME, "oci:base:1.0"),
                (BASE_DIGEST, "sha256:index"),
                (HOIST_VERSION, "0.1.0"),
            ]))
        );
        // One manifest on a base manifest (no index): its annotations as they are.
        let single = annotations(&[(BASE_DIGEST, "sha256:aaaa"), (HOIST_VERSION, "0.1.0")]);
        assert_eq!(index_annotations([Some(&single)]), Some(single.clone()));
        // Docker manifests have none, so the index has none.
        assert_eq!(index_annotations([None, Some(&single)]), None);
        assert_eq!(index_annotations([Some(&single), None]), None);
        // A recorded platform stays on its manifest, even when only one is built.
        let mut recorded = single.clone();
        recorded.insert(
            HOIST_PLATFORM.into(),
            r#"{"architecture":"arm","os":"linux"}"#.into(),
        );
        assert_eq!(index_annotations([Some(&recorded)]), Some(single.clone()));
    }

    fn descriptor(size: &str) -> String {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{size}}}"#,
            super::super::media::OCI_LAYER_GZIP,
            Digest::sha256_of(b"x")
        )
    }

    /// Found by tests/it/props/base_documents.rs: sizes up to u64::MAX were accepted.
    #[test]
    fn sizes_past_an_int64_are_refused() {
        let max = serde_json::from_str::<Descriptor>(&descriptor(&i64::MAX.to_string()));
        assert_eq!(max.unwrap().size, i64::MAX as u64);
        for bad in [
            "9223372036854775808",
            "18446744073709551615",
            "-1",
            "1.5",
            "1e3",
        ] {
            let err = serde_json::from_str::<Descriptor>(&descriptor(bad));
            assert!(err.is_err(), "{bad}: {err:?}");
        }
        let err = serde_json::from_str::<Descriptor>(&descriptor("9223372036854775808"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than an int64"), "{err}");
    }

    /// Found by tests/it/props/base_documents.rs: a manifest whose config was a Helm
    /// chart's, whose layer was `text/plain`, or whose own mediaType contradicted its
    /// descriptor's, loaded as a base.
    #[test]
    fn manifests_are_checked_against_their_media_types() {
        use super::super::media::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
        let digest = Digest::sha256_of(b"x");
        let manifest = |own: Option<&str>, config: &str, layer: &str| Manifest {
            schema_version: 2,
            media_type: own.map(str::to_string),
            config: Descriptor::new(config, digest.clone(), 1),
            layers: vec![Descriptor::new(layer, digest.clone(), 1)],
            annotations: None,
            extra: BTreeMap::new(),
        };
        let good = manifest(Some(OCI_MANIFEST), OCI_CONFIG, OCI_LAYER_GZIP);
        assert_eq!(good.check_media_types(OCI_MANIFEST), Ok(()));
        assert_eq!(
            manifest(None, OCI_CONFIG, OCI_LAYER_GZIP).check_media_types(OCI_MANIFEST),
            Ok(())
        );
        for (bad, descriptor, why) in [
            (&good, OCI_INDEX, "differs"),
            (
                &manifest(
                    None,
                    "application/vnd.cncf.helm.config.v1+json",
                    OCI_LAYER_GZIP,
                ),
                OCI_MANIFEST,
                "not an image config",
            ),
            (
                &manifest(None, OCI_CONFIG, "text/plain"),
                OCI_MANIFEST,
                "not a layer",
            ),
        ] {
            let err = bad.check_media_types(descriptor).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let mut index = Index::new(Some(OCI_MANIFEST));
        assert!(index.check_media_type(OCI_INDEX).is_err());
        index.media_type = None;
        assert_eq!(index.check_media_type(OCI_INDEX), Ok(()));
    }
}
