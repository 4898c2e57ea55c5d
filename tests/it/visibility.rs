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
    let hoist = |args: &[&str]| {
        let mut command = sandbox.hoist();
        command.args(args);
        command
    };
    let copy = format!("{host}/acme/copy:1");
    let commands: Vec<(&str, assert_cmd::Command)> = vec![
        ("build --push", build_push(&sandbox, &["--json"])),
        ("release", release_command(&sandbox, &["--json"])),
        (
            "push",
            hoist(&[
                "push",
                &api,
                &copy,
                &format!("{host}/acme/other:1"),
                "--json",
            ]),
        ),
        (
            "pull",
            hoist(&[
                "pull",
                &api,
                "--output",
                &format!("{layout}:1"),
                "--json",
                "-v",
            ]),
        ),
        ("tag", hoist(&["tag", &api, "stable", "--json"])),
        ("inspect", hoist(&["inspect", &api, "--json", "-v"])),
        (
            "sbom",
            hoist(&["sbom", &api, "--platform", "linux/amd64", "--json", "-v"]),
        ),
        ("diff", hoist(&["diff", &api, &copy])),
    ];
    let (_, mut from) = access_lines_since(&registry, 0);
    for (name, mut command) in commands {
        if !matches!(name, "build --push" | "release" | "tag") {
            command.arg("--cache-dir").arg(sandbox.cache());
        }
        let output = ok(&mut command, &registry);
        let (lines, now) = access_lines_since(&registry, from);
        from = now;
        assert!(!lines.is_empty(), "{name} made no request");
        for line in &lines {
            assert!(line.ends_with(&agent()), "{name}: no {} in {line}", agent());
        }
        // The commands that write, and those that read a registry image, report all
        // their requests in `--json`.
        if name != "diff" {
            let document = parse_json(&stdout(&output));
            let stats = match &document {
                Value::Array(entries) => &entries[0]["registry"],
                _ => &document["registry"],
            };
            assert_eq!(
                number(&stats["total"]),
                lines.len() as u64,
                "{name}: {document:#}"
            );
            assert!(!phase_names(stats).is_empty(), "{name}: {document:#}");
            for (method, n) in stats["by_method"].as_object().unwrap() {
                let logged = lines
                    .iter()
                    .filter(|l| l.contains(&format!("\"{method} /v2/")))
                    .count();
                assert_eq!(number(n), logged as u64, "{name} {method}: {document:#}");
            }
            match name {
                "pull" => assert_eq!(phase_names(stats), ["prepare", "fetch", "write"]),
                "inspect" => assert_eq!(phase_names(stats), ["prepare"]),
                "sbom" => sbom_requests(&document, &lines),
                _ => {}
            }
            // -v: the same totals on stderr.
            if matches!(name, "pull" | "inspect" | "sbom") {
                let line = format!("registry: {} requests (", lines.len());
                let notes = stderr(&output);
                assert!(notes.contains(&line), "{name}: no `{line}` in:\n{notes}");
            }
            // Each release image, workspace member and push destination: its part.
            let entries = match &document {
                Value::Array(entries) => entries.as_slice(),
                _ => document["images"].as_array().map_or(&[][..], Vec::as_slice),
            };
            for entry in entries.iter().filter(|e| !e["registry_share"].is_null()) {
                // A member's repository, or a destination's (`HOST/REPO@sha256:…`).
                let member = entry["name"].as_str().map_or_else(
                    || {
                        let reference = entry["reference"].as_str().unwrap();
                        let (_, path) = reference.split_once('/').unwrap();
                        path.split('@').next().unwrap().to_string()
                    },
                    |name| format!("acme/{name}"),
                );
                let theirs = format!(" /v2/{member}/");
                let logged = lines.iter().filter(|l| l.contains(&theirs)).count();
                assert_eq!(
                    number(&entry["registry_share"]["total"]),
                    logged as u64,
                    "{name} {member}: {document:#}"
                );
            }
            if !matches!(name, "tag" | "pull" | "inspect" | "sbom") {
                let parts = if name == "push" { 2 } else { MEMBERS.len() };
                assert_eq!(entries.len(), parts, "{name}: {document:#}");
                assert!(entries.iter().all(|e| e["registry_share"].is_object()));
            }
        }
    }
    // Several platforms and no --platform: `sbom` is refused, naming them, before it
    // reads a referrer.
    let mut command = hoist(&["sbom", &api, "--cache-dir"]);
    let err = crate::common::failure(command.arg(sandbox.cache()));
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    let (lines, _) = access_lines_since(&registry, from);
    assert!(!lines.is_empty(), "the image was read");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("/referrers/") || l.contains("/manifests/sha256-")),
        "{lines:#?}"
    );
    // A layout is read from disk: its `inspect --json` has no `registry`.
    let mut command = hoist(&["inspect", &format!("{layout}:1"), "--json"]);
    let document = parse_json(&stdout(&ok(&mut command, &registry)));
    assert!(document.get("registry").is_none(), "{document:#}");
    assert!(document["manifests"].is_array(), "{document:#}");
    // Nor does the `sbom --json` of a layout; its document is the one attached.
    let mut build = sandbox.hoist();
    build.current_dir(sandbox.path("ws")).arg("build");
    build.args(["-p", "api", "--output", &format!("{layout}:built")]);
    ok(build.arg("--cache-dir").arg(sandbox.cache()), &registry);
    let mut command = hoist(&[
        "sbom",
        &format!("{layout}:built"),
        "--platform",
        "linux/amd64",
    ]);
    let document = parse_json(&stdout(&ok(command.arg("--json"), &registry)));
    assert!(document.get("registry").is_none(), "{document:#}");
    assert_eq!(document["sbom"]["spdxVersion"], "SPDX-2.3", "{document:#}");
}

/// `hoist sbom --json` of a registry image: the one platform's SPDX document, and the
/// phases `prepare` (the index and that platform's manifest) and `referrers` (its
/// SBOM's), the first ending where the access log's first referrers request begins.
fn sbom_requests(document: &Value, lines: &[String]) {
    let stats = &document["registry"];
    assert_eq!(phase_names(stats), ["prepare", "referrers"], "{document:#}");
    assert_eq!(document["platform"], "linux/amd64", "{document:#}");
    assert_eq!(document["format"], "spdx", "{document:#}");
    assert_eq!(document["sbom"]["spdxVersion"], "SPDX-2.3", "{document:#}");
    let opening = lines.iter().position(|l| l.contains("/referrers/"));
    let opening = opening.unwrap_or_else(|| panic!("no referrers request in {lines:#?}"));
    let phases = stats["phases"].as_array().unwrap();
    assert_eq!(number(&phases[0]["requests"]), opening as u64, "{lines:#?}");
    // The index and the one platform's manifest: not the other platform's.
    let manifests = lines[..opening]
        .iter()
        .filter(|l| l.contains("/manifests/"));
    assert_eq!(manifests.count(), 2, "{lines:#?}");
    assert_eq!(
        number(&phases[1]["requests"]),
        (lines.len() - opening) as u64,
        "{lines:#?}"
    );
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

/// A workspace `build --push` (two members at once) on a terminal: util-linux
/// `script` gives it a pseudo-terminal, so it draws bars (CI unset), and the bytes it
/// wrote are replayed on a model screen. Every note printed while bars were drawn
/// (layers built, blobs uploaded, images pushed) must stand whole on the final screen,
/// as many as the plain lines of the same command in CI, and no bar may be left.
#[test]
fn on_a_terminal_notes_printed_among_bars_leave_no_bar_behind() {
    crate::common::require_tool("script");
    let plain = Sandbox::new();
    let plain_registry = Registry::start();
    bulky_workspace(&plain, &plain_registry.host());
    let output = ok(&mut build_push(&plain, &["--jobs", "2"]), &plain_registry);
    let expected = kinds(stderr(&output).lines().chain(stdout(&output).lines()));

    let sandbox = Sandbox::new();
    let registry = Registry::start();
    bulky_workspace(&sandbox, &registry.host());
    let output = on_a_terminal(
        &sandbox,
        &format!(
            "build --push --jobs 2 --cache-dir '{}'",
            sandbox.cache().display()
        ),
    );
    let raw = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{raw:?}");
    let (shown, text) = final_screen(&raw);
    assert_eq!(
        kinds(shown.iter().map(String::as_str)),
        expected,
        "{text}\n\n{raw:?}"
    );
}

/// A workspace release on a terminal, members built two at once: a member's growth
/// table is printed when it is built, while the next member's bars are drawn (a
/// plain `eprintln!` there left stale bar lines and wrote over the table). Every
/// layer line, growth heading and row must stand whole on the final screen.
#[test]
fn on_a_terminal_growth_tables_among_bars_stand_whole() {
    crate::common::require_tool("script");
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    bulky_workspace(&sandbox, &registry.host());
    ok(&mut release_command(&sandbox, &[]), &registry);
    // Every member changed, so that each is built again (with bars).
    for member in MEMBERS {
        let path = sandbox.path(&format!("ws/services/{member}/app/data.bin"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.reverse();
        std::fs::write(&path, bytes).unwrap();
    }
    let output = on_a_terminal(
        &sandbox,
        &format!(
            "release 1.0.1 --no-git --branch main --growth --jobs 2 --cache-dir '{}'",
            sandbox.cache().display()
        ),
    );
    let raw = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{raw:?}");
    let (shown, text) = final_screen(&raw);
    let kinds = kinds(shown.iter().map(String::as_str));
    assert_eq!(
        kinds.get("layer"),
        Some(&(MEMBERS.len() * 2)),
        "{text}\n\n{raw:?}"
    );
    let headings: Vec<&String> = shown
        .iter()
        .filter(|l| l.contains(": growth against ") && l.ends_with(":1.0.0:"))
        .collect();
    assert_eq!(headings.len(), MEMBERS.len(), "{text}\n\n{raw:?}");
    // Under each heading its two platforms' rows, whole.
    for (i, line) in shown.iter().enumerate() {
        if headings.contains(&line) {
            for row in &shown[i + 1..i + 3] {
                let whole = row
                    .split_once("changed: sha256:")
                    .is_none_or(|(_, digest)| {
                        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())
                    });
                assert!(
                    row.starts_with("  linux/") && row.contains(" changed") && whole,
                    "`{row}` under `{line}` in:\n{text}\n\n{raw:?}"
                );
            }
        }
    }
}

/// A failed upload on a terminal: the registry (behind the fault proxy) refuses every
/// blob upload's last request, so the push fails with the blob's upload bar drawn; the
/// bar goes with it (indicatif leaves a dropped bar on the screen), the error stays.
#[test]
fn on_a_terminal_a_failed_upload_leaves_no_bar_behind() {
    crate::common::require_tool("script");
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    bulky_workspace(&sandbox, &registry.host());
    let mut command = sandbox.hoist();
    command
        .current_dir(sandbox.path("ws"))
        .args([
            "build",
            "-p",
            "api",
            "--output",
            &format!("{}:1", sandbox.oci("api")),
        ])
        .arg("--cache-dir")
        .arg(sandbox.cache());
    ok(&mut command, &registry);
    let plan = crate::proxy::FaultPlan::new().always(
        "PUT",
        "/blobs/uploads/",
        crate::proxy::Fault::envelope(400, "BLOB_UPLOAD_INVALID"),
    );
    let proxy = crate::proxy::FaultProxy::start(crate::faults::upstream(&registry), plan);
    let output = on_a_terminal(
        &sandbox,
        &format!(
            "push {}:1 {} --cache-dir '{}'",
            sandbox.oci("api"),
            proxy.reference("acme/api:1"),
            sandbox.cache().display()
        ),
    );
    let raw = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{raw:?}");
    assert!(proxy.faults_injected() > 0, "{raw:?}");
    let (shown, text) = final_screen(&raw);
    assert!(
        shown.iter().any(|l| l.starts_with("error: ")),
        "{text}\n\n{raw:?}"
    );
}

/// Runs `hoist ARGS` (a shell command line's words) in the sandbox's `ws/` on a
/// pseudo-terminal of [`COLUMNS`] (util-linux `script`), with CI unset: stdout holds
/// everything written to the terminal, the exit status is hoist's.
fn on_a_terminal(sandbox: &Sandbox, args: &str) -> std::process::Output {
    let hoist = sandbox.hoist_process();
    let mut command = std::process::Command::new("script");
    command
        .current_dir(sandbox.path("ws"))
        .envs(hoist.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("CI")
        .env("TERM", "xterm")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "stty cols {COLUMNS} rows 60; exec '{}' {args}",
            env!("CARGO_BIN_EXE_hoist")
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null());
    crate::registry::run(
        &mut assert_cmd::Command::from_std(command),
        crate::registry::HOIST_LIMIT,
    )
}

/// The shared-layer workspace with an incompressible megabyte per member, so that its
/// layer takes long enough to draw a bar.
fn bulky_workspace(sandbox: &Sandbox, host: &str) {
    shared_layer_workspace(sandbox, host);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for member in MEMBERS {
        let bytes: Vec<u8> = (0..4 << 20)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        std::fs::write(
            sandbox.path(&format!("ws/services/{member}/app/data.bin")),
            bytes,
        )
        .unwrap();
    }
}

/// How many whole lines of each kind: `layer`, `uploaded`, `pushed` notes of a member
/// (each with its full digest) and `NAME sha256:…` results; anything else is `other`.
fn kinds<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (member, rest) = line.split_once(' ').unwrap_or((line, ""));
        let whole_digest = |text: &str| {
            text.split("sha256:")
                .nth(1)
                .is_some_and(|d| d.len() >= 64 && d[..64].bytes().all(|b| b.is_ascii_hexdigit()))
        };
        let kind = match member.strip_suffix(':') {
            Some(m) if MEMBERS.contains(&m) && whole_digest(rest) => {
                if rest.starts_with("layer ") && rest.ends_with(')') {
                    "layer"
                } else if rest.starts_with("uploaded ") && rest.contains(" to ") {
                    "uploaded"
                } else if rest.starts_with("pushed ") && rest.ends_with(')') {
                    "pushed"
                } else {
                    "other"
                }
            }
            None if MEMBERS.contains(&member) && whole_digest(rest) && rest.len() == 71 => "digest",
            _ => "other",
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// The final screen after `raw` (its lines, and them as one text), asserting that
/// bars were drawn (else the test proves nothing: a bar's `[===>  ]` went by) and
/// that none is left.
fn final_screen(raw: &str) -> (Vec<String>, String) {
    assert!(raw.contains("] "), "no bar was drawn:\n{raw:?}");
    let shown = screen(raw);
    let text = shown.join("\n");
    for line in &shown {
        assert!(
            !is_bar(line),
            "a bar was left on the screen: `{line}` in:\n{text}"
        );
    }
    (shown, text)
}

/// A progress bar's line: `MESSAGE [=====>    ] 1.2 MiB/4.0 MiB 10 MiB/s`.
fn is_bar(line: &str) -> bool {
    line.contains(" [") && line.contains("] ") && line.trim_end().ends_with("/s")
}

/// The width of the test's terminal.
const COLUMNS: usize = 250;

/// What a terminal [`COLUMNS`] wide shows once `typescript` was written to it: its
/// lines, as far as the cursor movements and erasures that indicatif and console send
/// go (CR, LF, `CSI n A/B/C/D/G`, `CSI n K`, `CSI n J`; colours and modes are ignored),
/// and wrapping as xterm does (indicatif pads a bar to the width and lets the next one
/// wrap). The screen is as tall as it needs to be (no scrolling off the top).
fn screen(typescript: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0_usize, 0_usize);
    let mut chars = typescript.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => row += 1,
            '\x1b' => {
                if chars.next() != Some('[') {
                    continue;
                }
                let mut params = String::new();
                let mut last = ' ';
                for p in chars.by_ref() {
                    if p.is_ascii_alphabetic() || p == '@' || p == '~' {
                        last = p;
                        break;
                    }
                    params.push(p);
                }
                let n = params.trim_start_matches('?').parse::<usize>().ok();
                let line = &mut lines[row];
                match (last, n) {
                    ('A', n) => row = row.saturating_sub(n.unwrap_or(1).max(1)),
                    ('B', n) => row += n.unwrap_or(1).max(1),
                    ('C', n) => col += n.unwrap_or(1).max(1),
                    ('D', n) => col = col.saturating_sub(n.unwrap_or(1).max(1)),
                    ('G', n) => col = n.unwrap_or(1).saturating_sub(1),
                    ('K', None | Some(0)) => line.truncate(col),
                    ('K', Some(1)) => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    ('K', Some(_)) => line.clear(),
                    ('J', None | Some(0)) => {
                        line.truncate(col);
                        lines.truncate(row + 1);
                    }
                    ('J', Some(_)) => lines.iter_mut().for_each(Vec::clear),
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                if col >= COLUMNS {
                    row += 1;
                    col = 0;
                    if lines.len() <= row {
                        lines.resize(row + 1, Vec::new());
                    }
                }
                let line = &mut lines[row];
                if line.len() <= col {
                    line.resize(col, ' ');
                    line.push(c);
                } else {
                    line[col] = c;
                }
                col += 1;
            }
        }
        if lines.len() <= row {
            lines.resize(row + 1, Vec::new());
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}
