//! Base images from registries: the reference resolved to an index or manifest, only
//! the requested platforms' manifests, configs and layers fetched, every document and
//! blob verified against its digest, blobs streamed into the content-addressed cache
//! (so a repeat build downloads nothing it already has).

use std::io::Write;

use futures_util::{StreamExt, TryStreamExt, stream};
use hoist_layers::{BlobStore, Digest};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference};
use serde_json::Value;

use super::client::{RegistryOptions, client_for};
use super::describe;
use super::manifest::{describe_document, fetch_manifest};
use super::reference::with_digest;
use super::retry::{is_transient, retrying_when};
use crate::assemble::base::{BaseImage, BasePlatform};
use crate::error::{Error, Result};
use crate::oci::layout::Layout;
use crate::oci::media::{self, Flavour};
use crate::oci::model::{Descriptor, Index, Manifest};
use crate::oci::platform::Platform;

/// Resolves `reference` to a base image holding the `wanted` platforms (all when
/// `None`), fetching what the cache lacks into `store`.
pub async fn load_base(
    reference: &Reference,
    wanted: Option<&[Platform]>,
    store: &BlobStore,
    options: &RegistryOptions,
) -> Result<BaseImage> {
    // Offline, every layer must be in the cache now: there is no later.
    let fetch_layers = !options.base_layers_on_demand || options.offline;
    load(reference, wanted, store, options, fetch_layers).await
}

/// Resolves `reference` to its index, manifests and configs (all platforms) without
/// fetching any layer: `hoist diff` fetches a layer with [`fetch_blob`] only when the
/// other side has a different one.
pub async fn load_documents(
    reference: &Reference,
    store: &BlobStore,
    options: &RegistryOptions,
) -> Result<BaseImage> {
    load(reference, None, store, options, false).await
}

/// Streams one blob of `reference`'s repository into `store` (unless it is there),
/// verified against its descriptor.
pub async fn fetch_blob(
    reference: &Reference,
    descriptor: &Descriptor,
    store: &BlobStore,
    options: &RegistryOptions,
) -> Result<()> {
    // Cached blobs need no connection (nor, behind token auth, a token).
    if store.contains(&descriptor.digest) {
        return Ok(());
    }
    if options.offline {
        let remote = Remote {
            client: None,
            reference,
            registry: reference.resolve_registry().to_string(),
            store,
            fetch_layers: true,
        };
        // Names the missing blob and the cache.
        return remote.fetch(descriptor, store).await;
    }
    BlobFetcher::new(reference, store.root(), options)
        .await?
        .fetch(&descriptor.digest, descriptor.size)
        .await
}

async fn load(
    reference: &Reference,
    wanted: Option<&[Platform]>,
    store: &BlobStore,
    options: &RegistryOptions,
    fetch_layers: bool,
) -> Result<BaseImage> {
    let client = if options.offline {
        None
    } else {
        Some(client_for(reference, options).await?)
    };
    let remote = Remote {
        client: client.as_ref(),
        reference,
        registry: reference.resolve_registry().to_string(),
        store,
        fetch_layers,
    };
    let top_digest = match (reference.digest(), &client) {
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
    if client.is_some() && reference.digest().is_none() {
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
                    .platform(entry.clone(), &bytes, Some(platform), store, options)
                    .await?,
            );
        }
        index = Some(parsed);
    } else {
        platforms.push(
            remote
                .platform(top.clone(), &bytes, None, store, options)
                .await?,
        );
    }
    Ok(BaseImage {
        flavour: Flavour::of(&top.media_type).unwrap_or(Flavour::Oci),
        digest: Some(top.digest.clone()),
        platforms,
        layout: Some(Layout::over_blobs(store.root())),
        top: Some(top),
        index,
        repository: Some(reference.clone()),
    })
}

struct Remote<'a> {
    /// `None` offline: everything comes from the store or fails naming what is missing.
    client: Option<&'a Client>,
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
        let Some(client) = self.client else {
            return self.cached_manifest(reference, expected);
        };
        let (descriptor, bytes) = fetch_manifest(client, reference, expected).await?;
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
        let bytes = std::fs::read(self.store.path(&digest)).map_err(|_| missing())?;
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
        options: &RegistryOptions,
    ) -> Result<BasePlatform> {
        let manifest: Manifest = self.parse(bytes, "manifest", &descriptor.digest)?;
        manifest
            .check_media_types(&descriptor.media_type)
            .map_err(|reason| self.error(format!("manifest {}: {reason}", descriptor.digest)))?;
        self.fetch(&manifest.config, store).await?;
        let config_path = store.path(&manifest.config.digest);
        let config_bytes = std::fs::read(&config_path).map_err(|source| Error::Io {
            path: config_path,
            source,
        })?;
        let config: Value = self.parse(&config_bytes, "config", &manifest.config.digest)?;
        let layers = manifest
            .layers
            .iter()
            .filter(|_| self.fetch_layers)
            .filter(|l| l.media_type != media::DOCKER_FOREIGN_LAYER_GZIP);
        stream::iter(layers)
            .map(|layer| self.fetch(layer, store))
            .buffer_unordered(options.jobs())
            .try_collect::<Vec<()>>()
            .await?;
        let platform = match platform {
            Some(platform) => platform,
            None => crate::assemble::base::platform_of_config(&config).ok_or_else(|| {
                self.error(format!(
                    "config {} names no os/architecture",
                    manifest.config.digest
                ))
            })?,
        };
        Ok(BasePlatform {
            platform,
            descriptor,
            manifest,
            config,
        })
    }

    /// Streams a blob into the store unless it is there, verifying digest and size;
    /// a dropped connection or a transient answer restarts the download.
    async fn fetch(&self, descriptor: &Descriptor, store: &BlobStore) -> Result<()> {
        if store.contains(&descriptor.digest) {
            return Ok(());
        }
        if self.client.is_none() {
            return Err(self.error(format!(
                "offline: blob {} of {} is not in the cache {}",
                descriptor.digest,
                self.reference.whole(),
                store.root().display()
            )));
        }
        let what = format!(
            "blob {} from {}",
            descriptor.digest,
            self.reference.repository()
        );
        let (found, size) = retrying_when(
            || self.download(descriptor, store),
            |e: &Download| match e {
                Download::Registry(e) => is_transient(e),
                Download::Stream(_) => true,
                Download::Store(_) => false,
            },
        )
        .await
        .map_err(|e| match e {
            Download::Registry(e) => self.error(format!("fetching {what}: {}", describe(&e))),
            Download::Stream(e) => self.error(format!("fetching {what}: {}", describe(&e))),
            Download::Store(e) => e,
        })?;
        if found != descriptor.digest || size != descriptor.size {
            return Err(self.error(format!(
                "{what} does not match its descriptor: content hashes to {found}, {size} bytes (expected {} bytes)",
                descriptor.size
            )));
        }
        Ok(())
    }

    /// One download attempt into a fresh temporary blob.
    async fn download(
        &self,
        descriptor: &Descriptor,
        store: &BlobStore,
    ) -> std::result::Result<(Digest, u64), Download> {
        let client = self
            .client
            .expect("offline fetches return before downloading");
        let mut sized = client
            .pull_blob_stream(self.reference, descriptor.digest.as_str())
            .await
            .map_err(Download::Registry)?;
        let mut writer = store.writer().map_err(|e| Download::Store(e.into()))?;
        while let Some(chunk) = sized.stream.next().await {
            writer
                .write_all(&chunk.map_err(Download::Stream)?)
                .map_err(|source| {
                    Download::Store(Error::Io {
                        path: store.root().to_path_buf(),
                        source,
                    })
                })?;
        }
        writer.commit().map_err(|e| Download::Store(e.into()))
    }
}

/// Fetches a registry base's blobs into the cache when a push finds that the target
/// neither has them nor can mount them.
pub struct BlobFetcher {
    client: Client,
    reference: Reference,
    store: BlobStore,
}

impl BlobFetcher {
    /// A fetcher from `reference`'s repository into the cache at `cache`.
    pub async fn new(
        reference: &Reference,
        cache: &std::path::Path,
        options: &RegistryOptions,
    ) -> Result<BlobFetcher> {
        Ok(BlobFetcher {
            client: client_for(reference, options).await?,
            reference: reference.clone(),
            store: BlobStore::open(cache)?,
        })
    }

    /// Streams the blob into the cache (verified against digest and size) unless it is
    /// there already.
    pub async fn fetch(&self, digest: &Digest, size: u64) -> Result<()> {
        let remote = Remote {
            client: Some(&self.client),
            reference: &self.reference,
            registry: self.reference.resolve_registry().to_string(),
            store: &self.store,
            fetch_layers: true,
        };
        let descriptor = Descriptor::new(media::OCI_LAYER_GZIP, digest.clone(), size);
        remote.fetch(&descriptor, &self.store).await
    }
}

/// How a download attempt failed.
enum Download {
    /// The registry answered with an error (or the request failed).
    Registry(OciDistributionError),
    /// The body stream broke off.
    Stream(std::io::Error),
    /// Writing to the local store failed: not worth retrying.
    Store(Error),
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
    crate::publish::write_atomically(&path, format!("{digest}\n").as_bytes())
}

fn cached_tag(store: &BlobStore, reference: &Reference) -> Option<String> {
    let text = std::fs::read_to_string(tag_record(store, reference)?).ok()?;
    let digest: Digest = text.trim().parse().ok()?;
    Some(digest.to_string())
}
