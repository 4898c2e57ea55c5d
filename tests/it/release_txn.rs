//! Releases as transactions (`src/release/journal.rs`, `transaction.rs`): a release
//! stopped at any step is finished by the same command, exactly once; a refused commit
//! changes nothing; the release commit's message and tag follow `[release]`.
//!
//! The stops are deterministic: `HOIST_TEST_KILL_AT=<point>` makes hoist abort
//! (SIGABRT: no destructor, no clean-up, as SIGKILL) right after that step's side
//! effect and before the journal records it, the harshest moment (docs/testing.md).

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{Sandbox, failure, parse_json, stderr, stdout, success};
use crate::registry::{HOIST_LIMIT, Registry, ok};
use crate::release::{Repo, digest_at, example_repo};

/// Every kill point of a release, in the order a release passes them.
const KILL_POINTS: &[&str] = &[
    "journal-begun",
    "temps-written",
    "renamed-1",
    "files-written",
    "staged",
    "committed",
    "tagged",
    "pushed",
    "signed",
    "pinned-tags-moved",
    "tags-moved",
];

/// `hoist release ARGS --json` (one platform, the sandbox's cache), with `env` set.
fn release_command(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> assert_cmd::Command {
    let mut command = repo.hoist(&["release", "--platform", "linux/amd64", "--cache-dir"]);
    command.arg(repo.sandbox.cache()).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn released(repo: &Repo, registry: &Registry, args: &[&str]) -> Value {
    let mut command = release_command(repo, args, &[]);
    command.arg("--json");
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// Runs the release stopped at `point`; returns its stderr.
fn killed_at(repo: &Repo, args: &[&str], point: &str) -> String {
    let mut command = release_command(repo, args, &[("HOIST_TEST_KILL_AT", point)]);
    // (Not registry::run: that one refuses a death by signal, which this is.)
    let output = command.timeout(HOIST_LIMIT).output().unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{point}: not stopped:\n{err}");
    assert!(
        err.contains(&format!("HOIST_TEST_KILL_AT={point}: aborting here")),
        "{point}: the kill point was not reached:\n{err}"
    );
    err
}

/// Files under `dir` (the `.git` directory included) whose name marks a temporary file.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".hoist-tmp")
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn journal(repo: &Repo) -> std::path::PathBuf {
    repo.dir().join(".git/hoist/release.json")
}

/// The state every finished release leaves: one release commit, its tag on HEAD,
/// both files at the version, a clean tree, no journal, no temporary file.
fn assert_released_once(repo: &Repo, version: &str, context: &str) {
    assert_eq!(
        repo.git(&["log", "--format=%s"]),
        format!("Release v{version}\nDashboard"),
        "{context}: one release commit"
    );
    assert_eq!(repo.git(&["tag"]), format!("v{version}"), "{context}");
    assert_eq!(
        repo.git(&["rev-parse", &format!("v{version}^{{commit}}")]),
        repo.git(&["rev-parse", "HEAD"]),
        "{context}: the tag is on the release commit"
    );
    assert_eq!(repo.read("VERSION"), format!("{version}\n"), "{context}");
    assert!(
        repo.read("frontend/package.json")
            .contains(&format!("\"version\": \"{version}\"")),
        "{context}"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "{context}: clean");
    assert_eq!(temp_files(&repo.dir()), Vec::<String>::new(), "{context}");
    assert!(!journal(repo).exists(), "{context}: the journal is gone");
}

/// Issue 17: `hoist release patch` killed after writing the version files, after
/// `git add`, after the commit or before the tag was run again and bumped again
/// (0.1.1 never released, an untagged "Release v0.1.2" left); killed between two
/// renames it left the files disagreeing and a temporary file behind.
#[test]
fn a_release_killed_at_any_step_is_finished_once_by_the_same_command() {
    let registry = Registry::start();
    for (i, point) in KILL_POINTS.iter().enumerate() {
        let sandbox = Sandbox::new();
        let repository = format!("acme/killed-{i}");
        let repo = example_repo(&sandbox, &registry.reference(&repository));
        killed_at(&repo, &["patch"], point);
        assert!(
            journal(&repo).exists(),
            "{point}: the journal says where it stopped"
        );
        if *point == "renamed-1" {
            // Stopped between the two renames: one file new, the other old, a
            // temporary file beside it: the state the journal must repair.
            assert!(repo.read("frontend/package.json").contains("\"0.1.1\""));
            assert_eq!(repo.read("VERSION"), "0.1.0\n");
            assert_eq!(temp_files(&repo.dir()).len(), 1, "{point}");
        }
        let report = released(&repo, &registry, &["patch"]);
        assert_eq!(report["version"], "0.1.1", "{point}: {report:#}");
        assert_eq!(report["previous"], "0.1.0", "{point}: {report:#}");
        assert_released_once(&repo, "0.1.1", point);
        assert_eq!(
            digest_at(&registry, &format!("{repository}:0.1.1")),
            report["digest"].as_str().unwrap(),
            "{point}: the registry has the killed version"
        );
        // Killed between the pinned and the rolling tags (or later): the rolling
        // ones are moved by the same command too.
        assert_eq!(
            digest_at(&registry, &format!("{repository}:latest")),
            report["digest"].as_str().unwrap(),
            "{point}: latest names the killed version"
        );
        // Complete: the next release is a new version.
        let mut dry = release_command(&repo, &["patch", "--dry-run"], &[]);
        let plan = stdout(&success(&mut dry));
        assert!(plan.contains("version: 0.1.1 → 0.1.2"), "{point}: {plan}");
    }
}

/// A release stopped after its commit: another version is refused (with the way to
/// finish), `--resume` refuses a dirty tree naming the file, then finishes it.
#[test]
fn an_interrupted_release_is_finished_not_replaced() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    killed_at(&repo, &["patch"], "committed");

    let mut other = release_command(&repo, &["minor"], &[]);
    let err = failure(&mut other);
    assert!(
        err.contains("v0.1.1") && err.contains("v0.2.0") && err.contains("--resume"),
        "{err}"
    );
    // The dry run shows what finishing does: the tag, no second commit.
    let mut dry = release_command(&repo, &["--resume", "--dry-run"], &[]);
    let plan = stdout(&success(&mut dry));
    assert!(plan.contains("git: annotated tag v0.1.1"), "{plan}");

    repo.write("backend/scratch.txt", "x");
    let mut resume = release_command(&repo, &["--resume"], &[]);
    let err = failure(&mut resume);
    assert!(
        err.contains("backend/scratch.txt") && err.contains("clean"),
        "{err}"
    );
    fs::remove_file(repo.dir().join("backend/scratch.txt")).unwrap();

    let report = released(&repo, &registry, &["--resume"]);
    assert_eq!(report["version"], "0.1.1", "{report:#}");
    assert_released_once(&repo, "0.1.1", "--resume");
}

/// Issue 17: a failing tag step said "run the same command", which released the next
/// version. Now it says how to finish, and the same command finishes the same version.
#[test]
fn a_failed_tag_says_how_to_finish_and_the_same_command_does() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    // git runs the reference-transaction hook on every ref update; refusing tags
    // while the marker exists makes exactly the tag step fail.
    let hook = repo.dir().join(".git/hooks/reference-transaction");
    fs::write(
        &hook,
        "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\n[ -e .git/no-tags ] || exit 0\nif grep -q ' refs/tags/'; then echo 'tags are frozen here' >&2; exit 1; fi\n",
    )
    .unwrap();
    make_executable(&hook);
    fs::write(repo.dir().join(".git/no-tags"), "").unwrap();

    let mut command = release_command(&repo, &["patch"], &[]);
    let err = failure(&mut command);
    assert!(
        err.contains("v0.1.1 is committed")
            && err.contains("v0.1.1")
            && err.contains("hoist release --resume")
            && err.contains("tags are frozen here"),
        "{err}"
    );
    assert_eq!(repo.git(&["tag"]), "");
    fs::remove_file(repo.dir().join(".git/no-tags")).unwrap();

    let report = released(&repo, &registry, &["patch"]);
    assert_eq!(report["version"], "0.1.1", "{report:#}");
    assert_released_once(&repo, "0.1.1", "after the tag failure");
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 17: with a commit-msg hook (commitlint) refusing `Release vX`, release exited
/// 1 leaving every version file bumped and staged, and the message could not be set.
#[test]
fn a_refused_commit_changes_nothing_and_the_message_is_configurable() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    let hook = repo.dir().join(".git/hooks/commit-msg");
    fs::write(
        &hook,
        "#!/bin/sh\nhead -n1 \"$1\" | grep -qE '^(chore|feat|fix)(\\(.+\\))?: ' && exit 0\necho 'commitlint: subject must look like \"type(scope): subject\"' >&2\nexit 1\n",
    )
    .unwrap();
    make_executable(&hook);
    let package = repo.read("frontend/package.json");

    let mut command = release_command(&repo, &["patch"], &[]);
    let err = failure(&mut command);
    assert!(
        err.contains("commitlint: subject must look like")
            && err.contains("back at 0.1.0 and unstaged"),
        "{err}"
    );
    assert_eq!(repo.read("VERSION"), "0.1.0\n");
    assert_eq!(repo.read("frontend/package.json"), package);
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "unstaged and restored"
    );
    assert_eq!(repo.git(&["tag"]), "");
    assert_eq!(repo.git(&["log", "--format=%s"]), "Dashboard");
    assert!(!journal(&repo).exists());
    assert_eq!(temp_files(&repo.dir()), Vec::<String>::new());

    // With the message the hook wants (and a tag format of the project's own).
    let config = repo.read("hoist.toml");
    repo.write(
        "hoist.toml",
        &format!(
            "{config}\n[release]\ncommit_message = \"chore(release): v{{version}}\"\ntag = \"release-{{version}}\"\n"
        ),
    );
    repo.git(&[
        "commit",
        "--quiet",
        "--no-verify",
        "-am",
        "Release settings",
    ]);
    let mut dry = release_command(&repo, &["patch", "--dry-run"], &[]);
    let plan = stdout(&success(&mut dry));
    assert!(
        plan.contains("git: commit \"chore(release): v0.1.1\", annotated tag release-0.1.1"),
        "{plan}"
    );
    let report = released(&repo, &registry, &["patch"]);
    assert_eq!(report["version"], "0.1.1", "{report:#}");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        "chore(release): v0.1.1"
    );
    assert_eq!(repo.git(&["describe", "--exact-match"]), "release-0.1.1");
    // `hoist version bump --commit` makes the same release commit.
    success(&mut repo.hoist(&["version", "bump", "patch", "--commit", "--git-tag"]));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        "chore(release): v0.1.2"
    );
    assert_eq!(repo.git(&["describe", "--exact-match"]), "release-0.1.2");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    // The resume check reads HEAD by the same templates: HEAD is v0.1.2's release
    // commit, which the registry lacks, so the same command finishes it.
    let report = released(&repo, &registry, &["patch"]);
    assert_eq!(report["version"], "0.1.2", "{report:#}");
    assert_eq!(report["resumed"], true, "{report:#}");
}

/// Issue 17: `--build-only` committed and tagged although it only builds; `--dry-run`'s
/// `sha-…` tag named the commit before the release commit.
#[test]
fn build_only_changes_nothing_and_dry_run_names_the_release_commit() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let config = repo.read("hoist.toml");
    repo.write(
        "hoist.toml",
        &format!("{config}\n[tags]\nrules = [\"{{version}}\", \"sha-{{sha7}}\", \"latest\"]\n"),
    );
    repo.git(&["commit", "--quiet", "-am", "Tag rules"]);
    let head = repo.git(&["rev-parse", "HEAD"]);

    let mut dry = release_command(&repo, &["minor", "--dry-run"], &[]);
    let plan = stdout(&success(&mut dry));
    assert!(
        plan.contains("tags: 0.2.0, sha-<release-commit-sha7>, latest"),
        "{plan}"
    );
    assert!(
        !plan.contains(&head[..7]),
        "HEAD is not the release commit: {plan}"
    );

    let mut build = release_command(&repo, &["minor", "--build-only"], &[]);
    let output = success(&mut build);
    assert!(
        stderr(&output).contains("no version file, commit or tag is changed"),
        "{}",
        stderr(&output)
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["tag"]), "");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(repo.read("VERSION"), "0.1.0\n");
    assert!(!journal(&repo).exists());
}

/// Issue 17: one file listed twice in `[version].sync` (by its kind and with a
/// pattern) was written twice from its original text: one edit lost, exit 0.
#[test]
fn a_file_synced_twice_gets_both_edits() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    fs::create_dir_all(repo.dir().join("app")).unwrap();
    repo.write(
        "app/version.py",
        "__version__ = \"0.1.0\"\nIMAGE = \"acme/app:0.1.0\"\n",
    );
    let config = repo.read("hoist.toml").replace(
        "sync = [\"VERSION\"]",
        "sync = [\"VERSION\", \"app/version.py\", { path = \"app/version.py\", pattern = 'IMAGE = \"acme/app:(?P<version>[^\"]+)\"' }]",
    );
    repo.write("hoist.toml", &config);
    repo.git(&["add", "--all"]);
    repo.git(&["commit", "--quiet", "-m", "Synced twice"]);
    let diff = stdout(&success(&mut repo.hoist(&[
        "version",
        "bump",
        "minor",
        "--dry-run",
    ])));
    assert_eq!(
        diff.matches("+++ ").count(),
        3,
        "one diff per file:\n{diff}"
    );
    success(&mut repo.hoist(&["version", "bump", "minor", "--commit"]));
    assert_eq!(
        repo.read("app/version.py"),
        "__version__ = \"0.2.0\"\nIMAGE = \"acme/app:0.2.0\"\n"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    success(&mut repo.hoist(&["version", "check"]));
}

/// `--no-git` has no commit to recognise, but in a checkout the journal still holds the
/// version: stopped after its files, the same command finishes it (not 0.1.2), and
/// the release cannot be finished in the other mode by mistake.
#[test]
fn a_no_git_release_is_finished_by_the_same_command_too() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = example_repo(&sandbox, &registry.reference("acme/app"));
    killed_at(&repo, &["patch", "--no-git"], "files-written");
    assert_eq!(repo.read("VERSION"), "0.1.1\n");

    let mut with_git = release_command(&repo, &["patch"], &[]);
    let err = failure(&mut with_git);
    assert!(err.contains("with --no-git"), "{err}");

    let report = released(&repo, &registry, &["patch", "--no-git"]);
    assert_eq!(report["version"], "0.1.1", "{report:#}");
    assert_eq!(report["previous"], "0.1.0", "{report:#}");
    assert_eq!(repo.read("VERSION"), "0.1.1\n");
    assert_eq!(repo.git(&["log", "--format=%s"]), "Dashboard", "no commit");
    assert_eq!(repo.git(&["tag"]), "");
    assert!(!journal(&repo).exists());
    assert_eq!(temp_files(&repo.dir()), Vec::<String>::new());
}

/// `hoist version bump` is a transaction too: stopped between two renames, the same
/// command completes that version (not the next); with `--commit --git-tag`, stopped
/// after the commit, the same command tags it and commits nothing twice.
#[test]
fn an_interrupted_version_bump_is_finished_by_the_same_command() {
    let sandbox = Sandbox::new();
    let repo = example_repo(&sandbox, "registry.example/acme/dashboard");
    let bump = |args: &[&str], kill: Option<&str>| {
        let mut command = repo.hoist(&["version", "bump"]);
        command.args(args);
        if let Some(point) = kill {
            command.env("HOIST_TEST_KILL_AT", point);
            let output = command.timeout(HOIST_LIMIT).output().unwrap();
            assert!(!output.status.success(), "{point}: not stopped");
            return String::new();
        }
        stdout(&success(&mut command)).trim().to_string()
    };
    bump(&["patch"], Some("renamed-1"));
    assert_eq!(
        repo.read("VERSION"),
        "0.1.0\n",
        "stopped between the renames"
    );
    assert_eq!(bump(&["patch"], None), "0.1.1");
    assert_eq!(repo.read("VERSION"), "0.1.1\n");
    assert!(repo.read("frontend/package.json").contains("\"0.1.1\""));
    assert!(!journal(&repo).exists());
    assert_eq!(temp_files(&repo.dir()), Vec::<String>::new());
    // The next bump is a new version.
    assert_eq!(bump(&["patch"], None), "0.1.2");

    repo.git(&["commit", "--quiet", "-am", "0.1.2"]);
    bump(&["minor", "--commit", "--git-tag"], Some("committed"));
    let err = failure(&mut repo.hoist(&["version", "bump", "major", "--commit"]));
    assert!(err.contains("v0.2.0") && err.contains("v1.0.0"), "{err}");
    assert_eq!(bump(&["minor", "--commit", "--git-tag"], None), "0.2.0");
    assert_eq!(
        repo.git(&["log", "--format=%s"]),
        "Release v0.2.0\n0.1.2\nDashboard"
    );
    assert_eq!(repo.git(&["describe", "--exact-match"]), "v0.2.0");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(!journal(&repo).exists());
}
