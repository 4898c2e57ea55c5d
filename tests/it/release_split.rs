//! Releases split across runners and unchanged images kept, against the real registry
//! (`docker-registry`): three runners push a workspace's members by digest, each with
//! a fresh cache, and a final job moves the tags having uploaded nothing; a member
//! missing from the runners' records stops the release before any tag; with
//! `[workspace] keep_unchanged`, a one-file change in one member makes one new image
//! and `hoist verify` rebuilds a kept one from the commit it names.

use serde_json::Value;

use crate::common::{Sandbox, parse_json, stdout};
use crate::proxy::{FaultPlan, FaultProxy};
use crate::registry::{HOIST_LIMIT, Registry, fails, ok};
use crate::release::{Repo, digest_at, labels_at};
use crate::workspace::{tags_of, workspace_repo};

const MEMBERS: [&str; 3] = ["api", "web", "worker"];
const PASSWORD: &str = "split runners";

/// The workspace of `tests/it/workspace.rs` (three members sharing a layer, version
/// 0.1.0), its images named in `registry`; `extra` goes into `[workspace]`.
fn split_repo<'a>(sandbox: &'a Sandbox, registry: &Registry, extra: &str) -> Repo<'a> {
    let repo = workspace_repo(sandbox, &[registry.host()]);
    if !extra.is_empty() {
        let root = repo.read("hoist.toml");
        repo.write(
            "hoist.toml",
            &root.replacen("[workspace]\n", &format!("[workspace]\n{extra}\n"), 1),
        );
        repo.git(&["commit", "--quiet", "-am", "Keep unchanged images"]);
    }
    repo
}

/// `hoist release ARGS --json` in the repository with the cache `cache`.
fn release_with(repo: &Repo, registry: &Registry, cache: &str, args: &[&str]) -> Value {
    let mut command = repo.hoist(&["release", "--json", "--cache-dir"]);
    command
        .env("HOIST_KEY_PASSWORD", PASSWORD)
        .arg(repo.sandbox.path(cache))
        .args(args);
    parse_json(&stdout(&ok(&mut command, registry)))
}

/// Each member's digest in a release's `--json` document.
fn digests(document: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = document["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

/// No member's repository has a tag.
fn assert_no_tags(registry: &Registry) {
    for member in MEMBERS {
        assert_eq!(
            tags_of(registry, &format!("acme/{member}")),
            Vec::<String>::new(),
            "{member}: no tag moved"
        );
    }
}

/// `--from FILE` for each of `files`.
fn from_args(files: &[String]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["--from".to_string(), f.clone()])
        .collect()
}

/// Three runners, each releasing one member by digest with a fresh cache (and
/// `extra` flags); answers the metadata files, in member order.
fn three_runners(repo: &Repo, registry: &Registry, extra: &[&str]) -> Vec<String> {
    runners_of(repo, registry, "1.0.0", extra)
}

/// [`three_runners`] releasing `version`.
fn runners_of(repo: &Repo, registry: &Registry, version: &str, extra: &[&str]) -> Vec<String> {
    MEMBERS
        .iter()
        .enumerate()
        .map(|(n, member)| {
            let file = repo.sandbox.path(&format!("r{n}-{version}.json"));
            let file = file.to_str().unwrap().to_string();
            let part = release_with(
                repo,
                registry,
                &format!("cache-runner-{n}-{version}"),
                &[
                    version,
                    "--no-git",
                    "-p",
                    member,
                    "--by-digest",
                    "--metadata-file",
                    &file,
                ]
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>(),
            );
            assert_eq!(part["by_digest"], true, "{part:#}");
            let pushed = &part["images"][0]["pushes"][0]["report"];
            assert_eq!(pushed["tags"], serde_json::json!([]), "{part:#}");
            file
        })
        .collect()
}

#[test]
fn a_release_split_over_three_runners_equals_the_one_runner_release() {
    let sandbox = Sandbox::new();
    // The one-runner release, in a registry of its own.
    let single = Registry::start();
    let repo = split_repo(&sandbox, &single, "");
    let one = release_with(&repo, &single, "cache-one", &["1.0.0", "--no-git"]);
    let expected = digests(&one);
    assert_eq!(expected.len(), 3, "{one:#}");

    // The same checkout, its members now named in another registry.
    let registry = Registry::start();
    let moved = Repo { sandbox: &sandbox };
    for member in MEMBERS {
        let path = format!("services/{member}/hoist.toml");
        let text = moved.read(&path).replace(&single.host(), &registry.host());
        moved.write(&path, &text);
    }
    let mut generate = sandbox.hoist();
    generate
        .args(["key", "generate", "--output-key-prefix", "cosign"])
        .env("HOIST_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    crate::common::success(&mut generate);
    let key = sandbox.path("cosign.key");
    let files = three_runners(&repo, &registry, &["--sign-key", key.to_str().unwrap()]);
    assert_no_tags(&registry);

    let before = registry.requests().len();
    let mut args = vec!["1.0.0", "--no-git"];
    for file in &files {
        args.extend(["--from", file.as_str()]);
    }
    let last = release_with(&repo, &registry, "cache-final", &args);
    let requests: Vec<_> = registry.requests().into_iter().skip(before).collect();
    let uploads: Vec<_> = requests
        .iter()
        .filter(|r| r.route().contains("/blobs/") && (r.method == "POST" || r.method == "PUT"))
        .collect();
    assert!(
        uploads.is_empty(),
        "the final job uploads nothing: {uploads:#?}"
    );
    let puts: Vec<&str> = requests.iter().filter_map(|r| r.manifest_put()).collect();
    assert_eq!(puts.len(), 9, "three tags of three members: {puts:?}");
    assert!(
        puts.iter()
            .all(|reference| !reference.starts_with("sha256:")),
        "only tags are put: {puts:?}"
    );

    assert_eq!(digests(&last), expected, "{last:#}");
    for (member, digest) in &expected {
        let repository = format!("acme/{member}");
        assert_eq!(tags_of(&registry, &repository), ["1.0", "1.0.0", "latest"]);
        for tag in ["1.0.0", "1.0", "latest"] {
            assert_eq!(
                &digest_at(&registry, &format!("{repository}:{tag}")),
                digest,
                "{member}:{tag}"
            );
        }
        // Signed by its runner: the tag names a signed image.
        let mut verify = sandbox.hoist();
        verify
            .arg("verify")
            .arg(registry.reference(&format!("{repository}:1.0.0")))
            .arg("--key")
            .arg(sandbox.path("cosign.pub"))
            .arg("--signature-only")
            .arg("--cache-dir")
            .arg(sandbox.path("cache-verify"));
        ok(&mut verify, &registry);
    }

    // A released version never changes, split or not: another api pushed as 1.0.0 by
    // a runner is refused by the final job before any tag moves.
    repo.write("services/api/app/main.py", "print('api, again')\n");
    let again = repo.sandbox.path("again.json");
    let again = again.to_str().unwrap();
    let part = release_with(
        &repo,
        &registry,
        "cache-again",
        &[
            "1.0.0",
            "--no-git",
            "-p",
            "api",
            "--by-digest",
            "--metadata-file",
            again,
        ],
    );
    let other = part["images"][0]["digest"].as_str().unwrap().to_string();
    assert_ne!(other, expected[0].1);
    let mut command = repo.hoist(&["release", "1.0.0", "--no-git", "--cache-dir"]);
    command
        .arg(sandbox.path("cache-final"))
        .args(["--from", again, "--from", &files[1], "--from", &files[2]]);
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains("no tag was moved") && err.contains(&expected[0].1),
        "{err}"
    );
    for (member, digest) in &expected {
        let repository = format!("acme/{member}");
        assert_eq!(
            &digest_at(&registry, &format!("{repository}:latest")),
            digest
        );
    }
}

#[test]
fn a_member_missing_from_the_records_stops_the_release_before_any_tag() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = split_repo(&sandbox, &registry, "");
    // A part without --no-git, or a final job picking members, is refused by the flags.
    for args in [
        &["release", "1.0.0", "--by-digest"][..],
        &[
            "release", "1.0.0", "--no-git", "--from", "r.json", "-p", "api",
        ][..],
    ] {
        let output = repo.hoist(args).assert().code(2).get_output().clone();
        let err = crate::common::stderr(&output);
        assert!(
            err.contains("--no-git") || err.contains("--package"),
            "{err}"
        );
    }
    let files = three_runners(&repo, &registry, &[]);

    let mut command = repo.hoist(&["release", "1.0.0", "--no-git", "--cache-dir"]);
    command
        .arg(sandbox.path("cache-final"))
        .args(["--from", &files[0], "--from", &files[1]]);
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains("no --from file pushed worker") && err.contains("no tag was moved"),
        "{err}"
    );
    assert_no_tags(&registry);

    // A record of another version is refused, naming its file.
    let mut command = repo.hoist(&["release", "1.0.1", "--no-git", "--cache-dir"]);
    command.arg(sandbox.path("cache-final")).args([
        "--from", &files[0], "--from", &files[1], "--from", &files[2],
    ]);
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains(&files[0]) && err.contains("released v1.0.0, not v1.0.1"),
        "{err}"
    );

    // The whole set releases 1.0.0; then a split 0.9.0 (a backport) gets its own tags
    // and leaves latest on 1.0.0: rolling tags only move forward.
    let mut args = vec!["1.0.0".to_string(), "--no-git".to_string()];
    args.extend(from_args(&files));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let current = digests(&release_with(&repo, &registry, "cache-final", &args));
    crate::common::success(&mut repo.hoist(&["version", "set", "0.8.0"]));
    let backport = runners_of(&repo, &registry, "0.9.0", &[]);
    let mut args = vec!["0.9.0".to_string(), "--no-git".to_string()];
    args.extend(from_args(&backport));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let old = release_with(&repo, &registry, "cache-final", &args);
    for (member, digest) in &current {
        let repository = format!("acme/{member}");
        assert_eq!(
            tags_of(&registry, &repository),
            ["0.9", "0.9.0", "1.0", "1.0.0", "latest"]
        );
        assert_eq!(
            &digest_at(&registry, &format!("{repository}:latest")),
            digest
        );
    }
    let kept = &old["images"][0]["pushes"][0]["kept"];
    assert_eq!(
        kept,
        &serde_json::json!([{"tag": "latest", "version": "1.0.0"}]),
        "{old:#}"
    );
}

#[test]
fn keep_unchanged_makes_one_new_image_for_a_one_file_change() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let repo = split_repo(&sandbox, &registry, "keep_unchanged = true");
    // 1.0.0 → 1.1.0 with a release commit, then a change in api only, then 1.2.0.
    let first = release_with(&repo, &registry, "cache", &["1.1.0"]);
    let first_commit = repo.git(&["rev-parse", "HEAD"]);
    let before = digests(&first);
    repo.write("services/api/app/main.py", "print('api, changed')\n");
    repo.git(&["commit", "--quiet", "-am", "Change api"]);
    let second = release_with(&repo, &registry, "cache", &["1.2.0"]);
    let after = digests(&second);

    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(changed, ["api"], "{second:#}");
    assert_eq!(
        second["unchanged"],
        serde_json::json!([
            {"name": "web", "version": "1.1.0"},
            {"name": "worker", "version": "1.1.0"}
        ])
    );
    for (member, digest) in &after {
        let repository = format!("acme/{member}");
        assert_eq!(
            &digest_at(&registry, &format!("{repository}:1.2.0")),
            digest
        );
        assert_eq!(
            &digest_at(&registry, &format!("{repository}:latest")),
            digest
        );
        let labels = labels_at(&registry, &repository, digest);
        let (version, revision) = if member == "api" {
            ("1.2.0", repo.git(&["rev-parse", "HEAD"]))
        } else {
            ("1.1.0", first_commit.clone())
        };
        assert_eq!(
            labels["org.opencontainers.image.version"], version,
            "{member}"
        );
        assert_eq!(
            labels["org.opencontainers.image.revision"], revision,
            "{member}: the commit its content last changed in"
        );
    }

    // A kept image is rebuilt from the commit it names, and matches.
    let image = format!("{}:1.2.0", registry.reference("acme/web"));
    let mut command = repo.hoist(&["verify", &image, "-p", "web", "--json", "--cache-dir"]);
    command.arg(sandbox.path("cache-verify"));
    let verdict = stdout(&ok(&mut command, &registry));
    assert!(verdict.contains("\"verified\": true"), "{verdict}");
}

/// The final job asks the registry through the scheduler: every member's image and
/// tags read at once, at most `--registry-jobs` requests in flight (counted by the
/// fault proxy, one request per connection), every tag moved together; it uploads
/// nothing; and a member whose image is not in the registry stops it before any tag
/// moves, naming the member and its record.
#[test]
fn the_final_job_asks_at_once_within_registry_jobs_and_uploads_nothing() {
    let sandbox = Sandbox::new();
    let registry = Registry::start();
    let proxy = FaultProxy::start(crate::faults::upstream(&registry), FaultPlan::new());
    let repo = workspace_repo(&sandbox, &[proxy.host()]);
    let files = three_runners(&repo, &registry, &[]);

    // worker's record names an image nobody pushed.
    let text = std::fs::read_to_string(&files[2]).unwrap();
    let record = parse_json(&text);
    let digest = record["images"][0]["digest"].as_str().unwrap();
    let absent = format!("sha256:{}", "0".repeat(64));
    let forged = sandbox.path("forged.json");
    std::fs::write(&forged, text.replace(digest, &absent)).unwrap();
    let mut files_forged = files[..2].to_vec();
    files_forged.push(forged.to_str().unwrap().to_string());
    let mut command = repo.hoist(&["release", "1.0.0", "--no-git", "--cache-dir"]);
    command
        .arg(sandbox.path("cache-final"))
        .args(from_args(&files_forged));
    let err = fails(&mut command, HOIST_LIMIT);
    assert!(
        err.contains("worker") && err.contains(&absent) && err.contains("no tag was moved"),
        "{err}"
    );
    assert_no_tags(&registry);

    let start = proxy.exchanges().len();
    let mut args = vec!["1.0.0".to_string(), "--no-git".to_string()];
    args.extend(["--registry-jobs".to_string(), "3".to_string()]);
    args.extend(from_args(&files));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    release_with(&repo, &registry, "cache-final", &args);
    let exchanges = proxy.exchanges().split_off(start);
    let most = crate::schedule::most_at_once(&exchanges);
    assert!(
        (1..=3).contains(&most),
        "{most} requests at once with --registry-jobs 3: {exchanges:#?}"
    );
    // Not one member after the other: some member's request was sent while another
    // member's was in flight.
    assert!(
        members_asked_at_once(&exchanges),
        "each member's requests waited for the previous member's: {exchanges:#?}"
    );
    assert!(
        !exchanges
            .iter()
            .any(|e| e.route().contains("/blobs/uploads/")),
        "the final job uploads nothing: {exchanges:#?}"
    );
    for member in MEMBERS {
        assert_eq!(
            tags_of(&registry, &format!("acme/{member}")),
            ["1.0", "1.0.0", "latest"]
        );
    }
}

/// Whether two requests about different repositories were in flight at once (each
/// from its head's arrival at the proxy until the proxy began its answer).
fn members_asked_at_once(exchanges: &[crate::proxy::Exchange]) -> bool {
    let repository = |e: &crate::proxy::Exchange| {
        e.route()
            .strip_prefix("/v2/")
            .and_then(|rest| {
                rest.split_once("/manifests/")
                    .or(rest.split_once("/blobs/"))
            })
            .map(|(repo, _)| repo.to_string())
    };
    exchanges.iter().enumerate().any(|(i, a)| {
        exchanges[i + 1..].iter().any(|b| {
            let (Some(ra), Some(rb)) = (repository(a), repository(b)) else {
                return false;
            };
            let (a_end, b_end) = (a.answering.unwrap(), b.answering.unwrap());
            ra != rb && a.at < b_end && b.at < a_end
        })
    })
}
