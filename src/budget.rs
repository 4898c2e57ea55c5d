//! Size budgets (`[budget]`): `max_size` (compressed, per platform image, base and
//! config included), `max_unpacked` (the layers' uncompressed tars) and `max_growth`
//! (against the image the previous release's tag names). Checked after the build and
//! before anything is uploaded; a breach is an error naming the platform, the size,
//! the limit and the largest new layers.
//!
//! Uncompressed sizes are measured by streaming each layer through its decompressor
//! (digest checked on the way), once per layer and only when `max_unpacked` is set.

use std::collections::BTreeMap;
use std::io::{self, Read};

use hoist_layers::{Digest, open_blob};
use serde::Serialize;

use oci_spec::distribution::Reference;

use crate::error::{Error, Result};
use crate::oci::image::{BlobSource, Image, PlatformImage};
use crate::oci::model::{Index, Manifest};
use crate::oci::platform::Platform;
use crate::registry::transport::{Access, Transport};

pub use crate::plan::budget::{Budget, parse_percent, parse_size};

/// One layer's sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerSize {
    /// Compressed digest.
    pub digest: Digest,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed size, when measured.
    pub unpacked: Option<u64>,
    /// `base` or the source it was built from.
    pub origin: String,
}

/// One platform image's sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlatformSize {
    /// `linux/amd64`.
    pub platform: String,
    /// Compressed: every layer plus the config.
    pub size: u64,
    /// Uncompressed layers, when measured.
    pub unpacked: Option<u64>,
    /// Its layers, base first.
    pub layers: Vec<LayerSize>,
}

/// The sizes of every platform image; uncompressed ones when `unpacked`.
pub fn sizes(image: &Image, unpacked: bool) -> Result<Vec<PlatformSize>> {
    let mut measured: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for platform in &image.platforms {
        let mut layers = Vec::new();
        for (layer, report) in platform.manifest.layers.iter().zip(&platform.layers) {
            let size = if unpacked {
                let known = measured.get(&layer.digest).copied();
                let size = if let Some(size) = known {
                    size
                } else {
                    let size = unpacked_size(image, &layer.digest, layer.size)?;
                    measured.insert(layer.digest.clone(), size);
                    size
                };
                Some(size)
            } else {
                None
            };
            layers.push(LayerSize {
                digest: layer.digest.clone(),
                size: layer.size,
                unpacked: size,
                origin: report.origin.clone(),
            });
        }
        out.push(PlatformSize {
            platform: platform.platform.to_string(),
            size: compressed_size(platform),
            unpacked: unpacked.then(|| layers.iter().filter_map(|l| l.unpacked).sum()),
            layers,
        });
    }
    Ok(out)
}

fn compressed_size(platform: &PlatformImage) -> u64 {
    platform.manifest.config.size + platform.manifest.layers.iter().map(|l| l.size).sum::<u64>()
}

/// A layer's uncompressed size, streamed from its blob (digest checked).
fn unpacked_size(image: &Image, digest: &Digest, size: u64) -> Result<u64> {
    let Some(blob) = image.blobs.get(digest) else {
        return Ok(0); // a foreign layer: not stored
    };
    let path = match &blob.source {
        BlobSource::Trusted(p) | BlobSource::Unverified(p) | BlobSource::OnDemand(p) => p,
        BlobSource::Bytes(bytes) => return Ok(bytes.len() as u64),
    };
    let fail = |e: &dyn std::fmt::Display| Error::LayerRead {
        layer: digest.clone(),
        message: format!("measuring its uncompressed size: {e}"),
    };
    let mut blob = open_blob(path, digest, size)?.reader();
    let counted = count_unpacked(&mut blob).map_err(|e| fail(&e));
    // The digest first: a blob that is not its digest is the error, whatever its
    // decompressor said.
    let drained = io::copy(&mut blob, &mut io::sink());
    blob.finish()?;
    drained.map_err(|e| fail(&e))?;
    counted
}

/// The bytes a layer blob decompresses to (gzip, zstd or plain, by magic bytes),
/// streamed: nothing of it is held.
fn count_unpacked(blob: impl Read) -> io::Result<u64> {
    io::copy(&mut crate::tar_reader::decompressed(blob)?, &mut io::sink())
}

/// The largest new layers of a platform, for a breach's message.
fn largest_new(platform: &PlatformSize) -> String {
    let mut new: Vec<&LayerSize> = platform
        .layers
        .iter()
        .filter(|l| l.origin != "base")
        .collect();
    new.sort_by(|a, b| b.size.cmp(&a.size).then(a.digest.cmp(&b.digest)));
    if new.is_empty() {
        return "no new layers (the base alone is over)".into();
    }
    let listed: Vec<String> = new
        .iter()
        .take(3)
        .map(|l| {
            let unpacked = l
                .unpacked
                .map(|u| format!(", {} unpacked", crate::inspect::human_bytes(u)))
                .unwrap_or_default();
            format!(
                "{} {} ({}{unpacked})",
                l.origin,
                l.digest,
                crate::inspect::human_bytes(l.size)
            )
        })
        .collect();
    format!("largest new layers: {}", listed.join("; "))
}

/// Checks `max_size` and `max_unpacked`; answers the sizes measured (for `--json`).
pub fn check(image: &Image, budget: &Budget) -> Result<Vec<PlatformSize>> {
    let sizes = sizes(image, budget.max_unpacked.is_some())?;
    for platform in &sizes {
        let over = |what: &str, size: u64, limit: u64, field: &str| Error::Budget {
            message: format!(
                "platform {}: {what} {} ({size} bytes) is over {field} {} ({limit} bytes); {}",
                platform.platform,
                crate::inspect::human_bytes(size),
                crate::inspect::human_bytes(limit),
                largest_new(platform)
            ),
        };
        if let Some(limit) = budget.max_size
            && platform.size > limit
        {
            return Err(over(
                "compressed size",
                platform.size,
                limit,
                "budget.max_size",
            ));
        }
        if let (Some(limit), Some(size)) = (budget.max_unpacked, platform.unpacked)
            && size > limit
        {
            return Err(over(
                "uncompressed size",
                size,
                limit,
                "budget.max_unpacked",
            ));
        }
    }
    Ok(sizes)
}

/// One platform's growth against the previous image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// `linux/amd64`.
    pub platform: String,
    /// Compressed size before (`None`: the previous image had no such platform).
    pub before: Option<u64>,
    /// Compressed size now.
    pub now: u64,
    /// `now - before` in bytes.
    pub delta: i64,
    /// The change in percent of `before`.
    pub percent: Option<f64>,
    /// Layers of the new image the previous one lacks.
    pub changed_layers: Vec<Digest>,
}

/// A platform manifest of an earlier image, for growth.
pub type Earlier = (Platform, Manifest);

/// The platform manifests of an image read from somewhere else.
pub fn earlier_of(image: &Image) -> Vec<Earlier> {
    image
        .platforms
        .iter()
        .map(|p| (p.platform.clone(), p.manifest.clone()))
        .collect()
}

fn manifest_size(manifest: &Manifest) -> u64 {
    manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>()
}

/// Per platform: before, now, delta and the layers that changed (the table `hoist
/// release` prints).
pub fn growth(previous: &[Earlier], now: &Image) -> Vec<Growth> {
    now.platforms
        .iter()
        .map(|platform| {
            let before = previous
                .iter()
                .find(|(p, _)| *p == platform.platform)
                .map(|(_, m)| m);
            let size = compressed_size(platform);
            let before_size = before.map(manifest_size);
            let delta = before_size.map_or(0, |b| size.cast_signed() - b.cast_signed());
            let old: Vec<&Digest> = before
                .map(|b| b.layers.iter().map(|l| &l.digest).collect())
                .unwrap_or_default();
            Growth {
                platform: platform.platform.to_string(),
                before: before_size,
                now: size,
                delta,
                percent: before_size
                    .filter(|b| *b > 0)
                    .map(|b| delta as f64 * 100.0 / b as f64),
                changed_layers: platform
                    .manifest
                    .layers
                    .iter()
                    .filter(|l| !old.contains(&&l.digest))
                    .map(|l| l.digest.clone())
                    .collect(),
            }
        })
        .collect()
}

/// Checks `max_growth` against `previous` (named by `previous_name` in messages).
pub fn check_growth(
    previous: &[Earlier],
    previous_name: &str,
    now: &Image,
    budget: &Budget,
) -> Result<Vec<Growth>> {
    let table = growth(previous, now);
    if let Some(limit) = budget.max_growth {
        for row in &table {
            if let Some(percent) = row.percent
                && percent > limit
            {
                return Err(Error::Budget {
                    message: format!(
                        "platform {}: grew {:.1}% against {previous_name} ({} → {}), over budget.max_growth {limit}%; new layers: {}",
                        row.platform,
                        percent,
                        crate::inspect::human_bytes(row.before.unwrap_or_default()),
                        crate::inspect::human_bytes(row.now),
                        row.changed_layers
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    Ok(table)
}

/// The platform manifests `target`'s repository holds under `tag`, documents only
/// (verified); `None` when there is no such tag.
pub async fn earlier_in_registry(
    target: &Reference,
    tag: &str,
    transport: &Transport,
) -> Result<Option<Vec<Earlier>>> {
    let repository = transport.repository(target, Access::Pull).await?;
    let Some(digest) = repository.manifest_digest(tag).await? else {
        return Ok(None);
    };
    let fetch = |reference: String, expected: Option<Digest>| {
        let repository = &repository;
        async move {
            let bytes = repository.manifest(&reference).await?;
            let found = Digest::sha256_of(&bytes);
            if expected.is_some_and(|e| e != found) {
                return Err(Error::Registry {
                    registry: repository.display(),
                    message: format!("{reference} does not match its digest"),
                });
            }
            Ok::<Vec<u8>, Error>(bytes)
        }
    };
    // By the digest just read: the same document, and asked once per command.
    let top = fetch(digest.to_string(), Some(digest)).await?;
    let parse_error = |e: serde_json::Error| Error::Registry {
        registry: repository.display(),
        message: format!("{}:{tag}: {e}", repository.display()),
    };
    let value: serde_json::Value = serde_json::from_slice(&top).map_err(parse_error)?;
    let mut earlier = Vec::new();
    if value.get("manifests").is_some() {
        let index: Index = serde_json::from_value(value).map_err(parse_error)?;
        for entry in index.manifests {
            let Some(platform) = entry.platform.clone() else {
                continue;
            };
            let bytes = fetch(entry.digest.to_string(), Some(entry.digest.clone())).await?;
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(parse_error)?;
            earlier.push((platform, manifest));
        }
    } else {
        let manifest: Manifest = serde_json::from_value(value).map_err(parse_error)?;
        // A single-manifest image: its platform is its config's, unknown here; the
        // growth table matches it to the only platform built, whatever it is.
        earlier.push((Platform::new("unknown", "unknown", None), manifest));
    }
    Ok(Some(earlier))
}

/// Growth in `hoist release`: against the image the previous version's tag names in
/// the target repository, printed as a table (`note`) and checked against
/// `max_growth`; without that image, nothing to compare (said when `max_growth` is
/// set).
pub fn check_previous_release(
    image: &Image,
    budget: &Budget,
    target: &Reference,
    previous_tag: &str,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Option<Vec<Growth>>> {
    let name = format!(
        "{}/{}:{previous_tag}",
        target.registry(),
        target.repository()
    );
    let earlier = crate::registry::block_on(earlier_in_registry(target, previous_tag, transport))?;
    let Some(mut earlier) = earlier else {
        if budget.max_growth.is_some() {
            note(format!(
                "budget.max_growth: {name} does not exist, so growth is not checked"
            ));
        }
        return Ok(None);
    };
    if let ([only], [(platform, _)]) = (image.platforms.as_slice(), earlier.as_mut_slice())
        && platform.os == "unknown"
    {
        *platform = only.platform.clone();
    }
    let table = check_growth(&earlier, &name, image, budget)?;
    note(render_growth(&name, &table));
    Ok(Some(table))
}

/// The growth table `hoist release` prints: per platform, before, now, the change
/// and the layers the previous image lacks.
pub fn render_growth(previous_name: &str, table: &[Growth]) -> String {
    use std::fmt::Write as _;

    use crate::inspect::human_bytes;
    let mut text = format!("growth against {previous_name}:");
    for row in table {
        let before = row.before.map_or_else(|| "-".to_string(), human_bytes);
        let sign = if row.delta < 0 { "-" } else { "+" };
        let percent = row
            .percent
            .map_or_else(String::new, |p| format!(" ({p:+.1}%)"));
        let _ = write!(
            text,
            "\n  {:<16} {before:>10} → {:>10}  {sign}{}{percent}; {} layer{} changed{}",
            row.platform,
            human_bytes(row.now),
            human_bytes(row.delta.unsigned_abs()),
            row.changed_layers.len(),
            if row.changed_layers.len() == 1 {
                ""
            } else {
                "s"
            },
            if row.changed_layers.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    row.changed_layers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Image {
        let layout = crate::oci::layout::Layout::open(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/base"),
        )
        .unwrap();
        crate::oci::source::load_layout(&layout, &crate::oci::location::Selector::Tag("1.0".into()))
            .unwrap()
    }

    #[test]
    fn sizes_growth_and_their_limits() {
        let image = base();
        let sizes = check(&image, &Budget::default()).unwrap();
        let amd64 = sizes.iter().find(|s| s.platform == "linux/amd64").unwrap();
        // testdata/README.md: layer 1029319 bytes, config 528.
        assert_eq!(amd64.size, 1_029_319 + 528);
        assert_eq!(amd64.unpacked, None);
        let measured = check(
            &image,
            &Budget {
                max_unpacked: Some(u64::MAX),
                ..Budget::default()
            },
        )
        .unwrap();
        let unpacked = measured[0].unpacked.unwrap();
        assert!(unpacked > measured[0].size, "{unpacked}");
        let err = check(
            &image,
            &Budget {
                max_size: Some(1_000_000),
                ..Budget::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("budget.max_size") && err.contains("platform linux/"),
            "{err}"
        );

        // Against itself: no growth; against an image half its size: 100%.
        let same = check_growth(&earlier_of(&image), "prev", &image, &Budget::default()).unwrap();
        assert!(
            same.iter()
                .all(|g| g.delta == 0 && g.changed_layers.is_empty())
        );
        let mut smaller = earlier_of(&image);
        for (_, manifest) in &mut smaller {
            manifest.layers[0].size /= 2;
            manifest.layers[0].digest = Digest::sha256_of(b"older");
        }
        let limit = Budget {
            max_growth: Some(10.0),
            ..Budget::default()
        };
        let err = check_growth(&smaller, "REG/app:1.0.0", &image, &limit)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REG/app:1.0.0") && err.contains("budget.max_growth"),
            "{err}"
        );
        let table = growth(&smaller, &image);
        assert!(
            table
                .iter()
                .all(|g| g.percent.unwrap() > 99.0 && g.changed_layers.len() == 1)
        );
    }

    #[test]
    fn sizes_and_percentages_parse() {
        assert_eq!(parse_size("f", "250MB").unwrap(), 250_000_000);
        assert_eq!(parse_size("f", "1.5GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("f", "800000").unwrap(), 800_000);
        assert_eq!(parse_size("f", "10 kB").unwrap(), 10_000);
        for bad in [
            "",
            "MB",
            "ten MB",
            "5 parsecs",
            "-1MB",
            "1e400GB",
            "99999999999TiB",
        ] {
            let err = parse_size("budget.max_size", bad).unwrap_err().to_string();
            assert!(err.contains("budget.max_size"), "{err}");
        }
        assert!((parse_percent("f", "10%").unwrap() - 10.0).abs() < f64::EPSILON);
        assert!(parse_percent("budget.max_growth", "lots").is_err());
    }
}
