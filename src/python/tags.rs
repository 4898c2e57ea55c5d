//! Wheel file names and their compatibility tags (PEP 427, PEP 425, PEP 600, PEP 656),
//! and the best wheel for a target interpreter and platform.
//!
//! The order of preference is packaging's `sys_tags` for CPython: the interpreter's
//! own ABI, then `abi3` (this and older minor versions), then `none`; the newest
//! manylinux (or musllinux) level the target's C library allows before older ones;
//! the platform-specific wheel before a pure one (`py3-none-any`).

use std::fmt;

use super::normalize;

/// A parsed wheel file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelName {
    /// The distribution name, normalised (PEP 503).
    pub name: String,
    /// The version as written in the file name.
    pub version: String,
    /// Every (python, abi, platform) tag the name's compressed tag sets expand to.
    pub tags: Vec<(String, String, String)>,
}

impl WheelName {
    /// Parses `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
    pub fn parse(file: &str) -> Result<WheelName, String> {
        let stem = file
            .strip_suffix(".whl")
            .ok_or_else(|| format!("{file} is not a wheel (the name does not end in .whl)"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts.as_slice() {
            [n, v, p, a, pl] | [n, v, _, p, a, pl] => (*n, *v, *p, *a, *pl),
            _ => {
                return Err(format!(
                    "{file}: a wheel name is {{name}}-{{version}}(-{{build}})?-{{python}}-{{abi}}-{{platform}}.whl"
                ));
            }
        };
        let mut tags = Vec::new();
        for p in python.split('.') {
            for a in abi.split('.') {
                for pl in platform.split('.') {
                    tags.push((p.to_owned(), a.to_owned(), pl.to_owned()));
                }
            }
        }
        Ok(WheelName {
            name: normalize(name),
            version: version.to_owned(),
            tags,
        })
    }
}

/// The C library of the target image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// glibc `2.minor` (manylinux).
    Glibc(u32),
    /// musl `1.minor` (musllinux).
    Musl(u32),
}

impl fmt::Display for Libc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Libc::Glibc(minor) => write!(f, "glibc 2.{minor}"),
            Libc::Musl(minor) => write!(f, "musl 1.{minor}"),
        }
    }
}

impl Libc {
    /// `glibc-2.36` or `musl-1.2`.
    pub fn parse(text: &str) -> Result<Libc, String> {
        let bad = || format!("`{text}`: expected glibc-2.N or musl-1.N (e.g. glibc-2.36)");
        let (kind, version) = text.split_once('-').ok_or_else(bad)?;
        let (major, minor) = version.split_once('.').ok_or_else(bad)?;
        let minor: u32 = minor.parse().map_err(|_| bad())?;
        match (kind, major) {
            ("glibc", "2") => Ok(Libc::Glibc(minor)),
            ("musl", "1") => Ok(Libc::Musl(minor)),
            _ => Err(bad()),
        }
    }
}

/// A target interpreter on a target platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// CPython minor version (3.`minor`).
    pub minor: u32,
    /// `x86_64`, `aarch64`, `armv7l`.
    pub machine: String,
    /// The C library.
    pub libc: Libc,
}

impl Target {
    /// Every tag the target accepts, most preferred first.
    pub fn supported_tags(&self) -> Vec<(String, String, String)> {
        let platforms = self.platforms();
        let cp = format!("cp3{}", self.minor);
        let mut tags = Vec::new();
        let mut add = |python: &str, abi: &str, platforms: &[String]| {
            for platform in platforms {
                tags.push((python.to_owned(), abi.to_owned(), platform.clone()));
            }
        };
        add(&cp, &cp, &platforms);
        add(&cp, "abi3", &platforms);
        add(&cp, "none", &platforms);
        for older in (2..self.minor).rev() {
            add(&format!("cp3{older}"), "abi3", &platforms);
        }
        let py_versions = self.py_versions();
        for py in &py_versions {
            add(py, "none", &platforms);
        }
        let any = ["any".to_owned()];
        add(&cp, "none", &any);
        for py in &py_versions {
            add(py, "none", &any);
        }
        tags
    }

    /// `py311`, `py3`, `py310` … `py30`, as packaging orders them.
    fn py_versions(&self) -> Vec<String> {
        let mut versions = vec![format!("py3{}", self.minor), "py3".to_owned()];
        versions.extend((0..self.minor).rev().map(|m| format!("py3{m}")));
        versions
    }

    /// Platform tags, newest C library level first, then plain `linux_<machine>`.
    fn platforms(&self) -> Vec<String> {
        let machine = &self.machine;
        let mut platforms = Vec::new();
        match self.libc {
            Libc::Glibc(max) => {
                for minor in (5..=max).rev() {
                    platforms.push(format!("manylinux_2_{minor}_{machine}"));
                    // The PEP 513/571/599 names of the same levels.
                    let legacy = match minor {
                        17 => Some("manylinux2014"),
                        12 => Some("manylinux2010"),
                        5 => Some("manylinux1"),
                        _ => None,
                    };
                    if let Some(legacy) = legacy {
                        platforms.push(format!("{legacy}_{machine}"));
                    }
                }
            }
            Libc::Musl(max) => {
                for minor in (0..=max).rev() {
                    platforms.push(format!("musllinux_1_{minor}_{machine}"));
                }
            }
        }
        platforms.push(format!("linux_{machine}"));
        platforms
    }

    /// How well `wheel` fits: `None` if not at all, else a rank (lower is better).
    pub fn rank(&self, wheel: &WheelName, supported: &[(String, String, String)]) -> Option<usize> {
        wheel
            .tags
            .iter()
            .filter_map(|tag| supported.iter().position(|s| s == tag))
            .min()
    }
}

/// The machine name a `linux/…` platform's wheels are tagged with.
pub fn machine_of(architecture: &str, variant: Option<&str>) -> Option<&'static str> {
    match (architecture, variant) {
        ("amd64", _) => Some("x86_64"),
        ("arm64", _) => Some("aarch64"),
        ("arm", Some("v7") | None) => Some("armv7l"),
        ("386", _) => Some("i686"),
        ("ppc64le", _) => Some("ppc64le"),
        ("s390x", _) => Some("s390x"),
        ("riscv64", _) => Some("riscv64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(machine: &str, libc: Libc) -> Target {
        Target {
            minor: 11,
            machine: machine.into(),
            libc,
        }
    }

    fn best<'a>(target: &Target, files: &[&'a str]) -> Option<&'a str> {
        let supported = target.supported_tags();
        files
            .iter()
            .filter_map(|f| {
                let rank = target.rank(&WheelName::parse(f).unwrap(), &supported)?;
                Some((rank, *f))
            })
            .min()
            .map(|(_, f)| f)
    }

    #[test]
    fn names_parse_with_build_tags_and_compressed_sets() {
        let name = WheelName::parse(
            "orjson-3.10.12-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(name.name, "orjson");
        assert_eq!(name.version, "3.10.12");
        assert_eq!(name.tags.len(), 2);
        let six = WheelName::parse("six-1.17.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(six.tags[1], ("py3".into(), "none".into(), "any".into()));
        let built = WheelName::parse("Typing_Extensions-4.12.2-1-py3-none-any.whl").unwrap();
        assert_eq!(built.name, "typing-extensions");
        for bad in [
            "six-1.17.0.tar.gz",
            "six-1.17.0-py3.whl",
            "a-b-c-d-e-f-g.whl",
        ] {
            assert!(WheelName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_compatible_wheel_wins() {
        let files = [
            "pkg-1.0-py3-none-any.whl",
            "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            "pkg-1.0-cp311-cp311-manylinux_2_39_x86_64.whl",
            "pkg-1.0-cp311-cp311-musllinux_1_2_x86_64.whl",
            "pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
            "pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        ];
        let glibc = Libc::Glibc(36);
        assert_eq!(
            best(&target("x86_64", glibc), &files),
            Some("pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
        );
        assert_eq!(
            best(&target("x86_64", Libc::Glibc(27)), &files),
            Some("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
        );
        assert_eq!(
            best(&target("aarch64", glibc), &files),
            Some("pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
        );
        assert_eq!(
            best(&target("x86_64", Libc::Musl(2)), &files),
            Some("pkg-1.0-cp311-cp311-musllinux_1_2_x86_64.whl")
        );
        assert_eq!(
            best(&target("armv7l", glibc), &files),
            Some("pkg-1.0-py3-none-any.whl")
        );
        // abi3 from an older CPython fits; an older interpreter's own ABI does not.
        let abi3 = [
            "c-1-cp38-abi3-manylinux2014_x86_64.whl",
            "c-1-cp310-cp310-manylinux2014_x86_64.whl",
        ];
        assert_eq!(best(&target("x86_64", glibc), &abi3), Some(abi3[0]));
        assert_eq!(
            best(
                &target("x86_64", glibc),
                &["l-1-cp311-cp311-manylinux1_x86_64.whl"]
            ),
            Some("l-1-cp311-cp311-manylinux1_x86_64.whl")
        );
        assert_eq!(
            best(&target("x86_64", glibc), &["w-1-cp311-cp311-win_amd64.whl"]),
            None
        );
    }

    #[test]
    fn libc_and_machines() {
        assert_eq!(Libc::parse("glibc-2.36"), Ok(Libc::Glibc(36)));
        assert_eq!(Libc::parse("musl-1.2"), Ok(Libc::Musl(2)));
        assert!(Libc::parse("glibc2.36").is_err());
        assert_eq!(machine_of("amd64", None), Some("x86_64"));
        assert_eq!(machine_of("arm64", Some("v8")), Some("aarch64"));
        assert_eq!(machine_of("arm", Some("v7")), Some("armv7l"));
        assert_eq!(machine_of("arm", Some("v6")), None);
    }
}
