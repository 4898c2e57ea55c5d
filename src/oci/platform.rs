//! Platforms (`linux/arm64/v8`): parsing, normalisation and matching.
//!
//! Our own type rather than oci-spec's: oci-spec 0.10 serialises `os.version` as
//! `os_version`, which would put a wrong field into every index we write.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform an image runs on, as it appears in an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, GOARCH spelling (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Operating system, GOOS spelling (`linux`, `windows`, …).
    pub os: String,
    /// OS version (Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features (Windows images).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v8` for arm64, `v7` for arm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Operating systems and architectures Go (and so every registry tool) knows.
const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "dragonfly",
    "android",
    "ios",
    "plan9",
    "js",
    "wasip1",
];
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64",
    "mipsle", "mips", "loong64", "wasm",
];

/// Why a platform string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform `{value}`: {reason}")]
pub struct PlatformError {
    /// The string as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Platform {
    /// A platform from its parts, normalised (`aarch64` → `arm64`, `arm64` gets `v8`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalise_arch(architecture, variant);
        Platform {
            architecture,
            os: os.to_ascii_lowercase(),
            os_version: None,
            os_features: None,
            variant,
        }
    }

    /// The platform this binary runs on, as a Linux image platform.
    pub fn host() -> Platform {
        Platform::new("linux", std::env::consts::ARCH, None)
    }

    /// Whether an image for `self` (an index entry) serves a request for `wanted`.
    ///
    /// Compares normalised forms, so `linux/arm64` matches an entry `arm64/v8` and
    /// `linux/amd64` matches `amd64/v1`. An `os.version` in the request must match.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        let mine = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        let theirs = Platform::new(&wanted.os, &wanted.architecture, wanted.variant.as_deref());
        mine.os == theirs.os
            && mine.architecture == theirs.architecture
            && mine.variant == theirs.variant
            && (wanted.os_version.is_none() || wanted.os_version == self.os_version)
    }
}

/// Normalises architecture spellings the way containerd's platforms package does, and
/// makes the default variant explicit so that comparisons are plain equality.
fn normalise_arch(architecture: &str, variant: Option<&str>) -> (String, Option<String>) {
    let architecture = architecture.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    match architecture.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => (
            "arm64".into(),
            Some(match variant.as_deref() {
                None | Some("8" | "v8") => "v8".into(),
                Some(v) => v.into(),
            }),
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7" | "v7") => "v7".into(),
                Some(v) if v.starts_with('v') => v.into(),
                Some(v) => format!("v{v}"),
            }),
        ),
        "i386" | "i686" | "386" => ("386".into(), variant),
        _ => (architecture, variant),
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]`.
    fn from_str(value: &str) -> Result<Platform, PlatformError> {
        let fail = |reason: String| PlatformError {
            value: value.to_string(),
            reason,
        };
        let parts: Vec<&str> = value.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => {
                return Err(fail(
                    "expected os/arch or os/arch/variant, e.g. linux/arm64".into(),
                ));
            }
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(fail("empty component".into()));
        }
        let platform = Platform::new(os, arch, variant);
        if !KNOWN_OS.contains(&platform.os.as_str()) {
            return Err(fail(format!("unknown operating system `{os}`")));
        }
        if !KNOWN_ARCH.contains(&platform.architecture.as_str()) {
            return Err(fail(format!("unknown architecture `{arch}`")));
        }
        Ok(platform)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        if let Some(version) = &self.os_version {
            write!(f, " ({version})")?;
        }
        Ok(())
    }
}

/// The platform a config describes (for bases whose reference names one manifest).
pub fn platform_of_config(config: &serde_json::Value) -> Option<Platform> {
    let text = |key: &str| config.get(key).and_then(serde_json::Value::as_str);
    let mut platform = Platform::new(text("os")?, text("architecture")?, text("variant"));
    platform.os_version = text("os.version").map(str::to_string);
    Some(platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises_aliases() {
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
    }

    #[test]
    fn rejects_unknown_and_malformed_platforms() {
        for bad in [
            "linux",
            "linux/",
            "plan10/amd64",
            "linux/z80",
            "a/b/c/d",
            "/amd64",
        ] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert_eq!(err.value, bad, "{err}");
        }
        assert!(
            "linux/z80"
                .parse::<Platform>()
                .unwrap_err()
                .to_string()
                .contains("unknown architecture `z80`")
        );
    }

    #[test]
    fn index_entries_match_requests_by_normalised_form() {
        let entry = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
        };
        assert!(entry.satisfies(&p("linux/arm64/v8")));
        assert!(!entry.satisfies(&p("linux/amd64")));
        let v7 = Platform::new("linux", "arm", Some("v7"));
        assert!(!v7.satisfies(&p("linux/arm/v6")));
    }

    #[test]
    fn os_version_is_spelled_with_a_dot() {
        let mut windows = Platform::new("windows", "amd64", None);
        windows.os_version = Some("10.0.17763.1".into());
        let json = serde_json::to_string(&windows).unwrap();
        assert!(json.contains("\"os.version\":\"10.0.17763.1\""), "{json}");
        let back: Platform = serde_json::from_str(&json).unwrap();
        assert_eq!(back, windows);
    }
}
