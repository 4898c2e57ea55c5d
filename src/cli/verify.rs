//! `hoist verify IMAGE`: rebuild an image from the local sources with the inputs it
//! records (base digest, epoch, compression, platforms), never push, and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use hoist::assemble::assemble;
use hoist::config::ConfigFile;
use hoist::diff::{ImageDiff, OpenedImage, compare};
use hoist::oci::location::{Location, Selector};
use hoist::oci::model::{
    BASE_DIGEST, BASE_NAME, HOIST_COMPRESSION, HOIST_COMPRESSION_LEVEL, HOIST_SOURCE_DATE_EPOCH,
    HOIST_VERSION,
};
use hoist::plan::{Overrides, Plan, resolve};
use hoist::publish::Sink as _;
use hoist::publish::layout::LayoutSink;
use hoist_layers::{BuildOptions, Digest};
use serde::Serialize;

use super::RegistryArgs;
use super::diff::{DIFFERENT, trouble};

/// `hoist verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The published image: a registry reference, oci:DIR[:TAG|@DIGEST] or
    /// oci-archive:FILE[:TAG].
    #[arg(value_name = "IMAGE")]
    image: String,
    /// The config file to rebuild from.
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// Threads for compression (default: every core). Never changes the output.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Where layers and the layer cache are kept [default: $XDG_CACHE_HOME/hoist].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print the outcome (and the differences) as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Outcome {
    /// Whether the rebuild has the published digest.
    verified: bool,
    /// The image as given.
    image: String,
    /// The published index (or manifest) digest.
    published: Digest,
    /// The rebuild's digest.
    rebuilt: Digest,
    /// The inputs the rebuild used.
    inputs: Inputs,
    /// What differs, when something does.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<ImageDiff>,
}

/// The recorded rebuild inputs, as read from the image.
#[derive(Clone, Debug, Default, Serialize)]
struct Inputs {
    base: Option<String>,
    base_digest: Option<String>,
    hoist_version: Option<String>,
    compression: Option<String>,
    compression_level: Option<i32>,
    source_date_epoch: Option<String>,
    platforms: Vec<String>,
}

/// Runs `hoist verify`: exit 0 verified, 1 different, 2 when it could not tell.
pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify(args) {
        Ok(outcome) => {
            let printed = if args.json {
                serde_json::to_string_pretty(&outcome)
                    .map(|text| println!("{text}"))
                    .map_err(anyhow::Error::from)
            } else {
                print_text(&outcome, args);
                Ok(())
            };
            match printed {
                Err(error) => trouble(&error),
                Ok(()) if outcome.verified => ExitCode::SUCCESS,
                Ok(()) => ExitCode::from(DIFFERENT),
            }
        }
        Err(error) => trouble(&error),
    }
}

fn print_text(outcome: &Outcome, args: &VerifyArgs) {
    if outcome.verified {
        println!(
            "verified {}",
            verified_name(&args.image, &outcome.published)
        );
        return;
    }
    println!(
        "NOT verified: {} is {}, but rebuilding it from {} gives {}",
        args.image,
        outcome.published,
        args.config.display(),
        outcome.rebuilt
    );
    if let Some(diff) = &outcome.diff {
        print!("{}", diff.render());
    }
}

/// `name@sha256:…`: the repository (or layout) without its tag, pinned by digest.
fn verified_name(image: &str, digest: &Digest) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name = match Location::parse(without_digest) {
        Ok(Location::OciLayout { path, .. }) => format!("oci:{}", path.display()),
        Ok(Location::OciArchive { path, .. }) => format!("oci-archive:{}", path.display()),
        Ok(Location::Registry { reference }) => {
            // Drop a tag (a `:` after the last `/`; a port's `:` comes before it).
            let slash = reference.rfind('/').map_or(0, |i| i + 1);
            match reference[slash..].rfind(':') {
                Some(colon) => reference[..slash + colon].to_string(),
                None => reference,
            }
        }
        _ => without_digest.to_string(),
    };
    format!("{name}@{digest}")
}

fn verify(args: &VerifyArgs) -> Result<Outcome> {
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    // One transport for the published image's fetches and the rebuild's base.
    let registry = hoist::registry::transport::Transport::new(args.registry.options(0)?);
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = |name: &str| -> Result<PathBuf> {
        let path = scratch.path().join(name);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    };

    let location = Location::parse(&args.image)?;
    let published = OpenedImage::open(
        &args.image,
        &location,
        &dir("published")?,
        &store,
        &registry,
    )?;
    let inputs = recorded_inputs(&published)?;
    if let Some(version) = &inputs.hoist_version
        && version != env!("CARGO_PKG_VERSION")
    {
        eprintln!(
            "note: {} was built by hoist {version}, this is hoist {}: the version is recorded in the image, so the digests cannot match; the differences below show whether anything else differs",
            args.image,
            env!("CARGO_PKG_VERSION")
        );
    }

    let plan = rebuild_plan(args, &inputs)?;
    eprintln!(
        "rebuilding {} from {}: base {}, SOURCE_DATE_EPOCH {}, {}, platforms {}",
        args.image,
        args.config.display(),
        plan.base,
        plan.epoch,
        match plan.compression {
            hoist_layers::Compression::Gzip { level } => format!("gzip level {level}"),
            hoist_layers::Compression::Zstd { level } => format!("zstd level {level}"),
        },
        inputs.platforms.join(", ")
    );
    let options = BuildOptions {
        threads: args.jobs.unwrap_or(0),
        use_cache: true,
    };
    let observer = super::progress::observer();
    let rebuilt = assemble(
        &plan,
        &store,
        &options,
        &registry,
        &dir("build")?,
        observer.as_ref(),
    )
    .with_context(|| format!("rebuilding from {}", args.config.display()))?;

    let verified = rebuilt.descriptor.digest == published.top.digest;
    let diff = if verified {
        None
    } else {
        // The rebuild goes to a private layout (never pushed) so the diff engine reads
        // both sides the same way.
        let layout = scratch.path().join("rebuild");
        LayoutSink {
            path: layout.clone(),
            tag: Some("rebuild".into()),
        }
        .write(&rebuilt, &[])?;
        let rebuilt_image = OpenedImage::open(
            "rebuild",
            &Location::OciLayout {
                path: layout,
                selector: Selector::Tag("rebuild".into()),
            },
            &dir("rebuilt")?,
            &store,
            &registry,
        )?;
        Some(compare(&published, &rebuilt_image)?)
    };
    Ok(Outcome {
        verified,
        image: args.image.clone(),
        published: published.top.digest.clone(),
        rebuilt: rebuilt.descriptor.digest,
        inputs,
        diff,
    })
}

fn recorded_inputs(image: &OpenedImage) -> Result<Inputs> {
    let text = |key: &str| image.annotation(key).map(str::to_string);
    let compression_level = text(HOIST_COMPRESSION_LEVEL)
        .map(|level| {
            level.parse::<i32>().map_err(|_| hoist::Error::Verify {
                image: image.name.clone(),
                reason: format!("annotation {HOIST_COMPRESSION_LEVEL} = `{level}` is not a number"),
            })
        })
        .transpose()?;
    Ok(Inputs {
        base: text(BASE_NAME),
        base_digest: text(BASE_DIGEST),
        hoist_version: text(HOIST_VERSION),
        compression: text(HOIST_COMPRESSION),
        compression_level,
        source_date_epoch: text(HOIST_SOURCE_DATE_EPOCH),
        platforms: image
            .platforms
            .iter()
            .map(|p| p.platform.to_string())
            .collect(),
    })
}

/// The plan from the config file, with every recorded input put back: the recorded
/// base pinned to its recorded digest, the epoch, compression and platforms. Inputs the
/// image does not record (an image from an older hoist, or a Docker-flavoured one,
/// which has no annotations) fall back to the config file and the environment.
fn rebuild_plan(args: &VerifyArgs, inputs: &Inputs) -> Result<Plan> {
    let file = ConfigFile::load(&args.config)?;
    let overrides = Overrides {
        platforms: inputs.platforms.clone(),
        compression: inputs.compression.clone(),
        compression_level: inputs.compression_level,
        ..Overrides::default()
    };
    let env_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let epoch = inputs.source_date_epoch.as_deref().or(env_epoch.as_deref());
    let mut plan = resolve(&args.config, &file, &overrides, epoch)?;
    // A versioned project's build labels its image (version, revision, created…):
    // the rebuild must too, from the checkout being verified.
    super::release::add_release_labels(&args.config, &file, &mut plan, None)?;

    if let (Some(name), Some(digest)) = (&inputs.base, &inputs.base_digest) {
        let digest: Digest = digest.parse().map_err(|e| hoist::Error::Verify {
            image: args.image.clone(),
            reason: format!("annotation {BASE_DIGEST} = `{digest}`: {e}"),
        })?;
        let config_dir = args.config.parent().unwrap_or(std::path::Path::new("."));
        let recorded = Location::parse(name)
            .map_err(|e| hoist::Error::Verify {
                image: args.image.clone(),
                reason: format!("annotation {BASE_NAME} = `{name}`: {e}"),
            })?
            .relative_to(config_dir);
        plan.base = pinned(recorded, &digest);
        plan.base_name.clone_from(name);
    }
    Ok(plan)
}

/// A base location naming exactly `digest`: a registry reference by digest, a layout
/// entry by digest (an updated layout that no longer holds it is an error, not a
/// silently different base).
fn pinned(location: Location, digest: &Digest) -> Location {
    match location {
        Location::Registry { reference } => {
            let repository = reference.split('@').next().unwrap_or(&reference);
            Location::Registry {
                reference: format!("{repository}@{digest}"),
            }
        }
        Location::OciLayout { path, .. } => Location::OciLayout {
            path,
            selector: Selector::Digest(digest.clone()),
        },
        Location::OciArchive { path, .. } => Location::OciArchive {
            path,
            selector: Selector::Digest(digest.clone()),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_names_drop_the_tag_keep_the_port() {
        let digest = Digest::sha256_of(b"x");
        assert_eq!(
            verified_name("127.0.0.1:5000/acme/app:1.0", &digest),
            format!("127.0.0.1:5000/acme/app@{digest}")
        );
        assert_eq!(
            verified_name("oci:out/dir:latest", &digest),
            format!("oci:out/dir@{digest}")
        );
    }
}
