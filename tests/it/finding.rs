//! Finding one's way: hoist.toml found from a subdirectory, a bare path as a base
//! suggests `oci:`, a name that does not resolve fails fast naming the host.

use std::fs;

use crate::common::{Sandbox, stderr, stdout, success};

const PROJECT: &str = "[image]\nbase = \"scratch\"\n\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n";

#[test]
fn hoist_toml_is_found_from_a_subdirectory_up_to_the_checkout_top() {
    let sandbox = Sandbox::new();
    sandbox.write("repo/hoist.toml", PROJECT);
    sandbox.write("repo/app/main.py", "print('hi')\n");
    fs::create_dir_all(sandbox.path("repo/.git")).unwrap();
    fs::create_dir_all(sandbox.path("repo/app/deep")).unwrap();
    let mut command = sandbox.build();
    command
        .current_dir(sandbox.path("repo/app/deep"))
        .arg("--output")
        .arg(sandbox.oci("out"));
    let built = stdout(&success(&mut command));
    assert!(built.trim().starts_with("sha256:"), "{built}");
    assert!(sandbox.path("out/index.json").is_file());

    // A checkout inside the first one, without its own hoist.toml: the search stops
    // at its top instead of taking the outer project's.
    sandbox.write("repo/vendor/other/README", "x\n");
    fs::create_dir_all(sandbox.path("repo/vendor/other/.git")).unwrap();
    let mut command = sandbox.build();
    command.current_dir(sandbox.path("repo/vendor/other"));
    let err = stderr(&command.assert().code(1).get_output().clone());
    assert!(
        err.contains("hoist.toml") && err.contains("not found") && err.contains("--config"),
        "{err}"
    );

    // A config named explicitly is not searched for; its error names --config too.
    let mut command = sandbox.build();
    command
        .current_dir(sandbox.path("repo/app"))
        .args(["--config", "missing.toml"]);
    let err = stderr(&command.assert().code(1).get_output().clone());
    assert!(
        err.contains("missing.toml") && err.contains("--config"),
        "{err}"
    );
}

#[test]
fn a_base_written_as_a_path_suggests_oci() {
    let sandbox = Sandbox::new();
    sandbox.write("hoist.toml", "[image]\nbase = \"/path/layout:1.35\"\n");
    let mut command = sandbox.build();
    let err = stderr(&command.assert().code(1).get_output().clone());
    assert!(
        err.contains("image.base") && err.contains("`oci:/path/layout:1.35`"),
        "{err}"
    );
    assert!(!err.contains("must be lowercase"), "{err}");
}

/// A registry whose name does not resolve (`.invalid` never does, RFC 6761: no
/// network needed) fails at once naming the host, not after 6.5 s of retries: the
/// message says it was not retried.
#[test]
fn a_host_that_does_not_resolve_fails_at_once_naming_it() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "hoist.toml",
        "[image]\nbase = \"registry.invalid/acme/base:1.0\"\n",
    );
    for args in [
        vec!["inspect", "registry.invalid/acme/app:1.0"],
        vec!["build"],
    ] {
        let mut command = sandbox.hoist();
        command.args(&args).arg("--cache-dir").arg(sandbox.cache());
        let err = stderr(&command.assert().code(1).get_output().clone());
        assert!(
            err.contains("cannot resolve the host name registry.invalid")
                && err.contains("not retried"),
            "{args:?}: {err}"
        );
    }
}

/// `hoist verify` of an image built from an input git ignores (`frontend/dist`, built
/// on the host): the recorded revision's checkout lacks it, and the error names it,
/// says it is not in git and what to do; `--revision HEAD` then verifies.
#[test]
fn verify_names_a_build_input_that_is_not_in_git() {
    use crate::verify_revision::{git, verify};
    let sandbox = Sandbox::new();
    let repo = sandbox.path("repo");
    sandbox.write(
        "repo/hoist.toml",
        "[image]\nname = \"registry.example/acme/site\"\nbase = \"scratch\"\n\n\
         [[layer]]\nfrom = \"frontend/dist\"\nto = \"/srv\"\nmodes = \"normalize\"\n\n\
         [version]\nsource = \"frontend/package.json\"\n",
    );
    sandbox.write(
        "repo/frontend/package.json",
        "{\"name\": \"site\", \"version\": \"1.0.0\"}\n",
    );
    sandbox.write("repo/frontend/.gitignore", "dist/\n");
    sandbox.write("repo/frontend/dist/index.html", "<h1>built</h1>\n");
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["add", "--all"]);
    git(&repo, &["commit", "--quiet", "-m", "one"]);
    let mut command = sandbox.build();
    command
        .arg("--config")
        .arg(repo.join("hoist.toml"))
        .arg("--output")
        .arg(sandbox.oci("out:1.0"));
    success(&mut command);
    let image = sandbox.oci("out:1.0");
    // Dated by its commit (GIT_COMMITTER_DATE of the helper), not 1970.
    let config = crate::common::parse_json(&crate::common::tool(
        "skopeo",
        &["inspect", "--config", &image],
    ));
    assert_eq!(config["created"], "2024-05-01T12:00:00Z");
    let first = git(&repo, &["rev-parse", "HEAD"]);
    sandbox.write("repo/README", "two\n");
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "--quiet", "-m", "two"]);

    let output = verify(&sandbox, &repo, &image, &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("frontend/dist not in git (ignored)")
            && err.contains(&format!("`git checkout {first}`")),
        "{err}"
    );
    // The hint is true: at that revision, with its dist built, the rebuild matches.
    git(&repo, &["checkout", "--quiet", &first]);
    let output = verify(&sandbox, &repo, &image, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
