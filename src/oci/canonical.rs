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

/// The last second [`rfc3339`] can write, 9999-12-31T23:59:59Z: RFC 3339 years have
/// four digits, and a config dated year 10000 is one skopeo and Go's `time` refuse to
/// parse, so an image built with a later `SOURCE_DATE_EPOCH` would be unreadable.
pub const MAX_RFC3339_SECONDS: u64 = 253_402_300_799;

/// Seconds since the epoch as an RFC 3339 UTC timestamp (`1970-01-01T00:00:00Z`); valid
/// up to [`MAX_RFC3339_SECONDS`].
pub fn rfc3339(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let rem = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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

    #[test]
    fn formats_epochs_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
