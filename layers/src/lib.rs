//! hoist-layers: the deterministic, synchronous core that turns directories into OCI
//! image layers.
//!
//! [`build_layer`] takes a [`LayerSpec`] (source directory, destination in the image,
//! excludes, listed files ([`FileSource`]), owner, [`ModePolicy`], whiteouts, mtime,
//! [`Compression`]) and, in one
//! streaming pass with bounded memory, walks the source, writes a tar with normalised
//! headers, hashes it (the diff_id), compresses it, hashes the result (the digest) and
//! stores the blob in a [`BlobStore`], returning a [`BuiltLayer`]. A layer cache in the
//! store answers unchanged inputs without re-archiving; every layer carries the key of its
//! inputs ([`BuiltLayer::key`]), and [`build_layer_reusing`] lets a caller answer a key
//! from elsewhere ([`KnownLayers`]: a registry holding a layer recorded under it).
//!
//! ```text
//! walk (sorted, filtered) → tar → HashingWriter (diff_id) → gzip/zstd → BlobWriter (digest) → rename
//! ```
//!
//! [`build_layer_observed`] also shows each entry, and the content of those it asks
//! for, to an [`EntryObserver`] while the layer is written (the SBOM's facts of a new
//! layer, gathered without reading the layer back); the bytes do not change.
//!
//! The same inputs give byte-identical layers on any machine and with any thread count:
//! entries are sorted bytewise by archive path; headers carry only path, type, mode,
//! uid/gid, size, link target and the spec's mtime; gzip is compressed in fixed-size
//! blocks whose bytes do not depend on scheduling. [`Digest`], [`HashingWriter`] and
//! [`HashingReader`] are the hashing building blocks; [`Error`] is the one error type.
//!
//! Nothing read back from disk is trusted unhashed: [`open_blob`] opens a blob of a
//! store, layout or unpacked archive without following links and checks its digest
//! (once per run) before it is copied or sent, and a layer-cache hit checks its blob
//! the same way. Temp files are locked while written, so [`sweep_temp_files`] can
//! delete those of killed runs without touching a live run's.
//!
//! A store opened with [`BlobStore::open_cache`] is a cache several builds may share at
//! once: each process leases the blobs it uses and stamps their use time, so
//! [`prune::prune`] removes least recently used blobs and never one a live process
//! holds ([`prune::cache_info`] describes a cache).
//!
//! The crate never reads the environment (callers map `SOURCE_DATE_EPOCH` to
//! [`LayerSpec::mtime`]) and does no network I/O.

#![deny(missing_docs)]

mod blob;
mod blobfile;
mod cache;
mod compress;
mod entry;
mod error;
mod files;
mod hash;
mod lanes;
mod layer;
mod layout;
mod observe;
pub mod prune;
mod sink;
mod source;
mod spec;
mod tar;
mod temp;
mod usage;
mod walk;
mod zstdmt;

pub use blob::{BlobStore, BlobWriter};
pub use blobfile::{BlobFile, BlobReader, open_blob};
pub use cache::CACHE_FORMAT;
pub use compress::GZIP_BLOCK_SIZE;
pub use error::Error;
pub use hash::{Digest, HashingReader, HashingWriter};
pub use layer::{build_layer, build_layer_observed, build_layer_reusing};
pub use observe::{EntryObserver, NoObserver, ObservedEntry, ObservedKind};
pub use source::{EntrySource, SharedSource, SourceEntry, SourceError, SourceKind};
pub use spec::{
    BuildOptions, BuiltLayer, Compression, DEFAULT_EPOCH, FileSource, Held, KnownLayer,
    KnownLayers, LayerGate, LayerSpec, MAX_THREADS, ModePolicy, NoGate, NoKnownLayers, NoProgress,
    PARENT_DIR_MODE, Progress, WHITEOUT_MODE,
};
pub use temp::{create_temp_file, sweep_temp_files};
pub use zstdmt::job_size as zstd_job_size;

#[cfg(test)]
mod testutil;
