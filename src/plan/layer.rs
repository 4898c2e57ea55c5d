//! One `[[layer]]`, resolved: its source (a directory, a single file, a list of files,
//! or only whiteouts), owner, modes and platforms, and the names it goes by in
//! progress lines and in the image's history.
//!
//! A directory `from` copies its contents under `to`. A single-file `from` puts that
//! file at `to` (Docker's `COPY nginx.conf /etc/nginx/nginx.conf`; a `to` ending in `/`
//! puts it inside, by its name). `files = [{ from, to, mode }]` lists single files, each
//! at its own `to`; they may come alongside a `from`. Every error names its key:
//! `layer[2].files[1].mode`.

use std::path::{Path, PathBuf};

use hoist_layers::{Compression, FileSource, LayerSpec, ModePolicy};

use super::{PlannedLayer, check_image_path, invalid, parse_owner, parse_platforms};
use crate::config::{LayerSection, ModeValue};
use crate::error::Result;

/// What a `[[layer]]`'s `from` names.
enum From {
    Directory(PathBuf),
    File(PathBuf),
}

/// One listed file, with how the user wrote it (for names and errors).
struct Listed {
    source: FileSource,
    /// `from` as written.
    from: String,
    /// The key it came from (`layer[2].files[1]`, or `layer[2]` for a single-file
    /// `from`).
    field: String,
}

/// One `[[layer]]` (`i` counts from 0), checked, as the layers crate builds it.
pub(super) fn plan_layer(
    i: usize,
    layer: &LayerSection,
    config_dir: &Path,
    epoch: u64,
    compression: Compression,
) -> Result<PlannedLayer> {
    let field = |key: &str| format!("layer[{i}].{key}");
    let from = match &layer.from {
        Some(from) => {
            Some(classify_from(config_dir, from).map_err(|m| invalid(&field("from"), &m))?)
        }
        None => None,
    };
    check_keys(layer, from.as_ref(), &field)?;
    // A layer of only files or whiteouts has no destination of its own.
    let to = match (layer.to.as_deref(), &from) {
        (Some(to), _) => to,
        (None, None) => "/",
        (None, Some(_)) => {
            return Err(invalid(
                &field("to"),
                "missing: the absolute destination in the image",
            ));
        }
    };
    check_image_path(to).map_err(|m| invalid(&field("to"), &m))?;
    for (j, path) in layer.remove.iter().enumerate() {
        check_image_path(path).map_err(|m| invalid(&format!("{}[{j}]", field("remove")), &m))?;
        if path == "/" {
            return Err(invalid(&field("remove"), "cannot remove /"));
        }
    }

    let mut listed = Vec::new();
    let source = match from {
        Some(From::Directory(path)) => Some(path),
        Some(From::File(path)) => {
            let written = layer.from.clone().unwrap_or_default();
            let dest = file_dest(to, &written).map_err(|m| invalid(&field("to"), &m))?;
            let mode = layer
                .mode
                .as_ref()
                .map(parse_mode)
                .transpose()
                .map_err(|m| invalid(&field("mode"), &m))?;
            listed.push(Listed {
                source: FileSource {
                    source: path,
                    dest,
                    mode,
                },
                from: written,
                field: format!("layer[{i}]"),
            });
            None
        }
        None => None,
    };
    for (j, entry) in layer.files.iter().enumerate() {
        let key = format!("{}[{j}]", field("files"));
        listed.push(listed_file(config_dir, entry, &key)?);
    }
    refuse_shared_destinations(&listed)?;

    let (uid, gid) = layer_owner(i, layer)?;
    let modes = match layer.modes.as_deref() {
        None | Some("keep") => ModePolicy::Keep,
        Some("normalize" | "normalise") => ModePolicy::Normalize,
        Some(other) => {
            return Err(invalid(
                &field("modes"),
                &format!("`{other}`: expected keep or normalize"),
            ));
        }
    };
    let platforms = layer
        .platform
        .as_ref()
        .map(|p| parse_platforms(p.to_vec().iter().map(String::as_str), &field("platform")))
        .transpose()?;
    let names = Names::of(layer, source.is_some(), to, &listed);
    Ok(PlannedLayer {
        number: i,
        label: names.label,
        summary: names.summary,
        created_by: names.created_by,
        spec: LayerSpec {
            source,
            dest: to.to_string(),
            excludes: layer.exclude.clone(),
            files: listed.into_iter().map(|l| l.source).collect(),
            sources: Vec::new(),
            uid,
            gid,
            modes,
            remove: layer.remove.clone(),
            mtime: epoch,
            compression,
        },
        platforms,
    })
}

/// `[[layer]]` number `i`'s (from 0) `owner`: `uid:gid`, default 0:0.
pub(super) fn layer_owner(i: usize, layer: &LayerSection) -> Result<(u32, u32)> {
    match &layer.owner {
        None => Ok((0, 0)),
        Some(owner) => parse_owner(owner).map_err(|m| invalid(&format!("layer[{i}].owner"), &m)),
    }
}

/// Keys that only make sense with some kinds of `from`.
fn check_keys(
    layer: &LayerSection,
    from: Option<&From>,
    field: &dyn Fn(&str) -> String,
) -> Result<()> {
    match from {
        Some(From::Directory(_)) if layer.mode.is_some() => Err(invalid(
            &field("mode"),
            "applies to a single-file `from`; for a directory use modes = \"normalize\", or list the file in `files` with its mode",
        )),
        Some(From::File(_)) if !layer.exclude.is_empty() => Err(invalid(
            &field("exclude"),
            "applies to a directory `from`, and this `from` is a single file",
        )),
        None if layer.to.is_some() && !layer.files.is_empty() => Err(invalid(
            &field("to"),
            "needs a `from` (each entry of `files` names its own `to`)",
        )),
        None if !layer.exclude.is_empty() => Err(invalid(
            &field("exclude"),
            "applies to a directory `from`; `files` lists exactly what it takes",
        )),
        None if layer.mode.is_some() => Err(invalid(
            &field("mode"),
            "applies to a single-file `from`; give each entry of `files` its own mode",
        )),
        None if layer.files.is_empty() && layer.remove.is_empty() => Err(invalid(
            &field("from"),
            "missing: a source directory or file, or `files` (or give only `remove`)",
        )),
        _ => Ok(()),
    }
}

fn classify_from(config_dir: &Path, from: &str) -> std::result::Result<From, String> {
    let path = config_dir.join(from);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(From::Directory(path)),
        Ok(meta) if meta.is_file() => Ok(From::File(path)),
        Ok(_) => Err(format!(
            "{} is neither a directory nor a regular file",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{} does not exist", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// One entry of `files`, checked (`key` is `layer[N].files[J]`).
fn listed_file(config_dir: &Path, entry: &crate::config::FileEntry, key: &str) -> Result<Listed> {
    let path = config_dir.join(&entry.from);
    match classify_from(config_dir, &entry.from) {
        Ok(From::File(_)) => {}
        Ok(From::Directory(_)) => {
            return Err(invalid(
                &format!("{key}.from"),
                &format!(
                    "{} is a directory: a `files` entry names one file (a directory goes in a [[layer]]'s `from`)",
                    path.display()
                ),
            ));
        }
        Err(message) => return Err(invalid(&format!("{key}.from"), &message)),
    }
    let dest = file_dest(&entry.to, &entry.from).map_err(|m| invalid(&format!("{key}.to"), &m))?;
    let mode = entry
        .mode
        .as_ref()
        .map(parse_mode)
        .transpose()
        .map_err(|m| invalid(&format!("{key}.mode"), &m))?;
    Ok(Listed {
        source: FileSource {
            source: path,
            dest,
            mode,
        },
        from: entry.from.clone(),
        field: key.to_string(),
    })
}

/// Two listed files with one destination: an error naming both.
fn refuse_shared_destinations(listed: &[Listed]) -> Result<()> {
    for (j, later) in listed.iter().enumerate() {
        if let Some(earlier) = listed[..j]
            .iter()
            .find(|earlier| earlier.source.dest == later.source.dest)
        {
            return Err(invalid(
                &format!("{}.to", later.field),
                &format!(
                    "{} is also the destination of {} ({}); two files cannot share one path (this one is {})",
                    later.source.dest, earlier.field, earlier.from, later.from
                ),
            ));
        }
    }
    Ok(())
}

/// The image path of a single file `from` put at `to`: `to` itself, or inside it by
/// the file's name when `to` ends with `/`. Normalised (`//` collapsed), so two
/// spellings of one path are seen as one.
fn file_dest(to: &str, from: &str) -> std::result::Result<String, String> {
    check_image_path(to)?;
    let mut components: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    if to.ends_with('/') {
        let name = Path::new(from)
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("`{from}` has no file name to put inside `{to}`"))?;
        components.push(name);
    }
    if components.is_empty() {
        return Err(format!("`{to}`: a file needs a path below /"));
    }
    for component in &components {
        if *component == "." {
            return Err(format!("`{to}` contains a `.` component"));
        }
        if component.starts_with(".wh.") {
            return Err(format!(
                "`{to}`: names starting with .wh. are reserved for whiteouts"
            ));
        }
    }
    Ok(format!("/{}", components.join("/")))
}

/// `"0755"`, `"755"` or `"4755"`: permission and special bits, in octal.
fn parse_mode(value: &ModeValue) -> std::result::Result<u32, String> {
    let text = match value {
        ModeValue::Text(text) => text,
        ModeValue::Number(number) => {
            return Err(format!(
                "{number}: write the mode as an octal string, e.g. mode = \"0755\" (a TOML number such as 755 is decimal)"
            ));
        }
    };
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "`{text}`: expected an octal mode such as \"0755\" or \"0644\""
        ));
    }
    let mode = u32::from_str_radix(digits, 8).expect("checked octal digits");
    if mode > 0o7777 {
        return Err(format!("`{text}`: a mode is at most 7777"));
    }
    Ok(mode)
}

/// What a layer is called: `label` (short, the JSON `origin`: `from` as written, or
/// `files: a, b`), `summary` (progress: `config → /etc/app`) and `created_by`
/// (its history entry).
struct Names {
    label: String,
    summary: String,
    created_by: String,
}

impl Names {
    fn of(layer: &LayerSection, directory: bool, to: &str, listed: &[Listed]) -> Names {
        // The history of a directory (or whiteout-only) layer reads as it always has,
        // `hoist: FROM → TO`, so images built before listed files existed keep their
        // digests.
        let mut moves: Vec<String> = Vec::new();
        if directory {
            moves.push(format!(
                "{} → {to}",
                layer.from.as_deref().unwrap_or_default()
            ));
        }
        moves.extend(
            listed
                .iter()
                .map(|l| format!("{} → {}", l.from, l.source.dest)),
        );
        let (label, summary, created_by) = if moves.is_empty() {
            let removed = layer.remove.join(", ");
            (
                "(whiteouts)".to_string(),
                format!("remove {removed}"),
                format!("hoist: (whiteouts) → {to}"),
            )
        } else {
            let label = match (&layer.from, layer.files.is_empty()) {
                (Some(from), true) => from.clone(),
                (from, false) => {
                    let names: Vec<&str> = layer.files.iter().map(|f| f.from.as_str()).collect();
                    let prefix = from.as_ref().map(|f| format!("{f} + ")).unwrap_or_default();
                    format!("{prefix}files: {}", shortened(&names))
                }
                (None, true) => unreachable!("no moves without from or files"),
            };
            let summary = if moves.len() > 3 {
                format!("{}, {} and {} more", moves[0], moves[1], moves.len() - 2)
            } else {
                moves.join(", ")
            };
            (label, summary, format!("hoist: {}", moves.join(", ")))
        };
        Names {
            label,
            summary,
            created_by,
        }
    }
}

/// `a, b, c` or `a, b and 3 more`.
fn shortened(names: &[&str]) -> String {
    if names.len() > 3 {
        format!("{}, {} and {} more", names[0], names[1], names.len() - 2)
    } else {
        names.join(", ")
    }
}

/// Makes every layer's history entry distinct: two layers that would read alike (the
/// same directory to the same place, say, for different platforms) get their numbers.
pub(super) fn distinct_history(layers: &mut [PlannedLayer]) {
    let texts: Vec<String> = layers.iter().map(|l| l.created_by.clone()).collect();
    for (i, layer) in layers.iter_mut().enumerate() {
        if texts.iter().filter(|t| **t == texts[i]).count() > 1 {
            layer.created_by = format!("{} (layer {})", texts[i], i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::plan::{Overrides, Plan, resolve};

    /// A project with `app/main.py`, `start.sh` and `deploy/nginx.conf`.
    fn plan(toml: &str) -> Result<(tempfile::TempDir, Plan)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::create_dir_all(dir.path().join("deploy")).unwrap();
        std::fs::write(dir.path().join("app/main.py"), "print()\n").unwrap();
        std::fs::write(dir.path().join("start.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("deploy/nginx.conf"), "events {}\n").unwrap();
        let text = format!("[image]\nbase = \"scratch\"\n{toml}");
        let file = ConfigFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let plan = resolve(
            &dir.path().join("hoist.toml"),
            &file,
            &Overrides::default(),
            None,
        )?;
        Ok((dir, plan))
    }

    fn error(toml: &str) -> String {
        plan(toml)
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{toml}"))
            .to_string()
    }

    #[test]
    fn a_files_layer_resolves_each_file() {
        let (dir, p) = plan(
            "[[layer]]\nowner = \"101\"\nfiles = [\n  { from = \"deploy/nginx.conf\", to = \"/etc/nginx/\" },\n  { from = \"start.sh\", to = \"/usr/local/bin/start\", mode = \"0755\" },\n]\n",
        )
        .unwrap();
        let layer = &p.layers[0];
        assert_eq!(layer.spec.source, None);
        assert_eq!((layer.spec.uid, layer.spec.gid), (101, 101));
        assert_eq!(
            layer.spec.files,
            [
                FileSource {
                    source: dir.path().join("deploy/nginx.conf"),
                    dest: "/etc/nginx/nginx.conf".into(),
                    mode: None,
                },
                FileSource {
                    source: dir.path().join("start.sh"),
                    dest: "/usr/local/bin/start".into(),
                    mode: Some(0o755),
                },
            ]
        );
        assert_eq!(layer.label, "files: deploy/nginx.conf, start.sh");
        assert_eq!(
            layer.summary,
            "deploy/nginx.conf → /etc/nginx/nginx.conf, start.sh → /usr/local/bin/start"
        );
        assert_eq!(
            layer.created_by,
            "hoist: deploy/nginx.conf → /etc/nginx/nginx.conf, start.sh → /usr/local/bin/start"
        );
    }

    #[test]
    fn a_single_file_from_is_put_at_to() {
        let (dir, p) = plan(
            "[[layer]]\nfrom = \"start.sh\"\nto = \"/usr/local/bin/start\"\nmode = \"0755\"\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\n",
        )
        .unwrap();
        let single = &p.layers[0];
        assert_eq!(single.spec.source, None);
        assert_eq!(single.spec.files.len(), 1);
        assert_eq!(single.spec.files[0].source, dir.path().join("start.sh"));
        assert_eq!(single.spec.files[0].dest, "/usr/local/bin/start");
        assert_eq!(single.spec.files[0].mode, Some(0o755));
        assert_eq!(single.label, "start.sh");
        assert_eq!(single.created_by, "hoist: start.sh → /usr/local/bin/start");
        // A directory layer's names are as before listed files existed.
        let directory = &p.layers[1];
        assert_eq!(directory.label, "app");
        assert_eq!(directory.summary, "app → /app");
        assert_eq!(directory.created_by, "hoist: app → /app");
    }

    #[test]
    fn layers_that_read_alike_get_their_numbers() {
        let (_dir, p) = plan(
            "[[layer]]\nfrom = \"app\"\nto = \"/app\"\n[[layer]]\nfrom = \"app\"\nto = \"/srv\"\n[[layer]]\nfrom = \"app\"\nto = \"/app\"\nexclude = [\"*.pyc\"]\n",
        )
        .unwrap();
        let summaries: Vec<&str> = p.layers.iter().map(|l| l.summary.as_str()).collect();
        assert_eq!(summaries, ["app → /app", "app → /srv", "app → /app"]);
        let history: Vec<&str> = p.layers.iter().map(|l| l.created_by.as_str()).collect();
        assert_eq!(
            history,
            [
                "hoist: app → /app (layer 1)",
                "hoist: app → /srv",
                "hoist: app → /app (layer 3)"
            ]
        );
    }

    #[test]
    fn bad_files_name_the_layer_and_key() {
        let cases = [
            (
                "[[layer]]\nfrom = \"app\"\nto = \"/app\"\n[[layer]]\nfiles = [{ from = \"start.sh\", to = \"/a\" }, { from = \"nope\", to = \"/b\" }]\n",
                "layer[1].files[1].from",
                "does not exist",
            ),
            (
                "[[layer]]\nfiles = [{ from = \"app\", to = \"/a\" }]\n",
                "layer[0].files[0].from",
                "is a directory",
            ),
            (
                "[[layer]]\nfiles = [{ from = \"start.sh\", to = \"bin/start\" }]\n",
                "layer[0].files[0].to",
                "not an absolute path",
            ),
            (
                "[[layer]]\nfiles = [{ from = \"start.sh\", to = \"/s\", mode = \"rwx\" }]\n",
                "layer[0].files[0].mode",
                "octal",
            ),
            (
                "[[layer]]\nfiles = [{ from = \"start.sh\", to = \"/s\", mode = 755 }]\n",
                "layer[0].files[0].mode",
                "octal string",
            ),
            (
                "[[layer]]\nfiles = [{ from = \"start.sh\", to = \"/etc/x\" }, { from = \"deploy/nginx.conf\", to = \"/etc//x\" }]\n",
                "layer[0].files[1].to",
                "also the destination of layer[0].files[0] (start.sh)",
            ),
            (
                "[[layer]]\nfrom = \"start.sh\"\nto = \"/s\"\nfiles = [{ from = \"deploy/nginx.conf\", to = \"/s\" }]\n",
                "layer[0].files[0].to",
                "also the destination of layer[0] (start.sh)",
            ),
            (
                "[[layer]]\nfrom = \"start.sh\"\nto = \"/s\"\nexclude = [\"*.pyc\"]\n",
                "layer[0].exclude",
                "single file",
            ),
            (
                "[[layer]]\nfrom = \"app\"\nto = \"/app\"\nmode = \"0755\"\n",
                "layer[0].mode",
                "single-file",
            ),
            (
                "[[layer]]\nto = \"/x\"\nfiles = [{ from = \"start.sh\", to = \"/s\" }]\n",
                "layer[0].to",
                "needs a `from`",
            ),
            (
                "[[layer]]\nexclude = [\"x\"]\nfiles = [{ from = \"start.sh\", to = \"/s\" }]\n",
                "layer[0].exclude",
                "lists exactly",
            ),
            ("[[layer]]\nto = \"/x\"\n", "layer[0].from", "missing"),
        ];
        for (toml, field, detail) in cases {
            let err = error(toml);
            assert!(err.contains(field), "expected {field} in: {err}\n{toml}");
            assert!(
                err.contains(detail),
                "expected {detail:?} in: {err}\n{toml}"
            );
        }
        let err = ConfigFile::parse(
            "[[layer]]\nfiles = [{ from = \"a\", to = \"/a\", mdoe = \"0755\" }]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("mdoe") && err.contains("layer[0].files[0]"),
            "{err}"
        );
    }

    #[test]
    fn modes_are_octal_strings() {
        let mode = |s: &str| parse_mode(&ModeValue::Text(s.into()));
        assert_eq!(mode("0755"), Ok(0o755));
        assert_eq!(mode("644"), Ok(0o644));
        assert_eq!(mode("4755"), Ok(0o4755));
        assert_eq!(mode("0o700"), Ok(0o700));
        for bad in ["", "rwx", "0758", "-1", "17777", "0x1ff"] {
            assert!(mode(bad).is_err(), "{bad:?}");
        }
        let err = parse_mode(&ModeValue::Number(755)).unwrap_err();
        assert!(err.contains("octal string"), "{err}");
    }

    #[test]
    fn file_destinations_are_normalised() {
        assert_eq!(
            file_dest("/etc/nginx/nginx.conf", "x").unwrap(),
            "/etc/nginx/nginx.conf"
        );
        assert_eq!(
            file_dest("/etc//nginx/", "deploy/nginx.conf").unwrap(),
            "/etc/nginx/nginx.conf"
        );
        for bad in ["etc/x", "/a/../b", "/a/./b", "/a/.wh.b"] {
            assert!(file_dest(bad, "f").is_err(), "{bad:?}");
        }
    }
}
