//! The facts a build's provenance records ([`crate::sign::provenance`]), gathered
//! from the plan, the built image and the checkout: here, not in `sign`, because they
//! need `git` (and `release` may use `sign`, not the other way round).

use std::path::Path;

use hoist_layers::Digest;

use super::ReleaseError;
use super::git::Git;
use crate::fsutil::{PROJECT_FILE_LIMIT, read_bounded};
use crate::oci::image::Image;
use crate::oci::model::{BASE_DIGEST, BASE_NAME};
use crate::plan::Plan;
use crate::sign::provenance::{BuildFacts, GitSource, LayerSource};

/// What a signed push of a build (`hoist build --push --sign-key`, a release) records
/// in the provenance: the pushed image (`pushed`: `REGISTRY/REPO@DIGEST`),
/// the config file, the git checkout it is in, the base and each layer's source.
/// Paths are from the top of the checkout (else as configured), never absolute: the
/// statement must not depend on where the checkout is.
pub fn provenance_facts(
    config: &Path,
    plan: &Plan,
    image: &Image,
    pushed: &str,
) -> Result<BuildFacts, ReleaseError> {
    let bytes = read_bounded(config, PROJECT_FILE_LIMIT, "a config file")?;
    let config_dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let git = Git::discover(config_dir).ok();
    let root = git
        .as_ref()
        .and_then(|g| std::fs::canonicalize(&g.root).ok());
    let relative = |path: &Path| -> String {
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        match root.as_ref().and_then(|r| absolute.strip_prefix(r).ok()) {
            Some(inside) => inside.display().to_string(),
            None => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    };
    // The index's annotations (the base's index digest, as verify reads it), else a
    // single manifest's.
    let annotation = |key: &str| {
        image
            .index
            .as_ref()
            .and_then(|index| index.annotations.as_ref())
            .or_else(|| {
                image
                    .platforms
                    .first()
                    .and_then(|p| p.manifest.annotations.as_ref())
            })
            .and_then(|a| a.get(key))
            .cloned()
    };
    // The plan as resolved: Python layers are still pending (the build plans them once
    // the base is open), so a layer's `[[layer]]` number counts those before it.
    let mut sources = Vec::new();
    for (n, layer) in plan.layers.iter().enumerate() {
        let number = n + plan.python.iter().filter(|p| p.at <= n).count();
        let built = image
            .platforms
            .iter()
            .flat_map(|p| &p.layers)
            .find(|l| l.origin == layer.label)
            .and_then(|l| l.diff_id.clone());
        if let (Some(source), Some(diff_id)) = (&layer.spec.source, built) {
            sources.push(LayerSource {
                name: format!("layer[{number}]"),
                path: relative(source),
                diff_id,
            });
        }
    }
    // A Python layer's input is its lock (which pins every wheel by sha256).
    for python in &plan.python {
        let lock = python.lock();
        let bytes = read_bounded(lock, PROJECT_FILE_LIMIT, "a lock")?;
        sources.push(LayerSource {
            name: format!("layer[{}].python.lock", python.number()),
            path: relative(lock),
            diff_id: Digest::sha256_of(&bytes),
        });
    }
    Ok(BuildFacts {
        repository: pushed.split('@').next().unwrap_or(pushed).to_string(),
        index: image.descriptor.digest.clone(),
        manifests: image
            .platforms
            .iter()
            .map(|p| (p.platform.to_string(), p.descriptor.digest.clone()))
            .collect(),
        config: (relative(config), Digest::sha256_of(&bytes)),
        git: git.as_ref().and_then(|g| {
            Some(GitSource {
                url: g.source_url(),
                revision: g.head_sha().ok()?,
            })
        }),
        base: annotation(BASE_NAME).zip(annotation(BASE_DIGEST)),
        sources,
    })
}
