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
