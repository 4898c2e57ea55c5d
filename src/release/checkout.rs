//! A revision of the checkout in a temporary `git worktree`: `hoist verify` rebuilds
//! an image from the revision it records (`org.opencontainers.image.revision`) when
//! HEAD is elsewhere, so verifying a published image needs only its reference and the
//! repository. The worktree is removed when the value is dropped.

use std::path::{Path, PathBuf};

use super::ReleaseError;
use super::git::Git;

/// A detached worktree at one revision, and the config file inside it.
pub struct RevisionCheckout {
    root: PathBuf,
    dir: tempfile::TempDir,
    /// The commit checked out (full hex).
    pub revision: String,
    /// The config file's path inside the worktree.
    pub config: PathBuf,
}

/// `git -C dir ARGS` (the one runner, in `git.rs`), its output trimmed.
fn git(dir: &Path, args: &[&str]) -> Result<String, ReleaseError> {
    super::git::run(dir, args).map(|out| out.trim().to_string())
}

/// The full commit `revision` names in `git`'s repository; an error saying how to
/// get it when the repository does not have it.
pub fn resolve(git_tree: &Git, revision: &str) -> Result<String, ReleaseError> {
    let spec = format!("{revision}^{{commit}}");
    git(&git_tree.root, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|_| {
        ReleaseError::Git {
            args: format!("rev-parse {revision}"),
            message: format!(
                "revision {revision} is not in the checkout at {} (git fetch it, or pass --revision HEAD to use the working tree)",
                git_tree.root.display()
            ),
        }
    })
}

impl RevisionCheckout {
    /// Checks out `revision` of the repository `config` is in, detached, into a
    /// temporary directory.
    pub fn create(
        git_tree: &Git,
        config: &Path,
        revision: &str,
    ) -> Result<RevisionCheckout, ReleaseError> {
        let io = |path: &Path, source| ReleaseError::Io {
            path: path.to_path_buf(),
            source,
        };
        let revision = resolve(git_tree, revision)?;
        let root = std::fs::canonicalize(&git_tree.root).map_err(|e| io(&git_tree.root, e))?;
        let absolute = std::fs::canonicalize(config).map_err(|e| io(config, e))?;
        let inside = absolute
            .strip_prefix(&root)
            .map_err(|_| ReleaseError::Git {
                args: "worktree add".into(),
                message: format!(
                    "{} is not inside the checkout {}",
                    config.display(),
                    root.display()
                ),
            })?
            .to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("hoist-verify-")
            .tempdir()
            .map_err(|e| io(&std::env::temp_dir(), e))?;
        let tree = dir.path().join("checkout");
        let tree_text = tree.display().to_string();
        git(
            &root,
            &[
                "worktree", "add", "--quiet", "--detach", &tree_text, &revision,
            ],
        )?;
        Ok(RevisionCheckout {
            root,
            config: tree.join(inside),
            dir,
            revision,
        })
    }
}

impl Drop for RevisionCheckout {
    fn drop(&mut self) {
        let tree = self.dir.path().join("checkout").display().to_string();
        // Best effort: a worktree left registered is pruned by git once its
        // directory is gone (the TempDir removes it).
        let _ = git(&self.root, &["worktree", "remove", "--force", &tree]);
    }
}
