//! hoist.toml → plan: documents built from the real keys with arbitrary values (of the
//! right type or not, plausible or not, plus misspelt keys) never make
//! `ConfigFile::parse` or `plan::resolve` panic; a document is refused exactly when it
//! holds a wrong-typed value or an unknown key, and that error names the offending
//! key path; every error of `resolve` names a key path the document has.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use hoist::config::ConfigFile;
use hoist::plan::{Overrides, resolve};
use proptest::prelude::*;
use tempfile::TempDir;

use super::cases;

/// A TOML value as generated.
#[derive(Clone, Debug)]
enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Val>),
    Table(Vec<(String, Val)>),
}

/// A basic TOML string: `"`, `\` and control characters escaped.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Val {
    /// Inline TOML; arrays over several lines when `multiline` (so that an element
    /// is not on its key's line).
    fn render(&self, multiline: bool) -> String {
        match self {
            Val::Str(s) => quote(s),
            Val::Int(n) => n.to_string(),
            Val::Float(f) if f.is_nan() => "nan".into(),
            Val::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.into(),
            Val::Float(f) => format!("{f:?}"),
            Val::Bool(b) => b.to_string(),
            Val::Array(items) => {
                let items: Vec<String> = items.iter().map(|v| v.render(false)).collect();
                if multiline && !items.is_empty() {
                    format!("[\n  {},\n]", items.join(",\n  "))
                } else {
                    format!("[{}]", items.join(", "))
                }
            }
            Val::Table(pairs) => {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{} = {}", quote(k), v.render(false)))
                    .collect();
                format!("{{ {} }}", pairs.join(", "))
            }
        }
    }
}

/// What a key expects.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str(&'static [&'static str]),
    Int {
        min: i64,
        max: i64,
    },
    StrList(&'static [&'static str]),
    StrMap(&'static [&'static str]),
    /// A string or a list of strings (`layer.platform`).
    OneOrMany(&'static [&'static str]),
    /// `true`, `false` or a word (`tags.latest`).
    BoolOrStr,
    /// A file mode: a string, or a number the parser takes and the plan refuses by
    /// key (`layer.mode`).
    Mode(&'static [&'static str]),
    Healthcheck,
}

/// A generated value with the paths in it that a parser must refuse (wrong type,
/// unknown key, missing required key), each with the names an error may give it.
#[derive(Clone, Debug)]
struct Generated {
    value: Val,
    /// `(relative path, names accepted in the message, as relative paths)`.
    offending: Vec<Vec<String>>,
    /// Every relative path in the value (list elements, map entries).
    paths: Vec<String>,
}

impl Generated {
    fn ok(value: Val, paths: Vec<String>) -> Generated {
        Generated {
            value,
            offending: Vec::new(),
            paths,
        }
    }
}

fn plausible(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(samples).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// A value of the wrong type for any key here.
fn wrong_scalar() -> impl Strategy<Value = Val> {
    prop_oneof![
        any::<i64>().prop_map(Val::Int),
        any::<f64>().prop_map(Val::Float),
        any::<bool>().prop_map(Val::Bool),
        Just(Val::Table(vec![("x".into(), Val::Int(1))])),
    ]
}

fn string_list(samples: &'static [&'static str]) -> impl Strategy<Value = Generated> {
    let element = prop_oneof![
        6 => plausible(samples).prop_map(|s| (Val::Str(s), false)),
        1 => wrong_scalar().prop_map(|v| (v, true)),
    ];
    prop::collection::vec(element, 0..4).prop_map(|items| {
        let mut offending = Vec::new();
        let mut paths = Vec::new();
        let mut values = Vec::new();
        for (i, (value, wrong)) in items.into_iter().enumerate() {
            paths.push(format!("[{i}]"));
            if wrong {
                offending.push(vec![format!("[{i}]"), String::new()]);
            }
            values.push(value);
        }
        Generated {
            value: Val::Array(values),
            offending,
            paths,
        }
    })
}

fn string_map(samples: &'static [&'static str]) -> impl Strategy<Value = Generated> {
    let entry = (
        prop_oneof![
            prop::sample::select(samples).prop_map(str::to_owned),
            any::<String>()
        ],
        prop_oneof![
            6 => any::<String>().prop_map(|s| (Val::Str(s), false)),
            1 => wrong_scalar().prop_map(|v| (v, true)),
        ],
    );
    prop::collection::btree_map(entry.0, entry.1, 0..4).prop_map(|map| {
        let mut offending = Vec::new();
        let mut paths = Vec::new();
        let mut pairs = Vec::new();
        for (key, (value, wrong)) in map {
            paths.push(format!(".{key}"));
            if wrong {
                offending.push(vec![format!(".{key}"), String::new()]);
            }
            pairs.push((key, value));
        }
        Generated {
            value: Val::Table(pairs),
            offending,
            paths,
        }
    })
}

const VALID_TESTS: &[&[&str]] = &[&["CMD", "true"], &["CMD-SHELL", "true"], &["NONE"]];

fn healthcheck() -> impl Strategy<Value = Generated> {
    const DURATIONS: &[&str] = &[
        "30s",
        "1m30s",
        "500ms",
        "1.5h",
        "",
        "x",
        "10",
        "99999999999h",
    ];
    (
        proptest::option::of(prop_oneof![
            3 => prop::sample::select(VALID_TESTS)
                .prop_map(|test| Generated::ok(
                    Val::Array(test.iter().map(|s| Val::Str((*s).to_owned())).collect()),
                    (0..test.len()).map(|i| format!("[{i}]")).collect(),
                )),
            1 => string_list(&["CMD", "CMD-SHELL", "NONE", "true"]),
        ]),
        prop::collection::vec(
            (
                prop::sample::select(
                    &["interval", "timeout", "start_period", "start_interval"][..],
                ),
                plausible(DURATIONS),
            ),
            0..3,
        ),
        proptest::option::of(prop_oneof![
            3 => (0i64..10).prop_map(|n| (n, false)),
            1 => any::<i64>().prop_map(|n| (n, !(0..=i64::from(u32::MAX)).contains(&n))),
        ]),
    )
        .prop_map(|(test, durations, retries)| {
            let mut generated = Generated::ok(Val::Table(Vec::new()), Vec::new());
            let mut pairs = Vec::new();
            match test {
                Some(test) => {
                    generated.paths.push(".test".into());
                    for path in &test.paths {
                        generated.paths.push(format!(".test{path}"));
                    }
                    for names in &test.offending {
                        generated
                            .offending
                            .push(names.iter().map(|n| format!(".test{n}")).collect());
                    }
                    pairs.push(("test".to_owned(), test.value));
                }
                // `test` is required: the error may name it or the table.
                None => generated
                    .offending
                    .push(vec![".test".into(), String::new()]),
            }
            let mut seen = BTreeSet::new();
            for (key, duration) in durations {
                if seen.insert(key) {
                    generated.paths.push(format!(".{key}"));
                    pairs.push((key.to_owned(), Val::Str(duration)));
                }
            }
            if let Some((retries, wrong)) = retries {
                generated.paths.push(".retries".into());
                if wrong {
                    generated.offending.push(vec![".retries".into()]);
                }
                pairs.push(("retries".into(), Val::Int(retries)));
            }
            generated.value = Val::Table(pairs);
            generated
        })
}

/// A value for a key of `kind`: usually of the right type, sometimes not.
fn value_of(kind: Kind) -> BoxedStrategy<Generated> {
    let right: BoxedStrategy<Generated> = match kind {
        Kind::Str(samples) => plausible(samples)
            .prop_map(|s| Generated::ok(Val::Str(s), Vec::new()))
            .boxed(),
        Kind::Int { min, max } => prop_oneof![
            3 => (min..=max).prop_map(|n| Generated::ok(Val::Int(n), Vec::new())),
            1 => any::<i64>().prop_map(move |n| Generated {
                value: Val::Int(n),
                offending: if (min..=max).contains(&n) { vec![] } else { vec![vec![String::new()]] },
                paths: Vec::new(),
            }),
        ]
        .boxed(),
        Kind::StrList(samples) => string_list(samples).boxed(),
        Kind::StrMap(samples) => string_map(samples).boxed(),
        Kind::OneOrMany(samples) => prop_oneof![
            plausible(samples).prop_map(|s| Generated::ok(Val::Str(s), Vec::new())),
            // An untagged enum: a bad element fails the whole value.
            string_list(samples).prop_map(|mut g| {
                if !g.offending.is_empty() {
                    g.offending = vec![vec![String::new()]];
                }
                g
            }),
        ]
        .boxed(),
        Kind::BoolOrStr => prop_oneof![
            any::<bool>().prop_map(|b| Generated::ok(Val::Bool(b), Vec::new())),
            plausible(&["auto", "yes", "Auto"])
                .prop_map(|s| Generated::ok(Val::Str(s), Vec::new())),
        ]
        .boxed(),
        Kind::Healthcheck => healthcheck().boxed(),
        Kind::Mode(samples) => prop_oneof![
            plausible(samples).prop_map(|s| Generated::ok(Val::Str(s), Vec::new())),
            any::<i64>().prop_map(|n| Generated::ok(Val::Int(n), Vec::new())),
        ]
        .boxed(),
    };
    let wrong = wrong_scalar().prop_filter_map("a wrong type", move |v| match (kind, &v) {
        (Kind::Int { .. } | Kind::Mode(_), Val::Int(_))
        | (Kind::BoolOrStr, Val::Bool(_))
        | (Kind::StrMap(_) | Kind::Healthcheck, Val::Table(_)) => None,
        _ => Some(Generated {
            value: v,
            offending: vec![vec![String::new()]],
            paths: Vec::new(),
        }),
    });
    prop_oneof![8 => right, 1 => wrong].boxed()
}

const PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64/v8",
    "linux/z80",
    "windows/amd64",
    "",
];

/// The keys of each section, with what they expect.
fn section_keys(section: &str) -> Vec<(&'static str, Kind)> {
    match section {
        "image" => vec![
            ("name", Kind::Str(&["ghcr.io/acme/app", ""])),
            (
                "base",
                Kind::Str(&[
                    "scratch",
                    "oci:base:1.0",
                    "oci-archive:x.tar",
                    "docker-archive:x.tar",
                    "ghcr.io/a/b:1",
                    "Not A Ref",
                    "oci:",
                ]),
            ),
            ("platforms", Kind::StrList(PLATFORMS)),
            ("compression", Kind::Str(&["gzip", "zstd", "lz4"])),
            (
                "compression_level",
                Kind::Int {
                    min: i64::from(i32::MIN),
                    max: i64::from(i32::MAX),
                },
            ),
            ("format", Kind::Str(&["keep", "oci", "docker"])),
            ("tags", Kind::StrList(&["1.0", "latest", "-x", ".x", ""])),
        ],
        "layer" => vec![
            ("from", Kind::Str(&["dist", "missing", "file", "."])),
            ("to", Kind::Str(&["/srv", "srv", "/a/../b", "/"])),
            (
                "exclude",
                Kind::StrList(&["*.map", "node_modules/", "[", ""]),
            ),
            (
                "owner",
                Kind::Str(&["1000:1000", "0", "app", "1:2:3", "4294967296"]),
            ),
            ("modes", Kind::Str(&["keep", "normalize", "normalise", "x"])),
            (
                "mode",
                Kind::Mode(&["0755", "644", "0o4755", "9", "17777", ""]),
            ),
            (
                "remove",
                Kind::StrList(&["/etc/motd", "etc", "/", "/a/../b"]),
            ),
            ("platform", Kind::OneOrMany(PLATFORMS)),
        ],
        "config" => vec![
            ("entrypoint", Kind::StrList(&["python3", ""])),
            ("cmd", Kind::StrList(&["/app/main.py"])),
            ("env", Kind::StrMap(&["PORT", "", "A=B", "PATH"])),
            ("workdir", Kind::Str(&["/app", "app", ""])),
            (
                "user",
                Kind::Str(&["1000", "1000:1000", "a:b", "", ":", "a:b:c"]),
            ),
            (
                "ports",
                Kind::StrList(&["80", "80/tcp", "53/udp", "x", "0", "65536", "80/ip"]),
            ),
            ("volumes", Kind::StrList(&["/data", "data"])),
            (
                "labels",
                Kind::StrMap(&["org.opencontainers.image.title", ""]),
            ),
            (
                "stop_signal",
                Kind::Str(&["SIGTERM", "9", "SIG", "TERM", "256"]),
            ),
            ("healthcheck", Kind::Healthcheck),
        ],
        "version" => vec![
            (
                "source",
                Kind::Str(&["VERSION", "package.json", "hoist.toml"]),
            ),
            ("sync", Kind::StrList(&["Cargo.toml"])),
        ],
        "tags" => vec![
            (
                "rules",
                Kind::StrList(&["{version}", "{major}.{minor}", "latest", "{nope}"]),
            ),
            ("latest", Kind::BoolOrStr),
        ],
        other => unreachable!("no section {other}"),
    }
}

/// One section's body: a subset of its keys, maybe a misspelt one.
fn section_body(section: &'static str) -> impl Strategy<Value = Vec<(String, Generated)>> {
    let keys = section_keys(section);
    let required: &[&str] = if section == "version" {
        &["source"]
    } else {
        &[]
    };
    let values: Vec<_> = keys
        .into_iter()
        .map(|(key, kind)| {
            let wanted = if required.contains(&key) { 0.9 } else { 0.5 };
            proptest::option::weighted(wanted, value_of(kind))
                .prop_map(move |v| v.map(|v| (key.to_string(), v)))
        })
        .collect();
    let typo = proptest::option::weighted(
        0.05,
        prop::sample::select(&["entrypiont", "nmae", "plattform", "Base"][..]),
    );
    (values, typo).prop_map(move |(values, typo)| {
        let mut body: Vec<(String, Generated)> = values.into_iter().flatten().collect();
        for key in required {
            if !body.iter().any(|(k, _)| k == key) {
                body.push((
                    (*key).to_owned(),
                    Generated {
                        value: Val::Table(Vec::new()),
                        offending: vec![vec![String::new()]],
                        paths: Vec::new(),
                    },
                ));
                // Marked absent below: a missing key is rendered as nothing.
                body.last_mut().unwrap().0 = format!("!missing {key}");
            }
        }
        if let Some(typo) = typo {
            body.push((
                typo.to_owned(),
                Generated {
                    value: Val::Str("x".into()),
                    offending: vec![vec![String::new()]],
                    paths: Vec::new(),
                },
            ));
        }
        body
    })
}

/// A whole document: its text, the names an error may give (any one of them for
/// each offending item), and every key path in it.
#[derive(Debug)]
struct Document {
    text: String,
    offending: Vec<BTreeSet<String>>,
    paths: BTreeSet<String>,
}

fn document() -> impl Strategy<Value = Document> {
    (
        proptest::option::of(section_body("image")),
        prop::collection::vec(section_body("layer"), 0..3),
        proptest::option::of(section_body("config")),
        proptest::option::of(string_map(&["org.opencontainers.image.vendor", ""])),
        proptest::option::weighted(0.2, section_body("version")),
        proptest::option::weighted(0.2, section_body("tags")),
        proptest::option::weighted(0.05, Just("[imgae]\nbase = \"scratch\"\n")),
        any::<bool>(),
    )
        .prop_map(
            |(image, layers, config, annotations, version, tags, typo, multiline)| {
                let mut doc = Document {
                    text: String::new(),
                    offending: Vec::new(),
                    paths: BTreeSet::new(),
                };
                let add_section =
                    |doc: &mut Document,
                     header: &str,
                     path: &str,
                     body: Vec<(String, Generated)>| {
                        doc.text.push_str(header);
                        doc.text.push('\n');
                        doc.paths.insert(path.to_owned());
                        for (key, generated) in body {
                            if let Some(missing) = key.strip_prefix("!missing ") {
                                doc.offending
                                    .push([format!("{path}.{missing}"), path.to_owned()].into());
                                continue;
                            }
                            let key_path = format!("{path}.{key}");
                            let _ =
                                writeln!(doc.text, "{key} = {}", generated.value.render(multiline));
                            doc.paths.insert(key_path.clone());
                            for sub in &generated.paths {
                                doc.paths.insert(format!("{key_path}{sub}"));
                            }
                            for names in &generated.offending {
                                doc.offending.push(
                                    names
                                        .iter()
                                        .map(|n| format!("{key_path}{n}"))
                                        .chain([key_path.clone()])
                                        .collect(),
                                );
                            }
                        }
                    };
                if let Some(body) = image {
                    add_section(&mut doc, "[image]", "image", body);
                }
                for (i, body) in layers.into_iter().enumerate() {
                    add_section(&mut doc, "[[layer]]", &format!("layer[{i}]"), body);
                }
                if let Some(body) = config {
                    add_section(&mut doc, "[config]", "config", body);
                }
                if let Some(map) = annotations {
                    doc.text.push_str("[annotations]\n");
                    doc.paths.insert("annotations".into());
                    if let Val::Table(pairs) = &map.value {
                        for (key, value) in pairs {
                            let _ =
                                writeln!(doc.text, "{} = {}", quote(key), value.render(multiline));
                        }
                    }
                    for sub in &map.paths {
                        doc.paths.insert(format!("annotations{sub}"));
                    }
                    for names in &map.offending {
                        doc.offending
                            .push(names.iter().map(|n| format!("annotations{n}")).collect());
                    }
                }
                if let Some(body) = version {
                    add_section(&mut doc, "[version]", "version", body);
                }
                if let Some(body) = tags {
                    add_section(&mut doc, "[tags]", "tags", body);
                }
                if let Some(typo) = typo {
                    doc.text.push_str(typo);
                    doc.offending.push(["imgae".to_owned()].into());
                }
                doc
            },
        )
}

/// Whether `field` (`layer[2].to`) is a key hoist.toml has, present or not: an error
/// about a missing key names it.
fn is_schema_key(field: &str) -> bool {
    let Some((section, key)) = field.split_once('.') else {
        return false;
    };
    let section = section.split('[').next().unwrap_or(section);
    ["image", "layer", "config", "version", "tags"].contains(&section)
        && section_keys(section).iter().any(|(k, _)| *k == key)
}

/// The directory the config file is in: `dist/` is a directory, `file` a file.
fn config_dir() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("hoist-props-config-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        dir
    })
    .path()
}

/// The property, for one document.
fn check(doc: &Document) -> Result<(), TestCaseError> {
    let parsed = ConfigFile::parse(&doc.text);
    let file = match parsed {
        Err(message) => {
            prop_assert!(
                !doc.offending.is_empty(),
                "a valid document was refused: {message}\n{}",
                doc.text
            );
            let named = doc
                .offending
                .iter()
                .any(|names| names.iter().any(|n| message.contains(&format!("`{n}`"))));
            prop_assert!(
                named,
                "the error names none of {:?}:\n{message}\n--- document:\n{}",
                doc.offending,
                doc.text
            );
            return Ok(());
        }
        Ok(file) => file,
    };
    prop_assert!(
        doc.offending.is_empty(),
        "accepted although {:?} are wrong:\n{}",
        doc.offending,
        doc.text
    );
    let config_path = config_dir().join("hoist.toml");
    match resolve(&config_path, &file, &Overrides::default(), None) {
        Ok(plan) => {
            // Durations end up in the image config as Go's int64 nanoseconds.
            if let Some(check) = &plan.config_edits.healthcheck {
                for key in ["Interval", "Timeout", "StartPeriod", "StartInterval"] {
                    if let Some(nanos) = check.get(key) {
                        prop_assert!(
                            nanos.as_i64().is_some(),
                            "{key} = {nanos} does not fit an int64:\n{}",
                            doc.text
                        );
                    }
                }
            }
        }
        Err(hoist::Error::InvalidValue { field, message }) => {
            prop_assert!(
                doc.paths.contains(&field) || is_schema_key(&field),
                "`{field}` ({message}) is not a key path of the document {:?}:\n{}",
                doc.paths,
                doc.text
            );
        }
        Err(other) => prop_assert!(false, "not an InvalidValue: {other:?}\n{}", doc.text),
    }
    Ok(())
}

/// `[image] base = "scratch"` and a `[config]`: documents that often resolve, so the
/// values reach the plan (durations, ports, users, signals).
fn config_document() -> impl Strategy<Value = Document> {
    let alone = |key: &'static str| {
        let kind = section_keys("config")
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, kind)| kind)
            .unwrap();
        value_of(kind).prop_map(move |v| vec![(key.to_owned(), v)])
    };
    let body = prop_oneof![
        section_body("config"),
        alone("healthcheck"),
        alone("ports"),
        alone("user"),
        alone("stop_signal"),
        alone("env"),
    ];
    body.prop_map(|body| {
        let mut doc = Document {
            text: "[image]\nbase = \"scratch\"\n[config]\n".into(),
            offending: Vec::new(),
            paths: ["image", "image.base", "config"].map(String::from).into(),
        };
        for (key, generated) in body {
            let key_path = format!("config.{key}");
            let _ = writeln!(doc.text, "{key} = {}", generated.value.render(false));
            doc.paths.insert(key_path.clone());
            doc.paths
                .extend(generated.paths.iter().map(|sub| format!("{key_path}{sub}")));
            for names in &generated.offending {
                doc.offending.push(
                    names
                        .iter()
                        .map(|n| format!("{key_path}{n}"))
                        .chain([key_path.clone()])
                        .collect(),
                );
            }
        }
        doc
    })
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn config_errors_name_the_offending_key(doc in document()) {
        check(&doc)?;
    }

    #[test]
    fn config_sections_resolve_or_name_the_key(doc in config_document()) {
        check(&doc)?;
    }
}
