//! Layer tars summarised entry by entry, for comparison.
//!
//! A layer is streamed once: decompressed on the fly (gzip, zstd or plain tar, told
//! apart by their magic bytes), each entry's header kept and its content hashed, never
//! held. Memory grows with the number of entries, not with their size, and nothing is
//! written anywhere: no entry is ever extracted.

use std::collections::BTreeMap;
use std::io::{self, Read};

use hoist_layers::{Digest, HashingWriter};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::tar_reader::{EntryHeader, TarReader, layer_entries, normalise};

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

/// Lists the entries of a (compressed or plain) layer tar read from `blob`; `layer`
/// names it in errors. Absolute names are listed without their leading `/`; entries
/// with `..` components are refused. A path listed twice keeps its last entry, as
/// extraction would.
pub fn list_layer(blob: impl Read, layer: &Digest) -> Result<LayerListing> {
    let mut entries = layer_entries(blob).map_err(|e| Error::layer_tar(layer, e))?;
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
    let mut a_side = Sorted::new(a, a_layer)?;
    let mut b_side = Sorted::new(b, b_layer)?;
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
struct Sorted<'a> {
    entries: TarReader<Box<dyn Read + 'a>>,
    layer: &'a Digest,
    next: Option<(String, EntrySummary)>,
    last: Option<String>,
    unsorted: bool,
}

impl<'a> Sorted<'a> {
    fn new(blob: impl Read + 'a, layer: &'a Digest) -> Result<Self> {
        let entries = layer_entries(blob).map_err(|e| Error::layer_tar(layer, e))?;
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

/// The next entry, summarised (its content hashed as it streams past).
fn next_entry<R: Read>(
    entries: &mut TarReader<R>,
    layer: &Digest,
) -> Result<Option<(String, EntrySummary)>> {
    let Some(header) = entries
        .next_header()
        .map_err(|e| Error::layer_tar(layer, e))?
    else {
        return Ok(None);
    };
    let EntryHeader {
        raw_path,
        kind,
        mode,
        uid,
        gid,
        mtime,
        link,
        ..
    } = header.clone();
    let path = header.path().map_err(|e| Error::layer_tar(layer, e))?;
    let kind = kind_of(kind);
    let mut link = link;
    if kind == EntryKind::HardLink
        && let Some(target) = &mut link
    {
        // A hard link names another entry of the layer: the same normal form as its
        // name (a `../x` would make an extractor link outside the root).
        *target = normalise(target).map_err(|e| Error::layer_tar(layer, e))?;
    }
    let (sha256, size) = if kind == EntryKind::File {
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(entries, &mut hasher).map_err(|e| Error::LayerRead {
            layer: layer.clone(),
            message: format!("reading entry `{raw_path}`: {e}"),
        })?;
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
            link_target: link,
        },
    )))
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
    fn lists_absolute_paths_without_their_leading_slash() {
        let listing = list_layer(&raw_tar("/etc/passwd")[..], &digest()).unwrap();
        assert_eq!(listing.keys().collect::<Vec<_>>(), ["etc/passwd"]);
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
