//! Small file-system helpers every writer shares: atomic writes through a temporary
//! file in the target's directory, and checks that an output path can be written.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// A temporary file in `dir` (same filesystem as its final name, so the rename is
/// atomic) created with mode 0666 less the umask, as any file the user creates:
/// tempfile's default 0600 would survive the rename and lock other users out. It is
/// locked while open, so a later run can sweep it if this one is killed.
pub fn temp_file_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    Ok(hoist_layers::create_temp_file(dir, 0o666)?)
}

/// The directory a file path lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Checks that a file can be created at `path`: its directory exists and the path is
/// not a directory. Run before building, so a typo does not cost a build.
pub fn check_file_target(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Output {
            path: path.to_path_buf(),
            reason: "is a directory; expected a file path".into(),
        });
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(Error::Output {
            path: path.to_path_buf(),
            reason: format!("directory {} does not exist", dir.display()),
        });
    }
    Ok(())
}

/// Writes a file through a temporary file in the same directory and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut temp = temp_file_in(dir)?;
    temp.write_all(bytes).at(temp.path())?;
    temp.as_file().sync_all().at(temp.path())?;
    temp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// The largest project file read whole: a hoist.toml or a lock (`uv.lock` of a large
/// project is a few MiB).
pub const PROJECT_FILE_LIMIT: u64 = 64 << 20;

/// Reads a whole file of at most `limit` bytes; a larger one (by its size, or by what
/// it grew to while read) is [`Error::TooLarge`] naming it, `what` it is and the
/// limit, and nothing more than `limit + 1` bytes of it is read.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let too_large = |size| Error::TooLarge {
        what: what.to_string(),
        path: path.to_path_buf(),
        size,
        limit,
    };
    let file = std::fs::File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_a_larger_file_by_its_size_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        std::fs::write(&path, b"0123").unwrap();
        assert_eq!(read_bounded(&path, 4, "an index.json").unwrap(), b"0123");
        // Sparse: 5 GiB that cost no disk, refused from their size.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(5 << 30)
            .unwrap();
        let error = read_bounded(&path, 4, "an index.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: 5368709120 bytes, over the limit of 4 bytes for an index.json",
                path.display()
            )
        );
    }
}
