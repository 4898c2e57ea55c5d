//! The layer cache: finished layers recorded under a hash of everything that shapes
//! their bytes, so an unchanged input is answered without archiving or compressing.
//!
//! The key covers every archive entry (path, kind, mode after policy, owner, link
//! target, size, and the sha256 of file *content*: timestamps and sizes are never
//! trusted to mean "unchanged"), the layer mtime, dest, removals, compression and level,
//! the gzip block size or zstd job size, this crate's version and [`CACHE_FORMAT`]. Records live at
//! `<store root>/layer-cache/<key hex>.json`; a record only counts while its blob is
//! still in the store with the recorded size and digest: a hit hashes the blob (once
//! per run, see [`crate::open_blob`]) before anything uses it, and a blob that fails
//! is deleted, so the layer is rebuilt. Unreadable or stale records are misses.

use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::Digest as _;
use sha2::Sha256;

use crate::blob::BlobStore;
use crate::compress::GZIP_BLOCK_SIZE;
use crate::entry::{Entry, FileInfo, Kind};
use crate::error::Error;
use crate::hash::Digest;
use crate::layout::CACHE_DIR;
use crate::spec::{BuiltLayer, Compression, LayerSpec, Progress};
use crate::temp::create_temp_file;
use crate::walk;

/// The version of the layer key, hashed into every key (with this crate's version).
/// Bump when the bytes produced for the same key would change, e.g. a new header rule:
/// keys recorded in images by an older format then match nothing.
pub const CACHE_FORMAT: &str = "hoist-layers layer cache v1";

/// Most threads hashing file contents for a key at once: reading is the other half of
/// the work, and more readers than this gain nothing on a local disk.
const MAX_HASHERS: usize = 4;

/// The sha256 of each regular file's content, in entry order (hard links excluded),
/// on up to `threads` threads (a warm rebuild's cost is mostly this: on 2 cores the
/// key of a 100 MiB tree took ~70 ms on one). The answer and the error reported (the
/// first failing file in entry order) do not depend on `threads`.
pub(crate) fn content_hashes(entries: &[Entry], threads: usize) -> Result<Vec<[u8; 32]>, Error> {
    let with_content: Vec<Content> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::File(info) => Some(Content::File(info)),
            Kind::Streamed(member) => Some(Content::Declared(member.sha256)),
            _ => None,
        })
        .collect();
    let workers = threads.clamp(1, MAX_HASHERS).min(with_content.len().max(1));
    if workers == 1 {
        let mut buf = vec![0u8; 256 * 1024];
        return with_content
            .iter()
            .map(|content| content.hash(&mut buf))
            .collect();
    }
    let next = AtomicUsize::new(0);
    // Lowest index that failed: files after it are not worth reading, files before it
    // are all read, so the error reported is the first in entry order, as on one thread.
    let failed_at = AtomicUsize::new(usize::MAX);
    let answers: Vec<Vec<Hashed>> = std::thread::scope(|scope| {
        let hashers: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= with_content.len() || i > failed_at.load(Ordering::Relaxed) {
                            return mine;
                        }
                        let answer = with_content[i].hash(&mut buf);
                        if answer.is_err() {
                            failed_at.fetch_min(i, Ordering::Relaxed);
                        }
                        mine.push((i, answer));
                    }
                })
            })
            .collect();
        hashers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut answers: Vec<_> = answers.into_iter().flatten().collect();
    answers.sort_unstable_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// A content hash (or why there is none) with its index among the entries hashed.
type Hashed = (usize, Result<[u8; 32], Error>);

/// The content of an entry that has some.
enum Content<'e> {
    /// A file on disk: read and hashed.
    File(&'e FileInfo),
    /// A streamed member's declared sha256 (checked against its content when the layer
    /// is written).
    Declared([u8; 32]),
}

impl Content<'_> {
    fn hash(&self, buf: &mut [u8]) -> Result<[u8; 32], Error> {
        match self {
            Content::File(info) => {
                let mut hasher = Sha256::new();
                let sink = |chunk: &[u8]| {
                    hasher.update(chunk);
                    Ok(())
                };
                walk::read_file(info, &mut walk::Buffered { buf, sink })?;
                Ok(hasher.finalize().into())
            }
            Content::Declared(sha256) => Ok(*sha256),
        }
    }
}

/// Feeds an unambiguous encoding of fields to sha256: strings are length-prefixed and
/// every field is tagged, so no two different descriptions share a byte stream.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn text(&mut self, tag: &str, value: &str) {
        self.bytes(tag, value.as_bytes());
    }

    fn bytes(&mut self, tag: &str, value: &[u8]) {
        self.0.update((tag.len() as u64).to_le_bytes());
        self.0.update(tag.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn number(&mut self, tag: &str, value: i128) {
        self.bytes(tag, &value.to_le_bytes());
    }
}

/// The cache key of a layer whose file contents hash to `hashes` (from
/// [`content_hashes`] or from archiving, same order).
pub(crate) fn key(spec: &LayerSpec, entries: &[Entry], hashes: &[[u8; 32]]) -> Digest {
    let mut key = KeyHasher(Sha256::new());
    key.text("format", CACHE_FORMAT);
    key.text("crate-version", env!("CARGO_PKG_VERSION"));
    key.text("dest", &spec.dest);
    for removal in &spec.remove {
        key.text("remove", removal);
    }
    key.number("mtime", spec.mtime.into());
    match spec.compression {
        Compression::Gzip { level } => {
            key.text("compression", "gzip");
            key.number("level", level.into());
            key.number("block-size", GZIP_BLOCK_SIZE as i128);
        }
        Compression::Zstd { level } => {
            key.text("compression", "zstd");
            key.number("level", level.into());
            // Records of the single-threaded framing must not answer for this one.
            key.text("framing", "zstdmt");
            key.number("job-size", crate::zstdmt::job_size(level).into());
        }
    }
    let mut hashes = hashes.iter();
    key.number("entries", entries.len() as i128);
    for entry in entries {
        key.text("path", &entry.path);
        key.number("mode", entry.mode.into());
        key.number("uid", entry.uid.into());
        key.number("gid", entry.gid.into());
        match &entry.kind {
            Kind::Directory => key.text("kind", "dir"),
            Kind::Whiteout => key.text("kind", "whiteout"),
            Kind::Symlink { target } => {
                key.text("kind", "symlink");
                key.text("target", target);
            }
            Kind::HardLink { target } => {
                key.text("kind", "hardlink");
                key.text("target", target);
            }
            // A streamed file keys as a file on disk with the same content would: the
            // same bytes make the same layer.
            Kind::File(_) | Kind::Streamed(_) => {
                key.text("kind", "file");
                key.number("size", entry.kind.content_size().into());
                let hash = hashes.next().expect("one content hash per regular file");
                key.bytes("sha256", hash);
            }
        }
    }
    Digest::from_hasher(key.0)
}

/// The record stored per key: exactly the fields of [`BuiltLayer`] that describe bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    media_type: String,
}

/// The recorded layer for `key`, if the record is readable and its blob is stored
/// intact. A blob that is there but wrong (altered bytes, wrong size, a link) is
/// deleted and reported to `progress`: the caller rebuilds it.
pub(crate) fn lookup(
    store: &BlobStore,
    key: &Digest,
    compression: Compression,
    progress: &dyn Progress,
) -> Option<BuiltLayer> {
    let path = store
        .root()
        .join(CACHE_DIR)
        .join(format!("{}.json", key.hex()));
    let record: Record = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    if record.media_type != compression.media_type() {
        return None;
    }
    match store.check(&record.digest, record.size) {
        Ok(()) => {}
        Err(Error::BlobMissing { .. }) => return None,
        Err(rejected) => {
            // Deleting it (not just rebuilding beside it) is what keeps the bad bytes
            // from ever being linked into an output again.
            let _ = store.evict(&record.digest);
            progress.cached_blob_rejected(&rejected);
            return None;
        }
    }
    Some(BuiltLayer {
        digest: record.digest,
        diff_id: record.diff_id,
        size: record.size,
        media_type: record.media_type,
        from_cache: true,
        key: key.clone(),
        known: false,
    })
}

/// Records `built` under `key`, atomically (temp file + rename) so concurrent builds
/// never read half a record.
pub(crate) fn record(store: &BlobStore, key: &Digest, built: &BuiltLayer) -> Result<(), Error> {
    let dir = store.root().join(CACHE_DIR);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let record = Record {
        digest: built.digest.clone(),
        diff_id: built.diff_id.clone(),
        size: built.size,
        media_type: built.media_type.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("a record always serialises");
    let mut file = create_temp_file(&dir, 0o644)?;
    file.write_all(&json)
        .map_err(|e| Error::io(file.path(), e))?;
    let path = dir.join(format!("{}.json", key.hex()));
    file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::testutil::Tree;
    use crate::{
        BlobStore, BuildOptions, BuiltLayer, Compression, Error, LayerSpec, NoProgress, Progress,
        build_layer,
    };

    const CACHED: BuildOptions = BuildOptions {
        threads: 1,
        use_cache: true,
    };

    fn build(spec: &LayerSpec, store: &BlobStore) -> BuiltLayer {
        build_layer(spec, store, &CACHED, &NoProgress).unwrap()
    }

    fn setup() -> (Tree, tempfile::TempDir, BlobStore, LayerSpec) {
        let tree = Tree::new();
        tree.file("app.js", b"console.log(1)", 0o644);
        tree.file("lib/util.js", b"export {}", 0o644);
        tree.touch("app.js", 1_000_000);
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let spec = LayerSpec::new(tree.root(), "/app");
        (tree, dir, store, spec)
    }

    #[test]
    fn unchanged_input_is_a_hit() {
        let (_tree, _dir, store, spec) = setup();
        let first = build(&spec, &store);
        assert!(!first.from_cache);
        let second = build(&spec, &store);
        assert!(second.from_cache);
        assert_eq!(
            BuiltLayer {
                from_cache: false,
                ..second
            },
            first
        );
        let records = std::fs::read_dir(store.root().join("layer-cache"))
            .unwrap()
            .count();
        assert_eq!(records, 1);
    }

    #[test]
    fn content_change_with_same_size_and_mtime_rebuilds() {
        let (tree, _dir, store, spec) = setup();
        let first = build(&spec, &store);
        tree.file("app.js", b"console.log(2)", 0o644);
        tree.touch("app.js", 1_000_000);
        let second = build(&spec, &store);
        assert!(!second.from_cache);
        assert_ne!(second.digest, first.digest);
        // And the changed content is itself cached from then on.
        assert_eq!(
            build(&spec, &store),
            BuiltLayer {
                from_cache: true,
                ..second
            }
        );
    }

    #[test]
    fn mode_change_rebuilds() {
        let (tree, _dir, store, spec) = setup();
        let first = build(&spec, &store);
        let path = tree.root().join("lib/util.js");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let second = build(&spec, &store);
        assert!(!second.from_cache);
        assert_ne!(second.diff_id, first.diff_id);
    }

    #[test]
    fn spec_changes_rebuild() {
        let (_tree, _dir, store, spec) = setup();
        build(&spec, &store);
        let variants = [
            LayerSpec {
                uid: 1,
                ..spec.clone()
            },
            LayerSpec {
                mtime: 1,
                ..spec.clone()
            },
            LayerSpec {
                dest: "/srv".into(),
                ..spec.clone()
            },
            LayerSpec {
                remove: vec!["/tmp/x".into()],
                ..spec.clone()
            },
            LayerSpec {
                compression: Compression::Gzip { level: 1 },
                ..spec.clone()
            },
            LayerSpec {
                compression: Compression::Zstd { level: 3 },
                ..spec.clone()
            },
        ];
        for variant in variants {
            assert!(!build(&variant, &store).from_cache, "{variant:?}");
        }
    }

    #[test]
    fn missing_blob_or_broken_record_is_a_miss() {
        let (_tree, _dir, store, spec) = setup();
        let first = build(&spec, &store);
        std::fs::remove_file(store.path(&first.digest)).unwrap();
        let rebuilt = build(&spec, &store);
        assert!(!rebuilt.from_cache);
        assert!(store.contains(&rebuilt.digest));

        for record in std::fs::read_dir(store.root().join("layer-cache")).unwrap() {
            std::fs::write(record.unwrap().path(), b"{ not json").unwrap();
        }
        assert!(!build(&spec, &store).from_cache);
        assert!(build(&spec, &store).from_cache);
    }

    /// Flips one byte of a stored blob in place (same inode, same size), as a disk or
    /// an editor would. The mtime is moved explicitly: file timestamps are coarse, and
    /// within one process an edit in the same tick as the write would look unchanged.
    fn flip_a_byte(path: &std::path::Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let file = std::fs::File::options().write(true).open(path).unwrap();
        std::io::Write::write_all(&mut &file, &bytes).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
    }

    #[test]
    fn a_corrupt_cached_blob_is_deleted_reported_and_rebuilt() {
        use std::os::unix::fs::MetadataExt;
        use std::sync::Mutex;

        #[derive(Default)]
        struct Rejections(Mutex<Vec<String>>);
        impl Progress for Rejections {
            fn cached_blob_rejected(&self, error: &Error) {
                self.0.lock().unwrap().push(error.to_string());
            }
        }

        let (_tree, dir, store, spec) = setup();
        let first = build(&spec, &store);
        let path = store.path(&first.digest);
        // A layout written earlier hard-links the cached blob.
        let earlier_layout = dir.path().join("earlier-layout-blob");
        std::fs::hard_link(&path, &earlier_layout).unwrap();
        flip_a_byte(&path);
        let bad_inode = std::fs::metadata(&path).unwrap().ino();

        let rejections = Rejections::default();
        let rebuilt = build_layer(&spec, &store, &CACHED, &rejections).unwrap();
        assert!(!rebuilt.from_cache);
        assert_eq!(
            BuiltLayer {
                from_cache: true,
                ..rebuilt.clone()
            },
            BuiltLayer {
                from_cache: true,
                ..first.clone()
            }
        );
        let messages = rejections.0.into_inner().unwrap();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].contains(first.digest.as_str())
                && messages[0].contains("does not match its digest"),
            "{messages:?}"
        );
        // The store holds the right bytes again, in a new file: the earlier layout's
        // link still has the bad ones (the sinks check what they find in a layout).
        store.verify(&first.digest).unwrap();
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), bad_inode);
        assert_eq!(std::fs::metadata(&earlier_layout).unwrap().ino(), bad_inode);
        assert!(build(&spec, &store).from_cache);
    }

    #[test]
    fn a_cached_blob_of_the_wrong_size_or_a_link_is_rebuilt() {
        let (_tree, dir, store, spec) = setup();
        let first = build(&spec, &store);
        let path = store.path(&first.digest);
        std::fs::write(&path, b"short").unwrap();
        assert!(!build(&spec, &store).from_cache);
        store.verify(&first.digest).unwrap();

        let elsewhere = dir.path().join("elsewhere");
        std::fs::copy(&path, &elsewhere).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(!build(&spec, &store).from_cache);
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        store.verify(&first.digest).unwrap();
    }

    #[test]
    fn a_rebuild_without_the_cache_replaces_a_bad_blob() {
        let (_tree, _dir, store, spec) = setup();
        let first = build(&spec, &store);
        flip_a_byte(&store.path(&first.digest));
        let options = BuildOptions {
            threads: 1,
            use_cache: false,
        };
        let rebuilt = build_layer(&spec, &store, &options, &NoProgress).unwrap();
        assert_eq!(rebuilt.digest, first.digest);
        store.verify(&first.digest).unwrap();
    }

    #[test]
    fn disabled_cache_neither_reads_nor_writes() {
        let (_tree, _dir, store, spec) = setup();
        let options = BuildOptions {
            threads: 1,
            use_cache: false,
        };
        build_layer(&spec, &store, &options, &NoProgress).unwrap();
        assert!(!store.root().join("layer-cache").exists());
        build(&spec, &store);
        assert!(
            !build_layer(&spec, &store, &options, &NoProgress)
                .unwrap()
                .from_cache
        );
    }

    /// The key's content hashes are the same, and the same failure is reported (the
    /// first file in entry order that cannot be read), on any number of threads.
    #[test]
    fn content_hashes_and_their_first_error_do_not_depend_on_threads() {
        use sha2::Digest as _;
        let tree = Tree::new();
        let contents: Vec<Vec<u8>> = (0..20u8)
            .map(|n| vec![n; usize::from(n) * 7_919 + 1])
            .collect();
        for (n, content) in contents.iter().enumerate() {
            tree.file(&format!("f{n:02}"), content, 0o644);
        }
        let spec = LayerSpec::new(tree.root(), "/app");
        let entries = crate::layer::plan_entries(&spec).unwrap();
        let expected: Vec<[u8; 32]> = contents
            .iter()
            .map(|c| sha2::Sha256::digest(c).into())
            .collect();
        for threads in [1, 2, 3, 4, 16] {
            assert_eq!(
                super::content_hashes(&entries, threads).unwrap(),
                expected,
                "{threads}"
            );
        }
        std::fs::remove_file(tree.root().join("f12")).unwrap();
        std::fs::remove_file(tree.root().join("f05")).unwrap();
        for threads in [1, 2, 3, 4, 16] {
            let error = super::content_hashes(&entries, threads)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("f05") && !error.contains("f12"),
                "{threads}: {error}"
            );
        }
    }
}
