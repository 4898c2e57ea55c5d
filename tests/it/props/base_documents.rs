//! Base image documents: descriptors, manifests and indexes with huge, negative or
//! fractional sizes are refused by the model; a generated OCI layout (index.json →
//! index → manifest → config and layers) loads as a base exactly when no fault was
//! put in it (malformed JSON, a wrong or mismatched media type, a bad size, a digest
//! that does not match), and what loads is what was written.

use std::fs;
use std::path::Path;

use hoist::oci::layout::Layout;
use hoist::oci::location::Selector;
use hoist::oci::model::{Descriptor, Index, Manifest};
use hoist::oci::source::load_layout;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::cases;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256(bytes: &[u8]) -> String {
    crate::common::digest_of(bytes)
}

/// A size no descriptor may have: past int64 (the spec's type), negative, or not
/// a whole number, written as JSON number text.
fn bad_size() -> impl Strategy<Value = String> {
    prop_oneof![
        ((1u64 << 63)..=u64::MAX).prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        (i64::MIN..0).prop_map(|n| n.to_string()),
        (0u32..1000).prop_map(|n| format!("{n}.5")),
        (0u32..1000).prop_map(|n| format!("{n}.0")),
        (0u32..1000).prop_map(|n| format!("{n}e0")),
    ]
}

fn descriptor_text(size: &str) -> String {
    format!(
        r#"{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{}","size":{size}}}"#,
        sha256(b"x")
    )
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn bad_sizes_are_refused_by_the_model(size in bad_size()) {
        let descriptor = descriptor_text(&size);
        let parsed = serde_json::from_str::<Descriptor>(&descriptor);
        prop_assert!(parsed.is_err(), "size {size} accepted: {parsed:?}");
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{},"layers":[]}}"#,
            descriptor_text(&size)
        );
        prop_assert!(serde_json::from_str::<Manifest>(&manifest).is_err(), "{manifest}");
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{descriptor}]}}"#);
        prop_assert!(serde_json::from_str::<Index>(&index).is_err(), "{index}");
    }

    #[test]
    fn good_sizes_are_kept_exactly(size in 0..=i64::MAX) {
        let parsed = serde_json::from_str::<Descriptor>(&descriptor_text(&size.to_string()));
        prop_assert_eq!(parsed.map(|d| d.size).ok(), Some(size as u64));
    }

    #[test]
    fn arbitrary_json_never_panics(text in any::<String>(), value in arbitrary_json()) {
        let _ = serde_json::from_str::<Descriptor>(&text);
        let _ = serde_json::from_str::<Manifest>(&text);
        let _ = serde_json::from_str::<Index>(&text);
        let _ = serde_json::from_value::<Descriptor>(value.clone());
        let _ = serde_json::from_value::<Manifest>(value.clone());
        let _ = serde_json::from_value::<Index>(value);
    }
}

/// JSON values shaped like OCI documents, with arbitrary leaves.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        Just(Value::from(OCI_MANIFEST)),
        Just(Value::from(sha256(b""))),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        let key = prop_oneof![
            Just("mediaType".to_owned()),
            Just("digest".to_owned()),
            Just("size".to_owned()),
            Just("schemaVersion".to_owned()),
            Just("config".to_owned()),
            Just("layers".to_owned()),
            Just("manifests".to_owned()),
            Just("platform".to_owned()),
            Just("annotations".to_owned()),
            Just("architecture".to_owned()),
            Just("os".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Which document a fault is put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The `index.json` entry naming the image index.
    Top,
    /// The image index's entry for the manifest.
    ManifestEntry,
    /// The manifest's config descriptor.
    Config,
    /// The manifest's first layer descriptor.
    Layer,
}

#[derive(Clone, Debug)]
enum Fault {
    None,
    /// The descriptor's size, as JSON number text.
    Size(Target, String),
    /// The descriptor's media type.
    MediaType(Target, String),
    /// The document's own `mediaType` differs from its descriptor's.
    DocumentMediaType(Target, String),
    /// The document's bytes are not JSON (stored under their true digest).
    Malformed(Target, usize),
    /// The descriptor names other content.
    Digest(Target),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Top),
        Just(Target::ManifestEntry),
        Just(Target::Config),
        Just(Target::Layer)
    ]
}

/// A media type that is not what the descriptor at `target` must name.
fn wrong_media_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/vnd.oci.image.layer.v1.tar".to_owned()),
        Just("application/vnd.oci.image.config.v1+json".to_owned()),
        Just("application/vnd.oci.image.manifest.v1+json".to_owned()),
        Just("application/vnd.oci.image.index.v1+json".to_owned()),
        Just("application/vnd.cncf.helm.config.v1+json".to_owned()),
        Just("text/plain".to_owned()),
        Just(String::new()),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::None),
        1 => (target(), bad_size()).prop_map(|(t, s)| Fault::Size(t, s)),
        1 => (target(), wrong_media_type()).prop_map(|(t, m)| Fault::MediaType(t, m)),
        1 => (prop_oneof![Just(Target::Top), Just(Target::ManifestEntry)], wrong_media_type())
            .prop_map(|(t, m)| Fault::DocumentMediaType(t, m)),
        1 => (prop_oneof![Just(Target::Top), Just(Target::ManifestEntry), Just(Target::Config)], 0usize..64)
            .prop_map(|(t, cut)| Fault::Malformed(t, cut)),
        1 => target().prop_map(Fault::Digest),
    ]
}

/// The media type a descriptor at `target` must name.
fn right_media_type(target: Target) -> &'static str {
    match target {
        Target::Top => OCI_INDEX,
        Target::ManifestEntry => OCI_MANIFEST,
        Target::Config => OCI_CONFIG,
        Target::Layer => OCI_LAYER_GZIP,
    }
}

/// Whether `fault` really breaks the layout: a "wrong" media type that happens to be
/// one the target may have is no fault.
fn is_fault(fault: &Fault) -> bool {
    let allowed = |target: Target, media_type: &str| match target {
        Target::Layer => {
            [OCI_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar"].contains(&media_type)
        }
        other => media_type == right_media_type(other),
    };
    match fault {
        Fault::None => false,
        Fault::MediaType(target, media_type) | Fault::DocumentMediaType(target, media_type) => {
            !allowed(*target, media_type)
        }
        _ => true,
    }
}

/// Writes `bytes` as a blob; returns its digest.
fn put(root: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    fs::write(root.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    digest
}

/// A descriptor as JSON text, with the fault applied if it is aimed at `target`.
fn descriptor(target: Target, fault: &Fault, digest: &str, size: usize, extra: &str) -> String {
    let media_type = match fault {
        Fault::MediaType(t, m) if *t == target => m.clone(),
        _ => right_media_type(target).to_owned(),
    };
    let size = match fault {
        Fault::Size(t, s) if *t == target => s.clone(),
        _ => size.to_string(),
    };
    let digest = match fault {
        Fault::Digest(t) if *t == target => sha256(b"other content"),
        _ => digest.to_owned(),
    };
    format!(
        r#"{{"mediaType":{},"digest":"{digest}","size":{size}{extra}}}"#,
        json!(media_type)
    )
}

/// A document's bytes, broken if the fault says so.
fn document(target: Target, fault: &Fault, value: &Value) -> Vec<u8> {
    let mut value = value.clone();
    if let Fault::DocumentMediaType(t, m) = fault
        && *t == target
    {
        value["mediaType"] = json!(m);
    }
    let mut bytes = serde_json::to_vec(&value).unwrap();
    if let Fault::Malformed(t, cut) = fault
        && *t == target
    {
        bytes.truncate(cut % bytes.len());
        bytes.extend_from_slice(b"\x00not json");
    }
    bytes
}

/// Writes a one-platform layout with `fault`; returns the expected layer digests.
fn write_layout(root: &Path, fault: &Fault, layers: &[Vec<u8>], arch: &str) -> Vec<String> {
    fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer_digests: Vec<String> = layers.iter().map(|l| put(root, l)).collect();
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    });
    let config = document(Target::Config, fault, &config);
    let config_digest = put(root, &config);
    let layer_descriptors: Vec<String> = layers
        .iter()
        .zip(&layer_digests)
        .enumerate()
        .map(|(i, (bytes, digest))| {
            let applies = if i == 0 { fault } else { &Fault::None };
            descriptor(Target::Layer, applies, digest, bytes.len(), "")
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        descriptor(Target::Config, fault, &config_digest, config.len(), ""),
        layer_descriptors.join(",")
    );
    let manifest: Value = serde_json::from_str(&manifest).unwrap_or(Value::Null);
    let manifest = if manifest.is_null() {
        // A bad size that serde_json cannot even hold as a Value: write the text.
        None
    } else {
        Some(document(Target::ManifestEntry, fault, &manifest))
    };
    let manifest = manifest.unwrap_or_else(|| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
            descriptor(Target::Config, fault, &config_digest, config.len(), ""),
            layer_descriptors.join(",")
        )
        .into_bytes()
    });
    let manifest_digest = put(root, &manifest);
    let platform = format!(r#","platform":{{"architecture":"{arch}","os":"linux"}}"#);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        descriptor(
            Target::ManifestEntry,
            fault,
            &manifest_digest,
            manifest.len(),
            &platform
        )
    );
    let index = match serde_json::from_str::<Value>(&index) {
        Ok(value) => document(Target::Top, fault, &value),
        Err(_) => index.into_bytes(),
    };
    let index_digest = put(root, &index);
    let top = descriptor(
        Target::Top,
        fault,
        &index_digest,
        index.len(),
        r#","annotations":{"org.opencontainers.image.ref.name":"1.0"}"#,
    );
    fs::write(
        root.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{top}]}}"#),
    )
    .unwrap();
    layer_digests
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn a_base_layout_loads_exactly_when_it_is_sound(
        fault in fault(),
        layers in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 1..3),
        arch in prop_oneof![Just("amd64"), Just("arm64"), Just("s390x")],
    ) {
        let dir = tempfile::Builder::new().prefix("hoist-props-base-").tempdir().unwrap();
        let root = dir.path().join("layout");
        let layer_digests = write_layout(&root, &fault, &layers, arch);
        let loaded = Layout::open(&root).and_then(|layout| load_layout(&layout, &Selector::Tag("1.0".into())));
        match (is_fault(&fault), loaded) {
            (false, Ok(base)) => {
                prop_assert_eq!(base.platforms.len(), 1);
                let platform = &base.platforms[0];
                prop_assert_eq!(platform.platform.architecture.as_str(), arch);
                let found: Vec<String> = platform
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.to_string())
                    .collect();
                prop_assert_eq!(found, layer_digests);
                for (layer, bytes) in platform.manifest.layers.iter().zip(&layers) {
                    prop_assert_eq!(layer.size, bytes.len() as u64);
                }
            }
            (false, Err(error)) => {
                prop_assert!(false, "a sound layout ({fault:?}) was refused: {error}");
            }
            (true, Ok(base)) => {
                prop_assert!(
                    false,
                    "loaded despite {fault:?}: {:?}",
                    base.platforms.iter().map(|p| &p.manifest).collect::<Vec<_>>()
                );
            }
            (_, Err(error)) => {
                let text = error.to_string();
                prop_assert!(text.contains(root.to_str().unwrap()), "{text}");
            }
        }
    }
}
