//! Bad input: every failure exits non-zero, names the path, field or reference at
//! fault, and leaves nothing at the output path.

use std::fs;
use std::path::PathBuf;

use crate::common::{
    BASE_AMD64_CONFIG, BASE_AMD64_LAYER, Sandbox, base_layout, copy_tree, example_config, failure,
    files_under,
};

/// A sandbox with `src/hello.txt` and `hoist.toml` = `[image]` on the committed base
/// plus `extra` (layers, config).
fn project(extra: &str) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.write("src/hello.txt", "hello\n");
    let config = sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"oci:{}:1.0\"\n\n{extra}",
            base_layout().display()
        ),
    );
    (sandbox, config)
}

const ONE_LAYER: &str = "[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n";

/// Runs `hoist build --config CONFIG --output oci:<sandbox>/out EXTRA…`, asserts it
/// fails and that `out` was not created; returns stderr.
fn build_fails(sandbox: &Sandbox, config: &std::path::Path, extra: &[&str]) -> String {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(config)
        .arg("--output")
        .arg(sandbox.oci("out"))
        .args(extra);
    let err = failure(&mut command);
    assert!(
        !sandbox.path("out").exists(),
        "a failed build must leave nothing at the output path; stderr:\n{err}"
    );
    err
}

fn assert_mentions(err: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            err.contains(needle),
            "stderr should mention {needle:?}:\n{err}"
        );
    }
}

#[test]
fn missing_config_file() {
    let sandbox = Sandbox::new();
    let config = sandbox.path("nope/hoist.toml");
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &[config.to_str().unwrap()]);
}

#[test]
fn unknown_config_key() {
    let (sandbox, config) = project(&format!(
        "{ONE_LAYER}\n[config]\nentrypiont = [\"python3\"]\n"
    ));
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &["entrypiont", "line"]);
}

// Layers are numbered from 0 in messages (`layer[0]` is the first [[layer]] table), as
// the provenance names them.

#[test]
fn layer_from_missing() {
    let (sandbox, config) = project("[[layer]]\nfrom = \"nowhere\"\nto = \"/x\"\n");
    let err = build_fails(&sandbox, &config, &[]);
    let missing = sandbox.path("nowhere");
    assert_mentions(&err, &["layer[0].from", missing.to_str().unwrap()]);
}

#[test]
fn layer_to_relative() {
    let (sandbox, config) = project("[[layer]]\nfrom = \"src\"\nto = \"srv\"\n");
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &["layer[0].to"]);
}

#[test]
fn layer_to_with_dot_dot() {
    let (sandbox, config) = project("[[layer]]\nfrom = \"src\"\nto = \"/srv/../etc\"\n");
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &["layer[0].to", ".."]);
}

#[test]
fn unknown_platform_string() {
    let (sandbox, config) = project(ONE_LAYER);
    let err = build_fails(&sandbox, &config, &["--platform", "banana"]);
    assert_mentions(&err, &["banana"]);
}

#[test]
fn platform_the_base_lacks() {
    let (sandbox, config) = project(ONE_LAYER);
    let err = build_fails(&sandbox, &config, &["--platform", "linux/s390x"]);
    assert_mentions(&err, &["linux/s390x", "linux/amd64", "linux/arm64"]);
}

#[test]
fn fifo_in_a_source_tree() {
    let (sandbox, config) = project(ONE_LAYER);
    let fifo = sandbox.path("src/pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &[fifo.to_str().unwrap()]);
}

/// A copy of `testdata/base` in the sandbox and a config using it.
fn project_with_base_copy() -> (Sandbox, PathBuf, PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.write("src/hello.txt", "hello\n");
    let base = sandbox.path("base");
    copy_tree(&base_layout(), &base);
    let config = sandbox.write(
        "hoist.toml",
        &format!("[image]\nbase = \"oci:base:1.0\"\n\n{ONE_LAYER}"),
    );
    (sandbox, config, base)
}

fn blob(base: &std::path::Path, digest: &str) -> PathBuf {
    base.join("blobs/sha256").join(&digest[7..])
}

fn flip_a_byte(path: &std::path::Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// The message says the content does not match its digest.
fn assert_digest_mismatch(err: &str) {
    let lower = err.to_lowercase();
    assert!(
        lower.contains("mismatch") || lower.contains("does not match"),
        "a digest mismatch:\n{err}"
    );
}

#[test]
fn base_with_a_missing_blob() {
    let (sandbox, config, base) = project_with_base_copy();
    fs::remove_file(blob(&base, BASE_AMD64_LAYER)).unwrap();
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &[BASE_AMD64_LAYER]);
}

#[test]
fn base_with_a_corrupted_config() {
    let (sandbox, config, base) = project_with_base_copy();
    flip_a_byte(&blob(&base, BASE_AMD64_CONFIG), 100);
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &[BASE_AMD64_CONFIG]);
    assert_digest_mismatch(&err);
}

#[test]
fn base_with_a_corrupted_layer() {
    let (sandbox, config, base) = project_with_base_copy();
    let layer = blob(&base, BASE_AMD64_LAYER);
    let size = fs::metadata(&layer).unwrap().len();
    flip_a_byte(&layer, 500_000);
    assert_eq!(fs::metadata(&layer).unwrap().len(), size);
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &[BASE_AMD64_LAYER]);
    assert_digest_mismatch(&err);
}

#[test]
fn output_dir_that_is_not_a_layout() {
    let (sandbox, config) = project(ONE_LAYER);
    let out = sandbox.path("out");
    sandbox.write("out/notes.txt", "mine\n");
    sandbox.write("out/sub/more.txt", "also mine\n");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = failure(&mut command);
    assert_mentions(&err, &[out.to_str().unwrap()]);
    assert_eq!(
        files_under(&out),
        [PathBuf::from("notes.txt"), PathBuf::from("sub/more.txt")],
        "the directory's contents are untouched"
    );
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine\n");
}

#[test]
fn output_path_that_is_a_file() {
    let (sandbox, config) = project(ONE_LAYER);
    let out = sandbox.write("out", "a file\n");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = failure(&mut command);
    assert_mentions(&err, &[out.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "a file\n");
}

#[test]
fn docker_archive_as_base() {
    let (sandbox, config) = project(ONE_LAYER);
    sandbox.write("img.tar", "not really\n");
    let err = build_fails(&sandbox, &config, &["--base", "docker-archive:img.tar"]);
    assert_mentions(&err, &["docker-archive"]);
}

#[test]
fn label_without_value() {
    let (sandbox, config) = project(ONE_LAYER);
    let err = build_fails(&sandbox, &config, &["--label", "novalue"]);
    assert_mentions(&err, &["--label", "novalue"]);
}

#[test]
fn bad_source_date_epoch() {
    let (sandbox, config) = project(ONE_LAYER);
    let mut command = sandbox.build();
    command
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(sandbox.oci("out"));
    let err = failure(&mut command);
    assert_mentions(&err, &["SOURCE_DATE_EPOCH"]);
    assert!(!sandbox.path("out").exists());
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--frobnicate")
        .arg("--output")
        .arg(sandbox.oci("out"));
    let output = command.assert().code(2).get_output().clone();
    assert!(String::from_utf8_lossy(&output.stderr).contains("--frobnicate"));
    assert!(!sandbox.path("out").exists());
}

#[test]
fn invalid_config_values_name_their_field() {
    let cases = [
        ("[config]\nworkdir = \"rel\"\n", "config.workdir"),
        ("[config]\nvolumes = [\"data\"]\n", "config.volumes"),
        ("[config]\nports = [\"80/foo\"]\n", "config.ports"),
        (
            "[config]\nhealthcheck = { test = [\"CMD\", \"true\"], interval = \"5 minutes\" }\n",
            "config.healthcheck.interval",
        ),
        (
            "[[layer]]\nfrom = \"src\"\nto = \"/srv\"\nowner = \"app\"\n",
            "layer[0].owner",
        ),
        (
            "[[layer]]\nfrom = \"src\"\nto = \"/srv\"\nmodes = \"weird\"\n",
            "layer[0].modes",
        ),
        // A layer with a source needs a destination (a whiteout-only layer does not).
        ("[[layer]]\nfrom = \"src\"\n", "layer[0].to"),
    ];
    for (extra, field) in cases {
        let (sandbox, config) = project(extra);
        let err = build_fails(&sandbox, &config, &[]);
        assert_mentions(&err, &[field]);
    }
    for (flags, needle) in [
        (&["--compression-level", "10"][..], "--compression-level"),
        (
            &["--compression", "zstd", "--compression-level", "23"],
            "--compression-level",
        ),
        (&["--compression", "brotli"], "--compression"),
        (&["--format", "docker"], "--format"),
        (&["--env", "NOVALUE"], "--env"),
    ] {
        let (sandbox, config) = project(ONE_LAYER);
        let err = build_fails(&sandbox, &config, flags);
        assert_mentions(&err, &[needle]);
    }
}

#[test]
fn base_flag_errors_name_the_flag() {
    let (sandbox, config) = project(ONE_LAYER);
    let err = build_fails(&sandbox, &config, &["--base", "docker-archive:img.tar"]);
    assert_mentions(&err, &["--base", "docker-archive:img.tar"]);

    // The same base in the file names the key.
    let (sandbox, config) = project(ONE_LAYER);
    fs::write(
        &config,
        format!("[image]\nbase = \"docker-archive:img.tar\"\n\n{ONE_LAYER}"),
    )
    .unwrap();
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &["image.base", "docker-archive:img.tar"]);
}

#[test]
fn failed_build_leaves_an_existing_layout_and_digest_file_alone() {
    let (sandbox, config, base) = project_with_base_copy();
    // An image that does not share the base's blobs (a copy of a blob the layout
    // already holds is skipped, so it would not be read).
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .args(["--base", "scratch", "--platform", "linux/amd64"])
        .arg("--output")
        .arg(sandbox.oci("out:good"));
    crate::common::success(&mut command);
    let index_before = fs::read(sandbox.path("out/index.json")).unwrap();

    flip_a_byte(&blob(&base, BASE_AMD64_LAYER), 500_000);
    let digest_file = sandbox.path("digest.txt");
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .arg("--no-cache")
        .arg("--label")
        .arg("other=1")
        .arg("--digest-file")
        .arg(&digest_file)
        .arg("--output")
        .arg(sandbox.oci("out:bad"));
    let err = failure(&mut command);
    assert_digest_mismatch(&err);
    assert_eq!(
        fs::read(sandbox.path("out/index.json")).unwrap(),
        index_before,
        "index.json untouched by the failed build"
    );
    assert!(!digest_file.exists(), "no digest file for a failed build");
    let layout = crate::common::Layout::open(sandbox.path("out"));
    assert_eq!(layout.ref_names(), ["good"]);
    assert_eq!(layout.platforms("good").len(), 1, "the good image is whole");
}

#[test]
fn layer_platform_the_base_lacks() {
    // A typo in a per-layer platform must not silently drop the layer.
    let (sandbox, config) = project(&format!("{ONE_LAYER}platform = \"linux/s390x\"\n"));
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(
        &err,
        &[
            "layer[0].platform",
            "linux/s390x",
            "linux/amd64",
            "linux/arm64",
        ],
    );
}

#[test]
fn digest_file_in_a_missing_directory_fails_before_building() {
    let (sandbox, config) = project(ONE_LAYER);
    let digest_file = sandbox.path("no/such/dir/digest");
    let err = build_fails(
        &sandbox,
        &config,
        &["--digest-file", digest_file.to_str().unwrap()],
    );
    assert_mentions(&err, &["--digest-file", "no/such/dir", "does not exist"]);
    assert!(
        !err.contains(".tmp"),
        "no temporary path in the message:\n{err}"
    );
}

#[test]
fn layer_platform_not_built_on_scratch() {
    // Scratch has every platform: a layer limited to one not being built is a typo
    // that would silently drop it.
    let sandbox = Sandbox::new();
    sandbox.write("src/hello.txt", "hello\n");
    let config = sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n\n{ONE_LAYER}platform = \"linux/arm64\"\n"
        ),
    );
    let err = build_fails(&sandbox, &config, &[]);
    assert_mentions(&err, &["layer[0].platform", "linux/arm64", "linux/amd64"]);
}

/// Runs `command`, asserting it exits 1 or 2 (not a signal, not a panic's 101) with an
/// error naming every one of `needles`; returns stderr.
fn refused(command: &mut assert_cmd::Command, needles: &[&str]) -> String {
    let output = command.output().expect("hoist runs");
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "expected exit 1 or 2, got {:?}; stderr:\n{err}",
        output.status
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_mentions(&err, needles);
    err
}

/// Issue 16: `--jobs 100000` aborted (SIGABRT spawning threads) and
/// `--jobs 18446744073709551615` panicked ("capacity overflow"). Every command's
/// `--jobs` takes 1 to 256 and names itself otherwise, before any work.
#[test]
fn jobs_out_of_range_are_refused_by_every_command() {
    let (sandbox, config) = project(ONE_LAYER);
    let out = sandbox.oci("out");
    let cache = sandbox.cache();
    let cache = cache.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["build", "--config", config.to_str().unwrap(), "-o", &out],
        &["pull", "127.0.0.1:9/x:1", "-o", &out, "--cache-dir", cache],
        &["push", &out, "127.0.0.1:9/x:1", "--cache-dir", cache],
        &["verify", "--config", config.to_str().unwrap(), &out],
        &["release", "patch", "--config", config.to_str().unwrap()],
    ];
    for args in commands {
        for jobs in ["0", "257", "100000", "18446744073709551615", "many"] {
            let mut command = sandbox.hoist();
            command.args(args).args(["--jobs", jobs]);
            let err = refused(&mut command, &["--jobs", jobs, "1 to 256"]);
            assert!(
                !sandbox.path("out").exists(),
                "{args:?} --jobs {jobs}: {err}"
            );
        }
    }
    // The bound itself still builds.
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(&config)
        .args(["-o", &out, "--jobs", "256"]);
    crate::common::success(&mut command);
}

/// Issue 16: `SOURCE_DATE_EPOCH=253402300800` built an image dated year 10000 that
/// skopeo cannot parse. The last second of 9999 is the latest accepted, and builds.
#[test]
fn source_date_epoch_after_year_9999_is_refused() {
    let (sandbox, config) = project(ONE_LAYER);
    for epoch in ["253402300800", "18446744073709551616", "-1"] {
        let mut command = sandbox.build();
        command
            .env("SOURCE_DATE_EPOCH", epoch)
            .arg("--config")
            .arg(&config)
            .args(["-o", &sandbox.oci("out")]);
        refused(&mut command, &["SOURCE_DATE_EPOCH", epoch]);
        assert!(!sandbox.path("out").exists());
    }
    let mut command = sandbox.build();
    command
        .env("SOURCE_DATE_EPOCH", "253402300799")
        .arg("--config")
        .arg(&config)
        .args(["-o", &sandbox.oci("out:1")]);
    crate::common::success(&mut command);
    let image = crate::common::Layout::open(sandbox.path("out")).platforms("1");
    assert_eq!(image[0].config["created"], "9999-12-31T23:59:59Z");
}

/// Sizes out of range (`--max-size`, `[budget]`) and compression levels past `i32` are
/// refused naming the flag or key.
#[test]
fn absurd_sizes_and_levels_are_refused_naming_the_flag() {
    let (sandbox, config) = project(ONE_LAYER);
    for size in ["1e400GB", "99999999999TiB", "-1", "NaN"] {
        let mut command = sandbox.hoist();
        command
            .args(["cache", "prune", "--cache-dir"])
            .arg(sandbox.cache())
            .arg(format!("--max-size={size}"));
        refused(&mut command, &["--max-size", size]);
    }
    for level in ["99999999999", "-99999999999", "4294967297"] {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(&config)
            .args(["-o", &sandbox.oci("out")])
            .arg(format!("--compression-level={level}"));
        refused(&mut command, &["--compression-level", level]);
    }
    for key in ["max_size", "max_unpacked"] {
        fs::write(
            &config,
            format!(
                "[image]\nbase = \"oci:{}:1.0\"\n\n{ONE_LAYER}\n[budget]\n{key} = \"1e400GB\"\n",
                base_layout().display()
            ),
        )
        .unwrap();
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(&config)
            .args(["-o", &sandbox.oci("out")]);
        refused(&mut command, &[&format!("budget.{key}"), "1e400GB"]);
    }
    assert!(!sandbox.path("out").exists());
}
