//! Bearer tokens from a registry's token endpoint (distribution's token spec, as
//! Docker Hub, GHCR and `auth: token` registries speak it), for a set of scopes:
//! `GET realm?scope=…&service=…` with HTTP Basic credentials (or none, for public
//! images), or, holding a docker identity token (an OAuth2 refresh token), the
//! refresh-token grant `POST realm`. Errors name the token server, never a secret.

use reqwest::StatusCode;

use super::answer::parse_errors;
use super::pace;
use super::transport::Failure;
use crate::oci::reference::is_loopback;

/// The most of a token answer read.
const TOKEN_BODY_LIMIT: usize = 1 << 20;

/// A token for `scopes` (`repository:NAME:ACTIONS`), asked with `basic` credentials
/// when there are some.
pub(super) async fn fetch(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    basic: Option<(&str, &str)>,
) -> Result<String, Failure> {
    let url = realm_url(realm, basic.is_some())?;
    let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
    if let Some(service) = service {
        query.push(("service", service));
    }
    if let Some((user, _)) = basic {
        query.push(("account", user));
    }
    let mut request = http.get(url).query(&query);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let answer = exchange(http, request).await?;
    let refused = |status| format!("the token server {realm} answered {status}");
    token_of(answer, realm, basic.is_some(), refused).await
}

/// An access token for `scopes` traded for a docker identity token at `realm`, as
/// distribution's OAuth2 token spec describes: `grant_type=refresh_token`,
/// `refresh_token`, `service`, `scope` (space-separated) and `client_id`.
pub(super) async fn refresh_grant(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    identity_token: &str,
) -> Result<String, Failure> {
    let url = realm_url(realm, true)?;
    let mut form = reqwest::Url::parse("http://form.invalid/").expect("a valid URL");
    {
        let mut pairs = form.query_pairs_mut();
        pairs
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", identity_token)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("client_id", "hoist");
        if let Some(service) = service {
            pairs.append_pair("service", service);
        }
    }
    let request = http
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.query().unwrap_or_default().to_string());
    let answer = exchange(http, request).await?;
    let refused = |status| {
        format!(
            "the token server {realm} refused the stored identity token ({status}); log in again"
        )
    };
    token_of(answer, realm, true, refused).await
}

/// The token endpoint's URL; credentials go to it only over TLS or on this machine.
fn realm_url(realm: &str, with_credentials: bool) -> Result<reqwest::Url, Failure> {
    let local = |message: String| {
        Failure::Local(crate::Error::InvalidValue {
            field: "the registry's WWW-Authenticate realm".into(),
            message,
        })
    };
    let url =
        reqwest::Url::parse(realm).map_err(|e| local(format!("`{realm}` is not a URL: {e}")))?;
    if with_credentials
        && url.scheme() != "https"
        && !is_loopback(url.host_str().unwrap_or_default())
    {
        return Err(local(format!(
            "refusing to send credentials to the plain-HTTP token server {realm}"
        )));
    }
    Ok(url)
}

/// A request to the token endpoint under the time bounds ([`pace`]): its answer,
/// and when it was sent.
async fn exchange(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::Response, tokio::time::Instant), Failure> {
    let request = request
        .build()
        .map_err(|e| super::transport::transport_failure(&e))?;
    let started = tokio::time::Instant::now();
    Ok((pace::head(http, request, None).await?, started))
}

/// The token in a token endpoint's answer (`token`, or OAuth2's `access_token`).
async fn token_of(
    (answer, started): (reqwest::Response, tokio::time::Instant),
    realm: &str,
    authenticated: bool,
    refused: impl Fn(StatusCode) -> String,
) -> Result<String, Failure> {
    let status = answer.status();
    let body = pace::document(answer, started, TOKEN_BODY_LIMIT).await?;
    if !status.is_success() {
        return Err(Failure::Status {
            status,
            retry_after: None,
            errors: body.as_deref().map(parse_errors).unwrap_or_default(),
            detail: Some(refused(status)),
            authenticated,
        });
    }
    let unreadable = || {
        Failure::Transport(format!(
            "the token server {realm} answered something that holds no token"
        ))
    };
    let body: serde_json::Value =
        serde_json::from_slice(&body.ok_or_else(unreadable)?).map_err(|_| unreadable())?;
    body["token"]
        .as_str()
        .or_else(|| body["access_token"].as_str())
        .filter(|token| !token.is_empty())
        .map(str::to_string)
        .ok_or_else(unreadable)
}
