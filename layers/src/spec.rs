//! The types every part of the crate shares: what goes into a layer ([`LayerSpec`] and
//! its parts), how a build runs ([`BuildOptions`], [`Progress`]) and what comes out
//! ([`BuiltLayer`]). A leaf: it names no other module but the error and hash types, so
//! the walk, the cache, the compressor and the builder can all use it without a cycle.

use std::path::PathBuf;

use crate::error::Error;
use crate::hash::Digest;
use crate::source::SharedSource;

/// The mtime given to every entry when the caller has no `SOURCE_DATE_EPOCH`.
///
/// This crate never reads the environment: the caller resolves `SOURCE_DATE_EPOCH` (or
/// a flag) and puts the result in [`LayerSpec::mtime`], falling back to this value, the
/// Unix epoch. A fixed value is what makes rebuilds byte-identical.
pub const DEFAULT_EPOCH: u64 = 0;

/// Mode bits given to whiteout files. Runtimes only look at the name, so any fixed value
/// works; 0644 is what an ordinary empty file would have.
pub const WHITEOUT_MODE: u32 = 0o644;

/// Mode bits of the directories above `dest` that the layer creates.
pub const PARENT_DIR_MODE: u32 = 0o755;

/// What goes into one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Directory whose *contents* go under `dest`; `None` makes a layer of only `files`,
    /// `sources` and whiteouts.
    pub source: Option<PathBuf>,
    /// Absolute path in the image (`"/app"`, `"/"`); may not contain `.` or `..`.
    pub dest: String,
    /// gitignore-style patterns relative to `source` (`"*.map"`, `"node_modules/"`,
    /// `"/build"`, `"!keep.map"`). Excluded directories are not descended into, so, as
    /// in git, a negation cannot re-include a file below an excluded directory.
    pub excludes: Vec<String>,
    /// Single files, each put at its own absolute path (`FileSource::dest`), besides
    /// or instead of `source`. Two entries of the layer on one path are an error.
    pub files: Vec<FileSource>,
    /// Entries that come from elsewhere than the disk (archive members, generated
    /// files), each at its own absolute path, owned by `uid`:`gid`, with the mode the
    /// source gives. Like listed files, they may not share a path with another entry.
    pub sources: Vec<SharedSource>,
    /// Owner of every entry from `source` and `files`, and of `dest` itself.
    pub uid: u32,
    /// Group of every entry from `source` and of `dest` itself.
    pub gid: u32,
    /// How permission bits are taken from the source tree.
    pub modes: ModePolicy,
    /// Absolute image paths to delete from lower layers, written as OCI whiteouts: empty
    /// regular files `<dir>/.wh.<name>`, mode [`WHITEOUT_MODE`], owned by 0:0.
    pub remove: Vec<String>,
    /// The mtime of every entry (seconds since the Unix epoch); see [`DEFAULT_EPOCH`].
    pub mtime: u64,
    /// How the tar is compressed.
    pub compression: Compression,
}

impl LayerSpec {
    /// A spec copying `source` to `dest` with the defaults: no excludes or removals, owned
    /// by 0:0, modes kept, mtime [`DEFAULT_EPOCH`], gzip level 6.
    pub fn new(source: impl Into<PathBuf>, dest: impl Into<String>) -> Self {
        LayerSpec {
            source: Some(source.into()),
            dest: dest.into(),
            excludes: Vec::new(),
            files: Vec::new(),
            sources: Vec::new(),
            uid: 0,
            gid: 0,
            modes: ModePolicy::default(),
            remove: Vec::new(),
            mtime: DEFAULT_EPOCH,
            compression: Compression::default(),
        }
    }
}

/// How permission bits are taken from the source tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ModePolicy {
    /// `st_mode & 0o7777` as on disk, setuid/setgid/sticky included.
    #[default]
    Keep,
    /// Directories 0755; files 0755 if any execute bit is set, else 0644; setuid, setgid
    /// and sticky bits kept. Makes layers independent of the builder's umask.
    Normalize,
}

impl ModePolicy {
    pub(crate) fn apply(self, st_mode: u32, is_dir: bool) -> u32 {
        let special = st_mode & 0o7000;
        match self {
            ModePolicy::Keep => st_mode & 0o7777,
            ModePolicy::Normalize if is_dir => 0o755 | special,
            ModePolicy::Normalize if st_mode & 0o111 != 0 => 0o755 | special,
            ModePolicy::Normalize => 0o644 | special,
        }
    }
}

/// Layer compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip, `level` 0–9, compressed in parallel blocks (see [`GZIP_BLOCK_SIZE`]).
    ///
    /// [`GZIP_BLOCK_SIZE`]: crate::GZIP_BLOCK_SIZE
    Gzip {
        /// 0 (store) to 9 (best).
        level: u32,
    },
    /// zstd with a content checksum, `level` in zstd's range (1–22; negative levels are
    /// the fast modes, 0 means zstd's default, 3).
    Zstd {
        /// Compression level.
        level: i32,
    },
}

impl Default for Compression {
    /// gzip level 6: the level docker and most image tools use, readable by every runtime.
    fn default() -> Self {
        Compression::Gzip { level: 6 }
    }
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Checks the level against the algorithm's range.
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Compression::Gzip { level } if level > 9 => Err(Error::InvalidCompressionLevel {
                algorithm: "gzip",
                level: level.into(),
                min: 0,
                max: 9,
            }),
            Compression::Zstd { level } if !zstd::compression_level_range().contains(&level) => {
                let range = zstd::compression_level_range();
                Err(Error::InvalidCompressionLevel {
                    algorithm: "zstd",
                    level: level.into(),
                    min: (*range.start()).into(),
                    max: (*range.end()).into(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// The most compression threads (and, in the binary, the most `--jobs`) accepted.
///
/// Far above the cores of any CI runner, so it never limits a real build, yet low enough
/// that the workers and their in-flight blocks (two per worker, zstd jobs of 8 MiB and
/// more) stay within a machine's thread and memory limits: 100 000 threads made the
/// process abort when spawning failed, and `usize::MAX` overflowed the worker vector.
pub const MAX_THREADS: usize = 256;

/// How to run a build; none of this changes the output bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// Compression threads; 0 means one per core. With 1, gzip runs on the calling
    /// thread and zstd on one worker beside it; otherwise both use this many workers.
    /// At most [`MAX_THREADS`] (more is [`Error::InvalidThreads`]).
    pub threads: usize,
    /// Look up and record finished layers in `<store root>/layer-cache/`.
    pub use_cache: bool,
}

impl BuildOptions {
    /// Checks [`BuildOptions::threads`] against [`MAX_THREADS`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.threads > MAX_THREADS {
            return Err(Error::InvalidThreads {
                threads: self.threads,
                max: MAX_THREADS,
            });
        }
        Ok(())
    }
}

impl Default for BuildOptions {
    /// All cores, cache on.
    fn default() -> Self {
        BuildOptions {
            threads: 0,
            use_cache: true,
        }
    }
}

/// Receives progress as file content is archived. Called from the building thread only.
pub trait Progress: Sync {
    /// The layer's total regular-file bytes, before any are read.
    fn start(&self, _total_bytes: u64) {}
    /// `bytes` more of file content were archived. A cache hit reports the whole total
    /// in one call.
    fn advance(&self, _bytes: u64) {}
    /// The layer cache had this layer, but its stored blob failed its check (`error`
    /// names it); the blob was deleted and the layer is being rebuilt.
    fn cached_blob_rejected(&self, _error: &Error) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A finished layer: what a manifest and an image config need to reference it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuiltLayer {
    /// Digest of the compressed blob, which is in the store under this digest.
    pub digest: Digest,
    /// Digest of the uncompressed tar (the image config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// OCI media type, from [`Compression::media_type`].
    pub media_type: String,
    /// Whether the result came from the layer cache without re-archiving.
    pub from_cache: bool,
    /// The key of the layer's inputs (versioned by [`crate::CACHE_FORMAT`] and this crate's version): the same sources and
    /// settings give the same key on any machine, so a registry that holds a layer
    /// recorded under it can answer for it ([`KnownLayers`]).
    pub key: Digest,
    /// Whether [`KnownLayers`] answered for the layer: nothing was archived, and its
    /// blob is wherever the answer came from (not necessarily in the store).
    pub known: bool,
}

/// A layer some other place holds (a registry the image is pushed to): its blob's
/// digest, its diff_id and size, as recorded there under the layer's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownLayer {
    /// Digest of the compressed blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

/// Layers known by key elsewhere; [`build_layer_reusing`](crate::build_layer_reusing) asks it after the layer cache
/// and before archiving.
pub trait KnownLayers: Sync {
    /// The layer recorded under `key` with `media_type`, if there is one.
    fn find(&self, key: &Digest, media_type: &str) -> Option<KnownLayer>;
}

/// [`KnownLayers`] that knows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoKnownLayers;

impl KnownLayers for NoKnownLayers {
    fn find(&self, _key: &Digest, _media_type: &str) -> Option<KnownLayer> {
        None
    }
}

/// Builds of one layer running at the same time (a workspace's members sharing a
/// source): the first to reach a key builds it while the others wait, then find it in
/// the layer cache. [`build_layer_observed`](crate::build_layer_observed) holds the key from
/// before the cache is asked until the layer is recorded.
pub trait LayerGate: Sync {
    /// Waits until no other build holds `key`, then holds it until the answer drops.
    fn hold(&self, key: &Digest) -> Held<'_>;
    /// `layer` was archived here (it was in neither the cache nor elsewhere).
    fn built(&self, layer: &BuiltLayer);
}

/// A key a [`LayerGate`] holds: let go when dropped.
pub struct Held<'g>(Option<Box<dyn FnOnce() + 'g>>);

impl<'g> Held<'g> {
    /// Held until dropped, then `release` runs.
    pub fn until_dropped(release: impl FnOnce() + 'g) -> Held<'g> {
        Held(Some(Box::new(release)))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

/// [`LayerGate`] for a build alone: it holds nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGate;

impl LayerGate for NoGate {
    fn hold(&self, _key: &Digest) -> Held<'_> {
        Held(None)
    }
    fn built(&self, _layer: &BuiltLayer) {}
}

/// One file of a layer's file list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSource {
    /// The file on disk (a symlink is followed: its target's content is taken). Must be
    /// a regular file.
    pub source: PathBuf,
    /// The file's absolute path in the image (`/etc/nginx/nginx.conf`); no `.`, `..`
    /// or `.wh.` components.
    pub dest: String,
    /// Permission and special bits (at most `0o7777`); `None` takes the file's mode on
    /// disk through the layer's [`ModePolicy`].
    pub mode: Option<u32>,
}
