//! `hoist version`, `hoist tags` and `hoist release` in a temporary git repository
//! holding the dashboard example, against a real registry (`docker-registry`).
//!
//! git runs with `GIT_CONFIG_GLOBAL=/dev/null` and `GIT_CONFIG_NOSYSTEM`, and a fixed
//! author and committer, so the host's git configuration (signing, hooks, default
//! branch) cannot leak into the tests.

use std::fs;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{
    Sandbox, base_layout, copy_tree, digest_of, example_dir, failure, parse_json, stdout, success,
};
use crate::proxy::{Fault, FaultPlan, FaultProxy};
use crate::registry::{HOIST_LIMIT, Registry, dead_port, fails, ok, skopeo_raw};

/// The environment git (and hoist's own git calls) get.
pub fn git_env(command: &mut Command) -> &mut Command {
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Release Test")
        .env("GIT_AUTHOR_EMAIL", "release@example.invalid")
        .env("GIT_COMMITTER_NAME", "Release Test")
        .env("GIT_COMMITTER_EMAIL", "release@example.invalid")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
}

/// A git repository in the sandbox's `repo/`.
pub struct Repo<'a> {
    pub sandbox: &'a Sandbox,
}

impl Repo<'_> {
    pub fn dir(&self) -> std::path::PathBuf {
        self.sandbox.path("repo")
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut command = Command::new("git");
        git_env(&mut command).current_dir(self.dir()).args(args);
        stdout(&success(&mut command)).trim().to_string()
    }

    /// `hoist ARGS` run in the repository, with the sandbox's cache.
    pub fn hoist(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.hoist();
        git_env(&mut command).current_dir(self.dir()).args(args);
        command
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.dir().join(relative)).unwrap()
    }

    pub fn write(&self, relative: &str, text: &str) {
        fs::write(self.dir().join(relative), text).unwrap();
    }
}

/// A repository on `main` with the dashboard example, its version 0.1.0 in
/// `frontend/package.json` (the source) and `VERSION` (synced), one commit.
pub fn example_repo<'a>(sandbox: &'a Sandbox, image_name: &str) -> Repo<'a> {
    let repo = Repo { sandbox };
    let dir = repo.dir();
    for part in ["frontend", "backend"] {
        copy_tree(&example_dir().join(part), &dir.join(part));
    }
    fs::write(dir.join("VERSION"), "0.1.0\n").unwrap();
    fs::write(
        dir.join("hoist.toml"),
        format!(
            r#"# The dashboard, released with hoist.
[image]
name = "{image_name}"
base = "oci:{base}:1.0"
platforms = ["linux/amd64", "linux/arm64"]

[[layer]]
from = "frontend/dist"
to = "/usr/share/nginx/html"

[[layer]]
from = "backend"
to = "/app"
owner = "1000:1000"
exclude = ["__pycache__/", "*.pyc"]

[config]
labels = {{ "org.opencontainers.image.vendor" = "acme" }}

[version]
source = "frontend/package.json"
sync = ["VERSION"]
"#,
            base = base_layout().display()
        ),
    )
    .unwrap();
    repo.git(&["init", "--quiet", "--initial-branch=main"]);
    repo.git(&["add", "--all"]);
    repo.git(&["commit", "--quiet", "-m", "Dashboard"]);
    repo
}

#[test]
fn version_prints_checks_bumps_and_sets() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    assert_eq!(
        stdout(&success(&mut repo.hoist(&["version"]))).trim(),
        "0.1.0"
    );
    let json = parse_json(&stdout(&success(&mut repo.hoist(&["version", "--json"]))));
    assert_eq!(json["version"], "0.1.0");
    assert_eq!(json["files"][0]["line"], 3, "{json:#}");
    success(&mut repo.hoist(&["version", "check", "--tag", "v0.1.0"]));
    success(&mut repo.hoist(&["version", "check", "--tag", "refs/tags/v0.1.0"]));

    // A sync file that disagrees is named with its line and value.
    repo.write("VERSION", "0.0.9\n");
    let err = failure(&mut repo.hoist(&["version", "check"]));
    assert!(
        err.contains("VERSION:1 has 0.0.9") && err.contains("package.json:3 has 0.1.0"),
        "{err}"
    );
    repo.write("VERSION", "0.1.0\n");
    let err = failure(&mut repo.hoist(&["version", "check", "--tag", "v0.2.0"]));
    assert!(err.contains("v0.2.0") && err.contains("0.1.0"), "{err}");

    // --dry-run shows the diff and writes nothing.
    let before = repo.read("frontend/package.json");
    let diff = stdout(&success(&mut repo.hoist(&[
        "version",
        "bump",
        "minor",
        "--dry-run",
    ])));
    assert!(
        diff.contains("-  \"version\": \"0.1.0\",\n+  \"version\": \"0.2.0\","),
        "{diff}"
    );
    assert!(diff.contains("-0.1.0\n+0.2.0"), "{diff}");
    assert_eq!(repo.read("frontend/package.json"), before);

    // The pre-release sequence, written to both files; only the version line changes.
    let steps: &[(&[&str], &str)] = &[
        (&["pre"], "0.1.1-alpha.1"),
        (&["pre"], "0.1.1-alpha.2"),
        (&["pre", "--pre", "rc"], "0.1.1-rc.1"),
    ];
    for (args, expected) in steps {
        let mut command = repo.hoist(&["version", "bump"]);
        command.args(*args);
        assert_eq!(stdout(&success(&mut command)).trim(), *expected);
        assert_eq!(repo.read("VERSION"), format!("{expected}\n"));
    }
    let err = failure(&mut repo.hoist(&["version", "bump", "pre", "--pre", "alpha"]));
    assert!(
        err.contains("alpha comes before rc") && err.contains("0.1.1-rc.1"),
        "{err}"
    );
    assert_eq!(
        stdout(&success(&mut repo.hoist(&["version", "bump", "release"]))).trim(),
        "0.1.1"
    );
    let after = repo.read("frontend/package.json");
    let changed: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [("  \"version\": \"0.1.0\",", "  \"version\": \"0.1.1\",")]
    );
    assert_eq!(before.lines().count(), after.lines().count());
    let err = failure(&mut repo.hoist(&["version", "set", "2.0"]));
    assert!(err.contains("`2.0`") && err.contains("SemVer"), "{err}");

    // --commit and --git-tag refuse a dirty tree (besides the version files)…
    repo.write("backend/extra.py", "print('x')\n");
    let err = failure(&mut repo.hoist(&["version", "set", "2.0.0-rc.1", "--commit"]));
    assert!(err.contains("backend/extra.py"), "{err}");
    fs::remove_file(repo.dir().join("backend/extra.py")).unwrap();
    // …and a branch other than the default one unless allowed.
    repo.git(&["checkout", "--quiet", "-b", "feature/x"]);
    let err = failure(&mut repo.hoist(&["version", "set", "2.0.0-rc.1", "--commit"]));
    assert!(
        err.contains("feature/x") && err.contains("--allow-branch"),
        "{err}"
    );
    repo.git(&["checkout", "--quiet", "main"]);
    success(&mut repo.hoist(&["version", "set", "v2.0.0-rc.1", "--commit", "--git-tag"]));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        "Release v2.0.0-rc.1"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(
        repo.git(&["rev-parse", "v2.0.0-rc.1^{commit}"]),
        repo.git(&["rev-parse", "HEAD"])
    );
    assert_eq!(
        repo.git(&["cat-file", "-t", "v2.0.0-rc.1"]),
        "tag",
        "an annotated tag"
    );
    assert_eq!(repo.read("VERSION"), "2.0.0-rc.1\n");
}

#[test]
fn a_malformed_version_file_is_named_with_its_line() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let json = repo.read("frontend/package.json");
    repo.write(
        "frontend/package.json",
        &json.replace("\"0.1.0\"", "\"0.1\""),
    );
    let err = failure(&mut repo.hoist(&["version"]));
    assert!(
        err.contains("frontend/package.json:3") && err.contains("`0.1`"),
        "{err}"
    );
    repo.write(
        "frontend/package.json",
        &json.replace("\"private\": true,", "\"private\": true,,"),
    );
    let err = failure(&mut repo.hoist(&["version", "bump", "patch"]));
    assert!(err.contains("frontend/package.json:4"), "{err}");
    // Nothing was written to the other file.
    assert_eq!(repo.read("VERSION"), "0.1.0\n");
}

#[test]
fn tags_follow_version_branch_and_sha() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let lines = |args: &[&str]| -> Vec<String> {
        stdout(&success(&mut repo.hoist(args)))
            .lines()
            .map(String::from)
            .collect()
    };
    assert_eq!(lines(&["tags"]), ["0.1.0", "0.1", "0", "latest"]);
    // Off the default branch: no latest.
    assert_eq!(
        lines(&["tags", "--branch", "release/0.1"]),
        ["0.1.0", "0.1", "0"]
    );
    let config = repo.read("hoist.toml");
    repo.write(
        "hoist.toml",
        &format!("{config}\n[tags]\nrules = [\"{{version}}\", \"{{branch}}-{{sha7}}\", \"edge\", \"latest\"]\n"),
    );
    let sha = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        lines(&["tags"]),
        [
            "0.1.0".to_string(),
            format!("main-{}", &sha[..7]),
            "edge".into(),
            "latest".into()
        ]
    );
    let json = parse_json(&stdout(&success(&mut repo.hoist(&[
        "tags",
        "--json",
        "--sha",
        "0123456789abcdef",
        "--branch",
        "feature/Login",
    ]))));
    assert_eq!(
        json["tags"],
        serde_json::json!(["0.1.0", "feature-Login-0123456", "edge"]),
        "{json:#}"
    );
    assert_eq!(json["default_branch"], "main");
    // A pre-release gets only its own tag (and the sha/branch rules).
    repo.write("hoist.toml", &config);
    success(&mut repo.hoist(&["version", "set", "0.2.0-beta.1"]));
    assert_eq!(lines(&["tags"]), ["0.2.0-beta.1"]);
}

/// The index digest a tag names in the registry.
pub fn digest_at(registry: &Registry, reference: &str) -> String {
    digest_of(&skopeo_raw(registry, reference))
}

/// The labels of the first platform's config of the index at `reference`.
pub fn labels_at(registry: &Registry, repo: &str, digest: &str) -> Value {
    let index = parse_json(std::str::from_utf8(&registry.manifest(repo, digest)).unwrap());
    let child = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = parse_json(std::str::from_utf8(&registry.manifest(repo, &child)).unwrap());
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let response = registry
        .http_get(&format!("/v2/{repo}/blobs/{config_digest}"), &[])
        .unwrap();
    assert_eq!(response.status, 200);
    let config = parse_json(std::str::from_utf8(&response.body).unwrap());
    config["config"]["Labels"].clone()
}

/// `hoist ARGS --cache-dir …` in the repository, failing; answers stderr.
fn fails_in(repo: &Repo, args: &[&str]) -> String {
    let mut command = repo.hoist(args);
    command.arg("--cache-dir").arg(repo.sandbox.cache());
    fails(&mut command, HOIST_LIMIT)
}

fn release(repo: &Repo, registry: &Registry, args: &[&str]) -> Value {
    let mut command = repo.hoist(&["release", "--json", "--cache-dir"]);
    command.arg(repo.sandbox.cache()).args(args);
    parse_json(&stdout(&ok(&mut command, registry)))
}

#[test]
fn release_pushes_every_tag_and_tags_only_move_forward() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let name = registry.reference("acme/dashboard");
    let repo = example_repo(&sandbox, &name);

    // --dry-run prints the plan and changes nothing.
    let mut command = repo.hoist(&["release", "minor", "--dry-run"]);
    let plan = stdout(&success(&mut command));
    for line in [
        "version: 0.1.0 → 0.2.0",
        "frontend/package.json:3  0.1.0 → 0.2.0",
        "tags: 0.2.0, 0.2, 0, latest",
        &format!("  repo: {name} [linux/amd64, linux/arm64/v8]"),
    ] {
        assert!(plan.contains(line), "expected {line:?} in:\n{plan}");
    }
    assert_eq!(repo.read("VERSION"), "0.1.0\n");
    assert_eq!(repo.git(&["tag"]), "");

    // A dirty tree is refused before anything changes.
    repo.write("backend/scratch.txt", "x");
    let err = failure(&mut repo.hoist(&["release", "minor", "--build-only"]));
    assert!(err.contains("backend/scratch.txt"), "{err}");
    fs::remove_file(repo.dir().join("backend/scratch.txt")).unwrap();

    let report = release(&repo, &registry, &["minor"]);
    assert_eq!(report["version"], "0.2.0", "{report:#}");
    let digest = report["digest"].as_str().unwrap().to_string();
    for tag in ["0.2.0", "0.2", "0", "latest"] {
        assert_eq!(
            digest_at(&registry, &format!("acme/dashboard:{tag}")),
            digest,
            "tag {tag}"
        );
    }
    assert_eq!(repo.git(&["log", "-1", "--format=%s"]), "Release v0.2.0");
    assert_eq!(repo.git(&["describe", "--exact-match"]), "v0.2.0");
    assert_eq!(repo.read("VERSION"), "0.2.0\n");
    let labels = labels_at(&registry, "acme/dashboard", &digest);
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        labels["org.opencontainers.image.version"], "0.2.0",
        "{labels:#}"
    );
    assert_eq!(labels["org.opencontainers.image.revision"], head.as_str());
    // The commit time (GIT_COMMITTER_DATE), not the clock: builds stay reproducible.
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(
        labels["org.opencontainers.image.title"],
        "dashboard-frontend"
    );
    assert_eq!(
        labels["org.opencontainers.image.vendor"], "acme",
        "the user's labels stay"
    );
    let index =
        parse_json(std::str::from_utf8(&registry.manifest("acme/dashboard", &digest)).unwrap());
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"],
        "0.2.0"
    );

    // A backport: 0.1.1 gets its own tags, but `0` and `latest` stay on 0.2.0.
    let report = release(&repo, &registry, &["0.1.1"]);
    let backport = report["digest"].as_str().unwrap().to_string();
    assert_ne!(backport, digest);
    assert_eq!(digest_at(&registry, "acme/dashboard:0.1.1"), backport);
    assert_eq!(digest_at(&registry, "acme/dashboard:0.1"), backport);
    assert_eq!(digest_at(&registry, "acme/dashboard:latest"), digest);
    assert_eq!(digest_at(&registry, "acme/dashboard:0"), digest);
    let kept: Vec<_> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["tag"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["0", "latest"], "{report:#}");

    // A pre-release pushes only its own tag.
    let report = release(&repo, &registry, &["pre", "--pre", "rc"]);
    assert_eq!(report["version"], "0.1.2-rc.1");
    assert_eq!(report["tags"], serde_json::json!(["0.1.2-rc.1"]));
    assert_eq!(digest_at(&registry, "acme/dashboard:latest"), digest);
    let list = registry
        .http_get("/v2/acme/dashboard/tags/list", &[])
        .unwrap();
    let mut tags: Vec<String> = parse_json(std::str::from_utf8(&list.body).unwrap())["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        // The referrers tags of the SBOMs (`sha256-<hex>`) are not release tags.
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["0", "0.1", "0.1.1", "0.1.2-rc.1", "0.2", "0.2.0", "latest"]
    );
    // --force-tags moves them anyway (here without git: the files just change).
    let report = release(&repo, &registry, &["0.1.3", "--no-git", "--force-tags"]);
    let forced = report["digest"].as_str().unwrap();
    assert_eq!(report["kept"], serde_json::json!([]), "{report:#}");
    assert_eq!(digest_at(&registry, "acme/dashboard:latest"), forced);
    assert_eq!(digest_at(&registry, "acme/dashboard:0"), forced);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        "Release v0.1.2-rc.1",
        "no commit"
    );
    assert_eq!(repo.read("VERSION"), "0.1.3\n");
}

#[test]
fn a_failed_push_is_resumed_not_bumped_again() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    // A registry that answers (the preflight passes) but refuses every upload.
    let proxy = FaultProxy::start(
        registry.host().parse().unwrap(),
        FaultPlan::new().always("POST", "/blobs/uploads/", Fault::envelope(403, "DENIED")),
    );
    let refusing = proxy.reference("acme/app");

    let err = fails_in(&repo, &["release", "patch", "--push-to", &refusing]);
    assert!(
        err.contains("hoist release --resume"),
        "the error says how to resume:\n{err}"
    );
    assert_eq!(repo.read("VERSION"), "0.1.1\n");
    assert_eq!(repo.git(&["describe", "--exact-match"]), "v0.1.1");

    // The same command again, now reaching the registry: resumes 0.1.1.
    let report = release(&repo, &registry, &["patch"]);
    assert_eq!(report["resumed"], true, "{report:#}");
    assert_eq!(report["version"], "0.1.1");
    assert_eq!(repo.read("VERSION"), "0.1.1\n");
    assert_eq!(
        repo.git(&["log", "--format=%s"]).lines().count(),
        2,
        "no second release commit"
    );
    let digest = report["digest"].as_str().unwrap();
    for tag in ["0.1.1", "0.1", "0", "latest"] {
        assert_eq!(
            digest_at(&registry, &format!("acme/app:{tag}")),
            digest,
            "tag {tag}"
        );
    }
    // Once complete, a new release bumps again.
    let report = release(&repo, &registry, &["patch"]);
    assert_eq!(report["resumed"], false);
    assert_eq!(report["version"], "0.1.2");
}

#[test]
fn build_of_a_versioned_project_is_labelled_and_reproducible() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let build = |out: &str| {
        let mut command = repo.hoist(&["build", "--cache-dir"]);
        command
            .arg(sandbox.cache())
            .args(["--output", &sandbox.oci(out)]);
        crate::common::last_line(&stdout(&success(&mut command))).to_string()
    };
    let first = build("one");
    assert_eq!(build("two"), first, "same commit, same digest");
    // `hoist verify` rebuilds it, labels included, from the same checkout.
    let mut verify = repo.hoist(&["verify", &sandbox.oci("one"), "--cache-dir"]);
    verify.arg(sandbox.cache());
    let out = stdout(&success(&mut verify));
    assert!(
        out.contains(&format!("verified {}", sandbox.oci("one"))),
        "{out}"
    );
    assert!(out.contains(&first), "{out}");
    // With SOURCE_DATE_EPOCH the label follows it, and verify replays it.
    let mut dated = repo.hoist(&["build", "--cache-dir"]);
    dated
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg(sandbox.cache())
        .args(["--output", &sandbox.oci("dated")]);
    success(&mut dated);
    let dated_layout = crate::common::Layout::open(sandbox.path("dated"));
    assert_eq!(
        dated_layout.platforms("latest")[0].config["config"]["Labels"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let mut verify = repo.hoist(&["verify", &sandbox.oci("dated"), "--cache-dir"]);
    verify.arg(sandbox.cache());
    success(&mut verify);
    let layout = crate::common::Layout::open(sandbox.path("one"));
    let platforms = layout.platforms("latest");
    let labels = &platforms[0].config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"], "0.1.0",
        "{labels:#}"
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2024-05-01T12:00:00Z"
    );
    assert!(
        labels.get("org.opencontainers.image.source").is_none(),
        "no remote, no source"
    );
    // A remote with credentials is recorded as https without them.
    repo.git(&[
        "remote",
        "add",
        "origin",
        "https://bot:s3cret@git.example/acme/dashboard.git",
    ]);
    build("three");
    let layout = crate::common::Layout::open(sandbox.path("three"));
    let labels = layout.platforms("latest")[0].config["config"]["Labels"].clone();
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://git.example/acme/dashboard"
    );
}

/// Issue 16: a `?token=…` in the git remote URL was kept in the source label and the
/// provenance. With user info, a query and a fragment in the remote, the label, the
/// annotations and the signed provenance name the plain https URL, and no byte of the
/// pushed image or its provenance holds a secret.
#[test]
fn a_token_in_the_remote_url_reaches_neither_labels_nor_provenance() {
    use base64::Engine as _;
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    repo.git(&[
        "remote",
        "add",
        "origin",
        "https://bot:s3cret@git.example/acme/dashboard.git?private_token=glpat-t0ken#fr4g",
    ]);
    let prefix = sandbox.path("cosign");
    let mut generate = repo.hoist(&["key", "generate", "--output-key-prefix"]);
    generate
        .arg(&prefix)
        .env("HOIST_KEY_PASSWORD", "pw")
        .env_remove("COSIGN_PASSWORD");
    success(&mut generate);
    let mut build = repo.hoist(&["build", "--json", "--sign-key"]);
    build
        .arg(prefix.with_extension("key"))
        .env("HOIST_KEY_PASSWORD", "pw")
        .args(["--push-to", &registry.reference("acme/dashboard:1.0")])
        .arg("--cache-dir")
        .arg(sandbox.cache());
    let report = parse_json(&stdout(&ok(&mut build, &registry)));
    let index = report["digest"].as_str().unwrap();
    let expected = "https://git.example/acme/dashboard";

    let mut documents = vec![registry.manifest("acme/dashboard", index)];
    for platform in report["platforms"].as_array().unwrap() {
        let manifest = registry.manifest("acme/dashboard", platform["digest"].as_str().unwrap());
        let manifest_json: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(
            manifest_json["annotations"]["org.opencontainers.image.source"],
            expected
        );
        let config = manifest_json["config"]["digest"].as_str().unwrap();
        let config = registry
            .http_get(&format!("/v2/acme/dashboard/blobs/{config}"), &[])
            .unwrap()
            .body;
        let config_json: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(
            config_json["config"]["Labels"]["org.opencontainers.image.source"],
            expected
        );
        documents.extend([manifest, config]);
    }

    // The provenance, found through the referrers tag schema, its DSSE payload decoded.
    let referrers: Value =
        serde_json::from_slice(&registry.manifest("acme/dashboard", &index.replace(':', "-")))
            .unwrap();
    let provenance = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.in-toto+json")
        .unwrap_or_else(|| panic!("no provenance among {referrers:#}"));
    let manifest: Value = serde_json::from_slice(
        &registry.manifest("acme/dashboard", provenance["digest"].as_str().unwrap()),
    )
    .unwrap();
    let envelope = registry
        .http_get(
            &format!(
                "/v2/acme/dashboard/blobs/{}",
                manifest["layers"][0]["digest"].as_str().unwrap()
            ),
            &[],
        )
        .unwrap()
        .body;
    let envelope: Value = serde_json::from_slice(&envelope).unwrap();
    let statement = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement_json: Value = serde_json::from_slice(&statement).unwrap();
    let definition = &statement_json["predicate"]["buildDefinition"];
    assert_eq!(
        definition["externalParameters"]["source"]["repository"], expected,
        "{statement_json:#}"
    );
    let revision = repo.git(&["rev-parse", "HEAD"]);
    assert!(
        definition["resolvedDependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["uri"] == format!("git+{expected}@{revision}")),
        "{statement_json:#}"
    );
    documents.push(statement);
    for document in &documents {
        let text = String::from_utf8_lossy(document);
        for secret in ["s3cret", "t0ken", "private_token", "fr4g", "bot:"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
}

/// Images pushed by other means carry their version as a config label only, or not
/// at all: the forward-only check reads the label, else the highest SemVer tag that
/// names the same digest.
#[test]
fn the_version_behind_a_tag_comes_from_its_label_or_its_semver_tags() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/unused"));
    let push_example = |repository: &str, args: &[&str]| {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(crate::common::example_config())
            .arg("--push-to")
            .arg(registry.reference(repository))
            .args(args);
        ok(&mut command, &registry);
    };
    // A label (in the config, no annotation) says 0.9.0.
    push_example(
        "acme/labelled",
        &[
            "--tag",
            "latest",
            "--label",
            "org.opencontainers.image.version=0.9.0",
        ],
    );
    // No label; the image is also tagged 0.7.0 (and 0.3.0 names something else).
    push_example("acme/tagged", &["--tag", "0.3.0", "--env", "X=1"]);
    push_example("acme/tagged", &["--tag", "latest", "--tag", "0.7.0"]);

    for (repository, holds) in [("acme/labelled", "0.9.0"), ("acme/tagged", "0.7.0")] {
        let before = digest_at(&registry, &format!("{repository}:latest"));
        let target = registry.reference(repository);
        let report = release(
            &repo,
            &registry,
            &["0.2.0", "--no-git", "--push-to", &target],
        );
        assert_eq!(
            report["kept"],
            serde_json::json!([{"tag": "latest", "version": holds}]),
            "{repository}: {report:#}"
        );
        assert_eq!(
            digest_at(&registry, &format!("{repository}:latest")),
            before
        );
        assert_eq!(
            digest_at(&registry, &format!("{repository}:0.2.0")),
            report["digest"].as_str().unwrap()
        );
    }
}

/// CI checks out a detached HEAD: a release there is refused as "not the default
/// branch" unless `--branch` says which branch it is.
#[test]
fn release_on_a_detached_head_takes_the_branch_from_the_flag() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let head = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "--quiet", "--detach", &head]);

    // hoist tags says why `latest` is missing, and how to get it.
    let output = success(&mut repo.hoist(&["tags"]));
    assert_eq!(stdout(&output), "0.1.0\n0.1\n0\n");
    let note = crate::common::stderr(&output);
    assert!(
        note.contains("`latest` was left out") && note.contains("--branch"),
        "{note}"
    );
    let refused = failure(&mut repo.hoist(&["release", "minor", "--dry-run"]));
    assert!(refused.contains("detached HEAD"), "{refused}");
    assert!(refused.contains("--allow-branch"), "{refused}");

    let plan = stdout(&success(&mut repo.hoist(&[
        "release",
        "minor",
        "--dry-run",
        "--branch",
        "main",
    ])));
    assert!(plan.contains("0.1.0 → 0.2.0"), "{plan}");
    assert!(
        plan.contains("latest"),
        "the default branch gets latest: {plan}"
    );
    // Nothing changed.
    assert_eq!(repo.read("VERSION"), "0.1.0\n");
}

/// The registry is checked before the release commit and git tag exist: a wrong port
/// or a missing login leaves the checkout as it was.
#[test]
fn an_unreachable_or_refusing_registry_stops_the_release_before_the_commit() {
    let sandbox = Sandbox::new();
    let registry = crate::login::htpasswd_registry(&sandbox);
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    let head = repo.git(&["rev-parse", "HEAD"]);
    let unchanged = |why: &str| {
        assert_eq!(repo.read("VERSION"), "0.1.0\n", "{why}");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), head, "{why}: no commit");
        assert_eq!(repo.git(&["tag"]), "", "{why}: no git tag");
        assert_eq!(
            repo.git(&["status", "--porcelain"]),
            "",
            "{why}: clean tree"
        );
    };
    let dead = format!("127.0.0.1:{}/acme/app", dead_port());
    let err = fails_in(&repo, &["release", "patch", "--push-to", &dead]);
    assert!(
        err.contains("nothing was committed, tagged or pushed") && err.contains(&dead),
        "{err}"
    );
    unchanged("wrong port");

    // No credentials for a registry that wants some: the login hint, nothing changed.
    let err = fails_in(&repo, &["release", "patch"]);
    assert!(err.contains("hoist login"), "{err}");
    unchanged("no login");
}

/// The tags, skipping the SBOMs' referrers tags.
fn release_tags(registry: &Registry, repo: &str) -> Vec<String> {
    let list = registry
        .http_get(&format!("/v2/{repo}/tags/list"), &[])
        .unwrap();
    let mut tags: Vec<String> = parse_json(std::str::from_utf8(&list.body).unwrap())["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    tags.sort();
    tags
}

/// A published version never changes: `release 0.1.0 --no-git` again from changed
/// sources fails before any upload and leaves every tag where it was; from the same
/// sources it changes nothing and exits 0.
#[test]
fn a_released_version_is_never_overwritten() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    let first = release(&repo, &registry, &["0.1.0", "--no-git"]);
    let digest = first["digest"].as_str().unwrap().to_string();
    let tags = release_tags(&registry, "acme/app");
    assert_eq!(tags, ["0", "0.1", "0.1.0", "latest"]);

    // The same sources: the same image, nothing uploaded, exit 0.
    let before = registry.requests().len();
    let again = release(&repo, &registry, &["0.1.0", "--no-git"]);
    assert_eq!(again["digest"], digest.as_str(), "{again:#}");
    let requests = registry.requests();
    assert!(
        !requests[before..]
            .iter()
            .any(|r| r.is_upload_traffic() || r.manifest_put().is_some()),
        "a re-release of the same image uploads and puts nothing: {:?}",
        &requests[before..]
    );

    // Changed sources: refused before any upload; every tag where it was.
    repo.write("backend/app.py", "print('changed')\n");
    let before = registry.requests().len();
    let err = fails_in(&repo, &["release", "0.1.0", "--no-git"]);
    assert!(
        err.contains("acme/app:0.1.0 names") && err.contains("never moves"),
        "{err}"
    );
    let requests = registry.requests();
    assert!(
        !requests[before..]
            .iter()
            .any(|r| r.is_upload_traffic() || r.manifest_put().is_some()),
        "refused before any upload: {:?}",
        &requests[before..]
    );
    for tag in ["0.1.0", "0.1", "0", "latest"] {
        assert_eq!(
            digest_at(&registry, &format!("acme/app:{tag}")),
            digest,
            "{tag}"
        );
    }
    assert_eq!(release_tags(&registry, "acme/app"), tags);

    // With git: a version the registry holds already is refused before the commit.
    fs::remove_file(repo.dir().join("backend/app.py")).ok();
    repo.git(&["checkout", "--", "."]);
    repo.write("VERSION", "0.0.9\n");
    repo.write(
        "frontend/package.json",
        &repo.read("frontend/package.json").replace("0.1.0", "0.0.9"),
    );
    repo.git(&["commit", "--quiet", "-am", "Back to 0.0.9"]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let err = fails_in(&repo, &["release", "0.1.0"]);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head, "no commit");
    assert_eq!(repo.git(&["tag"]), "", "no git tag");
    assert_eq!(repo.read("VERSION"), "0.0.9\n");
}

/// Two clones release the same version at once: exactly one wins, the other fails,
/// and every tag of the version names the winner's image.
#[test]
fn two_clones_releasing_one_version_at_once_one_wins() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let name = registry.reference("acme/app");
    let repo = example_repo(&sandbox, &name);
    let other = sandbox.path("other");
    copy_tree(&repo.dir(), &other);
    fs::write(other.join("backend/app.py"), "print('the other clone')\n").unwrap();
    let command = |dir: &std::path::Path| {
        let mut command = sandbox.hoist();
        git_env(&mut command)
            .current_dir(dir)
            .args(["release", "0.1.0", "--no-git", "--json", "--cache-dir"])
            .arg(sandbox.cache());
        command
    };
    let (mut a, mut b) = (command(&repo.dir()), command(&other));
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(move || crate::registry::run(&mut a, HOIST_LIMIT));
        let b = scope.spawn(move || crate::registry::run(&mut b, HOIST_LIMIT));
        (a.join().unwrap(), b.join().unwrap())
    });
    let won: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|o| o.status.success())
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one release wins:\n{}\n---\n{}",
        crate::common::stderr(&a),
        crate::common::stderr(&b)
    );
    let lost = if a.status.success() { &b } else { &a };
    assert!(
        crate::common::stderr(lost).contains("never moves"),
        "{}",
        crate::common::stderr(lost)
    );
    let winner = parse_json(&stdout(won[0]));
    let digest = winner["digest"].as_str().unwrap();
    for tag in ["0.1.0", "0.1", "0", "latest"] {
        assert_eq!(
            digest_at(&registry, &format!("acme/app:{tag}")),
            digest,
            "{tag}"
        );
    }
}

/// `hoist build --push` keeps the release's tag rules: from an older checkout (0.1.1
/// after 0.2.0 was released) and from a pre-release (0.3.0-beta.1), `latest` and
/// `{major}` stay on 0.2.0; a tag naming a version is put once and never moved.
#[test]
fn build_push_moves_rolling_tags_only_forward() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let name = registry.reference("acme/app");
    let repo = example_repo(&sandbox, &name);
    let released = release(&repo, &registry, &["minor"]);
    let digest = released["digest"].as_str().unwrap().to_string();
    let build_push = |tags: &[&str]| {
        let mut command = repo.hoist(&["build", "--push", "--json", "--cache-dir"]);
        command.arg(sandbox.cache());
        for tag in tags {
            command.args(["--tag", tag]);
        }
        let output = ok(&mut command, &registry);
        (parse_json(&stdout(&output)), crate::common::stderr(&output))
    };

    for version in ["0.1.1", "0.3.0-beta.1"] {
        success(&mut repo.hoist(&["version", "set", version]));
        let (report, err) = build_push(&[version, "latest", "0"]);
        let built = report["digest"].as_str().unwrap();
        assert_ne!(built, digest);
        assert_eq!(
            report["tags"],
            serde_json::json!([version]),
            "{report:#}\n{err}"
        );
        assert_eq!(digest_at(&registry, &format!("acme/app:{version}")), built);
        for tag in ["latest", "0"] {
            assert_eq!(
                digest_at(&registry, &format!("acme/app:{tag}")),
                digest,
                "{version}: {tag} stays on 0.2.0\n{err}"
            );
            assert!(err.contains(&format!("kept tag {name}:{tag}")), "{err}");
        }
    }
    // The version's tag, pushed again from other sources, stays where it is.
    repo.write("backend/extra.txt", "x\n");
    let err = fails_in(&repo, &["build", "--push", "--tag", "0.3.0-beta.1"]);
    assert!(err.contains("never moves"), "{err}");
}

/// `hoist tag` and `hoist push` keep the same rules: a rolling tag never moves to a
/// lower version (unless forced, said loudly), a version's tag never to another
/// image; an image without a version moves a rolling tag and says so.
#[test]
fn tag_and_push_keep_the_release_tag_rules() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let name = registry.reference("acme/app");
    let repo = example_repo(&sandbox, &name);
    let newer = release(&repo, &registry, &["minor"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let older = release(&repo, &registry, &["0.1.1"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = |args: &[&str]| {
        let mut command = repo.hoist(&["tag"]);
        command.args(args);
        command
    };

    let err = fails(&mut tag(&[&format!("{name}:0.1.1"), "latest"]), HOIST_LIMIT);
    assert!(err.contains("only move forward"), "{err}");
    assert_eq!(digest_at(&registry, "acme/app:latest"), newer);
    let err = fails(&mut tag(&[&format!("{name}:0.1.1"), "0.2.0"]), HOIST_LIMIT);
    assert!(err.contains("never moves"), "{err}");
    assert_eq!(digest_at(&registry, "acme/app:0.2.0"), newer);
    // Forward is fine; a rollback is deliberate.
    success(&mut tag(&[&format!("{name}:0.2.0"), "stable"]));
    let output = ok(
        &mut tag(&[&format!("{name}:0.1.1"), "latest", "--force-tags"]),
        &registry,
    );
    assert!(
        crate::common::stderr(&output).contains("WARNING: --force-tags"),
        "{}",
        crate::common::stderr(&output)
    );
    assert_eq!(digest_at(&registry, "acme/app:latest"), older);

    // `hoist push` of an image with no version: the rolling tag moves, and it says so;
    // a version's tag it would move is refused before any upload.
    let base = format!("oci:{}:1.0", base_layout().display());
    let output = ok(
        &mut repo.hoist(&["push", &base, &format!("{name}:latest")]),
        &registry,
    );
    let err = crate::common::stderr(&output);
    assert!(err.contains("has no version"), "{err}");
    let before = registry.requests().len();
    let err = fails(
        &mut repo.hoist(&["push", &base, &format!("{name}:0.2.0")]),
        HOIST_LIMIT,
    );
    assert!(err.contains("never moves"), "{err}");
    assert!(
        !registry.requests()[before..]
            .iter()
            .any(|r| r.is_upload_traffic() || r.manifest_put().is_some()),
        "refused before any upload"
    );
    assert_eq!(digest_at(&registry, "acme/app:0.2.0"), newer);
}
