//! Turning a source directory into the list of archive entries it contributes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use walkdir::WalkDir;

use crate::entry::{Entry, FileInfo, Kind, WHITEOUT_PREFIX};
use crate::error::Error;
use crate::spec::ModePolicy;

/// Compiles `excludes` (gitignore syntax, relative to the source root).
pub(crate) fn compile_excludes(excludes: &[String]) -> Result<Gitignore, Error> {
    // Rooted at "." and fed relative paths: the matcher strips a root prefix it finds on
    // a path, which with a real root would wrongly strip a subdirectory that happens to
    // share the root's name.
    let mut builder = GitignoreBuilder::new(".");
    for pattern in excludes {
        builder
            .add_line(None, pattern)
            .map_err(|e| Error::InvalidExclude {
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
    }
    builder.build().map_err(|e| Error::InvalidExclude {
        pattern: excludes.join(", "),
        reason: e.to_string(),
    })
}

/// The source root's mode bits (following a symlinked root, as a user naming it expects)
/// and the entries beneath it, each path prefixed with `prefix` (`""` or ending in `/`).
///
/// Entries come in walk order; callers sort. Excluded directories are not descended into.
pub(crate) fn walk_source(
    source: &Path,
    prefix: &str,
    excludes: &Gitignore,
    modes: ModePolicy,
    uid: u32,
    gid: u32,
) -> Result<(u32, Vec<Entry>), Error> {
    let root = fs::metadata(source).map_err(|e| Error::io(source, e))?;
    if !root.is_dir() {
        return Err(Error::SourceNotDirectory {
            path: source.to_path_buf(),
        });
    }
    let root_mode = modes.apply(root.mode(), true);

    let walker = WalkDir::new(source)
        .follow_links(false)
        .min_depth(1)
        // The final order is a full-path sort done by the caller; sorting here only makes
        // the first error reported the same on every run.
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let relative = entry.path().strip_prefix(source).unwrap_or(entry.path());
            entry.depth() == 0
                || !excludes
                    .matched(relative, entry.file_type().is_dir())
                    .is_ignore()
        });

    let mut entries = Vec::new();
    for item in walker {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(source).to_path_buf();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("directory walk failed"));
            Error::io(path, source)
        })?;
        let path = item.path();
        let relative = path
            .strip_prefix(source)
            .expect("walkdir yields paths under its root")
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path {
                path: path.to_path_buf(),
            })?;
        if item
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(WHITEOUT_PREFIX))
        {
            return Err(Error::ReservedName {
                path: path.to_path_buf(),
            });
        }
        let metadata = item.metadata().map_err(|e| {
            let source = e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("cannot stat"));
            Error::io(path, source)
        })?;
        let file_type = metadata.file_type();
        let (archive_path, kind, mode) = if file_type.is_dir() {
            (
                format!("{prefix}{relative}/"),
                Kind::Directory,
                modes.apply(metadata.mode(), true),
            )
        } else if file_type.is_file() {
            let info = FileInfo {
                source: path.to_path_buf(),
                size: metadata.len(),
                dev: metadata.dev(),
                ino: metadata.ino(),
                nlink: metadata.nlink(),
            };
            (
                format!("{prefix}{relative}"),
                Kind::File(info),
                modes.apply(metadata.mode(), false),
            )
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|e| Error::io(path, e))?;
            let target = target.to_str().ok_or_else(|| Error::NonUtf8Path {
                path: path.to_path_buf(),
            })?;
            // Symlink permissions mean nothing on Linux and differ on other systems.
            (
                format!("{prefix}{relative}"),
                Kind::Symlink {
                    target: target.to_owned(),
                },
                0o777,
            )
        } else {
            let kind = if file_type.is_socket() {
                "socket"
            } else if file_type.is_fifo() {
                "FIFO"
            } else if file_type.is_block_device() {
                "block device"
            } else if file_type.is_char_device() {
                "character device"
            } else {
                "file of unknown type"
            };
            return Err(Error::SpecialFile {
                path: path.to_path_buf(),
                kind,
            });
        };
        entries.push(Entry {
            path: archive_path,
            kind,
            mode,
            uid,
            gid,
        });
    }
    Ok((root_mode, entries))
}

/// Reads exactly the file the walk saw into `landing`.
///
/// Fails with [`Error::FileChanged`] if the path now names another file or the size
/// differs from the walk's or the content ends early or runs on: writing a tar header
/// that promises N bytes and then supplying a different count would corrupt the archive.
pub(crate) fn read_file(info: &FileInfo, landing: &mut dyn Landing) -> Result<(), Error> {
    let path = &info.source;
    let changed = |reason: String| Error::FileChanged {
        path: path.clone(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let opened = file.metadata().map_err(|e| Error::io(path, e))?;
    if (opened.dev(), opened.ino()) != (info.dev, info.ino) {
        return Err(changed("it was replaced by another file".into()));
    }
    if opened.len() != info.size {
        return Err(changed(format!(
            "its size went from {} to {} bytes",
            info.size,
            opened.len()
        )));
    }
    copy_exact(&mut file, info.size, landing).map_err(|inexact| match inexact {
        Inexact::Short { remaining } => changed(format!(
            "it ended {remaining} bytes short of its {} byte size",
            info.size
        )),
        Inexact::Long => changed(format!(
            "it grew past its {} byte size while being read",
            info.size
        )),
        Inexact::Read(e) => Error::io(path, e),
        Inexact::Sink(e) => e,
    })
}

/// Why [`copy_exact`] did not copy exactly the promised bytes.
pub(crate) enum Inexact {
    /// The content ended this many bytes early.
    Short { remaining: u64 },
    /// The content ran on past the promised size.
    Long,
    /// Reading failed.
    Read(io::Error),
    /// The sink failed.
    Sink(Error),
}

/// Where [`copy_exact`] puts what it reads: space to read into, then told how much of
/// it the read filled. The layer writer lands file content straight in the tar
/// stream's buffers ([`crate::sink`]), saving a copy; [`Buffered`] lands it in one
/// buffer and hands each read to a closure.
pub(crate) trait Landing {
    /// Space for the next read: at least 1 and at most `max` (≥ 1) bytes.
    fn space(&mut self, max: usize) -> &mut [u8];

    /// The first `len` bytes of the last space hold the next bytes of content.
    fn landed(&mut self, len: usize) -> Result<(), Error>;
}

/// A [`Landing`] reading into `buf` and passing each read's bytes to `sink`.
pub(crate) struct Buffered<'a, F> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) sink: F,
}

impl<F: FnMut(&[u8]) -> Result<(), Error>> Landing for Buffered<'_, F> {
    fn space(&mut self, max: usize) -> &mut [u8] {
        let len = self.buf.len().min(max);
        &mut self.buf[..len]
    }

    fn landed(&mut self, len: usize) -> Result<(), Error> {
        (self.sink)(&self.buf[..len])
    }
}

/// Lands exactly `size` bytes of `reader` in `landing` and checks that nothing
/// follows: a tar header already promised that count.
pub(crate) fn copy_exact(
    reader: &mut dyn Read,
    size: u64,
    landing: &mut dyn Landing,
) -> Result<(), Inexact> {
    let mut remaining = size;
    while remaining > 0 {
        let space = landing.space(usize::try_from(remaining).unwrap_or(usize::MAX));
        let read = match reader.read(space) {
            Ok(0) => return Err(Inexact::Short { remaining }),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Inexact::Read(e)),
        };
        landing.landed(read).map_err(Inexact::Sink)?;
        remaining -= read as u64;
    }
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(Inexact::Long),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Inexact::Read(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::testutil::Tree;

    fn info_of(path: &Path) -> FileInfo {
        let metadata = fs::symlink_metadata(path).unwrap();
        FileInfo {
            source: path.to_path_buf(),
            size: metadata.len(),
            dev: metadata.dev(),
            ino: metadata.ino(),
            nlink: metadata.nlink(),
        }
    }

    fn read_all(info: &FileInfo) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; 3];
        let mut out = Vec::new();
        let sink = |chunk: &[u8]| {
            out.extend_from_slice(chunk);
            Ok(())
        };
        read_file(
            info,
            &mut Buffered {
                buf: &mut buf,
                sink,
            },
        )?;
        Ok(out)
    }

    #[test]
    fn read_file_returns_exactly_the_walked_file() {
        let tree = Tree::new();
        let path = tree.file("f", b"0123456789", 0o644);
        assert_eq!(read_all(&info_of(&path)).unwrap(), b"0123456789");
    }

    #[test]
    fn read_file_detects_size_changes_and_replacement() {
        let tree = Tree::new();
        let path = tree.file("grows", b"short", 0o644);
        let info = info_of(&path);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b" and longer")
            .unwrap();
        match read_all(&info) {
            Err(Error::FileChanged {
                path: named,
                reason,
            }) => {
                assert_eq!(named, path);
                assert!(reason.contains("from 5 to 16 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }

        let path = tree.file("replaced", b"same size", 0o644);
        let info = info_of(&path);
        let other = tree.file("other", b"SAME SIZE", 0o644);
        fs::rename(other, &path).unwrap();
        assert!(matches!(
            read_all(&info),
            Err(Error::FileChanged { reason, .. }) if reason.contains("replaced")
        ));
    }

    #[test]
    fn walk_prefixes_paths_and_reports_the_root_mode() {
        let tree = Tree::new();
        tree.file("dir/file", b"x", 0o640);
        fs::set_permissions(tree.root(), fs::Permissions::from_mode(0o711)).unwrap();
        let excludes = compile_excludes(&[]).unwrap();
        let (root_mode, mut entries) =
            walk_source(tree.root(), "srv/", &excludes, ModePolicy::Keep, 7, 8).unwrap();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(root_mode, 0o711);
        let summary: Vec<(&str, u32, u32, u32)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode, e.uid, e.gid))
            .collect();
        assert_eq!(
            summary,
            [("srv/dir/", 0o755, 7, 8), ("srv/dir/file", 0o640, 7, 8)]
        );
    }
}
