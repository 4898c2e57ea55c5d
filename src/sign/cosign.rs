//! Signatures in a registry the way cosign stores them (cosign
//! `specs/SIGNATURE_SPEC.md`, `pkg/oci/empty`, `pkg/oci/static`), so that cosign,
//! containers/image (podman, skopeo) and policy controllers find and check them:
//!
//! * the manifest `sha256:<hex>` of a repository is signed under the tag
//!   `sha256-<hex>.sig` of the same repository;
//! * that tag holds an OCI image manifest with one layer per signature: the layer
//!   blob is the simple-signing payload ([`super::payload`]), its media type
//!   `application/vnd.dev.cosign.simplesigning.v1+json`, and its annotation
//!   `dev.cosignproject.cosign/signature` the base64 DER ECDSA signature of the blob;
//! * its config is what go-containerregistry's `mutate.Append` on `empty.Image` with
//!   an OCI config media type writes (what cosign pushes):
//!   `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":…}…],
//!   "os":"","rootfs":{"type":"layers","diff_ids":[…]},"config":{}}`, the payloads'
//!   digests as diff IDs (they are not compressed).
//!
//! Signing again adds a layer and keeps the others (another key, other annotations);
//! an identical signature (ECDSA per RFC 6979 is deterministic: same key, same payload)
//! is not added twice, so re-running a release adds nothing.

use std::collections::BTreeMap;

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde::Serialize;

use super::key::{PrivateKey, PublicKey, base64, unbase64};
use super::payload::{mismatch, payload};
use super::{SignError, in_registry};
use crate::oci::canonical::to_canonical;
use crate::oci::media;
use crate::oci::model::{Descriptor, Index, Manifest};
use crate::registry::answer::Meaning;
use crate::registry::manifest::{describe_document, fetch_manifest};
use crate::registry::push::put_artifact_blob;
use crate::registry::transport::{Access, Repository, Transport};

/// A signature layer's media type.
pub const SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The largest payload read back (cosign's are a few hundred bytes).
const PAYLOAD_LIMIT: usize = 1 << 20;

/// What one `sign_pushed` did.
#[derive(Debug, Serialize)]
pub struct SignReport {
    /// `REGISTRY/REPO`.
    pub repository: String,
    /// Per manifest signed (the index first, then its manifests).
    pub signed: Vec<Signed>,
}

/// One manifest's signature.
#[derive(Debug, Serialize)]
pub struct Signed {
    /// The manifest signed.
    pub digest: Digest,
    /// The tag holding its signatures (`sha256-<hex>.sig`).
    pub tag: String,
    /// Whether a layer was added (false: this signature was there already).
    pub added: bool,
    /// How many signatures the tag holds now.
    pub signatures: usize,
}

/// The tag cosign stores `digest`'s signatures under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.hex())
}

/// Whether a registry error says the thing asked for is not there.
pub(super) fn is_absent(error: &crate::Error) -> bool {
    error.registry_answer().is_some_and(|answer| {
        matches!(
            answer.meaning(),
            Meaning::NoSuchTag | Meaning::NoSuchManifest | Meaning::NoSuchRepository
        )
    })
}

/// The manifests `reference` names: its own digest (resolved, verified), then, for an
/// index, each manifest it lists.
pub async fn manifests_of(
    repository: &Repository,
    reference: &Reference,
) -> Result<Vec<Digest>, SignError> {
    let (descriptor, bytes) = fetch_manifest(repository, reference, reference.digest())
        .await
        .map_err(in_registry(format!("reading {}", reference.whole())))?;
    let mut digests = vec![descriptor.digest.clone()];
    if media::is_index(&descriptor.media_type) {
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| SignError::Signature {
            manifest: format!("{}@{}", repository.display(), descriptor.digest),
            reason: format!("malformed index: {e}"),
        })?;
        for child in index.manifests {
            if !digests.contains(&child.digest) {
                digests.push(child.digest);
            }
        }
    }
    Ok(digests)
}

/// Signs the image `reference` names (tag or digest) and each manifest of its index
/// with `key`, storing the signatures under their `.sig` tags. The library entry
/// point: `hoist sign`, `--sign-key` on pushes and the release workflow call it after
/// the image's tags are up.
pub async fn sign_pushed(
    transport: &Transport,
    reference: &Reference,
    key: &PrivateKey,
    annotations: &BTreeMap<String, String>,
) -> Result<SignReport, SignError> {
    let repository = crate::registry::push::artifact_repository(reference, transport)
        .await
        .map_err(in_registry(format!("signing {}", reference.whole())))?;
    let name = repository.display();
    let mut signed = Vec::new();
    for digest in manifests_of(&repository, reference).await? {
        let payload = payload(&name, digest.as_str(), annotations);
        let signature = key.sign(&payload);
        signed.push(add_signature(&repository, &digest, &payload, &signature, transport).await?);
    }
    Ok(SignReport {
        repository: name,
        signed,
    })
}

/// The signature manifest under `tag`, if there is one.
async fn existing(repository: &Repository, tag: &str) -> Result<Option<Manifest>, SignError> {
    let bytes = match repository.manifest(tag).await {
        Ok(bytes) => bytes,
        Err(error) if is_absent(&error) => return Ok(None),
        Err(error) => {
            let doing = format!("reading the signatures {}:{tag}", repository.display());
            return Err(in_registry(doing)(error));
        }
    };
    let manifest = serde_json::from_slice(&bytes).map_err(|e| SignError::Signature {
        manifest: format!("{}:{tag}", repository.display()),
        reason: format!("the tag holds no image manifest: {e}"),
    })?;
    Ok(Some(manifest))
}

async fn add_signature(
    repository: &Repository,
    digest: &Digest,
    payload: &[u8],
    signature: &[u8],
    transport: &Transport,
) -> Result<Signed, SignError> {
    let tag = signature_tag(digest);
    let mut layers = existing(repository, &tag)
        .await?
        .map(|manifest| manifest.layers)
        .unwrap_or_default();
    let mut layer = Descriptor::new(
        SIMPLESIGNING_MEDIA_TYPE,
        Digest::sha256_of(payload),
        payload.len() as u64,
    );
    layer.annotations = Some(BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_string(),
        base64(signature),
    )]));
    let there = layers.iter().any(|l| {
        l.digest == layer.digest
            && l.annotation(SIGNATURE_ANNOTATION) == layer.annotation(SIGNATURE_ANNOTATION)
    });
    if there {
        return Ok(Signed {
            digest: digest.clone(),
            tag,
            added: false,
            signatures: layers.len(),
        });
    }
    let doing = || format!("signing {}@{digest}", repository.display());
    put_artifact_blob(repository, &layer.digest, payload, transport)
        .await
        .map_err(in_registry(doing()))?;
    layers.push(layer);
    let config = signature_config(&layers);
    let config_digest = Digest::sha256_of(&config);
    put_artifact_blob(repository, &config_digest, &config, transport)
        .await
        .map_err(in_registry(doing()))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64),
        layers,
        annotations: None,
        extra: BTreeMap::new(),
    };
    let document = to_canonical(&manifest).map_err(|e| SignError::Random(e.to_string()))?;
    repository
        .put_manifest(&tag, media::OCI_MANIFEST, &document.bytes)
        .await
        .map_err(in_registry(doing()))?;
    Ok(Signed {
        digest: digest.clone(),
        tag,
        added: true,
        signatures: manifest.layers.len(),
    })
}

/// go-containerregistry's config of `empty.Image` after appending `layers`, in Go's
/// field order.
fn signature_config(layers: &[Descriptor]) -> Vec<u8> {
    #[derive(Serialize)]
    struct History {
        created: &'static str,
    }
    #[derive(Serialize)]
    struct RootFs<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        diff_ids: Vec<&'a str>,
    }
    #[derive(Serialize)]
    #[allow(clippy::struct_field_names)] // Go's field names: `config` inside a config.
    struct Config<'a> {
        architecture: &'static str,
        created: &'static str,
        history: Vec<History>,
        os: &'static str,
        rootfs: RootFs<'a>,
        config: BTreeMap<String, String>,
    }
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let config = Config {
        architecture: "",
        created: ZERO_TIME,
        history: layers
            .iter()
            .map(|_| History { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
        },
        config: BTreeMap::new(),
    };
    serde_json::to_vec(&config).expect("a config serialises")
}

/// What [`verify_pushed`] found: per manifest, the signatures that verified.
#[derive(Debug, Serialize)]
pub struct VerifiedSignatures {
    /// `REGISTRY/REPO`.
    pub repository: String,
    /// Each manifest checked (the index first), with how many signatures by the key
    /// it has.
    pub manifests: Vec<(Digest, usize)>,
}

/// Checks that the image `reference` names, and each manifest of its index, carries
/// a signature by `key` over a payload naming that manifest in this repository. The
/// error names the first manifest that does not, and why each of its signatures was
/// refused.
pub async fn verify_pushed(
    transport: &Transport,
    reference: &Reference,
    key: &PublicKey,
) -> Result<VerifiedSignatures, SignError> {
    let repository = transport
        .repository(reference, Access::Pull)
        .await
        .map_err(in_registry(format!(
            "checking the signatures of {}",
            reference.whole()
        )))?;
    let name = repository.display();
    let mut manifests = Vec::new();
    for digest in manifests_of(&repository, reference).await? {
        let count = verify_manifest(&repository, &name, &digest, key).await?;
        manifests.push((digest, count));
    }
    Ok(VerifiedSignatures {
        repository: name,
        manifests,
    })
}

async fn verify_manifest(
    repository: &Repository,
    name: &str,
    digest: &Digest,
    key: &PublicKey,
) -> Result<usize, SignError> {
    let subject = format!("{name}@{digest}");
    let fail = |reason: String| SignError::Signature {
        manifest: subject.clone(),
        reason,
    };
    let tag = signature_tag(digest);
    let bytes = match repository.manifest(&tag).await {
        Ok(bytes) => bytes,
        Err(error) if is_absent(&error) => {
            return Err(fail(format!("not signed: the repository has no tag {tag}")));
        }
        Err(error) => {
            return Err(in_registry(format!("checking the signatures of {subject}"))(error));
        }
    };
    describe_document(&bytes, |message| crate::Error::Registry {
        registry: name.to_string(),
        message: format!("{name}:{tag}: {message}"),
    })
    .map_err(in_registry(format!("checking the signatures of {subject}")))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("{tag} holds no image manifest: {e}")))?;
    let mut refusals = Vec::new();
    let mut verified = 0;
    for (n, layer) in manifest.layers.iter().enumerate() {
        match check_layer(repository, name, digest, layer, key).await? {
            None => verified += 1,
            Some(reason) => {
                refusals.push(format!("signature {} ({}): {reason}", n + 1, layer.digest));
            }
        }
    }
    if verified == 0 {
        let reasons = if refusals.is_empty() {
            format!("{tag} holds no signatures")
        } else {
            refusals.join("; ")
        };
        return Err(fail(format!(
            "no signature by {} verifies: {reasons}",
            key.origin
        )));
    }
    Ok(verified)
}

/// Why one signature layer does not vouch for `digest`, or `None` when it does.
async fn check_layer(
    repository: &Repository,
    name: &str,
    digest: &Digest,
    layer: &Descriptor,
    key: &PublicKey,
) -> Result<Option<String>, SignError> {
    if layer.media_type != SIMPLESIGNING_MEDIA_TYPE {
        return Ok(Some(format!(
            "media type {}, not a simple-signing payload",
            layer.media_type
        )));
    }
    let Some(signature) = layer.annotation(SIGNATURE_ANNOTATION) else {
        return Ok(Some(format!("no {SIGNATURE_ANNOTATION} annotation")));
    };
    let Some(der) = unbase64(signature) else {
        return Ok(Some("the signature is not base64".to_string()));
    };
    // Verified against its digest by the transport.
    let payload = repository
        .blob_bytes(&layer.digest, PAYLOAD_LIMIT)
        .await
        .map_err(in_registry(format!(
            "reading the signature payload {name}@{}",
            layer.digest
        )))?;
    if !key.verifies(&payload, &der) {
        return Ok(Some(format!(
            "does not verify with {} (another key, or a tampered payload)",
            key.origin
        )));
    }
    Ok(mismatch(&payload, name, digest.as_str()))
}
