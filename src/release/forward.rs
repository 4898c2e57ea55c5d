//! Tags only move forward: before a release pushes `latest`, `1` or `1.2`, the
//! repository's tags are listed and each of those that exists is resolved to the
//! version it names now. Moving it to a lower version (a backport `1.1.5` after `1.2.0`
//! must not take `latest` or `1`) is refused unless forced: such a tag stays where it
//! is and the rest of the release goes on, so a backport publishes `1.1.5` and `1.1`
//! and leaves `1` and `latest` on `1.2.0`.
//!
//! The version a tag names is read from the image itself, in order: the
//! `org.opencontainers.image.version` annotation of the index or manifest (hoist puts
//! it there), the same label in the config of its first platform (other builders put
//! it there), else the highest SemVer tag of the repository naming the same digest.
//! A tag whose version cannot be told is moved, with a warning in the result.

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use semver::Version;
use serde_json::Value;

use super::Result;
use super::labels::VERSION;
use crate::oci::reference::{with_digest, with_tag};
use crate::registry::block_on;
use crate::registry::manifest::fetch_manifest;
use crate::registry::transport::{Access, Repository, Transport};

/// The largest config read to find a version label.
const CONFIG_LIMIT: usize = 4 << 20;

/// What a moving tag names before the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagState {
    /// The tag.
    pub tag: String,
    /// The digest it names, `None` when the tag does not exist yet.
    pub digest: Option<String>,
    /// The version of that image, when it can be told.
    pub version: Option<Version>,
}

/// The state of each of `moving` (tags that move between releases) in `target`'s
/// repository.
pub async fn tag_states(
    target: &Reference,
    moving: &[String],
    transport: &Transport,
) -> Result<Vec<TagState>> {
    let repository = transport.repository(target, Access::Pull).await?;
    // A repository nobody pushed to yet has no tags.
    let existing = repository.tags().await?;
    let mut states = Vec::new();
    for tag in moving {
        if !existing.contains(tag) {
            states.push(TagState {
                tag: tag.clone(),
                digest: None,
                version: None,
            });
            continue;
        }
        let (descriptor, bytes) = fetch_manifest(&repository, &with_tag(target, tag), None).await?;
        let digest = descriptor.digest.to_string();
        let mut version = version_in_document(&repository, target, &bytes).await;
        if version.is_none() {
            version = highest_semver_tag_at(&repository, &existing, &digest).await;
        }
        states.push(TagState {
            tag: tag.clone(),
            digest: Some(digest),
            version,
        });
    }
    Ok(states)
}

/// What the forward-only rule decides for the moving tags of one push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardCheck {
    /// Tags that name a higher version now, with that version: they are not moved.
    pub kept: Vec<(String, Version)>,
    /// Tags whose version cannot be told: moved (the caller warns).
    pub unknown: Vec<String>,
}

/// Sorts out which moving tags would go backwards if `new` were pushed to them.
pub fn check_forward(states: &[TagState], new: &Version) -> ForwardCheck {
    let mut check = ForwardCheck::default();
    for state in states {
        match (&state.digest, &state.version) {
            (Some(_), None) => check.unknown.push(state.tag.clone()),
            (Some(_), Some(current)) if cmp_precedence(current, new).is_gt() => {
                check.kept.push((state.tag.clone(), current.clone()));
            }
            // A new tag, or one at this version or lower: it moves.
            _ => {}
        }
    }
    check
}

/// SemVer precedence (build metadata ignored, as SemVer says).
fn cmp_precedence(a: &Version, b: &Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

/// Blocking wrapper of [`tag_states`] for the synchronous CLI.
pub fn tag_states_blocking(
    target: &Reference,
    moving: &[String],
    transport: &Transport,
) -> Result<Vec<TagState>> {
    block_on(async { Ok(tag_states(target, moving, transport).await) })?
}

/// The version annotation of the document, else the label in its (first platform's)
/// config.
async fn version_in_document(
    repository: &Repository,
    target: &Reference,
    bytes: &[u8],
) -> Option<Version> {
    let document: Value = serde_json::from_slice(bytes).ok()?;
    if let Some(version) = annotation_version(&document) {
        return Some(version);
    }
    let manifest = match document.get("manifests").and_then(Value::as_array) {
        Some(children) => {
            let child = children.first()?.get("digest")?.as_str()?;
            let (_, bytes) = fetch_manifest(repository, &with_digest(target, child), Some(child))
                .await
                .ok()?;
            let manifest: Value = serde_json::from_slice(&bytes).ok()?;
            if let Some(version) = annotation_version(&manifest) {
                return Some(version);
            }
            manifest
        }
        None => document,
    };
    let config_digest: Digest = manifest.pointer("/config/digest")?.as_str()?.parse().ok()?;
    let config = repository
        .blob_bytes(&config_digest, CONFIG_LIMIT)
        .await
        .ok()?;
    let config: Value = serde_json::from_slice(&config).ok()?;
    let label = config.pointer("/config/Labels")?.get(VERSION)?.as_str()?;
    Version::parse(label.trim_start_matches('v')).ok()
}

fn annotation_version(document: &Value) -> Option<Version> {
    let text = document.get("annotations")?.get(VERSION)?.as_str()?;
    Version::parse(text.trim_start_matches('v')).ok()
}

/// The highest tag that parses as SemVer (`1.2.3`, `v1.2.3`) and names `digest`.
async fn highest_semver_tag_at(
    repository: &Repository,
    tags: &[String],
    digest: &str,
) -> Option<Version> {
    let mut versions: Vec<(Version, &String)> = tags
        .iter()
        .filter_map(|t| {
            Version::parse(t.trim_start_matches('v'))
                .ok()
                .map(|v| (v, t))
        })
        .collect();
    versions.sort_by(|a, b| cmp_precedence(&b.0, &a.0));
    for (version, tag) in versions {
        let named = repository.manifest_digest(tag).await.ok()??;
        if named.as_str() == digest {
            return Some(version);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(tag: &str, version: Option<&str>) -> TagState {
        TagState {
            tag: tag.into(),
            digest: Some("sha256:x".into()),
            version: version.map(|v| Version::parse(v).unwrap()),
        }
    }

    #[test]
    fn tags_only_move_forward() {
        let new = Version::parse("1.1.5").unwrap();
        let states = [
            state("1.1", Some("1.1.4")),
            state("1", Some("1.2.0")),
            state("latest", Some("1.2.0")),
            // Same version (a resumed push) and a missing tag move.
            state("1.1.5", Some("1.1.5")),
            TagState {
                tag: "edge".into(),
                digest: None,
                version: None,
            },
            state("stable", None),
        ];
        let check = check_forward(&states, &new);
        let v120 = Version::parse("1.2.0").unwrap();
        assert_eq!(
            check.kept,
            [
                ("1".to_string(), v120.clone()),
                ("latest".to_string(), v120)
            ]
        );
        assert_eq!(check.unknown, ["stable"]);
        // A release is ahead of its own pre-releases; build metadata does not count.
        let rc = [
            state("latest", Some("1.1.5-rc.1")),
            state("1", Some("1.1.5+b2")),
        ];
        assert_eq!(check_forward(&rc, &new), ForwardCheck::default());
    }
}
