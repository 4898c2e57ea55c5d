//! Extra package indexes (uv's `UV_INDEX`, pip's `PIP_EXTRA_INDEX_URL`, both
//! space-separated lists): asked before the default index, in order, a later one only
//! for a package some platform has no wheel for yet; each index's credentials (in its
//! URL, or uv's `UV_INDEX_<NAME>_USERNAME`/`_PASSWORD`) go to its own origin only. Two loopback indexes with Basic auth: the default serves every
//! wheel but orjson's arm64 one, the extra serves only that.

use std::fs;

use crate::common::{Sandbox, stdout};
use crate::python::{SimpleIndex, real_files};
use crate::python_base::{assert_nowhere, build_env as build, index_project, printed};

const MAIN_AUTH: &str = "Basic bWFpbi11c2VyOm1haW4tcHc="; // main-user:main-pw
const EXTRA_AUTH: &str = "Basic ZXh0cmEtdXNlcjpleHRyYS1wdw=="; // extra-user:extra-pw

/// `index`'s URL with `user:password` in it.
fn with_login(index: &SimpleIndex, login: &str) -> String {
    index.url.replace("http://", &format!("http://{login}@"))
}

/// Each logged request (path, Authorization) of `<sandbox>/<name>.log`.
fn requests(sandbox: &Sandbox, name: &str) -> Vec<(String, String)> {
    fs::read_to_string(sandbox.path(&format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (path, auth) = line.split_once(' ').unwrap();
            (path.to_owned(), auth.to_owned())
        })
        .collect()
}

#[test]
fn extra_indexes_are_asked_before_the_default_each_with_its_own_credentials() {
    let sandbox = Sandbox::new();
    let (arm, rest): (Vec<_>, Vec<_>) = real_files()
        .into_iter()
        .partition(|(file, ..)| file.starts_with("orjson") && file.contains("aarch64"));
    let main = SimpleIndex::serve_in(&sandbox, "main", &rest, Some("main-user:main-pw"));
    let extra = SimpleIndex::serve_in(&sandbox, "extra", &arm, Some("extra-user:extra-pw"));
    let all = SimpleIndex::serve_in(&sandbox, "all", &real_files(), Some("-"));
    index_project(&sandbox);
    // The same image from one index holding every wheel.
    let reference = build(
        &sandbox,
        "c0",
        "out-all",
        &[("PIP_INDEX_URL", all.url.clone())],
    );
    assert!(reference.status.success(), "{}", printed(&reference));
    let reference = stdout(&reference);

    // The default index alone lacks orjson for arm64: named, as before.
    let output = build(
        &sandbox,
        "c1",
        "out-main",
        &[("PIP_INDEX_URL", with_login(&main, "main-user:main-pw"))],
    );
    assert!(!output.status.success());
    let error = printed(&output);
    assert!(
        error.contains("orjson==3.10.12 for linux/arm64") && !error.contains("main-pw"),
        "{error}"
    );

    // pip's variables: the extra index is asked first for every package (a 404 for all
    // but orjson), the default for what it lacks.
    let output = build(
        &sandbox,
        "c2",
        "out-pip",
        &[
            ("PIP_INDEX_URL", with_login(&main, "main-user:main-pw")),
            (
                "PIP_EXTRA_INDEX_URL",
                format!("  {}  ", with_login(&extra, "extra-user:extra-pw")),
            ),
        ],
    );
    assert!(output.status.success(), "{}", printed(&output));
    assert_eq!(stdout(&output), reference);
    for secret in ["main-pw", "extra-pw"] {
        assert_nowhere(&sandbox.path("out-pip"), &printed(&output), secret);
    }
    let extra_log = requests(&sandbox, "extra");
    let main_log = requests(&sandbox, "main");
    // Each index saw its own credentials only, on every request.
    assert!(
        extra_log.iter().all(|(_, auth)| auth == EXTRA_AUTH),
        "{extra_log:?}"
    );
    assert!(
        main_log.iter().all(|(_, auth)| auth == MAIN_AUTH),
        "{main_log:?}"
    );
    let asked = |log: &[(String, String)], path: &str| log.iter().any(|(p, _)| p == path);
    // The extra index was asked for six too (it has none), and served orjson's arm64 wheel.
    assert!(asked(&extra_log, "/simple/six/"), "{extra_log:?}");
    assert!(
        extra_log
            .iter()
            .any(|(p, _)| p.starts_with("/files/orjson") && p.contains("aarch64")),
        "{extra_log:?}"
    );
    assert!(asked(&main_log, "/simple/orjson/") && asked(&main_log, "/simple/six/"));

    // uv's: `UV_INDEX` names both (`name=URL`), their credentials in uv's per-index
    // variables (`UV_INDEX_<NAME>_USERNAME`/`_PASSWORD`), before a default index that is
    // never asked (its port is closed) since the two serve every wheel.
    let dead = format!("http://127.0.0.1:{}/simple", crate::registry::dead_port());
    let output = build(
        &sandbox,
        "c3",
        "out-uv",
        &[
            (
                "UV_INDEX",
                format!("extra-1={} main={}", extra.url, main.url),
            ),
            ("UV_INDEX_EXTRA_1_USERNAME", "extra-user".into()),
            ("UV_INDEX_EXTRA_1_PASSWORD", "extra-pw".into()),
            ("UV_INDEX_MAIN_USERNAME", "main-user".into()),
            ("UV_INDEX_MAIN_PASSWORD", "main-pw".into()),
            ("UV_DEFAULT_INDEX", dead),
        ],
    );
    assert!(output.status.success(), "{}", printed(&output));
    assert_eq!(stdout(&output), reference);
    for secret in ["main-pw", "extra-pw"] {
        assert_nowhere(&sandbox.path("out-uv"), &printed(&output), secret);
    }
    assert!(
        requests(&sandbox, "extra")
            .iter()
            .all(|(_, auth)| auth == EXTRA_AUTH)
    );
    assert!(
        requests(&sandbox, "main")
            .iter()
            .all(|(_, auth)| auth == MAIN_AUTH)
    );
}
