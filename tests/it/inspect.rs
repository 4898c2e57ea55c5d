//! `hoist inspect` on what `hoist build` wrote.

use crate::common::{Layout, Sandbox, failure, last_line, parse_json, stdout, str_at, success};

#[test]
fn inspect_shows_platforms_config_and_history() {
    let sandbox = Sandbox::new();
    let built = sandbox.build_example(&sandbox.oci("out"), &[]);
    let digest = last_line(&built);

    // No tag: the layout holds one image, so it is selected.
    let mut command = sandbox.hoist();
    command.arg("inspect").arg(sandbox.oci("out"));
    let text = stdout(&success(&mut command));
    for needle in [
        digest,
        "linux/amd64",
        "linux/arm64",
        "python3",
        "/app/main.py",
        "PORT=8080",
        "8080/tcp",
        "SIGTERM",
        "hoist: backend → /app",
        "hoist: frontend/dist → /usr/share/nginx/html",
        "org.opencontainers.image.vendor",
    ] {
        assert!(
            text.contains(needle),
            "inspect output lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn inspect_json_has_the_raw_documents() {
    let sandbox = Sandbox::new();
    let built = sandbox.build_example(&sandbox.oci("out"), &[]);
    let digest = last_line(&built);
    let mut command = sandbox.hoist();
    command
        .arg("inspect")
        .arg("--json")
        .arg(sandbox.oci("out:latest"));
    let json = parse_json(&stdout(&success(&mut command)));
    assert_eq!(json["descriptor"]["digest"], digest);
    let layout = Layout::open(sandbox.path("out"));
    assert_eq!(json["index"], layout.json(digest));
    let manifests = json["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (entry, image) in manifests.iter().zip(layout.platforms("latest")) {
        assert_eq!(entry["digest"], image.descriptor["digest"]);
        assert_eq!(entry["manifest"], image.manifest);
        assert_eq!(entry["config"], image.config);
    }
    assert_eq!(manifests[0]["platform"]["architecture"], "amd64");
    assert_eq!(manifests[1]["platform"]["architecture"], "arm64");
    assert_eq!(str_at(&json, "/reference"), sandbox.oci("out:latest"));
}

#[test]
fn inspect_unknown_tag_lists_the_tags() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out:one"), &[]);
    sandbox.build_example(&sandbox.oci("out:two"), &["--label", "x=y"]);
    let mut command = sandbox.hoist();
    command.arg("inspect").arg(sandbox.oci("out:nope"));
    let err = failure(&mut command);
    for needle in ["nope", "one", "two"] {
        assert!(
            err.contains(needle),
            "stderr should mention {needle:?}:\n{err}"
        );
    }
}

#[test]
fn inspect_without_tag_on_two_images_asks_for_one() {
    let sandbox = Sandbox::new();
    sandbox.build_example(&sandbox.oci("out:one"), &[]);
    sandbox.build_example(&sandbox.oci("out:two"), &["--label", "x=y"]);
    let mut command = sandbox.hoist();
    command.arg("inspect").arg(sandbox.oci("out"));
    let err = failure(&mut command);
    for needle in ["one", "two"] {
        assert!(
            err.contains(needle),
            "stderr should mention {needle:?}:\n{err}"
        );
    }
}
