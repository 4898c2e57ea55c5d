//! A content-addressed blob store laid out like an OCI image layout's `blobs/` tree.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tempfile::NamedTempFile;

use crate::blobfile::{self, open_blob};
use crate::error::Error;
use crate::hash::{Digest, HashingWriter};
use crate::layout::{CACHE_DIR, EVICT_PREFIX};
use crate::temp::{create_temp_file, sweep_temp_files};
use crate::usage::Tracker;

/// A directory of blobs stored at `<root>/blobs/sha256/<hex>`.
///
/// Because that is the OCI image layout's blob path, a store root can be turned into an
/// image layout by writing `oci-layout` and `index.json` next to `blobs/`. Blobs appear
/// atomically: content is written to a temp file in the root (same filesystem) and
/// renamed to its digest once complete, so a reader never sees a partial blob under a
/// digest name. Files are not fsynced; [`BlobStore::verify`] re-checks a blob after a
/// crash if that matters. Temp files sit at the store root rather than in
/// `blobs/sha256/`, so that directory only ever holds complete blobs named by their
/// digest; those a killed run left behind are swept when a store is opened (see
/// [`sweep_temp_files`]).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// This process's lease and use stamps, for a shared cache ([`BlobStore::open_cache`]).
    tracker: Option<Arc<Tracker>>,
}

impl BlobStore {
    /// Opens the store at `root`, creating `root/blobs/sha256` if missing, and deletes
    /// the temp files that runs killed while writing into it left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        crate::layout::refuse_symlinks(&root, &["blobs", "blobs/sha256", CACHE_DIR])?;
        let sha_dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&sha_dir).map_err(|e| Error::io(&sha_dir, e))?;
        sweep_temp_files(&root);
        sweep_temp_files(&root.join(CACHE_DIR));
        Ok(BlobStore {
            root,
            tracker: None,
        })
    }

    /// Opens the store at `root` as a cache that several processes may share at once:
    /// as [`BlobStore::open`], and every blob this process looks up, checks, writes or
    /// imports is leased (never pruned while the process lives) and stamped with its use
    /// time, for `hoist cache prune`'s least-recently-used order (see the `prune` module).
    pub fn open_cache(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        crate::layout::refuse_symlinked_cache_dirs(&root)?;
        let mut store = BlobStore::open(root)?;
        store.tracker = Some(Arc::new(Tracker::new(&store.root)));
        Ok(store)
    }

    /// Leases `digest` for this process (a shared cache only) and stamps its use, before
    /// the blob is looked at, so a concurrent prune either spares it or has already
    /// removed it. The cache's other entries keyed by a digest (a downloaded wheel under
    /// `python-wheels/<sha256>/`) are leased the same way, before they are looked at.
    ///
    /// # Errors
    /// The lease or the prune lock cannot be written (the entry is then only less
    /// protected from a concurrent prune: callers may go on).
    pub fn hold(&self, digest: &Digest) -> Result<(), Error> {
        match &self.tracker {
            Some(tracker) => tracker.hold(digest),
            None => Ok(()),
        }
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
        // A failed lease only weakens protection from a concurrent prune; the answer
        // stays right.
        let _ = self.hold(digest);
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
        // tempfile's default is 0600; blobs are content-addressed public data, and the
        // umask still applies.
        let file = create_temp_file(&self.root, 0o644)?;
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
        self.hold(expected)?;
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
        self.persist(file, &found, size)?;
        Ok(size)
    }

    /// Copies the blob file at `source` (`<root>/blobs/<alg>/<hex>` of a layout or
    /// store) into this store, refusing links (see [`open_blob`]) and checking size and
    /// digest on the way; the source counts as verified for the rest of the run.
    pub fn import_file(&self, source: &Path, digest: &Digest, size: u64) -> Result<u64, Error> {
        self.hold(digest)?;
        let mut reader = open_blob(source, digest, size)?.reader();
        let mut writer = self.writer()?;
        io::copy(&mut reader, &mut writer).map_err(|e| Error::io(source, e))?;
        reader.finish()?;
        let (file, found, written) = writer.finish_writing()?;
        if &found != digest {
            // The source changed between the hash and the copy's own count: keep nothing.
            return Err(Error::CorruptBlob {
                path: source.to_path_buf(),
                expected: digest.clone(),
                found,
            });
        }
        self.persist(file, &found, written)?;
        Ok(written)
    }

    /// Checks that the stored blob is `size` bytes hashing to `digest`, hashing it only
    /// if this run has not already (see [`open_blob`]).
    pub fn check(&self, digest: &Digest, size: u64) -> Result<(), Error> {
        self.hold(digest)?;
        open_blob(&self.path(digest), digest, size)?
            .verify()
            .map(drop)
    }

    /// Deletes the stored blob (one that failed [`BlobStore::check`]), so that it is
    /// rebuilt or fetched again instead of used. Missing is fine.
    ///
    /// Another process may have replaced the bad file with good bytes since the check
    /// (its commit renames over it): so the file is first renamed aside, atomically,
    /// and hashed there; the good bytes of a concurrent writer are linked back under
    /// the blob's name, only bad ones are deleted.
    pub fn evict(&self, digest: &Digest) -> Result<(), Error> {
        static EVICTIONS: AtomicU64 = AtomicU64::new(0);
        let path = self.path(digest);
        blobfile::forget(&path);
        let aside = self.root.join(format!(
            "{EVICT_PREFIX}{}-{}",
            std::process::id(),
            EVICTIONS.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::rename(&path, &aside) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
            Ok(()) => {}
        }
        if hashes_to(&aside, digest) {
            match fs::hard_link(&aside, &path) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(path, e));
                }
                _ => {}
            }
        }
        fs::remove_file(&aside).map_err(|e| Error::io(aside, e))
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

    /// Renames the temp file `file` (which hashed to `digest`) to the blob's name, unless
    /// a file there already holds the same bytes (compared, not hashed: `file`'s bytes
    /// are known). Comparing also beats replacing a good file unread: on ext4, a rename
    /// over an existing file flushes the new file's data first (`auto_da_alloc`),
    /// measured at 40 ms for a 54 MB blob, against ~10 ms to compare.
    fn persist(&self, file: NamedTempFile, digest: &Digest, size: u64) -> Result<(), Error> {
        self.hold(digest)?;
        let target = self.path(digest);
        if open_blob(&target, digest, size).is_ok_and(|there| there.matches(file.as_file())) {
            // The same bytes are there already: keep that file, so the layouts that
            // hard-link it keep sharing it. Dropping the temp file deletes it.
            return Ok(());
        }
        // Missing, or bad (a flipped byte, a link, a directory in the way): our bytes
        // replace it in one rename. A directory there makes the rename fail, named.
        blobfile::forget(&target);
        let file = file
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        blobfile::remember(&file, digest);
        Ok(())
    }
}

/// Whether the regular file at `path` (not a link) hashes to `digest`.
fn hashes_to(path: &Path, digest: &Digest) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut &file, &mut hasher).is_ok() && &hasher.finish().1 == digest
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
        store.persist(file, &digest, size)?;
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
                    .starts_with(crate::temp::TEMP_PREFIX)
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
    fn a_good_blob_another_run_wrote_is_kept_and_counts_as_verified() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, store) = temp_store();
        let (digest, size) = store.put(b"earlier run").unwrap();
        let path = store.path(&digest);
        let inode = fs::metadata(&path).unwrap().ino();
        // As if another process had written it: this one knows nothing about it.
        blobfile::forget(&path);
        assert!(!open_blob(&path, &digest, size).unwrap().is_verified());
        store.put(b"earlier run").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "kept");
        assert!(open_blob(&path, &digest, size).unwrap().is_verified());
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn a_large_blob_is_compared_in_both_halves() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, store) = temp_store();
        let good: Vec<u8> = (0..9u32 << 20).map(|i| (i % 253) as u8).collect();
        let (digest, _) = store.put(&good).unwrap();
        let path = store.path(&digest);
        for flipped in [10, good.len() - 10] {
            let mut bad = good.clone();
            bad[flipped] ^= 1;
            fs::write(&path, &bad).unwrap();
            blobfile::forget(&path);
            store.put(&good).unwrap();
            assert!(fs::read(&path).unwrap() == good, "byte {flipped} undone");
        }
        let inode = fs::metadata(&path).unwrap().ino();
        blobfile::forget(&path);
        store.put(&good).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "kept");
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn writing_over_a_bad_blob_replaces_it_and_a_good_one_is_kept() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, store) = temp_store();
        let (digest, _) = store.put(b"good bytes").unwrap();
        let path = store.path(&digest);
        let good_inode = fs::metadata(&path).unwrap().ino();
        store.put(b"good bytes").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), good_inode, "kept");

        fs::write(&path, b"good bytez").unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        store.put(b"good bytes").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"good bytes");
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn import_file_checks_and_refuses_links() {
        let (dir, store) = temp_store();
        let source = BlobStore::open(dir.path().join("source")).unwrap();
        let (digest, size) = source.put(b"base layer").unwrap();
        assert_eq!(
            store
                .import_file(&source.path(&digest), &digest, size)
                .unwrap(),
            10
        );
        assert_eq!(fs::read(store.path(&digest)).unwrap(), b"base layer");

        let secret = dir.path().join("secret");
        fs::write(&secret, b"password").unwrap();
        let claimed = Digest::sha256_of(b"password");
        let link = source.path(&claimed);
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        match store.import_file(&link, &claimed, 8) {
            Err(Error::UnsafeBlob { path, .. }) => assert_eq!(path, link),
            other => panic!("{other:?}"),
        }
        assert!(!store.contains(&claimed));

        let wrong = Digest::sha256_of(b"something else");
        fs::write(source.path(&wrong), b"base layez").unwrap();
        assert!(matches!(
            store.import_file(&source.path(&wrong), &wrong, 10),
            Err(Error::CorruptBlob { .. })
        ));
        assert!(!store.contains(&wrong));
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn evict_and_check() {
        let (_dir, store) = temp_store();
        let (digest, size) = store.put(b"evict me").unwrap();
        store.check(&digest, size).unwrap();
        assert!(matches!(
            store.check(&digest, size + 1),
            Err(Error::BlobSize { .. })
        ));
        // Evicting is for bad bytes: a blob that (again) checks out stays.
        store.evict(&digest).unwrap();
        assert!(store.contains(&digest));
        fs::remove_file(store.path(&digest)).unwrap();
        fs::write(store.path(&digest), b"evict mE").unwrap();
        store.evict(&digest).unwrap();
        assert!(!store.contains(&digest));
        store.evict(&digest).unwrap();
    }

    #[test]
    fn opening_a_store_sweeps_abandoned_temp_files_only() {
        let (dir, store) = temp_store();
        let live = store.writer().unwrap();
        let abandoned = store.root().join(".hoist-tmp-k1LLed");
        fs::write(&abandoned, b"half a layer").unwrap();
        let file = File::options().write(true).open(&abandoned).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        let record_dir = store.root().join("layer-cache");
        fs::create_dir_all(&record_dir).unwrap();
        fs::copy(&abandoned, record_dir.join(".hoist-tmp-rec0rd")).unwrap();
        File::options()
            .write(true)
            .open(record_dir.join(".hoist-tmp-rec0rd"))
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();

        BlobStore::open(dir.path().join("store")).unwrap();
        assert!(!abandoned.exists());
        assert!(!record_dir.join(".hoist-tmp-rec0rd").exists());
        assert_eq!(temp_files(&store), [live.temp_path().to_path_buf()]);
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
