//! What a command shows of its registry work (issue 19), against the real
//! `docker-registry`: a workspace `build --push --json` gives each member its part of
//! the requests and the command's totals (the registry's access log agrees), `-v`
//! prints them with the phases, every request of every command says
//! `User-Agent: hoist/VERSION`, every progress line of a workspace command names its
//! member, and on a terminal the notes printed while bars are drawn leave no bar
//! behind (a pseudo-terminal from util-linux `script`, its screen replayed).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{Sandbox, parse_json, stderr, stdout};
use crate::registry::{Registry, Request, ok};
use crate::schedule::{MEMBERS, phase_names, release_command, shared_layer_workspace};

/// `hoist build --push` at the root of the shared-layer workspace, plus `extra`.
fn build_push(sandbox: &Sandbox, extra: &[&str]) -> assert_cmd::Command {
    let mut command = sandbox.hoist();
    command
        .current_dir(sandbox.path("ws"))
        .args(["build", "--push", "--cache-dir"])
        .arg(sandbox.cache())
        .args(extra);
    command
}

/// The requests the registry logged for `member`'s repository.
fn requests_of<'a>(requests: &'a [Request], member: &str) -> Vec<&'a Request> {
    let prefix = format!("/v2/acme/{member}/");
    requests
        .iter()
        .filter(|r| r.route().starts_with(&prefix))
        .collect()
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

#[test]
fn a_workspace_build_push_gives_each_member_its_part_and_the_totals() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    // The harness's own `GET /v2/` when the registry started is not hoist's.
    let before = registry.requests().len();
    let output = ok(&mut build_push(&sandbox, &["--json", "-v"]), &registry);
    let requests = registry.requests().split_off(before);
    let built = parse_json(&stdout(&output));
    let notes = stderr(&output);
    // Still an array (as before), one element per member.
    let entries = built.as_array().expect("one element per member");
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut members = MEMBERS;
    members.sort_unstable();
    assert_eq!(names, members);
    // The command's totals, the same in every element: what the registry saw.
    let totals = &entries[0]["registry"];
    assert_eq!(phase_names(totals), ["prepare", "build"], "{totals:#}");
    assert_eq!(
        number(&totals["total"]),
        requests.len() as u64,
        "{totals:#}"
    );
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in entries {
        assert_eq!(&entry["registry"], totals);
        let name = entry["name"].as_str().unwrap();
        let share = &entry["registry_share"];
        // Its part: the requests to its repository, as the access log shows them.
        let theirs = requests_of(&requests, name);
        assert_eq!(
            number(&share["total"]),
            theirs.len() as u64,
            "{name}: {share:#}"
        );
        for (method, n) in share["by_method"].as_object().unwrap() {
            let logged = theirs.iter().filter(|r| r.method == *method).count();
            assert_eq!(number(n), logged as u64, "{name} {method}: {share:#}");
        }
        // Every blob of its image went through the ledger in its repository.
        let blobs = &share["blobs"];
        let put = ["uploaded", "mounted", "skipped"].map(|k| number(&blobs[k]));
        assert!(put.iter().sum::<u64>() > 0, "{name}: {share:#}");
        for (key, value) in [
            ("total", &share["total"]),
            ("bytes_uploaded", &share["bytes_uploaded"]),
            ("uploaded", &blobs["uploaded"]),
            ("mounted", &blobs["mounted"]),
            ("skipped", &blobs["skipped"]),
        ] {
            *sums.entry(key).or_default() += number(value);
        }
        // -v: each member's part on a line of its own.
        let line = format!("  {name}: {} requests (", theirs.len());
        assert!(notes.contains(&line), "no `{line}` in:\n{notes}");
    }
    // The parts add up to the totals (the base is a layout: no other repository).
    assert_eq!(sums["total"], number(&totals["total"]));
    assert_eq!(sums["bytes_uploaded"], number(&totals["bytes_uploaded"]));
    for key in ["uploaded", "mounted", "skipped"] {
        assert_eq!(
            sums[key],
            number(&totals["blobs"][key]),
            "{key}: {totals:#}"
        );
    }
    // The shared layer went up once and was mounted by the other members.
    assert!(number(&totals["blobs"]["mounted"]) >= 3, "{totals:#}");
    // -v: the totals and each phase's time and requests.
    let line = format!("registry: {} requests (", requests.len());
    assert!(notes.contains(&line), "no `{line}` in:\n{notes}");
    for phase in ["prepare", "build"] {
        assert!(
            notes
                .lines()
                .any(|l| l.starts_with(&format!("  {phase} "))
                    && l.trim_end().ends_with(" requests")),
            "no {phase} line in:\n{notes}"
        );
    }
}

/// The hoist version's `User-Agent`, as the access log quotes it.
fn agent() -> String {
    format!("\"hoist/{}\"", env!("CARGO_PKG_VERSION"))
}

/// The access-log lines the registry wrote since `from` lines (`requests` first, so
/// that the log is complete), without the test's own marked requests.
fn access_lines_since(registry: &Registry, from: usize) -> (Vec<String>, usize) {
    registry.requests();
    let log = registry.log();
    let lines: Vec<&str> = log.lines().collect();
    let new = lines[from.min(lines.len())..]
        .iter()
        .filter(|l| crate::registry::parse_access_log(l).len() == 1)
        .filter(|l| !l.contains("\"GET /v2/?"))
        .map(|l| (*l).to_string())
        .collect();
    (new, lines.len())
}

#[test]
fn every_request_of_every_command_says_hoist_and_its_version() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    let host = registry.host();
    let api = format!("{host}/acme/api:1.0.0");
    let layout = sandbox.oci("pulled");
    let commands: Vec<(&str, assert_cmd::Command)> = vec![
        ("build --push", build_push(&sandbox, &[])),
        ("release", release_command(&sandbox, &[])),
        ("push", {
            let mut c = sandbox.hoist();
            c.args([
                "push",
                &api,
                &format!("{host}/acme/copy:1"),
                &format!("{host}/acme/other:1"),
            ]);
            c
        }),
        ("pull", {
            let mut c = sandbox.hoist();
            c.args(["pull", &api, "--output", &format!("{layout}:1")]);
            c
        }),
        ("tag", {
            let mut c = sandbox.hoist();
            c.args(["tag", &api, "stable"]);
            c
        }),
        ("inspect", {
            let mut c = sandbox.hoist();
            c.args(["inspect", &api]);
            c
        }),
        ("diff", {
            let mut c = sandbox.hoist();
            c.args(["diff", &api, &format!("{host}/acme/copy:1")]);
            c
        }),
    ];
    let (_, mut from) = access_lines_since(&registry, 0);
    for (name, mut command) in commands {
        if !matches!(name, "build --push" | "release" | "tag") {
            command.arg("--cache-dir").arg(sandbox.cache());
        }
        ok(&mut command, &registry);
        let (lines, now) = access_lines_since(&registry, from);
        from = now;
        assert!(!lines.is_empty(), "{name} made no request");
        for line in &lines {
            assert!(line.ends_with(&agent()), "{name}: no {} in {line}", agent());
        }
    }
}

/// Every line of progress of a workspace `build --push` and `release` (CI: plain
/// lines) names its member; the lines about the whole command are the `-v` summary.
#[test]
fn every_progress_line_of_a_workspace_push_names_its_member() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    shared_layer_workspace(&sandbox, &registry.host());
    let build = stderr(&ok(&mut build_push(&sandbox, &[]), &registry));
    let release = stderr(&ok(&mut release_command(&sandbox, &[]), &registry));
    // Again, unchanged: with the growth table against the first.
    let again = stderr(&ok(
        &mut release_command(&sandbox, &["--growth"]),
        &registry,
    ));
    for (command, notes) in [
        ("build --push", &build),
        ("release", &release),
        ("release --growth", &again),
    ] {
        let mut named = 0;
        // Under a line naming a member, its indented rows (a growth table's).
        let mut under_member = false;
        for line in notes.lines() {
            let member = MEMBERS.iter().find(|m| {
                line.starts_with(&format!("{m}: "))
                    // release's summary: `released vX of NAME to …`.
                    || line.contains(&format!(" of {m} to "))
            });
            if member.is_some() {
                named += 1;
                under_member = true;
                continue;
            }
            if under_member && line.starts_with("  ") {
                continue;
            }
            under_member = false;
            assert!(
                is_command_line(line),
                "{command}: a line naming no member: `{line}` in:\n{notes}"
            );
        }
        assert!(named >= MEMBERS.len() * 2, "{command}:\n{notes}");
    }
    // Layers, uploads, pushes and growth tables all said per member.
    assert_eq!(
        again.matches(": growth against ").count(),
        MEMBERS.len(),
        "{again}"
    );
    for m in MEMBERS {
        assert!(build.contains(&format!("{m}: pushed ")), "{build}");
        assert!(build.contains(&format!("{m}: layer ")), "{build}");
    }
    assert!(build.contains(": uploaded sha256:"), "{build}");
}

/// Lines about the whole command rather than one member.
fn is_command_line(line: &str) -> bool {
    line.starts_with("every image of v") && line.ends_with(": moving the tags")
}
