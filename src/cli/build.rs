//! `hoist build`: resolve each image's plan (every member of a workspace, or the one
//! image), build them through one builder and one cache, write to the outputs, report.

use super::progress::note;
use anyhow::{Context, Result};
use hoist::inspect::human_bytes;
use hoist::job::build::{Job, Outputs, Published, Target};
use hoist::job::{Env, PlanOverrides, plan_for};
use hoist::oci::image::Image;
use hoist::oci::location::Location;
use hoist::oci::reference;
use hoist::pipeline::{Builder, PushTarget};
use hoist::plan::{Overrides, Plan};
use hoist::publish::{effective_tags, sink_for};
use hoist::registry::layer_source::cache_references;
use hoist::workspace::{self, Member};
use hoist_layers::BuildOptions;
use oci_spec::distribution::Reference;
use serde_json::json;

use super::BuildArgs;

pub fn run(args: &BuildArgs) -> Result<()> {
    let config = hoist::config::locate(&args.config)?;
    let project = workspace::load(&config, &args.package)?;
    let several = project.members.len() > 1;
    for (given, flag) in [
        (args.output.is_some(), "--output"),
        (!args.push_to.is_empty(), "--push-to"),
    ] {
        anyhow::ensure!(
            !(given && several),
            "{flag} names where one image goes, but {} are built ({}): pick one with -p/--package",
            project.members.len(),
            workspace::names(&project.members)
        );
    }
    let env = Env::from_process();
    let mut targets = Vec::new();
    for member in &project.members {
        let plan = plan_for(&member.config, &member.file, &plan_overrides(args), &env)?;
        let outputs = outputs_for(args, member, &plan)?;
        let mut target = Target::new(member, plan, outputs);
        target.by_digest = args.by_digest;
        target.reuse = registry_layer_sources(args, &target.outputs)?;
        targets.push(target);
    }
    // The key is decrypted before the build: a wrong password must not cost one.
    let signing_key = match &args.sign_key {
        Some(path) => {
            anyhow::ensure!(
                targets.iter().any(|t| !t.outputs.pushes.is_empty()),
                "--sign-key signs what is pushed: add --push or --push-to"
            );
            Some(super::sign::load_private_key(path)?)
        }
        None => None,
    };
    for path in [&args.digest_file, &args.metadata_file]
        .into_iter()
        .flatten()
    {
        hoist::fsutil::check_file_target(path)
            .with_context(|| format!("--digest-file/--metadata-file {}", path.display()))?;
    }

    let (cache_dir, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: !args.no_cache,
    };
    let observer = super::progress::observer();
    let members = project.members_by_repository(&args.push_to);
    let transport = args
        .registry
        .pushing_transport(0, &cache_dir, members.clone())?;
    if args.force_tags {
        note!(
            "WARNING: --force-tags: tags naming a version or a commit may be moved to this build, and moving tags backwards"
        );
    }
    let job = Job {
        builder: Builder::new(&store, options, &transport, observer.as_ref())?,
        sign_key: signing_key.as_ref(),
        force_tags: args.force_tags,
    };
    // Every plan, output and registry is checked before anything is built: a typo in
    // the last member, or a registry that refuses the credentials, must not cost the
    // builds of the others.
    for target in &mut targets {
        job.preflight(target)?;
    }
    transport.phase("build");
    let mut built = Vec::new();
    // In a workspace every line of progress names its member.
    let named = project.is_workspace;
    job.run(
        (&targets, named),
        &mut |note| note!("{note}"),
        &mut |target, image, published| {
            let prefix = if named {
                format!("{}: ", target.member.name)
            } else {
                String::new()
            };
            report(&prefix, &image, &published, &cache_dir);
            for attested in &published.attested {
                super::sign::print_attested(&prefix, attested);
            }
            let signed = signatures_json(&published);
            built.push((target.member.name.clone(), image, published, signed));
        },
    )?;

    if let Some(path) = &args.digest_file {
        let digests: Vec<(String, String)> = built
            .iter()
            .map(|(name, image, _, _)| (name.clone(), image.descriptor.digest.to_string()))
            .collect();
        super::write_digest_file(path, &digests)?;
    }
    let mut document = if project.is_workspace {
        serde_json::Value::Array(
            built
                .iter()
                .map(|(name, image, published, signed)| {
                    let mut entry = summary(image, published);
                    add_signatures(&mut entry, signed);
                    entry["name"] = json!(name);
                    entry
                })
                .collect(),
        )
    } else {
        let mut entry = summary(&built[0].1, &built[0].2);
        add_signatures(&mut entry, &built[0].3);
        entry
    };
    // What the command asked of registries, as release and push report it; in a
    // workspace each member's part is its repositories'.
    let pushed = targets.iter().any(|t| !t.outputs.pushes.is_empty());
    let parts: Vec<Vec<String>> = if project.is_workspace && pushed {
        built
            .iter()
            .map(|(name, ..)| {
                members
                    .iter()
                    .filter(|(_, member)| *member == name)
                    .map(|(repository, _)| repository.clone())
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    args.registry.report(&transport, &mut document, &parts)?;
    super::emit_json(&document, args.json, args.metadata_file.as_deref())?;
    if !args.json {
        for (name, image, _, _) in &built {
            if project.is_workspace {
                println!("{name} {}", image.descriptor.digest);
            } else {
                println!("{}", image.descriptor.digest);
            }
        }
    }
    Ok(())
}

/// What the flags change in each image's plan.
fn plan_overrides(args: &BuildArgs) -> PlanOverrides<'static> {
    PlanOverrides {
        overrides: Overrides {
            base: args.base.clone(),
            platforms: args.platform.clone(),
            labels: args.label.clone(),
            env: args.env.clone(),
            tags: args.tag.clone(),
            format: args.format.clone(),
            compression: args.compression.clone(),
            compression_level: args.compression_level,
            entrypoint: args.entrypoint.clone(),
            cmd: args.cmd.clone(),
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            expose: args.expose.clone(),
        },
        no_sbom: args.no_sbom,
        ..PlanOverrides::default()
    }
}

/// Where one image goes: `--output`, and `--push`/`--push-to`; parsed before building
/// so a typo does not cost a build.
fn outputs_for(args: &BuildArgs, member: &Member, plan: &Plan) -> Result<Outputs> {
    let sink = args
        .output
        .as_deref()
        .map(|output| Location::parse(output).and_then(|l| sink_for(&l)))
        .transpose()?;
    let load = if args.load {
        let engine = args.engine.find()?;
        let tags = effective_tags(None, &plan.tags);
        let names: Vec<String> = plan
            .names
            .iter()
            .flat_map(|name| tags.iter().map(move |tag| format!("{name}:{tag}")))
            .collect();
        anyhow::ensure!(
            !names.is_empty(),
            "--load needs a name to load the image under: set image.name in {}",
            member.config.display()
        );
        Some((engine, names))
    } else {
        None
    };
    Ok(Outputs {
        sink: sink.map(|sink| (sink, plan.tags.clone())),
        pushes: push_targets(args, member, plan)?,
        load,
    })
}

/// The repositories `--push` / `--push-to` sends the image to, each with its tags.
fn push_targets(args: &BuildArgs, member: &Member, plan: &Plan) -> Result<Vec<PushTarget>> {
    let inputs = match (args.push_to.is_empty(), args.push) {
        (false, _) => args.push_to.clone(),
        (true, true) if !plan.names.is_empty() => plan.names.clone(),
        (true, true) => anyhow::bail!(
            "--push needs a repository: set image.name in {} or pass --push-to",
            member.config.display()
        ),
        (true, false) => {
            anyhow::ensure!(
                !args.by_digest,
                "--by-digest pushes by digest: it needs --push or --push-to"
            );
            return Ok(Vec::new());
        }
    };
    anyhow::ensure!(
        !args.registry.offline,
        "--offline and --push cannot go together: pushing needs the network"
    );
    inputs
        .iter()
        .map(|input| {
            let reference = reference::parse(input)?;
            // --by-digest: the manifest alone, untagged (`hoist index create` tags).
            let tags = if args.by_digest {
                Vec::new()
            } else {
                effective_tags(reference::explicit_tag(input), &plan.tags)
            };
            Ok(PushTarget { reference, tags })
        })
        .collect()
}

/// `{reference, signatures, provenance}` of each signed push.
fn signatures_json(published: &Published) -> serde_json::Value {
    if published.attested.is_empty() {
        return serde_json::Value::Null;
    }
    published
        .attested
        .iter()
        .map(|a| {
            json!({
                "reference": a.reference,
                "signatures": a.signatures.signed,
                "provenance": a.provenance.digest,
            })
        })
        .collect()
}

/// `signatures` and `provenance` of the first push at the top of an image's `--json`
/// entry (as for the other push fields), and every push's under `signed`.
fn add_signatures(entry: &mut serde_json::Value, signed: &serde_json::Value) {
    if let Some(first) = signed.as_array().and_then(|s| s.first()) {
        entry["signatures"] = first["signatures"].clone();
        entry["provenance"] = first["provenance"].clone();
        entry["signed"] = signed.clone();
    }
}

/// What was built and where it went, on stderr.
fn report(prefix: &str, image: &Image, published: &Published, cache_dir: &std::path::Path) {
    if let Some(loaded) = &published.loaded {
        for line in loaded.lines() {
            note!("{prefix}{line}");
        }
    }
    for report in &published.pushed {
        note!(
            "{prefix}pushed {} as {} ({} blobs uploaded, {} mounted, {} already there, {})",
            report.reference,
            report.tags.join(", "),
            report.blobs_uploaded,
            report.blobs_mounted,
            report.blobs_skipped,
            human_bytes(report.bytes_uploaded)
        );
    }
    match &published.written {
        Some(report) => note!(
            "{prefix}wrote {} ({} new)",
            report.target,
            human_bytes(report.bytes_written)
        ),
        None if published.pushed.is_empty() && published.loaded.is_some() => {}
        None if published.pushed.is_empty() => note!(
            "{prefix}no --output given: {} was built into {} only",
            image.descriptor.digest,
            cache_dir.display()
        ),
        None => {}
    }
}

/// The registry images whose layers a build may reuse (the first push target's tags,
/// `latest`, then `--cache-from`): none unless the only outputs are pushes and caches
/// may be used.
fn registry_layer_sources(args: &BuildArgs, outputs: &Outputs) -> Result<Vec<Reference>> {
    let cache_from = args
        .cache_from
        .iter()
        .map(|r| reference::parse(r).with_context(|| format!("--cache-from {r}")))
        .collect::<Result<Vec<_>>>()?;
    if !cache_from.is_empty() && outputs.sink.is_some() {
        note!(
            "warning: --cache-from is not used: --output needs every layer's bytes, so layers are built here"
        );
    }
    if args.no_cache || args.registry.offline || outputs.sink.is_some() || outputs.load.is_some() {
        return Ok(Vec::new());
    }
    let target = outputs
        .pushes
        .first()
        .map(|t| (&t.reference, t.tags.as_slice()));
    Ok(cache_references(target, &cache_from))
}

/// One image's `--json` summary (documented in docs/cli.md): the first push's fields
/// at the top (as before several registries), every push under `pushes`.
fn summary(image: &Image, published: &Published) -> serde_json::Value {
    let mut json = json!({
        "digest": image.descriptor.digest,
        "media_type": image.descriptor.media_type,
        "platforms": image.platforms.iter().map(|p| json!({
            "platform": p.platform.to_string(),
            "digest": p.descriptor.digest,
            "layers": p.layers,
        })).collect::<Vec<_>>(),
        "bytes": image.total_bytes(),
        "sizes": published.sizes,
    });
    if let Some(first) = published.pushed.first() {
        let first = serde_json::to_value(first).expect("a push report serialises");
        for key in [
            "reference",
            "tags",
            "blobs_uploaded",
            "blobs_mounted",
            "blobs_skipped",
            "bytes_uploaded",
            "base_blobs_fetched",
        ] {
            json[key] = first[key].clone();
        }
        json["pushes"] = serde_json::to_value(&published.pushed).expect("push reports serialise");
    }
    json
}
