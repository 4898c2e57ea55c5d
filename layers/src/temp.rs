//! Temporary files a later run can tell apart from a live run's.
//!
//! Every temporary file hoist writes (a blob on its way into a store, a layer-cache
//! record, an archive or `index.json` before its rename) is created by
//! [`create_temp_file`], which takes an exclusive `flock` on it for as long as it is
//! open. A process killed with SIGKILL loses its locks with its file descriptors but
//! leaves the files; [`sweep_temp_files`] deletes a temporary file only when
//!
//! - its name is exactly one of ours (`.hoist-tmp-` and six random characters) and it
//!   is a regular file, not a link;
//! - nobody holds its lock, which a live run always does: a stopped or busy writer
//!   keeps its files however long it takes;
//! - it was last modified before this process started sweeping (its age), so a file a
//!   run creates at this very moment, in the instant before it takes its lock, is
//!   never the one swept.
//!
//! The writer closes the remaining gap: after locking, it checks that its path still
//! names the file it holds, and starts over with a new name if a sweep removed it.
//! Where the filesystem does not support `flock`, files are created unlocked and
//! never swept.

use std::ffi::OsStr;
use std::fs::{self, File, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::LazyLock;
use std::time::SystemTime;

use tempfile::NamedTempFile;

use crate::error::Error;

/// The name every temporary file starts with; the rest is [`RANDOM_LEN`] characters.
pub(crate) const TEMP_PREFIX: &str = ".hoist-tmp-";

/// tempfile's default number of random characters, which is what we create.
const RANDOM_LEN: usize = 6;

/// How often a writer retries when its fresh file vanished before it was locked.
const CREATE_ATTEMPTS: usize = 8;

/// When this process first created or swept temporary files: only files older than
/// this are candidates for a sweep.
static RUN_START: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);

/// Creates a temporary file in `dir` (mode `mode` less the umask), locked so that no
/// sweep deletes it while it is open.
pub fn create_temp_file(dir: &Path, mode: u32) -> Result<NamedTempFile, Error> {
    LazyLock::force(&RUN_START);
    for _ in 0..CREATE_ATTEMPTS {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .rand_bytes(RANDOM_LEN)
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        match file.as_file().lock() {
            Ok(()) => {}
            // No flock here (some network or FUSE filesystems): the file works, it is
            // just never swept, because its lock can never be seen as free.
            Err(e) if lock_unsupported(&e) => return Ok(file),
            Err(e) => return Err(Error::io(file.path(), e)),
        }
        if still_named(file.path(), file.as_file()) {
            return Ok(file);
        }
        // A sweep took the file between its creation and our lock; dropping it
        // removes nothing of anyone else's (the name is gone or was never reused).
    }
    Err(Error::io(
        dir,
        io::Error::other("temporary files kept disappearing before they could be locked"),
    ))
}

/// Deletes the temporary files in `dir` left by runs that are gone (see the module
/// documentation for the rules). Returns how many were deleted. Best effort: a file
/// that cannot be examined or deleted is left alone, and a missing `dir` is fine.
pub fn sweep_temp_files(dir: &Path) -> usize {
    let started = *RUN_START;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| is_temp_name(&entry.file_name()))
        .filter(|entry| sweep_one(&entry.path(), started))
        .count()
}

/// Deletes `path` if it is an abandoned temporary file; true if it was deleted.
fn sweep_one(path: &Path, started: SystemTime) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let old_enough = meta.modified().is_ok_and(|modified| modified < started);
    if !meta.file_type().is_file() || !old_enough {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    if !file
        .metadata()
        .is_ok_and(|opened| (opened.dev(), opened.ino()) == (meta.dev(), meta.ino()))
    {
        return false;
    }
    match file.try_lock() {
        // Held while deleting, so the owner-to-be of a file just created (which locks
        // before checking its name) cannot mistake this file for its own.
        Ok(()) => fs::remove_file(path).is_ok(),
        Err(TryLockError::WouldBlock | TryLockError::Error(_)) => false,
    }
}

/// Whether `name` is exactly a name [`create_temp_file`] makes.
pub(crate) fn is_temp_name(name: &OsStr) -> bool {
    name.to_str()
        .and_then(|name| name.strip_prefix(TEMP_PREFIX))
        .is_some_and(|rest| {
            rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Whether `path` still names the file `file` has open.
fn still_named(path: &Path, file: &File) -> bool {
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(held)) => (named.dev(), named.ino()) == (held.dev(), held.ino()),
        _ => false,
    }
}

fn lock_unsupported(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::Unsupported | io::ErrorKind::InvalidInput
    ) || error.raw_os_error() == Some(ENOLCK)
}

/// Linux's "no locks available", returned by filesystems without flock support.
const ENOLCK: i32 = 37;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A file named like a temporary file, unlocked, last modified an hour before this
    /// process began sweeping: what a killed run leaves.
    fn abandoned(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, b"partial layer").unwrap();
        let an_hour_before = *RUN_START - Duration::from_hours(1);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(an_hour_before)
            .unwrap();
        path
    }

    #[test]
    fn only_exact_temp_names_are_ours() {
        for ours in [".hoist-tmp-abc123", ".hoist-tmp-ZZZZZZ"] {
            assert!(is_temp_name(OsStr::new(ours)), "{ours}");
        }
        for theirs in [
            ".hoist-tmp-abc12",
            ".hoist-tmp-abc1234",
            ".hoist-tmp-abc-12",
            ".hoist-config",
            "hoist-tmp-abc123",
            ".hoist-tmp-",
        ] {
            assert!(!is_temp_name(OsStr::new(theirs)), "{theirs}");
        }
    }

    #[test]
    fn abandoned_files_are_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = abandoned(dir.path(), ".hoist-tmp-aaaaaa");
        let not_ours = abandoned(dir.path(), ".hoist-tmp-toolong");
        let user_file = abandoned(dir.path(), "notes.txt");
        fs::create_dir(dir.path().join(".hoist-tmp-bbbbbb")).unwrap();
        let link = dir.path().join(".hoist-tmp-cccccc");
        std::os::unix::fs::symlink(&user_file, &link).unwrap();

        assert_eq!(sweep_temp_files(dir.path()), 1);
        assert!(!orphan.exists());
        assert!(not_ours.exists() && user_file.exists());
        assert!(dir.path().join(".hoist-tmp-bbbbbb").is_dir());
        assert!(fs::symlink_metadata(&link).is_ok());
        assert_eq!(sweep_temp_files(&dir.path().join("missing")), 0);
    }

    #[test]
    fn a_live_writers_file_is_kept_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let live = create_temp_file(dir.path(), 0o644).unwrap();
        let an_hour_before = *RUN_START - Duration::from_hours(1);
        live.as_file().set_modified(an_hour_before).unwrap();
        // flock treats every open of a file separately, even within one process, so
        // the sweep's own open cannot take the writer's lock.
        assert_eq!(sweep_temp_files(dir.path()), 0);
        assert!(live.path().exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(
            !path.exists(),
            "dropping an uncommitted temp file deletes it"
        );
    }

    #[test]
    fn a_file_newer_than_the_sweep_is_kept_even_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        LazyLock::force(&RUN_START);
        let fresh = dir.path().join(".hoist-tmp-dddddd");
        fs::write(&fresh, b"just created").unwrap();
        File::options()
            .write(true)
            .open(&fresh)
            .unwrap()
            .set_modified(*RUN_START + Duration::from_secs(1))
            .unwrap();
        assert_eq!(sweep_temp_files(dir.path()), 0);
        assert!(fresh.exists());
    }

    #[test]
    fn temp_files_get_the_mode_asked_for_less_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let file = create_temp_file(dir.path(), 0o644).unwrap();
        let mode = file.as_file().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "{mode:o}");
        assert!(is_temp_name(file.path().file_name().unwrap()));
    }
}
