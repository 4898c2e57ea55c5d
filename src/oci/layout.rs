//! Reading OCI image layouts (image-layout spec 1.0): `oci-layout`, `index.json` and
//! content-addressed blobs, every blob checked against its descriptor when read.
//!
//! Blobs are opened with [`hoist_layers::open_blob`]: a blob (or the `blobs/` or
//! `blobs/<alg>/` directory above it) that is a symbolic link is refused, naming it,
//! even when it points at another blob of the same layout. The spec stores blobs as
//! files, and refusing every link is the rule that needs no path resolution to be
//! sure nothing outside the layout (an `/etc/passwd` with a matching size) is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use hoist_layers::{Digest, open_blob};
use serde::de::DeserializeOwned;

use super::limits::{LAYOUT_MARKER_LIMIT, LISTING_LIMIT, document_limit};
use super::location::Selector;
use super::model::{Descriptor, Index, REF_NAME};
use crate::error::{Error, Result};
use crate::fsutil::read_bounded;

/// The `oci-layout` file's content.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout on disk, opened for reading.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, checking that it is one.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout> {
        let root = root.into();
        let marker = root.join("oci-layout");
        let text =
            read_bounded(&marker, LAYOUT_MARKER_LIMIT, "an oci-layout file").map_err(|error| {
                match error {
                    Error::Io { source: e, .. } => Error::Layout {
                        path: root.clone(),
                        reason: if root.is_dir() {
                            format!("not an OCI image layout: cannot read oci-layout ({e})")
                        } else {
                            format!("no such directory ({e})")
                        },
                    },
                    other => other,
                }
            })?;
        let version: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| Error::Layout {
                path: root.clone(),
                reason: format!("oci-layout is not JSON: {e}"),
            })?;
        match version.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(v) if v.starts_with("1.") => Ok(Layout { root }),
            other => Err(Error::Layout {
                path: root,
                reason: format!("unsupported imageLayoutVersion {other:?}"),
            }),
        }
    }

    /// A blob tree that is not a full layout (the layer cache, which holds bases
    /// fetched from registries): only [`Layout::blob_path`] is meaningful.
    pub fn over_blobs(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// The top-level `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes =
            read_bounded(&path, LISTING_LIMIT, "an index.json").map_err(|error| match error {
                Error::Io { source: e, .. } => Error::Layout {
                    path: self.root.clone(),
                    reason: format!("cannot read index.json: {e}"),
                },
                other => other,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Layout {
            path: self.root.clone(),
            reason: format!("index.json is malformed: {e}"),
        })
    }

    /// The `index.json` entry a selector names.
    pub fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        let index = self.index()?;
        let fail = |reason: String| Error::Layout {
            path: self.root.clone(),
            reason,
        };
        let tags = || {
            let names: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|d| d.annotation(REF_NAME))
                .collect();
            if names.is_empty() {
                "no tagged images".to_string()
            } else {
                format!("tags: {}", names.join(", "))
            }
        };
        let images: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| {
                d.annotation(REF_NAME).is_some() || super::artifact::artifact_type_of(d).is_none()
            })
            .collect();
        let found = match selector {
            // Artifacts listed beside an image (its SBOMs) are not images to choose.
            Selector::Default => match images.as_slice() {
                [only] => Some(*only),
                [] => return Err(fail("index.json lists no images".into())),
                _ => {
                    return Err(fail(format!(
                        "holds {} images; name one with :TAG or @DIGEST ({})",
                        images.len(),
                        tags()
                    )));
                }
            },
            Selector::Tag(tag) => index
                .manifests
                .iter()
                .find(|d| d.annotation(REF_NAME) == Some(tag.as_str())),
            Selector::Digest(digest) => index.manifests.iter().find(|d| &d.digest == digest),
        };
        found
            .cloned()
            .ok_or_else(|| fail(format!("has no image {selector} ({})", tags())))
    }

    /// Reads a blob fully and checks its size and digest against the descriptor. For
    /// documents (manifests, configs, artifacts), each kind up to its limit
    /// ([`super::limits`]); layers are streamed elsewhere.
    pub fn read_verified(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&descriptor.digest);
        let fail = |reason: String| Error::Layout {
            path: self.root.clone(),
            reason,
        };
        let (limit, what) = document_limit(&descriptor.media_type);
        if descriptor.size > limit {
            // Refused from the descriptor's claim, before the file is opened.
            return Err(Error::TooLarge {
                what: format!("{what} ({} {})", descriptor.media_type, descriptor.digest),
                path,
                size: descriptor.size,
                limit,
            });
        }
        read_blob_file(&path, &descriptor.digest, descriptor.size).map_err(|e| fail(e.to_string()))
    }

    /// Reads, verifies and parses a JSON blob.
    pub fn read_json<T: DeserializeOwned>(
        &self,
        descriptor: &Descriptor,
        what: &'static str,
    ) -> Result<T> {
        let bytes = self.read_verified(descriptor)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what,
            digest: descriptor.digest.clone(),
            path: self.blob_path(&descriptor.digest),
            source,
        })
    }

    /// Checks that a blob (a layer we will not read now) is present as a regular file
    /// (no link) with the size its descriptor gives; its digest is checked before it
    /// is copied or sent.
    pub fn check_present(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        open_blob(&path, &descriptor.digest, descriptor.size)
            .map(drop)
            .map_err(|e| Error::Layout {
                path: self.root.clone(),
                reason: e.to_string(),
            })
    }
}

/// Checks a blob file (`<root>/blobs/<alg>/<hex>` of a layout, an unpacked archive or
/// the cache) before its bytes leave hoist: no link, `size` bytes, hashing to `digest`.
/// Hashes it unless this run already has (a layer hoist just built or found intact in
/// the cache costs nothing here). Returns the file checked, at its start: what is sent
/// is read from this handle, never from the path again (a link swapped in after the
/// check is not followed). Blocking: hashing a layer takes a while.
pub fn verify_blob_file(path: &Path, digest: &Digest, size: u64) -> Result<std::fs::File> {
    Ok(open_blob(path, digest, size)?.verify()?)
}

/// Reads a small blob file whole, checked as [`verify_blob_file`] does.
pub fn read_blob_file(path: &Path, digest: &Digest, size: u64) -> Result<Vec<u8>> {
    let mut reader = open_blob(path, digest, size)?.reader();
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    reader.finish()?;
    Ok(bytes)
}
