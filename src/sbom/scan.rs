//! Reading a platform image's layers for its SBOM: every layer's tar is streamed (gzip,
//! zstd or plain, told by its magic bytes) from where the image says its bytes are,
//! hashed on the way and refused unless it is its digest; nothing is unpacked to disk.
//! Layers are applied in order with their whiteouts (`.wh.NAME`, `.wh..wh..opq`), so
//! a file a later layer deletes is not reported.
//!
//! Kept: the package databases of the whole image (dpkg `status` and `status.d/`, apk
//! `installed`, `os-release`), the language package metadata of the new layers
//! (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, `node_modules/**/package.json`,
//! `package-lock.json`, `Cargo.lock`) and, when asked, every regular file of the new
//! layers with its SHA-256 and SHA-1.

use std::collections::BTreeMap;
use std::io::{self, Read};

use hoist_layers::{Digest, open_blob};

use serde::{Deserialize, Serialize};

use super::gather::{Gather, Refused, Seen};
use crate::error::{Error, Result};
use crate::oci::image::{BlobSource, Image, PlatformImage};
use crate::tar_reader::{EntryHeader, layer_entries};

/// Bytes as base64 in a cached scan (JSON arrays of numbers would be four times as big).
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A map of paths to bytes, the bytes as base64.
mod base64_map {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(k, v)| (k, STANDARD.encode(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        map.into_iter()
            .map(|(k, v)| Ok((k, STANDARD.decode(v).map_err(serde::de::Error::custom)?)))
            .collect()
    }
}

/// The largest package database or metadata file read into memory (dpkg `status`,
/// apk `installed`, `METADATA`, `package.json`, `Cargo.lock`…): a full Ubuntu desktop's
/// dpkg status is about 3 MiB and the largest lock files of big monorepos tens of MiB
/// less than this. A larger one is an error naming it: an SBOM that silently left a
/// package database out would be wrong.
pub const METADATA_LIMIT: u64 = 32 << 20;

/// The most metadata one layer may make a scan hold in all: thousands of
/// `node_modules/*/package.json` of a few KiB each are usual, 256 MiB of them is not.
pub const LAYER_METADATA_LIMIT: u64 = 256 << 20;

/// A file of interest as the layers leave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// A regular file's bytes.
    File(#[serde(with = "base64_bytes")] Vec<u8>),
    /// A symbolic link's target (`/etc/os-release` usually is one).
    Link(String),
}

/// One regular file of the new layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// SHA-1, lowercase hex (SPDX 2.3 requires it of every file).
    pub sha1: String,
    /// Size in bytes.
    pub size: u64,
}

/// What the layers of one platform image hold that an SBOM reports.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Contents {
    /// Package databases and `os-release`, by path (no leading `/`), whole image; also
    /// where a Python interpreter is (its links, and an empty file for its presence).
    pub system: BTreeMap<String, Entry>,
    /// Language package metadata of the new layers, by path.
    #[serde(with = "base64_map")]
    pub language: BTreeMap<String, Vec<u8>>,
    /// Regular files of the new layers (when asked for), by path.
    pub files: BTreeMap<String, FileRecord>,
}

impl Contents {
    /// A file's bytes, following symbolic links among the kept entries (at most 8).
    pub fn system_file(&self, path: &str) -> Option<&[u8]> {
        let mut path = path.to_string();
        for _ in 0..8 {
            match self.system.get(&path)? {
                Entry::File(bytes) => return Some(bytes),
                Entry::Link(target) => path = resolve_link(&path, target),
            }
        }
        None
    }

    fn remove(&mut self, path: &str, opaque: bool) {
        let prefix = format!("{path}/");
        let gone = |p: &String| p.starts_with(&prefix) || (!opaque && p == path);
        self.system.retain(|p, _| !gone(p));
        self.language.retain(|p, _| !gone(p));
        self.files.retain(|p, _| !gone(p));
    }
}

/// `target` of a link at `path`, as a path from the root (no leading `/`).
pub fn resolve_link(path: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut dir: Vec<&str> = path.split('/').collect();
        dir.pop();
        dir
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Whether a path is a system file the SBOM reads.
pub(super) fn is_system(path: &str) -> bool {
    matches!(
        path,
        "etc/os-release" | "usr/lib/os-release" | "var/lib/dpkg/status" | "lib/apk/db/installed"
    ) || path
        .strip_prefix("var/lib/dpkg/status.d/")
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums"))
}

/// Whether a path is language package metadata the SBOM reads.
pub fn is_language(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parent = path.rsplit('/').nth(1).unwrap_or_default();
    match name {
        "METADATA" | "provenance_url.json" => parent.ends_with(".dist-info"),
        "PKG-INFO" => parent.ends_with(".egg-info"),
        "package.json" => is_node_module(path),
        "package-lock.json" => !path.contains("node_modules/"),
        "Cargo.lock" => true,
        _ => false,
    }
}

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn is_node_module(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    (n >= 3 && parts[n - 3] == "node_modules" && !parts[n - 2].starts_with('@'))
        || (n >= 4 && parts[n - 4] == "node_modules" && parts[n - 3].starts_with('@'))
}

/// One layer's contribution: what it holds and what it deletes below it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct LayerScan {
    pub(super) contents: Contents,
    /// Paths it whites out, and whether opaquely (a directory's lower contents only).
    pub(super) whiteouts: Vec<(String, bool)>,
}

impl LayerScan {
    /// Applies the layer over `contents` (the layers below it).
    fn apply(&self, contents: &mut Contents) {
        for (path, opaque) in &self.whiteouts {
            contents.remove(path, *opaque);
        }
        for (path, entry) in &self.contents.system {
            // A path this layer writes replaces the lower one, and files under a path
            // it now holds as a file are gone.
            contents.remove(path, false);
            contents.system.insert(path.clone(), entry.clone());
        }
        contents.language.extend(
            self.contents
                .language
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        contents.files.extend(
            self.contents
                .files
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
}

/// Reads layers for SBOMs, each (digest, role) once: platforms share new layers (and
/// often base layers), which are then decompressed once for all of them. With a cache
/// directory, each layer's scan is also kept there (`sbom-scans/`), keyed by the
/// layer's digest, its role and whether files are listed: a later build of an
/// unchanged layer does not decompress it again.
#[derive(Debug, Default)]
pub struct Scanner {
    read: BTreeMap<(Digest, bool), LayerScan>,
    cache: Option<std::path::PathBuf>,
}

/// The largest cached scan read back: a layer's metadata (at most
/// [`LAYER_METADATA_LIMIT`], as base64) and its file list (some 200 bytes a file). A
/// larger one is read from the layer again instead.
const SCAN_CACHE_LIMIT: u64 = LAYER_METADATA_LIMIT * 2;

/// Bumped when what a scan keeps changes: older cached scans are then not read.
const SCAN_FORMAT: &str = "v2";

impl Scanner {
    /// A scanner that keeps layer scans under `cache_dir/sbom-scans`.
    pub fn with_cache(cache_dir: &std::path::Path) -> Scanner {
        Scanner {
            read: BTreeMap::new(),
            cache: Some(cache_dir.join(hoist_layers::prune::SBOM_SCANS_DIR)),
        }
    }

    fn cached_path(&self, digest: &Digest, new: bool, files: bool) -> Option<std::path::PathBuf> {
        let hex = digest.as_str().rsplit(':').next().unwrap_or_default();
        let role = if new { "new" } else { "base" };
        let files = if files { "-files" } else { "" };
        self.cache
            .as_ref()
            .map(|dir| dir.join(format!("{SCAN_FORMAT}-{hex}-{role}{files}.json")))
    }

    /// Whether the cache holds the scan of this layer (so its bytes need not be read).
    pub fn has_cached(&self, digest: &Digest, new: bool, files: bool) -> bool {
        self.cached_path(digest, new, files)
            .is_some_and(|path| path.is_file())
    }

    /// The cached scan, if there is one that parses (a torn or foreign file is
    /// ignored: the layer is read again).
    fn load_cached(&self, digest: &Digest, new: bool, files: bool) -> Option<LayerScan> {
        let path = self.cached_path(digest, new, files)?;
        let bytes = crate::fsutil::read_bounded(&path, SCAN_CACHE_LIMIT, "a cached scan").ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps a scan for later builds; a cache that cannot be written only costs speed.
    fn store_cached(&self, digest: &Digest, new: bool, files: bool, scan: &LayerScan) {
        let Some(path) = self.cached_path(digest, new, files) else {
            return;
        };
        if let (Some(dir), Ok(bytes)) = (path.parent(), serde_json::to_vec(scan))
            && std::fs::create_dir_all(dir).is_ok()
        {
            let _ = crate::fsutil::write_atomically(&path, &bytes);
        }
    }

    /// Takes the scans of new layers gathered while they were written
    /// ([`super::gather::StreamScans`]): those layers are not read back. Each is also
    /// kept in the cache, as a scan read from the layer would be.
    pub fn adopt(&mut self, gathered: super::gather::StreamScans) {
        let files = gathered.files();
        for (digest, scan) in gathered.into_scans() {
            self.store_cached(&digest, true, files, &scan);
            self.read.insert((digest, true), scan);
        }
    }

    /// Reads the layers of `platform` (base first) out of `image`'s blobs. `new_from`
    /// is the index of the first new layer; `files` asks for every new regular file.
    pub fn scan(
        &mut self,
        image: &Image,
        platform: &PlatformImage,
        new_from: usize,
        files: bool,
    ) -> Result<Contents> {
        let mut contents = Contents::default();
        for (i, layer) in platform.manifest.layers.iter().enumerate() {
            let new = i >= new_from;
            let key = (layer.digest.clone(), new);
            if !self.read.contains_key(&key) {
                if let Some(scan) = self.load_cached(&layer.digest, new, files) {
                    self.read.insert(key.clone(), scan);
                    self.read[&key].apply(&mut contents);
                    continue;
                }
                let Some(scan) = read_blob(image, &layer.digest, layer.size, new, files)? else {
                    continue;
                };
                self.store_cached(&layer.digest, new, files, &scan);
                self.read.insert(key.clone(), scan);
            }
            self.read[&key].apply(&mut contents);
        }
        Ok(contents)
    }
}

/// One layer blob's scan, `None` for a layer not stored (foreign) or held in memory.
fn read_blob(
    image: &Image,
    digest: &Digest,
    size: u64,
    new: bool,
    files: bool,
) -> Result<Option<LayerScan>> {
    let Some(blob) = image.blobs.get(digest) else {
        return Ok(None); // a foreign layer: not stored, not ours to read
    };
    let path = match &blob.source {
        BlobSource::Trusted(path) | BlobSource::Unverified(path) | BlobSource::OnDemand(path) => {
            path
        }
        BlobSource::Bytes(_) => return Ok(None),
    };
    let mut reader = open_blob(path, digest, size)?.reader();
    let scanned = read_layer(&mut reader, digest, new, files);
    // Whatever the tar said, the blob is read to its end and its digest checked: a
    // blob that is not its digest is the error to report, since its bytes cannot be
    // trusted to say anything else (a corrupt gzip stream, say).
    let drained = io::copy(&mut reader, &mut io::sink());
    reader.finish()?;
    let scanned = scanned?;
    drained.map_err(|e| read_error(digest, "reading", &e))?;
    Ok(Some(scanned))
}

fn read_error(layer: &Digest, what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::LayerRead {
        layer: layer.clone(),
        message: format!("{what}: {e}"),
    }
}

/// One layer's tar (the caller reads the blob to its end and checks its digest).
fn read_layer<R: Read>(blob: R, digest: &Digest, new: bool, files: bool) -> Result<LayerScan> {
    let layer_error = |e| Error::layer_tar(digest, e);
    let mut entries = layer_entries(blob).map_err(layer_error)?;
    // Entries of this layer, kept apart from the lower ones: an opaque whiteout hides
    // the lower layers' files, not this layer's own.
    let mut gather = Gather::new(new, files, false);
    let mut buffer = vec![0u8; 64 * 1024];
    while let Some(header) = entries.next_header().map_err(layer_error)? {
        let path = header.path().map_err(layer_error)?;
        let kind = header.kind;
        let seen = if kind.is_symlink() {
            Seen::Symlink(header.link.as_deref())
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            Seen::File(header.size)
        } else if kind.is_hard_link() {
            Seen::HardLink
        } else {
            Seen::Other
        };
        let refused = |refused| refused_error(digest, &header, refused);
        // An entry not wanted is skipped by the tar reader as it moves to the next header.
        if gather.entry(&path, &seen).map_err(refused)? {
            loop {
                let n = entries.read(&mut buffer).map_err(|e| {
                    read_error(digest, &format!("reading `{}`", header.raw_path), &e)
                })?;
                if n == 0 {
                    break;
                }
                gather.content(&buffer[..n]);
            }
            gather.content_end(None).map_err(refused)?;
        }
    }
    // The tar may end before the compressed stream does (padding): read it all, so the
    // blob's digest covers every byte.
    io::copy(&mut entries.into_inner(), &mut io::sink())
        .map_err(|e| read_error(digest, "reading", &e))?;
    Ok(gather.finish())
}

/// The error naming what [`Gather`] refused at `header`.
fn refused_error(digest: &Digest, header: &EntryHeader, refused: Refused) -> Error {
    match refused {
        Refused::Oversized(size) => read_error(
            digest,
            &format!("reading `{}`", header.raw_path),
            &format!(
                "{size} bytes, over the limit of {METADATA_LIMIT} bytes for a package database or metadata file"
            ),
        ),
        Refused::LayerLimit => read_error(
            digest,
            &format!("at `{}`", header.raw_path),
            &format!(
                "its package metadata files add up to over the limit of {LAYER_METADATA_LIMIT} bytes per layer"
            ),
        ),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    #[test]
    fn links_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_link("etc/os-release", "../usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert_eq!(
            resolve_link("etc/os-release", "/usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert_eq!(
            resolve_link("etc/os-release", "os-release.d/x"),
            "etc/os-release.d/x"
        );
    }

    #[test]
    fn language_metadata_is_recognised_by_path() {
        for yes in [
            "app/lib/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
            "app/node_modules/left-pad/package.json",
            "app/node_modules/@scope/pkg/package.json",
            "app/node_modules/a/node_modules/b/package.json",
            "app/package-lock.json",
            "app/Cargo.lock",
        ] {
            assert!(is_language(yes), "{yes}");
        }
        for no in [
            "app/package.json",
            "app/node_modules/left-pad/lib/package.json",
            "app/node_modules/left-pad/package-lock.json",
            "app/METADATA",
            "app/x.dist-info/RECORD",
        ] {
            assert!(!is_language(no), "{no}");
        }
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn an_oversized_package_database_is_an_error_naming_it_and_the_limit() {
        // The header alone claims it: the error comes before any content is read.
        let mut header = tar::Header::new_gnu();
        header.set_path("var/lib/dpkg/status").unwrap();
        header.set_size(METADATA_LIMIT + 1);
        header.set_mode(0o644);
        header.set_cksum();
        let digest = Digest::sha256_of(b"x");
        let error = read_layer(header.as_bytes().as_slice(), &digest, false, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "layer {digest}: reading `var/lib/dpkg/status`: {} bytes, over the limit of {METADATA_LIMIT} bytes for a package database or metadata file",
                METADATA_LIMIT + 1
            )
        );
    }

    #[test]
    fn whiteouts_delete_what_lower_layers_held() {
        let mut contents = Contents::default();
        let digest = Digest::sha256_of(b"x");
        let lower = tar_of(&[
            ("var/lib/dpkg/status", b"Package: a\n"),
            ("var/lib/dpkg/status.d/b", b"Package: b\n"),
            ("app/x.dist-info/METADATA", b"Name: x\n"),
        ]);
        read_layer(lower.as_slice(), &digest, true, true)
            .unwrap()
            .apply(&mut contents);
        assert_eq!(contents.system.len(), 2);
        assert_eq!(contents.files.len(), 3);
        let upper = tar_of(&[
            ("var/lib/dpkg/.wh.status", b""),
            ("var/lib/dpkg/status.d/.wh..wh..opq", b""),
            ("var/lib/dpkg/status.d/c", b"Package: c\n"),
        ]);
        read_layer(upper.as_slice(), &digest, true, true)
            .unwrap()
            .apply(&mut contents);
        let paths: Vec<&String> = contents.system.keys().collect();
        assert_eq!(paths, ["var/lib/dpkg/status.d/c"]);
        assert_eq!(contents.language.len(), 1);
        assert_eq!(
            contents.files["var/lib/dpkg/status.d/c"].sha256,
            hex(&Sha256::digest(b"Package: c\n"))
        );
    }
}
