//! The release journal: one small JSON file in the checkout's git directory
//! (`.git/hoist/release.json`, never the work tree) saying which version is being
//! released, from which, and the step reached. Every side effect of a release (the
//! version files, `git add`, the commit, the git tag) is made *after* the journal says
//! it is about to happen and recorded *after* it happened, so a run killed anywhere
//! leaves a journal from which the next run finishes that same version instead of
//! bumping again ([`super::transaction`] does the finishing).
//!
//! The journal is written the way every hoist output is: a temporary file beside it,
//! synced, renamed over the old one, and the directory synced, so a reader finds the
//! old record or the new one, never half of one.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ReleaseError, Result};

/// The journal's file name inside `<git dir>/hoist/`.
const FILE: &str = "release.json";

/// A journal larger than this is not one hoist wrote (version files are small).
const MAX_BYTES: u64 = 16 << 20;

/// The environment variable of the test-only kill hook (see `kill_point`).
pub const KILL_AT: &str = "HOIST_TEST_KILL_AT";

/// How far a release got. Ordered: each step implies the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The new texts are recorded; the files may be old, new, or some of each.
    Editing,
    /// Every version file holds the new version.
    Written,
    /// The version files are staged (`git add`).
    Staged,
    /// The release commit is made.
    Committed,
    /// The release commit carries its git tag.
    Tagged,
}

/// One version file's edit: its whole text before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// The file (absolute, as the config resolves it).
    pub path: PathBuf,
    /// Its text before the release (put back when the commit is refused).
    pub before: String,
    /// Its text with the new version.
    pub after: String,
}

/// What the journal records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The version being released.
    pub version: String,
    /// The version before it.
    pub previous: String,
    /// The release commit's message; `None`: no commit is made. A change that is no
    /// release and makes neither a commit nor a tag is done once its files are
    /// written (`hoist version bump`).
    pub commit: Option<String>,
    /// Whether a release follows the edit: the journal then stays until the release
    /// is complete, even with no git step (`hoist release --no-git`).
    #[serde(default)]
    pub release: bool,
    /// The git tag and its annotation; `None`: no git tag is made.
    pub tag: Option<(String, String)>,
    /// HEAD before the release commit (how a commit made by a killed run is known).
    pub head: Option<String>,
    /// The step reached.
    pub step: Step,
    /// The version files' edits, in the order they are applied.
    pub edits: Vec<Edit>,
}

impl Record {
    /// Whether every step before the build is made (files, commit, tag, as asked).
    pub fn prepared(&self) -> bool {
        let last = if self.tag.is_some() {
            Step::Tagged
        } else if self.commit.is_some() {
            Step::Committed
        } else {
            Step::Written
        };
        self.step >= last
    }

    /// Whether the journal is forgotten once the files are written.
    pub fn ends_with_files(&self) -> bool {
        !self.release && self.commit.is_none() && self.tag.is_none()
    }
}

/// The journal of one checkout.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of the checkout whose git directory is `git_dir`.
    pub fn in_git_dir(git_dir: &Path) -> Journal {
        Journal {
            path: git_dir.join("hoist").join(FILE),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, if a release or version change is under way.
    pub fn load(&self) -> Result<Option<Record>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        let mut text = String::new();
        file.take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| self.io(e))?;
        if text.len() as u64 > MAX_BYTES {
            return Err(self.malformed(format!("larger than {MAX_BYTES} bytes")));
        }
        serde_json::from_str(&text).map(Some).map_err(|e| {
            self.malformed(format!("{e} (delete it to forget the interrupted release)"))
        })
    }

    /// Records `record`: the old record or this one is on disk, never a mix.
    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = crate::fsutil::parent_dir(&self.path);
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let text = serde_json::to_vec_pretty(record)
            .map_err(|e| self.malformed(format!("cannot encode: {e}")))?;
        let mut temp = crate::fsutil::temp_file_in(dir)?;
        temp.write_all(&text).map_err(|e| self.io(e))?;
        temp.as_file().sync_all().map_err(|e| self.io(e))?;
        temp.persist(&self.path).map_err(|e| self.io(e.error))?;
        sync_dir(dir).map_err(|e| self.io(e))
    }

    /// Forgets the record: the release is complete (or undone).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => sync_dir(crate::fsutil::parent_dir(&self.path)).map_err(|e| self.io(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(self.io(source)),
        }
    }

    fn io(&self, source: std::io::Error) -> ReleaseError {
        ReleaseError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn malformed(&self, message: String) -> ReleaseError {
        ReleaseError::Malformed {
            path: self.path.clone(),
            line: 1,
            message,
        }
    }
}

/// Syncs a directory, so a rename in it survives a power cut.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Test-only hook: when `HOIST_TEST_KILL_AT` names `point`, the process aborts there
/// (no destructor runs, no temporary file is cleaned: what SIGKILL leaves), so tests
/// can stop a release at each step deterministically. Nothing else reads the variable.
pub(super) fn kill_point(point: &str) {
    if std::env::var_os(KILL_AT).is_some_and(|at| at == point) {
        eprintln!("{KILL_AT}={point}: aborting here");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            version: "0.1.1".into(),
            previous: "0.1.0".into(),
            commit: Some("Release v0.1.1".into()),
            release: true,
            tag: Some(("v0.1.1".into(), "Release v0.1.1".into())),
            head: Some("0123".into()),
            step: Step::Editing,
            edits: vec![Edit {
                path: "/p/VERSION".into(),
                before: "0.1.0\n".into(),
                after: "0.1.1\n".into(),
            }],
        }
    }

    #[test]
    fn saves_loads_and_removes_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_git_dir(dir.path());
        assert_eq!(journal.load().unwrap(), None);
        let mut record = record();
        journal.save(&record).unwrap();
        assert_eq!(journal.load().unwrap().as_ref(), Some(&record));
        record.step = Step::Committed;
        journal.save(&record).unwrap();
        assert_eq!(journal.load().unwrap().unwrap().step, Step::Committed);
        // Only the journal is left in its directory: no temporary file.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("hoist"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["release.json"]);
        journal.remove().unwrap();
        assert_eq!(journal.load().unwrap(), None);
        journal.remove().unwrap();
    }

    #[test]
    fn a_damaged_journal_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_git_dir(dir.path());
        std::fs::create_dir_all(dir.path().join("hoist")).unwrap();
        std::fs::write(journal.path(), "{\"version\":").unwrap();
        let err = journal.load().unwrap_err().to_string();
        assert!(
            err.contains("release.json") && err.contains("delete it"),
            "{err}"
        );
    }

    #[test]
    fn steps_are_ordered() {
        assert!(Step::Editing < Step::Written);
        assert!(Step::Written < Step::Staged);
        assert!(Step::Staged < Step::Committed);
        assert!(Step::Committed < Step::Tagged);
        assert_eq!(
            serde_json::to_string(&Step::Committed).unwrap(),
            "\"committed\""
        );
    }
}
