//! A registry's error answer, typed: the HTTP status, and each entry of the
//! distribution error body (`{"errors":[{"code":…,"message":…}]}`) parsed with
//! oci-spec's `ErrorInfo`/`ErrorCode`. Its text names the reference first and says
//! what is wrong in words (`127.0.0.1:5000/acme/app:9.9.9: no such tag`), with the
//! fix where there is one (a 401: `run hoist login HOST`).

use oci_spec::distribution::{ErrorCode, ErrorInfo};

/// What a failed request was looking up, which decides how a 404 reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A manifest or index, by tag or digest (`GET`/`HEAD …/manifests/REF`).
    Manifest,
    /// A blob (`GET`/`HEAD …/blobs/DIGEST`).
    Blob,
    /// The repository's tag list.
    Tags,
}

/// One entry of a distribution error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryError {
    /// The code, when it is one the distribution spec defines.
    pub code: Option<ErrorCode>,
    /// The code as sent (`MANIFEST_UNKNOWN`, or a registry's own such as `UNKNOWN`).
    pub code_text: String,
    /// The registry's message, if any.
    pub message: Option<String>,
}

/// A registry (or its token server) answered a request with an error status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAnswer {
    /// What the request was about: `REGISTRY/REPO:TAG`, `REGISTRY/REPO@DIGEST` or
    /// `REGISTRY/REPO`.
    pub reference: String,
    /// The registry host (for `hoist login HOST`).
    pub registry: String,
    /// What was asked, in words (`putting manifest 1`, `HEAD of blob sha256:…`).
    pub request: String,
    /// What a read was looking up; `None` for writes.
    pub lookup: Option<Lookup>,
    /// The HTTP status.
    pub status: u16,
    /// The error body's entries (none when it had no distribution error body).
    pub errors: Vec<RegistryError>,
    /// Words beyond the body: who answered (a token server) and the start of a body
    /// that is not a distribution error.
    pub detail: Option<String>,
    /// Whether credentials were presented (a 401 then means they were refused).
    pub authenticated: bool,
}

/// What an answer means, in the words its text uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// The tag named is not in the repository.
    NoSuchTag,
    /// The manifest (by digest) is not in the repository.
    NoSuchManifest,
    /// The repository does not exist.
    NoSuchRepository,
    /// The blob is not in the repository.
    NoSuchBlob,
    /// Credentials are wanted, or were refused (401).
    Unauthorized,
    /// The credentials do not allow this (403).
    Denied,
    /// Still rate-limited after every retry (429).
    RateLimited,
    /// Anything else: the status and the registry's words.
    Other,
}

impl RegistryAnswer {
    /// Whether the registry has the code among its errors.
    pub fn has_code(&self, code: &ErrorCode) -> bool {
        self.errors.iter().any(|e| e.code.as_ref() == Some(code))
    }

    /// What the answer means.
    pub fn meaning(&self) -> Meaning {
        let by_tag = !self.reference.contains('@');
        if self.status == 401 || self.has_code(&ErrorCode::Unauthorized) {
            return Meaning::Unauthorized;
        }
        if self.status == 403 || self.has_code(&ErrorCode::Denied) {
            return Meaning::Denied;
        }
        if self.status == 429 || self.has_code(&ErrorCode::TooManyRequests) {
            return Meaning::RateLimited;
        }
        let Some(lookup) = self.lookup else {
            return Meaning::Other;
        };
        let not_found = self.status == 404;
        if self.has_code(&ErrorCode::NameUnknown) {
            Meaning::NoSuchRepository
        } else if lookup == Lookup::Manifest
            && (not_found || self.has_code(&ErrorCode::ManifestUnknown))
        {
            if by_tag {
                Meaning::NoSuchTag
            } else {
                Meaning::NoSuchManifest
            }
        } else if lookup == Lookup::Blob && (not_found || self.has_code(&ErrorCode::BlobUnknown)) {
            Meaning::NoSuchBlob
        } else if lookup == Lookup::Tags && not_found {
            Meaning::NoSuchRepository
        } else {
            Meaning::Other
        }
    }

    /// `401 Unauthorized: UNAUTHORIZED authentication required; …` — the status and
    /// what the registry said.
    fn said(&self) -> String {
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut text = format!("{} {reason}", self.status).trim_end().to_string();
        let entries: Vec<String> = self
            .errors
            .iter()
            .map(|e| match &e.message {
                Some(message) if !message.is_empty() => format!("{} {message}", e.code_text),
                _ => e.code_text.clone(),
            })
            .collect();
        if !entries.is_empty() {
            text.push_str(": ");
            text.push_str(&entries.join("; "));
        }
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(detail);
        }
        text
    }
}

impl std::fmt::Display for RegistryAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reference = &self.reference;
        let request = &self.request;
        let said = self.said();
        let registry = &self.registry;
        match self.meaning() {
            Meaning::NoSuchTag => write!(f, "{reference}: no such tag"),
            Meaning::NoSuchManifest => write!(f, "{reference}: no such manifest"),
            Meaning::NoSuchRepository => write!(f, "{reference}: no such repository"),
            Meaning::NoSuchBlob => write!(f, "{reference}: no such blob ({request})"),
            Meaning::Unauthorized if self.authenticated => write!(
                f,
                "{reference}: {request}: the registry refused the credentials ({said}); run `hoist login {registry}`"
            ),
            Meaning::Unauthorized => write!(
                f,
                "{reference}: {request}: the registry wants credentials ({said}); run `hoist login {registry}`"
            ),
            Meaning::Denied => write!(
                f,
                "{reference}: {request}: access denied ({said}); run `hoist login {registry}` as a user allowed to do this"
            ),
            Meaning::RateLimited => write!(
                f,
                "{reference}: {request}: still rate-limited after every retry ({said}); try again later"
            ),
            Meaning::Other => write!(f, "{reference}: {request}: the registry answered {said}"),
        }
    }
}

impl std::error::Error for RegistryAnswer {}

/// The entries of a distribution error body; empty when the body is not one. Each
/// entry is read as oci-spec's `ErrorInfo`; one whose code the spec does not define
/// (`UNKNOWN`, `UNAVAILABLE`) keeps its code as text.
pub fn parse_errors(body: &[u8]) -> Vec<RegistryError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<serde_json::Value>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Vec::new();
    };
    envelope
        .errors
        .into_iter()
        .filter_map(|entry| {
            let code_text = entry.get("code")?.as_str()?.to_string();
            let typed = serde_json::from_value::<ErrorInfo>(entry.clone()).ok();
            let message = match &typed {
                Some(info) => info.message().clone(),
                None => entry
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string),
            };
            Some(RegistryError {
                code: typed.map(|info| info.code().clone()),
                code_text,
                message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(reference: &str, lookup: Option<Lookup>, status: u16, body: &str) -> RegistryAnswer {
        RegistryAnswer {
            reference: reference.into(),
            registry: "127.0.0.1:5000".into(),
            request: "fetching the manifest".into(),
            lookup,
            status,
            errors: parse_errors(body.as_bytes()),
            detail: None,
            authenticated: false,
        }
    }

    #[test]
    fn error_bodies_parse_with_oci_specs_types() {
        let errors = parse_errors(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9.9.9"}},{"code":"UNKNOWN","message":"boom"}]}"#,
        );
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].code, Some(ErrorCode::ManifestUnknown));
        assert_eq!(errors[0].message.as_deref(), Some("manifest unknown"));
        assert_eq!(errors[1].code, None);
        assert_eq!(errors[1].code_text, "UNKNOWN");
        assert_eq!(errors[1].message.as_deref(), Some("boom"));
        assert_eq!(
            parse_errors(br#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#)[0].code,
            Some(ErrorCode::TooManyRequests)
        );
        assert!(parse_errors(b"<html>gateway</html>").is_empty());
        assert!(parse_errors(b"").is_empty());
    }

    #[test]
    fn answers_read_as_what_they_mean() {
        let missing = answer(
            "127.0.0.1:5000/acme/app:9.9.9",
            Some(Lookup::Manifest),
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        );
        assert_eq!(
            missing.to_string(),
            "127.0.0.1:5000/acme/app:9.9.9: no such tag"
        );
        let digest = format!("127.0.0.1:5000/acme/app@sha256:{}", "a".repeat(64));
        assert_eq!(
            answer(&digest, Some(Lookup::Manifest), 404, "").to_string(),
            format!("{digest}: no such manifest")
        );
        let no_repo = answer(
            "127.0.0.1:5000/acme/none:1",
            Some(Lookup::Manifest),
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#,
        );
        assert_eq!(no_repo.meaning(), Meaning::NoSuchRepository);
        let unauthorized = answer(
            "127.0.0.1:5000/acme/app",
            None,
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        let text = unauthorized.to_string();
        assert!(text.contains("wants credentials"), "{text}");
        assert!(text.ends_with("run `hoist login 127.0.0.1:5000`"), "{text}");
        let refused = RegistryAnswer {
            authenticated: true,
            ..unauthorized
        };
        assert!(refused.to_string().contains("refused the credentials"));
        // A write answered 404 is not a missing tag: the status and code are shown.
        let put = answer(
            "127.0.0.1:5000/acme/app:1",
            None,
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"injected"}]}"#,
        );
        assert_eq!(
            put.to_string(),
            "127.0.0.1:5000/acme/app:1: fetching the manifest: the registry answered 404 Not Found: NAME_UNKNOWN injected"
        );
        assert_eq!(
            answer("r/a:1", None, 429, "").meaning(),
            Meaning::RateLimited
        );
        assert_eq!(answer("r/a:1", None, 403, "").meaning(), Meaning::Denied);
    }
}
