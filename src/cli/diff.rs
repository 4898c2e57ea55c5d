//! `hoist diff A B`: two images compared down to the files.

use super::progress::note;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use hoist::diff::{ImageDiff, OpenedImage, compare};
use hoist::oci::location::Location;

use super::CacheArgs;
use super::RegistryArgs;

/// Exit code when the images (or the rebuild) differ.
pub const DIFFERENT: u8 = 1;
/// Exit code when the comparison itself failed.
pub const TROUBLE: u8 = 2;

/// `hoist diff` flags.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or a registry reference.
    #[arg(value_name = "A")]
    a: String,
    /// The second image, in the same forms.
    #[arg(value_name = "B")]
    b: String,
    /// Print the differences as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `hoist diff`; errors are printed here and answered with exit code 2.
pub fn run(args: &DiffArgs) -> ExitCode {
    match compare_images(args) {
        Ok(diff) => {
            if let Err(error) = print(&diff, args.json) {
                return trouble(&error);
            }
            if diff.differs() {
                ExitCode::from(DIFFERENT)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => trouble(&error),
    }
}

/// Prints `error` as every command does, and answers exit code 2.
pub fn trouble(error: &anyhow::Error) -> ExitCode {
    note!("{}", super::describe_error(error));
    ExitCode::from(TROUBLE)
}

fn compare_images(args: &DiffArgs) -> Result<ImageDiff> {
    let (_, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let transport = hoist::registry::transport::Transport::new(args.registry.options(0)?);
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let open = |input: &str, dir: &str| -> Result<OpenedImage> {
        let location = Location::parse(input)?;
        let scratch_dir = scratch.path().join(dir);
        std::fs::create_dir_all(&scratch_dir)
            .with_context(|| format!("creating {}", scratch_dir.display()))?;
        Ok(OpenedImage::open(
            input,
            &location,
            &scratch_dir,
            &store,
            &transport,
        )?)
    };
    let a = open(&args.a, "a")?;
    let b = open(&args.b, "b")?;
    Ok(compare(&a, &b)?)
}

fn print(diff: &ImageDiff, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(diff)?);
    } else {
        print!("{}", diff.render());
    }
    Ok(())
}
