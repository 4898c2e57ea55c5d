//! SLSA v1 provenance (slsa.dev/spec/v1.0/provenance) of a build, as an in-toto
//! Statement v1 in a DSSE envelope signed with the release key, attached to the
//! image's index as a referrer (`artifactType: application/vnd.in-toto+json`).
//!
//! The statement says what was built (subjects: the index and each platform
//! manifest) from what: `externalParameters` name the hoist.toml (path from the top
//! of its git checkout, and digest) and the git source (repository and revision);
//! `resolvedDependencies` the base image by digest, the git commit and each layer's
//! source directory (by the layer's uncompressed digest). `runDetails.builder.id`
//! names hoist and its version. Nothing in it depends on the clock or the checkout's
//! path, and it is written as canonical JSON: two builds of the same inputs give the
//! same statement bytes (and, ECDSA per RFC 6979 being deterministic, the same
//! envelope), so re-running a release attaches nothing new.

use std::collections::BTreeMap;

use hoist_layers::Digest;
use oci_spec::distribution::Reference;
use serde::Serialize;
use serde_json::{Value, json};

use super::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, open, seal};
use super::key::{PrivateKey, PublicKey};
use super::{SignError, in_registry};
use crate::oci::artifact::Artifact;
use crate::oci::canonical::to_canonical;
use crate::oci::model::Descriptor;
use crate::registry::referrers::{Recorded, attach_referrer, fetch, list};
use crate::registry::transport::{Access, Transport};

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// The media type of the layer holding the envelope.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Annotation on the referrer naming the predicate type (as cosign and oras tools
/// annotate attestations), so a reader picks provenance without fetching it.
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";

/// hoist's build type: what `externalParameters` and `resolvedDependencies` mean.
pub fn build_type() -> String {
    format!("{}/build-types/hoist/v1", env!("CARGO_PKG_REPOSITORY"))
}

/// `runDetails.builder.id`: hoist and its version.
pub fn builder_id() -> String {
    format!(
        "{}@v{}",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )
}

/// What a build was made of and what it made: the statement's content.
#[derive(Clone, Debug)]
pub struct BuildFacts {
    /// `REGISTRY/REPO` the image was pushed to (the subjects' name).
    pub repository: String,
    /// The index (or single manifest) digest.
    pub index: Digest,
    /// `(platform, manifest digest)` of each platform image.
    pub manifests: Vec<(String, Digest)>,
    /// The hoist.toml: path from the top of its checkout (or its file name), digest.
    pub config: (String, Digest),
    /// The git checkout: repository URL (when it has a remote) and HEAD commit.
    pub git: Option<GitSource>,
    /// The base image: its name and digest (none for `scratch`).
    pub base: Option<(String, String)>,
    /// Each new layer: its name (`layer[0]`…), source path, uncompressed digest.
    pub sources: Vec<LayerSource>,
}

/// The git source of a build.
#[derive(Clone, Debug, Default)]
pub struct GitSource {
    /// `https://…` of the `origin` remote, when there is one.
    pub url: Option<String>,
    /// The HEAD commit (full hex).
    pub revision: String,
}

/// One layer's source: a directory, or a Python layer's lock.
#[derive(Clone, Debug)]
pub struct LayerSource {
    /// `layer[N]` (its `[[layer]]` number, from 0), `layer[N].python.lock`.
    pub name: String,
    /// The directory or file, from the top of the checkout (or as configured).
    pub path: String,
    /// The layer's uncompressed digest (what the directory became); a lock's sha256.
    pub diff_id: Digest,
}

fn digest_set(digest: &str) -> Value {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    json!({ algorithm: hex })
}

/// The in-toto statement of `facts`, as canonical JSON bytes.
pub fn statement(facts: &BuildFacts) -> Vec<u8> {
    let mut subjects = vec![json!({
        "name": facts.repository,
        "digest": digest_set(facts.index.as_str()),
    })];
    for (platform, digest) in &facts.manifests {
        if digest != &facts.index {
            subjects.push(json!({
                "name": facts.repository,
                "digest": digest_set(digest.as_str()),
                "annotations": { "platform": platform },
            }));
        }
    }
    let mut external = json!({
        "config": { "path": facts.config.0, "digest": digest_set(facts.config.1.as_str()) },
    });
    let mut dependencies = Vec::new();
    if let Some((name, digest)) = &facts.base {
        dependencies.push(json!({ "name": "base", "uri": name, "digest": digest_set(digest) }));
    }
    if let Some(git) = &facts.git {
        let mut source = json!({ "revision": git.revision });
        let mut dependency = json!({ "name": "source", "digest": { "gitCommit": git.revision } });
        if let Some(url) = &git.url {
            source["repository"] = json!(url);
            dependency["uri"] = json!(format!("git+{url}@{}", git.revision));
        }
        external["source"] = source;
        dependencies.push(dependency);
    }
    for layer in &facts.sources {
        dependencies.push(json!({
            "name": layer.name,
            "uri": format!("file:{}", layer.path),
            "digest": digest_set(layer.diff_id.as_str()),
        }));
    }
    let document = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type(),
                "externalParameters": external,
                "internalParameters": {},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": { "id": builder_id(), "version": { "hoist": env!("CARGO_PKG_VERSION") } },
                "metadata": {},
            },
        },
    });
    to_canonical(&document)
        .expect("a statement serialises")
        .bytes
}

/// The statement of `facts` in a DSSE envelope signed with `key`, as an artifact.
pub fn provenance_artifact(facts: &BuildFacts, key: &PrivateKey) -> Artifact {
    let envelope = seal(IN_TOTO_PAYLOAD_TYPE, &statement(facts), key);
    Artifact {
        artifact_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        media_type: DSSE_MEDIA_TYPE.to_string(),
        document: serde_json::to_vec(&envelope).expect("an envelope serialises"),
        annotations: BTreeMap::from([(
            PREDICATE_ANNOTATION.to_string(),
            SLSA_PROVENANCE.to_string(),
        )]),
    }
}

/// Attaches the signed provenance of `facts` to the index `subject` of `reference`'s
/// repository (the library entry point for pushes and the release workflow).
pub async fn attach_provenance(
    transport: &Transport,
    reference: &Reference,
    subject: &Descriptor,
    facts: &BuildFacts,
    key: &PrivateKey,
) -> Result<(Descriptor, Recorded), SignError> {
    let doing = || {
        format!(
            "attaching the provenance of {}/{}@{}",
            reference.registry(),
            reference.repository(),
            subject.digest
        )
    };
    let repository = crate::registry::push::artifact_repository(reference, transport)
        .await
        .map_err(in_registry(doing()))?;
    let artifact = provenance_artifact(facts, key);
    let referrer = artifact.manifest(subject);
    let recorded = attach_referrer(&repository, &referrer, transport)
        .await
        .map_err(in_registry(doing()))?;
    Ok((referrer.descriptor, recorded))
}

/// What a verifier expects the provenance to say.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// Digests that must all be subjects (index and platform manifests).
    pub subjects: Vec<Digest>,
    /// The base digest the rebuild used, when it used one.
    pub base_digest: Option<String>,
    /// The hoist.toml rebuilt from: its path (as named to the verifier) and the sha256
    /// of the bytes the rebuild parsed.
    pub config: Option<(String, Digest)>,
    /// Each Python layer's lock: its name in the statement (`layer[N].python.lock`)
    /// and the sha256 of the bytes the rebuild installed.
    pub locks: Vec<(String, Digest)>,
    /// The checkout's HEAD, when it is a git checkout.
    pub revision: Option<String>,
}

/// A provenance statement that verified.
#[derive(Debug, Serialize)]
pub struct VerifiedProvenance {
    /// The referrer's manifest digest.
    pub attestation: Digest,
    /// `runDetails.builder.id`.
    pub builder: String,
    /// The git revision it names, if any.
    pub revision: Option<String>,
    /// The base digest it names, if any.
    pub base_digest: Option<String>,
}

/// Why `statement` does not match `expected`, or `None` when it does.
pub fn mismatch(statement: &Value, expected: &Expected) -> Option<String> {
    if statement["_type"] != STATEMENT_TYPE {
        return Some(format!(
            "not an in-toto Statement v1 (_type {})",
            statement["_type"]
        ));
    }
    if statement["predicateType"] != SLSA_PROVENANCE {
        return Some(format!(
            "predicate type {}, not {SLSA_PROVENANCE}",
            statement["predicateType"]
        ));
    }
    let subjects: Vec<String> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            s["digest"]["sha256"]
                .as_str()
                .map(|hex| format!("sha256:{hex}"))
        })
        .collect();
    if let Some(missing) = expected
        .subjects
        .iter()
        .find(|d| !subjects.contains(&d.to_string()))
    {
        return Some(format!("{missing} is not among its subjects"));
    }
    let definition = &statement["predicate"]["buildDefinition"];
    let dependency = |name: &str| {
        definition["resolvedDependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["name"] == name)
    };
    let base = dependency("base")
        .and_then(|d| d["digest"]["sha256"].as_str())
        .map(|hex| format!("sha256:{hex}"));
    if base != expected.base_digest {
        return Some(format!(
            "it names base {}, the rebuild used {}",
            base.as_deref().unwrap_or("none"),
            expected.base_digest.as_deref().unwrap_or("none")
        ));
    }
    // Each input the rebuild read, as the statement names it: both digests said.
    let config = expected.config.as_ref().map(|(path, digest)| {
        let named = &definition["externalParameters"]["config"]["digest"];
        (format!("config {path}"), named, digest)
    });
    let locks = expected.locks.iter().map(|(name, digest)| {
        let named = dependency(name).map_or(&Value::Null, |d| &d["digest"]);
        (name.clone(), named, digest)
    });
    for (input, named, read) in config.into_iter().chain(locks) {
        let named = named["sha256"].as_str();
        if named != Some(read.hex()) {
            return Some(format!(
                "{input}: it names {}, the rebuild read {read}",
                named.map_or_else(|| "none".to_string(), |hex| format!("sha256:{hex}"))
            ));
        }
    }
    let revision = definition["externalParameters"]["source"]["revision"].as_str();
    if let (Some(named), Some(head)) = (revision, &expected.revision)
        && named != head
    {
        return Some(format!(
            "it names revision {named}, the checkout is at {head}"
        ));
    }
    None
}

/// Finds a provenance attestation of `index` in `reference`'s repository signed by
/// `key` and matching `expected`: `None` when the index has none; the error names the
/// index and why each candidate was refused.
pub async fn verify_provenance(
    transport: &Transport,
    reference: &Reference,
    index: &Digest,
    key: &PublicKey,
    expected: &Expected,
) -> Result<Option<VerifiedProvenance>, SignError> {
    let doing = || {
        format!(
            "checking the provenance of {}/{}@{index}",
            reference.registry(),
            reference.repository()
        )
    };
    let repository = transport
        .repository(reference, Access::Pull)
        .await
        .map_err(in_registry(doing()))?;
    let subject = format!("{}@{index}", repository.display());
    let candidates = list(&repository, index, Some(IN_TOTO_PAYLOAD_TYPE))
        .await
        .map_err(in_registry(doing()))?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let mut refusals = Vec::new();
    for candidate in &candidates {
        let (_, document) = fetch(&repository, candidate)
            .await
            .map_err(in_registry(doing()))?;
        let verdict = serde_json::from_slice::<Envelope>(&document)
            .map_err(|e| format!("not a DSSE envelope: {e}"))
            .and_then(|envelope| {
                if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
                    return Err(format!("payload type {}", envelope.payload_type));
                }
                open(&envelope, key)
            })
            .and_then(|body| {
                serde_json::from_slice::<Value>(&body)
                    .map_err(|e| format!("the statement is not JSON: {e}"))
            })
            .and_then(|statement| match mismatch(&statement, expected) {
                Some(reason) => Err(reason),
                None => Ok(statement),
            });
        match verdict {
            Ok(statement) => {
                let definition = &statement["predicate"]["buildDefinition"];
                return Ok(Some(VerifiedProvenance {
                    attestation: candidate.digest.clone(),
                    builder: statement["predicate"]["runDetails"]["builder"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    revision: definition["externalParameters"]["source"]["revision"]
                        .as_str()
                        .map(str::to_string),
                    base_digest: expected.base_digest.clone(),
                }));
            }
            Err(reason) => refusals.push(format!("{}: {reason}", candidate.digest)),
        }
    }
    Err(SignError::Provenance {
        subject,
        reason: format!("no attestation verifies: {}", refusals.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BuildFacts {
        BuildFacts {
            repository: "127.0.0.1:5000/app".into(),
            index: Digest::sha256_of(b"index"),
            manifests: vec![("linux/amd64".into(), Digest::sha256_of(b"amd64"))],
            config: ("hoist.toml".into(), Digest::sha256_of(b"toml")),
            git: Some(GitSource {
                url: Some("https://example.com/app".into()),
                revision: "abc123".into(),
            }),
            base: Some((
                "oci:base:1.0".into(),
                Digest::sha256_of(b"base").to_string(),
            )),
            sources: vec![LayerSource {
                name: "layer[0]".into(),
                path: "backend".into(),
                diff_id: Digest::sha256_of(b"tar"),
            }],
        }
    }

    fn expected() -> Expected {
        Expected {
            subjects: vec![Digest::sha256_of(b"index"), Digest::sha256_of(b"amd64")],
            base_digest: Some(Digest::sha256_of(b"base").to_string()),
            config: Some(("hoist.toml".into(), Digest::sha256_of(b"toml"))),
            locks: vec![],
            revision: Some("abc123".into()),
        }
    }

    #[test]
    fn the_statement_is_deterministic_and_names_its_inputs() {
        let bytes = statement(&facts());
        assert_eq!(bytes, statement(&facts()));
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["predicateType"], SLSA_PROVENANCE);
        assert_eq!(value["subject"].as_array().unwrap().len(), 2);
        let definition = &value["predicate"]["buildDefinition"];
        assert_eq!(
            definition["externalParameters"]["source"]["revision"],
            "abc123"
        );
        assert_eq!(
            definition["resolvedDependencies"][1]["uri"],
            "git+https://example.com/app@abc123"
        );
        assert!(!String::from_utf8(bytes).unwrap().contains("Time"));
        assert_eq!(mismatch(&value, &expected()), None);
    }

    #[test]
    fn other_inputs_are_named() {
        let value: Value = serde_json::from_slice(&statement(&facts())).unwrap();
        let mut other = expected();
        other.subjects.push(Digest::sha256_of(b"arm64"));
        assert!(
            mismatch(&value, &other)
                .unwrap()
                .contains("not among its subjects")
        );
        let mut other = expected();
        other.base_digest = Some(Digest::sha256_of(b"other base").to_string());
        assert!(mismatch(&value, &other).unwrap().contains("names base"));
        let mut other = expected();
        other.revision = Some("def456".into());
        assert!(
            mismatch(&value, &other)
                .unwrap()
                .contains("revision abc123")
        );
        let mut other = expected();
        let edited = Digest::sha256_of(b"edited");
        other.config = Some(("app/hoist.toml".into(), edited.clone()));
        assert_eq!(
            mismatch(&value, &other).unwrap(),
            format!(
                "config app/hoist.toml: it names {}, the rebuild read {edited}",
                Digest::sha256_of(b"toml")
            )
        );
        // A lock the statement names with other bytes, or not at all.
        let mut facts = facts();
        facts.sources.push(LayerSource {
            name: "layer[1].python.lock".into(),
            path: "requirements.lock".into(),
            diff_id: Digest::sha256_of(b"lock"),
        });
        let value: Value = serde_json::from_slice(&statement(&facts)).unwrap();
        let mut other = expected();
        other.locks = vec![("layer[1].python.lock".into(), Digest::sha256_of(b"lock"))];
        assert_eq!(mismatch(&value, &other), None);
        other.locks[0].1 = edited.clone();
        assert_eq!(
            mismatch(&value, &other).unwrap(),
            format!(
                "layer[1].python.lock: it names {}, the rebuild read {edited}",
                Digest::sha256_of(b"lock")
            )
        );
        other.locks[0].0 = "layer[2].python.lock".into();
        assert_eq!(
            mismatch(&value, &other).unwrap(),
            format!("layer[2].python.lock: it names none, the rebuild read {edited}")
        );
    }
}
