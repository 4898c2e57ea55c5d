//! `build --entrypoint/--cmd/--workdir/--user/--expose`: skopeo reads them back from
//! the image's config; a bad value fails naming the flag.

use crate::common::{Sandbox, parse_json, stderr, tool};

#[test]
fn config_flags_reach_the_image_config() {
    let sandbox = Sandbox::new();
    sandbox.build_example(
        &sandbox.oci("out:latest"),
        &[
            "--platform",
            "linux/amd64",
            "--entrypoint",
            r#"["/usr/bin/env", "python3"]"#,
            "--cmd",
            "/app/main.py --port 9090",
            "--workdir",
            "/srv/app",
            "--user",
            "4242:4242",
            "--expose",
            "9090",
            "--expose",
            "53/udp",
        ],
    );
    let config = parse_json(&tool(
        "skopeo",
        &["inspect", "--config", &sandbox.oci("out:latest")],
    ));
    let config = &config["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/env", "python3"])
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/app/main.py", "--port", "9090"])
    );
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["User"], "4242:4242");
    let ports = config["ExposedPorts"].as_object().expect("ExposedPorts");
    for port in ["9090/tcp", "53/udp", "8080/tcp"] {
        assert!(ports.contains_key(port), "{port} in {ports:?}");
    }
}

#[test]
fn a_bad_config_flag_is_named() {
    let sandbox = Sandbox::new();
    for (flag, value) in [
        ("--workdir", "relative/dir"),
        ("--user", "a:b:c"),
        ("--expose", "http"),
        ("--entrypoint", "[\"unclosed\""),
    ] {
        let mut command = sandbox.build();
        command
            .arg("--config")
            .arg(crate::common::example_config())
            .args([flag, value]);
        let output = command.assert().failure().get_output().clone();
        let err = stderr(&output);
        assert!(
            err.contains(&format!("invalid {flag}:")) && err.contains(value),
            "{flag}: {err}"
        );
    }
}
