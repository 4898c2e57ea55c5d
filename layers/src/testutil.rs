//! Helpers shared by the unit tests: umask-independent source trees and a layer reader.

use std::fs::{self, Permissions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{BlobStore, BuiltLayer};

/// A source tree in a temp dir; every file and directory gets an explicit mode.
pub(crate) struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub(crate) fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        Tree { dir }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    fn make_parents(&self, relative: &str) -> PathBuf {
        let path = self.root().join(relative);
        let mut missing = Vec::new();
        let mut parent = path.parent();
        while let Some(dir) = parent.filter(|dir| !dir.exists()) {
            missing.push(dir.to_path_buf());
            parent = dir.parent();
        }
        for dir in missing.iter().rev() {
            fs::create_dir(dir).unwrap();
            fs::set_permissions(dir, Permissions::from_mode(0o755)).unwrap();
        }
        path
    }

    pub(crate) fn file(&self, relative: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.make_parents(relative);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
        path
    }

    pub(crate) fn dir(&self, relative: &str, mode: u32) -> PathBuf {
        let path = self.make_parents(relative);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
        path
    }

    pub(crate) fn symlink(&self, relative: &str, target: &str) {
        let path = self.make_parents(relative);
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    pub(crate) fn hard_link(&self, existing: &str, relative: &str) {
        let path = self.make_parents(relative);
        fs::hard_link(self.root().join(existing), path).unwrap();
    }

    /// Sets the mtime of `relative` (a file or directory) to `seconds` after the epoch.
    pub(crate) fn touch(&self, relative: &str, seconds: u64) {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let file = fs::File::open(self.root().join(relative)).unwrap();
        file.set_modified(time).unwrap();
    }
}

/// One entry of a layer as the `tar` crate reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadEntry {
    pub(crate) path: String,
    pub(crate) kind: tar::EntryType,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: u64,
    pub(crate) link: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// The uncompressed tar of a stored layer.
pub(crate) fn layer_tar(store: &BlobStore, built: &BuiltLayer) -> Vec<u8> {
    let file = fs::File::open(store.path(&built.digest)).unwrap();
    let mut tar = Vec::new();
    if built.media_type.ends_with("+gzip") {
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut tar)
            .unwrap();
    } else {
        zstd::stream::read::Decoder::new(file)
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
    }
    tar
}

/// Every entry of a stored layer, in archive order.
pub(crate) fn read_layer(store: &BlobStore, built: &BuiltLayer) -> Vec<ReadEntry> {
    let tar = layer_tar(store, built);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let link = entry
            .link_name_bytes()
            .map(|link| String::from_utf8(link.into_owned()).unwrap());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        entries.push(ReadEntry {
            path,
            kind: header.entry_type(),
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            link,
            data,
        });
    }
    entries
}

/// A writer whose every write fails with "disk on fire".
pub(crate) struct Broken;

impl std::io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk on fire"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
