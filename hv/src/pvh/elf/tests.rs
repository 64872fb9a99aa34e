//! Tests of the ELF parser on images built by `testimg`.

use super::*;
use crate::pvh::testimg::{phys32, pvh_kernel, Builder, Off, Ph};
use alloc::string::ToString;

fn load_ph(offset: Off, paddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph {
        p_type: PT_LOAD,
        flags: PF_R | PF_X,
        offset,
        vaddr: paddr,
        paddr,
        filesz,
        memsz,
        align: 0x1000,
    }
}

#[test]
fn elf64_kernel_headers_are_read_with_physical_and_virtual_addresses() {
    let b = pvh_kernel(Class::Elf64, 0x100_0000);
    let image = b.build();
    let elf = Elf::parse(&image).unwrap();
    assert_eq!(elf.class, Class::Elf64);
    assert_eq!(elf.machine, EM_X86_64);
    assert_eq!(elf.entry, 0x100_0040);
    assert_eq!(elf.program_headers.len(), 2);
    let load = elf.program_headers[0];
    assert_eq!(load.p_type, PT_LOAD);
    assert_eq!(load.paddr, 0x100_0000);
    assert_eq!(load.vaddr, 0xffff_ffff_8100_0000);
    assert_eq!((load.filesz, load.memsz), (0x1800, 0x3000));
    assert_eq!(load.offset, b.payload_start() as u64);
    assert_eq!(elf.segment_bytes(&load)[..4], [0, 7, 14, 21]);
    assert_eq!(elf.program_headers[1].p_type, PT_NOTE);
    assert_eq!(
        elf.segment_bytes(&elf.program_headers[1]),
        phys32(0x100_0040)
    );
    assert!(elf.sections.is_empty());
}

#[test]
fn elf32_kernel_headers_are_read() {
    let mut b = pvh_kernel(Class::Elf32, 0x10_0000);
    b.note_section(&phys32(0x10_0040));
    let image = b.build();
    let elf = Elf::parse(&image).unwrap();
    assert_eq!(elf.class, Class::Elf32);
    assert_eq!(elf.machine, EM_386);
    assert_eq!(elf.entry, 0x10_0040);
    let load = elf.program_headers[0];
    assert_eq!((load.paddr, load.vaddr), (0x10_0000, 0x10_0000));
    assert_eq!((load.filesz, load.memsz, load.flags), (0x1800, 0x3000, 5));
    // The null section, then the note.
    assert_eq!(elf.sections.len(), 2);
    assert_eq!(elf.sections[1].sh_type, SHT_NOTE);
    assert_eq!(elf.section_bytes(&elf.sections[1]), phys32(0x10_0040));
}

#[test]
fn truncated_file_header_is_reported() {
    let image = pvh_kernel(Class::Elf64, 0x10_0000).build();
    assert_eq!(
        Elf::parse(&image[..10]).unwrap_err(),
        ElfError::Truncated { need: 16, len: 10 }
    );
    assert_eq!(
        Elf::parse(&image[..40]).unwrap_err(),
        ElfError::Truncated { need: 64, len: 40 }
    );
    let image32 = pvh_kernel(Class::Elf32, 0x10_0000).build();
    assert_eq!(
        Elf::parse(&image32[..51]).unwrap_err(),
        ElfError::Truncated { need: 52, len: 51 }
    );
}

#[test]
fn truncated_program_header_table_is_reported() {
    let b = pvh_kernel(Class::Elf64, 0x10_0000);
    let image = b.build();
    let cut = b.phoff() + 56 + 10;
    let err = Elf::parse(&image[..cut]).unwrap_err();
    assert_eq!(
        err,
        ElfError::TableOutside {
            table: Table::ProgramHeaders,
            offset: 64,
            count: 2,
            entry_size: 56,
            len: cut,
        }
    );
    assert_eq!(
        err.to_string(),
        "program header table 0x40+2*56 lies past the end of the 0x82-byte image"
    );
}

#[test]
fn segment_past_the_end_of_the_image_says_where() {
    let mut b = Builder::new(Class::Elf64);
    b.load(0x10_0000, &[0x90; 16], 16);
    b.note_segment(&phys32(0x10_0000));
    b.phs
        .push(load_ph(Off::Abs(0x1000), 0x20_0000, 0x5000, 0x5000));
    let mut image = b.build();
    image.resize(0x3000, 0);
    let err = Elf::parse(&image).unwrap_err();
    assert_eq!(
        err.to_string(),
        "program header 2: file range 0x1000+0x5000 lies past the end of the 0x3000-byte image"
    );
}

#[test]
fn file_range_overflowing_the_address_space_is_an_error() {
    for class in [Class::Elf32, Class::Elf64] {
        let mut b = Builder::new(class);
        let top = match class {
            Class::Elf32 => u64::from(u32::MAX) - 4,
            Class::Elf64 => u64::MAX - 4,
        };
        b.phs.push(load_ph(Off::Abs(top), 0x10_0000, 0x10, 0x10));
        let image = b.build();
        assert!(matches!(
            Elf::parse(&image),
            Err(ElfError::FileRangeOutside { index: 0, .. })
        ));
    }
}

#[test]
fn more_file_bytes_than_memory_bytes_is_an_error() {
    let mut b = Builder::new(Class::Elf32);
    b.load(0x10_0000, &[1; 0x20], 0x10);
    assert_eq!(
        Elf::parse(&b.build()).unwrap_err(),
        ElfError::FileLargerThanMemory {
            index: 0,
            filesz: 0x20,
            memsz: 0x10
        }
    );
}

#[test]
fn empty_file_range_is_not_checked_against_the_image() {
    let mut b = Builder::new(Class::Elf64);
    b.phs
        .push(load_ph(Off::Abs(0xdead_beef_0000), 0x10_0000, 0, 0x1000));
    let image = b.build();
    let elf = Elf::parse(&image).unwrap();
    assert!(elf.segment_bytes(&elf.program_headers[0]).is_empty());
}

#[test]
fn note_section_past_the_end_is_an_error() {
    let mut b = Builder::new(Class::Elf32);
    b.note_section(&phys32(0x10_0000));
    b.shs[0].size = 0x10_0000;
    assert!(matches!(
        Elf::parse(&b.build()),
        Err(ElfError::FileRangeOutside {
            table: Table::SectionHeaders,
            index: 1,
            ..
        })
    ));
}

#[test]
fn identification_errors_name_the_field() {
    let image = pvh_kernel(Class::Elf64, 0x10_0000).build();
    let with = |i: usize, v: u8| {
        let mut x = image.clone();
        x[i] = v;
        Elf::parse(&x).unwrap_err()
    };
    assert_eq!(with(0, 0x7e), ElfError::NotElf);
    assert_eq!(with(4, 3), ElfError::BadClass(3));
    assert_eq!(with(5, 2), ElfError::NotLittleEndian(2));
    assert_eq!(with(6, 0), ElfError::BadVersion(0));
    assert_eq!(with(16, 3), ElfError::NotExecutable(3));
    assert_eq!(with(18, 40), ElfError::NotX86(40));
    let mut b = pvh_kernel(Class::Elf64, 0x10_0000);
    b.e_type = 1;
    assert_eq!(
        Elf::parse(&b.build()).unwrap_err().to_string(),
        "ELF type 1 is not an executable (ET_EXEC, 2)"
    );
}

#[test]
fn short_program_header_entries_are_rejected() {
    let b = pvh_kernel(Class::Elf32, 0x10_0000);
    let mut image = b.build();
    image[42..44].copy_from_slice(&20u16.to_le_bytes());
    assert_eq!(
        Elf::parse(&image).unwrap_err().to_string(),
        "program header entries of 20 bytes are smaller than an ELF32 program header (32 bytes)"
    );
}

#[test]
fn huge_section_count_from_section_zero_is_bounded_by_the_image() {
    let mut b = Builder::new(Class::Elf64);
    b.note_section(&phys32(0x10_0000));
    let mut image = b.build();
    // e_shnum 0: the count comes from section 0's sh_size.
    image[60..62].copy_from_slice(&0u16.to_le_bytes());
    let sh0 = b.shoff();
    image[sh0 + 32..sh0 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Elf::parse(&image),
        Err(ElfError::TableOutside {
            table: Table::SectionHeaders,
            ..
        })
    ));
    image[sh0 + 32..sh0 + 40].copy_from_slice(&2u64.to_le_bytes());
    assert_eq!(Elf::parse(&image).unwrap().sections.len(), 2);
}
