//! `hoist load`: an image's host platform from a layout, an archive or a registry into
//! the local engine's store (podman or docker), through the engine's own load.

use super::progress::note;
use anyhow::{Context, Result};
use hoist::oci::location::Location;
use hoist::oci::platform::Platform;
use hoist::oci::reference;
use hoist::open::{OpenOptions, open};

use super::LoadArgs;

pub fn run(args: &LoadArgs) -> Result<()> {
    let location = Location::parse(&args.location)?;
    anyhow::ensure!(
        location != Location::Scratch,
        "scratch is an empty base, not an image to load"
    );
    let repo_tags = load_names(args, &location)?;
    let engine = args.engine.find()?;
    engine.preflight()?;
    let (_, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let transport = args.registry.transport(0)?;
    let scratch = tempfile::tempdir()?;
    let host = [Platform::host()];
    let options = OpenOptions {
        scratch_dir: scratch.path(),
        store: &store,
        transport: &transport,
        platforms: Some(&host),
        fetch_layers: true,
    };
    let image = open(&location, &options).with_context(|| format!("loading {location}"))?;
    let loaded = engine.load(&image, &repo_tags)?;
    for line in loaded.lines() {
        note!("{line}");
    }
    println!("{}", image.descriptor.digest);
    Ok(())
}

/// `--tag`s, else a registry reference itself (with `latest` when it names no tag).
fn load_names(args: &LoadArgs, location: &Location) -> Result<Vec<String>> {
    if !args.tag.is_empty() {
        for name in &args.tag {
            reference::parse(name).with_context(|| format!("--tag {name}"))?;
        }
        return Ok(args.tag.clone());
    }
    match location {
        Location::Registry { reference: input } => {
            let parsed = reference::parse(input)?;
            let tag = reference::explicit_tag(input).unwrap_or("latest");
            Ok(vec![format!(
                "{}/{}:{tag}",
                parsed.registry(),
                parsed.repository()
            )])
        }
        _ => anyhow::bail!(
            "{location} has no name to load the image under: give one with --tag NAME:TAG"
        ),
    }
}
