//! Registry credentials, looked up where users already keep them, first match wins:
//!
//! 1. `--username` with `--password-stdin`;
//! 2. `HOIST_REGISTRY_USERNAME` / `HOIST_REGISTRY_PASSWORD`;
//! 3. podman's `auth.json` (`REGISTRY_AUTH_FILE`, else
//!    `$XDG_RUNTIME_DIR/containers/auth.json`);
//! 4. docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`): `auths`,
//!    `credHelpers`, `credsStore` (credential helpers are run as docker runs them);
//! 5. anonymous.
//!
//! Secrets never enter error messages: errors name the registry and the file or
//! helper, not what they hold.

use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::error::{Error, Result};

/// Credentials to present to a registry as they are.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// None: public images, open registries.
    Anonymous,
    /// HTTP Basic user and password (sent to the registry, or to its token server).
    Basic(String, String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic(user, _) => write!(f, "Basic({user}, ***)"),
        }
    }
}

/// Username and password given on the command line.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExplicitCredentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for ExplicitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExplicitCredentials({}, ***)", self.username)
    }
}

/// Credentials as found.
#[derive(Clone, PartialEq, Eq)]
pub enum Found {
    /// Usable as they are: anonymous, Basic.
    Auth(RegistryAuth),
    /// A docker identity token (an OAuth2 refresh token, as `az acr login` and docker's
    /// browser login store): exchanged at the registry's token endpoint before use.
    IdentityToken(String),
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Auth(auth) => write!(f, "{auth:?}"),
            Found::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// The credentials for `registry`, and where they came from (for messages).
pub fn resolve(
    registry: &str,
    explicit: Option<&ExplicitCredentials>,
) -> Result<(Found, &'static str)> {
    if let Some(given) = explicit {
        return Ok((
            Found::Auth(RegistryAuth::Basic(
                given.username.clone(),
                given.password.clone(),
            )),
            "--username",
        ));
    }
    if let (Ok(user), Ok(password)) = (
        std::env::var("HOIST_REGISTRY_USERNAME"),
        std::env::var("HOIST_REGISTRY_PASSWORD"),
    ) && !user.is_empty()
    {
        return Ok((
            Found::Auth(RegistryAuth::Basic(user, password)),
            "HOIST_REGISTRY_USERNAME",
        ));
    }
    for key in config_keys(registry) {
        if let Some(auth) = from_file(
            registry,
            "podman auth.json",
            docker_credential::get_podman_credential(&key),
        )? {
            return Ok((auth, "podman auth.json"));
        }
        if let Some(auth) = from_file(
            registry,
            "docker config.json",
            docker_credential::get_credential(&key),
        )? {
            return Ok((auth, "docker config.json"));
        }
    }
    Ok((Found::Auth(RegistryAuth::Anonymous), "anonymous"))
}

/// The keys a registry's credentials may be stored under: Docker Hub's are kept
/// under its legacy index URL.
pub(crate) fn config_keys(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "index.docker.io".into(),
        ],
        other => vec![other.to_string(), format!("https://{other}")],
    }
}

fn from_file(
    registry: &str,
    source: &str,
    found: std::result::Result<DockerCredential, CredentialRetrievalError>,
) -> Result<Option<Found>> {
    let fail = |what: String| Error::Registry {
        registry: registry.to_string(),
        message: format!("credentials from {source}: {what}"),
    };
    match found {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(Some(Found::Auth(RegistryAuth::Basic(user, password))))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(Some(Found::IdentityToken(token))),
        // No file (docker_credential reports a missing file as a read error), or
        // nothing for this registry in it: look further.
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError,
        ) => Ok(None),
        Err(other) => Err(fail(describe(&other))),
    }
}

/// A retrieval error without anything a credential helper may have printed.
fn describe(error: &CredentialRetrievalError) -> String {
    match error {
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            format!("credential helper docker-credential-{helper} failed")
        }
        CredentialRetrievalError::HelperCommunicationError => {
            "could not run the credential helper".into()
        }
        CredentialRetrievalError::MalformedHelperResponse => {
            "the credential helper answered something unreadable".into()
        }
        CredentialRetrievalError::CredentialDecodingError => {
            "the stored `auth` value is not base64 of user:password".into()
        }
        CredentialRetrievalError::CredentialMismatchError => {
            "`auth` and `username`/`password` disagree".into()
        }
        _ => "cannot read the stored credentials".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_credentials_are_found_under_the_legacy_key() {
        assert_eq!(config_keys("docker.io")[0], "https://index.docker.io/v1/");
        assert_eq!(config_keys("ghcr.io"), ["ghcr.io", "https://ghcr.io"]);
    }

    #[test]
    fn explicit_credentials_win_and_never_print_the_password() {
        let given = ExplicitCredentials {
            username: "ci".into(),
            password: "s3cret".into(),
        };
        let (auth, source) = resolve("registry.example", Some(&given)).unwrap();
        assert_eq!(source, "--username");
        assert!(
            matches!(auth, Found::Auth(RegistryAuth::Basic(u, p)) if u == "ci" && p == "s3cret")
        );
        assert!(!format!("{given:?}").contains("s3cret"));
    }
}
