//! A narrow window onto a layer as it is written: an [`EntryObserver`] the caller
//! passes to [`build_layer_observed`](crate::build_layer_observed) sees each entry's
//! path, type and size in archive order and, for the entries it asks for, their content
//! as it streams into the tar. The SBOM gathers a new layer's facts this way instead of
//! decompressing the layer it just built.
//!
//! The observer changes nothing that is written (the layer's bytes and digests are the
//! same with or without one) and the builder never holds more than one read buffer
//! for it: an observer keeps what it wants, bounded by its own limits. A layer answered
//! by the cache or by [`KnownLayers`](crate::KnownLayers) writes no entry, so its
//! observer sees nothing and [`EntryObserver::layer_written`] is not called.

use crate::spec::BuiltLayer;

/// What an [`ObservedEntry`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservedKind<'a> {
    /// A directory.
    Directory,
    /// A regular file (its content from disk or an [`EntrySource`](crate::EntrySource)).
    File,
    /// A symbolic link to `target`.
    Symlink(&'a str),
    /// A further name of the file archived earlier at `target`.
    HardLink(&'a str),
    /// An empty regular file named `.wh.NAME` that deletes `NAME` in lower layers.
    Whiteout,
}

/// One entry of the layer, as its tar header says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedEntry<'a> {
    /// The archive path: relative, no leading `/` or `./`; a directory's ends with `/`.
    pub path: &'a str,
    /// What it is.
    pub kind: ObservedKind<'a>,
    /// Content bytes (0 for all but regular files).
    pub size: u64,
}

/// Sees a layer's entries while it is written. Called from the building thread only.
pub trait EntryObserver {
    /// An entry is about to be written. For a regular file, answering `true` asks for
    /// its content: [`Self::content`] then gets every byte of it, in order, and
    /// [`Self::content_end`] follows. Other entries have no content.
    fn entry(&mut self, entry: &ObservedEntry<'_>) -> bool;

    /// The next piece of the content asked for (at most the builder's read buffer).
    fn content(&mut self, chunk: &[u8]);

    /// The content asked for is complete; `sha256` is its digest (computed by the
    /// builder anyway, for the cache key or to check a declared one).
    fn content_end(&mut self, sha256: &[u8; 32]);

    /// The layer the observed entries make is stored as `layer`. Not called when the
    /// build fails or no entry was written (a cache or `KnownLayers` answered).
    fn layer_written(&mut self, layer: &BuiltLayer);
}

/// An [`EntryObserver`] that asks for nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl EntryObserver for NoObserver {
    fn entry(&mut self, _entry: &ObservedEntry<'_>) -> bool {
        false
    }
    fn content(&mut self, _chunk: &[u8]) {}
    fn content_end(&mut self, _sha256: &[u8; 32]) {}
    fn layer_written(&mut self, _layer: &BuiltLayer) {}
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::testutil::Tree;
    use crate::{BlobStore, BuildOptions, LayerSpec, NoKnownLayers, NoProgress};

    /// Records what it is shown; asks for the content of files named `package.json` only.
    #[derive(Default)]
    struct Recorder {
        entries: Vec<String>,
        contents: Vec<(Vec<u8>, [u8; 32])>,
        current: Vec<u8>,
        written: Option<BuiltLayer>,
    }

    impl EntryObserver for Recorder {
        fn entry(&mut self, entry: &ObservedEntry<'_>) -> bool {
            self.entries
                .push(format!("{} {:?} {}", entry.path, entry.kind, entry.size));
            entry.path.rsplit('/').next() == Some("package.json")
        }
        fn content(&mut self, chunk: &[u8]) {
            self.current.extend_from_slice(chunk);
        }
        fn content_end(&mut self, sha256: &[u8; 32]) {
            self.contents
                .push((std::mem::take(&mut self.current), *sha256));
        }
        fn layer_written(&mut self, layer: &BuiltLayer) {
            self.written = Some(layer.clone());
        }
    }

    fn observe(
        spec: &LayerSpec,
        store: &BlobStore,
        options: &BuildOptions,
    ) -> (BuiltLayer, Recorder) {
        let mut recorder = Recorder::default();
        let built = crate::build_layer_observed(
            spec,
            store,
            options,
            &NoProgress,
            (&NoKnownLayers, &crate::NoGate),
            &mut recorder,
        )
        .unwrap();
        (built, recorder)
    }

    #[test]
    fn an_observer_sees_every_entry_and_the_content_it_asks_for_without_changing_the_layer() {
        let tree = Tree::new();
        tree.file("pkg/package.json", b"{\"name\":\"x\"}", 0o644);
        tree.file("pkg/big.bin", &vec![7u8; 600 * 1024], 0o644);
        tree.symlink("pkg/alias", "package.json");
        let mut spec = LayerSpec::new(tree.root(), "/app");
        spec.remove = vec!["/old".into()];
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let options = BuildOptions {
            use_cache: false,
            ..BuildOptions::default()
        };
        let plain = crate::build_layer(&spec, &store, &options, &NoProgress).unwrap();
        let (observed, recorder) = observe(&spec, &store, &options);
        assert_eq!(observed.digest, plain.digest);
        assert_eq!(observed.diff_id, plain.diff_id);
        assert_eq!(recorder.written.as_ref(), Some(&observed));
        assert_eq!(
            recorder.entries,
            [
                ".wh.old Whiteout 0",
                "app/ Directory 0",
                "app/pkg/ Directory 0",
                "app/pkg/alias Symlink(\"package.json\") 0",
                "app/pkg/big.bin File 614400",
                "app/pkg/package.json File 12",
            ]
        );
        let json = b"{\"name\":\"x\"}".to_vec();
        let sha256: [u8; 32] = Sha256::digest(&json).into();
        assert_eq!(recorder.contents, [(json, sha256)]);
    }

    #[test]
    fn a_cache_hit_shows_nothing() {
        let tree = Tree::new();
        tree.file("package.json", b"{}", 0o644);
        let spec = LayerSpec::new(tree.root(), "/");
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let options = BuildOptions::default();
        crate::build_layer(&spec, &store, &options, &NoProgress).unwrap();
        let (hit, recorder) = observe(&spec, &store, &options);
        assert!(hit.from_cache);
        assert!(recorder.entries.is_empty() && recorder.written.is_none());
    }
}
