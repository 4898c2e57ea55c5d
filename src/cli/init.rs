//! `hoist init`: flags for [`hoist::init`], and the report printed.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hoist::init::{self, Options, Report};

/// `hoist init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Dockerfile to translate [default: ./Dockerfile]; its context is the
    /// current directory, where hoist.toml is written.
    #[arg(long, short = 'f', value_name = "FILE", conflicts_with = "compose")]
    dockerfile: Option<PathBuf>,
    /// A compose file: one workspace member (a hoist.toml in the service's build
    /// context) per service that builds, and a workspace hoist.toml beside the file.
    #[arg(long, value_name = "FILE")]
    compose: Option<PathBuf>,
    /// Set an ARG's value (KEY=VALUE), over its default (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// The stage that is the image [default: the last].
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `hoist init`.
pub fn run(args: &InitArgs) -> Result<()> {
    let build_args = args
        .build_arg
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--build-arg {pair}: expected KEY=VALUE"),
        })
        .collect::<Result<Vec<_>>>()?;
    let options = Options {
        dir: PathBuf::from("."),
        dockerfile: args.dockerfile.clone(),
        compose: args.compose.clone(),
        build_args,
        target: args.target.clone(),
    };
    let report = init::init(&options)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("writing the report")?
        );
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(report: &Report) {
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    for image in &report.images {
        let what = image
            .service
            .as_deref()
            .map_or(String::new(), |s| format!(" (service {s})"));
        println!(
            "{}{what}: base {}, {} layer(s)",
            image.dockerfile.display(),
            image.plan.base,
            image.plan.layers.len()
        );
    }
    if let Some(version) = &report.version {
        println!(
            "[version] source {}, sync {:?}",
            version.source, version.sync
        );
        let mut found = version.versions.iter().map(|(_, v)| v);
        if let Some(first) = found.next()
            && found.any(|v| v != first)
        {
            println!(
                "  the versions differ ({:?}): `hoist version check` will say so",
                version.versions
            );
        }
        for (file, why) in &version.skipped {
            println!("  not a version file: {file}: {why}");
        }
    }
    for (service, why) in &report.skipped {
        println!("service {service}: not translated: {why}");
    }
    let notes = init::all_notes(report);
    if !notes.is_empty() {
        println!("\nNot translated (also written as comments in hoist.toml):");
    }
    for (file, note) in notes {
        println!(
            "{file}:{}: {}\n  → {}",
            note.line, note.instruction, note.advice
        );
    }
}
