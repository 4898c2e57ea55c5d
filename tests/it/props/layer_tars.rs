//! Layer tars: arbitrary archives, written header by header so that they can hold
//! what a hostile layer would (names with `..`, absolute paths, symlinks pointing out,
//! hard links to outside, long names as PAX records or GNU `@LongLink` entries, gzip
//! or zstd or plain). diff's layer reader never panics, lists only paths that stay
//! inside the layer's root (absolute names are read from it), and refuses exactly the
//! archives whose names or hard-link targets have a `..` component; the archive unpacker (what reads an oci-archive base) creates
//! nothing outside its temporary directory and no symlink in it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use hoist::diff::layer::{EntryKind, compare_sorted, list_layer};
use hoist_layers::Digest;
use proptest::prelude::*;

use super::cases;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Fifo,
}

/// How a name longer than the ustar field is carried.
#[derive(Clone, Copy, Debug)]
enum LongNames {
    Pax,
    Gnu,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    kind: Kind,
    link: String,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z]{1,3}",
        1 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just(String::new()),
        1 => Just("etc".to_owned()),
        1 => "[a-z]{100,160}",
        1 => Just("ü…".to_owned()),
    ]
}

/// A path as a hostile layer might spell it: absolute, `./`-prefixed, with `..`,
/// empty or `.` components, a trailing `/`, long.
fn name() -> impl Strategy<Value = String> {
    (
        prop_oneof![12 => Just(""), 1 => Just("/"), 2 => Just("./"), 1 => Just("../")],
        prop::collection::vec(component(), 1..4),
        prop_oneof![4 => Just(""), 1 => Just("/")],
    )
        .prop_map(|(lead, parts, trail)| format!("{lead}{}{trail}", parts.join("/")))
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        4 => Just(Kind::File),
        2 => Just(Kind::Dir),
        2 => Just(Kind::Symlink),
        2 => Just(Kind::HardLink),
        1 => Just(Kind::Fifo),
    ];
    let link = prop_oneof![
        name(),
        Just("/etc/passwd".to_owned()),
        Just("../../../../etc/passwd".to_owned()),
    ];
    (
        name(),
        kind,
        link,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(name, kind, link, data)| Entry {
            name,
            kind,
            link,
            data: if kind == Kind::File { data } else { Vec::new() },
        })
}

/// A ustar header with `name` and `link` written raw.
pub fn header(name: &[u8], link: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    // Written raw: the tar crate's setters refuse `..`, which is the point here.
    let bytes = header.as_mut_bytes();
    bytes[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    bytes[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(kind);
    header.set_cksum();
    header
}

/// Appends a header, its data and the padding to the next block.
pub fn push_member(out: &mut Vec<u8>, header: &tar::Header, data: &[u8]) {
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// One PAX record, `LEN key=value\n`, LEN counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while (len.to_string().len() + body.len()) != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}").into_bytes()
}

fn tar_of(entries: &[Entry], long: LongNames) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let kind = match entry.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::HardLink => tar::EntryType::Link,
            Kind::Fifo => tar::EntryType::Fifo,
        };
        let link = if matches!(entry.kind, Kind::Symlink | Kind::HardLink) {
            entry.link.as_str()
        } else {
            ""
        };
        let too_long = entry.name.len() > 100 || link.len() > 100;
        if too_long {
            match long {
                LongNames::Pax => {
                    let mut records = pax_record("path", &entry.name);
                    if !link.is_empty() {
                        records.extend(pax_record("linkpath", link));
                    }
                    let pax = header(
                        b"PaxHeaders/x",
                        b"",
                        tar::EntryType::XHeader,
                        records.len() as u64,
                    );
                    push_member(&mut out, &pax, &records);
                }
                LongNames::Gnu => {
                    for (value, kind) in [
                        (entry.name.as_str(), tar::EntryType::GNULongName),
                        (link, tar::EntryType::GNULongLink),
                    ] {
                        if value.len() > 100 {
                            let mut data = value.as_bytes().to_vec();
                            data.push(0);
                            let gnu = header(b"././@LongLink", b"", kind, data.len() as u64);
                            push_member(&mut out, &gnu, &data);
                        }
                    }
                }
            }
        }
        let main = header(
            entry.name.as_bytes(),
            link.as_bytes(),
            kind,
            entry.data.len() as u64,
        );
        push_member(&mut out, &main, &entry.data);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn compress(tar: Vec<u8>, how: Compression) -> Vec<u8> {
    match how {
        Compression::None => tar,
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            gz.finish().unwrap()
        }
        Compression::Zstd => zstd::stream::encode_all(&tar[..], 1).unwrap(),
    }
}

fn archive() -> impl Strategy<Value = (Vec<Entry>, LongNames, Compression)> {
    (
        prop::collection::vec(entry(), 0..7),
        prop_oneof![Just(LongNames::Pax), Just(LongNames::Gnu)],
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Zstd)
        ],
    )
}

/// Whether diff refuses a name: one with a `..` component (absolute names are read
/// as relative to the root, as umoci and skopeo read them).
fn climbs(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
}

/// Whether a path climbs out of the directory it is relative to, lexically.
fn escapes(path: &str) -> bool {
    path.starts_with('/')
        || Path::new(path)
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
}

/// `root.join(path)` stays below `root` once `.` and `..` are resolved lexically.
fn stays_inside(root: &Path, path: &str) -> bool {
    let mut inside = PathBuf::from(root);
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !inside.pop() || !inside.starts_with(root) {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    inside.starts_with(root)
}

/// The key diff lists an entry under: its components joined, without `.`.
fn listed_name(name: &str) -> String {
    Path::new(name)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file, directory and link under `dir`, relative, with symlinks flagged.
fn tree(dir: &Path) -> BTreeMap<PathBuf, bool> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path.clone());
            }
            found.insert(
                path.strip_prefix(dir).unwrap().to_path_buf(),
                meta.file_type().is_symlink(),
            );
        }
    }
    found
}

/// GNU long names and PAX records (`path`, `linkpath`, `size`) apply to the entry after
/// them, and leading `/` is dropped from what they name.
#[test]
fn long_names_and_pax_records_apply_to_the_next_entry() {
    let long = "d/".repeat(80) + "f";
    let mut tar = Vec::new();
    let mut name = long.clone().into_bytes();
    name.push(0);
    let records: Vec<u8> = [("path", "/abs/pax/x"), ("linkpath", "up"), ("size", "2")]
        .iter()
        .flat_map(|(key, value)| pax_record(key, value))
        .collect();
    for (entry, kind, data) in [
        (
            "././@LongLink",
            tar::EntryType::GNULongName,
            name.as_slice(),
        ),
        ("short", tar::EntryType::Regular, b"abc"),
        ("PaxHeaders/x", tar::EntryType::XHeader, &records),
        // The header says 0 bytes, PAX says 2: the 2 bytes are read, then the end.
        ("ignored", tar::EntryType::Symlink, b"hi"),
    ] {
        let size = if entry == "ignored" { 0 } else { data.len() };
        push_member(
            &mut tar,
            &header(entry.as_bytes(), b"", kind, size as u64),
            data,
        );
    }
    tar.extend_from_slice(&[0; 1024]);
    let listing = list_layer(&tar[..], &layer_digest()).unwrap();
    let names: Vec<&String> = listing.keys().collect();
    assert_eq!(names, ["abs/pax/x", long.as_str()]);
    assert_eq!(listing["abs/pax/x"].link_target.as_deref(), Some("up"));
    assert_eq!(listing[&long].size, 3);
}

fn layer_digest() -> Digest {
    Digest::sha256_of(b"generated layer")
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn diff_lists_only_paths_inside_the_root((entries, long, how) in archive()) {
        let bytes = compress(tar_of(&entries, long), how);
        let listed = list_layer(&bytes[..], &layer_digest());
        let hostile = entries.iter().any(|e| {
            climbs(&e.name) || (e.kind == Kind::HardLink && climbs(&e.link))
        });
        match listed {
            Ok(listing) => {
                prop_assert!(!hostile, "an escaping entry was listed: {entries:#?}");
                let root = Path::new("/layer-root");
                for (path, summary) in &listing {
                    prop_assert!(stays_inside(root, path), "{path:?} escapes");
                    prop_assert!(!path.split('/').any(|c| c == ".." || c == "."), "{path:?}");
                    if summary.kind == EntryKind::HardLink {
                        let target = summary.link_target.as_deref().unwrap_or_default();
                        prop_assert!(stays_inside(root, target), "link {path:?} → {target:?}");
                    }
                }
                let expected: BTreeSet<String> =
                    entries.iter().map(|e| listed_name(&e.name)).collect();
                let found: BTreeSet<String> = listing.keys().cloned().collect();
                prop_assert_eq!(found, expected);
            }
            Err(error) => {
                prop_assert!(hostile, "a harmless layer was refused: {error}\n{entries:#?}");
                let text = error.to_string();
                prop_assert!(text.contains(layer_digest().as_str()), "{text}");
            }
        }
    }

    #[test]
    fn diff_merges_only_paths_inside_the_root(
        (a, long_a, how_a) in archive(),
        (b, long_b, how_b) in archive(),
    ) {
        let a = compress(tar_of(&a, long_a), how_a);
        let b = compress(tar_of(&b, long_b), how_b);
        if let Ok(Some(differences)) = compare_sorted(&a[..], &layer_digest(), &b[..], &layer_digest()) {
            for (path, _, _) in differences {
                prop_assert!(stays_inside(Path::new("/layer-root"), &path), "{path:?}");
            }
        }
    }

    #[test]
    fn unpacking_creates_nothing_outside_its_directory(
        (entries, long, _) in archive(),
        record_links in any::<bool>(),
    ) {
        let sandbox = tempfile::Builder::new().prefix("hoist-props-tar-").tempdir().unwrap();
        let archive = sandbox.path().join("archive.tar");
        fs::write(&archive, tar_of(&entries, long)).unwrap();
        // What a climb out of `unpacked/` would reach first.
        fs::create_dir(sandbox.path().join("etc")).unwrap();
        fs::write(sandbox.path().join("etc/passwd"), "root:x:0:0\n").unwrap();
        let before = tree(sandbox.path());
        let into = sandbox.path().join("unpacked");
        let mut links = BTreeMap::new();
        let result = hoist::publish::archive::unpack_archive(
            &archive,
            &into,
            record_links.then_some(&mut links),
        );
        let after = tree(sandbox.path());
        for (path, is_link) in &after {
            if path.starts_with("unpacked") {
                prop_assert!(!is_link, "a symlink was created: {path:?}");
            } else {
                prop_assert!(before.contains_key(path), "created outside: {path:?}");
            }
        }
        prop_assert_eq!(
            fs::read_to_string(sandbox.path().join("etc/passwd")).unwrap(),
            "root:x:0:0\n"
        );
        if result.is_ok() {
            for entry in &entries {
                prop_assert!(!escapes(&entry.name), "accepted {:?}", entry.name);
                let allowed = match entry.kind {
                    Kind::File | Kind::Dir => true,
                    Kind::Symlink => record_links,
                    Kind::HardLink | Kind::Fifo => false,
                };
                prop_assert!(allowed, "accepted a {:?}: {:?}", entry.kind, entry.name);
            }
            for (link, target) in &links {
                prop_assert!(!escapes(&link.to_string_lossy()), "link {link:?} → {target:?}");
            }
        }
    }
}
