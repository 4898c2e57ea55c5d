//! A bounded reader of zip archives (wheels): the central directory, and each member's
//! bytes inflated as a stream, read straight from the archive file.
//!
//! Only what wheels use: stored and deflated members, no encryption, no zip64 (a wheel
//! over 4 GiB is refused), one disk. Every size read from the archive is checked
//! against the file before anything is allocated or read.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use hoist_layers::HashingWriter;

/// The most members an archive may list (numpy's wheels have ~1,500).
const MAX_MEMBERS: usize = 200_000;

/// One member of the central directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (`six.py`, `six-1.17.0.dist-info/RECORD`); directories end in `/`.
    pub name: String,
    /// 0 (stored) or 8 (deflated).
    method: u16,
    compressed_size: u64,
    /// The inflated size.
    pub size: u64,
    /// Offset of its local header.
    header_offset: u64,
    /// Unix permission bits, when the archive was made on Unix.
    pub unix_mode: Option<u32>,
}

/// An opened zip archive: the open file (every read goes through it, so the bytes
/// read are those of the file that was hashed, even if its path is replaced later)
/// and its directory.
#[derive(Debug)]
pub struct Archive {
    file: File,
    len: u64,
    /// In archive order.
    pub members: Vec<Member>,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

/// Reads `len` bytes of `file` from `offset` on, without moving a shared cursor.
struct At<'a> {
    file: &'a File,
    offset: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.end - self.offset).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

impl Archive {
    /// Opens the archive at `path`, checks that its bytes hash to `sha256` (hex), and
    /// reads its central directory.
    pub fn open(path: &Path, sha256: &str) -> io::Result<Archive> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(
            &mut At {
                file: &file,
                offset: 0,
                end: len,
            },
            &mut hasher,
        )?;
        let (_, digest, _) = hasher.finish();
        if digest.hex() != sha256 {
            return Err(invalid(format!(
                "its bytes now hash to sha256 {}, not the {sha256} it was chosen for",
                digest.hex()
            )));
        }
        // The end record is 22 bytes plus a comment of at most 65,535.
        let tail_len = len.min(22 + 65_535);
        let mut tail = vec![0u8; tail_len as usize];
        file.read_exact_at(&mut tail, len - tail_len)?;
        let end = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(&tail, i) == 0x0605_4b50)
            .ok_or_else(|| invalid("not a zip archive (no end of central directory record)"))?;
        let count = usize::from(u16_at(&tail, end + 10));
        let dir_size = u64::from(u32_at(&tail, end + 12));
        let dir_offset = u64::from(u32_at(&tail, end + 16));
        if count == 0xFFFF || dir_size == 0xFFFF_FFFF || dir_offset == 0xFFFF_FFFF {
            return Err(invalid("zip64 archives are not supported"));
        }
        if dir_offset + dir_size > len || count > MAX_MEMBERS {
            return Err(invalid("the central directory lies outside the file"));
        }
        let mut dir = vec![0u8; dir_size as usize];
        file.read_exact_at(&mut dir, dir_offset)?;
        let mut members = Vec::with_capacity(count);
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > dir.len() || u32_at(&dir, at) != 0x0201_4b50 {
                return Err(invalid(
                    "a central directory entry is truncated or malformed",
                ));
            }
            let made_on_unix = dir[at + 5] == 3;
            let flags = u16_at(&dir, at + 8);
            let method = u16_at(&dir, at + 10);
            let compressed_size = u64::from(u32_at(&dir, at + 20));
            let size = u64::from(u32_at(&dir, at + 24));
            let name_len = usize::from(u16_at(&dir, at + 28));
            let extra_len = usize::from(u16_at(&dir, at + 30));
            let comment_len = usize::from(u16_at(&dir, at + 32));
            let external = u32_at(&dir, at + 38);
            let header_offset = u64::from(u32_at(&dir, at + 42));
            let name_end = at + 46 + name_len;
            if name_end > dir.len() {
                return Err(invalid("a member name runs past the central directory"));
            }
            let name = std::str::from_utf8(&dir[at + 46..name_end])
                .map_err(|_| invalid("a member name is not UTF-8"))?
                .to_owned();
            if flags & 1 != 0 {
                return Err(invalid(format!("{name} is encrypted")));
            }
            if !matches!(method, 0 | 8) {
                return Err(invalid(format!(
                    "{name} uses compression method {method} (only stored and deflated are read)"
                )));
            }
            if header_offset + compressed_size > len {
                return Err(invalid(format!("{name} lies outside the file")));
            }
            members.push(Member {
                name,
                method,
                compressed_size,
                size,
                header_offset,
                unix_mode: made_on_unix.then_some((external >> 16) & 0o7777),
            });
            at = name_end + extra_len + comment_len;
        }
        Ok(Archive { file, len, members })
    }

    /// The inflated bytes of `member`, as a stream (the caller bounds and checks what
    /// it reads).
    pub fn open_member(&self, member: &Member) -> io::Result<Box<dyn Read + Send + '_>> {
        let mut header = [0u8; 30];
        self.file.read_exact_at(&mut header, member.header_offset)?;
        if u32_at(&header, 0) != 0x0403_4b50 {
            return Err(invalid(format!("{}: no local header", member.name)));
        }
        let skip = u64::from(u16_at(&header, 26)) + u64::from(u16_at(&header, 28));
        let data = member.header_offset + 30 + skip;
        if data + member.compressed_size > self.len {
            return Err(invalid(format!("{} lies outside the file", member.name)));
        }
        let raw = At {
            file: &self.file,
            offset: data,
            end: data + member.compressed_size,
        };
        Ok(if member.method == 8 {
            Box::new(flate2::read::DeflateDecoder::new(raw))
        } else {
            Box::new(raw)
        })
    }

    /// The whole of a small member, at most `limit` bytes, checked against its size.
    pub fn read_member(&self, member: &Member, limit: u64) -> io::Result<Vec<u8>> {
        if member.size > limit {
            return Err(invalid(format!(
                "{} is {} bytes, more than the {limit} read into memory",
                member.name, member.size
            )));
        }
        let mut out = Vec::with_capacity(member.size as usize);
        self.open_member(member)?
            .take(member.size + 1)
            .read_to_end(&mut out)?;
        if out.len() as u64 != member.size {
            return Err(invalid(format!(
                "{} inflates to {} bytes, its directory entry says {}",
                member.name,
                out.len(),
                member.size
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of stored members, built by hand: local headers, then the directory.
    fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut directory = Vec::new();
        for (name, data) in members {
            let offset = out.len() as u32;
            // The reader leaves CRCs alone: RECORD hashes are the check.
            let crc = 0u32;
            let size = data.len() as u32;
            let name_len = name.len() as u16;
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend(crc.to_le_bytes());
            out.extend(size.to_le_bytes());
            out.extend(size.to_le_bytes());
            out.extend(name_len.to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(*data);
            directory.extend(0x0201_4b50u32.to_le_bytes());
            directory.extend([20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            directory.extend(crc.to_le_bytes());
            directory.extend(size.to_le_bytes());
            directory.extend(size.to_le_bytes());
            directory.extend(name_len.to_le_bytes());
            directory.extend([0, 0, 0, 0, 0, 0, 0, 0]);
            directory.extend((0o100_755u32 << 16).to_le_bytes());
            directory.extend(offset.to_le_bytes());
            directory.extend(name.as_bytes());
        }
        let dir_offset = out.len() as u32;
        let count = members.len() as u16;
        out.extend(&directory);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend(count.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend((directory.len() as u32).to_le_bytes());
        out.extend(dir_offset.to_le_bytes());
        out.extend([0, 0]);
        out
    }

    fn write(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.whl");
        std::fs::write(&path, bytes).unwrap();
        let sha = hoist_layers::Digest::sha256_of(bytes).hex().to_owned();
        (dir, path, sha)
    }

    #[test]
    fn members_read_through_the_hashed_file() {
        let bytes = stored_zip(&[("a.py", b"print(1)\n"), ("pkg/b.txt", b"bee")]);
        let (_dir, path, sha) = write(&bytes);
        let archive = Archive::open(&path, &sha).unwrap();
        let names: Vec<&str> = archive.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a.py", "pkg/b.txt"]);
        assert_eq!(archive.members[0].unix_mode, Some(0o755));
        // Replacing the file at the path after opening changes nothing read.
        let other = path.with_extension("new");
        std::fs::write(&other, b"other").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let data = archive.read_member(&archive.members[1], 100).unwrap();
        assert_eq!(data, b"bee");
        assert!(
            archive.read_member(&archive.members[0], 3).is_err(),
            "over the limit"
        );
    }

    #[test]
    fn wrong_bytes_and_broken_directories_are_refused() {
        let bytes = stored_zip(&[("a.py", b"print(1)\n")]);
        let (_dir, path, _) = write(&bytes);
        let err = Archive::open(&path, &"0".repeat(64))
            .unwrap_err()
            .to_string();
        assert!(err.contains("now hash to"), "{err}");

        let (_dir, path, sha) = write(b"not a zip at all");
        assert!(
            Archive::open(&path, &sha)
                .unwrap_err()
                .to_string()
                .contains("not a zip")
        );

        // A member claiming to lie past the end of the file.
        let mut bytes = stored_zip(&[("a.py", b"print(1)\n")]);
        let at = bytes.len() - 22 - 46 - 4 + 20;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_dir, path, sha) = write(&bytes);
        let err = Archive::open(&path, &sha).unwrap_err().to_string();
        assert!(err.contains("outside the file"), "{err}");
    }
}
