//! What a cache holds ([`cache_info`]) and making it smaller ([`prune`]).
//!
//! The entries are digests: each is the blob under `blobs/sha256/` (layers built, base
//! blobs fetched, documents) and what other parts of hoist keep about that digest, the
//! layer's SBOM scans (`sbom-scans/`) and the registry repositories known to hold it
//! (`pushed/`), which count in its size and go with it, also when the blob itself is not
//! in the cache (a base layer read from a layout, a layer pushed without being stored),
//! so `--max-size 0` leaves nothing but what running builds hold. Downloaded Python
//! wheels (`python-wheels/<sha256>/<file>`) are entries of their own, keyed by the
//! wheel's sha256, leased and stamped as blobs are ([`crate::BlobStore::hold`], before
//! the build looks at the wheel; without a stamp, the wheel's mtime, when it was
//! downloaded). Layer-cache records
//! and tag records only point at blobs and go when their blob goes. Order: least recently used first, by the use stamps of
//! `usage.rs` (a blob without one: its mtime, when it entered the cache). A blob
//! named in a live process's lease is never deleted, whatever the policy says: prune
//! takes the cache's `prune.lock` exclusively, so no build can add to its lease while
//! prune reads the leases and deletes (see `usage.rs` for the protocol).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::hash::Digest;
use crate::layout::{CACHE_DIR, EVICT_PREFIX, refuse_symlinked_cache_dirs};
use crate::temp::sweep_temp_files;
use crate::usage::{LEASES_DIR, USES_DIR, open_prune_lock, stamp_path};

pub use crate::layout::{PUSHED_DIR, PYTHON_WHEELS_DIR, SBOM_SCANS_DIR};

/// One entry of a cache: a digest's blob and the files kept about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes: the blob (if the cache holds it) and its SBOM scans and push
    /// records.
    pub size: u64,
    /// When a build last used it.
    pub last_use: SystemTime,
    /// Whether a running process holds it (it is never pruned then).
    pub in_use: bool,
}

/// A summary of a cache directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// The cache's root.
    pub root: PathBuf,
    /// Every blob, least recently used first.
    pub entries: Vec<CacheEntry>,
    /// Layer-cache records (each names one blob).
    pub records: usize,
    /// Processes using the cache right now (live leases).
    pub live_processes: usize,
}

impl CacheInfo {
    /// The blobs' total size in bytes.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|entry| entry.size).sum()
    }

    /// The least recent use of any blob.
    pub fn oldest_use(&self) -> Option<SystemTime> {
        self.entries.iter().map(|entry| entry.last_use).min()
    }

    /// The most recent use of any blob.
    pub fn newest_use(&self) -> Option<SystemTime> {
        self.entries.iter().map(|entry| entry.last_use).max()
    }
}

/// What to remove.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Remove least recently used blobs until the total is at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove every blob not used for this long.
    pub older_than: Option<Duration>,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// What a prune did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneReport {
    /// The blobs removed, least recently used first.
    pub removed: Vec<CacheEntry>,
    /// Blobs the policy picked that a running process holds: kept.
    pub kept_in_use: Vec<CacheEntry>,
    /// Layer-cache and tag records removed because their blob is gone.
    pub records_removed: usize,
    /// Lease files of processes that are gone, removed.
    pub stale_leases_removed: usize,
    /// Blobs and their total size after the prune.
    pub remaining_entries: usize,
    /// Total size in bytes after the prune.
    pub remaining_size: u64,
}

/// Describes the cache at `root` (a missing directory is an empty cache).
pub fn cache_info(root: &Path) -> Result<CacheInfo, Error> {
    refuse_symlinked_cache_dirs(root)?;
    let leases = read_leases(root, false)?;
    let entries = list_entries(root, &leases.held)?
        .into_iter()
        .map(|listed| listed.entry)
        .collect();
    let records = match fs::read_dir(root.join(CACHE_DIR)) {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
            .count(),
        Err(_) => 0,
    };
    Ok(CacheInfo {
        root: root.to_path_buf(),
        entries,
        records,
        live_processes: leases.live,
    })
}

/// Removes entries (blobs, their SBOM scans and push records) from the cache at `root`
/// as `policy` says, least recently used first, never one a running process holds;
/// then the records pointing at removed blobs, the leases of processes that are gone
/// and the temporary files of killed runs (in every directory of the cache). `now` is
/// the time `older_than` counts back from. A cache whose directories are symbolic
/// links is refused ([`Error::SymlinkedDirectory`]).
pub fn prune(root: &Path, policy: &PrunePolicy, now: SystemTime) -> Result<PruneReport, Error> {
    refuse_symlinked_cache_dirs(root)?;
    if !root.join("blobs").is_dir() {
        return Err(Error::io(
            root,
            io::Error::new(io::ErrorKind::NotFound, "not a hoist cache (no blobs/)"),
        ));
    }
    let lock = open_prune_lock(root)?;
    let lock_path = root.join(crate::usage::PRUNE_LOCK);
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let report = prune_locked(root, policy, now);
    lock.unlock().map_err(|e| Error::io(&lock_path, e))?;
    report
}

fn prune_locked(root: &Path, policy: &PrunePolicy, now: SystemTime) -> Result<PruneReport, Error> {
    let leases = read_leases(root, !policy.dry_run)?;
    let entries = list_entries(root, &leases.held)?;
    let cutoff = policy
        .older_than
        .map(|age| now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH));
    let mut remaining_size: u64 = entries.iter().map(|listed| listed.entry.size).sum();
    let mut remaining_entries = entries.len();
    let mut removed = Vec::new();
    let mut kept_in_use = Vec::new();
    for Listed { entry, blob, files } in entries {
        let too_old = cutoff.is_some_and(|cutoff| entry.last_use < cutoff);
        let too_big = policy.max_size.is_some_and(|max| remaining_size > max);
        if !too_old && !too_big {
            // Least recently used first: once neither rule picks one, a later one
            // could still be too old only if uses were out of order; keep scanning.
            continue;
        }
        if entry.in_use {
            kept_in_use.push(entry);
            continue;
        }
        if !policy.dry_run {
            if blob {
                remove_blob(root, &entry.digest)?;
            }
            remove_files(&files)?;
            // A wheel's directory goes with it (only ever empty then: a removed wheel
            // was its one file).
            let wheels = root.join(PYTHON_WHEELS_DIR);
            for dir in files.iter().filter_map(|f| f.parent()) {
                if dir.parent() == Some(wheels.as_path()) {
                    let _ = fs::remove_dir(dir);
                }
            }
        }
        remaining_size -= entry.size;
        remaining_entries -= 1;
        removed.push(entry);
    }
    let records_removed = if policy.dry_run {
        0
    } else {
        sweep_temp_files(root);
        sweep_temp_files(&root.join(CACHE_DIR));
        sweep_temp_files(&root.join(SBOM_SCANS_DIR));
        for dir in subdirectories(&root.join(PUSHED_DIR))? {
            sweep_temp_files(&dir);
        }
        sweep_temp_files(&root.join(PYTHON_WHEELS_DIR));
        let hour_ago = now.checked_sub(Duration::from_hours(1));
        for dir in subdirectories(&root.join(PYTHON_WHEELS_DIR))? {
            sweep_temp_files(&dir);
            // A killed download's directory, left empty (not a fresh one a running
            // download is about to fill): removing a non-empty one fails, harmlessly.
            let stale = fs::symlink_metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|m| hour_ago.is_some_and(|h| m < h));
            if stale {
                let _ = fs::remove_dir(&dir);
            }
        }
        remove_abandoned_evictions(root, now);
        remove_orphan_records(root)
    };
    Ok(PruneReport {
        removed,
        kept_in_use,
        records_removed,
        stale_leases_removed: leases.stale_removed,
        remaining_entries,
        remaining_size,
    })
}

/// What the lease files say.
struct Leases {
    held: HashSet<Digest>,
    live: usize,
    stale_removed: usize,
}

/// Reads every live lease; with `remove_stale`, deletes those whose process is gone.
fn read_leases(root: &Path, remove_stale: bool) -> Result<Leases, Error> {
    let mut leases = Leases {
        held: HashSet::new(),
        live: 0,
        stale_removed: 0,
    };
    let dir = root.join(LEASES_DIR);
    let Ok(listing) = fs::read_dir(&dir) else {
        return Ok(leases);
    };
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(mut file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Err(TryLockError::WouldBlock) => {
                leases.live += 1;
                let mut text = String::new();
                file.read_to_string(&mut text)
                    .map_err(|e| Error::io(&path, e))?;
                // A line is written whole; an unparsable one is someone else's file.
                leases
                    .held
                    .extend(text.lines().filter_map(|line| line.parse().ok()));
            }
            Ok(()) => {
                if remove_stale && fs::remove_file(&path).is_ok() {
                    leases.stale_removed += 1;
                }
            }
            // No flock on this filesystem: nothing can be known to be stale, so treat
            // the lease as live.
            Err(TryLockError::Error(_)) => {
                leases.live += 1;
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                leases
                    .held
                    .extend(text.lines().filter_map(|line| line.parse().ok()));
            }
        }
    }
    Ok(leases)
}

/// A cache entry and the files it is made of besides its blob.
struct Listed {
    entry: CacheEntry,
    /// Whether `blobs/sha256/` holds the digest's blob.
    blob: bool,
    /// Its SBOM scans and push records.
    files: Vec<PathBuf>,
}

/// Every entry, least recently used first (ties by digest, so the order is stable).
fn list_entries(root: &Path, held: &HashSet<Digest>) -> Result<Vec<Listed>, Error> {
    let mut listed: BTreeMap<Digest, Listed> = BTreeMap::new();
    for (digest, meta) in digest_files(&root.join("blobs").join("sha256"))? {
        let stamped = fs::metadata(stamp_path(root, &digest)).and_then(|m| m.modified());
        let last_use = stamped
            .or_else(|_| meta.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let entry = CacheEntry {
            in_use: held.contains(&digest),
            digest: digest.clone(),
            size: meta.len(),
            last_use,
        };
        listed.insert(
            digest,
            Listed {
                entry,
                blob: true,
                files: Vec::new(),
            },
        );
    }
    let mut attached = vec![root.join(SBOM_SCANS_DIR)];
    attached.extend(subdirectories(&root.join(PUSHED_DIR))?);
    for dir in attached {
        for (digest, meta, path) in named_files(&dir)? {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let one = listed.entry(digest.clone()).or_insert_with(|| Listed {
                entry: CacheEntry {
                    in_use: held.contains(&digest),
                    digest,
                    size: 0,
                    last_use: modified,
                },
                blob: false,
                files: Vec::new(),
            });
            // A scan or record is used with its blob; written later, it is newer.
            one.entry.size += meta.len();
            one.entry.last_use = one.entry.last_use.max(modified);
            one.files.push(path);
        }
    }
    for (digest, files) in wheel_entries(root)? {
        let stamped = fs::metadata(stamp_path(root, &digest)).and_then(|m| m.modified());
        let one = listed.entry(digest.clone()).or_insert_with(|| Listed {
            entry: CacheEntry {
                in_use: held.contains(&digest),
                digest,
                size: 0,
                last_use: stamped.unwrap_or(SystemTime::UNIX_EPOCH),
            },
            blob: false,
            files: Vec::new(),
        });
        for (path, meta) in files {
            one.entry.size += meta.len();
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            one.entry.last_use = one.entry.last_use.max(modified);
            one.files.push(path);
        }
    }
    let mut entries: Vec<Listed> = listed.into_values().collect();
    entries.sort_by(|a, b| {
        (a.entry.last_use, &a.entry.digest).cmp(&(b.entry.last_use, &b.entry.digest))
    });
    Ok(entries)
}

/// The blobs in `dir` (regular files named by a digest's hex).
fn digest_files(dir: &Path) -> Result<Vec<(Digest, fs::Metadata)>, Error> {
    Ok(named_files(dir)?
        .into_iter()
        .filter(|(digest, _, path)| path.file_name().is_some_and(|name| *name == *digest.hex()))
        .map(|(digest, meta, _)| (digest, meta))
        .collect())
}

/// The regular files (not links) in `dir` whose name holds a sha256 hex digest as one
/// of its `-`/`.`-separated parts (`<hex>`, `v1-<hex>-new.json`); temporary files never
/// do. A missing `dir` has none.
fn named_files(dir: &Path) -> Result<Vec<(Digest, fs::Metadata, PathBuf)>, Error> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let Some(digest) = entry.file_name().to_str().and_then(|name| {
            name.split(['-', '.'])
                .find_map(|part| format!("sha256:{part}").parse::<Digest>().ok())
        }) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_file() {
            files.push((digest, meta, path));
        }
    }
    Ok(files)
}

/// A wheel directory's files and their metadata.
type WheelFiles = Vec<(PathBuf, fs::Metadata)>;

/// The wheels of `python-wheels/`: per real directory named by a sha256 hex, its
/// regular files (not links, not temporary files of a download in progress).
fn wheel_entries(root: &Path) -> Result<Vec<(Digest, WheelFiles)>, Error> {
    let mut entries = Vec::new();
    for dir in subdirectories(&root.join(PYTHON_WHEELS_DIR))? {
        let Some(digest) = dir
            .file_name()
            .and_then(|name| format!("sha256:{}", name.to_str()?).parse::<Digest>().ok())
        else {
            continue;
        };
        let listing = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let files = listing
            .filter_map(Result::ok)
            .filter(|entry| !crate::temp::is_temp_name(&entry.file_name()))
            .filter_map(|entry| {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).ok()?;
                meta.file_type().is_file().then_some((path, meta))
            })
            .collect::<Vec<_>>();
        if !files.is_empty() {
            entries.push((digest, files));
        }
    }
    Ok(entries)
}

/// The real directories (not links) in `dir`; none when it is missing.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    Ok(listing
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect())
}

/// Deletes an entry's scans and records (one already gone is fine: they are hints a
/// concurrent build may replace or find missing at any time).
fn remove_files(files: &[PathBuf]) -> Result<(), Error> {
    for path in files {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io(path, e)),
            _ => {}
        }
    }
    Ok(())
}

fn remove_blob(root: &Path, digest: &Digest) -> Result<(), Error> {
    let path = root.join("blobs").join("sha256").join(digest.hex());
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io(path, e)),
        _ => {}
    }
    let _ = fs::remove_file(stamp_path(root, digest));
    Ok(())
}

/// Files [`crate::BlobStore::evict`] set aside and a killed run left (older than an
/// hour: a live eviction takes milliseconds).
fn remove_abandoned_evictions(root: &Path, now: SystemTime) {
    let Ok(listing) = fs::read_dir(root) else {
        return;
    };
    let hour_ago = now.checked_sub(Duration::from_hours(1));
    for entry in listing.filter_map(Result::ok) {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(EVICT_PREFIX)
        {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| hour_ago.is_some_and(|limit| modified < limit));
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Deletes layer-cache records and tag records (`refs/`) whose blob is gone, and the
/// use stamps of blobs that are gone. Returns how many records were deleted.
fn remove_orphan_records(root: &Path) -> usize {
    let blob_exists = |digest: &Digest| {
        root.join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
            .is_file()
    };
    let mut removed = 0;
    if let Ok(listing) = fs::read_dir(root.join(CACHE_DIR)) {
        for entry in listing.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let Some(digest) = record_digest(&path) else {
                continue;
            };
            // Re-read just before deleting: a build may have rewritten it meanwhile
            // (its new blob is then leased, and present).
            if !blob_exists(&digest)
                && record_digest(&path).as_ref() == Some(&digest)
                && fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed += remove_orphan_refs(&root.join("refs"), &blob_exists);
    if let Ok(listing) = fs::read_dir(root.join(USES_DIR).join("sha256")) {
        for entry in listing.filter_map(Result::ok) {
            let name = entry.file_name();
            let Ok(digest) = format!("sha256:{}", name.to_string_lossy()).parse::<Digest>() else {
                continue;
            };
            // A wheel's stamp stays with its wheel (its directory goes with the wheel).
            let wheel = root.join(PYTHON_WHEELS_DIR).join(digest.hex());
            if !blob_exists(&digest) && !wheel.is_dir() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    removed
}

/// The blob digest a layer-cache record names.
fn record_digest(path: &Path) -> Option<Digest> {
    #[derive(serde::Deserialize)]
    struct Named {
        digest: Digest,
    }
    let named: Named = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    Some(named.digest)
}

/// Tag records (`refs/<registry>/<repository>/<tag>`, a digest per file) whose
/// manifest is gone: offline resolution would fail on them anyway.
fn remove_orphan_refs(dir: &Path, blob_exists: &dyn Fn(&Digest) -> bool) -> usize {
    let Ok(listing) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            removed += remove_orphan_refs(&path, blob_exists);
            sweep_temp_files(&path);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let digest = fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<Digest>().ok());
        if digest.is_some_and(|digest| !blob_exists(&digest)) && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlobStore;

    const HOUR: Duration = Duration::from_hours(1);

    /// A cache holding three blobs last used 3, 2 and 1 hours ago (a: oldest), written
    /// by a process that has finished (its store dropped).
    fn cache() -> (tempfile::TempDir, [Digest; 3], SystemTime) {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let store = BlobStore::open_cache(dir.path()).unwrap();
        let digests = [&b"aaaa"[..], b"bbbbbb", b"cc"].map(|bytes| store.put(bytes).unwrap().0);
        for (age, digest) in (1..=3).rev().zip(&digests) {
            File::options()
                .write(true)
                .open(stamp_path(dir.path(), digest))
                .unwrap()
                .set_modified(now.checked_sub(HOUR * age).unwrap())
                .unwrap();
        }
        drop(store);
        (dir, digests, now)
    }

    fn digests(entries: &[CacheEntry]) -> Vec<Digest> {
        entries.iter().map(|entry| entry.digest.clone()).collect()
    }

    #[test]
    fn info_lists_blobs_least_recently_used_first() {
        let (dir, [a, b, c], now) = cache();
        let info = cache_info(dir.path()).unwrap();
        assert_eq!(digests(&info.entries), [a, b, c]);
        assert_eq!(info.size(), 12);
        assert_eq!(info.live_processes, 0, "a finished process leaves no lease");
        let oldest = info.oldest_use().unwrap();
        assert!(oldest <= now.checked_sub(HOUR * 3).unwrap() + Duration::from_secs(1));
        assert!(info.entries.iter().all(|entry| !entry.in_use));
        let missing = cache_info(&dir.path().join("nothing")).unwrap();
        assert!(missing.entries.is_empty());
    }

    #[test]
    fn max_size_removes_least_recently_used_first() {
        let (dir, [a, b, c], now) = cache();
        let policy = PrunePolicy {
            max_size: Some(8),
            ..PrunePolicy::default()
        };
        let dry = prune(
            dir.path(),
            &PrunePolicy {
                dry_run: true,
                ..policy
            },
            now,
        )
        .unwrap();
        assert_eq!(digests(&dry.removed), std::slice::from_ref(&a));
        assert_eq!(cache_info(dir.path()).unwrap().entries.len(), 3, "dry run");
        let report = prune(dir.path(), &policy, now).unwrap();
        assert_eq!(digests(&report.removed), std::slice::from_ref(&a));
        assert_eq!((report.remaining_entries, report.remaining_size), (2, 8));
        let store = BlobStore::open(dir.path()).unwrap();
        assert!(!store.path(&a).exists() && !stamp_path(dir.path(), &a).exists());
        assert!(store.path(&b).exists() && store.path(&c).exists());
    }

    #[test]
    fn older_than_removes_what_was_not_used_since() {
        let (dir, [a, b, c], now) = cache();
        let policy = PrunePolicy {
            older_than: Some(Duration::from_mins(119)),
            ..PrunePolicy::default()
        };
        let report = prune(dir.path(), &policy, now).unwrap();
        assert_eq!(digests(&report.removed), [a, b]);
        assert_eq!(digests(&cache_info(dir.path()).unwrap().entries), [c]);
    }

    #[test]
    fn a_blob_a_live_process_uses_is_never_removed() {
        let (dir, [a, b, c], now) = cache();
        // A build running now: it has checked `a` (the oldest) and written a new blob.
        let build = BlobStore::open_cache(dir.path()).unwrap();
        build.check(&a, 4).unwrap();
        let (fresh, _) = build.put(b"new layer").unwrap();
        let everything = PrunePolicy {
            max_size: Some(0),
            ..PrunePolicy::default()
        };
        let report = prune(dir.path(), &everything, now).unwrap();
        assert_eq!(digests(&report.removed), [b, c]);
        let mut kept = digests(&report.kept_in_use);
        kept.sort();
        let mut expected = vec![a.clone(), fresh.clone()];
        expected.sort();
        assert_eq!(kept, expected);
        assert_eq!(cache_info(dir.path()).unwrap().live_processes, 1);
        // Once it ends, its lease goes with it and so does the protection.
        drop(build);
        let report = prune(dir.path(), &everything, now).unwrap();
        assert_eq!(report.removed.len(), 2);
        assert!(cache_info(dir.path()).unwrap().entries.is_empty());
    }

    #[test]
    fn the_lease_of_a_killed_process_is_stale() {
        let (dir, [a, ..], now) = cache();
        // What SIGKILL leaves: a lease file naming `a`, with nobody holding its lock.
        let leases = dir.path().join(LEASES_DIR);
        fs::create_dir_all(&leases).unwrap();
        fs::write(leases.join("4242-deadbeef"), format!("{a}\n")).unwrap();
        let policy = PrunePolicy {
            max_size: Some(0),
            ..PrunePolicy::default()
        };
        let report = prune(dir.path(), &policy, now).unwrap();
        assert_eq!(report.stale_leases_removed, 1);
        assert!(report.kept_in_use.is_empty());
        assert_eq!(report.removed.len(), 3);
        assert_eq!(fs::read_dir(&leases).unwrap().count(), 0);
    }

    #[test]
    fn records_of_removed_blobs_go_with_them() {
        let (dir, [a, b, _], now) = cache();
        let records = dir.path().join(CACHE_DIR);
        fs::create_dir_all(&records).unwrap();
        let record = |digest: &Digest| {
            format!(r#"{{"digest":"{digest}","diff_id":"{digest}","size":1,"media_type":"x"}}"#)
        };
        fs::write(records.join("k1.json"), record(&a)).unwrap();
        fs::write(records.join("k2.json"), record(&b)).unwrap();
        let refs = dir.path().join("refs/example.com/app");
        fs::create_dir_all(&refs).unwrap();
        fs::write(refs.join("v1"), format!("{a}\n")).unwrap();
        fs::write(refs.join("v2"), format!("{b}\n")).unwrap();
        let policy = PrunePolicy {
            max_size: Some(8),
            ..PrunePolicy::default()
        };
        let report = prune(dir.path(), &policy, now).unwrap();
        assert_eq!(report.records_removed, 2);
        assert!(!records.join("k1.json").exists() && records.join("k2.json").exists());
        assert!(!refs.join("v1").exists() && refs.join("v2").exists());
        assert_eq!(cache_info(dir.path()).unwrap().records, 1);
    }

    #[test]
    fn a_use_moves_a_blob_to_the_back_of_the_queue() {
        let (dir, [a, b, _], now) = cache();
        let later = BlobStore::open_cache(dir.path()).unwrap();
        assert!(later.contains(&a));
        drop(later);
        let info = cache_info(dir.path()).unwrap();
        assert_eq!(info.entries[0].digest, b);
        assert_eq!(info.entries[2].digest, a);
        assert!(info.newest_use().unwrap() >= now.checked_sub(Duration::from_secs(5)).unwrap());
    }

    #[test]
    fn evict_deletes_bad_bytes_but_keeps_a_good_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_cache(dir.path()).unwrap();
        let (digest, _) = store.put(b"good bytes").unwrap();
        // Another process replaced the bad file with good bytes after our failed
        // check, before our evict: the good file stays.
        store.evict(&digest).unwrap();
        assert!(store.path(&digest).exists());
        store.check(&digest, 10).unwrap();
        fs::remove_file(store.path(&digest)).unwrap();
        fs::write(store.path(&digest), b"bad  bytes").unwrap();
        store.evict(&digest).unwrap();
        assert!(!store.path(&digest).exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(EVICT_PREFIX)
            })
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn prune_refuses_a_directory_that_is_no_cache() {
        let dir = tempfile::tempdir().unwrap();
        match prune(dir.path(), &PrunePolicy::default(), SystemTime::now()) {
            Err(error) => assert!(
                error
                    .to_string()
                    .contains(&dir.path().display().to_string())
            ),
            Ok(report) => panic!("{report:?}"),
        }
    }

    /// An unlocked file named like a temp file, modified an hour ago: a killed run's.
    fn abandoned_temp(dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(".hoist-tmp-k1lled");
        fs::write(&path, b"half a scan").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now().checked_sub(HOUR).unwrap())
            .unwrap();
        path
    }

    /// Issue 16: `sbom-scans/` and `pushed/` survived `--max-size 0`, and their temp
    /// files were never swept. They count in their digest's entry (also for a digest
    /// whose blob is not in the cache), go with it, and stay while a build holds it.
    #[test]
    fn scans_and_push_records_count_and_go_with_their_digest() {
        let (dir, [a, b, _c], now) = cache();
        let root = dir.path();
        let scans = root.join(SBOM_SCANS_DIR);
        let pushed = root.join(PUSHED_DIR).join("127.0.0.1_5000");
        fs::create_dir_all(&scans).unwrap();
        fs::create_dir_all(&pushed).unwrap();
        let base_layer = Digest::sha256_of(b"a base layer read from a layout");
        let scan_a = scans.join(format!("v1-{}-new.json", a.hex()));
        let scan_base = scans.join(format!("v1-{}-base-files.json", base_layer.hex()));
        let record_b = pushed.join(b.hex());
        fs::write(&scan_a, b"{\"packages\":[]}").unwrap();
        fs::write(&scan_base, b"{}").unwrap();
        fs::write(&record_b, b"team/app\n").unwrap();
        let temps = [abandoned_temp(&scans), abandoned_temp(&pushed)];

        let info = cache_info(root).unwrap();
        assert_eq!(
            info.entries.len(),
            4,
            "three blobs and the base layer's scan"
        );
        assert_eq!(info.size(), 4 + 6 + 2 + 15 + 2 + 9);

        // A build holding the base layer keeps its scan.
        let build = BlobStore::open_cache(root).unwrap();
        build.contains(&base_layer);
        let everything = PrunePolicy {
            max_size: Some(0),
            ..PrunePolicy::default()
        };
        let report = prune(root, &everything, now).unwrap();
        assert_eq!(
            digests(&report.kept_in_use),
            std::slice::from_ref(&base_layer)
        );
        assert!(scan_base.exists());
        assert!(!scan_a.exists() && !record_b.exists());
        for temp in &temps {
            assert!(!temp.exists(), "{} was not swept", temp.display());
        }
        drop(build);
        let report = prune(root, &everything, now).unwrap();
        assert_eq!(digests(&report.removed), [base_layer]);
        assert_eq!((report.remaining_entries, report.remaining_size), (0, 0));
        assert_eq!(fs::read_dir(&scans).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&pushed).unwrap().count(), 0);
    }

    /// Issue 18: `python-wheels/<sha256>/<file>` entries are pruned least recently
    /// used first with the blobs (by the wheel's mtime, which a build touches), their
    /// directory goes with them, temp files of killed downloads are swept, and a
    /// linked wheel directory or wheel file is never followed.
    #[test]
    fn python_wheels_are_pruned_with_the_blobs_by_last_use() {
        let (dir, [a, b, c], now) = cache();
        let root = dir.path();
        let wheels = root.join(PYTHON_WHEELS_DIR);
        let wheel = |bytes: &[u8], age: u32| {
            let digest = Digest::sha256_of(bytes);
            let dir = wheels.join(digest.hex());
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join("pkg-1.0-py3-none-any.whl");
            fs::write(&path, bytes).unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(now.checked_sub(HOUR * age).unwrap() - Duration::from_mins(1))
                .unwrap();
            (digest, path)
        };
        // Older than every blob, and between b (2 h) and c (1 h).
        let (old, old_path) = wheel(b"an old wheel", 4);
        let (mid, mid_path) = wheel(b"a wheel used 1h ago", 1);
        let temps = [
            abandoned_temp(&wheels.join(mid.hex())),
            abandoned_temp(&wheels),
        ];
        let killed = wheels.join("ab".repeat(32));
        fs::create_dir_all(&killed).unwrap();
        File::open(&killed)
            .unwrap()
            .set_modified(now.checked_sub(HOUR * 2).unwrap())
            .unwrap();
        // Links are never entries nor followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let victim = elsewhere.path().join("victim.whl");
        fs::write(&victim, b"not the cache's").unwrap();
        let linked = Digest::sha256_of(b"linked");
        std::os::unix::fs::symlink(elsewhere.path(), wheels.join(linked.hex())).unwrap();
        std::os::unix::fs::symlink(&victim, wheels.join(mid.hex()).join("x.whl")).unwrap();

        let info = cache_info(root).unwrap();
        assert_eq!(
            digests(&info.entries),
            [old.clone(), a.clone(), b.clone(), mid.clone(), c.clone()]
        );
        assert_eq!(info.size(), 4 + 6 + 2 + 12 + 19);

        // A size that keeps the newest three: the old wheel, a and b go.
        let report = prune(
            root,
            &PrunePolicy {
                max_size: Some(19 + 2 + 1),
                ..PrunePolicy::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(digests(&report.removed), [old.clone(), a, b]);
        assert!(!old_path.exists() && !wheels.join(old.hex()).exists());
        assert!(mid_path.exists());
        for temp in &temps {
            assert!(!temp.exists(), "{} was not swept", temp.display());
        }
        assert!(
            !killed.exists(),
            "a killed download's empty directory stays"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"not the cache's");

        // By age: the wheel and c, both unused for over half an hour, go.
        let report = prune(
            root,
            &PrunePolicy {
                older_than: Some(HOUR / 2),
                ..PrunePolicy::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(digests(&report.removed), [mid.clone(), c]);
        assert!(
            !wheels
                .join(mid.hex())
                .join("pkg-1.0-py3-none-any.whl")
                .exists()
        );
        assert_eq!(fs::read(&victim).unwrap(), b"not the cache's");
        assert!(wheels.join(linked.hex()).is_symlink());
    }

    /// A wheel a live build holds (leased as blobs are, before it looked at it) is
    /// kept by a prune that would remove everything; once the build is gone (its store
    /// dropped, or killed: its lease's lock is free) the wheel and its stamp go.
    #[test]
    fn a_leased_wheel_survives_prune_until_its_process_is_gone() {
        let (dir, [a, b, c], now) = cache();
        let root = dir.path();
        let digest = Digest::sha256_of(b"a wheel");
        let wheel = root
            .join(PYTHON_WHEELS_DIR)
            .join(digest.hex())
            .join("pkg-1.0-py3-none-any.whl");
        fs::create_dir_all(wheel.parent().unwrap()).unwrap();
        fs::write(&wheel, b"a wheel").unwrap();
        File::options()
            .write(true)
            .open(&wheel)
            .unwrap()
            .set_modified(now.checked_sub(HOUR * 5).unwrap())
            .unwrap();
        let build = BlobStore::open_cache(root).unwrap();
        build.hold(&digest).unwrap();
        let everything = PrunePolicy {
            max_size: Some(0),
            ..PrunePolicy::default()
        };
        let report = prune(root, &everything, now).unwrap();
        assert_eq!(digests(&report.removed), [a, b, c]);
        assert_eq!(digests(&report.kept_in_use), std::slice::from_ref(&digest));
        assert!(wheel.is_file());
        // Its last use is its stamp (the hold), not its mtime (5 h ago).
        let info = cache_info(root).unwrap();
        assert!(
            info.entries[0].in_use && info.entries[0].last_use >= now,
            "{info:?} {now:?}"
        );

        // A killed build's lease: the file stays, its lock is free.
        let lease = fs::read_dir(root.join(LEASES_DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let killed = root.join(LEASES_DIR).join("4242-deadbeef");
        fs::copy(&lease, &killed).unwrap();
        drop(build);
        assert!(killed.is_file());
        let report = prune(root, &everything, now).unwrap();
        assert_eq!(report.stale_leases_removed, 1);
        assert_eq!(digests(&report.removed), std::slice::from_ref(&digest));
        assert!(!wheel.exists() && !wheel.parent().unwrap().exists());
        assert!(!stamp_path(root, &digest).exists());
    }

    /// Issue 16: with `blobs/` linked elsewhere, prune deleted the 64-hex-named files of
    /// the link's target. Every directory of a cache that is a link is refused, naming
    /// it, by prune, info and opening the store, and nothing in the target is touched.
    #[test]
    fn symlinked_cache_directories_are_refused() {
        for linked in [
            "blobs",
            "blobs/sha256",
            "uses",
            "sbom-scans",
            "pushed",
            "layer-cache",
        ] {
            let (dir, [a, ..], now) = cache();
            let root = dir.path();
            let elsewhere = tempfile::tempdir().unwrap();
            let victim = elsewhere.path().join(a.hex());
            fs::write(&victim, b"someone else's file").unwrap();
            let old = elsewhere.path().join(".hoist-tmp-0ld0ld");
            fs::write(&old, b"x").unwrap();
            let link = root.join(linked);
            if link.exists() {
                fs::remove_dir_all(&link).unwrap();
            }
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
            let everything = PrunePolicy {
                max_size: Some(0),
                ..PrunePolicy::default()
            };
            let errors = [
                prune(root, &everything, now).map(|_| ()),
                cache_info(root).map(|_| ()),
                BlobStore::open_cache(root).map(|_| ()),
            ];
            for error in errors {
                let error = error.expect_err(linked);
                assert!(
                    matches!(&error, Error::SymlinkedDirectory { path } if *path == link),
                    "{linked}: {error}"
                );
                assert!(error.to_string().contains(&link.display().to_string()));
            }
            assert_eq!(fs::read(&victim).unwrap(), b"someone else's file");
            assert!(old.exists());
            assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 2);
        }
    }
}
