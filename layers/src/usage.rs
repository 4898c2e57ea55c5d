//! What a shared cache knows about the builds using it: which blobs each live process
//! holds (leases) and when each blob was last used (use stamps).
//!
//! Only a store opened with [`crate::BlobStore::open_cache`] keeps these; an output
//! layout opened as a store never gets them. Under the cache root:
//!
//! - `leases/<pid>-<random>`: one file per process using the cache, holding an
//!   exclusive `flock` for the process's whole life and listing, one per line, every
//!   digest the process has looked up, checked, written or imported. The kernel drops
//!   the lock when the process ends, however it ends, so a lease whose lock can be
//!   taken belongs to a process that is gone.
//! - `prune.lock`: a process takes it *shared* for the instant it adds a digest to its
//!   lease (and while creating its lease file), and `hoist cache prune` takes it
//!   *exclusive* while it reads the leases and deletes. So a digest is either in a live
//!   lease before prune reads the leases (and is spared), or added after prune has
//!   finished deleting (and the process then finds the blob missing, before using it,
//!   and rebuilds or fetches it as on any miss).
//! - `uses/sha256/<hex>`: an empty file whose mtime is the blob's last use, set once per
//!   process on the first use. Not the blob's atime (`noatime`/`relatime` mounts keep
//!   it stale, and every hash or copy of the blob would count as a use) and not the
//!   blob's mtime (layouts hard-link cache blobs, so touching it would change files in
//!   users' layouts, and it would invalidate the per-run verification memo). A missing
//!   stamp falls back to the blob's mtime, when it entered the cache.
//!
//! Every step is best effort where the signature cannot carry an error: a cache that
//! cannot record a lease still builds correctly; it is only less protected from a
//! concurrent prune.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use tempfile::NamedTempFile;

use crate::error::Error;
use crate::hash::Digest;

/// The leases' directory under the cache root.
pub(crate) const LEASES_DIR: &str = "leases";
/// The lock file serialising lease updates against prune.
pub(crate) const PRUNE_LOCK: &str = "prune.lock";
/// The use stamps' directory under the cache root.
pub(crate) const USES_DIR: &str = "uses";

/// The use-stamp file of `digest` under `root`.
pub(crate) fn stamp_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join(USES_DIR)
        .join(digest.algorithm())
        .join(digest.hex())
}

/// Opens (creating) the cache's prune lock file.
pub(crate) fn open_prune_lock(root: &Path) -> Result<File, Error> {
    let path = root.join(PRUNE_LOCK);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))
}

/// One process's lease on a cache: see the module docs.
#[derive(Debug)]
pub(crate) struct Tracker {
    root: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Opened on first use, kept open (its lock is the lease's liveness).
    lease: Option<NamedTempFile>,
    prune_lock: Option<File>,
    held: HashSet<Digest>,
}

impl Tracker {
    pub(crate) fn new(root: &Path) -> Tracker {
        Tracker {
            root: root.to_path_buf(),
            state: Mutex::new(State::default()),
        }
    }

    /// Adds `digest` to this process's lease and stamps its use (once per process).
    pub(crate) fn hold(&self, digest: &Digest) -> Result<(), Error> {
        // One holder at a time: the shared flock belongs to one open file, so two
        // threads unlocking it independently would end each other's protection.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.held.contains(digest) {
            return Ok(());
        }
        if state.prune_lock.is_none() {
            state.prune_lock = Some(open_prune_lock(&self.root)?);
        }
        let lock_path = self.root.join(PRUNE_LOCK);
        let prune_lock = state.prune_lock.as_ref().expect("opened above");
        prune_lock
            .lock_shared()
            .map_err(|e| Error::io(&lock_path, e))?;
        let added = self.add_to_lease(&mut state, digest);
        let prune_lock = state.prune_lock.as_ref().expect("opened above");
        let unlocked = prune_lock.unlock().map_err(|e| Error::io(&lock_path, e));
        added?;
        unlocked?;
        stamp(&stamp_path(&self.root, digest));
        state.held.insert(digest.clone());
        Ok(())
    }

    /// Appends `digest` to the lease, creating and locking the lease file first if this
    /// is the process's first hold (under the shared prune lock, so prune never sees
    /// a lease file in the instant before its lock is taken).
    fn add_to_lease(&self, state: &mut State, digest: &Digest) -> Result<(), Error> {
        if state.lease.is_none() {
            state.lease = Some(self.create_lease()?);
        }
        let lease = state.lease.as_mut().expect("created above");
        // One write of a whole line to an O_APPEND file: a reader sees whole lines.
        let line = format!("{digest}\n");
        lease
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(self.root.join(LEASES_DIR), e))
    }

    fn create_lease(&self) -> Result<NamedTempFile, Error> {
        let dir = self.root.join(LEASES_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Removed when the tracker goes (a clean exit); one a killed process leaves is
        // removed by the next prune that finds its lock free.
        let file = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .rand_bytes(8)
            .append(true)
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        file.as_file()
            .lock()
            .map_err(|e| Error::io(file.path(), e))?;
        Ok(file)
    }
}

/// Sets the stamp's mtime to now, creating it (and its directory) if needed.
fn stamp(path: &Path) {
    let open = || {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    };
    let file = open().or_else(|e| {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        fs::create_dir_all(path.parent().expect("a stamp has a parent"))?;
        open()
    });
    if let Ok(file) = file {
        let _ = file.set_modified(SystemTime::now());
    }
}
