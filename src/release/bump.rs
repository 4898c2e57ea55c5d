//! The bump rules, pure: `bump(&version, kind) → version` (SemVer 2.0.0).
//!
//! - `major`, `minor`, `patch` on a release add one to that part and zero the lower
//!   ones (`1.2.3` → `2.0.0`, `1.3.0`, `1.2.4`). On a pre-release they finish the
//!   release it leads to when that release already is of the asked kind, as npm does:
//!   `2.0.0-rc.1` major → `2.0.0`, `1.3.0-beta.2` minor → `1.3.0`, `1.2.4-alpha.1`
//!   patch → `1.2.4`; otherwise they bump from the pre-release's core
//!   (`1.2.4-alpha.1` minor → `1.3.0`).
//! - `pre LABEL` (alpha < beta < rc) on a release bumps the patch and starts at
//!   `.1` (`0.1.0` → `0.1.1-alpha.1`); on `-LABEL.N` with the same label it counts up
//!   (`-alpha.2`); a later label starts again at `.1` (`-alpha.3` → `-beta.1`); an
//!   earlier label is an error (rc → alpha would sort lower).
//! - `release` drops the pre-release (`1.0.0-rc.2` → `1.0.0`); on a release it is an
//!   error.
//!
//! Build metadata (`+build.5`) is dropped by every bump: it names a build, and a
//! bumped version has not been built.

use semver::{BuildMetadata, Prerelease, Version};

use super::{ReleaseError, Result};

/// A pre-release label, in the order they progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreLabel {
    /// `-alpha.N`.
    Alpha,
    /// `-beta.N`.
    Beta,
    /// `-rc.N`.
    Rc,
}

impl PreLabel {
    /// The label as written in versions.
    pub fn as_str(self) -> &'static str {
        match self {
            PreLabel::Alpha => "alpha",
            PreLabel::Beta => "beta",
            PreLabel::Rc => "rc",
        }
    }
}

impl std::str::FromStr for PreLabel {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "alpha" => Ok(PreLabel::Alpha),
            "beta" => Ok(PreLabel::Beta),
            "rc" => Ok(PreLabel::Rc),
            other => Err(format!("`{other}`: expected alpha, beta or rc")),
        }
    }
}

/// Which way a version moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bump {
    /// `X+1.0.0`.
    Major,
    /// `X.Y+1.0`.
    Minor,
    /// `X.Y.Z+1`.
    Patch,
    /// The next pre-release with this label.
    Pre(PreLabel),
    /// The release a pre-release leads to.
    Release,
}

/// The version after `bump`.
pub fn bump(version: &Version, bump: Bump) -> Result<Version> {
    let fail = |message: String| ReleaseError::Bump {
        from: version.to_string(),
        message,
    };
    let is_pre = !version.pre.is_empty();
    let core = |major, minor, patch| Version {
        major,
        minor,
        patch,
        pre: Prerelease::EMPTY,
        build: BuildMetadata::EMPTY,
    };
    let (major, minor, patch) = (version.major, version.minor, version.patch);
    let next = |n: u64| {
        n.checked_add(1)
            .ok_or_else(|| fail(format!("{n} cannot be incremented")))
    };
    Ok(match bump {
        Bump::Major if is_pre && minor == 0 && patch == 0 => core(major, 0, 0),
        Bump::Major => core(next(major)?, 0, 0),
        Bump::Minor if is_pre && patch == 0 => core(major, minor, 0),
        Bump::Minor => core(major, next(minor)?, 0),
        Bump::Patch | Bump::Release if is_pre => core(major, minor, patch),
        Bump::Patch => core(major, minor, next(patch)?),
        Bump::Release => {
            return Err(fail(
                "it is already a release; `release` finishes a pre-release".into(),
            ));
        }
        Bump::Pre(label) => {
            let (base, number) = if is_pre {
                let (current, n) = parse_pre(&version.pre).ok_or_else(|| {
                    fail(format!(
                        "pre-release `{}` is not LABEL.N with LABEL alpha, beta or rc",
                        version.pre
                    ))
                })?;
                if label < current {
                    return Err(fail(format!(
                        "{} comes before {}: going back would sort lower",
                        label.as_str(),
                        current.as_str()
                    )));
                }
                let number = if label == current { next(n)? } else { 1 };
                (core(major, minor, patch), number)
            } else {
                (core(major, minor, next(patch)?), 1)
            };
            let pre = Prerelease::new(&format!("{}.{number}", label.as_str()))
                .expect("LABEL.N is a valid pre-release");
            Version { pre, ..base }
        }
    })
}

/// `alpha.3` → (Alpha, 3).
fn parse_pre(pre: &Prerelease) -> Option<(PreLabel, u64)> {
    let (label, number) = pre.as_str().split_once('.')?;
    Some((label.parse().ok()?, number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_table() {
        use Bump::{Major, Minor, Patch, Pre, Release};
        use PreLabel::{Alpha, Beta, Rc};
        let cases: &[(&str, Bump, &str)] = &[
            ("0.1.0", Major, "1.0.0"),
            ("0.1.0", Minor, "0.2.0"),
            ("0.1.0", Patch, "0.1.1"),
            ("1.2.3", Major, "2.0.0"),
            ("1.2.3", Minor, "1.3.0"),
            ("1.2.3", Patch, "1.2.4"),
            ("1.2.3+build.7", Patch, "1.2.4"),
            // Pre-releases.
            ("0.1.0", Pre(Alpha), "0.1.1-alpha.1"),
            ("0.1.1-alpha.1", Pre(Alpha), "0.1.1-alpha.2"),
            ("0.1.1-alpha.9", Pre(Alpha), "0.1.1-alpha.10"),
            ("0.1.1-alpha.2", Pre(Beta), "0.1.1-beta.1"),
            ("0.1.1-alpha.2", Pre(Rc), "0.1.1-rc.1"),
            ("0.1.1-beta.3", Pre(Rc), "0.1.1-rc.1"),
            ("0.1.1-rc.1", Pre(Rc), "0.1.1-rc.2"),
            ("1.0.0", Pre(Rc), "1.0.1-rc.1"),
            // Finishing a pre-release.
            ("0.1.1-rc.1", Release, "0.1.1"),
            ("2.0.0-rc.2+b", Release, "2.0.0"),
            ("2.0.0-rc.1", Major, "2.0.0"),
            ("2.1.0-rc.1", Major, "3.0.0"),
            ("1.3.0-beta.2", Minor, "1.3.0"),
            ("1.2.4-alpha.1", Minor, "1.3.0"),
            ("1.2.4-alpha.1", Patch, "1.2.4"),
        ];
        for (from, kind, to) in cases {
            let got = bump(&Version::parse(from).unwrap(), *kind)
                .unwrap_or_else(|e| panic!("{from} {kind:?}: {e}"));
            assert_eq!(got.to_string(), *to, "{from} {kind:?}");
        }
    }

    #[test]
    fn bumps_that_are_refused() {
        use Bump::{Pre, Release};
        use PreLabel::{Alpha, Beta};
        let cases: &[(&str, Bump, &str)] = &[
            ("1.0.0", Release, "already a release"),
            ("1.0.1-rc.1", Pre(Alpha), "alpha comes before rc"),
            ("1.0.1-beta.1", Pre(Alpha), "alpha comes before beta"),
            ("1.0.1-dev", Pre(Beta), "not LABEL.N"),
            ("1.0.1-preview.1", Pre(Beta), "not LABEL.N"),
        ];
        for (from, kind, message) in cases {
            let err = bump(&Version::parse(from).unwrap(), *kind)
                .unwrap_err()
                .to_string();
            assert!(err.contains(message) && err.contains(from), "{from}: {err}");
        }
        assert!("gamma".parse::<PreLabel>().is_err());
    }
}
