//! `hoist verify IMAGE`: rebuild an image from the local sources with the inputs it
//! records (base digest, epoch, compression, platforms), never push, and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hoist::oci::location::Location;
use hoist::verify::{Outcome, Request};
use hoist_layers::{BuildOptions, Digest};

use super::RegistryArgs;
use super::diff::{DIFFERENT, trouble};

/// `hoist verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The published image: a registry reference, oci:DIR[:TAG|@DIGEST] or
    /// oci-archive:FILE[:TAG]. Without it, each image's `[image].name` at the
    /// project's version (`latest` without [version]) is verified.
    #[arg(value_name = "IMAGE")]
    image: Option<String>,
    /// The config file to rebuild from (a workspace root verifies every member).
    #[arg(long, short = 'c', default_value = "hoist.toml", value_name = "FILE")]
    config: PathBuf,
    /// Verify only this workspace member (repeatable; default: every member).
    #[arg(long, short = 'p', value_name = "NAME")]
    package: Vec<String>,
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

/// Runs `hoist verify`: exit 0 verified, 1 different, 2 when it could not tell.
pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify_all(args) {
        Ok(verdicts) => {
            let printed = if args.json {
                json_document(&verdicts).and_then(|document| {
                    println!("{}", serde_json::to_string_pretty(&document)?);
                    Ok(())
                })
            } else {
                for verdict in &verdicts {
                    print_text(verdict);
                }
                Ok(())
            };
            match printed {
                Err(error) => trouble(&error),
                Ok(()) if verdicts.iter().all(|v| v.outcome.verified) => ExitCode::SUCCESS,
                Ok(()) => ExitCode::from(DIFFERENT),
            }
        }
        Err(error) => trouble(&error),
    }
}

/// One image's verdict.
struct Verdict {
    /// The member's name, for a workspace.
    member: Option<String>,
    image: String,
    config: PathBuf,
    outcome: Outcome,
}

fn json_document(verdicts: &[Verdict]) -> Result<serde_json::Value> {
    let mut entries = Vec::new();
    for verdict in verdicts {
        let mut entry = serde_json::to_value(&verdict.outcome)?;
        if let Some(member) = &verdict.member {
            entry["name"] = serde_json::json!(member);
        }
        entries.push(entry);
    }
    Ok(match (verdicts.first(), entries.len()) {
        (Some(first), 1) if first.member.is_none() => entries.remove(0),
        _ => serde_json::Value::Array(entries),
    })
}

fn print_text(verdict: &Verdict) {
    let outcome = &verdict.outcome;
    if outcome.verified {
        println!(
            "verified {}",
            verified_name(&verdict.image, &outcome.published)
        );
        return;
    }
    println!(
        "NOT verified: {} is {}, but rebuilding it from {} gives {}",
        verdict.image,
        outcome.published,
        verdict.config.display(),
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

/// Verifies the image given, or each image of the project at its version.
fn verify_all(args: &VerifyArgs) -> Result<Vec<Verdict>> {
    let project = hoist::release::workflow::Project::load(&args.config, &args.package)?;
    let members = &project.workspace.members;
    let images: Vec<String> = if let Some(image) = &args.image {
        anyhow::ensure!(
            members.len() == 1,
            "{image} is one image, but {} has {} ({}): pick its member with -p",
            args.config.display(),
            members.len(),
            hoist::workspace::names(members)
        );
        vec![image.clone()]
    } else {
        let tag = match &project.settings.source {
            Some(_) => project.settings.read()?.version().to_string(),
            None => "latest".to_string(),
        };
        members
            .iter()
            .map(|member| match &member.file.image.name {
                Some(names) => Ok(format!("{}:{tag}", names.to_vec()[0])),
                None => anyhow::bail!(
                    "name the image to verify: {} sets no image.name",
                    member.config.display()
                ),
            })
            .collect::<Result<_>>()?
    };
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let transport = args.registry.transport(0)?;
    let observer = super::progress::observer();
    let mut verdicts = Vec::new();
    for (member, image) in members.iter().zip(images) {
        let request = Request {
            image: &image,
            config: &member.config,
            file: &member.file,
            store: &store,
            options: BuildOptions {
                threads: args.jobs.unwrap_or(0),
                use_cache: true,
            },
            transport: &transport,
            observer: observer.as_ref(),
        };
        let outcome = hoist::verify::verify(&request, &mut |note| {
            eprintln!("{note}");
        })?;
        verdicts.push(Verdict {
            member: project.workspace.is_workspace.then(|| member.name.clone()),
            image,
            config: member.config.clone(),
            outcome,
        });
    }
    Ok(verdicts)
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
