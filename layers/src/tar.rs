//! A minimal ustar + PAX writer with every header field chosen by us.
//!
//! The `tar` crate's builder is avoided on purpose: its deterministic mode rewrites
//! permissions (dropping setuid/setgid) and its long-name fallback is the GNU extension.
//! Here each header is built from the entry alone, so identical entries give identical
//! bytes:
//! - ustar magic `ustar\0`, version `00`; empty uname/gname; devmajor/devminor zero;
//! - numeric fields zero-padded octal, NUL-terminated, checksum `%06o\0 `;
//! - anything ustar cannot hold goes in a PAX extended header (`x`) just before the
//!   entry: `path` (longer than ustar's 100 + 155 split allows, or non-ASCII),
//!   `linkpath` (over 100 bytes or non-ASCII), `size` (8 GiB and up), `uid`/`gid`
//!   (above 0o7777777), `mtime` (beyond year 2242). Records come in that fixed order.
//!   The extended header itself is named `PaxHeaders/<base name>`, mode 0644,
//!   owned by 0:0, with the entry's mtime;
//! - no atime/ctime, no sparse files, no xattrs;
//! - the archive ends with two zero blocks and no further padding.

use std::io::{self, Write};

const BLOCK: usize = 512;

/// Fits the ustar `name` field.
const NAME_LEN: usize = 100;
/// Fits the ustar `prefix` field.
const PREFIX_LEN: usize = 155;
/// The largest value an octal field of `width` bytes (one kept for the NUL) can hold.
const fn octal_max(width: usize) -> u64 {
    (1 << (3 * (width - 1))) - 1
}

/// The entry types this writer emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryType {
    Regular,
    HardLink,
    Symlink,
    Directory,
}

impl EntryType {
    fn flag(self) -> u8 {
        match self {
            EntryType::Regular => b'0',
            EntryType::HardLink => b'1',
            EntryType::Symlink => b'2',
            EntryType::Directory => b'5',
        }
    }
}

/// The fields of one header; everything else is fixed by the module's rules.
pub(crate) struct Header<'a> {
    pub(crate) path: &'a str,
    pub(crate) entry_type: EntryType,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) mtime: u64,
    pub(crate) link: &'a str,
}

/// Writes tar headers and data to `out`.
pub(crate) struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes the header (preceded by a PAX header when needed). The caller then writes
    /// exactly `header.size` bytes with [`TarWriter::write_data`] and calls
    /// [`TarWriter::end_data`].
    pub(crate) fn write_header(&mut self, header: &Header<'_>) -> io::Result<()> {
        let mut pax = Vec::new();
        let mut block = [0u8; BLOCK];

        if let Some((prefix, name)) = split_ustar_path(header.path) {
            block[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
            block[..name.len()].copy_from_slice(name.as_bytes());
        } else {
            pax_record(&mut pax, "path", header.path);
            let stand_in = ascii_stand_in(header.path, NAME_LEN);
            block[..stand_in.len()].copy_from_slice(&stand_in);
        }
        if header.link.len() <= NAME_LEN && header.link.is_ascii() {
            block[157..157 + header.link.len()].copy_from_slice(header.link.as_bytes());
        } else {
            pax_record(&mut pax, "linkpath", header.link);
            let stand_in = ascii_stand_in(header.link, NAME_LEN);
            block[157..157 + stand_in.len()].copy_from_slice(&stand_in);
        }
        let size = octal_or_pax(&mut pax, "size", header.size, 12);
        let uid = octal_or_pax(&mut pax, "uid", header.uid.into(), 8);
        let gid = octal_or_pax(&mut pax, "gid", header.gid.into(), 8);
        let mtime = octal_or_pax(&mut pax, "mtime", header.mtime, 12);

        write_octal(&mut block[100..108], header.mode.into());
        write_octal(&mut block[108..116], uid);
        write_octal(&mut block[116..124], gid);
        write_octal(&mut block[124..136], size);
        write_octal(&mut block[136..148], mtime);
        block[156] = header.entry_type.flag();
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        write_octal(&mut block[329..337], 0);
        write_octal(&mut block[337..345], 0);
        set_checksum(&mut block);

        if !pax.is_empty() {
            self.write_pax_header(header, &pax)?;
        }
        self.out.write_all(&block)
    }

    fn write_pax_header(&mut self, entry: &Header<'_>, records: &[u8]) -> io::Result<()> {
        let base = entry
            .path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let mut name = b"PaxHeaders/".to_vec();
        name.extend(ascii_stand_in(base, NAME_LEN - name.len()));

        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(&name);
        write_octal(&mut block[100..108], 0o644);
        write_octal(&mut block[108..116], 0);
        write_octal(&mut block[116..124], 0);
        write_octal(&mut block[124..136], records.len() as u64);
        let mtime = if entry.mtime <= octal_max(12) {
            entry.mtime
        } else {
            0
        };
        write_octal(&mut block[136..148], mtime);
        block[156] = b'x';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        write_octal(&mut block[329..337], 0);
        write_octal(&mut block[337..345], 0);
        set_checksum(&mut block);

        self.out.write_all(&block)?;
        self.out.write_all(records)?;
        self.end_data(records.len() as u64)
    }

    /// Writes entry data; the caller guarantees the total matches the header's size.
    pub(crate) fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    /// Pads the data of an entry of `size` bytes to a whole block.
    pub(crate) fn end_data(&mut self, size: u64) -> io::Result<()> {
        let tail = (size % BLOCK as u64) as usize;
        if tail != 0 {
            self.out.write_all(&[0u8; BLOCK][tail..])?;
        }
        Ok(())
    }

    /// The writer, for entry data written to it directly (the caller keeps the count
    /// promised by the header, as with [`TarWriter::write_data`]).
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// Splits `path` into ustar (prefix, name), or `None` if it needs a PAX `path` record.
///
/// Same choice as Go's archive/tar: the longest prefix that fits, split at a `/`.
fn split_ustar_path(path: &str) -> Option<(&str, &str)> {
    if !path.is_ascii() {
        return None;
    }
    if path.len() <= NAME_LEN {
        return Some(("", path));
    }
    if path.len() > PREFIX_LEN + 1 + NAME_LEN {
        return None;
    }
    // The split `/` must leave a non-empty name (so not a directory's trailing `/`) and
    // a prefix of at most PREFIX_LEN bytes.
    let window = &path[..(path.len() - 1).min(PREFIX_LEN + 1)];
    let slash = window.rfind('/')?;
    let (prefix, name) = (&path[..slash], &path[slash + 1..]);
    (!prefix.is_empty() && !name.is_empty() && name.len() <= NAME_LEN).then_some((prefix, name))
}

/// What goes in a ustar text field whose real value is in a PAX record: readers that
/// know PAX ignore it, and it is plain ASCII so older readers see something sensible.
fn ascii_stand_in(text: &str, max: usize) -> Vec<u8> {
    text.bytes()
        .map(|b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .take(max)
        .collect()
}

/// The value for an octal field, or 0 plus a PAX record if it does not fit.
fn octal_or_pax(pax: &mut Vec<u8>, key: &str, value: u64, width: usize) -> u64 {
    if value <= octal_max(width) {
        value
    } else {
        pax_record(pax, key, &value.to_string());
        0
    }
}

/// Appends `"<len> <key>=<value>\n"`, where `len` counts the whole record, itself included.
fn pax_record(pax: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    pax.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

/// Zero-padded octal filling all but the last byte of `field`, which stays NUL.
fn write_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    debug_assert_eq!(
        text.len(),
        digits,
        "{value} does not fit {digits} octal digits"
    );
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    block[154] = 0;
    block[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut pax = Vec::new();
        pax_record(&mut pax, "path", "abc");
        assert_eq!(pax, b"12 path=abc\n");
        // 98 + 2 digits = 100 would be wrong; the length field's own growth must count.
        let mut pax = Vec::new();
        let value = "x".repeat(89);
        pax_record(&mut pax, "path", &value);
        let text = String::from_utf8(pax).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }

    #[test]
    fn ustar_split_prefers_the_longest_prefix() {
        let long_dir = "d".repeat(120);
        let path = format!("{long_dir}/sub/file");
        assert_eq!(
            split_ustar_path(&path),
            Some((format!("{long_dir}/sub").as_str(), "file"))
        );
        assert_eq!(split_ustar_path("short"), Some(("", "short")));
        assert_eq!(split_ustar_path(&"n".repeat(101)), None);
        assert_eq!(split_ustar_path("caf\u{e9}"), None);
        let dir = format!("{}/{}/", "p".repeat(150), "q".repeat(20));
        assert_eq!(
            split_ustar_path(&dir),
            Some((
                "p".repeat(150).as_str(),
                format!("{}/", "q".repeat(20)).as_str()
            ))
        );
    }

    #[test]
    fn numbers_too_large_for_ustar_are_read_back_from_pax() {
        let mut tar = TarWriter::new(Vec::new());
        let path = format!("{}/big.img", "d".repeat(200));
        tar.write_header(&Header {
            path: &path,
            entry_type: EntryType::Regular,
            mode: 0o644,
            uid: 3_000_000,
            gid: 4_000_000,
            size: (8 << 30) + 1,
            mtime: 1 << 40,
            link: "",
        })
        .unwrap();
        // Only the headers: the reader is not asked for the 8 GiB of data.
        let bytes = tar.out;
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path_bytes().as_ref(), path.as_bytes());
        assert_eq!(entry.size(), (8 << 30) + 1);
        let records: Vec<(String, String)> = entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|record| {
                let record = record.unwrap();
                (
                    record.key().unwrap().to_owned(),
                    record.value().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("path", path.as_str()),
            ("size", "8589934593"),
            ("uid", "3000000"),
            ("gid", "4000000"),
            ("mtime", "1099511627776"),
        ];
        assert_eq!(
            records,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        let header = entry.header();
        assert_eq!(header.as_ustar().map(|h| h.magic), Some(*b"ustar\0"));
        assert_eq!(header.mode().unwrap(), 0o644);
    }

    #[test]
    fn octal_fields_and_overflow() {
        let mut field = [0xffu8; 8];
        write_octal(&mut field, 0o4755);
        assert_eq!(&field, b"0004755\0");
        let mut pax = Vec::new();
        assert_eq!(
            octal_or_pax(&mut pax, "size", octal_max(12), 12),
            octal_max(12)
        );
        assert!(pax.is_empty());
        assert_eq!(octal_or_pax(&mut pax, "size", 1 << 33, 12), 0);
        assert_eq!(pax, b"19 size=8589934592\n");
    }
}
