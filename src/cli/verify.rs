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
    /// Also check the image's signatures (the index and each manifest) with this
    /// cosign public key: who published it, as well as what it is made of.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Check the signatures only (with --key), without rebuilding.
    #[arg(long, requires = "key")]
    signature_only: bool,
    /// Rebuild this git revision (in a temporary worktree); `HEAD` uses the working
    /// tree as it is. Default: the revision the image records
    /// (org.opencontainers.image.revision), when HEAD is another.
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `hoist verify`: exit 0 verified, 1 different (or badly signed), 2 when it
/// could not tell.
pub fn run(args: &VerifyArgs) -> ExitCode {
    let signatures = match &args.key {
        Some(key) => match check_signatures(args, key) {
            Ok(Ok(verified)) => Some(verified),
            Ok(Err(refusal)) => {
                return refused(args, &refusal);
            }
            Err(error) => return trouble(&error),
        },
        None => None,
    };
    if let Some(verified) = &signatures {
        for (digest, count) in &verified.manifests {
            eprintln!(
                "signature verified: {}@{digest} ({count} by {})",
                verified.repository,
                args.key
                    .as_deref()
                    .map_or(String::new(), |k| k.display().to_string())
            );
        }
        if args.signature_only {
            if args.json {
                match serde_json::to_string_pretty(&serde_json::json!({"signatures": verified})) {
                    Ok(text) => println!("{text}"),
                    Err(error) => return trouble(&error.into()),
                }
            } else if let Some((digest, _)) = verified.manifests.first() {
                println!("verified signatures of {}@{digest}", verified.repository);
            }
            return ExitCode::SUCCESS;
        }
    }
    let checkout = match rebuild_checkout(args) {
        Ok(checkout) => checkout,
        Err(error) => return trouble(&error),
    };
    let config = checkout
        .as_ref()
        .map_or(args.config.as_path(), |c| c.config.as_path());
    match verify(args, config) {
        Ok(outcome) => {
            let provenance = match (&signatures, outcome.verified) {
                (Some(verified), true) => {
                    match check_provenance(args, config, &outcome, verified) {
                        Ok(Ok(found)) => found,
                        Ok(Err(refusal)) => {
                            return refused(args, &refusal);
                        }
                        Err(error) => return trouble(&error),
                    }
                }
                _ => None,
            };
            let printed = if args.json {
                serde_json::to_value(&outcome)
                    .and_then(|mut json| {
                        if let Some(verified) = &signatures {
                            json["signatures"] = serde_json::to_value(verified)?;
                        }
                        if let Some(found) = &provenance {
                            json["provenance"] = serde_json::to_value(found)?;
                        }
                        serde_json::to_string_pretty(&json)
                    })
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

/// A signature or provenance refusal: `NOT verified: …` (with `--json`,
/// `{verified: false, image, reason}`), exit 1.
fn refused(args: &VerifyArgs, refusal: &hoist::sign::SignError) -> ExitCode {
    if args.json {
        let json = serde_json::json!({
            "verified": false,
            "image": args.image,
            "reason": refusal.to_string(),
        });
        match serde_json::to_string_pretty(&json) {
            Ok(text) => println!("{text}"),
            Err(error) => return trouble(&error.into()),
        }
    } else {
        println!("NOT verified: {refusal}");
    }
    ExitCode::from(DIFFERENT)
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

/// The signatures' check: `Ok(Err(refusal))` when they are missing or do not verify
/// (the image is not verified), `Err` when it could not be told (registry, key file).
fn check_signatures(
    args: &VerifyArgs,
    key: &std::path::Path,
) -> Result<Result<hoist::sign::cosign::VerifiedSignatures, hoist::sign::SignError>> {
    let Ok(Location::Registry { reference }) = Location::parse(&args.image) else {
        anyhow::bail!(
            "--key: signatures are read from a registry; {} is not a registry reference",
            args.image
        );
    };
    let public = hoist::sign::PublicKey::read(key)?;
    let target = hoist::oci::reference::parse(&reference)?;
    let transport = args.registry.transport(0)?;
    match super::sign::block_on_sign(async {
        Ok(hoist::sign::verify_pushed(&transport, &target, &public).await)
    })? {
        Ok(verified) => Ok(Ok(verified)),
        Err(refusal @ hoist::sign::SignError::Signature { .. }) => Ok(Err(refusal)),
        Err(error) => Err(super::sign::sign_error(error)),
    }
}

/// The provenance's check against the rebuild: its subjects are the manifests
/// verified, its base the one rebuilt on, its config the one rebuilt from, its
/// revision the checkout's HEAD. `Ok(Ok(None))`: the image has no provenance (a note
/// says so; an image signed by `hoist sign` alone has none).
fn check_provenance(
    args: &VerifyArgs,
    config_path: &std::path::Path,
    outcome: &Outcome,
    signatures: &hoist::sign::cosign::VerifiedSignatures,
) -> Result<Result<Option<hoist::sign::provenance::VerifiedProvenance>, hoist::sign::SignError>> {
    let Some(key) = &args.key else {
        return Ok(Ok(None));
    };
    let Ok(Location::Registry { reference }) = Location::parse(&args.image) else {
        return Ok(Ok(None));
    };
    let public = hoist::sign::PublicKey::read(key)?;
    let target = hoist::oci::reference::parse(&reference)?;
    let config = std::fs::read(config_path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", config_path.display()))?;
    let config_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let expected = hoist::sign::provenance::Expected {
        subjects: signatures
            .manifests
            .iter()
            .map(|(d, _)| d.clone())
            .collect(),
        base_digest: outcome.inputs.base_digest.clone(),
        config_digest: Some(Digest::sha256_of(&config)),
        revision: hoist::release::git::Git::discover(config_dir)
            .ok()
            .and_then(|git| git.head_sha().ok()),
    };
    let transport = args.registry.transport(0)?;
    match super::sign::block_on_sign(async {
        Ok(hoist::sign::provenance::verify_provenance(
            &transport,
            &target,
            &outcome.published,
            &public,
            &expected,
        )
        .await)
    })? {
        Ok(Some(found)) => {
            eprintln!(
                "provenance verified: {} (built by {}{})",
                found.attestation,
                found.builder,
                found
                    .revision
                    .as_deref()
                    .map_or(String::new(), |r| format!(" from revision {r}"))
            );
            Ok(Ok(Some(found)))
        }
        Ok(None) => {
            eprintln!(
                "note: {} has no provenance attestation (hoist build --push --sign-key attaches one)",
                args.image
            );
            Ok(Ok(None))
        }
        Err(refusal @ hoist::sign::SignError::Provenance { .. }) => Ok(Err(refusal)),
        Err(error) => Err(super::sign::sign_error(error)),
    }
}

/// The worktree to rebuild in, when the rebuild is not of the working tree: the
/// `--revision` asked for, else the revision the image records when the config's
/// checkout has another HEAD. `None` outside git, or when HEAD is the one.
fn rebuild_checkout(
    args: &VerifyArgs,
) -> Result<Option<hoist::release::checkout::RevisionCheckout>> {
    use hoist::release::checkout::{RevisionCheckout, resolve};
    use hoist::release::git::Git;
    if args.revision.as_deref() == Some("HEAD") {
        return Ok(None);
    }
    let config_dir = args
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let Ok(git) = Git::discover(config_dir) else {
        return Ok(None);
    };
    let wanted = match &args.revision {
        Some(revision) => revision.clone(),
        None => match recorded_revision(args)? {
            Some(revision) => revision,
            None => return Ok(None),
        },
    };
    let head = git.head_sha()?;
    if resolve(&git, &wanted).ok().as_deref() == Some(head.as_str()) {
        return Ok(None);
    }
    let checkout = RevisionCheckout::create(&git, &args.config, &wanted)?;
    eprintln!(
        "note: rebuilding revision {} (HEAD is {head}) in a temporary worktree; --revision HEAD uses the working tree",
        checkout.revision
    );
    Ok(Some(checkout))
}

/// The `org.opencontainers.image.revision` the published image records.
fn recorded_revision(args: &VerifyArgs) -> Result<Option<String>> {
    let location = Location::parse(&args.image)?;
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let transport = args.registry.transport(0)?;
    let scratch = tempfile::tempdir()?;
    let image = hoist::diff::open::OpenedImage::open(
        &args.image,
        &location,
        scratch.path(),
        &store,
        &transport,
    )?;
    Ok(image
        .annotation("org.opencontainers.image.revision")
        .map(str::to_string))
}

fn verify(args: &VerifyArgs, config: &std::path::Path) -> Result<Outcome> {
    let (_, store) = super::open_cache(args.cache_dir.as_ref())?;
    let transport = args.registry.transport(0)?;
    let observer = super::progress::observer();
    let request = Request {
        image: &args.image,
        config,
        store: &store,
        options: BuildOptions {
            threads: args.jobs.unwrap_or(0),
            use_cache: true,
        },
        transport: &transport,
        observer: observer.as_ref(),
    };
    Ok(hoist::verify::verify(&request, &mut |note| {
        eprintln!("{note}");
    })?)
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
