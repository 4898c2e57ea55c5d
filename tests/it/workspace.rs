//! Workspaces of images and several registries: a three-member workspace built,
//! listed and released into two real registries (`docker-registry`), one of them behind
//! the fault proxy so that a release can fail half-way; `hoist push` to several
//! destinations; `hoist tag` with a bare tag.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;

use crate::common::{Layout, Sandbox, base_layout, failure, parse_json, stdout, success};
use crate::proxy::{Fault, FaultPlan, FaultProxy};
use crate::pull_tag::unpack_arm64;
use crate::registry::{Registry, ok};
use crate::release::{Repo, digest_at, labels_at};

const MEMBERS: [&str; 3] = ["api", "web", "worker"];

/// The SDK's version module: only the version's bytes may change.
const VERSION_PY: &str =
    "\"\"\"The SDK's version.\"\"\"\n\n__version__ = '0.1.0'  # bumped by hoist\n";

fn append(path: &std::path::Path, text: &str) {
    let mut current = fs::read_to_string(path).unwrap();
    current.push_str(text);
    fs::write(path, current).unwrap();
}

/// A git repository holding a workspace of three members under `services/` (and an
/// excluded, broken `services/legacy`), each named in both `registries`, version 0.1.0
/// in `VERSION` and `sdk/VERSION`.
pub(crate) fn workspace_repo<'a>(sandbox: &'a Sandbox, registries: &[String]) -> Repo<'a> {
    let repo = Repo { sandbox };
    let write = |relative: &str, text: &str| {
        let path = repo.dir().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "hoist.toml",
        &format!(
            r#"[workspace]
members = ["services/*"]
exclude = ["services/legacy"]

[workspace.image]
base = "oci:{base}:1.0"
platforms = ["linux/amd64", "linux/arm64"]

[version]
source = "VERSION"
sync = ["sdk/VERSION", "sdk/gati/version.py"]

[tags]
rules = ["{{version}}", "{{major}}.{{minor}}", "latest"]
"#,
            base = base_layout().display()
        ),
    );
    write("VERSION", "0.1.0\n");
    write("sdk/VERSION", "0.1.0\n");
    write("sdk/gati/version.py", VERSION_PY);
    write("shared/lib/common.py", "SHARED = True\n");
    for member in MEMBERS {
        let names: Vec<String> = registries
            .iter()
            .map(|host| format!("\"{host}/acme/{member}\""))
            .collect();
        write(
            &format!("services/{member}/hoist.toml"),
            &format!(
                "[image]\nname = [{}]\n\n[[layer]]\nfrom = \"../../shared\"\nto = \"/shared\"\n\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n",
                names.join(", ")
            ),
        );
        write(
            &format!("services/{member}/app/main.py"),
            &format!("print('{member}')\n"),
        );
    }
    // Dockerfile habits: single files to their paths, a start script made executable,
    // one file as a whole layer.
    write("services/api/deploy/nginx.conf", "events {}\n");
    write(
        "services/api/start.sh",
        "#!/bin/sh\nexec python /app/main.py\n",
    );
    append(
        &repo.dir().join("services/api/hoist.toml"),
        "\n[[layer]]\nfiles = [\n  { from = \"deploy/nginx.conf\", to = \"/etc/nginx/nginx.conf\" },\n  { from = \"start.sh\", to = \"/usr/local/bin/start\", mode = \"0755\" },\n]\n",
    );
    write("services/web/index.html", "<h1>web</h1>\n");
    append(
        &repo.dir().join("services/web/hoist.toml"),
        "\n[[layer]]\nfrom = \"index.html\"\nto = \"/srv/index.html\"\n",
    );
    // Excluded: never read (it would not parse).
    write("services/legacy/hoist.toml", "[image\n");
    repo.git(&["init", "--quiet", "--initial-branch=main"]);
    repo.git(&["add", "--all"]);
    repo.git(&["commit", "--quiet", "-m", "Workspace"]);
    repo
}

fn json_of(repo: &Repo, registry: &Registry, args: &[&str]) -> Value {
    let mut command = repo.hoist(args);
    command.arg("--cache-dir").arg(repo.sandbox.cache());
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// The tags a repository has (none when it does not exist yet).
pub(crate) fn tags_of(registry: &Registry, repo: &str) -> Vec<String> {
    let response = registry
        .http_get(&format!("/v2/{repo}/tags/list"), &[])
        .unwrap();
    if response.status == 404 {
        return Vec::new();
    }
    assert_eq!(response.status, 200, "tags of {repo}");
    let mut tags: Vec<String> = parse_json(std::str::from_utf8(&response.body).unwrap())["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t.as_str().unwrap().to_string())
                // The referrers fallback tags (SBOMs) are not the image's.
                .filter(|t| !t.starts_with("sha256-"))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

#[test]
fn a_workspace_builds_every_member_and_picks_with_package() {
    let sandbox = Sandbox::new();
    let repo = workspace_repo(&sandbox, &["registry.example".to_string()]);

    let mut command = repo.hoist(&["build", "--json", "--cache-dir"]);
    command.arg(sandbox.cache());
    let built = parse_json(&stdout(&success(&mut command)));
    let entries = built.as_array().expect("one entry per member");
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, MEMBERS);
    // The shared directory is one layer, the same blob in every member.
    let shared: Vec<&Value> = entries
        .iter()
        .map(|e| &e["platforms"][0]["layers"][1])
        .collect();
    assert!(
        shared.iter().all(|l| l["digest"] == shared[0]["digest"]),
        "{built:#}"
    );
    // Built once: the later members take it from the cache.
    assert_eq!(shared[0]["cached"], false, "{built:#}");
    assert!(shared[1..].iter().all(|l| l["cached"] == true), "{built:#}");
    let digests: Vec<&Value> = entries.iter().map(|e| &e["digest"]).collect();
    assert!(digests[0] != digests[1] && digests[1] != digests[2]);

    // --output is for one image: -p picks it; the title is the member's name.
    let err = failure(&mut repo.hoist(&["build", "--output", "oci:out:1"]));
    assert!(
        err.contains("-p/--package") && err.contains("api, web, worker"),
        "{err}"
    );
    let mut command = repo.hoist(&["build", "-p", "web", "--output", "oci:out:1", "--cache-dir"]);
    command.arg(sandbox.cache());
    // At the root, lines name their member, even for one.
    let line = stdout(&success(&mut command));
    assert_eq!(
        line,
        format!("web {}\n", entries[1]["digest"].as_str().unwrap())
    );
    let layout = Layout::open(repo.dir().join("out"));
    let platform = &layout.platforms("1")[0];
    let labels = &platform.config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.title"], "web",
        "{labels:#}"
    );
    assert_eq!(labels["org.opencontainers.image.version"], "0.1.0");

    let err = failure(&mut repo.hoist(&["build", "-p", "nope"]));
    assert!(
        err.contains("`nope`") && err.contains("api, web, worker"),
        "{err}"
    );

    // Inside a member's directory: that member, with the workspace's version.
    let mut command = repo.hoist(&["tags"]);
    command.current_dir(repo.dir().join("services/api"));
    assert_eq!(stdout(&success(&mut command)), "0.1.0\n0.1\nlatest\n");
    let mut command = repo.hoist(&["build", "--json", "--cache-dir"]);
    command
        .arg(sandbox.cache())
        .current_dir(repo.dir().join("services/api"));
    let alone = parse_json(&stdout(&success(&mut command)));
    assert_eq!(alone["digest"], entries[0]["digest"], "{alone:#}");

    // At the root, every member's repositories and tags.
    let listed = stdout(&success(&mut repo.hoist(&["tags"])));
    assert!(
        listed.contains("api registry.example/acme/api:0.1.0\n")
            && listed.contains("worker registry.example/acme/worker:latest\n"),
        "{listed}"
    );

    // A member with a version of its own is refused, naming its file.
    repo.write(
        "services/web/hoist.toml",
        "[image]\n[version]\nsource = \"VERSION\"\n",
    );
    let err = failure(&mut repo.hoist(&["build"]));
    assert!(
        err.contains("services/web/hoist.toml")
            && err.contains("[version] belongs in the workspace root"),
        "{err}"
    );
}

/// Members built at once (`--jobs 4`) give what one after another (`--jobs 1`) gives:
/// the same digests, the same `--json` (the layer all three share built once, by the
/// first member, cached for the others) and the same progress lines in the same
/// order, each naming its member. A member that fails is named.
#[test]
fn members_built_at_once_match_one_after_another() {
    let sandbox = Sandbox::new();
    let repo = workspace_repo(&sandbox, &["registry.example".to_string()]);
    let build = |jobs: &str, cache: &str| {
        let mut command = repo.hoist(&["build", "--json", "--jobs", jobs, "--cache-dir"]);
        let cache = sandbox.path(cache);
        command.arg(&cache);
        let output = success(&mut command);
        let progress =
            crate::common::stderr(&output).replace(&cache.display().to_string(), "CACHE");
        (parse_json(&stdout(&output)), progress)
    };
    let (one, one_progress) = build("1", "one");
    let (four, four_progress) = build("4", "four");
    assert_eq!(one, four);
    assert_eq!(one_progress, four_progress);
    let shared: Vec<&Value> = four
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["platforms"][0]["layers"][1]["cached"])
        .collect();
    assert_eq!(shared, [false, true, true], "{four:#}");
    let layer_lines: Vec<&str> = four_progress
        .lines()
        .filter(|l| l.contains("layer "))
        .collect();
    assert_eq!(layer_lines.len(), 8, "{four_progress}");
    for line in &layer_lines {
        assert!(
            MEMBERS
                .iter()
                .any(|m| line.starts_with(&format!("{m}: layer "))),
            "{four_progress}"
        );
    }
    // Warm, at once: every layer from the cache, the same images.
    let (warm, warm_progress) = build("4", "one");
    let digests = |built: &Value| -> Vec<Value> {
        built
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["digest"].clone())
            .collect()
    };
    assert_eq!(digests(&warm), digests(&one));
    assert_eq!(
        warm_progress.matches(", cached)").count(),
        8,
        "{warm_progress}"
    );

    // A socket in one member's sources: that member's build fails, named.
    let socket = repo.dir().join("services/web/app/control.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut command = repo.hoist(&["build", "--jobs", "4", "--cache-dir"]);
    command.arg(sandbox.path("four"));
    let err = failure(&mut command);
    assert!(err.contains("building web failed"), "{err}");
    assert!(err.contains("control.sock"), "{err}");
}

#[test]
fn a_workspace_release_moves_tags_only_when_every_image_is_up_everywhere() {
    let sandbox = Sandbox::new();
    let primary = Registry::start();
    let mirror = Registry::start();
    // The mirror refuses the first manifest of acme/worker: the release fails there,
    // after api and web (and worker's blobs) are up.
    let proxy = FaultProxy::start(
        mirror.host().parse().unwrap(),
        FaultPlan::new().first(
            1,
            "PUT",
            "/v2/acme/worker/manifests/",
            Fault::envelope(400, "MANIFEST_INVALID"),
        ),
    );
    let repo = workspace_repo(&sandbox, &[primary.host(), proxy.host()]);

    let plan = json_of(
        &repo,
        &primary,
        &["release", "minor", "--dry-run", "--json"],
    );
    assert_eq!(plan["new"], "0.2.0", "{plan:#}");
    assert_eq!(plan["tags"], serde_json::json!(["0.2.0", "0.2", "latest"]));
    assert_eq!(
        plan["images"][2]["repositories"],
        serde_json::json!([
            format!("{}/acme/worker", primary.host()),
            format!("{}/acme/worker", proxy.host())
        ])
    );

    let mut command = repo.hoist(&["release", "minor", "--cache-dir"]);
    command.arg(sandbox.cache());
    let err = failure(&mut command);
    assert!(
        err.contains("acme/worker") && err.contains("no tag was moved"),
        "{err}"
    );
    for member in MEMBERS {
        let repository = format!("acme/{member}");
        assert_eq!(
            tags_of(&primary, &repository),
            Vec::<String>::new(),
            "{member}"
        );
        assert_eq!(
            tags_of(&mirror, &repository),
            Vec::<String>::new(),
            "{member}"
        );
    }
    assert_eq!(repo.read("VERSION"), "0.2.0\n");
    assert_eq!(repo.read("sdk/VERSION"), "0.2.0\n");
    assert_eq!(
        repo.read("sdk/gati/version.py"),
        VERSION_PY.replace("0.1.0", "0.2.0")
    );
    assert_eq!(repo.git(&["tag"]), "v0.2.0");

    // The same command again finishes the release: every member under every tag on
    // both registries, one digest per member.
    let meta = sandbox.path("release.json");
    let digests = sandbox.path("digests.txt");
    let report = json_of(
        &repo,
        &primary,
        &[
            "release",
            "minor",
            "--json",
            "--metadata-file",
            meta.to_str().unwrap(),
            "--digest-file",
            digests.to_str().unwrap(),
        ],
    );
    assert_eq!(report["resumed"], true, "{report:#}");
    // The same document in the metadata file; one `NAME DIGEST` line per image.
    assert_eq!(parse_json(&fs::read_to_string(&meta).unwrap()), report);
    let lines: Vec<String> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["name"].as_str().unwrap(),
                i["digest"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fs::read_to_string(&digests).unwrap(),
        lines.join("\n") + "\n"
    );
    assert_eq!(report["version"], "0.2.0");
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for (image, member) in images.iter().zip(MEMBERS) {
        assert_eq!(image["name"], member);
        let digest = image["digest"].as_str().unwrap();
        for tag in ["0.2.0", "0.2", "latest"] {
            for registry in [&primary, &mirror] {
                assert_eq!(
                    digest_at(registry, &format!("acme/{member}:{tag}")),
                    digest,
                    "{member}:{tag}"
                );
            }
        }
        let labels = labels_at(&primary, &format!("acme/{member}"), digest);
        assert_eq!(labels["org.opencontainers.image.title"], member);
        assert_eq!(labels["org.opencontainers.image.version"], "0.2.0");
    }
    assert_eq!(
        repo.git(&["log", "--format=%s"]).lines().count(),
        2,
        "one release commit"
    );
    files_and_modes_are_right(&sandbox, &primary, &mirror);

    later_releases(&repo, &primary, (&mirror, &proxy.host()));
}

/// The files and modes of the released images, judged by umoci on the arm64 image
/// skopeo copies out of each registry.
fn files_and_modes_are_right(sandbox: &Sandbox, primary: &Registry, mirror: &Registry) {
    let api = unpack_arm64(sandbox, &primary.docker("acme/api:0.2.0"), "api");
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        fs::read_to_string(api.join("etc/nginx/nginx.conf")).unwrap(),
        "events {}\n"
    );
    assert_eq!(mode(&api.join("etc/nginx/nginx.conf")), 0o644);
    assert_eq!(
        mode(&api.join("usr/local/bin/start")),
        0o755,
        "0755 from a 0644 file"
    );
    assert_eq!(mode(&api.join("usr/local/bin")), 0o755);
    assert!(api.join("shared/lib/common.py").is_file());
    let web = unpack_arm64(sandbox, &mirror.docker("acme/web:0.2.0"), "web");
    assert_eq!(
        fs::read_to_string(web.join("srv/index.html")).unwrap(),
        "<h1>web</h1>\n"
    );
}

/// After the first release: verify at the root, a pre-release, and `-p`.
/// `mirror` is reached (and its images named) through the proxy at `mirror_host`.
fn later_releases(repo: &Repo, primary: &Registry, (mirror, mirror_host): (&Registry, &str)) {
    let sandbox = repo.sandbox;
    // verify at the root rebuilds and checks every member at the version.
    let mut command = repo.hoist(&["verify", "--cache-dir"]);
    command.arg(sandbox.cache());
    let verified = stdout(&ok(&mut command, primary));
    assert_eq!(verified.matches("verified ").count(), 3, "{verified}");

    // A pre-release gets only its own tag, for every member, everywhere.
    let mut command = repo.hoist(&[
        "release",
        "pre",
        "--pre",
        "rc",
        "--json",
        "--growth",
        "--cache-dir",
    ]);
    command.arg(sandbox.cache());
    let output = ok(&mut command, primary);
    let report = parse_json(&stdout(&output));
    // Each image's growth against the previous version, per platform.
    let notes = crate::common::stderr(&output);
    assert_eq!(notes.matches("growth against ").count(), 3, "{notes}");
    assert!(notes.contains("/acme/api:0.2.0:\n  linux/amd64"), "{notes}");
    assert_eq!(report["version"], "0.2.1-rc.1");
    for image in report["images"].as_array().unwrap() {
        for push in image["pushes"].as_array().unwrap() {
            assert_eq!(push["report"]["tags"], serde_json::json!(["0.2.1-rc.1"]));
        }
    }
    for member in MEMBERS {
        assert_eq!(
            tags_of(mirror, &format!("acme/{member}")),
            ["0.2", "0.2.0", "0.2.1-rc.1", "latest"]
        );
    }

    // -p releases only the named member; --sign-key signs it in both registries.
    let mut command = sandbox.hoist();
    command
        .args(["key", "generate", "--output-key-prefix", "release"])
        .env("HOIST_KEY_PASSWORD", "correct horse");
    success(&mut command);
    let key = sandbox.path("release.key");
    let mut command = repo.hoist(&["release", "patch", "-p", "web", "--json", "--sign-key"]);
    command
        .arg(&key)
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .env("HOIST_KEY_PASSWORD", "correct horse");
    let output = ok(&mut command, primary);
    // Without --growth or max_growth, no growth table (the previous image is there).
    let notes = crate::common::stderr(&output);
    assert!(!notes.contains("growth against"), "{notes}");
    let report = parse_json(&stdout(&output));
    // The signatures name the repository as it was pushed to (the mirror's through the
    // proxy).
    for (registry, host) in [(primary, primary.host()), (mirror, mirror_host.to_string())] {
        let mut command = sandbox.hoist();
        command
            .args(["verify", &format!("{host}/acme/web:0.2.1"), "--key"])
            .arg(sandbox.path("release.pub"))
            .arg("--signature-only");
        let verified = stdout(&ok(&mut command, registry));
        assert!(
            verified.starts_with("verified signatures of "),
            "{verified}"
        );
    }
    let names: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    assert!(tags_of(primary, "acme/web").contains(&"0.2.1".to_string()));
    assert!(!tags_of(primary, "acme/api").contains(&"0.2.1".to_string()));
}

#[test]
fn push_goes_to_several_destinations_and_tag_takes_a_bare_tag() {
    let sandbox = Sandbox::new();
    let first = Registry::start();
    let second = Registry::start();
    let layout = sandbox.oci("out");
    let digest = sandbox
        .build_example(&format!("{layout}:1"), &[])
        .trim()
        .to_string();

    let mut command = sandbox.hoist();
    command.args([
        "push",
        &format!("{layout}:1"),
        &first.reference("acme/app:1.2.3"),
        &second.reference("acme/app"),
        "--tag",
        "stable",
        "--json",
    ]);
    let output = ok(&mut command, &first);
    // CI=true: one line per uploaded blob, in each destination.
    let progress = crate::common::stderr(&output);
    for registry in [&first, &second] {
        assert!(
            progress.contains(&format!(") to {}", registry.reference("acme/app"))),
            "{progress}"
        );
    }
    let reports = parse_json(&stdout(&output));
    let reports = reports.as_array().expect("one report per destination");
    assert_eq!(reports[0]["tags"], serde_json::json!(["1.2.3", "stable"]));
    assert_eq!(reports[1]["tags"], serde_json::json!(["stable"]));
    // Each destination's part of the registry work is what its registry saw (each
    // registry a process of its own, with only the harness's start-up probe before);
    // every element carries the command's totals, the parts' sum.
    let totals = &reports[0]["registry"];
    assert_eq!(&reports[1]["registry"], totals);
    let mut sum = 0;
    for (report, registry) in reports.iter().zip([&first, &second]) {
        let share = &report["registry_share"];
        let seen = registry.requests().len() - 1;
        assert_eq!(share["total"].as_u64(), Some(seen as u64), "{share:#}");
        assert!(
            share["blobs"]["uploaded"].as_u64().unwrap() > 0,
            "{share:#}"
        );
        sum += seen as u64;
    }
    assert_eq!(totals["total"].as_u64(), Some(sum), "{totals:#}");
    assert_eq!(digest_at(&first, "acme/app:1.2.3"), digest);
    assert_eq!(digest_at(&first, "acme/app:stable"), digest);
    assert_eq!(digest_at(&second, "acme/app:stable"), digest);
    assert_eq!(tags_of(&second, "acme/app"), ["stable"]);

    // A bare tag retags within the source's repository.
    let mut command = sandbox.hoist();
    command.args(["tag", &first.reference("acme/app:1.2.3"), "prod"]);
    let out = stdout(&ok(&mut command, &first));
    assert_eq!(
        out.trim(),
        format!("{}:prod@{digest}", first.reference("acme/app"))
    );
    assert_eq!(digest_at(&first, "acme/app:prod"), digest);
    let mut command = sandbox.hoist();
    command.args(["tag", &first.reference("acme/app:1.2.3"), "bad!"]);
    let err = failure(&mut command);
    assert!(err.contains("`bad!`"), "{err}");
}
