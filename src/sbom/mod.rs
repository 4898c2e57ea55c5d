//! Software bills of materials: an SPDX 2.3 JSON document per platform image, made
//! after assembly (the document names the platform manifest's digest, and is attached
//! to that manifest as an OCI 1.1 artifact, `oci::artifact`).
//!
//! [`attach_sboms`] is the pipeline's one call: for each platform it streams the
//! layers ([`scan`]: base layers for the OS package databases, new layers for language
//! package metadata and, with `sbom_files`, every file's hashes), parses what it found
//! ([`packages`]), writes the document ([`spdx`]) and adds it to the image's
//! referrers. [`cyclonedx`] converts a document to CycloneDX 1.6; [`find`] reads an
//! image's SBOM back from a layout, an archive or a registry.

pub mod cyclonedx;
pub mod find;
pub mod gather;
pub mod license;
pub mod packages;
pub mod purl;
pub mod scan;
pub mod spdx;

use crate::error::Result;
use crate::oci::artifact::{Artifact, SPDX_JSON, created_annotation};
use crate::oci::canonical::rfc3339;
use crate::oci::image::{Image, PlatformImage};
use crate::oci::model::{BASE_DIGEST, BASE_NAME, HOIST_SOURCE_DATE_EPOCH};

use packages::{
    Package, apk, cargo_lock, dpkg, npm_lock, npm_manifest, os_release, python, python_provenance,
};
use scan::{Contents, Scanner};
use spdx::{Found, Subject};

/// What to put in the SBOMs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SbomOptions {
    /// List every file of the new layers with its hashes (`sbom_files`).
    pub files: bool,
}

/// Makes the SPDX document of every platform image and adds each to `image`'s
/// referrers (subject: the platform manifest). `epoch` is the build's (its `created`).
/// `published` holds documents already made for some platform manifests (by digest):
/// those are attached as they are instead of being made again.
pub fn attach_sboms(
    image: &mut Image,
    epoch: u64,
    options: SbomOptions,
    scanner: &mut Scanner,
    published: &std::collections::BTreeMap<hoist_layers::Digest, Vec<u8>>,
) -> Result<()> {
    let mut referrers = Vec::with_capacity(image.platforms.len());
    for platform in &image.platforms {
        let document = match published.get(&platform.descriptor.digest) {
            Some(document) => document.clone(),
            None => platform_sbom(image, platform, epoch, options, scanner)?,
        };
        let artifact = Artifact {
            artifact_type: SPDX_JSON.into(),
            media_type: SPDX_JSON.into(),
            document,
            annotations: created_annotation(Some(&rfc3339(epoch))),
        };
        referrers.push(artifact.manifest(&platform.descriptor));
    }
    image.referrers.extend(referrers);
    Ok(())
}

/// Whether `document` (attached in a registry to a platform manifest with exactly this
/// build's digest) is the one this build would make: written by this hoist, for this
/// image name, with files listed exactly when `options` asks. Same manifest, same
/// inputs: then its bytes are the ones a scan would give (documents are
/// deterministic), and the layers need not be read. `hoist verify`, which never reuses
/// one, catches a registry that lies.
pub fn is_reusable(
    document: &[u8],
    platform: &PlatformImage,
    name: Option<&str>,
    options: SbomOptions,
) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(document) else {
        return false;
    };
    let ours = format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"));
    let expected_name = format!(
        "{}@{} {}",
        name.unwrap_or("image"),
        platform.descriptor.digest,
        platform.platform
    );
    value["creationInfo"]["creators"]
        .as_array()
        .is_some_and(|c| c.iter().any(|t| t.as_str() == Some(ours.as_str())))
        && value["name"].as_str() == Some(expected_name.as_str())
        && value.get("files").is_some() == options.files
}

/// The SPDX document of one platform image. The layers reported as `base` are read
/// for OS packages only; the others (the build's) for language packages and files.
/// `scanner` remembers layers read for earlier platforms.
pub fn platform_sbom(
    image: &Image,
    platform: &PlatformImage,
    epoch: u64,
    options: SbomOptions,
    scanner: &mut Scanner,
) -> Result<Vec<u8>> {
    let new_from = platform
        .layers
        .iter()
        .position(|l| l.origin != "base")
        .unwrap_or(platform.layers.len());
    let contents = scanner.scan(image, platform, new_from, options.files)?;
    let annotation = |key: &str| {
        platform
            .manifest
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let base = annotation(BASE_NAME).zip(annotation(BASE_DIGEST));
    // A read image (`hoist sbom` of one without an attached SBOM) says its own epoch.
    let epoch = annotation(HOIST_SOURCE_DATE_EPOCH)
        .and_then(|e| e.parse().ok())
        .unwrap_or(epoch);
    let subject = Subject {
        name: image.name.clone(),
        digest: platform.descriptor.digest.to_string(),
        platform: platform.platform.to_string(),
        architecture: platform.platform.architecture.clone(),
        base,
        created: rfc3339(epoch),
    };
    Ok(spdx::document(&subject, &found(contents)))
}

/// The packages and distribution the scanned files describe.
fn found(contents: Contents) -> Found {
    let distro = contents
        .system_file("etc/os-release")
        .or_else(|| contents.system_file("usr/lib/os-release"))
        .and_then(|bytes| os_release(&String::from_utf8_lossy(bytes)));
    let mut packages: Vec<Package> = Vec::new();
    for (path, entry) in &contents.system {
        let scan::Entry::File(bytes) = entry else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        let shown = format!("/{path}");
        if path == "var/lib/dpkg/status" || path.starts_with("var/lib/dpkg/status.d/") {
            packages.extend(dpkg(&text, distro.as_ref(), &shown));
        } else if path == "lib/apk/db/installed" {
            packages.extend(apk(&text, distro.as_ref(), &shown));
        }
    }
    for (path, bytes) in &contents.language {
        let shown = format!("/{path}");
        let name = path.rsplit('/').next().unwrap_or(path);
        match name {
            "METADATA" | "PKG-INFO" => {
                let mut package = python(&String::from_utf8_lossy(bytes), &shown);
                // The wheel it came from, as the installer recorded it beside METADATA.
                let provenance = path.strip_suffix("METADATA").and_then(|dir| {
                    contents
                        .language
                        .get(&format!("{dir}{}", crate::python::wheel::PROVENANCE))
                });
                if let (Some(package), Some(bytes)) = (package.as_mut(), provenance) {
                    package.archive = python_provenance(bytes);
                }
                packages.extend(package);
            }
            "package.json" => packages.extend(npm_manifest(bytes, &shown)),
            "package-lock.json" => packages.extend(npm_lock(bytes, &shown)),
            "Cargo.lock" => packages.extend(cargo_lock(&String::from_utf8_lossy(bytes), &shown)),
            _ => {}
        }
    }
    Found {
        distro,
        packages,
        files: contents.files,
    }
}
