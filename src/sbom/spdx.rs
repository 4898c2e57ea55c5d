//! The SPDX 2.3 JSON document of one platform image. Deterministic: `created` is the
//! build's epoch, packages and files are sorted, SPDX IDs derive from what they name
//! (a purl, a path), `documentNamespace` from the document's own content, and the JSON
//! is canonical, so two builds of the same inputs give the same bytes.

use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::license::spdx_expression;
use super::packages::{Distro, Package};
use super::scan::{FileRecord, hex};
use crate::oci::canonical::to_canonical;

/// What the document is about.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The image's repository name (`ghcr.io/acme/dashboard`), if it has one.
    pub name: Option<String>,
    /// The platform manifest's digest.
    pub digest: String,
    /// `linux/amd64`.
    pub platform: String,
    /// The architecture (purl `arch`).
    pub architecture: String,
    /// The base as the build named it, and its digest.
    pub base: Option<(String, String)>,
    /// RFC 3339 creation time (the build's epoch).
    pub created: String,
}

/// What was found in the image.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The distribution of the image (`os-release`).
    pub distro: Option<Distro>,
    /// Packages, OS and language, in any order (sorted here).
    pub packages: Vec<Package>,
    /// New files with their hashes (`sbom_files`), by path.
    pub files: std::collections::BTreeMap<String, FileRecord>,
}

const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-Image";
const BASE_ID: &str = "SPDXRef-Base";
const DISTRO_ID: &str = "SPDXRef-OperatingSystem";

/// An SPDX ID from a kind and what it names: `SPDXRef-<kind>-<readable>-<hash>`; the
/// hash keeps two names that read alike apart, and the readable part helps people.
fn spdx_id(kind: &str, readable: &str, key: &str) -> String {
    let readable: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let hash = hex(&Sha256::digest(key.as_bytes()));
    format!("SPDXRef-{kind}-{readable}-{}", &hash[..12])
}

fn purl_ref(purl: &str) -> Value {
    json!([{
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    }])
}

/// The image's purl: `pkg:oci/NAME@DIGEST?arch=…&repository_url=…` (the name is the
/// repository's last segment, as the purl spec's oci type says).
pub fn image_purl(name: Option<&str>, digest: &str, architecture: &str) -> String {
    let repository = name.unwrap_or("image");
    let short = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_lowercase();
    let mut qualifiers = vec![("arch", architecture.to_string())];
    if name.is_some() {
        qualifiers.push(("repository_url", repository.to_string()));
    }
    super::purl::purl("oci", None, &short, digest, &qualifiers)
}

fn package(id: &str, p: &Package) -> Value {
    let mut value = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": purl_ref(&p.purl),
        "sourceInfo": format!("found in {}", p.found_in),
    });
    if let Some(license) = &p.license {
        match spdx_expression(license) {
            Some(expression) => value["licenseDeclared"] = json!(expression),
            None => value["licenseComments"] = json!(format!("declared license: {license}")),
        }
    }
    if !p.ecosystem.is_system() {
        value["primaryPackagePurpose"] = json!("LIBRARY");
    }
    if let Some(archive) = &p.archive {
        value["packageFileName"] = json!(archive.file_name);
        value["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": archive.sha256}]);
        if let Some(url) = &archive.url {
            value["downloadLocation"] = json!(url);
        }
    }
    value
}

/// SPDX 2.3's package verification code: the SHA-1 of the sorted SHA-1s of its files.
fn verification_code(files: &std::collections::BTreeMap<String, FileRecord>) -> String {
    let mut sums: Vec<&str> = files.values().map(|f| f.sha1.as_str()).collect();
    sums.sort_unstable();
    hex(&Sha1::digest(sums.concat().as_bytes()))
}

/// The document's bytes (canonical JSON).
pub fn document(subject: &Subject, found: &Found) -> Vec<u8> {
    let image_name = subject.name.clone().unwrap_or_else(|| "image".into());
    let mut image = json!({
        "SPDXID": IMAGE_ID,
        "name": image_name,
        "versionInfo": subject.digest,
        "downloadLocation": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": purl_ref(&image_purl(subject.name.as_deref(), &subject.digest, &subject.architecture)),
        "checksums": [{"algorithm": "SHA256", "checksumValue": subject.digest.trim_start_matches("sha256:")}],
        "comment": format!("platform {}", subject.platform),
    });
    let mut packages = Vec::new();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": IMAGE_ID,
    })];
    let mut relate = |from: &str, kind: &str, to: &str| {
        relationships.push(json!({
            "spdxElementId": from,
            "relationshipType": kind,
            "relatedSpdxElement": to,
        }));
    };
    // OS packages belong to the base when there is one, else to the image.
    let system_owner = if let Some((name, digest)) = &subject.base {
        packages.push(json!({
            "SPDXID": BASE_ID,
            "name": name,
            "versionInfo": digest,
            "downloadLocation": NOASSERTION,
            "primaryPackagePurpose": "CONTAINER",
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "checksums": [{"algorithm": "SHA256", "checksumValue": digest.trim_start_matches("sha256:")}],
        }));
        relate(IMAGE_ID, "DESCENDANT_OF", BASE_ID);
        BASE_ID
    } else {
        IMAGE_ID
    };
    if let Some(distro) = &found.distro {
        packages.push(json!({
            "SPDXID": DISTRO_ID,
            "name": distro.id,
            "versionInfo": distro.version_id.clone().unwrap_or_default(),
            "downloadLocation": NOASSERTION,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "description": distro.pretty_name.clone().unwrap_or_else(|| distro.id.clone()),
        }));
        relate(system_owner, "CONTAINS", DISTRO_ID);
    }
    let mut sorted: Vec<&Package> = found.packages.iter().collect();
    sorted.sort_by(|a, b| {
        (a.ecosystem, &a.purl, &a.found_in).cmp(&(b.ecosystem, &b.purl, &b.found_in))
    });
    sorted.dedup_by(|a, b| a.purl == b.purl);
    for p in sorted {
        let id = spdx_id(p.ecosystem.purl_type(), &p.name, &p.purl);
        packages.push(package(&id, p));
        let owner = if p.ecosystem.is_system() {
            system_owner
        } else {
            IMAGE_ID
        };
        relate(owner, "CONTAINS", &id);
    }
    let mut files = Vec::new();
    if !found.files.is_empty() {
        // Files of the image package: SPDX then wants them analysed, with the code.
        image["filesAnalyzed"] = json!(true);
        image["packageVerificationCode"] =
            json!({"packageVerificationCodeValue": verification_code(&found.files)});
        image["licenseInfoFromFiles"] = json!([NOASSERTION]);
        for (path, record) in &found.files {
            let id = spdx_id("File", path.rsplit('/').next().unwrap_or(path), path);
            files.push(json!({
                "SPDXID": id,
                "fileName": format!("./{path}"),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": record.sha1},
                    {"algorithm": "SHA256", "checksumValue": record.sha256},
                ],
                "licenseConcluded": NOASSERTION,
                "copyrightText": NOASSERTION,
            }));
            relate(IMAGE_ID, "CONTAINS", &id);
        }
    }
    packages.insert(0, image);
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{image_name}@{} {}", subject.digest, subject.platform),
        "creationInfo": {
            "created": subject.created,
            "creators": [format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !files.is_empty() {
        document["files"] = json!(files);
    }
    // The namespace names this document: derived from everything else in it, so the
    // same content always gets the same one and different content another.
    let content = to_canonical(&document).expect("an SPDX document serialises");
    document["documentNamespace"] = json!(format!("urn:uuid:{}", uuid_of(content.digest.hex())));
    to_canonical(&document)
        .expect("an SPDX document serialises")
        .bytes
}

/// A UUID (version 8: custom, RFC 9562) made of the first 128 bits of a hash.
fn uuid_of(hex: &str) -> String {
    let mut digits: Vec<char> = hex.chars().take(32).collect();
    digits[12] = '8';
    // Variant bits 10xx.
    let variant = u8::from_str_radix(&digits[16].to_string(), 16).unwrap_or(0);
    digits[16] = char::from_digit(u32::from(0x8 | (variant & 0x3)), 16).unwrap_or('8');
    let text: String = digits.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &text[0..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::packages::{ArchiveOrigin, python, python_provenance};

    /// A wheel's recorded provenance gives its package the file name, sha256 and (when
    /// the lock named one) the download URL; without a URL the location stays unknown.
    #[test]
    fn an_installed_wheel_is_listed_with_its_file_sha256_and_url() {
        let sha = "ab".repeat(32);
        let recorded = format!(
            "{{\"archive_info\":{{\"hashes\":{{\"sha256\":\"{sha}\"}}}},\"filename\":\"six-1.17.0-py2.py3-none-any.whl\",\"url\":\"https://files.example/six-1.17.0-py2.py3-none-any.whl\"}}"
        );
        let mut six = python("Name: six\nVersion: 1.17.0\n", "/x/METADATA").unwrap();
        six.archive = python_provenance(recorded.as_bytes());
        let value = package("SPDXRef-six", &six);
        assert_eq!(value["packageFileName"], "six-1.17.0-py2.py3-none-any.whl");
        assert_eq!(value["checksums"][0]["checksumValue"], sha.as_str());
        assert_eq!(
            value["downloadLocation"],
            "https://files.example/six-1.17.0-py2.py3-none-any.whl"
        );
        six.archive = Some(ArchiveOrigin {
            url: None,
            ..six.archive.clone().unwrap()
        });
        assert_eq!(
            package("SPDXRef-six", &six)["downloadLocation"],
            NOASSERTION
        );
        assert_eq!(python_provenance(b"{\"archive_info\": {}}"), None);
    }
}
