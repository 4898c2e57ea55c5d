//! Reproducibility: a golden digest, independence from mtimes, creation order, thread
//! count, time zone and locale; SOURCE_DATE_EPOCH; the layer cache.

use std::fs;
use std::path::Path;

use filetime::FileTime;
use serde_json::Value;

use crate::common::{
    Layout, Sandbox, base_layout, copy_tree, example_dir, files_under, gunzip, last_line,
    normalise_modes, parse_json, stdout, success, tar_entries,
};

/// The index digest of the dashboard example built from [`golden_tree`] with no
/// `SOURCE_DATE_EPOCH`. Pinned: it must be the same on every machine and every run.
///
/// It changes only when the image format changes deliberately (tar headers, gzip
/// encoder, canonical JSON, config edits, annotations, the wheel installer), when the
/// fixtures change (`testdata/base`, `examples/dashboard/hoist.toml`'s settings,
/// `frontend/dist`, `backend` with its lock and wheels), or when hoist's version changes: the version is recorded in the `io.hoist.version`
/// annotation (docs/reproducibility.md), so every version bump moves this digest.
/// Then update it in the same commit, after checking the change is intended: run
/// `cargo test --test it golden` and paste the digest the failure message shows.
const GOLDEN_DIGEST: &str =
    "sha256:a3f99e8b6baba4c1879aa49110be449caa36bc1f2f3b14633fa99e4bf55dc6ec";

/// The dashboard example's hoist.toml, with the base at a path that is the same on
/// every machine (base.name is recorded in the annotations).
fn golden_toml() -> String {
    let toml = fs::read_to_string(crate::common::example_config()).unwrap();
    let committed = "base = \"oci:../../testdata/base:1.0\"";
    assert!(toml.contains(committed), "the example's base line: {toml}");
    toml.replace(committed, "base = \"oci:base:1.0\"")
}

/// Writes the golden input tree at `root`: hoist.toml, a copy of `testdata/base` as
/// `base/`, and the example's `frontend/dist` and `backend`, created in forward or
/// reverse order, with every mtime set to `mtime` and modes set explicitly (0644
/// files, 0755 directories) so neither the checkout's umask nor its clock matters.
fn golden_tree(root: &Path, reverse: bool, mtime: i64) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("hoist.toml"), golden_toml()).unwrap();
    copy_tree(&base_layout(), &root.join("base"));
    let mut files = Vec::new();
    for dir in ["frontend/dist", "backend"] {
        for file in files_under(&example_dir().join(dir)) {
            files.push(Path::new(dir).join(file));
        }
    }
    if reverse {
        files.reverse();
    }
    for file in &files {
        let target = root.join(file);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(example_dir().join(file), &target).unwrap();
    }
    for dir in ["frontend", "backend"] {
        normalise_modes(&root.join(dir));
        set_mtimes(&root.join(dir), FileTime::from_unix_time(mtime, 0));
    }
}

/// Sets the mtime of everything under `path` (children first, so writing them does
/// not bump a directory's mtime afterwards).
fn set_mtimes(path: &Path, time: FileTime) {
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            set_mtimes(&entry.unwrap().path(), time);
        }
    }
    filetime::set_file_mtime(path, time).unwrap();
}

/// Builds `<tree>/hoist.toml` into `oci:<sandbox>/<out>` with `--json`; returns the
/// summary.
fn build_json(sandbox: &Sandbox, tree: &Path, out: &str, configure: &[(&str, &str)]) -> Value {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(tree.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci(out))
        .arg("--json");
    for (key, value) in configure {
        if key.starts_with("--") {
            command.arg(key);
            if !value.is_empty() {
                command.arg(value);
            }
        } else {
            command.env(key, value);
        }
    }
    parse_json(&stdout(&success(&mut command)))
}

fn digest(summary: &Value) -> &str {
    summary["digest"].as_str().expect("summary digest")
}

/// `cached` of each new (non-base) layer of the first platform.
fn cached_flags(summary: &Value) -> Vec<bool> {
    summary["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["origin"] != "base")
        .map(|l| l["cached"].as_bool().expect("cached is a bool"))
        .collect()
}

#[test]
fn golden_digest() {
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    golden_tree(&tree, false, 1_234_567_890);
    let mut command = sandbox.build();
    command
        .current_dir(&tree)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let out = stdout(&success(&mut command));
    assert_eq!(
        last_line(&out),
        GOLDEN_DIGEST,
        "the golden digest changed: if the format changed on purpose, update GOLDEN_DIGEST"
    );
    let index = Layout::open(sandbox.path("out")).json(GOLDEN_DIGEST);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.base.name"],
        "oci:base:1.0"
    );
    // The rebuild inputs `hoist verify` reads back.
    assert_eq!(
        index["annotations"]["io.hoist.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(index["annotations"]["io.hoist.compression"], "gzip");
    assert_eq!(index["annotations"]["io.hoist.compression.level"], "6");
    assert_eq!(index["annotations"]["io.hoist.source-date-epoch"], "0");
}

#[test]
fn digest_ignores_mtimes_order_jobs_timezone_and_locale() {
    let one = Sandbox::new();
    let tree_one = one.path("checkout-one");
    golden_tree(&tree_one, false, 1_000_000);
    let first = build_json(&one, &tree_one, "out", &[("--jobs", "1")]);

    let two = Sandbox::new();
    let tree_two = two.path("somewhere/else/checkout-two");
    golden_tree(&tree_two, true, 1_600_000_000);
    let second = build_json(
        &two,
        &tree_two,
        "out",
        &[("--jobs", "4"), ("TZ", "Asia/Tokyo"), ("LANG", "C")],
    );

    assert_eq!(digest(&first), digest(&second));
    assert_eq!(
        digest(&first),
        GOLDEN_DIGEST,
        "the golden tree's digest, whatever the mtimes"
    );
}

/// Deterministic pseudo-random letters from a 16-letter alphabet: compressible to
/// about half, with many short matches, over several gzip blocks. Input like this makes
/// a block's deflate output sensitive to any state a compressor carries over from the
/// block it compressed before, which text with a small vocabulary rarely shows.
fn multi_block_text(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"abcdefghijklmnop"[(state >> 60) as usize]
        })
        .collect()
}

/// A 3 MiB file spans many gzip blocks, so several threads really share the work
/// (the example's files fit in one block). Each thread count is run more than once:
/// a difference between runs is as much a bug as one between thread counts.
#[test]
fn thread_count_does_not_change_a_multi_block_layer() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n\n[[layer]]\nfrom = \"data\"\nto = \"/data\"\n",
    );
    fs::create_dir_all(sandbox.path("data")).unwrap();
    fs::write(sandbox.path("data/big.txt"), multi_block_text(3 << 20)).unwrap();
    let mut results = Vec::new();
    for (run, jobs) in ["1", "2", "4", "2", "4", "2", "4", "1"]
        .into_iter()
        .enumerate()
    {
        let summary = build_json(
            &sandbox,
            sandbox.root(),
            &format!("out-{run}"),
            &[("--jobs", jobs), ("--no-cache", "")],
        );
        let layer = &summary["platforms"][0]["layers"][0];
        assert_eq!(layer["cached"], false, "--no-cache");
        results.push((
            jobs,
            layer["digest"].as_str().unwrap().to_owned(),
            layer["size"].as_u64().unwrap(),
            digest(&summary).to_owned(),
        ));
    }
    let (_, first_layer, _, first_index) = &results[0];
    for (jobs, layer, size, index) in &results {
        assert!(
            layer == first_layer && index == first_index,
            "--jobs {jobs} gave layer {layer} ({size} bytes), --jobs 1 gave {first_layer}; all runs:\n{results:#?}"
        );
    }
}

#[test]
fn source_date_epoch_sets_created_and_mtimes() {
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    golden_tree(&tree, false, 1_234_567_890);
    let summary = build_json(
        &sandbox,
        &tree,
        "out",
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert_ne!(digest(&summary), GOLDEN_DIGEST);
    let layout = Layout::open(sandbox.path("out"));
    for image in layout.platforms("latest") {
        assert_eq!(image.config["created"], "2023-11-14T22:13:20Z");
        let history = image.config["history"].as_array().unwrap();
        for entry in &history[1..] {
            assert_eq!(entry["created"], "2023-11-14T22:13:20Z");
        }
        for layer in &image.layer_digests()[1..] {
            for entry in tar_entries(&gunzip(&layout.blob(layer))) {
                assert_eq!(entry.mtime, 1_700_000_000, "{}", entry.path);
            }
        }
    }
}

#[test]
fn layer_cache_reuses_unchanged_layers_and_sees_content_changes() {
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    golden_tree(&tree, false, 1_234_567_890);

    let first = build_json(&sandbox, &tree, "out1", &[]);
    assert_eq!(cached_flags(&first), [false, false, false]);
    let second = build_json(&sandbox, &tree, "out2", &[]);
    assert_eq!(
        cached_flags(&second),
        [true, true, true],
        "second build: cached"
    );
    assert_eq!(digest(&first), digest(&second));

    // One byte changed, same size, same mtime: the cache must notice.
    let main = tree.join("backend/main.py");
    let mtime = FileTime::from_last_modification_time(&fs::metadata(&main).unwrap());
    let mut bytes = fs::read(&main).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'#' { b'!' } else { b'#' };
    fs::write(&main, &bytes).unwrap();
    filetime::set_file_mtime(&main, mtime).unwrap();
    assert_eq!(fs::metadata(&main).unwrap().len() as usize, bytes.len());

    let third = build_json(&sandbox, &tree, "out3", &[]);
    assert_ne!(digest(&third), digest(&first), "content changed");
    assert_eq!(
        cached_flags(&third),
        [true, true, false],
        "frontend and python packages reused, backend rebuilt"
    );
    let fourth = build_json(&sandbox, &tree, "out4", &[("--no-cache", "")]);
    assert_eq!(cached_flags(&fourth), [false, false, false], "--no-cache");
    assert_eq!(digest(&fourth), digest(&third));

    let layout = Layout::open(sandbox.path("out3"));
    let backend = &layout.platforms("latest")[0].layer_digests()[3];
    let entries = tar_entries(&gunzip(&layout.blob(backend)));
    let in_layer = entries.iter().find(|e| e.path == "app/main.py").unwrap();
    assert_eq!(in_layer.data, bytes, "the new content is in the layer");
}
