//! `hoist sbom IMAGE [--platform P] [--format spdx|cyclonedx] [--json]`: prints the SBOM
//! a build attached to an image, read from a layout, an archive or a registry's
//! referrers.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use clap::Args;
use hoist::oci::location::Location;
use hoist::oci::platform::Platform;
use hoist::sbom::find::find_sboms;

use super::CacheArgs;
use super::RegistryArgs;

/// `hoist sbom` flags.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG] or HOST[:PORT]/REPO[:TAG][@DIGEST].
    #[arg(value_name = "IMAGE")]
    location: String,
    /// The platform whose SBOM to print (os/arch[/variant]); needed when the image has
    /// several.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// `spdx` (SPDX 2.3 JSON, as attached) or `cyclonedx` (CycloneDX 1.6 JSON).
    #[arg(long, value_name = "FORMAT", default_value = "spdx")]
    format: String,
    /// Print `{reference, platform, format, sbom, registry}` as JSON instead of the
    /// document alone (`registry`: the requests made, for a registry image).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: &SbomArgs) -> Result<()> {
    anyhow::ensure!(
        matches!(args.format.as_str(), "spdx" | "cyclonedx"),
        "--format {}: expected spdx or cyclonedx",
        args.format
    );
    let wanted: Option<Platform> = args
        .platform
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--platform")?;
    let location = Location::parse(&args.location)?;
    let opened = super::open_documents(
        &location,
        "read an SBOM of",
        args.cache.cache_dir.as_ref(),
        &args.registry,
        // The other platforms' manifests are not needed.
        wanted.as_ref().map(std::slice::from_ref),
    )?;
    let (image, transport) = (&opened.image, &opened.transport);
    // One document is printed: several platforms are refused before any is read.
    anyhow::ensure!(
        wanted.is_some() || image.platforms.len() < 2,
        "{} has several platforms ({}); choose one with --platform",
        args.location,
        image.platform_names()
    );
    // Opening read the image's documents; its referrers and their SBOMs come next.
    transport.phase("referrers");
    let found = find_sboms(image, &location, wanted.as_ref(), transport)?;
    let [one] = found.as_slice() else {
        let platforms: Vec<String> = found.iter().map(|f| f.platform.to_string()).collect();
        anyhow::bail!(
            "{} has SBOMs for {}; choose one with --platform",
            args.location,
            platforms.join(", ")
        );
    };
    let bytes = if args.format == "cyclonedx" {
        let spdx: serde_json::Value =
            serde_json::from_slice(&one.document).context("the attached SBOM is not JSON")?;
        hoist::sbom::cyclonedx::from_spdx(&spdx)
    } else {
        one.document.clone()
    };
    let mut document = serde_json::json!({
        "reference": args.location,
        "platform": one.platform.to_string(),
        "format": args.format,
    });
    if args.json {
        document["sbom"] =
            serde_json::from_slice(&bytes).context("the attached SBOM is not JSON")?;
    }
    // What was asked of the registry, when the image is in one (`-v` prints it).
    if matches!(location, Location::Registry { .. }) {
        args.registry.report(transport, &mut document, &[])?;
    }
    super::emit_json(&document, args.json, None)?;
    if !args.json {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
