//! Nothing unverified leaves hoist: a flipped byte in the layer cache is rebuilt, never
//! republished (to a layout, with `--no-cache`, or to a registry); a base blob that is
//! a symbolic link out of its layout is refused before anything is uploaded; the temp
//! files of a run killed mid-build are swept by the next run, and a live run's are not.
//!
//! Judged by reading the blobs back, by skopeo and oci-image-tool, and by the real
//! registry's access log (`registry.rs`).

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    BASE_AMD64_LAYER, Sandbox, base_layout, copy_tree, digest_of, last_line, parse_json, stderr,
    stdout, str_at, success, tool_output,
};
use crate::judges::oci_image_tool_validates;
use crate::registry::{HOIST_LIMIT, Registry, Request, fails, ok};

/// A project on the committed two-platform base with one layer of `src/`: the new
/// layer is one blob shared by both platforms' manifests.
fn project() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.write("src/app.txt", &"integrity matters\n".repeat(4000));
    sandbox.write("src/lib/data.json", "{\"answer\": 42}\n");
    let config = sandbox.write(
        "hoist.toml",
        &format!(
            "[image]\nbase = \"oci:{}:1.0\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
            base_layout().display()
        ),
    );
    (sandbox, config)
}

/// `hoist build --config CONFIG --json EXTRA…`, asserting exit 0: (report, stderr).
fn build(sandbox: &Sandbox, config: &Path, extra: &[&str]) -> (Value, String) {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(extra);
    let output = success(&mut command);
    (parse_json(&stdout(&output)), stderr(&output))
}

/// The digest of the layer built from `src` and whether it came from the cache; the
/// same blob in every platform.
fn new_layer(report: &Value) -> (String, bool) {
    let layers: BTreeSet<(String, bool)> = report["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .flat_map(|p| p["layers"].as_array().expect("layers").iter())
        .filter(|layer| layer["origin"] != "base")
        .map(|layer| {
            (
                str_at(layer, "/digest").to_owned(),
                layer["cached"].as_bool().expect("cached"),
            )
        })
        .collect();
    assert_eq!(layers.len(), 1, "one new layer, shared: {report:#}");
    layers.into_iter().next().unwrap()
}

fn blob_path(root: &Path, digest: &str) -> PathBuf {
    root.join("blobs/sha256").join(&digest["sha256:".len()..])
}

/// Whether the file holds the bytes of `digest`.
fn holds(path: &Path, digest: &str) -> bool {
    digest_of(&fs::read(path).unwrap()) == digest
}

/// Flips one bit of the byte in the middle of `path`, in place: same inode, same size,
/// as a failing disk or a stray editor would.
pub(crate) fn flip_a_byte(path: &Path) {
    let before = fs::metadata(path).unwrap();
    let mut file = fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let middle = before.len() / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.read_exact(&mut byte).unwrap();
    byte[0] ^= 0x01;
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.write_all(&byte).unwrap();
    drop(file);
    let after = fs::metadata(path).unwrap();
    assert_eq!((after.ino(), after.len()), (before.ino(), before.len()));
}

/// skopeo copies the layout's `latest` (every platform) into a fresh layout, checking
/// every blob's digest on the way: Ok, or Err with what skopeo said.
fn skopeo_copy(sandbox: &Sandbox, layout: &Path) -> Result<(), String> {
    let target = sandbox.path(&format!(
        "skopeo-{}",
        layout.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&target);
    let output = tool_output(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--all",
            &format!("oci:{}:latest", layout.display()),
            &format!("oci:{}:copy", target.display()),
        ],
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The warning a build prints when the cache held a bad copy of `digest`.
fn assert_rejection_reported(err: &str, digest: &str) {
    assert!(
        err.lines().any(|line| line.starts_with("warning:")
            && line.contains(digest)
            && line.contains("does not match its digest")),
        "the rebuild should say the cached blob {digest} was bad:\n{err}"
    );
}

#[test]
fn a_flipped_byte_in_a_cached_layer_is_rebuilt_never_republished() {
    let (sandbox, config) = project();
    let first = sandbox.path("first");
    let first_out = format!("oci:{}", first.display());
    let (report, _) = build(&sandbox, &config, &["--output", &first_out]);
    let image = str_at(&report, "/digest").to_owned();
    let (layer, _) = new_layer(&report);
    let cached_blob = blob_path(&sandbox.cache(), &layer);
    // The layout hard-links the cache's file: one inode, so one flipped byte spoils
    // both (docs/design.md: what a rebuild does and does not repair).
    assert_eq!(
        fs::metadata(&cached_blob).unwrap().ino(),
        fs::metadata(blob_path(&first, &layer)).unwrap().ino()
    );
    flip_a_byte(&cached_blob);
    let err = skopeo_copy(&sandbox, &first).expect_err("skopeo must refuse the spoilt layout");
    assert!(
        err.contains(&layer[7..19]) || err.contains("digest"),
        "{err}"
    );

    // A new output: the layer is rebuilt, the image is the same, and every byte is
    // right.
    let second = sandbox.path("second");
    let (report, err) = build(
        &sandbox,
        &config,
        &["--output", &format!("oci:{}", second.display())],
    );
    assert_eq!(str_at(&report, "/digest"), image, "same image as before");
    assert_eq!(new_layer(&report), (layer.clone(), false), "rebuilt");
    assert_rejection_reported(&err, &layer);
    assert!(holds(&blob_path(&second, &layer), &layer));
    assert!(
        holds(&cached_blob, &layer),
        "the cache holds good bytes again"
    );
    skopeo_copy(&sandbox, &second).unwrap();
    oci_image_tool_validates(&sandbox, &second);

    // The earlier layout still shares the bad file; writing to it again repairs it.
    assert!(!holds(&blob_path(&first, &layer), &layer));
    let (report, err) = build(&sandbox, &config, &["--output", &first_out]);
    assert_eq!(str_at(&report, "/digest"), image);
    assert_eq!(new_layer(&report), (layer.clone(), true), "a cache hit now");
    assert!(!err.contains("warning:"), "{err}");
    assert!(holds(&blob_path(&first, &layer), &layer));
    skopeo_copy(&sandbox, &first).unwrap();
    oci_image_tool_validates(&sandbox, &first);
}

#[test]
fn no_cache_replaces_a_bad_blob_of_the_same_name() {
    let (sandbox, config) = project();
    let (report, _) = build(&sandbox, &config, &["--output", &sandbox.oci("first")]);
    let (layer, _) = new_layer(&report);
    let cached_blob = blob_path(&sandbox.cache(), &layer);
    flip_a_byte(&cached_blob);

    let out = sandbox.path("out");
    let (report, _) = build(
        &sandbox,
        &config,
        &["--no-cache", "--output", &format!("oci:{}", out.display())],
    );
    assert_eq!(new_layer(&report), (layer.clone(), false));
    assert!(holds(&cached_blob, &layer), "the bad file was replaced");
    assert!(holds(&blob_path(&out, &layer), &layer));
    skopeo_copy(&sandbox, &out).unwrap();
    oci_image_tool_validates(&sandbox, &out);
}

#[test]
fn a_push_after_a_flipped_byte_sends_only_the_right_bytes() {
    let (sandbox, config) = project();
    let registry = Registry::start();
    let (report, _) = build(&sandbox, &config, &["--output", &sandbox.oci("first")]);
    let image = str_at(&report, "/digest").to_owned();
    let (layer, _) = new_layer(&report);
    flip_a_byte(&blob_path(&sandbox.cache(), &layer));

    let mut command = sandbox.build();
    command.arg("--config").arg(&config).args([
        "--push-to",
        &registry.reference("acme/app:1"),
        "--json",
    ]);
    let output = ok(&mut command, &registry);
    let report = parse_json(&stdout(&output));
    assert_eq!(str_at(&report, "/digest"), image);
    assert_eq!(new_layer(&report), (layer.clone(), false));
    assert_rejection_reported(&stderr(&output), &layer);

    // The registry checks what it receives against the digest we name: a bad byte
    // would have been answered 400 DIGEST_INVALID. Every upload was accepted, the
    // layer went up once, and what the registry holds is the right bytes.
    let requests = registry.requests();
    let refused: Vec<&Request> = requests
        .iter()
        .filter(|r| r.is_upload_traffic() && r.status >= 400)
        .collect();
    assert!(refused.is_empty(), "uploads refused: {refused:?}");
    let uploads: Vec<String> = requests.iter().filter_map(Request::uploaded_blob).collect();
    assert_eq!(
        uploads.iter().filter(|d| **d == layer).count(),
        1,
        "{uploads:?}"
    );
    let held = registry
        .http_get(&format!("/v2/acme/app/blobs/{layer}"), &[])
        .unwrap();
    assert_eq!(held.status, 200);
    assert_eq!(digest_of(&held.body), layer);
    let pulled = sandbox.path("pulled");
    let output = tool_output(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            &registry.docker("acme/app:1"),
            &format!("oci:{}:latest", pulled.display()),
        ],
    );
    assert!(
        output.status.success(),
        "skopeo copy from the registry: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A copy of the committed base whose amd64 layer blob is a symbolic link to `target`
/// (outside the layout); the descriptor is unchanged, so `target` must have the
/// layer's size for the link to pass a size check.
fn base_with_linked_layer(sandbox: &Sandbox, target: &Path) -> (PathBuf, PathBuf) {
    let base = sandbox.path("base");
    copy_tree(&base_layout(), &base);
    let blob = blob_path(&base, BASE_AMD64_LAYER);
    assert_eq!(
        fs::metadata(&blob).unwrap().len(),
        fs::metadata(target).unwrap().len()
    );
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(target, &blob).unwrap();
    (base, blob)
}

/// Writes the outside file a linked blob points at: a copy of the layer's own bytes
/// (its digest matches: only the link rule stops it), or a "secret" of the same size
/// (an /etc/passwd stand-in).
fn outside_file(sandbox: &Sandbox, secret: bool) -> PathBuf {
    let layer = fs::read(blob_path(&base_layout(), BASE_AMD64_LAYER)).unwrap();
    let path = sandbox.path("outside/file");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    if secret {
        let mut text = b"root:x:0:0:root:/root:/bin/bash\n".repeat(layer.len() / 32 + 1);
        text.truncate(layer.len());
        fs::write(&path, text).unwrap();
    } else {
        fs::write(&path, &layer).unwrap();
    }
    path
}

/// Asserts the command failed naming the linked blob, and that the registry saw no
/// upload, mount or manifest PUT at all.
fn refused_with_nothing_uploaded(err: &str, blob: &Path, registry: &Registry) {
    assert!(
        err.contains(blob.to_str().unwrap()) && err.contains("symbolic link"),
        "the error should name the linked blob {}:\n{err}",
        blob.display()
    );
    let requests = registry.requests();
    let writes: Vec<&Request> = requests
        .iter()
        .filter(|r| r.is_upload_traffic() || r.manifest_put().is_some())
        .collect();
    assert!(writes.is_empty(), "nothing may be uploaded: {writes:?}");
}

#[test]
fn a_base_blob_linked_out_of_its_layout_is_refused_by_push_and_build_push() {
    for secret in [false, true] {
        let sandbox = Sandbox::new();
        let target = outside_file(&sandbox, secret);
        let (base, blob) = base_with_linked_layer(&sandbox, &target);
        let registry = Registry::start();

        let mut push = sandbox.hoist();
        push.arg("push")
            .arg(format!("oci:{}:1.0", base.display()))
            .arg(registry.reference("acme/base:1"));
        let output = crate::registry::run(&mut push, HOIST_LIMIT);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        refused_with_nothing_uploaded(&stderr(&output), &blob, &registry);

        sandbox.write("src/hello.txt", "hello\n");
        let config = sandbox.write(
            "hoist.toml",
            &format!(
                "[image]\nbase = \"oci:{}:1.0\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
                base.display()
            ),
        );
        let mut build_push = sandbox.build();
        build_push
            .arg("--config")
            .arg(&config)
            .args(["--push-to", &registry.reference("acme/app:1")]);
        let err = fails(&mut build_push, HOIST_LIMIT);
        refused_with_nothing_uploaded(&err, &blob, &registry);

        // And an output is refused the same way, leaving nothing behind.
        let mut build_out = sandbox.build();
        build_out
            .arg("--config")
            .arg(&config)
            .args(["--output", &sandbox.oci("out")]);
        let err = fails(&mut build_out, HOIST_LIMIT);
        assert!(err.contains(blob.to_str().unwrap()), "{err}");
        assert!(!sandbox.path("out").exists());
    }
}

#[test]
fn an_oci_archive_whose_blob_is_a_link_is_refused_with_nothing_uploaded() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    // The base layout as a tar, its amd64 layer replaced by a link to /etc/passwd.
    let archive = sandbox.path("base.tar");
    let mut tar = tar::Builder::new(fs::File::create(&archive).unwrap());
    tar.follow_symlinks(false);
    let base = base_layout();
    for name in ["oci-layout", "index.json"] {
        tar.append_path_with_name(base.join(name), name).unwrap();
    }
    let linked = format!("blobs/sha256/{}", &BASE_AMD64_LAYER[7..]);
    for entry in fs::read_dir(base.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!(
            "blobs/sha256/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        if name == linked {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            tar.append_link(&mut header, &name, "/etc/passwd").unwrap();
        } else {
            tar.append_path_with_name(&path, &name).unwrap();
        }
    }
    tar.finish().unwrap();

    let mut push = sandbox.hoist();
    push.arg("push")
        .arg(format!("oci-archive:{}:1.0", archive.display()))
        .arg(registry.reference("acme/base:1"));
    let err = fails(&mut push, HOIST_LIMIT);
    assert!(
        err.contains(&linked) && err.contains(archive.to_str().unwrap()),
        "the error should name the archive and its linked entry:\n{err}"
    );
    assert!(
        !registry
            .requests()
            .iter()
            .any(|r| r.is_upload_traffic() || r.manifest_put().is_some()),
        "nothing may be uploaded"
    );
}

/// Writes `mib` MiB of incompressible pseudo-random files under `root` (fixed seed):
/// gzip at level 9 takes a while over it on one thread, long enough to be caught
/// mid-layer.
fn big_tree(root: &Path, mib: usize) {
    fs::create_dir_all(root).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for file in 0..mib.div_ceil(8) {
        let mut out = fs::File::create(root.join(format!("blob-{file:02}.bin"))).unwrap();
        for _ in 0..8 {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            out.write_all(&chunk).unwrap();
        }
    }
}

/// A scratch-based project with one layer of a big generated tree, one platform,
/// gzip level 9.
fn big_project(sandbox: &Sandbox) -> PathBuf {
    big_tree(&sandbox.path("big"), 96);
    sandbox.write(
        "big.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\ncompression_level = 9\n\n\
         [[layer]]\nfrom = \"big\"\nto = \"/data\"\n",
    )
}

/// The `.hoist-tmp-*` files directly in `dir`.
/// Whether someone holds the `flock` of the file at `path`.
fn locked(path: &Path) -> bool {
    fs::File::open(path)
        .is_ok_and(|file| matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)))
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".hoist-tmp-")
        })
        .collect()
}

/// Every temp file left in a store root or its layer-cache directory.
fn temps_in_store(root: &Path) -> Vec<PathBuf> {
    let mut all = temp_files(root);
    all.extend(temp_files(&root.join("layer-cache")));
    all
}

/// Starts `hoist build` of `config` into `cache` in the background, one thread.
fn spawn_build(sandbox: &Sandbox, config: &Path, cache: &Path) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .current_dir(sandbox.root())
        .env("CI", "true")
        .env("XDG_CACHE_HOME", sandbox.path("xdg-cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("build")
        .arg("--config")
        .arg(config)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hoist build")
}

/// Waits, by polling a bounded number of times, until a temp file appears in `dir`
/// (the build is writing its layer), and returns it. Panics if the build ends first.
fn wait_for_temp_file(child: &mut Child, dir: &Path) -> PathBuf {
    const POLLS: usize = 30_000;
    for _ in 0..POLLS {
        // Only once its writer holds its lock: a run stopped in the instant between
        // creating the file and locking it is the case the writer itself repairs (it
        // finds its name gone and starts over), not the one this waits for.
        if let Some(found) = temp_files(dir).into_iter().find(|path| locked(path)) {
            return found;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the build ended ({status}) before a temp file appeared in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "no temp file appeared in {} after {POLLS} polls",
        dir.display()
    );
}

/// `hoist build` of `config` into `cache`, to completion: the image digest.
fn build_digest(sandbox: &Sandbox, config: &Path, cache: &Path) -> String {
    let mut command = sandbox.hoist();
    command
        .arg("build")
        .arg("--config")
        .arg(config)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--jobs", "1"]);
    last_line(&stdout(&success(&mut command))).to_owned()
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {}", child.id());
}

#[test]
fn a_build_killed_mid_layer_leaves_temp_files_the_next_build_sweeps() {
    let sandbox = Sandbox::new();
    let config = big_project(&sandbox);
    let reference = build_digest(&sandbox, &config, &sandbox.path("reference-cache"));

    let cache = sandbox.cache();
    let mut victim = spawn_build(&sandbox, &config, &cache);
    let temp = wait_for_temp_file(&mut victim, &cache);
    victim.kill().unwrap(); // SIGKILL: no destructor, no cleanup
    let status = victim.wait().unwrap();
    assert!(!status.success());
    assert!(temp.exists(), "the killed build left {}", temp.display());

    // An output layout of an earlier run holds a killed run's temp file too (a base
    // blob being copied in, an index.json being written): same name scheme, unlocked.
    let out = sandbox.path("out");
    let mut earlier = sandbox.build();
    earlier
        .arg("--config")
        .arg(&config)
        .args(["--output", &format!("oci:{}", out.display())]);
    success(&mut earlier);
    let abandoned = out.join(".hoist-tmp-k1lled");
    fs::write(&abandoned, vec![0u8; 1 << 20]).unwrap();

    let mut again = sandbox.hoist();
    again
        .arg("build")
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--jobs", "1", "--output", &format!("oci:{}", out.display())]);
    let digest = last_line(&stdout(&success(&mut again))).to_owned();
    assert_eq!(
        digest, reference,
        "the same image as an uninterrupted build"
    );
    assert_eq!(temps_in_store(&cache), Vec::<PathBuf>::new());
    assert_eq!(temp_files(&out), Vec::<PathBuf>::new());
}

#[test]
fn a_live_runs_temp_files_are_not_swept_by_another_run() {
    let sandbox = Sandbox::new();
    let config = big_project(&sandbox);
    let reference = build_digest(&sandbox, &config, &sandbox.path("reference-cache"));

    let cache = sandbox.cache();
    let mut slow = spawn_build(&sandbox, &config, &cache);
    let temp = wait_for_temp_file(&mut slow, &cache);
    // Stopped, it holds its temp file (and the file's lock) for as long as the other
    // run takes: no timing involved.
    signal(&slow, "STOP");
    let still_writing = temp.exists();

    sandbox.write("small/hello.txt", "hello\n");
    let small = sandbox.write(
        "small.toml",
        "[image]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n\n\
         [[layer]]\nfrom = \"small\"\nto = \"/srv\"\n",
    );
    let other = build_digest(&sandbox, &small, &cache);
    crate::common::assert_digest(&other);
    let kept = temp.exists();

    signal(&slow, "CONT");
    let output = slow.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the stopped build failed after the other run:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        still_writing,
        "the slow build finished its layer before it was stopped: make the tree bigger"
    );
    assert!(
        kept,
        "the other run swept the live run's {}",
        temp.display()
    );
    assert_eq!(
        last_line(&String::from_utf8_lossy(&output.stdout)),
        reference,
        "the live run's image is intact"
    );
    assert_eq!(temps_in_store(&cache), Vec::<PathBuf>::new());
}
