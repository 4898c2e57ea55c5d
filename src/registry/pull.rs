//! Base images from registries: the reference resolved to an index or manifest, only
//! the requested platforms' manifests, configs and layers fetched, every document and
//! blob verified against its digest, blobs streamed into the content-addressed cache
//! (so a repeat build downloads nothing it already has).

use futures_util::{StreamExt, TryStreamExt, stream};
use hoist_layers::{BlobStore, Digest};
use oci_spec::distribution::Reference;
use serde_json::Value;

use super::manifest::{describe_document, fetch_manifest};
use super::transport::{Access, Repository, Transport};
use crate::error::{Error, Result};
use crate::oci::image::{BaseOrigin, BlobSource, Image, PlatformImage};
use crate::oci::layout::Layout;
use crate::oci::limits;
use crate::oci::media::{self, Flavour};
use crate::oci::model::{Descriptor, Index, Manifest};
use crate::oci::platform::Platform;
use crate::oci::reference::with_digest;

/// Resolves `reference` to an image holding the `wanted` platforms (all when `None`):
/// its index, manifests and configs fetched (what the cache lacks) into `store`, and
/// with `fetch_layers` their layers too. Without, layers stay in the registry: a push
/// fetches one only when its target lacks it ([`BlobFetcher`]), `hoist diff` only when
/// the other side has a different one ([`fetch_blob`]).
pub async fn load_base(
    reference: &Reference,
    wanted: Option<&[Platform]>,
    store: &BlobStore,
    transport: &Transport,
    fetch_layers: bool,
) -> Result<Image> {
    load(reference, wanted, store, transport, fetch_layers).await
}

/// Streams one blob of `reference`'s repository into `store` (unless it is there),
/// verified against its descriptor.
pub async fn fetch_blob(
    reference: &Reference,
    descriptor: &Descriptor,
    store: &BlobStore,
    transport: &Transport,
) -> Result<()> {
    // Cached blobs need no connection (nor, behind token auth, a token).
    if cached_intact(store, descriptor)? {
        return Ok(());
    }
    let repository = pull_handle(reference, transport).await?;
    let remote = Remote {
        repository: repository.as_ref(),
        reference,
        registry: reference.registry().to_string(),
        store,
        fetch_layers: true,
    };
    // Offline, this names the missing blob and the cache.
    remote.fetch(descriptor, store).await
}

/// A handle for reading `reference`'s repository; `None` offline (the cache alone).
async fn pull_handle(reference: &Reference, transport: &Transport) -> Result<Option<Repository>> {
    if transport.options().offline {
        return Ok(None);
    }
    Ok(Some(transport.repository(reference, Access::Pull).await?))
}

async fn load(
    reference: &Reference,
    wanted: Option<&[Platform]>,
    store: &BlobStore,
    transport: &Transport,
    fetch_layers: bool,
) -> Result<Image> {
    let options = transport.options();
    let repository = pull_handle(reference, transport).await?;
    let remote = Remote {
        repository: repository.as_ref(),
        reference,
        registry: reference.registry().to_string(),
        store,
        fetch_layers,
    };
    let top_digest = match (reference.digest(), &repository) {
        (Some(digest), _) => Some(digest.to_string()),
        // Offline, a tag resolves through what the last online resolution recorded.
        (None, None) => Some(cached_tag(store, reference).ok_or_else(|| {
            remote.error(format!(
                "offline: {} was never resolved on this machine (no record in {}); run once online or hoist pull it",
                reference.whole(),
                store.root().display()
            ))
        })?),
        (None, Some(_)) => None,
    };
    let (top, bytes) = remote.manifest(reference, top_digest.as_deref()).await?;
    if repository.is_some() && reference.digest().is_none() {
        record_tag(store, reference, &top.digest)?;
    }
    let mut platforms = Vec::new();
    let mut index = None;
    if media::is_index(&top.media_type) {
        let parsed: Index = remote.parse(&bytes, "index", &top.digest)?;
        let entries: Vec<(&Descriptor, &Platform)> = parsed
            .manifests
            .iter()
            .filter(|d| media::is_manifest(&d.media_type))
            .filter_map(|d| d.platform.as_ref().map(|p| (d, p)))
            .filter(|(_, p)| p.os != "unknown" && p.architecture != "unknown")
            .collect();
        let chosen: Vec<&Descriptor> = match wanted {
            None => entries.iter().map(|(d, _)| *d).collect(),
            Some(wanted) => wanted
                .iter()
                .map(|want| {
                    entries
                        .iter()
                        .find(|(_, p)| p.satisfies(want))
                        .map(|(d, _)| *d)
                        .ok_or_else(|| Error::PlatformMissing {
                            base: reference.whole(),
                            platform: want.to_string(),
                            available: entries
                                .iter()
                                .map(|(_, p)| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                })
                .collect::<Result<_>>()?,
        };
        for entry in chosen {
            let (_, bytes) = remote
                .manifest(
                    &with_digest(reference, entry.digest.as_str()),
                    Some(entry.digest.as_str()),
                )
                .await?;
            let platform = entry.platform.clone().expect("filtered on platform");
            platforms.push(
                remote
                    .platform(entry.clone(), &bytes, Some(platform), store, options.jobs())
                    .await?,
            );
        }
        index = Some(parsed);
    } else {
        platforms.push(
            remote
                .platform(top.clone(), &bytes, None, store, options.jobs())
                .await?,
        );
    }
    // Documents (and fetched layers) are in the cache; a layer it lacks was left in
    // the registry, fetched only if a push must upload it.
    let cache = Layout::over_blobs(store.root());
    let locate = |digest: &Digest| {
        let path = cache.blob_path(digest);
        if path.exists() {
            BlobSource::Unverified(path)
        } else {
            BlobSource::OnDemand(path)
        }
    };
    let origin = BaseOrigin {
        repository: reference.clone(),
        layers: platforms
            .iter()
            .flat_map(|p| p.manifest.layers.iter().map(|l| l.digest.clone()))
            .collect(),
        cache: store.root().to_path_buf(),
    };
    let flavour = Flavour::of(&top.media_type).unwrap_or(Flavour::Oci);
    Ok(Image::read(
        flavour,
        top,
        index,
        platforms,
        locate,
        Some(origin),
    ))
}

struct Remote<'a> {
    /// `None` offline: everything comes from the store or fails naming what is missing.
    repository: Option<&'a Repository>,
    reference: &'a Reference,
    registry: String,
    store: &'a BlobStore,
    /// Whether layers are fetched with their manifests (a base) or left for later (diff).
    fetch_layers: bool,
}

impl Remote<'_> {
    fn error(&self, message: String) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message,
        }
    }

    /// A manifest or index, verified; its bytes are kept in the content-addressed
    /// cache beside the blobs (a layout written from this base needs them).
    async fn manifest(
        &self,
        reference: &Reference,
        expected: Option<&str>,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let Some(repository) = self.repository else {
            return self.cached_manifest(reference, expected);
        };
        let (descriptor, bytes) = fetch_manifest(repository, reference, expected).await?;
        self.store.put(&bytes)?;
        Ok((descriptor, bytes))
    }

    /// A manifest from the store (offline), verified like a fetched one.
    fn cached_manifest(
        &self,
        reference: &Reference,
        expected: Option<&str>,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let missing = || {
            self.error(format!(
                "offline: manifest {} of {} is not in the cache {}",
                expected.unwrap_or("?"),
                reference.whole(),
                self.store.root().display()
            ))
        };
        let digest: Digest = expected.and_then(|d| d.parse().ok()).ok_or_else(missing)?;
        let path = self.store.path(&digest);
        if !path.exists() {
            return Err(missing());
        }
        let bytes = crate::fsutil::read_bounded(&path, limits::MANIFEST_LIMIT, "a manifest")?;
        let descriptor = describe_document(&bytes, |m| {
            self.error(format!("{}: {m}", reference.whole()))
        })?;
        if descriptor.digest != digest {
            return Err(self.error(format!(
                "cached manifest {digest} is corrupt (content hashes to {})",
                descriptor.digest
            )));
        }
        Ok((descriptor, bytes))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        what: &str,
        digest: &Digest,
    ) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            self.error(format!(
                "{what} {digest} from {} is malformed: {e}",
                self.reference.repository()
            ))
        })
    }

    /// One platform's manifest, with its config read and its layers in the store.
    async fn platform(
        &self,
        descriptor: Descriptor,
        bytes: &[u8],
        platform: Option<Platform>,
        store: &BlobStore,
        jobs: usize,
    ) -> Result<PlatformImage> {
        let manifest: Manifest = self.parse(bytes, "manifest", &descriptor.digest)?;
        manifest
            .check_media_types(&descriptor.media_type)
            .map_err(|reason| self.error(format!("manifest {}: {reason}", descriptor.digest)))?;
        // Refused from the size the manifest claims, before a byte is fetched: the
        // config is read whole to be parsed.
        if manifest.config.size > limits::CONFIG_LIMIT {
            return Err(self.error(format!(
                "manifest {}: its config {} claims {} bytes, over the {} MiB an image config may have",
                descriptor.digest,
                manifest.config.digest,
                manifest.config.size,
                limits::CONFIG_LIMIT >> 20
            )));
        }
        self.fetch(&manifest.config, store).await?;
        let config_path = store.path(&manifest.config.digest);
        let config_bytes =
            crate::fsutil::read_bounded(&config_path, limits::CONFIG_LIMIT, "an image config")?;
        let config: Value = self.parse(&config_bytes, "config", &manifest.config.digest)?;
        let layers = manifest
            .layers
            .iter()
            .filter(|_| self.fetch_layers)
            .filter(|l| l.media_type != media::DOCKER_FOREIGN_LAYER_GZIP);
        stream::iter(layers)
            .map(|layer| self.fetch(layer, store))
            .buffer_unordered(jobs)
            .try_collect::<Vec<()>>()
            .await?;
        let platform = match platform {
            Some(platform) => platform,
            None => crate::oci::platform::platform_of_config(&config).ok_or_else(|| {
                self.error(format!(
                    "config {} names no os/architecture",
                    manifest.config.digest
                ))
            })?,
        };
        Ok(PlatformImage::read(platform, descriptor, manifest, config))
    }

    /// Streams a blob into the store unless it is there, verifying digest and size.
    async fn fetch(&self, descriptor: &Descriptor, store: &BlobStore) -> Result<()> {
        if cached_intact(store, descriptor)? {
            return Ok(());
        }
        let Some(repository) = self.repository else {
            return Err(self.error(format!(
                "offline: blob {} of {} is not in the cache {}",
                descriptor.digest,
                self.reference.whole(),
                store.root().display()
            )));
        };
        repository.fetch_blob(descriptor, store).await
    }
}

/// Whether the cache holds `descriptor`'s blob intact. A cached blob is trusted only
/// once hashed (once per run); one that fails is deleted, so it is fetched again
/// instead of built on or sent.
fn cached_intact(store: &BlobStore, descriptor: &Descriptor) -> Result<bool> {
    if !store.contains(&descriptor.digest) {
        return Ok(false);
    }
    if store.check(&descriptor.digest, descriptor.size).is_ok() {
        return Ok(true);
    }
    store.evict(&descriptor.digest)?;
    Ok(false)
}

/// Fetches a registry base's blobs into the cache when a push finds that the target
/// neither has them nor can mount them.
pub struct BlobFetcher {
    repository: Repository,
    store: BlobStore,
}

impl BlobFetcher {
    /// A fetcher from `reference`'s repository into the cache at `cache`.
    pub async fn new(
        reference: &Reference,
        cache: &std::path::Path,
        transport: &Transport,
    ) -> Result<BlobFetcher> {
        Ok(BlobFetcher {
            repository: transport.repository(reference, Access::Pull).await?,
            store: BlobStore::open_cache(cache)?,
        })
    }

    /// Streams the blob into the cache (verified against digest and size) unless it is
    /// there already.
    pub async fn fetch(&self, digest: &Digest, size: u64) -> Result<()> {
        if self.store.contains(digest) {
            return Ok(());
        }
        let descriptor = Descriptor::new(media::OCI_LAYER_GZIP, digest.clone(), size);
        self.repository.fetch_blob(&descriptor, &self.store).await
    }
}

/// Where the digest a tag last resolved to is recorded:
/// `<cache>/refs/<registry>/<repository>/<tag>`.
fn tag_record(store: &BlobStore, reference: &Reference) -> Option<std::path::PathBuf> {
    let tag = reference.tag()?;
    let mut path = store
        .root()
        .join("refs")
        .join(reference.resolve_registry().replace(':', "_"));
    for part in reference.repository().split('/') {
        path.push(part);
    }
    Some(path.join(tag))
}

fn record_tag(store: &BlobStore, reference: &Reference, digest: &Digest) -> Result<()> {
    let Some(path) = tag_record(store, reference) else {
        return Ok(());
    };
    let dir = path.parent().expect("a record has a parent");
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    crate::fsutil::write_atomically(&path, format!("{digest}\n").as_bytes())
}

fn cached_tag(store: &BlobStore, reference: &Reference) -> Option<String> {
    // A record holds one digest line; anything larger is not one of ours.
    const RECORD_LIMIT: u64 = 1 << 10;
    let bytes =
        crate::fsutil::read_bounded(&tag_record(store, reference)?, RECORD_LIMIT, "a tag record")
            .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let digest: Digest = text.trim().parse().ok()?;
    Some(digest.to_string())
}
