//! Every way a plan is refused, and what the message says.

use super::*;
use crate::pv::notes::PvNoteError;
use crate::pv::testimg::{num, text, with, without, VIRT_BASE};
use crate::pvh::elf::{PF_R, PF_X, PT_LOAD};
use crate::pvh::testimg::{Builder, Off, Ph};
use vmm_glue::xen::elfnote::*;

fn err(notes: &[XenNote], cfg: &PvBuildConfig<'_>) -> BuildError {
    plan_of(notes, cfg).unwrap_err()
}

/// Linux's notes with the image mapped at `virt_base` instead.
fn at(virt_base: u64) -> Vec<XenNote> {
    with(
        &with(&linux_notes(), num(XEN_ELFNOTE_VIRT_BASE, virt_base)),
        num(XEN_ELFNOTE_ENTRY, virt_base.wrapping_add(0x100_0040)),
    )
}

#[test]
fn an_image_that_is_not_elf64_for_x86_64_is_refused() {
    let e = plan(b"MZ\x90\x00 not an ELF image", &config(NR_PAGES)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad ELF image: no ELF magic (\\x7fELF) at the start of the image"
    );
    let mut b = Builder::new(crate::pvh::elf::Class::Elf32);
    b.load(0x10_0000, &[0xf4; 16], 16);
    let e = plan(&b.build(), &config(NR_PAGES)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the image is ELF32 for machine 3: a 64-bit PV kernel is ELF64 for x86-64 (62)"
    );
    let mut b = pv_kernel(&linux_notes());
    b.machine = crate::pvh::elf::EM_386;
    assert!(matches!(
        plan(&b.build(), &config(NR_PAGES)),
        Err(BuildError::NotElf64 { machine: 3, .. })
    ));
}

#[test]
fn an_image_without_an_entry_note_is_not_a_pv_kernel() {
    let e = err(
        &without(&linux_notes(), XEN_ELFNOTE_ENTRY),
        &config(NR_PAGES),
    );
    assert_eq!(e, BuildError::Notes(PvNoteError::NoEntry));
    assert_eq!(
        e.to_string(),
        "no XEN_ELFNOTE_ENTRY note: this image is not a PV kernel"
    );
}

#[test]
fn a_required_feature_not_offered_is_refused_by_name() {
    let notes = with(
        &linux_notes(),
        (XEN_ELFNOTE_FEATURES, b"!auto_translated_physmap".to_vec()),
    );
    assert!(err(&notes, &config(NR_PAGES))
        .to_string()
        .starts_with("the kernel requires XENFEAT_auto_translated_physmap"));
}

#[test]
fn a_non_canonical_or_misaligned_virt_base_is_refused() {
    let e = err(&at(0x0000_8000_0000_0000), &config(NR_PAGES));
    assert_eq!(
        e.to_string(),
        "XEN_ELFNOTE_VIRT_BASE (0x800000000000) is not a canonical address"
    );
    let e = err(&at(VIRT_BASE + 0x800), &config(NR_PAGES));
    assert_eq!(
        e.to_string(),
        "XEN_ELFNOTE_VIRT_BASE 0xffffffff80000800 is not a multiple of the 4 KiB page size"
    );
}

#[test]
fn a_virt_base_in_the_hypervisors_range_is_refused() {
    for va in [
        0xffff_8000_0000_0000,
        0xffff_8100_0000_0000,
        0xffff_87ff_ffff_f000,
    ] {
        let e = err(&at(va), &config(NR_PAGES));
        assert_eq!(
            e,
            BuildError::InHypervisorRange {
                what: "XEN_ELFNOTE_VIRT_BASE",
                va
            }
        );
    }
    assert_eq!(
        err(&at(0xffff_8000_0000_0000), &config(NR_PAGES)).to_string(),
        "XEN_ELFNOTE_VIRT_BASE (0xffff800000000000) lies in the hypervisor's range \
         0xffff800000000000..0xffff880000000000 of every PV guest's address space"
    );
    // Just above it is the guest's again.
    assert!(plan_of(&at(0xffff_8800_0000_0000), &config(NR_PAGES)).is_ok());
}

#[test]
fn a_mapping_running_out_of_the_lower_half_is_refused() {
    // The kernel fits below 2^47, the mapping's 4 MiB rounding does not.
    let virt_base = (1 << 47) - 0x100_8000;
    let e = err(&at(virt_base), &config(NR_PAGES));
    assert_eq!(
        e,
        BuildError::NonCanonical {
            what: "the initial mapping",
            va: 1 << 47
        }
    );
    // The kernel itself crossing.
    let e = err(&at((1 << 47) - 0x100_4000), &config(NR_PAGES));
    assert_eq!(
        e.to_string(),
        "the kernel image (0x800000000000) is not a canonical address"
    );
}

#[test]
fn a_mapping_past_the_top_of_the_address_space_is_refused() {
    // PADDR_OFFSET brings the kernel to pseudo-physical 0; mapped 512 KiB
    // below the top, the kernel fits and the rest does not.
    let at_offset_0 = |virt_base: u64| {
        with(
            &with(
                &with(&linux_notes(), num(XEN_ELFNOTE_VIRT_BASE, virt_base)),
                num(XEN_ELFNOTE_PADDR_OFFSET, 0x100_0000),
            ),
            num(XEN_ELFNOTE_ENTRY, virt_base + 0x40),
        )
    };
    let virt_base = 0u64.wrapping_sub(0x8_0000);
    let e = err(&at_offset_0(virt_base), &config(NR_PAGES));
    assert_eq!(
        e.to_string(),
        "the initial mapping, starting at 0xfffffffffff80000, does not fit below the top of \
         the address space"
    );
    // Room for everything, but the 4 MiB rounding ends the mapping at
    // the top itself: its end would not be an address.
    let e = err(
        &at_offset_0(0u64.wrapping_sub(0x20_0000)),
        &config(NR_PAGES),
    );
    assert!(matches!(e, BuildError::PastTopOfAddressSpace { .. }));
    let p = plan_of(
        &at_offset_0(0u64.wrapping_sub(0x60_0000)),
        &config(NR_PAGES),
    )
    .unwrap();
    assert_eq!(p.mapped_end(), 0u64.wrapping_sub(0x40_0000));
    // Without the offset the kernel itself is past the top.
    let e = err(&at(virt_base), &config(NR_PAGES));
    assert_eq!(
        e,
        BuildError::PastTopOfAddressSpace {
            what: "the kernel image",
            start: virt_base
        }
    );
}

#[test]
fn an_entry_or_hypercall_page_outside_the_image_is_refused() {
    let notes = with(
        &linux_notes(),
        num(XEN_ELFNOTE_ENTRY, VIRT_BASE + 0x100_7000),
    );
    assert_eq!(
        err(&notes, &config(NR_PAGES)).to_string(),
        "XEN_ELFNOTE_ENTRY 0xffffffff81007000 lies outside the kernel image \
         (0xffffffff81000000..0xffffffff81007000)"
    );
    let notes = with(&linux_notes(), num(XEN_ELFNOTE_ENTRY, 0x100_0040));
    assert!(matches!(
        err(&notes, &config(NR_PAGES)),
        BuildError::EntryOutside { .. }
    ));
    let notes = with(
        &linux_notes(),
        num(XEN_ELFNOTE_HYPERCALL_PAGE, VIRT_BASE + 0x200_0000),
    );
    assert_eq!(
        err(&notes, &config(NR_PAGES)).to_string(),
        "XEN_ELFNOTE_HYPERCALL_PAGE 0xffffffff82000000 lies outside the kernel image \
         (0xffffffff81000000..0xffffffff81007000)"
    );
}

#[test]
fn a_domain_too_small_for_the_kernel_says_how_much_is_needed() {
    let e = err(&linux_notes(), &config(0x1005));
    assert_eq!(
        e.to_string(),
        "not enough memory for the kernel image: 0x1007 pages (17 MiB) needed, the domain has \
         0x1005 (17 MiB)"
    );
    let e = err(&linux_notes(), &config(0x1100));
    assert!(matches!(
        e,
        BuildError::DoesNotFit {
            what,
            nr_pages: 0x1100,
            ..
        } if what.starts_with("the initial mapping (kernel")
    ));
    // Exactly the mapping: fits; an unmapped initrd then does not.
    assert_eq!(
        plan_of(&linux_notes(), &config(0x1400))
            .unwrap()
            .first_free_pfn(),
        0x1400
    );
    let cfg = PvBuildConfig {
        ramdisk_len: Some(1),
        ..config(0x1400)
    };
    assert_eq!(
        err(&linux_notes(), &cfg),
        BuildError::DoesNotFit {
            what: "the initial mapping and the initrd after it",
            need_pages: 0x1401,
            nr_pages: 0x1400
        }
    );
    // A mapped initrd too large for the domain.
    let cfg = PvBuildConfig {
        ramdisk_len: Some(u64::MAX),
        ..config(NR_PAGES)
    };
    let notes = without(&linux_notes(), XEN_ELFNOTE_MOD_START_PFN);
    assert!(matches!(err(&notes, &cfg), BuildError::DoesNotFit { .. }));
    assert_eq!(
        err(&linux_notes(), &config(0)),
        BuildError::DoesNotFit {
            what: "the kernel image",
            need_pages: 0x1007,
            nr_pages: 0
        }
    );
}

#[test]
fn more_pages_than_machine_frames_can_name_are_refused() {
    let e = err(&linux_notes(), &config((1 << 35) + 1));
    assert_eq!(
        e.to_string(),
        "0x800000001 pages are more than a PV domain can have (0x800000000)"
    );
}

#[test]
fn a_command_line_longer_than_1023_bytes_or_with_a_nul_is_refused() {
    let long = "x".repeat(1023);
    let cfg = PvBuildConfig {
        cmdline: &long,
        ..config(NR_PAGES)
    };
    let p = plan_of(&linux_notes(), &cfg).unwrap();
    assert_eq!(p.start_info.cmd_line[1022], b'x');
    assert_eq!(p.start_info.cmd_line[1023], 0);
    let longer = "x".repeat(1024);
    let cfg = PvBuildConfig {
        cmdline: &longer,
        ..config(NR_PAGES)
    };
    assert_eq!(
        err(&linux_notes(), &cfg).to_string(),
        "the command line is 1024 bytes long; a PV guest's holds at most 1023"
    );
    let cfg = PvBuildConfig {
        cmdline: "ro\0quiet",
        ..config(NR_PAGES)
    };
    assert_eq!(
        err(&linux_notes(), &cfg),
        BuildError::CmdlineHasNul { at: 2 }
    );
}

fn load(paddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph {
        p_type: PT_LOAD,
        flags: PF_R | PF_X,
        offset: Off::Payload(0),
        vaddr: VIRT_BASE.wrapping_add(paddr),
        paddr,
        filesz,
        memsz,
        align: 0x1000,
    }
}

#[test]
fn overlapping_segments_are_refused() {
    let mut b = pv_kernel(&linux_notes());
    b.phs.push(load(0x100_2000, 0x10, 0x1000));
    let e = plan(&b.build(), &config(NR_PAGES)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "program headers 0 (0x1000000..0x1003000) and 4 (0x1002000..0x1003000) overlap"
    );
}

#[test]
fn a_segment_below_paddr_offset_or_past_the_address_space_is_refused() {
    let notes = with(&linux_notes(), num(XEN_ELFNOTE_PADDR_OFFSET, 0x100_1000));
    assert_eq!(
        err(&notes, &config(NR_PAGES)).to_string(),
        "program header 0: physical address 0x1000000 lies below XEN_ELFNOTE_PADDR_OFFSET \
         0x1001000"
    );
    let mut b = pv_kernel(&linux_notes());
    b.phs.push(load(u64::MAX - 0xfff, 0, 0x2000));
    assert!(matches!(
        plan(&b.build(), &config(NR_PAGES)),
        Err(BuildError::SegmentOverflow { index: 4, .. })
    ));
    // Far away but in range: the kernel no longer fits the domain.
    let mut b = pv_kernel(&linux_notes());
    b.phs.push(load(0x4000_0000, 0, 0x1000));
    assert!(matches!(
        plan(&b.build(), &config(NR_PAGES)),
        Err(BuildError::DoesNotFit {
            what: "the kernel image",
            ..
        })
    ));
}

#[test]
fn an_image_without_loadable_segments_is_refused() {
    let mut b = pv_kernel(&linux_notes());
    // Not loadable: no R/W/X flag, or no memory.
    for ph in b.phs.iter_mut().filter(|ph| ph.p_type == PT_LOAD) {
        ph.flags = 0;
    }
    b.phs.push(load(0x200_0000, 0, 0));
    assert_eq!(
        plan(&b.build(), &config(NR_PAGES)).unwrap_err().to_string(),
        "the image has no loadable PT_LOAD segment with memory"
    );
}

#[test]
fn a_kernel_for_another_loader_is_refused() {
    let notes = with(
        &without(&linux_notes(), XEN_ELFNOTE_LOADER),
        text(XEN_ELFNOTE_GUEST_OS, "plan9"),
    );
    assert!(matches!(
        err(&notes, &config(NR_PAGES)),
        BuildError::Notes(PvNoteError::UnknownLoader { .. })
    ));
}
