//! Media types of the two manifest flavours hoist reads and writes.
//!
//! An image keeps the flavour of its base (OCI in, OCI out; Docker schema 2 in, Docker
//! out) unless the user asks for OCI: registries and runtimes treat the flavours
//! differently (Docker manifests carry no annotations), so converting silently would
//! change what users get.

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker manifest list (schema 2).
pub const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign (non-distributable) gzip layer, as Windows base images use.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Which family of media types an image uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// OCI image spec media types.
    Oci,
    /// Docker image manifest v2, schema 2.
    Docker,
}

impl Flavour {
    /// The flavour a manifest or index media type belongs to, if it is one we know.
    pub fn of(media_type: &str) -> Option<Flavour> {
        match media_type {
            OCI_INDEX | OCI_MANIFEST => Some(Flavour::Oci),
            DOCKER_INDEX | DOCKER_MANIFEST => Some(Flavour::Docker),
            _ => None,
        }
    }

    /// Index (manifest list) media type.
    pub fn index(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_INDEX,
            Flavour::Docker => DOCKER_INDEX,
        }
    }

    /// Image manifest media type.
    pub fn manifest(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_MANIFEST,
            Flavour::Docker => DOCKER_MANIFEST,
        }
    }

    /// Image config media type.
    pub fn config(self) -> &'static str {
        match self {
            Flavour::Oci => OCI_CONFIG,
            Flavour::Docker => DOCKER_CONFIG,
        }
    }

    /// Media type for a layer this flavour stores, given the OCI layer media type;
    /// `None` when the flavour has no such type (Docker has no zstd layers).
    pub fn layer(self, oci_layer_type: &str) -> Option<&str> {
        match (self, oci_layer_type) {
            (Flavour::Oci, t) => Some(t),
            (Flavour::Docker, OCI_LAYER_GZIP) => Some(DOCKER_LAYER_GZIP),
            (Flavour::Docker, _) => None,
        }
    }
}

/// Whether a media type names an image config (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// Whether a media type names an image layer: OCI (plain, gzip, zstd, and the
/// deprecated non-distributable forms) or Docker (gzip, foreign).
pub fn is_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_TAR
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_GZIP
    )
}

/// Whether a media type names an index (OCI or Docker).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_INDEX)
}

/// Whether a media type names an image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// The OCI equivalent of a Docker media type (used by `--format oci`); other types
/// are returned unchanged.
pub fn to_oci(media_type: &str) -> &str {
    match media_type {
        DOCKER_INDEX => OCI_INDEX,
        DOCKER_MANIFEST => OCI_MANIFEST,
        DOCKER_CONFIG => OCI_CONFIG,
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        // The OCI spec's equivalent is deprecated; keeping the type tells runtimes the
        // blob may live elsewhere, which is what matters for foreign layers.
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_flavour_maps_gzip_layers_and_has_no_zstd() {
        assert_eq!(
            Flavour::Docker.layer(OCI_LAYER_GZIP),
            Some(DOCKER_LAYER_GZIP)
        );
        assert_eq!(Flavour::Docker.layer(OCI_LAYER_ZSTD), None);
        assert_eq!(Flavour::Oci.layer(OCI_LAYER_ZSTD), Some(OCI_LAYER_ZSTD));
    }

    #[test]
    fn conversion_to_oci_covers_every_docker_type_we_write() {
        for (docker, oci) in [
            (DOCKER_INDEX, OCI_INDEX),
            (DOCKER_MANIFEST, OCI_MANIFEST),
            (DOCKER_CONFIG, OCI_CONFIG),
            (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP),
        ] {
            assert_eq!(to_oci(docker), oci);
        }
        assert_eq!(Flavour::of(DOCKER_INDEX), Some(Flavour::Docker));
        assert_eq!(Flavour::of(OCI_MANIFEST), Some(Flavour::Oci));
        assert_eq!(Flavour::of("text/plain"), None);
    }
}
