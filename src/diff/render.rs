//! The readable form of an [`ImageDiff`]: one line per difference, indented by level
//! (index, platform, config/layer, file), values as JSON so that strings show quoted
//! and whitespace differences stay visible.

use std::fmt::Write as _;

use serde_json::Value;

use super::layer::EntrySummary;
use super::{FieldChange, FileDiff, ImageDiff, LayerDiff, PlatformDiff, Status};

impl ImageDiff {
    /// The diff as text for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.identical {
            let _ = writeln!(
                out,
                "identical: {} and {} are both {}",
                self.a.name, self.b.name, self.a.digest
            );
            return out;
        }
        let _ = writeln!(out, "a: {} {}", self.a.name, self.a.digest);
        let _ = writeln!(out, "b: {} {}", self.b.name, self.b.digest);
        if !self.index.is_empty() {
            let _ = writeln!(out, "index:");
            for change in &self.index {
                let _ = writeln!(out, "  {}", field_line(change));
            }
        }
        for platform in &self.platforms {
            render_platform(&mut out, platform);
        }
        out
    }
}

fn render_platform(out: &mut String, platform: &PlatformDiff) {
    let digest = |d: &Option<hoist_layers::Digest>| d.as_ref().map(ToString::to_string);
    match platform.status {
        Status::Equal => {
            let _ = writeln!(
                out,
                "platform {}: equal ({})",
                platform.platform,
                digest(&platform.a).unwrap_or_default()
            );
            return;
        }
        Status::Added => {
            let _ = writeln!(out, "platform {}: only in b", platform.platform);
            return;
        }
        Status::Removed => {
            let _ = writeln!(out, "platform {}: only in a", platform.platform);
            return;
        }
        Status::Changed => {}
    }
    let _ = writeln!(
        out,
        "platform {}: manifest {} → {}",
        platform.platform,
        digest(&platform.a).unwrap_or_default(),
        digest(&platform.b).unwrap_or_default()
    );
    for change in &platform.manifest {
        let _ = writeln!(out, "  {}", field_line(change));
        if change.field == "config" {
            for config_change in &platform.config {
                let _ = writeln!(out, "    {}", field_line(config_change));
            }
        }
    }
    let mut equal = Vec::new();
    for layer in &platform.layers {
        if layer.status == Status::Equal {
            equal.push(layer.position.to_string());
        } else {
            render_layer(out, layer);
        }
    }
    if !equal.is_empty() {
        let noun = if equal.len() == 1 { "layer" } else { "layers" };
        let _ = writeln!(out, "  {noun} {}: equal", equal.join(", "));
    }
}

fn render_layer(out: &mut String, layer: &LayerDiff) {
    let digest =
        |d: &Option<hoist_layers::Digest>| d.as_ref().map(ToString::to_string).unwrap_or_default();
    match layer.status {
        Status::Added => {
            let _ = writeln!(
                out,
                "  layer {}: only in b ({})",
                layer.position,
                digest(&layer.b)
            );
        }
        Status::Removed => {
            let _ = writeln!(
                out,
                "  layer {}: only in a ({})",
                layer.position,
                digest(&layer.a)
            );
        }
        Status::Equal | Status::Changed => {
            let _ = writeln!(
                out,
                "  layer {}: {} → {}",
                layer.position,
                digest(&layer.a),
                digest(&layer.b)
            );
        }
    }
    for change in &layer.descriptor {
        let _ = writeln!(out, "    {}", field_line(change));
    }
    for file in &layer.files {
        let _ = writeln!(out, "    {}", file_line(file));
    }
    if let Some(note) = &layer.note {
        let _ = writeln!(out, "    ({note})");
    }
}

fn file_line(file: &FileDiff) -> String {
    match file.status {
        Status::Added => format!(
            "{}: added ({})",
            file.path,
            file.b.as_ref().map(entry_summary).unwrap_or_default()
        ),
        Status::Removed => format!(
            "{}: removed (was {})",
            file.path,
            file.a.as_ref().map(entry_summary).unwrap_or_default()
        ),
        Status::Equal | Status::Changed => {
            let changes: Vec<String> = file
                .changes
                .iter()
                .map(|c| {
                    // Link targets are free text: quoted, so spaces and emptiness show.
                    let show = if c.field == "link target" {
                        |v: Option<&Value>| v.map_or_else(|| "(none)".into(), json)
                    } else {
                        plain
                    };
                    format!(
                        "{} {} → {}",
                        c.field,
                        show(c.a.as_ref()),
                        show(c.b.as_ref())
                    )
                })
                .collect();
            format!("{}: {}", file.path, changes.join("; "))
        }
    }
}

fn entry_summary(entry: &EntrySummary) -> String {
    let mut text = format!(
        "{}, mode {:04o}, owner {}:{}",
        entry.kind, entry.mode, entry.uid, entry.gid
    );
    if let Some(digest) = &entry.sha256 {
        let _ = write!(text, ", {digest} ({} bytes)", entry.size);
    }
    if let Some(target) = &entry.link_target {
        let _ = write!(text, ", → {target:?}");
    }
    text
}

/// A value as written in file lines: strings (digests, modes, owners) as they are.
fn plain(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn field_line(change: &FieldChange) -> String {
    match (&change.a, &change.b) {
        (None, Some(Value::Bool(true))) => format!("{}: added", change.field),
        (Some(Value::Bool(true)), None) => format!("{}: removed", change.field),
        (None, Some(b)) => format!("{}: added {}", change.field, json(b)),
        (Some(a), None) => format!("{}: removed (was {})", change.field, json(a)),
        (Some(a), Some(b)) => format!("{}: {} → {}", change.field, json(a), json(b)),
        (None, None) => format!("{}: (absent on both sides)", change.field),
    }
}

fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}
