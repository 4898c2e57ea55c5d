//! `hoist push`, `hoist pull` and `hoist tag`: registry commands over the library's
//! `registry` module.

use anyhow::Result;
use hoist::inspect::human_bytes;
use hoist::oci::location::{Location, Selector};
use hoist::oci::reference;
use hoist::open::{OpenOptions, open};
use hoist::registry::block_on;

use super::{PullArgs, PushArgs, TagArgs};

pub fn push(args: &PushArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist push needs the network"
    );
    let location = Location::parse(&args.source)?;
    let target = reference::parse(&args.destination)?;
    // Decrypted first: a wrong password must not cost an upload.
    let signing_key = args
        .sign_key
        .as_deref()
        .map(super::sign::load_private_key)
        .transpose()?;
    let scratch = tempfile::tempdir()?;
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let transport = args.registry.transport(args.jobs)?;
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
    let tags: Vec<String> = match (target.digest(), reference::explicit_tag(&args.destination)) {
        (Some(_), None) => Vec::new(),
        (_, tag) => vec![tag.unwrap_or("latest").to_string()],
    };
    let report = block_on(hoist::registry::push::push(
        &image, &target, &tags, &transport,
    ))?;
    eprintln!(
        "pushed {} ({} blobs uploaded, {} mounted, {} already there, {})",
        report.reference,
        report.blobs_uploaded,
        report.blobs_mounted,
        report.blobs_skipped,
        human_bytes(report.bytes_uploaded)
    );
    let signed = signing_key
        .map(|key| super::sign::sign_after_push(&key, &report.reference, &transport))
        .transpose()?;
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(signed) = signed {
            json["signatures"] = serde_json::to_value(&signed.signed)?;
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", report.reference);
    }
    Ok(())
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
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let transport = args.registry.transport(args.jobs)?;
    let scratch = tempfile::tempdir()?;
    let open_options = OpenOptions {
        scratch_dir: scratch.path(),
        store: &store,
        transport: &transport,
        platforms: platforms.as_deref(),
        fetch_layers: true,
    };
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
    let report = sink.write(&image, &tags)?;
    eprintln!(
        "pulled {} ({} platform{}) into {} ({} new)",
        source.whole(),
        image.platforms.len(),
        if image.platforms.len() == 1 { "" } else { "s" },
        report.target,
        human_bytes(report.bytes_written)
    );
    println!("{}", image.descriptor.digest);
    Ok(())
}

pub fn tag(args: &TagArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist tag needs the network"
    );
    let source = reference::parse(&args.source)?;
    let destination = reference::parse(&args.destination)?;
    let tag = reference::explicit_tag(&args.destination).unwrap_or("latest");
    let transport = args.registry.transport(0)?;
    let report = block_on(hoist::registry::tag::retag(
        &source,
        &destination,
        tag,
        &transport,
    ))?;
    eprintln!(
        "tagged {} as {} ({} blobs mounted, {} already there)",
        report.digest, report.reference, report.blobs_mounted, report.blobs_skipped
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}@{}", report.reference, report.digest);
    }
    Ok(())
}
