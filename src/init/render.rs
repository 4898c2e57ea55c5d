//! hoist.toml text for an [`ImagePlan`]: the report as comments at the top, then
//! `[image]`, the layers, a commented `python` layer where `pip install` was, and
//! `[config]`. Strings and keys are written by toml_edit, so any value is valid TOML.

use std::fmt::Write as _;

use super::translate::{ConfigPlan, ImagePlan, LayerPlan, Note};
use super::versions::VersionPlan;

/// A TOML string.
fn string(value: &str) -> String {
    toml_edit::Value::from(value).to_string().trim().to_string()
}

/// A TOML key (quoted only when it must be).
fn key(name: &str) -> String {
    toml_edit::Key::new(name).display_repr().into_owned()
}

fn list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| string(v)).collect();
    format!("[{}]", items.join(", "))
}

fn table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", key(k), string(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// Comment lines (`# …`) for text that may hold newlines.
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "#{indent}{line}");
    }
}

/// The report as comments: every instruction hoist does not do, and what to do instead.
pub fn notes(out: &mut String, source: &str, notes: &[Note]) {
    if notes.is_empty() {
        let _ = writeln!(out, "# Every instruction of {source} is translated.");
        return;
    }
    let _ = writeln!(
        out,
        "# What {source} does that hoist does not (see docs/migrating.md):"
    );
    for note in notes {
        comment(
            out,
            "   ",
            &format!("line {}: {}", note.line, note.instruction),
        );
        comment(out, "     ", &format!("→ {}", note.advice));
    }
}

/// One image's hoist.toml (a workspace member's when `version` is `None` and
/// `member` is true).
pub fn image(
    plan: &ImagePlan,
    source: &str,
    name: Option<&(String, Vec<String>)>,
    version: Option<&VersionPlan>,
) -> String {
    let mut out = format!("# Written by `hoist init` from {source}.\n");
    notes(&mut out, source, &plan.notes);
    out.push_str("\n[image]\n");
    match name {
        Some((repository, tags)) => {
            let _ = writeln!(out, "name = {}", string(repository));
            if !tags.is_empty() {
                let _ = writeln!(out, "tags = {}", list(tags));
            }
        }
        None => out.push_str(
            "# name = \"registry.example.com/team/app\"   # where --push and release push\n",
        ),
    }
    let _ = writeln!(out, "base = {}", string(&plan.base));
    if !plan.platforms.is_empty() {
        let _ = writeln!(out, "platforms = {}", list(&plan.platforms));
    }
    for layer in &plan.layers {
        out.push('\n');
        write_layer(&mut out, layer);
    }
    for (requirements, version) in &plan.python {
        out.push('\n');
        python(&mut out, requirements, version.as_deref());
    }
    write_config(&mut out, &plan.config);
    if let Some(version) = version {
        write_version(&mut out, version);
    }
    out
}

fn write_layer(out: &mut String, layer: &LayerPlan) {
    for line in &layer.comments {
        comment(out, " ", line);
    }
    out.push_str("[[layer]]\n");
    if let (Some(from), Some(to)) = (&layer.from, &layer.to) {
        let _ = writeln!(out, "from = {}\nto = {}", string(from), string(to));
    }
    if let Some(mode) = &layer.mode {
        let _ = writeln!(out, "mode = {}", string(mode));
    }
    if !layer.exclude.is_empty() {
        let _ = writeln!(out, "exclude = {}", list(&layer.exclude));
    }
    if let Some(owner) = &layer.owner {
        let _ = writeln!(out, "owner = {}", string(owner));
    }
    if !layer.files.is_empty() {
        out.push_str("files = [\n");
        for file in &layer.files {
            let mut pairs = vec![
                ("from".to_string(), file.from.clone()),
                ("to".into(), file.to.clone()),
            ];
            if let Some(mode) = &file.mode {
                pairs.push(("mode".into(), mode.clone()));
            }
            let _ = writeln!(out, "  {},", table(&pairs));
        }
        out.push_str("]\n");
    }
}

/// A commented `python` layer (docs/dependencies.md) instead of `pip install -r`.
fn python(out: &mut String, requirements: &str, version: Option<&str>) {
    let _ = writeln!(
        out,
        "# Instead of `pip install -r {requirements}`: a `python` layer from a lock. Make the lock with\n\
         #   {}\n\
         # and uncomment (version: the image's Python{}):",
        super::advice::lock_command(requirements),
        if version.is_some() {
            ", from the base's tag"
        } else {
            "; set it"
        }
    );
    let _ = writeln!(
        out,
        "# [[layer]]\n# python = {{ lock = \"requirements.lock\", venv = \"/opt/venv\", version = {} }}",
        string(version.unwrap_or("3.X"))
    );
}

fn write_config(out: &mut String, config: &ConfigPlan) {
    let mut body = String::new();
    let lists = [("entrypoint", &config.entrypoint), ("cmd", &config.cmd)];
    for (name, value) in lists {
        if let Some(value) = value {
            let _ = writeln!(body, "{name} = {}", list(value));
        }
    }
    if !config.env.is_empty() {
        let _ = writeln!(body, "env = {}", table(&config.env));
    }
    for (name, value) in [
        ("workdir", &config.workdir),
        ("user", &config.user),
        ("stop_signal", &config.stop_signal),
    ] {
        if let Some(value) = value {
            let _ = writeln!(body, "{name} = {}", string(value));
        }
    }
    for (name, value) in [("ports", &config.ports), ("volumes", &config.volumes)] {
        if !value.is_empty() {
            let _ = writeln!(body, "{name} = {}", list(value));
        }
    }
    if !config.labels.is_empty() {
        let _ = writeln!(body, "labels = {}", table(&config.labels));
    }
    if !body.is_empty() {
        let _ = write!(out, "\n[config]\n{body}");
    }
    if let Some(check) = &config.healthcheck {
        let _ = writeln!(out, "\n[config.healthcheck]\ntest = {}", list(&check.test));
        for (name, value) in &check.durations {
            let _ = writeln!(out, "{name} = {}", string(value));
        }
        if let Some(retries) = check.retries {
            let _ = writeln!(out, "retries = {retries}");
        }
    }
}

/// `[version]`: the first version file found is the source, the others are synced.
pub fn write_version(out: &mut String, version: &VersionPlan) {
    let _ = writeln!(out, "\n[version]\nsource = {}", string(&version.source));
    if !version.sync.is_empty() {
        let _ = writeln!(out, "sync = {}", list(&version.sync));
    }
}

/// A workspace root: members, and the shared `[version]`.
pub fn workspace(
    members: &[String],
    source: &str,
    notes_text: &str,
    version: Option<&VersionPlan>,
) -> String {
    let mut out =
        format!("# Written by `hoist init` from {source}: one member per service it builds.\n");
    out.push_str(notes_text);
    let _ = writeln!(out, "\n[workspace]\nmembers = {}", list(members));
    if let Some(version) = version {
        write_version(&mut out, version);
    }
    out
}
