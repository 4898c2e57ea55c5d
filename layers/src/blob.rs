//! A content-addressed blob store laid out like an OCI image layout's `blobs/` tree.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::Error;
use crate::hash::{Digest, HashingWriter};

/// Temp files sit at the store root rather than in `blobs/sha256/`, so that directory
/// only ever holds complete blobs named by their digest.
const TEMP_PREFIX: &str = ".hoist-tmp-";

/// A directory of blobs stored at `<root>/blobs/sha256/<hex>`.
///
/// Because that is the OCI image layout's blob path, a store root can be turned into an
/// image layout by writing `oci-layout` and `index.json` next to `blobs/`. Blobs appear
/// atomically: content is written to a temp file in the root (same filesystem) and
/// renamed to its digest once complete, so a reader never sees a partial blob under a
/// digest name. Files are not fsynced; [`BlobStore::verify`] re-checks a blob after a
/// crash if that matters.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens the store at `root`, creating `root/blobs/sha256` if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        let sha_dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&sha_dir).map_err(|e| Error::io(&sha_dir, e))?;
        Ok(BlobStore { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// Whether the blob with `digest` is present. Does not check its content.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `bytes` and returns their digest and length.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64), Error> {
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(|e| Error::io(writer.temp_path(), e))?;
        writer.commit()
    }

    /// A writer for a blob whose digest is known only once it is complete.
    pub fn writer(&self) -> Result<BlobWriter, Error> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            // tempfile's default is 0600; blobs are content-addressed public data, and the
            // umask still applies.
            .permissions(Permissions::from_mode(0o644))
            .tempfile_in(&self.root)
            .map_err(|e| Error::io(&self.root, e))?;
        let temp_path = file.path().to_path_buf();
        Ok(BlobWriter {
            store: self.clone(),
            temp_path,
            inner: HashingWriter::new(BufWriter::with_capacity(64 * 1024, file)),
        })
    }

    /// Copies `reader` into the store, checking that it hashes to `expected`.
    ///
    /// On a mismatch nothing is stored, the temp file is removed and the error is
    /// [`Error::DigestMismatch`].
    pub fn import(&self, mut reader: impl Read, expected: &Digest) -> Result<u64, Error> {
        let mut writer = self.writer()?;
        io::copy(&mut reader, &mut writer).map_err(|e| Error::io(writer.temp_path(), e))?;
        let (file, found, size) = writer.finish_writing()?;
        if &found != expected {
            // Dropping the temp file deletes it.
            drop(file);
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                found,
            });
        }
        self.persist(file, &found)?;
        Ok(size)
    }

    /// Re-hashes the stored blob and returns its length.
    ///
    /// A missing blob is [`Error::BlobMissing`]; altered content is
    /// [`Error::DigestMismatch`].
    pub fn verify(&self, digest: &Digest) -> Result<u64, Error> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing {
                    digest: digest.clone(),
                    path,
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut &file, &mut hasher).map_err(|e| Error::io(&path, e))?;
        let (_, found, size) = hasher.finish();
        if &found != digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                found,
            });
        }
        Ok(size)
    }

    fn persist(&self, file: NamedTempFile, digest: &Digest) -> Result<(), Error> {
        let target = self.path(digest);
        if target.is_file() {
            // Same digest, same bytes: keep the existing file so concurrent readers of
            // it are not disturbed. Dropping the temp file deletes it.
            return Ok(());
        }
        file.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        Ok(())
    }
}

/// A blob being written; it becomes visible under its digest on [`BlobWriter::commit`].
///
/// Dropping it without committing deletes the temp file.
pub struct BlobWriter {
    store: BlobStore,
    temp_path: PathBuf,
    inner: HashingWriter<BufWriter<NamedTempFile>>,
}

impl BlobWriter {
    /// Finishes the blob: renames it to its digest (or discards it if the store already
    /// has that digest) and returns the digest and length.
    pub fn commit(self) -> Result<(Digest, u64), Error> {
        let store = self.store.clone();
        let (file, digest, size) = self.finish_writing()?;
        store.persist(file, &digest)?;
        Ok((digest, size))
    }

    /// The temp file's path, for error messages about writes to it.
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    fn finish_writing(self) -> Result<(NamedTempFile, Digest, u64), Error> {
        let (buffered, digest, size) = self.inner.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io(&self.temp_path, e.into_error()))?;
        Ok((file, digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn temp_files(store: &BlobStore) -> Vec<PathBuf> {
        fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(TEMP_PREFIX)
            })
            .collect()
    }

    #[test]
    fn open_creates_the_layout_directories() {
        let (_dir, store) = temp_store();
        assert!(store.root().join("blobs/sha256").is_dir());
    }

    #[test]
    fn put_stores_under_the_digest() {
        let (_dir, store) = temp_store();
        let (digest, size) = store.put(b"hello").unwrap();
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert_eq!(size, 5);
        assert!(store.contains(&digest));
        assert_eq!(
            store.path(&digest),
            store.root().join("blobs/sha256").join(digest.hex())
        );
        assert_eq!(fs::read(store.path(&digest)).unwrap(), b"hello");
        // Putting the same bytes again is a no-op that leaves no temp file behind.
        assert_eq!(store.put(b"hello").unwrap(), (digest, 5));
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn writer_commits_streamed_content() {
        let (_dir, store) = temp_store();
        let mut writer = store.writer().unwrap();
        writer.write_all(b"hel").unwrap();
        writer.write_all(b"lo").unwrap();
        assert!(writer.temp_path().starts_with(store.root()));
        let (digest, size) = writer.commit().unwrap();
        assert_eq!((digest.clone(), size), (Digest::sha256_of(b"hello"), 5));
        assert!(store.contains(&digest));
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (_dir, store) = temp_store();
        let mut writer = store.writer().unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert!(temp_files(&store).is_empty());
        assert!(!store.contains(&Digest::sha256_of(b"partial")));
    }

    #[test]
    fn import_verifies_the_digest() {
        let (_dir, store) = temp_store();
        let good = Digest::sha256_of(b"payload");
        assert_eq!(store.import(&b"payload"[..], &good).unwrap(), 7);
        assert!(store.contains(&good));

        let claimed = Digest::sha256_of(b"something else");
        match store.import(&b"tampered"[..], &claimed) {
            Err(Error::DigestMismatch { expected, found }) => {
                assert_eq!(expected, claimed);
                assert_eq!(found, Digest::sha256_of(b"tampered"));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        assert!(!store.contains(&claimed));
        assert!(!store.contains(&Digest::sha256_of(b"tampered")));
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn verify_detects_missing_and_corrupt_blobs() {
        let (_dir, store) = temp_store();
        let (digest, _) = store.put(b"intact").unwrap();
        assert_eq!(store.verify(&digest).unwrap(), 6);

        fs::write(store.path(&digest), b"corrupt").unwrap();
        assert!(matches!(
            store.verify(&digest),
            Err(Error::DigestMismatch { found, .. }) if found == Digest::sha256_of(b"corrupt")
        ));

        let absent = Digest::sha256_of(b"never stored");
        match store.verify(&absent) {
            Err(Error::BlobMissing { digest, path }) => {
                assert_eq!(digest, absent);
                assert_eq!(path, store.path(&absent));
            }
            other => panic!("expected BlobMissing, got {other:?}"),
        }
    }
}
