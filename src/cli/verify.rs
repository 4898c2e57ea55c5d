//! `hoist verify IMAGE`: rebuild an image from the local sources with the inputs it
//! records (base digest, epoch, compression, platforms), never push, and compare.

use super::progress::note;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hoist::oci::location::Location;
use hoist::verify::Outcome;
use hoist::verify::check::{Check, Target, Verdict, targets};
use hoist_layers::{BuildOptions, Digest};

use super::CacheArgs;
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
    #[arg(long, short = 'j', value_name = "N", value_parser = super::parse_jobs)]
    jobs: Option<usize>,
    #[command(flatten)]
    cache: CacheArgs,
    /// Print the outcome (and the differences) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also check the image's signatures (the index and each manifest) with this
    /// cosign public key: who published it, as well as what it is made of.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Check the signatures only (with --key), without rebuilding.
    #[arg(long, requires = "key")]
    signature_only: bool,
    /// Rebuild this git revision as committed (in a temporary worktree, unless it is
    /// HEAD's and the working tree has no change); `HEAD` uses the working tree as it
    /// is. Default: the revision the image records (org.opencontainers.image.revision),
    /// when HEAD is another.
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// One image's verdict, ready to print.
struct Report {
    verified: bool,
    json: serde_json::Value,
    text: String,
}

/// Runs `hoist verify`: exit 0 verified, 1 different (or badly signed), 2 when it
/// could not tell.
pub fn run(args: &VerifyArgs) -> ExitCode {
    // Not found: the given name, whose reading fails naming --config if a config is
    // needed at all (--signature-only with an image needs none).
    let config = hoist::config::locate(&args.config).unwrap_or_else(|_| args.config.clone());
    let targets = match targets(
        &config,
        &args.package,
        args.image.as_deref(),
        args.signature_only,
    ) {
        Ok(targets) => targets,
        Err(error) => return trouble(&error.into()),
    };
    // One transport for the command: credentials (--password-stdin reads stdin) are
    // read once, and every registry is probed once.
    let (transport, store) = match args
        .registry
        .transport(0)
        .and_then(|t| Ok((t, super::open_cache(args.cache.cache_dir.as_ref())?.1)))
    {
        Ok(both) => both,
        Err(error) => return trouble(&error),
    };
    let observer = super::progress::observer();
    let check = Check {
        key: args.key.as_deref(),
        signature_only: args.signature_only,
        revision: args.revision.as_deref(),
        store: &store,
        options: BuildOptions {
            threads: args.jobs.unwrap_or(0),
            use_cache: true,
        },
        transport: &transport,
        observer: observer.as_ref(),
    };
    let mut reports = Vec::new();
    for target in &targets {
        match verify_target(&check, target) {
            Ok(report) => reports.push(report),
            Err(error) => return trouble(&error),
        }
    }
    if args.json {
        let document = match (targets.as_slice(), reports.as_slice()) {
            ([one], [report]) if one.member.is_none() => report.json.clone(),
            _ => serde_json::Value::Array(
                targets
                    .iter()
                    .zip(&reports)
                    .map(|(target, report)| {
                        let mut entry = report.json.clone();
                        entry["name"] = serde_json::json!(target.member);
                        entry
                    })
                    .collect(),
            ),
        };
        match serde_json::to_string_pretty(&document) {
            Ok(text) => println!("{text}"),
            Err(error) => return trouble(&error.into()),
        }
    } else {
        for report in &reports {
            print!("{}", report.text);
        }
    }
    if reports.iter().all(|r| r.verified) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DIFFERENT)
    }
}

/// One image's verdict ([`hoist::verify::check::check`]), ready to print.
fn verify_target(check: &Check, target: &Target) -> Result<Report> {
    let verdict = hoist::verify::check::check(check, target, &mut |note| note!("{note}"))?;
    let (signatures, outcome, provenance) = match verdict {
        Verdict::Refused(refusal) => return Ok(refused(target, &refusal)),
        Verdict::Checked {
            signatures,
            outcome,
            provenance,
        } => (signatures, outcome, provenance),
    };
    let Some(outcome) = outcome else {
        // --signature-only: the signatures verified.
        let text = signatures
            .as_ref()
            .and_then(|v| {
                v.manifests.first().map(|(digest, _)| {
                    format!("verified signatures of {}@{digest}\n", v.repository)
                })
            })
            .unwrap_or_default();
        return Ok(Report {
            verified: true,
            json: serde_json::json!({"signatures": signatures}),
            text,
        });
    };
    let mut json = serde_json::to_value(&outcome)?;
    if let Some(verified) = &signatures {
        json["signatures"] = serde_json::to_value(verified)?;
    }
    if let Some(found) = &provenance {
        json["provenance"] = serde_json::to_value(found)?;
    }
    Ok(Report {
        verified: outcome.verified,
        json,
        text: text_of(&outcome, target),
    })
}

/// A signature or provenance refusal: `NOT verified: …` (with `--json`,
/// `{verified: false, image, reason}`), exit 1.
fn refused(target: &Target, refusal: &hoist::sign::SignError) -> Report {
    Report {
        verified: false,
        json: serde_json::json!({
            "verified": false,
            "image": target.image,
            "reason": refusal.to_string(),
        }),
        text: format!("NOT verified: {refusal}\n"),
    }
}

fn text_of(outcome: &Outcome, target: &Target) -> String {
    if let Some(check) = outcome
        .sbom
        .as_ref()
        .filter(|c| c.attached && !c.differing.is_empty())
        && outcome.published == outcome.rebuilt
    {
        return format!(
            "NOT verified: {} is {} as rebuilt, but the SBOM attached to {} is not the rebuild's\n",
            target.image,
            outcome.published,
            check
                .differing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if outcome.verified {
        return format!(
            "verified {}\n",
            verified_name(&target.image, &outcome.published)
        );
    }
    let mut text = format!(
        "NOT verified: {} is {}, but rebuilding it from {} gives {}\n",
        target.image,
        outcome.published,
        target.config.display(),
        outcome.rebuilt
    );
    if !outcome.python_packages.is_empty() {
        text.push_str("Python packages that differ: ");
        text.push_str(&outcome.python_packages.join(", "));
        text.push('\n');
    }
    if let Some(diff) = &outcome.diff {
        text.push_str(&diff.render());
    }
    text
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
