//! The one reader of tar streams hoist did not write: layer blobs (gzip, zstd or plain,
//! told apart by their magic bytes) read by `diff`, `verify`, SBOM scans and budgets,
//! and the archives `oci-archive:`/`docker-archive:` bases are unpacked from.
//!
//! Headers are parsed here, with the tar crate's header types, rather than by
//! `tar::Archive`: that reader holds a whole PAX or GNU long-name header in memory,
//! whatever size it claims, so a 3 MB layer whose long-name header claims 3 GiB
//! (zeros compress well) made hoist allocate 12 GB. Here an extension header larger
//! than [`EXTENSION_LIMIT`] is an error before a byte of it is read, and an entry's
//! content is only ever streamed to the caller. Memory is bounded by the limit and a
//! few blocks, whatever the input.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

/// The largest PAX (`x`, `g`) or GNU long-name/long-link (`L`, `K`) header read: Go's
/// `archive/tar` (which docker, containerd, buildkit and skopeo read layers with) caps
/// them at the same 1 MiB (`maxSpecialFileSize`). A path is at most 4 KiB on Linux;
/// the largest real records (SELinux labels, ACLs, capabilities as `SCHILY.xattr.*`)
/// are a few KiB.
pub const EXTENSION_LIMIT: u64 = 1 << 20;

const BLOCK: u64 = 512;
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// The largest zstd window a layer may ask its decoder for (2^27 = 128 MiB): zstd's
/// own default limit, said here because it is the largest allocation a layer can
/// cause. hoist writes zstd layers with smaller windows; a frame asking for more is an
/// error.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Between a decompressor and the header reader, which asks for 512 bytes at a time.
const BUFFER: usize = 256 * 1024;

/// Why a tar stream cannot be read. The caller names the layer or archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// Reading (or decompressing) the stream failed.
    #[error("{what} at byte {offset} of the tar: {source}")]
    Io {
        /// What was being read (`a header`, ``entry `usr/bin/x` ``).
        what: String,
        /// Where, in the uncompressed tar.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// An extension header claims more than [`EXTENSION_LIMIT`] bytes; refused unread.
    #[error(
        "{kind} header at byte {offset} of the tar ({after}) claims {size} bytes, over the limit of {limit} bytes for tar extension headers"
    )]
    ExtensionTooLarge {
        /// `PAX` or `GNU long name`…
        kind: &'static str,
        /// Where the header starts, in the uncompressed tar.
        offset: u64,
        /// The entry before it (`after entry `x``, or `the first entry`).
        after: String,
        /// The size it claims.
        size: u64,
        /// [`EXTENSION_LIMIT`].
        limit: u64,
    },
    /// A header that is not one (bad checksum, a number that does not parse…).
    #[error("malformed tar header at byte {offset}: {reason}")]
    Malformed {
        /// Where the header starts, in the uncompressed tar.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry whose name would land outside the root it is extracted into.
    #[error("entry `{entry}` {reason}")]
    Unsafe {
        /// The name as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// The tar stream inside a layer blob: gzip, zstd or plain, told by the magic bytes,
/// buffered for a header reader.
pub fn decompressed<'r>(blob: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
    let mut buffered = BufReader::with_capacity(BUFFER, blob);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::read::MultiGzDecoder::new(buffered),
        ))
    } else if head.starts_with(ZSTD_MAGIC) {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(buffered)?;
        decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        Box::new(BufReader::with_capacity(BUFFER, decoder))
    } else {
        Box::new(buffered)
    })
}

/// A layer blob's entries: [`decompressed`] then [`TarReader`].
pub fn layer_entries<'r>(blob: impl Read + 'r) -> Result<TarReader<Box<dyn Read + 'r>>, TarError> {
    let stream = decompressed(blob).map_err(|source| TarError::Io {
        what: "starting to decompress".into(),
        offset: 0,
        source,
    })?;
    Ok(TarReader::new(stream))
}

/// One entry's header, with PAX and GNU extensions applied.
#[derive(Clone, Debug)]
pub struct EntryHeader {
    /// The name as written (GNU long name, else PAX `path`, else the header's).
    pub raw_path: String,
    /// What it is (`GNUSparse` entries report their stored bytes, not expanded).
    pub kind: tar::EntryType,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Modification time, whole seconds since the epoch.
    pub mtime: u64,
    /// Content bytes stored in the tar.
    pub size: u64,
    /// Link target (GNU long link, else PAX `linkpath`, else the header's).
    pub link: Option<String>,
}

impl EntryHeader {
    /// The name in its normal form: see [`normalise`].
    pub fn path(&self) -> Result<String, TarError> {
        normalise(&self.raw_path)
    }
}

/// An entry name as a path below the root: leading `/` and `./` and `.` components
/// dropped (containerify writes `/usr/…`; umoci, skopeo and docker strip it), no
/// trailing `/`. A `..` component is refused: it would climb out of the root.
pub fn normalise(raw: &str) -> Result<String, TarError> {
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(TarError::Unsafe {
                    entry: raw.to_string(),
                    reason: "has a `..` component (it would climb out of the root)",
                });
            }
        }
    }
    Ok(parts.join("/"))
}

/// Extensions met before the entry they describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// Reads a tar stream entry by entry, never holding more than [`EXTENSION_LIMIT`].
pub struct TarReader<R: Read> {
    inner: R,
    /// Bytes of the uncompressed tar consumed so far.
    offset: u64,
    /// Bytes of the current entry's content the caller has not read.
    remaining: u64,
    /// Padding after the current entry's content.
    padding: u64,
    /// The last entry's name, for errors about the headers after it.
    last: Option<String>,
    ended: bool,
}

impl<R: Read> TarReader<R> {
    /// A reader of the tar stream `inner` (plain: see [`layer_entries`] for layers).
    pub fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            last: None,
            ended: false,
        }
    }

    /// The stream, where the reader left it (after the end-of-archive block, or
    /// anywhere after an error): read it to its end to check what wraps it.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry's header, `None` at the end of the archive. Whatever the caller
    /// left unread of the previous entry's content is skipped (streamed, not held).
    pub fn next_header(&mut self) -> Result<Option<EntryHeader>, TarError> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let start = self.offset;
            let Some(block) = self.read_block(pending.is_empty())? else {
                self.ended = true;
                return Ok(None);
            };
            if block.iter().all(|b| *b == 0) {
                if !pending.is_empty() {
                    return Err(malformed(start, "extension headers describe no entry"));
                }
                self.ended = true;
                return Ok(None);
            }
            let header = tar::Header::from_byte_slice(&block);
            check_sum(header).map_err(|reason| malformed(start, &reason))?;
            let kind = header.entry_type();
            let size = header
                .entry_size()
                .map_err(|e| malformed(start, &e.to_string()))?;
            if let Some(name) = extension_name(kind) {
                let bytes = self.read_extension(name, start, size)?;
                let slot = match kind {
                    tar::EntryType::GNULongName => &mut pending.long_name,
                    tar::EntryType::GNULongLink => &mut pending.long_link,
                    tar::EntryType::XHeader => &mut pending.pax,
                    // A global header's defaults (mostly mtime and charset) are not
                    // ours to apply: the entries' own headers say what they are.
                    _ => continue,
                };
                if slot.replace(bytes).is_some() {
                    return Err(malformed(
                        start,
                        &format!("two {name} headers for one entry"),
                    ));
                }
                continue;
            }
            let entry = entry_header(header, start, size, &pending)?;
            if kind == tar::EntryType::GNUSparse {
                self.skip_sparse_blocks(header, start)?;
            }
            self.remaining = entry.size;
            self.padding = padding(entry.size);
            self.last = Some(entry.raw_path.clone());
            return Ok(Some(entry));
        }
    }

    /// An extension header's content, refused unread when over [`EXTENSION_LIMIT`].
    fn read_extension(
        &mut self,
        kind: &'static str,
        start: u64,
        size: u64,
    ) -> Result<Vec<u8>, TarError> {
        if size > EXTENSION_LIMIT {
            return Err(TarError::ExtensionTooLarge {
                kind,
                offset: start,
                after: self.last.as_ref().map_or_else(
                    || "before the first entry".into(),
                    |e| format!("after entry `{e}`"),
                ),
                size,
                limit: EXTENSION_LIMIT,
            });
        }
        let mut bytes = vec![0; usize::try_from(size).unwrap_or(0)];
        self.read_exact_at(&mut bytes, kind)?;
        self.remaining = 0;
        self.padding = padding(size);
        self.skip_rest()?;
        Ok(bytes)
    }

    /// GNU sparse headers continued in further blocks (the map only: content is read
    /// as stored).
    fn skip_sparse_blocks(&mut self, header: &tar::Header, start: u64) -> Result<(), TarError> {
        let mut extended = header.as_gnu().is_some_and(tar::GnuHeader::is_extended);
        while extended {
            let Some(block) = self.read_block(false)? else {
                return Err(malformed(start, "the sparse map ends early"));
            };
            let mut ext = tar::GnuExtSparseHeader::new();
            ext.as_mut_bytes().copy_from_slice(&block);
            extended = ext.is_extended();
        }
        Ok(())
    }

    /// One 512-byte block; `None` at a clean end of the stream when `end_ok`.
    fn read_block(&mut self, end_ok: bool) -> Result<Option<[u8; 512]>, TarError> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        while filled < block.len() {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io("reading a header", source)),
            }
        }
        self.offset += filled as u64;
        match filled {
            512 => Ok(Some(block)),
            0 if end_ok => Ok(None),
            _ => Err(self.io(
                "reading a header",
                io::Error::new(io::ErrorKind::UnexpectedEof, "the tar ends inside a header"),
            )),
        }
    }

    fn read_exact_at(&mut self, buf: &mut [u8], what: &str) -> Result<(), TarError> {
        self.inner
            .read_exact(buf)
            .map_err(|source| self.io(&format!("reading a {what} header"), source))?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Streams past what is left of the current entry and its padding.
    fn skip_rest(&mut self) -> Result<(), TarError> {
        let want = self.remaining + self.padding;
        if want == 0 {
            return Ok(());
        }
        let skipped = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())
            .map_err(|source| self.io("skipping an entry", source))?;
        self.offset += skipped;
        if skipped < want {
            let what = self.last.clone().unwrap_or_default();
            return Err(self.io(
                &format!("reading entry `{what}`"),
                io::Error::new(io::ErrorKind::UnexpectedEof, "the tar ends inside an entry"),
            ));
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn io(&self, what: &str, source: io::Error) -> TarError {
        TarError::Io {
            what: what.to_string(),
            offset: self.offset,
            source,
        }
    }
}

/// The current entry's content: reading ends at its end.
impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar ends inside an entry",
            ));
        }
        self.remaining -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// The header of a file entry, its extensions applied.
fn entry_header(
    header: &tar::Header,
    start: u64,
    stored_size: u64,
    pending: &Pending,
) -> Result<EntryHeader, TarError> {
    // Lenient as the tar crate's reader and diff before it: an empty or garbled
    // owner or time is 0 (only the size decides where the next header is).
    let mut entry = EntryHeader {
        raw_path: text(&header.path_bytes()),
        kind: header.entry_type(),
        mode: header.mode().unwrap_or(0),
        uid: header.uid().unwrap_or(0),
        gid: header.gid().unwrap_or(0),
        mtime: header.mtime().unwrap_or(0),
        size: stored_size,
        link: header.link_name_bytes().map(|name| text(&name)),
    };
    if let Some(pax) = &pending.pax {
        apply_pax(&mut entry, pax, start)?;
    }
    if let Some(name) = &pending.long_name {
        entry.raw_path = text(until_nul(name));
    }
    if let Some(link) = &pending.long_link {
        entry.link = Some(text(until_nul(link)));
    }
    Ok(entry)
}

/// PAX records that change what an entry is: its name, link, size and owner.
fn apply_pax(entry: &mut EntryHeader, pax: &[u8], start: u64) -> Result<(), TarError> {
    for record in tar::PaxExtensions::new(pax) {
        let record = record.map_err(|e| malformed(start, &format!("PAX record: {e}")))?;
        let value = record.value_bytes();
        let parsed = || -> Result<u64, TarError> {
            let digits = text(value);
            // mtime may carry a fraction (`1700000000.123456789`).
            let whole = digits.split('.').next().unwrap_or_default();
            whole.parse().map_err(|_| {
                malformed(
                    start,
                    &format!(
                        "PAX record `{}` is not a number: `{digits}`",
                        text(record.key_bytes())
                    ),
                )
            })
        };
        match record.key_bytes() {
            b"path" => entry.raw_path = text(value),
            b"linkpath" => entry.link = Some(text(value)),
            b"size" => entry.size = parsed()?,
            // Lenient as for the header's own fields: only the size must parse.
            b"uid" => entry.uid = parsed().unwrap_or(entry.uid),
            b"gid" => entry.gid = parsed().unwrap_or(entry.gid),
            b"mtime" => entry.mtime = parsed().unwrap_or(entry.mtime),
            _ => {}
        }
    }
    Ok(())
}

/// What an extension header is called in errors; `None` for an entry.
fn extension_name(kind: tar::EntryType) -> Option<&'static str> {
    match kind {
        tar::EntryType::GNULongName => Some("GNU long name"),
        tar::EntryType::GNULongLink => Some("GNU long link"),
        tar::EntryType::XHeader => Some("PAX"),
        tar::EntryType::XGlobalHeader => Some("PAX global"),
        _ => None,
    }
}

/// The header checksum, as the tar crate and GNU tar compute it (unsigned bytes, the
/// checksum field itself counted as spaces).
fn check_sum(header: &tar::Header) -> Result<(), String> {
    let bytes = header.as_bytes();
    let sum: u32 = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * u32::from(b' ');
    let written = header.cksum().map_err(|e| e.to_string())?;
    if sum == written {
        Ok(())
    } else {
        Err(format!(
            "checksum {written} does not match its bytes ({sum})"
        ))
    }
}

fn malformed(offset: u64, reason: &str) -> TarError {
    TarError::Malformed {
        offset,
        reason: reason.to_string(),
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn member(out: &mut Vec<u8>, header: &tar::Header, data: &[u8]) {
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn names(tar: &[u8]) -> Result<Vec<(String, Option<String>, u64)>, TarError> {
        let mut reader = TarReader::new(tar);
        let mut out = Vec::new();
        while let Some(entry) = reader.next_header()? {
            out.push((entry.path()?, entry.link.clone(), entry.size));
        }
        Ok(out)
    }

    #[test]
    fn oversized_extension_headers_are_refused_unread() {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
        ] {
            let mut tar = Vec::new();
            member(&mut tar, &header("first", tar::EntryType::Regular, 1), b"x");
            // No content follows: the claim alone is refused.
            member(&mut tar, &header("././@LongLink", kind, 3 << 30), b"");
            let error = names(&tar).unwrap_err().to_string();
            assert!(error.contains("claims 3221225472 bytes"), "{error}");
            assert!(
                error.contains(&format!("limit of {EXTENSION_LIMIT} bytes")),
                "{error}"
            );
            assert!(error.contains("after entry `first`"), "{error}");
        }
    }

    #[test]
    fn names_are_normalised_and_parent_components_refused() {
        assert_eq!(normalise("/usr/bin/x").unwrap(), "usr/bin/x");
        assert_eq!(normalise("./a//b/./c/").unwrap(), "a/b/c");
        let error = normalise("a/../../x").unwrap_err().to_string();
        assert_eq!(
            error,
            "entry `a/../../x` has a `..` component (it would climb out of the root)"
        );
    }

    #[test]
    fn truncated_and_corrupt_tars_are_errors() {
        let mut tar = Vec::new();
        member(
            &mut tar,
            &header("f", tar::EntryType::Regular, 2000),
            &[1; 100],
        );
        assert!(
            names(&tar)
                .unwrap_err()
                .to_string()
                .contains("ends inside an entry")
        );
        let mut bad = header("f", tar::EntryType::Regular, 0);
        bad.as_mut_bytes()[0] = b'g';
        assert!(
            names(bad.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
    }
}
