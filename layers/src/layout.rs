//! Where things live under a blob store's root besides `blobs/`: the layer-cache
//! records, the names of blobs set aside for deletion, the SBOM scans and push records
//! kept per digest, and the rule that none of a cache's directories is a link. The
//! store, the layer cache and prune all read this one description.

use std::fs;
use std::path::Path;

use crate::error::Error;
use crate::usage::{LEASES_DIR, USES_DIR};

/// The layer-cache records' directory under the store root
/// (`<root>/layer-cache/<key hex>.json`).
pub(crate) const CACHE_DIR: &str = "layer-cache";

/// What a blob set aside by [`BlobStore::evict`](crate::BlobStore::evict) is named
/// (then `<pid>-<n>`); one a killed run leaves is removed by `hoist cache prune`.
pub(crate) const EVICT_PREFIX: &str = ".hoist-evict-";

/// Refuses `root`'s subdirectories `dirs` (checked in order, so list a parent before its
/// children) that are symbolic links: a store creates, sweeps and (as a cache) prunes
/// files in them, which must not happen wherever a link points. `root` itself may be a
/// link (a cache directory moved to another disk).
pub(crate) fn refuse_symlinks(root: &Path, dirs: &[&str]) -> Result<(), Error> {
    for dir in dirs {
        let path = root.join(dir);
        if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(Error::SymlinkedDirectory { path });
        }
    }
    Ok(())
}

/// Per-layer SBOM scans, `<cache>/sbom-scans/<format>-<hex>-<role>[-files].json`
/// (written by hoist's SBOM scanner): pruned with their layer's digest.
pub const SBOM_SCANS_DIR: &str = "sbom-scans";

/// Which repositories of each registry received each blob,
/// `<cache>/pushed/<registry>/<hex>` (written by pushes): pruned with the blob's digest.
pub const PUSHED_DIR: &str = "pushed";

/// Downloaded Python wheels, `<cache>/python-wheels/<sha256>/<file name>` (written by
/// hoist's wheel fetcher, re-hashed on every use, touched when used): pruned as entries
/// keyed by the wheel's sha256.
pub const PYTHON_WHEELS_DIR: &str = "python-wheels";

/// Every directory of a cache, parents before children. None may be a symbolic link:
/// prune deletes 64-hex-named files in them, which must never happen in a link's target,
/// and wheels fetched into a link's target would be written outside the cache.
const CACHE_DIRS: [&str; 10] = [
    "blobs",
    "blobs/sha256",
    CACHE_DIR,
    USES_DIR,
    "uses/sha256",
    LEASES_DIR,
    "refs",
    SBOM_SCANS_DIR,
    PUSHED_DIR,
    PYTHON_WHEELS_DIR,
];

/// Refuses a cache at `root` whose own directories are symbolic links, naming the link.
pub(crate) fn refuse_symlinked_cache_dirs(root: &Path) -> Result<(), Error> {
    refuse_symlinks(root, &CACHE_DIRS)
}
