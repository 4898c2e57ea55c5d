//! Referrers through hoist's library API against the real registry (CNCF distribution
//! 2.8, which has no referrers API): the fallback `sha256-<hex>` tag is what is
//! exercised. Judged by reading the tag's index back with our own HTTP client
//! (`Registry::manifest`) and by the registry's access log.

use hoist::oci::artifact::{Artifact, SPDX_JSON, created_annotation, referrers_tag};
use hoist::oci::media;
use hoist::oci::model::Descriptor;
use hoist::registry::block_on;
use hoist::registry::client::RegistryOptions;
use hoist::registry::referrers::{attach, fetch, list};
use hoist::registry::transport::{Access, Transport};
use serde_json::Value;

use crate::common::BASE_AMD64_MANIFEST;
use crate::pull_tag::{BASE_REPO, seed_base};
use crate::registry::Registry;

/// The library's transport in this process (the binary installs this in main()).
fn transport() -> Transport {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Transport::new(RegistryOptions::default())
}

fn artifact(kind: &str, text: &str) -> Artifact {
    Artifact {
        artifact_type: kind.into(),
        media_type: kind.into(),
        document: text.as_bytes().to_vec(),
        annotations: created_annotation(Some("1970-01-01T00:00:00Z")),
    }
}

/// The amd64 manifest of the seeded base: 405 bytes (testdata/README.md).
fn subject() -> Descriptor {
    Descriptor::new(
        media::OCI_MANIFEST,
        BASE_AMD64_MANIFEST.parse().unwrap(),
        405,
    )
}

#[test]
fn artifacts_attach_through_the_fallback_tag_without_duplicates_or_losses() {
    let registry = Registry::start();
    let base = seed_base(&registry);
    let reference = hoist::oci::reference::parse(&base).unwrap();
    let transport = transport();
    let repository =
        block_on(transport.repository(&reference, Access::Push { mount_from: &[] })).unwrap();

    let spdx = artifact(SPDX_JSON, r#"{"spdxVersion":"SPDX-2.3"}"#);
    let other = artifact("application/vnd.example.note+json", r#"{"note":1}"#);
    let first = block_on(attach(&repository, &subject(), &spdx, &transport)).unwrap();
    let second = block_on(attach(&repository, &subject(), &other, &transport)).unwrap();
    // The same artifact again adds nothing.
    let again = block_on(attach(&repository, &subject(), &spdx, &transport)).unwrap();
    assert_eq!(again, first);

    let tag = referrers_tag(&subject().digest);
    let index: Value = serde_json::from_slice(&registry.manifest(BASE_REPO, &tag)).unwrap();
    assert_eq!(index["mediaType"], media::OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    assert_eq!(entries[0]["digest"], first.digest.as_str());
    assert_eq!(entries[0]["artifactType"], SPDX_JSON);
    assert_eq!(entries[0]["mediaType"], media::OCI_MANIFEST);
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(entries[1]["digest"], second.digest.as_str());

    // The artifact manifest as stored: the empty config (uploaded), the document, the subject.
    let manifest: Value =
        serde_json::from_slice(&registry.manifest(BASE_REPO, first.digest.as_str())).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["subject"]["digest"], BASE_AMD64_MANIFEST);
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.uploaded_blob().as_deref() == Some(hoist::oci::artifact::EMPTY_DIGEST)),
        "the empty config is uploaded"
    );
    // The referrers API was asked and answered 404 (distribution 2.8) only when it had to.
    let tag_puts = requests
        .iter()
        .filter(|r| r.manifest_put() == Some(tag.as_str()))
        .count();
    assert_eq!(
        tag_puts, 2,
        "one tag PUT per new artifact, none for the repeat"
    );

    // Listing: all, filtered by type, and the document read back verified.
    let all = block_on(list(&repository, &subject().digest, None)).unwrap();
    assert_eq!(all.len(), 2);
    let sboms = block_on(list(&repository, &subject().digest, Some(SPDX_JSON))).unwrap();
    assert_eq!(sboms, vec![first.clone()]);
    let (read, document) = block_on(fetch(&repository, &sboms[0])).unwrap();
    assert_eq!(read.kind(), SPDX_JSON);
    assert_eq!(document, spdx.document);
    // A subject with no referrers lists none.
    let none = block_on(list(
        &repository,
        &crate::common::BASE_ARM64_MANIFEST.parse().unwrap(),
        None,
    ))
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn a_referrers_tag_holding_no_index_is_an_error_naming_it() {
    let registry = Registry::start();
    let base = seed_base(&registry);
    let reference = hoist::oci::reference::parse(&base).unwrap();
    let transport = transport();
    let repository =
        block_on(transport.repository(&reference, Access::Push { mount_from: &[] })).unwrap();
    // Put the amd64 manifest itself under the subject's referrers tag.
    let tag = referrers_tag(&subject().digest);
    let bytes = registry.manifest(BASE_REPO, BASE_AMD64_MANIFEST);
    block_on(repository.put_manifest(&tag, media::OCI_MANIFEST, &bytes)).unwrap();
    let err = block_on(attach(
        &repository,
        &subject(),
        &artifact(SPDX_JSON, "{}"),
        &transport,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains(&tag), "{err}");
    assert!(err.contains("not an image index"), "{err}");
}
