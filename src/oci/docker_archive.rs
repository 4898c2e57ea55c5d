//! Reading `docker save` archives (`manifest.json` listing a config and layer tars, in
//! the legacy `ID/layer.tar` form or the blob form docker 25+ and hoist write) by
//! turning the chosen image into an OCI layout: its config and layers become blobs
//! named by their digests, under a manifest written for them.
//!
//! The config keeps its bytes, so its digest is the image's own. The layers keep
//! theirs too: uncompressed tars (what `docker save` writes) get the uncompressed
//! layer media type, gzip and zstd ones theirs. A registry's copy of the same image
//! has compressed layers, so its layer digests differ; `hoist diff` then compares
//! their files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use hoist_layers::BlobStore;
use serde::Deserialize;

use super::canonical::to_canonical;
use super::layout::OCI_LAYOUT_FILE;
use super::limits::{CONFIG_LIMIT, LISTING_LIMIT};
use super::media;
use super::model::{Descriptor, Index, Manifest};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::read_bounded;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes the image of the unpacked archive `unpacked` (the one tagged `reference`, or
/// its only image) as an OCI layout in `layout_dir`, its index entry tagged `latest`.
pub fn to_layout(
    archive: &Path,
    unpacked: &Path,
    links: &BTreeMap<PathBuf, PathBuf>,
    reference: Option<&str>,
    layout_dir: &Path,
) -> Result<()> {
    let fail = |reason: String| Error::Location {
        input: format!("docker-archive:{}", archive.display()),
        reason,
    };
    let manifest_path = unpacked.join("manifest.json");
    let text = read_bounded(
        &manifest_path,
        LISTING_LIMIT,
        "a docker archive's manifest.json",
    )
    .map_err(|error| match error {
        Error::Io { source: e, .. } => fail(format!(
            "not a docker archive: cannot read manifest.json ({e})"
        )),
        other => other,
    })?;
    let entries: Vec<Entry> = serde_json::from_slice(&text)
        .map_err(|e| fail(format!("manifest.json is malformed: {e}")))?;
    let tags = |entry: &Entry| entry.repo_tags.clone().unwrap_or_default();
    let entry = match reference {
        Some(wanted) => entries
            .iter()
            .find(|e| tags(e).iter().any(|t| t == wanted))
            .ok_or_else(|| {
                fail(format!(
                    "no image tagged `{wanted}` (it holds: {})",
                    entries.iter().flat_map(tags).collect::<Vec<_>>().join(", ")
                ))
            })?,
        None => match entries.as_slice() {
            [only] => only,
            [] => return Err(fail("manifest.json lists no image".into())),
            many => {
                return Err(fail(format!(
                    "it holds {} images: name one as docker-archive:FILE:NAME:TAG ({})",
                    many.len(),
                    many.iter().flat_map(tags).collect::<Vec<_>>().join(", ")
                )));
            }
        },
    };

    std::fs::create_dir_all(layout_dir).at(layout_dir)?;
    let store = BlobStore::open(layout_dir)?;
    let import = |relative: &str| -> Result<(Descriptor, [u8; 4])> {
        let path = resolve(relative, links)
            .map(|p| unpacked.join(p))
            .ok_or_else(|| {
                fail(format!(
                    "manifest.json names `{relative}`, outside the archive"
                ))
            })?;
        let mut file = File::open(&path).map_err(|e| {
            fail(format!(
                "manifest.json names `{relative}`, which is not in it ({e})"
            ))
        })?;
        let mut magic = [0u8; 4];
        let read = file.read(&mut magic).at(&path)?;
        let mut writer = store.writer()?;
        writer.write_all(&magic[..read]).at(&path)?;
        io::copy(&mut file, &mut writer).at(&path)?;
        let (digest, size) = writer.commit()?;
        Ok((Descriptor::new("", digest, size), magic))
    };

    let (mut config, _) = import(&entry.config)?;
    config.media_type = media::OCI_CONFIG.into();
    let config_json: serde_json::Value = serde_json::from_slice(&read_bounded(
        &store.path(&config.digest),
        CONFIG_LIMIT,
        "an image config",
    )?)
    .map_err(|e| fail(format!("the config {} is not JSON: {e}", entry.config)))?;
    let mut layers = Vec::with_capacity(entry.layers.len());
    for relative in &entry.layers {
        let (mut layer, magic) = import(relative)?;
        layer.media_type = match magic {
            [0x1f, 0x8b, ..] => media::OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => media::OCI_LAYER_ZSTD,
            _ => media::OCI_LAYER_TAR,
        }
        .into();
        layers.push(layer);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config,
        layers,
        annotations: None,
        extra: BTreeMap::default(),
    };
    let manifest_blob =
        to_canonical(&manifest).map_err(|e| fail(format!("cannot serialise the manifest: {e}")))?;
    let (digest, size) = store.put(&manifest_blob.bytes)?;
    let mut entry_descriptor = Descriptor::new(media::OCI_MANIFEST, digest, size);
    entry_descriptor.platform = crate::oci::platform::platform_of_config(&config_json);
    entry_descriptor.annotations = Some(
        [(super::model::REF_NAME.to_string(), "latest".to_string())]
            .into_iter()
            .collect(),
    );
    let mut index = Index::new(Some(media::OCI_INDEX));
    index.manifests = vec![entry_descriptor];
    let index_blob =
        to_canonical(&index).map_err(|e| fail(format!("cannot serialise index.json: {e}")))?;
    let index_path = layout_dir.join("index.json");
    std::fs::write(&index_path, &index_blob.bytes).at(&index_path)?;
    let marker = layout_dir.join("oci-layout");
    std::fs::write(&marker, OCI_LAYOUT_FILE).at(&marker)?;
    Ok(())
}

/// The file `relative` names inside the archive, following the archive's symbolic
/// links (`ID/layer.tar` → `../DIGEST.tar`); `None` when it, or a link on the way,
/// leads outside (absolute, or `..` past the top) or links loop.
fn resolve(relative: &str, links: &BTreeMap<PathBuf, PathBuf>) -> Option<PathBuf> {
    let mut path = normalise(Path::new(relative))?;
    for _ in 0..8 {
        let Some(target) = links.get(&path) else {
            return Some(path);
        };
        if target.is_absolute() {
            return None;
        }
        path = normalise(&path.parent().unwrap_or(Path::new("")).join(target))?;
    }
    None
}

/// `path` without `.` and with `..` applied; `None` if absolute or above the top.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_manifest_json_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let unpacked = dir.path().join("unpacked");
        std::fs::create_dir(&unpacked).unwrap();
        let manifest = unpacked.join("manifest.json");
        File::create(&manifest)
            .unwrap()
            .set_len(super::super::limits::LISTING_LIMIT + 1)
            .unwrap();
        let error = to_layout(
            Path::new("a.tar"),
            &unpacked,
            &BTreeMap::new(),
            None,
            &dir.path().join("layout"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(&manifest.display().to_string()),
            "{error}"
        );
        assert!(
            error
                .ends_with("over the limit of 16777216 bytes for a docker archive's manifest.json"),
            "{error}"
        );
    }

    #[test]
    fn links_are_followed_inside_the_archive_only() {
        let links: BTreeMap<PathBuf, PathBuf> = [
            ("id/layer.tar", "../abc.tar"),
            ("evil/layer.tar", "../../etc/passwd"),
            ("abs/layer.tar", "/etc/passwd"),
            ("loop/a", "b"),
            ("loop/b", "a"),
        ]
        .into_iter()
        .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
        .collect();
        assert_eq!(
            resolve("id/layer.tar", &links),
            Some(PathBuf::from("abc.tar"))
        );
        assert_eq!(
            resolve("./x/../abc.tar", &links),
            Some(PathBuf::from("abc.tar"))
        );
        for bad in [
            "evil/layer.tar",
            "abs/layer.tar",
            "loop/a",
            "../x",
            "/etc/passwd",
        ] {
            assert_eq!(resolve(bad, &links), None, "{bad}");
        }
    }
}
