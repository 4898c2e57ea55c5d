//! `hoist verify --key` checks an image's provenance against what its own rebuild read
//! (the config's and each lock's sha256), against the real `docker-registry` and a real
//! git repository: for a workspace member, whose own hoist.toml is the config named,
//! and for a `--revision` rebuild, which reads the config in a temporary worktree.

use std::fs;
use std::process::Output;

use crate::common::{Sandbox, digest_of, success};
use crate::python_base::printed;
use crate::registry::{HOIST_LIMIT, Registry, ok, run};
use crate::release::Repo;
use crate::workspace::workspace_repo;

const PASSWORD: &str = "correct horse battery staple";

/// The workspace of `workspace_repo` in `registry`, released as 0.2.0 signed with
/// `release.key` (its provenance attached to every member's image).
fn signed_release<'a>(sandbox: &'a Sandbox, registry: &Registry) -> Repo<'a> {
    let mut generate = sandbox.hoist();
    generate
        .args(["key", "generate", "--output-key-prefix", "release"])
        .env("HOIST_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    success(&mut generate);
    let repo = workspace_repo(sandbox, &[registry.host()]);
    let mut release = repo.hoist(&["release", "minor", "--sign-key"]);
    release
        .arg(sandbox.path("release.key"))
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .env("HOIST_KEY_PASSWORD", PASSWORD);
    ok(&mut release, registry);
    repo
}

/// `hoist verify --key release.pub` at the workspace's root, plus `extra`.
fn verify(repo: &Repo, extra: &[&str]) -> Output {
    let mut command = repo.hoist(&["verify", "--key"]);
    command
        .arg(repo.sandbox.path("release.pub"))
        .arg("--cache-dir")
        .arg(repo.sandbox.cache())
        .args(extra);
    run(&mut command, HOIST_LIMIT)
}

/// Asserts that `output` says every image verified, its provenance too (`images` of
/// them).
fn all_verified(output: &Output, images: usize) {
    let printed = printed(output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert_eq!(
        printed.matches("provenance verified: ").count(),
        images,
        "{printed}"
    );
    assert!(!printed.contains("NOT verified"), "{printed}");
}

/// Asserts that `output` is a refusal (exit 1) of a provenance naming `member`'s
/// config with the `named` bytes where the rebuild `read` others; what it printed.
fn config_refused(output: &Output, member: &str, (named, read): (&str, &str)) -> String {
    let printed = printed(output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    let reason = format!(
        "config ./{member}: it names {}, the rebuild read {}",
        digest_of(named.as_bytes()),
        digest_of(read.as_bytes())
    );
    assert!(
        printed.contains("NOT verified: provenance of ") && printed.contains(&reason),
        "no `{reason}` in:\n{printed}"
    );
    printed
}

/// A member's own hoist.toml changed after the release (a comment: the same image):
/// verify at the root names that member's config (as the workspace finds it from the
/// working directory) and both digests and exits 1, while
/// the other members verify; the file put back, every member verifies.
#[test]
fn verify_names_the_workspace_member_config_that_differs_from_the_provenance() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = signed_release(&sandbox, &registry);
    all_verified(&verify(&repo, &[]), 3);

    let member = "services/web/hoist.toml";
    let original = repo.read(member);
    let edited = format!("{original}# a comment: the same image\n");
    repo.write(member, &edited);
    let printed = config_refused(&verify(&repo, &[]), member, (&original, &edited));
    let host = registry.host();
    assert!(
        printed.contains(&format!(
            "NOT verified: provenance of {host}/acme/web@sha256:"
        )),
        "{printed}"
    );
    assert_eq!(printed.matches("NOT verified").count(), 1, "{printed}");
    // api and worker: their provenance is checked and verifies.
    assert_eq!(
        printed.matches("provenance verified: ").count(),
        2,
        "{printed}"
    );

    repo.write(member, &original);
    all_verified(&verify(&repo, &["-p", "web"]), 1);
}

/// `verify --revision R` rebuilds R in a temporary worktree and checks the provenance
/// against the config read there: the released commit verifies after the work tree
/// moved on (the member changed, uncommitted and then in a later commit); an image
/// whose provenance names other config bytes (built at R from an uncommitted edit)
/// fails naming the config and both digests.
#[test]
fn verify_revision_checks_the_provenance_against_the_config_of_that_revision() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = signed_release(&sandbox, &registry);
    let released = repo.git(&["rev-parse", "HEAD"]);
    let host = registry.host();

    // The same image, signed, from the released commit with its member config edited
    // (not committed): its provenance names the edited bytes.
    let member = "services/web/hoist.toml";
    let original = repo.read(member);
    let edited = format!("{original}# edited, not committed\n");
    repo.write(member, &edited);
    let dirty = format!("{host}/acme/web-dirty:0.2.0");
    let mut build = repo.hoist(&["build", "-p", "web", "--push-to", &dirty, "--sign-key"]);
    build
        .arg(sandbox.path("release.key"))
        .arg("--cache-dir")
        .arg(sandbox.cache())
        .env("HOIST_KEY_PASSWORD", PASSWORD);
    ok(&mut build, &registry);
    repo.write(member, &original);

    // The work tree moves on (the member's code and config), first uncommitted, then
    // committed: either way the released commit is what is rebuilt.
    repo.write("services/web/app/main.py", "print('web, two')\n");
    repo.write(member, &format!("{original}# moved on\n"));
    let released_image = format!("{host}/acme/web:0.2.0");
    for committed in [false, true] {
        if committed {
            repo.git(&["commit", "--quiet", "-am", "Web moves on"]);
            assert_ne!(repo.git(&["rev-parse", "HEAD"]), released);
        }
        let output = verify(
            &repo,
            &[&released_image, "-p", "web", "--revision", &released],
        );
        all_verified(&output, 1);
        let said_all = printed(&output);
        for said in [
            format!("rebuilding revision {released}"),
            format!("from revision {released})"),
        ] {
            assert!(said_all.contains(&said), "no `{said}` in:\n{said_all}");
        }
        let why = if committed {
            format!("revision {released} (HEAD is ")
        } else {
            format!(
                "revision {released} (HEAD, whose working tree changes services/web/app/main.py and 1 other file)"
            )
        };
        assert!(said_all.contains(&why), "no `{why}` in:\n{said_all}");
        // The worktree is gone.
        let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
        assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");

        let output = verify(&repo, &[&dirty, "-p", "web", "--revision", &released]);
        config_refused(&output, member, (&edited, &original));
        let untouched = fs::read_to_string(repo.dir().join(member)).unwrap();
        assert!(untouched.ends_with("# moved on\n"), "{untouched}");
    }
}
