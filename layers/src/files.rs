//! Listed files: single files put at chosen paths in the image (Docker's `COPY file
//! /path` habit), merged with a layer's directory walk.
//!
//! Each [`FileSource`] becomes one regular-file entry at its own `dest`, owned by the
//! layer's owner, with its `mode` or (without one) its mode on disk under the layer's
//! [`ModePolicy`]. Directories above a listed file that nothing else in the layer
//! provides come as [`PARENT_DIR_MODE`] entries owned by 0:0. A path two entries claim
//! is an error naming both; so is a listed file where another entry needs a directory.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::entry::{Entry, FileInfo, Kind, Member};
use crate::error::Error;
use crate::source::{SharedSource, SourceKind};
use crate::spec::{FileSource, ModePolicy, PARENT_DIR_MODE};

/// Where an entry came from, to name both sides of a conflict.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    /// The directory walk (or the layer's destination and its parents, or a whiteout).
    Walk(PathBuf),
    /// A listed file.
    Listed,
    /// An entry of the [`EntrySource`](crate::EntrySource) of this name.
    Source(Arc<str>),
    /// A parent directory added for listed files.
    Parent,
}

fn describe(entry: &Entry, origin: &Origin) -> String {
    match (origin, &entry.kind) {
        (Origin::Listed, Kind::File(info)) => {
            format!("the listed file {}", info.source.display())
        }
        (Origin::Walk(root), Kind::File(info)) => format!(
            "{} (from the directory {})",
            info.source.display(),
            root.display()
        ),
        (Origin::Parent, _) => "a parent directory of listed files".to_owned(),
        (Origin::Source(name), _) => format!("an entry of {name}"),
        (_, _) => format!("the directory {}", origin_root(origin).display()),
    }
}

fn origin_root(origin: &Origin) -> &Path {
    match origin {
        Origin::Walk(root) => root,
        _ => Path::new(""),
    }
}

/// The entries of `files`, each with its origin: the files themselves (not yet their
/// parents; [`merge`] adds those).
pub(crate) fn listed_entries(
    files: &[FileSource],
    dest_components: impl Fn(&str) -> Result<Vec<&str>, Error>,
    modes: ModePolicy,
    uid: u32,
    gid: u32,
) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let components = dest_components(&file.dest)?;
        if components.is_empty() {
            return Err(Error::InvalidDest {
                dest: file.dest.clone(),
                reason: "a listed file needs a path below /",
            });
        }
        if let Some(mode) = file.mode.filter(|mode| *mode > 0o7777) {
            return Err(Error::InvalidMode {
                path: file.source.clone(),
                mode,
            });
        }
        let metadata = fs::metadata(&file.source).map_err(|e| Error::io(&file.source, e))?;
        if !metadata.is_file() {
            return Err(Error::SourceNotFile {
                path: file.source.clone(),
                is_dir: metadata.is_dir(),
            });
        }
        let info = FileInfo {
            source: file.source.clone(),
            size: metadata.len(),
            dev: metadata.dev(),
            ino: metadata.ino(),
            // Each listed file is a copy of its own, with its own mode: never a hard link
            // to another entry (a tar hard link carries no mode of its own).
            nlink: 1,
        };
        entries.push(Entry {
            path: components.join("/"),
            kind: Kind::File(info),
            mode: file
                .mode
                .unwrap_or_else(|| modes.apply(metadata.mode(), false)),
            uid,
            gid,
        });
    }
    Ok(entries)
}

/// The entries every source lists, each with its origin, owned by `uid`:`gid`; their
/// paths are checked as image paths by `dest_components`.
pub(crate) fn source_entries(
    sources: &[SharedSource],
    dest_components: impl Fn(&str) -> Result<Vec<&str>, Error>,
    uid: u32,
    gid: u32,
) -> Result<Vec<(Entry, Origin)>, Error> {
    let mut entries = Vec::new();
    for (source_index, source) in sources.iter().enumerate() {
        let name: Arc<str> = source.0.name().into();
        let listed = source.0.entries().map_err(|source| Error::Source {
            name: name.to_string(),
            source,
        })?;
        for (index, listed) in listed.into_iter().enumerate() {
            let invalid = |reason: String| Error::SourceEntry {
                name: name.to_string(),
                path: listed.path.clone(),
                reason,
            };
            let components = dest_components(&listed.path).map_err(|e| invalid(e.to_string()))?;
            if components.is_empty() {
                return Err(invalid("an entry needs a path below /".into()));
            }
            if listed.mode > 0o7777 {
                return Err(invalid(format!(
                    "mode {:#o} has bits beyond 0o7777",
                    listed.mode
                )));
            }
            let mut path = components.join("/");
            let (kind, mode) = match listed.kind {
                SourceKind::Directory => {
                    path.push('/');
                    (Kind::Directory, listed.mode)
                }
                SourceKind::File { size, sha256 } => (
                    Kind::Streamed(Member {
                        source: source_index,
                        index,
                        size,
                        sha256,
                        origin: Arc::clone(&name),
                    }),
                    listed.mode,
                ),
                SourceKind::Symlink { ref target } => (
                    Kind::Symlink {
                        target: target.clone(),
                    },
                    0o777,
                ),
            };
            let entry = Entry {
                path,
                kind,
                mode,
                uid,
                gid,
            };
            entries.push((entry, Origin::Source(Arc::clone(&name))));
        }
    }
    Ok(entries)
}

/// `walked` (the directory walk with its parents, and whiteouts) plus `listed`, with
/// the parent directories the listed files need; unsorted. `walk_root` names the
/// directory in conflicts.
pub(crate) fn merge(
    walked: Vec<Entry>,
    walk_root: Option<&Path>,
    listed: Vec<(Entry, Origin)>,
) -> Result<Vec<Entry>, Error> {
    let walk = Origin::Walk(walk_root.map(Path::to_path_buf).unwrap_or_default());
    let mut entries: Vec<(Entry, Origin)> = walked
        .into_iter()
        .map(|entry| (entry, walk.clone()))
        .collect();
    // Keyed without the trailing `/` of directories, so a file and a directory of one
    // name collide.
    let mut claimed: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (entry, _))| (key(&entry.path).to_owned(), i))
        .collect();
    let first_listed = entries.len();
    for (entry, origin) in listed {
        if let Some(&i) = claimed.get(key(&entry.path)) {
            let (first, first_origin) = &entries[i];
            // A source may list a directory that a file of it (or of another source)
            // also needs: one entry, the first.
            if entry.kind == Kind::Directory && first.kind == Kind::Directory {
                continue;
            }
            return Err(Error::DuplicateDestination {
                path: format!("/{}", key(&entry.path)),
                first: describe(first, first_origin),
                second: describe(&entry, &origin),
            });
        }
        claimed.insert(key(&entry.path).to_owned(), entries.len());
        entries.push((entry, origin));
    }
    // Parents only once every file is claimed, so a file that another one needs as
    // its directory is found whichever is listed first.
    for i in first_listed..entries.len() {
        if !matches!(entries[i].1, Origin::Listed | Origin::Source(_)) {
            continue;
        }
        let path = entries[i].0.path.clone();
        let mut parent = String::new();
        for component in path.split('/').take(path.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match claimed.get(parent.as_str()) {
                Some(&j) if entries[j].0.kind == Kind::Directory => {}
                Some(&j) => {
                    return Err(Error::NotADirectory {
                        path: format!("/{parent}"),
                        first: describe(&entries[j].0, &entries[j].1),
                        second: describe(&entries[i].0, &entries[i].1),
                    });
                }
                None => {
                    claimed.insert(parent.clone(), entries.len());
                    let directory = Entry {
                        path: format!("{parent}/"),
                        kind: Kind::Directory,
                        mode: PARENT_DIR_MODE,
                        uid: 0,
                        gid: 0,
                    };
                    entries.push((directory, Origin::Parent));
                }
            }
        }
    }
    Ok(entries.into_iter().map(|(entry, _)| entry).collect())
}

fn key(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use tar::EntryType as T;

    use crate::testutil::{ReadEntry, Tree, read_layer};
    use crate::{BlobStore, BuildOptions, BuiltLayer, Error, FileSource, LayerSpec, build_layer};

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn build(spec: &LayerSpec, store: &BlobStore, use_cache: bool) -> Result<BuiltLayer, Error> {
        let options = BuildOptions {
            threads: 1,
            use_cache,
        };
        build_layer(spec, store, &options, &crate::NoProgress)
    }

    fn listed(source: &std::path::Path, dest: &str, mode: Option<u32>) -> FileSource {
        FileSource {
            source: source.to_path_buf(),
            dest: dest.into(),
            mode,
        }
    }

    fn files_only(files: Vec<FileSource>) -> LayerSpec {
        LayerSpec {
            source: None,
            files,
            ..LayerSpec::new("", "/")
        }
    }

    fn summary(entries: &[ReadEntry]) -> Vec<(&str, T, u32, u64, u64)> {
        entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind, e.mode, e.uid, e.gid))
            .collect()
    }

    #[test]
    fn listed_files_land_at_their_paths_with_their_modes_and_root_parents() {
        let tree = Tree::new();
        let conf = tree.file("deploy/nginx.conf", b"worker_processes 1;\n", 0o600);
        let start = tree.file("start.sh", b"#!/bin/sh\nexec nginx\n", 0o644);
        tree.symlink("alias.conf", "deploy/nginx.conf");
        let (_dir, store) = store();
        let mut spec = files_only(vec![
            listed(&start, "/usr/local/bin/start", Some(0o755)),
            listed(&conf, "/etc/nginx/nginx.conf", None),
            // The same file twice, once through a symlink: two plain copies.
            listed(
                &tree.root().join("alias.conf"),
                "/etc/nginx/copy.conf",
                Some(0o644),
            ),
        ]);
        spec.uid = 101;
        spec.gid = 102;
        spec.mtime = 1_700_000_000;
        let entries = read_layer(&store, &build(&spec, &store, false).unwrap());
        assert_eq!(
            summary(&entries),
            [
                ("etc/", T::Directory, 0o755, 0, 0),
                ("etc/nginx/", T::Directory, 0o755, 0, 0),
                ("etc/nginx/copy.conf", T::Regular, 0o644, 101, 102),
                ("etc/nginx/nginx.conf", T::Regular, 0o600, 101, 102),
                ("usr/", T::Directory, 0o755, 0, 0),
                ("usr/local/", T::Directory, 0o755, 0, 0),
                ("usr/local/bin/", T::Directory, 0o755, 0, 0),
                ("usr/local/bin/start", T::Regular, 0o755, 101, 102),
            ]
        );
        assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
        assert_eq!(entries[2].data, b"worker_processes 1;\n");
        assert_eq!(entries[3].data, b"worker_processes 1;\n");
        assert_eq!(entries[7].data, b"#!/bin/sh\nexec nginx\n");
    }

    #[test]
    fn order_of_the_list_does_not_change_the_bytes() {
        let tree = Tree::new();
        let a = tree.file("a", b"alpha", 0o644);
        let b = tree.file("b", b"beta", 0o644);
        let (_dir, store) = store();
        let one = files_only(vec![listed(&a, "/x/a", None), listed(&b, "/w/b", None)]);
        let two = files_only(vec![listed(&b, "/w/b", None), listed(&a, "/x/a", None)]);
        assert_eq!(
            build(&one, &store, false).unwrap(),
            build(&two, &store, false).unwrap()
        );
    }

    #[test]
    fn files_merge_with_a_directory_walk() {
        let tree = Tree::new();
        tree.dir("app", 0o750);
        tree.file("app/main.py", b"print()\n", 0o644);
        tree.dir("app/conf", 0o700);
        let start = tree.file("start.sh", b"#!/bin/sh\n", 0o644);
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root().join("app"), "/opt/app");
        spec.files = vec![
            listed(&start, "/opt/app/conf/start", Some(0o755)),
            listed(&start, "/opt/run", Some(0o700)),
        ];
        let entries = read_layer(&store, &build(&spec, &store, false).unwrap());
        // The walk's directories keep their modes; no second entry for them.
        assert_eq!(
            summary(&entries),
            [
                ("opt/", T::Directory, 0o755, 0, 0),
                ("opt/app/", T::Directory, 0o750, 0, 0),
                ("opt/app/conf/", T::Directory, 0o700, 0, 0),
                ("opt/app/conf/start", T::Regular, 0o755, 0, 0),
                ("opt/app/main.py", T::Regular, 0o644, 0, 0),
                ("opt/run", T::Regular, 0o700, 0, 0),
            ]
        );
    }

    #[test]
    fn conflicts_name_both_entries() {
        let tree = Tree::new();
        let a = tree.file("a.conf", b"a", 0o644);
        let b = tree.file("b.conf", b"b", 0o644);
        tree.file("app/main.py", b"", 0o644);
        let (_dir, store) = store();
        let twice = files_only(vec![
            listed(&a, "/etc/x", None),
            listed(&b, "/etc//x", None),
        ]);
        match build(&twice, &store, false) {
            Err(e @ Error::DuplicateDestination { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with("/etc/x is in the layer twice"), "{text}");
                assert!(text.contains(&a.display().to_string()), "{text}");
                assert!(text.contains(&b.display().to_string()), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let below_a_file = files_only(vec![
            listed(&a, "/etc/x", None),
            listed(&b, "/etc/x/y", None),
        ]);
        assert!(matches!(
            build(&below_a_file, &store, false),
            Err(Error::NotADirectory { path, .. }) if path == "/etc/x"
        ));
        let mut over_the_walk = LayerSpec::new(tree.root().join("app"), "/app");
        over_the_walk.files = vec![listed(&a, "/app/main.py", None)];
        match build(&over_the_walk, &store, false) {
            Err(Error::DuplicateDestination { path, first, .. }) => {
                assert_eq!(path, "/app/main.py");
                assert!(first.contains("main.py"), "{first}");
            }
            other => panic!("{other:?}"),
        }
        let mut on_the_dest = LayerSpec::new(tree.root().join("app"), "/app");
        on_the_dest.files = vec![listed(&a, "/app", None)];
        assert!(matches!(
            build(&on_the_dest, &store, false),
            Err(Error::DuplicateDestination { path, .. }) if path == "/app"
        ));
    }

    #[test]
    fn bad_listed_files_are_named() {
        let tree = Tree::new();
        let file = tree.file("f", b"", 0o644);
        let dir = tree.dir("d", 0o755);
        let (_dir, store) = store();
        assert!(matches!(
            build(&files_only(vec![listed(&dir, "/d", None)]), &store, false),
            Err(Error::SourceNotFile { path, is_dir: true }) if path == dir
        ));
        let missing = tree.root().join("missing");
        assert!(matches!(
            build(&files_only(vec![listed(&missing, "/m", None)]), &store, false),
            Err(Error::Io { path, .. }) if path == missing
        ));
        for dest in ["relative", "/", "/a/../b", "/etc/.wh.x"] {
            assert!(
                matches!(
                    build(&files_only(vec![listed(&file, dest, None)]), &store, false),
                    Err(Error::InvalidDest { dest: named, .. }) if named == dest
                ),
                "{dest}"
            );
        }
        assert!(matches!(
            build(
                &files_only(vec![listed(&file, "/f", Some(0o10_000))]),
                &store,
                false
            ),
            Err(Error::InvalidMode { mode: 0o10_000, .. })
        ));
    }

    #[test]
    fn the_cache_key_covers_mode_and_destination() {
        let tree = Tree::new();
        let file = tree.file("start.sh", b"#!/bin/sh\n", 0o644);
        let (_dir, store) = store();
        let first = build(
            &files_only(vec![listed(&file, "/start", None)]),
            &store,
            true,
        )
        .unwrap();
        let again = build(
            &files_only(vec![listed(&file, "/start", None)]),
            &store,
            true,
        )
        .unwrap();
        assert!(again.from_cache);
        assert_eq!(first.digest, again.digest);
        let moded = build(
            &files_only(vec![listed(&file, "/start", Some(0o755))]),
            &store,
            true,
        )
        .unwrap();
        assert!(!moded.from_cache);
        assert_ne!(moded.digest, first.digest);
        let moved = build(
            &files_only(vec![listed(&file, "/bin/start", None)]),
            &store,
            true,
        )
        .unwrap();
        assert!(!moved.from_cache);
        assert_ne!(moved.digest, first.digest);
    }
}
