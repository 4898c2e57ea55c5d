//! Fetching manifests and indexes: the exact bytes, verified against their digest,
//! shared by pull, tag and release's tag lookups.

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde_json::Value;

use super::transport::Repository;
use crate::error::{Error, Result};
use crate::oci::media;
use crate::oci::model::Descriptor;

fn registry_error(reference: &Reference, message: String) -> Error {
    Error::Registry {
        registry: reference.registry().to_string(),
        message,
    }
}

/// What a reference names a manifest by: its digest when it has one, else its tag.
pub fn manifest_reference(reference: &Reference) -> &str {
    reference.digest().or(reference.tag()).unwrap_or("latest")
}

/// A manifest or index of `repository`: its descriptor (digest computed from the
/// bytes received and checked against `expected` when given; media type from the
/// document) and bytes.
pub async fn fetch_manifest(
    repository: &Repository,
    reference: &Reference,
    expected: Option<&str>,
) -> Result<(Descriptor, Vec<u8>)> {
    let fail = |message: String| registry_error(reference, message);
    let bytes = repository.manifest(manifest_reference(reference)).await?;
    let digest = Digest::sha256_of(&bytes);
    if let Some(expected) = expected
        && expected != digest.as_str()
    {
        return Err(fail(format!(
            "manifest {} does not match its digest {expected} (content hashes to {digest})",
            reference.whole()
        )));
    }
    let descriptor = describe_document(&bytes, |message| {
        fail(format!("{}: {message}", reference.whole()))
    })?;
    Ok((descriptor, bytes))
}

/// The descriptor of a manifest or index document: its digest, size and media type
/// (from the document; OCI makes `mediaType` optional, so an index is told from a
/// manifest by shape). Anything else is refused through `fail`.
pub fn describe_document(bytes: &[u8], fail: impl Fn(String) -> Error) -> Result<Descriptor> {
    let digest = Digest::sha256_of(bytes);
    let json: Value =
        serde_json::from_slice(bytes).map_err(|e| fail(format!("malformed manifest: {e}")))?;
    let media_type = match json.get("mediaType").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if json.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        None => media::OCI_MANIFEST.to_string(),
    };
    if !media::is_index(&media_type) && !media::is_manifest(&media_type) {
        return Err(fail(format!(
            "a {media_type}, not an image index or manifest"
        )));
    }
    Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
}
