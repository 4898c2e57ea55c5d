//! One entry of a layer as planned, before it is written: the shape the directory walk,
//! listed files and [`EntrySource`](crate::EntrySource)s all produce, and the cache key
//! and the tar writer read.

use std::path::PathBuf;
use std::sync::Arc;

/// Prefix that marks a whiteout; layer consumers treat any such name as one.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";

/// One entry of the archive, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative archive path: no leading `/` or `./`; directories end with `/`.
    pub(crate) path: String,
    pub(crate) kind: Kind,
    /// Permission and special bits (`0o7777` at most), after the mode policy.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    File(FileInfo),
    /// A regular file whose content an [`EntrySource`](crate::EntrySource) streams.
    Streamed(Member),
    Symlink {
        target: String,
    },
    /// A further name of a file written earlier in the archive under `target`.
    HardLink {
        target: String,
    },
    /// An empty regular file named `.wh.<name>`.
    Whiteout,
}

/// What the walk saw of a regular file, to detect changes when it is read later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) source: PathBuf,
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) nlink: u64,
}

/// A regular file of an [`EntrySource`](crate::EntrySource): which one, which of its
/// entries, and the size and sha256 it declared (checked as its bytes are archived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Index of the source in [`LayerSpec::sources`](crate::LayerSpec::sources).
    pub(crate) source: usize,
    /// Index of the entry in what the source listed.
    pub(crate) index: usize,
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
    /// The source's name, for errors.
    pub(crate) origin: Arc<str>,
}

impl Kind {
    /// The content size of a regular file (disk or streamed); 0 for everything else.
    pub(crate) fn content_size(&self) -> u64 {
        match self {
            Kind::File(info) => info.size,
            Kind::Streamed(member) => member.size,
            _ => 0,
        }
    }
}
