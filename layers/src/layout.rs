//! Where things live under a blob store's root besides `blobs/`: the layer-cache
//! records and the names of blobs set aside for deletion. The store, the layer cache
//! and prune all read this one description.

/// The layer-cache records' directory under the store root
/// (`<root>/layer-cache/<key hex>.json`).
pub(crate) const CACHE_DIR: &str = "layer-cache";

/// What a blob set aside by [`BlobStore::evict`](crate::BlobStore::evict) is named
/// (then `<pid>-<n>`); one a killed run leaves is removed by `hoist cache prune`.
pub(crate) const EVICT_PREFIX: &str = ".hoist-evict-";
