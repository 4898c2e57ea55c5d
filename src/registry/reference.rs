//! Registry references, parsed and normalised as docker does (`python` →
//! `docker.io/library/python:latest`) by oci-spec's `Reference`, with errors that name
//! the input.

use oci_client::Reference;

use crate::error::{Error, Result};

/// Parses a registry reference (`HOST[:PORT]/REPO[:TAG][@DIGEST]`).
pub fn parse(input: &str) -> Result<Reference> {
    if input.trim() != input || input.is_empty() {
        return Err(Error::Reference {
            input: input.to_string(),
            reason: "empty, or surrounded by white space".into(),
        });
    }
    let reference = input.parse::<Reference>().map_err(|e| Error::Reference {
        input: input.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(component) = reference
        .repository()
        .split('/')
        .find(|c| !is_path_component(c))
    {
        return Err(Error::Reference {
            input: input.to_string(),
            reason: format!(
                "repository component `{component}` must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
            ),
        });
    }
    Ok(reference)
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

/// The tag written in a reference, if any: oci-spec fills in `latest` when none is
/// given, but `--push-to host/repo --tag 1.0` must not also move `latest`.
pub fn explicit_tag(input: &str) -> Option<&str> {
    let name = input.split('@').next().unwrap_or(input);
    let last = name.rsplit('/').next().unwrap_or(name);
    // Only a `:` in the last component is a tag (`host:5000/repo` has a port).
    name.contains('/').then_some(())?;
    last.split_once(':').map(|(_, tag)| tag)
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
            "UPPER/case",
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
