//! Layer tars summarised entry by entry, for comparison.
//!
//! A layer is streamed once: decompressed on the fly (gzip, zstd or plain tar, told
//! apart by their magic bytes), each entry's header kept and its content hashed, never
//! held. Memory grows with the number of entries, not with their size, and nothing is
//! written anywhere: no entry is ever extracted.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

use hoist_layers::{Digest, HashingWriter};
use serde::Serialize;

use crate::error::{Error, Result};

/// What kind of file a layer entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// Anything else (PAX global headers are consumed by the reader, not listed).
    Other,
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::HardLink => "hard link",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Fifo => "fifo",
            EntryKind::Other => "other",
        })
    }
}

/// One layer entry, without its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntrySummary {
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Content size in bytes (0 for all but regular files).
    pub size: u64,
    /// sha256 of the content, for regular files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Target of a symlink or hard link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// Every entry of a layer, keyed by its path (no leading `/` or `./`, no trailing `/`).
pub type LayerListing = BTreeMap<String, EntrySummary>;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Lists the entries of a (compressed or plain) layer tar read from `blob`; `layer`
/// names it in errors. Entries with absolute paths or `..` components are refused.
/// A path listed twice keeps its last entry, as extraction would.
pub fn list_layer(blob: impl Read, layer: &Digest) -> Result<LayerListing> {
    let mut archive = tar::Archive::new(decompressed(blob, layer)?);
    let mut entries = archive
        .entries()
        .map_err(|e| read_error(layer, "reading the tar", &e))?;
    let mut listing = LayerListing::new();
    while let Some((path, summary)) = next_entry(&mut entries, layer)? {
        listing.insert(path, summary);
    }
    Ok(listing)
}

/// Two versions of one path: `None` where a side lacks it.
pub type EntryPair = (String, Option<EntrySummary>, Option<EntrySummary>);

/// The entries that differ between two layers, found by walking both tars side by side
/// as a merge: hoist writes entries sorted by path, so memory holds the differences
/// only, not a listing of every entry. Returns `Ok(None)` as soon as either layer turns
/// out not to be sorted (or to repeat a path): the caller then lists both with
/// [`list_layer`] instead.
pub fn compare_sorted(
    a: impl Read,
    a_layer: &Digest,
    b: impl Read,
    b_layer: &Digest,
) -> Result<Option<Vec<EntryPair>>> {
    let mut a_archive = tar::Archive::new(decompressed(a, a_layer)?);
    let mut b_archive = tar::Archive::new(decompressed(b, b_layer)?);
    let mut a_side = Sorted::new(&mut a_archive, a_layer)?;
    let mut b_side = Sorted::new(&mut b_archive, b_layer)?;
    let mut differences = Vec::new();
    loop {
        let pair = match (a_side.peek()?, b_side.peek()?) {
            (Peek::Unsorted, _) | (_, Peek::Unsorted) => return Ok(None),
            (Peek::End, Peek::End) => return Ok(Some(differences)),
            (Peek::Entry(a_path), Peek::Entry(b_path)) if a_path == b_path => {
                let (path, left) = a_side.take();
                let (_, right) = b_side.take();
                (left != right).then_some((path, Some(left), Some(right)))
            }
            (Peek::Entry(a_path), Peek::Entry(b_path)) if a_path < b_path => {
                let (path, left) = a_side.take();
                Some((path, Some(left), None))
            }
            (Peek::Entry(_), Peek::End) => {
                let (path, left) = a_side.take();
                Some((path, Some(left), None))
            }
            (_, Peek::Entry(_)) => {
                let (path, right) = b_side.take();
                Some((path, None, Some(right)))
            }
        };
        differences.extend(pair);
    }
}

/// What comes next in a layer being merged.
enum Peek<'p> {
    /// An entry, by path.
    Entry(&'p str),
    /// The end of the layer.
    End,
    /// A path not after the one before: the merge cannot go on.
    Unsorted,
}

/// One layer's entries with one entry of look-ahead, checking they come in strictly
/// increasing path order.
struct Sorted<'a, R: Read + 'a> {
    entries: tar::Entries<'a, R>,
    layer: &'a Digest,
    next: Option<(String, EntrySummary)>,
    last: Option<String>,
    unsorted: bool,
}

impl<'a, R: Read + 'a> Sorted<'a, R> {
    fn new(archive: &'a mut tar::Archive<R>, layer: &'a Digest) -> Result<Self> {
        let entries = archive
            .entries()
            .map_err(|e| read_error(layer, "reading the tar", &e))?;
        Ok(Sorted {
            entries,
            layer,
            next: None,
            last: None,
            unsorted: false,
        })
    }

    fn peek(&mut self) -> Result<Peek<'_>> {
        if self.next.is_none() && !self.unsorted {
            self.next = next_entry(&mut self.entries, self.layer)?;
            if let (Some((path, _)), Some(last)) = (&self.next, &self.last) {
                self.unsorted = path <= last;
            }
        }
        Ok(match &self.next {
            _ if self.unsorted => Peek::Unsorted,
            Some((path, _)) => Peek::Entry(path),
            None => Peek::End,
        })
    }

    fn take(&mut self) -> (String, EntrySummary) {
        let (path, summary) = self.next.take().expect("peeked before taking");
        self.last = Some(path.clone());
        (path, summary)
    }
}

fn read_error(layer: &Digest, what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::LayerRead {
        layer: layer.clone(),
        message: format!("{what}: {e}"),
    }
}

/// The tar stream inside a layer blob: gzip, zstd or plain, told by the magic bytes.
fn decompressed<'r>(blob: impl Read + 'r, layer: &Digest) -> Result<Box<dyn Read + 'r>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let head = buffered
        .fill_buf()
        .map_err(|e| read_error(layer, "reading", &e))?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| read_error(layer, "starting zstd decompression", &e))?,
        )
    } else {
        Box::new(buffered)
    })
}

/// The next entry, summarised (its content hashed as it streams past).
fn next_entry<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    layer: &Digest,
) -> Result<Option<(String, EntrySummary)>> {
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let mut entry = entry.map_err(|e| read_error(layer, "reading a tar entry", &e))?;
    let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let path = safe_path(&raw_path, layer)?;
    let header = entry.header();
    let kind = kind_of(header.entry_type());
    let mode = header.mode().unwrap_or(0);
    let uid = header.uid().unwrap_or(0);
    let gid = header.gid().unwrap_or(0);
    let mtime = header.mtime().unwrap_or(0);
    let link_target = entry
        .link_name_bytes()
        .map(|name| String::from_utf8_lossy(&name).into_owned());
    if kind == EntryKind::HardLink
        && let Some(target) = &link_target
    {
        // A hard link naming `../x` would make an extractor link outside the root.
        safe_path(target, layer)?;
    }
    let (sha256, size) = if kind == EntryKind::File {
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut entry, &mut hasher)
            .map_err(|e| read_error(layer, &format!("reading entry `{raw_path}`"), &e))?;
        let (_, digest, size) = hasher.finish();
        (Some(digest), size)
    } else {
        (None, 0)
    };
    Ok(Some((
        path,
        EntrySummary {
            kind,
            mode,
            uid,
            gid,
            size,
            sha256,
            mtime,
            link_target,
        },
    )))
}

/// The entry path in its normal form, or an error if it would escape the root.
fn safe_path(raw: &str, layer: &Digest) -> Result<String> {
    let refuse = |reason| Error::UnsafeLayerEntry {
        layer: layer.clone(),
        entry: raw.to_string(),
        reason,
    };
    if raw.starts_with('/') {
        return Err(refuse("has an absolute path"));
    }
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("has a `..` component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("has an absolute path"));
            }
        }
    }
    Ok(parts.join("/"))
}

fn kind_of(entry_type: tar::EntryType) -> EntryKind {
    match entry_type {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Directory,
        tar::EntryType::Symlink => EntryKind::Symlink,
        tar::EntryType::Link => EntryKind::HardLink,
        tar::EntryType::Char => EntryKind::CharDevice,
        tar::EntryType::Block => EntryKind::BlockDevice,
        tar::EntryType::Fifo => EntryKind::Fifo,
        _ => EntryKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn digest() -> Digest {
        Digest::sha256_of(b"layer")
    }

    /// A tar with one regular file whose header name is written raw (the tar crate's
    /// own `append_data` refuses `..`, which is the point of the test).
    fn raw_tar(name: &str) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.push(b'x');
        out.resize(1024, 0);
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn refuses_parent_components_naming_layer_and_entry() {
        let error = list_layer(&raw_tar("app/../../etc/passwd")[..], &digest()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(digest().as_str()), "{text}");
        assert!(
            text.contains("`app/../../etc/passwd` has a `..` component"),
            "{text}"
        );
    }

    #[test]
    fn refuses_hard_links_out_of_the_root() {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_path("app/link").unwrap();
        header.as_mut_bytes()[157..165].copy_from_slice(b"../../x\0");
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[0; 1024]);
        let error = list_layer(&tar[..], &digest()).unwrap_err();
        assert!(
            error.to_string().contains("`../../x` has a `..` component"),
            "{error}"
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        let error = list_layer(&raw_tar("/etc/passwd")[..], &digest()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`/etc/passwd` has an absolute path"),
            "{error}"
        );
    }

    /// A tar of regular files, in the order given.
    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, name, content.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn sorted_layers_merge_to_their_differences() {
        let a = tar_of(&[("a", "1"), ("b", "2"), ("d", "4")]);
        let b = tar_of(&[("b", "2"), ("c", "3"), ("d", "5")]);
        let pairs = compare_sorted(&a[..], &digest(), &b[..], &digest())
            .unwrap()
            .expect("both sorted");
        let shape: Vec<(&str, bool, bool)> = pairs
            .iter()
            .map(|(p, l, r)| (p.as_str(), l.is_some(), r.is_some()))
            .collect();
        assert_eq!(
            shape,
            [("a", true, false), ("c", false, true), ("d", true, true)]
        );
    }

    #[test]
    fn unsorted_or_repeated_paths_give_up_the_merge() {
        let sorted = tar_of(&[("a", "1"), ("b", "2")]);
        for other in [
            tar_of(&[("b", "2"), ("a", "1")]),
            tar_of(&[("a", "1"), ("a", "2")]),
        ] {
            assert_eq!(
                compare_sorted(&sorted[..], &digest(), &other[..], &digest()).unwrap(),
                None
            );
        }
    }

    #[test]
    fn lists_gzip_and_zstd_layers_alike() {
        let tar = raw_tar("./app/x");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
        let plain = list_layer(&tar[..], &digest()).unwrap();
        assert_eq!(list_layer(&gz[..], &digest()).unwrap(), plain);
        assert_eq!(list_layer(&zst[..], &digest()).unwrap(), plain);
        let entry = &plain["app/x"];
        assert_eq!(entry.kind, EntryKind::File);
        assert_eq!(entry.mode, 0o644);
        assert_eq!(entry.size, 1);
        assert_eq!(entry.sha256, Some(Digest::sha256_of(b"x")));
    }
}
