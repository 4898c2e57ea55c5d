//! `hoist index create`: an index over manifests already in a registry.

use super::progress::note;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hoist::oci::reference;

use super::RegistryArgs;

/// `hoist index` subcommands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Make an index from manifests (or indexes, flattened) already in the registry
    /// and tag it, like `docker buildx imagetools create`: platforms are read from
    /// the configs, no layer moves, tags are set last. Given in the build's platform
    /// order, split builds' manifests give the one-runner build's index digest.
    Create(CreateArgs),
}

/// `hoist index create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The index to make: HOST/REPO[:TAG] (without a tag, only --tag tags it; with
    /// neither, it is pushed by digest only).
    #[arg(value_name = "TARGET")]
    target: String,
    /// The manifests or indexes, in index order: HOST/REPO@sha256:… (or :TAG), in the
    /// target's registry.
    #[arg(value_name = "SOURCE", required = true)]
    sources: Vec<String>,
    /// Another tag for the index (repeatable).
    #[arg(long, short = 't', value_name = "TAG")]
    tag: Vec<String>,
    /// Also write the index digest to this file.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<std::path::PathBuf>,
    /// Move tags anyway: a tag naming a version or a commit (`1.2.3`, `sha-…`) that
    /// names another image, and latest, {major}, {major}.{minor} backwards.
    #[arg(long)]
    force_tags: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON report on stdout instead of the index reference.
    #[arg(long)]
    json: bool,
}

pub fn create(args: &CreateArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist index create needs the network"
    );
    let target = reference::parse(&args.target)?;
    let mut tags: Vec<String> = reference::explicit_tag(&args.target)
        .map(str::to_string)
        .into_iter()
        .collect();
    for tag in &args.tag {
        let parsed = reference::parse(&format!(
            "{}/{}:{tag}",
            target.registry(),
            target.repository()
        ))
        .with_context(|| format!("--tag {tag}"))?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(parsed.tag().unwrap_or(tag).to_string());
        }
    }
    let sources = args
        .sources
        .iter()
        .map(|s| reference::parse(s))
        .collect::<hoist::error::Result<Vec<_>>>()?;
    if let Some(path) = &args.digest_file {
        hoist::fsutil::check_file_target(path).with_context(|| "--digest-file".to_string())?;
    }
    let transport = args.registry.transport(0)?;
    super::registry::force_tags_warning(args.force_tags);
    let report = hoist::job::tag::create_index_checked(
        &target,
        &tags,
        &sources,
        args.force_tags,
        &transport,
        &mut |note| note!("{note}"),
    )?;
    note!(
        "{} {} ({} manifests{}){}",
        if report.created {
            "created"
        } else {
            "already there:"
        },
        report.reference,
        report.manifests.len(),
        if report.manifests_copied > 0 {
            format!(", {} copied by mount", report.manifests_copied)
        } else {
            String::new()
        },
        if tags.is_empty() {
            String::new()
        } else {
            format!(" as {}", tags.join(", "))
        }
    );
    if let Some(path) = &args.digest_file {
        hoist::fsutil::write_atomically(path, format!("{}\n", report.digest).as_bytes())?;
    }
    let mut document = serde_json::to_value(&report)?;
    args.registry.report(&transport, &mut document, &[])?;
    super::emit_json(&document, args.json, None)?;
    if !args.json {
        println!("{}", report.reference);
    }
    Ok(())
}
