//! The OCI image layout sink (`oci:DIR[:TAG]`). Adding to an existing layout keeps its
//! other images; `index.json` is replaced atomically, after every blob is in place.

use std::fs;
use std::path::{Path, PathBuf};

use hoist_layers::BlobStore;

use super::{
    Sink, WriteReport, effective_tags, index_json, referrer_entries, store_blob, store_referrers,
    tagged_entries,
};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomically;
use crate::oci::artifact::{ArtifactManifest, artifact_type_of};
use crate::oci::image::Image;
use crate::oci::layout::{Layout, OCI_LAYOUT_FILE};
use crate::oci::media;
use crate::oci::model::{Index, REF_NAME};

/// Writes into an OCI image layout directory.
pub struct LayoutSink {
    /// The layout directory.
    pub path: PathBuf,
    /// The tag from the location, if any.
    pub tag: Option<String>,
}

impl Sink for LayoutSink {
    fn preflight(&self) -> Result<()> {
        target_state(&self.path).map(|_| ())
    }

    fn write(&self, image: &Image, tags: &[String]) -> Result<WriteReport> {
        let (existing, created) = match target_state(&self.path)? {
            Target::Absent => {
                fs::create_dir_all(&self.path).at(&self.path)?;
                (None, true)
            }
            Target::Empty => (None, false),
            Target::Layout(index) => (index, false),
        };
        let result = write_into(
            &self.path,
            existing,
            image,
            &effective_tags(self.tag.as_deref(), tags),
        );
        if result.is_err() && created {
            // We made the directory: leave nothing behind. An existing layout keeps
            // the blobs already added, which are harmless and valid.
            let _ = fs::remove_dir_all(&self.path);
        }
        result
    }
}

/// What is at the output path.
enum Target {
    /// Nothing: the layout will be created.
    Absent,
    /// An empty directory.
    Empty,
    /// A layout, with its index if it has one.
    Layout(Option<Index>),
}

/// Refuses anything that is not absent, an empty directory or a layout: writing blobs
/// into an arbitrary directory would mix our files with the user's.
fn target_state(path: &Path) -> Result<Target> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Target::Absent),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        Ok(meta) if !meta.is_dir() => Err(Error::Output {
            path: path.to_path_buf(),
            reason: "exists and is not a directory, so not an OCI image layout".into(),
        }),
        Ok(_) if path.join("oci-layout").exists() => {
            let layout = Layout::open(path)?;
            let index = if path.join("index.json").exists() {
                Some(layout.index()?)
            } else {
                None
            };
            Ok(Target::Layout(index))
        }
        Ok(_) => {
            let mut entries = fs::read_dir(path).at(path)?;
            if entries.next().is_some() {
                return Err(Error::Output {
                    path: path.to_path_buf(),
                    reason: "exists, is not empty and is not an OCI image layout (no oci-layout file); refusing to write into it".into(),
                });
            }
            Ok(Target::Empty)
        }
    }
}

fn write_into(
    path: &Path,
    existing: Option<Index>,
    image: &Image,
    tags: &[String],
) -> Result<WriteReport> {
    let store = BlobStore::open(path)?;
    let mut bytes_written = 0;
    for digest in image.blob_order() {
        bytes_written += store_blob(&store, digest, &image.blobs[digest])?;
    }
    bytes_written += store_referrers(&store, image)?;
    let marker = path.join("oci-layout");
    if !marker.exists() {
        write_atomically(&marker, OCI_LAYOUT_FILE.as_bytes())?;
    }
    let mut index = existing.unwrap_or_else(|| Index::new(Some(media::OCI_INDEX)));
    index.manifests.retain(|entry| {
        entry
            .annotation(REF_NAME)
            .is_none_or(|name| !tags.iter().any(|t| t == name))
    });
    index.manifests.extend(tagged_entries(image, tags));
    prune_referrers(&Layout::over_blobs(path), &mut index);
    for entry in referrer_entries(image) {
        if !index.manifests.iter().any(|d| d.digest == entry.digest) {
            index.manifests.push(entry);
        }
    }
    let bytes = index_json(&index, path)?;
    write_atomically(&path.join("index.json"), &bytes)?;
    Ok(WriteReport {
        bytes_written,
        target: format!("oci:{}", path.display()),
    })
}

/// Drops the untagged artifact entries whose subject no tagged entry reaches any more
/// (the SBOMs of an image a rebuild replaced under its tag), so a layout does not pile
/// up referrers of images nobody can name. An entry whose manifest cannot be read is
/// kept: it is not ours to judge.
fn prune_referrers(layout: &Layout, index: &mut Index) {
    let mut reachable = std::collections::BTreeSet::new();
    for entry in &index.manifests {
        if artifact_type_of(entry).is_some() && entry.annotation(REF_NAME).is_none() {
            continue;
        }
        reachable.insert(entry.digest.clone());
        if media::is_index(&entry.media_type)
            && let Ok(child) = layout.read_json::<Index>(entry, "index")
        {
            reachable.extend(child.manifests.into_iter().map(|d| d.digest));
        }
    }
    index.manifests.retain(|entry| {
        if artifact_type_of(entry).is_none() || entry.annotation(REF_NAME).is_some() {
            return true;
        }
        match layout.read_json::<ArtifactManifest>(entry, "artifact manifest") {
            Ok(manifest) => manifest
                .subject
                .is_none_or(|subject| reachable.contains(&subject.digest)),
            Err(_) => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::oci::artifact::{Artifact, SPDX_JSON, artifact_type_of};
    use crate::oci::location::Selector;
    use crate::oci::source::load_layout;

    /// A referrer written beside an image is listed untagged in index.json, read back
    /// with the image, leaves `oci:DIR` (no tag) naming the image, and is dropped when
    /// a rebuild replaces its subject under the tag.
    #[test]
    fn referrers_are_listed_read_back_and_pruned() {
        let base =
            Layout::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/base")).unwrap();
        let mut image = load_layout(&base, &Selector::Tag("1.0".into()))
            .unwrap()
            .for_copy("base", false)
            .unwrap();
        let sbom = Artifact {
            artifact_type: SPDX_JSON.into(),
            media_type: SPDX_JSON.into(),
            document: b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(),
            annotations: std::collections::BTreeMap::new(),
        };
        image
            .referrers
            .push(sbom.manifest(&image.platforms[0].descriptor));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sink = LayoutSink {
            path: out.clone(),
            tag: None,
        };
        sink.write(&image, &[]).unwrap();
        let layout = Layout::open(&out).unwrap();
        let index = layout.index().unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(artifact_type_of(&index.manifests[1]), Some(SPDX_JSON));
        assert_eq!(index.manifests[1].annotation(REF_NAME), None);
        let back = load_layout(&layout, &Selector::Default).unwrap();
        assert_eq!(back.descriptor.digest, image.descriptor.digest);
        assert_eq!(back.referrers, image.referrers);

        // Another image under the same tag: the old image's SBOM goes.
        let mut other = image.clone();
        other.referrers.clear();
        let platform = other.platforms.remove(1);
        other.platforms = vec![platform];
        let other = other.for_copy("base", true).unwrap();
        sink.write(&other, &[]).unwrap();
        let index = layout.index().unwrap();
        assert_eq!(index.manifests.len(), 1, "{:?}", index.manifests);
    }
}
