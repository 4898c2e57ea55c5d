//! Installing one wheel (the binary distribution format, PEP 427) as an
//! [`EntrySource`]: its members stream from the archive into the layer at the paths an
//! installer would give them, and the files an installer writes (console scripts,
//! `INSTALLER`, the rewritten `RECORD`) are generated in memory.
//!
//! Every member must be listed in the wheel's own `RECORD` with a sha256 and size;
//! those are the declarations the layer checks as the bytes stream. No `.pyc` is
//! written (they embed build paths and times), nor `direct_url.json` or `REQUESTED`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hoist_layers::{EntrySource, SourceEntry, SourceError, SourceKind};
use sha2::{Digest as _, Sha256};

use super::zip::Archive;
use super::{PythonError, normalize};

/// The most a metadata file (`RECORD`, `WHEEL`, `entry_points.txt`) or a script whose
/// shebang is rewritten may be: they are read into memory.
const SMALL_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// Where a wheel's parts go in the image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstallLayout {
    /// `purelib`, `platlib` and the wheel's root: `/opt/venv/lib/python3.11/site-packages`.
    pub site_packages: String,
    /// Scripts and entry points: `/opt/venv/bin`.
    pub scripts: String,
    /// `.data/data`: `/opt/venv`.
    pub data: String,
    /// `.data/headers` go to `<headers>/<distribution>`: `/opt/venv/include/site/python3.11`.
    pub headers: String,
    /// The interpreter scripts run with (their shebang): `/opt/venv/bin/python`;
    /// `None` when unknown (a wheel with scripts is then refused).
    pub interpreter: Option<String>,
}

/// Where an installed file's bytes come from.
#[derive(Debug)]
enum Content {
    /// The member at this index of the archive's directory.
    Member(usize),
    /// Generated (or rewritten) in memory.
    Bytes(Vec<u8>),
}

/// One wheel, planned for installation.
#[derive(Debug)]
pub struct WheelInstall {
    file_name: String,
    archive: Archive,
    entries: Vec<SourceEntry>,
    contents: Vec<Content>,
}

/// One line of a `RECORD`: sha256 and size.
struct Recorded {
    sha256: [u8; 32],
    size: u64,
}

impl WheelInstall {
    /// Reads the wheel at `path` (`chosen`: its file name, the sha256 it must hash to,
    /// the lock's URL for it), and plans its files under `layout`. Hashes the file,
    /// then reads its directory and metadata files; members are read at build time
    /// through the same open file.
    pub fn plan(
        path: &Path,
        chosen: &super::ChosenWheel,
        layout: &InstallLayout,
    ) -> Result<WheelInstall, PythonError> {
        let (file_name, sha256) = (chosen.file.as_str(), chosen.sha256.as_str());
        let bad = |message: String| PythonError::Wheel {
            file: file_name.to_owned(),
            message,
        };
        let archive = Archive::open(path, sha256).map_err(|e| bad(e.to_string()))?;
        let wheel_name = super::tags::WheelName::parse(file_name).map_err(bad)?;
        let dist_info = find_dist_info(&archive, &wheel_name.name).ok_or_else(|| {
            bad("no .dist-info directory with a WHEEL file for this distribution".into())
        })?;
        let read = |name: &str| -> Result<Option<Vec<u8>>, PythonError> {
            let Some(member) = archive.members.iter().find(|m| m.name == name) else {
                return Ok(None);
            };
            archive
                .read_member(member, SMALL_FILE_LIMIT)
                .map(Some)
                .map_err(|e| bad(e.to_string()))
        };
        let wheel_file = read(&format!("{dist_info}/WHEEL"))?.unwrap_or_default();
        let wheel_meta = String::from_utf8_lossy(&wheel_file);
        let major = header(&wheel_meta, "Wheel-Version")
            .and_then(|v| v.split('.').next().map(str::to_owned));
        if major.as_deref() != Some("1") {
            return Err(bad(format!(
                "Wheel-Version {:?} in {dist_info}/WHEEL: only version 1 is installed",
                header(&wheel_meta, "Wheel-Version")
            )));
        }
        let record_text = read(&format!("{dist_info}/RECORD"))?
            .ok_or_else(|| bad(format!("no {dist_info}/RECORD")))?;
        let record = parse_record(&String::from_utf8_lossy(&record_text)).map_err(bad)?;
        let entry_points = read(&format!("{dist_info}/entry_points.txt"))?;

        let mut plan = Planner {
            file_name,
            layout,
            data_dir: format!("{}.data", dist_info.trim_end_matches(".dist-info")),
            dist_info: &dist_info,
            distribution: dist_info
                .trim_end_matches(".dist-info")
                .split('-')
                .next()
                .unwrap_or_default()
                .to_owned(),
            entries: Vec::new(),
            contents: Vec::new(),
        };
        plan.members(&archive, &record)?;
        if let Some(text) = entry_points {
            plan.entry_points(&String::from_utf8_lossy(&text))?;
        }
        plan.generated(
            &format!("{}/{dist_info}/INSTALLER", layout.site_packages),
            b"hoist\n".to_vec(),
            0o644,
        );
        plan.generated(
            &format!("{}/{dist_info}/{PROVENANCE}", layout.site_packages),
            provenance(chosen),
            0o644,
        );
        plan.record();
        Ok(WheelInstall {
            file_name: file_name.to_owned(),
            archive,
            entries: plan.entries,
            contents: plan.contents,
        })
    }
}

/// The file recording where an installed wheel came from (PEP 710's name and shape),
/// which the SBOM reads: the wheel's file name, its sha256, and the lock's URL for it.
pub const PROVENANCE: &str = "provenance_url.json";

/// `provenance_url.json`: `{"archive_info": {"hashes": {"sha256"}}, "filename", "url"}`
/// (keys sorted, no URL when the lock names none: a wheelhouse's or an index's file).
fn provenance(chosen: &super::ChosenWheel) -> Vec<u8> {
    let mut value = serde_json::json!({
        "archive_info": {"hashes": {"sha256": chosen.sha256}},
        "filename": chosen.file,
    });
    if let Some(url) = &chosen.url {
        // A lock's URL may carry user information: never into the image or its SBOM.
        value["url"] = serde_json::json!(super::credentials::redact(url));
    }
    let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// `Name: value` from an email-header style file.
fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The `.dist-info` directory of the distribution `name` (normalised).
fn find_dist_info(archive: &Archive, name: &str) -> Option<String> {
    archive.members.iter().find_map(|m| {
        let dir = m.name.strip_suffix("/WHEEL")?;
        let stem = dir.strip_suffix(".dist-info")?;
        if dir.contains('/') {
            return None;
        }
        let dist = stem.split('-').next()?;
        (normalize(dist) == name).then(|| dir.to_owned())
    })
}

/// `RECORD` rows: path → sha256 and size (rows without a hash, such as `RECORD`
/// itself, are left out).
fn parse_record(text: &str) -> Result<BTreeMap<String, Recorded>, String> {
    let mut rows = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        let [path, hash, size] = fields.as_slice() else {
            return Err(format!("RECORD line {}: expected path,hash,size", i + 1));
        };
        if hash.is_empty() {
            continue;
        }
        let digest = hash
            .strip_prefix("sha256=")
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                format!(
                    "RECORD line {}: `{hash}` is not a sha256 (sha256=<base64>)",
                    i + 1
                )
            })?;
        let size = size
            .parse()
            .map_err(|_| format!("RECORD line {}: size `{size}` is not a number", i + 1))?;
        rows.insert(
            path.clone(),
            Recorded {
                sha256: digest,
                size,
            },
        );
    }
    Ok(rows)
}

/// Splits one CSV line (RECORD quotes paths holding commas or quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field at least").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A member name that stays inside the wheel: relative, no `.`/`..`/empty components,
/// no backslashes.
fn safe_member_name(name: &str) -> bool {
    !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

struct Planner<'a> {
    file_name: &'a str,
    layout: &'a InstallLayout,
    dist_info: &'a str,
    data_dir: String,
    distribution: String,
    entries: Vec<SourceEntry>,
    contents: Vec<Content>,
}

impl Planner<'_> {
    fn bad(&self, message: String) -> PythonError {
        PythonError::Wheel {
            file: self.file_name.to_owned(),
            message,
        }
    }

    /// The shebang's interpreter for `what` (a script of this wheel), or why not.
    fn interpreter(&self, what: &str) -> Result<&str, PythonError> {
        self.layout
            .interpreter
            .as_deref()
            .ok_or_else(|| PythonError::NoInterpreter {
                what: format!("{what} of {}", self.file_name),
                platform: String::new(),
            })
    }

    fn members(
        &mut self,
        archive: &Archive,
        record: &BTreeMap<String, Recorded>,
    ) -> Result<(), PythonError> {
        let skipped = [
            "RECORD",
            "RECORD.jws",
            "RECORD.p7s",
            "INSTALLER",
            "REQUESTED",
            "direct_url.json",
            PROVENANCE,
        ]
        .map(|f| format!("{}/{f}", self.dist_info));
        for (index, member) in archive.members.iter().enumerate() {
            if member.name.ends_with('/') {
                continue;
            }
            if !safe_member_name(&member.name) {
                return Err(self.bad(format!(
                    "member {:?} would escape the install directory",
                    member.name
                )));
            }
            if skipped.contains(&member.name)
                || Path::new(&member.name)
                    .extension()
                    .is_some_and(|e| e == "pyc")
            {
                continue;
            }
            let recorded = record.get(&member.name).ok_or_else(|| {
                self.bad(format!(
                    "{} is not in the wheel's RECORD with a sha256",
                    member.name
                ))
            })?;
            if recorded.size != member.size {
                return Err(self.bad(format!(
                    "{} is {} bytes, its RECORD says {}",
                    member.name, member.size, recorded.size
                )));
            }
            let executable = member.unix_mode.is_some_and(|m| m & 0o111 != 0);
            let (dest, script) = self.destination(&member.name)?;
            if script && self.starts_with_python_shebang(archive, member)? {
                // `#!python` is the installer's to replace with the image's interpreter.
                let bytes = archive
                    .read_member(member, SMALL_FILE_LIMIT)
                    .map_err(|e| self.bad(e.to_string()))?;
                if <[u8; 32]>::from(Sha256::digest(&bytes)) != recorded.sha256 {
                    return Err(self.bad(format!(
                        "{} does not match its sha256 in RECORD",
                        member.name
                    )));
                }
                let rest = &bytes[b"#!python".len()..];
                let rest = rest.strip_prefix(b"w").unwrap_or(rest);
                let interpreter = self.interpreter(&format!("the script {}", member.name))?;
                let mut out = format!("#!{interpreter}").into_bytes();
                out.extend_from_slice(rest);
                self.generated(&dest, out, 0o755);
                continue;
            }
            self.entries.push(SourceEntry {
                path: dest,
                kind: SourceKind::File {
                    size: member.size,
                    sha256: recorded.sha256,
                },
                // Scripts (a binary such as ruff's, or one with its own shebang) are
                // executable whatever the zip says.
                mode: if executable || script { 0o755 } else { 0o644 },
            });
            self.contents.push(Content::Member(index));
        }
        Ok(())
    }

    /// Whether a script member begins with `#!python` (read from its first bytes only:
    /// a script may be a large binary).
    fn starts_with_python_shebang(
        &self,
        archive: &Archive,
        member: &super::zip::Member,
    ) -> Result<bool, PythonError> {
        let mut head = Vec::with_capacity(8);
        archive
            .open_member(member)
            .and_then(|reader| reader.take(8).read_to_end(&mut head))
            .map_err(|e| self.bad(format!("{}: {e}", member.name)))?;
        Ok(head == b"#!python")
    }

    /// The image path of a member, and whether it is a script.
    fn destination(&self, name: &str) -> Result<(String, bool), PythonError> {
        let layout = self.layout;
        let Some(rest) = name.strip_prefix(&format!("{}/", self.data_dir)) else {
            return Ok((format!("{}/{name}", layout.site_packages), false));
        };
        let (scheme, path) = rest
            .split_once('/')
            .ok_or_else(|| self.bad(format!("{name}: a .data member needs a scheme directory")))?;
        Ok(match scheme {
            "purelib" | "platlib" => (format!("{}/{path}", layout.site_packages), false),
            "scripts" => (format!("{}/{path}", layout.scripts), true),
            "data" => (format!("{}/{path}", layout.data), false),
            "headers" => (
                format!("{}/{}/{path}", layout.headers, self.distribution),
                false,
            ),
            other => return Err(self.bad(format!("{name}: unknown .data scheme `{other}`"))),
        })
    }

    fn generated(&mut self, path: &str, bytes: Vec<u8>, mode: u32) {
        self.entries.push(SourceEntry {
            path: path.to_owned(),
            kind: SourceKind::File {
                size: bytes.len() as u64,
                sha256: Sha256::digest(&bytes).into(),
            },
            mode,
        });
        self.contents.push(Content::Bytes(bytes));
    }

    /// Scripts for `[console_scripts]` and `[gui_scripts]` (the same on Linux).
    fn entry_points(&mut self, text: &str) -> Result<(), PythonError> {
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
                continue;
            }
            if !matches!(section, "console_scripts" | "gui_scripts") {
                continue;
            }
            let (name, target) = line.split_once('=').ok_or_else(|| {
                self.bad(format!(
                    "entry_points.txt: `{line}` is not name = module:function"
                ))
            })?;
            let name = name.trim();
            let target = target.split('[').next().unwrap_or_default().trim();
            let (module, function) = target.split_once(':').ok_or_else(|| {
                self.bad(format!(
                    "entry_points.txt: `{target}` is not module:function"
                ))
            })?;
            let valid = |s: &str| {
                !s.is_empty()
                    && s.split('.').all(|p| {
                        !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                    })
            };
            if !valid(module.trim())
                || !valid(function.trim())
                || !safe_member_name(name)
                || name.contains('/')
            {
                return Err(self.bad(format!(
                    "entry_points.txt: `{line}` is not a valid entry point"
                )));
            }
            let interpreter = self.interpreter(&format!("the console script {name}"))?;
            let script = script_text(interpreter, module.trim(), function.trim());
            let path = format!("{}/{name}", self.layout.scripts);
            self.generated(&path, script.into_bytes(), 0o755);
        }
        Ok(())
    }

    /// The installed `RECORD`: every file with its path relative to site-packages, its
    /// sha256 and size, sorted; `RECORD` itself without a hash.
    fn record(&mut self) {
        let own = format!("{}/{}/RECORD", self.layout.site_packages, self.dist_info);
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .filter_map(|entry| match entry.kind {
                SourceKind::File { size, sha256 } => Some(format!(
                    "{},sha256={},{size}",
                    csv_field(&relative(&self.layout.site_packages, &entry.path)),
                    URL_SAFE_NO_PAD.encode(sha256)
                )),
                _ => None,
            })
            .collect();
        lines.push(format!(
            "{},,",
            csv_field(&relative(&self.layout.site_packages, &own))
        ));
        lines.sort();
        let mut text = lines.join("\n");
        text.push('\n');
        self.generated(&own, text.into_bytes(), 0o644);
    }
}

/// `path` relative to the directory `from` (both absolute): `six.py`, `../../../bin/x`.
fn relative(from: &str, path: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let to: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// The launcher pip writes for an entry point.
fn script_text(interpreter: &str, module: &str, function: &str) -> String {
    let import = function.split('.').next().unwrap_or(function);
    format!(
        "#!{interpreter}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({function}())\n"
    )
}

impl EntrySource for WheelInstall {
    fn name(&self) -> String {
        self.file_name.clone()
    }

    fn entries(&self) -> Result<Vec<SourceEntry>, SourceError> {
        Ok(self.entries.clone())
    }

    fn open(&self, index: usize) -> Result<Box<dyn Read + '_>, SourceError> {
        match self.contents.get(index) {
            Some(Content::Member(member)) => {
                Ok(self.archive.open_member(&self.archive.members[*member])?)
            }
            Some(Content::Bytes(bytes)) => Ok(Box::new(bytes.as_slice())),
            None => Err(format!("no entry {index}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_never_records_a_urls_user_information() {
        let chosen = super::super::ChosenWheel {
            name: "six".into(),
            version: "1.17.0".into(),
            file: "six-1.17.0-py2.py3-none-any.whl".into(),
            sha256: "ab".repeat(32),
            url: Some("https://me:s3cret@files.example/six-1.17.0-py2.py3-none-any.whl".into()),
        };
        let text = String::from_utf8(provenance(&chosen)).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("me:"), "{text}");
        assert!(
            text.contains("\"url\":\"https://files.example/six-1.17.0-py2.py3-none-any.whl\""),
            "{text}"
        );
    }

    #[test]
    fn record_rows_and_paths() {
        let rows = parse_record(
            "six.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\"a,b.py\",sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\nsix-1.dist-info/RECORD,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.contains_key("a,b.py"));
        assert!(parse_record("x.py,md5=abc,3\n").is_err());
        assert!(parse_record("x.py\n").is_err());
        assert_eq!(
            relative(
                "/opt/venv/lib/python3.11/site-packages",
                "/opt/venv/bin/uvicorn"
            ),
            "../../../bin/uvicorn"
        );
        assert_eq!(relative("/a/b", "/a/b/c/d.py"), "c/d.py");
        assert!(!safe_member_name("../etc/passwd"));
        assert!(!safe_member_name("/etc/passwd"));
        assert!(!safe_member_name("a//b"));
        assert!(safe_member_name("pkg/__init__.py"));
    }
}
