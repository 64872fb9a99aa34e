//! Just enough ELF to tell whether an image is a PVH kernel: the class, the
//! machine and Xen's `XEN_ELFNOTE_PHYS32_ENTRY` note in a `PT_NOTE` segment;
//! and to find a section by name (a kernel module's `.modinfo`).
//!
//! Linux (ELF64) stores the entry as an 8-byte value, GRUB's `i386-xen_pvh`
//! image (ELF32) as a 4-byte one; both are accepted.

use std::fmt;

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical entry point of a PVH
/// guest (xen/include/public/elfnote.h).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const PT_NOTE: u32 = 4;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

/// The ELF class (word size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Elf32,
    Elf64,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Elf32 => "ELF32",
            Class::Elf64 => "ELF64",
        })
    }
}

/// What the check found in a PVH image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvhImage {
    pub class: Class,
    /// The physical address the guest is entered at, in 32-bit protected
    /// mode with paging off.
    pub entry: u32,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A word of the image's class at `at`.
fn word_at(b: &[u8], class: Class, at: usize) -> Option<u64> {
    match class {
        Class::Elf32 => u32_at(b, at).map(u64::from),
        Class::Elf64 => u64_at(b, at),
    }
}

fn usize_of(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// One note: its owner, type and descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

/// The notes packed in one `PT_NOTE` segment (4-byte aligned names and
/// descriptors); stops at the first note that does not fit.
fn notes_in(seg: &[u8]) -> Vec<Note<'_>> {
    let align = |n: usize| n.div_ceil(4) * 4;
    let mut notes = Vec::new();
    let mut at = 0;
    while let (Some(namesz), Some(descsz), Some(kind)) =
        (u32_at(seg, at), u32_at(seg, at + 4), u32_at(seg, at + 8))
    {
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        let name_at = at + 12;
        let desc_at = name_at + align(namesz);
        let (Some(name), Some(desc)) = (
            seg.get(name_at..name_at + namesz),
            seg.get(desc_at..desc_at + descsz),
        ) else {
            break;
        };
        // The name's size counts its terminating NUL.
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        notes.push(Note { name, kind, desc });
        at = desc_at + align(descsz);
    }
    notes
}

/// The class of an x86 ELF image, or why it is not one.
fn header(b: &[u8]) -> Result<Class, String> {
    if b.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file (no \\x7fELF magic)".into());
    }
    let class = match b.get(4) {
        Some(1) => Class::Elf32,
        Some(2) => Class::Elf64,
        other => return Err(format!("unknown ELF class {other:?}")),
    };
    if b.get(5) != Some(&1) {
        return Err("not a little-endian ELF file".into());
    }
    let machine = u16_at(b, 18).ok_or("truncated ELF header")?;
    match (class, machine) {
        (Class::Elf32, EM_386) | (Class::Elf64, EM_X86_64) => Ok(class),
        _ => Err(format!("{class} for machine {machine}, not x86")),
    }
}

/// Every note of every `PT_NOTE` segment of `b`.
pub fn notes(b: &[u8]) -> Result<(Class, Vec<Note<'_>>), String> {
    let class = header(b)?;
    let truncated = || "truncated ELF header".to_string();
    let (phoff, phentsize, phnum) = match class {
        Class::Elf32 => (word_at(b, class, 28), u16_at(b, 42), u16_at(b, 44)),
        Class::Elf64 => (word_at(b, class, 32), u16_at(b, 54), u16_at(b, 56)),
    };
    let phoff = phoff.and_then(usize_of).ok_or_else(truncated)?;
    let phentsize = usize::from(phentsize.ok_or_else(truncated)?);
    let phnum = usize::from(phnum.ok_or_else(truncated)?);
    let (off_at, size_at) = match class {
        Class::Elf32 => (4, 16),
        Class::Elf64 => (8, 32),
    };
    let mut found = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let bad = || format!("program header {i} lies outside the file");
        if u32_at(b, ph).ok_or_else(bad)? != PT_NOTE {
            continue;
        }
        let offset = word_at(b, class, ph + off_at).and_then(usize_of);
        let size = word_at(b, class, ph + size_at).and_then(usize_of);
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(bad());
        };
        let seg = b
            .get(offset..offset.saturating_add(size))
            .ok_or_else(|| format!("PT_NOTE segment {i} lies outside the file"))?;
        found.extend(notes_in(seg));
    }
    Ok((class, found))
}

/// Checks that `b` is an x86 ELF image with a `Xen` PHYS32_ENTRY note in a
/// `PT_NOTE` segment, and returns its class and entry point.
pub fn pvh_image(b: &[u8]) -> Result<PvhImage, String> {
    let (class, notes) = notes(b)?;
    let note = notes
        .iter()
        .find(|n| n.name == b"Xen" && n.kind == XEN_ELFNOTE_PHYS32_ENTRY)
        .ok_or_else(|| {
            format!(
                "{class} image without a Xen PHYS32_ENTRY note (type {XEN_ELFNOTE_PHYS32_ENTRY}) \
                 in its PT_NOTE segments: not a PVH kernel"
            )
        })?;
    let entry = match note.desc.len() {
        4 => u32_at(note.desc, 0).map(u64::from),
        8 => u64_at(note.desc, 0),
        n => return Err(format!("PHYS32_ENTRY note of {n} bytes (expected 4 or 8)")),
    }
    .unwrap_or(u64::MAX);
    let entry =
        u32::try_from(entry).map_err(|_| format!("PHYS32_ENTRY {entry:#x} is above 4 GiB"))?;
    Ok(PvhImage { class, entry })
}

/// The contents of the section called `name`, if `b` has one; an error
/// when `b` is not an x86 ELF file or its section headers do not fit in it.
pub fn section<'a>(b: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, String> {
    let class = header(b)?;
    let truncated = || "truncated ELF header".to_string();
    // e_shoff, e_shentsize, e_shnum, e_shstrndx; then sh_offset and
    // sh_size within a section header (sh_name is its first word).
    let (shoff, shentsize, shnum, shstrndx, off_at, size_at) = match class {
        Class::Elf32 => (
            word_at(b, class, 32),
            u16_at(b, 46),
            u16_at(b, 48),
            u16_at(b, 50),
            16,
            20,
        ),
        Class::Elf64 => (
            word_at(b, class, 40),
            u16_at(b, 58),
            u16_at(b, 60),
            u16_at(b, 62),
            24,
            32,
        ),
    };
    let shoff = shoff.and_then(usize_of).ok_or_else(truncated)?;
    let shentsize = usize::from(shentsize.ok_or_else(truncated)?);
    let shnum = usize::from(shnum.ok_or_else(truncated)?);
    let shstrndx = usize::from(shstrndx.ok_or_else(truncated)?);
    let contents = |i: usize| -> Result<(u32, &'a [u8]), String> {
        let sh = shoff.saturating_add(i.saturating_mul(shentsize));
        let bad = || format!("section header {i} lies outside the file");
        let name = u32_at(b, sh).ok_or_else(bad)?;
        let offset = word_at(b, class, sh + off_at).and_then(usize_of);
        let size = word_at(b, class, sh + size_at).and_then(usize_of);
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(bad());
        };
        let data = b
            .get(offset..offset.saturating_add(size))
            .ok_or_else(|| format!("section {i} lies outside the file"))?;
        Ok((name, data))
    };
    if shnum == 0 {
        return Ok(None);
    }
    let (_, names) = contents(shstrndx)?;
    for i in 0..shnum {
        let (at, data) = contents(i)?;
        let this = usize_of(u64::from(at))
            .and_then(|at| names.get(at..))
            .and_then(|n| n.split(|&c| c == 0).next());
        if this == Some(name.as_bytes()) {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend((name.len() as u32 + 1).to_le_bytes());
        n.extend((desc.len() as u32).to_le_bytes());
        n.extend(kind.to_le_bytes());
        n.extend(name);
        n.push(0);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    /// A minimal ELF of `class` with one PT_LOAD and one PT_NOTE holding
    /// `notes`.
    pub(crate) fn synthetic(class: Class, notes: &[u8]) -> Vec<u8> {
        let (ehsize, phentsize) = match class {
            Class::Elf32 => (52usize, 32usize),
            Class::Elf64 => (64, 56),
        };
        let note_off = ehsize + 2 * phentsize;
        let mut b = vec![0u8; note_off];
        b[..4].copy_from_slice(b"\x7fELF");
        b[5] = 1;
        let ph = |b: &mut Vec<u8>, i: usize, kind: u32, off: u64, size: u64| {
            let at = ehsize + i * phentsize;
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            match class {
                Class::Elf32 => {
                    b[at + 4..at + 8].copy_from_slice(&(off as u32).to_le_bytes());
                    b[at + 16..at + 20].copy_from_slice(&(size as u32).to_le_bytes());
                }
                Class::Elf64 => {
                    b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
                    b[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
                }
            }
        };
        match class {
            Class::Elf32 => {
                b[4] = 1;
                b[18..20].copy_from_slice(&EM_386.to_le_bytes());
                b[28..32].copy_from_slice(&(ehsize as u32).to_le_bytes());
                b[42..44].copy_from_slice(&(phentsize as u16).to_le_bytes());
                b[44..46].copy_from_slice(&2u16.to_le_bytes());
            }
            Class::Elf64 => {
                b[4] = 2;
                b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
                b[32..40].copy_from_slice(&(ehsize as u64).to_le_bytes());
                b[54..56].copy_from_slice(&(phentsize as u16).to_le_bytes());
                b[56..58].copy_from_slice(&2u16.to_le_bytes());
            }
        }
        ph(&mut b, 0, 1, 0, note_off as u64);
        ph(&mut b, 1, PT_NOTE, note_off as u64, notes.len() as u64);
        b.extend(notes);
        b
    }

    /// A synthetic PVH ELF64 entered at `entry`.
    pub(crate) fn pvh64(entry: u64) -> Vec<u8> {
        let mut notes = note(b"Xen", 6, b"linux\0");
        notes.extend(note(b"GNU", 3, &[1, 2, 3, 4]));
        notes.extend(note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry.to_le_bytes()));
        synthetic(Class::Elf64, &notes)
    }

    /// A minimal relocatable ELF64 (as a kernel module is) with the
    /// sections `sections` (name, contents) after a null section, and the
    /// section name table last.
    pub(crate) fn with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16] = 1; // ET_REL
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        let mut names = vec![0u8];
        let mut placed = vec![(0u32, 0u64, 0u64)];
        for (name, data) in sections {
            placed.push((names.len() as u32, b.len() as u64, data.len() as u64));
            names.extend(name.as_bytes());
            names.push(0);
            b.extend(*data);
        }
        placed.push((names.len() as u32, b.len() as u64, 0));
        names.extend(b".shstrtab\0");
        let last = placed.len() - 1;
        placed[last].2 = names.len() as u64;
        b.extend(&names);
        let shoff = b.len().next_multiple_of(8);
        b.resize(shoff, 0);
        for (name, offset, size) in &placed {
            let mut sh = [0u8; 64];
            sh[..4].copy_from_slice(&name.to_le_bytes());
            sh[24..32].copy_from_slice(&offset.to_le_bytes());
            sh[32..40].copy_from_slice(&size.to_le_bytes());
            b.extend(sh);
        }
        b[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        b[60..62].copy_from_slice(&(placed.len() as u16).to_le_bytes());
        b[62..64].copy_from_slice(&(last as u16).to_le_bytes());
        b
    }

    #[test]
    fn a_section_is_found_by_its_name() {
        let b = with_sections(&[(".text", b"\x90\x90"), (".modinfo", b"name=x\0")]);
        assert_eq!(section(&b, ".modinfo"), Ok(Some(&b"name=x\0"[..])));
        assert_eq!(section(&b, ".text"), Ok(Some(&b"\x90\x90"[..])));
        // A name that only starts like one is another section.
        assert_eq!(section(&b, ".mod"), Ok(None));
        assert_eq!(section(&b, ".data"), Ok(None));
    }

    #[test]
    fn sections_outside_the_file_are_errors() {
        let b = with_sections(&[(".modinfo", b"name=x\0")]);
        // The last header (the name table's) loses its offset and size.
        assert!(section(&b[..b.len() - 40], ".modinfo").is_err());
        assert!(section(b"not an elf", ".modinfo").is_err());
    }

    #[test]
    fn an_elf64_with_an_8_byte_phys32_note_is_a_pvh_image() {
        let image = pvh_image(&pvh64(0x100_0850)).expect("pvh");
        assert_eq!(
            image,
            PvhImage {
                class: Class::Elf64,
                entry: 0x100_0850
            }
        );
    }

    #[test]
    fn an_elf32_with_a_4_byte_phys32_note_is_a_pvh_image() {
        let notes = note(
            b"Xen",
            XEN_ELFNOTE_PHYS32_ENTRY,
            &0x10_0000u32.to_le_bytes(),
        );
        let image = pvh_image(&synthetic(Class::Elf32, &notes)).expect("pvh");
        assert_eq!(image.class, Class::Elf32);
        assert_eq!(image.entry, 0x10_0000);
    }

    #[test]
    fn all_notes_are_listed_with_their_owner() {
        let image = pvh64(0x1000);
        let (_, notes) = notes(&image).expect("notes");
        let kinds: Vec<(&[u8], u32)> = notes.iter().map(|n| (n.name, n.kind)).collect();
        assert_eq!(
            kinds,
            [(&b"Xen"[..], 6), (&b"GNU"[..], 3), (&b"Xen"[..], 18)]
        );
        assert_eq!(notes[0].desc, b"linux\0");
    }

    #[test]
    fn an_elf_without_the_note_or_with_it_from_another_owner_is_refused() {
        let notes = note(b"GNU", XEN_ELFNOTE_PHYS32_ENTRY, &[0; 4]);
        let err = pvh_image(&synthetic(Class::Elf64, &notes)).expect_err("no Xen note");
        assert!(err.contains("not a PVH kernel"), "{err}");
    }

    #[test]
    fn an_entry_above_4_gib_or_an_odd_size_is_refused() {
        assert!(pvh_image(&pvh64(1 << 32)).is_err());
        let notes = note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, &[0; 6]);
        assert!(pvh_image(&synthetic(Class::Elf32, &notes)).is_err());
    }

    #[test]
    fn non_elf_truncated_and_foreign_images_are_refused() {
        assert!(pvh_image(b"MZ\x90\0").is_err());
        let image = pvh64(0x1000);
        assert!(pvh_image(&image[..70]).is_err());
        let mut arm = image.clone();
        arm[18] = 183;
        assert!(pvh_image(&arm).expect_err("arm").contains("not x86"));
        let mut beyond = image;
        let at = 64 + 56 + 8;
        beyond[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(pvh_image(&beyond).is_err());
    }
}
