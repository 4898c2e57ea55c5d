//! What a base image says about the interpreter wheels must fit when the `python`
//! settings do not: the Python version from `PYTHON_VERSION` in its config's `Env`
//! (what the official `python:3.X` images set), the C library from its package
//! database (dpkg's `libc6`, apk's `musl`). Pure functions over what the caller read.

use super::tags::Libc;

/// `3.11.9` from a config `Env` holding `PYTHON_VERSION=3.11.9` (a pre-release suffix,
/// `3.13.0rc1`, is cut at its first letter); `None` when it is absent or not CPython 3.
pub fn python_version<'a>(env: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let value = env
        .into_iter()
        .find_map(|entry| entry.strip_prefix("PYTHON_VERSION="))?;
    let numeric: String = value
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let numeric = numeric.trim_end_matches('.');
    let parts: Vec<&str> = numeric.split('.').collect();
    let valid = parts.len() >= 2
        && parts[0] == "3"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.parse::<u32>().is_ok());
    valid.then(|| numeric.to_owned())
}

/// The C library a package database names: glibc from the `libc6` stanza of a dpkg
/// `status` (or a distroless `status.d/` file), musl from the `musl` entry of apk's
/// `installed`.
pub fn libc(dpkg: &[&[u8]], apk: Option<&[u8]>) -> Option<Libc> {
    let glibc = dpkg.iter().find_map(|status| {
        stanza_version(status, "Package: ", "Version: ", "libc6")
            .and_then(|v| minor_after(&v, "2."))
            .map(Libc::Glibc)
    });
    glibc.or_else(|| {
        let installed = apk?;
        stanza_version(installed, "P:", "V:", "musl")
            .and_then(|v| minor_after(&v, "1."))
            .map(Libc::Musl)
    })
}

/// The version field of the stanza (blank-line separated) whose name field is `name`.
fn stanza_version(
    database: &[u8],
    name_key: &str,
    version_key: &str,
    name: &str,
) -> Option<String> {
    let text = String::from_utf8_lossy(database);
    text.split("\n\n").find_map(|stanza| {
        let mut lines = stanza.lines();
        let is_it = lines
            .clone()
            .any(|l| l.strip_prefix(name_key).is_some_and(|n| n.trim() == name));
        if !is_it {
            return None;
        }
        lines.find_map(|l| l.strip_prefix(version_key).map(|v| v.trim().to_owned()))
    })
}

/// `36` from `2.36-9+deb12u4` with `prefix` `2.`.
fn minor_after(version: &str, prefix: &str) -> Option<u32> {
    let rest = version.split_once(':').map_or(version, |(_, v)| v);
    let rest = rest.strip_prefix(prefix)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_version_comes_from_the_official_images_env() {
        let env = ["PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.11.9"];
        assert_eq!(python_version(env).as_deref(), Some("3.11.9"));
        assert_eq!(
            python_version(["PYTHON_VERSION=3.13.0rc1"]).as_deref(),
            Some("3.13.0")
        );
        assert_eq!(python_version(["PYTHON_VERSION=2.7.18"]), None);
        assert_eq!(python_version(["PYTHON_VERSION=3"]), None);
        assert_eq!(python_version(["LANG=C.UTF-8"]), None);
    }

    #[test]
    fn libc_comes_from_dpkg_or_apk() {
        let dpkg = b"Package: base-files\nVersion: 12.4\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n";
        assert_eq!(libc(&[dpkg], None), Some(Libc::Glibc(36)));
        let apk = b"P:busybox\nV:1.36.1-r29\n\nP:musl\nV:1.2.5-r0\n";
        assert_eq!(libc(&[], Some(apk)), Some(Libc::Musl(2)));
        assert_eq!(
            libc(&[b"Package: libc6\nVersion: 1:2.31-0ubuntu9\n"], None),
            Some(Libc::Glibc(31))
        );
        assert_eq!(
            libc(
                &[b"Package: zlib1g\nVersion: 1.2\n"],
                Some(b"P:zlib\nV:1.3\n")
            ),
            None
        );
    }
}
