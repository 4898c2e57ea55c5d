//! Package metadata parsers: dpkg `status` paragraphs, apk `installed`, `os-release`,
//! Python core metadata (`METADATA`, `PKG-INFO`), npm `package.json` and
//! `package-lock.json`, and `Cargo.lock`. Each yields [`Package`]s with their purl
//! (package-url spec: pkg:deb, pkg:apk, pkg:pypi, pkg:npm, pkg:cargo).

use std::collections::BTreeMap;

use serde_json::Value;

use super::purl::purl;

/// Which ecosystem a package belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    /// A Debian/Ubuntu package (dpkg).
    Deb,
    /// An Alpine package (apk).
    Apk,
    /// A Python distribution.
    PyPI,
    /// An npm package.
    Npm,
    /// A Rust crate.
    Cargo,
}

impl Ecosystem {
    /// The purl type, also used in SPDX IDs.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::PyPI => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "cargo",
        }
    }

    /// Whether it is an operating system package (from the base's databases).
    pub fn is_system(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Apk)
    }
}

/// One package found in the image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its name as the ecosystem spells it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its package URL.
    pub purl: String,
    /// The license its metadata declares, as written (checked before use in SPDX).
    pub license: Option<String>,
    /// The file it was found in (`/var/lib/dpkg/status`).
    pub found_in: String,
    /// The archive it was installed from, when recorded (a wheel's
    /// `provenance_url.json`).
    pub archive: Option<ArchiveOrigin>,
}

/// The archive a package was installed from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArchiveOrigin {
    /// Its file name (`six-1.17.0-py2.py3-none-any.whl`).
    pub file_name: String,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// Where it is downloaded from, when known.
    pub url: Option<String>,
}

/// A wheel's `provenance_url.json` as hoist writes it (PEP 710's shape, plus
/// `filename`): `None` when it is not that.
pub fn python_provenance(bytes: &[u8]) -> Option<ArchiveOrigin> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let sha256 = value.pointer("/archive_info/hashes/sha256")?.as_str()?;
    let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    let url = value.get("url").and_then(Value::as_str).map(str::to_owned);
    let file_name = value
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| url.as_deref()?.rsplit('/').next().map(str::to_owned))?;
    valid.then(|| ArchiveOrigin {
        file_name,
        sha256: sha256.to_ascii_lowercase(),
        url,
    })
}

/// The distribution `os-release` names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `ubuntu`).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`), when given.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, when given.
    pub pretty_name: Option<String>,
}

impl Distro {
    /// The purl `distro` qualifier: `debian-12`.
    pub fn qualifier(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        }
    }
}

/// Parses `os-release` (shell-style `KEY=value`, values optionally quoted).
pub fn os_release(text: &str) -> Option<Distro> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            fields.insert(key.trim().to_string(), value.replace("\\\"", "\""));
        }
    }
    Some(Distro {
        id: fields.get("ID")?.to_lowercase(),
        version_id: fields.get("VERSION_ID").cloned(),
        pretty_name: fields.get("PRETTY_NAME").cloned(),
    })
}

/// RFC 822-style paragraphs (dpkg): `Key: value` lines, continuation lines indented,
/// paragraphs separated by blank lines.
fn paragraphs(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            last_key = None;
        } else if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(key) = &last_key
                && let Some(value) = current.get_mut(key)
            {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current.insert(key.trim().to_string(), value.trim().to_string());
            last_key = Some(key.trim().to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The installed packages of a dpkg status file (or a `status.d/` entry, which may
/// omit `Status`).
pub fn dpkg(text: &str, distro: Option<&Distro>, found_in: &str) -> Vec<Package> {
    let namespace = distro.map_or("debian", |d| d.id.as_str());
    paragraphs(text)
        .into_iter()
        .filter(|p| {
            p.get("Status")
                .is_none_or(|status| status.split_whitespace().last() == Some("installed"))
        })
        .filter_map(|p| {
            let name = p.get("Package")?.clone();
            let version = p.get("Version")?.clone();
            let mut qualifiers = Vec::new();
            if let Some(arch) = p.get("Architecture") {
                qualifiers.push(("arch", arch.clone()));
            }
            if let Some(distro) = distro {
                qualifiers.push(("distro", distro.qualifier()));
            }
            Some(Package {
                ecosystem: Ecosystem::Deb,
                purl: purl("deb", Some(namespace), &name, &version, &qualifiers),
                name,
                version,
                license: None,
                found_in: found_in.to_string(),
                archive: None,
            })
        })
        .collect()
}

/// The packages of an apk `installed` database (`P:` name, `V:` version, `A:` arch,
/// `L:` license; one blank-line-separated record per package).
pub fn apk(text: &str, distro: Option<&Distro>, found_in: &str) -> Vec<Package> {
    let namespace = distro.map_or("alpine", |d| d.id.as_str());
    let mut out = Vec::new();
    for record in text.split("\n\n") {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in record.lines() {
            if let Some((key, value)) = line.split_once(':')
                && key.len() == 1
            {
                fields.entry(key).or_insert(value);
            }
        }
        let (Some(name), Some(version)) = (fields.get("P"), fields.get("V")) else {
            continue;
        };
        let mut qualifiers = Vec::new();
        if let Some(arch) = fields.get("A") {
            qualifiers.push(("arch", (*arch).to_string()));
        }
        if let Some(distro) = distro {
            qualifiers.push(("distro", distro.qualifier()));
        }
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            purl: purl("apk", Some(namespace), name, version, &qualifiers),
            name: (*name).to_string(),
            version: (*version).to_string(),
            license: fields.get("L").map(|l| (*l).to_string()),
            found_in: found_in.to_string(),
            archive: None,
        });
    }
    out
}

/// A Python distribution's core metadata (`METADATA` or `PKG-INFO`: email headers
/// up to the first blank line).
pub fn python(text: &str, found_in: &str) -> Option<Package> {
    let mut name = None;
    let mut version = None;
    let mut license = None;
    let mut expression = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "License" if !value.is_empty() && value != "UNKNOWN" => license = Some(value),
            "License-Expression" => expression = Some(value),
            _ => {}
        }
    }
    let (name, version) = (name?, version?);
    Some(Package {
        ecosystem: Ecosystem::PyPI,
        purl: purl("pypi", None, &normalise_python(&name), &version, &[]),
        name,
        version,
        license: expression.or(license),
        found_in: found_in.to_string(),
        archive: None,
    })
}

/// PEP 503 normalisation, as the pypi purl type asks: lowercase, runs of `-_.` → `-`.
fn normalise_python(name: &str) -> String {
    let mut out = String::new();
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// npm's license field: a string, or the old `{ "type": … }` form.
fn npm_license(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn npm_package(name: &str, version: &str, license: Option<String>, found_in: &str) -> Package {
    let (namespace, short) = match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
        _ => (None, name),
    };
    Package {
        ecosystem: Ecosystem::Npm,
        purl: purl("npm", namespace, short, version, &[]),
        name: name.to_string(),
        version: version.to_string(),
        license,
        found_in: found_in.to_string(),
        archive: None,
    }
}

/// A `node_modules/**/package.json`.
pub fn npm_manifest(bytes: &[u8], found_in: &str) -> Option<Package> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let name = value.get("name")?.as_str()?;
    let version = value.get("version")?.as_str()?;
    Some(npm_package(
        name,
        version,
        npm_license(value.get("license")),
        found_in,
    ))
}

/// The packages a `package-lock.json` pins: `packages` (lockfile v2/v3) or the
/// nested `dependencies` (v1). The root project itself is not listed.
pub fn npm_lock(bytes: &[u8], found_in: &str) -> Vec<Package> {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(packages) = value.get("packages").and_then(Value::as_object) {
        for (key, entry) in packages {
            let Some((_, name)) = key.rsplit_once("node_modules/") else {
                continue;
            };
            let name = entry.get("name").and_then(Value::as_str).unwrap_or(name);
            if let Some(version) = entry.get("version").and_then(Value::as_str) {
                out.push(npm_package(
                    name,
                    version,
                    npm_license(entry.get("license")),
                    found_in,
                ));
            }
        }
    } else if let Some(dependencies) = value.get("dependencies") {
        let mut pending = vec![dependencies];
        while let Some(Value::Object(map)) = pending.pop() {
            for (name, entry) in map {
                if let Some(version) = entry.get("version").and_then(Value::as_str) {
                    out.push(npm_package(name, version, None, found_in));
                }
                if let Some(nested) = entry.get("dependencies") {
                    pending.push(nested);
                }
            }
        }
    }
    out
}

/// The crates a `Cargo.lock` pins.
pub fn cargo_lock(text: &str, found_in: &str) -> Vec<Package> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Locked>,
    }
    #[derive(serde::Deserialize)]
    struct Locked {
        name: String,
        version: String,
    }
    let Ok(lock) = toml::from_str::<Lock>(text) else {
        return Vec::new();
    };
    lock.package
        .into_iter()
        .map(|p| Package {
            ecosystem: Ecosystem::Cargo,
            purl: purl("cargo", None, &p.name, &p.version, &[]),
            name: p.name,
            version: p.version,
            license: None,
            found_in: found_in.to_string(),
            archive: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.35.0-4+deb12u1+b1\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";

    #[test]
    fn dpkg_lists_installed_packages_with_deb_purls() {
        let distro = os_release(
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        assert_eq!(distro.qualifier(), "debian-12");
        let packages = dpkg(STATUS, Some(&distro), "/var/lib/dpkg/status");
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "busybox-static");
        assert_eq!(
            packages[0].purl,
            "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64&distro=debian-12"
        );
    }

    #[test]
    fn apk_python_npm_and_cargo_metadata() {
        let apk = apk(
            "C:Q1x\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n",
            Some(&Distro {
                id: "alpine".into(),
                version_id: Some("3.19.1".into()),
                pretty_name: None,
            }),
            "/lib/apk/db/installed",
        );
        assert_eq!(apk.len(), 2);
        assert_eq!(
            apk[0].purl,
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
        assert_eq!(apk[1].license.as_deref(), Some("GPL-2.0-only"));

        let py = python(
            "Metadata-Version: 2.1\nName: Flask_Cors\nVersion: 4.0.1\nLicense: MIT\n\nLicense: not this\n",
            "/x",
        )
        .unwrap();
        assert_eq!(py.purl, "pkg:pypi/flask-cors@4.0.1");
        assert_eq!(py.license.as_deref(), Some("MIT"));

        let npm = npm_manifest(
            br#"{"name":"@angular/core","version":"17.0.0","license":"MIT"}"#,
            "/x",
        )
        .unwrap();
        assert_eq!(npm.purl, "pkg:npm/%40angular/core@17.0.0");
        let lock = npm_lock(
            br#"{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/left-pad":{"version":"1.3.0","license":"WTFPL"},"node_modules/a/node_modules/@s/b":{"version":"2.0.0"}}}"#,
            "/x",
        );
        let purls: Vec<&str> = lock.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(purls, ["pkg:npm/%40s/b@2.0.0", "pkg:npm/left-pad@1.3.0"]);

        let cargo = cargo_lock(
            "version = 4\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
            "/x",
        );
        assert_eq!(cargo[0].purl, "pkg:cargo/serde@1.0.200");
    }
}
