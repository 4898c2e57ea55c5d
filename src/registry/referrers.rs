//! Referrers in a registry (distribution-spec 1.1): attaching an artifact to a
//! manifest and listing what refers to one, through the one transport.
//!
//! Attaching uploads the artifact's blobs (the empty config and the document), then
//! `PUT`s its manifest by digest. A registry with the referrers API answers that `PUT`
//! with an `OCI-Subject` header and indexes the artifact itself; for one without
//! (CNCF distribution 2.8 and 3.x) the client keeps the **referrers tag schema**: the
//! tag `sha256-<hex>` of the subject holds an image index listing every referrer,
//! read (404: none yet; not asked when the repository's tag census shows it absent),
//! extended without duplicates and put back. Listing asks
//! `GET /v2/<name>/referrers/<digest>` and falls back to that tag on a 404.
//!
//! The tag update is a read-modify-write: two clients attaching to one subject at
//! the same moment can lose one entry (the spec has no compare-and-swap either).

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use reqwest::{StatusCode, header};

use super::transport::{Failure, Repository, Transport};
use crate::error::{Error, Result};
use crate::oci::artifact::{
    Artifact, ArtifactManifest, EMPTY_BYTES, Referrer, add_referrer, empty_config,
    empty_referrers_index, filter_referrers, referrers_tag,
};
use crate::oci::image::Image;
use crate::oci::media;
use crate::oci::model::{Descriptor, Index};

/// Asked for under a referrers tag: whatever is there is answered as it is, so a
/// tag holding something other than an index is seen as such.
const ACCEPTED: &[&str] = &[
    media::OCI_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_INDEX,
    media::DOCKER_MANIFEST,
];
/// The largest referrers index or artifact document read (`oci::limits`).
const DOCUMENT_LIMIT: usize = crate::oci::limits::DOCUMENT_LIMIT as usize;

/// How a referrer was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The registry indexes referrers itself (it answered with `OCI-Subject`).
    ByRegistry,
    /// Added to the `sha256-<hex>` tag's index.
    InTag,
    /// The tag's index listed it already: nothing was put.
    AlreadyListed,
}

/// Attaches `artifact` to `subject` in `repository`; answers the artifact manifest's
/// descriptor (as a referrers index lists it).
pub async fn attach(
    repository: &Repository,
    subject: &Descriptor,
    artifact: &Artifact,
    transport: &Transport,
) -> Result<Descriptor> {
    let referrer = artifact.manifest(subject);
    attach_referrer(repository, &referrer, transport).await?;
    Ok(referrer.descriptor)
}

/// Attaches an artifact already made into a manifest: blobs (through the command's
/// ledger, as a push puts an image's: [`super::push::put_artifact_blob`]), manifest,
/// and (for a registry without the referrers API) the fallback tag.
pub async fn attach_referrer(
    repository: &Repository,
    referrer: &Referrer,
    transport: &Transport,
) -> Result<Recorded> {
    for (digest, bytes) in referrer_blobs(referrer) {
        super::push::put_artifact_blob(repository, &digest, bytes, transport).await?;
    }
    attach_referrer_manifest(repository, referrer).await
}

/// The blobs a referrer's manifest names: the empty config and its document.
pub fn referrer_blobs(referrer: &Referrer) -> [(Digest, &[u8]); 2] {
    [
        (empty_config().digest, EMPTY_BYTES),
        (referrer.layer.digest.clone(), referrer.document.as_slice()),
    ]
}

/// [`attach_referrer`] once its blobs are there (a push put them up through its
/// ledger, with the image's own blobs): its manifest, and its subject's index. The
/// manifest is `PUT` without a `HEAD` first: putting the same bytes again changes
/// nothing, costs the round trip a `HEAD` would, and its answer says (`OCI-Subject`)
/// whether the registry indexes referrers itself.
pub async fn attach_referrer_manifest(
    repository: &Repository,
    referrer: &Referrer,
) -> Result<Recorded> {
    let digest = &referrer.descriptor.digest;
    if repository
        .put_manifest_with_subject(digest.as_str(), &referrer.manifest)
        .await?
    {
        return Ok(Recorded::ByRegistry);
    }
    update_tag(repository, &referrer.subject.digest, &referrer.descriptor).await
}

/// Adds `entry` to the subject's `sha256-<hex>` index unless it is listed there.
async fn update_tag(
    repository: &Repository,
    subject: &Digest,
    entry: &Descriptor,
) -> Result<Recorded> {
    let tag = referrers_tag(subject);
    // A first attach to a new subject finds no tag: the census said so already.
    let existing = if repository.known_absent(&tag).await {
        None
    } else {
        repository.tag_index(&tag).await?
    };
    let mut index = existing.unwrap_or_else(empty_referrers_index);
    if !add_referrer(&mut index, entry) {
        return Ok(Recorded::AlreadyListed);
    }
    let blob = crate::oci::canonical::to_canonical(&index).map_err(|e| Error::Registry {
        registry: repository.display(),
        message: format!("cannot serialise the referrers index {tag}: {e}"),
    })?;
    repository
        .put_manifest(&tag, media::OCI_INDEX, &blob.bytes)
        .await?;
    Ok(Recorded::InTag)
}

/// The referrers of `subject` in `repository` whose artifact type is `artifact_type`
/// (all when `None`): from the referrers API, else from the `sha256-<hex>` tag.
pub async fn list(
    repository: &Repository,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    let index = match repository.referrers_api(subject).await? {
        Some(index) => Some(index),
        None => repository.tag_index(&referrers_tag(subject)).await?,
    };
    Ok(filter_referrers(
        index.map(|i| i.manifests).unwrap_or_default(),
        artifact_type,
    ))
}

/// A referrer's manifest and its document (the first layer), both verified.
pub async fn fetch(
    repository: &Repository,
    descriptor: &Descriptor,
) -> Result<(ArtifactManifest, Vec<u8>)> {
    let bytes = repository.manifest(descriptor.digest.as_str()).await?;
    let fail = |message: String| Error::Registry {
        registry: repository.display(),
        message,
    };
    if Digest::sha256_of(&bytes) != descriptor.digest {
        return Err(fail(format!(
            "artifact manifest {} does not match its digest",
            descriptor.digest
        )));
    }
    let manifest: ArtifactManifest = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("artifact manifest {}: {e}", descriptor.digest)))?;
    let layer = manifest.layers.first().ok_or_else(|| {
        fail(format!(
            "artifact manifest {} has no layer",
            descriptor.digest
        ))
    })?;
    if layer.size > DOCUMENT_LIMIT as u64 {
        return Err(fail(format!(
            "artifact {} is {} bytes, over the {} MiB read",
            layer.digest,
            layer.size,
            DOCUMENT_LIMIT >> 20
        )));
    }
    let document = repository.blob_bytes(&layer.digest, DOCUMENT_LIMIT).await?;
    Ok((manifest, document))
}

/// Pushes every referrer of `image` to `target`'s repository (after the image: a
/// subject must exist before what refers to it). Answers how many were recorded anew.
pub async fn push_referrers(
    image: &Image,
    target: &Reference,
    transport: &Transport,
) -> Result<u64> {
    if image.referrers.is_empty() {
        return Ok(0);
    }
    let repository = super::push::artifact_repository(target, transport).await?;
    let mut recorded = 0;
    for referrer in &image.referrers {
        if attach_referrer(&repository, referrer, transport).await? != Recorded::AlreadyListed {
            recorded += 1;
        }
    }
    Ok(recorded)
}

impl Repository {
    /// `PUT`s a manifest by digest; answers whether the registry said `OCI-Subject`
    /// (it indexes the referrer itself).
    async fn put_manifest_with_subject(&self, reference: &str, bytes: &[u8]) -> Result<bool> {
        let url = format!("{}/manifests/{reference}", self.url);
        self.retrying(|| async {
            let answered = self
                .send_simple(|| {
                    self.http()
                        .put(&url)
                        .header(header::CONTENT_TYPE, media::OCI_MANIFEST)
                        .body(bytes.to_vec())
                })
                .await?;
            if answered.status() == StatusCode::CREATED {
                Ok(answered.response.headers().contains_key("OCI-Subject"))
            } else {
                Err(answered.failure().await)
            }
        })
        .await
        .map_err(|f| {
            let subject = format!("{}@{reference}", self.display());
            self.error(
                subject,
                format!("putting artifact manifest {reference}"),
                None,
                f,
            )
        })
    }

    /// `GET …/referrers/<digest>`: the registry's referrers index, `None` when it has
    /// no referrers API (404: asked once per registry and command).
    async fn referrers_api(&self, subject: &Digest) -> Result<Option<Index>> {
        let url = format!("{}/referrers/{subject}", self.url);
        let what = format!("referrers of {subject}");
        let mut known = self.registry.referrers_api.lock().await;
        match *known {
            Some(false) => Ok(None),
            Some(true) => {
                drop(known);
                self.get_index(&url, &what).await
            }
            None => {
                let index = self.get_index(&url, &what).await?;
                *known = Some(index.is_some());
                Ok(index)
            }
        }
    }

    /// The index under a referrers tag, `None` when there is no such tag; anything
    /// else under it is an error naming it.
    async fn tag_index(&self, tag: &str) -> Result<Option<Index>> {
        let url = format!("{}/manifests/{tag}", self.url);
        let what = format!("referrers tag {}:{tag}", self.display());
        self.get_index(&url, &what).await
    }

    async fn get_index(&self, url: &str, what: &str) -> Result<Option<Index>> {
        let bytes = self
            .retrying(|| async {
                let answered = self
                    .send_simple(|| {
                        self.http()
                            .get(url)
                            .header(header::ACCEPT, ACCEPTED.join(", "))
                    })
                    .await?;
                match answered.status() {
                    StatusCode::OK => {}
                    StatusCode::NOT_FOUND => {
                        answered.drain().await;
                        return Ok(None);
                    }
                    _ => return Err(answered.failure().await),
                }
                let media_type = answered
                    .response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = answered.document(DOCUMENT_LIMIT).await?.ok_or_else(|| {
                    Failure::Transport("the answer broke off or is too large".into())
                })?;
                Ok(Some((media_type, body)))
            })
            .await
            .map_err(|f| self.error(what.to_string(), format!("fetching {what}"), None, f))?;
        let Some((media_type, body)) = bytes else {
            return Ok(None);
        };
        let fail = |reason: String| Error::Registry {
            registry: self.display(),
            message: format!("{what}: {reason}"),
        };
        if let Some(media_type) = media_type.filter(|t| !media::is_index(t)) {
            return Err(fail(format!("holds a {media_type}, not an image index")));
        }
        let index: Index = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("is not an image index: {e}")))?;
        if index
            .media_type
            .as_deref()
            .is_some_and(|t| !media::is_index(t))
        {
            return Err(fail(format!(
                "holds a {}, not an image index",
                index.media_type.as_deref().unwrap_or_default()
            )));
        }
        Ok(Some(index))
    }
}
