//! The git state a release needs, from the `git` command (the user's git, with the
//! user's configuration, hooks and credentials: no reimplementation to drift from it).
//!
//! The **default branch** is, in order: what `origin/HEAD` points at (set by `git
//! clone`); else `init.defaultBranch` when that branch exists; else `main`, else
//! `master`, when it exists. A repository with none of these has no known default
//! branch, so `latest = "auto"` gives no `latest` and `--commit`/`--git-tag` need
//! `--allow-branch`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ReleaseError, Result};

/// What a build is labelled and dated with from its checkout's HEAD.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// The HEAD commit, full hex.
    pub sha: Option<String>,
    /// Its committer time, seconds since the epoch.
    pub time: Option<u64>,
    /// The source repository's https URL, from its remote.
    pub source: Option<String>,
}

/// HEAD of each checkout the command's builds are in, asked of git once per checkout
/// and command: each question is a `git` process, and a 30-member workspace asked ~7
/// per member. A command makes one (`job::Env`), after any commit it makes: HEAD
/// does not move while its builds run. Clones share what was asked.
#[derive(Clone, Debug, Default)]
pub struct Heads(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<PathBuf, Head>>>);

impl Heads {
    /// The HEAD of the checkout `dir` is in; `None` outside git.
    pub fn of(&self, dir: &Path) -> Option<Head> {
        // Git finds a checkout by the nearest `.git` above `dir`: with none there is no
        // checkout and no process to start (unless the environment names one).
        let key = match dot_git_dir(dir) {
            Some(found) => found,
            None if std::env::var_os("GIT_DIR").is_some() => dir.to_path_buf(),
            None => return None,
        };
        let mut heads = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(head) = heads.get(&key) {
            return Some(head.clone());
        }
        let git = Git::discover(dir).ok()?;
        let head = Head {
            sha: git.head_sha().ok(),
            time: git.head_time().ok(),
            source: git.source_url(),
        };
        heads.insert(key, head.clone());
        Some(head)
    }
}

/// The nearest directory at or above `dir` holding a `.git` (a directory, or a file
/// in a worktree or submodule).
fn dot_git_dir(dir: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(dir).ok()?;
    absolute
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// A git working tree.
#[derive(Clone, Debug)]
pub struct Git {
    /// The top of the working tree.
    pub root: PathBuf,
}

impl Git {
    /// The working tree `dir` is in.
    pub fn discover(dir: &Path) -> Result<Git> {
        let top = run(dir, &["rev-parse", "--show-toplevel"])?;
        Ok(Git {
            root: PathBuf::from(top),
        })
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        run(&self.root, args)
    }

    /// The HEAD commit, full hex.
    pub fn head_sha(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    /// The checked-out branch; `None` on a detached HEAD (CI checkouts of a tag).
    pub fn branch(&self) -> Result<Option<String>> {
        match self.git(&["symbolic-ref", "--quiet", "--short", "HEAD"]) {
            Ok(branch) => Ok(Some(branch)),
            Err(ReleaseError::Git { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The default branch (see the module doc), if one can be told.
    pub fn default_branch(&self) -> Option<String> {
        if let Ok(remote_head) = self.git(&["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"])
            && let Some(branch) = remote_head.strip_prefix("refs/remotes/origin/")
        {
            return Some(branch.to_string());
        }
        let configured = self.git(&["config", "--get", "init.defaultBranch"]).ok();
        configured
            .into_iter()
            .chain(["main".to_string(), "master".to_string()])
            .find(|b| self.branch_exists(b))
    }

    fn branch_exists(&self, branch: &str) -> bool {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .is_ok()
    }

    /// Paths (relative to the root) with changes, staged or not, and untracked files.
    pub fn dirty_files(&self) -> Result<Vec<String>> {
        // -z: paths unquoted (non-ASCII names stay readable), NUL-separated; a rename
        // or copy is followed by its source path, which is skipped.
        let status = self.git(&["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
        let mut entries = status.split('\0').filter(|e| !e.is_empty());
        let mut paths = Vec::new();
        while let Some(entry) = entries.next() {
            let (code, path) = (entry.get(..2).unwrap_or(""), entry.get(3..).unwrap_or(""));
            if code.contains(['R', 'C']) {
                entries.next();
            }
            if !path.is_empty() {
                paths.push(path.to_string());
            }
        }
        Ok(paths)
    }

    /// The HEAD commit's committer time, seconds since the epoch.
    pub fn head_time(&self) -> Result<u64> {
        self.commit_time("HEAD")
    }

    /// A commit's committer time, seconds since the epoch.
    pub fn commit_time(&self, commit: &str) -> Result<u64> {
        let text = self.git(&["log", "-1", "--format=%ct", commit, "--"])?;
        text.parse().map_err(|_| ReleaseError::Git {
            args: format!("log -1 --format=%ct {commit}"),
            message: format!("`{text}` is not a time"),
        })
    }

    /// Whether git ignores `path` (a `.gitignore` rule): such a file is in no commit,
    /// so no checkout of a revision has it.
    pub fn is_ignored(&self, path: &Path) -> bool {
        let text = path.display().to_string();
        self.git(&["check-ignore", "--quiet", "--", &text]).is_ok()
    }

    /// The HEAD commit's subject line.
    pub fn head_subject(&self) -> Result<String> {
        self.git(&["log", "-1", "--format=%s", "HEAD"])
    }

    /// The repository's public URL for labels and provenance: [`Git::remote_url`] through
    /// [`https_url`] (no credentials, query or fragment).
    pub fn source_url(&self) -> Option<String> {
        self.remote_url().and_then(|url| https_url(&url))
    }

    /// `origin`'s URL (else the first remote's), if there is a remote.
    pub fn remote_url(&self) -> Option<String> {
        if let Ok(url) = self.git(&["remote", "get-url", "origin"]) {
            return Some(url);
        }
        let remotes = self.git(&["remote"]).ok()?;
        let first = remotes.lines().next()?;
        self.git(&["remote", "get-url", first]).ok()
    }

    /// The commit a tag names, if the tag exists.
    pub fn tag_commit(&self, tag: &str) -> Option<String> {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/tags/{tag}^{{commit}}"),
        ])
        .ok()
    }

    /// The checkout's own git directory (absolute; a linked worktree has its own).
    pub fn git_dir(&self) -> Result<PathBuf> {
        self.git(&["rev-parse", "--absolute-git-dir"])
            .map(PathBuf::from)
    }

    /// The first parent of `commit`, if it has one.
    pub fn parent(&self, commit: &str) -> Option<String> {
        self.git(&["rev-parse", "--verify", "--quiet", &format!("{commit}^1")])
            .ok()
    }

    /// Stages `paths` (relative to the root or absolute).
    pub fn add(&self, paths: &[PathBuf]) -> Result<()> {
        self.with_paths(&["add", "--"], paths)
    }

    /// Commits exactly `paths`, staged or not, with `message`; the user's hooks run.
    pub fn commit(&self, paths: &[PathBuf], message: &str) -> Result<()> {
        self.with_paths(&["commit", "--quiet", "-m", message, "--"], paths)
    }

    /// Puts the index entries of `paths` back to HEAD's (undoes a `git add`).
    pub fn unstage(&self, paths: &[PathBuf]) -> Result<()> {
        self.with_paths(&["reset", "--quiet", "HEAD", "--"], paths)
    }

    fn with_paths(&self, args: &[&str], paths: &[PathBuf]) -> Result<()> {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(paths.iter().map(String::as_str));
        self.git(&all).map(drop)
    }

    /// Adds the annotated tag `tag` on HEAD.
    pub fn tag_annotated(&self, tag: &str, message: &str) -> Result<()> {
        self.git(&["tag", "--annotate", tag, "-m", message])?;
        Ok(())
    }
}

/// Runs `git -C dir ARGS`; its stdout without trailing whitespace, or an error with its stderr.
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| ReleaseError::Git {
            args: args.join(" "),
            message: format!("cannot run git: {e}"),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(ReleaseError::Git {
            args: args.join(" "),
            message: if stderr.is_empty() {
                format!("exited with {}", output.status)
            } else {
                stderr
            },
        });
    }
    // Only the end: `status --porcelain` lines start with a meaningful space.
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string())
}

/// A remote URL as a browsable `https://` URL with credentials (user info), query,
/// fragment and `.git` removed: what images and provenance may name publicly, since a
/// CI checkout's remote often carries a token (`https://x-access-token:…@host/…`,
/// `…?private_token=…`).
/// `git@github.com:a/b.git` → `https://github.com/a/b`,
/// `https://user:token@host/a/b.git?token=t#x` → `https://host/a/b`,
/// `ssh://git@host:2222/a/b` → `https://host/a/b`. Local paths give `None`.
pub fn https_url(remote: &str) -> Option<String> {
    // Neither a query nor a fragment names the repository; both can hold secrets. Cut
    // after the user info is gone, so a stray `?` or `#` in a password cannot make the
    // rest of the password look like a host.
    let before_query = |text: &str| {
        text.split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let remote = remote.trim();
    let (host, path) = if let Some((scheme, rest)) = remote.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git" | "git+ssh") {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        // An ssh port is not the web server's; an https one is kept.
        let host = if scheme == "https" || scheme == "http" {
            host
        } else {
            host.split(':').next().unwrap_or(host)
        };
        (before_query(host), before_query(path))
    } else if let Some((user_host, path)) = remote.split_once(':')
        && !user_host.contains('/')
        && !path.starts_with("//")
    {
        // scp-like syntax: [user@]host:path.
        let host = user_host.rsplit('@').next().unwrap_or(user_host);
        (before_query(host), before_query(path))
    } else {
        return None;
    };
    if host.is_empty() {
        return None;
    }
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    Some(if path.is_empty() {
        format!("https://{host}")
    } else {
        format!("https://{host}/{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `git ARGS` in `dir` with the host's configuration kept out.
    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn reads_the_state_of_a_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "--quiet", "--initial-branch=trunk"]);
        std::fs::write(root.join("a.txt"), "a").unwrap();
        git(root, &["add", "a.txt"]);
        git(root, &["commit", "--quiet", "-m", "first"]);
        let repo = Git::discover(root).unwrap();
        assert_eq!(repo.branch().unwrap().as_deref(), Some("trunk"));
        assert_eq!(repo.head_time().unwrap(), 1_714_564_800);
        assert_eq!(repo.head_subject().unwrap(), "first");
        // No origin/HEAD, no main/master: the default branch is not known…
        assert_eq!(repo.default_branch(), None);
        // …until init.defaultBranch names an existing branch.
        git(root, &["config", "init.defaultBranch", "trunk"]);
        assert_eq!(repo.default_branch().as_deref(), Some("trunk"));
        assert_eq!(repo.dirty_files().unwrap(), Vec::<String>::new());

        std::fs::write(root.join("b c.txt"), "new").unwrap();
        std::fs::write(root.join("é.txt"), "new").unwrap();
        git(root, &["mv", "a.txt", "moved.txt"]);
        let mut dirty = repo.dirty_files().unwrap();
        dirty.sort();
        assert_eq!(dirty, ["b c.txt", "moved.txt", "é.txt"]);

        git(root, &["commit", "--quiet", "-m", "second"]);
        // (Tagged through the helper: an annotated tag needs the identity it sets.)
        git(
            root,
            &["tag", "--annotate", "v1.0.0", "-m", "Release v1.0.0"],
        );
        assert_eq!(repo.tag_commit("v1.0.0"), Some(repo.head_sha().unwrap()));
        assert_eq!(repo.tag_commit("v2.0.0"), None);
        git(root, &["checkout", "--quiet", "--detach"]);
        assert_eq!(repo.branch().unwrap(), None);
        assert_eq!(repo.remote_url(), None);
        git(
            root,
            &["remote", "add", "upstream", "git@example.invalid:a/b.git"],
        );
        assert_eq!(
            repo.remote_url().as_deref(),
            Some("git@example.invalid:a/b.git")
        );
    }

    #[test]
    fn remotes_become_https_without_credentials() {
        let cases = [
            ("git@github.com:a/b.git", Some("https://github.com/a/b")),
            ("https://github.com/a/b.git", Some("https://github.com/a/b")),
            (
                "https://x-access-token:ghs_secret@github.com/a/b",
                Some("https://github.com/a/b"),
            ),
            (
                "https://user:p%40ss@gitlab.example:8443/g/s/p.git/",
                Some("https://gitlab.example:8443/g/s/p"),
            ),
            (
                "ssh://git@host.example:2222/a/b.git",
                Some("https://host.example/a/b"),
            ),
            ("git://host.example/a/b", Some("https://host.example/a/b")),
            // Issue 16: a token in the query (or the fragment) stays out of images.
            (
                "https://gitlab.example/g/p.git?private_token=glpat-secret",
                Some("https://gitlab.example/g/p"),
            ),
            (
                "https://user:pw@host.example?token=secret",
                Some("https://host.example"),
            ),
            (
                "https://host.example/a/b.git#token=secret",
                Some("https://host.example/a/b"),
            ),
            (
                "git@host.example:a/b.git?token=secret",
                Some("https://host.example/a/b"),
            ),
            (
                "ssh://user:secret@host.example:22/a/b?x=1#y",
                Some("https://host.example/a/b"),
            ),
            (
                "https://user:se?cr#et@host.example/a/b",
                Some("https://host.example/a/b"),
            ),
            ("/srv/git/a.git", None),
            ("file:///srv/git/a.git", None),
            ("../a", None),
        ];
        for (remote, expected) in cases {
            assert_eq!(https_url(remote).as_deref(), expected, "{remote}");
        }
    }
}
