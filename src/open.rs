//! One way to open an image: [`open`] reads whatever a [`Location`] names — an `oci:`
//! layout, an `oci-archive:`, a `docker-archive:` or a registry reference — into the
//! one [`Image`] value (documents verified against their digests, blobs left where
//! they are). `scratch` names no image to read: a build starts from nothing instead. Build bases, `inspect`, `diff`, `verify`, `pull` and `push`
//! all come through here, so a location means the same thing to every command.

use std::collections::BTreeMap;
use std::path::Path;

use hoist_layers::BlobStore;

use crate::error::{Error, Result};
use crate::oci::docker_archive;
use crate::oci::image::Image;
use crate::oci::layout::Layout;
use crate::oci::location::{Location, Selector};
use crate::oci::platform::Platform;
use crate::oci::reference;
use crate::oci::source::load_layout;
use crate::publish::archive::{unpack_archive, unpack_layout_archive};
use crate::registry::transport::Transport;

/// What opening an image needs besides its location.
#[derive(Clone, Copy)]
pub struct OpenOptions<'a> {
    /// A private temporary directory: archives are unpacked into it.
    pub scratch_dir: &'a Path,
    /// The blob cache: registry documents (and layers, when fetched) go into it.
    pub store: &'a BlobStore,
    /// The command's registry transport.
    pub transport: &'a Transport,
    /// Fetch a registry image's layers (of the wanted platforms) now; otherwise they
    /// stay in the registry until their bytes are needed.
    pub fetch_layers: bool,
    /// The platforms wanted from a registry image (`None`: all). Local images are read
    /// whole: they cost nothing to list.
    pub platforms: Option<&'a [Platform]>,
}

/// Opens the image `location` names.
pub fn open(location: &Location, options: &OpenOptions) -> Result<Image> {
    match location {
        Location::Scratch => Err(Error::Location {
            input: location.to_string(),
            reason: "scratch is an empty base, not an image to read".into(),
        }),
        Location::OciLayout { path, selector } => load_layout(&Layout::open(path)?, selector),
        Location::OciArchive { path, selector } => {
            let dir = options.scratch_dir.join("oci-archive");
            unpack_layout_archive(path, &dir)?;
            load_layout(&Layout::open(dir)?, selector)
        }
        Location::DockerArchive { path, reference } => {
            let unpacked = options.scratch_dir.join("docker-archive");
            let mut links = BTreeMap::new();
            unpack_archive(path, &unpacked, Some(&mut links))?;
            let dir = options.scratch_dir.join("docker-archive-layout");
            docker_archive::to_layout(path, &unpacked, &links, reference.as_deref(), &dir)?;
            load_layout(&Layout::open(dir)?, &Selector::Default)
        }
        Location::Registry { reference } => {
            let reference = reference::parse(reference)?;
            crate::registry::block_on(crate::registry::pull::load_base(
                &reference,
                options.platforms,
                options.store,
                options.transport,
                options.fetch_layers,
            ))
        }
    }
}
