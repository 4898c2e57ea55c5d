//! Where `hoist login` keeps credentials and `hoist logout` removes them.
//!
//! `login` writes docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`), so that
//! docker, buildah, skopeo and crane see the same login. As docker does, a registry
//! with a credential helper (`credHelpers`, else `credsStore`) is stored through the
//! helper instead of in the file, and the file then keeps no secret for it.
//!
//! `logout` removes everything the lookup (`auth::resolve`) would find for the
//! registry, from every file it reads (podman's auth.json files and docker's
//! config.json): each `auths` key that names the registry in any spelling, and what
//! each helper those files name for it holds. Helpers go first, so a failing helper
//! leaves every file as it was.
//!
//! Files are read whole, edited as JSON (other keys kept), and replaced atomically:
//! written to a temporary file in the same directory, then renamed over the file (over
//! a symlink's target, as docker does). A logout keeps the file's mode; a login, which
//! adds a secret, also drops group and other access; a new file is 0600. A malformed
//! file is an error naming it, never overwritten.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::auth::{
    ExplicitCredentials, Flavour, Place, canonical_key, credential_files, docker_config_path,
    key_names, malformed, places, read_json_object,
};
use super::credential_helper;
use crate::error::{Error, Result};

/// Where credentials went, or were removed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// The `auths` section of this config.json or auth.json.
    File(PathBuf),
    /// The credential helper `docker-credential-NAME`.
    Helper(String),
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Helper(name) => {
                write!(f, "credential helper {}", credential_helper::program(name))
            }
        }
    }
}

/// What `logout` removed from one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The file or helper.
    pub from: Store,
    /// The keys (server URLs, for a helper) removed, in the order removed.
    pub keys: Vec<String>,
}

/// docker's config.json path.
pub fn config_path() -> Result<PathBuf> {
    docker_config_path().ok_or_else(|| Error::InvalidValue {
        field: "HOME".into(),
        message: "neither DOCKER_CONFIG nor HOME is set: nowhere to keep credentials".into(),
    })
}

/// Every file `logout` looks in, for its "nothing stored" message.
pub fn searched_files() -> Vec<PathBuf> {
    credential_files()
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// The podman auth.json that holds something for `registry` (an `auths` entry or a
/// `credHelpers` entry), which the lookup reads before docker's config.json.
pub fn podman_file_naming(registry: &str) -> Result<Option<PathBuf>> {
    for (path, flavour) in credential_files() {
        if flavour != Flavour::Podman {
            continue;
        }
        if let Some(config) = read_json_object(&path)?
            && !places(&config, flavour, registry, &path)?.is_empty()
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Stores `credentials` for `registry`.
pub fn store(registry: &str, credentials: &ExplicitCredentials) -> Result<Store> {
    let path = config_path()?;
    let mut config = read_json_object(&path)?.unwrap_or_default();
    let key = canonical_key(registry, Flavour::Docker);
    let helper = places(&config, Flavour::Docker, registry, &path)?
        .into_iter()
        .find_map(|place| match place {
            Place::Helper { name, .. } => Some(name),
            Place::Entry(_) => None,
        });
    if let Some(helper) = helper {
        credential_helper::store(
            registry,
            &helper,
            &key,
            &credentials.username,
            &credentials.password,
        )?;
        // An old secret in `auths` would contradict the helper's (and be found before a
        // `credsStore`'s): it goes.
        if !remove_entries(&mut config, Flavour::Docker, registry, &path)?.is_empty() {
            write_json_atomically(&path, &config, Writing::Removals)?;
        }
        return Ok(Store::Helper(helper));
    }
    // Other spellings of the same registry would shadow or contradict the new entry.
    remove_entries(&mut config, Flavour::Docker, registry, &path)?;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    let Value::Object(auths) = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
    else {
        return Err(malformed(&path, "`auths` is not an object"));
    };
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_json_atomically(&path, &config, Writing::Secret)?;
    Ok(Store::File(path))
}

/// Removes everything the lookup would find for `registry`; an empty list when
/// nothing was stored.
pub fn erase(registry: &str) -> Result<Vec<Removal>> {
    // Every file is read before anything changes: a malformed one stops the logout
    // with nothing removed.
    let mut files = Vec::new();
    for (path, flavour) in credential_files() {
        if let Some(config) = read_json_object(&path)? {
            let found = places(&config, flavour, registry, &path)?;
            files.push((path, flavour, config, found));
        }
    }
    let mut removals = Vec::new();
    let mut helpers_done = BTreeSet::new();
    for (_, _, _, found) in &files {
        for place in found {
            if let Place::Helper { name, server_url } = place
                && helpers_done.insert(name.clone())
            {
                removals.extend(erase_from_helper(registry, name, server_url)?);
            }
        }
    }
    for (path, flavour, mut config, _) in files {
        let keys = remove_entries(&mut config, flavour, registry, &path)?;
        if !keys.is_empty() {
            write_json_atomically(&path, &config, Writing::Removals)?;
            removals.push(Removal {
                from: Store::File(path),
                keys,
            });
        }
    }
    Ok(removals)
}

/// Erases from helper `name` every server URL it lists for `registry`; when it cannot
/// list, the one the lookup asks it about (`server_url`).
fn erase_from_helper(registry: &str, name: &str, server_url: &str) -> Result<Option<Removal>> {
    let urls = match credential_helper::list(registry, name) {
        Some(listed) => listed
            .into_iter()
            .filter(|url| key_names(url, registry, Flavour::Docker))
            .collect(),
        None => vec![server_url.to_string()],
    };
    let mut erased = Vec::new();
    for url in urls {
        if credential_helper::erase(registry, name, &url)? {
            erased.push(url);
        }
    }
    Ok((!erased.is_empty()).then(|| Removal {
        from: Store::Helper(name.to_string()),
        keys: erased,
    }))
}

/// Removes every `auths` key of `config` that names `registry`; returns them.
fn remove_entries(
    config: &mut Map<String, Value>,
    flavour: Flavour,
    registry: &str,
    path: &Path,
) -> Result<Vec<String>> {
    let entries = places(config, flavour, registry, path)?
        .into_iter()
        .filter_map(|place| match place {
            Place::Entry(key) => Some(key),
            Place::Helper { .. } => None,
        })
        .collect::<Vec<_>>();
    if let Some(Value::Object(auths)) = config.get_mut("auths") {
        for key in &entries {
            auths.remove(key);
        }
    }
    Ok(entries)
}

/// Whether a rewrite adds a secret (`login`) or only removes some (`logout`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// The file gets a secret: nobody but its owner may read it.
    Secret,
    /// Nothing new in it: its mode stays as the user set it.
    Removals,
}

/// Replaces the file at `path` (a symlink's target, when it is one) atomically,
/// tab-indented as docker and podman write it. A new file is 0600; an existing one
/// keeps its mode, minus group and other access when it gets a secret.
fn write_json_atomically(path: &Path, config: &Map<String, Value>, writing: Writing) -> Result<()> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    // Dotfile managers link config.json: replace what it points at, not the link.
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(source) => return Err(io_error(path)(source)),
    };
    let directory = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(io_error(directory))?;
    let mode = std::fs::metadata(&target).ok().map(|metadata| {
        let mode = metadata.permissions().mode() & 0o7777;
        match writing {
            Writing::Secret => mode & 0o7700,
            Writing::Removals => mode,
        }
    });
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(config, &mut serializer)
        .map_err(|e| io_error(&target)(e.into()))?;
    text.push(b'\n');
    // NamedTempFile is created 0600: a secret is never readable by others, not even
    // before the rename. The file's own mode is set before anything is written.
    let mut temporary = tempfile::Builder::new()
        .prefix(".hoist-tmp-")
        .tempfile_in(directory)
        .map_err(io_error(directory))?;
    if let Some(mode) = mode {
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_error(temporary.path()))?;
    }
    temporary.write_all(&text).map_err(io_error(&target))?;
    temporary.as_file().sync_all().map_err(io_error(&target))?;
    temporary
        .persist(&target)
        .map_err(|e| io_error(&target)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_entries_keeps_other_hosts_and_keys() {
        let path = Path::new("config.json");
        let mut config: Map<String, Value> = serde_json::from_str(
            r#"{"auths": {"ghcr.io/": {}, "http://ghcr.io": {}, "quay.io": {}, "https://ghcr.io.example": {}},
                "experimental": "enabled"}"#,
        )
        .unwrap();
        let removed = remove_entries(&mut config, Flavour::Docker, "ghcr.io", path).unwrap();
        assert_eq!(removed, ["ghcr.io/", "http://ghcr.io"]);
        let kept: Vec<&String> = config["auths"].as_object().unwrap().keys().collect();
        assert_eq!(kept, ["https://ghcr.io.example", "quay.io"]);
        assert_eq!(config["experimental"], "enabled");
    }
}
