//! Registry credentials, looked up where users already keep them, first match wins:
//!
//! 1. `--username` with `--password-stdin`;
//! 2. `HOIST_REGISTRY_USERNAME` with `HOIST_REGISTRY_PASSWORD`;
//! 3. podman's auth.json, the files podman reads, in its order: `$REGISTRY_AUTH_FILE`
//!    alone when it is set, else `$XDG_RUNTIME_DIR/containers/auth.json`, then
//!    `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`); in
//!    each, the helper its `credHelpers` names for the registry, then its `auths`;
//! 4. docker's config.json (`$DOCKER_CONFIG`, else `~/.docker`): the helper
//!    `credHelpers` names for the registry, then `auths`, then the `credsStore` helper;
//! 5. anonymous.
//!
//! **Key spellings.** A registry's key has been written in many ways over the years:
//! `HOST`, `https://HOST`, `http://HOST/`, `https://HOST/v2/`, `HOST/`, and docker's
//! `https://index.docker.io/v1/` for Docker Hub. In config.json a key names the host
//! docker's `ConvertToHostname` gives: the scheme and everything from the first `/`
//! dropped. In auth.json podman reads `HOST/PATH` without a scheme as credentials for
//! the repositories under PATH only (hoist does not use those); with a scheme, the path
//! is dropped. Docker Hub's names (`docker.io`, `index.docker.io`,
//! `registry-1.docker.io`) are one registry. `places` lists every place of one file
//! the lookup consults, in order, and `hoist logout` removes from exactly those
//! (`credential_store::erase`), so nothing the lookup would find survives a logout.
//!
//! Secrets never enter error messages: errors name the registry and the file, key or
//! helper, not what they hold.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::credential_helper::{self, HelperCredential};
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

/// Username and password given on the command line or in the environment.
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

/// Where credentials came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--username` with `--password-stdin`.
    Flags,
    /// `HOIST_REGISTRY_USERNAME` / `HOIST_REGISTRY_PASSWORD`.
    Environment,
    /// An `auths` entry of this auth.json or config.json, under this key.
    File {
        /// The file.
        path: PathBuf,
        /// The key in `auths`.
        key: String,
    },
    /// The credential helper `docker-credential-NAME`, named by this file.
    Helper {
        /// The helper's NAME.
        name: String,
        /// The config.json or auth.json that names it.
        path: PathBuf,
    },
    /// Nothing found.
    Anonymous,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flags => f.write_str("--username"),
            Self::Environment => f.write_str("HOIST_REGISTRY_USERNAME"),
            Self::File { path, key } => write!(f, "`{key}` in {}", path.display()),
            Self::Helper { name, path } => write!(
                f,
                "credential helper {} (named in {})",
                credential_helper::program(name),
                path.display()
            ),
            Self::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Which tool's rules a credential file follows: their key spellings differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// docker's config.json.
    Docker,
    /// podman's (containers/image's) auth.json.
    Podman,
}

/// One place of a credential file that the lookup consults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The entry `auths[KEY]`.
    Entry(String),
    /// The credential helper NAME (a `credHelpers` value or the `credsStore`), asked
    /// about `server_url`.
    Helper {
        /// The helper's NAME.
        name: String,
        /// What the helper is asked about: the registry's canonical key.
        server_url: String,
    },
}

/// The credentials for `registry`, and where they came from.
pub fn resolve(registry: &str, explicit: Option<&ExplicitCredentials>) -> Result<(Found, Source)> {
    if let Some((given, source)) = given_credentials(explicit.cloned())? {
        let auth = RegistryAuth::Basic(given.username, given.password);
        return Ok((Found::Auth(auth), source));
    }
    for (path, flavour) in credential_files() {
        let Some(config) = read_json_object(&path)? else {
            continue;
        };
        for place in places(&config, flavour, registry, &path)? {
            if let Some(found) = look_at(&config, &place, &path, registry)? {
                let source = match place {
                    Place::Entry(key) => Source::File { path, key },
                    Place::Helper { name, .. } => Source::Helper { name, path },
                };
                return Ok((found, source));
            }
        }
    }
    Ok((Found::Auth(RegistryAuth::Anonymous), Source::Anonymous))
}

/// Credentials given for this run: `explicit` (the flags), else
/// `HOIST_REGISTRY_USERNAME` with `HOIST_REGISTRY_PASSWORD`. One of the two variables
/// without the other is an error naming the missing one.
pub fn given_credentials(
    explicit: Option<ExplicitCredentials>,
) -> Result<Option<(ExplicitCredentials, Source)>> {
    if let Some(given) = explicit {
        return Ok(Some((given, Source::Flags)));
    }
    let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let missing = |name: &str, other: &str| Error::InvalidValue {
        field: name.to_string(),
        message: format!("{other} is set but {name} is not (set both, or neither)"),
    };
    match (
        read("HOIST_REGISTRY_USERNAME"),
        read("HOIST_REGISTRY_PASSWORD"),
    ) {
        (Some(username), Some(password)) => Ok(Some((
            ExplicitCredentials { username, password },
            Source::Environment,
        ))),
        (Some(_), None) => Err(missing(
            "HOIST_REGISTRY_PASSWORD",
            "HOIST_REGISTRY_USERNAME",
        )),
        (None, Some(_)) => Err(missing(
            "HOIST_REGISTRY_USERNAME",
            "HOIST_REGISTRY_PASSWORD",
        )),
        (None, None) => Ok(None),
    }
}

/// Every credential file the lookup reads, in order: podman's, then docker's.
pub(crate) fn credential_files() -> Vec<(PathBuf, Flavour)> {
    let mut files: Vec<(PathBuf, Flavour)> = podman_auth_files()
        .into_iter()
        .map(|path| (path, Flavour::Podman))
        .collect();
    files.extend(docker_config_path().map(|path| (path, Flavour::Docker)));
    files
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The auth.json files podman reads, in its order (containers/image's
/// `getAuthFilePaths`): `$REGISTRY_AUTH_FILE` alone, else the runtime one and then the
/// one under `$XDG_CONFIG_HOME`.
pub(crate) fn podman_auth_files() -> Vec<PathBuf> {
    if let Some(file) = env_path("REGISTRY_AUTH_FILE") {
        return vec![file];
    }
    let runtime = env_path("XDG_RUNTIME_DIR").map(|dir| dir.join("containers/auth.json"));
    let config = env_path("XDG_CONFIG_HOME")
        .or_else(|| env_path("HOME").map(|home| home.join(".config")))
        .map(|dir| dir.join("containers/auth.json"));
    runtime.into_iter().chain(config).collect()
}

/// docker's config.json: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub(crate) fn docker_config_path() -> Option<PathBuf> {
    env_path("DOCKER_CONFIG")
        .or_else(|| env_path("HOME").map(|home| home.join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// The places of `config` (the file at `path`) the lookup consults for `registry`,
/// in order: `credHelpers` entries naming it, `auths` entries naming it (the canonical
/// key first, the others sorted), then docker's `credsStore`. A helper appears once.
pub(crate) fn places(
    config: &Map<String, Value>,
    flavour: Flavour,
    registry: &str,
    path: &Path,
) -> Result<Vec<Place>> {
    let server_url = canonical_key(registry, flavour);
    let helper = |name: &str| Place::Helper {
        name: name.to_string(),
        server_url: server_url.clone(),
    };
    let mut places = Vec::new();
    let helpers = section(config, "credHelpers", path)?;
    for key in matching_keys(helpers, flavour, registry) {
        match helpers.and_then(|h| h.get(&key)) {
            Some(Value::String(name)) if !name.is_empty() => places.push(helper(name)),
            Some(Value::String(_)) => {}
            _ => {
                return Err(malformed(
                    path,
                    &format!("credHelpers.\"{key}\" is not a string"),
                ));
            }
        }
    }
    let auths = section(config, "auths", path)?;
    places.extend(
        matching_keys(auths, flavour, registry)
            .into_iter()
            .map(Place::Entry),
    );
    if flavour == Flavour::Docker {
        match config.get("credsStore") {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) if name.is_empty() => {}
            Some(Value::String(name)) => places.push(helper(name)),
            Some(_) => return Err(malformed(path, "credsStore is not a string")),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    places.retain(|place| match place {
        Place::Helper { name, .. } => seen.insert(name.clone()),
        Place::Entry(_) => true,
    });
    Ok(places)
}

/// The object under `name` in `config`, if there is one.
fn section<'a>(
    config: &'a Map<String, Value>,
    name: &str,
    path: &Path,
) -> Result<Option<&'a Map<String, Value>>> {
    match config.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(section)) => Ok(Some(section)),
        Some(_) => Err(malformed(path, &format!("`{name}` is not an object"))),
    }
}

/// The keys of `section` that name `registry`: the canonical key first, the others
/// sorted (so the same file always gives the same answer).
fn matching_keys(
    section: Option<&Map<String, Value>>,
    flavour: Flavour,
    registry: &str,
) -> Vec<String> {
    let canonical = canonical_key(registry, flavour);
    let mut keys: Vec<String> = section
        .into_iter()
        .flat_map(Map::keys)
        .filter(|key| key_names(key, registry, flavour))
        .cloned()
        .collect();
    keys.sort_by_key(|key| (*key != canonical, key.clone()));
    keys
}

/// The key docker or podman writes for `registry`: docker keeps Docker Hub's under its
/// legacy index URL.
pub(crate) fn canonical_key(registry: &str, flavour: Flavour) -> String {
    match (flavour, same_host(registry, "docker.io")) {
        (Flavour::Docker, true) => "https://index.docker.io/v1/".to_string(),
        (Flavour::Podman, true) => "docker.io".to_string(),
        _ => registry.to_ascii_lowercase(),
    }
}

/// Whether the credential-file key `key` names `registry` (see the module docs).
pub(crate) fn key_names(key: &str, registry: &str, flavour: Flavour) -> bool {
    let first_segment = |text: &'_ str| text.split('/').next().unwrap_or_default().to_string();
    let host = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => first_segment(rest),
        None if flavour == Flavour::Docker => first_segment(key),
        None => key.to_string(),
    };
    !host.is_empty() && same_host(&host, registry)
}

/// Whether two registry hosts are the same, Docker Hub's names being one.
fn same_host(a: &str, b: &str) -> bool {
    fn normalised(host: &str) -> String {
        let host = host.to_ascii_lowercase();
        match host.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => host,
        }
    }
    normalised(a) == normalised(b)
}

/// What `place` of `config` holds, if anything.
fn look_at(
    config: &Map<String, Value>,
    place: &Place,
    path: &Path,
    registry: &str,
) -> Result<Option<Found>> {
    match place {
        Place::Entry(key) => entry_credentials(&config["auths"][key], path, key),
        Place::Helper { name, server_url } => Ok(credential_helper::get(
            registry, name, server_url,
        )?
        .map(|found| match found {
            HelperCredential::Basic(user, secret) => Found::Auth(RegistryAuth::Basic(user, secret)),
            HelperCredential::IdentityToken(token) => Found::IdentityToken(token),
        })),
    }
}

/// The credentials of one `auths` entry: `identitytoken`, else `auth` (base64 of
/// `user:password`, which must agree with `username`/`password` when both are there),
/// else `username` with `password`. An empty entry (docker's placeholder when a
/// helper holds the secret) holds none.
fn entry_credentials(entry: &Value, path: &Path, key: &str) -> Result<Option<Found>> {
    let fail = |what: &str| malformed(path, &format!("auths.\"{key}\": {what}"));
    let Some(entry) = entry.as_object() else {
        return Err(fail("not an object"));
    };
    let text = |field: &str| {
        entry
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    if let Some(token) = text("identitytoken") {
        return Ok(Some(Found::IdentityToken(token.to_string())));
    }
    let named = text("username").zip(text("password"));
    let basic = |user: &str, password: &str| {
        Found::Auth(RegistryAuth::Basic(user.to_string(), password.to_string()))
    };
    if let Some(auth) = text("auth") {
        let (user, password) =
            decode_auth(auth).ok_or_else(|| fail("`auth` is not base64 of USER:PASSWORD"))?;
        if named.is_some_and(|named| named != (user.as_str(), password.as_str())) {
            return Err(fail("`auth` and `username`/`password` disagree"));
        }
        return Ok(Some(basic(&user, &password)));
    }
    Ok(named.map(|(user, password)| basic(user, password)))
}

/// `user:password` from base64, padded or not (both are written in the wild).
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = String::from_utf8(engine.decode(auth.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// An error about a credential file that says it is left alone.
pub(crate) fn malformed(path: &Path, what: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message: format!("{what}; fix or move the file, hoist will not overwrite it"),
    }
}

/// A credential file as a JSON object; `None` when it does not exist, an empty object
/// when it is empty. Anything else that is not a JSON object is an error naming it.
pub(crate) fn read_json_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(malformed(path, "not a JSON object")),
        Err(e) => Err(malformed(path, &format!("not valid JSON ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPELLINGS: [&str; 6] = [
        "ghcr.io",
        "http://ghcr.io",
        "https://ghcr.io",
        "https://ghcr.io/",
        "https://ghcr.io/v2/",
        "ghcr.io/",
    ];

    #[test]
    fn every_docker_spelling_of_a_host_names_it() {
        for key in SPELLINGS {
            assert!(key_names(key, "ghcr.io", Flavour::Docker), "{key}");
            assert!(!key_names(key, "ghcr.io:443", Flavour::Docker), "{key}");
        }
        assert!(key_names("GHCR.io", "ghcr.io", Flavour::Docker));
        assert!(!key_names("ghcr.io.evil", "ghcr.io", Flavour::Docker));
        assert!(!key_names("https://", "ghcr.io", Flavour::Docker));
        for hub in [
            "https://index.docker.io/v1/",
            "docker.io",
            "registry-1.docker.io",
        ] {
            assert!(key_names(hub, "docker.io", Flavour::Docker), "{hub}");
            assert!(key_names(hub, "index.docker.io", Flavour::Podman), "{hub}");
        }
        assert_eq!(
            canonical_key("index.docker.io", Flavour::Docker),
            "https://index.docker.io/v1/"
        );
        assert_eq!(canonical_key("docker.io", Flavour::Podman), "docker.io");
    }

    #[test]
    fn podman_reads_a_path_without_a_scheme_as_a_namespace() {
        assert!(key_names("ghcr.io", "ghcr.io", Flavour::Podman));
        assert!(key_names("https://ghcr.io/v2/", "ghcr.io", Flavour::Podman));
        assert!(!key_names("ghcr.io/acme", "ghcr.io", Flavour::Podman));
        assert!(!key_names("ghcr.io/", "ghcr.io", Flavour::Podman));
    }

    #[test]
    fn places_come_in_lookup_order_each_helper_once() {
        let config: Map<String, Value> = serde_json::from_str(
            r#"{"credsStore": "desktop",
                "credHelpers": {"ghcr.io": "gh", "https://ghcr.io": "desktop", "quay.io": "q"},
                "auths": {"https://ghcr.io/v2/": {}, "ghcr.io": {}, "quay.io": {}}}"#,
        )
        .unwrap();
        let helper = |name: &str| Place::Helper {
            name: name.into(),
            server_url: "ghcr.io".into(),
        };
        assert_eq!(
            places(&config, Flavour::Docker, "ghcr.io", Path::new("c")).unwrap(),
            [
                helper("gh"),
                helper("desktop"),
                Place::Entry("ghcr.io".into()),
                Place::Entry("https://ghcr.io/v2/".into()),
            ]
        );
        // podman ignores credsStore.
        let config: Map<String, Value> =
            serde_json::from_str(r#"{"credsStore": "desktop", "auths": {"ghcr.io": {}}}"#).unwrap();
        assert_eq!(
            places(&config, Flavour::Podman, "ghcr.io", Path::new("a")).unwrap(),
            [Place::Entry("ghcr.io".into())]
        );
    }

    #[test]
    fn entries_decode_and_disagreements_are_named() {
        let path = Path::new("config.json");
        let entry = serde_json::json!({"auth": "Y2k6czNjcmV0"});
        assert_eq!(
            entry_credentials(&entry, path, "k").unwrap(),
            Some(Found::Auth(RegistryAuth::Basic(
                "ci".into(),
                "s3cret".into()
            )))
        );
        let unpadded = serde_json::json!({"auth": "Y2k6cw"});
        assert!(entry_credentials(&unpadded, path, "k").unwrap().is_some());
        assert_eq!(
            entry_credentials(&serde_json::json!({}), path, "k").unwrap(),
            None
        );
        let mismatch =
            serde_json::json!({"auth": "Y2k6czNjcmV0", "username": "x", "password": "y"});
        let error = entry_credentials(&mismatch, path, "k")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("config.json") && error.contains("disagree"),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn explicit_credentials_win_and_never_print_the_password() {
        let given = ExplicitCredentials {
            username: "ci".into(),
            password: "s3cret".into(),
        };
        let (auth, source) = resolve("registry.example", Some(&given)).unwrap();
        assert_eq!(source, Source::Flags);
        assert!(
            matches!(auth, Found::Auth(RegistryAuth::Basic(u, p)) if u == "ci" && p == "s3cret")
        );
        assert!(!format!("{given:?}").contains("s3cret"));
    }
}
