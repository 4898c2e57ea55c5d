//! cosign's simple-signing payload (sigstore/sigstore `pkg/signature/payload`, the
//! containers/image "atomic" format): the document a signature is over, naming the
//! repository and the manifest digest it is about. Written as Go's `json.Marshal`
//! writes it (struct field order; `"optional":null` without annotations), so a payload
//! hoist writes reads like one cosign wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `critical.type` of a cosign signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload, fields in cosign's order.
#[derive(Debug, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// What the signature vouches for.
    pub critical: Critical,
    /// Annotations (`--annotation k=v`), or `null`.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The part a verifier must check.
#[derive(Debug, Serialize, Deserialize)]
pub struct Critical {
    /// The repository the image was signed as.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: ImageDigest,
    /// [`COSIGN_SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Identity {
    /// `REGISTRY/REPO` (cosign writes the repository, without tag or digest).
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImageDigest {
    /// `sha256:…`.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload bytes for `repository` (`REGISTRY/REPO`) and `digest`.
pub fn payload(repository: &str, digest: &str, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let document = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: repository.to_string(),
            },
            image: ImageDigest {
                docker_manifest_digest: digest.to_string(),
            },
            kind: COSIGN_SIGNATURE_TYPE.to_string(),
        },
        optional: (!annotations.is_empty()).then(|| {
            annotations
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        }),
    };
    serde_json::to_vec(&document).expect("a payload serialises")
}

/// Why a (validly signed) payload is not about `digest` in `repository`, if it is
/// not. The identity may carry a tag or digest after the repository (cosign's
/// `--sign-container-identity`); the repository part must be the one asked about.
pub fn mismatch(bytes: &[u8], repository: &str, digest: &str) -> Option<String> {
    let document: SimpleSigning = match serde_json::from_slice(bytes) {
        Ok(document) => document,
        Err(e) => return Some(format!("the payload is not a simple-signing document: {e}")),
    };
    let critical = &document.critical;
    if critical.kind != COSIGN_SIGNATURE_TYPE {
        return Some(format!(
            "the payload's type is `{}`, not `{COSIGN_SIGNATURE_TYPE}`",
            critical.kind
        ));
    }
    if critical.image.docker_manifest_digest != digest {
        return Some(format!(
            "the payload is about {}, not {digest} (a signature moved from another manifest)",
            critical.image.docker_manifest_digest
        ));
    }
    let named = repository_part(&critical.identity.docker_reference);
    if named != repository {
        return Some(format!(
            "the payload names repository {}, not {repository}",
            critical.identity.docker_reference
        ));
    }
    None
}

/// `HOST/REPO` of `HOST/REPO[:TAG][@DIGEST]`.
fn repository_part(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_reads_as_coign_writes_it() {
        let bytes = payload("127.0.0.1:5000/app", "sha256:ab", &BTreeMap::new());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn mismatches_name_what_differs() {
        let bytes = payload("h:5000/app", "sha256:ab", &BTreeMap::new());
        assert_eq!(mismatch(&bytes, "h:5000/app", "sha256:ab"), None);
        assert!(
            mismatch(&bytes, "h:5000/app", "sha256:cd")
                .unwrap()
                .contains("sha256:ab")
        );
        assert!(
            mismatch(&bytes, "h:5000/other", "sha256:ab")
                .unwrap()
                .contains("h:5000/app")
        );
        let tagged = payload("h:5000/app:1.0", "sha256:ab", &BTreeMap::new());
        assert_eq!(mismatch(&tagged, "h:5000/app", "sha256:ab"), None);
    }
}
