//! `hoist verify IMAGE`: rebuild an image from the local sources with the inputs it
//! records (base digest, epoch, compression, platforms, hoist version) through the one
//! build pipeline, never push, and compare; a mismatch is explained by [`crate::diff`].

pub mod check;

use std::path::{Path, PathBuf};

use hoist_layers::{BlobStore, BuildOptions, Digest};
use serde::Serialize;

use crate::assemble::Observer;
use crate::config::ConfigFile;
use crate::diff::{ImageDiff, OpenedImage, compare};
use crate::error::Error;
use crate::job::{Env, JobError, PlanOverrides, plan_for};
use crate::oci::location::{Location, Selector};
use crate::oci::model::{
    BASE_DIGEST, BASE_NAME, HOIST_COMPRESSION, HOIST_COMPRESSION_LEVEL, HOIST_SOURCE_DATE_EPOCH,
    HOIST_VERSION,
};
use crate::pipeline::Builder;
use crate::plan::{Overrides, Plan};
use crate::publish::Sink as _;
use crate::publish::layout::LayoutSink;
use crate::registry::transport::Transport;
use crate::sign::SignError;

/// What can keep a verification from reaching a verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Opening, reading or comparing an image failed (kept as the source: the CLI
    /// finds a registry's answer in the chain).
    #[error("{0}")]
    Hoist(#[from] Error),
    /// Resolving or labelling the rebuild's plan failed.
    #[error("{0}")]
    Plan(#[from] JobError),
    /// The project, its version or its git checkout could not be read.
    #[error("{0}")]
    Release(#[from] crate::release::ReleaseError),
    /// A key file could not be read, or signing data could not be checked.
    #[error("{0}")]
    Sign(SignError),
    /// What was asked cannot be done; says why.
    #[error("{0}")]
    Refused(String),
    /// The rebuild of a revision's checkout failed, and inputs it builds from are not
    /// in git (ignored: built on the host, such as `frontend/dist`).
    #[error(
        "rebuilding revision {revision}: {} not in git (ignored), so its checkout lacks {}: `git checkout {revision}`, build {} there as the release did, and run hoist verify again (with HEAD at that revision it rebuilds the working tree; --revision HEAD forces that)",
        paths.join(", "),
        if paths.len() == 1 { "it" } else { "them" },
        if paths.len() == 1 { "it" } else { "them" }
    )]
    InputsNotInGit {
        /// The revision rebuilt.
        revision: String,
        /// The inputs (`from` as written) missing from its checkout, ignored by git.
        paths: Vec<String>,
        /// How the rebuild failed.
        source: Box<VerifyError>,
    },
    /// The rebuild failed.
    #[error("rebuilding from {}", config.display())]
    Rebuild {
        /// The config file rebuilt from.
        config: PathBuf,
        /// Why.
        source: Error,
    },
    /// A check in the registry failed: what was being checked, about which image.
    #[error("{context}")]
    Step {
        /// What was being checked (`checking the signatures of HOST/REPO@…`).
        context: String,
        /// Why it failed.
        source: Box<VerifyError>,
    },
}

impl From<SignError> for VerifyError {
    fn from(error: SignError) -> VerifyError {
        match error {
            // The registry's answer stays a typed `Error` in the chain.
            // What was checked, about which image, with the registry's answer kept
            // as a typed `Error` in the chain.
            SignError::Registry { doing, source } => VerifyError::Step {
                context: doing,
                source: Box::new(VerifyError::Hoist(source)),
            },
            other => VerifyError::Sign(other),
        }
    }
}

/// Result of a verification step.
pub type Result<T, E = VerifyError> = std::result::Result<T, E>;

/// What to verify, and with what.
pub struct Request<'a> {
    /// The published image, as the user named it.
    pub image: &'a str,
    /// The config file to rebuild from.
    pub config: &'a Path,
    /// Its contents (a workspace member's with what it takes from its root).
    pub file: &'a ConfigFile,
    /// The cache.
    pub store: &'a BlobStore,
    /// Build settings (threads; never the output).
    pub options: BuildOptions,
    /// The command's registry transport.
    pub transport: &'a Transport,
    /// Layer progress.
    pub observer: &'a dyn Observer,
}

/// What a verification found (what `hoist verify --json` prints).
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Whether the rebuild has the published digest.
    pub verified: bool,
    /// The image as given.
    pub image: String,
    /// The published index (or manifest) digest.
    pub published: Digest,
    /// The rebuild's digest.
    pub rebuilt: Digest,
    /// The inputs the rebuild used.
    pub inputs: Inputs,
    /// What differs, when something does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<ImageDiff>,
    /// The SBOMs compared (registry images rebuilt with SBOMs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomCheck>,
    /// The installed Python packages whose files differ (`h11==0.14.0 (linux/amd64,
    /// layer 2)`), from [`differing_packages`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub python_packages: Vec<String>,
    /// The sha256 of the config's bytes the rebuild parsed (what its provenance is
    /// checked against: the file is not read again).
    #[serde(skip)]
    pub config_digest: Option<Digest>,
    /// Each Python layer's lock the rebuild installed: its provenance name
    /// (`layer[N].python.lock`) and the sha256 of the bytes read.
    #[serde(skip)]
    pub locks: Vec<(String, Digest)>,
}

/// The installed Python distributions a diff touches: a changed, added or removed
/// file of `…/site-packages/NAME-VERSION.dist-info/` (an installer's `RECORD` holds
/// every file's sha256, so a package whose files differ in content has a differing
/// `RECORD`), once per platform and layer.
pub fn differing_packages(diff: &ImageDiff) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for platform in &diff.platforms {
        for layer in &platform.layers {
            for file in &layer.files {
                let mut parts = file.path.split('/');
                let dist = parts
                    .by_ref()
                    .skip_while(|p| !p.ends_with("-packages"))
                    .nth(1);
                let Some(stem) = dist.and_then(|d| d.strip_suffix(".dist-info")) else {
                    continue;
                };
                let Some((name, version)) = stem.split_once('-') else {
                    continue;
                };
                found.insert(format!(
                    "{name}=={version} ({}, layer {})",
                    platform.platform, layer.position
                ));
            }
        }
    }
    found.into_iter().collect()
}

/// The recorded rebuild inputs, as read from the image.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inputs {
    /// `org.opencontainers.image.base.name`.
    pub base: Option<String>,
    /// `org.opencontainers.image.base.digest`.
    pub base_digest: Option<String>,
    /// The hoist version that built it.
    pub hoist_version: Option<String>,
    /// `gzip` or `zstd`.
    pub compression: Option<String>,
    /// The compression level.
    pub compression_level: Option<i32>,
    /// The epoch its mtimes and `created` come from.
    pub source_date_epoch: Option<String>,
    /// Its platforms, in index order.
    pub platforms: Vec<String>,
}

/// Rebuilds `request.image` and compares; `note` hears what is rebuilt with.
pub fn verify(request: &Request, note: &mut dyn FnMut(String)) -> Result<Outcome> {
    let (store, transport) = (request.store, request.transport);
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = |name: &str| -> Result<PathBuf> {
        let path = scratch.path().join(name);
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };

    let location = Location::parse(request.image)?;
    let published = OpenedImage::open(
        request.image,
        &location,
        &dir("published")?,
        store,
        transport,
    )?;
    let inputs = recorded_inputs(&published)?;
    if let Some(version) = &inputs.hoist_version
        && version != env!("CARGO_PKG_VERSION")
    {
        note(format!(
            "note: {} was built by hoist {version}, this is hoist {}: the version is recorded in the image, so the digests cannot match; the differences below show whether anything else differs",
            request.image,
            env!("CARGO_PKG_VERSION")
        ));
    }

    let plan = rebuild_plan(request, &inputs)?;
    note(format!(
        "rebuilding {} from {}: base {}, SOURCE_DATE_EPOCH {}, {}, platforms {}",
        request.image,
        request.config.display(),
        plan.base,
        plan.epoch,
        match plan.compression {
            hoist_layers::Compression::Gzip { level } => format!("gzip level {level}"),
            hoist_layers::Compression::Zstd { level } => format!("zstd level {level}"),
        },
        inputs.platforms.join(", ")
    ));
    // Every base layer is fetched: a rebuild that differs is written to a layout to
    // be compared file by file.
    // The builder outlives the rebuild: an archive base's blobs are in its scratch dir.
    let builder = Builder::new(store, request.options, transport, request.observer)?;
    let rebuilt = builder
        .build(&plan, false)
        .map_err(|source| VerifyError::Rebuild {
            config: request.config.to_path_buf(),
            source,
        })?;

    let sbom = compare_sboms(&location, &rebuilt, transport)?;
    if let Some(check) = &sbom
        && !check.attached
    {
        note(format!(
            "note: {} has no SBOM attached: only the image is compared",
            request.image
        ));
    }
    let sbom_matches = sbom
        .as_ref()
        .is_none_or(|c| !c.attached || c.differing.is_empty());
    let verified = rebuilt.descriptor.digest == published.top.digest && sbom_matches;
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
            store,
            transport,
        )?;
        Some(compare(&published, &rebuilt_image)?)
    };
    let python_packages = diff.as_ref().map(differing_packages).unwrap_or_default();
    Ok(Outcome {
        verified,
        image: request.image.to_string(),
        published: published.top.digest.clone(),
        rebuilt: rebuilt.descriptor.digest,
        inputs,
        diff,
        sbom,
        python_packages,
        config_digest: plan.config_digest.clone(),
        locks: plan
            .python
            .iter()
            .map(|p| (p.input_name(), p.lock_digest().clone()))
            .collect(),
    })
}

/// How the SBOMs a registry image carries compare with the rebuild's.
#[derive(Debug, Serialize)]
pub struct SbomCheck {
    /// Whether the published image has any SBOM attached.
    pub attached: bool,
    /// Platform manifests whose published SBOMs do not include the rebuild's.
    pub differing: Vec<Digest>,
}

/// The rebuild's SBOMs (deterministic: same inputs, same bytes) against those attached
/// to the published image in its registry; `None` when there is nothing to compare (a
/// layout or archive, or a rebuild without SBOMs).
fn compare_sboms(
    location: &Location,
    rebuilt: &crate::oci::image::Image,
    transport: &Transport,
) -> Result<Option<SbomCheck>> {
    use crate::oci::artifact::{SPDX_JSON, artifact_type_of};
    let Location::Registry { reference } = location else {
        return Ok(None);
    };
    let expected: Vec<_> = rebuilt
        .referrers
        .iter()
        .filter(|r| artifact_type_of(&r.descriptor) == Some(SPDX_JSON))
        .collect();
    if expected.is_empty() {
        return Ok(None);
    }
    let reference = crate::oci::reference::parse(reference)?;
    let check = crate::registry::block_on(async {
        let repository = transport
            .repository(&reference, crate::registry::transport::Access::Pull)
            .await?;
        let mut check = SbomCheck {
            attached: false,
            differing: Vec::new(),
        };
        for referrer in expected {
            let listed = crate::registry::referrers::list(
                &repository,
                &referrer.subject.digest,
                Some(SPDX_JSON),
            )
            .await?;
            check.attached |= !listed.is_empty();
            if !listed
                .iter()
                .any(|d| d.digest == referrer.descriptor.digest)
            {
                check.differing.push(referrer.subject.digest.clone());
            }
        }
        Ok(check)
    })?;
    Ok(Some(check))
}

fn recorded_inputs(image: &OpenedImage) -> Result<Inputs> {
    let text = |key: &str| image.annotation(key).map(str::to_string);
    let compression_level = text(HOIST_COMPRESSION_LEVEL)
        .map(|level| {
            level.parse::<i32>().map_err(|_| Error::Verify {
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
fn rebuild_plan(request: &Request, inputs: &Inputs) -> Result<Plan> {
    let file = request.file;
    let overrides = PlanOverrides {
        overrides: Overrides {
            platforms: inputs.platforms.clone(),
            compression: inputs.compression.clone(),
            compression_level: inputs.compression_level,
            ..Overrides::default()
        },
        // The rebuild is dated as the image records (else as the environment says).
        epoch: inputs.source_date_epoch.as_deref(),
        ..PlanOverrides::default()
    };
    // A versioned project's build labels its image (version, revision, created…):
    // the rebuild does too, from the checkout being verified.
    let mut plan = plan_for(request.config, file, &overrides, &Env::from_process())?;

    if let (Some(name), Some(digest)) = (&inputs.base, &inputs.base_digest) {
        let digest: Digest = digest.parse().map_err(|e| Error::Verify {
            image: request.image.to_string(),
            reason: format!("annotation {BASE_DIGEST} = `{digest}`: {e}"),
        })?;
        let config_dir = file.base_dir(request.config);
        let recorded = Location::parse(name)
            .map_err(|e| Error::Verify {
                image: request.image.to_string(),
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
