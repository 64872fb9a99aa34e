//! The "newc" cpio format the Linux kernel unpacks as its initramfs.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit
//! hexadecimal fields), the path with its NUL, padding to a multiple of 4,
//! the data, padding to a multiple of 4. The archive ends with an entry
//! named `TRAILER!!!`. Every entry gets its own inode number, one link, owner
//! root and time 0, so the archive depends only on its contents.

const MAGIC: &str = "070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A character device with this major and minor number.
    CharDevice(u32, u32),
}

/// One path in the archive (without a leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// The permission bits (the type bits come from [`Kind`]).
    pub perm: u32,
    pub kind: Kind,
}

impl Entry {
    pub fn dir(path: &str) -> Entry {
        Entry::new(path, 0o755, Kind::Dir)
    }

    pub fn file(path: &str, perm: u32, data: Vec<u8>) -> Entry {
        Entry::new(path, perm, Kind::File(data))
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, 0o777, Kind::Symlink(target.to_string()))
    }

    pub fn char_device(path: &str, perm: u32, major: u32, minor: u32) -> Entry {
        Entry::new(path, perm, Kind::CharDevice(major, minor))
    }

    fn new(path: &str, perm: u32, kind: Kind) -> Entry {
        Entry {
            path: path.trim_start_matches('/').to_string(),
            perm: perm & 0o7777,
            kind,
        }
    }

    fn mode(&self) -> u32 {
        self.perm
            | match self.kind {
                Kind::Dir => S_IFDIR,
                Kind::File(_) => S_IFREG,
                Kind::Symlink(_) => S_IFLNK,
                Kind::CharDevice(..) => S_IFCHR,
            }
    }

    fn data(&self) -> &[u8] {
        match &self.kind {
            Kind::File(data) => data,
            Kind::Symlink(target) => target.as_bytes(),
            Kind::Dir | Kind::CharDevice(..) => &[],
        }
    }
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends one header, name and data.
fn push(out: &mut Vec<u8>, ino: u32, mode: u32, rdev: (u32, u32), name: &str, data: &[u8]) {
    let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        u32::try_from(data.len()).unwrap_or(u32::MAX),
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
        0, // check (unused by newc)
    ];
    out.extend(MAGIC.as_bytes());
    for field in fields {
        out.extend(format!("{field:08x}").as_bytes());
    }
    out.extend(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend(data);
    pad4(out);
}

/// The archive of `entries`, in their order (a directory must come before
/// what it holds).
pub fn archive(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.path.is_empty() || entry.path == TRAILER {
            return Err(format!("cpio: bad path '{}'", entry.path));
        }
        if u32::try_from(entry.data().len()).is_err() {
            return Err(format!("cpio: {} is 4 GiB or more", entry.path));
        }
        let rdev = match entry.kind {
            Kind::CharDevice(major, minor) => (major, minor),
            _ => (0, 0),
        };
        let ino = u32::try_from(i + 1).map_err(|_| "cpio: too many entries".to_string())?;
        push(&mut out, ino, entry.mode(), rdev, &entry.path, entry.data());
    }
    push(&mut out, 0, 0, (0, 0), TRAILER, &[]);
    Ok(out)
}

/// Reads back an archive: its entries up to the trailer.
pub fn parse(mut b: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let header = b
            .get(..HEADER_LEN)
            .ok_or_else(|| format!("cpio: truncated header at byte {at}"))?;
        if &header[..6] != MAGIC.as_bytes() {
            return Err(format!("cpio: no {MAGIC} magic at byte {at}"));
        }
        let field = |i: usize| {
            std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i])
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("cpio: bad header field {i} at byte {at}"))
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let rdev = (field(9)?, field(10)?);
        let namesize = field(11)? as usize;
        let name_end = HEADER_LEN + namesize;
        let data_at = name_end.div_ceil(4) * 4;
        let name = b
            .get(HEADER_LEN..name_end)
            .and_then(|n| n.strip_suffix(&[0]))
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| format!("cpio: bad name at byte {at}"))?;
        if name == TRAILER {
            return Ok(entries);
        }
        let data = b
            .get(data_at..data_at + size)
            .ok_or_else(|| format!("cpio: {name}: data past the end"))?;
        let kind = match mode & 0o170000 {
            S_IFDIR => Kind::Dir,
            S_IFREG => Kind::File(data.to_vec()),
            S_IFLNK => Kind::Symlink(String::from_utf8_lossy(data).into_owned()),
            S_IFCHR => Kind::CharDevice(rdev.0, rdev.1),
            other => return Err(format!("cpio: {name}: unsupported file type {other:o}")),
        };
        entries.push(Entry::new(name, mode, kind));
        let next = (data_at + size).div_ceil(4) * 4;
        b = b.get(next..).unwrap_or(&[]);
        at += next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::dir("bin"),
            Entry::file("bin/busybox", 0o755, vec![0x7f, b'E', b'L', b'F', 1, 2, 3]),
            Entry::symlink("bin/sh", "busybox"),
            Entry::dir("dev"),
            Entry::char_device("dev/console", 0o600, 5, 1),
            Entry::file("init", 0o755, b"#!/bin/sh\necho hi\n".to_vec()),
            Entry::file("empty", 0o644, Vec::new()),
        ]
    }

    #[test]
    fn what_is_written_parses_back_the_same() {
        let entries = sample();
        let bytes = archive(&entries).expect("archive");
        assert_eq!(parse(&bytes).expect("parse"), entries);
    }

    #[test]
    fn headers_names_and_data_are_aligned_to_4_bytes() {
        let bytes = archive(&sample()).expect("archive");
        assert_eq!(bytes.len() % 4, 0);
        // The first header: magic, inode 1, a directory 0755.
        assert_eq!(&bytes[..22], b"07070100000001000041ed");
        // Name "bin\0" (4 bytes) after the 110-byte header ends at 114, and
        // the next header starts at the next multiple of 4, 116.
        assert_eq!(&bytes[116..122], b"070701");
    }

    #[test]
    fn the_archive_ends_with_the_trailer() {
        let bytes = archive(&[]).expect("archive");
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[110..120], b"TRAILER!!!");
        assert_eq!(bytes.len(), 124);
        assert!(parse(&bytes).expect("parse").is_empty());
    }

    #[test]
    fn leading_slashes_are_dropped_and_bad_paths_refused() {
        assert_eq!(Entry::dir("/dev").path, "dev");
        assert!(archive(&[Entry::dir("")]).is_err());
        assert!(archive(&[Entry::dir("TRAILER!!!")]).is_err());
    }

    #[test]
    fn damaged_archives_are_errors() {
        let bytes = archive(&sample()).expect("archive");
        assert!(parse(&bytes[..bytes.len() - 20]).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'1';
        assert!(parse(&bad).is_err());
        assert!(parse(&bytes[..200]).is_err());
    }
}
