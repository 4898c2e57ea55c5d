//! `hoist build`: resolve the plan, assemble, write to the output, report.

use anyhow::{Context, Result};
use hoist::assemble::{Image, assemble};
use hoist::config::ConfigFile;
use hoist::oci::location::Location;
use hoist::plan::{Overrides, Plan, resolve};
use hoist::publish::{effective_tags, sink_for};
use hoist::registry::push::push;
use hoist::registry::{block_on, reference};
use hoist_layers::BuildOptions;
use oci_spec::distribution::Reference;
use serde_json::json;

use super::BuildArgs;

pub fn run(args: &BuildArgs) -> Result<()> {
    let file = ConfigFile::load(&args.config)?;
    let overrides = Overrides {
        base: args.base.clone(),
        platforms: args.platform.clone(),
        labels: args.label.clone(),
        env: args.env.clone(),
        tags: args.tag.clone(),
        format: args.format.clone(),
        compression: args.compression.clone(),
        compression_level: args.compression_level,
    };
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let mut plan = resolve(&args.config, &file, &overrides, epoch.as_deref())?;
    // A versioned project's images carry org.opencontainers.image.version & co.
    super::release::add_release_labels(&args.config, &file, &mut plan, None)?;
    // Parse the output before building: a typo must not cost a full build.
    let sink = args
        .output
        .as_deref()
        .map(|output| Location::parse(output).and_then(|l| sink_for(&l)))
        .transpose()?;
    if let Some(sink) = &sink {
        sink.preflight()?;
    }
    if let Some(path) = &args.digest_file {
        hoist::publish::check_file_target(path).with_context(|| "--digest-file".to_string())?;
    }
    let push_target = push_target(args, &plan)?;

    let (cache_dir, store) = super::open_cache(args.cache_dir.as_ref())?;
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: !args.no_cache,
    };
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let observer = super::progress::observer();
    let mut registry = args.registry.options(0)?;
    // Without an output, nothing needs a base layer's bytes unless the push target
    // lacks the layer and cannot mount it: leave them in the registry until then.
    registry.base_layers_on_demand = sink.is_none();
    // One transport for the base's fetches and the push: one probe of each registry,
    // one token per scope set.
    let registry = hoist::registry::transport::Transport::new(registry);
    let image = assemble(
        &plan,
        &store,
        &options,
        &registry,
        scratch.path(),
        observer.as_ref(),
    )?;

    let report = match &sink {
        Some(sink) => Some(sink.write(&image, &plan.tags)?),
        None => None,
    };
    let pushed = match &push_target {
        Some((target, tags)) => {
            let report = block_on(push(&image, target, tags, &registry))?;
            eprintln!(
                "pushed {} as {} ({} blobs uploaded, {} mounted, {} already there, {})",
                report.reference,
                report.tags.join(", "),
                report.blobs_uploaded,
                report.blobs_mounted,
                report.blobs_skipped,
                hoist::inspect::human_bytes(report.bytes_uploaded)
            );
            Some(report)
        }
        None => None,
    };
    if let Some(path) = &args.digest_file {
        hoist::publish::write_atomically(
            path,
            format!("{}\n", image.descriptor.digest).as_bytes(),
        )?;
    }
    match &report {
        Some(report) => eprintln!(
            "wrote {} ({} new)",
            report.target,
            hoist::inspect::human_bytes(report.bytes_written)
        ),
        None if pushed.is_none() => eprintln!(
            "no --output given: the image was built into {} only",
            cache_dir.display()
        ),
        None => {}
    }
    if args.json {
        let mut json = summary(&image);
        if let Some(report) = &pushed {
            for key in [
                "reference",
                "tags",
                "blobs_uploaded",
                "blobs_mounted",
                "blobs_skipped",
                "bytes_uploaded",
                "base_blobs_fetched",
            ] {
                json[key] = serde_json::to_value(report)?[key].take();
            }
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", image.descriptor.digest);
    }
    Ok(())
}

/// Where `--push` / `--push-to` sends the image, and with which tags; checked before
/// building so a bad reference does not cost a build.
fn push_target(args: &BuildArgs, plan: &Plan) -> Result<Option<(Reference, Vec<String>)>> {
    let input = match (&args.push_to, args.push, &plan.name) {
        (Some(to), _, _) => to.clone(),
        (None, true, Some(name)) => name.clone(),
        (None, true, None) => anyhow::bail!(
            "--push needs a repository: set image.name in {} or pass --push-to",
            args.config.display()
        ),
        (None, false, _) => return Ok(None),
    };
    anyhow::ensure!(
        !args.registry.offline,
        "--offline and --push cannot go together: pushing needs the network"
    );
    let target = reference::parse(&input)?;
    let tags = effective_tags(reference::explicit_tag(&input), &plan.tags);
    Ok(Some((target, tags)))
}

/// The `--json` summary (documented in docs/cli.md).
fn summary(image: &Image) -> serde_json::Value {
    json!({
        "digest": image.descriptor.digest,
        "media_type": image.descriptor.media_type,
        "platforms": image.platforms.iter().map(|p| json!({
            "platform": p.platform.to_string(),
            "digest": p.descriptor.digest,
            "layers": p.layers,
        })).collect::<Vec<_>>(),
        "bytes": image.total_bytes(),
    })
}
