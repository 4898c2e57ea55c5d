//! What one layer's entries contribute to an SBOM, entry by entry: the one place that
//! decides which entries a scan keeps. It is fed two ways with the same result:
//! [`super::scan`] reads a stored layer's tar, and [`StreamScans`] watches a new layer
//! while the layer builder writes it ([`hoist_layers::EntryObserver`]), so a layer just
//! built is not decompressed again for its SBOM.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hoist_layers::{BuiltLayer, Digest, EntryObserver, ObservedEntry, ObservedKind, Progress};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::scan::{
    Entry, FileRecord, LAYER_METADATA_LIMIT, LayerScan, METADATA_LIMIT, hex, is_language, is_system,
};
use crate::assemble::Observer;

/// What an entry is, as far as a scan cares.
pub(super) enum Seen<'a> {
    /// A regular file of `size` bytes.
    File(u64),
    /// A symbolic link (its target, when the header has one).
    Symlink(Option<&'a str>),
    /// A hard link (kept only at an interpreter's path).
    HardLink,
    /// Anything else (directories, devices): never kept.
    Other,
}

/// Why a layer's entries cannot be kept (the reader names the entry and the layer).
#[derive(Clone, Copy, Debug)]
pub(super) enum Refused {
    /// A package database or metadata file over [`METADATA_LIMIT`] (its size).
    Oversized(u64),
    /// The kept metadata of the layer went over [`LAYER_METADATA_LIMIT`].
    LayerLimit,
}

/// The regular file being kept or hashed.
struct Current {
    path: String,
    keep: bool,
    system: bool,
    record: bool,
    bytes: Vec<u8>,
    sha1: Sha1,
    sha256: Sha256,
    size: u64,
}

/// One layer's scan, built up entry by entry.
pub(super) struct Gather {
    new: bool,
    files: bool,
    /// Whether SHA-256 is computed here (the layer builder gives its own).
    sha256: bool,
    scan: LayerScan,
    kept: u64,
    current: Option<Current>,
}

impl Gather {
    /// `new`: one of the build's layers (language metadata and, with `files`, every
    /// regular file are kept); otherwise a base layer (package databases only).
    /// Reading a stored layer, SHA-256 is computed here; with `sha256_given`, the
    /// caller passes each file's to [`Self::content_end`].
    pub(super) fn new(new: bool, files: bool, sha256_given: bool) -> Gather {
        Gather {
            new,
            files,
            sha256: !sha256_given,
            scan: LayerScan::default(),
            kept: 0,
            current: None,
        }
    }

    /// The next entry, at `path` (normalised: no leading `/`, no trailing `/`).
    /// Answers whether its content is wanted ([`Self::content`], [`Self::content_end`]).
    pub(super) fn entry(&mut self, path: &str, seen: &Seen<'_>) -> Result<bool, Refused> {
        self.current = None;
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        // Whiteouts are told by name, whatever their type, as layer readers do.
        if name == ".wh..wh..opq" {
            self.scan.whiteouts.push((dir.to_string(), true));
            return Ok(false);
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            self.scan.whiteouts.push((target, false));
            return Ok(false);
        }
        // Where the base's interpreter is (Python layers name it): kept as a link, or
        // as an empty file standing for its presence (its bytes are not read).
        let interpreter = crate::python::base::is_interpreter_path(path);
        if interpreter && matches!(seen, Seen::File(_) | Seen::HardLink) {
            let present = Entry::File(Vec::new());
            self.scan.contents.system.insert(path.to_string(), present);
        }
        let size = match seen {
            Seen::Symlink(target) => {
                if let Some(target) = target.filter(|_| is_system(path) || interpreter) {
                    let link = Entry::Link((*target).to_string());
                    self.scan.contents.system.insert(path.to_string(), link);
                }
                return Ok(false);
            }
            Seen::HardLink | Seen::Other => return Ok(false),
            Seen::File(size) => *size,
        };
        let system = is_system(path);
        let keep = system || (self.new && is_language(path));
        let record = self.new && self.files;
        if !keep && !record {
            return Ok(false);
        }
        if keep && size > METADATA_LIMIT {
            return Err(Refused::Oversized(size));
        }
        self.current = Some(Current {
            path: path.to_string(),
            keep,
            system,
            record,
            bytes: Vec::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            size: 0,
        });
        Ok(true)
    }

    /// The next piece of the wanted entry's content.
    pub(super) fn content(&mut self, chunk: &[u8]) {
        let Some(current) = &mut self.current else {
            return;
        };
        current.size += chunk.len() as u64;
        if current.keep {
            current.bytes.extend_from_slice(chunk);
        }
        if current.record {
            current.sha1.update(chunk);
            if self.sha256 {
                current.sha256.update(chunk);
            }
        }
    }

    /// The wanted entry's content is complete; `sha256` is its digest when the caller
    /// knows it (the layer builder does), else it is computed.
    pub(super) fn content_end(&mut self, sha256: Option<&[u8; 32]>) -> Result<(), Refused> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        if current.record {
            let sha256 = sha256.map_or_else(|| hex(&current.sha256.finalize()), |s| hex(s));
            self.scan.contents.files.insert(
                current.path.clone(),
                FileRecord {
                    sha256,
                    sha1: hex(&current.sha1.finalize()),
                    size: current.size,
                },
            );
        }
        if current.keep {
            self.kept += current.bytes.len() as u64;
            if current.system {
                let file = Entry::File(current.bytes);
                self.scan.contents.system.insert(current.path, file);
            } else {
                self.scan
                    .contents
                    .language
                    .insert(current.path, current.bytes);
            }
        }
        if self.kept > LAYER_METADATA_LIMIT {
            return Err(Refused::LayerLimit);
        }
        Ok(())
    }

    /// The layer's scan.
    pub(super) fn finish(self) -> LayerScan {
        self.scan
    }
}

/// The scans of the new layers a build writes, gathered from the builder's own stream
/// (each `(digest, scan)`; a layer whose entries were refused is left out: the
/// scanner reads it back and reports the refusal naming the entry).
#[derive(Debug, Default)]
pub struct StreamScans {
    files: bool,
    done: Mutex<BTreeMap<Digest, LayerScan>>,
}

impl StreamScans {
    /// Gathers with files listed when `files` (`sbom_files`).
    pub fn new(files: bool) -> StreamScans {
        StreamScans {
            files,
            done: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether files are listed.
    pub(super) fn files(&self) -> bool {
        self.files
    }

    /// What was gathered, by layer digest.
    pub(super) fn into_scans(self) -> BTreeMap<Digest, LayerScan> {
        self.done
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The [`EntryObserver`] of one layer being written.
struct LayerWatch<'a> {
    gather: Option<Gather>,
    into: &'a StreamScans,
}

impl EntryObserver for LayerWatch<'_> {
    fn entry(&mut self, entry: &ObservedEntry<'_>) -> bool {
        let Some(gather) = &mut self.gather else {
            return false;
        };
        let seen = match entry.kind {
            ObservedKind::File | ObservedKind::Whiteout => Seen::File(entry.size),
            ObservedKind::Symlink(target) => Seen::Symlink(Some(target)),
            ObservedKind::HardLink(_) => Seen::HardLink,
            ObservedKind::Directory => Seen::Other,
        };
        // The builder's paths are relative, a directory's with a trailing `/`.
        let path = entry.path.trim_end_matches('/');
        if let Ok(wanted) = gather.entry(path, &seen) {
            wanted
        } else {
            self.gather = None;
            false
        }
    }

    fn content(&mut self, chunk: &[u8]) {
        if let Some(gather) = &mut self.gather {
            gather.content(chunk);
        }
    }

    fn content_end(&mut self, sha256: &[u8; 32]) {
        if let Some(gather) = &mut self.gather
            && gather.content_end(Some(sha256)).is_err()
        {
            self.gather = None;
        }
    }

    fn layer_written(&mut self, layer: &BuiltLayer) {
        if let Some(gather) = self.gather.take() {
            let mut done = self
                .into
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            done.insert(layer.digest.clone(), gather.finish());
        }
    }
}

/// An assembly [`Observer`] that passes everything to `ui` and gathers each written
/// layer's SBOM facts into `scans`.
pub struct Gathering<'a> {
    /// The user interface's observer.
    pub ui: &'a dyn Observer,
    /// Where the written layers' scans go.
    pub scans: &'a StreamScans,
}

impl Observer for Gathering<'_> {
    fn layer_started(&self, label: &str) -> Box<dyn Progress + '_> {
        self.ui.layer_started(label)
    }

    fn layer_finished(&self, label: &str, layer: &BuiltLayer) {
        self.ui.layer_finished(label, layer);
    }

    fn layer_entries(&self) -> Option<Box<dyn EntryObserver + '_>> {
        Some(Box::new(LayerWatch {
            gather: Some(Gather::new(true, self.scans.files, true)),
            into: self.scans,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(digest: &Digest) -> BuiltLayer {
        BuiltLayer {
            digest: digest.clone(),
            diff_id: digest.clone(),
            size: 0,
            media_type: String::new(),
            from_cache: false,
            key: digest.clone(),
            known: false,
        }
    }

    fn file(path: &str, size: u64) -> ObservedEntry<'_> {
        ObservedEntry {
            path,
            kind: ObservedKind::File,
            size,
        }
    }

    #[test]
    fn a_refused_entry_leaves_the_layer_to_be_read_back() {
        let scans = StreamScans::new(false);
        let (kept, refused) = (Digest::sha256_of(b"kept"), Digest::sha256_of(b"refused"));
        let mut watch = LayerWatch {
            gather: Some(Gather::new(true, false, true)),
            into: &scans,
        };
        let metadata = b"Name: demo\nVersion: 1\n";
        assert!(watch.entry(&file(
            "srv/demo-1.dist-info/METADATA",
            metadata.len() as u64
        )));
        watch.content(metadata);
        watch.content_end(&[0; 32]);
        assert!(
            !watch.entry(&file("srv/app.py", 10)),
            "not asked for without files"
        );
        watch.layer_written(&layer(&kept));

        let mut watch = LayerWatch {
            gather: Some(Gather::new(true, false, true)),
            into: &scans,
        };
        let huge = file("srv/big-1.dist-info/METADATA", METADATA_LIMIT + 1);
        assert!(!watch.entry(&huge));
        // Nothing more is gathered for that layer, and nothing is kept for it.
        assert!(!watch.entry(&file("srv/x-1.dist-info/METADATA", 3)));
        watch.layer_written(&layer(&refused));

        let done = scans.into_scans();
        assert_eq!(done.keys().collect::<Vec<_>>(), [&kept]);
        assert_eq!(
            done[&kept].contents.language["srv/demo-1.dist-info/METADATA"],
            metadata
        );
    }
}
