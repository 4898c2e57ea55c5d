//! Releases: the version a project declares, how it moves, and which image tags it
//! yields.
//!
//! - [`version_file`] reads and rewrites the version in `pyproject.toml`,
//!   `package.json`, `Cargo.toml`, `*.py`, `Chart.yaml`, a plain `VERSION` file or any
//!   file through a pattern, changing only the version string, and writes several files all-or-nothing ([`version_file::write_all`]).
//! - [`bump`] is the pure rule `bump(version, kind) → version` (SemVer 2.0.0).
//! - [`tags`] turns tag rules (`{version}`, `{major}.{minor}`, `latest`, …) and the git
//!   state into image tags, as docker/metadata-action does.
//! - [`git`] asks the `git` command about the checkout, commits and tags.
//! - [`labels`] derives the `org.opencontainers.image.*` labels and annotations.
//! - [`forward`] keeps moving tags (`latest`, `1`, `1.2`) from going backwards in a
//!   registry.
//! - [`settings`] resolves the `[version]` and `[tags]` sections of `hoist.toml`.
//! - [`attest`] gathers what a signed build's provenance records.
//! - [`checkout`] puts a revision in a temporary worktree (`hoist verify`).
//! - [`journal`] and [`transaction`] make a version change (files, commit, git tag)
//!   one crash-safe transaction: a killed or failed release is finished by the same
//!   command, never bumped again.
//! - [`workflow`] is `hoist release`: the steps above ([`steps`]), then the build
//!   pipeline for every image, and [`rollout`]: every image pushed everywhere, then the
//!   tags moved.
//!
//! Everything here but `git`, `forward`, `journal`, `transaction` and the file writes is
//! pure and unit-tested.

pub mod attest;
pub mod bump;
pub mod checkout;
pub mod forward;
pub mod git;
pub mod journal;
pub mod labels;
pub mod rollout;
pub mod settings;
pub mod split;
pub mod steps;
pub mod tags;
pub mod transaction;
pub mod version_file;
pub mod workflow;

use std::path::PathBuf;

/// What can go wrong in a release step. Every variant names the file and line,
/// the rule, the git command or the tag at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// Reading or writing a version file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A version file is not valid TOML or JSON.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A version file holds no version where its kind keeps one.
    #[error("{}: no version: {expected}", path.display())]
    NoVersion {
        /// The file.
        path: PathBuf,
        /// Where the version was looked for.
        expected: String,
    },
    /// A version is not SemVer 2.0.0.
    #[error("{}:{line}: `{value}` is not a SemVer 2.0.0 version ({reason})", path.display())]
    NotSemver {
        /// The file.
        path: PathBuf,
        /// 1-based line of the version.
        line: usize,
        /// The version as written.
        value: String,
        /// What the SemVer parser said.
        reason: String,
    },
    /// The file's name does not say which kind of version file it is.
    #[error(
        "{}: unknown kind of version file (expected pyproject.toml, package.json, Cargo.toml, *.py, Chart.yaml, or a plain file such as VERSION; for another file give a pattern: {{ path = \"…\", pattern = '…(?P<version>…)…' }})",
        path.display()
    )]
    UnknownKind {
        /// The file.
        path: PathBuf,
    },
    /// A `{ path, pattern }` version file where the pattern does not match exactly once.
    #[error("{}: the pattern `{pattern}` matches {count} times; it must match exactly once", path.display())]
    PatternMatches {
        /// The file.
        path: PathBuf,
        /// The pattern as written.
        pattern: String,
        /// How many times it matched.
        count: usize,
    },
    /// A bump that SemVer or the pre-release rules do not allow.
    #[error("cannot bump {from}: {message}")]
    Bump {
        /// The version being bumped.
        from: String,
        /// Why not.
        message: String,
    },
    /// A tag rule is malformed or cannot be filled in.
    #[error("tag rule `{rule}`: {message}")]
    TagRule {
        /// The rule as written.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// A `git` command failed.
    #[error("git {args}: {message}")]
    Git {
        /// The arguments given to git.
        args: String,
        /// Its error output, or why it could not run.
        message: String,
    },
    /// A `[version]` or `[tags]` setting is invalid.
    #[error("invalid {field}: {message}")]
    Setting {
        /// The key, e.g. `tags.latest`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Talking to the registry, or building, failed (kept as the source: the CLI
    /// finds the registry's answer in the chain).
    #[error("{0}")]
    Registry(#[from] crate::Error),
    /// The project's state does not allow the step; says what to fix.
    #[error("{0}")]
    Refused(String),
    /// A step failed: what was being done, and how to go on.
    #[error("{context}")]
    Step {
        /// What was being done, and how to go on.
        context: String,
        /// What went wrong.
        source: Box<ReleaseError>,
    },
}

/// Result alias for release steps.
pub type Result<T, E = ReleaseError> = std::result::Result<T, E>;

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
