//! What a base image says about the interpreter wheels must fit when the `python`
//! settings do not: the Python version from `PYTHON_VERSION` in its config's `Env`
//! (what the official `python:3.X` images set), the C library from its package
//! database (dpkg's `libc6`, apk's `musl`), the interpreter it ships from its files
//! (`/usr/local/bin/python3.11`, Debian's and Alpine's `/usr/bin/python3.X`). Pure
//! functions over what the caller read.

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

/// Where a base's interpreter is looked for, in this order: the official `python`
/// images' (built from source into `/usr/local`), then the distributions' (Debian,
/// Ubuntu, Alpine, Fedora).
pub const INTERPRETER_DIRS: [&str; 2] = ["usr/local/bin", "usr/bin"];

/// Whether `path` (no leading `/`) is one a base's interpreter may be at: `python3` or
/// `python3.X` in one of [`INTERPRETER_DIRS`].
pub fn is_interpreter_path(path: &str) -> bool {
    path.rsplit_once('/').is_some_and(|(dir, name)| {
        INTERPRETER_DIRS.contains(&dir) && (name == "python3" || minor_of(name).is_some())
    })
}

/// The interpreter a base ships: version (`3.11`) and absolute path, from `files`
/// (paths without a leading `/` that [`is_interpreter_path`] accepts, each with its
/// symbolic link's target as a path from the root, `None` for a file). In each of
/// [`INTERPRETER_DIRS`] in turn: `python3` followed to the `python3.X` it names (what
/// `python3` runs in the image), else the newest `python3.X` there.
pub fn interpreter<'a>(
    files: impl IntoIterator<Item = (&'a str, Option<String>)>,
) -> Option<(String, String)> {
    let files: std::collections::BTreeMap<&str, Option<String>> = files.into_iter().collect();
    INTERPRETER_DIRS.iter().find_map(|dir| {
        let mut at = format!("{dir}/python3");
        // A chain of links (python3 → python3.11, or to an absolute path), bounded.
        for _ in 0..8 {
            match files.get(at.as_str()) {
                Some(Some(target)) => at.clone_from(target),
                _ => break,
            }
        }
        let named = at.rsplit('/').next().and_then(minor_of);
        let followed = named
            .filter(|_| files.contains_key(format!("{dir}/python3").as_str()))
            .map(|minor| (format!("3.{minor}"), format!("/{at}")));
        followed.or_else(|| {
            files
                .keys()
                .filter_map(|path| {
                    let (parent, name) = path.rsplit_once('/')?;
                    (parent == *dir).then_some(())?;
                    Some((minor_of(name)?, path))
                })
                .max()
                .map(|(minor, path)| (format!("3.{minor}"), format!("/{path}")))
        })
    })
}

/// `3.11` from an interpreter's path named `…/python3.11`.
pub fn version_of_path(path: &str) -> Option<String> {
    minor_of(path.rsplit('/').next()?).map(|minor| format!("3.{minor}"))
}

/// `11` from `python3.11`.
fn minor_of(name: &str) -> Option<u32> {
    let minor = name.strip_prefix("python3.")?;
    (!minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
        .then(|| minor.parse().ok())
        .flatten()
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
    fn the_interpreter_is_found_in_the_base_files() {
        let link = |p: &'static str, t: &str| (p, Some(t.to_owned()));
        let file = |p: &'static str| (p, None);
        // The official images: python3 → python3.11 in /usr/local/bin (and Debian's
        // own python3.11 in /usr/bin, which `python3` on PATH does not run).
        let official = [
            link("usr/local/bin/python3", "usr/local/bin/python3.11"),
            file("usr/local/bin/python3.11"),
            file("usr/bin/python3.9"),
        ];
        let found = |files: &[(&'static str, Option<String>)]| interpreter(files.iter().cloned());
        assert_eq!(
            found(&official),
            Some(("3.11".into(), "/usr/local/bin/python3.11".into()))
        );
        // Debian: /usr/bin/python3 → python3.11; Alpine alike with 3.12.
        let debian = [
            link("usr/bin/python3", "usr/bin/python3.11"),
            file("usr/bin/python3.11"),
            file("usr/bin/python3.13"),
        ];
        assert_eq!(
            found(&debian),
            Some(("3.11".into(), "/usr/bin/python3.11".into()))
        );
        // No python3 link: the newest python3.X (3.10 sorts after 3.9).
        let versions = [file("usr/bin/python3.9"), file("usr/bin/python3.10")];
        assert_eq!(
            found(&versions),
            Some(("3.10".into(), "/usr/bin/python3.10".into()))
        );
        // A python3 that is a file names no version: the versioned one tells.
        let plain = [file("usr/bin/python3"), file("usr/bin/python3.12")];
        assert_eq!(
            found(&plain),
            Some(("3.12".into(), "/usr/bin/python3.12".into()))
        );
        // A loop of links ends; nothing else there: nothing found.
        let looped = [
            link("usr/bin/python3", "usr/bin/python3"),
            file("usr/bin/python2.7"),
        ];
        assert_eq!(found(&looped), None);
        assert_eq!(
            version_of_path("/opt/py/bin/python3.13").as_deref(),
            Some("3.13")
        );
        assert_eq!(version_of_path("/usr/bin/python3"), None);
        assert!(is_interpreter_path("usr/bin/python3.11"));
        assert!(is_interpreter_path("usr/local/bin/python3"));
        assert!(!is_interpreter_path("usr/bin/python3.11-config"));
        assert!(!is_interpreter_path("opt/bin/python3.11"));
        assert!(!is_interpreter_path("usr/bin/python2.7"));
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
