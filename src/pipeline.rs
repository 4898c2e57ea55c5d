//! The one build pipeline: a resolved [`Plan`] → its base opened ([`crate::open`]) →
//! layers built ([`hoist_layers`]) → assembled ([`crate::assemble`]) → written to the
//! outputs (a layout or archive [`Sink`], a registry push). `hoist build`, `hoist
//! release` and `hoist verify` all build through [`Builder`], so a verify rebuild is
//! made exactly as the build it checks.

use std::sync::atomic::{AtomicUsize, Ordering};

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
use crate::registry::referrers::push_referrers;
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
    /// Builds so far: each unpacks its base into a directory of its own.
    builds: AtomicUsize,
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
            builds: AtomicUsize::new(0),
        })
    }

    /// Builds the image `plan` describes into the cache. With `layers_on_demand`, a
    /// registry base's layers stay in the registry until a push needs their bytes (only
    /// for builds whose outputs are pushes: sinks need every byte).
    pub fn build(&self, plan: &Plan, layers_on_demand: bool) -> Result<Image> {
        // Images built earlier may point into their base's directory: each build unpacks
        // into one of its own rather than into a mix of several archives' files.
        let n = self.builds.fetch_add(1, Ordering::Relaxed);
        let scratch_dir = self.scratch.path().join(format!("base-{n}"));
        std::fs::create_dir(&scratch_dir).map_err(|source| Error::Io {
            path: scratch_dir.clone(),
            source,
        })?;
        let options = OpenOptions {
            scratch_dir: &scratch_dir,
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
            Some(target) => Some(crate::registry::block_on(async {
                let report = push(image, &target.reference, &target.tags, self.transport).await?;
                // Artifacts after the image: their subjects must exist first.
                push_referrers(image, &target.reference, self.transport).await?;
                Ok(report)
            })?),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::assemble::Silent;
    use crate::config::ConfigFile;
    use crate::oci::location::Selector;
    use crate::plan::{Overrides, resolve};
    use crate::publish::archive::OciArchiveSink;
    use crate::registry::client::RegistryOptions;

    /// One builder builds several images (a workspace's members): two builds on an
    /// archive base give the same image, and the first image's blobs are still where
    /// it says they are after the second build unpacked its base.
    #[test]
    fn one_builder_builds_twice_on_an_archive_base() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let transport = Transport::new(RegistryOptions::default());
        let builder = Builder::new(&store, BuildOptions::default(), &transport, &Silent).unwrap();

        let committed = Location::OciLayout {
            path: Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/base"),
            selector: Selector::Tag("1.0".into()),
        };
        let open_options = OpenOptions {
            scratch_dir: dir.path(),
            store: &store,
            transport: &transport,
            platforms: None,
            fetch_layers: true,
        };
        let base = open(&committed, &open_options).unwrap();
        let archive = dir.path().join("base.tar");
        let sink = OciArchiveSink {
            path: archive.clone(),
            tag: Some("1.0".into()),
        };
        sink.write(&base.for_copy("base", false).unwrap(), &[])
            .unwrap();

        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/hello.txt"), "hello\n").unwrap();
        let config = dir.path().join("hoist.toml");
        std::fs::write(
            &config,
            format!(
                "[image]\nbase = \"oci-archive:{}:1.0\"\n\n[[layer]]\nfrom = \"src\"\nto = \"/srv\"\n",
                archive.display()
            ),
        )
        .unwrap();
        let file = ConfigFile::load(&config).unwrap();
        let plan = resolve(&config, &file, &Overrides::default(), None).unwrap();

        let first = builder.build(&plan, false).unwrap();
        let second = builder.build(&plan, false).unwrap();
        assert_eq!(first.descriptor.digest, second.descriptor.digest);
        // Every blob of the first image is still readable where it says it is.
        for blob in first.blobs.values() {
            if let crate::oci::image::BlobSource::Unverified(path) = &blob.source {
                assert!(path.is_file(), "{} is gone", path.display());
            }
        }
    }
}
