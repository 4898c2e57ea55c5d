//! `hoist login`: check credentials against a registry before storing them, the way
//! `docker login` does: `GET /v2/` anonymously to learn how the registry authenticates,
//! then either `GET /v2/` with HTTP Basic, or a request to the Bearer token endpoint
//! (realm and service from `WWW-Authenticate`, no scope) with HTTP Basic. A 200 means
//! the registry took the credentials; a 401/403 that it refused them.
//!
//! This speaks HTTP itself (reqwest) because checking credentials asks for no
//! repository scope, unlike every request of [`super::transport`].

use reqwest::StatusCode;

use super::auth::ExplicitCredentials;
use super::client::{RegistryOptions, http_client, speaks_plain_http, version_url};
use crate::error::{Error, Result};
use crate::oci::reference::is_loopback;

/// What the registry said of the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The registry (or its token server) accepted them.
    Accepted,
    /// The registry lets anyone in: the credentials could not be checked.
    NotRequired,
}

/// The host that serves the registry API for a registry name: Docker Hub's name is
/// not its API host.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Checks `credentials` against `registry`; an error names the registry and, when it
/// refused them, says so (never what they were).
pub async fn verify(
    registry: &str,
    credentials: &ExplicitCredentials,
    options: &RegistryOptions,
) -> Result<Verdict> {
    let host = api_host(registry);
    let fail = |message: String| Error::Registry {
        registry: registry.to_string(),
        message,
    };
    let plain = speaks_plain_http(host, options).await;
    if plain && !is_loopback(host) {
        return Err(fail(
            "refusing to send credentials over plain HTTP to a host that is not this machine; use TLS (--ca-file for a private CA) or drop --insecure-registry".into(),
        ));
    }
    let http = http_client(registry, options, plain)?;
    let version_url = version_url(host, plain);
    let send = |request: reqwest::RequestBuilder, url: &str| {
        let url = url.to_string();
        async move {
            // Login's few small requests under the one deadline of `pace`.
            request
                .timeout(super::pace::document_deadline())
                .send()
                .await
                .map_err(|e| Error::Registry {
                    registry: registry.to_string(),
                    message: format!("GET {url}: {}", super::describe(&e)),
                })
        }
    };

    let probe = send(http.get(&version_url), &version_url).await?;
    if probe.status().is_success() {
        return Ok(Verdict::NotRequired);
    }
    if probe.status() != StatusCode::UNAUTHORIZED {
        return Err(fail(format!(
            "GET {version_url} answered {}: not a registry API?",
            probe.status()
        )));
    }
    let challenge = probe
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(Challenge::parse)
        .ok_or_else(|| {
            fail(format!(
                "GET {version_url} answered 401 without a WWW-Authenticate challenge"
            ))
        })?;
    let (url, request) = match &challenge {
        Challenge::Basic => (version_url.clone(), http.get(&version_url)),
        Challenge::Bearer { realm, service } => {
            let realm_url = reqwest::Url::parse(realm)
                .map_err(|e| fail(format!("the token realm `{realm}` is not a URL: {e}")))?;
            let realm_host = realm_url.host_str().unwrap_or_default();
            if realm_url.scheme() != "https" && !is_loopback(realm_host) {
                return Err(fail(format!(
                    "refusing to send credentials to the plain-HTTP token server {realm}"
                )));
            }
            let mut query = vec![("account", credentials.username.as_str())];
            if let Some(service) = service {
                query.push(("service", service.as_str()));
            }
            (realm.clone(), http.get(realm_url).query(&query))
        }
        Challenge::Other(scheme) => {
            return Err(fail(format!(
                "the registry asks for `{scheme}` authentication, which hoist does not speak"
            )));
        }
    };
    let answer = send(
        request.basic_auth(&credentials.username, Some(&credentials.password)),
        &url,
    )
    .await?;
    match answer.status() {
        status if status.is_success() => Ok(Verdict::Accepted),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(fail(format!(
            "{} refused the credentials for user `{}` ({})",
            url,
            credentials.username,
            answer.status()
        ))),
        status => Err(fail(format!("GET {url} answered {status}"))),
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic.
    Basic,
    /// The distribution token flow.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` to ask the token for.
        service: Option<String>,
    },
    /// A scheme hoist does not speak.
    Other(String),
}

impl Challenge {
    /// Parses `Scheme key="value", key=value…` (RFC 7235; one challenge, as registries
    /// send).
    pub(crate) fn parse(header: &str) -> Self {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let parameters = parameters(rest);
        let get = |key: &str| {
            parameters
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Self::Basic
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = get("realm")
        {
            Self::Bearer {
                realm,
                service: get("service"),
            }
        } else {
            Self::Other(scheme.to_string())
        }
    }
}

/// `key="quoted, value", key=token` pairs; backslash escapes inside quotes.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_give_realm_and_service() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#
            ),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            }
        );
        assert_eq!(
            Challenge::parse(
                r#"bearer service="a, \"b\"", realm=https://ghcr.io/token, scope="repository:x:pull""#
            ),
            Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some(r#"a, "b""#.into()),
            }
        );
    }

    #[test]
    fn basic_and_unknown_schemes_are_told_apart() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry""#),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse("Negotiate"),
            Challenge::Other("Negotiate".into())
        );
        // A Bearer challenge without a realm cannot be followed.
        assert_eq!(
            Challenge::parse(r#"Bearer service="x""#),
            Challenge::Other("Bearer".into())
        );
    }

    #[test]
    fn docker_hub_is_probed_at_its_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
    }
}
