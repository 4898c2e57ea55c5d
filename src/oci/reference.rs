//! Registry references, parsed and normalised as docker does (`python` →
//! `docker.io/library/python:latest`), with errors that name the input and the part
//! at fault.
//!
//! The grammar is distribution's (`reference/regexp.go`), checked by hand rather than
//! with oci-spec's `Reference::from_str`: that compiles a Unicode-aware regex of the
//! whole grammar on first use, which cost ~70 ms and ~20 MiB of every `hoist push`.

use oci_spec::distribution::Reference;

use crate::error::{Error, Result};

/// Longest repository name (host included), as distribution allows.
const NAME_MAX: usize = 255;
/// Longest tag.
const TAG_MAX: usize = 128;

/// A reference's three parts as written: name, tag, digest.
fn split(input: &str) -> (&str, Option<&str>, Option<&str>) {
    let (name_and_tag, digest) = match input.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (input, None),
    };
    // Only a `:` after the last `/` starts a tag (`host:5000/repo` has a port).
    let last = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    match name_and_tag[last..].rfind(':') {
        Some(i) => (
            &name_and_tag[..last + i],
            Some(&name_and_tag[last + i + 1..]),
            digest,
        ),
        None => (name_and_tag, None, digest),
    }
}

/// Parses a registry reference (`HOST[:PORT]/REPO[:TAG][@DIGEST]`).
pub fn parse(input: &str) -> Result<Reference> {
    let bad = |reason: String| Error::Reference {
        input: input.to_string(),
        reason,
    };
    if input.trim() != input || input.is_empty() {
        return Err(bad("empty, or surrounded by white space".into()));
    }
    let (name, tag, digest) = split(input);
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(bad(format!(
            "tag `{tag}` must be 1-{TAG_MAX} letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        )));
    }
    if let Some(digest) = digest {
        check_digest(digest).map_err(bad)?;
    }
    if name.len() > NAME_MAX {
        return Err(bad(format!(
            "the name is longer than {NAME_MAX} characters"
        )));
    }
    // As docker: the first component is a registry host when it looks like one (a dot,
    // a port, `localhost`, or upper case, which no repository may have).
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    if !is_host(registry) {
        return Err(bad(format!(
            "`{registry}` is not a registry host (HOST[:PORT], letters, digits, `-` and `.`)"
        )));
    }
    if let Some(port) = port_of(registry)
        && !matches!(port.parse::<u32>(), Ok(1..=65535))
    {
        return Err(bad(format!("port {port} is not in the range 1-65535")));
    }
    // What every request will be sent to must be a URL: a host the URL parser refuses
    // (`999.1.1.1` is read as a bad IPv4 address) is refused now, not after a build.
    if let Err(e) = reqwest::Url::parse(&format!("https://{registry}/v2/")) {
        return Err(bad(format!(
            "`{registry}` cannot be reached as a host: {e}"
        )));
    }
    if let Some(component) = repository.split('/').find(|c| !is_path_component(c)) {
        return Err(bad(format!(
            "repository component `{component}` must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
        )));
    }
    let registry = match registry {
        "index.docker.io" => "docker.io",
        other => other,
    };
    let repository = if registry == "docker.io" && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    let registry = registry.to_string();
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").into()),
    })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= TAG_MAX
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// `ALGORITHM:HEX` with a known algorithm and its hex length.
fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest `{digest}` must be ALGORITHM:HEX"));
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(format!("digest algorithm `{other}` is not supported")),
    };
    if hex.len() != length || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "digest `{digest}` must have {length} hex digits after `{algorithm}:`"
        ));
    }
    Ok(())
}

/// A host name or IPv4 address (dot-separated labels of letters, digits and inner
/// `-`), or a bracketed IPv6 address, with an optional numeric port.
fn is_host(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((address, after)) => {
                if address.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                match after {
                    "" => return true,
                    after => ("", after.strip_prefix(':').unwrap_or("x")),
                }
            }
            None => return false,
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, port),
            None => (registry, "0"),
        }
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && (registry.starts_with('[') || host.split('.').all(label))
}

/// The port a registry host names, as written (`[::1]:5000`, `host:5000`).
fn port_of(registry: &str) -> Option<&str> {
    match registry.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(_, port)| port),
        None => registry.split_once(':').map(|(_, port)| port),
    }
}

/// A repository path component as the distribution spec defines it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. (oci-spec accepts upper case; registries don't.)
fn is_path_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = component.chars().peekable();
    let mut previous_was_alnum = false;
    while let Some(c) = chars.next() {
        if alnum(c) {
            previous_was_alnum = true;
            continue;
        }
        if !previous_was_alnum {
            return false;
        }
        match c {
            '.' => {}
            '_' => {
                if chars.peek() == Some(&'_') {
                    chars.next();
                }
            }
            '-' => {
                while chars.peek() == Some(&'-') {
                    chars.next();
                }
            }
            _ => return false,
        }
        previous_was_alnum = false;
    }
    previous_was_alnum
}

/// The tag written in a reference, if any: a reference without one means `latest`,
/// but `--push-to host/repo --tag 1.0` must not also move `latest`.
pub fn explicit_tag(input: &str) -> Option<&str> {
    split(input).1
}

/// The same repository with another tag.
pub fn with_tag(reference: &Reference, tag: &str) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        tag.to_string(),
    )
}

/// The same repository, pinned to a digest.
pub fn with_digest(reference: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest.to_string(),
    )
}

/// Whether a registry host (with or without port) is this machine: such registries
/// are spoken to over plain HTTP, as docker and skopeo do for localhost.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.rsplit_once(':').map_or(registry, |(host, _)| host)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = parse("python").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/python");
        assert_eq!(r.tag(), Some("latest"));
        let r = parse("127.0.0.1:5000/acme/app:1.2.3").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "acme/app", Some("1.2.3"))
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("ghcr.io/acme/app@{digest}")).unwrap();
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(with_tag(&r, "v1").whole(), "ghcr.io/acme/app:v1");
    }

    #[test]
    fn bad_references_name_the_input() {
        for bad in [
            "",
            "acme/UPPER",
            "a b",
            "host/repo:bad tag",
            "repo@sha256:xyz",
            " padded",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_grammar_matches_distributions() {
        let digest = format!("sha256:{}", "0".repeat(64));
        for (input, registry, repository, tag, with_digest) in [
            ("localhost/app", "localhost", "app", Some("latest"), false),
            (
                "index.docker.io/nginx",
                "docker.io",
                "library/nginx",
                Some("latest"),
                false,
            ),
            (
                "acme/app:v1.2_3-rc",
                "docker.io",
                "acme/app",
                Some("v1.2_3-rc"),
                false,
            ),
            ("[::1]:5000/a/b:1", "[::1]:5000", "a/b", Some("1"), false),
            (
                "127.0.0.1:65535/a",
                "127.0.0.1:65535",
                "a",
                Some("latest"),
                false,
            ),
            ("127.0.0.1:1/a", "127.0.0.1:1", "a", Some("latest"), false),
            ("Host.Example/a", "Host.Example", "a", Some("latest"), false),
        ] {
            let r = parse(input).unwrap();
            assert_eq!(
                (r.registry(), r.repository(), r.tag(), r.digest().is_some()),
                (registry, repository, tag, with_digest),
                "{input}"
            );
        }
        let r = parse(&format!("ghcr.io/a/b:1@{digest}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("1"), Some(digest.as_str())));
        for (bad, why) in [
            ("host/repo:", "tag"),
            ("host/repo:.x", "tag"),
            ("ghcr.io/a@md5:00", "algorithm"),
            ("ghcr.io/a@sha256:00", "64 hex digits"),
            ("-bad.host:5000/a", "registry host"),
            ("host.io:port/a", "registry host"),
            ("ghcr.io/a//b", "component ``"),
            (
                "127.0.0.1:99999/x",
                "port 99999 is not in the range 1-65535",
            ),
            ("127.0.0.1:0/x", "port 0"),
            ("[::1]:65536/x", "port 65536"),
            ("localhost:/x", "registry host"),
            ("999.1.1.1:5000/x", "cannot be reached"),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("ghcr.io/{}", "a".repeat(250));
        assert!(parse(&long).unwrap_err().to_string().contains("255"));
    }

    #[test]
    fn repository_components_follow_the_distribution_spec() {
        for good in [
            "a", "app", "my-app", "my--app", "my_app", "my__app", "v1.2", "a0",
        ] {
            assert!(is_path_component(good), "{good}");
        }
        for bad in ["", "App", "-a", "a-", "a___b", "a..b", "a_", ".a", "a b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn explicit_tags_are_told_from_defaults() {
        assert_eq!(explicit_tag("127.0.0.1:5000/acme/app"), None);
        assert_eq!(explicit_tag("127.0.0.1:5000/acme/app:1.0"), Some("1.0"));
        assert_eq!(explicit_tag("ghcr.io/acme/app:v1@sha256:abc"), Some("v1"));
        assert_eq!(explicit_tag("ghcr.io/acme/app@sha256:abc"), None);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "registry.internal:5000",
            "10.0.0.1:5000",
            "docker.io",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
