//! Where `hoist login` keeps credentials and `hoist logout` removes them: docker's
//! `config.json` (`$DOCKER_CONFIG`, else `~/.docker`), so that docker, buildah, skopeo
//! and crane see the same login. As docker does, a registry with a credential helper
//! (`credHelpers`, else `credsStore`) is stored through the helper instead of in the
//! file.
//!
//! The file is read whole, edited as JSON (other keys kept), and replaced atomically:
//! written to a temporary file (mode 0600) in the same directory, then renamed. A
//! malformed file is an error naming it, never overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::auth::{ExplicitCredentials, config_keys};
use crate::error::{Error, Result};

/// Where credentials went, or were removed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// The `auths` section of this config.json.
    File(PathBuf),
    /// The credential helper `docker-credential-NAME`.
    Helper(String),
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Helper(name) => write!(f, "credential helper docker-credential-{name}"),
        }
    }
}

/// docker's config.json path.
pub fn config_path() -> Result<PathBuf> {
    let directory = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(directory) => PathBuf::from(directory),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(".docker"))
            .ok_or_else(|| Error::InvalidValue {
                field: "HOME".into(),
                message: "neither DOCKER_CONFIG nor HOME is set: nowhere to keep credentials"
                    .into(),
            })?,
    };
    Ok(directory.join("config.json"))
}

/// Stores `credentials` for `registry`.
pub fn store(registry: &str, credentials: &ExplicitCredentials) -> Result<Store> {
    let path = config_path()?;
    let mut config = read_config(&path)?;
    let key = config_keys(registry).swap_remove(0);
    if let Some(helper) = helper_for(&config, registry) {
        let request = serde_json::json!({
            "ServerURL": key,
            "Username": credentials.username,
            "Secret": credentials.password,
        });
        run_helper(registry, &helper, "store", request.to_string().as_bytes())?;
        return Ok(Store::Helper(helper));
    }
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(malformed(&path, "`auths` is not an object"));
    };
    // Other spellings of the same registry would shadow or contradict the new entry.
    for other in config_keys(registry) {
        auths.remove(&other);
    }
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_config(&path, &config)?;
    Ok(Store::File(path))
}

/// Removes what is stored for `registry`; `None` when nothing was.
pub fn erase(registry: &str) -> Result<Option<Store>> {
    let path = config_path()?;
    let mut config = read_config(&path)?;
    if let Some(helper) = helper_for(&config, registry) {
        let key = config_keys(registry).swap_remove(0);
        return match run_helper(registry, &helper, "erase", key.as_bytes()) {
            Ok(()) => Ok(Some(Store::Helper(helper))),
            Err(_) if !helper_has(&helper, &key) => Ok(None),
            Err(error) => Err(error),
        };
    }
    let Some(Value::Object(auths)) = config.get_mut("auths") else {
        return Ok(None);
    };
    let removed = config_keys(registry)
        .iter()
        .filter(|key| auths.remove(key.as_str()).is_some())
        .count();
    if removed == 0 {
        return Ok(None);
    }
    write_config(&path, &config)?;
    Ok(Some(Store::File(path)))
}

/// The helper docker would use for `registry`: its `credHelpers` entry, else the
/// `credsStore`.
fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
    let by_registry = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| {
            config_keys(registry)
                .iter()
                .find_map(|key| helpers.get(key).and_then(Value::as_str))
                .map(str::to_string)
        });
    by_registry
        .or_else(|| {
            config
                .get("credsStore")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|name| !name.is_empty())
}

/// Whether the helper holds something for `key` (`get` succeeds).
fn helper_has(helper: &str, key: &str) -> bool {
    run_helper("", helper, "get", key.as_bytes()).is_ok()
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin. Its output may hold
/// secrets: it is never put into errors.
fn run_helper(registry: &str, helper: &str, action: &str, input: &[u8]) -> Result<()> {
    let program = format!("docker-credential-{helper}");
    let fail = |message: String| Error::Registry {
        registry: registry.to_string(),
        message: format!("{program} {action}: {message}"),
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("failed ({status})")))
    }
}

fn malformed(path: &Path, what: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message: format!("{what}; fix or move the file, hoist will not overwrite it"),
    }
}

/// The config as a JSON object; an empty one when the file does not exist.
fn read_config(path: &Path) -> Result<Map<String, Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(path, "not a JSON object")),
        Err(e) => Err(malformed(path, &format!("not valid JSON ({e})"))),
    }
}

/// Replaces the config atomically, mode 0600, tab-indented as docker writes it.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(io_error)?;
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(config, &mut serializer).map_err(|e| io_error(e.into()))?;
    text.push(b'\n');
    // NamedTempFile is created 0600: the secret is never readable by others, not even
    // before the rename.
    let mut temporary = tempfile::NamedTempFile::new_in(directory).map_err(io_error)?;
    temporary.write_all(&text).map_err(io_error)?;
    temporary.as_file().sync_all().map_err(io_error)?;
    temporary.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_helper_for_the_registry_wins_over_the_store() {
        let config: Map<String, Value> =
            serde_json::from_str(r#"{"credsStore": "desktop", "credHelpers": {"ghcr.io": "gh"}}"#)
                .unwrap();
        assert_eq!(helper_for(&config, "ghcr.io").as_deref(), Some("gh"));
        assert_eq!(helper_for(&config, "quay.io").as_deref(), Some("desktop"));
        assert_eq!(helper_for(&Map::new(), "quay.io"), None);
    }
}
