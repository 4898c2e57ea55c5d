//! The library's error type. Every variant a user can hit names the path, reference
//! or field at fault; the binary prints the whole cause chain.

use std::io;
use std::path::PathBuf;

use hoist_layers::Digest;

use crate::oci::platform::PlatformError;

/// What can go wrong in hoist's library code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The config file is unreadable or invalid.
    #[error("config {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with the key and line where known.
        message: String,
    },
    /// A setting (from the config file or a flag) has a bad value.
    #[error("invalid {field}: {message}")]
    InvalidValue {
        /// The key or flag, e.g. `layer[1].to` or `--label`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Python dependencies cannot be installed as asked.
    #[error(transparent)]
    Python(#[from] crate::python::PythonError),
    /// A platform string is malformed or unknown.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// An image location (`oci:DIR:TAG`, …) cannot be parsed or is not supported.
    #[error("invalid image location `{input}`: {reason}")]
    Location {
        /// The location as given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// An OCI image layout is missing, malformed or lacks what was asked for.
    #[error("OCI layout {}: {reason}", path.display())]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The base image has no manifest for a requested platform.
    #[error("base image {base} has no image for platform {platform} (it has: {available})")]
    PlatformMissing {
        /// The base image reference.
        base: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// A JSON document (manifest, index, config) is malformed.
    #[error("{what} {digest} in {}: {source}", path.display())]
    Json {
        /// Which kind of document.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Where it was read.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The output location cannot be written as asked.
    #[error("output {}: {reason}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A registry reference cannot be parsed.
    #[error("invalid reference `{input}`: {reason}")]
    Reference {
        /// The reference as given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// Talking to a registry failed: no answer (after every retry), or what it sent
    /// is refused (a digest that does not match).
    #[error("registry {registry}: {message}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What failed, with the repository or digest involved.
        message: String,
    },
    /// A registry answered with an error status: the status, its error codes, worded
    /// for the reference the request was about (`HOST/REPO:TAG: no such tag`).
    #[error(transparent)]
    RegistryAnswer(Box<crate::registry::answer::RegistryAnswer>),
    /// A layer tar cannot be read while comparing images.
    #[error("layer {layer}: {message}")]
    LayerRead {
        /// The layer's (compressed) digest.
        layer: Digest,
        /// What failed, with the entry where known.
        message: String,
    },
    /// A layer's tar cannot be read: malformed, truncated, or an extension header over
    /// its limit.
    #[error("layer {layer}: {source}")]
    LayerTar {
        /// The layer's (compressed) digest.
        layer: Digest,
        /// What the tar reader found.
        source: crate::tar_reader::TarError,
    },
    /// A file (index.json, a manifest, an archive's manifest.json, a package database
    /// in a layer…) is larger than hoist reads into memory.
    #[error("{}: {size} bytes, over the limit of {limit} bytes for {what}", path.display())]
    TooLarge {
        /// What the file is (`index.json`, `manifest`…).
        what: String,
        /// Where it is.
        path: PathBuf,
        /// Its size (or the bytes found before reading stopped).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A layer holds an entry whose name has a `..` component, which would land outside
    /// the root (tar-slip). Refused rather than skipped: such a layer is hostile.
    #[error("layer {layer}: entry `{entry}` {reason}")]
    UnsafeLayerEntry {
        /// The layer's (compressed) digest.
        layer: Digest,
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `hoist verify` cannot rebuild an image: a rebuild input is not recorded or
    /// cannot be honoured.
    #[error("cannot verify {image}: {reason}")]
    Verify {
        /// The image being verified.
        image: String,
        /// What is missing or inconsistent, naming the annotation.
        reason: String,
    },
    /// A built image is over a `[budget]` limit: the platform, the size, the limit and
    /// the largest new layers. Nothing was uploaded.
    #[error("over budget: {message}")]
    Budget {
        /// What is over, by how much, and what is largest.
        message: String,
    },
    /// A tag that names one version or one commit (`1.2.3`, `sha-…`) names another
    /// image already: a published version never changes (`--force-tags` overrides).
    #[error(
        "{reference} names {existing} already, not {new}: a tag that names a version or a commit never moves to another image (release another version; --force-tags overwrites it)"
    )]
    ImmutableTag {
        /// `HOST/REPO:TAG`.
        reference: String,
        /// What it names.
        existing: Digest,
        /// What was to be tagged.
        new: Digest,
    },
    /// Building or storing a layer failed.
    #[error(transparent)]
    Layer(#[from] hoist_layers::Error),
    /// Building one of the config's new layers failed: the layer (by its title,
    /// `layer 2 (config → /etc/app)`) and why.
    #[error("{layer}: {source}")]
    BuildLayer {
        /// The layer's title.
        layer: String,
        /// Why (boxed: the layer error and the title together would make every
        /// `Result` of the library wider).
        #[source]
        source: Box<hoist_layers::Error>,
    },
}

impl Error {
    /// A tar reader's error about `layer`: an escaping name is refused as such.
    pub(crate) fn layer_tar(layer: &Digest, error: crate::tar_reader::TarError) -> Error {
        match error {
            crate::tar_reader::TarError::Unsafe { entry, reason } => Error::UnsafeLayerEntry {
                layer: layer.clone(),
                entry,
                reason,
            },
            source => Error::LayerTar {
                layer: layer.clone(),
                source,
            },
        }
    }

    /// The registry's answer, when this is one.
    pub fn registry_answer(&self) -> Option<&crate::registry::answer::RegistryAnswer> {
        match self {
            Error::RegistryAnswer(answer) => Some(answer),
            _ => None,
        }
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
