//! `hoist verify` in a checkout whose HEAD is not the revision the image records
//! (`org.opencontainers.image.revision`): the recorded revision is rebuilt in a
//! temporary `git worktree`, removed afterwards; `--revision HEAD` rebuilds the
//! working tree as it is.

use std::fs;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::common::{
    Sandbox, base_layout, copy_tree, example_dir, last_line, stderr, stdout, success,
};

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let mut command = Command::new("git");
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Verify Test")
        .env("GIT_AUTHOR_EMAIL", "verify@example.invalid")
        .env("GIT_COMMITTER_NAME", "Verify Test")
        .env("GIT_COMMITTER_EMAIL", "verify@example.invalid")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .current_dir(dir)
        .args(args);
    stdout(&success(&mut command)).trim().to_string()
}

pub(crate) fn verify(sandbox: &Sandbox, repo: &Path, image: &str, extra: &[&str]) -> Output {
    let mut command = sandbox.hoist();
    command
        .arg("verify")
        .arg(image)
        .arg("--config")
        .arg(repo.join("hoist.toml"))
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .args(extra);
    command.output().unwrap()
}

#[test]
fn verify_rebuilds_the_recorded_revision_in_a_worktree() {
    let sandbox = Sandbox::new();
    let repo = sandbox.path("repo");
    for part in ["frontend", "backend"] {
        copy_tree(&example_dir().join(part), &repo.join(part));
    }
    fs::write(
        repo.join("hoist.toml"),
        format!(
            r#"[image]
name = "registry.example/acme/dashboard"
base = "oci:{base}:1.0"
platforms = ["linux/amd64"]

[[layer]]
from = "backend"
to = "/app"
modes = "normalize"

[version]
source = "frontend/package.json"
"#,
            base = base_layout().display()
        ),
    )
    .unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["add", "--all"]);
    git(&repo, &["commit", "--quiet", "-m", "one"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(repo.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out:1.0"));
    let digest = last_line(&stdout(&success(&mut command))).to_string();
    let image = sandbox.oci("out:1.0");

    // A later commit changes the backend: HEAD is not what the image was built from.
    fs::write(repo.join("backend/main.py"), "print('two')\n").unwrap();
    git(&repo, &["commit", "--quiet", "-am", "two"]);

    let output = verify(&sandbox, &repo, &image, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(&format!("rebuilding revision {first}")),
        "{}",
        stderr(&output)
    );
    assert!(
        last_line(&stdout(&output)).ends_with(&digest),
        "{}",
        stdout(&output)
    );
    let worktrees = git(&repo, &["worktree", "list", "--porcelain"]);
    assert_eq!(
        worktrees
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count(),
        1,
        "the temporary worktree is removed:\n{worktrees}"
    );

    // The working tree as it is: another revision, another backend.
    let output = verify(&sandbox, &repo, &image, &["--revision", "HEAD"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("NOT verified"),
        "{}",
        stdout(&output)
    );

    // A revision the repository does not have: exit 2, saying how to get it.
    let output = verify(
        &sandbox,
        &repo,
        &image,
        &["--revision", "0123456789abcdef0123456789abcdef01234567"],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("git fetch it"),
        "{}",
        stderr(&output)
    );
}
