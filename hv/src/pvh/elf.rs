//! ELF32 and ELF64 little-endian x86 executables: the headers a loader needs.
//!
//! [`Elf::parse`] reads the file header, every program header and every
//! section header, and checks every table and file range against the image
//! before anything else looks at them, so later readers can slice the image
//! without further checks. A malformed image gives an [`ElfError`] that says
//! what is wrong and where; nothing here panics on any input.

use alloc::vec::Vec;
use core::fmt;

/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Note segment.
pub const PT_NOTE: u32 = 4;
/// Section without contents.
pub const SHT_NULL: u32 = 0;
/// Note section.
pub const SHT_NOTE: u32 = 7;
/// Section occupying no file space (`.bss`).
pub const SHT_NOBITS: u32 = 8;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

/// `e_type` of an executable.
pub const ET_EXEC: u16 = 2;
/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;

/// `e_phnum` value saying the real count lives in section header 0.
const PN_XNUM: u16 = 0xffff;

/// ELF file class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Elf32,
    Elf64,
}

impl Class {
    fn header_size(self) -> usize {
        match self {
            Self::Elf32 => 52,
            Self::Elf64 => 64,
        }
    }

    fn phdr_size(self) -> usize {
        match self {
            Self::Elf32 => 32,
            Self::Elf64 => 56,
        }
    }

    fn shdr_size(self) -> usize {
        match self {
            Self::Elf32 => 40,
            Self::Elf64 => 64,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Elf32 => "ELF32",
            Self::Elf64 => "ELF64",
        })
    }
}

/// One program header (ELF32 fields widened to 64 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// One section header (ELF32 fields widened to 64 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionHeader {
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
}

/// A parsed executable. Every program header's file range and every section
/// header's file range (except `SHT_NOBITS` and `SHT_NULL`) lies inside the
/// image.
#[derive(Clone, Debug)]
pub struct Elf<'a> {
    image: &'a [u8],
    pub class: Class,
    pub machine: u16,
    pub entry: u64,
    pub program_headers: Vec<ProgramHeader>,
    pub sections: Vec<SectionHeader>,
}

/// Which header table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    ProgramHeaders,
    SectionHeaders,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProgramHeaders => "program header",
            Self::SectionHeaders => "section header",
        })
    }
}

/// Why an image is not a usable executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The image is shorter than the identification bytes or the file header.
    Truncated { need: usize, len: usize },
    /// The image does not start with `\x7fELF`.
    NotElf,
    /// `EI_CLASS` is neither ELF32 nor ELF64.
    BadClass(u8),
    /// `EI_DATA` is not little-endian.
    NotLittleEndian(u8),
    /// `EI_VERSION` / `e_version` is not 1.
    BadVersion(u32),
    /// `e_type` is not `ET_EXEC`.
    NotExecutable(u16),
    /// `e_machine` is neither `EM_386` nor `EM_X86_64`.
    NotX86(u16),
    /// A header table's entries are smaller than the class's header.
    EntryTooSmall {
        table: Table,
        class: Class,
        size: u16,
    },
    /// `e_phnum` is `PN_XNUM` (more than 65534 program headers).
    ExtendedProgramHeaderCount,
    /// A header table does not lie inside the image.
    TableOutside {
        table: Table,
        offset: u64,
        count: u64,
        entry_size: u64,
        len: usize,
    },
    /// A program header's or section's file range does not lie inside the image.
    FileRangeOutside {
        table: Table,
        index: usize,
        offset: u64,
        size: u64,
        len: usize,
    },
    /// A `PT_LOAD` header has more file bytes than memory bytes.
    FileLargerThanMemory {
        index: usize,
        filesz: u64,
        memsz: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { need, len } => write!(
                f,
                "the {len}-byte image is too short for an ELF header ({need} bytes)"
            ),
            Self::NotElf => f.write_str("no ELF magic (\\x7fELF) at the start of the image"),
            Self::BadClass(c) => write!(f, "ELF class {c} is neither ELF32 (1) nor ELF64 (2)"),
            Self::NotLittleEndian(d) => {
                write!(f, "ELF data encoding {d} is not little-endian (1)")
            }
            Self::BadVersion(v) => write!(f, "ELF version {v} is not 1"),
            Self::NotExecutable(t) => {
                write!(f, "ELF type {t} is not an executable (ET_EXEC, 2)")
            }
            Self::NotX86(m) => write!(f, "ELF machine {m} is not x86 (EM_386 3 or EM_X86_64 62)"),
            Self::EntryTooSmall { table, class, size } => write!(
                f,
                "{table} entries of {size} bytes are smaller than an {class} {table} ({} bytes)",
                match (table, class) {
                    (Table::ProgramHeaders, c) => c.phdr_size(),
                    (Table::SectionHeaders, c) => c.shdr_size(),
                }
            ),
            Self::ExtendedProgramHeaderCount => {
                f.write_str("extended program header numbering (e_phnum 0xffff) is not supported")
            }
            Self::TableOutside {
                table,
                offset,
                count,
                entry_size,
                len,
            } => write!(
                f,
                "{table} table {offset:#x}+{count}*{entry_size} lies past the end of the \
                 {len:#x}-byte image"
            ),
            Self::FileRangeOutside {
                table,
                index,
                offset,
                size,
                len,
            } => write!(
                f,
                "{table} {index}: file range {offset:#x}+{size:#x} lies past the end of the \
                 {len:#x}-byte image"
            ),
            Self::FileLargerThanMemory {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "program header {index}: {filesz:#x} file bytes do not fit in {memsz:#x} \
                 memory bytes"
            ),
        }
    }
}

/// `N` little-endian bytes at `off`, zeros where `b` is too short (callers
/// check lengths first; this only keeps reads panic-free).
fn bytes<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(s) = off.checked_add(N).and_then(|end| b.get(off..end)) {
        out.copy_from_slice(s);
    }
    out
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(bytes(b, off))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes(b, off))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes(b, off))
}

/// A word: 4 bytes in ELF32, 8 in ELF64.
fn word_at(class: Class, b: &[u8], off: usize) -> u64 {
    match class {
        Class::Elf32 => u64::from(u32_at(b, off)),
        Class::Elf64 => u64_at(b, off),
    }
}

/// `[offset, offset + size)` as a slice of `image`, if it lies inside.
fn file_range(image: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    image.get(start..end)
}

/// The `count` entries of `entry_size` (non-zero) bytes of a header table.
fn table(
    image: &[u8],
    table: Table,
    offset: u64,
    count: u64,
    entry_size: u64,
) -> Result<impl Iterator<Item = &[u8]>, ElfError> {
    let outside = ElfError::TableOutside {
        table,
        offset,
        count,
        entry_size,
        len: image.len(),
    };
    let bytes = count.checked_mul(entry_size).ok_or(outside)?;
    let all = file_range(image, offset, bytes).ok_or(outside)?;
    Ok(all.chunks_exact(usize::try_from(entry_size.max(1)).map_err(|_| outside)?))
}

impl<'a> Elf<'a> {
    /// Parses and checks `image`.
    pub fn parse(image: &'a [u8]) -> Result<Self, ElfError> {
        let len = image.len();
        if len < 16 {
            return Err(ElfError::Truncated { need: 16, len });
        }
        if image[..4] != *b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        let class = match image[4] {
            1 => Class::Elf32,
            2 => Class::Elf64,
            c => return Err(ElfError::BadClass(c)),
        };
        if image[5] != 1 {
            return Err(ElfError::NotLittleEndian(image[5]));
        }
        if image[6] != 1 {
            return Err(ElfError::BadVersion(u32::from(image[6])));
        }
        let need = class.header_size();
        if len < need {
            return Err(ElfError::Truncated { need, len });
        }
        let e_type = u16_at(image, 16);
        let machine = u16_at(image, 18);
        let version = u32_at(image, 20);
        if version != 1 {
            return Err(ElfError::BadVersion(version));
        }
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable(e_type));
        }
        if machine != EM_386 && machine != EM_X86_64 {
            return Err(ElfError::NotX86(machine));
        }
        let entry = word_at(class, image, 24);
        let (phoff, shoff, tail) = match class {
            Class::Elf32 => (
                u64::from(u32_at(image, 28)),
                u64::from(u32_at(image, 32)),
                42,
            ),
            Class::Elf64 => (u64_at(image, 32), u64_at(image, 40), 54),
        };
        let phentsize = u16_at(image, tail);
        let phnum = u16_at(image, tail + 2);
        let shentsize = u16_at(image, tail + 4);
        let shnum = u16_at(image, tail + 6);

        let program_headers = Self::program_headers(image, class, phoff, phentsize, phnum)?;
        let sections = Self::section_headers(image, class, shoff, shentsize, shnum)?;
        Ok(Self {
            image,
            class,
            machine,
            entry,
            program_headers,
            sections,
        })
    }

    fn program_headers(
        image: &[u8],
        class: Class,
        phoff: u64,
        phentsize: u16,
        phnum: u16,
    ) -> Result<Vec<ProgramHeader>, ElfError> {
        if phnum == 0 {
            return Ok(Vec::new());
        }
        if phnum == PN_XNUM {
            return Err(ElfError::ExtendedProgramHeaderCount);
        }
        if usize::from(phentsize) < class.phdr_size() {
            return Err(ElfError::EntryTooSmall {
                table: Table::ProgramHeaders,
                class,
                size: phentsize,
            });
        }
        let entries = table(
            image,
            Table::ProgramHeaders,
            phoff,
            u64::from(phnum),
            u64::from(phentsize),
        )?;
        let mut out = Vec::with_capacity(usize::from(phnum));
        for (index, e) in entries.enumerate() {
            let ph = match class {
                Class::Elf32 => ProgramHeader {
                    p_type: u32_at(e, 0),
                    offset: u64::from(u32_at(e, 4)),
                    vaddr: u64::from(u32_at(e, 8)),
                    paddr: u64::from(u32_at(e, 12)),
                    filesz: u64::from(u32_at(e, 16)),
                    memsz: u64::from(u32_at(e, 20)),
                    flags: u32_at(e, 24),
                    align: u64::from(u32_at(e, 28)),
                },
                Class::Elf64 => ProgramHeader {
                    p_type: u32_at(e, 0),
                    flags: u32_at(e, 4),
                    offset: u64_at(e, 8),
                    vaddr: u64_at(e, 16),
                    paddr: u64_at(e, 24),
                    filesz: u64_at(e, 32),
                    memsz: u64_at(e, 40),
                    align: u64_at(e, 48),
                },
            };
            // An empty file range is never read, wherever it claims to be.
            if ph.filesz != 0 && file_range(image, ph.offset, ph.filesz).is_none() {
                return Err(ElfError::FileRangeOutside {
                    table: Table::ProgramHeaders,
                    index,
                    offset: ph.offset,
                    size: ph.filesz,
                    len: image.len(),
                });
            }
            if ph.p_type == PT_LOAD && ph.filesz > ph.memsz {
                return Err(ElfError::FileLargerThanMemory {
                    index,
                    filesz: ph.filesz,
                    memsz: ph.memsz,
                });
            }
            out.push(ph);
        }
        Ok(out)
    }

    fn section_header(class: Class, e: &[u8]) -> SectionHeader {
        match class {
            Class::Elf32 => SectionHeader {
                sh_type: u32_at(e, 4),
                flags: u64::from(u32_at(e, 8)),
                addr: u64::from(u32_at(e, 12)),
                offset: u64::from(u32_at(e, 16)),
                size: u64::from(u32_at(e, 20)),
                align: u64::from(u32_at(e, 32)),
            },
            Class::Elf64 => SectionHeader {
                sh_type: u32_at(e, 4),
                flags: u64_at(e, 8),
                addr: u64_at(e, 16),
                offset: u64_at(e, 24),
                size: u64_at(e, 32),
                align: u64_at(e, 48),
            },
        }
    }

    fn section_headers(
        image: &[u8],
        class: Class,
        shoff: u64,
        shentsize: u16,
        shnum: u16,
    ) -> Result<Vec<SectionHeader>, ElfError> {
        if shoff == 0 {
            return Ok(Vec::new());
        }
        if usize::from(shentsize) < class.shdr_size() {
            return Err(ElfError::EntryTooSmall {
                table: Table::SectionHeaders,
                class,
                size: shentsize,
            });
        }
        let entry_size = u64::from(shentsize);
        // With 0xff00 or more sections, e_shnum is 0 and section 0's sh_size
        // holds the count.
        let count = if shnum == 0 {
            let first = table(image, Table::SectionHeaders, shoff, 1, entry_size)?;
            first
                .map(|e| Self::section_header(class, e).size)
                .next()
                .unwrap_or(0)
        } else {
            u64::from(shnum)
        };
        let entries = table(image, Table::SectionHeaders, shoff, count, entry_size)?;
        let mut out = Vec::new();
        for (index, e) in entries.enumerate() {
            let sh = Self::section_header(class, e);
            let has_bytes = sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL && sh.size != 0;
            if has_bytes && file_range(image, sh.offset, sh.size).is_none() {
                return Err(ElfError::FileRangeOutside {
                    table: Table::SectionHeaders,
                    index,
                    offset: sh.offset,
                    size: sh.size,
                    len: image.len(),
                });
            }
            out.push(sh);
        }
        Ok(out)
    }

    /// The whole image.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }

    /// The file bytes of a program header of this image (empty for a range
    /// outside the image, which [`Elf::parse`] has ruled out for its own).
    pub fn segment_bytes(&self, ph: &ProgramHeader) -> &'a [u8] {
        file_range(self.image, ph.offset, ph.filesz).unwrap_or_default()
    }

    /// The file bytes of a section of this image (empty for `SHT_NOBITS` and
    /// for a range outside the image).
    pub fn section_bytes(&self, sh: &SectionHeader) -> &'a [u8] {
        if sh.sh_type == SHT_NOBITS {
            return &[];
        }
        file_range(self.image, sh.offset, sh.size).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
