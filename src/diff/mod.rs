//! Comparing two images, from the index down to the files: what `hoist diff` prints
//! and what `hoist verify` explains a mismatch with.
//!
//! The comparison walks index → per-platform manifest → config → layers → files and
//! stops descending wherever digests are equal: equal manifests are not compared field
//! by field, and a layer with the same digest on both sides is never opened (nor, for a
//! registry image, downloaded). Results are typed values ([`ImageDiff`] and below) that
//! serialise to JSON and render as text ([`ImageDiff::render`]).
//!
//! - [`open`] reads an image from an `oci:` layout, an `oci-archive:` or a registry
//!   (documents only; layers on demand).
//! - [`layer`] lists a layer tar's entries by streaming it, refusing tar-slip paths.
//! - [`compare`] produces the [`ImageDiff`].

pub mod layer;
pub mod open;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use hoist_layers::Digest;
use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::oci::model::{Annotations, Descriptor};
use layer::{EntrySummary, LayerListing};
pub use open::OpenedImage;

/// How one item (platform, layer, file) compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Identical on both sides.
    Equal,
    /// Present on both sides, different.
    Changed,
    /// Only in the second image.
    Added,
    /// Only in the first image.
    Removed,
}

/// One field that differs: `a` is the first image's value, `b` the second's; `None`
/// where the field is absent on that side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// What differs, e.g. `env GREETING`, `label version`, `created`, `mode`.
    pub field: String,
    /// The value in the first image.
    pub a: Option<Value>,
    /// The value in the second image.
    pub b: Option<Value>,
}

impl FieldChange {
    fn new(field: impl Into<String>, a: Option<Value>, b: Option<Value>) -> FieldChange {
        FieldChange {
            field: field.into(),
            a,
            b,
        }
    }
}

/// One side's top-level document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The image as named on the command line.
    pub name: String,
    /// Digest of its index (or manifest).
    pub digest: Digest,
    /// Media type of that document.
    pub media_type: String,
}

/// Everything that differs between two images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageDiff {
    /// The first image.
    pub a: Side,
    /// The second image.
    pub b: Side,
    /// Whether the top-level digests are equal (then nothing below is listed).
    pub identical: bool,
    /// Index-level differences: media type, annotations.
    pub index: Vec<FieldChange>,
    /// Per-platform results, for every platform either side has.
    pub platforms: Vec<PlatformDiff>,
}

/// One platform's comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlatformDiff {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// How the platform's manifests compare.
    pub status: Status,
    /// Manifest digest in the first image.
    pub a: Option<Digest>,
    /// Manifest digest in the second image.
    pub b: Option<Digest>,
    /// Manifest-level differences: media type, annotations, config descriptor.
    pub manifest: Vec<FieldChange>,
    /// Config differences, field by field.
    pub config: Vec<FieldChange>,
    /// Every layer position of either side.
    pub layers: Vec<LayerDiff>,
}

/// One layer position's comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerDiff {
    /// 1-based position in the manifest.
    pub position: usize,
    /// How the layers compare.
    pub status: Status,
    /// Layer digest in the first image.
    pub a: Option<Digest>,
    /// Layer digest in the second image.
    pub b: Option<Digest>,
    /// Descriptor differences (media type, size).
    pub descriptor: Vec<FieldChange>,
    /// Files that differ (only for changed layers).
    pub files: Vec<FileDiff>,
    /// Why a changed layer lists no files (same entries, different bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One path's comparison inside a changed layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileDiff {
    /// The path in the image, with a leading `/`.
    pub path: String,
    /// Added, removed or changed.
    pub status: Status,
    /// For changed entries: which attributes differ.
    pub changes: Vec<FieldChange>,
    /// The entry in the first image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<EntrySummary>,
    /// The entry in the second image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<EntrySummary>,
}

impl ImageDiff {
    /// Whether anything differs.
    pub fn differs(&self) -> bool {
        !self.identical
    }
}

/// Compares two opened images. Layers are read only where both sides have a layer at
/// the same position with different digests.
pub fn compare(a: &OpenedImage, b: &OpenedImage) -> Result<ImageDiff> {
    let side = |image: &OpenedImage| Side {
        name: image.name.clone(),
        digest: image.top.digest.clone(),
        media_type: image.top.media_type.clone(),
    };
    let mut diff = ImageDiff {
        a: side(a),
        b: side(b),
        identical: a.top.digest == b.top.digest,
        index: Vec::new(),
        platforms: Vec::new(),
    };
    if diff.identical {
        return Ok(diff);
    }
    if a.top.media_type != b.top.media_type {
        diff.index.push(FieldChange::new(
            "media type",
            Some(a.top.media_type.clone().into()),
            Some(b.top.media_type.clone().into()),
        ));
    }
    diff.index.extend(annotation_changes(
        "annotation",
        a.index_annotations(),
        b.index_annotations(),
    ));

    let keys: BTreeSet<String> = a
        .platforms
        .iter()
        .chain(&b.platforms)
        .map(|p| p.platform.to_string())
        .collect();
    // Keep the first image's platform order, then any only the second has.
    let mut order: Vec<String> = a.platforms.iter().map(|p| p.platform.to_string()).collect();
    let only_in_b: Vec<String> = keys.into_iter().filter(|k| !order.contains(k)).collect();
    order.extend(only_in_b);
    for key in order {
        let left = a.platforms.iter().find(|p| p.platform.to_string() == key);
        let right = b.platforms.iter().find(|p| p.platform.to_string() == key);
        diff.platforms
            .push(compare_platform(&key, a, left, b, right)?);
    }
    Ok(diff)
}

fn compare_platform(
    key: &str,
    a: &OpenedImage,
    left: Option<&crate::oci::image::PlatformImage>,
    b: &OpenedImage,
    right: Option<&crate::oci::image::PlatformImage>,
) -> Result<PlatformDiff> {
    let mut result = PlatformDiff {
        platform: key.to_string(),
        status: Status::Equal,
        a: left.map(|p| p.descriptor.digest.clone()),
        b: right.map(|p| p.descriptor.digest.clone()),
        manifest: Vec::new(),
        config: Vec::new(),
        layers: Vec::new(),
    };
    let (left, right) = match (left, right) {
        (Some(l), Some(r)) => (l, r),
        (Some(_), None) => {
            result.status = Status::Removed;
            return Ok(result);
        }
        (None, _) => {
            result.status = Status::Added;
            return Ok(result);
        }
    };
    if left.descriptor.digest == right.descriptor.digest {
        return Ok(result);
    }
    result.status = Status::Changed;
    let (lm, rm) = (&left.manifest, &right.manifest);
    if lm.media_type != rm.media_type {
        result.manifest.push(FieldChange::new(
            "media type",
            lm.media_type.clone().map(Value::from),
            rm.media_type.clone().map(Value::from),
        ));
    }
    result.manifest.extend(annotation_changes(
        "annotation",
        lm.annotations.as_ref(),
        rm.annotations.as_ref(),
    ));
    if lm.config.digest != rm.config.digest {
        result.manifest.push(FieldChange::new(
            "config",
            Some(lm.config.digest.to_string().into()),
            Some(rm.config.digest.to_string().into()),
        ));
        result.config = config_changes(&left.config, &right.config);
    }
    let positions = lm.layers.len().max(rm.layers.len());
    for i in 0..positions {
        result
            .layers
            .push(compare_layer(i, a, lm.layers.get(i), b, rm.layers.get(i))?);
    }
    Ok(result)
}

fn compare_layer(
    index: usize,
    a: &OpenedImage,
    left: Option<&Descriptor>,
    b: &OpenedImage,
    right: Option<&Descriptor>,
) -> Result<LayerDiff> {
    let mut result = LayerDiff {
        position: index + 1,
        status: Status::Equal,
        a: left.map(|d| d.digest.clone()),
        b: right.map(|d| d.digest.clone()),
        descriptor: Vec::new(),
        files: Vec::new(),
        note: None,
    };
    let (left, right) = match (left, right) {
        (Some(l), Some(r)) => (l, r),
        (Some(_), None) => {
            result.status = Status::Removed;
            return Ok(result);
        }
        (None, _) => {
            result.status = Status::Added;
            return Ok(result);
        }
    };
    if left.media_type != right.media_type {
        result.descriptor.push(FieldChange::new(
            "media type",
            Some(left.media_type.clone().into()),
            Some(right.media_type.clone().into()),
        ));
    }
    if left.digest == right.digest {
        result.status = if result.descriptor.is_empty() {
            Status::Equal
        } else {
            Status::Changed
        };
        return Ok(result);
    }
    result.status = Status::Changed;
    let foreign = crate::oci::media::DOCKER_FOREIGN_LAYER_GZIP;
    if left.media_type == foreign || right.media_type == foreign {
        result.note = Some("foreign layer (not stored in images): compared by digest only".into());
        return Ok(result);
    }
    // Sorted layers (hoist's) are merged as they stream; others are listed whole
    // (a summary per entry, never contents) and compared as maps.
    let (mut left_blob, mut right_blob) = (a.open_layer(left)?, b.open_layer(right)?);
    let merged =
        layer::compare_sorted(&mut left_blob, &left.digest, &mut right_blob, &right.digest)?;
    result.files = match merged {
        Some(pairs) => {
            left_blob.finish()?;
            right_blob.finish()?;
            file_diffs(pairs)
        }
        None => file_changes(&a.list_layer(left)?, &b.list_layer(right)?),
    };
    if result.files.is_empty() {
        result.note = Some(
            "same entries with the same content and attributes; the compressed bytes differ (compression kind or level, or tar header details)"
                .into(),
        );
    }
    Ok(result)
}

/// Entry-by-entry differences between two layer listings.
pub fn file_changes(a: &LayerListing, b: &LayerListing) -> Vec<FileDiff> {
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    file_diffs(
        paths
            .into_iter()
            .map(|path| (path.clone(), a.get(path).cloned(), b.get(path).cloned()))
            .filter(|(_, left, right)| left != right)
            .collect(),
    )
}

/// The differing entry pairs as reported.
fn file_diffs(pairs: Vec<layer::EntryPair>) -> Vec<FileDiff> {
    pairs
        .into_iter()
        .filter_map(|(path, a, b)| {
            let status = match (&a, &b) {
                (Some(left), Some(right)) if left == right => return None,
                (Some(_), Some(_)) => Status::Changed,
                (Some(_), None) => Status::Removed,
                (None, Some(_)) => Status::Added,
                (None, None) => return None,
            };
            let changes = match (&a, &b) {
                (Some(left), Some(right)) => entry_changes(left, right),
                _ => Vec::new(),
            };
            Some(FileDiff {
                path: format!("/{path}"),
                status,
                changes,
                a,
                b,
            })
        })
        .collect()
}

fn entry_changes(a: &EntrySummary, b: &EntrySummary) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, left: Value, right: Value| {
        if left != right {
            out.push(FieldChange::new(field, Some(left), Some(right)));
        }
    };
    push("kind", a.kind.to_string().into(), b.kind.to_string().into());
    if a.sha256 != b.sha256 || a.size != b.size {
        push("content", content(a).into(), content(b).into());
    }
    push(
        "mode",
        format!("{:04o}", a.mode).into(),
        format!("{:04o}", b.mode).into(),
    );
    push(
        "owner",
        format!("{}:{}", a.uid, a.gid).into(),
        format!("{}:{}", b.uid, b.gid).into(),
    );
    push("mtime", a.mtime.into(), b.mtime.into());
    push(
        "link target",
        a.link_target.clone().into(),
        b.link_target.clone().into(),
    );
    out
}

fn content(entry: &EntrySummary) -> String {
    match &entry.sha256 {
        Some(digest) => format!("{digest} ({} bytes)", entry.size),
        None => format!("{} bytes", entry.size),
    }
}

/// Differences between two annotation (or label) maps, one change per key.
fn annotation_changes(
    prefix: &str,
    a: Option<&Annotations>,
    b: Option<&Annotations>,
) -> Vec<FieldChange> {
    let empty = Annotations::new();
    map_changes(prefix, a.unwrap_or(&empty), b.unwrap_or(&empty))
}

fn map_changes<V: Clone + PartialEq + Into<Value>>(
    prefix: &str,
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            FieldChange::new(
                format!("{prefix} {k}"),
                a.get(k).cloned().map(Into::into),
                b.get(k).cloned().map(Into::into),
            )
        })
        .collect()
}

/// How the config's `config` keys are named in reports (Docker's names are CamelCase).
const CONFIG_FIELD_NAMES: &[(&str, &str)] = &[
    ("Entrypoint", "entrypoint"),
    ("Cmd", "cmd"),
    ("WorkingDir", "workdir"),
    ("User", "user"),
    ("StopSignal", "stop signal"),
    ("Healthcheck", "healthcheck"),
    ("ArgsEscaped", "args escaped"),
    ("OnBuild", "onbuild"),
    ("Shell", "shell"),
];

/// Field-by-field differences between two image configs: env as a map of variables,
/// labels as a map, exposed ports and volumes as sets, history and diff_ids by
/// position, everything else value against value.
pub fn config_changes(a: &Value, b: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let (top_a, top_b) = (object(a), object(b));
    let top_keys: BTreeSet<&String> = top_a.keys().chain(top_b.keys()).collect();
    for key in top_keys {
        match key.as_str() {
            "config" | "history" | "rootfs" => {}
            _ if top_a.get(key) != top_b.get(key) => out.push(FieldChange::new(
                key.clone(),
                top_a.get(key).cloned(),
                top_b.get(key).cloned(),
            )),
            _ => {}
        }
    }

    let (inner_a, inner_b) = (
        object(a.get("config").unwrap_or(&Value::Null)),
        object(b.get("config").unwrap_or(&Value::Null)),
    );
    out.extend(map_changes(
        "env",
        &env_map(inner_a.get("Env")),
        &env_map(inner_b.get("Env")),
    ));
    out.extend(map_changes(
        "label",
        &string_map(inner_a.get("Labels")),
        &string_map(inner_b.get("Labels")),
    ));
    for (key, name) in [("ExposedPorts", "exposed port"), ("Volumes", "volume")] {
        let (left, right) = (key_set(inner_a.get(key)), key_set(inner_b.get(key)));
        for item in left.symmetric_difference(&right) {
            let present = |set: &BTreeSet<String>| set.contains(item).then_some(Value::Bool(true));
            out.push(FieldChange::new(
                format!("{name} {item}"),
                present(&left),
                present(&right),
            ));
        }
    }
    let inner_keys: BTreeSet<&String> = inner_a.keys().chain(inner_b.keys()).collect();
    for key in inner_keys {
        if matches!(key.as_str(), "Env" | "Labels" | "ExposedPorts" | "Volumes") {
            continue;
        }
        let (left, right) = (
            inner_a.get(key).filter(|v| !v.is_null()),
            inner_b.get(key).filter(|v| !v.is_null()),
        );
        if left != right {
            let name = CONFIG_FIELD_NAMES
                .iter()
                .find(|(k, _)| k == key)
                .map_or_else(|| format!("config.{key}"), |(_, n)| (*n).to_string());
            out.push(FieldChange::new(name, left.cloned(), right.cloned()));
        }
    }

    let by_position = |name: &str, left: Option<&Value>, right: Option<&Value>| {
        let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
        let (left, right) = (list(left), list(right));
        (0..left.len().max(right.len()))
            .filter(|i| left.get(*i) != right.get(*i))
            .map(|i| {
                FieldChange::new(
                    format!("{name}[{}]", i + 1),
                    left.get(i).cloned(),
                    right.get(i).cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    out.extend(by_position("history", a.get("history"), b.get("history")));
    out.extend(by_position(
        "rootfs.diff_ids",
        a.pointer("/rootfs/diff_ids"),
        b.pointer("/rootfs/diff_ids"),
    ));
    out
}

/// `["K=V", …]` as a map; a variable listed twice keeps its last value, as runtimes do.
fn env_map(env: Option<&Value>) -> BTreeMap<String, String> {
    env.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (item.to_string(), String::new()),
        })
        .collect()
}

fn string_map(map: Option<&Value>) -> BTreeMap<String, String> {
    map.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), value)
        })
        .collect()
}

fn key_set(map: Option<&Value>) -> BTreeSet<String> {
    map.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::layer::EntryKind;
    use super::*;

    fn entry(content: &[u8], mode: u32) -> EntrySummary {
        EntrySummary {
            kind: EntryKind::File,
            mode,
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            sha256: Some(Digest::sha256_of(content)),
            mtime: 0,
            link_target: None,
        }
    }

    #[test]
    fn config_changes_name_env_labels_and_history() {
        let a = json!({
            "created": "1970-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/bin", "GREETING=hello"], "Labels": {"a": "1"},
                       "ExposedPorts": {"80/tcp": {}}, "User": "app"},
            "history": [{"created_by": "x"}],
        });
        let b = json!({
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": ["PATH=/bin", "GREETING=hi", "NEW=1"], "Labels": {"b": "2"},
                       "ExposedPorts": {"8080/tcp": {}}, "User": "app"},
            "history": [{"created_by": "x"}, {"created_by": "y"}],
        });
        let fields: Vec<String> = config_changes(&a, &b)
            .into_iter()
            .map(|c| format!("{}: {:?} → {:?}", c.field, c.a, c.b))
            .collect();
        assert_eq!(
            fields,
            [
                "created: Some(String(\"1970-01-01T00:00:00Z\")) → Some(String(\"2023-11-14T22:13:20Z\"))",
                "env GREETING: Some(String(\"hello\")) → Some(String(\"hi\"))",
                "env NEW: None → Some(String(\"1\"))",
                "label a: Some(String(\"1\")) → None",
                "label b: None → Some(String(\"2\"))",
                "exposed port 80/tcp: Some(Bool(true)) → None",
                "exposed port 8080/tcp: None → Some(Bool(true))",
                "history[2]: None → Some(Object {\"created_by\": String(\"y\")})",
            ]
        );
    }

    #[test]
    fn equal_configs_have_no_changes() {
        let config = json!({"config": {"Env": ["A=1"]}, "history": []});
        assert!(config_changes(&config, &config).is_empty());
    }

    #[test]
    fn file_changes_name_each_attribute() {
        let mut a = LayerListing::new();
        let mut b = LayerListing::new();
        a.insert("app/same".into(), entry(b"x", 0o644));
        b.insert("app/same".into(), entry(b"x", 0o644));
        a.insert("app/run.sh".into(), entry(b"#!/bin/sh", 0o755));
        b.insert("app/run.sh".into(), entry(b"#!/bin/sh", 0o644));
        a.insert("app/gone".into(), entry(b"", 0o644));
        b.insert("app/new".into(), entry(b"", 0o644));
        let mut link = entry(b"", 0o777);
        link.kind = EntryKind::Symlink;
        link.sha256 = None;
        link.link_target = Some("run.sh".into());
        a.insert("app/link".into(), link.clone());
        link.link_target = Some("same".into());
        b.insert("app/link".into(), link);

        let changes = file_changes(&a, &b);
        let summary: Vec<(String, Status, Vec<String>)> = changes
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    f.status,
                    f.changes.iter().map(|c| c.field.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("/app/gone".into(), Status::Removed, vec![]),
                (
                    "/app/link".into(),
                    Status::Changed,
                    vec!["link target".into()]
                ),
                ("/app/new".into(), Status::Added, vec![]),
                ("/app/run.sh".into(), Status::Changed, vec!["mode".into()]),
            ]
        );
        assert_eq!(changes[3].changes[0].a, Some(json!("0755")));
        assert_eq!(changes[3].changes[0].b, Some(json!("0644")));
    }
}
