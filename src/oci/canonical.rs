//! Canonical JSON: object keys sorted bytewise, no insignificant whitespace, standard
//! JSON string escaping.
//!
//! Every manifest, index and config hoist writes goes through here, and the bytes
//! returned are exactly the bytes hashed and stored: a digest computed on one
//! serialisation and content written with another would be a broken image.
//!
//! Why not olpc-cjson: it prints control characters inside strings literally (not
//! valid JSON, and base images' history entries contain tabs and newlines) and
//! NFC-normalises strings, which would silently change labels and commands. Why not
//! rely on `serde_json::Map` order: it becomes insertion-ordered as soon as any crate
//! in the build enables serde_json's `preserve_order` feature, so we sort explicitly.

use std::io::Write;

use hoist_layers::Digest;
use serde::Serialize;
use serde_json::Value;

/// A JSON document serialised canonically, with its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonBlob {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl JsonBlob {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Serialises `value` canonically.
pub fn to_canonical<T: Serialize>(value: &T) -> Result<JsonBlob, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut bytes = Vec::new();
    write_value(&value, &mut bytes)?;
    let digest = Digest::sha256_of(&bytes);
    Ok(JsonBlob { bytes, digest })
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    // Writing into a Vec cannot fail; keep the signature honest for serde errors only.
    out.flush().map_err(serde_json::Error::io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let value = serde_json::json!({"b": 1, "a": {"z": [1, 2], "y": "é"}, "B": null});
        let blob = to_canonical(&value).unwrap();
        assert_eq!(
            String::from_utf8(blob.bytes.clone()).unwrap(),
            r#"{"B":null,"a":{"y":"é","z":[1,2]},"b":1}"#
        );
        assert_eq!(blob.digest, Digest::sha256_of(&blob.bytes));
    }

    #[test]
    fn control_characters_are_escaped_and_text_is_not_normalised() {
        // "e\u{301}" is NFD; NFC normalisation would change it to "é".
        let value = serde_json::json!({"created_by": "RUN a\tb\nc", "label": "e\u{301}"});
        let blob = to_canonical(&value).unwrap();
        let text = String::from_utf8(blob.bytes.clone()).unwrap();
        assert!(text.contains(r"a\tb\nc"), "{text}");
        assert!(text.contains("e\u{301}"), "{text}");
        let back: Value = serde_json::from_slice(&blob.bytes).unwrap();
        assert_eq!(back, value);
    }
}
