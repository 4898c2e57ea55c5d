//! An image's SBOMs read back (`hoist sbom`): from the artifacts a layout or an
//! `oci-archive:` lists beside the image, or from a registry's referrers (the API, else
//! the `sha256-<hex>` tag). Each document is verified against its digest.

use crate::error::{Error, Result};
use crate::oci::artifact::{SPDX_JSON, artifact_type_of};
use crate::oci::image::Image;
use crate::oci::location::Location;
use crate::oci::platform::Platform;
use crate::registry::referrers::{fetch, list};
use crate::registry::transport::{Access, Transport};

/// One platform's SBOM.
#[derive(Clone, Debug)]
pub struct FoundSbom {
    /// The platform it describes.
    pub platform: Platform,
    /// The SPDX JSON document's bytes.
    pub document: Vec<u8>,
}

/// The SPDX SBOM of each of `image`'s platforms (those satisfying `wanted`, if
/// given), opened from `location`. A platform without one is an error naming it.
pub fn find_sboms(
    image: &Image,
    location: &Location,
    wanted: Option<&Platform>,
    transport: &Transport,
) -> Result<Vec<FoundSbom>> {
    let platforms: Vec<_> = image
        .platforms
        .iter()
        .filter(|p| wanted.is_none_or(|w| p.platform.satisfies(w)))
        .collect();
    if platforms.is_empty() {
        return Err(Error::Location {
            input: location.to_string(),
            reason: format!(
                "has no image for platform {} (it has: {})",
                wanted.map(ToString::to_string).unwrap_or_default(),
                image.platform_names()
            ),
        });
    }
    let mut found = Vec::new();
    for platform in platforms {
        let digest = &platform.descriptor.digest;
        // The newest one listed: a later build's document about the same manifest.
        let attached = image
            .referrers
            .iter()
            .rev()
            .find(|r| {
                &r.subject.digest == digest && artifact_type_of(&r.descriptor) == Some(SPDX_JSON)
            })
            .map(|r| r.document.clone());
        let document = match (attached, location) {
            (Some(document), _) => Some(document),
            (None, Location::Registry { reference }) => {
                let reference = crate::oci::reference::parse(reference)?;
                crate::registry::block_on(async {
                    let repository = transport.repository(&reference, Access::Pull).await?;
                    let listed = list(&repository, digest, Some(SPDX_JSON)).await?;
                    match listed.last() {
                        Some(descriptor) => Ok(Some(fetch(&repository, descriptor).await?.1)),
                        None => Ok(None),
                    }
                })?
            }
            (None, _) => None,
        };
        let document = document.ok_or_else(|| Error::Location {
            input: location.to_string(),
            reason: format!(
                "no SBOM is attached to its {} image ({digest}); build it with SBOMs on (the default)",
                platform.platform
            ),
        })?;
        found.push(FoundSbom {
            platform: platform.platform.clone(),
            document,
        });
    }
    Ok(found)
}

/// The SBOMs `repository` already holds for `image`'s platform manifests that this
/// build would make byte for byte ([`super::is_reusable`]), by manifest digest: a
/// fresh runner rebuilding an unchanged image takes them instead of fetching and
/// reading its layers. A platform without one is simply absent.
pub async fn published_documents(
    image: &Image,
    repository: &oci_spec::distribution::Reference,
    options: super::SbomOptions,
    transport: &Transport,
) -> Result<std::collections::BTreeMap<hoist_layers::Digest, Vec<u8>>> {
    let repository = transport.repository(repository, Access::Pull).await?;
    let mut found = std::collections::BTreeMap::new();
    for platform in &image.platforms {
        let digest = &platform.descriptor.digest;
        for descriptor in list(&repository, digest, Some(SPDX_JSON))
            .await?
            .iter()
            .rev()
        {
            let (_, document) = fetch(&repository, descriptor).await?;
            if super::is_reusable(&document, platform, image.name.as_deref(), options) {
                found.insert(digest.clone(), document);
                break;
            }
        }
    }
    Ok(found)
}
