//! Entries that do not come from files on disk: the members of an archive (a Python
//! wheel; later a `.deb` or an npm package) or files generated in memory, streamed
//! straight into the layer's tar with no temporary extraction.
//!
//! An [`EntrySource`] lists its entries up front, each with its image path, mode, type
//! and, for a file, its size and sha256 as the source declares them (a wheel's `RECORD`
//! gives both without inflating anything). The layer cache keys on those declarations,
//! so an unchanged source is a cache hit without reading a byte of content; when the
//! layer is written, each file's bytes are counted and hashed as they stream, and one
//! that differs from its declaration is an error naming the source and the path.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

/// Any error a source reports; kept as the `source` of [`crate::Error::Source`].
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// One entry an [`EntrySource`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    /// Absolute path in the image (`/opt/venv/lib/python3.11/site-packages/six.py`);
    /// no `.`, `..` or `.wh.` components.
    pub path: String,
    /// What it is.
    pub kind: SourceKind,
    /// Permission and special bits (at most `0o7777`; ignored for symlinks).
    pub mode: u32,
}

/// The type of a [`SourceEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A directory (the parents of files need not be listed: they are made `0755`).
    Directory,
    /// A regular file whose content [`EntrySource::open`] gives.
    File {
        /// Its size in bytes.
        size: u64,
        /// The sha256 of its content.
        sha256: [u8; 32],
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: String,
    },
}

/// A set of layer entries with a way to open each file's content.
pub trait EntrySource: Send + Sync + fmt::Debug {
    /// Names the source in errors: `six-1.17.0-py2.py3-none-any.whl`.
    fn name(&self) -> String;

    /// Every entry, in any order (the layer sorts them). Called once per build.
    fn entries(&self) -> Result<Vec<SourceEntry>, SourceError>;

    /// The content of the file at `index` in what [`EntrySource::entries`] listed. The
    /// builder reads exactly the declared size and checks the sha256, so the reader
    /// need not check either itself.
    fn open(&self, index: usize) -> Result<Box<dyn Read + '_>, SourceError>;
}

/// An [`EntrySource`] a [`LayerSpec`](crate::LayerSpec) holds: shared, and equal to
/// another only when it is the same source.
#[derive(Clone, Debug)]
pub struct SharedSource(pub Arc<dyn EntrySource>);

impl SharedSource {
    /// Shares `source`.
    pub fn new(source: impl EntrySource + 'static) -> Self {
        SharedSource(Arc::new(source))
    }
}

impl PartialEq for SharedSource {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl Eq for SharedSource {}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::testutil::{Tree, read_layer};
    use crate::{BlobStore, BuildOptions, Error, FileSource, LayerSpec, NoProgress, build_layer};

    /// Files held in memory; `lie` makes it serve other bytes than it declared.
    #[derive(Debug, Default)]
    struct Memory {
        files: Vec<(String, Vec<u8>, u32)>,
        links: Vec<(String, String)>,
        opened: AtomicUsize,
        lie: bool,
    }

    impl EntrySource for Memory {
        fn name(&self) -> String {
            "memory.zip".into()
        }

        fn entries(&self) -> Result<Vec<SourceEntry>, SourceError> {
            let files = self.files.iter().map(|(path, data, mode)| SourceEntry {
                path: path.clone(),
                kind: SourceKind::File {
                    size: data.len() as u64,
                    sha256: Sha256::digest(data).into(),
                },
                mode: *mode,
            });
            let links = self.links.iter().map(|(path, target)| SourceEntry {
                path: path.clone(),
                kind: SourceKind::Symlink {
                    target: target.clone(),
                },
                mode: 0o777,
            });
            Ok(files.chain(links).collect())
        }

        fn open(&self, index: usize) -> Result<Box<dyn Read + '_>, SourceError> {
            self.opened.fetch_add(1, Ordering::Relaxed);
            let data = &self.files[index].1;
            if self.lie {
                return Ok(Box::new(std::io::Cursor::new(data.to_ascii_uppercase())));
            }
            Ok(Box::new(data.as_slice()))
        }
    }

    fn memory() -> Memory {
        Memory {
            files: vec![
                (
                    "/opt/lib/pkg/__init__.py".into(),
                    b"x = 1\n".to_vec(),
                    0o644,
                ),
                (
                    "/opt/bin/tool".into(),
                    b"#!/opt/bin/python\n".to_vec(),
                    0o755,
                ),
            ],
            links: vec![("/opt/bin/python".into(), "/usr/bin/python3".into())],
            ..Memory::default()
        }
    }

    fn spec_of(source: SharedSource) -> LayerSpec {
        LayerSpec {
            source: None,
            dest: "/".into(),
            sources: vec![source],
            ..LayerSpec::new("", "/")
        }
    }

    #[test]
    fn streamed_entries_make_the_layer_the_same_files_on_disk_make() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let source = SharedSource::new(memory());
        let built = build_layer(
            &spec_of(source),
            &store,
            &BuildOptions::default(),
            &NoProgress,
        )
        .unwrap();
        let entries = read_layer(&store, &built);
        let summary: Vec<(&str, u32, Option<&str>)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode, e.link.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("opt/", 0o755, None),
                ("opt/bin/", 0o755, None),
                ("opt/bin/python", 0o777, Some("/usr/bin/python3")),
                ("opt/bin/tool", 0o755, None),
                ("opt/lib/", 0o755, None),
                ("opt/lib/pkg/", 0o755, None),
                ("opt/lib/pkg/__init__.py", 0o644, None),
            ]
        );
        assert_eq!(entries[6].data, b"x = 1\n");

        // The same two files listed from disk (and no link) against the source
        // without its link: one digest, one cache key.
        let tree = Tree::new();
        let init = tree.file("init.py", b"x = 1\n", 0o644);
        let tool = tree.file("tool", b"#!/opt/bin/python\n", 0o755);
        let mut from_disk = LayerSpec::new("", "/");
        from_disk.source = None;
        from_disk.files = vec![
            FileSource {
                source: init,
                dest: "/opt/lib/pkg/__init__.py".into(),
                mode: None,
            },
            FileSource {
                source: tool,
                dest: "/opt/bin/tool".into(),
                mode: None,
            },
        ];
        let mut without_link = memory();
        without_link.links.clear();
        let options = BuildOptions {
            use_cache: false,
            ..BuildOptions::default()
        };
        let disk = build_layer(&from_disk, &store, &options, &NoProgress).unwrap();
        let streamed = build_layer(
            &spec_of(SharedSource::new(without_link)),
            &store,
            &options,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(disk.digest, streamed.digest);
        assert_eq!(disk.key, streamed.key);
    }

    #[test]
    fn an_unchanged_source_is_a_cache_hit_without_opening_anything() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let first = build_layer(
            &spec_of(SharedSource::new(memory())),
            &store,
            &BuildOptions::default(),
            &NoProgress,
        )
        .unwrap();
        let again = Arc::new(memory());
        let spec = spec_of(SharedSource(again.clone()));
        let second = build_layer(&spec, &store, &BuildOptions::default(), &NoProgress).unwrap();
        assert!(second.from_cache);
        assert_eq!(second.digest, first.digest);
        assert_eq!(again.opened.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn content_that_differs_from_its_declaration_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let lying = Memory {
            lie: true,
            ..memory()
        };
        let err = build_layer(
            &spec_of(SharedSource::new(lying)),
            &store,
            &BuildOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
        match &err {
            Error::SourceEntry { name, path, reason } => {
                assert_eq!(name, "memory.zip");
                assert_eq!(path, "/opt/bin/tool");
                assert!(reason.contains("not the declared"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_source_entry_on_a_taken_path_or_a_bad_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut twice = memory();
        twice
            .links
            .push(("/opt/lib/pkg/__init__.py".into(), "x".into()));
        let err = build_layer(
            &spec_of(SharedSource::new(twice)),
            &store,
            &BuildOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains("an entry of memory.zip"), "{err}");
        let mut escaping = memory();
        escaping
            .links
            .push(("/opt/../etc/passwd".into(), "x".into()));
        let err = build_layer(
            &spec_of(SharedSource::new(escaping)),
            &store,
            &BuildOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::SourceEntry { ref path, .. } if path == "/opt/../etc/passwd"),
            "{err}"
        );
    }
}
