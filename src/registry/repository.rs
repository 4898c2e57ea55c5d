//! The requests of a [`Repository`] handle other than uploads: blob `HEAD`s, mounts
//! and downloads, manifest `HEAD`s, `GET`s and `PUT`s, and the tag list. Each goes
//! through the transport's credentials and retry policy (`transport.rs`).

use std::io::Write as _;

use hoist_layers::{BlobStore, Digest};
use oci_spec::distribution::{ErrorCode, TagList};
use reqwest::{StatusCode, header};

use super::answer::Lookup;
use super::pace::Transfer;
use super::scheduler::Listing;
use super::transport::{Answered, Failure, Repository, without_query};
use super::upload::UploadSession;
use crate::error::{Error, Result};
use crate::oci::media;
use crate::oci::model::Descriptor;

/// Manifest types we read, in the Accept header (without it, distribution 2 answers
/// Docker manifests converted to schema 1, under another digest).
const ACCEPTED: &[&str] = &[
    media::OCI_INDEX,
    media::DOCKER_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
];
/// The largest manifest read (`oci::limits`): a registry cannot make us hold more.
const MANIFEST_LIMIT: usize = crate::oci::limits::MANIFEST_LIMIT as usize;
/// Redirects followed for a blob download (registries send them to storage).
const REDIRECTS: usize = 5;
/// Tag list pages followed (`Link: <…>; rel="next"`).
const TAG_PAGES: usize = 1000;
/// The tags one census asks for (`?n=`): a repository with more has no census, and
/// its tags are looked up one by one.
const CENSUS_TAGS: usize = 1000;

/// What a mount request achieved.
pub enum Mount {
    /// The blob is in the repository now.
    Mounted,
    /// The registry declined (or could not: no access to the source); upload it,
    /// into the session its `202` opened when it named one.
    Declined(Option<UploadSession>),
}

impl Repository {
    /// `REGISTRY/REPO:TAG` or `REGISTRY/REPO@DIGEST` for a manifest reference.
    fn manifest_subject(&self, reference: &str) -> String {
        let separator = if is_digest(reference) { '@' } else { ':' };
        format!("{}{separator}{reference}", self.display())
    }

    fn blob_subject(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.display())
    }

    /// The error of a blob download that failed.
    fn fetch_error(&self, digest: &Digest, failure: Failure) -> Error {
        let subject = self.blob_subject(digest);
        self.error(
            subject,
            format!("fetching blob {digest}"),
            Some(Lookup::Blob),
            failure,
        )
    }

    /// Whether the repository holds the blob (`HEAD`).
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = format!("{}/blobs/{digest}", self.url);
        self.retrying(|| async {
            let answered = self.send_simple(|| self.http().head(&url)).await?;
            match answered.status() {
                StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(answered.failure().await),
            }
        })
        .await
        .map_err(|f| {
            let subject = self.blob_subject(digest);
            self.error(subject, format!("HEAD of blob {digest}"), None, f)
        })
    }

    /// Asks the registry to mount the blob from another repository of its own.
    pub async fn mount(&self, digest: &Digest, from: &str) -> Mount {
        let url = format!("{}/blobs/uploads/", self.url);
        let query = [("mount", digest.as_str()), ("from", from)];
        let outcome = self
            .retrying(|| async {
                let answered = self
                    .send_simple(|| self.http().post(&url).query(&query))
                    .await?;
                match answered.status() {
                    StatusCode::CREATED => Ok(Mount::Mounted),
                    // 202: it opened an upload session instead (no access to the
                    // source, or mounting disabled): the upload may go there (OCI
                    // distribution spec); without a usable Location it opens its own.
                    StatusCode::ACCEPTED => Ok(Mount::Declined(
                        UploadSession::opened_by(&answered.response).ok(),
                    )),
                    status if status.is_success() => Ok(Mount::Declined(None)),
                    _ => Err(answered.failure().await),
                }
            })
            .await;
        outcome.unwrap_or(Mount::Declined(None))
    }

    /// The digest the registry holds under a manifest reference (tag or digest), from
    /// `HEAD`'s `Docker-Content-Digest`; `None` when it holds nothing there (or does
    /// not say: then the caller cannot tell, and acts as if absent). Asked once per
    /// reference per command ([`super::scheduler::TagMemo`]): later calls, and calls
    /// after this command put or read the reference, are answered from memory.
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        self.lookup_manifest(reference, false).await
    }

    /// [`Self::manifest_digest`] of a tag that moves (a rolling tag, `latest`, a
    /// referrers tag): absent without a `HEAD` when the repository's census lists its
    /// tags without it ([`Self::take_tag_census`]). A pinned tag is always asked: a
    /// census wrong about it could let a published version tag move.
    pub async fn moving_tag_digest(&self, tag: &str) -> Result<Option<Digest>> {
        self.lookup_manifest(tag, true).await
    }

    async fn lookup_manifest(&self, reference: &str, census: bool) -> Result<Option<Digest>> {
        if self.registry.documents.get(&self.name, reference).is_some() {
            // Read by digest this command: the registry holds it.
            return Ok(reference.parse().ok());
        }
        let slot = self.registry.tags.slot(&self.name, reference);
        let mut known = slot.lock().await;
        if let Some(answer) = known.as_ref() {
            return Ok(answer.clone());
        }
        // Not recorded: a strict lookup of the same tag still asks.
        if census && self.registry.census.absent(&self.name, reference) {
            return Ok(None);
        }
        let answer = self.head_manifest(reference).await?;
        *known = Some(answer.clone());
        Ok(answer)
    }

    /// Whether the registry said, at this command's census, that it did not know the
    /// repository ([`Self::take_tag_census`]): a first push, where a manifest or blob
    /// this command did not put there is not there, and a `HEAD` would only say so.
    /// (Distribution answers so too for a repository holding only untagged images:
    /// then at worst something goes up again, which the registry takes as the same.)
    pub fn was_unknown(&self) -> bool {
        self.registry.census.no_repository(&self.name)
    }

    /// Whether this command knows, without asking, that `tag` names nothing: its
    /// lookup found nothing, or (never looked up nor put) the repository's census
    /// does not list it.
    pub(super) async fn known_absent(&self, tag: &str) -> bool {
        match self
            .registry
            .tags
            .slot(&self.name, tag)
            .lock()
            .await
            .as_ref()
        {
            Some(answer) => answer.is_none(),
            None => self.registry.census.absent(&self.name, tag),
        }
    }

    /// What `tag` names now, asked of the registry even when this command knows an
    /// answer: a second look for a competitor's put (the memo takes the answer).
    pub async fn reread_tag(&self, tag: &str) -> Result<Option<Digest>> {
        let answer = self.head_manifest(tag).await?;
        self.registry
            .tags
            .record(&self.name, tag, answer.clone())
            .await;
        Ok(answer)
    }

    /// `HEAD …/manifests/REFERENCE`: the digest in `Docker-Content-Digest`.
    async fn head_manifest(&self, reference: &str) -> Result<Option<Digest>> {
        let url = format!("{}/manifests/{reference}", self.url);
        let accept = ACCEPTED.join(", ");
        self.retrying(|| async {
            let answered = self
                .send_simple(|| self.http().head(&url).header(header::ACCEPT, &accept))
                .await?;
            match answered.status() {
                StatusCode::OK => Ok(answered
                    .response
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(answered.failure().await),
            }
        })
        .await
        .map_err(|f| {
            let subject = self.manifest_subject(reference);
            self.error(
                subject,
                format!("HEAD of manifest {reference}"),
                Some(Lookup::Manifest),
                f,
            )
        })
    }

    /// A manifest or index's bytes as the registry holds them under `reference` (a
    /// tag or digest); the caller checks them against their digest. A tag whose
    /// digest this command knows, with that document read before, is answered from
    /// memory; a tag read records what it names.
    pub async fn manifest(&self, reference: &str) -> Result<Vec<u8>> {
        let named = match self
            .registry
            .tags
            .slot(&self.name, reference)
            .lock()
            .await
            .as_ref()
        {
            Some(Some(digest)) => digest.to_string(),
            _ => reference.to_string(),
        };
        if let Some(bytes) = self.registry.documents.get(&self.name, &named) {
            return Ok(bytes.as_ref().clone());
        }
        let bytes = self.fetch_manifest_bytes(reference).await?;
        let digest = Digest::sha256_of(&bytes);
        self.registry
            .documents
            .keep(&self.name, digest.as_str(), &bytes);
        if !is_digest(reference) {
            self.registry
                .tags
                .record(&self.name, reference, Some(digest))
                .await;
        }
        Ok(bytes)
    }

    async fn fetch_manifest_bytes(&self, reference: &str) -> Result<Vec<u8>> {
        let url = format!("{}/manifests/{reference}", self.url);
        let accept = ACCEPTED.join(", ");
        self.retrying(|| async {
            let answered = self
                .send_simple(|| self.http().get(&url).header(header::ACCEPT, &accept))
                .await?;
            if answered.status() != StatusCode::OK {
                return Err(answered.failure().await);
            }
            answered.document(MANIFEST_LIMIT).await?.ok_or_else(|| {
                Failure::Transport(format!(
                    "the answer broke off, or is larger than a manifest may be ({} MiB)",
                    MANIFEST_LIMIT >> 20
                ))
            })
        })
        .await
        .map_err(|f| {
            let subject = self.manifest_subject(reference);
            self.error(
                subject,
                format!("fetching manifest {reference}"),
                Some(Lookup::Manifest),
                f,
            )
        })
    }

    /// `PUT …/manifests/REFERENCE` (a digest or a tag) of a manifest or index's exact
    /// bytes.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        self.put_manifest_timed(reference, media_type, bytes)
            .await
            .map(drop)
    }

    /// [`Self::put_manifest`], answering how long the registry took to answer the
    /// `PUT` that went in: from its sending (once it had its place among the requests
    /// in flight, so time spent waiting for one is not counted) to its answer.
    pub async fn put_manifest_timed(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<std::time::Duration> {
        let url = format!("{}/manifests/{reference}", self.url);
        let took = self
            .retrying(|| async {
                let answered = self
                    .send_simple(|| {
                        self.http()
                            .put(&url)
                            .header(header::CONTENT_TYPE, media_type)
                            .body(bytes.to_vec())
                    })
                    .await?;
                if answered.status() == StatusCode::CREATED {
                    Ok(answered.started.elapsed())
                } else {
                    Err(answered.failure().await)
                }
            })
            .await
            .map_err(|f| {
                let subject = self.manifest_subject(reference);
                self.error(subject, format!("putting manifest {reference}"), None, f)
            })?;
        // What we put is what the reference names now, and a document we hold.
        let digest = Digest::sha256_of(bytes);
        self.registry
            .documents
            .keep(&self.name, digest.as_str(), bytes);
        self.registry
            .tags
            .record(&self.name, reference, Some(digest))
            .await;
        Ok(took)
    }

    /// [`Self::put_manifest`] unless the registry already holds `digest` under
    /// `reference` (`HEAD` first): an unchanged re-push PUTs nothing. Answers whether
    /// it PUT. In a repository the registry did not know at this command's census,
    /// a digest is not asked about: it cannot be there but by this command's put.
    pub async fn put_manifest_unless_there(
        &self,
        reference: &str,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool> {
        let new = is_digest(reference) && self.was_unknown();
        if !new && self.manifest_digest(reference).await?.as_ref() == Some(digest) {
            return Ok(false);
        }
        self.put_manifest(reference, media_type, bytes).await?;
        Ok(true)
    }

    /// Streams a blob into `store`, hashed while written, and refuses it unless it is
    /// the descriptor's digest and size. A dropped connection or a transient answer
    /// starts the download over.
    pub async fn fetch_blob(&self, descriptor: &Descriptor, store: &BlobStore) -> Result<()> {
        let digest = &descriptor.digest;
        let (found, size) = self
            .retrying(|| self.download(descriptor, store))
            .await
            .map_err(|f| self.fetch_error(digest, f))?;
        if &found != digest || size != descriptor.size {
            return Err(Error::Registry {
                registry: self.registry.name.clone(),
                message: format!(
                    "blob {digest} from {} does not match its digest: content hashes to {found}, {size} bytes (expected {} bytes)",
                    self.name, descriptor.size
                ),
            });
        }
        Ok(())
    }

    /// A small blob's bytes (a config), verified against `digest`.
    pub async fn blob_bytes(&self, digest: &Digest, limit: usize) -> Result<Vec<u8>> {
        if let Some(bytes) = self.registry.documents.get(&self.name, digest.as_str())
            && bytes.len() <= limit
        {
            return Ok(bytes.as_ref().clone());
        }
        let url = format!("{}/blobs/{digest}", self.url);
        let bytes = self
            .retrying(|| async {
                let answered = self.get_following_redirects(&url).await?;
                if answered.status() != StatusCode::OK {
                    return Err(answered.failure().await);
                }
                answered.document(limit).await?.ok_or_else(|| {
                    Failure::Transport(format!("the answer broke off or is over {limit} bytes"))
                })
            })
            .await
            .map_err(|f| self.fetch_error(digest, f))?;
        let found = Digest::sha256_of(&bytes);
        if &found != digest {
            return Err(Error::Registry {
                registry: self.registry.name.clone(),
                message: format!(
                    "blob {digest} from {} does not match its digest: content hashes to {found}",
                    self.name
                ),
            });
        }
        self.registry
            .documents
            .keep(&self.name, digest.as_str(), &bytes);
        Ok(bytes)
    }

    /// One download attempt into a fresh temporary blob; never more bytes than the
    /// descriptor says.
    async fn download(
        &self,
        descriptor: &Descriptor,
        store: &BlobStore,
    ) -> std::result::Result<(Digest, u64), Failure> {
        let url = format!("{}/blobs/{}", self.url, descriptor.digest);
        let answered = self.get_following_redirects(&url).await?;
        if answered.status() != StatusCode::OK {
            return Err(answered.failure().await);
        }
        let store_error = |e: hoist_layers::Error| Failure::Local(e.into());
        let mut writer = store.writer().map_err(store_error)?;
        let mut written = 0u64;
        let mut body = Transfer::new(answered.response);
        while let Some(chunk) = body.next().await? {
            written += chunk.len() as u64;
            if written > descriptor.size {
                return Err(Failure::Local(Error::Registry {
                    registry: self.registry.name.clone(),
                    message: format!(
                        "blob {} from {} does not match its digest: the registry sends more than its {} bytes",
                        descriptor.digest, self.name, descriptor.size
                    ),
                }));
            }
            writer.write_all(&chunk).map_err(|source| {
                Failure::Local(Error::Io {
                    path: store.root().to_path_buf(),
                    source,
                })
            })?;
        }
        writer.commit().map_err(store_error)
    }

    /// `GET url`, following the redirects registries send blob downloads to storage
    /// elsewhere (S3, a CDN) with. Each hop is judged against the registry's own
    /// origin, not the hop before ([`Self::send`]): credentials go to the registry
    /// only, never to a storage host (its URL is pre-signed) nor wherever that
    /// redirects to, and a hop from HTTPS to plain HTTP is refused.
    async fn get_following_redirects(&self, url: &str) -> std::result::Result<Answered, Failure> {
        let mut answered = self.send_simple(|| self.http().get(url)).await?;
        for _ in 0..REDIRECTS {
            if !answered.status().is_redirection() {
                return Ok(answered);
            }
            let next = super::upload::next_location(&answered.response)?;
            // Its permit back before the next hop asks for one.
            drop(answered);
            answered = self.send_simple(|| self.http().get(next.clone())).await?;
        }
        Err(Failure::Transport(format!(
            "more than {REDIRECTS} redirects (the last to {})",
            without_query(answered.response.url())
        )))
    }

    /// Every tag of the repository (none when nobody pushed to it yet), following
    /// `Link` pages when the registry splits the list.
    pub async fn tags(&self) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut url = reqwest::Url::parse(&format!("{}/tags/list", self.url)).map_err(|e| {
            Error::Registry {
                registry: self.registry.name.clone(),
                message: format!("{}: {e}", self.display()),
            }
        })?;
        for _ in 0..TAG_PAGES {
            let page = self.retrying(|| self.tag_page(&url)).await.map_err(|f| {
                self.error(
                    self.display(),
                    "listing the tags".into(),
                    Some(Lookup::Tags),
                    f,
                )
            })?;
            let Some((list, next)) = page else {
                return Ok(tags);
            };
            tags.extend(list);
            match next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }

    /// Lists the repository's tags once this command, as one page of at most
    /// 1000 (`CENSUS_TAGS`), so that later lookups of tags it does not hold ask nothing
    /// more ([`super::scheduler::TagCensus`]). The list counts only when it is
    /// provably whole: under `n`, a registry answers fewer than `n` tags only when
    /// there are no more or with a `Link` to the next page (distribution-spec,
    /// "Listing Tags"); a repository it does not know (404 `NAME_UNKNOWN`) holds
    /// nothing at all.
    /// One request, not retried; any failure leaves the tags to their own lookups.
    pub async fn take_tag_census(&self) {
        let census = &self.registry.census;
        if census.refused() {
            return;
        }
        let cell = census.cell(&self.name);
        cell.get_or_init(|| async {
            let url = format!("{}/tags/list?n={CENSUS_TAGS}", self.url);
            let answered = self.send_simple(|| self.http().get(&url)).await.ok()?;
            match answered.status() {
                StatusCode::OK => match tag_list(answered).await {
                    Ok((tags, None)) if tags.len() < CENSUS_TAGS => {
                        Some(Listing::Tags(tags.into_iter().collect()))
                    }
                    _ => None,
                },
                StatusCode::NOT_FOUND => match answered.failure().await {
                    Failure::Status { errors, .. }
                        if errors
                            .iter()
                            .any(|e| e.code == Some(ErrorCode::NameUnknown)) =>
                    {
                        Some(Listing::NoRepository)
                    }
                    _ => None,
                },
                status => {
                    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                        census.refuse();
                    }
                    answered.drain().await;
                    None
                }
            }
        })
        .await;
    }

    /// One page of the tag list and the next page's URL; `None` for a repository the
    /// registry does not know (404, `NAME_UNKNOWN`).
    async fn tag_page(
        &self,
        url: &reqwest::Url,
    ) -> std::result::Result<Option<(Vec<String>, Option<reqwest::Url>)>, Failure> {
        let answered = self.send_simple(|| self.http().get(url.clone())).await?;
        match answered.status() {
            StatusCode::OK => tag_list(answered).await.map(Some),
            StatusCode::NOT_FOUND => {
                answered.drain().await;
                Ok(None)
            }
            _ => Err(answered.failure().await),
        }
    }
}

/// The tags of a `200` answer to a tag list request, and the next page's URL.
async fn tag_list(
    answered: Answered,
) -> std::result::Result<(Vec<String>, Option<reqwest::Url>), Failure> {
    let next = answered
        .response
        .headers()
        .get(header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(next_page)
        .and_then(|link| answered.response.url().join(&link).ok());
    let body = answered
        .document(MANIFEST_LIMIT)
        .await?
        .ok_or_else(|| Failure::Transport("the tag list broke off or is too large".into()))?;
    let tags = match serde_json::from_slice::<TagList>(&body) {
        Ok(list) => list.tags().clone(),
        // distribution answers `"tags": null` for a repository whose tags were all
        // deleted.
        Err(_)
            if serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|v| v.get("tags").is_some_and(serde_json::Value::is_null)) =>
        {
            Vec::new()
        }
        Err(e) => {
            return Err(Failure::Transport(format!(
                "the tag list is malformed: {e}"
            )));
        }
    };
    Ok((tags, next))
}

/// Whether a manifest reference is a digest (`sha256:…`) rather than a tag (tags
/// have no colon).
fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// The target of a `Link: <URL>; rel="next"` header.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_page(r#"</v2/acme/app/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/acme/app/tags/list?last=b&n=2")
        );
        assert_eq!(next_page(r#"</x>; rel="prev""#), None);
    }
}
