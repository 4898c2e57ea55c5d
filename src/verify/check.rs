//! The whole of `hoist verify` for one image, in order: its signatures (with a
//! public key), the rebuild (in a worktree of the revision the image records, when
//! HEAD is another), then its provenance against the rebuild. The CLI maps flags to a
//! [`Check`] and prints the [`Verdict`].

use std::path::{Path, PathBuf};

use hoist_layers::{BlobStore, BuildOptions};

use super::{Outcome, Request, Result, VerifyError, verify};
use crate::assemble::Observer;
use crate::diff::OpenedImage;
use crate::error::Error;
use crate::job::run_signing;
use crate::oci::location::Location;
use crate::registry::transport::Transport;
use crate::release::checkout::{RevisionCheckout, resolve};
use crate::release::git::Git;
use crate::sign::cosign::VerifiedSignatures;
use crate::sign::provenance::{Expected, VerifiedProvenance};
use crate::sign::{PublicKey, SignError};

/// One image to verify, and the config it is rebuilt from.
#[derive(Clone, Debug)]
pub struct Target {
    /// The published image, as named.
    pub image: String,
    /// The member's config.
    pub config: PathBuf,
    /// The member's name, in a workspace.
    pub member: Option<String>,
}

/// The image given (one member only), or each member's `[image].name` at the
/// project's version (`latest` without `[version]`). With `signature_only`, nothing
/// is rebuilt, so no config is read.
pub fn targets(
    config: &Path,
    packages: &[String],
    image: Option<&str>,
    signature_only: bool,
) -> Result<Vec<Target>> {
    if let (Some(image), true) = (image, signature_only) {
        return Ok(vec![Target {
            image: image.to_string(),
            config: config.to_path_buf(),
            member: None,
        }]);
    }
    let project = crate::release::workflow::Project::load(config, packages)?;
    let members = &project.workspace.members;
    let member_name =
        |m: &crate::workspace::Member| project.workspace.is_workspace.then(|| m.name.clone());
    if let Some(image) = image {
        if members.len() != 1 {
            return Err(VerifyError::Refused(format!(
                "{image} is one image, but {} has {} ({}): pick its member with -p",
                config.display(),
                members.len(),
                crate::workspace::names(members)
            )));
        }
        return Ok(vec![Target {
            image: image.to_string(),
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
            None => Err(VerifyError::Refused(format!(
                "name the image to verify: {} sets no image.name",
                member.config.display()
            ))),
        })
        .collect()
}

/// How to check: the key, the revision, and the command's cache and transport.
pub struct Check<'a> {
    /// `--key`: check signatures and provenance with this cosign public key.
    pub key: Option<&'a Path>,
    /// `--signature-only`: no rebuild.
    pub signature_only: bool,
    /// `--revision`: `HEAD` rebuilds the working tree; `None`: the recorded one.
    pub revision: Option<&'a str>,
    /// The cache.
    pub store: &'a BlobStore,
    /// Build settings (threads).
    pub options: BuildOptions,
    /// The command's one transport.
    pub transport: &'a Transport,
    /// Layer progress.
    pub observer: &'a dyn Observer,
}

/// What verifying one image found.
#[derive(Debug)]
pub enum Verdict {
    /// A signature or the provenance is missing or does not verify: not verified.
    Refused(SignError),
    /// Checked.
    Checked {
        /// The signatures verified (with a key).
        signatures: Option<VerifiedSignatures>,
        /// The rebuild's outcome (`None` with `--signature-only`).
        outcome: Option<Box<Outcome>>,
        /// The provenance verified (with a key, when the image has one).
        provenance: Option<VerifiedProvenance>,
    },
}

/// Signatures (with a key), then the rebuild, then the provenance; `note` hears
/// what is checked and found.
pub fn check(check: &Check, target: &Target, note: &mut dyn FnMut(String)) -> Result<Verdict> {
    let signatures = match check.key {
        Some(key) => match check_signatures(target, key, check.transport)? {
            Ok(verified) => Some(verified),
            Err(refusal) => return Ok(Verdict::Refused(refusal)),
        },
        None => None,
    };
    if let (Some(verified), Some(key)) = (&signatures, check.key) {
        for (digest, count) in &verified.manifests {
            note(format!(
                "signature verified: {}@{digest} ({count} by {})",
                verified.repository,
                key.display()
            ));
        }
    }
    if check.signature_only {
        return Ok(Verdict::Checked {
            signatures,
            outcome: None,
            provenance: None,
        });
    }
    let checkout = rebuild_checkout(check, target, note)?;
    let config = checkout
        .as_ref()
        .map_or(target.config.as_path(), |c| c.config.as_path());
    let outcome = rebuild(check, target, config, note).map_err(|error| match &checkout {
        Some(checkout) => explain_missing_inputs(checkout, target, error),
        None => error,
    })?;
    let provenance = match (&signatures, check.key, outcome.verified) {
        (Some(verified), Some(key), true) => {
            match check_provenance(
                key,
                (target, config),
                &outcome,
                verified,
                check.transport,
                note,
            )? {
                Ok(found) => found,
                Err(refusal) => return Ok(Verdict::Refused(refusal)),
            }
        }
        _ => None,
    };
    Ok(Verdict::Checked {
        signatures,
        outcome: Some(Box::new(outcome)),
        provenance,
    })
}

/// The signatures' check: `Ok(Err(refusal))` when they are missing or do not verify,
/// `Err` when it could not be told (registry, key file).
fn check_signatures(
    target: &Target,
    key: &Path,
    transport: &Transport,
) -> Result<std::result::Result<VerifiedSignatures, SignError>> {
    let Ok(Location::Registry { reference }) = Location::parse(&target.image) else {
        return Err(VerifyError::Refused(format!(
            "--key: signatures are read from a registry; {} is not a registry reference",
            target.image
        )));
    };
    let public = PublicKey::read(key)?;
    let reference = crate::oci::reference::parse(&reference)?;
    match run_signing(crate::sign::verify_pushed(transport, &reference, &public))? {
        Ok(verified) => Ok(Ok(verified)),
        Err(refusal @ SignError::Signature { .. }) => Ok(Err(refusal)),
        Err(error) => Err(error.into()),
    }
}

/// The provenance's check against the rebuild: its subjects are the manifests
/// verified, its base the one rebuilt on, its config the one rebuilt from, its
/// revision the checkout's HEAD. `Ok(Ok(None))`: the image has none (a note says so).
fn check_provenance(
    key: &Path,
    (image, config_path): (&Target, &Path),
    outcome: &Outcome,
    signatures: &VerifiedSignatures,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<std::result::Result<Option<VerifiedProvenance>, SignError>> {
    let Ok(Location::Registry { reference }) = Location::parse(&image.image) else {
        return Ok(Ok(None));
    };
    let public = PublicKey::read(key)?;
    let reference = crate::oci::reference::parse(&reference)?;
    let expected = Expected {
        subjects: signatures
            .manifests
            .iter()
            .map(|(d, _)| d.clone())
            .collect(),
        base_digest: outcome.inputs.base_digest.clone(),
        // The bytes the rebuild parsed (one read), not the file as it is now; named
        // as the user knows it (a revision's is read in a temporary worktree).
        config: outcome
            .config_digest
            .clone()
            .map(|digest| (image.config.display().to_string(), digest)),
        locks: outcome.locks.clone(),
        revision: Git::discover(crate::fsutil::parent_dir(config_path))
            .ok()
            .and_then(|git| git.head_sha().ok()),
    };
    let found = run_signing(crate::sign::provenance::verify_provenance(
        transport,
        &reference,
        &outcome.published,
        &public,
        &expected,
    ))?;
    match found {
        Ok(Some(found)) => {
            note(format!(
                "provenance verified: {} (built by {}{})",
                found.attestation,
                found.builder,
                found
                    .revision
                    .as_deref()
                    .map_or(String::new(), |r| format!(" from revision {r}"))
            ));
            Ok(Ok(Some(found)))
        }
        Ok(None) => {
            note(format!(
                "note: {} has no provenance attestation (hoist build --push --sign-key attaches one)",
                image.image
            ));
            Ok(Ok(None))
        }
        Err(refusal @ SignError::Provenance { .. }) => Ok(Err(refusal)),
        Err(error) => Err(error.into()),
    }
}

/// A revision's rebuild that failed: when inputs of its config (`from` of layers and
/// files) are missing from the checkout while the working tree has them and git
/// ignores them, the error says so, and what to do (they are built on the host).
fn explain_missing_inputs(
    checkout: &RevisionCheckout,
    target: &Target,
    error: VerifyError,
) -> VerifyError {
    let Ok(file) = crate::config::ConfigFile::load(&checkout.config) else {
        return error;
    };
    let here = crate::fsutil::parent_dir(&target.config);
    let there = crate::fsutil::parent_dir(&checkout.config);
    let Ok(git) = Git::discover(here) else {
        return error;
    };
    let mut paths: Vec<String> = Vec::new();
    for layer in &file.layers {
        let sources = layer.from.iter().chain(layer.files.iter().map(|f| &f.from));
        for from in sources {
            let missing = !there.join(from).exists() && here.join(from).exists();
            if missing && git.is_ignored(&here.join(from)) && !paths.contains(from) {
                paths.push(from.clone());
            }
        }
    }
    if paths.is_empty() {
        return error;
    }
    VerifyError::InputsNotInGit {
        revision: checkout.revision.clone(),
        paths,
        source: Box::new(error),
    }
}

/// The worktree to rebuild in, when the rebuild is not of the working tree: the
/// revision asked for, else the revision the image records when the config's checkout
/// has another HEAD. `None` outside git, or when HEAD is the one.
fn rebuild_checkout(
    check: &Check,
    target: &Target,
    note: &mut dyn FnMut(String),
) -> Result<Option<RevisionCheckout>> {
    if check.revision == Some("HEAD") {
        return Ok(None);
    }
    let Ok(git) = Git::discover(crate::fsutil::parent_dir(&target.config)) else {
        return Ok(None);
    };
    let wanted = match check.revision {
        Some(revision) => revision.to_string(),
        None => match recorded_revision(check, target)? {
            Some(revision) => revision,
            None => return Ok(None),
        },
    };
    let head = git.head_sha()?;
    // A revision named with --revision is rebuilt as committed: the working tree
    // stands for it only when it holds no change (by default, HEAD being the recorded
    // revision, the working tree is what is verified, changes and all).
    let at_head = resolve(&git, &wanted).ok().as_deref() == Some(head.as_str());
    let changed = match check.revision {
        Some(_) if at_head => git.dirty_files()?,
        _ => Vec::new(),
    };
    if at_head && changed.is_empty() {
        return Ok(None);
    }
    let checkout = RevisionCheckout::create(&git, &target.config, &wanted)?;
    let why = match changed.as_slice() {
        [] => format!("HEAD is {head}"),
        [one] => format!("HEAD, whose working tree changes {one}"),
        [first, rest @ ..] => format!(
            "HEAD, whose working tree changes {first} and {} other file{}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    };
    note(format!(
        "note: rebuilding revision {} ({why}) in a temporary worktree; --revision HEAD uses the working tree",
        checkout.revision
    ));
    Ok(Some(checkout))
}

/// The `org.opencontainers.image.revision` the published image records.
fn recorded_revision(check: &Check, target: &Target) -> Result<Option<String>> {
    let location = Location::parse(&target.image)?;
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let image = OpenedImage::open(
        &target.image,
        &location,
        scratch.path(),
        check.store,
        check.transport,
    )?;
    Ok(image
        .annotation("org.opencontainers.image.revision")
        .map(str::to_string))
}

/// The rebuild and comparison, from `config` (perhaps in a worktree of another
/// revision), with the member as that config has it.
fn rebuild(
    check: &Check,
    target: &Target,
    config: &Path,
    note: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let project = crate::workspace::load(config, &[])?;
    let request = Request {
        image: &target.image,
        config,
        file: &project.members[0].file,
        store: check.store,
        options: check.options,
        transport: check.transport,
        observer: check.observer,
    };
    verify(&request, note)
}
