//! cosign's key files, read and written byte for byte as cosign does
//! (sigstore/cosign `pkg/cosign/keys.go`, secure-systems-lab/go-securesystemslib
//! `encrypted/encrypted.go`):
//!
//! * `cosign.key`: PEM type `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
//!   `ENCRYPTED COSIGN PRIVATE KEY`, still read) around a JSON body
//!   `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
//!   "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}`, whose plaintext
//!   is the PKCS#8 DER of an ECDSA P-256 key. Base64 is standard with padding (Go's
//!   encoding of `[]byte`); the field order is Go's struct order.
//! * `cosign.pub`: the PKIX public key, PEM type `PUBLIC KEY`.
//!
//! Written keys use scrypt N=2^15 (go-securesystemslib's "legacy" strength): every
//! cosign release reads it, where N=2^16 (cosign ≥ 2.3's default) is refused by older
//! ones. Read keys may use any of the three strengths go-securesystemslib accepts;
//! other parameters are refused before any work, as it does (a crafted N could
//! otherwise make a read take hours).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
    LineEnding,
};
use serde::{Deserialize, Serialize};

use super::SignError;
use super::password::{Purpose, password};

/// The PEM type cosign writes.
pub const SIGSTORE_PEM_TYPE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM type older cosign releases wrote; still read.
pub const COSIGN_PEM_TYPE: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The public key's PEM type (PKIX).
pub const PUBLIC_PEM_TYPE: &str = "PUBLIC KEY";

const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// scrypt strengths go-securesystemslib reads (log2 N; r = 8, p = 1 for all).
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];
/// The strength written: N = 2^15, r = 8, p = 1.
const WRITTEN_LOG_N: u8 = 15;

/// The encrypted body of a key file, fields in go-securesystemslib's order.
#[derive(Serialize, Deserialize)]
struct EncryptedBody {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go's JSON encoding of `[]byte`: standard base64 with padding.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A signing key read from (or generated for) a cosign key file.
pub struct PrivateKey {
    signing: SigningKey,
}

/// A public key that checks signatures, with the file it came from for messages.
#[derive(Clone)]
pub struct PublicKey {
    verifying: VerifyingKey,
    /// Where it was read (`cosign.pub`), or how it was made.
    pub origin: String,
}

/// The two files `hoist key generate` writes.
pub struct KeyFiles {
    /// `cosign.key`'s bytes.
    pub private_pem: String,
    /// `cosign.pub`'s bytes.
    pub public_pem: String,
}

fn random_bytes(buffer: &mut [u8]) -> Result<(), SignError> {
    getrandom::fill(buffer).map_err(|e| SignError::Random(e.to_string()))
}

fn derive_key(password: &[u8], salt: &[u8], log_n: u8) -> Result<[u8; 32], SignError> {
    let params = scrypt::Params::new(log_n, 8, 1)
        .map_err(|e| SignError::Random(format!("scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| SignError::Random(format!("scrypt: {e}")))?;
    Ok(key)
}

impl PrivateKey {
    /// A new random P-256 key (from the operating system's generator).
    pub fn generate() -> Result<PrivateKey, SignError> {
        loop {
            let mut bytes = [0u8; 32];
            random_bytes(&mut bytes)?;
            // A scalar at or over the group order (chance ~2^-32) is drawn again.
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return Ok(PrivateKey { signing });
            }
        }
    }

    /// The key of a cosign key file, decrypted with `password`; `path` names it in
    /// errors.
    pub fn from_cosign_pem(
        text: &str,
        password: &[u8],
        path: &Path,
    ) -> Result<PrivateKey, SignError> {
        let bad = |reason: String| SignError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let (label, body) = pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| bad(format!("not a PEM file: {e}")))?;
        if label != SIGSTORE_PEM_TYPE && label != COSIGN_PEM_TYPE {
            return Err(bad(format!(
                "PEM type `{label}`, not `{SIGSTORE_PEM_TYPE}` (a cosign key file, as `hoist key generate` or `cosign generate-key-pair` write)"
            )));
        }
        let body: EncryptedBody = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("malformed encrypted key: {e}")))?;
        if body.kdf.name != "scrypt" {
            return Err(bad(format!("unknown key derivation `{}`", body.kdf.name)));
        }
        if body.cipher.name != "nacl/secretbox" {
            return Err(bad(format!("unknown cipher `{}`", body.cipher.name)));
        }
        let KdfParams { n, r, p } = body.kdf.params;
        let log_n = ACCEPTED_LOG_N
            .into_iter()
            .find(|log_n| 1u64 << log_n == n && r == 8 && p == 1)
            .ok_or_else(|| bad(format!("unsupported scrypt parameters N={n} r={r} p={p}")))?;
        if body.cipher.nonce.len() != NONCE_LEN {
            return Err(bad(format!(
                "the nonce is {} bytes, not {NONCE_LEN}",
                body.cipher.nonce.len()
            )));
        }
        let key = derive_key(password, &body.kdf.salt, log_n)?;
        let plaintext = XSalsa20Poly1305::new(&key.into())
            .decrypt(
                crypto_secretbox::Nonce::from_slice(&body.cipher.nonce),
                body.ciphertext.as_slice(),
            )
            .map_err(|_| bad("wrong password (the key does not decrypt)".to_string()))?;
        let signing = SigningKey::from_pkcs8_der(&plaintext).map_err(|e| {
            bad(format!(
                "the decrypted key is not a PKCS#8 ECDSA P-256 key: {e}"
            ))
        })?;
        Ok(PrivateKey { signing })
    }

    /// `cosign.key` and `cosign.pub` for this key, the private one encrypted with
    /// `password` under a fresh salt and nonce.
    pub fn to_cosign_files(&self, password: &[u8]) -> Result<KeyFiles, SignError> {
        let encoding =
            |e: &dyn std::fmt::Display| SignError::Random(format!("encoding the key: {e}"));
        let der = self.signing.to_pkcs8_der().map_err(|e| encoding(&e))?;
        let mut salt = vec![0u8; SALT_LEN];
        let mut nonce = vec![0u8; NONCE_LEN];
        random_bytes(&mut salt)?;
        random_bytes(&mut nonce)?;
        let key = derive_key(password, &salt, WRITTEN_LOG_N)?;
        let ciphertext = XSalsa20Poly1305::new(&key.into())
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der.as_bytes())
            .map_err(|e| encoding(&e))?;
        let body = EncryptedBody {
            kdf: Kdf {
                name: "scrypt".to_string(),
                params: KdfParams {
                    n: 1 << WRITTEN_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt,
            },
            cipher: Cipher {
                name: "nacl/secretbox".to_string(),
                nonce,
            },
            ciphertext,
        };
        let json = serde_json::to_vec(&body).map_err(|e| encoding(&e))?;
        let private_pem = pem::encode_string(SIGSTORE_PEM_TYPE, LineEnding::LF, &json)
            .map_err(|e| encoding(&e))?;
        let public_pem = self
            .signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| encoding(&e))?;
        Ok(KeyFiles {
            private_pem,
            public_pem,
        })
    }

    /// The ASN.1 DER ECDSA P-256 / SHA-256 signature of `message` (RFC 6979: the same
    /// key and message give the same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.signing.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// Its public half.
    pub fn public_key(&self, origin: &str) -> PublicKey {
        PublicKey {
            verifying: *self.signing.verifying_key(),
            origin: origin.to_string(),
        }
    }
}

impl PublicKey {
    /// A PKIX PEM public key (`cosign.pub`); `path` names it in errors.
    pub fn from_pem(text: &str, path: &Path) -> Result<PublicKey, SignError> {
        let verifying =
            VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| SignError::KeyFile {
                path: path.to_path_buf(),
                reason: format!("not a PKIX PEM ECDSA P-256 public key: {e}"),
            })?;
        Ok(PublicKey {
            verifying,
            origin: path.display().to_string(),
        })
    }

    /// Reads a public key file.
    pub fn read(path: &Path) -> Result<PublicKey, SignError> {
        let text = read_text(path)?;
        PublicKey::from_pem(&text, path)
    }

    /// Whether `der` is a valid signature of `message` by this key.
    pub fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        DerSignature::from_bytes(der)
            .ok()
            .and_then(|sig| Signature::try_from(sig).ok())
            .is_some_and(|sig| self.verifying.verify(message, &sig).is_ok())
    }
}

/// A key file's text, or an error naming it.
pub fn read_text(path: &Path) -> Result<String, SignError> {
    std::fs::read_to_string(path).map_err(|source| SignError::KeyIo {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and decrypts a cosign private key file.
pub fn read_private_key(path: &Path, password: &[u8]) -> Result<PrivateKey, SignError> {
    let text = read_text(path)?;
    PrivateKey::from_cosign_pem(&text, password, path)
}

/// Reads and decrypts the private key file at `path` with its password
/// ([`super::password`]: the environment, else a prompt): what `--sign-key FILE` and
/// `hoist sign --key FILE` do before anything is built or pushed.
pub fn unlock(path: &Path) -> Result<PrivateKey, SignError> {
    let secret = password(Purpose::Unlock, &path.display().to_string())?;
    read_private_key(path, &secret)
}

/// A new key pair written as `PREFIX.key` (encrypted with a password from
/// [`super::password`]) and `PREFIX.pub`, as `cosign generate-key-pair` writes them;
/// answers both paths. Existing files are kept unless `force`.
pub fn generate_key_files(prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf), SignError> {
    let private_name = with_suffix(prefix, "key");
    let secret = password(Purpose::NewKey, &private_name.display().to_string())?;
    let files = PrivateKey::generate()?.to_cosign_files(&secret)?;
    write_key_files(prefix, &files, force)
}

/// Writes `PREFIX.key` (mode 0600) and `PREFIX.pub`, each through a temp file and a
/// rename; refuses (before writing either) when one exists, unless `force`.
pub fn write_key_files(
    prefix: &Path,
    files: &KeyFiles,
    force: bool,
) -> Result<(PathBuf, PathBuf), SignError> {
    let private_path = with_suffix(prefix, "key");
    let public_path = with_suffix(prefix, "pub");
    if !force {
        for path in [&private_path, &public_path] {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(SignError::KeyFile {
                    path: path.clone(),
                    reason: "already exists: not overwritten (move it away, or pass --force)"
                        .to_string(),
                });
            }
        }
    }
    write_private(&private_path, files.private_pem.as_bytes())?;
    crate::fsutil::write_atomically(&public_path, files.public_pem.as_bytes())
        .map_err(SignError::KeyWrite)?;
    Ok((private_path, public_path))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The private key through a temp file made 0600 before any byte is written.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SignError> {
    use std::io::Write as _;
    let io = |source| SignError::KeyIo {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = crate::fsutil::temp_file_in(crate::fsutil::parent_dir(path))
        .map_err(SignError::KeyWrite)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    temp.write_all(bytes).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Standard base64 (with padding), as cosign writes signatures.
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_decrypts_with_its_password_only() {
        let key = PrivateKey::generate().unwrap();
        let files = key.to_cosign_files(b"hunter2").unwrap();
        assert!(
            files
                .private_pem
                .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        );
        assert!(files.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let path = Path::new("cosign.key");
        let back = PrivateKey::from_cosign_pem(&files.private_pem, b"hunter2", path).unwrap();
        let public = PublicKey::from_pem(&files.public_pem, Path::new("cosign.pub")).unwrap();
        let signature = back.sign(b"payload");
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        let wrong = PrivateKey::from_cosign_pem(&files.private_pem, b"hunter3", path)
            .err()
            .unwrap()
            .to_string();
        assert!(
            wrong.contains("cosign.key") && wrong.contains("wrong password"),
            "{wrong}"
        );
    }

    #[test]
    fn the_body_has_cosigns_fields_in_gos_order() {
        let files = PrivateKey::generate()
            .unwrap()
            .to_cosign_files(b"")
            .unwrap();
        let (_, body) = pem::decode_vec(files.private_pem.as_bytes()).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with(
                r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"},"cipher":{"name":"nacl/secretbox","nonce":""#),
            "{text}"
        );
    }

    #[test]
    fn other_scrypt_parameters_are_refused_before_any_work() {
        let files = PrivateKey::generate()
            .unwrap()
            .to_cosign_files(b"")
            .unwrap();
        let (_, body) = pem::decode_vec(files.private_pem.as_bytes()).unwrap();
        let text = String::from_utf8(body)
            .unwrap()
            .replace(r#""N":32768"#, r#""N":1073741824"#);
        let pem = pem::encode_string(COSIGN_PEM_TYPE, LineEnding::LF, text.as_bytes()).unwrap();
        let error = PrivateKey::from_cosign_pem(&pem, b"", Path::new("k"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("unsupported scrypt parameters"), "{error}");
    }
}
