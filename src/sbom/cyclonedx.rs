//! CycloneDX 1.6 JSON from one of our SPDX documents: the image as
//! `metadata.component` (type `container`), every other package as a component with
//! its purl and declared license, files as `file` components with their hashes. The
//! conversion is mechanical, so the two formats never disagree.

use serde_json::{Value, json};

use crate::oci::canonical::to_canonical;

fn purl_of(package: &Value) -> Option<&str> {
    package["externalRefs"]
        .as_array()?
        .iter()
        .find(|r| r["referenceType"] == "purl")?["referenceLocator"]
        .as_str()
}

fn component(package: &Value) -> Value {
    let kind = match package["primaryPackagePurpose"].as_str() {
        Some("CONTAINER") => "container",
        Some("OPERATING-SYSTEM") => "operating-system",
        _ => "library",
    };
    let mut component = json!({
        "type": kind,
        "bom-ref": package["SPDXID"],
        "name": package["name"],
        "version": package["versionInfo"],
    });
    if let Some(purl) = purl_of(package) {
        component["purl"] = json!(purl);
    }
    if let Some(license) = package["licenseDeclared"]
        .as_str()
        .filter(|l| *l != "NOASSERTION")
    {
        component["licenses"] = json!([{"expression": license}]);
    }
    component
}

/// The CycloneDX 1.6 document (canonical JSON) equivalent to an SPDX document.
pub fn from_spdx(spdx: &Value) -> Vec<u8> {
    let packages = spdx["packages"].as_array().cloned().unwrap_or_default();
    let (image, rest): (Vec<&Value>, Vec<&Value>) = packages
        .iter()
        .partition(|p| p["SPDXID"] == "SPDXRef-Image");
    let mut components: Vec<Value> = rest.into_iter().map(component).collect();
    for file in spdx["files"].as_array().into_iter().flatten() {
        let hashes: Vec<Value> = file["checksums"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let alg = match c["algorithm"].as_str() {
                    Some("SHA256") => "SHA-256",
                    Some("SHA1") => "SHA-1",
                    other => other.unwrap_or_default(),
                };
                json!({"alg": alg, "content": c["checksumValue"]})
            })
            .collect();
        components.push(json!({
            "type": "file",
            "bom-ref": file["SPDXID"],
            "name": file["fileName"],
            "hashes": hashes,
        }));
    }
    let namespace = spdx["documentNamespace"].as_str().unwrap_or_default();
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": spdx["creationInfo"]["created"],
            "tools": {"components": [{"type": "application", "name": "hoist", "version": env!("CARGO_PKG_VERSION")}]},
        },
        "components": components,
    });
    if let Some(uuid) = namespace.strip_prefix("urn:uuid:") {
        document["serialNumber"] = json!(format!("urn:uuid:{uuid}"));
    }
    if let Some(image) = image.first() {
        document["metadata"]["component"] = component(image);
    }
    to_canonical(&document)
        .expect("a CycloneDX document serialises")
        .bytes
}
