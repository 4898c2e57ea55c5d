//! Reading a blob file that hoist did not just write: never through a symbolic link,
//! never trusted before its bytes hash to its digest, and hashed at most once per run.
//!
//! [`open_blob`] is the one way a blob file from a store, a layout or an unpacked
//! archive is opened for copying or sending. It refuses a symbolic link anywhere in
//! `blobs/<algorithm>/<hex>` (the root itself may be one: the user named it), checks
//! the size, and either hashes the content ([`BlobFile::verify`]) or hands out a
//! reader that hashes as it copies ([`BlobFile::reader`]); a copy is only kept when
//! the reader's [`finish`](BlobReader::finish) agrees.
//!
//! Each success is remembered for the rest of the process, keyed by the file's
//! identity (device and inode) and its size and mtime: a layer shared by two
//! platforms, written to a layout and then pushed, or hard-linked from the cache into a
//! layout, is hashed once per run, not once per use. Files this process writes into a
//! store are remembered as they are committed (their bytes were hashed on the way in).
//! The memo only answers for the same inode unchanged in size and mtime; it lives in
//! memory, so every run starts by trusting nothing.

use std::collections::BTreeMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::Digest as _;
use sha2::Sha256;

use crate::error::Error;
use crate::hash::{Digest, HashingWriter};

/// A file identity: the memo's key.
type FileId = (u64, u64);

/// What a verification of a file stands for.
#[derive(Clone, PartialEq, Eq)]
struct Verified {
    digest: Digest,
    size: u64,
    mtime: (i64, i64),
}

impl Verified {
    fn of(meta: &Metadata, digest: &Digest) -> (FileId, Verified) {
        (
            (meta.dev(), meta.ino()),
            Verified {
                digest: digest.clone(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
            },
        )
    }
}

static VERIFIED: Mutex<BTreeMap<FileId, Verified>> = Mutex::new(BTreeMap::new());

fn memo() -> std::sync::MutexGuard<'static, BTreeMap<FileId, Verified>> {
    // The map holds plain values; a panic elsewhere cannot leave it half-updated.
    VERIFIED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records that the open `file` holds exactly the bytes of `digest`.
pub(crate) fn remember(file: &File, digest: &Digest) {
    if let Ok(meta) = file.metadata() {
        let (id, verified) = Verified::of(&meta, digest);
        memo().insert(id, verified);
    }
}

/// Drops whatever is known about the file at `path` (before deleting or replacing it,
/// so a later file that reuses the inode inherits nothing).
pub(crate) fn forget(path: &Path) {
    if let Ok(meta) = fs::symlink_metadata(path) {
        memo().remove(&(meta.dev(), meta.ino()));
    }
}

fn known(meta: &Metadata, digest: &Digest) -> bool {
    let (id, verified) = Verified::of(meta, digest);
    memo().get(&id) == Some(&verified)
}

/// A blob file opened by [`open_blob`]: a regular file of the expected size, not yet
/// known to hold the right bytes unless [`BlobFile::is_verified`].
#[derive(Debug)]
pub struct BlobFile {
    file: File,
    path: PathBuf,
    digest: Digest,
    size: u64,
    verified: bool,
    /// The file's mtime when opened: a success is only remembered if it still holds
    /// after the read, so bytes changed under the hash are never vouched for.
    opened_mtime: (i64, i64),
}

/// Opens the blob `digest` at `path`, which is `<root>/blobs/<algorithm>/<hex>`.
///
/// Refuses (naming the path) a symbolic link as the file or as either directory above
/// it, anything but a regular file, and a file whose size is not `size`. A missing
/// file is [`Error::BlobMissing`]. Does not read the content yet.
pub fn open_blob(path: &Path, digest: &Digest, size: u64) -> Result<BlobFile, Error> {
    let unsafe_blob = |at: &Path, reason| Error::UnsafeBlob {
        digest: digest.clone(),
        path: at.to_path_buf(),
        reason,
    };
    for dir in path.ancestors().skip(1).take(2) {
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(unsafe_blob(dir, LINK_REASON));
            }
            _ => {}
        }
    }
    let named = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::BlobMissing {
                digest: digest.clone(),
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if named.file_type().is_symlink() {
        return Err(unsafe_blob(path, LINK_REASON));
    }
    if !named.file_type().is_file() {
        return Err(unsafe_blob(path, "is not a regular file"));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let opened = file.metadata().map_err(|e| Error::io(path, e))?;
    if (opened.dev(), opened.ino()) != (named.dev(), named.ino()) {
        return Err(unsafe_blob(path, "was replaced while it was being opened"));
    }
    if opened.len() != size {
        return Err(Error::BlobSize {
            digest: digest.clone(),
            path: path.to_path_buf(),
            expected: size,
            found: opened.len(),
        });
    }
    Ok(BlobFile {
        verified: known(&opened, digest),
        opened_mtime: (opened.mtime(), opened.mtime_nsec()),
        file,
        path: path.to_path_buf(),
        digest: digest.clone(),
        size,
    })
}

const LINK_REASON: &str = "is a symbolic link; blobs are read only as regular files inside \
                           their layout, so a link cannot lead outside it";

impl BlobFile {
    /// Whether this run has already hashed this very file and found it right.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The blob's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hashes the whole file (unless this run already has) and returns it, positioned
    /// at its start, once its bytes are known to be the blob's.
    pub fn verify(mut self) -> Result<File, Error> {
        if !self.verified {
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut (&self.file).take(self.size), &mut hasher)
                .map_err(|e| Error::io(&self.path, e))?;
            let (_, found, count) = hasher.finish();
            self.check(&found, count)?;
            self.file.rewind().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(self.file)
    }

    /// Whether the file holds the same bytes as `copy`, a file this process wrote and
    /// hashed to the blob's digest on the way (so a match verifies this one, and is
    /// remembered). Comparing reads both files but hashes neither, which is cheaper than
    /// [`BlobFile::verify`] for a blob rebuilt over an existing one.
    pub(crate) fn matches(&self, copy: &File) -> bool {
        if self.verified {
            return true;
        }
        let same = same_bytes(&self.file, copy, self.size).unwrap_or(false);
        let unchanged = self.file.metadata().is_ok_and(|now| {
            (now.mtime(), now.mtime_nsec()) == self.opened_mtime && now.len() == self.size
        });
        if same && unchanged {
            remember(&self.file, &self.digest);
        }
        same && unchanged
    }

    /// A reader of the blob's `size` bytes, hashing them as they pass unless this run
    /// already verified the file. Whatever it produced counts only once
    /// [`BlobReader::finish`] returns `Ok`.
    pub fn reader(self) -> BlobReader {
        BlobReader {
            hasher: (!self.verified).then(Sha256::new),
            count: 0,
            blob: self,
        }
    }

    fn check(&self, found: &Digest, count: u64) -> Result<(), Error> {
        if count != self.size {
            return Err(Error::BlobSize {
                digest: self.digest.clone(),
                path: self.path.clone(),
                expected: self.size,
                found: count,
            });
        }
        if found != &self.digest {
            return Err(Error::CorruptBlob {
                path: self.path.clone(),
                expected: self.digest.clone(),
                found: found.clone(),
            });
        }
        let unchanged = self.file.metadata().is_ok_and(|now| {
            (now.mtime(), now.mtime_nsec()) == self.opened_mtime && now.len() == self.size
        });
        if unchanged {
            remember(&self.file, &self.digest);
        }
        Ok(())
    }
}

/// Whether the first `size` bytes of `a` and `b` are equal and `b` has no more.
///
/// A large blob is compared in two halves at once: this is the last step of a layer
/// build, when its other threads are done.
fn same_bytes(a: &File, b: &File, size: u64) -> io::Result<bool> {
    const HALVES_FROM: u64 = 8 << 20;
    if b.metadata()?.len() != size {
        return Ok(false);
    }
    if size < HALVES_FROM {
        return same_range(a, b, 0..size);
    }
    let half = size / 2;
    std::thread::scope(|scope| {
        let second = scope.spawn(|| same_range(a, b, half..size));
        let first = same_range(a, b, 0..half);
        let second = second
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("comparing blob bytes panicked")));
        Ok(first? && second?)
    })
}

fn same_range(a: &File, b: &File, range: std::ops::Range<u64>) -> io::Result<bool> {
    const CHUNK: usize = 256 * 1024;
    let (mut left, mut right) = (vec![0; CHUNK], vec![0; CHUNK]);
    let mut offset = range.start;
    while offset < range.end {
        let len = CHUNK.min(usize::try_from(range.end - offset).unwrap_or(CHUNK));
        a.read_exact_at(&mut left[..len], offset)?;
        b.read_exact_at(&mut right[..len], offset)?;
        if left[..len] != right[..len] {
            return Ok(false);
        }
        offset += len as u64;
    }
    Ok(true)
}

/// Reads a blob's bytes, hashing them; see [`BlobFile::reader`].
pub struct BlobReader {
    blob: BlobFile,
    hasher: Option<Sha256>,
    count: u64,
}

impl BlobReader {
    /// Checks that exactly the blob's bytes were read; the verification is remembered.
    pub fn finish(self) -> Result<u64, Error> {
        match self.hasher {
            None if self.count == self.blob.size => Ok(self.count),
            None => Err(Error::BlobSize {
                digest: self.blob.digest.clone(),
                path: self.blob.path.clone(),
                expected: self.blob.size,
                found: self.count,
            }),
            Some(hasher) => {
                let found = Digest::from_hasher(hasher);
                self.blob.check(&found, self.count)?;
                Ok(self.count)
            }
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never past the size checked at open: a file growing meanwhile adds nothing.
        let room = usize::try_from(self.blob.size - self.count).unwrap_or(usize::MAX);
        let wanted = buf.len().min(room);
        let read = self.blob.file.read(&mut buf[..wanted])?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..read]);
        }
        self.count += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A blob file at `<dir>/blobs/sha256/<hex>` holding `bytes`.
    fn blob(dir: &Path, bytes: &[u8]) -> (PathBuf, Digest) {
        let digest = Digest::sha256_of(bytes);
        let sha = dir.join("blobs/sha256");
        fs::create_dir_all(&sha).unwrap();
        let path = sha.join(digest.hex());
        fs::write(&path, bytes).unwrap();
        (path, digest)
    }

    #[test]
    fn a_good_blob_verifies_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = blob(dir.path(), b"layer bytes");
        let opened = open_blob(&path, &digest, 11).unwrap();
        assert!(!opened.is_verified());
        let mut file = opened.verify().unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        assert_eq!(content, b"layer bytes");
        assert!(open_blob(&path, &digest, 11).unwrap().is_verified());

        // A hard link is the same file: known too.
        let other = tempfile::tempdir().unwrap();
        let linked = other.path().join("blobs/sha256");
        fs::create_dir_all(&linked).unwrap();
        fs::hard_link(&path, linked.join(digest.hex())).unwrap();
        assert!(
            open_blob(&linked.join(digest.hex()), &digest, 11)
                .unwrap()
                .is_verified()
        );
    }

    #[test]
    fn a_flipped_byte_is_found_by_both_ways_of_reading() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = blob(dir.path(), b"original");
        fs::write(&path, b"origjnal").unwrap();
        match open_blob(&path, &digest, 8).unwrap().verify() {
            Err(Error::CorruptBlob {
                path: named,
                expected,
                found,
            }) => {
                assert_eq!((named, expected), (path.clone(), digest.clone()));
                assert_eq!(found, Digest::sha256_of(b"origjnal"));
            }
            other => panic!("{other:?}"),
        }
        let mut reader = open_blob(&path, &digest, 8).unwrap().reader();
        let mut copied = Vec::new();
        reader.read_to_end(&mut copied).unwrap();
        assert_eq!(copied, b"origjnal");
        assert!(matches!(reader.finish(), Err(Error::CorruptBlob { .. })));
        assert!(!open_blob(&path, &digest, 8).unwrap().is_verified());
    }

    #[test]
    fn the_reader_verifies_and_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = blob(dir.path(), b"streamed");
        let mut reader = open_blob(&path, &digest, 8).unwrap().reader();
        let mut copied = Vec::new();
        reader.read_to_end(&mut copied).unwrap();
        assert_eq!(reader.finish().unwrap(), 8);
        assert!(open_blob(&path, &digest, 8).unwrap().is_verified());
    }

    #[test]
    fn links_are_refused_wherever_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, b"root:x:0:0").unwrap();
        let digest = Digest::sha256_of(b"root:x:0:0");

        let layout = dir.path().join("layout");
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        let link = layout.join("blobs/sha256").join(digest.hex());
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        match open_blob(&link, &digest, 10) {
            Err(Error::UnsafeBlob { path, .. }) => assert_eq!(path, link),
            other => panic!("{other:?}"),
        }

        // A link as the blobs/sha256 directory.
        let elsewhere = dir.path().join("elsewhere");
        blob(&elsewhere, b"root:x:0:0");
        let tricky = dir.path().join("tricky");
        fs::create_dir_all(tricky.join("blobs")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("blobs/sha256"), tricky.join("blobs/sha256"))
            .unwrap();
        let path = tricky.join("blobs/sha256").join(digest.hex());
        match open_blob(&path, &digest, 10) {
            Err(Error::UnsafeBlob { path: named, .. }) => {
                assert_eq!(named, tricky.join("blobs/sha256"));
            }
            other => panic!("{other:?}"),
        }

        // The root may be a link: the user named it.
        let root_link = dir.path().join("root-link");
        std::os::unix::fs::symlink(&elsewhere, &root_link).unwrap();
        let path = root_link.join("blobs/sha256").join(digest.hex());
        assert!(open_blob(&path, &digest, 10).unwrap().verify().is_ok());
    }

    #[test]
    fn size_missing_and_non_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = blob(dir.path(), b"sized");
        match open_blob(&path, &digest, 99) {
            Err(Error::BlobSize {
                path: named,
                expected: 99,
                found: 5,
                ..
            }) => assert_eq!(named, path),
            other => panic!("{other:?}"),
        }
        let absent = Digest::sha256_of(b"absent");
        let missing = dir.path().join("blobs/sha256").join(absent.hex());
        assert!(matches!(
            open_blob(&missing, &absent, 1),
            Err(Error::BlobMissing { .. })
        ));
        fs::create_dir(&missing).unwrap();
        assert!(matches!(
            open_blob(&missing, &absent, 1),
            Err(Error::UnsafeBlob { .. })
        ));
    }

    #[test]
    fn a_rewritten_file_is_no_longer_known() {
        let dir = tempfile::tempdir().unwrap();
        let (path, digest) = blob(dir.path(), b"before");
        open_blob(&path, &digest, 6).unwrap().verify().unwrap();
        // Same inode and size, new mtime: what an in-place edit looks like.
        let mut file = File::options().write(true).open(&path).unwrap();
        file.write_all(b"after!").unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        drop(file);
        let reopened = open_blob(&path, &digest, 6).unwrap();
        assert!(!reopened.is_verified());
        assert!(matches!(reopened.verify(), Err(Error::CorruptBlob { .. })));
    }
}
