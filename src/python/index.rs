//! Wheels from a package index (PEP 503 HTML or PEP 691 JSON simple API) or from the
//! URLs a `pylock.toml` names, downloaded into hoist's wheel cache and kept there by
//! sha256: a file is only ever taken for the hash the lock gives, and bytes that do not
//! hash to it are deleted and reported with the URL.
//!
//! Every request is bounded: 10 s to connect, 30 s of silence, a whole-request
//! deadline, and a size limit (a listing 20 MiB; a wheel its locked size, else 1 GiB).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_layers::HashingWriter;

use super::PythonError;
use super::credentials::{self, Credentials};
use super::lock::is_sha256;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const LISTING_DEADLINE: Duration = Duration::from_mins(1);
const WHEEL_DEADLINE: Duration = Duration::from_mins(10);
const MAX_LISTING: u64 = 20 * 1024 * 1024;
const MAX_WHEEL: u64 = 1024 * 1024 * 1024;

/// A file an index lists: its name, where to get it, and its sha256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    /// `orjson-3.10.12-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl`.
    pub file: String,
    /// Absolute URL.
    pub url: String,
    /// sha256, lowercase hex.
    pub sha256: String,
    /// Its size, when known.
    pub size: Option<u64>,
    /// The index that listed it (its number in [`Index::new`]'s list), whose
    /// credentials its download may carry; `None` for a URL the lock names.
    pub listed_by: Option<usize>,
}

/// An HTTP client and the runtime it runs on, for one planning pass, with the indexes
/// (highest priority first; each URL without user information, and the credentials
/// for its origin).
pub struct Index {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    sources: Vec<(reqwest::Url, Option<Credentials>)>,
}

/// An error about `url`, shown without any user information it carries (a lock's URL
/// may hold some): in the URL and in the message, where an HTTP error repeats it.
fn index_error(url: &str, message: impl Into<String>) -> PythonError {
    let shown = credentials::redact(url);
    let mut message: String = message.into();
    if !url.is_empty() && shown != url {
        message = message.replace(url, &shown);
    }
    PythonError::Index {
        url: shown,
        message,
    }
}

/// An HTTP error's text and causes, without the URL (the caller names it, redacted).
fn http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

impl Index {
    /// A client with the bounds above for `indexes` (highest priority first; each one's
    /// credentials from its URL or the netrc file, [`super::credentials`]), or for the
    /// lock's URLs alone (none).
    pub fn new(indexes: &[String]) -> Result<Index, PythonError> {
        let netrc = credentials::netrc_path();
        let sources = indexes
            .iter()
            .map(|url| credentials::for_index(url, netrc.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| index_error("", format!("cannot start the I/O runtime: {e}")))?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| index_error("", format!("cannot set up HTTP: {e}")))?;
        Ok(Index {
            runtime,
            client,
            sources,
        })
    }

    /// How many indexes there are.
    pub fn count(&self) -> usize {
        self.sources.len()
    }

    /// A GET of `url`, with credentials only when `url` is on their index's origin: the
    /// index `listed_by`'s, else (a URL the lock names) the first index's on that
    /// origin that has some.
    fn get(&self, url: &str, listed_by: Option<usize>) -> reqwest::RequestBuilder {
        let request = self.client.get(url);
        let header = match listed_by {
            Some(i) => self
                .sources
                .get(i)
                .and_then(|(_, c)| c.as_ref()?.header_for(url)),
            None => self
                .sources
                .iter()
                .find_map(|(_, c)| c.as_ref()?.header_for(url)),
        };
        match header {
            Some(header) => request.header("Authorization", header),
            None => request,
        }
    }

    /// The files index number `i` lists for the project `name` (normalised); `None`
    /// when it has no such project (HTTP 404: the next index is asked, as uv does).
    pub fn list(&self, i: usize, name: &str) -> Result<Option<Vec<IndexFile>>, PythonError> {
        let index = self.sources.get(i).map_or_else(String::new, |(u, _)| {
            u.as_str().trim_end_matches('/').to_owned()
        });
        let url = format!("{index}/{name}/");
        let answer = self.runtime.block_on(async {
            let response = self
                .get(&url, Some(i))
                .header(
                    "Accept",
                    "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
                )
                .timeout(LISTING_DEADLINE)
                .send()
                .await
                .map_err(|e| index_error(&url, http_error(e)))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(index_error(&url, format!("HTTP {}", response.status())));
            }
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let mut body = Vec::new();
            read_bounded(response, MAX_LISTING, &url, |chunk| {
                body.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
            Ok(Some((body, content_type)))
        })?;
        let Some((body, content_type)) = answer else {
            return Ok(None);
        };
        let base = reqwest::Url::parse(&url).map_err(|e| index_error(&url, e.to_string()))?;
        let mut files = if content_type.contains("json") {
            parse_json_listing(&body, &base).map_err(|m| index_error(&url, m))?
        } else {
            parse_html_listing(&String::from_utf8_lossy(&body), &base)
        };
        for file in &mut files {
            file.listed_by = Some(i);
        }
        Ok(Some(files))
    }

    /// Downloads `file` into `cache` (`<cache>/<sha256>/<file name>`), checking its
    /// sha256 (and size, if known) before it is renamed into place (over a cached
    /// file of that name: the caller found none that hashes right); returns its path.
    pub fn download(&self, file: &IndexFile, cache: &Path) -> Result<PathBuf, PythonError> {
        let io = |path: &Path, source| PythonError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = cache.join(&file.sha256);
        let dest = dir.join(&file.file);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        // Named as hoist's temp files are, so a killed download's is swept by prune.
        let temp = hoist_layers::create_temp_file(&dir, 0o644)
            .map_err(|e| io(&dir, std::io::Error::other(e)))?;
        let limit = file.size.unwrap_or(MAX_WHEEL).min(MAX_WHEEL);
        let url = &file.url;
        let mut writer = HashingWriter::new(temp);
        self.runtime.block_on(async {
            let response = self
                .get(url, file.listed_by)
                .timeout(WHEEL_DEADLINE)
                .send()
                .await
                .map_err(|e| index_error(url, http_error(e)))?;
            if !response.status().is_success() {
                return Err(index_error(url, format!("HTTP {}", response.status())));
            }
            read_bounded(response, limit, url, |chunk| {
                writer
                    .write_all(chunk)
                    .map_err(|e| index_error(url, e.to_string()))
            })
            .await
        })?;
        let (temp, digest, size) = writer.finish();
        if digest.hex() != file.sha256 {
            return Err(index_error(
                url,
                format!(
                    "{} hashes to sha256 {}, not the locked {}: not used",
                    file.file,
                    digest.hex(),
                    file.sha256
                ),
            ));
        }
        if file.size.is_some_and(|s| s != size) {
            return Err(index_error(
                url,
                format!("{} is {size} bytes, not the locked size", file.file),
            ));
        }
        temp.persist(&dest).map_err(|e| io(&dest, e.error))?;
        Ok(dest)
    }
}

/// Streams a response body to `sink`, failing past `limit` bytes.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: u64,
    url: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), PythonError>,
) -> Result<(), PythonError> {
    let mut total = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| index_error(url, http_error(e)))?
    {
        total += chunk.len() as u64;
        if total > limit {
            return Err(index_error(url, format!("more than {limit} bytes")));
        }
        sink(&chunk)?;
    }
    Ok(())
}

/// A wheel file name that is a plain name (no path), or `None`.
fn plain_name(name: &str) -> Option<String> {
    (Path::new(name).extension().is_some_and(|e| e == "whl")
        && !name.contains(['/', '\\'])
        && !name.starts_with('.'))
    .then(|| name.to_owned())
}

/// PEP 691: `{"files": [{"filename", "url", "hashes": {"sha256"}, "size"?}]}`.
fn parse_json_listing(body: &[u8], base: &reqwest::Url) -> Result<Vec<IndexFile>, String> {
    #[derive(serde::Deserialize)]
    struct Listing {
        files: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        filename: String,
        url: String,
        #[serde(default)]
        hashes: std::collections::BTreeMap<String, String>,
        size: Option<u64>,
    }
    let listing: Listing = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(listing
        .files
        .into_iter()
        .filter_map(|entry| {
            let sha256 = entry.hashes.get("sha256").filter(|h| is_sha256(h))?;
            Some(IndexFile {
                file: plain_name(&entry.filename)?,
                url: base.join(&entry.url).ok()?.to_string(),
                sha256: sha256.to_ascii_lowercase(),
                size: entry.size,
                listed_by: None,
            })
        })
        .collect())
}

/// PEP 503: `<a href="URL#sha256=HEX">file</a>`; links without a sha256 are left out
/// (they could only be matched by name).
fn parse_html_listing(body: &str, base: &reqwest::Url) -> Vec<IndexFile> {
    let mut files = Vec::new();
    for anchor in body.split("<a ").skip(1) {
        let Some(href_at) = anchor.find("href=") else {
            continue;
        };
        let rest = &anchor[href_at + 5..];
        let quote = rest.chars().next().unwrap_or('"');
        let Some(end) = rest[1..].find(quote) else {
            continue;
        };
        let href = rest[1..=end].replace("&amp;", "&");
        let Some((url, fragment)) = href.split_once('#') else {
            continue;
        };
        let Some(sha256) = fragment.strip_prefix("sha256=").filter(|h| is_sha256(h)) else {
            continue;
        };
        let name = url.rsplit('/').next().unwrap_or_default();
        let (Some(file), Ok(url)) = (plain_name(name), base.join(url)) else {
            continue;
        };
        files.push(IndexFile {
            file,
            url: url.to_string(),
            sha256: sha256.to_ascii_lowercase(),
            size: None,
            listed_by: None,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn listings_give_files_with_hashes_only() {
        let base = reqwest::Url::parse("http://127.0.0.1:1/simple/six/").unwrap();
        let html = format!(
            "<html><body><a href=\"../../files/six-1.17.0-py2.py3-none-any.whl#sha256={A}\">six</a>\n<a href='six-1.0.whl'>no hash</a><a href=\"x/../../../etc/passwd.whl#sha256={A}\">x</a><a href=\"six-1.17.0.tar.gz#sha256={A}\">sdist</a></body></html>"
        );
        let files = parse_html_listing(&html, &base);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:1/files/six-1.17.0-py2.py3-none-any.whl"
        );
        assert_eq!(files[0].sha256, A);
        let json = format!(
            "{{\"meta\": {{\"api-version\": \"1.1\"}}, \"name\": \"six\", \"files\": [{{\"filename\": \"six-1.17.0-py2.py3-none-any.whl\", \"url\": \"https://files.example/six.whl\", \"hashes\": {{\"sha256\": \"{A}\"}}, \"size\": 11050}}, {{\"filename\": \"a/b.whl\", \"url\": \"x\", \"hashes\": {{\"sha256\": \"{A}\"}}}}]}}"
        );
        let files = parse_json_listing(json.as_bytes(), &base).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].size, Some(11050));
        assert_eq!(files[0].url, "https://files.example/six.whl");
    }
}
