//! Building one layer: the spec, the options and [`build_layer`].

use std::collections::HashMap;
use std::path::Path;

use sha2::Digest as _;
use sha2::Sha256;

use crate::blob::BlobStore;
use crate::cache;
use crate::entry::{Entry, Kind, Member, WHITEOUT_PREFIX};
use crate::error::Error;
use crate::files::{self, Origin};
use crate::hash::Digest;
use crate::lanes::Lane;
use crate::observe::{EntryObserver, NoObserver, ObservedEntry, ObservedKind};
use crate::sink::LayerSink;
use crate::source::SharedSource;
use crate::spec::{
    BuildOptions, BuiltLayer, KnownLayers, LayerGate, LayerSpec, NoGate, NoKnownLayers,
    PARENT_DIR_MODE, Progress, WHITEOUT_MODE,
};
use crate::tar::{EntryType, Header, TarWriter};
use crate::walk::{self, Inexact, Landing};
/// How much of an entry source's file is read at a time (files on disk are read
/// straight into the tar stream's chunks, [`crate::sink::CHUNK`]).
const READ_BUFFER: usize = 256 * 1024;

/// Builds a layer from `spec` into `store`.
///
/// Walks the source, writes a tar with normalised headers in bytewise-sorted path order,
/// hashes it (diff_id), compresses it, hashes the compressed bytes (digest) and stores
/// the blob, in one streaming pass. The same spec over the same tree content gives the
/// same bytes on any machine with any thread count; file timestamps, creation order and
/// user names on disk do not matter.
pub fn build_layer(
    spec: &LayerSpec,
    store: &BlobStore,
    options: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuiltLayer, Error> {
    build_layer_reusing(spec, store, options, progress, &NoKnownLayers)
}

/// [`build_layer`], but a layer `known` holds under the layer's key (after the layer
/// cache missed, and only with [`BuildOptions::use_cache`]) is answered from there: its
/// sources are hashed, not archived or compressed, and its blob is not stored.
pub fn build_layer_reusing(
    spec: &LayerSpec,
    store: &BlobStore,
    options: &BuildOptions,
    progress: &dyn Progress,
    known: &dyn KnownLayers,
) -> Result<BuiltLayer, Error> {
    build_layer_observed(
        spec,
        store,
        options,
        progress,
        (known, &NoGate),
        &mut NoObserver,
    )
}

/// [`build_layer_reusing`] among builds running at once, with `observer` shown the
/// entries as they are written ([`EntryObserver`]: nothing when a cache or `known`
/// answers). `gate` holds the layer's key from before the cache is asked until the
/// layer is recorded, so a layer two builds share is archived once (the other finds
/// it in the cache).
pub fn build_layer_observed(
    spec: &LayerSpec,
    store: &BlobStore,
    options: &BuildOptions,
    progress: &dyn Progress,
    (known, gate): (&dyn KnownLayers, &dyn LayerGate),
    observer: &mut dyn EntryObserver,
) -> Result<BuiltLayer, Error> {
    options.validate()?;
    spec.compression.validate()?;
    let entries = plan_entries(spec)?;
    let total_bytes = entries.iter().map(|entry| entry.kind.content_size()).sum();

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    if options.use_cache {
        let hashes = cache::content_hashes(&entries, threads)?;
        let key = cache::key(spec, &entries, &hashes);
        let _held = gate.hold(&key);
        if let Some(hit) = cache::lookup(store, &key, spec.compression, progress) {
            progress.start(total_bytes);
            progress.advance(total_bytes);
            return Ok(hit);
        }
        if let Some(found) = known.find(&key, spec.compression.media_type()) {
            progress.start(total_bytes);
            progress.advance(total_bytes);
            return Ok(BuiltLayer {
                digest: found.digest,
                diff_id: found.diff_id,
                size: found.size,
                media_type: spec.compression.media_type().to_owned(),
                from_cache: false,
                key,
                known: true,
            });
        }
    }

    progress.start(total_bytes);
    let built = write_layer(spec, &entries, store, threads, progress, observer)?;
    if options.use_cache {
        cache::record(store, &built.key, &built)?;
        gate.built(&built);
    }
    observer.layer_written(&built);
    Ok(built)
}

/// Every entry of the layer, sorted, with hard links resolved.
pub(crate) fn plan_entries(spec: &LayerSpec) -> Result<Vec<Entry>, Error> {
    let dest = dest_components(&spec.dest)?;
    let removals = spec
        .remove
        .iter()
        .map(|path| whiteout_path(path))
        .collect::<Result<Vec<_>, _>>()?;
    let excludes = walk::compile_excludes(&spec.excludes)?;

    let mut entries = Vec::new();
    if let Some(source) = &spec.source {
        let mut prefix = String::new();
        for component in &dest {
            if !prefix.is_empty() {
                entries.push(directory(&prefix, PARENT_DIR_MODE, 0, 0));
            }
            prefix.push_str(component);
            prefix.push('/');
        }
        let (root_mode, walked) =
            walk::walk_source(source, &prefix, &excludes, spec.modes, spec.uid, spec.gid)?;
        if !prefix.is_empty() {
            entries.push(directory(&prefix, root_mode, spec.uid, spec.gid));
        }
        entries.extend(walked);
    }
    if !spec.files.is_empty() || !spec.sources.is_empty() {
        let mut listed: Vec<(Entry, Origin)> =
            files::listed_entries(&spec.files, dest_components, spec.modes, spec.uid, spec.gid)?
                .into_iter()
                .map(|entry| (entry, Origin::Listed))
                .collect();
        listed.extend(files::source_entries(
            &spec.sources,
            dest_components,
            spec.uid,
            spec.gid,
        )?);
        entries = files::merge(entries, spec.source.as_deref(), listed)?;
    }
    entries.extend(removals.into_iter().map(|path| Entry {
        path,
        kind: Kind::Whiteout,
        mode: WHITEOUT_MODE,
        uid: 0,
        gid: 0,
    }));

    // One global bytewise order, so parents precede children ("a/" < "a/x") and siblings
    // compare the way every platform does ("a-b" < "a/" since '-' < '/'), independent of
    // directory-listing order.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|later, earlier| {
        later.kind == Kind::Whiteout && earlier.kind == Kind::Whiteout && later.path == earlier.path
    });
    // Sources cannot hold `.wh.` names and whiteouts can only be `.wh.` names, and
    // `files::merge` refuses a listed file on a path already taken, so paths are unique
    // by construction.
    debug_assert!(entries.windows(2).all(|pair| pair[0].path != pair[1].path));
    resolve_hard_links(&mut entries);
    Ok(entries)
}

fn directory(path: &str, mode: u32, uid: u32, gid: u32) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: Kind::Directory,
        mode,
        uid,
        gid,
    }
}

/// The first name of a multiply-linked file (in archive order) carries its content; the
/// others become hard-link entries pointing at it, as tar readers expect.
fn resolve_hard_links(entries: &mut [Entry]) {
    let mut first_names: HashMap<(u64, u64), String> = HashMap::new();
    for entry in entries {
        let Kind::File(info) = &entry.kind else {
            continue;
        };
        if info.nlink < 2 {
            continue;
        }
        match first_names.get(&(info.dev, info.ino)) {
            Some(target) => {
                entry.kind = Kind::HardLink {
                    target: target.clone(),
                };
            }
            None => {
                first_names.insert((info.dev, info.ino), entry.path.clone());
            }
        }
    }
}

/// The components of an absolute image path; empty for `/`.
fn image_path_components(path: &str) -> Result<Vec<&str>, &'static str> {
    if !path.starts_with('/') {
        return Err("must be an absolute path (start with /)");
    }
    if path.contains('\0') {
        return Err("must not contain a NUL byte");
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for component in &components {
        match *component {
            ".." => return Err("must not contain .."),
            "." => return Err("must not contain . components"),
            c if c.starts_with(WHITEOUT_PREFIX) => {
                return Err("must not contain names starting with .wh. (reserved for whiteouts)");
            }
            _ => {}
        }
    }
    Ok(components)
}

fn dest_components(dest: &str) -> Result<Vec<&str>, Error> {
    image_path_components(dest).map_err(|reason| Error::InvalidDest {
        dest: dest.to_owned(),
        reason,
    })
}

/// `/etc/foo` → `etc/.wh.foo`.
fn whiteout_path(path: &str) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidRemove {
        path: path.to_owned(),
        reason,
    };
    let components = image_path_components(path).map_err(invalid)?;
    let Some((name, parents)) = components.split_last() else {
        return Err(invalid("cannot remove the root directory"));
    };
    let mut whiteout = String::new();
    for parent in parents {
        whiteout.push_str(parent);
        whiteout.push('/');
    }
    whiteout.push_str(WHITEOUT_PREFIX);
    whiteout.push_str(name);
    Ok(whiteout)
}

/// Streams the entries through tar → sha256 → compressor → blob store.
///
/// The layer's key comes from the file contents as they were archived: if a file
/// changed since a cache look-up, the key (and the cache record) still describe exactly
/// the bytes that were written. It is computed with the cache off too: it is recorded in
/// the image (an annotation), so `--no-cache` and `hoist verify` must give the same one.
fn write_layer(
    spec: &LayerSpec,
    entries: &[Entry],
    store: &BlobStore,
    threads: usize,
    progress: &dyn Progress,
    observer: &mut dyn EntryObserver,
) -> Result<BuiltLayer, Error> {
    let blob = store.writer()?;
    let out_path = blob.temp_path().to_path_buf();
    let output_error = |e| Error::io(&out_path, e);
    let sink = LayerSink::new(blob, spec.compression, threads).map_err(output_error)?;
    let mut tar = TarWriter::new(sink);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut hashes = Vec::new();

    for entry in entries {
        let (entry_type, size, link, observed) = match &entry.kind {
            Kind::Directory => (EntryType::Directory, 0, "", ObservedKind::Directory),
            Kind::File(info) => (EntryType::Regular, info.size, "", ObservedKind::File),
            Kind::Streamed(member) => (EntryType::Regular, member.size, "", ObservedKind::File),
            Kind::Symlink { target } => (
                EntryType::Symlink,
                0,
                target.as_str(),
                ObservedKind::Symlink(target),
            ),
            Kind::HardLink { target } => (
                EntryType::HardLink,
                0,
                target.as_str(),
                ObservedKind::HardLink(target),
            ),
            Kind::Whiteout => (EntryType::Regular, 0, "", ObservedKind::Whiteout),
        };
        let watched = observer.entry(&ObservedEntry {
            path: &entry.path,
            kind: observed,
            size,
        }) && observed == ObservedKind::File;
        tar.write_header(&Header {
            path: &entry.path,
            entry_type,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            size,
            mtime: spec.mtime,
            link,
        })
        .map_err(output_error)?;

        if let Kind::File(info) = &entry.kind {
            let mut landing = IntoTar {
                sink: tar.get_mut(),
                hasher: Lane::default(),
                observer: watched.then_some(&mut *observer),
                progress,
                out_path: &out_path,
            };
            walk::read_file(info, &mut landing)?;
            let sha256 = landing.hasher.finalize();
            tar.end_data(info.size).map_err(output_error)?;
            if watched {
                observer.content_end(&sha256);
            }
            hashes.push(sha256);
        }
        if let Kind::Streamed(member) = &entry.kind {
            let source = &spec.sources[member.source];
            stream_member(source, member, &entry.path, &mut buf, |chunk| {
                tar.write_data(chunk).map_err(output_error)?;
                if watched {
                    observer.content(chunk);
                }
                progress.advance(chunk.len() as u64);
                Ok(())
            })?;
            tar.end_data(member.size).map_err(output_error)?;
            if watched {
                // stream_member checked the content against this declaration.
                observer.content_end(&member.sha256);
            }
            hashes.push(member.sha256);
        }
    }

    let (blob, diff_id) = tar
        .finish()
        .and_then(LayerSink::finish)
        .map_err(output_error)?;
    let (digest, size) = blob.commit()?;
    let built = BuiltLayer {
        digest,
        diff_id,
        size,
        media_type: spec.compression.media_type().to_owned(),
        from_cache: false,
        key: cache::key(spec, entries, &hashes),
        known: false,
    };
    Ok(built)
}

/// Lands a file's content straight in the tar stream's buffers (no copy), hashing it
/// for the layer key (with the diff_id, at once) and showing it to the observer, if it
/// asked, on the way.
struct IntoTar<'a> {
    sink: &'a mut LayerSink,
    hasher: Lane,
    observer: Option<&'a mut dyn EntryObserver>,
    progress: &'a dyn Progress,
    out_path: &'a Path,
}

impl Landing for IntoTar<'_> {
    fn space(&mut self, max: usize) -> &mut [u8] {
        self.sink.space(max)
    }

    fn landed(&mut self, len: usize) -> Result<(), Error> {
        let observer = self.observer.as_deref_mut();
        let seen = |bytes: &[u8]| {
            if let Some(observer) = observer {
                observer.content(bytes);
            }
        };
        self.progress.advance(len as u64);
        self.sink
            .commit(len, &mut self.hasher, seen)
            .map_err(|e| Error::io(self.out_path, e))
    }
}

/// Streams one file of an entry source to `sink`: exactly its declared size, hashed
/// and compared with its declared sha256 (a tar header already promised that many
/// bytes, and the cache key already named that content).
fn stream_member(
    source: &SharedSource,
    member: &Member,
    path: &str,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let wrong = |reason: String| Error::SourceEntry {
        name: member.origin.to_string(),
        path: format!("/{path}"),
        reason,
    };
    let mut reader = source.0.open(member.index).map_err(|e| Error::Source {
        name: member.origin.to_string(),
        source: e,
    })?;
    let mut hasher = Sha256::new();
    let mut hashed = |chunk: &[u8]| {
        hasher.update(chunk);
        sink(chunk)
    };
    let mut landing = walk::Buffered {
        buf,
        sink: &mut hashed,
    };
    walk::copy_exact(&mut reader, member.size, &mut landing).map_err(|inexact| match inexact {
        Inexact::Short { remaining } => wrong(format!(
            "its content ended {remaining} bytes short of its declared {} bytes",
            member.size
        )),
        Inexact::Long => wrong(format!(
            "its content runs past its declared {} bytes",
            member.size
        )),
        Inexact::Read(e) => wrong(format!("reading its content failed: {e}")),
        Inexact::Sink(e) => e,
    })?;
    let found: [u8; 32] = hasher.finalize().into();
    if found != member.sha256 {
        return Err(wrong(format!(
            "its content has sha256 {}, not the declared {}",
            Digest::from_sha256_bytes(&found).hex(),
            Digest::from_sha256_bytes(&member.sha256).hex()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tar::EntryType as T;

    use super::*;
    use crate::Digest;
    use crate::spec::{Compression, KnownLayer, MAX_THREADS, ModePolicy, NoProgress};
    use crate::testutil::{ReadEntry, Tree, read_layer};

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    const NO_CACHE: BuildOptions = BuildOptions {
        threads: 1,
        use_cache: false,
    };

    fn build(spec: &LayerSpec, store: &BlobStore) -> Result<BuiltLayer, Error> {
        build_layer(spec, store, &NO_CACHE, &NoProgress)
    }

    fn paths(entries: &[ReadEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn find<'a>(entries: &'a [ReadEntry], path: &str) -> &'a ReadEntry {
        entries
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} not in {:?}", paths(entries)))
    }

    #[test]
    fn archive_is_sorted_by_full_path() {
        let tree = Tree::new();
        tree.file("a/x", b"x", 0o644);
        tree.file("a-b", b"ab", 0o644);
        tree.file("a.c", b"ac", 0o644);
        tree.file("B", b"B", 0o644);
        let (_dir, store) = store();
        let built = build(&LayerSpec::new(tree.root(), "/"), &store).unwrap();
        let entries = read_layer(&store, &built);
        // Bytewise: 'B' < 'a'; '-' (0x2d) < '.' (0x2e) < '/' (0x2f).
        assert_eq!(paths(&entries), ["B", "a-b", "a.c", "a/", "a/x"]);
    }

    #[test]
    fn headers_carry_modes_owners_links_and_mtime() {
        let tree = Tree::new();
        tree.dir("bin", 0o755);
        tree.file("bin/tool", b"#!/bin/sh\n", 0o4755);
        tree.file("etc/conf", b"key=value\n", 0o640);
        tree.dir("shared", 0o2775);
        tree.dir("tmp", 0o1777);
        tree.symlink("bin/link", "../etc/conf");
        tree.symlink("dangling", "/does/not/exist");
        tree.file("data/original", b"same inode", 0o600);
        tree.hard_link("data/original", "data/copy");
        tree.hard_link("data/original", "a-first");
        fs_chmod(tree.root(), 0o750);

        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root(), "/opt/app");
        spec.uid = 1000;
        spec.gid = 2000;
        spec.mtime = 1_700_000_000;
        let built = build(&spec, &store).unwrap();
        assert_eq!(
            built.media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(!built.from_cache);
        let entries = read_layer(&store, &built);

        assert_eq!(
            paths(&entries),
            [
                "opt/",
                "opt/app/",
                "opt/app/a-first",
                "opt/app/bin/",
                "opt/app/bin/link",
                "opt/app/bin/tool",
                "opt/app/dangling",
                "opt/app/data/",
                "opt/app/data/copy",
                "opt/app/data/original",
                "opt/app/etc/",
                "opt/app/etc/conf",
                "opt/app/shared/",
                "opt/app/tmp/",
            ]
        );
        assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));

        let parent = find(&entries, "opt/");
        assert_eq!(
            (parent.kind, parent.mode, parent.uid, parent.gid),
            (T::Directory, 0o755, 0, 0)
        );
        let dest = find(&entries, "opt/app/");
        assert_eq!(
            (dest.kind, dest.mode, dest.uid, dest.gid),
            (T::Directory, 0o750, 1000, 2000)
        );

        let tool = find(&entries, "opt/app/bin/tool");
        assert_eq!(
            (tool.kind, tool.mode, tool.uid, tool.gid),
            (T::Regular, 0o4755, 1000, 2000)
        );
        assert_eq!(tool.data, b"#!/bin/sh\n");
        assert_eq!(find(&entries, "opt/app/etc/conf").mode, 0o640);
        assert_eq!(find(&entries, "opt/app/shared/").mode, 0o2775);
        assert_eq!(find(&entries, "opt/app/tmp/").mode, 0o1777);

        let link = find(&entries, "opt/app/bin/link");
        assert_eq!((link.kind, link.mode), (T::Symlink, 0o777));
        assert_eq!(link.link.as_deref(), Some("../etc/conf"));
        assert_eq!(
            find(&entries, "opt/app/dangling").link.as_deref(),
            Some("/does/not/exist")
        );

        // The first name in archive order carries the content.
        let first = find(&entries, "opt/app/a-first");
        assert_eq!((first.kind, first.mode), (T::Regular, 0o600));
        assert_eq!(first.data, b"same inode");
        for other in ["opt/app/data/copy", "opt/app/data/original"] {
            let entry = find(&entries, other);
            assert_eq!(entry.kind, T::Link, "{other}");
            assert_eq!(entry.link.as_deref(), Some("opt/app/a-first"));
            assert!(entry.data.is_empty());
        }
    }

    fn fs_chmod(path: &std::path::Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn normalize_policy_ignores_umask_bits_but_keeps_special_bits() {
        let tree = Tree::new();
        tree.file("plain", b"", 0o600);
        tree.file("script", b"", 0o700);
        tree.file("suid", b"", 0o4700);
        tree.dir("private", 0o700);
        tree.dir("sticky", 0o1770);
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root(), "/");
        spec.modes = ModePolicy::Normalize;
        let entries = read_layer(&store, &build(&spec, &store).unwrap());
        let modes: Vec<(&str, u32)> = entries.iter().map(|e| (e.path.as_str(), e.mode)).collect();
        assert_eq!(
            modes,
            [
                ("plain", 0o644),
                ("private/", 0o755),
                ("script", 0o755),
                ("sticky/", 0o1755),
                ("suid", 0o4755),
            ]
        );
    }

    #[test]
    fn long_paths_and_link_targets_use_pax() {
        let tree = Tree::new();
        // 300 bytes in the archive: more than ustar's 100 + 155 can hold.
        let long_dir = format!("{}/{}", "d".repeat(120), "e".repeat(120));
        let long_file = format!("{long_dir}/{}", "f".repeat(300 - 4 - long_dir.len() - 1));
        tree.file(&long_file, b"deep", 0o644);
        let long_target = format!("../{}", "t".repeat(200));
        tree.symlink("link", &long_target);
        tree.file("caf\u{e9}.txt", b"unicode", 0o644);
        let (_dir, store) = store();
        let entries = read_layer(
            &store,
            &build(&LayerSpec::new(tree.root(), "/app"), &store).unwrap(),
        );

        let archived = format!("app/{long_file}");
        assert_eq!(archived.len(), 300);
        assert_eq!(find(&entries, &archived).data, b"deep");
        assert!(entries.iter().any(|e| e.path == format!("app/{long_dir}/")));
        assert_eq!(
            find(&entries, "app/link").link.as_deref(),
            Some(long_target.as_str())
        );
        assert_eq!(find(&entries, "app/caf\u{e9}.txt").data, b"unicode");
        assert!(entries.iter().all(|e| !e.path.contains("PaxHeaders")));
    }

    #[test]
    fn whiteouts_and_dest_variants() {
        let tree = Tree::new();
        tree.file("index.html", b"<p>", 0o644);
        let (_dir, store) = store();

        let mut spec = LayerSpec::new(tree.root(), "/");
        spec.remove = vec![
            "/etc/old.conf".into(),
            "/stale".into(),
            "/etc//old.conf".into(),
        ];
        spec.mtime = 42;
        let entries = read_layer(&store, &build(&spec, &store).unwrap());
        // No dest entry for "/", duplicate removals collapse.
        assert_eq!(
            paths(&entries),
            [".wh.stale", "etc/.wh.old.conf", "index.html"]
        );
        let whiteout = find(&entries, "etc/.wh.old.conf");
        assert_eq!(
            (
                whiteout.kind,
                whiteout.mode,
                whiteout.uid,
                whiteout.gid,
                whiteout.mtime
            ),
            (T::Regular, WHITEOUT_MODE, 0, 0, 42)
        );
        assert!(whiteout.data.is_empty());

        let whiteouts_only = LayerSpec {
            source: None,
            remove: vec!["/usr/share/doc".into()],
            ..LayerSpec::new("", "/usr/share/nginx/html")
        };
        let entries = read_layer(&store, &build(&whiteouts_only, &store).unwrap());
        assert_eq!(paths(&entries), ["usr/share/.wh.doc"]);
    }

    #[test]
    fn invalid_dest_and_remove_paths_are_named() {
        let tree = Tree::new();
        let (_dir, store) = store();
        for dest in ["app", "/a/../b", "/a/./b", "/a/.wh.b", ""] {
            match build(&LayerSpec::new(tree.root(), dest), &store) {
                Err(Error::InvalidDest { dest: named, .. }) => assert_eq!(named, dest),
                other => panic!("{dest:?}: {other:?}"),
            }
        }
        for remove in ["/", "relative", "/x/.."] {
            let mut spec = LayerSpec::new(tree.root(), "/");
            spec.remove = vec![remove.into()];
            match build(&spec, &store) {
                Err(Error::InvalidRemove { path, .. }) => assert_eq!(path, remove),
                other => panic!("{remove:?}: {other:?}"),
            }
        }
        let mut spec = LayerSpec::new(tree.root(), "/");
        spec.compression = Compression::Gzip { level: 10 };
        assert!(matches!(
            build(&spec, &store),
            Err(Error::InvalidCompressionLevel {
                algorithm: "gzip",
                level: 10,
                ..
            })
        ));
        spec.compression = Compression::Zstd { level: 99 };
        assert!(matches!(
            build(&spec, &store),
            Err(Error::InvalidCompressionLevel {
                algorithm: "zstd",
                level: 99,
                ..
            })
        ));
    }

    #[test]
    fn excludes_filter_files_dirs_and_negations() {
        let tree = Tree::new();
        tree.file("app.js", b"", 0o644);
        tree.file("app.js.map", b"", 0o644);
        tree.file("keep.map", b"", 0o644);
        tree.file("node_modules/dep/index.js", b"", 0o644);
        tree.file("build/out.o", b"", 0o644);
        tree.file("src/build/generated.rs", b"", 0o644);
        tree.file("src/lib.js.map", b"", 0o644);
        // Proof that excluded directories are not descended into: reaching this socket
        // would be an error.
        let _socket =
            std::os::unix::net::UnixListener::bind(tree.root().join("node_modules/dep/sock"))
                .unwrap();
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root(), "/");
        spec.excludes = [
            "*.map",
            "node_modules/",
            "/build",
            "!keep.map",
            "# a comment",
            "",
        ]
        .map(String::from)
        .to_vec();
        let entries = read_layer(&store, &build(&spec, &store).unwrap());
        assert_eq!(
            paths(&entries),
            [
                "app.js",
                "keep.map",
                "src/",
                "src/build/",
                "src/build/generated.rs"
            ]
        );
    }

    #[test]
    fn excludes_match_relative_to_the_source_even_when_names_repeat() {
        // The source directory's own name appearing again inside it must not confuse
        // anchored patterns.
        let outer = Tree::new();
        outer.file("app/app/main.js", b"", 0o644);
        outer.file("app/main.js", b"", 0o644);
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(outer.root().join("app"), "/");
        spec.excludes = vec!["/main.js".into()];
        let entries = read_layer(&store, &build(&spec, &store).unwrap());
        assert_eq!(paths(&entries), ["app/", "app/main.js"]);
    }

    #[test]
    fn bad_exclude_pattern_is_named() {
        let tree = Tree::new();
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root(), "/");
        spec.excludes = vec!["ok/".into(), "{unclosed".into(), "[z-a]".into()];
        match build(&spec, &store) {
            Err(Error::InvalidExclude { pattern, reason }) => {
                assert_eq!(pattern, "{unclosed");
                assert!(reason.contains("unclosed alternate group"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn special_files_are_rejected_with_their_path() {
        let tree = Tree::new();
        let socket = tree.root().join("control.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let (_dir, store) = store();
        match build(&LayerSpec::new(tree.root(), "/"), &store) {
            Err(Error::SpecialFile { path, kind }) => {
                assert_eq!((path, kind), (socket, "socket"));
            }
            other => panic!("{other:?}"),
        }

        let tree = Tree::new();
        let fifo = tree.root().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        match build(&LayerSpec::new(tree.root(), "/"), &store) {
            Err(Error::SpecialFile { path, kind }) => assert_eq!((path, kind), (fifo, "FIFO")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_sources_are_named() {
        let tree = Tree::new();
        let file = tree.file("file", b"", 0o644);
        let (_dir, store) = store();
        match build(&LayerSpec::new(&file, "/"), &store) {
            Err(Error::SourceNotDirectory { path }) => assert_eq!(path, file),
            other => panic!("{other:?}"),
        }
        let missing = tree.root().join("missing");
        match build(&LayerSpec::new(&missing, "/"), &store) {
            Err(Error::Io { path, source }) => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        tree.file("sub/.wh.sneaky", b"", 0o644);
        match build(&LayerSpec::new(tree.root(), "/"), &store) {
            Err(Error::ReservedName { path }) => {
                assert_eq!(path, tree.root().join("sub/.wh.sneaky"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_utf8_names_are_rejected_with_their_path() {
        use std::os::unix::ffi::OsStrExt;
        let tree = Tree::new();
        let bad = tree
            .root()
            .join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.txt"));
        std::fs::write(&bad, b"").unwrap();
        let (_dir, store) = store();
        match build(&LayerSpec::new(tree.root(), "/"), &store) {
            Err(Error::NonUtf8Path { path }) => assert_eq!(path, bad),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_symlinked_source_root_is_followed() {
        let tree = Tree::new();
        tree.file("real/file", b"via link", 0o644);
        tree.symlink("alias", "real");
        let (_dir, store) = store();
        let built = build(&LayerSpec::new(tree.root().join("alias"), "/srv"), &store).unwrap();
        let entries = read_layer(&store, &built);
        assert_eq!(paths(&entries), ["srv/", "srv/file"]);
        assert_eq!(find(&entries, "srv/file").data, b"via link");
    }

    /// Builds the same logical tree twice, in a different creation order and with
    /// different timestamps on disk.
    fn twin_trees() -> (Tree, Tree) {
        let files: [(&str, &[u8], u32); 5] = [
            ("bin/run", b"#!/bin/sh\nexec app\n", 0o755),
            ("lib/a.txt", b"alpha", 0o644),
            ("lib/b.txt", b"beta", 0o600),
            ("lib/nested/c.txt", b"gamma", 0o644),
            ("z", b"last", 0o644),
        ];
        let first = Tree::new();
        for (path, contents, mode) in files {
            first.file(path, contents, mode);
            first.touch(path, 1_000);
        }
        first.symlink("current", "lib");
        let second = Tree::new();
        for (path, contents, mode) in files.iter().rev() {
            second.file(path, contents, *mode);
            second.touch(path, 2_000_000_000);
        }
        second.symlink("current", "lib");
        second.touch("lib", 12_345);
        (first, second)
    }

    #[test]
    fn same_content_gives_same_digests_regardless_of_disk_metadata() {
        let (first, second) = twin_trees();
        let (_dir, store) = store();
        for compression in [
            Compression::Gzip { level: 6 },
            Compression::Zstd { level: 3 },
        ] {
            let mut spec = LayerSpec::new(first.root(), "/app");
            spec.compression = compression;
            let one = build(&spec, &store).unwrap();
            spec.source = Some(second.root().to_path_buf());
            let two = build(&spec, &store).unwrap();
            assert_eq!(one, two, "{compression:?}");
        }
    }

    /// A library caller asking for absurd thread counts gets an error, not an abort
    /// (threads that cannot spawn) or a capacity-overflow panic; the maximum still builds.
    #[test]
    fn thread_counts_above_the_maximum_are_an_error() {
        let tree = Tree::new();
        tree.file("a.txt", b"a", 0o644);
        let (_dir, store) = store();
        let spec = LayerSpec::new(tree.root(), "/");
        for threads in [MAX_THREADS + 1, 100_000, usize::MAX] {
            let options = BuildOptions {
                threads,
                use_cache: false,
            };
            let err = build_layer(&spec, &store, &options, &NoProgress).unwrap_err();
            assert!(
                matches!(err, Error::InvalidThreads { threads: t, max: MAX_THREADS } if t == threads),
                "{threads}: {err}"
            );
            assert!(err.to_string().contains(&threads.to_string()), "{err}");
        }
        let options = BuildOptions {
            threads: MAX_THREADS,
            use_cache: false,
        };
        build_layer(&spec, &store, &options, &NoProgress).unwrap();
    }

    #[test]
    fn output_is_identical_for_every_thread_count() {
        let tree = Tree::new();
        // Enough data for several gzip blocks, partly incompressible.
        let mut noise = Vec::with_capacity(600_000);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        while noise.len() < 600_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.extend_from_slice(&state.to_le_bytes());
        }
        tree.file("noise.bin", &noise, 0o644);
        tree.file(
            "text.txt",
            "all work and no play ".repeat(20_000).as_bytes(),
            0o644,
        );
        let (_dir, store) = store();
        for compression in [
            Compression::Gzip { level: 6 },
            Compression::Zstd { level: 3 },
        ] {
            let mut spec = LayerSpec::new(tree.root(), "/");
            spec.compression = compression;
            let results: Vec<BuiltLayer> = [1, 2, 3, 8]
                .into_iter()
                .map(|threads| {
                    let options = BuildOptions {
                        threads,
                        use_cache: false,
                    };
                    build_layer(&spec, &store, &options, &NoProgress).unwrap()
                })
                .collect();
            assert!(
                results.windows(2).all(|w| w[0] == w[1]),
                "{compression:?}: {results:?}"
            );
            assert_eq!(store.verify(&results[0].digest).unwrap(), results[0].size);
            assert_eq!(
                find(&read_layer(&store, &results[0]), "noise.bin").data,
                noise
            );
        }
    }

    /// Pins the exact bytes: a change in header rules, sort order, gzip framing, block
    /// size or the deflate/zstd implementation shows up here before it silently changes
    /// every user's layer digests.
    #[test]
    fn golden_digests() {
        let tree = Tree::new();
        tree.file("bin/app", b"#!/bin/sh\necho hoist\n", 0o4755);
        tree.file(
            "etc/app.conf",
            "listen = 8080\n".repeat(50).as_bytes(),
            0o640,
        );
        tree.file(
            &format!("deep/{}/{}", "d".repeat(90), "f".repeat(90)),
            b"pax",
            0o644,
        );
        tree.hard_link("bin/app", "bin/app-alias");
        tree.symlink("current", "etc");
        tree.dir("var/tmp", 0o1777);
        let (_dir, store) = store();
        let mut spec = LayerSpec::new(tree.root(), "/opt/hoist");
        spec.uid = 1000;
        spec.gid = 1000;
        spec.remove = vec!["/etc/legacy".into()];
        spec.mtime = 1_700_000_000;
        let gzip = build(&spec, &store).unwrap();
        spec.compression = Compression::Zstd { level: 3 };
        let zstd = build(&spec, &store).unwrap();
        let diff_id = "sha256:30d58bd2b6307d4f8e8ab71c26472e1015c8d59ed4ae39a57f011bd88ecba76f";
        assert_eq!(gzip.diff_id.as_str(), diff_id);
        assert_eq!(zstd.diff_id.as_str(), diff_id);
        assert_eq!(
            gzip.digest.as_str(),
            "sha256:b50d640d785d3a0a08312ace35e462dce4747f3bc05354c44336777995974fa5"
        );
        assert_eq!(
            zstd.digest.as_str(),
            "sha256:70b298d232b2b3a462653773bc2227ddc63154377fcdbe692920475d2acd0870"
        );
    }

    #[test]
    fn diff_id_is_the_digest_of_the_uncompressed_tar() {
        let tree = Tree::new();
        tree.file("f", b"content", 0o644);
        let (_dir, store) = store();
        let built = build(&LayerSpec::new(tree.root(), "/x"), &store).unwrap();
        let tar = crate::testutil::layer_tar(&store, &built);
        assert_eq!(built.diff_id, Digest::sha256_of(&tar));
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(
            built.size,
            std::fs::metadata(store.path(&built.digest)).unwrap().len()
        );
    }

    /// Appends to `grow` when the entry `when` is written: a file that changes after
    /// the walk.
    struct Grower {
        when: &'static str,
        grow: std::path::PathBuf,
    }

    impl EntryObserver for Grower {
        fn entry(&mut self, entry: &ObservedEntry<'_>) -> bool {
            if entry.path == self.when {
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&self.grow)
                    .unwrap();
                std::io::Write::write_all(&mut file, b"more").unwrap();
            }
            false
        }
        fn content(&mut self, _chunk: &[u8]) {}
        fn content_end(&mut self, _sha256: &[u8; 32]) {}
        fn layer_written(&mut self, _layer: &BuiltLayer) {}
    }

    #[test]
    fn a_file_changed_during_a_parallel_build_is_named_and_nothing_is_left() {
        let tree = Tree::new();
        tree.file("a", &vec![b'a'; 3 * crate::sink::CHUNK], 0o644);
        let grown = tree.file("b", b"short", 0o644);
        let (dir, store) = store();
        for compression in [
            Compression::Gzip { level: 1 },
            Compression::Zstd { level: 1 },
        ] {
            let mut spec = LayerSpec::new(tree.root(), "/");
            spec.compression = compression;
            let mut grower = Grower {
                when: "a",
                grow: grown.clone(),
            };
            let options = BuildOptions {
                threads: 2,
                use_cache: false,
            };
            let err = build_layer_observed(
                &spec,
                &store,
                &options,
                &NoProgress,
                (&NoKnownLayers, &NoGate),
                &mut grower,
            )
            .unwrap_err();
            assert!(
                matches!(&err, Error::FileChanged { path, .. } if *path == grown),
                "{err}"
            );
            std::fs::write(&grown, b"short").unwrap();
            // No temp blob stays behind at the store's root.
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|name| name != "blobs")
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }

    #[test]
    fn progress_reports_file_bytes() {
        #[derive(Default)]
        struct Counter {
            total: AtomicU64,
            done: AtomicU64,
        }
        impl Progress for Counter {
            fn start(&self, total_bytes: u64) {
                self.total.store(total_bytes, Ordering::Relaxed);
            }
            fn advance(&self, bytes: u64) {
                self.done.fetch_add(bytes, Ordering::Relaxed);
            }
        }
        let tree = Tree::new();
        tree.file("a", &[1; 1000], 0o644);
        tree.file("b", &vec![2; 300_000], 0o644);
        tree.hard_link("b", "c");
        let (_dir, store) = store();
        let counter = Counter::default();
        build_layer(
            &LayerSpec::new(tree.root(), "/"),
            &store,
            &NO_CACHE,
            &counter,
        )
        .unwrap();
        assert_eq!(counter.total.load(Ordering::Relaxed), 301_000);
        assert_eq!(counter.done.load(Ordering::Relaxed), 301_000);
    }

    /// The key depends on what goes into the layer, not on where the sources are or
    /// when they were written, and it is the same with the cache on or off.
    #[test]
    fn the_key_is_the_same_for_the_same_content_anywhere() {
        let first = Tree::new();
        let second = Tree::new();
        for tree in [&first, &second] {
            tree.file("app.js", b"console.log(1)", 0o644);
            tree.file("lib/util.js", b"export {}", 0o644);
        }
        second.touch("app.js", 1_000_000);
        let (_a, store_a) = store();
        let (_b, store_b) = store();
        let cached = BuildOptions {
            threads: 1,
            use_cache: true,
        };
        let a = build_layer(
            &LayerSpec::new(first.root(), "/app"),
            &store_a,
            &cached,
            &NoProgress,
        )
        .unwrap();
        let b = build(&LayerSpec::new(second.root(), "/app"), &store_b).unwrap();
        assert_ne!(first.root(), second.root());
        assert_eq!(a.key, b.key);
        assert_eq!((a.digest, a.diff_id), (b.digest, b.diff_id));
        let hit = build_layer(
            &LayerSpec::new(first.root(), "/app"),
            &store_a,
            &cached,
            &NoProgress,
        )
        .unwrap();
        assert!(hit.from_cache);
        assert_eq!(hit.key, b.key);

        second.file("app.js", b"console.log(2)", 0o644);
        let changed = build(&LayerSpec::new(second.root(), "/app"), &store_b).unwrap();
        assert_ne!(changed.key, b.key);
    }

    /// A layer the known layers hold under its key is answered without archiving: no
    /// blob is stored; any other key is built as usual.
    #[test]
    fn known_layers_answer_by_key() {
        struct One(Digest, KnownLayer);
        impl KnownLayers for One {
            fn find(&self, key: &Digest, media_type: &str) -> Option<KnownLayer> {
                (key == &self.0 && media_type == Compression::default().media_type())
                    .then(|| self.1.clone())
            }
        }
        let tree = Tree::new();
        tree.file("app.js", b"console.log(1)", 0o644);
        let spec = LayerSpec::new(tree.root(), "/app");
        let (_dir, reference_store) = store();
        let reference = build(&spec, &reference_store).unwrap();

        let (_dir, store) = store();
        let cached = BuildOptions {
            threads: 1,
            use_cache: true,
        };
        let known = One(
            reference.key.clone(),
            KnownLayer {
                digest: reference.digest.clone(),
                diff_id: reference.diff_id.clone(),
                size: reference.size,
            },
        );
        let reused = build_layer_reusing(&spec, &store, &cached, &NoProgress, &known).unwrap();
        assert!(reused.known && !reused.from_cache);
        assert_eq!(
            BuiltLayer {
                known: false,
                ..reused
            },
            reference
        );
        assert!(!store.contains(&reference.digest), "nothing was archived");
        // The cache off means nothing known is used either.
        let off = build_layer_reusing(&spec, &store, &NO_CACHE, &NoProgress, &known).unwrap();
        assert!(!off.known);
        assert!(store.contains(&reference.digest));

        tree.file("app.js", b"console.log(2)", 0o644);
        let other = build_layer_reusing(&spec, &store, &cached, &NoProgress, &known).unwrap();
        assert!(!other.known);
        assert_ne!(other.digest, reference.digest);
    }
}
