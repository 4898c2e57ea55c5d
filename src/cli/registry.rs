//! `hoist push`, `hoist pull` and `hoist tag`: registry commands over the library's
//! `registry` module.

use super::progress::note;
use anyhow::Result;
use hoist::inspect::human_bytes;
use hoist::job::push::Copied;
use hoist::oci::location::{Location, Selector};
use hoist::oci::reference;
use hoist::open::{OpenOptions, open};
use hoist::pipeline::PushTarget;

use super::{PullArgs, PushArgs, TagArgs};

pub fn push(args: &PushArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist push needs the network"
    );
    let location = Location::parse(&args.source)?;
    // Every destination and tag is checked before a blob moves.
    let mut targets = Vec::new();
    for destination in &args.destinations {
        let target = reference::parse(destination)?;
        let tags = destination_tags(&target, destination, &args.tag)?;
        targets.push((target, tags));
    }
    if let Some(path) = &args.metadata_file {
        hoist::fsutil::check_file_target(path)
            .map_err(|e| anyhow::Error::new(e).context("--metadata-file"))?;
    }
    // Decrypted first: a wrong password must not cost an upload.
    let signing_key = args
        .sign_key
        .as_deref()
        .map(super::sign::load_private_key)
        .transpose()?;
    let scratch = tempfile::tempdir()?;
    let (cache_dir, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let transport =
        args.registry
            .pushing_transport(args.jobs, &cache_dir, super::progress::Members::new())?;
    let open_options = OpenOptions {
        scratch_dir: scratch.path(),
        store: &store,
        transport: &transport,
        platforms: None,
        // Every blob of a registry source is fetched (verified) before the push.
        fetch_layers: true,
    };
    let source = open(&location, &open_options)?;
    let image = source.for_copy(&args.source, false)?;
    force_tags_warning(args.force_tags);
    let destinations: Vec<PushTarget> = targets
        .into_iter()
        .map(|(reference, tags)| PushTarget { reference, tags })
        .collect();
    let copied = hoist::job::push::push_copy(
        &image,
        &destinations,
        signing_key.as_ref(),
        args.force_tags,
        &transport,
        &mut |note| note!("{note}"),
    )?;
    let mut reports = Vec::new();
    for Copied {
        report, signatures, ..
    } in &copied
    {
        note!(
            "pushed {}{} ({} blobs uploaded, {} mounted, {} already there, {})",
            report.reference,
            if report.tags.is_empty() {
                String::new()
            } else {
                format!(" as {}", report.tags.join(", "))
            },
            report.blobs_uploaded,
            report.blobs_mounted,
            report.blobs_skipped,
            human_bytes(report.bytes_uploaded)
        );
        if !args.json {
            println!("{}", report.reference);
        }
        let mut json = serde_json::to_value(report)?;
        if let Some(signed) = signatures {
            super::sign::print_report(signed);
            json["signatures"] = serde_json::to_value(&signed.signed)?;
        }
        reports.push(json);
    }
    // One destination: the report itself (as before several); else one per destination,
    // each with its repository's part of the registry work.
    let (mut document, parts) = match reports.as_slice() {
        [one] => (one.clone(), Vec::new()),
        _ => (
            serde_json::Value::Array(reports),
            destinations
                .iter()
                .map(|d| vec![hoist::release::rollout::repository_name(&d.reference)])
                .collect(),
        ),
    };
    args.registry.report(&transport, &mut document, &parts)?;
    super::emit_json(&document, args.json, args.metadata_file.as_deref())
}

/// The tags a push gives the image in one destination: its own tag and every `--tag`;
/// `latest` when there are none, nothing for a destination named by digest.
fn destination_tags(
    target: &oci_spec::distribution::Reference,
    destination: &str,
    extra: &[String],
) -> Result<Vec<String>> {
    let mut tags: Vec<String> = reference::explicit_tag(destination)
        .map(str::to_string)
        .into_iter()
        .collect();
    for tag in extra {
        anyhow::ensure!(
            hoist::oci::location::is_valid_tag(tag),
            "--tag `{tag}`: not a valid tag (letters, digits, `_`, `.`, `-`; up to 128; not starting with `.` or `-`)"
        );
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if tags.is_empty() && target.digest().is_none() {
        tags.push("latest".to_string());
    }
    Ok(tags)
}

pub fn pull(args: &PullArgs) -> Result<()> {
    let source = reference::parse(&args.reference)?;
    let source_location = Location::Registry {
        reference: args.reference.clone(),
    };
    let output = Location::parse(&args.output)?;
    if !matches!(
        output,
        Location::OciLayout { .. } | Location::OciArchive { .. }
    ) {
        anyhow::bail!("hoist pull writes oci:DIR[:TAG] or oci-archive:FILE[:TAG], not {output}");
    }
    let sink = hoist::publish::sink_for(&output)?;
    sink.preflight()?;
    let platforms = if args.platform.is_empty() {
        None
    } else {
        let mut list = Vec::new();
        for value in args.platform.iter().flat_map(|p| p.split(',')) {
            list.push(value.trim().parse::<hoist::oci::platform::Platform>()?);
        }
        Some(list)
    };
    let (_, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let transport = args.registry.transport(args.jobs)?;
    let scratch = tempfile::tempdir()?;
    let open_options = OpenOptions {
        scratch_dir: scratch.path(),
        store: &store,
        transport: &transport,
        platforms: platforms.as_deref(),
        fetch_layers: true,
    };
    // Its documents and blobs are fetched as it is opened.
    transport.phase("fetch");
    let base = open(&source_location, &open_options)?;
    let image = base.for_copy(&args.reference, true)?;
    // The tag in the output location (the sink adds it), else the source's tag.
    let output_has_tag = matches!(
        &output,
        Location::OciLayout {
            selector: Selector::Tag(_),
            ..
        } | Location::OciArchive {
            selector: Selector::Tag(_),
            ..
        }
    );
    let tags: Vec<String> = if output_has_tag {
        Vec::new()
    } else {
        reference::explicit_tag(&args.reference)
            .map(str::to_string)
            .into_iter()
            .collect()
    };
    transport.phase("write");
    let report = sink.write(&image, &tags)?;
    note!(
        "pulled {} ({} platform{}) into {} ({} new)",
        source.whole(),
        image.platforms.len(),
        if image.platforms.len() == 1 { "" } else { "s" },
        report.target,
        human_bytes(report.bytes_written)
    );
    let mut document = serde_json::json!({
        "reference": source.whole(),
        "digest": image.descriptor.digest,
        "output": report.target,
        "platforms": image.platforms.iter().map(|p| p.platform.to_string()).collect::<Vec<_>>(),
        "bytes_written": report.bytes_written,
    });
    args.registry.report(&transport, &mut document, &[])?;
    super::emit_json(&document, args.json, None)?;
    if !args.json {
        println!("{}", image.descriptor.digest);
    }
    Ok(())
}

pub fn tag(args: &TagArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist tag needs the network"
    );
    let source = reference::parse(&args.source)?;
    // A bare tag (no `/`, no `:`) names a tag in the source's repository, as crane's
    // `crane tag IMAGE TAG` does; docker.io/library/NAME is spelt out when meant.
    let bare = args
        .destination
        .strip_prefix(':')
        .unwrap_or(&args.destination);
    let (destination, tag) = if bare.contains(['/', ':', '@']) {
        let destination = reference::parse(&args.destination)?;
        let tag = reference::explicit_tag(&args.destination).unwrap_or("latest");
        (destination, tag.to_string())
    } else {
        anyhow::ensure!(
            hoist::oci::location::is_valid_tag(bare),
            "`{}`: not a valid tag (letters, digits, `_`, `.`, `-`; up to 128; not starting with `.` or `-`)",
            args.destination
        );
        (source.clone(), bare.to_string())
    };
    let transport = args.registry.transport(0)?;
    force_tags_warning(args.force_tags);
    let report = hoist::job::tag::retag_checked(
        &source,
        &destination,
        &tag,
        args.force_tags,
        &transport,
        &mut |note| note!("{note}"),
    )?;
    note!(
        "tagged {} as {} ({} blobs mounted, {} already there)",
        report.digest,
        report.reference,
        report.blobs_mounted,
        report.blobs_skipped
    );
    let mut document = serde_json::to_value(&report)?;
    args.registry.report(&transport, &mut document, &[])?;
    super::emit_json(&document, args.json, None)?;
    if !args.json {
        println!("{}@{}", report.reference, report.digest);
    }
    Ok(())
}

/// What `--force-tags` may do, said before it does it.
pub fn force_tags_warning(force: bool) {
    if force {
        note!(
            "WARNING: --force-tags: tags naming a version or a commit may be moved to another image, and latest, {{major}}, {{major}}.{{minor}} backwards"
        );
    }
}
