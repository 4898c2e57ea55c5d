//! `hoist key generate` and `hoist sign`: cosign-compatible key pairs and signatures
//! (the library's `sign` module does the work).

use super::progress::note;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use hoist::oci::reference;
use hoist::sign::{PrivateKey, SignReport, key};

use super::RegistryArgs;

/// `hoist key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new key pair, cosign.key (encrypted) and cosign.pub, as cosign
    /// generate-key-pair does. The password comes from HOIST_KEY_PASSWORD or
    /// COSIGN_PASSWORD, else a prompt.
    Generate(GenerateArgs),
}

/// `hoist key generate` flags.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write PREFIX.key and PREFIX.pub (cosign's --output-key-prefix).
    #[arg(
        long,
        visible_alias = "output-prefix",
        value_name = "PREFIX",
        default_value = "cosign"
    )]
    output_key_prefix: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

/// `hoist sign` flags.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image: HOST/REPO:TAG or HOST/REPO@DIGEST. An index is signed with each of
    /// its manifests.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// The cosign private key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Add KEY=VALUE to the signed payload's `optional` part (repeatable).
    #[arg(long, short = 'a', value_name = "KEY=VALUE")]
    annotation: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `hoist key …`.
pub fn key(command: &KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate(args) => generate(args),
    }
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let (private, public) = key::generate_key_files(&args.output_key_prefix, args.force)?;
    note!("Private key written to {}", private.display());
    note!("Public key written to {}", public.display());
    Ok(())
}

/// Reads and decrypts a private key file (the library's [`key::unlock`]: the password
/// from the environment or a prompt).
pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    Ok(key::unlock(path)?)
}

/// Runs `hoist sign`.
pub fn sign(args: &SignArgs) -> Result<()> {
    anyhow::ensure!(
        !args.registry.offline,
        "--offline: hoist sign needs the network"
    );
    let annotations = parse_annotations(&args.annotation)?;
    let target = reference::parse(&args.image)?;
    let private = load_private_key(&args.key)?;
    let transport = args.registry.transport(0)?;
    let report = block_on_sign(hoist::sign::sign_pushed(
        &transport,
        &target,
        &private,
        &annotations,
    ))?;
    print_report(&report);
    let mut document = serde_json::to_value(&report)?;
    args.registry.report(&transport, &mut document, &[])?;
    super::emit_json(&document, args.json, None)
}

pub fn print_report(report: &SignReport) {
    print_report_as("", report);
}

/// [`print_report`], each line starting with `prefix` (a workspace member's name).
fn print_report_as(prefix: &str, report: &SignReport) {
    for signed in &report.signed {
        let what = if signed.added {
            "signed"
        } else {
            "already signed"
        };
        note!(
            "{prefix}{what} {}@{} ({}:{}, {} signature{})",
            report.repository,
            signed.digest,
            report.repository,
            signed.tag,
            signed.signatures,
            if signed.signatures == 1 { "" } else { "s" }
        );
    }
}

/// Runs a signing future on the I/O runtime; its error keeps the registry answer
/// reachable for the CLI's credential hint.
pub fn block_on_sign<T>(
    future: impl Future<Output = Result<T, hoist::sign::SignError>>,
) -> Result<T> {
    hoist::job::run_signing(future)?.map_err(sign_error)
}

/// A signing error for the CLI: a registry failure as the library error it is (so the
/// credential hint finds its answer), anything else as itself.
pub fn sign_error(error: hoist::sign::SignError) -> anyhow::Error {
    match error {
        hoist::sign::SignError::Registry { doing, source } => {
            anyhow::Error::new(source).context(doing)
        }
        other => other.into(),
    }
}

fn parse_annotations(values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut annotations = BTreeMap::new();
    for value in values {
        let (key, value) = value
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .with_context(|| format!("--annotation `{value}`: expected KEY=VALUE"))?;
        annotations.insert(key.to_string(), value.to_string());
    }
    Ok(annotations)
}

/// What the job's attach stage did for one push, on stderr, each line starting with
/// `prefix` (a workspace member's name).
pub fn print_attested(prefix: &str, attested: &hoist::job::Attested) {
    print_report_as(prefix, &attested.signatures);
    let how = if attested.provenance_was_there {
        "already attached"
    } else {
        "attached"
    };
    note!(
        "{prefix}provenance {how}: {}@{} (SLSA v1, DSSE, referrer of {})",
        attested.signatures.repository,
        attested.provenance.digest,
        attested.reference
    );
}
