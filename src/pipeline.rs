//! The one build pipeline: a resolved [`Plan`] → its base opened ([`crate::open`]) →
//! layers built ([`hoist_layers`]) → assembled ([`crate::assemble`]) → written to the
//! pushes. The job (`job/`) runs `hoist build`, `hoist release` and `hoist
//! verify` through [`Builder`], so a verify rebuild is made exactly as the build it
//! checks; the budget, the sinks, signing and tags are the job's stages around it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hoist_layers::{BlobStore, BuildOptions, Held, LayerGate};
use oci_spec::distribution::Reference;
use tempfile::TempDir;

use crate::assemble::{Observer, assemble_reusing};
use crate::error::{Error, Result};
use crate::oci::image::Image;
use crate::oci::location::Location;
use crate::open::{OpenOptions, open};
use crate::plan::{BaseFacts, PendingPython, Plan, PythonContext};
use crate::python;
use crate::registry::layer_source::RegistryLayers;
use crate::registry::push::{PushReport, fetch_layers_on_demand, push};
use crate::registry::transport::Transport;
use crate::sbom::gather::{Gathering, StreamScans};
use crate::sbom::scan::{Entry as ScanEntry, Scanner, resolve_link};
use crate::sbom::{SbomOptions, attach_sboms};

/// A repository to push to, and its tags.
#[derive(Clone, Debug)]
pub struct PushTarget {
    /// The repository (a tag or digest in it is ignored: `tags` name the image).
    pub reference: Reference,
    /// Tags pointed at the image once it is complete.
    pub tags: Vec<String>,
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
    /// Bases opened so far, by location, platforms and whether their layers were
    /// fetched: a workspace's members building at once on one base open (and pull) it
    /// once; the others wait for it.
    bases: Mutex<BTreeMap<String, Arc<Mutex<Option<Image>>>>>,
    /// Builds running now: they share the compression threads.
    active: AtomicUsize,
    /// Layers being built now, and those built by this builder.
    gate: Gate,
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
            bases: Mutex::new(BTreeMap::new()),
            active: AtomicUsize::new(0),
            gate: Gate::default(),
        })
    }

    /// Builds it runs at once and compression threads it shares among them: `--jobs`,
    /// else one per core.
    pub fn jobs(&self) -> usize {
        match self.options.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }

    /// Whether a build of this builder archived the layer `digest` (it was not in the
    /// layer cache before).
    pub fn built_here(&self, digest: &hoist_layers::Digest) -> bool {
        self.gate
            .built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest)
    }

    /// Whether its builds use the layer cache.
    pub fn uses_cache(&self) -> bool {
        self.options.use_cache
    }

    /// The progress observer builds report to.
    pub fn observer(&self) -> &'a dyn Observer {
        self.observer
    }

    /// The cache it builds into.
    pub fn store(&self) -> &'a BlobStore {
        self.store
    }

    /// Reads the layers of the registry images each of `lists` names (a push target's
    /// tags, `latest`, `--cache-from`; missing ones are skipped), all at once within
    /// the transport's bound, and hands each to `ready` (with its index) as soon as it
    /// is read: the builds that reuse them ([`Self::build_with`]; their outputs must be
    /// pushes) wait for their own list only. An empty list is `None`. `hoist verify`
    /// never calls this.
    pub fn read_registry_layers(
        &self,
        lists: &[Vec<Reference>],
        ready: &(dyn Fn(usize, Result<Option<RegistryLayers>>) + Sync),
    ) {
        let (store, transport) = (self.store, self.transport);
        crate::registry::read_each(
            lists.len(),
            |i| async move {
                let references = &lists[i];
                if references.is_empty() {
                    Ok(None)
                } else {
                    RegistryLayers::read(references, store, transport)
                        .await
                        .map(Some)
                }
            },
            ready,
        );
    }

    /// Builds the image `plan` describes into the cache. With `layers_on_demand`, a
    /// registry base's layers stay in the registry until a push needs their bytes (only
    /// for builds whose outputs are pushes: sinks need every byte).
    pub fn build(&self, plan: &Plan, layers_on_demand: bool) -> Result<Image> {
        self.build_with(plan, layers_on_demand, None, self.observer)
    }

    /// [`Self::build`] reusing `known` (from [`Self::read_registry_layers`]) and
    /// reporting to `observer`: several may run at once (a workspace's members), each
    /// on a thread of its own, sharing the compression threads ([`Self::jobs`]).
    pub fn build_with(
        &self,
        plan: &Plan,
        layers_on_demand: bool,
        known: Option<&RegistryLayers>,
        observer: &dyn Observer,
    ) -> Result<Image> {
        let running = Running::start(&self.active);
        // The bytes do not depend on the thread count: the builds running now split
        // the command's threads rather than each taking them all.
        let options = BuildOptions {
            threads: (self.jobs() / running.count).max(1),
            ..self.options
        };
        let base = self.open_base(plan, layers_on_demand)?;
        // Layer scans are cached beside the layer cache (and not used without it).
        let mut scanner = if self.options.use_cache {
            Scanner::with_cache(self.store.root())
        } else {
            Scanner::default()
        };
        let expanded;
        let plan = if plan.python.is_empty() {
            plan
        } else {
            let context = self.python_context(plan, base.as_ref(), &mut scanner)?;
            expanded = plan.expand_python(&context)?;
            &expanded
        };
        let sbom_options = SbomOptions {
            files: plan.sbom_files,
        };
        let mut published = std::collections::BTreeMap::new();
        // New layers' SBOM facts are gathered while they are written (not read back).
        let gathered = StreamScans::new(plan.sbom_files);
        let gathering = Gathering {
            ui: observer,
            scans: &gathered,
        };
        let observer: &dyn Observer = if plan.sbom { &gathering } else { observer };
        let mut image = match known {
            // Sinks need every byte, so only a push-only build leaves layers behind.
            Some(known) if layers_on_demand && self.options.use_cache => {
                let mut image = assemble_reusing(
                    plan,
                    base.as_ref(),
                    self.store,
                    &options,
                    observer,
                    (known, &self.gate),
                )?;
                image.layer_origins = known.origins(&image, self.store.root());
                if plan.sbom {
                    published = self.published_sboms(&image, sbom_options)?;
                }
                image
            }
            _ => assemble_reusing(
                plan,
                base.as_ref(),
                self.store,
                &options,
                observer,
                (&hoist_layers::NoKnownLayers, &self.gate),
            )?,
        };
        scanner.adopt(gathered);
        if plan.sbom && layers_on_demand && published.len() < image.platforms.len() {
            // The SBOM lists what the layers left in the registry hold (the base's, the
            // reused ones): unless the registry has this very image's SBOM, those whose
            // scan is not cached are fetched to be read.
            let base_layers: std::collections::BTreeSet<&hoist_layers::Digest> =
                image.base_origin.iter().flat_map(|o| &o.layers).collect();
            let unscanned = |d: &hoist_layers::Digest| {
                !scanner.has_cached(d, !base_layers.contains(d), plan.sbom_files)
            };
            crate::registry::block_on(fetch_layers_on_demand(&image, self.transport, &unscanned))?;
        }
        if plan.sbom {
            // After assembly: each document names its platform manifest's digest.
            attach_sboms(
                &mut image,
                plan.epoch,
                sbom_options,
                &mut scanner,
                &published,
            )?;
        }
        Ok(image)
    }

    /// The base `plan` builds on, opened once per builder: the first build needing it
    /// opens it (pulling what it must into the cache) while the others wait for it.
    fn open_base(&self, plan: &Plan, layers_on_demand: bool) -> Result<Option<Image>> {
        if plan.base == Location::Scratch {
            return Ok(None);
        }
        // Offline, every layer must be in the cache now: there is no later.
        // Uncompressed sizes read every layer, the base's included. Python layers
        // without `libc` or `interpreter` read the base's package database and where
        // its interpreter is. (SBOMs fetch the base layers they must read after
        // assembly: often none.)
        let fetch_layers = !layers_on_demand
            || self.transport.options().offline
            || plan.budget.max_unpacked.is_some()
            || plan.python.iter().any(PendingPython::needs_base_files);
        let platforms = plan
            .platforms
            .as_ref()
            .map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>());
        let key = format!("{}\n{platforms:?}\n{fetch_layers}", plan.base);
        let slot = Arc::clone(
            self.bases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key)
                .or_default(),
        );
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(base) = slot.as_ref() {
            return Ok(Some(base.clone()));
        }
        // An archive base is unpacked into a directory of its own, which lives as long
        // as the builder: the images built on it point into it.
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
            fetch_layers,
        };
        let base = open(&plan.base, &options)?;
        *slot = Some(base.clone());
        Ok(Some(base))
    }

    /// What Python layers are planned with: what each platform of the base says (the
    /// config's `PYTHON_VERSION`; read only when some layer leaves `libc` or
    /// `interpreter` out, the package database's libc6 or musl and the interpreter its
    /// files ship), the cache directory and `--offline`.
    fn python_context(
        &self,
        plan: &Plan,
        base: Option<&Image>,
        scanner: &mut Scanner,
    ) -> Result<PythonContext> {
        let mut context = PythonContext {
            cache_dir: self.store.root().to_path_buf(),
            store: Some(self.store.clone()),
            offline: self.transport.options().offline,
            ..PythonContext::default()
        };
        let Some(image) = base else {
            return Ok(context);
        };
        let read_files = plan.python.iter().any(PendingPython::needs_base_files);
        for platform in &image.platforms {
            let env = platform
                .config
                .pointer("/config/Env")
                .and_then(|e| e.as_array());
            let mut facts = BaseFacts {
                config_version: python::base::python_version(
                    env.into_iter().flatten().filter_map(|v| v.as_str()),
                ),
                ..BaseFacts::default()
            };
            if read_files {
                let contents =
                    scanner.scan(image, platform, platform.manifest.layers.len(), false)?;
                let dpkg: Vec<&[u8]> = contents
                    .system
                    .keys()
                    .filter(|p| p.starts_with("var/lib/dpkg/status"))
                    .filter_map(|p| contents.system_file(p))
                    .collect();
                facts.libc =
                    python::base::libc(&dpkg, contents.system_file("lib/apk/db/installed"));
                facts.shipped = python::base::interpreter(
                    contents
                        .system
                        .iter()
                        .filter(|(p, _)| python::base::is_interpreter_path(p))
                        .map(|(p, entry)| {
                            let target = match entry {
                                ScanEntry::Link(t) => Some(resolve_link(p, t)),
                                ScanEntry::File(_) => None,
                            };
                            (p.as_str(), target)
                        }),
                );
            }
            context.base.push((platform.platform.clone(), facts));
        }
        Ok(context)
    }

    /// The SBOMs the repository the reused layers came from holds for this very image
    /// (same platform manifests), when they are the ones this build would make.
    fn published_sboms(
        &self,
        image: &Image,
        options: SbomOptions,
    ) -> Result<std::collections::BTreeMap<hoist_layers::Digest, Vec<u8>>> {
        let Some(origin) = image.layer_origins.first() else {
            return Ok(std::collections::BTreeMap::new());
        };
        crate::registry::block_on(crate::sbom::find::published_documents(
            image,
            &origin.repository,
            options,
            self.transport,
        ))
    }

    /// The command's registry transport.
    pub fn transport(&self) -> &'a Transport {
        self.transport
    }

    /// Pushes each image to its target, all at once: the transport bounds the requests
    /// in flight per registry, and its ledger makes a blob several images share go up
    /// once (the first push needing it uploads it, the others wait and mount it).
    /// One result per push, in order.
    pub fn push_all(&self, pushes: &[(&Image, &PushTarget)]) -> Vec<Result<PushReport>> {
        for (_, target) in pushes {
            self.transport
                .ledger()
                .announce(target.reference.registry(), target.reference.repository());
        }
        let all = async {
            let one = |i: usize| async move {
                let (image, target) = pushes[i];
                (
                    i,
                    push(image, &target.reference, &target.tags, self.transport).await,
                )
            };
            Ok(vec![
                futures_util::future::join_all((0..pushes.len()).map(one)).await,
            ])
        };
        let mut results: Vec<Option<Result<PushReport>>> = pushes.iter().map(|_| None).collect();
        match crate::registry::block_on(all) {
            Ok(groups) => {
                for (i, result) in groups.into_iter().flatten() {
                    results[i] = Some(result);
                }
            }
            // Only the runtime failing to start gets here: every push fails with it.
            Err(error) => {
                let message = error.to_string();
                for result in &mut results {
                    *result = Some(Err(Error::Registry {
                        registry: String::new(),
                        message: message.clone(),
                    }));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every push has a result"))
            .collect()
    }
}

/// The builder's [`LayerGate`]: a layer two builds running at once share is archived
/// by the first to reach its key; the other waits, then finds it in the cache.
#[derive(Default)]
struct Gate {
    /// Keys held by a build now.
    held: Mutex<std::collections::BTreeSet<hoist_layers::Digest>>,
    /// Signalled when a key is let go.
    freed: std::sync::Condvar,
    /// Digests of the layers archived (not found in the cache).
    built: Mutex<std::collections::BTreeSet<hoist_layers::Digest>>,
}

impl LayerGate for Gate {
    fn hold(&self, key: &hoist_layers::Digest) -> Held<'_> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(key) {
            held = self
                .freed
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(key.clone());
        let key = key.clone();
        Held::until_dropped(move || {
            self.held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            self.freed.notify_all();
        })
    }

    fn built(&self, layer: &hoist_layers::BuiltLayer) {
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(layer.digest.clone());
    }
}

/// A build counted among those running while it lives.
struct Running<'c> {
    active: &'c AtomicUsize,
    /// The builds running as it started, itself included.
    count: usize,
}

impl<'c> Running<'c> {
    fn start(active: &'c AtomicUsize) -> Running<'c> {
        let count = active.fetch_add(1, Ordering::SeqCst) + 1;
        Running { active, count }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
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
    use crate::publish::Sink as _;
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
