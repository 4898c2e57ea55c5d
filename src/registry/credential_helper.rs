//! docker's credential helper protocol (docker/docker-credential-helpers): the program
//! `docker-credential-NAME` on PATH, run with one action as its argument:
//!
//! - `get`: the server URL on stdin; `{"ServerURL", "Username", "Secret"}` on stdout
//!   (`Username` `<token>` marks an identity token);
//! - `store`: `{"ServerURL", "Username", "Secret"}` on stdin;
//! - `erase`: the server URL on stdin;
//! - `list`: `{SERVER_URL: USERNAME, …}` on stdout.
//!
//! A helper that holds nothing for a server exits non-zero and prints
//! `credentials not found in native keychain`: that is an answer (nothing stored), not
//! a failure, as docker reads it.
//!
//! What a helper prints may hold secrets, so it never enters an error: errors name
//! the helper and the action, and say how it failed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Error, Result};

/// What a helper prints when it holds nothing for the server asked about.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The username a helper answers for an identity token (docker's convention).
const TOKEN_USERNAME: &str = "<token>";

/// What `get` found.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum HelperCredential {
    /// A username and its password or token.
    Basic(String, String),
    /// A docker identity token (an OAuth2 refresh token).
    IdentityToken(String),
}

impl std::fmt::Debug for HelperCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic(user, _) => write!(f, "Basic({user}, ***)"),
            Self::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetAnswer {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// How one run of a helper ended.
enum Outcome {
    /// Exit 0, with what it printed.
    Answered(Vec<u8>),
    /// It said it holds nothing for the server.
    NotFound,
}

/// The program name of helper `name`.
pub(crate) fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// `get`: the credentials helper `name` holds for `server_url`, `None` when it holds
/// none. `registry` is named in errors.
pub(crate) fn get(
    registry: &str,
    name: &str,
    server_url: &str,
) -> Result<Option<HelperCredential>> {
    let Outcome::Answered(stdout) = run(registry, name, "get", server_url.as_bytes())? else {
        return Ok(None);
    };
    let answer: GetAnswer = serde_json::from_slice(&stdout).map_err(|_| {
        failure(
            registry,
            name,
            "get",
            "answered something that is not {\"Username\", \"Secret\"} JSON",
        )
    })?;
    Ok(match answer {
        GetAnswer { secret, .. } if secret.is_empty() => None,
        GetAnswer { username, secret } if username == TOKEN_USERNAME => {
            Some(HelperCredential::IdentityToken(secret))
        }
        GetAnswer { username, secret } => Some(HelperCredential::Basic(username, secret)),
    })
}

/// `store`: hands `username` and `secret` for `server_url` to helper `name`.
pub(crate) fn store(
    registry: &str,
    name: &str,
    server_url: &str,
    username: &str,
    secret: &str,
) -> Result<()> {
    let request = serde_json::json!({
        "ServerURL": server_url,
        "Username": username,
        "Secret": secret,
    });
    match run(registry, name, "store", request.to_string().as_bytes())? {
        Outcome::Answered(_) => Ok(()),
        Outcome::NotFound => Err(failure(registry, name, "store", "said it has no keychain")),
    }
}

/// `erase`: removes what helper `name` holds for `server_url`; `false` when it held
/// nothing.
pub(crate) fn erase(registry: &str, name: &str, server_url: &str) -> Result<bool> {
    Ok(matches!(
        run(registry, name, "erase", server_url.as_bytes())?,
        Outcome::Answered(_)
    ))
}

/// `list`: the server URLs helper `name` holds credentials for. `None` when the helper
/// cannot list (some, such as ecr-login, implement only `get`): the caller then asks
/// about the URLs it knows.
pub(crate) fn list(registry: &str, name: &str) -> Option<Vec<String>> {
    let Ok(Outcome::Answered(stdout)) = run(registry, name, "list", b"") else {
        return None;
    };
    let servers: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&stdout).ok()?;
    Some(servers.into_keys().collect())
}

fn failure(registry: &str, name: &str, action: &str, what: &str) -> Error {
    Error::Registry {
        registry: registry.to_string(),
        message: format!("credential helper {} {action}: {what}", program(name)),
    }
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin.
fn run(registry: &str, name: &str, action: &str, input: &[u8]) -> Result<Outcome> {
    let fail = |what: String| failure(registry, name, action, &what);
    let mut child = Command::new(program(name))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            fail(match e.kind() {
                std::io::ErrorKind::NotFound => "not found on PATH (config.json names it: install it, or remove it from `credHelpers`/`credsStore`)".to_string(),
                _ => format!("cannot run it: {e}"),
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input closes the pipe: its exit
        // status tells what happened, so a broken pipe here is not the error.
        match stdin.write_all(input) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(fail(format!("cannot write to it: {e}")));
            }
            _ => {}
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    if output.status.success() {
        return Ok(Outcome::Answered(output.stdout));
    }
    if String::from_utf8_lossy(&output.stdout).trim() == NOT_FOUND {
        return Ok(Outcome::NotFound);
    }
    Err(fail(format!("failed ({})", output.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_helper_is_named_with_the_fix() {
        let error = get("registry.example", "hoist-test-absent", "registry.example")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("docker-credential-hoist-test-absent get: not found on PATH"),
            "{error}"
        );
        assert!(error.contains("credHelpers"), "{error}");
    }
}
