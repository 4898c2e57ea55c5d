//! Package URLs (github.com/package-url/purl-spec): `pkg:TYPE/NAMESPACE/NAME@VERSION?
//! QUALIFIERS`, each part percent-encoded, qualifiers sorted by key.

/// Percent-encodes everything but the unreserved characters (`A-Z a-z 0-9 - . _ ~`),
/// as the purl spec asks of names, versions and qualifier values.
pub fn encode(text: &str) -> String {
    encode_keeping(text, &[])
}

fn encode_keeping(text: &str, keep: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A purl. `qualifiers` are sorted by key; empty values are left out.
pub fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, String)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(namespace) = namespace {
        // Each segment encoded on its own: the slashes between them stay.
        let segments: Vec<String> = namespace.split('/').map(encode).collect();
        out.push_str(&segments.join("/"));
        out.push('/');
    }
    out.push_str(&encode(name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(version));
    }
    let mut qualifiers: Vec<&(&str, String)> =
        qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qualifiers.sort_by_key(|(k, _)| *k);
    for (i, (key, value)) in qualifiers.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        // A repository URL's slashes (and a port's colon) read as they are: the spec's
        // own examples write `repository_url=docker.io/library/debian`.
        out.push_str(&encode_keeping(value, b"/:"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec_examples() {
        assert_eq!(
            purl(
                "oci",
                None,
                "debian",
                "sha256:244fd47e07d10",
                &[
                    ("repository_url", "docker.io/library/debian".into()),
                    ("arch", "amd64".into())
                ]
            ),
            "pkg:oci/debian@sha256%3A244fd47e07d10?arch=amd64&repository_url=docker.io/library/debian"
        );
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "curl",
                "7.50.3-1",
                &[("arch", "i386".into()), ("distro", "jessie".into())]
            ),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        assert_eq!(
            purl("npm", Some("@babel"), "core", "7.0.0", &[]),
            "pkg:npm/%40babel/core@7.0.0"
        );
    }
}
