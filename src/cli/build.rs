//! `hoist build`: resolve the plan, assemble, write to the output, report.

use anyhow::{Context, Result};
use hoist::config::ConfigFile;
use hoist::inspect::human_bytes;
use hoist::oci::image::Image;
use hoist::oci::location::Location;
use hoist::oci::reference;
use hoist::pipeline::{Builder, Outputs, PushTarget};
use hoist::plan::{Overrides, Plan, resolve};
use hoist::publish::{effective_tags, sink_for};
use hoist::release::labels::label_plan;
use hoist_layers::BuildOptions;
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
    label_plan(&args.config, &file, &mut plan, None)?;
    // Parse the outputs before building: a typo must not cost a full build.
    let sink = args
        .output
        .as_deref()
        .map(|output| Location::parse(output).and_then(|l| sink_for(&l)))
        .transpose()?;
    let outputs = Outputs {
        sink: sink.map(|sink| (sink, plan.tags.clone())),
        push: push_target(args, &plan)?,
    };
    if let Some(path) = &args.digest_file {
        hoist::fsutil::check_file_target(path).with_context(|| "--digest-file".to_string())?;
    }

    // The key is decrypted before the build: a wrong password must not cost one.
    let signing_key = match (&args.sign_key, &outputs.push) {
        (Some(path), Some(_)) => Some(super::sign::load_private_key(path)?),
        (Some(_), None) => {
            anyhow::bail!("--sign-key signs what is pushed: add --push or --push-to")
        }
        (None, _) => None,
    };

    let (cache_dir, store) = super::open_cache(args.cache_dir.as_ref())?;
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: !args.no_cache,
    };
    let observer = super::progress::observer();
    let transport = args.registry.transport(0)?;
    let builder = Builder::new(&store, options, &transport, observer.as_ref())?;
    let (image, published) = builder.run(&plan, &outputs)?;

    if let Some(report) = &published.pushed {
        eprintln!(
            "pushed {} as {} ({} blobs uploaded, {} mounted, {} already there, {})",
            report.reference,
            report.tags.join(", "),
            report.blobs_uploaded,
            report.blobs_mounted,
            report.blobs_skipped,
            human_bytes(report.bytes_uploaded)
        );
    }
    let (signed, provenance) = match (&signing_key, &published.pushed) {
        (Some(key), Some(report)) => {
            let signed = super::sign::sign_after_push(key, &report.reference, &transport)?;
            let facts = hoist::release::attest::provenance_facts(
                &args.config,
                &plan,
                &image,
                &report.reference,
            )?;
            let provenance = super::sign::attach_provenance(
                key,
                &facts,
                &report.reference,
                &image.descriptor,
                &transport,
            )?;
            (Some(signed), Some(provenance))
        }
        _ => (None, None),
    };
    if let Some(path) = &args.digest_file {
        hoist::fsutil::write_atomically(path, format!("{}\n", image.descriptor.digest).as_bytes())?;
    }
    match &published.written {
        Some(report) => eprintln!(
            "wrote {} ({} new)",
            report.target,
            human_bytes(report.bytes_written)
        ),
        None if published.pushed.is_none() => eprintln!(
            "no --output given: the image was built into {} only",
            cache_dir.display()
        ),
        None => {}
    }
    if args.json {
        let mut json = summary(&image);
        if let Some(report) = &published.pushed {
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
        if let Some(signed) = &signed {
            json["signatures"] = serde_json::to_value(&signed.signed)?;
        }
        if let Some(provenance) = &provenance {
            json["provenance"] = json!(provenance.digest);
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", image.descriptor.digest);
    }
    Ok(())
}

/// Where `--push` / `--push-to` sends the image, and with which tags; checked before
/// building so a bad reference does not cost a build.
fn push_target(args: &BuildArgs, plan: &Plan) -> Result<Option<PushTarget>> {
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
    let reference = reference::parse(&input)?;
    let tags = effective_tags(reference::explicit_tag(&input), &plan.tags);
    Ok(Some(PushTarget { reference, tags }))
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
