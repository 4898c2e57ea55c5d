//! `COPY`/`ADD` into `[[layer]]` entries: context directories as `from`/`to`, single
//! files as `files`, `--chown` as `owner`, `--chmod` as `mode`, relative destinations
//! against the stage's `WORKDIR`; `COPY --from=stage` traced back through what that
//! stage copied from the context.

use std::path::Path;

use super::dockerfile::Instruction;
use super::translate::{FilePlan, LayerPlan, Step, Walk, note};
use super::words;

/// A context path a stage copied, and where it went.
#[derive(Debug, Clone)]
pub(super) struct CopyRecord {
    /// Absolute image path (no trailing `/`).
    pub dest: String,
    /// Context path, relative to the context directory.
    pub source: String,
    /// A directory (its contents went under `dest`).
    pub is_dir: bool,
    /// Host commands that built it (`npm ci`, `npm run build`), when it was made there.
    pub built_by: Vec<String>,
}

/// One source of a COPY, resolved to the context.
struct Source {
    path: String,
    is_dir: bool,
    built_by: Vec<String>,
}

/// Applies one `COPY`/`ADD` to the stage: layers, records, and notes for what hoist
/// cannot copy.
pub(super) fn apply(step: &Step, walk: &mut Walk, instruction: &Instruction) -> Result<(), String> {
    let mut args = match &instruction.json {
        Some(list) => list.clone(),
        None => words::split(&instruction.rest, step.escape, &walk.vars)?,
    };
    if args.len() < 2 {
        return Err(format!(
            "{} needs a source and a destination",
            instruction.keyword
        ));
    }
    let dest = args.pop().unwrap_or_default();
    let into_dir = args.len() > 1 || dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let dest = absolute(&walk.workdir, &dest);
    let owner = match instruction.flag("chown") {
        Some(chown) => owner(
            &words::word(chown, step.escape, &walk.vars)?,
            walk,
            instruction,
        ),
        None => None,
    };
    let mode = instruction.flag("chmod").map(mode).transpose()?;
    let mut sources = Vec::new();
    for arg in &args {
        sources.extend(resolve(step, walk, instruction, arg)?);
    }
    for (flag, _) in &instruction.flags {
        if !["from", "chown", "chmod", "link", "exclude"].contains(&flag.as_str()) {
            note(
                walk,
                instruction,
                &format!("--{flag} is not translated: check the layer below"),
            );
        }
    }
    let excluded: Vec<String> = instruction
        .flags
        .iter()
        .filter(|(flag, _)| flag == "exclude")
        .map(|(_, pattern)| pattern.clone())
        .collect();
    let file = step
        .dockerfile
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let summary = format!("{file}:{}: {}", instruction.line, instruction.summary());
    let mut files = Vec::new();
    for source in sources {
        let built = (!source.built_by.is_empty()).then(|| {
            format!(
                "built on the host: run `{}` before `hoist build`",
                source.built_by.join(" && ")
            )
        });
        if source.is_dir {
            if mode.is_some() {
                note(
                    walk,
                    instruction,
                    "--chmod on a directory is not translated: hoist keeps each file's mode as on disk (or `modes = \"normalize\"`)",
                );
            }
            walk.plan.layers.push(LayerPlan {
                line: instruction.line,
                comments: std::iter::once(summary.clone()).chain(built).collect(),
                exclude: ignored(step.dockerignore, &source.path)
                    .into_iter()
                    .chain(excluded.iter().cloned())
                    // The config init writes is no part of the docker build's context.
                    .chain((source.path == ".").then(|| "/hoist.toml".to_string()))
                    .collect(),
                from: Some(source.path.clone()),
                to: Some(dest.clone()),
                owner: owner.clone(),
                ..LayerPlan::default()
            });
            walk.records.push(CopyRecord {
                dest: dest.clone(),
                source: source.path,
                is_dir: true,
                built_by: source.built_by,
            });
        } else {
            let name = source
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let (to, record_dest) = if into_dir {
                (
                    format!("{}/", dest.trim_end_matches('/')),
                    join(&dest, &name),
                )
            } else {
                (dest.clone(), dest.clone())
            };
            files.push((
                FilePlan {
                    from: source.path.clone(),
                    to,
                    mode: mode.clone(),
                },
                built,
            ));
            walk.records.push(CopyRecord {
                dest: record_dest,
                source: source.path,
                is_dir: false,
                built_by: source.built_by,
            });
        }
    }
    if !files.is_empty() {
        let mut comments = vec![summary];
        comments.extend(files.iter().filter_map(|(_, built)| built.clone()));
        comments.dedup();
        walk.plan.layers.push(LayerPlan {
            line: instruction.line,
            comments,
            owner,
            files: files.into_iter().map(|(file, _)| file).collect(),
            ..LayerPlan::default()
        });
    }
    Ok(())
}

/// One source argument: from the context, or traced through a build stage. `None`
/// (with a note) when it cannot be copied by hoist.
fn resolve(
    step: &Step,
    walk: &mut Walk,
    instruction: &Instruction,
    arg: &str,
) -> Result<Vec<Source>, String> {
    if instruction.flag("from").is_none() && arg.contains(['*', '?', '[']) && !arg.contains("://") {
        return expand(step, walk, instruction, arg);
    }
    Ok(resolve_one(step, walk, instruction, arg)?
        .into_iter()
        .collect())
}

/// A context pattern (`requirements*.txt`, `src/*.py`): the entries of its directory
/// its last component matches, sorted. A pattern in a directory component is noted.
fn expand(
    step: &Step,
    walk: &mut Walk,
    instruction: &Instruction,
    arg: &str,
) -> Result<Vec<Source>, String> {
    let (dir, pattern) = arg.rsplit_once('/').unwrap_or(("", arg));
    let matcher = globset::Glob::new(pattern).map(|g| g.compile_matcher());
    let (false, Ok(matcher)) = (dir.contains(['*', '?', '[']), matcher) else {
        note(
            walk,
            instruction,
            &format!(
                "not translated: `{arg}` is a pattern hoist init cannot expand: list the files it matches in a layer's `files`"
            ),
        );
        return Ok(Vec::new());
    };
    let Some(dir) = context_path(dir) else {
        return Err(format!("`{arg}` is outside the build context"));
    };
    let mut names: Vec<String> = std::fs::read_dir(step.context.join(&dir))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| matcher.is_match(name))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        note(
            walk,
            instruction,
            &format!(
                "`{arg}` matches nothing in the context: create the files before `hoist build`, or drop it"
            ),
        );
    }
    let mut sources = Vec::new();
    for name in names {
        sources.extend(resolve_one(
            step,
            walk,
            instruction,
            &join_relative(&dir, &name),
        )?);
    }
    Ok(sources)
}

fn resolve_one(
    step: &Step,
    walk: &mut Walk,
    instruction: &Instruction,
    arg: &str,
) -> Result<Option<Source>, String> {
    if let Some(from) = instruction.flag("from") {
        let from = words::word(from, step.escape, step.globals)?;
        let stage = step.stages.iter().enumerate().rev().find(|(index, stage)| {
            stage
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&from))
                || from.parse::<usize>().ok() == Some(*index)
        });
        let Some((_, stage)) = stage else {
            note(
                walk,
                instruction,
                &format!(
                    "not translated: copies from the image `{from}`, which hoist does not read: copy those files into the context (e.g. `docker create` + `docker cp`, or `skopeo copy` + `umoci unpack`) and add them as a layer"
                ),
            );
            return Ok(None);
        };
        let path = absolute("/", arg);
        return Ok(trace(step.context, stage, &path).or_else(|| {
            let why = if stage.plan.python.is_empty() {
                String::new()
            } else {
                " (the stage runs `pip install`: make it a `python` layer, commented out above the layers)".into()
            };
            let name = stage.name.as_deref().unwrap_or("?");
            note(walk, instruction, &format!("not translated: `{path}` is made inside stage `{name}` by RUN, not copied from the context{why}: build it on the host and copy it, or drop it"));
            None
        }));
    }
    if arg.contains("://") || arg.starts_with("git@") {
        note(
            walk,
            instruction,
            &format!(
                "not translated: `{arg}` is fetched from the network: download it into the context (pinning its checksum) and copy it as a file"
            ),
        );
        return Ok(None);
    }
    let Some(path) = context_path(arg) else {
        return Err(format!("`{arg}` is outside the build context"));
    };
    let on_disk = step.context.join(&path);
    if instruction.keyword == "ADD" && on_disk.is_file() && is_archive(&path) {
        note(
            walk,
            instruction,
            &format!(
                "not translated: ADD unpacks the archive `{path}`; hoist copies files as they are: unpack it into a directory and use that as the layer's `from`"
            ),
        );
        return Ok(None);
    }
    let is_dir = if on_disk.exists() {
        on_disk.is_dir()
    } else {
        note(
            walk,
            instruction,
            &format!("`{path}` is not in the context yet: create it before `hoist build`"),
        );
        looks_like_dir(arg)
    };
    Ok(Some(Source {
        path,
        is_dir,
        built_by: Vec::new(),
    }))
}

/// The context path a stage holds at image path `path`, through what it copied.
fn trace(context: &Path, stage: &Walk, path: &str) -> Option<Source> {
    stage.records.iter().rev().find_map(|record| {
        let rest = if record.dest == path {
            ""
        } else if record.is_dir {
            path.strip_prefix(&record.dest)
                .filter(|r| r.starts_with('/') || record.dest == "/")?
                .trim_start_matches('/')
        } else {
            return None;
        };
        let source = join_relative(&record.source, rest);
        let on_disk = context.join(&source);
        let is_dir = if rest.is_empty() {
            record.is_dir
        } else if on_disk.exists() {
            on_disk.is_dir()
        } else {
            looks_like_dir(rest)
        };
        let mut built_by = record.built_by.clone();
        built_by.extend(stage.builds.iter().cloned());
        Some(Source {
            path: source,
            is_dir,
            built_by,
        })
    })
}

/// The context path of a file a stage's `RUN` names (`requirements.txt` under the
/// WORKDIR it was copied to), or the name itself when it was not copied.
pub(super) fn trace_file(walk: &Walk, file: &str) -> String {
    let path = absolute(&walk.workdir, file);
    walk.records
        .iter()
        .rev()
        .find_map(|record| {
            if record.dest == path && !record.is_dir {
                return Some(record.source.clone());
            }
            let rest = path.strip_prefix(&record.dest)?.strip_prefix('/')?;
            record.is_dir.then(|| join_relative(&record.source, rest))
        })
        .unwrap_or_else(|| file.to_string())
}

/// The `.dockerignore` patterns (`<Dockerfile>.dockerignore` first, as BuildKit),
/// relative to the context; empty when there is none.
pub(super) fn dockerignore(
    dockerfile: &Path,
    context: &Path,
) -> Result<Vec<String>, super::InitError> {
    let own = dockerfile.with_file_name(format!(
        "{}.dockerignore",
        dockerfile.file_name().unwrap_or_default().to_string_lossy()
    ));
    let path = [own, context.join(".dockerignore")]
        .into_iter()
        .find(|p| p.is_file());
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let bytes = crate::fsutil::read_bounded(&path, 1 << 20, ".dockerignore")
        .map_err(|source| super::InitError::File { source })?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// The `.dockerignore` patterns that apply under the context directory `from`, as
/// `exclude` patterns relative to it. Docker's patterns are anchored at the context
/// root (`*.pyc` is only the top level), so each is anchored with `/`, except
/// `**/…` ones, which match at any depth in both syntaxes.
fn ignored(patterns: &[String], from: &str) -> Vec<String> {
    patterns
        .iter()
        .filter_map(|pattern| {
            let (negated, body) = match pattern.strip_prefix('!') {
                Some(body) => ("!", body),
                None => ("", pattern.as_str()),
            };
            let body = body.trim_start_matches('/');
            let body = body.strip_prefix("./").unwrap_or(body);
            let relative = if body.starts_with("**/") {
                body.to_string()
            } else if from == "." {
                format!("/{body}")
            } else {
                format!("/{}", body.strip_prefix(from)?.strip_prefix('/')?)
            };
            (relative != "/").then(|| format!("{negated}{relative}"))
        })
        .collect()
}

/// `path` made absolute against `workdir`, `.` and `..` resolved, no trailing `/`.
pub(super) fn absolute(workdir: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{workdir}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn join_relative(dir: &str, rest: &str) -> String {
    match (dir, rest) {
        (dir, "") => dir.to_string(),
        (".", rest) => rest.to_string(),
        (dir, rest) => format!("{dir}/{rest}"),
    }
}

/// A source argument as a context path (`./frontend/` → `frontend`, `.` stays), or
/// `None` when `..` leaves the context.
fn context_path(arg: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

fn looks_like_dir(path: &str) -> bool {
    path.ends_with('/') || !path.rsplit('/').next().unwrap_or_default().contains('.')
}

fn is_archive(path: &str) -> bool {
    [
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst",
    ]
    .iter()
    .any(|ext| path.ends_with(ext))
}

/// `--chown`: numeric `uid[:gid]` as hoist's `owner`; names are noted (hoist reads no
/// passwd file from the base).
fn owner(chown: &str, walk: &mut Walk, instruction: &Instruction) -> Option<String> {
    let numeric = chown
        .split(':')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric && chown.split(':').count() <= 2 {
        return Some(chown.to_string());
    }
    note(
        walk,
        instruction,
        &format!(
            "--chown={chown} names a user: hoist's `owner` is numeric `uid:gid`; look the ids up in the base image (`id {}`) and set `owner`",
            chown.split(':').next().unwrap_or(chown)
        ),
    );
    None
}

/// `--chmod=755` → `"0755"`.
fn mode(chmod: &str) -> Result<String, String> {
    if chmod.is_empty() || chmod.len() > 4 || !chmod.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "--chmod={chmod}: expected an octal mode such as 0755"
        ));
    }
    Ok(format!("{chmod:0>4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(absolute("/app/frontend", "./"), "/app/frontend");
        assert_eq!(absolute("/app", "../etc/x"), "/etc/x");
        assert_eq!(absolute("/", "."), "/");
        assert_eq!(context_path("./frontend/"), Some("frontend".into()));
        assert_eq!(context_path("/etc/app.ini"), Some("etc/app.ini".into()));
        assert_eq!(context_path("."), Some(".".into()));
        assert_eq!(context_path("../x"), None);
        assert_eq!(mode("755").unwrap(), "0755");
        assert!(mode("u+x").is_err());
    }

    #[test]
    fn dockerignore_patterns_become_excludes() {
        let patterns: Vec<String> = [
            "node_modules",
            "*.pyc",
            "!keep.pyc",
            "**/__pycache__",
            "frontend/node_modules",
            "/.git",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            ignored(&patterns, "."),
            [
                "/node_modules",
                "/*.pyc",
                "!/keep.pyc",
                "**/__pycache__",
                "/frontend/node_modules",
                "/.git"
            ]
        );
        assert_eq!(
            ignored(&patterns, "frontend"),
            ["**/__pycache__", "/node_modules"]
        );
    }
}
