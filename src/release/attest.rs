//! The facts a build's provenance records ([`crate::sign::provenance`]), gathered
//! from the plan, the built image and the checkout: here, not in `sign`, because they
//! need `git` (and `release` may use `sign`, not the other way round).

use std::path::Path;

use super::ReleaseError;
use super::git::Git;
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
    // The digest of the bytes the build parsed, not of the file as it is now.
    let config_digest = plan.config_digest.clone().ok_or_else(|| ReleaseError::Io {
        path: config.to_path_buf(),
        source: std::io::Error::other("the build's plan was not read from this file"),
    })?;
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
    // The plan as resolved (its Python layers still pending: the build plans them once
    // the base is open); each layer named by its `[[layer]]` number.
    let mut sources = Vec::new();
    for layer in &plan.layers {
        let number = layer.number;
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
    // A Python layer's input is its lock (which pins every wheel by sha256), as the
    // plan read it.
    for python in &plan.python {
        sources.push(LayerSource {
            name: python.input_name(),
            path: relative(python.lock()),
            diff_id: python.lock_digest().clone(),
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
        config: (relative(config), config_digest),
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

#[cfg(test)]
mod tests {
    use hoist_layers::{BlobStore, BuildOptions, Digest};

    use super::provenance_facts;
    use crate::assemble::Silent;
    use crate::config::ConfigFile;
    use crate::pipeline::Builder;
    use crate::plan::{Overrides, resolve};
    use crate::registry::client::RegistryOptions;
    use crate::registry::transport::Transport;

    /// The provenance records the config and the lock as the build read them: both
    /// files rewritten after the build read them (as an editor could during a build),
    /// it still names the sha256 of the bytes the image was built from.
    #[test]
    fn the_provenance_names_the_config_and_lock_bytes_the_build_read() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hoist.toml");
        let lock = dir.path().join("requirements.lock");
        let config_text = "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\nsbom = false\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n\n[[layer]]\npython = { lock = \"requirements.lock\", wheelhouse = \"wheels\", version = \"3.11\", libc = \"glibc-2.36\" }\n";
        let lock_text = "# no packages yet\n";
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::create_dir(dir.path().join("wheels")).unwrap();
        std::fs::write(dir.path().join("src/hello.txt"), "hello\n").unwrap();
        std::fs::write(&config, config_text).unwrap();
        std::fs::write(&lock, lock_text).unwrap();

        let file = ConfigFile::load(&config).unwrap();
        let plan = resolve(&config, &file, &Overrides::default(), None).unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let transport = Transport::new(RegistryOptions::default());
        let builder = Builder::new(&store, BuildOptions::default(), &transport, &Silent).unwrap();
        let image = builder.build(&plan, false).unwrap();
        // Edited once the build has read them.
        std::fs::write(&config, format!("{config_text}# edited\n")).unwrap();
        std::fs::write(&lock, "six==1.17.0 --hash=sha256:00\n").unwrap();

        let pushed = format!("127.0.0.1:5000/app@{}", image.descriptor.digest);
        let facts = provenance_facts(&config, &plan, &image, &pushed).unwrap();
        assert_eq!(facts.config.0, "hoist.toml");
        assert_eq!(facts.config.1, Digest::sha256_of(config_text.as_bytes()));
        let locks: Vec<_> = facts
            .sources
            .iter()
            .filter(|s| s.name.ends_with(".python.lock"))
            .map(|s| (s.name.as_str(), s.path.as_str(), &s.diff_id))
            .collect();
        let expected = Digest::sha256_of(lock_text.as_bytes());
        assert_eq!(
            locks,
            [("layer[1].python.lock", "requirements.lock", &expected)]
        );
    }
}
