//! Content digests and the `Read`/`Write` adapters that compute them in passing.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;
use sha2::Sha256;

use crate::error::Error;

const SHA256_PREFIX: &str = "sha256:";

/// A content digest, written `sha256:<64 lowercase hex digits>`.
///
/// Only sha256 exists today; [`Digest::algorithm`] is there so callers don't hard-code
/// that assumption. The textual form is also the serde form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Digest {
    /// The full `sha256:<hex>` text, kept whole so `Display` and `as_str` are free.
    text: String,
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_sha256_bytes(&Sha256::digest(bytes).into())
    }

    pub(crate) fn from_sha256_bytes(bytes: &[u8; 32]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(SHA256_PREFIX.len() + 64);
        text.push_str(SHA256_PREFIX);
        for byte in bytes {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        Digest { text }
    }

    pub(crate) fn from_hasher(hasher: Sha256) -> Digest {
        Digest::from_sha256_bytes(&hasher.finalize().into())
    }

    /// The algorithm name, `"sha256"`.
    pub fn algorithm(&self) -> &str {
        &self.text[..SHA256_PREFIX.len() - 1]
    }

    /// The 64 lowercase hex digits, as used in blob paths.
    pub fn hex(&self) -> &str {
        &self.text[SHA256_PREFIX.len()..]
    }

    /// The full `sha256:<hex>` form, as used in manifests.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidDigest {
            value: value.to_owned(),
            reason,
        };
        let (algorithm, hex) = value
            .split_once(':')
            .ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        if algorithm != "sha256" {
            return Err(invalid("unsupported algorithm (only sha256 is)"));
        }
        if hex.len() != 64 {
            return Err(invalid("a sha256 digest has 64 hex digits"));
        }
        // Uppercase is rejected rather than folded: the OCI spec demands lowercase, and
        // accepting it would give one blob two names.
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid("hex digits must be 0-9 or a-f (lowercase)"));
        }
        Ok(Digest {
            text: value.to_owned(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A `Write` adapter that hashes and counts every byte passed to the inner writer.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the digest of everything written and its length.
    ///
    /// Does not flush `inner`: callers that need it flushed do that themselves.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.bytes)
    }

    /// The inner writer, for inspection.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        // Only what the inner writer accepted is hashed, so short writes stay correct.
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A `Read` adapter that hashes and counts every byte read from the inner reader.
pub struct HashingReader<R: Read> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner reader, the digest of everything read so far and its length.
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_matches_known_vectors() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        assert_eq!(
            Digest::sha256_of(b"abc").as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_round_trips_and_splits() {
        let digest: Digest = EMPTY.parse().unwrap();
        assert_eq!(digest, Digest::sha256_of(b""));
        assert_eq!(digest.algorithm(), "sha256");
        assert_eq!(digest.hex(), &EMPTY[7..]);
        assert_eq!(digest.to_string(), EMPTY);
    }

    #[test]
    fn parse_rejects_malformed_digests() {
        let upper = EMPTY.replace('e', "E");
        let cases = [
            (upper.as_str(), "lowercase"),
            (&EMPTY[..EMPTY.len() - 1], "64 hex digits"),
            ("sha512:abcd", "unsupported algorithm"),
            (&EMPTY[7..], "<algorithm>:<hex>"),
            (
                "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "lowercase",
            ),
        ];
        for (text, expected_reason) in cases {
            match text.parse::<Digest>() {
                Err(Error::InvalidDigest { value, reason }) => {
                    assert_eq!(value, text);
                    assert!(reason.contains(expected_reason), "{text}: {reason}");
                }
                other => panic!("{text} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn serde_uses_the_text_form() {
        let digest = Digest::sha256_of(b"");
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn hashing_writer_hashes_what_passes_through() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"ab").unwrap();
        writer.write_all(b"c").unwrap();
        let (inner, digest, bytes) = writer.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(digest, Digest::sha256_of(b"abc"));
        assert_eq!(bytes, 3);
    }

    #[test]
    fn hashing_writer_counts_only_accepted_bytes() {
        // A writer that takes one byte per call exercises the short-write path.
        struct OneByte(Vec<u8>);
        impl Write for OneByte {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(&buf[..1.min(buf.len())]);
                Ok(1.min(buf.len()))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = HashingWriter::new(OneByte(Vec::new()));
        writer.write_all(b"hello").unwrap();
        let (inner, digest, bytes) = writer.finish();
        assert_eq!(inner.0, b"hello");
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert_eq!(bytes, 5);
    }

    #[test]
    fn hashing_reader_hashes_what_was_read() {
        let mut reader = HashingReader::new(&b"hello world"[..]);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        let (_, digest, bytes) = reader.finish();
        assert_eq!(out, "hello world");
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
        assert_eq!(bytes, 11);
    }
}
