//! From parsed instructions to an [`ImagePlan`]: stages are walked in order (a stage
//! `FROM` an earlier one starts from that stage's state), the final stage (or the
//! target) gives the image, and every instruction hoist cannot do is a [`Note`].

use std::path::Path;

use serde::Serialize;

use super::advice::{self, RunAdvice};
use super::copy::{self, CopyRecord};
use super::dockerfile::Instruction;
use super::words::{self, Vars};
use super::{InitError, Options};

/// What one image's hoist.toml holds, plus what could not be translated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImagePlan {
    /// `[image].base`.
    pub base: String,
    /// `[image].platforms` (from `FROM --platform`).
    pub platforms: Vec<String>,
    /// `[[layer]]` entries in order.
    pub layers: Vec<LayerPlan>,
    /// `[config]`.
    pub config: ConfigPlan,
    /// What was not translated, instruction by instruction.
    pub notes: Vec<Note>,
    /// Requirements files seen in `pip install -r` (for the commented python layer),
    /// with the Python version of the stage's base when its tag names one.
    pub python: Vec<(String, Option<String>)>,
}

/// One `[[layer]]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerPlan {
    /// The Dockerfile line it comes from.
    pub line: usize,
    /// A comment written above it (the instruction, "built on the host…").
    pub comments: Vec<String>,
    /// A directory (or single file) from the context.
    pub from: Option<String>,
    /// Where `from` goes.
    pub to: Option<String>,
    /// `owner` (`uid:gid`).
    pub owner: Option<String>,
    /// `mode` of a single-file `from`.
    pub mode: Option<String>,
    /// `exclude` (from `.dockerignore` and `COPY --exclude`).
    pub exclude: Vec<String>,
    /// Single files.
    pub files: Vec<FilePlan>,
}

/// One entry of a layer's `files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilePlan {
    /// Context path.
    pub from: String,
    /// Image path (ending in `/`: the directory it goes into).
    pub to: String,
    /// Octal mode.
    pub mode: Option<String>,
}

/// `[config]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigPlan {
    /// `entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `cmd`.
    pub cmd: Option<Vec<String>>,
    /// `env`, in order of first definition.
    pub env: Vec<(String, String)>,
    /// `workdir`.
    pub workdir: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `ports`.
    pub ports: Vec<String>,
    /// `volumes`.
    pub volumes: Vec<String>,
    /// `labels`.
    pub labels: Vec<(String, String)>,
    /// `stop_signal`.
    pub stop_signal: Option<String>,
    /// `healthcheck`: test and the option values as written.
    pub healthcheck: Option<HealthcheckPlan>,
}

/// `[config.healthcheck]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthcheckPlan {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// `(key, value)`: `interval`, `timeout`, `start_period`, `start_interval`.
    pub durations: Vec<(String, String)>,
    /// `retries`.
    pub retries: Option<u32>,
}

/// An instruction hoist does not do, and what to do instead.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// Dockerfile line.
    pub line: usize,
    /// The instruction, shortened.
    pub instruction: String,
    /// What to do instead.
    pub advice: String,
    /// For a `RUN`: its classification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunAdvice>,
}

/// One stage's state while walking it; a child stage starts from a clone.
#[derive(Debug, Clone, Default)]
pub(super) struct Walk {
    pub plan: ImagePlan,
    pub vars: Vars,
    pub workdir: String,
    pub shell: Vec<String>,
    pub cmd_set: bool,
    pub records: Vec<CopyRecord>,
    /// Host commands of the stage's `RUN`s (npm ci…), for "built on the host".
    pub builds: Vec<String>,
    pub name: Option<String>,
    /// The stage this one is `FROM`, when it is one.
    pub parent: Option<usize>,
    /// Notes only this stage made (a child does not repeat its parent's).
    pub own_notes: Vec<Note>,
}

/// Translates `instructions` of the Dockerfile at `dockerfile` (context `context`).
pub fn translate(
    dockerfile: &Path,
    context: &Path,
    instructions: &[Instruction],
    escape: char,
    options: &Options,
) -> Result<ImagePlan, InitError> {
    let error = |line: usize, message: String| InitError::Dockerfile {
        path: dockerfile.to_path_buf(),
        line,
        message,
    };
    let dockerignore = copy::dockerignore(dockerfile, context)?;
    let mut globals = Vars::new();
    let mut stages: Vec<Walk> = Vec::new();
    let mut current: Option<Walk> = None;
    let mut unused_notes = Vec::new();
    for instruction in instructions {
        let line = instruction.line;
        if instruction.keyword == "FROM" {
            if let Some(done) = current.take() {
                stages.push(done);
            }
            current = Some(
                start_stage(instruction, escape, &globals, &stages).map_err(|m| error(line, m))?,
            );
            continue;
        }
        let Some(walk) = current.as_mut() else {
            if instruction.keyword == "ARG" {
                declare_args(instruction, escape, &mut globals, &Vars::new(), options)
                    .map_err(|m| error(line, m))?;
                continue;
            }
            return Err(error(
                line,
                format!("{} before the first FROM", instruction.keyword),
            ));
        };
        let context = Step {
            dockerfile,
            context,
            dockerignore: &dockerignore,
            escape,
            globals: &globals,
            stages: &stages,
            options,
        };
        context
            .apply(walk, instruction)
            .map_err(|m| error(line, m))?;
    }
    let last = current.ok_or_else(|| error(0, "no FROM: not a Dockerfile".into()))?;
    stages.push(last);
    let final_index = match &options.target {
        Some(target) => stages
            .iter()
            .position(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(target))
            })
            .ok_or_else(|| error(0, format!("no stage named `{target}` (--target)")))?,
        None => stages.len() - 1,
    };
    let mut chain = vec![final_index];
    while let Some(parent) = stages[*chain.last().unwrap_or(&0)].parent {
        chain.push(parent);
    }
    let mut python = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        // Build stages only matter through what they run: their COPY notes are noise.
        let in_image = chain.contains(&index);
        unused_notes.extend(
            stage
                .own_notes
                .iter()
                .filter(|n| in_image || n.run.is_some())
                .cloned(),
        );
        for item in &stage.plan.python {
            if !python.contains(item) {
                python.push(item.clone());
            }
        }
    }
    let mut plan = stages.swap_remove(final_index).plan;
    unused_notes.sort_by_key(|n| n.line);
    plan.notes = unused_notes;
    plan.python = python;
    Ok(plan)
}

/// `FROM [--platform=P] IMAGE [AS NAME]`: a new stage, from an earlier one's state when
/// IMAGE names it.
fn start_stage(
    instruction: &Instruction,
    escape: char,
    globals: &Vars,
    stages: &[Walk],
) -> Result<Walk, String> {
    let words = words::split(&instruction.rest, escape, globals)?;
    let (image, name) = match words.as_slice() {
        [image] => (image.clone(), None),
        [image, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            (image.clone(), Some(name.clone()))
        }
        _ => return Err("expected `FROM IMAGE [AS NAME]`".into()),
    };
    let parent = stages.iter().rposition(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(&image))
    });
    let mut walk = match parent {
        Some(index) => {
            let mut walk = stages[index].clone();
            walk.own_notes.clear();
            walk.builds.clear();
            walk.cmd_set = false;
            walk
        }
        None => Walk {
            plan: ImagePlan {
                base: if image.eq_ignore_ascii_case("scratch") {
                    "scratch".into()
                } else {
                    image.clone()
                },
                ..ImagePlan::default()
            },
            workdir: "/".into(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            ..Walk::default()
        },
    };
    // ARGs are scoped to their stage; a child stage sees its parent's ENV only.
    walk.vars = walk.plan.config.env.iter().cloned().collect();
    walk.name = name;
    walk.parent = parent;
    if let Some(platform) = instruction.flag("platform") {
        let platform = words::word(platform, escape, globals)?;
        if platform.is_empty() {
            walk.own_notes.push(Note {
                line: instruction.line,
                instruction: instruction.summary(),
                advice: "--platform names a build-time variable: hoist builds every platform the base has (or [image].platforms)".into(),
                run: None,
            });
        } else if parent.is_none() {
            walk.plan.platforms = vec![platform];
        }
    }
    Ok(walk)
}

/// `ARG NAME[=default] …`: the value is the `--build-arg`, else the default, else the
/// global ARG's default of the same name.
fn declare_args(
    instruction: &Instruction,
    escape: char,
    target: &mut Vars,
    globals: &Vars,
    options: &Options,
) -> Result<(), String> {
    for word in words::split(&instruction.rest, escape, target)? {
        let (name, default) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        let value = options
            .build_args
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or(default)
            .or_else(|| globals.get(&name).cloned());
        if let Some(value) = value {
            target.insert(name, value);
        }
    }
    Ok(())
}

/// What [`Step::apply`] needs besides the stage.
pub(super) struct Step<'a> {
    pub dockerfile: &'a Path,
    /// `.dockerignore` patterns, relative to the context.
    pub dockerignore: &'a [String],
    pub context: &'a Path,
    pub escape: char,
    pub globals: &'a Vars,
    pub stages: &'a [Walk],
    pub options: &'a Options,
}

impl Step<'_> {
    fn apply(&self, walk: &mut Walk, instruction: &Instruction) -> Result<(), String> {
        let escape = self.escape;
        let rest = instruction.rest.as_str();
        let config = &mut walk.plan.config;
        match instruction.keyword.as_str() {
            "ARG" => declare_args(
                instruction,
                escape,
                &mut walk.vars,
                self.globals,
                self.options,
            )?,
            "ENV" => {
                for (name, value) in pairs(rest, escape, &walk.vars)? {
                    walk.vars.insert(name.clone(), value.clone());
                    set(&mut config.env, name, value);
                }
            }
            "LABEL" => {
                for (name, value) in pairs(rest, escape, &walk.vars)? {
                    set(&mut config.labels, name, value);
                }
            }
            "WORKDIR" => {
                let dir = words::word(rest, escape, &walk.vars)?;
                walk.workdir = copy::absolute(&walk.workdir, &dir);
                config.workdir = Some(walk.workdir.clone());
            }
            "USER" => config.user = Some(words::word(rest, escape, &walk.vars)?),
            "STOPSIGNAL" => config.stop_signal = Some(words::word(rest, escape, &walk.vars)?),
            "EXPOSE" => {
                for spec in words::split(rest, escape, &walk.vars)? {
                    for port in ports(&spec.to_ascii_lowercase())? {
                        if !config.ports.contains(&port) {
                            config.ports.push(port);
                        }
                    }
                }
            }
            "VOLUME" => {
                let list = match &instruction.json {
                    Some(list) => list.clone(),
                    None => words::split(rest, escape, &walk.vars)?,
                };
                config.volumes.extend(list);
            }
            "CMD" => {
                config.cmd = Some(command(instruction, &walk.shell));
                walk.cmd_set = true;
            }
            "ENTRYPOINT" => {
                config.entrypoint = Some(command(instruction, &walk.shell));
                // As BuildKit: an ENTRYPOINT clears a CMD not set in this stage.
                if !walk.cmd_set {
                    config.cmd = None;
                }
            }
            "SHELL" => {
                walk.shell = instruction
                    .json
                    .clone()
                    .ok_or("SHELL must be in JSON form: SHELL [\"executable\", \"parameters\"]")?;
            }
            "HEALTHCHECK" => config.healthcheck = Some(healthcheck(instruction)?),
            "RUN" => Self::run(walk, instruction),
            "COPY" | "ADD" => copy::apply(self, walk, instruction)?,
            "MAINTAINER" => note(
                walk,
                instruction,
                "not translated: deprecated; set the label `org.opencontainers.image.authors` in [config].labels instead",
            ),
            "ONBUILD" => note(
                walk,
                instruction,
                "not translated: hoist records no ONBUILD triggers (they run when another Dockerfile builds FROM this image)",
            ),
            other => return Err(format!("unknown instruction `{other}`")),
        }
        Ok(())
    }

    fn run(walk: &mut Walk, instruction: &Instruction) {
        let text = match &instruction.json {
            Some(list) => list.join(" "),
            None => instruction.rest.clone(),
        };
        let run = advice::classify(&text, &|file| copy::trace_file(walk, file));
        walk.builds.extend(run.host_commands.iter().cloned());
        let version = python_version(&walk.plan.base);
        for requirements in &run.requirements {
            walk.plan
                .python
                .push((requirements.clone(), version.clone()));
        }
        let advice = run.advice.join("; ");
        walk.own_notes.push(Note {
            line: instruction.line,
            instruction: instruction.summary(),
            advice,
            run: Some(run),
        });
    }
}

/// Adds a note for `instruction` to the stage.
pub(super) fn note(walk: &mut Walk, instruction: &Instruction, advice: &str) {
    walk.own_notes.push(Note {
        line: instruction.line,
        instruction: instruction.summary(),
        advice: advice.to_string(),
        run: None,
    });
}

/// The Python version a `python:3.11-slim` style base names.
fn python_version(base: &str) -> Option<String> {
    let tag = base.rsplit('/').next()?.strip_prefix("python:")?;
    let version: String = tag
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = version.split('.').filter(|p| !p.is_empty());
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// Ports a range spans at most (docker expands ranges; so must we, hoist has none).
const MAX_RANGE: u32 = 1024;

/// `80`, `53/udp`, or a range `8000-8002/tcp` expanded as docker does.
fn ports(spec: &str) -> Result<Vec<String>, String> {
    let (numbers, protocol) = match spec.split_once('/') {
        Some((n, p)) => (n, format!("/{p}")),
        None => (spec, String::new()),
    };
    let Some((first, last)) = numbers.split_once('-') else {
        return Ok(vec![spec.to_string()]);
    };
    let bad = || format!("EXPOSE {spec}: expected a port range such as 8000-8010");
    let first: u32 = first.parse().map_err(|_| bad())?;
    let last: u32 = last.parse().map_err(|_| bad())?;
    if first > last || last - first >= MAX_RANGE {
        return Err(bad());
    }
    Ok((first..=last)
        .map(|port| format!("{port}{protocol}"))
        .collect())
}

/// Replaces `name`'s value in place, or appends it.
fn set(list: &mut Vec<(String, String)>, name: String, value: String) {
    match list.iter_mut().find(|(n, _)| *n == name) {
        Some(entry) => entry.1 = value,
        None => list.push((name, value)),
    }
}

/// `A=1 B="two words"`, or the legacy `A one value` (one pair, the rest its value).
fn pairs(rest: &str, escape: char, vars: &Vars) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let value = rest.trim_start()[first.len()..].trim();
        if first.is_empty() || value.is_empty() {
            return Err("expected NAME=VALUE".into());
        }
        return Ok(vec![(first.to_string(), words::word(value, escape, vars)?)]);
    }
    // Values substitute what was in scope before this instruction, as Docker does.
    words::split(rest, escape, vars)?
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((n, v)) if !n.is_empty() => Ok((n.to_string(), v.to_string())),
            _ => Err(format!("`{word}`: expected NAME=VALUE")),
        })
        .collect()
}

/// CMD/ENTRYPOINT: the exec form as is; the shell form run by the stage's shell.
fn command(instruction: &Instruction, shell: &[String]) -> Vec<String> {
    if let Some(list) = &instruction.json {
        return list.clone();
    }
    let mut argv = shell.to_vec();
    argv.push(instruction.rest.trim().to_string());
    argv
}

fn healthcheck(instruction: &Instruction) -> Result<HealthcheckPlan, String> {
    let mut plan = HealthcheckPlan::default();
    for (name, value) in &instruction.flags {
        match name.as_str() {
            "interval" | "timeout" | "start-period" | "start-interval" => {
                plan.durations.push((name.replace('-', "_"), value.clone()));
            }
            "retries" => {
                plan.retries = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--retries={value}: expected a whole number"))?,
                );
            }
            other => return Err(format!("HEALTHCHECK: unknown option --{other}")),
        }
    }
    let rest = instruction.rest.trim();
    if rest.eq_ignore_ascii_case("NONE") {
        plan.test = vec!["NONE".into()];
        return Ok(plan);
    }
    let body = rest
        .get(..3)
        .filter(|k| k.eq_ignore_ascii_case("CMD"))
        .map(|_| rest[3..].trim())
        .ok_or("HEALTHCHECK: expected `CMD …` or `NONE`")?;
    plan.test = match serde_json::from_str::<Vec<String>>(body) {
        Ok(list) if body.starts_with('[') => {
            std::iter::once("CMD".to_string()).chain(list).collect()
        }
        _ => vec!["CMD-SHELL".into(), body.to_string()],
    };
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Translates `dockerfile` with the files `files` in a temp context.
    fn plan(dockerfile: &str, files: &[&str], build_args: &[(&str, &str)]) -> ImagePlan {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let path = dir.path().join("Dockerfile");
        let parsed = super::super::dockerfile::parse(&path, dockerfile).unwrap();
        let options = Options {
            build_args: build_args
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ..Options::default()
        };
        translate(
            &path,
            dir.path(),
            &parsed.instructions,
            parsed.escape,
            &options,
        )
        .unwrap()
    }

    #[test]
    fn args_before_from_and_stage_chains() {
        let plan = plan(
            "ARG TAG=3.20\nARG REG\nFROM ${REG:-docker.io/library}/alpine:${TAG} AS base\nENV A=1\nCMD [\"sh\"]\nFROM base AS app\nENTRYPOINT [\"/app\"]\nEXPOSE 8000-8002/udp 80\n",
            &[],
            &[("TAG", "3.21")],
        );
        assert_eq!(plan.base, "docker.io/library/alpine:3.21");
        assert_eq!(plan.config.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(
            plan.config.entrypoint.as_deref(),
            Some(&["/app".to_string()][..])
        );
        // As BuildKit: the parent stage's CMD is cleared by this stage's ENTRYPOINT.
        assert_eq!(plan.config.cmd, None);
        assert_eq!(
            plan.config.ports,
            ["8000/udp", "8001/udp", "8002/udp", "80"]
        );
    }

    #[test]
    fn copy_from_a_stage_is_traced_and_shell_forms_use_shell() {
        let plan = plan(
            "FROM node:20 AS build\nWORKDIR /src\nCOPY web/ .\nRUN npm ci && npm run build\nFROM scratch\nCOPY --from=0 /src/out /www\nCOPY --from=build /src/package.json /x/\nCOPY --from=build /tmp/made /y\nSHELL [\"/bin/bash\", \"-ec\"]\nCMD exec serve /www\n",
            &["web/package.json"],
            &[],
        );
        assert_eq!(plan.base, "scratch");
        assert_eq!(plan.layers[0].from.as_deref(), Some("web/out"));
        assert_eq!(plan.layers[0].to.as_deref(), Some("/www"));
        assert!(
            plan.layers[0].comments[1].contains("`npm ci && npm run build`"),
            "{:?}",
            plan.layers[0]
        );
        assert_eq!(plan.layers[1].files[0].from, "web/package.json");
        assert_eq!(plan.layers[1].files[0].to, "/x/");
        assert!(plan.notes.iter().any(|n| {
            n.line == 8
                && n.advice
                    .contains("`/tmp/made` is made inside stage `build`")
        }));
        assert_eq!(
            plan.config.cmd.as_deref(),
            Some(
                &[
                    "/bin/bash".to_string(),
                    "-ec".into(),
                    "exec serve /www".into()
                ][..]
            )
        );
    }

    #[test]
    fn from_keeps_platform_and_digest() {
        let plan = plan(
            "FROM --platform=linux/arm64 nginx:1.27@sha256:abababababababababababababababababababababababababababababababab\nHEALTHCHECK NONE\nUSER nginx\nSTOPSIGNAL SIGQUIT\n",
            &[],
            &[],
        );
        assert_eq!(
            plan.base,
            "nginx:1.27@sha256:abababababababababababababababababababababababababababababababab"
        );
        assert_eq!(plan.platforms, ["linux/arm64"]);
        assert_eq!(
            plan.config.healthcheck.as_ref().map(|h| h.test.clone()),
            Some(vec!["NONE".to_string()])
        );
        assert_eq!(plan.config.user.as_deref(), Some("nginx"));
        let plan = plan_of("FROM --platform=$BUILDPLATFORM a\n");
        assert!(plan.platforms.is_empty());
        assert!(plan.notes[0].advice.contains("every platform the base has"));
    }

    fn plan_of(dockerfile: &str) -> ImagePlan {
        plan(dockerfile, &[], &[])
    }

    #[test]
    fn python_versions_from_tags() {
        assert_eq!(python_version("python:3.11-slim").as_deref(), Some("3.11"));
        assert_eq!(
            python_version("docker.io/library/python:3.12.4").as_deref(),
            Some("3.12")
        );
        assert_eq!(python_version("nginx:1.27"), None);
    }

    #[test]
    fn env_pairs_both_forms() {
        let vars: Vars = [("V".to_string(), "1".to_string())].into();
        assert_eq!(
            pairs("A=$V B=\"x y\"", '\\', &vars).unwrap(),
            [("A".into(), "1".into()), ("B".into(), "x y".into())]
        );
        assert_eq!(
            pairs("PATH /a b", '\\', &vars).unwrap(),
            [("PATH".into(), "/a b".into())]
        );
        assert!(pairs("=x", '\\', &vars).is_err());
    }
}
