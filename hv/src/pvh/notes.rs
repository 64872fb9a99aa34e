//! ELF notes, and the Xen notes that make an image a PVH kernel.
//!
//! Notes are read from every `PT_NOTE` segment and every `SHT_NOTE` section:
//! some guests carry the Xen notes only in a section. A note is a 12-byte
//! header (`namesz`, `descsz`, `type`), the name (its NUL included in
//! `namesz`) and the descriptor, each padded so the next part starts at a
//! multiple of the area's alignment from the note's start: 4 bytes, or 8
//! when the segment or section says so (ELF64 GNU property notes).

use super::elf::{Elf, PT_NOTE, SHT_NOTE};
use core::fmt;
use vmm_glue::xen::elfnote::{
    XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_GUEST_VERSION, XEN_ELFNOTE_HYPERCALL_PAGE,
    XEN_ELFNOTE_LOADER, XEN_ELFNOTE_NAME, XEN_ELFNOTE_PHYS32_ENTRY, XEN_ELFNOTE_XEN_VERSION,
};

/// One note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    /// The name without its terminating NUL.
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

/// What is wrong with a note area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteFormatError {
    /// Fewer than 12 bytes, not all zero, are left after the last note.
    TrailingBytes { offset: usize, len: usize },
    /// The name runs past the end of the area.
    NameOutside {
        offset: usize,
        namesz: u32,
        area_len: usize,
    },
    /// The descriptor runs past the end of the area.
    DescOutside {
        offset: usize,
        descsz: u32,
        area_len: usize,
    },
}

impl fmt::Display for NoteFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TrailingBytes { offset, len } => write!(
                f,
                "{len} bytes at offset {offset:#x} are too short for a note header"
            ),
            Self::NameOutside {
                offset,
                namesz,
                area_len,
            } => write!(
                f,
                "note at offset {offset:#x}: name of {namesz:#x} bytes runs past the end of \
                 the {area_len:#x}-byte note area"
            ),
            Self::DescOutside {
                offset,
                descsz,
                area_len,
            } => write!(
                f,
                "note at offset {offset:#x}: descriptor of {descsz:#x} bytes runs past the end \
                 of the {area_len:#x}-byte note area"
            ),
        }
    }
}

/// The notes of one note area.
#[derive(Clone, Debug)]
pub struct Notes<'a> {
    data: &'a [u8],
    pos: usize,
    align: usize,
    done: bool,
}

/// Iterates the notes in `data`, an area aligned to `align` bytes (8 means
/// 8-byte padding; anything else 4). Stops after the first error.
pub fn notes(data: &[u8], align: u64) -> Notes<'_> {
    Notes {
        data,
        pos: 0,
        align: if align == 8 { 8 } else { 4 },
        done: false,
    }
}

impl<'a> Notes<'a> {
    fn padded(&self, n: usize) -> Option<usize> {
        n.checked_next_multiple_of(self.align)
    }

    fn next_note(&mut self) -> Result<Option<Note<'a>>, NoteFormatError> {
        let offset = self.pos;
        let rest = self.data.get(offset..).unwrap_or_default();
        if rest.len() < 12 {
            if rest.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(NoteFormatError::TrailingBytes {
                offset,
                len: rest.len(),
            });
        }
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (namesz, descsz, kind) = (word(0), word(4), word(8));
        let area_len = self.data.len();
        let name_outside = NoteFormatError::NameOutside {
            offset,
            namesz,
            area_len,
        };
        let desc_outside = NoteFormatError::DescOutside {
            offset,
            descsz,
            area_len,
        };
        let name_len = usize::try_from(namesz).map_err(|_| name_outside)?;
        let name = 12usize
            .checked_add(name_len)
            .and_then(|end| rest.get(12..end))
            .ok_or(name_outside)?;
        // Padding aligns offsets from the note's start (12 + namesz), which
        // matters for 8-byte alignment.
        let desc_start = 12usize
            .checked_add(name_len)
            .and_then(|n| self.padded(n))
            .ok_or(name_outside)?;
        let desc_len = usize::try_from(descsz).map_err(|_| desc_outside)?;
        let desc = desc_start
            .checked_add(desc_len)
            .and_then(|end| rest.get(desc_start..end))
            .ok_or(desc_outside)?;
        // The last descriptor's padding may be cut off by the area's end.
        let next = desc_start
            .checked_add(desc_len)
            .and_then(|end| self.padded(end))
            .unwrap_or(usize::MAX);
        self.pos = offset.saturating_add(next).min(area_len);
        let name = match name {
            [head @ .., 0] => head,
            n => n,
        };
        Ok(Some(Note { name, kind, desc }))
    }
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<Note<'a>, NoteFormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_note();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r.transpose()
    }
}

/// Where a note area is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteArea {
    /// A `PT_NOTE` segment, by program header index.
    Segment(usize),
    /// A `SHT_NOTE` section, by section index.
    Section(usize),
}

impl fmt::Display for NoteArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Segment(i) => write!(f, "PT_NOTE segment (program header {i})"),
            Self::Section(i) => write!(f, "SHT_NOTE section {i}"),
        }
    }
}

/// Why the Xen notes of an image are unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteError {
    /// A note area is malformed.
    Malformed {
        area: NoteArea,
        error: NoteFormatError,
    },
    /// `PHYS32_ENTRY` has a descriptor that is neither 4 nor 8 bytes.
    Phys32EntrySize { area: NoteArea, size: usize },
    /// `PHYS32_ENTRY` does not fit in 32 bits.
    Phys32EntryAbove4G { area: NoteArea, entry: u64 },
    /// No `PHYS32_ENTRY` note anywhere.
    NoPhys32Entry,
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { area, error } => write!(f, "{area}: {error}"),
            Self::Phys32EntrySize { area, size } => write!(
                f,
                "{area}: XEN_ELFNOTE_PHYS32_ENTRY has a {size}-byte descriptor (expected 4 or 8)"
            ),
            Self::Phys32EntryAbove4G { area, entry } => write!(
                f,
                "{area}: XEN_ELFNOTE_PHYS32_ENTRY {entry:#x} is not a 32-bit address"
            ),
            Self::NoPhys32Entry => {
                f.write_str("no XEN_ELFNOTE_PHYS32_ENTRY note: this image is not a PVH kernel")
            }
        }
    }
}

/// What the Xen notes of a PVH kernel say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenNotes<'a> {
    /// Where the guest starts (32-bit protected mode, paging off).
    pub phys32_entry: u32,
    /// Where `PHYS32_ENTRY` was found.
    pub found_in: NoteArea,
    /// `GUEST_OS`, e.g. `linux`.
    pub guest_os: Option<&'a str>,
    /// `GUEST_VERSION`.
    pub guest_version: Option<&'a str>,
    /// `XEN_VERSION`, e.g. `xen-3.0`.
    pub xen_version: Option<&'a str>,
    /// `LOADER`, e.g. `generic`.
    pub loader: Option<&'a str>,
    /// `HYPERCALL_PAGE` (a virtual address), when the kernel asks for one.
    pub hypercall_page: Option<u64>,
}

/// A numeric descriptor: 4 or 8 bytes, little-endian.
fn numeric(desc: &[u8]) -> Option<u64> {
    match *desc {
        [a, b, c, d] => Some(u64::from(u32::from_le_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Some(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => None,
    }
}

/// A string descriptor up to its first NUL, cut at the first byte that is
/// not UTF-8.
pub(crate) fn string(desc: &[u8]) -> &str {
    let s = desc.split(|&b| b == 0).next().unwrap_or_default();
    match core::str::from_utf8(s) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Every note area of `elf`: segments first, then sections.
pub fn note_areas<'e, 'a>(elf: &'e Elf<'a>) -> impl Iterator<Item = (NoteArea, Notes<'a>)> + 'e {
    let segments = elf
        .program_headers
        .iter()
        .enumerate()
        .filter(|(_, ph)| ph.p_type == PT_NOTE)
        .map(|(i, ph)| (NoteArea::Segment(i), notes(elf.segment_bytes(ph), ph.align)));
    let sections = elf
        .sections
        .iter()
        .enumerate()
        .filter(|(_, sh)| sh.sh_type == SHT_NOTE)
        .map(|(i, sh)| (NoteArea::Section(i), notes(elf.section_bytes(sh), sh.align)));
    segments.chain(sections)
}

/// Reads the Xen notes of `elf`. The first note of each type wins; every
/// note area must be well formed.
pub fn xen_notes<'a>(elf: &Elf<'a>) -> Result<XenNotes<'a>, NoteError> {
    let mut entry = None;
    let mut found = XenNotes {
        phys32_entry: 0,
        found_in: NoteArea::Segment(0),
        guest_os: None,
        guest_version: None,
        xen_version: None,
        loader: None,
        hypercall_page: None,
    };
    for (area, list) in note_areas(elf) {
        for note in list {
            let note = note.map_err(|error| NoteError::Malformed { area, error })?;
            if note.name != XEN_ELFNOTE_NAME {
                continue;
            }
            let text = |slot: &mut Option<&'a str>| {
                slot.get_or_insert(string(note.desc));
            };
            match note.kind {
                XEN_ELFNOTE_PHYS32_ENTRY if entry.is_none() => {
                    let value = numeric(note.desc).ok_or(NoteError::Phys32EntrySize {
                        area,
                        size: note.desc.len(),
                    })?;
                    let value = u32::try_from(value)
                        .map_err(|_| NoteError::Phys32EntryAbove4G { area, entry: value })?;
                    entry = Some((value, area));
                }
                XEN_ELFNOTE_GUEST_OS => text(&mut found.guest_os),
                XEN_ELFNOTE_GUEST_VERSION => text(&mut found.guest_version),
                XEN_ELFNOTE_XEN_VERSION => text(&mut found.xen_version),
                XEN_ELFNOTE_LOADER => text(&mut found.loader),
                XEN_ELFNOTE_HYPERCALL_PAGE if found.hypercall_page.is_none() => {
                    found.hypercall_page = numeric(note.desc);
                }
                _ => {}
            }
        }
    }
    let (phys32_entry, found_in) = entry.ok_or(NoteError::NoPhys32Entry)?;
    Ok(XenNotes {
        phys32_entry,
        found_in,
        ..found
    })
}

#[cfg(test)]
mod tests {
    use super::super::elf::Class;
    use super::super::testimg::{note, phys32, Builder};
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use vmm_glue::xen::elfnote::XEN_ELFNOTE_FEATURES;

    fn kernel(class: Class) -> Builder {
        let mut b = Builder::new(class);
        b.load(0x10_0000, &[0xf4; 0x100], 0x1000);
        b
    }

    #[test]
    fn notes_with_unaligned_names_and_descriptors_are_walked() {
        let mut area = note(b"GNU", 3, &[1, 2, 3, 4, 5]);
        area.extend(note(b"Linux", 0x100, b"ab"));
        area.extend(note(b"", 7, &[]));
        let got: Vec<Note<'_>> = notes(&area, 4).map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                Note {
                    name: b"GNU",
                    kind: 3,
                    desc: &[1, 2, 3, 4, 5]
                },
                Note {
                    name: b"Linux",
                    kind: 0x100,
                    desc: b"ab"
                },
                Note {
                    name: b"",
                    kind: 7,
                    desc: &[]
                },
            ]
        );
    }

    #[test]
    fn eight_byte_aligned_areas_pad_to_eight() {
        // namesz 4 ("GNU\0"), descsz 12: the descriptor is padded to 16.
        let mut area = Vec::new();
        for w in [4u32, 12, 5] {
            area.extend_from_slice(&w.to_le_bytes());
        }
        area.extend_from_slice(b"GNU\0");
        area.extend_from_slice(&[9; 12]);
        area.extend_from_slice(&[0; 4]);
        area.extend(note(b"Xen", 18, &[0, 0, 0x10, 0]));
        let got: Vec<Note<'_>> = notes(&area, 8).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].desc, &[9; 12]);
        assert_eq!((got[1].name, got[1].kind), (&b"Xen"[..], 18));
    }

    #[test]
    fn trailing_zero_padding_ends_the_walk_and_junk_is_an_error() {
        let mut area = phys32(0x10_0000);
        area.extend_from_slice(&[0; 8]);
        assert_eq!(notes(&area, 4).count(), 1);
        let mut junk = phys32(0x10_0000);
        junk.extend_from_slice(&[1, 2]);
        let last = notes(&junk, 4).last().unwrap();
        assert_eq!(
            last,
            Err(NoteFormatError::TrailingBytes { offset: 20, len: 2 })
        );
    }

    #[test]
    fn descriptor_running_past_the_area_is_reported_and_ends_the_walk() {
        let mut area = phys32(0x10_0000);
        area[4..8].copy_from_slice(&0x100u32.to_le_bytes());
        let mut it = notes(&area, 4);
        let err = it.next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "note at offset 0x0: descriptor of 0x100 bytes runs past the end of the 0x14-byte \
             note area"
        );
        assert_eq!(it.next(), None);
        area[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            notes(&area, 4).next(),
            Some(Err(NoteFormatError::NameOutside { .. }))
        ));
    }

    #[test]
    fn xen_notes_come_from_a_note_segment() {
        let mut b = kernel(Class::Elf64);
        let mut area = note(b"GNU", 3, &[0xaa; 20]);
        area.extend(note(b"Xen", XEN_ELFNOTE_GUEST_OS, b"linux\0"));
        area.extend(note(b"Xen", XEN_ELFNOTE_XEN_VERSION, b"xen-3.0\0"));
        area.extend(note(
            b"Xen",
            XEN_ELFNOTE_FEATURES,
            b"!writable_page_tables\0",
        ));
        area.extend(note(
            b"Xen",
            XEN_ELFNOTE_HYPERCALL_PAGE,
            &0xffff_ffff_8100_1000u64.to_le_bytes(),
        ));
        area.extend(phys32(0x100_0850));
        b.note_segment(&area);
        let image = b.build();
        let elf = Elf::parse(&image).unwrap();
        let x = xen_notes(&elf).unwrap();
        assert_eq!(x.phys32_entry, 0x100_0850);
        assert_eq!(x.found_in, NoteArea::Segment(1));
        assert_eq!(x.guest_os, Some("linux"));
        assert_eq!(x.xen_version, Some("xen-3.0"));
        assert_eq!(x.loader, None);
        assert_eq!(x.hypercall_page, Some(0xffff_ffff_8100_1000));
    }

    #[test]
    fn xen_notes_come_from_a_section_when_no_segment_has_them() {
        let mut b = kernel(Class::Elf32);
        b.note_segment(&note(b"GNU", 3, &[1; 8]));
        let mut area = note(b"Xen", XEN_ELFNOTE_LOADER, b"generic");
        area.extend(phys32(0x10_000c));
        b.note_section(&area);
        let image = b.build();
        let elf = Elf::parse(&image).unwrap();
        let x = xen_notes(&elf).unwrap();
        assert_eq!(x.phys32_entry, 0x10_000c);
        assert_eq!(x.found_in, NoteArea::Section(1));
        assert_eq!(x.loader, Some("generic"));
    }

    #[test]
    fn the_segment_wins_over_a_section_covering_the_same_note() {
        let mut b = kernel(Class::Elf64);
        b.note_segment(&phys32(0x10_0000));
        b.note_section(&phys32(0x20_0000));
        let image = b.build();
        let x = xen_notes(&Elf::parse(&image).unwrap()).unwrap();
        assert_eq!(
            (x.phys32_entry, x.found_in),
            (0x10_0000, NoteArea::Segment(1))
        );
    }

    #[test]
    fn an_image_without_the_entry_note_is_not_a_pvh_kernel() {
        let mut b = kernel(Class::Elf64);
        b.note_segment(&note(b"Xen", XEN_ELFNOTE_GUEST_OS, b"linux"));
        // The right type under another name does not count.
        b.note_section(&note(b"Linux", XEN_ELFNOTE_PHYS32_ENTRY, &[0; 4]));
        let image = b.build();
        let err = xen_notes(&Elf::parse(&image).unwrap()).unwrap_err();
        assert_eq!(err, NoteError::NoPhys32Entry);
        assert_eq!(
            err.to_string(),
            "no XEN_ELFNOTE_PHYS32_ENTRY note: this image is not a PVH kernel"
        );
        let bare = kernel(Class::Elf32).build();
        assert_eq!(
            xen_notes(&Elf::parse(&bare).unwrap()),
            Err(NoteError::NoPhys32Entry)
        );
    }

    #[test]
    fn entry_descriptor_may_be_eight_bytes_but_must_fit_32_bits() {
        let entry = |desc: &[u8]| {
            let mut b = kernel(Class::Elf64);
            b.note_segment(&note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, desc));
            let image = b.build();
            xen_notes(&Elf::parse(&image).unwrap()).map(|x| x.phys32_entry)
        };
        assert_eq!(entry(&0x100_0000u64.to_le_bytes()), Ok(0x100_0000));
        assert_eq!(
            entry(&0x1_0000_0000u64.to_le_bytes()),
            Err(NoteError::Phys32EntryAbove4G {
                area: NoteArea::Segment(1),
                entry: 0x1_0000_0000
            })
        );
        let err = entry(&[0; 6]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PT_NOTE segment (program header 1): XEN_ELFNOTE_PHYS32_ENTRY has a 6-byte \
             descriptor (expected 4 or 8)"
        );
    }

    #[test]
    fn a_malformed_note_area_names_the_area() {
        let mut b = kernel(Class::Elf32);
        let mut area = phys32(0x10_0000);
        area[4..8].copy_from_slice(&0x40u32.to_le_bytes());
        b.note_section(&area);
        let image = b.build();
        let err = xen_notes(&Elf::parse(&image).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SHT_NOTE section 1: note at offset 0x0: descriptor of 0x40 bytes runs past the end \
             of the 0x14-byte note area"
        );
    }

    #[test]
    fn strings_stop_at_nul_and_invalid_utf8() {
        assert_eq!(string(b"linux\0junk"), "linux");
        assert_eq!(string(b"ab\xffcd"), "ab");
        assert_eq!(string(b""), "");
    }
}
