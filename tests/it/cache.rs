//! One cache directory shared by concurrent builds (a CI runner's cache volume),
//! `hoist cache info` and `hoist cache prune`, and zstd layers that do not depend on
//! `--jobs`.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::{
    Layout, Sandbox, base_layout, failure, parse_json, require_tool, sha256_hex, stdout, success,
    tool_output,
};

/// Deterministic letters that compress to about half: a layer big enough that
/// concurrent builds overlap and zstd cuts it into several jobs.
fn letters(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"abcdefghijklmnop"[(state >> 60) as usize]
        })
        .collect()
}

/// A project with two layers (one of `big` bytes) on the test base, two platforms.
fn project(sandbox: &Sandbox, big: usize, compression: &str) {
    sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nname = \"example.com/shared\"\nbase = \"oci:{}:1.0\"\n\
             platforms = [\"linux/amd64\", \"linux/arm64\"]\ncompression = \"{compression}\"\n\n\
             [[layer]]\nfrom = \"data\"\nto = \"/data\"\n\n\
             [[layer]]\nfrom = \"app\"\nto = \"/app\"\n",
            base_layout().display()
        ),
    );
    fs::create_dir_all(sandbox.path("data")).unwrap();
    fs::write(sandbox.path("data/big.txt"), letters(big, 7)).unwrap();
    for i in 0..50 {
        sandbox.write(
            &format!("app/src/m{i}.py"),
            &format!("print({i})\n").repeat(i + 1),
        );
    }
}

/// `hoist build --json` of the sandbox's project into `oci:<out>`, on `cache`.
fn build_command(sandbox: &Sandbox, cache: &Path, out: &str, extra: &[&str]) -> Command {
    let mut command = sandbox.hoist_process();
    command
        .arg("build")
        .arg("--cache-dir")
        .arg(cache)
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci(out))
        .arg("--json")
        .args(extra);
    command
}

fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hoist")
}

/// Waits for `child`, asserting success; returns its `--json` summary.
fn finish(child: Child, what: &str) -> Value {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    parse_json(&stdout(&output))
}

fn cache_info(sandbox: &Sandbox, cache: &Path) -> Value {
    let mut command = sandbox.hoist();
    command
        .args(["cache", "info", "--json", "--cache-dir"])
        .arg(cache);
    parse_json(&stdout(&success(&mut command)))
}

/// What a consistent cache looks like after its builds ended: every blob hashes to
/// its name, every layer-cache record is whole JSON naming a present blob of its
/// size, no temporary file, no lease, and `cache info` counts exactly the digests
/// there (blobs, and those SBOM scans and push records name) and their bytes.
fn assert_consistent(sandbox: &Sandbox, cache: &Path) {
    let blobs = cache.join("blobs/sha256");
    let mut total = 0;
    let mut digests = std::collections::BTreeSet::new();
    for file in attached_files(cache) {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(!name.starts_with(".hoist-tmp-"), "temp file left: {name}");
        let hex = name
            .split(['-', '.'])
            .find(|part| part.len() == 64)
            .unwrap();
        digests.insert(hex.to_string());
        total += fs::metadata(&file).unwrap().len();
    }
    for entry in fs::read_dir(&blobs).unwrap() {
        let entry = entry.unwrap();
        let bytes = fs::read(entry.path()).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            entry.file_name().to_str().unwrap(),
            "a torn or wrong blob: {}",
            entry.path().display()
        );
        total += bytes.len() as u64;
        digests.insert(entry.file_name().to_string_lossy().into_owned());
    }
    if let Ok(records) = fs::read_dir(cache.join("layer-cache")) {
        for record in records {
            let path = record.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.starts_with(".hoist-tmp-"), "temp file left: {name}");
            let json: Value = serde_json::from_slice(&fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("torn record {name}: {e}"));
            let digest = json["digest"].as_str().unwrap();
            let blob = blobs.join(digest.trim_start_matches("sha256:"));
            assert_eq!(
                fs::metadata(&blob).map(|m| m.len()).ok(),
                json["size"].as_u64(),
                "record {name} names a blob that is missing or of another size"
            );
        }
    }
    for entry in fs::read_dir(cache).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".hoist-tmp-") && !name.starts_with(".hoist-evict-"),
            "left behind in the cache root: {name}"
        );
    }
    let leases = fs::read_dir(cache.join("leases")).map_or(0, Iterator::count);
    assert_eq!(leases, 0, "every build ended: no lease may remain");
    let info = cache_info(sandbox, cache);
    assert_eq!(info["entries"], digests.len());
    assert_eq!(info["size"], total);
    assert_eq!(info["in_use"], 0);
    assert_eq!(info["running_processes"], 0);
}

/// The files of `sbom-scans/` and `pushed/<registry>/` (temporary files included).
fn attached_files(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![cache.join("sbom-scans")];
    if let Ok(registries) = fs::read_dir(cache.join("pushed")) {
        dirs.extend(registries.map(|entry| entry.unwrap().path()));
    }
    dirs.iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .map(|entry| entry.unwrap().path())
        .collect()
}

fn layer_digests(summary: &Value) -> Vec<String> {
    summary["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|platform| platform["layers"].as_array().unwrap().clone())
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Four builds at once on one empty cache (all racing to write the same layers and
/// records), then four at once on the warm cache: every build succeeds with the same
/// digest as a build on a cache of its own, and the cache is whole afterwards.
#[test]
fn four_concurrent_builds_share_one_cache() {
    let sandbox = Sandbox::new();
    project(&sandbox, 6 << 20, "gzip");
    let alone = finish(
        spawn(build_command(
            &sandbox,
            &sandbox.path("own-cache"),
            "alone",
            &[],
        )),
        "the reference build",
    );
    let expected = alone["digest"].as_str().unwrap().to_owned();
    let shared = sandbox.path("shared-cache");
    for round in ["cold", "warm"] {
        let children: Vec<Child> = (0..4)
            .map(|i| {
                spawn(build_command(
                    &sandbox,
                    &shared,
                    &format!("{round}-{i}"),
                    &[],
                ))
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let summary = finish(child, &format!("{round} build {i}"));
            assert_eq!(summary["digest"], expected.as_str(), "{round} build {i}");
            assert_eq!(layer_digests(&summary), layer_digests(&alone));
            let layout = Layout::open(sandbox.path(&format!("{round}-{i}")));
            for digest in layer_digests(&summary) {
                assert_eq!(
                    format!("sha256:{}", sha256_hex(&layout.blob(&digest))),
                    digest
                );
            }
        }
        assert_consistent(&sandbox, &shared);
    }
    let warm = finish(
        spawn(build_command(&sandbox, &shared, "after", &[])),
        "a build after both rounds",
    );
    let cached: Vec<&Value> = warm["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|layer| layer["origin"] != "base")
        .map(|layer| &layer["cached"])
        .collect();
    assert_eq!(cached, [&Value::Bool(true), &Value::Bool(true)]);
}

/// `hoist cache prune --max-size 0` in a loop while four builds run: a blob a running
/// build holds is never removed, so every build succeeds with the reference digest;
/// once they are done, the same prune empties the cache and leaves it consistent.
#[test]
fn prune_never_removes_what_running_builds_hold() {
    let sandbox = Sandbox::new();
    project(&sandbox, 4 << 20, "gzip");
    let expected = finish(
        spawn(build_command(
            &sandbox,
            &sandbox.path("own-cache"),
            "alone",
            &[],
        )),
        "the reference build",
    )["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let shared = sandbox.path("shared-cache");
    // The cache must exist before the first prune: prune refuses a directory that is
    // not a cache, rather than create one.
    finish(
        spawn(build_command(&sandbox, &shared, "seed", &[])),
        "seeding",
    );
    let mut builds: Vec<Child> = (0..4)
        .map(|i| spawn(build_command(&sandbox, &shared, &format!("out-{i}"), &[])))
        .collect();
    let mut prunes = 0;
    let mut kept_in_use = 0;
    while builds
        .iter_mut()
        .any(|child| child.try_wait().unwrap().is_none())
        || prunes == 0
    {
        let mut prune = sandbox.hoist();
        prune
            .args(["cache", "prune", "--max-size", "0", "--json", "--cache-dir"])
            .arg(&shared);
        let report = parse_json(&stdout(&success(&mut prune)));
        kept_in_use += report["kept_in_use"].as_array().unwrap().len();
        prunes += 1;
    }
    for (i, child) in builds.into_iter().enumerate() {
        let summary = finish(child, &format!("build {i}"));
        assert_eq!(summary["digest"], expected.as_str(), "build {i}");
        let layout = Layout::open(sandbox.path(&format!("out-{i}")));
        for digest in layer_digests(&summary) {
            assert_eq!(
                format!("sha256:{}", sha256_hex(&layout.blob(&digest))),
                digest
            );
        }
    }
    eprintln!("{prunes} prunes ran during the builds, sparing {kept_in_use} held blobs in all");
    let mut prune = sandbox.hoist();
    prune
        .args(["cache", "prune", "--max-size", "0", "--json", "--cache-dir"])
        .arg(&shared);
    let report = parse_json(&stdout(&success(&mut prune)));
    assert_eq!(report["kept_in_use"].as_array().unwrap().len(), 0);
    assert_eq!(report["remaining_entries"], 0);
    assert_consistent(&sandbox, &shared);
    assert_eq!(cache_info(&sandbox, &shared)["records"], 0);
}

#[test]
fn info_and_prune_report_and_dry_run_keeps_everything() {
    let sandbox = Sandbox::new();
    project(&sandbox, 1 << 20, "gzip");
    let cache = sandbox.cache();
    finish(spawn(build_command(&sandbox, &cache, "out", &[])), "build");
    let info = cache_info(&sandbox, &cache);
    assert!(info["entries"].as_u64().unwrap() >= 2, "{info:#}");
    assert_eq!(info["records"], 2, "one layer-cache record per layer");
    assert!(info["oldest_use"].as_str().unwrap().ends_with('Z'));
    let mut text = sandbox.hoist();
    text.args(["cache", "info", "--cache-dir"]).arg(&cache);
    let text = stdout(&success(&mut text));
    assert!(
        text.contains("entries: ") && text.contains("oldest use: "),
        "{text}"
    );

    let mut dry = sandbox.hoist();
    dry.args([
        "cache",
        "prune",
        "--older-than",
        "0s",
        "--dry-run",
        "--json",
        "--cache-dir",
    ])
    .arg(&cache);
    let report = parse_json(&stdout(&success(&mut dry)));
    assert_eq!(
        report["removed"].as_array().unwrap().len() as u64,
        info["entries"].as_u64().unwrap()
    );
    assert_eq!(
        cache_info(&sandbox, &cache),
        info,
        "a dry run removes nothing"
    );

    // Keep the newest use only: the layer-cache records of what went are gone too.
    let mut prune = sandbox.hoist();
    prune
        .args([
            "cache",
            "prune",
            "--max-size",
            "1GB",
            "--json",
            "--cache-dir",
        ])
        .arg(&cache);
    let report = parse_json(&stdout(&success(&mut prune)));
    assert_eq!(
        report["removed"].as_array().unwrap().len(),
        0,
        "under 1 GB already"
    );
    let mut prune = sandbox.hoist();
    prune
        .args(["cache", "prune", "--older-than", "0s", "--cache-dir"])
        .arg(&cache);
    let text = stdout(&success(&mut prune));
    assert!(text.contains("removed "), "{text}");
    let after = cache_info(&sandbox, &cache);
    assert_eq!(
        (after["entries"].clone(), after["records"].clone()),
        (0.into(), 0.into())
    );
    // And the next build simply rebuilds.
    let rebuilt = finish(
        spawn(build_command(&sandbox, &cache, "again", &[])),
        "rebuild",
    );
    assert!(rebuilt["platforms"][0]["layers"][1]["cached"] == false);
}

#[test]
fn prune_flags_are_checked_and_named() {
    let sandbox = Sandbox::new();
    let cache = sandbox.cache();
    for (flag, value, says) in [
        ("--max-size", "10XB", "unknown size unit 'xb'"),
        ("--max-size", "lots", "not a size"),
        ("--older-than", "30", "needs a unit"),
        ("--older-than", "3y", "unknown unit 'y'"),
    ] {
        let mut command = sandbox.hoist();
        command
            .args(["cache", "prune", flag, value, "--cache-dir"])
            .arg(&cache);
        // clap's usage errors exit 2.
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(says),
            "{flag} {value}: {stderr}"
        );
    }
    let mut command = sandbox.hoist();
    command.args(["cache", "prune", "--cache-dir"]).arg(&cache);
    assert!(failure(&mut command).contains("--max-size"));
    let mut command = sandbox.hoist();
    command
        .args(["cache", "prune", "--older-than", "1d", "--cache-dir"])
        .arg(sandbox.path("not-a-cache"));
    let stderr = failure(&mut command);
    assert!(
        stderr.contains("not-a-cache") && stderr.contains("not a hoist cache"),
        "{stderr}"
    );
}

/// A 20 MiB file makes a layer of three 8 MiB zstd jobs: its bytes are the same for
/// --jobs 1, 2 and 4 (runs repeated), `zstd -d` reads it back to the tar the diff_id
/// names, and it is one zstd frame.
#[test]
fn zstd_layers_are_identical_for_any_jobs() {
    require_tool("zstd");
    let sandbox = Sandbox::new();
    project(&sandbox, 20 << 20, "zstd");
    let mut results = Vec::new();
    for (run, jobs) in ["1", "2", "4", "2", "1", "4"].into_iter().enumerate() {
        let out = format!("out-{run}");
        let summary = finish(
            spawn(build_command(
                &sandbox,
                &sandbox.cache(),
                &out,
                &["--jobs", jobs, "--no-cache"],
            )),
            &format!("--jobs {jobs}"),
        );
        results.push((
            jobs,
            summary["digest"].clone(),
            layer_digests(&summary),
            out,
        ));
    }
    let (_, first_index, first_layers, first_out) = &results[0];
    for (jobs, index, layers, _) in &results {
        assert!(
            index == first_index && layers == first_layers,
            "--jobs {jobs}: {layers:?}, --jobs 1: {first_layers:?}"
        );
    }
    let layout = Layout::open(sandbox.path(first_out));
    let image = &layout.platforms("latest")[0];
    let diff_ids = image.config["rootfs"]["diff_ids"].as_array().unwrap();
    let digests = image.layer_digests();
    let (big, diff_id) = (digests.len() - 2, &diff_ids[diff_ids.len() - 2]);
    let blob = layout.blob(&digests[big]);
    assert!(blob.len() > 8 << 20, "spans several jobs");
    let frame = tool_output(
        "zstd",
        &["-lv", layout.blob_path(&digests[big]).to_str().unwrap()],
    );
    let listing = String::from_utf8_lossy(&frame.stdout).into_owned();
    assert!(listing.contains("# Zstandard Frames: 1"), "{listing}");
    let decompressed = tool_output(
        "zstd",
        &["-dc", layout.blob_path(&digests[big]).to_str().unwrap()],
    );
    assert!(decompressed.status.success());
    assert_eq!(
        format!("sha256:{}", sha256_hex(&decompressed.stdout)),
        diff_id.as_str().unwrap()
    );
}

/// An unlocked file named like hoist's temp files, last modified a day ago: what a run
/// killed while writing a scan or a push record leaves (fault injection).
fn killed_runs_temp(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(".hoist-tmp-k1lled");
    fs::write(&path, b"{\"half\":").unwrap();
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_hours(24);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(day_ago)
        .unwrap();
    path
}

/// Issue 16: `sbom-scans/` and `pushed/` survived `cache prune --max-size 0`, and the
/// temp files killed runs left there were never swept. After a build that pushed with
/// SBOMs, `cache info` counts them and the prune leaves none of them.
#[test]
fn prune_bounds_sbom_scans_and_push_records() {
    let sandbox = Sandbox::new();
    let registry = crate::registry::Registry::start();
    project(&sandbox, 64 << 10, "gzip");
    let cache = sandbox.cache();
    let mut command = sandbox.hoist();
    command
        .args(["build", "--json", "--cache-dir"])
        .arg(&cache)
        .arg("--config")
        .arg(sandbox.path("hoist.toml"))
        .args(["--push-to", &registry.reference("acme/shared")]);
    crate::registry::ok(&mut command, &registry);
    let files = attached_files(&cache);
    let scans = files
        .iter()
        .filter(|f| f.starts_with(cache.join("sbom-scans")));
    assert!(
        scans.count() >= 4,
        "two new and two base layers scanned: {files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with(cache.join("pushed"))),
        "push records: {files:?}"
    );
    assert_consistent(&sandbox, &cache);
    let registry_dir = fs::read_dir(cache.join("pushed"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let temps = [
        killed_runs_temp(&cache.join("sbom-scans")),
        killed_runs_temp(&registry_dir),
    ];

    let mut prune = sandbox.hoist();
    prune
        .args(["cache", "prune", "--max-size", "0", "--json", "--cache-dir"])
        .arg(&cache);
    let report = parse_json(&stdout(&success(&mut prune)));
    assert_eq!(report["remaining_entries"], 0, "{report:#}");
    assert_eq!(report["remaining_size"], 0, "{report:#}");
    assert_eq!(attached_files(&cache), Vec::<std::path::PathBuf>::new());
    for temp in temps {
        assert!(!temp.exists(), "{} not swept", temp.display());
    }
    assert_consistent(&sandbox, &cache);
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = crate::common::files_under(dir)
        .into_iter()
        .map(|path| {
            let bytes = fs::read(dir.join(&path)).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Replaces `dir` (under a cache or layout) by a link to a copy of it elsewhere; returns
/// the copy.
fn link_elsewhere(sandbox: &Sandbox, dir: &Path, name: &str) -> std::path::PathBuf {
    let elsewhere = sandbox.path(name);
    fs::rename(dir, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir).unwrap();
    elsewhere
}

/// Issue 16: with a cache's `blobs/` linked elsewhere, prune deleted the 64-hex-named
/// files of the link's target. A cache or an `oci:` output layout whose `blobs/` or
/// `blobs/sha256/` is a link is refused with an error naming it, and nothing in the
/// link's target changes.
#[test]
fn symlinked_blobs_are_refused_for_caches_and_output_layouts() {
    let sandbox = Sandbox::new();
    project(&sandbox, 16 << 10, "gzip");
    for linked in ["blobs", "blobs/sha256"] {
        let cache = sandbox.path(&format!("cache-{}", linked.replace('/', "-")));
        let out = format!("out-{}", linked.replace('/', "-"));
        finish(
            spawn(build_command(&sandbox, &cache, &format!("{out}:1"), &[])),
            "build",
        );
        let link = cache.join(linked);
        let target = link_elsewhere(
            &sandbox,
            &link,
            &format!("elsewhere-{}", linked.replace('/', "-")),
        );
        let before = snapshot(&target);
        assert!(!before.is_empty());
        for args in [
            &["cache", "prune", "--max-size", "0"][..],
            &["cache", "info"],
        ] {
            let mut command = sandbox.hoist();
            command.args(args).arg("--cache-dir").arg(&cache);
            let err = failure(&mut command);
            assert!(
                err.contains(link.to_str().unwrap()) && err.contains("symbolic link"),
                "{args:?} with {linked} linked: {err}"
            );
        }
        let mut command = build_command(&sandbox, &cache, &format!("{out}-again"), &[]);
        let output = command.output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains(link.to_str().unwrap()), "{err}");
        assert_eq!(snapshot(&target), before, "the link's target was touched");

        // The output layout built above, its blobs linked elsewhere: writing into it
        // again is refused.
        let layout_link = sandbox.path(&out).join(linked);
        let layout_target = link_elsewhere(&sandbox, &layout_link, &format!("{out}-elsewhere"));
        let before = snapshot(&layout_target);
        let own_cache = sandbox.path(&format!("{out}-cache"));
        let mut command = build_command(&sandbox, &own_cache, &format!("{out}:2"), &[]);
        let output = command.output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(
            err.contains(layout_link.to_str().unwrap()) && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!(
            snapshot(&layout_target),
            before,
            "the layout link's target was touched"
        );
    }
}
