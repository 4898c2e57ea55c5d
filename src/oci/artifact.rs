//! OCI 1.1 artifacts and referrers (image-spec 1.1 "artifacts", distribution-spec 1.1
//! "referrers"): a document about an image (an SBOM, a provenance statement) carried
//! as an image manifest with an `artifactType`, the empty config, one layer holding
//! the document and a `subject` naming the manifest it is about.
//!
//! [`Artifact`] is the document and its type; [`Artifact::manifest`] makes the
//! [`Referrer`] (its manifest bytes and descriptor) for a subject. Registries without
//! the referrers API get the **referrers tag schema**: an index under the tag
//! [`referrers_tag`] listing each referrer's descriptor, kept by [`add_referrer`]
//! without duplicates. Everything here is pure data; the registry requests are in
//! `registry::referrers`, the layout writing in `publish`.

use std::collections::BTreeMap;

use hoist_layers::Digest;
use serde::Deserialize;
use serde_json::{Value, json};

use super::canonical::to_canonical;
use super::media;
use super::model::{Annotations, Descriptor, Index};

/// The media type of the empty descriptor (image-spec 1.1).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes: `{}`.
pub const EMPTY_BYTES: &[u8] = b"{}";
/// The digest of [`EMPTY_BYTES`].
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// `artifactType` (and layer media type) of SPDX JSON documents.
pub const SPDX_JSON: &str = "application/spdx+json";
/// `artifactType` (and layer media type) of CycloneDX JSON documents.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// The annotation naming an artifact's creation time (set only when deterministic).
pub const CREATED: &str = "org.opencontainers.image.created";

/// The empty config descriptor every artifact manifest names.
pub fn empty_config() -> Descriptor {
    Descriptor::new(
        EMPTY_MEDIA_TYPE,
        EMPTY_DIGEST.parse().expect("a valid digest"),
        EMPTY_BYTES.len() as u64,
    )
}

/// A document to attach to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest's `artifactType` (`application/spdx+json`).
    pub artifact_type: String,
    /// The media type of the layer holding the document.
    pub media_type: String,
    /// The document's bytes, exactly as stored.
    pub document: Vec<u8>,
    /// The manifest's annotations (copied into referrers index entries).
    pub annotations: Annotations,
}

/// An artifact made into a manifest about one subject: what a layout lists and a
/// registry stores.
#[derive(Clone, Debug, PartialEq)]
pub struct Referrer {
    /// The descriptor a referrers index lists: `mediaType`, `digest`, `size`,
    /// `artifactType` and the manifest's annotations.
    pub descriptor: Descriptor,
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// The layer holding the document.
    pub layer: Descriptor,
    /// The document's bytes.
    pub document: Vec<u8>,
    /// The manifest it is about.
    pub subject: Descriptor,
}

impl Artifact {
    /// The artifact as a manifest whose `subject` is `subject` (reduced to its media
    /// type, digest and size, as the spec's descriptor of it). Canonical JSON: the
    /// same artifact about the same subject always has the same digest.
    pub fn manifest(&self, subject: &Descriptor) -> Referrer {
        let layer = Descriptor::new(
            self.media_type.clone(),
            Digest::sha256_of(&self.document),
            self.document.len() as u64,
        );
        let subject = Descriptor::new(
            subject.media_type.clone(),
            subject.digest.clone(),
            subject.size,
        );
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": self.artifact_type,
            "config": empty_config(),
            "layers": [layer],
            "subject": subject,
        });
        if !self.annotations.is_empty() {
            manifest["annotations"] = json!(self.annotations);
        }
        let blob = to_canonical(&manifest).expect("an artifact manifest serialises");
        let mut descriptor = Descriptor::new(media::OCI_MANIFEST, blob.digest.clone(), blob.size());
        descriptor.extra.insert(
            "artifactType".into(),
            Value::String(self.artifact_type.clone()),
        );
        if !self.annotations.is_empty() {
            descriptor.annotations = Some(self.annotations.clone());
        }
        Referrer {
            descriptor,
            manifest: blob.bytes,
            layer,
            document: self.document.clone(),
            subject,
        }
    }
}

/// The parts of an artifact manifest a reader needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    /// `artifactType`, or (older writers) the config's media type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers; the document is the first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest it is about.
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: Option<Annotations>,
}

impl ArtifactManifest {
    /// The artifact type: `artifactType`, else the config's media type (as the
    /// distribution spec tells registries to report it).
    pub fn kind(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(&self.config.media_type)
    }
}

/// The artifact type a referrers index entry (or `index.json` entry) declares.
pub fn artifact_type_of(descriptor: &Descriptor) -> Option<&str> {
    descriptor.extra.get("artifactType").and_then(Value::as_str)
}

/// The referrers tag schema's tag for a subject: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// Adds `entry` to a referrers index unless a descriptor of the same digest is listed
/// already; every other entry is kept as it was. Answers whether it added.
pub fn add_referrer(index: &mut Index, entry: &Descriptor) -> bool {
    if index.manifests.iter().any(|d| d.digest == entry.digest) {
        return false;
    }
    index.manifests.push(entry.clone());
    true
}

/// An empty referrers index (the tag schema's starting point).
pub fn empty_referrers_index() -> Index {
    Index::new(Some(media::OCI_INDEX))
}

/// Keeps the entries whose artifact type is `artifact_type` (all when `None`).
pub fn filter_referrers(entries: Vec<Descriptor>, artifact_type: Option<&str>) -> Vec<Descriptor> {
    entries
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|wanted| artifact_type_of(d) == Some(wanted)))
        .collect()
}

/// Annotations for an artifact created at `created` (RFC 3339), when that time is
/// deterministic; none otherwise.
pub fn created_annotation(created: Option<&str>) -> Annotations {
    let mut annotations = BTreeMap::new();
    if let Some(created) = created {
        annotations.insert(CREATED.to_string(), created.to_string());
    }
    annotations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Descriptor {
        Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"image"), 5)
    }

    fn sbom(text: &str) -> Artifact {
        Artifact {
            artifact_type: SPDX_JSON.into(),
            media_type: SPDX_JSON.into(),
            document: text.as_bytes().to_vec(),
            annotations: created_annotation(Some("1970-01-01T00:00:00Z")),
        }
    }

    #[test]
    fn the_empty_config_is_what_the_spec_says() {
        assert_eq!(Digest::sha256_of(EMPTY_BYTES).as_str(), EMPTY_DIGEST);
        assert_eq!(empty_config().size, 2);
    }

    #[test]
    fn an_artifact_manifest_names_its_subject_type_and_document() {
        let referrer = sbom("{\"spdxVersion\":\"SPDX-2.3\"}").manifest(&subject());
        assert_eq!(
            referrer.descriptor.digest,
            Digest::sha256_of(&referrer.manifest)
        );
        let value: Value = serde_json::from_slice(&referrer.manifest).unwrap();
        assert_eq!(value["artifactType"], SPDX_JSON);
        assert_eq!(value["mediaType"], media::OCI_MANIFEST);
        assert_eq!(value["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(value["config"]["digest"], EMPTY_DIGEST);
        assert_eq!(value["subject"]["digest"], subject().digest.as_str());
        assert_eq!(
            value["layers"][0]["digest"],
            Digest::sha256_of(b"{\"spdxVersion\":\"SPDX-2.3\"}").as_str()
        );
        assert_eq!(value["annotations"][CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(artifact_type_of(&referrer.descriptor), Some(SPDX_JSON));
        let parsed: ArtifactManifest = serde_json::from_slice(&referrer.manifest).unwrap();
        assert_eq!(parsed.kind(), SPDX_JSON);
        assert_eq!(parsed.subject.unwrap().digest, subject().digest);
        // Same artifact, same subject: same bytes.
        assert_eq!(
            referrer,
            sbom("{\"spdxVersion\":\"SPDX-2.3\"}").manifest(&subject())
        );
    }

    #[test]
    fn the_referrers_index_keeps_others_and_takes_no_duplicates() {
        let mut index = empty_referrers_index();
        let first = sbom("a").manifest(&subject()).descriptor;
        let second = sbom("b").manifest(&subject()).descriptor;
        assert!(add_referrer(&mut index, &first));
        assert!(add_referrer(&mut index, &second));
        assert!(!add_referrer(&mut index, &first));
        assert_eq!(index.manifests, vec![first.clone(), second]);
        let mut other = first.clone();
        other
            .extra
            .insert("artifactType".into(), json!("text/plain"));
        other.digest = Digest::sha256_of(b"other");
        add_referrer(&mut index, &other);
        assert_eq!(
            filter_referrers(index.manifests.clone(), Some(SPDX_JSON)).len(),
            2
        );
        assert_eq!(filter_referrers(index.manifests, None).len(), 3);
        assert_eq!(
            referrers_tag(&subject().digest),
            format!("sha256-{}", subject().digest.hex())
        );
    }
}
