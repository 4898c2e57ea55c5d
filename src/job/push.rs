//! The job of `hoist push`: an image copied as it is (nothing built) through the
//! stages after the build: preflight (each destination reached with the credentials,
//! its tags read; a tag naming a version or a commit that names another image is
//! refused before any upload) → publish (by digest) → attach (signatures) → tags
//! (the rules of a release, against the version the image says it is).

use hoist_layers::Digest;
use semver::Version;

use super::{Result, image_version, step};
use crate::oci::image::Image;
use crate::pipeline::PushTarget;
use crate::registry::block_on;
use crate::registry::push::{PushReport, push};
use crate::registry::transport::Transport;
use crate::release::forward::{MovePolicy, move_tags, probe_tags, refuse_pinned_elsewhere};
use crate::sign::PrivateKey;
use crate::sign::cosign::SignReport;

/// One destination's outcome.
#[derive(Debug)]
pub struct Copied {
    /// The push (its `tags` are those that name the image now).
    pub report: PushReport,
    /// The signatures, with a signing key.
    pub signatures: Option<SignReport>,
    /// Rolling tags left where they were, with the version they name.
    pub kept: Vec<(String, Option<Version>)>,
}

/// Pushes `image` to every destination; `force` moves tags anyway (said loudly).
pub fn push_copy(
    image: &Image,
    destinations: &[PushTarget],
    sign_key: Option<&PrivateKey>,
    force: bool,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Vec<Copied>> {
    let digest = &image.descriptor.digest;
    let mut seen: Vec<Vec<(String, Option<Digest>)>> = Vec::new();
    for destination in destinations {
        let existing =
            probe_tags(&destination.reference, &destination.tags, transport).map_err(|e| {
                step(
                    format!(
                        "checking {} before the push: nothing was pushed",
                        destination.reference.whole()
                    ),
                    e,
                )
            })?;
        if !force {
            refuse_pinned_elsewhere(&destination.reference, &existing, digest)?;
        }
        seen.push(existing);
    }
    let version = image_version(image);
    let policy = MovePolicy {
        version: version.as_ref(),
        force,
        ..MovePolicy::default()
    };
    let mut copied = Vec::new();
    for (destination, seen) in destinations.iter().zip(&seen) {
        let mut report = block_on(push(image, &destination.reference, &[], transport))?;
        let signatures = match sign_key {
            Some(key) => Some(sign(key, &report.reference, transport)?),
            None => None,
        };
        let moved = move_tags(
            image,
            &destination.reference,
            &destination.tags,
            seen,
            &policy,
            transport,
            note,
        )?;
        report.tags = moved.tags;
        copied.push(Copied {
            report,
            signatures,
            kept: moved.kept,
        });
    }
    Ok(copied)
}

/// Signs what `pushed` (`HOST/REPO@DIGEST`) names, before any tag moves.
fn sign(key: &PrivateKey, pushed: &str, transport: &Transport) -> Result<SignReport> {
    let target = crate::oci::reference::parse(pushed)?;
    Ok(super::run_signing(crate::sign::sign_pushed(
        transport,
        &target,
        key,
        &std::collections::BTreeMap::new(),
    ))??)
}
