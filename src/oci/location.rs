//! Where images come from and go to: `oci:DIR[:TAG|@DIGEST]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:NAME:TAG]` and `scratch`.
//!
//! The syntax is skopeo's (containers/image transports): the path ends at the first
//! `:` after the transport, so `oci:../base:1.0` is the layout `../base`, tag `1.0`.

use std::fmt;
use std::path::{Path, PathBuf};

use hoist_layers::Digest;

use crate::error::{Error, Result};

/// Which image inside a layout or archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The only image, or an error if there are several.
    Default,
    /// The entry whose `org.opencontainers.image.ref.name` is this.
    Tag(String),
    /// The entry with this digest.
    Digest(Digest),
}

/// A place an image is read from or written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An empty image with no layers.
    Scratch,
    /// An OCI image layout directory.
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// Which image in it.
        selector: Selector,
    },
    /// A tar archive of an OCI image layout.
    OciArchive {
        /// The archive file.
        path: PathBuf,
        /// Which image in it.
        selector: Selector,
    },
    /// An image in a registry (`HOST[:PORT]/REPO[:TAG][@DIGEST]`, docker-normalised).
    Registry {
        /// The reference as written (normalised when parsed for use).
        reference: String,
    },
    /// A `docker save` style archive (`manifest.json`), loadable by `docker load`.
    DockerArchive {
        /// The archive file.
        path: PathBuf,
        /// `name:tag` to record in `RepoTags`.
        reference: Option<String>,
    },
}

impl Location {
    /// Parses a location. Registry references are recognised and refused with a clear
    /// message until registry support lands.
    pub fn parse(input: &str) -> Result<Location> {
        let fail = |reason: &str| Error::Location {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input == "scratch" {
            return Ok(Location::Scratch);
        }
        match input.split_once(':') {
            Some(("oci" | "oci-archive" | "docker-archive", "")) => Err(fail("the path is empty")),
            Some((transport @ ("oci" | "oci-archive"), rest)) => {
                let (path, selector) = split_selector(rest).map_err(|r| fail(&r))?;
                Ok(if transport == "oci" {
                    Location::OciLayout { path, selector }
                } else {
                    Location::OciArchive { path, selector }
                })
            }
            Some(("docker-archive", rest)) => {
                let (path, reference) = match rest.split_once(':') {
                    Some((path, reference)) if !reference.is_empty() => {
                        if !reference.contains(':') || reference.contains('@') {
                            return Err(fail("the name must be NAME:TAG, e.g. acme/app:1.0"));
                        }
                        (path, Some(reference.to_string()))
                    }
                    Some((path, _)) => (path, None),
                    None => (rest, None),
                };
                if path.is_empty() {
                    return Err(fail("the path is empty"));
                }
                Ok(Location::DockerArchive {
                    path: path.into(),
                    reference,
                })
            }
            // Anything else is a registry reference, as docker reads it (`python`,
            // `ghcr.io/acme/app:1.0`); skopeo's `docker://` prefix is accepted too.
            _ => {
                let reference = input.strip_prefix("docker://").unwrap_or(input);
                if let Some(suggestion) = path_suggestion(reference) {
                    return Err(fail(&suggestion));
                }
                crate::oci::reference::parse(reference).map_err(|e| Error::Location {
                    input: input.to_string(),
                    reason: format!(
                        "not scratch, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], nor a registry reference ({e})"
                    ),
                })?;
                Ok(Location::Registry {
                    reference: reference.to_string(),
                })
            }
        }
    }

    /// The location with a relative path resolved against `dir` (config files resolve
    /// paths relative to themselves).
    pub fn relative_to(self, dir: &std::path::Path) -> Location {
        let join = |path: PathBuf| {
            if path.is_absolute() {
                path
            } else {
                dir.join(path)
            }
        };
        match self {
            Location::Scratch => Location::Scratch,
            Location::Registry { reference } => Location::Registry { reference },
            Location::OciLayout { path, selector } => Location::OciLayout {
                path: join(path),
                selector,
            },
            Location::OciArchive { path, selector } => Location::OciArchive {
                path: join(path),
                selector,
            },
            Location::DockerArchive { path, reference } => Location::DockerArchive {
                path: join(path),
                reference,
            },
        }
    }
}

fn split_selector(rest: &str) -> std::result::Result<(PathBuf, Selector), String> {
    if let Some((path, digest)) = rest.split_once('@') {
        let digest = digest
            .parse::<Digest>()
            .map_err(|e| format!("bad digest after @: {e}"))?;
        return Ok((path.into(), Selector::Digest(digest)));
    }
    match rest.split_once(':') {
        Some((_, "")) => Err("the tag after `:` is empty".into()),
        Some((path, tag)) => {
            if !is_valid_tag(tag) {
                return Err(format!(
                    "`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
                ));
            }
            Ok((path.into(), Selector::Tag(tag.to_string())))
        }
        None => Ok((rest.into(), Selector::Default)),
    }
}

/// A tag as the distribution spec defines it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Default => Ok(()),
            Selector::Tag(tag) => write!(f, ":{tag}"),
            Selector::Digest(digest) => write!(f, "@{digest}"),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Scratch => f.write_str("scratch"),
            Location::Registry { reference } => f.write_str(reference),
            Location::OciLayout { path, selector } => write!(f, "oci:{}{selector}", path.display()),
            Location::OciArchive { path, selector } => {
                write!(f, "oci-archive:{}{selector}", path.display())
            }
            Location::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                match reference {
                    Some(reference) => write!(f, ":{reference}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// For input written as a file path (`/srv/layout:1.35`, `./base`, `../base:1.0`,
/// `~/img`), which no registry reference can be: the location it most likely means,
/// `oci:` (`oci-archive:` for a `.tar`), as the reason the input is refused.
fn path_suggestion(input: &str) -> Option<String> {
    if !(input.starts_with('/') || input.starts_with('.') || input.starts_with('~')) {
        return None;
    }
    // The path without its `:TAG` or `@DIGEST`, to tell an archive by its extension.
    let path = input.split([':', '@']).next().unwrap_or(input);
    let archive = Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tar"));
    let transport = if archive { "oci-archive" } else { "oci" };
    Some(format!(
        "a file path, not a registry reference: write `{transport}:{input}` for an OCI {}",
        if transport == "oci" {
            "layout directory"
        } else {
            "archive"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path written without its transport is refused with the location it most
    /// likely means, not a registry reference's complaint about an empty component.
    #[test]
    fn a_bare_path_suggests_oci() {
        for (input, suggested) in [
            ("/path/layout:1.35", "`oci:/path/layout:1.35`"),
            ("./base", "`oci:./base`"),
            (
                "../images/app.tar:1.0",
                "`oci-archive:../images/app.tar:1.0`",
            ),
            ("~/img@sha256:0", "`oci:~/img@sha256:0`"),
        ] {
            let err = Location::parse(input).unwrap_err().to_string();
            assert!(err.contains(suggested), "{input}: {err}");
            assert!(!err.contains("must be lowercase"), "{input}: {err}");
        }
        assert!(Location::parse("python:3.12").is_ok());
    }

    #[test]
    fn parses_layouts_with_tags_and_digests() {
        assert_eq!(
            Location::parse("oci:../../testdata/base:1.0").unwrap(),
            Location::OciLayout {
                path: "../../testdata/base".into(),
                selector: Selector::Tag("1.0".into())
            }
        );
        let hex = "a".repeat(64);
        assert_eq!(
            Location::parse(&format!("oci:out@sha256:{hex}")).unwrap(),
            Location::OciLayout {
                path: "out".into(),
                selector: Selector::Digest(format!("sha256:{hex}").parse().unwrap())
            }
        );
        assert_eq!(
            Location::parse("oci-archive:img.tar").unwrap(),
            Location::OciArchive {
                path: "img.tar".into(),
                selector: Selector::Default
            }
        );
        assert_eq!(
            Location::parse("docker-archive:img.tar:acme/app:1.0").unwrap(),
            Location::DockerArchive {
                path: "img.tar".into(),
                reference: Some("acme/app:1.0".into())
            }
        );
        assert_eq!(Location::parse("scratch").unwrap(), Location::Scratch);
        assert_eq!(
            Location::parse("docker://127.0.0.1:5000/acme/base:1.0").unwrap(),
            Location::Registry {
                reference: "127.0.0.1:5000/acme/base:1.0".into()
            }
        );
        assert_eq!(
            Location::parse("python").unwrap(),
            Location::Registry {
                reference: "python".into()
            }
        );
    }

    #[test]
    fn rejects_bad_locations_naming_the_input() {
        for (input, needle) in [
            ("oci:", "path is empty"),
            ("oci:dir:", "tag after"),
            ("oci:dir:-bad", "not a valid tag"),
            ("oci:dir@sha256:xyz", "bad digest"),
            ("/tmp/out", "registry reference"),
            ("Not A Reference", "registry reference"),
            ("docker-archive:x.tar:notag", "NAME:TAG"),
        ] {
            let err = Location::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(input) && err.contains(needle),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "scratch",
            "oci:a/b:1.0",
            "oci-archive:x.tar",
            "docker-archive:x.tar:a/b:1",
        ] {
            assert_eq!(Location::parse(s).unwrap().to_string(), s);
        }
    }
}
