//! The registry reference parser: it never panics, what it accepts round-trips
//! through `whole()`, references built from distribution's grammar
//! (`reference/regexp.go`) are accepted with the parts they were built from, and
//! ports outside 1–65535 are refused.

use hoist::oci::reference::parse;
use proptest::prelude::*;

use super::cases;

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn domain_component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,12}[a-zA-Z0-9])?"
}

/// A registry host that docker reads as one: a dotted name, `localhost`, or any of
/// them (or an IPv4/IPv6 address) with a port. Returned as written.
///
/// One narrowing of distribution's grammar: a dotted name whose last label is a number
/// (`A.0`, `a.0x1f`) is, to the WHATWG URL standard every request goes through, an
/// IPv4 address, and not a valid one; hoist refuses it when parsing (it could never be
/// reached), so it is not generated here.
fn host() -> impl Strategy<Value = String> {
    let ends_in_a_number = |name: &String| {
        let last = name.rsplit('.').next().unwrap_or_default();
        let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
        last.bytes().all(|b| b.is_ascii_digit())
            || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let dotted = move || {
        prop::collection::vec(domain_component(), 2..4)
            .prop_map(|c| c.join("."))
            .prop_filter(
                "a name that ends in a number is an IPv4 address",
                move |n| !ends_in_a_number(n),
            )
    };
    let port = 1u32..=65535;
    prop_oneof![
        dotted(),
        Just("localhost".to_owned()),
        (dotted(), port.clone()).prop_map(|(h, p)| format!("{h}:{p}")),
        (domain_component(), port.clone()).prop_map(|(h, p)| format!("{h}:{p}")),
        (any::<[u8; 4]>(), port.clone())
            .prop_map(|(ip, p)| format!("{}:{p}", std::net::Ipv4Addr::from(ip))),
        (any::<[u16; 8]>(), proptest::option::of(port)).prop_map(|(ip, p)| {
            let ip = std::net::Ipv6Addr::from(ip);
            p.map_or_else(|| format!("[{ip}]"), |p| format!("[{ip}]:{p}"))
        }),
    ]
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn path_component() -> impl Strategy<Value = String> {
    let alnum = "[a-z0-9]{1,6}";
    let separator = prop_oneof![
        Just(".".to_owned()),
        Just("_".to_owned()),
        Just("__".to_owned()),
        "-{1,3}"
    ];
    (alnum, prop::collection::vec((separator, alnum), 0..3)).prop_map(|(first, rest)| {
        rest.into_iter()
            .fold(first, |s, (sep, part)| format!("{s}{sep}{part}"))
    })
}

/// `[\w][\w.-]{0,127}`.
fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

/// A reference built from the grammar, with the parts a correct parser must find:
/// `(input, registry, repository, tag, digest)`, docker-normalised.
fn valid_reference()
-> impl Strategy<Value = (String, String, String, Option<String>, Option<String>)> {
    (
        proptest::option::of(host()),
        prop::collection::vec(path_component(), 1..4),
        proptest::option::of(tag()),
        proptest::option::of(digest()),
    )
        .prop_filter(
            "distribution caps a name at 255 characters",
            |(h, path, _, _)| h.as_ref().map_or(0, |h| h.len() + 1) + path.join("/").len() <= 255,
        )
        // As docker's splitDockerDomain, a first component with a `.` (`a.b/c`) is read
        // as a host: without a host, such paths are not the reference they look like.
        .prop_filter(
            "a hostless path must not start like a host",
            |(h, path, _, _)| h.is_some() || path.len() == 1 || !path[0].contains('.'),
        )
        .prop_map(|(host, path, tag, digest)| {
            let repository = path.join("/");
            let mut input = match &host {
                Some(host) => format!("{host}/{repository}"),
                None => repository.clone(),
            };
            if let Some(tag) = &tag {
                input = format!("{input}:{tag}");
            }
            if let Some(digest) = &digest {
                input = format!("{input}@{digest}");
            }
            let (registry, repository) = match host {
                Some(host) => (host, repository),
                None if path.len() == 1 => {
                    ("docker.io".to_owned(), format!("library/{repository}"))
                }
                None => ("docker.io".to_owned(), repository),
            };
            // No tag and no digest means `latest`.
            let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_owned()));
            (input, registry, repository, tag, digest)
        })
}

/// Strings near the grammar: its alphabet, and valid references with a byte changed.
fn near_reference() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._:/@\\[\\]-]{0,80}",
        (
            valid_reference(),
            any::<prop::sample::Index>(),
            any::<char>()
        )
            .prop_map(|((input, ..), at, c)| {
                let mut chars: Vec<char> = input.chars().collect();
                let i = at.index(chars.len());
                chars[i] = c;
                chars.into_iter().collect()
            }),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn never_panics_and_accepted_references_round_trip(input in near_reference()) {
        if let Ok(reference) = parse(&input) {
            let whole = reference.whole();
            prop_assert_eq!(&whole, &reference.to_string());
            let again = parse(&whole);
            prop_assert!(again.is_ok(), "{input:?} → {whole:?} is refused: {again:?}");
            prop_assert_eq!(again.unwrap(), reference, "{:?} → {:?}", input, whole);
        }
    }

    #[test]
    fn references_from_distributions_grammar_are_accepted(
        (input, registry, repository, tag, digest) in valid_reference()
    ) {
        let parsed = parse(&input);
        prop_assert!(parsed.is_ok(), "{input:?}: {parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.registry(), registry.as_str(), "{}", input);
        prop_assert_eq!(parsed.repository(), repository.as_str(), "{}", input);
        prop_assert_eq!(parsed.tag(), tag.as_deref(), "{}", input);
        prop_assert_eq!(parsed.digest(), digest.as_deref(), "{}", input);
        prop_assert_eq!(parse(&parsed.whole()).ok(), Some(parsed));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// A port outside 1–65535 is refused when the reference is parsed, before any work
    /// (`host:99999/x` used to fail after a whole build).
    #[test]
    fn ports_outside_1_to_65535_are_refused(
        host in prop_oneof![
            domain_component(),
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
        ],
        port in prop_oneof![
            Just("0".to_owned()),
            Just("00".to_owned()),
            (65_536u64..=u64::MAX).prop_map(|p| p.to_string()),
            "[1-9][0-9]{20,40}",
        ],
        repository in path_component(),
    ) {
        let input = format!("{host}:{port}/{repository}");
        let parsed = parse(&input);
        prop_assert!(parsed.is_err(), "{input:?} was accepted: {parsed:?}");
        let message = parsed.unwrap_err().to_string();
        prop_assert!(message.contains(&input), "{message}");
    }
}
