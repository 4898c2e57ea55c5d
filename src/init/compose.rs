//! The services of a compose file (docker-compose.yml / compose.yaml) that `hoist
//! init --compose` turns into workspace members: each one's build context,
//! Dockerfile, build args, target stage and image name.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::InitError;

/// Compose files beyond this are refused (real ones are a few KiB).
const MAX_BYTES: u64 = 4 << 20;

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's key.
    pub name: String,
    /// `build.context` (or `build: DIR`), relative to the compose file; `None` for a
    /// service that only runs an `image`.
    pub context: Option<PathBuf>,
    /// `build.dockerfile`, relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `build.args` (map or `K=V` list).
    pub args: Vec<(String, String)>,
    /// `build.target`.
    pub target: Option<String>,
    /// `image`.
    pub image: Option<String>,
}

/// Reads the services of the compose file at `path`, in file order.
pub fn read(path: &Path) -> Result<Vec<Service>, InitError> {
    let error = |line: usize, message: String| InitError::Compose {
        path: path.to_path_buf(),
        line,
        message,
    };
    let bytes = crate::fsutil::read_bounded(path, MAX_BYTES, "compose file")
        .map_err(|source| InitError::File { source })?;
    let text = String::from_utf8(bytes).map_err(|_| error(0, "not UTF-8".into()))?;
    let docs = YamlLoader::load_from_str(&text)
        .map_err(|e| error(e.marker().line(), e.info().to_string()))?;
    let doc = docs.first().ok_or_else(|| error(0, "empty".into()))?;
    let Some(services) = doc["services"].as_hash() else {
        return Err(error(0, "no `services` mapping".into()));
    };
    services
        .iter()
        .map(|(name, body)| {
            let name = scalar(name)
                .ok_or_else(|| error(0, "a service name that is not a string".into()))?;
            service(name.clone(), body).map_err(|m| error(0, format!("services.{name}: {m}")))
        })
        .collect()
}

fn service(name: String, body: &Yaml) -> Result<Service, String> {
    let image = scalar(&body["image"]);
    let build = &body["build"];
    let mut out = Service {
        name,
        context: None,
        dockerfile: "Dockerfile".into(),
        args: Vec::new(),
        target: None,
        image,
    };
    match build {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::String(context) => out.context = Some(PathBuf::from(context)),
        Yaml::Hash(_) => {
            out.context = Some(PathBuf::from(
                scalar(&build["context"]).unwrap_or_else(|| ".".into()),
            ));
            if let Some(dockerfile) = scalar(&build["dockerfile"]) {
                out.dockerfile = dockerfile;
            }
            out.target = scalar(&build["target"]);
            out.args = args(&build["args"])?;
        }
        _ => return Err("`build` must be a path or a mapping".into()),
    }
    if let Some(context) = &out.context
        && (context.is_absolute() || context.to_string_lossy().contains("://"))
    {
        return Err(format!(
            "build context `{}` is not a directory beside the compose file",
            context.display()
        ));
    }
    Ok(out)
}

/// `args: {K: V}` or `args: ["K=V"]` (a bare `K` takes no value: skipped).
fn args(value: &Yaml) -> Result<Vec<(String, String)>, String> {
    match value {
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        Yaml::Hash(map) => Ok(map
            .iter()
            .filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default())))
            .collect()),
        Yaml::Array(list) => Ok(list
            .iter()
            .filter_map(scalar)
            .filter_map(|item| {
                item.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()),
        _ => Err("`build.args` must be a mapping or a list".into()),
    }
}

/// A scalar as text (compose allows `80`, `true` where a string is meant).
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_in_every_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yaml");
        std::fs::write(
            &path,
            "services:\n  web:\n    build: ./web\n    image: ghcr.io/acme/web:1.0\n    ports: [\"80:80\"]\n  api:\n    build:\n      context: api\n      dockerfile: Dockerfile.prod\n      target: runtime\n      args:\n        PY: \"3.11\"\n  worker:\n    build:\n      context: worker\n      args: [\"MODE=queue\", \"BARE\"]\n  db:\n    image: postgres:16\n",
        )
        .unwrap();
        let services = read(&path).unwrap();
        let names: Vec<_> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "api", "worker", "db"]);
        assert_eq!(services[0].context, Some(PathBuf::from("./web")));
        assert_eq!(services[0].image.as_deref(), Some("ghcr.io/acme/web:1.0"));
        assert_eq!(services[1].dockerfile, "Dockerfile.prod");
        assert_eq!(services[1].target.as_deref(), Some("runtime"));
        assert_eq!(services[1].args, [("PY".to_string(), "3.11".to_string())]);
        assert_eq!(
            services[2].args,
            [("MODE".to_string(), "queue".to_string())]
        );
        assert_eq!(services[3].context, None);
        std::fs::write(&path, "services:\n  web: [\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("compose.yaml"), "{err}");
    }
}
