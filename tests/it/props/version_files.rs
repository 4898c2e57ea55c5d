//! Version-file edits: a bump of a generated pyproject.toml, Cargo.toml, package.json,
//! version.py, Chart.yaml, pattern file (values.yaml) or VERSION file finds the version
//! where it was put, and the bumped text is the
//! original with only the version's bytes replaced: every other byte (comments, other
//! `version` keys, quoting, spacing, line endings) is identical.

use std::fmt::Write as _;
use std::path::Path;

use hoist::release::bump::{Bump, PreLabel, bump};
use hoist::release::version_file::{FileKind, VersionFile, VersionPattern};
use proptest::prelude::*;
use semver::Version;

use super::cases;

/// A SemVer 2.0.0 version, pre-release and build metadata included, with numbers up
/// to u64::MAX.
fn version() -> impl Strategy<Value = Version> {
    let number = prop_oneof![4 => 0u64..100, 1 => any::<u64>()];
    let identifier = prop_oneof!["0|[1-9][0-9]{0,4}", "[A-Za-z-][0-9A-Za-z-]{0,6}"];
    let identifiers = || prop::collection::vec(identifier.clone(), 1..4);
    (
        number.clone(),
        number.clone(),
        number,
        proptest::option::of(identifiers()),
        proptest::option::of(prop::collection::vec("[0-9A-Za-z-]{1,6}", 1..3)),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = pre {
                text = format!("{text}-{}", pre.join("."));
            }
            if let Some(build) = build {
                text = format!("{text}+{}", build.join("."));
            }
            Version::parse(&text).unwrap_or_else(|e| panic!("generated {text:?}: {e}"))
        })
}

fn bump_kind() -> impl Strategy<Value = Bump> {
    prop_oneof![
        Just(Bump::Major),
        Just(Bump::Minor),
        Just(Bump::Patch),
        Just(Bump::Pre(PreLabel::Alpha)),
        Just(Bump::Pre(PreLabel::Beta)),
        Just(Bump::Pre(PreLabel::Rc)),
        Just(Bump::Release),
    ]
}

/// Text a TOML comment may hold (no control characters but tab).
fn comment_text() -> impl Strategy<Value = String> {
    "[\t -~\u{a0}-\u{2fff}]{0,24}"
}

/// A TOML value, written as a user might: strings of each quoting (escapes
/// included), numbers, booleans, arrays, inline tables, dates.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[ -!#-\\[\\]-~\u{a0}-\u{2fff}]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[ -&(-~]{0,12}".prop_map(|s| format!("'{s}'")),
        Just(r#""escaped \" \\ \u00e9 \t version = \"9.9.9\"""#.to_owned()),
        Just("\"\"\"\nmulti\nline \"\"\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("3.25e-2".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner, 0..3).prop_map(|v| {
                let pairs: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, value)| format!("k{i} = {value}"))
                    .collect();
                format!("{{ {} }}", pairs.join(", "))
            }),
        ]
    })
}

/// Lines of a TOML table body: `key = value` (unique keys, `version` among the
/// candidates where `version_key_ok`), comments and blank lines.
fn toml_lines(prefix: &'static str, version_key_ok: bool) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        3 => (toml_value(), proptest::option::of(comment_text())).prop_map(|(v, c)| (Some(v), c)),
        1 => comment_text().prop_map(|c| (None, Some(c))),
        1 => Just((None, None)),
    ];
    (prop::collection::vec(line, 0..5), any::<bool>()).prop_map(move |(lines, crlf)| {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        for (i, (value, comment)) in lines.into_iter().enumerate() {
            if let Some(value) = value {
                let key = if version_key_ok && i == 0 {
                    "version".to_owned()
                } else {
                    format!("{prefix}{i}")
                };
                let _ = write!(out, "{key} = {value}");
                if let Some(comment) = &comment {
                    let _ = write!(out, "  # {comment}");
                }
            } else if let Some(comment) = comment {
                let _ = write!(out, "# {comment}");
            }
            out.push_str(newline);
        }
        out
    })
}

/// How the version line is written: key spelling, spacing, quotes, a trailing comment.
fn version_line() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![Just("version"), Just("\"version\""), Just("'version'")],
        "[ \t]{0,3}",
        "[ \t]{0,3}",
        prop_oneof![Just("\""), Just("'"), Just("\"\"\""), Just("'''")],
        proptest::option::of(comment_text()),
    )
        .prop_map(|(key, before_eq, after_eq, quote, comment)| {
            let before = format!("{key}{before_eq}={after_eq}{quote}");
            let after = match comment {
                Some(comment) => format!("{quote} # {comment}\n"),
                None => format!("{quote}\n"),
            };
            (before, after)
        })
}

/// A pyproject.toml or Cargo.toml: `(name, text before the version, text after)`.
fn toml_file() -> impl Strategy<Value = (&'static str, String, String)> {
    let layout = prop_oneof![
        Just(("pyproject.toml", "[project]", "")),
        Just(("pyproject.toml", "[tool.poetry]", "")),
        Just(("Cargo.toml", "[package]", "")),
        Just(("Cargo.toml", "[workspace.package]", "")),
        // A member inheriting its version: the workspace's is the one to bump.
        Just((
            "Cargo.toml",
            "[workspace.package]",
            "[package]\nname = \"member\"\nversion.workspace = true\n"
        )),
    ];
    (
        layout,
        toml_lines("top", false),
        toml_lines("other", true),
        toml_lines("before", false),
        version_line(),
        toml_lines("after", false),
        toml_lines("later", true),
    )
        .prop_map(
            |((name, table, member), top, other, before, (open, close), after, later)| {
                let head = format!("{top}{member}[other-table]\n{other}{table}\n{before}{open}");
                let tail = format!("{close}{after}[later-table]\n{later}");
                (name, head, tail)
            },
        )
}

/// A JSON value with the characters JSON files hold (escapes, nesting, nested
/// `"version"` keys).
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[ -!#-\\[\\]-~\u{a0}-\u{2fff}]{0,10}".prop_map(|s| format!("\"{s}\"")),
        Just(r#""\"quoted\" \\ \u00e9 \n \/""#.to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-1.5e300".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((inner, any::<bool>()), 0..4).prop_map(|v| {
                let members: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, (value, named_version))| {
                        let key = if *named_version {
                            "version".to_owned()
                        } else {
                            format!("k{i}")
                        };
                        format!("\"{key}\": {value}")
                    })
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    })
}

/// JSON white space between tokens.
fn json_space() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,3}"
}

/// A package.json: `(name, text before the version, text after)`.
fn json_file() -> impl Strategy<Value = (&'static str, String, String)> {
    let member = || (json_space(), json_value(), json_space());
    (
        prop::collection::vec(member(), 0..4),
        json_space(),
        json_space(),
        prop::collection::vec(member(), 0..4),
        json_space(),
    )
        .prop_map(|(before, s1, s2, after, end)| {
            let mut head = String::from("{");
            for (i, (a, value, b)) in before.iter().enumerate() {
                let _ = write!(head, "{a}\"b{i}\"{b}:{value},");
            }
            let _ = write!(head, "{s1}\"version\"{s2}:{s1}\"");
            let mut tail = String::from("\"");
            for (i, (a, value, b)) in after.iter().enumerate() {
                let _ = write!(tail, ",{a}\"a{i}\":{b}{value}");
            }
            let _ = write!(tail, "{end}}}{end}");
            ("package.json", head, tail)
        })
}

/// A VERSION file: `(name, text before the version, text after)`.
fn plain_file() -> impl Strategy<Value = (&'static str, String, String)> {
    (
        "[ \t\n\r]{0,4}",
        "[ \t]{0,3}",
        prop_oneof![
            Just(""),
            Just("\n"),
            Just("\r\n"),
            Just("\n\n"),
            Just("\n \t\n")
        ],
    )
        .prop_map(|(before, spaces, end)| ("VERSION", before, format!("{spaces}{end}")))
}

/// Python source lines that hold no module-level assignment to `__version__` (but
/// mention it in docstrings, comments, calls and function bodies).
fn python_lines() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[ -&(-\\[\\]-~]{0,12}".prop_map(|s| format!("x = '{s}'")),
        comment_text().prop_map(|c| format!("# {c} __version__ = '0.0.0'")),
        Just("\"\"\"Docs.\n__version__ = \"9.9.9\"\n\"\"\"".to_owned()),
        Just("s = 'it\\'s # __version__ = \"0\"'".to_owned()),
        Just("f(\n__version__ = 3,\n)".to_owned()),
        Just("def version():\n    return __version__".to_owned()),
        Just("__version_info__ = (1, 2, 3)".to_owned()),
        Just("assert __version__ == \"1.0.0\" or True".to_owned()),
        Just(String::new()),
    ];
    (prop::collection::vec(line, 0..5), any::<bool>()).prop_map(|(lines, crlf)| {
        let newline = if crlf { "\r\n" } else { "\n" };
        join_lines(&lines, newline)
    })
}

/// Each line (which may hold `\n`s of its own) ended by `newline`, all newlines
/// written as `newline`.
fn join_lines(lines: &[String], newline: &str) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.replace('\n', newline));
        out.push_str(newline);
    }
    out
}

/// A version.py: `(name, text before the version, text after)`.
fn python_file() -> impl Strategy<Value = (&'static str, String, String)> {
    (
        python_lines(),
        prop_oneof![Just(""), Just(": str"), Just(" : 'str'")],
        "[ \t]{0,2}",
        "[ \t]{0,2}",
        prop_oneof![Just("\""), Just("'"), Just("u'")],
        proptest::option::of(comment_text()),
        python_lines(),
    )
        .prop_map(|(before, annotation, s1, s2, open, comment, after)| {
            let quote = &open[open.len() - 1..];
            let head = format!("{before}__version__{annotation}{s1}={s2}{open}");
            let comment = comment.map(|c| format!("  # {c}")).unwrap_or_default();
            ("version.py", head, format!("{quote}{comment}\n{after}"))
        })
}

/// Top-level YAML lines of a Chart.yaml without a top-level `appVersion` (nested ones,
/// and ones inside block scalars, are there).
fn chart_lines(prefix: &'static str) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[a-z0-9 .-]{0,10}".prop_map(|v| format!("KEY: {v}")),
        comment_text().prop_map(|c| format!("# {c}")),
        Just("KEY:\n  appVersion: 9.9.9\n  version: \"1.0.0\"".to_owned()),
        Just("KEY: |\n  appVersion: 8.8.8\n\n  more".to_owned()),
        Just("KEY:\n  - name: db\n    appVersion: '7.7.7'".to_owned()),
        Just(String::new()),
    ];
    (prop::collection::vec(line, 0..5), any::<bool>()).prop_map(move |(lines, crlf)| {
        let newline = if crlf { "\r\n" } else { "\n" };
        let lines: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| l.replace("KEY", &format!("{prefix}{i}")))
            .collect();
        join_lines(&lines, newline)
    })
}

/// A Chart.yaml: `(name, text before the version, text after)`.
fn chart_file() -> impl Strategy<Value = (&'static str, String, String)> {
    (
        chart_lines("before"),
        prop_oneof![
            Just("appVersion"),
            Just("\"appVersion\""),
            Just("'appVersion'")
        ],
        "[ \t]{0,2}",
        "[ \t]{1,3}",
        prop_oneof![Just("\""), Just("'"), Just("")],
        proptest::option::of(comment_text()),
        chart_lines("after"),
    )
        .prop_map(|(before, key, s1, s2, quote, comment, after)| {
            let head = format!("{before}{key}{s1}:{s2}{quote}");
            let comment = comment.map(|c| format!(" # {c}")).unwrap_or_default();
            ("Chart.yaml", head, format!("{quote}{comment}\n{after}"))
        })
}

/// The pattern the values.yaml files are read with.
const VALUES_PATTERN: &str = r#"tag: "(?P<version>[^"]+)""#;

/// A values.yaml read through [`VALUES_PATTERN`]: look-alike lines around the one
/// match (`tag: 1.0.0` unquoted, `version: "…"`).
fn values_file() -> impl Strategy<Value = (&'static str, String, String)> {
    let lines = || {
        let line = prop_oneof![
            "[a-z]{1,8}: [a-z0-9.]{0,8}",
            Just("  tag: 1.0.0".to_owned()),
            Just("  version: \"1.2.3\"".to_owned()),
            comment_text().prop_map(|c| format!("# {}", c.replace('"', ""))),
        ];
        (prop::collection::vec(line, 0..5), any::<bool>()).prop_map(|(lines, crlf)| {
            let newline = if crlf { "\r\n" } else { "\n" };
            join_lines(&lines, newline)
        })
    };
    (lines(), "[ ]{0,4}", lines()).prop_map(|(before, indent, after)| {
        (
            "values.yaml",
            format!("{before}{indent}tag: \""),
            format!("\"\n{after}"),
        )
    })
}

/// The kind a generated file is read as: by its name, or (values.yaml) its pattern.
fn kind_of(name: &str) -> FileKind {
    if name == "values.yaml" {
        FileKind::Pattern(VersionPattern::new(VALUES_PATTERN).expect("a valid pattern"))
    } else {
        FileKind::detect(Path::new(name)).expect("a known kind")
    }
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn a_bump_changes_only_the_version_bytes(
        (name, head, tail) in prop_oneof![
            toml_file(),
            json_file(),
            plain_file(),
            python_file(),
            chart_file(),
            values_file(),
        ],
        old in version(),
        how in bump_kind(),
    ) {
        let text = format!("{head}{old}{tail}");
        let path = Path::new(name);
        let kind = kind_of(name);
        let file = VersionFile::parse(path, kind.clone(), text.clone());
        prop_assert!(file.is_ok(), "{name} refused: {:?}\n{text}", file.err());
        let file = file.unwrap();
        prop_assert_eq!(&file.version, &old, "{}:\n{}", name, text);
        prop_assert_eq!(file.line, head.matches('\n').count() + 1, "{}:\n{}", name, text);
        // A bump can fail (u64 overflow, no pre-release to release): nothing to write.
        let Ok(new) = bump(&old, how) else {
            return Ok(());
        };
        let rendered = file.render(&new);
        prop_assert_eq!(&rendered, &format!("{head}{new}{tail}"));
        let again = VersionFile::parse(path, kind, rendered).map(|f| f.version);
        prop_assert_eq!(again.ok(), Some(new));
    }
}
