//! Which repositories of each registry received each blob (skopeo's blob-info cache):
//! a push to a new repository of a registry mounts a blob from one that has it instead
//! of uploading it again. Services of a workspace sharing a layer profit most.
//!
//! A record is a small text file beside the blob store,
//! `<cache>/pushed/<registry>/<digest hex>`, one repository per line, sorted. It is a
//! hint: a mount the registry declines (the blob was deleted there, no access) falls
//! back to an upload. Writers replace a record through a temp file and a rename, so a
//! reader never sees half of one; two concurrent writers may each keep only their own
//! line, which costs at most an upload later.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hoist_layers::Digest;

use crate::error::{Error, Result};

/// The most repositories remembered per blob and registry: a mount needs one, and a
/// token's scopes grow with each mount source.
const MOST_REPOSITORIES: usize = 8;

/// The records under one cache directory.
#[derive(Clone, Debug)]
pub struct PushedRecords {
    root: PathBuf,
}

impl PushedRecords {
    /// The records of the cache at `cache`.
    pub fn new(cache: &Path) -> PushedRecords {
        PushedRecords {
            root: cache.join(hoist_layers::prune::PUSHED_DIR),
        }
    }

    fn path(&self, registry: &str, digest: &Digest) -> PathBuf {
        // `:` (a port) is not portable in a file name; repositories never hold one.
        self.root
            .join(registry.replace(':', "_"))
            .join(digest.hex())
    }

    /// The repositories of `registry` known to have received `digest`; none when the
    /// record is missing or unreadable.
    pub fn repositories(&self, registry: &str, digest: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.path(registry, digest))
            .map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `repository` of `registry` holds `digest` (nothing is written when
    /// the record says so already).
    pub fn record(&self, registry: &str, repository: &str, digest: &Digest) -> Result<()> {
        let mut repositories = self.repositories(registry, digest);
        if repositories.iter().any(|r| r == repository) {
            return Ok(());
        }
        repositories.insert(0, repository.to_string());
        repositories.truncate(MOST_REPOSITORIES);
        repositories.sort();
        let path = self.path(registry, digest);
        let dir = path.parent().expect("a record has a directory");
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut file = hoist_layers::create_temp_file(dir, 0o644)?;
        let mut text = repositories.join("\n");
        text.push('\n');
        file.write_all(text.as_bytes())
            .map_err(|source| Error::Io {
                path: file.path().to_path_buf(),
                source,
            })?;
        file.persist(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_accumulate_per_registry_and_blob() {
        let dir = tempfile::tempdir().unwrap();
        let records = PushedRecords::new(dir.path());
        let blob = Digest::sha256_of(b"layer");
        let other = Digest::sha256_of(b"other");
        assert!(records.repositories("127.0.0.1:5000", &blob).is_empty());
        records.record("127.0.0.1:5000", "team/b", &blob).unwrap();
        records.record("127.0.0.1:5000", "team/a", &blob).unwrap();
        records.record("127.0.0.1:5000", "team/a", &blob).unwrap();
        records.record("127.0.0.1:5001", "team/c", &blob).unwrap();
        assert_eq!(
            records.repositories("127.0.0.1:5000", &blob),
            ["team/a", "team/b"]
        );
        assert_eq!(records.repositories("127.0.0.1:5001", &blob), ["team/c"]);
        assert!(records.repositories("127.0.0.1:5000", &other).is_empty());
    }

    #[test]
    fn a_record_keeps_a_bounded_number_of_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let records = PushedRecords::new(dir.path());
        let blob = Digest::sha256_of(b"layer");
        for i in 0..20 {
            records.record("r", &format!("repo{i:02}"), &blob).unwrap();
        }
        let kept = records.repositories("r", &blob);
        assert_eq!(kept.len(), MOST_REPOSITORIES);
        assert!(kept.contains(&"repo19".to_string()), "{kept:?}");
    }

    /// Concurrent writers (builds sharing a cache volume) never leave a torn record:
    /// every read, during and after, is whole lines of names some writer wrote.
    #[test]
    fn concurrent_writers_never_tear_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let blob = Digest::sha256_of(b"layer");
        let names: Vec<String> = (0..4).map(|i| format!("team/service-{i}")).collect();
        std::thread::scope(|scope| {
            for name in &names {
                let records = PushedRecords::new(dir.path());
                let blob = blob.clone();
                scope.spawn(move || {
                    for _ in 0..50 {
                        records.record("r", name, &blob).unwrap();
                        for seen in records.repositories("r", &blob) {
                            assert!(names_ok(&seen), "torn record line {seen:?}");
                        }
                    }
                });
            }
        });
        let last = PushedRecords::new(dir.path()).repositories("r", &blob);
        assert!(
            !last.is_empty() && last.iter().all(|l| names.contains(l)),
            "{last:?}"
        );
    }

    fn names_ok(line: &str) -> bool {
        line.strip_prefix("team/service-")
            .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
    }
}
