//! `hoist release` of a project whose version lives in a `version.py` (the source),
//! synced into a Helm `Chart.yaml` and, through a pattern, a `values.yaml`: against the
//! real registry, every file bumped with its formatting kept (only the version's bytes
//! change, CRLF included), the image labelled with the new version, and a files layer
//! built alongside.

use std::fs;

use assert_cmd::Command;

use crate::common::{Sandbox, base_layout, failure, parse_json, stdout, success};
use crate::registry::{Registry, ok};

/// git with no host configuration and a fixed identity and date.
fn git_env(command: &mut Command) -> &mut Command {
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

fn git(sandbox: &Sandbox, args: &[&str]) -> String {
    let mut command = Command::new("git");
    git_env(&mut command).current_dir(sandbox.root()).args(args);
    stdout(&success(&mut command)).trim().to_string()
}

const VERSION_PY: &str = "\"\"\"gati SDK.\n\n__version__ = \"0.0.0\" here is prose.\n\"\"\"\n\n# keep single quotes\n__version__ = '0.1.0'  # bumped by hoist\n\n\ndef version():\n    return __version__\n";

const CHART: &str = "apiVersion: v2\nname: gati\nversion: 0.4.1  # the chart's own\nappVersion: \"0.1.0\"\ndependencies:\n  - name: db\n    appVersion: 15.1.0\n";

const VALUES: &str =
    "image:\r\n  repository: REPO\r\n  tag: \"0.1.0\"\r\nsidecar:\r\n  version: 0.1.0\r\n";

fn project(sandbox: &Sandbox, name: &str) {
    sandbox.write("sdk/gati/version.py", VERSION_PY);
    sandbox.write("chart/Chart.yaml", CHART);
    sandbox.write("deploy/values.yaml", &VALUES.replace("REPO", name));
    sandbox.write("app/main.py", "print('gati')\n");
    // The sandbox's cache lives beside the project.
    sandbox.write(".gitignore", "/cache/\n/xdg-cache/\n");
    sandbox.write("start.sh", "#!/bin/sh\nexec python3 /app/main.py\n");
    sandbox.write(
        "hoist.toml",
        &format!(
            r#"[image]
name = "{name}"
base = "oci:{base}:1.0"
platforms = ["linux/amd64"]

[[layer]]
from = "app"
to = "/app"

[[layer]]
files = [{{ from = "start.sh", to = "/usr/local/bin/start", mode = "0755" }}]

[version]
source = "sdk/gati/version.py"
sync = [
  "chart/Chart.yaml",
  {{ path = "deploy/values.yaml", pattern = 'tag: "(?P<version>[^"]+)"' }},
]
"#,
            base = base_layout().display()
        ),
    );
    git(sandbox, &["init", "--quiet", "--initial-branch=main"]);
    git(sandbox, &["add", "--all"]);
    git(sandbox, &["commit", "--quiet", "-m", "gati"]);
}

fn hoist(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = sandbox.hoist();
    git_env(&mut command).args(args);
    command
}

#[test]
fn a_release_bumps_python_chart_and_pattern_files_keeping_their_format() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let name = registry.reference("acme/gati");
    project(&sandbox, &name);

    let json = parse_json(&stdout(&success(&mut hoist(
        &sandbox,
        &["version", "--json"],
    ))));
    assert_eq!(json["version"], "0.1.0", "{json:#}");
    let lines: Vec<i64> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [7, 4, 3], "{json:#}");

    let mut command = hoist(&sandbox, &["release", "minor", "--json", "--cache-dir"]);
    command.arg(sandbox.cache());
    let report = parse_json(&stdout(&ok(&mut command, &registry)));
    assert_eq!(report["version"], "0.2.0", "{report:#}");

    let bumped = |text: &str, old: &str, new: &str| {
        assert_eq!(text.matches(old).count(), 1, "{old} once in:\n{text}");
        text.replace(old, new)
    };
    assert_eq!(
        fs::read_to_string(sandbox.path("sdk/gati/version.py")).unwrap(),
        bumped(VERSION_PY, "'0.1.0'", "'0.2.0'")
    );
    assert_eq!(
        fs::read_to_string(sandbox.path("chart/Chart.yaml")).unwrap(),
        bumped(CHART, "\"0.1.0\"", "\"0.2.0\"")
    );
    assert_eq!(
        fs::read_to_string(sandbox.path("deploy/values.yaml")).unwrap(),
        bumped(
            &VALUES.replace("REPO", &name),
            "tag: \"0.1.0\"",
            "tag: \"0.2.0\""
        )
    );
    assert_eq!(
        git(&sandbox, &["log", "-1", "--format=%s"]),
        "Release v0.2.0"
    );
    assert_eq!(git(&sandbox, &["status", "--porcelain"]), "");
    let committed = git(&sandbox, &["show", "--name-only", "--format=", "HEAD"]);
    let mut committed: Vec<&str> = committed.lines().collect();
    committed.sort_unstable();
    assert_eq!(
        committed,
        [
            "chart/Chart.yaml",
            "deploy/values.yaml",
            "sdk/gati/version.py"
        ]
    );

    // The pushed image carries the new version.
    let digest = report["digest"].as_str().unwrap();
    let index = parse_json(std::str::from_utf8(&registry.manifest("acme/gati", digest)).unwrap());
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"], "0.2.0",
        "{index:#}"
    );

    // A pattern file that stops matching once is refused by name, and nothing moves.
    let values = sandbox.path("deploy/values.yaml");
    let two = format!(
        "{}  tag: \"0.2.0\"\r\n",
        fs::read_to_string(&values).unwrap()
    );
    fs::write(&values, &two).unwrap();
    let err = failure(&mut hoist(&sandbox, &["version", "bump", "patch"]));
    assert!(
        err.contains("deploy/values.yaml") && err.contains("matches 2 times"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&values).unwrap(), two);
    assert!(
        fs::read_to_string(sandbox.path("sdk/gati/version.py"))
            .unwrap()
            .contains("'0.2.0'"),
        "all or none: the source is not bumped either"
    );
}
