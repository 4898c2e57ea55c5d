//! The one build pipeline: a resolved [`Plan`] → its base opened ([`crate::open`]) →
//! layers built ([`hoist_layers`]) → assembled ([`crate::assemble`]) → written to the
//! outputs (a layout or archive [`Sink`], a registry push). `hoist build`, `hoist
//! release` and `hoist verify` all build through [`Builder`], so a verify rebuild is
//! made exactly as the build it checks.

use hoist_layers::{BlobStore, BuildOptions};
use oci_spec::distribution::Reference;
use tempfile::TempDir;

use crate::assemble::{Observer, assemble};
use crate::error::{Error, Result};
use crate::oci::image::Image;
use crate::oci::location::Location;
use crate::open::{OpenOptions, open};
use crate::plan::Plan;
use crate::publish::{Sink, WriteReport};
use crate::registry::push::{PushReport, push};
use crate::registry::transport::Transport;

/// Where a built image goes besides the cache.
#[derive(Default)]
pub struct Outputs {
    /// `--output`: a layout or archive, with the tags it names the image by.
    pub sink: Option<(Box<dyn Sink>, Vec<String>)>,
    /// `--push`: a repository and the tags pushed there.
    pub push: Option<PushTarget>,
}

/// A repository to push to, and its tags.
#[derive(Clone, Debug)]
pub struct PushTarget {
    /// The repository (a tag or digest in it is ignored: `tags` name the image).
    pub reference: Reference,
    /// Tags pointed at the image once it is complete.
    pub tags: Vec<String>,
}

impl Outputs {
    /// Checks that every output can be written, before anything is built.
    pub fn preflight(&self) -> Result<()> {
        match &self.sink {
            Some((sink, _)) => sink.preflight(),
            None => Ok(()),
        }
    }
}

/// What the outputs reported.
#[derive(Debug, Default)]
pub struct Published {
    /// The sink's report, when there was one.
    pub written: Option<WriteReport>,
    /// The push's report, when there was one.
    pub pushed: Option<PushReport>,
}

/// Builds images into one cache. Archive bases are unpacked into a private temporary
/// directory that lives as long as the builder: images it built may point into it.
pub struct Builder<'a> {
    store: &'a BlobStore,
    options: BuildOptions,
    transport: &'a Transport,
    observer: &'a dyn Observer,
    scratch: TempDir,
}

impl<'a> Builder<'a> {
    /// A builder writing layers into `store`.
    pub fn new(
        store: &'a BlobStore,
        options: BuildOptions,
        transport: &'a Transport,
        observer: &'a dyn Observer,
    ) -> Result<Builder<'a>> {
        let scratch = tempfile::tempdir().map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        Ok(Builder {
            store,
            options,
            transport,
            observer,
            scratch,
        })
    }

    /// Builds the image `plan` describes into the cache. With `layers_on_demand`, a
    /// registry base's layers stay in the registry until a push needs their bytes (only
    /// for builds whose outputs are pushes: sinks need every byte).
    pub fn build(&self, plan: &Plan, layers_on_demand: bool) -> Result<Image> {
        let options = OpenOptions {
            scratch_dir: self.scratch.path(),
            store: self.store,
            transport: self.transport,
            platforms: plan.platforms.as_deref(),
            // Offline, every layer must be in the cache now: there is no later.
            fetch_layers: !layers_on_demand || self.transport.options().offline,
        };
        let base = match &plan.base {
            Location::Scratch => None,
            location => Some(open(location, &options)?),
        };
        assemble(
            plan,
            base.as_ref(),
            self.store,
            &self.options,
            self.observer,
        )
    }

    /// Writes `image` to every output: the sink first, then the push.
    pub fn publish(&self, image: &Image, outputs: &Outputs) -> Result<Published> {
        let written = match &outputs.sink {
            Some((sink, tags)) => Some(sink.write(image, tags)?),
            None => None,
        };
        let pushed = match &outputs.push {
            Some(target) => Some(crate::registry::block_on(push(
                image,
                &target.reference,
                &target.tags,
                self.transport,
            ))?),
            None => None,
        };
        Ok(Published { written, pushed })
    }

    /// Builds `plan` and publishes it to `outputs` (checked first, so a bad output
    /// costs no build).
    pub fn run(&self, plan: &Plan, outputs: &Outputs) -> Result<(Image, Published)> {
        outputs.preflight()?;
        let image = self.build(plan, outputs.sink.is_none())?;
        let published = self.publish(&image, outputs)?;
        Ok((image, published))
    }
}
