//! Tests of the PV note reader on images built by `pv::testimg`.

use super::*;
use crate::pv::testimg::{encode, linux_notes, num, pv_kernel, text, with, without, XenNote};
use crate::pv::testimg::{ENTRY, VIRT_BASE};
use crate::pvh::elf::PT_NOTE;
use crate::pvh::testimg::{Off, Ph};
use alloc::vec::Vec;
use vmm_glue::xen::features::*;

fn read(notes: &[XenNote]) -> Result<PvNotes<'static>, PvNoteError> {
    let image = pv_kernel(notes).build().leak();
    pv_notes(&Elf::parse(image).unwrap())
}

/// The fewest notes Xen accepts: an entry, a loader and a Xen version.
fn minimal() -> Vec<XenNote> {
    alloc::vec![
        num(XEN_ELFNOTE_ENTRY, 0x100_0040),
        text(XEN_ELFNOTE_LOADER, "generic"),
        text(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
    ]
}

const fn bit(b: u32) -> u32 {
    1 << b
}

#[test]
fn linux_notes_give_entry_layout_and_features() {
    let n = read(&linux_notes()).unwrap();
    assert_eq!(n.entry, ENTRY);
    assert_eq!(n.entry_found_in, NoteArea::Segment(3));
    assert_eq!(n.virt_base, VIRT_BASE);
    assert_eq!(n.paddr_offset, 0);
    assert_eq!(n.init_p2m, Some(0x80_0000_0000));
    assert_eq!(n.hypercall_page, None);
    assert!(n.mod_start_pfn);
    assert_eq!(
        n.features,
        XenFeatures {
            supported: bit(XENFEAT_WRITABLE_PAGE_TABLES)
                | bit(XENFEAT_PAE_PGDIR_ABOVE_4GB)
                | bit(XENFEAT_DOM0)
                | bit(XENFEAT_LINUX_RSDP_UNRESTRICTED),
            required: bit(XENFEAT_WRITABLE_PAGE_TABLES),
        }
    );
    assert_eq!(n.guest_os, Some("linux"));
    assert_eq!(n.guest_version, Some("2.6"));
    assert_eq!(n.xen_version, Some("xen-3.0"));
    assert_eq!(n.loader, Some("generic"));
    assert_eq!(n.pae_mode, Some("yes"));
    assert_eq!(n.hv_start_low, Some(0xffff_8000_0000_0000));
    assert!(n.l1_mfn_valid && n.suspend_cancel && !n.bsd_symtab);
}

#[test]
fn virt_base_and_paddr_offset_default_to_zero() {
    let n = read(&minimal()).unwrap();
    assert_eq!((n.entry, n.virt_base, n.paddr_offset), (0x100_0040, 0, 0));
    assert_eq!(n.features, XenFeatures::default());
    assert!(!n.mod_start_pfn && !n.l1_mfn_valid && !n.suspend_cancel);
    assert_eq!((n.guest_os, n.init_p2m, n.hv_start_low), (None, None, None));
}

#[test]
fn paddr_offset_without_virt_base_is_an_error() {
    let notes = with(&minimal(), num(XEN_ELFNOTE_PADDR_OFFSET, 0));
    let err = read(&notes).unwrap_err();
    assert_eq!(err, PvNoteError::PaddrOffsetWithoutVirtBase);
    assert_eq!(
        err.to_string(),
        "XEN_ELFNOTE_PADDR_OFFSET is set but XEN_ELFNOTE_VIRT_BASE is not"
    );
    let notes = with(&notes, num(XEN_ELFNOTE_VIRT_BASE, VIRT_BASE));
    assert_eq!(read(&notes).unwrap().virt_base, VIRT_BASE);
}

#[test]
fn an_image_without_the_entry_note_is_not_a_pv_kernel() {
    // A PVH-only Linux: the other notes and PHYS32_ENTRY, no ENTRY.
    let notes = with(
        &without(&linux_notes(), XEN_ELFNOTE_ENTRY),
        (
            XEN_ELFNOTE_PHYS32_ENTRY,
            0x100_0850u32.to_le_bytes().to_vec(),
        ),
    );
    let err = read(&notes).unwrap_err();
    assert_eq!(err, PvNoteError::NoEntry);
    assert_eq!(
        err.to_string(),
        "no XEN_ELFNOTE_ENTRY note: this image is not a PV kernel"
    );
    assert_eq!(read(&[]).unwrap_err(), PvNoteError::NoEntry);
}

#[test]
fn feature_strings_mark_required_names_and_ignore_unknown_plain_ones() {
    let mut f = XenFeatures::default();
    f.parse("!writable_page_tables|pae_pgdir_above_4gb||no_such_thing|dom0")
        .unwrap();
    assert_eq!(
        f,
        XenFeatures {
            supported: bit(0) | bit(4) | bit(11),
            required: bit(0),
        }
    );
    f.parse("!mmu_pt_update_preserve_ad").unwrap();
    assert_eq!(f.required, bit(0) | bit(5));
    assert_eq!(f.supported, bit(0) | bit(4) | bit(5) | bit(11));
    assert_eq!(
        f.parse("dom0|!no_such_thing"),
        Err(UnknownFeature("no_such_thing".to_string()))
    );
    // Names are matched whole and case-sensitively.
    assert!(f.parse("!Writable_page_tables").is_err());
    assert!(f.parse("! dom0").is_err());
    assert!(XenFeatures::default().parse("").is_ok());
}

#[test]
fn an_unknown_required_feature_is_an_error_naming_it() {
    let notes = with(&minimal(), (XEN_ELFNOTE_FEATURES, b"!flying_pigs".to_vec()));
    let err = read(&notes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PT_NOTE segment (program header 3): XEN_ELFNOTE_FEATURES requires \"flying_pigs\", \
         which is no Xen feature"
    );
}

#[test]
fn required_features_this_hypervisor_does_not_offer_are_refused_by_name() {
    for (name, bit_nr) in [
        ("auto_translated_physmap", XENFEAT_AUTO_TRANSLATED_PHYSMAP),
        ("hvm_callback_vector", XENFEAT_HVM_CALLBACK_VECTOR),
        ("dom0", XENFEAT_DOM0),
        (
            "writable_descriptor_tables",
            XENFEAT_WRITABLE_DESCRIPTOR_TABLES,
        ),
        ("supervisor_mode_kernel", XENFEAT_SUPERVISOR_MODE_KERNEL),
    ] {
        let s = alloc::format!("!writable_page_tables|!{name}");
        let notes = with(&minimal(), (XEN_ELFNOTE_FEATURES, s.into_bytes()));
        let err = read(&notes).unwrap_err();
        assert_eq!(err, PvNoteError::RequiredFeatureNotOffered { bit: bit_nr });
        assert_eq!(
            err.to_string(),
            alloc::format!(
                "the kernel requires XENFEAT_{name} (\"!{name}\" in XEN_ELFNOTE_FEATURES), \
                 which a 64-bit PV domU does not get from this hypervisor"
            )
        );
    }
    // Supported (not required) is fine, and so are the requirements a PV
    // domU gets.
    let s = "auto_translated_physmap|hvm_callback_vector|dom0|!writable_page_tables|\
             !pae_pgdir_above_4gb|!mmu_pt_update_preserve_ad|!highmem_assist|!direct_mapped";
    let notes = with(&minimal(), (XEN_ELFNOTE_FEATURES, s.as_bytes().to_vec()));
    assert_eq!(read(&notes).unwrap().features.required, PV_REQUIRABLE);
}

#[test]
fn a_later_note_replaces_an_earlier_one_and_features_accumulate() {
    let mut notes = minimal();
    notes.push(num(XEN_ELFNOTE_ENTRY, 0x100_0080));
    notes.push((XEN_ELFNOTE_FEATURES, b"pae_pgdir_above_4gb".to_vec()));
    notes.push((XEN_ELFNOTE_FEATURES, b"!writable_page_tables".to_vec()));
    notes.push((
        XEN_ELFNOTE_SUPPORTED_FEATURES,
        0x100u32.to_le_bytes().to_vec(),
    ));
    notes.push(text(XEN_ELFNOTE_GUEST_OS, "Mini-OS"));
    notes.push(text(XEN_ELFNOTE_GUEST_OS, "NetBSD"));
    let n = read(&notes).unwrap();
    assert_eq!(n.entry, 0x100_0080);
    assert_eq!(n.guest_os, Some("NetBSD"));
    assert_eq!(n.features.supported, bit(0) | bit(4) | bit(8));
    assert_eq!(n.features.required, bit(0));
}

#[test]
fn sections_are_read_only_when_no_segment_has_xen_notes() {
    // Notes in a section and a different ENTRY in the segment: the segment wins.
    let mut b = pv_kernel(&minimal());
    b.note_section(&encode(&[num(XEN_ELFNOTE_ENTRY, 0x200_0000)]));
    let image = b.build();
    let n = pv_notes(&Elf::parse(&image).unwrap()).unwrap();
    assert_eq!(
        (n.entry, n.entry_found_in),
        (0x100_0040, NoteArea::Segment(3))
    );
    // Only a GNU note in the segment: the section's notes count.
    let mut b = pv_kernel(&[]);
    b.note_section(&encode(&minimal()));
    let image = b.build();
    let n = pv_notes(&Elf::parse(&image).unwrap()).unwrap();
    assert_eq!(
        (n.entry, n.entry_found_in),
        (0x100_0040, NoteArea::Section(1))
    );
}

#[test]
fn a_note_segment_at_file_offset_zero_is_skipped() {
    let mut b = pv_kernel(&[]);
    b.phs.push(Ph {
        p_type: PT_NOTE,
        flags: 4,
        offset: Off::Abs(0),
        vaddr: 0,
        paddr: 0,
        filesz: 16,
        memsz: 16,
        align: 4,
    });
    b.note_section(&encode(&minimal()));
    let image = b.build();
    // Read as notes, the ELF header at offset 0 would be malformed.
    let n = pv_notes(&Elf::parse(&image).unwrap()).unwrap();
    assert_eq!(n.entry_found_in, NoteArea::Section(1));
}

#[test]
fn numeric_descriptors_are_1_2_4_or_8_bytes() {
    for (desc, want) in [
        (alloc::vec![0x40], 0x40),
        (alloc::vec![0x40, 0x10], 0x1040),
        (0x100_0040u32.to_le_bytes().to_vec(), 0x100_0040),
        (ENTRY.to_le_bytes().to_vec(), ENTRY),
    ] {
        let mut notes = without(&minimal(), XEN_ELFNOTE_ENTRY);
        notes.push((XEN_ELFNOTE_ENTRY, desc));
        assert_eq!(read(&notes).unwrap().entry, want);
    }
    let notes = with(&minimal(), (XEN_ELFNOTE_VIRT_BASE, alloc::vec![0; 6]));
    assert_eq!(
        read(&notes).unwrap_err().to_string(),
        "PT_NOTE segment (program header 3): XEN_ELFNOTE_VIRT_BASE has a 6-byte descriptor \
         (expected 1, 2, 4 or 8)"
    );
}

#[test]
fn a_kernel_must_be_for_the_generic_loader_or_linux_and_for_xen_3_0() {
    let netbsd = alloc::vec![
        num(XEN_ELFNOTE_ENTRY, 0x100_0040),
        text(XEN_ELFNOTE_GUEST_OS, "NetBSD"),
        text(XEN_ELFNOTE_LOADER, "generic"),
        text(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        text(XEN_ELFNOTE_BSD_SYMTAB, "yes"),
        num(XEN_ELFNOTE_HYPERCALL_PAGE, 0xffff_ffff_8010_2000),
    ];
    let n = read(&netbsd).unwrap();
    assert!(n.bsd_symtab);
    assert_eq!(n.hypercall_page, Some(0xffff_ffff_8010_2000));
    let linux_no_loader = without(&linux_notes(), XEN_ELFNOTE_LOADER);
    assert!(read(&linux_no_loader).is_ok());

    let plan9 = with(
        &without(&netbsd, XEN_ELFNOTE_LOADER),
        text(XEN_ELFNOTE_GUEST_OS, "plan9"),
    );
    assert_eq!(
        read(&plan9).unwrap_err().to_string(),
        "XEN_ELFNOTE_LOADER is none and XEN_ELFNOTE_GUEST_OS is \"plan9\": a PV kernel must \
         be built for the \"generic\" loader or be \"linux\""
    );
    let old = with(&minimal(), text(XEN_ELFNOTE_XEN_VERSION, "xen-2.0"));
    assert_eq!(
        read(&old).unwrap_err().to_string(),
        "XEN_ELFNOTE_XEN_VERSION is \"xen-2.0\": a PV kernel must be built for \"xen-3.0\""
    );
    let none = without(&minimal(), XEN_ELFNOTE_XEN_VERSION);
    assert_eq!(read(&none).unwrap_err(), PvNoteError::XenVersion(None));
}

#[test]
fn a_malformed_note_area_names_the_area() {
    let mut area = encode(&minimal());
    area.extend_from_slice(&[1, 2, 3]);
    let mut b = pv_kernel(&[]);
    b.phs.pop();
    b.note_segment(&area);
    let image = b.build();
    let err = pv_notes(&Elf::parse(&image).unwrap()).unwrap_err();
    assert!(matches!(
        err,
        PvNoteError::Malformed {
            area: NoteArea::Segment(3),
            error: NoteFormatError::TrailingBytes { len: 3, .. }
        }
    ));
    assert!(err
        .to_string()
        .starts_with("PT_NOTE segment (program header 3): 3 bytes at offset"));
}
