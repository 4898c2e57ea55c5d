//! A release split across runners: each runner pushes some members by digest
//! (`hoist release V --no-git -p A --by-digest --metadata-file r1.json`: images, SBOMs
//! and signatures, no tag), and a final job (`hoist release V --no-git --from r1.json
//! --from r2.json …`) reads those records, checks that every member of the workspace
//! is there — built from this checkout's commit, at version V, in each of its
//! repositories — and only then moves every tag by the release rules. The final job
//! builds and uploads nothing: it reads documents and puts tags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hoist_layers::{BlobStore, Digest};
use oci_spec::distribution::Reference;
use semver::Version;
use serde::Deserialize;

use super::Result;
use super::forward::{MovePolicy, Moved, TagMove, move_all_tags, probe, refuse_pinned_elsewhere};
use super::rollout::{ImageTargets, ReleasedImage, ReleasedPush, repository_name};
use super::steps::{refused, step};
use crate::oci::image::Image;
use crate::registry::push::PushReport;
use crate::registry::transport::Transport;

/// A record is a `--json` document of a few members: 16 MiB is far beyond any.
const MAX_RECORD: u64 = 16 << 20;

/// One runner's `--by-digest --metadata-file` document (the fields read).
#[derive(Debug, Deserialize)]
pub struct Record {
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The version released.
    pub version: String,
    /// Whether the runner pushed by digest (no tag).
    #[serde(default)]
    pub by_digest: bool,
    /// The commit the runner built from.
    #[serde(default)]
    pub commit: Option<String>,
    /// The hoist version that built them (recorded in each image, so part of its
    /// digest).
    #[serde(default)]
    pub hoist: Option<String>,
    /// Its members.
    pub images: Vec<RecordImage>,
}

/// One member a runner pushed.
#[derive(Debug, Deserialize)]
pub struct RecordImage {
    /// The member's name.
    pub name: String,
    /// Its index (or manifest) digest.
    pub digest: String,
    /// Where it went.
    pub pushes: Vec<RecordPush>,
}

/// One repository a member went to.
#[derive(Debug, Deserialize)]
pub struct RecordPush {
    /// `HOST/REPO`.
    pub repository: String,
}

/// Reads the `--from` files, each bounded, each a record or an error naming it.
pub fn read_records(paths: &[PathBuf]) -> Result<Vec<Record>> {
    paths
        .iter()
        .map(|path| {
            let bytes = crate::fsutil::read_bounded(path, MAX_RECORD, "a --from record")?;
            let mut record: Record = serde_json::from_slice(&bytes).map_err(|e| {
                refused(format!(
                    "--from {}: not the --metadata-file of `hoist release --by-digest`: {e}",
                    path.display()
                ))
            })?;
            record.path.clone_from(path);
            Ok(record)
        })
        .collect()
}

/// What the final job checks the records against.
pub struct Parts<'a> {
    /// The version released.
    pub version: &'a Version,
    /// This checkout's commit (`None` outside git).
    pub commit: Option<&'a str>,
    /// Every member of the workspace and its repositories.
    pub targets: &'a [ImageTargets],
}

/// One member as the records have it.
#[derive(Debug)]
pub struct Found {
    /// Its digest.
    pub digest: Digest,
    /// The repositories it was pushed to.
    pub repositories: Vec<String>,
    /// The record naming it.
    pub path: PathBuf,
}

impl Parts<'_> {
    /// Every member, found in the records: the same version, the same commit (this
    /// checkout's), each member once (or at one digest), in every repository it goes
    /// to. Any member missing is named, before anything is read from a registry.
    pub fn check(&self, records: &[Record]) -> Result<BTreeMap<String, Found>> {
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        let mut commit: Option<(&str, &Path)> = None;
        for record in records {
            self.check_record(record, &mut commit)?;
            for image in &record.images {
                let digest: Digest = image.digest.parse().map_err(|e| {
                    refused(format!(
                        "--from {}: {} has digest `{}`: {e}",
                        record.path.display(),
                        image.name,
                        image.digest
                    ))
                })?;
                if let Some(earlier) = found.get(&image.name)
                    && earlier.digest != digest
                {
                    return Err(refused(format!(
                        "{} is {} in {} but {digest} in {}: one release has one image per member",
                        image.name,
                        earlier.digest,
                        earlier.path.display(),
                        record.path.display()
                    )));
                }
                found.insert(
                    image.name.clone(),
                    Found {
                        digest,
                        repositories: image.pushes.iter().map(|p| p.repository.clone()).collect(),
                        path: record.path.clone(),
                    },
                );
            }
        }
        self.check_members(&found)?;
        Ok(found)
    }

    fn check_record<'r>(
        &self,
        record: &'r Record,
        commit: &mut Option<(&'r str, &'r Path)>,
    ) -> Result<()> {
        let path = record.path.display();
        if !record.by_digest {
            return Err(refused(format!(
                "--from {path}: not a --by-digest record (that release moved its own tags)"
            )));
        }
        if record.version != self.version.to_string() {
            return Err(refused(format!(
                "--from {path} released v{}, not v{}",
                record.version, self.version
            )));
        }
        if let Some(hoist) = &record.hoist
            && hoist != env!("CARGO_PKG_VERSION")
        {
            return Err(refused(format!(
                "--from {path} was made by hoist {hoist}, this is hoist {}: the hoist version is recorded in every image, so the parts would not be the one-runner release; use one hoist version on every runner",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let Some(theirs) = record.commit.as_deref() else {
            return Ok(());
        };
        if let Some(ours) = self.commit
            && ours != theirs
        {
            return Err(refused(format!(
                "--from {path} was built from commit {theirs}, but this checkout is at {ours}: every part of a release is built from one commit"
            )));
        }
        match commit {
            Some((other, other_path)) if *other != theirs => Err(refused(format!(
                "--from {path} was built from commit {theirs}, but {} from {other}: every part of a release is built from one commit",
                other_path.display()
            ))),
            _ => {
                *commit = Some((theirs, &record.path));
                Ok(())
            }
        }
    }

    fn check_members(&self, found: &BTreeMap<String, Found>) -> Result<()> {
        let missing: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| !found.contains_key(&t.member))
            .map(|t| t.member.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(refused(format!(
                "v{}: no --from file pushed {}: every member of the workspace must be released; no tag was moved",
                self.version,
                missing.join(", ")
            )));
        }
        for target in self.targets {
            let found = &found[&target.member];
            for repository in &target.repositories {
                let name = repository_name(repository);
                if !found.repositories.contains(&name) {
                    return Err(refused(format!(
                        "{}: {} pushed it to {}, not to {name}; no tag was moved",
                        target.member,
                        found.path.display(),
                        found.repositories.join(", ")
                    )));
                }
            }
        }
        let unknown: Vec<&String> = found
            .keys()
            .filter(|name| !self.targets.iter().any(|t| &&t.member == name))
            .collect();
        if let Some(name) = unknown.first() {
            return Err(refused(format!(
                "{} ({}) is no member of this workspace; no tag was moved",
                name,
                found[*name].path.display()
            )));
        }
        Ok(())
    }
}

/// A member's image in one of its repositories, with what the release's tags name
/// there now.
struct Pushed {
    image: Image,
    seen: Vec<(String, Option<Digest>)>,
}

/// Reads every member's image from each of its repositories (its documents, by
/// digest: proof it is there) and what the release's tags name there, all at once
/// (the transport bounds the requests in flight); refuses the release if a pinned tag
/// names another image; then moves every tag of every member by the release rules,
/// together, as a one-runner release does ([`move_all_tags`]). Nothing is uploaded.
pub fn tag_all(
    parts: &Parts,
    found: &BTreeMap<String, Found>,
    (release_tags, force): (&[String], bool),
    (store, transport): (&BlobStore, &Transport),
    note: &mut dyn FnMut(String),
) -> Result<Vec<ReleasedImage>> {
    let version = parts.version;
    let pairs: Vec<(&ImageTargets, &Reference)> = parts
        .targets
        .iter()
        .flat_map(|target| target.repositories.iter().map(move |r| (target, r)))
        .collect();
    let read = crate::registry::block_on(async {
        Ok(
            futures_util::future::join_all(pairs.iter().map(|(target, repository)| {
                let found = &found[&target.member];
                futures_util::future::join(
                    read_pushed(repository, found, transport, store),
                    probe(repository, release_tags, transport),
                )
            }))
            .await,
        )
    })?;
    let mut pushed = Vec::new();
    for ((target, repository), (image, seen)) in pairs.iter().zip(read) {
        let found = &found[&target.member];
        let image = image.map_err(|e| {
            step(
                format!(
                    "{}: {}@{} (from {}) is not in the registry; no tag was moved",
                    target.member,
                    repository_name(repository),
                    found.digest,
                    found.path.display()
                ),
                e,
            )
        })?;
        let seen = seen?;
        if !force {
            refuse_pinned_elsewhere(repository, &seen, &found.digest)
                .map_err(|e| step(format!("v{version} was not released: no tag was moved"), e))?;
        }
        pushed.push(Pushed { image, seen });
    }
    note(format!(
        "every member of v{version} is up in every repository: moving the tags"
    ));
    let policy = MovePolicy {
        version: Some(version),
        force,
        ..MovePolicy::default()
    };
    let moves: Vec<TagMove> = pairs
        .iter()
        .zip(&pushed)
        .map(|((target, repository), pushed)| TagMove {
            image: &pushed.image,
            target: repository,
            tags: release_tags,
            seen: &pushed.seen,
            // Every line of the final job names the member it is about.
            member: Some(target.member.as_str()),
        })
        .collect();
    let mut moved = move_all_tags(&moves, &policy, transport, note).into_iter();
    let mut pushed = pushed.iter();
    let mut released = Vec::new();
    for target in parts.targets {
        let mut pushes = Vec::new();
        for repository in &target.repositories {
            let outcome = moved.next().expect("one result per move").map_err(|e| {
                step(
                    format!(
                        "tagging v{version} of {} in {} failed",
                        target.member,
                        repository_name(repository)
                    ),
                    e,
                )
            })?;
            let image = &pushed.next().expect("one image per move").image;
            pushes.push(released_push(image, repository, outcome));
        }
        released.push(ReleasedImage {
            name: target.member.clone(),
            digest: found[&target.member].digest.to_string(),
            pushes,
        });
    }
    Ok(released)
}

/// What the release did in one repository of a member: its tags moved (or kept).
fn released_push(image: &Image, repository: &Reference, moved: Moved) -> ReleasedPush {
    let name = repository_name(repository);
    let digest = image.descriptor.digest.to_string();
    ReleasedPush {
        report: PushReport {
            reference: format!("{name}@{digest}"),
            digest,
            tags: moved.tags,
            platforms: image.platform_list(),
            ..PushReport::default()
        },
        repository: name,
        kept: moved
            .kept
            .into_iter()
            .filter_map(|(tag, version)| Some((tag, version?)))
            .collect(),
    }
}

/// The image a record names, read from `repository` by digest (documents only).
async fn read_pushed(
    repository: &Reference,
    found: &Found,
    transport: &Transport,
    store: &BlobStore,
) -> crate::Result<Image> {
    let pinned =
        crate::oci::reference::parse(&format!("{}@{}", repository_name(repository), found.digest))?;
    crate::registry::pull::load_base(&pinned, None, store, transport, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(member: &str) -> ImageTargets {
        ImageTargets {
            member: member.into(),
            repositories: vec![
                crate::oci::reference::parse(&format!("registry.example/acme/{member}")).unwrap(),
            ],
        }
    }

    fn record(path: &str, commit: &str, members: &[&str]) -> Record {
        let images = members
            .iter()
            .map(|m| RecordImage {
                name: (*m).into(),
                digest: Digest::sha256_of(m.as_bytes()).to_string(),
                pushes: vec![RecordPush {
                    repository: format!("registry.example/acme/{m}"),
                }],
            })
            .collect();
        Record {
            path: path.into(),
            version: "1.2.0".into(),
            by_digest: true,
            commit: Some(commit.into()),
            hoist: Some(env!("CARGO_PKG_VERSION").into()),
            images,
        }
    }

    fn check(records: &[Record], commit: Option<&str>) -> Result<BTreeMap<String, Found>> {
        let version = Version::new(1, 2, 0);
        let targets = [target("api"), target("web"), target("worker")];
        Parts {
            version: &version,
            commit,
            targets: &targets,
        }
        .check(records)
    }

    #[test]
    fn every_member_found_once_from_one_commit() {
        let records = [
            record("r1.json", "abc", &["api", "web"]),
            record("r2.json", "abc", &["worker"]),
        ];
        let found = check(&records, Some("abc")).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found["worker"].path, PathBuf::from("r2.json"));
    }

    #[test]
    fn a_missing_member_is_named() {
        let records = [record("r1.json", "abc", &["api"])];
        let err = check(&records, None).unwrap_err().to_string();
        assert!(err.contains("no --from file pushed web, worker"), "{err}");
    }

    #[test]
    fn parts_of_other_commits_versions_or_digests_are_refused() {
        let records = [
            record("r1.json", "abc", &["api", "web"]),
            record("r2.json", "def", &["worker"]),
        ];
        let err = check(&records, None).unwrap_err().to_string();
        assert!(
            err.contains("r2.json was built from commit def, but r1.json from abc"),
            "{err}"
        );
        let err = check(&records[..1], Some("fff")).unwrap_err().to_string();
        assert!(err.contains("this checkout is at fff"), "{err}");

        let mut other = record("r2.json", "abc", &["worker", "api"]);
        other.images[1].digest = Digest::sha256_of(b"another").to_string();
        let err = check(&[record("r1.json", "abc", &["api", "web"]), other], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("one release has one image per member"),
            "{err}"
        );

        let mut old = record("r1.json", "abc", &["api", "web", "worker"]);
        old.version = "1.1.0".into();
        let err = check(&[old], None).unwrap_err().to_string();
        assert!(err.contains("released v1.1.0, not v1.2.0"), "{err}");

        let mut older = record("r1.json", "abc", &["api", "web", "worker"]);
        older.hoist = Some("0.0.1".into());
        let err = check(&[older], None).unwrap_err().to_string();
        assert!(err.contains("made by hoist 0.0.1"), "{err}");

        let mut tagged = record("r1.json", "abc", &["api", "web", "worker"]);
        tagged.by_digest = false;
        let err = check(&[tagged], None).unwrap_err().to_string();
        assert!(err.contains("not a --by-digest record"), "{err}");
    }

    #[test]
    fn a_member_not_pushed_to_one_of_its_repositories_or_unknown_is_refused() {
        let mut elsewhere = record("r1.json", "abc", &["api", "web", "worker"]);
        elsewhere.images[0].pushes[0].repository = "mirror.example/acme/api".into();
        let err = check(&[elsewhere], None).unwrap_err().to_string();
        assert!(err.contains("not to registry.example/acme/api"), "{err}");

        let stranger = record("r1.json", "abc", &["api", "web", "worker", "legacy"]);
        let err = check(&[stranger], None).unwrap_err().to_string();
        assert!(err.contains("legacy (r1.json) is no member"), "{err}");
    }
}
