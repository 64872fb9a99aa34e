//! Small 64-bit PV kernel images for the tests: Linux's layout in
//! miniature, with the Xen notes Linux 6.1 carries.

use crate::pvh::elf::{Class, PF_R, PF_W, PT_LOAD};
use crate::pvh::testimg::{note, Builder, Off, Ph};
use alloc::vec::Vec;
use vmm_glue::xen::elfnote::*;

/// Linux's `__START_KERNEL_map`.
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Where the kernel's text is (pseudo-physical), as in Linux.
pub const TEXT: u64 = 0x100_0000;
/// The entry point: 0x40 into the text.
pub const ENTRY: u64 = VIRT_BASE + TEXT + 0x40;

/// One Xen note as (type, descriptor).
pub type XenNote = (u32, Vec<u8>);

/// A numeric note of 8 bytes.
pub fn num(kind: u32, v: u64) -> XenNote {
    (kind, v.to_le_bytes().to_vec())
}

/// A string note with its NUL.
pub fn text(kind: u32, s: &str) -> XenNote {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    (kind, v)
}

/// The notes of Linux 6.1 (`arch/x86/xen/xen-head.S`), the descriptors
/// sized as there (`FEATURES` without its NUL, `.long` ones 4 bytes).
pub fn linux_notes() -> Vec<XenNote> {
    let mut l1_mfn_valid = 1u64.to_le_bytes().to_vec();
    l1_mfn_valid.extend_from_slice(&1u64.to_le_bytes());
    alloc::vec![
        text(XEN_ELFNOTE_GUEST_OS, "linux"),
        text(XEN_ELFNOTE_GUEST_VERSION, "2.6"),
        text(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        num(XEN_ELFNOTE_VIRT_BASE, VIRT_BASE),
        num(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000),
        num(XEN_ELFNOTE_ENTRY, ENTRY),
        (
            XEN_ELFNOTE_FEATURES,
            b"!writable_page_tables|pae_pgdir_above_4gb".to_vec()
        ),
        (
            XEN_ELFNOTE_SUPPORTED_FEATURES,
            0x8801u32.to_le_bytes().to_vec()
        ),
        text(XEN_ELFNOTE_PAE_MODE, "yes"),
        text(XEN_ELFNOTE_LOADER, "generic"),
        (XEN_ELFNOTE_L1_MFN_VALID, l1_mfn_valid),
        (XEN_ELFNOTE_SUSPEND_CANCEL, 1u32.to_le_bytes().to_vec()),
        (XEN_ELFNOTE_MOD_START_PFN, 1u32.to_le_bytes().to_vec()),
        num(XEN_ELFNOTE_HV_START_LOW, 0xffff_8000_0000_0000),
        num(XEN_ELFNOTE_PADDR_OFFSET, 0),
    ]
}

/// `notes` without those of type `kind`.
pub fn without(notes: &[XenNote], kind: u32) -> Vec<XenNote> {
    notes.iter().filter(|(k, _)| *k != kind).cloned().collect()
}

/// `notes` with `extra` added at the end.
pub fn with(notes: &[XenNote], extra: XenNote) -> Vec<XenNote> {
    let mut v = notes.to_vec();
    v.push(extra);
    v
}

/// The bytes of a note area holding `notes` (and a GNU note first, as in
/// a real kernel).
pub fn encode(notes: &[XenNote]) -> Vec<u8> {
    let mut area = note(b"GNU", 3, &[0xab; 20]);
    for (kind, desc) in notes {
        area.extend(note(XEN_ELFNOTE_NAME, *kind, desc));
    }
    area
}

/// The text byte at pseudo-physical `paddr` (a pattern tests can check).
pub fn text_byte(paddr: u64) -> u8 {
    (paddr.wrapping_mul(7) >> 3) as u8
}

/// A kernel laid out like Linux in miniature, with `notes` in a
/// `PT_NOTE` segment:
/// - text: pseudo-physical 0x1000000, 0x3000 bytes (with [`text_byte`]);
/// - data: 0x1004000 (a page after a one-page gap), 0x800 bytes from the
///   file, 0x2000 of memory (the rest is bss);
/// - per-CPU data: 0x1006000, 0x1000 bytes, linked at virtual 0 as
///   Linux's `.data..percpu` is: only its physical address is right.
pub fn pv_kernel(notes: &[XenNote]) -> Builder {
    let mut b = Builder::new(Class::Elf64);
    b.entry = TEXT;
    let code: Vec<u8> = (TEXT..TEXT + 0x3000).map(text_byte).collect();
    b.load(TEXT, &code, 0x3000);
    b.load(TEXT + 0x4000, &[0x5a; 0x800], 0x2000);
    let percpu = b.blob(&[0xc3; 0x1000]);
    b.phs.push(Ph {
        p_type: PT_LOAD,
        flags: PF_R | PF_W,
        offset: Off::Payload(percpu),
        vaddr: 0,
        paddr: TEXT + 0x6000,
        filesz: 0x1000,
        memsz: 0x1000,
        align: 0x1000,
    });
    b.note_segment(&encode(notes));
    b
}
