//! The registry as a layer cache: the layers of images already in a registry, by the
//! key of their inputs (`io.hoist.layer.key`, recorded by the build that made them).
//! A build whose sources hash to a recorded key takes that layer's digest, diff_id and
//! size instead of archiving and compressing again; its bytes stay in the registry
//! (`BlobSource::OnDemand`), fetched only if a push elsewhere needs them.
//!
//! Only manifests and configs are read, through the one transport. Trust: the key and
//! the diff_id come from a registry the user pushes to (or names with `--cache-from`);
//! the blob's digest is checked whenever its bytes move, and `hoist verify` (which never
//! reads this cache) rebuilds everything and compares, so a recorded lie shows there.

use std::collections::BTreeMap;

use hoist_layers::{BlobStore, Digest, KnownLayer, KnownLayers};
use oci_spec::distribution::Reference;
use serde_json::Value;

use super::answer::Meaning;
use super::pull::load_base;
use super::transport::{Access, Transport};
use crate::error::{Error, Result};
use crate::oci::image::{BaseOrigin, BlobSource, Image};
use crate::oci::model::LAYER_KEY;
use crate::oci::reference::{with_digest, with_tag};

/// The images a build pushing to `target` with `tags` reads layers from: the target's
/// tags, then its `latest`, then `cache_from`, each once. (`hoist build` and any other
/// command pushing a build use the same list.)
pub fn cache_references(
    target: Option<(&Reference, &[String])>,
    cache_from: &[Reference],
) -> Vec<Reference> {
    let mut references = Vec::new();
    if let Some((reference, tags)) = target {
        for tag in tags.iter().map(String::as_str).chain(["latest"]) {
            references.push(with_tag(reference, tag));
        }
    }
    references.extend(cache_from.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    references.retain(|r| seen.insert(r.whole()));
    references
}

/// One layer recorded under a key, and where it is.
#[derive(Clone, Debug)]
struct Recorded {
    layer: KnownLayer,
    /// The repository of the image that recorded it.
    repository: Reference,
}

/// Layers of registry images, by (key, media type).
#[derive(Debug, Default)]
pub struct RegistryLayers {
    by_key: BTreeMap<(Digest, String), Recorded>,
    /// The references read that named an image (missing ones are skipped).
    read: Vec<String>,
}

impl RegistryLayers {
    /// Reads the images `references` name (every platform; manifests and configs only,
    /// into `store`), in order: for a key recorded by several, the first wins. A
    /// reference that names nothing (no such tag or repository yet: a first push) is
    /// skipped; any other failure is an error.
    ///
    /// A release's tags mostly name one image: each reference is a `HEAD` (all at
    /// once), and each distinct image is read once, by digest (issue 19 counted 17
    /// `GET`s for five tags of one two-platform image; now 5 `HEAD`s and 3 `GET`s).
    pub async fn read(
        references: &[Reference],
        store: &BlobStore,
        transport: &Transport,
    ) -> Result<RegistryLayers> {
        let digests = futures_util::future::join_all(
            references
                .iter()
                .map(|reference| tagged_digest(reference, transport)),
        )
        .await;
        let mut layers = RegistryLayers::default();
        let mut seen = std::collections::BTreeSet::new();
        for (reference, digest) in references.iter().zip(digests) {
            let Some(digest) = digest? else {
                continue;
            };
            layers.read.push(reference.whole());
            if !seen.insert((
                reference.registry().to_string(),
                reference.repository().to_string(),
                digest.clone(),
            )) {
                continue;
            }
            let pinned = with_digest(reference, digest.as_str());
            let image = match load_base(&pinned, None, store, transport, false).await {
                Ok(image) => image,
                // Deleted between the HEAD and now: as if the tag named nothing.
                Err(Error::RegistryAnswer(answer)) if names_nothing(&answer) => continue,
                Err(error) => return Err(error),
            };
            layers.add(&image, reference);
        }
        Ok(layers)
    }

    /// Records the layers of `image` (from `reference`'s repository) that carry a key.
    fn add(&mut self, image: &Image, reference: &Reference) {
        for platform in &image.platforms {
            let diff_ids = platform
                .config
                .pointer("/rootfs/diff_ids")
                .and_then(Value::as_array);
            for (i, descriptor) in platform.manifest.layers.iter().enumerate() {
                let key = descriptor
                    .annotation(LAYER_KEY)
                    .and_then(|k| k.parse().ok());
                let diff_id = diff_ids
                    .and_then(|ids| ids.get(i))
                    .and_then(Value::as_str)
                    .and_then(|d| d.parse().ok());
                let (Some(key), Some(diff_id)) = (key, diff_id) else {
                    continue;
                };
                self.by_key
                    .entry((key, descriptor.media_type.clone()))
                    .or_insert_with(|| Recorded {
                        layer: KnownLayer {
                            digest: descriptor.digest.clone(),
                            diff_id,
                            size: descriptor.size,
                        },
                        repository: reference.clone(),
                    });
            }
        }
    }

    /// How many layers are known.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no layer is known.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The references that named an image.
    pub fn images_read(&self) -> &[String] {
        &self.read
    }

    /// The repositories holding `image`'s layers that were reused from here (those
    /// left `OnDemand`), each with those layers: a push mounts or fetches them from
    /// there. `cache` is where fetched blobs go.
    pub fn origins(&self, image: &Image, cache: &std::path::Path) -> Vec<BaseOrigin> {
        let mut origins: Vec<BaseOrigin> = Vec::new();
        for recorded in self.by_key.values() {
            let digest = &recorded.layer.digest;
            let on_demand = image
                .blobs
                .get(digest)
                .is_some_and(|b| matches!(b.source, BlobSource::OnDemand(_)));
            if !on_demand {
                continue;
            }
            match origins
                .iter_mut()
                .find(|o| o.repository.whole() == recorded.repository.whole())
            {
                Some(origin) => {
                    origin.layers.insert(digest.clone());
                }
                None => origins.push(BaseOrigin {
                    repository: recorded.repository.clone(),
                    layers: std::iter::once(digest.clone()).collect(),
                    cache: cache.to_path_buf(),
                }),
            }
        }
        origins
    }
}

/// The digest `reference` names in its registry (a `HEAD`); `None` when it names
/// nothing (no such tag or repository yet).
async fn tagged_digest(reference: &Reference, transport: &Transport) -> Result<Option<Digest>> {
    if let Some(digest) = reference.digest() {
        return digest.parse().map(Some).map_err(|_| Error::InvalidValue {
            field: reference.whole(),
            message: format!("{digest} is not a digest"),
        });
    }
    let repository = transport.repository(reference, Access::Pull).await?;
    match repository
        .moving_tag_digest(reference.tag().unwrap_or("latest"))
        .await
    {
        Ok(digest) => Ok(digest),
        Err(Error::RegistryAnswer(answer)) if names_nothing(&answer) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether a registry's answer says the reference names nothing yet.
fn names_nothing(answer: &super::answer::RegistryAnswer) -> bool {
    matches!(
        answer.meaning(),
        Meaning::NoSuchTag | Meaning::NoSuchManifest | Meaning::NoSuchRepository
    )
}

impl KnownLayers for RegistryLayers {
    fn find(&self, key: &Digest, media_type: &str) -> Option<KnownLayer> {
        self.by_key
            .get(&(key.clone(), media_type.to_string()))
            .map(|recorded| recorded.layer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_references_are_the_tags_then_latest_then_cache_from_once_each() {
        let target = crate::oci::reference::parse("127.0.0.1:5000/acme/app").unwrap();
        let other = crate::oci::reference::parse("127.0.0.1:5000/acme/main:latest").unwrap();
        let tags = vec!["1.0".to_string(), "latest".to_string()];
        let names: Vec<String> = cache_references(Some((&target, &tags)), &[other.clone(), other])
            .iter()
            .map(Reference::whole)
            .collect();
        assert_eq!(
            names,
            [
                "127.0.0.1:5000/acme/app:1.0",
                "127.0.0.1:5000/acme/app:latest",
                "127.0.0.1:5000/acme/main:latest"
            ]
        );
        assert!(cache_references(None, &[]).is_empty());
    }
}
