//! Upload progress: what a push tells its caller while blobs go up, so that a big push
//! shows more than its last line (bars on a terminal, a line per blob in CI; the CLI
//! decides). The registry code only reports bytes; it never prints.

use std::sync::Arc;

use hoist_layers::Digest;

/// Hears about every blob upload of a command.
pub trait UploadProgress: Send + Sync {
    /// An upload of `digest` (`size` bytes) to `repository` starts.
    fn blob_started(&self, repository: &str, digest: &Digest, size: u64) -> Arc<dyn BlobProgress>;
}

/// One blob's upload.
pub trait BlobProgress: Send + Sync {
    /// An attempt starts sending from byte 0 (the first, or a retry).
    fn attempt(&self) {}
    /// `bytes` more were handed to the connection.
    fn sent(&self, _bytes: u64) {}
    /// The registry took the blob.
    fn finished(&self) {}
}

/// Reports nothing.
pub struct Quiet;

/// A blob progress that reports nothing (small documents nobody watches go up).
pub fn quiet() -> Arc<dyn BlobProgress> {
    Arc::new(Quiet)
}

impl BlobProgress for Quiet {}

impl UploadProgress for Quiet {
    fn blob_started(&self, _: &str, _: &Digest, _: u64) -> Arc<dyn BlobProgress> {
        Arc::new(Quiet)
    }
}
