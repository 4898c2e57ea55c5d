//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::hash::Digest;

/// Everything that can go wrong while building layers or using the blob store.
///
/// Every variant a user can cause names the path, pattern or field involved, so the
/// binary can print it without extra context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory being read or written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A string is not a digest of the form `sha256:<64 lowercase hex>`.
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Content did not hash to the digest it was announced under.
    #[error("digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// The digest the content should have had.
        expected: Digest,
        /// The digest the content actually has.
        found: Digest,
    },

    /// A blob is not in the store or layout.
    #[error("blob {digest} is missing (expected at {path})")]
    BlobMissing {
        /// The digest that was looked up.
        digest: Digest,
        /// Where the blob would have been.
        path: PathBuf,
    },

    /// A blob file is not something hoist reads blobs from: a symbolic link (which could
    /// lead anywhere, e.g. to `/etc/passwd`), a directory or device, or a file that was
    /// swapped while it was being opened.
    #[error("blob {digest} at {path} {reason}")]
    UnsafeBlob {
        /// The blob's digest.
        digest: Digest,
        /// The offending path (the blob file or a directory above it).
        path: PathBuf,
        /// What it is.
        reason: &'static str,
    },

    /// A blob file's size is not the size its descriptor gives.
    #[error("blob {digest} at {path} is {found} bytes, its descriptor says {expected}")]
    BlobSize {
        /// The blob's digest.
        digest: Digest,
        /// The blob file.
        path: PathBuf,
        /// The descriptor's size.
        expected: u64,
        /// The file's size.
        found: u64,
    },

    /// A blob file's content does not hash to the digest it is stored under.
    #[error("blob {expected} at {path} does not match its digest: its content hashes to {found}")]
    CorruptBlob {
        /// The blob file.
        path: PathBuf,
        /// The digest it is stored under.
        expected: Digest,
        /// What its content hashes to.
        found: Digest,
    },

    /// `LayerSpec::dest` is not a usable absolute image path.
    #[error("invalid layer destination {dest:?}: {reason}")]
    InvalidDest {
        /// The rejected destination.
        dest: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// An entry of `LayerSpec::remove` is not a usable absolute image path.
    #[error("invalid path to remove {path:?}: {reason}")]
    InvalidRemove {
        /// The rejected path.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// An entry of `LayerSpec::excludes` is not a valid gitignore pattern.
    #[error("invalid exclude pattern {pattern:?}: {reason}")]
    InvalidExclude {
        /// The rejected pattern.
        pattern: String,
        /// The matcher's explanation.
        reason: String,
    },

    /// The compression level is outside the range the algorithm accepts.
    #[error("invalid {algorithm} compression level {level}: must be in {min}..={max}")]
    InvalidCompressionLevel {
        /// `"gzip"` or `"zstd"`.
        algorithm: &'static str,
        /// The rejected level.
        level: i64,
        /// Lowest accepted level.
        min: i64,
        /// Highest accepted level.
        max: i64,
    },

    /// [`BuildOptions::threads`](crate::BuildOptions::threads) is above the maximum.
    #[error(
        "invalid number of compression threads (jobs) {threads}: must be 0 (one per core) to {max}"
    )]
    InvalidThreads {
        /// The rejected count.
        threads: usize,
        /// [`MAX_THREADS`](crate::MAX_THREADS).
        max: usize,
    },

    /// An [`EntrySource`](crate::EntrySource) could not list or open its entries.
    #[error("{name}: {source}")]
    Source {
        /// The source's name.
        name: String,
        /// What it reported.
        source: crate::source::SourceError,
    },

    /// An entry of an [`EntrySource`](crate::EntrySource) is invalid, or its content
    /// is not the size or sha256 it declared.
    #[error("{name}: {path}: {reason}")]
    SourceEntry {
        /// The source's name.
        name: String,
        /// The entry's path in the image.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// The layer source exists but is not a directory.
    #[error("layer source {path} is not a directory")]
    SourceNotDirectory {
        /// The source path as given.
        path: PathBuf,
    },

    /// A listed file is not a regular file.
    #[error("{}: {}", path.display(), if *is_dir { "is a directory, not a file (a directory goes in a layer's `from`)" } else { "is not a regular file" })]
    SourceNotFile {
        /// The source path as given.
        path: PathBuf,
        /// Whether it is a directory.
        is_dir: bool,
    },

    /// A listed file's mode has bits beyond `0o7777`.
    #[error("{}: mode {mode:#o} has bits beyond 0o7777", path.display())]
    InvalidMode {
        /// The listed file.
        path: PathBuf,
        /// The rejected mode.
        mode: u32,
    },

    /// Two entries of one layer go to the same path.
    #[error("{path} is in the layer twice: from {first} and from {second}")]
    DuplicateDestination {
        /// The path in the image.
        path: String,
        /// The first entry's origin.
        first: String,
        /// The second entry's origin.
        second: String,
    },

    /// A listed file needs a directory where another entry of the layer is not one.
    #[error("{path} is {first}, but {second} needs it to be a directory")]
    NotADirectory {
        /// The path in the image.
        path: String,
        /// The entry that is there.
        first: String,
        /// The listed file below it.
        second: String,
    },

    /// The source tree contains a socket, FIFO or device node, which a layer cannot carry.
    #[error("{path}: cannot put a {kind} in a layer")]
    SpecialFile {
        /// The offending file.
        path: PathBuf,
        /// `"socket"`, `"FIFO"`, `"block device"` or `"character device"`.
        kind: &'static str,
    },

    /// A file name (or symlink target) is not valid UTF-8.
    #[error("{path}: name or symlink target is not valid UTF-8")]
    NonUtf8Path {
        /// The offending file.
        path: PathBuf,
    },

    /// A source file's name starts with `.wh.`, which every layer consumer reads as a whiteout.
    #[error("{path}: names starting with \".wh.\" are reserved for whiteouts in OCI layers")]
    ReservedName {
        /// The offending file.
        path: PathBuf,
    },

    /// A directory of a cache or an output layout (`blobs/`, `blobs/sha256/`, a cache's
    /// `layer-cache/`, `sbom-scans/`…) is a symbolic link: writing, sweeping or pruning
    /// through it would create and delete files wherever it points.
    #[error(
        "{path} is a symbolic link: hoist does not follow links for the directories of a \
         cache or an output layout (it would write and delete files wherever the link \
         points); make it a real directory, or link the whole cache or layout directory \
         instead"
    )]
    SymlinkedDirectory {
        /// The link.
        path: PathBuf,
    },

    /// A file was modified while the layer was being built, so its bytes are unreliable.
    #[error("{path} changed while the layer was being built: {reason}")]
    FileChanged {
        /// The file that changed.
        path: PathBuf,
        /// What was noticed.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
