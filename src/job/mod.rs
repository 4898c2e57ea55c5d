//! The one job every command that builds or publishes runs through:
//!
//! ```text
//! preflight ──► build ──► budget ──► publish ──► attach ──► tags
//! (outputs,     (plan →    (sizes,    (sink,      (signatures, (pinned tags
//!  registries:  Builder)    before     engine      provenance)  checked right
//!  reachable,               any        load,                    before each PUT;
//!  credentials,             upload)    pushes by                rolling tags
//!  tags HEADed,                        digest,                  forward only)
//!  engine up)                          untagged)
//! ```
//!
//! `hoist build`, `hoist release` and `hoist verify` resolve their plans with
//! [`plan_for`] (one reading of `SOURCE_DATE_EPOCH`, in [`Env`]); `build --push` and
//! `release` sign and attest with [`attest`]; every tag move goes through
//! [`crate::release::forward::move_tags`]. The CLI maps flags to these and prints.

pub mod build;
pub mod members;
pub mod push;
pub mod release;
pub mod tag;

use std::path::Path;

use oci_spec::distribution::Reference;
use semver::Version;

use crate::config::ConfigFile;
use crate::error::Error;
use crate::oci::image::Image;
use crate::plan::{Overrides, Plan, resolve};
use crate::registry::transport::Transport;
use crate::release::ReleaseError;
use crate::release::git::Heads;
use crate::release::labels::label_plan;
use crate::sign::{PrivateKey, SignError};

/// What can stop a job. Each variant keeps the error it wraps as its `source`, so the
/// CLI finds a registry's answer in the chain with one downcast to [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Building, publishing or a registry request failed.
    #[error("{0}")]
    Hoist(#[from] Error),
    /// A release step (version files, tag rules, git) failed.
    #[error("{0}")]
    Release(#[from] ReleaseError),
    /// Signing or attesting failed (not in the registry: that is [`JobError::Hoist`]).
    #[error("{0}")]
    Sign(SignError),
    /// Loading into a local engine (`--load`) failed.
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
    /// A step failed: what was being done, and how to go on.
    #[error("{context}")]
    Step {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: Box<JobError>,
    },
}

impl From<SignError> for JobError {
    fn from(error: SignError) -> JobError {
        match error {
            // The registry's answer stays a typed `Error` in the chain.
            SignError::Registry { doing, source } => JobError::Step {
                context: doing,
                source: Box::new(JobError::Hoist(source)),
            },
            other => JobError::Sign(other),
        }
    }
}

/// Result of a job's steps.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// What a job reads from the environment, read once per command.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `SOURCE_DATE_EPOCH`: the time every build of the command is dated with.
    pub source_date_epoch: Option<String>,
    /// The HEAD of each checkout the command's builds are in, asked once.
    pub heads: Heads,
}

impl Env {
    /// The process environment's values.
    pub fn from_process() -> Env {
        Env {
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
            heads: Heads::default(),
        }
    }
}

/// What a command changes in an image's plan besides its config file.
#[derive(Clone, Debug, Default)]
pub struct PlanOverrides<'a> {
    /// Flags that override settings (`--platform`, `--base`, …).
    pub overrides: Overrides,
    /// `--no-sbom`.
    pub no_sbom: bool,
    /// The version a versioned project's image is labelled with (a release's new one);
    /// `None`: the one its version files hold.
    pub version: Option<&'a Version>,
    /// An epoch that wins over the environment's (`verify`: the one the image records).
    pub epoch: Option<&'a str>,
}

/// One image's plan: its config file (with what it takes from its workspace), the
/// command's overrides, and the environment; a versioned project's image is labelled
/// (`org.opencontainers.image.version`, revision, created).
pub fn plan_for(
    config: &Path,
    file: &ConfigFile,
    overrides: &PlanOverrides,
    env: &Env,
) -> Result<Plan> {
    let epoch = build_epoch(config, overrides.epoch, env);
    let mut plan = resolve(config, file, &overrides.overrides, epoch.as_deref())?;
    label_plan(config, file, &mut plan, (overrides.version, &env.heads))?;
    plan.sbom &= !overrides.no_sbom;
    Ok(plan)
}

/// The epoch a build of `config` is dated with (file mtimes, `created`, history), as
/// `SOURCE_DATE_EPOCH` text: `given` (verify's recorded one) wins, then the
/// environment's `SOURCE_DATE_EPOCH`, then the committer time of the HEAD commit of the
/// git checkout `config` is in; `None` outside git (the plan's epoch is then 0). The
/// commit's time keeps a build reproducible (every checkout of the commit gives it)
/// while dating the image by its source instead of 1970.
pub fn build_epoch(config: &Path, given: Option<&str>, env: &Env) -> Option<String> {
    // An empty SOURCE_DATE_EPOCH is unset (a CI variable left blank).
    let from_env = env.source_date_epoch.as_deref().filter(|e| !e.is_empty());
    if let Some(epoch) = given.or(from_env) {
        return Some(epoch.to_string());
    }
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(env.heads.of(dir)?.time?.to_string())
}

/// What signing one pushed image made.
#[derive(Debug)]
pub struct Attested {
    /// `HOST/REPO@DIGEST`.
    pub reference: String,
    /// The signatures (the index first, then its manifests).
    pub signatures: crate::sign::cosign::SignReport,
    /// The provenance attestation's descriptor.
    pub provenance: crate::oci::model::Descriptor,
    /// Whether the registry listed that attestation already (a re-run).
    pub provenance_was_there: bool,
}

/// Signs an image pushed to `repository` (its index and manifests, cosign's `.sig`
/// tags) and attaches its signed provenance (facts from `config`'s checkout): the
/// one attach step of `build --push --sign-key` and `release --sign-key`.
pub fn attest(
    key: &PrivateKey,
    config: &Path,
    plan: &Plan,
    image: &Image,
    repository: &Reference,
    transport: &Transport,
) -> Result<Attested> {
    let pushed = format!(
        "{}/{}@{}",
        repository.registry(),
        repository.repository(),
        image.descriptor.digest
    );
    let target = crate::oci::reference::parse(&pushed)?;
    let facts = crate::release::attest::provenance_facts(config, plan, image, &pushed)?;
    let signing = async {
        let signatures =
            crate::sign::sign_pushed(transport, &target, key, &std::collections::BTreeMap::new())
                .await?;
        let (provenance, recorded) = crate::sign::provenance::attach_provenance(
            transport,
            &target,
            &image.descriptor,
            &facts,
            key,
        )
        .await?;
        Ok::<_, SignError>((signatures, provenance, recorded))
    };
    let (signatures, provenance, recorded) = run_signing(signing)??;
    Ok(Attested {
        reference: pushed,
        signatures,
        provenance,
        provenance_was_there: matches!(
            recorded,
            crate::registry::referrers::Recorded::AlreadyListed
        ),
    })
}

/// The version an image says it is: its index's (or manifest's)
/// `org.opencontainers.image.version` annotation, else its first platform's config
/// label. The rolling tags' rule compares it with the version they name.
pub fn image_version(image: &Image) -> Option<Version> {
    use crate::release::labels::VERSION;
    let text = image
        .annotation(VERSION)
        .map(str::to_string)
        .or_else(|| image.labels().remove(VERSION))?;
    Version::parse(text.trim_start_matches('v')).ok()
}

/// Runs a signing future on the I/O runtime: the runtime's failure is the outer
/// error, the signing's own (a refusal, or a registry answer) the inner one.
pub fn run_signing<T>(
    future: impl Future<Output = std::result::Result<T, SignError>>,
) -> crate::Result<std::result::Result<T, SignError>> {
    let mut outcome = None;
    crate::registry::block_on(async {
        outcome = Some(future.await);
        Ok(())
    })?;
    Ok(outcome.expect("the future ran"))
}

/// Wraps `error` with what was being done.
pub(crate) fn step(context: String, error: impl Into<JobError>) -> JobError {
    JobError::Step {
        context,
        source: Box::new(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reading of the environment serves every plan; an epoch the command gives
    /// (verify's recorded one) wins over it; `--no-sbom` turns a configured SBOM off.
    #[test]
    fn plans_take_the_epoch_from_the_job_env_unless_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hoist.toml");
        std::fs::write(&config, "[image]\nbase = \"scratch\"\nsbom = true\n").unwrap();
        let file = ConfigFile::load(&config).unwrap();
        let env = Env {
            source_date_epoch: Some("100".into()),
            ..Env::default()
        };
        let plan = plan_for(&config, &file, &PlanOverrides::default(), &env).unwrap();
        assert_eq!(plan.epoch, 100);
        assert!(plan.sbom);
        let overrides = PlanOverrides {
            epoch: Some("200"),
            no_sbom: true,
            ..PlanOverrides::default()
        };
        let plan = plan_for(&config, &file, &overrides, &env).unwrap();
        assert_eq!(plan.epoch, 200);
        assert!(!plan.sbom);
    }

    /// Without `SOURCE_DATE_EPOCH`, a build in a git checkout is dated by its HEAD
    /// commit; outside git, 0; the environment's and the given epoch win over the
    /// commit.
    #[test]
    fn the_epoch_is_the_head_commit_time_in_a_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("app/hoist.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "[image]\nbase = \"scratch\"\n").unwrap();
        let file = ConfigFile::load(&config).unwrap();
        let none = Env::default();
        let outside = plan_for(&config, &file, &PlanOverrides::default(), &none).unwrap();
        assert_eq!(outside.epoch, 0, "outside git the epoch stays 0");

        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_COMMITTER_DATE", "1700000123 +0200")
                .env("GIT_AUTHOR_DATE", "1600000000 +0000")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "one",
        ]);
        let inside = plan_for(&config, &file, &PlanOverrides::default(), &none).unwrap();
        assert_eq!(
            inside.epoch, 1_700_000_123,
            "the committer time, not the author's"
        );
        let env = Env {
            source_date_epoch: Some("5".into()),
            ..Env::default()
        };
        let from_env = plan_for(&config, &file, &PlanOverrides::default(), &env).unwrap();
        assert_eq!(from_env.epoch, 5);
        let given = PlanOverrides {
            epoch: Some("0"),
            ..PlanOverrides::default()
        };
        assert_eq!(plan_for(&config, &file, &given, &none).unwrap().epoch, 0);
    }

    /// A signing failure in the registry stays the library's typed error (the CLI's
    /// login hint finds it with one downcast); others stay signing errors.
    #[test]
    fn signing_errors_keep_the_registry_error_typed() {
        let registry = SignError::Registry {
            doing: "signing r.example/acme/app@sha256:…".into(),
            source: Error::Registry {
                registry: "r.example".into(),
                message: "refused".into(),
            },
        };
        let job: JobError = registry.into();
        let chained = anyhow::Error::new(step("signing".into(), job));
        // What was being done, and about which image, is in the chain too.
        assert!(
            chained
                .chain()
                .any(|cause| cause.to_string() == "signing r.example/acme/app@sha256:…")
        );
        assert!(
            chained
                .chain()
                .any(|cause| cause.downcast_ref::<Error>().is_some())
        );
        let refusal: JobError = SignError::Password("no terminal".into()).into();
        assert!(matches!(refusal, JobError::Sign(_)));
    }
}
