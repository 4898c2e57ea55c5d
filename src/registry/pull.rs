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
use super::manifest::fetch_manifest;
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
    let client = client_for(reference, options).await?;
    let remote = Remote {
        client: &client,
        reference,
        registry: reference.resolve_registry().to_string(),
        store,
    };
    let (top, bytes) = remote.manifest(reference, reference.digest()).await?;
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
    client: &'a Client,
    reference: &'a Reference,
    registry: String,
    store: &'a BlobStore,
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
        let (descriptor, bytes) = fetch_manifest(self.client, reference, expected).await?;
        self.store.put(&bytes)?;
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
        let mut sized = self
            .client
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

/// How a download attempt failed.
enum Download {
    /// The registry answered with an error (or the request failed).
    Registry(OciDistributionError),
    /// The body stream broke off.
    Stream(std::io::Error),
    /// Writing to the local store failed: not worth retrying.
    Store(Error),
}
