//! DSSE envelopes (secure-systems-lab/dsse `protocol.md`, `envelope.md`): the signed
//! wrapper in-toto attestations travel in. The signature is over the
//! pre-authentication encoding `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP
//! LEN(body) SP body` (lengths in ASCII decimal), never over the JSON of the envelope,
//! so the payload needs no canonical form.

use serde::{Deserialize, Serialize};

use super::key::{PrivateKey, PublicKey, base64, unbase64};

/// The payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// An envelope as JSON carries it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is (`application/vnd.in-toto+json`).
    pub payload_type: String,
    /// The payload, standard base64.
    pub payload: String,
    /// One per key.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Which key (optional in DSSE; hoist writes an empty one, as cosign does for
    /// key-pair signatures).
    #[serde(default)]
    pub keyid: String,
    /// Standard base64 of the ASN.1 DER ECDSA signature over the PAE.
    pub sig: String,
}

/// The pre-authentication encoding of `body` as a `payload_type`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// An envelope around `body`, signed with `key`.
pub fn seal(payload_type: &str, body: &[u8], key: &PrivateKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, body));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: base64(body),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: base64(&signature),
        }],
    }
}

/// The payload of `envelope` if one of its signatures is by `key`; else why not.
pub fn open(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, String> {
    let body = unbase64(&envelope.payload).ok_or("the envelope's payload is not base64")?;
    let message = pae(&envelope.payload_type, &body);
    let signed = envelope
        .signatures
        .iter()
        .any(|signature| unbase64(&signature.sig).is_some_and(|der| key.verifies(&message, &der)));
    if envelope.signatures.is_empty() {
        return Err("the envelope has no signatures".to_string());
    }
    if !signed {
        return Err(format!(
            "no signature of the envelope verifies with {} (another key, or a tampered payload)",
            key.origin
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specs_example() {
        // protocol.md's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn an_envelope_opens_with_its_key_only() {
        let key = PrivateKey::generate().unwrap();
        let envelope = seal(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        assert_eq!(open(&envelope, &key.public_key("mine")).unwrap(), b"{}");
        let other = PrivateKey::generate().unwrap().public_key("other");
        assert!(open(&envelope, &other).unwrap_err().contains("other"));
        let mut tampered = envelope.clone();
        tampered.payload = base64(b"{ }");
        assert!(open(&tampered, &key.public_key("mine")).is_err());
        let mut retyped = envelope;
        retyped.payload_type = "text/plain".to_string();
        assert!(open(&retyped, &key.public_key("mine")).is_err());
    }
}
