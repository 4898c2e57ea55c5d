//! Every read of an image hoist did not make is bounded: a 3 MB layer whose GNU
//! long-name or PAX header claims 3 GiB (zeros compress 1000:1) used to make `diff`,
//! `verify` and a build with SBOMs hold the whole claim in memory (12.6 GB, 198 s; an
//! oci-archive the same). Now each ends at once with an error naming the layer and the
//! limit, measured here in the hoist process's own peak RSS (GNU time, under an
//! address-space cap so that a regression fails this test rather than the machine).
//! Oversized `index.json` and documents are refused by their size, naming the file.

use std::ffi::OsString;
use std::fs;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::common::{
    Sandbox, base_layout, digest_of, layout_with_gzip_layer, parse_json, require_tool, stdout,
};
use crate::diff::tar_with_entry;
use crate::props::layer_tars::header;

/// What a hostile extension header claims.
const CLAIM: u64 = 3 << 30;
/// The peak RSS every hoist run here must stay under.
const PEAK_LIMIT: u64 = 256 << 20;
/// `tar_reader::EXTENSION_LIMIT`, as the errors print it.
const EXTENSION_LIMIT: &str = "over the limit of 1048576 bytes for tar extension headers";
const DIFF_ID: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A tar header written raw (the tar crate's setters refuse some of these names).
fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    header(name.as_bytes(), b"", kind, size)
}

/// The members after a hostile header: the file it would have named, then the end.
fn tail() -> Vec<u8> {
    let mut tail = raw_header("x", tar::EntryType::Regular, 0)
        .as_bytes()
        .to_vec();
    tail.extend_from_slice(&[0; 1024]);
    tail
}

/// A gzip layer whose first header (`kind`) claims [`CLAIM`] bytes, all of them there:
/// gzip members of 1 MiB of zeros, each compressed once and repeated (~3 MB in all).
fn hostile_layer(kind: tar::EntryType) -> Vec<u8> {
    let mut layer = gzip(raw_header("././@LongLink", kind, CLAIM).as_bytes());
    let zeros = gzip(&vec![0; 1 << 20]);
    for _ in 0..CLAIM >> 20 {
        layer.extend_from_slice(&zeros);
    }
    layer.extend_from_slice(&gzip(&tail()));
    layer
}

/// An oci-archive whose first header claims [`CLAIM`] bytes: a sparse file, so it
/// costs no disk.
fn hostile_archive(path: &Path, kind: tar::EntryType) {
    let mut file = fs::File::create(path).unwrap();
    file.write_all(raw_header("././@LongLink", kind, CLAIM).as_bytes())
        .unwrap();
    file.seek(SeekFrom::Current(i64::try_from(CLAIM).unwrap()))
        .unwrap();
    file.write_all(&tail()).unwrap();
}

/// How a measured hoist run ended.
struct Measured {
    code: Option<i32>,
    stderr: String,
    /// Peak resident set of the hoist process, bytes.
    peak: u64,
    /// GNU time's report (it says so when the process died of a signal).
    report: String,
}

/// Runs hoist (the sandbox's environment and directory) under GNU time and a 4 GiB
/// address-space cap: a reader that held a 3 GiB claim again fails, it does not take
/// the machine down.
fn measured(sandbox: &Sandbox, args: &[OsString]) -> Measured {
    require_tool("time");
    let report = tempfile::NamedTempFile::new_in(sandbox.root()).unwrap();
    let hoist = sandbox.hoist_process();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -v 4194304 && exec /usr/bin/time -f %M -o "$0" "$@""#)
        .arg(report.path())
        .arg(hoist.get_program())
        .args(args)
        .current_dir(hoist.get_current_dir().unwrap());
    for (key, value) in hoist.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let output = command.output().unwrap();
    let report = fs::read_to_string(report.path()).unwrap();
    let kib: u64 = report
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time reported no peak RSS: {report:?}"));
    Measured {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        peak: kib * 1024,
        report,
    }
}

fn args(list: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// The run failed with an error (exit 1 or 2, no signal) that says `wanted`, within
/// [`PEAK_LIMIT`].
fn assert_bounded_error(what: &str, run: &Measured, wanted: &[&str]) {
    let context = format!(
        "{what}: exit {:?}, peak {} bytes, time: {}\nstderr:\n{}",
        run.code, run.peak, run.report, run.stderr
    );
    assert!(matches!(run.code, Some(1 | 2)), "{context}");
    assert!(!run.report.contains("signal"), "{context}");
    assert!(
        run.stderr.lines().any(|line| line.starts_with("error: ")),
        "{context}"
    );
    for text in wanted {
        assert!(run.stderr.contains(text), "wanted `{text}`; {context}");
    }
    assert!(run.peak < PEAK_LIMIT, "{context}");
}

#[test]
fn extension_headers_claiming_3_gib_end_in_an_error_within_256_mib() {
    let sandbox = Sandbox::new();
    let cache = sandbox.cache();
    fs::create_dir_all(sandbox.path("app/src")).unwrap();
    fs::write(sandbox.path("app/src/a.txt"), "a\n").unwrap();
    for (kind, name) in [
        (tar::EntryType::GNULongName, "GNU long name"),
        (tar::EntryType::XHeader, "PAX"),
    ] {
        let slug = if name == "PAX" { "pax" } else { "gnu" };
        let layer = hostile_layer(kind);
        assert!(layer.len() < 4 << 20, "{} bytes", layer.len());
        let (base, digest) = layout_with_gzip_layer(&sandbox.path(slug), &layer, DIFF_ID);
        let wanted = [digest.as_str(), name, EXTENSION_LIMIT];

        let good = format!("oci:{}:1.0", base_layout().display());
        let run = measured(
            &sandbox,
            &args(&[&"diff", &"--cache-dir", &cache, &good, &base]),
        );
        assert_bounded_error(&format!("{name}: diff"), &run, &wanted);

        let config = sandbox.write(
            &format!("app/{slug}.toml"),
            &format!(
                "[image]\nname = \"example.invalid/bounds\"\nbase = \"{base}\"\nplatforms = [\"linux/amd64\"]\n\n[[layer]]\nfrom = \"src\"\nto = \"/app\"\n"
            ),
        );
        let out = sandbox.oci(&format!("out-{slug}"));
        let build = |extra: &[&str]| {
            let mut list = args(&[&"build", &"--cache-dir", &cache, &"--config", &config]);
            list.extend(args(&[&"--output", &out]));
            list.extend(extra.iter().map(OsString::from));
            measured(&sandbox, &list)
        };
        // SBOMs are on by default: the build reads the base's layers for them.
        assert_bounded_error(&format!("{name}: build"), &build(&[]), &wanted);

        // Without SBOMs the base layer is copied, not read; verify rebuilds with them.
        let built = build(&["--no-sbom"]);
        assert_eq!(built.code, Some(0), "{}", built.stderr);
        let run = measured(
            &sandbox,
            &args(&[
                &"verify",
                &"--cache-dir",
                &cache,
                &"--config",
                &config,
                &out,
            ]),
        );
        assert_bounded_error(&format!("{name}: verify"), &run, &wanted);

        // An oci-archive is unpacked by the same reader: `hoist sbom` of one.
        let archive = sandbox.path(&format!("{slug}.tar"));
        hostile_archive(&archive, kind);
        let location = format!("oci-archive:{}", archive.display());
        let run = measured(
            &sandbox,
            &args(&[&"sbom", &"--cache-dir", &cache, &location]),
        );
        assert_bounded_error(
            &format!("{name}: sbom of an oci-archive"),
            &run,
            &[&archive.display().to_string(), name, EXTENSION_LIMIT],
        );
    }
}

#[test]
fn absolute_entry_names_diff_as_relative_ones() {
    let sandbox = Sandbox::new();
    let layout = |dir: &str, name: &str| {
        let tar = tar_with_entry(name);
        layout_with_gzip_layer(&sandbox.path(dir), &gzip(&tar), &digest_of(&tar)).0
    };
    let absolute = layout("absolute", "/usr/bin/x");
    let relative = layout("relative", "usr/bin/x");
    let output = sandbox
        .hoist()
        .args(["diff", "--json", "--cache-dir"])
        .arg(sandbox.cache())
        .args([&absolute, &relative])
        .output()
        .unwrap();
    // The layers' bytes differ (exit 1), their files do not.
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = parse_json(&stdout(&output));
    let layer = &report["platforms"][0]["layers"][0];
    assert_eq!(layer["status"], "changed", "{report:#}");
    assert_eq!(layer["files"], serde_json::json!([]), "{report:#}");
    assert!(
        layer["note"]
            .as_str()
            .is_some_and(|note| note.starts_with("same entries with the same content")),
        "{report:#}"
    );
}

#[test]
fn oversized_layout_documents_are_refused_naming_the_file_and_the_limit() {
    let sandbox = Sandbox::new();
    let tar = tar_with_entry("usr/bin/x");
    let (_, _) = layout_with_gzip_layer(&sandbox.path("big-index"), &gzip(&tar), DIFF_ID);
    // A 5 GiB index.json that costs no disk: its size alone refuses it.
    let index = sandbox.path("big-index/index.json");
    fs::File::options()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let run = measured(&sandbox, &args(&[&"inspect", &sandbox.oci("big-index")]));
    assert_bounded_error(
        "a 5 GiB index.json",
        &run,
        &[
            &index.display().to_string(),
            "5368709120 bytes, over the limit of 16777216 bytes for an index.json",
        ],
    );

    // A manifest its index entry says is 3 GiB: refused from the claim.
    let (_, _) = layout_with_gzip_layer(&sandbox.path("big-manifest"), &gzip(&tar), DIFF_ID);
    let index = sandbox.path("big-manifest/index.json");
    let mut document: serde_json::Value =
        serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
    let digest = document["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    document["manifests"][0]["size"] = serde_json::json!(CLAIM);
    fs::write(&index, serde_json::to_vec(&document).unwrap()).unwrap();
    let run = measured(&sandbox, &args(&[&"inspect", &sandbox.oci("big-manifest")]));
    let blob = sandbox.path(&format!(
        "big-manifest/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    ));
    assert_bounded_error(
        "a manifest claiming 3 GiB",
        &run,
        &[
            &blob.display().to_string(),
            "3221225472 bytes, over the limit of 4194304 bytes for a manifest or index",
        ],
    );
}
