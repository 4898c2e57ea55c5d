//! `hoist verify IMAGE`: rebuild an image from the local sources with the inputs it
//! records (base digest, epoch, compression, platforms), never push, and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hoist::oci::location::Location;
use hoist::registry::transport::Transport;
use hoist::verify::{Outcome, Request};
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
    #[arg(long, short = 'j', value_name = "N")]
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
    /// Rebuild this git revision (in a temporary worktree); `HEAD` uses the working
    /// tree as it is. Default: the revision the image records
    /// (org.opencontainers.image.revision), when HEAD is another.
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// One image to verify, and the config it is rebuilt from.
struct Target {
    /// The published image, as named.
    image: String,
    /// The member's config.
    config: PathBuf,
    /// The member's name, in a workspace.
    member: Option<String>,
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
    let targets = match targets(args) {
        Ok(targets) => targets,
        Err(error) => return trouble(&error),
    };
    // One transport for the command: credentials (--password-stdin reads stdin) are
    // read once, and every registry is probed once.
    let transport = match args.registry.transport(0) {
        Ok(transport) => transport,
        Err(error) => return trouble(&error),
    };
    let mut reports = Vec::new();
    for target in &targets {
        match verify_target(args, target, &transport) {
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

/// The image given (one member only), or each member's `[image].name` at the
/// project's version.
fn targets(args: &VerifyArgs) -> Result<Vec<Target>> {
    // Signatures alone need no config: nothing is rebuilt.
    if let (Some(image), true) = (&args.image, args.signature_only) {
        return Ok(vec![Target {
            image: image.clone(),
            config: args.config.clone(),
            member: None,
        }]);
    }
    let project = hoist::release::workflow::Project::load(&args.config, &args.package)?;
    let members = &project.workspace.members;
    let member_name =
        |m: &hoist::workspace::Member| project.workspace.is_workspace.then(|| m.name.clone());
    if let Some(image) = &args.image {
        anyhow::ensure!(
            members.len() == 1,
            "{image} is one image, but {} has {} ({}): pick its member with -p",
            args.config.display(),
            members.len(),
            hoist::workspace::names(members)
        );
        return Ok(vec![Target {
            image: image.clone(),
            config: members[0].config.clone(),
            member: member_name(&members[0]),
        }]);
    }
    let tag = match &project.settings.source {
        Some(_) => project.settings.read()?.version().to_string(),
        None => "latest".to_string(),
    };
    members
        .iter()
        .map(|member| match &member.file.image.name {
            Some(names) => Ok(Target {
                image: format!("{}:{tag}", names.to_vec()[0]),
                config: member.config.clone(),
                member: member_name(member),
            }),
            None => anyhow::bail!(
                "name the image to verify: {} sets no image.name",
                member.config.display()
            ),
        })
        .collect()
}

/// Signatures (with `--key`), then the rebuild (in the recorded revision's worktree
/// when HEAD is another), then the provenance against the rebuild.
fn verify_target(args: &VerifyArgs, target: &Target, transport: &Transport) -> Result<Report> {
    let signatures = match &args.key {
        Some(key) => match check_signatures(target, key, transport)? {
            Ok(verified) => Some(verified),
            Err(refusal) => return Ok(refused(target, &refusal)),
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
            let text = verified
                .manifests
                .first()
                .map_or(String::new(), |(digest, _)| {
                    format!("verified signatures of {}@{digest}\n", verified.repository)
                });
            return Ok(Report {
                verified: true,
                json: serde_json::json!({"signatures": verified}),
                text,
            });
        }
    }
    let checkout = rebuild_checkout(args, target, transport)?;
    let config = checkout
        .as_ref()
        .map_or(target.config.as_path(), |c| c.config.as_path());
    let outcome = verify(args, target, config, transport)?;
    let provenance = match (&signatures, outcome.verified) {
        (Some(verified), true) => {
            match check_provenance(args, (target, config), &outcome, verified, transport)? {
                Ok(found) => found,
                Err(refusal) => return Ok(refused(target, &refusal)),
            }
        }
        _ => None,
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

/// The signatures' check: `Ok(Err(refusal))` when they are missing or do not verify
/// (the image is not verified), `Err` when it could not be told (registry, key file).
fn check_signatures(
    target: &Target,
    key: &std::path::Path,
    transport: &Transport,
) -> Result<Result<hoist::sign::cosign::VerifiedSignatures, hoist::sign::SignError>> {
    let Ok(Location::Registry { reference }) = Location::parse(&target.image) else {
        anyhow::bail!(
            "--key: signatures are read from a registry; {} is not a registry reference",
            target.image
        );
    };
    let public = hoist::sign::PublicKey::read(key)?;
    let target = hoist::oci::reference::parse(&reference)?;
    match super::sign::block_on_sign(async {
        Ok(hoist::sign::verify_pushed(transport, &target, &public).await)
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
    (image, config_path): (&Target, &std::path::Path),
    outcome: &Outcome,
    signatures: &hoist::sign::cosign::VerifiedSignatures,
    transport: &Transport,
) -> Result<Result<Option<hoist::sign::provenance::VerifiedProvenance>, hoist::sign::SignError>> {
    let Some(key) = &args.key else {
        return Ok(Ok(None));
    };
    let Ok(Location::Registry { reference }) = Location::parse(&image.image) else {
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
    match super::sign::block_on_sign(async {
        Ok(hoist::sign::provenance::verify_provenance(
            transport,
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
                image.image
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
    target: &Target,
    transport: &Transport,
) -> Result<Option<hoist::release::checkout::RevisionCheckout>> {
    use hoist::release::checkout::{RevisionCheckout, resolve};
    use hoist::release::git::Git;
    if args.revision.as_deref() == Some("HEAD") {
        return Ok(None);
    }
    let config_dir = target
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let Ok(git) = Git::discover(config_dir) else {
        return Ok(None);
    };
    let wanted = match &args.revision {
        Some(revision) => revision.clone(),
        None => match recorded_revision(args, target, transport)? {
            Some(revision) => revision,
            None => return Ok(None),
        },
    };
    let head = git.head_sha()?;
    if resolve(&git, &wanted).ok().as_deref() == Some(head.as_str()) {
        return Ok(None);
    }
    let checkout = RevisionCheckout::create(&git, &target.config, &wanted)?;
    eprintln!(
        "note: rebuilding revision {} (HEAD is {head}) in a temporary worktree; --revision HEAD uses the working tree",
        checkout.revision
    );
    Ok(Some(checkout))
}

/// The `org.opencontainers.image.revision` the published image records.
fn recorded_revision(
    args: &VerifyArgs,
    target: &Target,
    transport: &Transport,
) -> Result<Option<String>> {
    let location = Location::parse(&target.image)?;
    let (_, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let scratch = tempfile::tempdir()?;
    let image = hoist::diff::open::OpenedImage::open(
        &target.image,
        &location,
        scratch.path(),
        &store,
        transport,
    )?;
    Ok(image
        .annotation("org.opencontainers.image.revision")
        .map(str::to_string))
}

fn verify(
    args: &VerifyArgs,
    target: &Target,
    config: &std::path::Path,
    transport: &Transport,
) -> Result<Outcome> {
    // The member as the config (perhaps in a worktree of another revision) has it.
    let project = hoist::workspace::load(config, &[])?;
    let file = &project.members[0].file;
    let (_, store) = super::open_cache(args.cache.cache_dir.as_ref())?;
    let observer = super::progress::observer();
    let request = Request {
        image: &target.image,
        config,
        file,
        store: &store,
        options: BuildOptions {
            threads: args.jobs.unwrap_or(0),
            use_cache: true,
        },
        transport,
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
