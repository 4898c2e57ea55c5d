//! Throughput of `hoist_layers::build_layer` on a generated source tree.
//!
//! The tree (64 MiB by default; `HOIST_BENCH_MIB` overrides) mixes prose-like text
//! files of many sizes with incompressible random files, about 2:1 by bytes, like an
//! application directory with a few binary assets. `HOIST_BENCH_SOURCE=<dir>` benches
//! an existing directory instead. Throughput is reported in bytes of file content
//! archived per second. Run with `cargo bench --bench layers`.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::BytesCount;
use hoist_layers::{BlobStore, BuildOptions, Compression, LayerSpec, NoProgress, build_layer};

fn main() {
    divan::main();
}

/// A generated source tree and a blob store, shared by every benchmark.
struct Fixture {
    _dir: tempfile::TempDir,
    source: PathBuf,
    store: BlobStore,
    bytes: u64,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, bytes) = if let Some(source) = std::env::var_os("HOIST_BENCH_SOURCE") {
        let source = PathBuf::from(source);
        let bytes = file_bytes(&source);
        (source, bytes)
    } else {
        let mib: u64 = std::env::var("HOIST_BENCH_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64);
        let source = dir.path().join("src");
        let bytes = generate_tree(&source, mib << 20);
        (source, bytes)
    };
    let store = BlobStore::open(dir.path().join("store")).expect("blob store");
    Fixture {
        _dir: dir,
        source,
        store,
        bytes,
    }
});

/// Total size of the regular files under `dir` (symlinks not followed).
fn file_bytes(dir: &std::path::Path) -> u64 {
    fs::read_dir(dir)
        .expect("read bench source")
        .map(|entry| {
            let entry = entry.expect("read bench source");
            let file_type = entry.file_type().expect("stat bench source");
            if file_type.is_dir() {
                file_bytes(&entry.path())
            } else if file_type.is_file() {
                entry.metadata().expect("stat bench source").len()
            } else {
                0
            }
        })
        .sum()
}

/// xorshift64: deterministic, dependency-free noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Prose-like text: words of 2–10 random letters from a 4096-word vocabulary, drawn with
/// a skew towards common words, like natural language and source code. (A tiny
/// vocabulary would make deflate's match search unrealistically slow, pure noise
/// unrealistically incompressible.)
fn text(rng: &mut Rng, vocabulary: &[Vec<u8>], len: usize) -> Vec<u8> {
    let n = vocabulary.len() as u64;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let index = rng.below(n) * rng.below(n) / n;
        out.extend_from_slice(&vocabulary[index as usize]);
        out.push(match rng.below(16) {
            0 => b'\n',
            1 => b'.',
            2 => b',',
            _ => b' ',
        });
    }
    out.truncate(len);
    out
}

fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes about `total` bytes under `root`; returns the exact count.
fn generate_tree(root: &std::path::Path, total: u64) -> u64 {
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    let vocabulary: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let len = 2 + rng.below(9);
            (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
        })
        .collect();
    let mut written = 0;
    let mut index = 0;
    while written < total {
        let dir = root.join(format!("pkg{:02}/lib{}", index % 23, index % 5));
        fs::create_dir_all(&dir).expect("create dir");
        // One file in ten is random data of 256 KiB..2 MiB, the rest text of 1..512 KiB:
        // about two thirds of the bytes are text, as in an application with some assets.
        let (name, contents) = if index % 10 == 9 {
            let len = (256 << 10) + rng.below(7 << 18) as usize;
            (format!("asset{index}.bin"), noise(&mut rng, len))
        } else {
            let len = 1024 + rng.below(511 << 10) as usize;
            (
                format!("module{index}.js"),
                text(&mut rng, &vocabulary, len),
            )
        };
        fs::write(dir.join(name), &contents).expect("write file");
        written += contents.len() as u64;
        index += 1;
    }
    written
}

#[derive(Clone, Copy, Debug)]
enum Threads {
    One,
    AllCores,
}

impl fmt::Display for Threads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threads::One => f.write_str("1 thread"),
            Threads::AllCores => write!(
                f,
                "all {} cores",
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            ),
        }
    }
}

impl Threads {
    fn count(self) -> usize {
        match self {
            Threads::One => 1,
            Threads::AllCores => 0,
        }
    }
}

fn bench_build(bencher: Bencher, compression: Compression, threads: Threads) {
    let fixture = &*FIXTURE;
    let mut spec = LayerSpec::new(&fixture.source, "/app");
    spec.compression = compression;
    let options = BuildOptions {
        threads: threads.count(),
        use_cache: false,
    };
    bencher
        .counter(BytesCount::new(fixture.bytes))
        .bench(|| build_layer(&spec, &fixture.store, &options, &NoProgress).expect("build"));
}

const THREADS: [Threads; 2] = [Threads::One, Threads::AllCores];

#[divan::bench(args = THREADS, sample_count = 3, sample_size = 1)]
fn gzip_level6(bencher: Bencher, threads: Threads) {
    bench_build(bencher, Compression::Gzip { level: 6 }, threads);
}

#[divan::bench(args = THREADS, sample_count = 3, sample_size = 1)]
fn gzip_level1(bencher: Bencher, threads: Threads) {
    bench_build(bencher, Compression::Gzip { level: 1 }, threads);
}

#[divan::bench(args = THREADS, sample_count = 3, sample_size = 1)]
fn zstd_level3(bencher: Bencher, threads: Threads) {
    bench_build(bencher, Compression::Zstd { level: 3 }, threads);
}

/// A cache hit still reads and hashes every file (content is never trusted by size or
/// mtime), so this is the floor for an unchanged layer.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn cache_hit(bencher: Bencher) {
    let fixture = &*FIXTURE;
    let spec = LayerSpec::new(&fixture.source, "/app");
    let options = BuildOptions {
        threads: 0,
        use_cache: true,
    };
    build_layer(&spec, &fixture.store, &options, &NoProgress).expect("warm the cache");
    bencher.counter(BytesCount::new(fixture.bytes)).bench(|| {
        let built = build_layer(&spec, &fixture.store, &options, &NoProgress).expect("build");
        assert!(built.from_cache);
        built
    });
}
