//! `hoist inspect`: an image (opened with [`crate::open::open`]) rendered for people (or as the raw
//! documents with `--json`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::oci::image::Image;
use crate::oci::location::Location;

/// The raw documents as one JSON value.
pub fn to_json(location: &Location, image: &Image) -> Value {
    json!({
        "reference": location.to_string(),
        "descriptor": image.descriptor,
        "index": image.index,
        "manifests": image.platforms.iter().map(|p| json!({
            "platform": p.platform,
            "digest": p.descriptor.digest,
            "manifest": p.manifest,
            "config": p.config,
        })).collect::<Vec<_>>(),
    })
}

/// A readable description.
pub fn render(location: &Location, image: &Image) -> String {
    let mut out = String::new();
    let top = &image.descriptor;
    let kind = if image.index.is_some() {
        "index"
    } else {
        "manifest"
    };
    let _ = writeln!(out, "{location}");
    let _ = writeln!(
        out,
        "  {kind:<9} {}  {}  {}",
        top.digest,
        top.media_type,
        human_bytes(top.size)
    );
    let annotations = image.index.as_ref().and_then(|i| i.annotations.as_ref());
    for (key, value) in annotations.into_iter().flatten() {
        let _ = writeln!(out, "    {key}: {value}");
    }
    for p in &image.platforms {
        let config = &p.config;
        let _ = writeln!(out, "\n  platform {}", p.platform);
        let _ = writeln!(out, "    manifest  {}", p.descriptor.digest);
        for (key, value) in p.manifest.annotations.iter().flatten() {
            let _ = writeln!(out, "      {key}: {value}");
        }
        let _ = writeln!(out, "    config    {}", p.manifest.config.digest);
        let field = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(created) = config.get("created") {
            let _ = writeln!(out, "      {:<12}{}", "created", field(created));
        }
        let c = config.get("config").cloned().unwrap_or(Value::Null);
        for (label, key) in [
            ("entrypoint", "Entrypoint"),
            ("cmd", "Cmd"),
            ("workdir", "WorkingDir"),
            ("user", "User"),
            ("stop signal", "StopSignal"),
            ("healthcheck", "Healthcheck"),
        ] {
            if let Some(value) = c.get(key).filter(|v| !v.is_null()) {
                let _ = writeln!(out, "      {label:<12}{}", field(value));
            }
        }
        let list = |value: Option<&Value>| -> Vec<String> {
            match value {
                Some(Value::Array(items)) => items.iter().map(field).collect(),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        if v.is_string() {
                            format!("{k}={}", field(v))
                        } else {
                            k.clone()
                        }
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        for (label, key) in [
            ("env", "Env"),
            ("ports", "ExposedPorts"),
            ("volumes", "Volumes"),
            ("labels", "Labels"),
        ] {
            for (i, item) in list(c.get(key)).iter().enumerate() {
                let label = if i == 0 { label } else { "" };
                let _ = writeln!(out, "      {label:<12}{item}");
            }
        }
        let history: Vec<&Value> = config
            .get("history")
            .and_then(Value::as_array)
            .map(|h| {
                h.iter()
                    .filter(|e| {
                        !e.get("empty_layer")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let total: u64 = p.manifest.layers.iter().map(|l| l.size).sum();
        let _ = writeln!(
            out,
            "    layers    {} ({})",
            p.manifest.layers.len(),
            human_bytes(total)
        );
        for (i, layer) in p.manifest.layers.iter().enumerate() {
            let kind = layer
                .media_type
                .rsplit(['.', '/'])
                .next()
                .unwrap_or(&layer.media_type);
            let by = history
                .get(i)
                .and_then(|h| h.get("created_by"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let _ = writeln!(
                out,
                "      {:>2}  {}  {:>10}  {kind:<9} {by}",
                i + 1,
                layer.digest,
                human_bytes(layer.size)
            );
        }
    }
    out
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
