//! podman as a judge: it pulls an image `hoist build --push` put in the test registry,
//! and `podman load`s hoist's docker-archive and oci-archive; what it stored must be
//! the image hoist reported (manifest and config digests, platform, diff_ids, config)
//! and hold the example's files.
//!
//! podman runs with `--storage-driver vfs` and everything it keeps (storage, run
//! root, libpod tmp dir, HOME, containers.conf, storage.conf, registries.conf,
//! policy.json, auth file) in a temporary directory of its own, so the tests neither
//! read nor change the machine's podman setup, as root or rootless. `podman run` does
//! not work in this sandbox (crun's rlimits, hybrid cgroups): contents are judged by
//! `podman image mount` (inside `podman unshare` when rootless). One thing escapes the
//! temp dir as root: containers/image's blob-info cache in /var/lib/containers/cache,
//! which podman 4.3 offers no flag to move (skopeo, used by other tests, writes it too).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{
    Sandbox, TarEntry, digest_of, example_config, example_dir, parse_json, require_tool, stderr,
    stdout, str_at, success, tar_entries, tar_map,
};
use crate::registry::{HOIST_LIMIT, Registry, ok, run};

/// Image directories copied out of podman's mount of an image for the checks.
const JUDGED_DIRS: [&str; 3] = ["app", "etc/nginx", "usr/share/nginx/html"];

/// A podman confined to a temporary directory.
pub(crate) struct Podman {
    dir: TempDir,
    /// Running as root: files keep their owners and `image mount` works directly.
    root: bool,
}

impl Podman {
    pub(crate) fn new() -> Podman {
        require_tool("podman");
        let dir = tempfile::Builder::new()
            .prefix("hoist-podman-")
            .tempdir()
            .expect("creating podman's temp dir");
        let root = fs::metadata(dir.path()).expect("temp dir").uid() == 0;
        let at = |relative: &str| dir.path().join(relative);
        for sub in [
            "storage",
            "run",
            "libpod-tmp",
            "tmp",
            "home/.config/containers",
        ] {
            fs::create_dir_all(at(sub)).unwrap();
        }
        fs::write(
            at("containers.conf"),
            format!(
                "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n\
                 image_copy_tmp_dir = \"{}\"\ntmp_dir = \"{}\"\n",
                at("tmp").display(),
                at("libpod-tmp").display()
            ),
        )
        .unwrap();
        fs::write(
            at("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n{}",
                at("storage").display(),
                at("run").display(),
                // As the global flags say, for a podman run without them.
                if root {
                    ""
                } else {
                    "[storage.options.vfs]\nignore_chown_errors = \"true\"\n"
                }
            ),
        )
        .unwrap();
        // Fully qualified names only: no search registries, no short-name aliases.
        fs::write(
            at("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        // containers/image reads $HOME/.config/containers/policy.json before the system's.
        fs::write(
            at("home/.config/containers/policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        // No credentials: the test registry needs none, and the user's stay unread.
        fs::write(at("auth.json"), "{\"auths\":{}}\n").unwrap();
        Podman { dir, root }
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join(relative)
    }

    /// podman's global flags: vfs storage and state in the temp dir, no systemd.
    fn global_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--storage-driver".to_owned(),
            "vfs".to_owned(),
            "--root".to_owned(),
            self.path("storage").display().to_string(),
            "--runroot".to_owned(),
            self.path("run").display().to_string(),
            "--tmpdir".to_owned(),
            self.path("libpod-tmp").display().to_string(),
            "--events-backend".to_owned(),
            "file".to_owned(),
            "--cgroup-manager".to_owned(),
            "cgroupfs".to_owned(),
        ];
        if !self.root {
            // Rootless without /etc/subuid ranges, podman maps one uid: the example's
            // 1000:1000 files could not be chowned, and that is no fault of the image.
            flags.extend([
                "--storage-opt".into(),
                "vfs.ignore_chown_errors=true".into(),
            ]);
        }
        flags
    }

    /// `podman <global flags> <args>` in the confined environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.confined("podman");
        command.args(self.global_flags()).args(args);
        command
    }

    /// `program` with podman's configuration, state and HOME all in the temp dir.
    fn confined(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(self.environment());
        command
    }

    /// The environment that confines podman (and a program that runs it, such as
    /// `hoist build --load`) to the temp dir: storage.conf (vfs, graphroot, runroot),
    /// containers.conf, registries.conf, auth file and HOME.
    pub(crate) fn environment(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        vec![
            ("HOME", self.path("home")),
            ("XDG_CONFIG_HOME", self.path("home/.config")),
            ("XDG_DATA_HOME", self.path("home/.local/share")),
            ("XDG_RUNTIME_DIR", self.path("run")),
            ("TMPDIR", self.path("tmp")),
            ("CONTAINERS_CONF", self.path("containers.conf")),
            ("CONTAINERS_STORAGE_CONF", self.path("storage.conf")),
            ("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf")),
            ("REGISTRY_AUTH_FILE", self.path("auth.json")),
        ]
    }

    /// Runs podman (bounded, against hangs), asserting success.
    pub(crate) fn output(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        let output = run(&mut command, HOIST_LIMIT);
        assert!(
            output.status.success(),
            "podman {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            output.status,
            stdout(&output),
            stderr(&output)
        );
        output
    }

    /// `podman image inspect ID`: the one image's object.
    pub(crate) fn inspect(&self, image: &str) -> Value {
        let listed = parse_json(&stdout(&self.output(&["image", "inspect", image])));
        let [one] = listed.as_array().expect("inspect gives a list").as_slice() else {
            panic!("expected one image for {image}: {listed:#}");
        };
        one.clone()
    }

    /// The entries under [`JUDGED_DIRS`] of the image's root filesystem as podman
    /// stored it, read through `podman image mount` (a tar of the mount point, so the
    /// same check serves root and rootless, where the mount exists only inside
    /// `podman unshare`).
    fn rootfs_entries(&self, image: &str) -> BTreeMap<String, TarEntry> {
        // $1 is the image, the rest the podman command line to mount it with.
        let script = format!(
            "img=$1; shift\n\
             dir=$(\"$@\" image mount \"$img\") || exit 1\n\
             tar --numeric-owner -C \"$dir\" -cf - {}; status=$?\n\
             \"$@\" image unmount \"$img\" >/dev/null || exit 1\n\
             exit $status",
            JUDGED_DIRS.join(" ")
        );
        let mut shell: Vec<String> = ["sh", "-c", &script, "sh", image, "podman"]
            .map(String::from)
            .to_vec();
        shell.extend(self.global_flags());
        let output = if self.root {
            let mut command = self.confined(&shell[0]);
            command.args(&shell[1..]);
            run(&mut command, HOIST_LIMIT)
        } else {
            // Rootless podman mounts images only inside its user namespace.
            let mut command = self.command(&["unshare"]);
            command.args(&shell);
            run(&mut command, HOIST_LIMIT)
        };
        assert!(
            output.status.success(),
            "reading {image}'s files through podman image mount failed ({}):\n{}",
            output.status,
            stderr(&output)
        );
        tar_map(&tar_entries(&output.stdout))
    }
}

/// Checks a podman image (by ID) against what hoist made: its ID is the config's
/// digest, its layers are the config's diff_ids, its platform and runtime config are
/// the config's, and its files are the example's.
fn assert_is_hoists_image(podman: &Podman, config: &Value, config_digest: &str) {
    let id = config_digest
        .strip_prefix("sha256:")
        .expect("sha256 config");
    let inspected = podman.inspect(id);
    assert_eq!(str_at(&inspected, "/Id"), id, "{inspected:#}");
    assert_eq!(inspected["Os"], config["os"], "{inspected:#}");
    assert_eq!(inspected["Architecture"], config["architecture"]);
    assert_eq!(
        inspected["RootFS"]["Layers"], config["rootfs"]["diff_ids"],
        "podman's layers are hoist's diff_ids"
    );
    for key in [
        "Env",
        "Entrypoint",
        "Cmd",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "StopSignal",
    ] {
        assert!(
            !config["config"][key].is_null(),
            "the example sets {key}: {config:#}"
        );
        assert_eq!(
            inspected["Config"][key], config["config"][key],
            "config {key} as podman read it"
        );
    }

    let files = podman.rootfs_entries(id);
    for (in_image, in_example) in [
        ("app/main.py", "backend/main.py"),
        (
            "usr/share/nginx/html/index.html",
            "frontend/dist/index.html",
        ),
    ] {
        let entry = files.get(in_image).unwrap_or_else(|| {
            panic!(
                "{in_image} missing from podman's rootfs: {:?}",
                files.keys()
            )
        });
        assert_eq!(
            entry.data,
            fs::read(example_dir().join(in_example)).unwrap(),
            "{in_image} as podman stored it"
        );
        if podman.root {
            let owner = if in_image.starts_with("app/") {
                1000
            } else {
                0
            };
            assert_eq!((entry.uid, entry.gid), (owner, owner), "{in_image} owner");
        }
    }
    assert!(
        files.contains_key("etc/nginx/conf.d/"),
        "the base's directory is kept: {:?}",
        files.keys()
    );
    assert!(
        !files.contains_key("etc/nginx/conf.d/default.conf"),
        "podman applied the whiteout"
    );
    assert!(
        !files
            .keys()
            .any(|p| Path::new(p).extension().is_some_and(|e| e == "map")),
        "excluded source maps are not in the image"
    );
}

/// The members of a tar file on disk, by name (without a leading `./`).
fn archive_members(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (name.trim_start_matches("./").to_owned(), data)
        })
        .collect()
}

/// A JSON member of an archive, checked against its digest when it is a blob.
fn json_member(members: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    let bytes = members
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from the archive: {:?}", members.keys()));
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        assert_eq!(digest_of(bytes), format!("sha256:{hex}"), "{name}");
    }
    parse_json(std::str::from_utf8(bytes).expect("UTF-8 JSON"))
}

/// The OCI name of this machine's architecture: what podman picks from an index.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("the example has no image for {other}"),
    }
}

/// `hoist build --json` of the dashboard example with `extra` arguments; the report.
fn build_report(sandbox: &Sandbox, extra: &[&str]) -> Value {
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .arg("--json")
        .args(extra);
    parse_json(&stdout(&success(&mut command)))
}

/// The report's entry for `platform` (e.g. `linux/amd64`, or `linux/arm64/v8`).
fn reported_platform<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["platforms"]
        .as_array()
        .expect("report platforms")
        .iter()
        .find(|p| str_at(p, "/platform").starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {report:#}"))
}

fn reported_diff_ids(platform: &Value) -> Value {
    platform["layers"]
        .as_array()
        .expect("report layers")
        .iter()
        .map(|l| l["diff_id"].clone())
        .collect()
}

#[test]
fn podman_pulls_the_pushed_image_of_each_platform() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = "acme/dashboard";
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(example_config())
        .args(["--push", "--push-to", &registry.reference(repo)])
        .args(["--tag", "1.0", "--json"]);
    let report = parse_json(&stdout(&ok(&mut command, &registry)));
    let index_digest = str_at(&report, "/digest");

    let podman = Podman::new();
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let pulled = podman.output(&[
            "pull",
            "--quiet",
            "--tls-verify=false",
            "--platform",
            platform,
            &format!("{}:1.0", registry.reference(repo)),
        ]);
        let id = stdout(&pulled).trim().to_owned();
        let reported = reported_platform(&report, platform);
        let manifest_digest = str_at(reported, "/digest");
        let manifest_bytes = registry.manifest(repo, manifest_digest);
        assert_eq!(digest_of(&manifest_bytes), manifest_digest);
        let manifest = parse_json(std::str::from_utf8(&manifest_bytes).unwrap());
        let config_digest = str_at(&manifest, "/config/digest");
        assert_eq!(format!("sha256:{id}"), config_digest, "podman's image ID");
        let blob = registry
            .http_get(&format!("/v2/{repo}/blobs/{config_digest}"), &[])
            .expect("GET the config blob");
        assert_eq!(blob.status, 200);
        assert_eq!(digest_of(&blob.body), config_digest);
        let config = parse_json(std::str::from_utf8(&blob.body).unwrap());
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["rootfs"]["diff_ids"], reported_diff_ids(reported));

        let inspected = podman.inspect(&id);
        assert_eq!(
            inspected["Digest"], index_digest,
            "podman records the index digest hoist reported"
        );
        let repo_digests = inspected["RepoDigests"].as_array().expect("RepoDigests");
        for digest in [index_digest, manifest_digest] {
            let pinned = format!("{}@{digest}", registry.reference(repo));
            assert!(
                repo_digests.iter().any(|d| d == pinned.as_str()),
                "{pinned} not in {repo_digests:?}"
            );
        }
        assert_is_hoists_image(&podman, &config, config_digest);
    }
}

#[test]
fn podman_loads_the_docker_archive() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("dashboard.tar");
    let report = build_report(
        &sandbox,
        &[
            "--platform",
            "linux/amd64",
            "--output",
            &format!("docker-archive:{}:acme/dash:1", archive.display()),
        ],
    );
    let members = archive_members(&archive);
    let manifest = json_member(&members, "manifest.json");
    let config_name = str_at(&manifest, "/0/Config");
    let config = json_member(&members, config_name);
    let config_digest = format!("sha256:{}", config_name.trim_start_matches("blobs/sha256/"));
    assert_eq!(
        config["rootfs"]["diff_ids"],
        reported_diff_ids(reported_platform(&report, "linux/amd64"))
    );

    let podman = Podman::new();
    let loaded = stdout(&podman.output(&["load", "--input", archive.to_str().unwrap()]));
    // podman qualifies a RepoTag without a registry with `localhost/`.
    assert!(
        loaded.contains("Loaded image: localhost/acme/dash:1"),
        "podman load said: {loaded}"
    );
    let inspected = podman.inspect("localhost/acme/dash:1");
    assert_eq!(
        format!("sha256:{}", str_at(&inspected, "/Id")),
        config_digest
    );
    assert_is_hoists_image(&podman, &config, &config_digest);
}

#[test]
fn podman_loads_the_oci_archive() {
    let sandbox = Sandbox::new();
    let archive = sandbox.path("dashboard-oci.tar");
    let report = build_report(
        &sandbox,
        &[
            "--output",
            &format!("oci-archive:{}:1.0", archive.display()),
        ],
    );
    let members = archive_members(&archive);
    let index_json = json_member(&members, "index.json");
    let index_digest = str_at(&index_json, "/manifests/0/digest");
    assert_eq!(index_digest, str_at(&report, "/digest"));
    // podman takes the index's entry for this machine, as a pull would.
    let reported = reported_platform(&report, &format!("linux/{}", host_architecture()));
    let manifest_digest = str_at(reported, "/digest");
    let manifest = json_member(&members, &format!("blobs/sha256/{}", &manifest_digest[7..]));
    let config_digest = str_at(&manifest, "/config/digest").to_owned();
    let config = json_member(&members, &format!("blobs/sha256/{}", &config_digest[7..]));
    assert_eq!(config["rootfs"]["diff_ids"], reported_diff_ids(reported));

    let podman = Podman::new();
    let loaded = stdout(&podman.output(&["load", "--input", archive.to_str().unwrap()]));
    assert!(
        loaded.contains("Loaded image"),
        "podman load said: {loaded}"
    );
    let inspected = podman.inspect(&config_digest[7..]);
    assert_eq!(
        inspected["Digest"], index_digest,
        "podman records the archive's index digest"
    );
    assert_is_hoists_image(&podman, &config, &config_digest);
}
