//! Resolved build settings: the config file, command-line overrides and the
//! environment folded into one value, validated, with every path made absolute-or-
//! relative-to-the-config and every error naming the key or flag it came from.
//!
//! Resolution is pure (no I/O beyond checking that layer sources exist), so every rule
//! here is unit-tested.

pub mod budget;
pub mod config_edit;
mod layer;
mod python;

use std::collections::BTreeMap;
use std::path::Path;

use hoist_layers::{Compression, DEFAULT_EPOCH, LayerSpec};

pub use config_edit::ConfigEdits;
pub use python::{BaseFacts, PendingPython, PythonContext, WHEEL_CACHE_DIR};

use crate::config::{ConfigFile, OneOrMany};
use crate::error::{Error, Result};
use crate::oci::canonical::MAX_RFC3339_SECONDS;
use crate::oci::location::{Location, is_valid_tag};
use crate::oci::platform::Platform;

/// Values given on the command line; each wins over the config file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--base`, relative to the working directory.
    pub base: Option<String>,
    /// `--platform` values (each may be comma-separated).
    pub platforms: Vec<String>,
    /// `--label k=v`.
    pub labels: Vec<String>,
    /// `--env K=V`.
    pub env: Vec<String>,
    /// `--tag`.
    pub tags: Vec<String>,
    /// `--format`.
    pub format: Option<String>,
    /// `--compression`.
    pub compression: Option<String>,
    /// `--compression-level`.
    pub compression_level: Option<i32>,
    /// `--entrypoint`: a JSON array of strings, or words separated by spaces.
    pub entrypoint: Option<String>,
    /// `--cmd`, written as `--entrypoint` is.
    pub cmd: Option<String>,
    /// `--workdir`.
    pub workdir: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--expose` (repeatable): added to `[config].ports`.
    pub expose: Vec<String>,
}

/// Whether to keep the base's manifest flavour or convert to OCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Keep the base's flavour (scratch is OCI).
    Keep,
    /// Always write OCI media types.
    Oci,
}

/// One new layer, ready to build.
#[derive(Clone, Debug)]
pub struct PlannedLayer {
    /// The layer's short name (`from` as written, `files: a, b`, `(whiteouts)`): its
    /// `origin` in `--json` output.
    pub label: String,
    /// What it moves, for progress lines and errors (`config → /etc/app`, `remove
    /// /x`); the build puts its position in the image before it (`layer 2 (config →
    /// /etc/app)`), numbered as `hoist inspect` and `hoist diff` number layers.
    pub summary: String,
    /// Its history entry's `created_by`: `hoist: FROM → TO[, FROM → TO…]`, distinct
    /// for every layer of the plan.
    pub created_by: String,
    /// What to build.
    pub spec: LayerSpec,
    /// Only in these platforms' images; `None` = all.
    pub platforms: Option<Vec<Platform>>,
    /// The number of the `[[layer]]` it comes from, from 0 (the several layers of a
    /// Python `[[layer]]` share it): errors name it `layer[N]`, as the provenance does.
    pub number: usize,
}

/// Everything a build needs to know, resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Repositories the image is for (`[image].name`, one or several), in order.
    pub names: Vec<String>,
    /// Base image, paths resolved.
    pub base: Location,
    /// The base as the user wrote it (recorded in annotations: must not depend on the
    /// checkout path, or two checkouts would build different digests).
    pub base_name: String,
    /// Platforms to build; `None` = every platform the base has.
    pub platforms: Option<Vec<Platform>>,
    /// New layers in order.
    pub layers: Vec<PlannedLayer>,
    /// Edits to each platform's config.
    pub config_edits: ConfigEdits,
    /// Annotations for manifests and the index.
    pub annotations: BTreeMap<String, String>,
    /// Layer compression.
    pub compression: Compression,
    /// Output manifest flavour.
    pub format: Format,
    /// Seconds since the epoch for file mtimes, `created` and history.
    pub epoch: u64,
    /// Tags for outputs that hold tags.
    pub tags: Vec<String>,
    /// Attach an SPDX SBOM to every platform image (`image.sbom`, `--no-sbom`).
    pub sbom: bool,
    /// List every new file in the SBOMs (`image.sbom_files`).
    pub sbom_files: bool,
    /// Size limits (`[budget]`).
    pub budget: budget::Budget,
    /// `[[layer]] python` entries, planned by the build once the base is open
    /// ([`Plan::expand_python`]); empty after that.
    pub python: Vec<PendingPython>,
    /// The sha256 of the config file's bytes as they were read and parsed (what the
    /// provenance records); `None` for a config not read from a file.
    pub config_digest: Option<hoist_layers::Digest>,
}

/// Resolves a config file (at `config_path`) with overrides. `source_date_epoch` is
/// the `SOURCE_DATE_EPOCH` environment variable, if set.
pub fn resolve(
    config_path: &Path,
    file: &ConfigFile,
    overrides: &Overrides,
    source_date_epoch: Option<&str>,
) -> Result<Plan> {
    let config_dir = config_path.parent().unwrap_or(Path::new("."));
    let (base_name, base) = resolve_base(file, overrides, config_path)?;
    let platforms = resolve_platforms(file, overrides)?;

    // Errors name where a value came from: the flag, or the key in hoist.toml.
    let origin = |flag: &'static str, key: &'static str, from_flag: bool| {
        if from_flag { flag } else { key }
    };
    let compression = resolve_compression(
        overrides
            .compression
            .as_deref()
            .or(file.image.compression.as_deref()),
        overrides.compression_level.or(file.image.compression_level),
        [
            origin(
                "--compression",
                "image.compression",
                overrides.compression.is_some(),
            ),
            origin(
                "--compression-level",
                "image.compression_level",
                overrides.compression_level.is_some(),
            ),
        ],
    )?;
    let format = match overrides.format.as_deref().or(file.image.format.as_deref()) {
        None | Some("keep") => Format::Keep,
        Some("oci") => Format::Oci,
        Some(other) => {
            return Err(invalid(
                origin("--format", "image.format", overrides.format.is_some()),
                &format!("`{other}`: expected keep or oci"),
            ));
        }
    };
    let epoch = match source_date_epoch {
        None | Some("") => DEFAULT_EPOCH,
        Some(text) => parse_epoch(text)?,
    };

    let mut layers = Vec::new();
    let mut pending = Vec::new();
    for (i, layer) in file.layers.iter().enumerate() {
        match &layer.python {
            Some(section) => {
                let mut python = python::resolve_python(
                    i,
                    layer,
                    section,
                    config_dir,
                    epoch,
                    compression,
                    platforms.as_deref(),
                )?;
                python.at = layers.len();
                pending.push(python);
            }
            None => layers.push(layer::plan_layer(i, layer, config_dir, epoch, compression)?),
        }
    }
    layer::distinct_history(&mut layers);
    let config_edits = config_edits(file, overrides)?;
    let tags = resolve_tags(file, overrides)?;

    Ok(Plan {
        names: file
            .image
            .name
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default(),
        base,
        base_name,
        platforms,
        layers,
        config_edits,
        annotations: file.annotations.clone(),
        compression,
        format,
        epoch,
        tags,
        sbom: file.image.sbom.unwrap_or(true),
        sbom_files: file.image.sbom_files.unwrap_or(false),
        budget: resolve_budget(file)?,
        python: pending,
        config_digest: file.digest.clone(),
    })
}

/// `[budget]`, each limit parsed (errors name the key).
fn resolve_budget(file: &ConfigFile) -> Result<budget::Budget> {
    use budget::{Budget, parse_percent, parse_size};
    let Some(section) = &file.budget else {
        return Ok(Budget::default());
    };
    Ok(Budget {
        max_size: section
            .max_size
            .as_deref()
            .map(|s| parse_size("budget.max_size", s))
            .transpose()?,
        max_unpacked: section
            .max_unpacked
            .as_deref()
            .map(|s| parse_size("budget.max_unpacked", s))
            .transpose()?,
        max_growth: section
            .max_growth
            .as_deref()
            .map(|s| parse_percent("budget.max_growth", s))
            .transpose()?,
    })
}

/// The base location and its name as written: `--base` (relative to the working
/// directory) or `image.base` (relative to the config file).
fn resolve_base(
    file: &ConfigFile,
    overrides: &Overrides,
    config_path: &Path,
) -> Result<(String, Location)> {
    let (base_field, base_name, base) = match (&overrides.base, &file.image.base) {
        (Some(flag), _) => ("--base", flag.clone(), Location::parse(flag)),
        (None, Some(base)) => (
            "image.base",
            base.clone(),
            Location::parse(base).map(|l| l.relative_to(file.base_dir(config_path))),
        ),
        (None, None) => {
            return Err(invalid(
                "image.base",
                "missing: name a base image (oci:DIR:TAG) or \"scratch\"",
            ));
        }
    };
    let base = base.map_err(|e| invalid(base_field, &e.to_string()))?;
    if matches!(base, Location::DockerArchive { .. }) {
        return Err(invalid(
            base_field,
            &format!("`{base_name}`: docker-archive: is an output only; use oci: or oci-archive:"),
        ));
    }

    Ok((base_name, base))
}

/// `--platform` (comma-separated, repeatable), else `image.platforms`.
fn resolve_platforms(file: &ConfigFile, overrides: &Overrides) -> Result<Option<Vec<Platform>>> {
    let platforms = if overrides.platforms.is_empty() {
        file.image
            .platforms
            .as_ref()
            .map(|list| parse_platforms(list.iter().map(String::as_str), "image.platforms"))
            .transpose()?
    } else {
        Some(parse_platforms(
            overrides
                .platforms
                .iter()
                .flat_map(|p| p.split(','))
                .map(str::trim),
            "--platform",
        )?)
    };

    Ok(platforms)
}

/// `[config]` with `--env`, `--label`, `--entrypoint`, `--cmd`, `--workdir`, `--user`
/// and `--expose` merged in; a flag's bad value is refused naming the flag, by the
/// checks that name the key for the file's.
fn config_edits(file: &ConfigFile, overrides: &Overrides) -> Result<ConfigEdits> {
    let mut section = file.config.clone();
    if let Some(text) = &overrides.entrypoint {
        section.entrypoint = Some(parse_command("--entrypoint", text)?);
    }
    if let Some(text) = &overrides.cmd {
        section.cmd = Some(parse_command("--cmd", text)?);
    }
    if let Some(workdir) = &overrides.workdir {
        config_edit::check_workdir("--workdir", workdir)?;
        section.workdir = Some(workdir.clone());
    }
    if let Some(user) = &overrides.user {
        config_edit::check_user("--user", user)?;
        section.user = Some(user.clone());
    }
    for port in &overrides.expose {
        config_edit::check_port("--expose", port)?;
        section.ports.push(port.clone());
    }
    for (flag, target) in [("--env", &overrides.env), ("--label", &overrides.labels)] {
        for pair in target {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(flag, &format!("`{pair}`: expected KEY=VALUE")))?;
            let map = if flag == "--env" {
                &mut section.env
            } else {
                &mut section.labels
            };
            map.insert(key.to_string(), value.to_string());
        }
    }
    ConfigEdits::from_section(&section)
}

/// `--entrypoint`/`--cmd`: a JSON array of strings (`["python3", "-m", "app"]`, for
/// arguments with spaces), else words separated by whitespace; empty clears it.
fn parse_command(flag: &str, text: &str) -> Result<Vec<String>> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| {
            invalid(
                flag,
                &format!(
                    "`{text}`: not a JSON array of strings ({e}); or give words separated by spaces"
                ),
            )
        })
    } else {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
}

/// `image.tags` then `--tag`, each valid, without repeats.
fn resolve_tags(file: &ConfigFile, overrides: &Overrides) -> Result<Vec<String>> {
    let mut tags: Vec<String> = file.image.tags.clone().unwrap_or_default();
    let from_file = tags.len();
    tags.extend(overrides.tags.iter().cloned());
    for (i, tag) in tags.iter().enumerate() {
        if !is_valid_tag(tag) {
            let field = if i < from_file {
                format!("image.tags[{i}]")
            } else {
                "--tag".to_string()
            };
            return Err(invalid(&field, &format!("`{tag}` is not a valid tag")));
        }
    }
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    Ok(unique)
}

/// `SOURCE_DATE_EPOCH`: whole seconds from 0 to [`MAX_RFC3339_SECONDS`] (the image's
/// `created` must be a timestamp every reader parses).
fn parse_epoch(text: &str) -> Result<u64> {
    let seconds = text.trim().parse::<u64>().map_err(|_| {
        invalid(
            "SOURCE_DATE_EPOCH",
            &format!("`{text}` is not a whole number of seconds"),
        )
    })?;
    if seconds > MAX_RFC3339_SECONDS {
        return Err(invalid(
            "SOURCE_DATE_EPOCH",
            &format!(
                "`{text}` is after 9999-12-31T23:59:59Z ({MAX_RFC3339_SECONDS}), the last \
                 time an image's `created` can hold"
            ),
        ));
    }
    Ok(seconds)
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidValue {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn parse_platforms<'a>(
    values: impl Iterator<Item = &'a str>,
    field: &str,
) -> Result<Vec<Platform>> {
    let mut platforms: Vec<Platform> = Vec::new();
    for value in values {
        let platform: Platform = value
            .parse()
            .map_err(|e: crate::oci::platform::PlatformError| invalid(field, &e.to_string()))?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    if platforms.is_empty() {
        return Err(invalid(field, "the list is empty"));
    }
    Ok(platforms)
}

/// An absolute path inside the image with no `..` (which could climb out of a layer).
fn check_image_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("`{path}` contains `..`"));
    }
    Ok(())
}

/// `uid:gid` or `uid` (then gid = uid, as Docker's `--chown` does). Names would need
/// the image's /etc/passwd, so only numbers are accepted.
fn parse_owner(owner: &str) -> std::result::Result<(u32, u32), String> {
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("`{owner}`: expected numeric uid:gid, e.g. 1000:1000"))
    };
    if let Some((uid, gid)) = owner.split_once(':') {
        Ok((number(uid)?, number(gid)?))
    } else {
        let uid = number(owner)?;
        Ok((uid, uid))
    }
}

/// `fields` name the kind's and the level's origin (flag or key) in errors.
fn resolve_compression(
    kind: Option<&str>,
    level: Option<i32>,
    [kind_field, level_field]: [&str; 2],
) -> Result<Compression> {
    match kind.unwrap_or("gzip") {
        "gzip" => {
            let level = level.unwrap_or(6);
            if !(1..=9).contains(&level) {
                return Err(invalid(
                    level_field,
                    &format!("{level}: gzip levels are 1 to 9"),
                ));
            }
            Ok(Compression::Gzip {
                level: level as u32,
            })
        }
        "zstd" => {
            let level = level.unwrap_or(3);
            if !(1..=22).contains(&level) {
                return Err(invalid(
                    level_field,
                    &format!("{level}: zstd levels are 1 to 22"),
                ));
            }
            Ok(Compression::Zstd { level })
        }
        other => Err(invalid(
            kind_field,
            &format!("`{other}`: expected gzip or zstd"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str, overrides: &Overrides, epoch: Option<&str>) -> Result<Plan> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let file = ConfigFile::parse(toml).unwrap();
        resolve(&dir.path().join("hoist.toml"), &file, overrides, epoch)
    }

    #[test]
    fn resolves_defaults_and_relative_paths() {
        let p = plan(
            "[image]\nbase = \"oci:base:1.0\"\n[[layer]]\nfrom = \"dist\"\nto = \"/srv\"\n",
            &Overrides::default(),
            None,
        )
        .unwrap();
        assert!(
            matches!(&p.base, Location::OciLayout { path, .. } if path.ends_with("base") && path.is_absolute())
        );
        assert_eq!(p.base_name, "oci:base:1.0");
        assert_eq!(p.platforms, None);
        assert_eq!(p.compression, Compression::Gzip { level: 6 });
        assert_eq!(p.epoch, DEFAULT_EPOCH);
        assert_eq!(p.layers[0].spec.uid, 0);
        assert_eq!(p.layers[0].label, "dist");
    }

    #[test]
    fn flags_win_over_the_file() {
        let overrides = Overrides {
            base: Some("scratch".into()),
            platforms: vec!["linux/arm64,linux/amd64".into()],
            labels: vec!["a=b".into()],
            env: vec!["PORT=1".into()],
            compression: Some("zstd".into()),
            ..Overrides::default()
        };
        let p = plan(
            "[image]\nbase = \"oci:base\"\nplatforms = [\"linux/s390x\"]\n[config]\nenv = { PORT = \"2\" }\n",
            &overrides,
            Some("1700000000"),
        )
        .unwrap();
        assert_eq!(p.base, Location::Scratch);
        assert_eq!(
            p.platforms
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["linux/arm64/v8", "linux/amd64"]
        );
        assert_eq!(p.config_edits.env["PORT"], "1");
        assert_eq!(p.config_edits.labels["a"], "b");
        assert_eq!(p.compression, Compression::Zstd { level: 3 });
        assert_eq!(p.epoch, 1_700_000_000);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            ("[image]\n", "image.base"),
            (
                "[image]\nbase = \"scratch\"\nplatforms = [\"linux/z80\"]\n",
                "image.platforms",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"dist\"\nto = \"srv\"\n",
                "layer[0].to",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"dist\"\nto = \"/a/../b\"\n",
                "layer[0].to",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"nope\"\nto = \"/a\"\n",
                "layer[0].from",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"dist\"\nto = \"/a\"\nowner = \"app\"\n",
                "layer[0].owner",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nfrom = \"dist\"\nto = \"/a\"\nplatform = \"linux/z80\"\n",
                "layer[0].platform",
            ),
            (
                "[image]\nbase = \"scratch\"\n[[layer]]\nto = \"/a\"\nremove = [\"etc\"]\n",
                "layer[0].remove[0]",
            ),
            (
                "[image]\nbase = \"scratch\"\ncompression = \"lz4\"\n",
                "image.compression",
            ),
            (
                "[image]\nbase = \"scratch\"\ncompression_level = 12\n",
                "image.compression_level",
            ),
            (
                "[image]\nbase = \"scratch\"\nformat = \"docker\"\n",
                "image.format",
            ),
            (
                "[image]\nbase = \"scratch\"\ntags = [\"1\", \"-x\"]\n",
                "image.tags[1]",
            ),
        ];
        for (toml, field) in cases {
            let err = plan(toml, &Overrides::default(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
        let err = plan(
            "[image]\nbase = \"scratch\"\n",
            &Overrides::default(),
            Some("yesterday"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
        // Year 10000 and beyond: no RFC 3339 timestamp, so no image.
        for text in ["253402300800", "18446744073709551615", "-1"] {
            let err = plan(
                "[image]\nbase = \"scratch\"\n",
                &Overrides::default(),
                Some(text),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("SOURCE_DATE_EPOCH") && err.contains(text),
                "{err}"
            );
        }
        for (text, seconds) in [("0", 0), ("253402300799", MAX_RFC3339_SECONDS)] {
            let p = plan(
                "[image]\nbase = \"scratch\"\n",
                &Overrides::default(),
                Some(text),
            )
            .unwrap();
            assert_eq!(p.epoch, seconds);
        }
        assert_eq!(
            crate::oci::canonical::rfc3339(MAX_RFC3339_SECONDS),
            "9999-12-31T23:59:59Z"
        );
        // Found by tests/it/props/config_plan.rs: these named `compression`, `format`
        // and `tag` whether the value came from hoist.toml or from a flag.
        let flags = Overrides {
            compression: Some("zstd".into()),
            compression_level: Some(30),
            ..Overrides::default()
        };
        let err = plan("[image]\nbase = \"scratch\"\n", &flags, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid --compression-level:"), "{err}");
        let flags = Overrides {
            format: Some("docker".into()),
            tags: vec!["-x".into()],
            ..Overrides::default()
        };
        let err = plan("[image]\nbase = \"scratch\"\n", &flags, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid --format:"), "{err}");
        let tag_only = Overrides {
            tags: vec!["-x".into()],
            ..Overrides::default()
        };
        let err = plan(
            "[image]\nbase = \"scratch\"\ntags = [\"1\"]\n",
            &tag_only,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid --tag:"), "{err}");
        let bad_label = Overrides {
            labels: vec!["novalue".into()],
            ..Overrides::default()
        };
        let err = plan("[image]\nbase = \"scratch\"\n", &bad_label, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--label"), "{err}");
    }

    /// `--entrypoint`, `--cmd`, `--workdir`, `--user` replace the file's values,
    /// `--expose` adds ports; a bad value is refused naming the flag, by the same
    /// checks as the file's keys.
    #[test]
    fn config_flags_override_the_file_and_name_themselves() {
        let toml = "[image]\nbase = \"scratch\"\n[config]\ncmd = [\"a\"]\nworkdir = \"/w\"\nports = [\"80\"]\n";
        let flags = Overrides {
            entrypoint: Some(r#"["python3", "-m", "my app"]"#.into()),
            cmd: Some("serve --port 8080".into()),
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            expose: vec!["53/udp".into(), "8080".into()],
            ..Overrides::default()
        };
        let edits = plan(toml, &flags, None).unwrap().config_edits;
        assert_eq!(
            edits.entrypoint.unwrap(),
            ["python3", "-m", "my app"].map(String::from)
        );
        assert_eq!(
            edits.cmd.unwrap(),
            ["serve", "--port", "8080"].map(String::from)
        );
        assert_eq!(edits.workdir.as_deref(), Some("/srv"));
        assert_eq!(edits.user.as_deref(), Some("1000:1000"));
        assert_eq!(edits.ports, ["80/tcp", "53/udp", "8080/tcp"]);
        for (bad, flag) in [
            (
                Overrides {
                    workdir: Some("srv".into()),
                    ..Overrides::default()
                },
                "--workdir",
            ),
            (
                Overrides {
                    user: Some("a:b:c".into()),
                    ..Overrides::default()
                },
                "--user",
            ),
            (
                Overrides {
                    expose: vec!["http".into()],
                    ..Overrides::default()
                },
                "--expose",
            ),
            (
                Overrides {
                    entrypoint: Some("[\"a\", 1]".into()),
                    ..Overrides::default()
                },
                "--entrypoint",
            ),
            (
                Overrides {
                    cmd: Some("[oops".into()),
                    ..Overrides::default()
                },
                "--cmd",
            ),
        ] {
            let err = plan(toml, &bad, None).unwrap_err().to_string();
            assert!(err.contains(&format!("invalid {flag}:")), "{flag}: {err}");
        }
    }

    #[test]
    fn base_errors_name_where_the_base_came_from() {
        let flag = Overrides {
            base: Some("docker-archive:x.tar".into()),
            ..Overrides::default()
        };
        let err = plan("[image]\nbase = \"scratch\"\n", &flag, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--base"), "{err}");
        let flag = Overrides {
            base: Some("Not A Ref".into()),
            ..Overrides::default()
        };
        let err = plan("[image]\nbase = \"scratch\"\n", &flag, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--base") && err.contains("Not A Ref"), "{err}");
        let err = plan(
            "[image]\nbase = \"Not A Ref\"\n",
            &Overrides::default(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("image.base"), "{err}");
    }

    #[test]
    fn whiteout_only_layers_need_no_destination() {
        let p = plan(
            "[image]\nbase = \"scratch\"\n[[layer]]\nremove = [\"/etc/motd\"]\n",
            &Overrides::default(),
            None,
        )
        .unwrap();
        assert_eq!(p.layers[0].spec.dest, "/");
        assert_eq!(p.layers[0].spec.source, None);
    }

    #[test]
    fn owner_defaults_gid_to_uid() {
        assert_eq!(parse_owner("1000"), Ok((1000, 1000)));
        assert_eq!(parse_owner("1000:50"), Ok((1000, 50)));
        assert!(parse_owner("app:app").is_err());
    }
}
