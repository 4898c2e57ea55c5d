//! Blob uploads of a [`Repository`] handle, one straight line per blob as
//! go-containerregistry's `uploadOne` (the caller has HEADed and tried a mount):
//! `POST …/uploads/` for a session (or the one a declined mount opened) and one
//! streamed `PUT` with `Content-Length` and `?digest=` (the registry checks the
//! digest). Distribution answers a monolithic `POST ?digest=` with a session and
//! drops its body, so that shape is not used. A registry that caps a request's size
//! (GHCR, or any that answers a whole blob with 413) gets `PATCH`es of 4 MiB (or its
//! `OCI-Chunk-Min-Length`, if larger) and a closing `PUT`. Each retry of an upload
//! opens a new session and reads the file again.
//!
//! Every `Location` the registry answers with is judged like any URL by
//! [`Registry::may_authorize`](super::transport): one on another origin gets the
//! upload without credentials (as docker and crane do), one that leaves HTTPS for
//! plain HTTP is refused. Bodies go out metered, at the minimum rate of
//! [`super::pace`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hoist_layers::Digest;
use reqwest::{StatusCode, header};
use tokio::io::AsyncReadExt as _;
use tokio_util::io::ReaderStream;

use futures_util::TryStreamExt as _;

use super::pace::{Meter, Sending, metered_bytes};
use super::progress::BlobProgress;
use super::transport::{Answered, Failure, Repository};
use crate::error::{Error, Result};

/// What a blob's bytes are read from.
pub enum BlobBody<'a> {
    /// In memory (configs).
    Bytes(&'a [u8]),
    /// A file, streamed from this handle (the one verified; each attempt reads it
    /// from its start), named by `path` in errors.
    File {
        /// The open, verified file.
        file: std::fs::File,
        /// Where it is, for messages.
        path: &'a Path,
    },
}

/// An open upload session: one `POST …/uploads/` opened, or a mount the registry
/// declined with `202 Accepted` (the OCI distribution spec lets the client go on
/// uploading there, which spares a second `POST`).
pub struct UploadSession {
    /// Where the next request of the upload goes.
    url: reqwest::Url,
    /// `OCI-Chunk-Min-Length`: the smallest chunk the registry takes (0: any).
    min_chunk: u64,
}

impl UploadSession {
    /// The session a `202 Accepted` answer to a `POST …/uploads/` opened: its
    /// `Location` and `OCI-Chunk-Min-Length`.
    pub(super) fn opened_by(
        response: &reqwest::Response,
    ) -> std::result::Result<UploadSession, Failure> {
        let min_chunk = response
            .headers()
            .get("OCI-Chunk-Min-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(UploadSession {
            url: next_location(response)?,
            min_chunk,
        })
    }
}

/// The chunk size: 4 MiB (GHCR's cap on a request body), or the registry's minimum
/// when that is larger.
fn chunk_size(min_chunk: u64) -> u64 {
    const CHUNK: u64 = 4 << 20;
    CHUNK.max(min_chunk)
}

/// The `Location` an answer names, resolved against the request's URL.
pub(super) fn next_location(
    response: &reqwest::Response,
) -> std::result::Result<reqwest::Url, Failure> {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| Failure::Transport(format!("{} without a Location", response.status())))?;
    response
        .url()
        .join(location)
        .map_err(|e| Failure::Transport(format!("bad Location `{location}`: {e}")))
}

/// A handle on `file` positioned at its start, for one more attempt at sending it.
/// (Clones share the offset; attempts are made one after another.)
fn rewound(file: &std::fs::File, path: &Path) -> std::result::Result<std::fs::File, Failure> {
    use std::io::Seek as _;
    let mut clone = file.try_clone().map_err(|e| local(path, e))?;
    clone.rewind().map_err(|e| local(path, e))?;
    Ok(clone)
}

fn local(path: &Path, source: std::io::Error) -> Failure {
    Failure::Local(Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `answered` if it has the status a successful step answers, else its failure.
async fn expect(answered: Answered, status: StatusCode) -> std::result::Result<Answered, Failure> {
    if answered.status() == status {
        Ok(answered)
    } else {
        Err(answered.failure().await)
    }
}

impl Repository {
    /// Uploads the blob: a new session, then one streamed `PUT` (or, for a registry
    /// that needs it, `PATCH`es of a bounded size and a closing `PUT`).
    /// `progress` hears every byte handed to the connection.
    /// `opened`: a session a declined mount opened, used by the first attempt (a retry
    /// opens its own).
    pub async fn upload(
        &self,
        digest: &Digest,
        size: u64,
        body: &BlobBody<'_>,
        progress: &Arc<dyn BlobProgress>,
        opened: Option<UploadSession>,
    ) -> Result<()> {
        let opened = std::sync::Mutex::new(opened);
        self.retrying(|| async {
            progress.attempt();
            let given = opened
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let session = match given {
                Some(session) => session,
                None => self.start_session().await?,
            };
            if self.registry.chunked.load(Ordering::Relaxed) {
                self.put_chunks(digest, size, body, session, progress.as_ref())
                    .await
            } else {
                self.put_whole(digest, size, body, session, Arc::clone(progress))
                    .await
            }
        })
        .await
        .inspect(|()| {
            progress.finished();
            self.registry.counts.uploaded(&self.display(), size);
        })
        .map_err(|f| {
            let subject = format!("{}@{digest}", self.display());
            self.error(subject, format!("uploading blob {digest}"), None, f)
        })
    }

    /// `POST …/blobs/uploads/`: the session's URL and the registry's smallest chunk.
    async fn start_session(&self) -> std::result::Result<UploadSession, Failure> {
        let start = format!("{}/blobs/uploads/", self.url);
        let answered = expect(
            self.send_simple(|| self.http().post(&start)).await?,
            StatusCode::ACCEPTED,
        )
        .await?;
        UploadSession::opened_by(&answered.response)
    }

    /// One `PUT ?digest=` with the whole blob, streamed.
    async fn put_whole(
        &self,
        digest: &Digest,
        size: u64,
        body: &BlobBody<'_>,
        session: UploadSession,
        progress: Arc<dyn BlobProgress>,
    ) -> std::result::Result<(), Failure> {
        let mut url = session.url;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let request = || -> std::result::Result<_, Failure> {
            let put = self
                .http()
                .put(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size);
            let meter = Meter::default();
            let put = match body {
                BlobBody::Bytes(bytes) => {
                    put.body(metered_bytes(bytes::Bytes::copy_from_slice(bytes), &meter))
                }
                BlobBody::File { file, path } => {
                    let file = rewound(file, path)?;
                    let progress = Arc::clone(&progress);
                    let counted = Arc::clone(&meter);
                    let stream =
                        ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20)
                            .inspect_ok(move |chunk| {
                                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                                progress.sent(chunk.len() as u64);
                            });
                    put.body(reqwest::Body::wrap_stream(stream))
                }
            };
            Ok((
                put,
                Some(Sending {
                    meter,
                    length: size,
                }),
            ))
        };
        let answered = self.send_streaming(request).await?;
        match answered.status() {
            StatusCode::CREATED => Ok(()),
            // The registry will not take the blob in one request: from now on it gets
            // chunks (a fresh session; the retry comes at once).
            StatusCode::PAYLOAD_TOO_LARGE => {
                self.registry.chunked.store(true, Ordering::Relaxed);
                Err(Failure::SwitchToChunks)
            }
            _ => Err(answered.failure().await),
        }
    }

    /// `PATCH`es of [`chunk_size`] bytes with `Content-Range`, each to the location the
    /// previous answer gave, then `PUT ?digest=` with no body.
    async fn put_chunks(
        &self,
        digest: &Digest,
        size: u64,
        body: &BlobBody<'_>,
        session: UploadSession,
        progress: &dyn BlobProgress,
    ) -> std::result::Result<(), Failure> {
        let chunk = chunk_size(session.min_chunk);
        let mut url = session.url;
        let mut file = match body {
            BlobBody::File { file, path } => {
                Some((tokio::fs::File::from_std(rewound(file, path)?), *path))
            }
            BlobBody::Bytes(_) => None,
        };
        let mut offset = 0u64;
        while offset < size {
            let length = chunk.min(size - offset);
            let bytes = match (&mut file, body) {
                (Some((file, path)), _) => {
                    let mut buffer = vec![0u8; usize::try_from(length).unwrap_or(usize::MAX)];
                    file.read_exact(&mut buffer)
                        .await
                        .map_err(|e| local(path, e))?;
                    buffer
                }
                (None, BlobBody::Bytes(bytes)) => bytes
                    [usize::try_from(offset).unwrap_or(usize::MAX)..]
                    [..usize::try_from(length).unwrap_or(usize::MAX)]
                    .to_vec(),
                (None, BlobBody::File { .. }) => unreachable!("a file body has its file"),
            };
            let range = format!("{offset}-{}", offset + length - 1);
            let bytes = bytes::Bytes::from(bytes);
            let answered = self
                .send_streaming(|| {
                    let meter = Meter::default();
                    let patch = self
                        .http()
                        .patch(url.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, range.as_str())
                        .header(header::CONTENT_LENGTH, length)
                        .body(metered_bytes(bytes.clone(), &meter));
                    Ok((patch, Some(Sending { meter, length })))
                })
                .await?;
            let answered = expect(answered, StatusCode::ACCEPTED).await?;
            url = next_location(&answered.response)?;
            offset += length;
            progress.sent(length);
        }
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let answered = self
            .send_simple(|| {
                self.http()
                    .put(url.clone())
                    .header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        expect(answered, StatusCode::CREATED).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_4_mib_unless_the_registry_wants_more() {
        assert_eq!(chunk_size(0), 4 << 20);
        assert_eq!(chunk_size(1 << 20), 4 << 20);
        assert_eq!(chunk_size(10 << 20), 10 << 20);
    }
}
