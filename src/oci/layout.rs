//! Reading OCI image layouts (image-layout spec 1.0): `oci-layout`, `index.json` and
//! content-addressed blobs, every blob checked against its descriptor when read.

use std::fs;
use std::path::{Path, PathBuf};

use hoist_layers::Digest;
use serde::de::DeserializeOwned;

use super::location::Selector;
use super::model::{Descriptor, Index, REF_NAME};
use crate::error::{Error, Result};

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
        let text = fs::read_to_string(&marker).map_err(|e| Error::Layout {
            path: root.clone(),
            reason: if root.is_dir() {
                format!("not an OCI image layout: cannot read oci-layout ({e})")
            } else {
                format!("no such directory ({e})")
            },
        })?;
        let version: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Layout {
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
        let bytes = fs::read(&path).map_err(|e| Error::Layout {
            path: self.root.clone(),
            reason: format!("cannot read index.json: {e}"),
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
        let found = match selector {
            Selector::Default => match index.manifests.as_slice() {
                [only] => Some(only),
                [] => return Err(fail("index.json lists no images".into())),
                _ => {
                    return Err(fail(format!(
                        "holds {} images; name one with :TAG or @DIGEST ({})",
                        index.manifests.len(),
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
    /// small documents (manifests, configs); layers are streamed elsewhere.
    pub fn read_verified(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        const MAX_DOCUMENT: u64 = 64 << 20;
        let path = self.blob_path(&descriptor.digest);
        let fail = |reason: String| Error::Layout {
            path: self.root.clone(),
            reason,
        };
        if descriptor.size > MAX_DOCUMENT {
            return Err(fail(format!(
                "{} {} claims {} bytes: too large for a manifest or config",
                descriptor.media_type, descriptor.digest, descriptor.size
            )));
        }
        let bytes = fs::read(&path)
            .map_err(|e| fail(format!("blob {} is missing: {e}", descriptor.digest)))?;
        let found = Digest::sha256_of(&bytes);
        if found != descriptor.digest {
            return Err(fail(format!(
                "blob {} does not match its digest (content hashes to {found})",
                descriptor.digest
            )));
        }
        if bytes.len() as u64 != descriptor.size {
            return Err(fail(format!(
                "blob {} is {} bytes, its descriptor says {}",
                descriptor.digest,
                bytes.len(),
                descriptor.size
            )));
        }
        Ok(bytes)
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

    /// Checks that a blob (a layer we will not read now) is present with the size its
    /// descriptor gives; its digest is checked when it is copied.
    pub fn check_present(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        match fs::metadata(&path) {
            Ok(meta) if meta.len() == descriptor.size => Ok(()),
            Ok(meta) => Err(Error::Layout {
                path: self.root.clone(),
                reason: format!(
                    "blob {} is {} bytes, its descriptor says {}",
                    descriptor.digest,
                    meta.len(),
                    descriptor.size
                ),
            }),
            Err(e) => Err(Error::Layout {
                path: self.root.clone(),
                reason: format!("blob {} is missing: {e}", descriptor.digest),
            }),
        }
    }
}
