//! The readers of what hoist did not make allocate a bounded amount whatever their
//! input: layer tars (the shared tar reader, diff's listing) and archives (the
//! unpacker) built from arbitrary members — extension headers claiming up to 16 GiB
//! (or up to 32 MiB, every byte present), sizes that lie, truncations, garbage, gzip or zstd or plain — and layouts and
//! docker archives whose `oci-layout`, `index.json`, manifests and `manifest.json` are
//! arbitrary, or (sparse) files of gigabytes. None panics; each answers a value or an
//! error, and the most it allocated at once is measured by a counting global
//! allocator, which is why this is a test binary of its own (with one test: the count
//! is process-wide).
//!
//! `PROPTEST_CASES=5000 cargo test --test bounded_memory` runs it longer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write as _};
use std::path::Path;

use hoist::tar_reader::{EXTENSION_LIMIT, TarError, TarReader, layer_entries};
use hoist_layers::Digest;
use peak_alloc::PeakAlloc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// What one read may hold at once: three pending extension headers (long name, long
/// link, PAX) at their limit, and a few MiB of buffers, decompressor state and
/// listing. A reader that held a claim would need gigabytes.
const TAR_BOUND: usize = 3 * EXTENSION_LIMIT as usize + (4 << 20);

/// What reading a layout or a docker archive may hold at once: the generated documents
/// are small (a few KiB), so anything near a limit (4 or 16 MiB) means a claim or a
/// file size was believed.
const DOCUMENT_BOUND: usize = 2 << 20;

/// The most `read` allocated at once beyond what was allocated before it.
fn peak_during<T>(read: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let out = read();
    (out, ALLOCATOR.peak_usage().saturating_sub(before))
}

fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 96;
    }
    config
}

/// One member of a generated tar.
#[derive(Clone, Debug)]
enum Member {
    /// A header of `kind` claiming `claim` bytes, followed by `data` (which may be
    /// fewer or more bytes than claimed).
    Header {
        kind: u8,
        name: String,
        claim: u64,
        data: Vec<u8>,
    },
    /// Bytes that are no header.
    Garbage(Vec<u8>),
    /// The end-of-archive blocks.
    End,
}

fn claim() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..2048,
        1 => (EXTENSION_LIMIT - 2)..(EXTENSION_LIMIT + 2),
        2 => (1u64 << 30)..(1u64 << 34),
    ]
}

fn member() -> impl Strategy<Value = Member> {
    let kind = prop_oneof![
        Just(b'0'),
        Just(b'5'),
        Just(b'2'),
        Just(b'1'),
        Just(b'L'),
        Just(b'K'),
        Just(b'x'),
        Just(b'g'),
        Just(b'S'),
        any::<u8>(),
    ];
    let extension = prop_oneof![Just(b'L'), Just(b'K'), Just(b'x'), Just(b'g')];
    prop_oneof![
        8 => (kind, "[a-z/.]{0,12}", claim(), prop::collection::vec(any::<u8>(), 0..1500))
            .prop_map(|(kind, name, claim, data)| Member::Header { kind, name, claim, data }),
        // An extension header over its limit with every byte it claims there (zeros:
        // what a hostile layer compresses 1000:1), which an unbounded reader would hold.
        1 => (extension, (EXTENSION_LIMIT + 1)..(32 << 20)).prop_map(|(kind, claim)| {
            Member::Header {
                kind,
                name: "././@LongLink".into(),
                claim,
                data: vec![0; usize::try_from(claim).unwrap()],
            }
        }),
        1 => prop::collection::vec(any::<u8>(), 0..1100).prop_map(Member::Garbage),
        1 => Just(Member::End),
    ]
}

fn tar_of(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for member in members {
        match member {
            Member::Header {
                kind,
                name,
                claim,
                data,
            } => {
                let mut header = tar::Header::new_gnu();
                header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
                header.set_entry_type(tar::EntryType::new(*kind));
                header.set_size(*claim);
                header.set_mode(0o644);
                header.set_cksum();
                out.extend_from_slice(header.as_bytes());
                out.extend_from_slice(data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            Member::Garbage(bytes) => out.extend_from_slice(bytes),
            Member::End => out.extend_from_slice(&[0; 1024]),
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

fn compress(tar: &[u8], how: Compression) -> Vec<u8> {
    match how {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            gz.finish().unwrap()
        }
        Compression::Zstd => zstd::stream::encode_all(tar, 1).unwrap(),
    }
}

fn layer() -> impl Strategy<Value = (Vec<u8>, Compression)> {
    (
        prop::collection::vec(member(), 0..8),
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Zstd)
        ],
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(members, how, cut, truncate)| {
            let mut tar = tar_of(&members);
            if truncate && !tar.is_empty() {
                tar.truncate(cut.index(tar.len()));
            }
            (compress(&tar, how), how)
        })
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads every entry and its content; answers how it ended.
fn read_all<R: Read>(entries: &mut TarReader<R>) -> Result<usize, TarError> {
    let mut count = 0;
    while let Some(header) = entries.next_header()? {
        let _ = header.path();
        io::copy(entries, &mut io::sink()).map_err(|source| TarError::Io {
            what: "content".into(),
            offset: 0,
            source,
        })?;
        count += 1;
    }
    Ok(count)
}

/// One test, the properties in turn: the allocator's count is the whole process's,
/// and the test harness would otherwise generate one property's cases (tens of MiB of
/// zeros) while another is measured.
#[test]
fn readers_of_untrusted_input_allocate_a_bounded_amount() {
    // Once unmeasured first: what the readers set up on first use (lazily built
    // statics, the blob store's first directory) is not what an input makes them hold.
    let _ = tar_readers((Vec::new(), Compression::Gzip));
    let _ = archive_unpacking((Vec::new(), false));
    let expected = || Document::Expected;
    let _ = layout_documents((expected(), expected(), expected(), 0, expected()));
    let mut runner = TestRunner::new(config());
    runner.run(&layer(), tar_readers).unwrap();
    let mut runner = TestRunner::new(config());
    runner
        .run(
            &(prop::collection::vec(member(), 0..8), any::<bool>()),
            archive_unpacking,
        )
        .unwrap();
    let mut runner = TestRunner::new(config());
    runner
        .run(
            &(document(), document(), document(), claim(), document()),
            layout_documents,
        )
        .unwrap();
}

/// The shared tar reader and diff's listing, on any layer.
fn tar_readers((bytes, how): (Vec<u8>, Compression)) -> Result<(), TestCaseError> {
    let digest = Digest::sha256_of(b"generated");
    let (_, peak) = peak_during(|| hoist::diff::layer::list_layer(&bytes[..], &digest));
    prop_assert!(
        peak <= TAR_BOUND,
        "diff's listing held {peak} bytes ({how:?})"
    );
    let (_, peak) = peak_during(|| layer_entries(&bytes[..]).and_then(|mut e| read_all(&mut e)));
    prop_assert!(
        peak <= TAR_BOUND,
        "the tar reader held {peak} bytes ({how:?})"
    );
    if matches!(how, Compression::None) {
        // Unbuffered: an oversized extension header is refused having read its
        // 512-byte header and nothing of what it claims.
        let mut source = Counting {
            inner: &bytes[..],
            read: 0,
        };
        let mut entries = TarReader::new(&mut source);
        if let Err(TarError::ExtensionTooLarge { offset, .. }) = read_all(&mut entries) {
            drop(entries);
            prop_assert_eq!(source.read, offset + 512);
        }
    }
    Ok(())
}

/// The unpacker of oci-archive and docker-archive files, on any plain tar.
fn archive_unpacking((members, record_links): (Vec<Member>, bool)) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive.tar");
    fs::write(&archive, tar_of(&members)).unwrap();
    let mut links = BTreeMap::new();
    let into = dir.path().join("unpacked");
    let (_, peak) = peak_during(|| {
        hoist::publish::archive::unpack_archive(&archive, &into, record_links.then_some(&mut links))
    });
    prop_assert!(peak <= TAR_BOUND, "unpacking held {peak} bytes");
    Ok(())
}

/// A layout (`oci-layout`, `index.json`, a manifest) and a docker archive's
/// `manifest.json`, each expected, arbitrary or a sparse file of gigabytes.
fn layout_documents(
    (marker, index, manifest, manifest_claim, archive_manifest): (
        Document,
        Document,
        Document,
        u64,
        Document,
    ),
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let manifest_bytes = manifest.write_bytes(&blobs.join("m"));
    let digest = Digest::sha256_of(&manifest_bytes);
    fs::rename(blobs.join("m"), blobs.join(digest.hex())).unwrap();
    marker.write(
        &root.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let entry = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{manifest_claim},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
    );
    index.write(&root.join("index.json"), &entry);
    let (_, peak) = peak_during(|| {
        hoist::oci::layout::Layout::open(&root).and_then(|layout| {
            hoist::oci::source::load_layout(&layout, &hoist::oci::location::Selector::Default)
        })
    });
    prop_assert!(
        peak <= DOCUMENT_BOUND,
        "reading the layout held {peak} bytes"
    );

    let unpacked = dir.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    archive_manifest.write(
        &unpacked.join("manifest.json"),
        r#"[{"Config":"c.json","RepoTags":["a:b"],"Layers":[]}]"#,
    );
    let (_, peak) = peak_during(|| {
        hoist::oci::docker_archive::to_layout(
            Path::new("archive.tar"),
            &unpacked,
            &BTreeMap::new(),
            None,
            &dir.path().join("out"),
        )
    });
    prop_assert!(
        peak <= DOCUMENT_BOUND,
        "reading the docker archive held {peak} bytes"
    );
    Ok(())
}

/// A generated document file: the expected text, arbitrary bytes, or a sparse file of
/// up to 16 GiB.
#[derive(Clone, Debug)]
enum Document {
    Expected,
    Bytes(Vec<u8>),
    Sparse(u64),
}

fn document() -> impl Strategy<Value = Document> {
    prop_oneof![
        4 => Just(Document::Expected),
        2 => prop::collection::vec(any::<u8>(), 0..4096).prop_map(Document::Bytes),
        2 => (1u64 << 20..1u64 << 34).prop_map(Document::Sparse),
    ]
}

impl Document {
    fn write(&self, path: &Path, expected: &str) {
        match self {
            Document::Expected => fs::write(path, expected).unwrap(),
            Document::Bytes(bytes) => fs::write(path, bytes).unwrap(),
            Document::Sparse(size) => fs::File::create(path).unwrap().set_len(*size).unwrap(),
        }
    }

    /// Writes a manifest blob; answers the bytes its digest is taken of (a sparse
    /// file's digest is of nothing: it is refused by size before it is hashed).
    fn write_bytes(&self, path: &Path) -> Vec<u8> {
        let expected = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        self.write(path, expected);
        match self {
            Document::Expected => expected.as_bytes().to_vec(),
            Document::Bytes(bytes) => bytes.clone(),
            Document::Sparse(_) => Vec::new(),
        }
    }
}
