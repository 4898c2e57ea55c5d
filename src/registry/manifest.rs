//! Fetching and putting manifests and indexes: the exact bytes, verified against
//! their digest, shared by pull, push and tag.

use hoist_layers::Digest;
use oci_client::{Client, Reference};
use serde_json::Value;

use super::describe;
use super::retry::retrying;
use crate::error::{Error, Result};
use crate::oci::media;
use crate::oci::model::Descriptor;
use oci_client::secrets::RegistryAuth;

/// Manifest types we read, in the Accept header.
const ACCEPTED: &[&str] = &[
    media::OCI_INDEX,
    media::DOCKER_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
];

fn registry_error(reference: &Reference, message: String) -> Error {
    Error::Registry {
        registry: reference.resolve_registry().to_string(),
        message,
    }
}

/// A manifest or index: its descriptor (digest computed from the bytes received and
/// checked against `expected` when given; media type from the document) and bytes.
pub async fn fetch_manifest(
    client: &Client,
    reference: &Reference,
    expected: Option<&str>,
) -> Result<(Descriptor, Vec<u8>)> {
    let fail = |message: String| registry_error(reference, message);
    // The client already holds this registry's credentials (client_for stored them);
    // oci-client only uses this argument when none are stored.
    let auth = RegistryAuth::Anonymous;
    let (bytes, _) = retrying(|| client.pull_manifest_raw(reference, &auth, ACCEPTED))
        .await
        .map_err(|e| {
            fail(format!(
                "fetching manifest {}: {}",
                reference.whole(),
                describe(&e)
            ))
        })?;
    let digest = Digest::sha256_of(&bytes);
    if let Some(expected) = expected
        && expected != digest.as_str()
    {
        return Err(fail(format!(
            "manifest {} does not match its digest {expected} (content hashes to {digest})",
            reference.whole()
        )));
    }
    let descriptor = describe_document(&bytes, expected_media_type_error(reference))?;
    Ok((descriptor, bytes.to_vec()))
}

fn expected_media_type_error(reference: &Reference) -> impl Fn(String) -> Error + '_ {
    move |message| registry_error(reference, format!("{}: {message}", reference.whole()))
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
