//! `build --load` and `hoist load`: the host's platform image goes into podman's store
//! (vfs storage in a temp dir, through `CONTAINERS_STORAGE_CONF`) under every tag, with
//! the build's config; without an engine, or with docker's CLI and no daemon, a clear
//! error before anything is built.

use std::fs;

use crate::common::{Sandbox, example_config, parse_json, stderr, stdout, success};
use crate::podman::Podman;
use crate::registry::{Registry, ok};

/// `podman images --format json`: every `NAME:TAG` podman lists.
fn listed_names(podman: &Podman) -> Vec<String> {
    let listed = parse_json(&stdout(&podman.output(&["images", "--format", "json"])));
    listed
        .as_array()
        .expect("a list")
        .iter()
        .flat_map(|image| image["Names"].as_array().cloned().unwrap_or_default())
        .map(|name| name.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn build_load_puts_the_image_into_podman_under_every_tag() {
    let sandbox = Sandbox::new();
    let podman = Podman::new();
    let mut command = sandbox.build();
    command
        .envs(podman.environment())
        .arg("--config")
        .arg(example_config())
        .args([
            "--load", "--engine", "podman", "--tag", "1.0", "--tag", "edge",
        ])
        .args(["--env", "MODE=loaded", "--label", "stage=test"]);
    let output = success(&mut command);
    let err = stderr(&output);
    assert!(err.contains("Loaded image"), "podman's report: {err}");

    let names = listed_names(&podman);
    for tag in ["1.0", "edge"] {
        let name = format!("ghcr.io/acme/dashboard:{tag}");
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // The tags given replace `latest`, as for every output.
    assert!(!names.contains(&"ghcr.io/acme/dashboard:latest".to_string()));
    let inspected = podman.inspect("ghcr.io/acme/dashboard:1.0");
    let config = &inspected["Config"];
    assert_eq!(config["Cmd"], serde_json::json!(["/app/main.py"]));
    assert_eq!(config["Entrypoint"], serde_json::json!(["python3"]));
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&"MODE=loaded") && env.contains(&"PORT=8080"),
        "{env:?}"
    );
    assert_eq!(config["Labels"]["stage"], "test");
    assert_eq!(config["WorkingDir"], "/app");
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(inspected["Architecture"], host);
}

#[test]
fn hoist_load_takes_a_layout_under_the_given_tag() {
    let sandbox = Sandbox::new();
    let podman = Podman::new();
    sandbox.build_example(&sandbox.oci("out:latest"), &[]);
    let mut command = sandbox.hoist();
    command
        .envs(podman.environment())
        .arg("load")
        .arg(sandbox.oci("out:latest"))
        .args(["--tag", "localhost/dash:from-layout", "--cache-dir"])
        .arg(sandbox.cache());
    success(&mut command);
    assert!(listed_names(&podman).contains(&"localhost/dash:from-layout".to_string()));

    // A layout has no name: the error says to give one.
    let mut command = sandbox.hoist();
    command.arg("load").arg(sandbox.oci("out:latest"));
    let err = stderr(&command.assert().code(1).get_output().clone());
    assert!(err.contains("--tag NAME:TAG"), "{err}");
}

#[test]
fn no_engine_on_path_is_a_clear_error_before_building() {
    let sandbox = Sandbox::new();
    let empty = sandbox.path("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    let mut command = sandbox.build();
    command
        .env("PATH", &empty)
        .arg("--config")
        .arg(example_config())
        .arg("--load");
    let output = command.assert().code(1).get_output().clone();
    let err = stderr(&output);
    assert!(stdout(&output).is_empty(), "no digest: nothing was built");
    assert!(
        err.contains("no container engine") && err.contains("podman or docker"),
        "{err}"
    );
}

/// docker's CLI is here, its daemon is not (this machine; a fake socket path makes
/// sure of it elsewhere): the error says the daemon is unreachable, before building.
#[test]
fn docker_without_a_daemon_is_a_clear_error_before_building() {
    let sandbox = Sandbox::new();
    crate::common::require_tool("docker");
    let mut command = sandbox.build();
    command
        .env(
            "DOCKER_HOST",
            format!("unix://{}", sandbox.path("no-daemon.sock").display()),
        )
        .arg("--config")
        .arg(example_config())
        .args(["--load", "--engine", "docker"]);
    let output = command.assert().code(1).get_output().clone();
    let err = stderr(&output);
    assert!(stdout(&output).is_empty(), "no digest: nothing was built");
    assert!(
        err.contains("docker is installed but not usable")
            && err.contains("daemon is not reachable")
            && err.contains("--engine podman"),
        "{err}"
    );
}

/// `hoist load HOST/REPO:TAG`: the host's platform fetched from the registry (through
/// the cache) and loaded under the reference itself.
#[test]
fn hoist_load_takes_a_registry_image_under_its_reference() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let mut command = sandbox.build();
    command.arg("--config").arg(example_config()).args([
        "--push-to",
        &registry.reference("acme/dash"),
        "--tag",
        "2.0",
    ]);
    ok(&mut command, &registry);

    let podman = Podman::new();
    let reference = format!("{}:2.0", registry.reference("acme/dash"));
    let mut command = sandbox.hoist();
    command
        .envs(podman.environment())
        .args(["load", &reference, "--cache-dir"])
        .arg(sandbox.cache());
    let output = ok(&mut command, &registry);
    assert!(
        stderr(&output).contains("Loaded image"),
        "{}",
        stderr(&output)
    );
    assert!(
        listed_names(&podman).contains(&reference),
        "{reference} in {:?}",
        listed_names(&podman)
    );
    let inspected = podman.inspect(&reference);
    assert_eq!(inspected["Config"]["WorkingDir"], "/app");
}
