//! Tag rules → image tags, with docker/metadata-action's semantics.
//!
//! A rule is a template: `{version}` (`1.2.3`, `1.2.4-rc.1`), `{major}`, `{minor}`,
//! `{patch}`, `{sha}` (the full commit), `{sha7}` (its first 7 characters),
//! `{branch}` (sanitised), or a literal word (`edge`, `staging`). `latest` is special:
//! whether it is emitted is decided by [`Latest`].
//!
//! - A **pre-release** gets only the rules that do not name `{major}`, `{minor}` or
//!   `{patch}` without `{version}`: `1.2.4-rc.1` gets `1.2.4-rc.1`, never `1.2`, `1` or
//!   `latest` (a release candidate must not replace what users pull), as metadata-action
//!   does for `type=semver`.
//! - **0.x** versions get `{major}` = `0`, as metadata-action emits it (its README shows
//!   how to switch it off); whoever does not want `0` leaves `{major}` out of the rules.
//! - **latest** with `auto`: only for a stable version released from the default branch
//!   (a backport from a maintenance branch must not steal `latest`); `true`: always;
//!   `false`: never.
//!
//! Tags come out in rule order, each once, every one a valid tag (a tag longer than 128
//! characters is cut, as metadata-action does).

use semver::Version;

use super::{ReleaseError, Result};
use crate::oci::location::is_valid_tag;

/// The default rules.
pub const DEFAULT_RULES: &[&str] = &["{version}", "{major}.{minor}", "{major}", "latest"];

/// The longest tag the distribution spec allows.
const MAX_TAG: usize = 128;

/// When the `latest` tag is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Latest {
    /// For stable versions from the default branch, when a rule asks for it.
    #[default]
    Auto,
    /// Always (even without a `latest` rule).
    Always,
    /// Never (even with a `latest` rule).
    Never,
}

/// What the rules are filled in from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagContext {
    /// The version being tagged.
    pub version: Option<Version>,
    /// The commit (full hex).
    pub sha: Option<String>,
    /// The branch (as git names it; sanitised here).
    pub branch: Option<String>,
    /// The repository's default branch.
    pub default_branch: Option<String>,
}

/// The tags `rules` yield in `context`.
pub fn compute(rules: &[String], latest: Latest, context: &TagContext) -> Result<Vec<String>> {
    let pre_release = context.version.as_ref().is_some_and(|v| !v.pre.is_empty());
    let mut tags: Vec<String> = Vec::new();
    let mut push = |tag: String| {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    };
    for rule in rules {
        if rule == "latest" {
            if latest == Latest::Auto && latest_auto(context) {
                push("latest".into());
            }
            continue;
        }
        let names_parts = ["{major}", "{minor}", "{patch}"]
            .iter()
            .any(|p| rule.contains(p));
        if pre_release && names_parts && !rule.contains("{version}") {
            continue;
        }
        push(fill(rule, context)?);
    }
    if latest == Latest::Always {
        push("latest".into());
    }
    Ok(tags)
}

/// Whether a `latest` rule gave no tag only because the branch is unknown (a detached
/// HEAD, as CI checks out, without `--branch`): then it is worth saying so, and how to
/// get it, rather than leaving `latest` out silently.
pub fn latest_left_out(rules: &[String], latest: Latest, context: &TagContext) -> bool {
    let stable = context.version.as_ref().is_some_and(|v| v.pre.is_empty());
    latest == Latest::Auto
        && rules.iter().any(|r| r == "latest")
        && stable
        && context.branch.is_none()
}

/// What to tell a user whose `latest` was left out for a detached HEAD.
pub const LATEST_LEFT_OUT: &str = "note: `latest` was left out: HEAD is detached and no --branch was given, so hoist cannot tell whether this is the default branch; pass --branch (e.g. --branch \"$GITHUB_REF_NAME\" or --branch \"$CI_COMMIT_BRANCH\") to get it";

/// `latest = "auto"`: a stable version, on the default branch.
fn latest_auto(context: &TagContext) -> bool {
    let stable = context.version.as_ref().is_some_and(|v| v.pre.is_empty());
    let on_default = match (&context.branch, &context.default_branch) {
        (Some(branch), Some(default)) => branch == default,
        _ => false,
    };
    stable && on_default
}

/// One rule with its placeholders filled in.
fn fill(rule: &str, context: &TagContext) -> Result<String> {
    let fail = |message: String| ReleaseError::TagRule {
        rule: rule.to_string(),
        message,
    };
    let mut out = String::new();
    let mut rest = rule;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| fail("a `{` is not closed".into()))?
            + open;
        let name = &rest[open + 1..close];
        let version = || {
            context.version.as_ref().ok_or_else(|| {
                fail(format!(
                    "{{{name}}} needs a version ([version] in hoist.toml)"
                ))
            })
        };
        let sha = || {
            context.sha.as_deref().ok_or_else(|| {
                fail(format!(
                    "{{{name}}} needs the commit: not a git checkout? pass --sha"
                ))
            })
        };
        match name {
            "version" => out.push_str(&version()?.to_string()),
            "major" => out.push_str(&version()?.major.to_string()),
            "minor" => out.push_str(&version()?.minor.to_string()),
            "patch" => out.push_str(&version()?.patch.to_string()),
            "sha" => out.push_str(sha()?),
            "sha7" => out.push_str(&sha()?.chars().take(7).collect::<String>()),
            "branch" => {
                let branch = context.branch.as_deref().ok_or_else(|| {
                    fail("{branch} needs the branch: HEAD is detached; pass --branch".into())
                })?;
                out.push_str(&sanitise_branch(branch));
            }
            other => {
                return Err(fail(format!(
                    "unknown placeholder {{{other}}} (known: version, major, minor, patch, sha, sha7, branch)"
                )));
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    let tag: String = out.chars().take(MAX_TAG).collect();
    if !is_valid_tag(&tag) {
        return Err(fail(format!(
            "yields `{tag}`, not a valid tag (letters, digits, `_`, `.`, `-`; not starting with `.` or `-`)"
        )));
    }
    Ok(tag)
}

/// A branch name as a tag: every character a tag cannot hold becomes `-`
/// (`feature/x` → `feature-x`), leading `.` and `-` go, and it is cut to 128.
/// Case is kept: tags may hold upper case, and lowering it could merge two branches.
pub fn sanitise_branch(branch: &str) -> String {
    let replaced: String = branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    replaced
        .trim_start_matches(['.', '-'])
        .chars()
        .take(MAX_TAG)
        .collect()
}

/// Whether the tag a rule produced is one that moves between releases (`latest`,
/// `{major}`, `{major}.{minor}`): those are the ones that must only move forward.
pub fn is_moving_rule(rule: &str) -> bool {
    rule == "latest"
        || (["{major}", "{minor}"].iter().any(|p| rule.contains(p))
            && !["{version}", "{patch}", "{sha}", "{sha7}"]
                .iter()
                .any(|p| rule.contains(p)))
}

/// The tags of `rules` that move (see [`is_moving_rule`]), filled in.
pub fn moving_tags(rules: &[String], latest: Latest, context: &TagContext) -> Result<Vec<String>> {
    let moving: Vec<String> = rules
        .iter()
        .filter(|r| is_moving_rule(r))
        .cloned()
        .collect();
    compute(&moving, latest, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

    fn context(version: &str, branch: Option<&str>) -> TagContext {
        TagContext {
            version: Some(Version::parse(version).unwrap()),
            sha: Some(SHA.into()),
            branch: branch.map(String::from),
            default_branch: Some("main".into()),
        }
    }

    fn rules(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    /// version, branch, rules (empty: the defaults), latest policy, expected tags.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [&'a str],
        Latest,
        &'a [&'a str],
    );

    /// As metadata-action's tests: each case an event (version, branch), the rules
    /// and the tags expected.
    #[test]
    fn tag_rules_table() {
        let default = rules(DEFAULT_RULES);
        let cases: &[Case] = &[
            // Stable, from the default branch.
            (
                "1.2.3",
                Some("main"),
                &[],
                Latest::Auto,
                &["1.2.3", "1.2", "1", "latest"],
            ),
            // 0.x: `{major}` is 0, as metadata-action emits it.
            (
                "0.2.0",
                Some("main"),
                &[],
                Latest::Auto,
                &["0.2.0", "0.2", "0", "latest"],
            ),
            // Pre-releases get only their version.
            (
                "1.2.4-rc.1",
                Some("main"),
                &[],
                Latest::Auto,
                &["1.2.4-rc.1"],
            ),
            (
                "0.1.1-alpha.2",
                Some("main"),
                &[],
                Latest::Auto,
                &["0.1.1-alpha.2"],
            ),
            // latest = auto, off the default branch: no latest.
            (
                "1.1.5",
                Some("release/1.1"),
                &[],
                Latest::Auto,
                &["1.1.5", "1.1", "1"],
            ),
            // Detached HEAD, no --branch: not known to be the default branch.
            ("1.1.5", None, &[], Latest::Auto, &["1.1.5", "1.1", "1"]),
            // latest = true: even off the default branch and for pre-releases.
            (
                "1.1.5",
                Some("release/1.1"),
                &[],
                Latest::Always,
                &["1.1.5", "1.1", "1", "latest"],
            ),
            (
                "2.0.0-rc.1",
                Some("main"),
                &[],
                Latest::Always,
                &["2.0.0-rc.1", "latest"],
            ),
            // latest = false.
            (
                "1.2.3",
                Some("main"),
                &[],
                Latest::Never,
                &["1.2.3", "1.2", "1"],
            ),
            // sha and branch rules, literals; pre-releases keep them.
            (
                "1.2.3",
                Some("feature/Login#2"),
                &["sha-{sha7}", "{branch}-{sha7}", "edge", "{sha}"],
                Latest::Auto,
                &["sha-860c190", "feature-Login-2-860c190", "edge", SHA],
            ),
            (
                "1.3.0-beta.1",
                Some("main"),
                &[
                    "{version}",
                    "{major}.{minor}",
                    "sha-{sha7}",
                    "staging",
                    "latest",
                ],
                Latest::Auto,
                &["1.3.0-beta.1", "sha-860c190", "staging"],
            ),
            // Duplicates collapse; {major}.{minor}.{patch} equals {version} for releases.
            (
                "1.2.3",
                Some("main"),
                &["{version}", "{major}.{minor}.{patch}", "v{version}"],
                Latest::Auto,
                &["1.2.3", "v1.2.3"],
            ),
        ];
        for (version, branch, rule_list, latest, expected) in cases {
            let rules = if rule_list.is_empty() {
                default.clone()
            } else {
                rules(rule_list)
            };
            let got = compute(&rules, *latest, &context(version, *branch))
                .unwrap_or_else(|e| panic!("{version} {branch:?}: {e}"));
            assert_eq!(
                got, *expected,
                "{version} on {branch:?} with {rules:?} ({latest:?})"
            );
        }
    }

    #[test]
    fn branches_become_valid_tags() {
        assert_eq!(sanitise_branch("feature/x"), "feature-x");
        assert_eq!(sanitise_branch("-.fix/ä"), "fix--");
        assert_eq!(
            sanitise_branch("Dependabot/npm/Vite-5.4"),
            "Dependabot-npm-Vite-5.4"
        );
        let long = "b".repeat(300);
        assert_eq!(sanitise_branch(&long).len(), 128);
        let tags = compute(
            &rules(&["{branch}-{sha7}"]),
            Latest::Auto,
            &context("1.0.0", Some(&long)),
        )
        .unwrap();
        assert_eq!(tags[0].len(), 128);
        assert!(is_valid_tag(&tags[0]));
    }

    #[test]
    fn bad_rules_are_named() {
        let cases: &[(&str, TagContext, &str)] = &[
            (
                "{nope}",
                context("1.0.0", Some("main")),
                "unknown placeholder",
            ),
            ("{version", context("1.0.0", Some("main")), "not closed"),
            (
                "-{version}",
                context("1.0.0", Some("main")),
                "not a valid tag",
            ),
            ("{branch}", context("1.0.0", None), "--branch"),
            (
                "{sha7}",
                TagContext {
                    sha: None,
                    ..context("1.0.0", None)
                },
                "--sha",
            ),
            ("{version}", TagContext::default(), "needs a version"),
        ];
        for (rule, context, message) in cases {
            let err = compute(&rules(&[rule]), Latest::Auto, context)
                .unwrap_err()
                .to_string();
            assert!(err.contains(rule) && err.contains(message), "{rule}: {err}");
        }
    }

    #[test]
    fn moving_tags_are_latest_major_and_minor() {
        let got = moving_tags(
            &rules(DEFAULT_RULES),
            Latest::Auto,
            &context("1.2.3", Some("main")),
        )
        .unwrap();
        assert_eq!(got, ["1.2", "1", "latest"]);
        assert!(!is_moving_rule("sha-{sha7}"));
        assert!(!is_moving_rule("{major}.{minor}.{patch}"));
        assert!(is_moving_rule("v{major}"));
    }
}
