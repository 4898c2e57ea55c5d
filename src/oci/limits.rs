//! How much of a document hoist reads into memory. Every image document, layout file
//! and archive listing is read whole (JSON is parsed in memory), so each kind has a
//! maximum: a larger one is an error naming the file and the limit, found from its
//! size before any of it is read. Layer contents are streamed and need none; the tar
//! headers inside them are bounded by `tar_reader::EXTENSION_LIMIT`, the package
//! databases an SBOM reads by `sbom::scan::METADATA_LIMIT` (docs/design.md lists all).

use super::media;

/// `oci-layout` holds one short field (`{"imageLayoutVersion":"1.0.0"}`, 30 bytes).
pub const LAYOUT_MARKER_LIMIT: u64 = 64 << 10;

/// A manifest or an image index: 4 MiB, as the distribution registry
/// (`maxManifestBodySize`), containerd, ORAS and Pulp cap them, and as hoist's registry
/// transport reads them. A manifest of 1000 layers is about 200 KiB.
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// An image config: the same 4 MiB as the registry side reads configs with
/// (`src/registry/index.rs`). The largest configs (long histories, many labels) are
/// tens of KiB.
pub const CONFIG_LIMIT: u64 = 4 << 20;

/// A layout's `index.json` or a docker archive's `manifest.json`: they list every image
/// of the layout or archive (a few hundred bytes each), so 16 MiB — four times a
/// registry's index — is some 40 000 entries.
pub const LISTING_LIMIT: u64 = 16 << 20;

/// Anything else read whole from a layout: artifact documents (SBOMs listing every
/// file run to tens of MiB), the same 64 MiB as the registry transport allows them.
pub const DOCUMENT_LIMIT: u64 = 64 << 20;

/// The limit for a blob of `media_type`, and what to call such a blob in an error.
pub fn document_limit(media_type: &str) -> (u64, &'static str) {
    if media::is_manifest(media_type) || media::is_index(media_type) {
        (MANIFEST_LIMIT, "a manifest or index")
    } else if media_type == media::OCI_CONFIG || media_type == media::DOCKER_CONFIG {
        (CONFIG_LIMIT, "an image config")
    } else {
        (DOCUMENT_LIMIT, "a document")
    }
}
