//! The OCI image layout sink (`oci:DIR[:TAG]`). Adding to an existing layout keeps its
//! other images; `index.json` is replaced atomically, after every blob is in place.

use std::fs;
use std::path::{Path, PathBuf};

use hoist_layers::BlobStore;

use super::{Sink, WriteReport, effective_tags, index_json, store_blob, tagged_entries};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomically;
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
    let bytes = index_json(&index, path)?;
    write_atomically(&path.join("index.json"), &bytes)?;
    Ok(WriteReport {
        bytes_written,
        target: format!("oci:{}", path.display()),
    })
}
