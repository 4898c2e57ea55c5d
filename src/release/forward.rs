//! Tags only move forward: before a release pushes `latest`, `1` or `1.2`, the
//! repository's tags are listed and each of those that exists is resolved to the
//! version it names now. Moving it to a lower version (a backport `1.1.5` after `1.2.0`
//! must not take `latest` or `1`) is refused unless forced: such a tag stays where it
//! is and the rest of the release goes on, so a backport publishes `1.1.5` and `1.1`
//! and leaves `1` and `latest` on `1.2.0`.
//!
//! The version a tag names is read from the image itself, in order: the
//! `org.opencontainers.image.version` annotation of the index or manifest (hoist puts
//! it there), the same label in the config of its first platform (other builders put
//! it there), else the highest SemVer tag of the repository naming the same digest.
//! A tag whose version cannot be told is moved, with a warning in the result.

use std::collections::BTreeMap;

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use semver::Version;
use serde_json::Value;

use super::Result;
use super::labels::VERSION;
use crate::oci::reference::{with_digest, with_tag};
use crate::registry::block_on;
use crate::registry::manifest::fetch_manifest;
use crate::registry::transport::{Access, Repository, Transport};

/// The largest config read to find a version label.
const CONFIG_LIMIT: usize = 4 << 20;

/// What a moving tag names before the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagState {
    /// The tag.
    pub tag: String,
    /// The digest it names, `None` when the tag does not exist yet.
    pub digest: Option<String>,
    /// The version of that image, when it can be told.
    pub version: Option<Version>,
}

/// The state of each of `moving` (tags that move between releases) in `target`'s
/// repository.
pub async fn tag_states(
    target: &Reference,
    moving: &[String],
    transport: &Transport,
) -> Result<Vec<TagState>> {
    let repository = transport.repository(target, Access::Pull).await?;
    // A repository nobody pushed to yet has no tags.
    let existing = repository.tags().await?;
    let mut states = Vec::new();
    for tag in moving {
        if !existing.contains(tag) {
            states.push(TagState {
                tag: tag.clone(),
                digest: None,
                version: None,
            });
            continue;
        }
        let (descriptor, bytes) = fetch_manifest(&repository, &with_tag(target, tag), None).await?;
        let digest = descriptor.digest.to_string();
        let mut version = version_in_document(&repository, target, &bytes).await;
        if version.is_none() {
            version = highest_semver_tag_at(&repository, &existing, &digest).await;
        }
        states.push(TagState {
            tag: tag.clone(),
            digest: Some(digest),
            version,
        });
    }
    Ok(states)
}

/// SemVer precedence (build metadata ignored, as SemVer says).
pub(crate) fn cmp_precedence(a: &Version, b: &Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

/// Blocking wrapper of [`tag_states`] for the synchronous CLI.
pub fn tag_states_blocking(
    target: &Reference,
    moving: &[String],
    transport: &Transport,
) -> Result<Vec<TagState>> {
    block_on(async { Ok(tag_states(target, moving, transport).await) })?
}

/// The version annotation of the document, else the label in its (first platform's)
/// config.
async fn version_in_document(
    repository: &Repository,
    target: &Reference,
    bytes: &[u8],
) -> Option<Version> {
    let document: Value = serde_json::from_slice(bytes).ok()?;
    if let Some(version) = annotation_version(&document) {
        return Some(version);
    }
    let manifest = match document.get("manifests").and_then(Value::as_array) {
        Some(children) => {
            let child = children.first()?.get("digest")?.as_str()?;
            let (_, bytes) = fetch_manifest(repository, &with_digest(target, child), Some(child))
                .await
                .ok()?;
            let manifest: Value = serde_json::from_slice(&bytes).ok()?;
            if let Some(version) = annotation_version(&manifest) {
                return Some(version);
            }
            manifest
        }
        None => document,
    };
    let config_digest: Digest = manifest.pointer("/config/digest")?.as_str()?.parse().ok()?;
    let config = repository
        .blob_bytes(&config_digest, CONFIG_LIMIT)
        .await
        .ok()?;
    let config: Value = serde_json::from_slice(&config).ok()?;
    let label = config.pointer("/config/Labels")?.get(VERSION)?.as_str()?;
    Version::parse(label.trim_start_matches('v')).ok()
}

fn annotation_version(document: &Value) -> Option<Version> {
    let text = document.get("annotations")?.get(VERSION)?.as_str()?;
    Version::parse(text.trim_start_matches('v')).ok()
}

/// The highest tag that parses as SemVer (`1.2.3`, `v1.2.3`) and names `digest`.
async fn highest_semver_tag_at(
    repository: &Repository,
    tags: &[String],
    digest: &str,
) -> Option<Version> {
    let mut versions: Vec<(Version, &String)> = tags
        .iter()
        .filter_map(|t| {
            Version::parse(t.trim_start_matches('v'))
                .ok()
                .map(|v| (v, t))
        })
        .collect();
    versions.sort_by(|a, b| cmp_precedence(&b.0, &a.0));
    for (version, tag) in versions {
        let named = repository.manifest_digest(tag).await.ok()??;
        if named.as_str() == digest {
            return Some(version);
        }
    }
    None
}

/// How a tag may move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    /// Names one version (`1.2.3`, `1.2.4-rc.1`) or one commit (`sha-…`, a full or
    /// 7-character sha, `{branch}-{sha7}`): it never moves to another image.
    Pinned,
    /// `latest`, `{major}`, `{major}.{minor}`: moves forward only.
    Rolling,
    /// Anything else (`edge`, `staging`): moves freely.
    Free,
}

/// The kind of `tag`, from its shape (the rules that made it are not needed: `hoist
/// build`, `push` and `tag` apply the same rule to tags given by hand).
pub fn tag_kind(tag: &str) -> TagKind {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| {
        (7..=40).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = bare.split('.');
    let rolling = tag == "latest"
        || match (parts.next(), parts.next(), parts.next()) {
            (Some(major), None, None) => numeric(major) && major.len() < 7,
            (Some(major), Some(minor), None) => numeric(major) && numeric(minor),
            _ => false,
        };
    if rolling {
        TagKind::Rolling
    } else if Version::parse(bare).is_ok()
        || tag.starts_with("sha-")
        || hex(tag)
        || tag.rsplit_once('-').is_some_and(|(_, sha)| hex(sha))
    {
        TagKind::Pinned
    } else {
        TagKind::Free
    }
}

/// How [`move_tags`] treats tags that would move backwards or to another image.
#[derive(Clone, Copy, Debug, Default)]
pub struct MovePolicy<'a> {
    /// The version of the image tagged, when it has one: rolling tags only move to a
    /// higher one, never to a pre-release.
    pub version: Option<&'a Version>,
    /// Where to read that version when it is needed and `version` is `None` (`hoist
    /// tag`: the source image, read only when a rolling tag would move).
    pub version_from: Option<&'a Reference>,
    /// `--force-tags`: move pinned and rolling tags anyway (said loudly).
    pub force: bool,
}

/// What [`move_tags`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Tags that name the image now (moved, or there already).
    pub tags: Vec<String>,
    /// Rolling tags left where they were, with the version they name (`None`: the
    /// image tagged is a pre-release or has no version to compare).
    pub kept: Vec<(String, Option<Version>)>,
}

/// Points `tags` of `target`'s repository at `image` (there by digest already), each
/// checked right before its PUT: a pinned tag that names another image is refused
/// (registries have no compare-and-set: the tag is read, then put, and read again to
/// catch a concurrent release that put it in between); a rolling tag moves only
/// forward ([`MovePolicy`]). Tags `seen` (from [`probe_tags`], after the build) to
/// name the image already are not read again. `note` hears each decision.
pub fn move_tags(
    image: &crate::oci::image::Image,
    target: &Reference,
    tags: &[String],
    seen: &[(String, Option<Digest>)],
    policy: &MovePolicy,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Moved> {
    let one = [TagMove {
        image,
        target,
        tags,
        seen,
        member: None,
    }];
    move_all_tags(&one, policy, transport, note)
        .pop()
        .expect("one result per move")
}

/// One image's tags in one repository, for [`move_all_tags`].
pub struct TagMove<'a> {
    /// The image, there by digest already.
    pub image: &'a crate::oci::image::Image,
    /// Its repository.
    pub target: &'a Reference,
    /// The tags to point at it.
    pub tags: &'a [String],
    /// What they named before the push ([`probe_tags`]).
    pub seen: &'a [(String, Option<Digest>)],
    /// The workspace member whose image it is: its notes start with its name.
    pub member: Option<&'a str>,
}

/// [`move_tags`] for many images and repositories at once (a release's): every pinned
/// tag of every move first, their PUTs in parallel, each read again; then, unless one
/// of those failed (a release that lost a race for its version moves nothing else),
/// every rolling and free tag in parallel. The transport bounds the requests in
/// flight. One result per move, in order; notes in the order of the moves.
pub fn move_all_tags(
    moves: &[TagMove<'_>],
    policy: &MovePolicy,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Vec<Result<Moved>> {
    let ran = block_on(async {
        let phase = |pinned: bool| {
            futures_util::future::join_all(moves.iter().flat_map(|m| {
                let digest = &m.image.descriptor.digest;
                m.tags
                    .iter()
                    .filter(move |t| (tag_kind(t) == TagKind::Pinned) == pinned)
                    .map(move |tag| async move {
                        let there = m
                            .seen
                            .iter()
                            .any(|(t, d)| t == tag && d.as_ref() == Some(digest));
                        let mut notes = Vec::new();
                        let kept = if there {
                            Ok(None)
                        } else {
                            let mut hear = |n: String| notes.push(n);
                            move_one(m.image, m.target, tag, policy, transport, &mut hear).await
                        };
                        (tag.clone(), kept, notes)
                    })
            }))
        };
        let mut outcomes = phase(true).await;
        // A release killed here has its version tags but not yet `latest` & co.
        super::journal::kill_point("pinned-tags-moved");
        if outcomes.iter().all(|(_, kept, _)| kept.is_ok()) {
            outcomes.extend(phase(false).await);
        }
        Ok::<_, crate::Error>(outcomes)
    });
    let outcomes = match ran {
        Ok(outcomes) => outcomes,
        Err(error) => {
            let message = error.to_string();
            return moves
                .iter()
                .map(|m| {
                    Err(crate::Error::Registry {
                        registry: m.target.registry().to_string(),
                        message: message.clone(),
                    }
                    .into())
                })
                .collect();
        }
    };
    gather(moves, outcomes, note)
}

/// One tag's move: the tag, `Some(the version it names)` when kept, and the notes.
type TagOutcome = (String, Result<Option<Option<Version>>>, Vec<String>);

/// The outcomes of [`move_all_tags`]' futures, back to their moves (they came in the
/// order of the moves, pinned tags first): a move fails with its first error.
fn gather(
    moves: &[TagMove<'_>],
    outcomes: Vec<TagOutcome>,
    note: &mut dyn FnMut(String),
) -> Vec<Result<Moved>> {
    let mut results: Vec<Result<Moved>> = moves.iter().map(|_| Ok(Moved::default())).collect();
    let mut outcomes = outcomes.into_iter();
    let pinned_counts: Vec<usize> = moves
        .iter()
        .map(|m| {
            m.tags
                .iter()
                .filter(|t| tag_kind(t) == TagKind::Pinned)
                .count()
        })
        .collect();
    let mut take = |i: usize, n: usize, results: &mut Vec<Result<Moved>>| {
        for (tag, kept, notes) in outcomes.by_ref().take(n) {
            for line in notes {
                note(match moves[i].member {
                    Some(member) => format!("{member}: {line}"),
                    None => line,
                });
            }
            let Ok(moved) = &mut results[i] else { continue };
            match kept {
                Ok(Some(version)) => moved.kept.push((tag, version)),
                Ok(None) => moved.tags.push(tag),
                Err(error) => results[i] = Err(error),
            }
        }
    };
    for (i, n) in pinned_counts.iter().enumerate() {
        take(i, *n, &mut results);
    }
    for (i, m) in moves.iter().enumerate() {
        take(i, m.tags.len() - pinned_counts[i], &mut results);
    }
    // Reported in the order asked.
    for (result, m) in results.iter_mut().zip(moves) {
        if let Ok(moved) = result {
            moved
                .tags
                .sort_by_key(|t| m.tags.iter().position(|asked| asked == t));
        }
    }
    results
}

fn kept_note(name: &str, tag: &str, kept: Option<&Version>, new: &Version) -> String {
    match kept {
        Some(current) if new.pre.is_empty() => format!(
            "kept tag {name}:{tag} on {current}: {new} is lower and tags only move forward (--force-tags moves it)"
        ),
        _ => format!(
            "kept tag {name}:{tag}{}: {new} is a pre-release, and a pre-release never takes a rolling tag (--force-tags moves it)",
            kept.map_or_else(String::new, |v| format!(" on {v}"))
        ),
    }
}

/// One tag: decided ([`decide`]), then put and, when pinned, read again. Answers
/// `Some(the version it names)` when kept.
async fn move_one(
    image: &crate::oci::image::Image,
    target: &Reference,
    tag: &str,
    policy: &MovePolicy<'_>,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Option<Option<Version>>> {
    let digest = &image.descriptor.digest;
    let repository = transport
        .repository(target, Access::Push { mount_from: &[] })
        .await?;
    match decide(&repository, target, tag, digest, policy, note).await? {
        Decision::There => Ok(None),
        Decision::Keep(version) => Ok(Some(version)),
        Decision::Put => {
            // Read just now and not the image: a PUT, no second HEAD. Its settle is
            // judged by the PUT's own round trip, not by its wait for a place among
            // the requests in flight (a release moving 30 pinned tags at once waited
            // seconds: each settle grew with the queue).
            let took = crate::registry::push::put_tag(&repository, image, tag).await?;
            recheck(&repository, target, tag, digest, policy, took).await?;
            Ok(None)
        }
    }
}

/// What the tag rules decide for one tag.
enum Decision {
    /// It names the image already.
    There,
    /// A rolling tag that stays (on the version it names, when told).
    Keep(Option<Version>),
    /// It may be put.
    Put,
}

/// Reads `tag` and decides: refused (an error) if pinned to another image; kept if
/// rolling and the move would go backwards or put a pre-release there; else put.
async fn decide(
    repository: &Repository,
    target: &Reference,
    tag: &str,
    digest: &Digest,
    policy: &MovePolicy<'_>,
    note: &mut dyn FnMut(String),
) -> Result<Decision> {
    let name = format!("{}/{}", target.registry(), target.repository());
    let Some(before) = tag_digest(repository, tag).await? else {
        return Ok(Decision::Put);
    };
    if &before == digest {
        return Ok(Decision::There);
    }
    let read;
    let version = match (policy.version, policy.version_from) {
        (None, Some(source)) if tag_kind(tag) == TagKind::Rolling && !policy.force => {
            let reader = transport_free_reader(repository, source);
            let (_, bytes) = fetch_manifest(&reader, source, None).await?;
            read = version_in_document(&reader, source, &bytes).await;
            read.as_ref()
        }
        (version, _) => version,
    };
    match (tag_kind(tag), policy.force, version) {
        (TagKind::Pinned, false, _) => {
            return Err(crate::Error::ImmutableTag {
                reference: with_tag(target, tag).whole(),
                existing: before,
                new: digest.clone(),
            }
            .into());
        }
        (TagKind::Pinned | TagKind::Rolling, true, _) => note(format!(
            "WARNING: --force-tags: moving {name}:{tag} from {before} to {digest}; whoever pulls {tag} gets another image now"
        )),
        (TagKind::Rolling, false, Some(new)) => {
            let current = version_at(repository, target, tag, &before).await?;
            let backwards = current
                .as_ref()
                .is_some_and(|c| cmp_precedence(c, new).is_gt());
            if !new.pre.is_empty() || backwards {
                note(kept_note(&name, tag, current.as_ref(), new));
                return Ok(Decision::Keep(current));
            }
            if current.is_none() {
                note(format!(
                    "warning: {name}:{tag} names an image whose version cannot be told; moving it to {new}"
                ));
            }
        }
        (TagKind::Rolling, false, None) => note(format!(
            "moved {name}:{tag} from {before} to {digest}: this image has no version ({VERSION}) to tell whether that is forward"
        )),
        (TagKind::Free, ..) => {}
    }
    Ok(Decision::Put)
}

/// A reader of `source`'s repository on `repository`'s registry (same registry only:
/// [`check_tags`] callers refuse others before).
fn transport_free_reader(repository: &Repository, source: &Reference) -> Repository {
    repository.sibling(source.repository())
}

/// [`move_tags`]' decisions without the puts, for commands whose library call puts
/// the tags itself (`hoist tag`, `hoist index create`): `tags` are the tags that may
/// point at `digest` (there already, or to be put), `kept` those that stay.
pub fn check_tags(
    target: &Reference,
    tags: &[String],
    digest: &Digest,
    policy: &MovePolicy,
    transport: &Transport,
    note: &mut dyn FnMut(String),
) -> Result<Moved> {
    block_on(async {
        let mut moved = Moved::default();
        let repository = transport
            .repository(target, Access::Push { mount_from: &[] })
            .await?;
        for tag in tags {
            match decide(&repository, target, tag, digest, policy, note).await {
                Ok(Decision::Keep(version)) => moved.kept.push((tag.clone(), version)),
                Ok(_) => moved.tags.push(tag.clone()),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(moved))
    })?
}

/// The digest `reference` names (its own digest, else what its tag names: a HEAD).
pub fn digest_of(reference: &Reference, transport: &Transport) -> Result<Digest> {
    if let Some(digest) = reference.digest().and_then(|d| d.parse().ok()) {
        return Ok(digest);
    }
    let tag = reference.tag().unwrap_or("latest").to_string();
    block_on(async {
        let repository = transport.repository(reference, Access::Pull).await?;
        repository
            .manifest_digest(&tag)
            .await?
            .ok_or_else(|| crate::Error::Reference {
                input: reference.whole(),
                reason: "no such tag in the registry".into(),
            })
    })
    .map_err(Into::into)
}

/// The digest `reference` (a tag or digest) names, and the version of that image
/// when it can be told (annotation, else config label).
pub fn version_of(
    reference: &Reference,
    transport: &Transport,
) -> Result<(Digest, Option<Version>)> {
    block_on(async {
        let repository = transport.repository(reference, Access::Pull).await?;
        let (descriptor, bytes) = fetch_manifest(&repository, reference, None).await?;
        let version = version_in_document(&repository, reference, &bytes).await;
        Ok((descriptor.digest, version))
    })
    .map_err(Into::into)
}

/// After a pinned tag's PUT: a concurrent release may have read the tag (absent)
/// before our put and put its own after it; the last put wins, and whoever reads
/// another image there now has lost. Such a competitor puts one round trip after its
/// read, so the tag is read again only after a few of our own put's round trips
/// ([`settle`]): both see the same last put, and exactly one goes on.
async fn recheck(
    repository: &Repository,
    target: &Reference,
    tag: &str,
    digest: &Digest,
    policy: &MovePolicy<'_>,
    put_took: std::time::Duration,
) -> Result<()> {
    if tag_kind(tag) != TagKind::Pinned || policy.force {
        return Ok(());
    }
    tokio::time::sleep(settle(put_took)).await;
    match repository.reread_tag(tag).await? {
        Some(there) if &there != digest => Err(crate::Error::ImmutableTag {
            reference: with_tag(target, tag).whole(),
            existing: there,
            new: digest.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// How long a pinned tag's put is left to settle before it is read again: four of
/// its own round trips, at least 200 ms, at most 2 s.
fn settle(put_took: std::time::Duration) -> std::time::Duration {
    (put_took * 4).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(2),
    )
}

/// The version of the image `tag` names (`digest`), as [`tag_states`] tells it.
async fn version_at(
    repository: &Repository,
    target: &Reference,
    tag: &str,
    digest: &Digest,
) -> Result<Option<Version>> {
    let (_, bytes) = fetch_manifest(repository, &with_tag(target, tag), None).await?;
    if let Some(version) = version_in_document(repository, target, &bytes).await {
        return Ok(Some(version));
    }
    let existing = repository.tags().await?;
    Ok(highest_semver_tag_at(repository, &existing, digest.as_str()).await)
}

/// The digest each of `tags` names in `target`'s repository (`None`: absent), read
/// with push access: a command's preflight, which also proves the registry is
/// reachable and takes the credentials, before anything is built or changed.
pub fn probe_tags(
    target: &Reference,
    tags: &[String],
    transport: &Transport,
) -> Result<Vec<(String, Option<Digest>)>> {
    block_on(probe(target, tags, transport)).map_err(Into::into)
}

/// [`probe_tags`] in a caller's runtime: every tag's `HEAD` at once.
pub async fn probe(
    target: &Reference,
    tags: &[String],
    transport: &Transport,
) -> crate::Result<Vec<(String, Option<Digest>)>> {
    let repository = transport
        .repository(target, Access::Push { mount_from: &[] })
        .await?;
    let repository = &repository;
    // The pinned tags first, each asked on its own. Unless one of them is there (a
    // re-release, whose repository lists its tags: a census would save nothing),
    // one listing of the repository's tags then answers for the tags that move, the
    // registry-cache lookup and later the referrers tags, where it shows them absent
    // (a first release, a new version), and tells a repository the registry does not
    // know (no existence checks in it).
    let pinned = |tag: &&String| tag_kind(tag) == TagKind::Pinned;
    let lookup = |tag: &String| {
        let tag = tag.clone();
        async move {
            let digest = tag_digest(repository, &tag).await?;
            Ok((tag, digest))
        }
    };
    // A failed lookup ends the probe here: the registry has answered (or not).
    let first: Vec<(String, Option<Digest>)> =
        futures_util::future::join_all(tags.iter().filter(pinned).map(lookup))
            .await
            .into_iter()
            .collect::<crate::Result<_>>()?;
    let rerelease = first.iter().any(|(_, digest)| digest.is_some());
    if !rerelease {
        repository.take_tag_census().await;
    }
    // A push without tags still proves reachability and credentials.
    if tags.is_empty() {
        tag_digest(repository, "latest").await?;
        return Ok(Vec::new());
    }
    let then = futures_util::future::join_all(tags.iter().filter(|t| !pinned(t)).map(lookup)).await;
    let found: BTreeMap<String, Option<Digest>> = first
        .into_iter()
        .map(Ok)
        .chain(then)
        .collect::<crate::Result<_>>()?;
    Ok(tags
        .iter()
        .map(|tag| (tag.clone(), found[tag].clone()))
        .collect())
}

/// What `tag` names in `repository` (`None`: nothing): a pinned tag is always asked
/// of the registry; a tag that moves may be answered by the repository's census.
async fn tag_digest(repository: &Repository, tag: &str) -> crate::Result<Option<Digest>> {
    if tag_kind(tag) == TagKind::Pinned {
        repository.manifest_digest(tag).await
    } else {
        repository.moving_tag_digest(tag).await
    }
}

/// Refuses a push of `digest` to `target` when one of the pinned tags among
/// `existing` (from [`probe_tags`]) names another image: checked before any upload.
pub fn refuse_pinned_elsewhere(
    target: &Reference,
    existing: &[(String, Option<Digest>)],
    digest: &Digest,
) -> crate::Result<()> {
    let elsewhere = existing.iter().find_map(|(tag, there)| match there {
        Some(there) if tag_kind(tag) == TagKind::Pinned && there != digest => Some((tag, there)),
        _ => None,
    });
    match elsewhere {
        Some((tag, there)) => Err(crate::Error::ImmutableTag {
            reference: with_tag(target, tag).whole(),
            existing: there.clone(),
            new: digest.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_pinned_rolling_or_free_by_their_shape() {
        for tag in [
            "1.2.3",
            "v1.2.3",
            "1.2.4-rc.1",
            "0.1.0+b2",
            "sha-0123abc",
            "main-0123abc",
            "0123abcd",
        ] {
            assert_eq!(tag_kind(tag), TagKind::Pinned, "{tag}");
        }
        for tag in ["latest", "1", "0", "1.2", "v2", "10.20"] {
            assert_eq!(tag_kind(tag), TagKind::Rolling, "{tag}");
        }
        for tag in ["edge", "staging", "main", "1.x", "feature-login"] {
            assert_eq!(tag_kind(tag), TagKind::Free, "{tag}");
        }
    }

    #[test]
    fn precedence_ignores_build_metadata_and_puts_releases_after_pre_releases() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(cmp_precedence(&v("1.1.5"), &v("1.1.5-rc.1")).is_gt());
        assert!(cmp_precedence(&v("1.1.5+b2"), &v("1.1.5")).is_eq());
        assert!(cmp_precedence(&v("1.2.0"), &v("1.1.5")).is_gt());
    }
}
