//! The jobs of `hoist tag` and `hoist index create`: nothing is built or uploaded by
//! hand, but the tags they set follow the same rules as every other command's
//! ([`crate::release::forward`]), decided right before the one library call that puts
//! them.

use oci_spec::distribution::Reference;

use super::Result;
use crate::registry::block_on;
use crate::registry::index::{IndexReport, create_index};
use crate::registry::tag::{TagReport, retag};
use crate::registry::transport::Transport;
use crate::release::ReleaseError;
use crate::release::forward::{MovePolicy, check_tags, digest_of, version_of};

/// Points `destination`'s `tag` at what `source` names. A rolling tag that would move
/// backwards (or onto a pre-release) is an error here: the command asks for that one
/// tag. `force` moves it anyway.
pub fn retag_checked(
    source: &Reference,
    destination: &Reference,
    tag: &str,
    force: bool,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<TagReport> {
    // Across registries retag refuses before any request.
    if source.registry() == destination.registry() {
        let digest = digest_of(source, transport)?;
        let policy = MovePolicy {
            version_from: Some(source),
            force,
            ..MovePolicy::default()
        };
        let checked = check_tags(
            destination,
            &[tag.to_string()],
            &digest,
            &policy,
            transport,
            note,
        )?;
        if !checked.kept.is_empty() {
            return Err(ReleaseError::Refused(format!(
                "{}/{}:{tag} was left where it is: tags only move forward (--force-tags moves it)",
                destination.registry(),
                destination.repository()
            ))
            .into());
        }
    }
    Ok(block_on(retag(source, destination, tag, transport))?)
}

/// Makes the index over `sources` in `target`'s repository by digest, then puts the
/// `tags` the rules allow (against the version its first manifest says); kept rolling
/// tags are left out (and `note` hears why).
pub fn create_index_checked(
    target: &Reference,
    tags: &[String],
    sources: &[Reference],
    force: bool,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<IndexReport> {
    let untagged = block_on(create_index(target, &[], sources, transport))?;
    let digest: hoist_layers::Digest =
        untagged
            .digest
            .parse()
            .map_err(|e| crate::Error::Reference {
                input: untagged.digest.clone(),
                reason: format!("{e}"),
            })?;
    let pinned = crate::oci::reference::parse(&format!(
        "{}/{}@{digest}",
        target.registry(),
        target.repository()
    ))?;
    let (_, version) = version_of(&pinned, transport)?;
    let policy = MovePolicy {
        version: version.as_ref(),
        force,
        ..MovePolicy::default()
    };
    let checked = check_tags(target, tags, &digest, &policy, transport, note)?;
    let mut report = block_on(create_index(target, &checked.tags, sources, transport))?;
    report.created = untagged.created;
    Ok(report)
}
