//! Where things go, in Xen's order, and what start info says about it.

use super::*;
use crate::pv::abi::sif;
use crate::pv::testimg::{num, with, without, ENTRY, VIRT_BASE};
use vmm_glue::xen::elfnote::{XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_MOD_START_PFN};

#[test]
fn linux_layout_packs_everything_after_the_kernel_in_xens_order() {
    let p = plan_of(&linux_notes(), &config(NR_PAGES)).unwrap();
    let l = &p.layout;
    // The kernel's 7 pages at 16 MiB; pfns below it are mapped padding.
    assert_eq!(l.kernel, 0x1000..0x1007);
    // 0x2000 entries of 8 bytes: 16 pages.
    assert_eq!(l.p2m, 0x1007..0x1017);
    assert_eq!((l.start_info, l.store, l.console), (0x1017, 0x1018, 0x1019));
    // 20 MiB mapped: 10 L1s, 1 L2, 1 L3, the L4.
    assert_eq!(l.tables.l4_pfn, 0x101a);
    assert_eq!(l.tables.count, [10, 1, 1, 1]);
    assert_eq!(l.stack, 0x1027);
    // At least 512 KiB after the stack, then up to a 4 MiB boundary.
    assert_eq!(l.mapped_pages, 0x1400);
    assert!(l.mapped_pages - (l.stack + 1) >= 128);
    assert_eq!(p.mapped_end() % (4 << 20), 0);
    assert_eq!(l.ramdisk, None);
    assert_eq!(l.first_free, 0x1400);
    assert_eq!(p.first_free_pfn(), 0x1400);
    assert_eq!(p.hypercall_page_pfn(), None);
}

#[test]
fn the_mapping_end_moves_past_a_4_mib_boundary_it_lands_on() {
    // Xen rounds with `end | (4 MiB - 1)`: a guess ending exactly on a
    // boundary gets the next 4 MiB too.
    let at = |end: u64| {
        let kernel = kernel::KernelImage {
            segments: Vec::new(),
            start: 0,
            end,
        };
        crate::pv::build::layout::place(0, &kernel, 0x2000, 0, true).unwrap()
    };
    // 0x367 kernel pages, 16 of p2m, 3 special ones, 5 tables (4 MiB:
    // 2 L1s), the stack and 128 pages of room end exactly at 4 MiB.
    let exact = at(0x36_7000);
    assert_eq!(exact.tables.count, [2, 1, 1, 1]);
    assert_eq!(exact.stack + 1 + 128, 0x400);
    assert_eq!(exact.mapped_pages, 0x400);
    // 5 pages more: the first guess (stack and room only) ends on 4 MiB.
    let past = at(0x36_c000);
    assert_eq!(past.console + 1 + 1 + 128, 0x400);
    assert_eq!(past.mapped_pages, 0x800);
    assert_eq!(past.tables.count, [4, 1, 1, 1]);
}

#[test]
fn page_table_count_grows_until_the_tables_fit_in_what_they_map() {
    // A kernel ending 16 KiB below a 2 MiB boundary: the first guess maps
    // up to the next 4 MiB; more tables push the end further.
    for kernel_end in [0x1f_c000u64, 0x3f_c000, 0x7f_c000, 0xfe_0000] {
        let kernel = kernel::KernelImage {
            segments: Vec::new(),
            start: 0,
            end: kernel_end,
        };
        let l = crate::pv::build::layout::place(VIRT_BASE, &kernel, 0x4000, 0, true).unwrap();
        let t = &l.tables;
        let mapped = l.mapped_pages * 4096;
        assert_eq!(t.count[0], mapped.div_ceil(2 << 20), "one L1 per 2 MiB");
        assert_eq!(t.count[1..], [1, 1, 1]);
        assert!(l.stack + 1 + 128 <= l.mapped_pages);
        assert_eq!(l.tables.l4_pfn, l.console + 1);
        assert_eq!(l.stack, t.l4_pfn + t.nr_frames());
    }
}

#[test]
fn start_info_describes_the_layout() {
    let cfg = PvBuildConfig {
        sif_flags: sif::PRIVILEGED,
        ..config(NR_PAGES)
    };
    let p = plan_of(&linux_notes(), &cfg).unwrap();
    let si = &p.start_info;
    assert_eq!(&si.magic[..15], b"xen-3.0-x86_64\0");
    assert_eq!(si.magic[15..], [0; 17]);
    assert_eq!(si.nr_pages, NR_PAGES);
    assert_eq!(si.shared_info, 0x200_0000);
    assert_eq!(si.flags, sif::PRIVILEGED | sif::VIRT_P2M_4TOOLS);
    assert_eq!((si.store_mfn, si.store_evtchn), (0x1018, 1));
    assert_eq!((si.console_mfn, si.console_evtchn), (0x1019, 2));
    assert_eq!(si.pt_base, VIRT_BASE + 0x101a * 4096);
    assert_eq!(si.pt_base, p.pt_base());
    assert_eq!(si.nr_pt_frames, 13);
    assert_eq!(si.nr_pt_frames, p.nr_pt_frames());
    assert_eq!(si.mfn_list, VIRT_BASE + 0x1007 * 4096);
    assert_eq!(si.mfn_list, p.p2m_va());
    assert_eq!((si.mod_start, si.mod_len), (0, 0));
    let cmd = b"console=hvc0 root=/dev/xvda1";
    assert_eq!(&si.cmd_line[..cmd.len()], cmd);
    assert!(si.cmd_line[cmd.len()..].iter().all(|&b| b == 0));
    assert_eq!((si.first_p2m_pfn, si.nr_p2m_frames), (0, 0));
}

#[test]
fn registers_point_at_entry_stack_top_and_start_info() {
    let p = plan_of(&linux_notes(), &config(NR_PAGES)).unwrap();
    assert_eq!(p.regs.rip, ENTRY);
    assert_eq!(p.regs.rsp, VIRT_BASE + 0x1028 * 4096);
    assert_eq!(p.regs.rsi, VIRT_BASE + 0x1017 * 4096);
    assert_eq!(p.l4_pfn(), 0x101a);
}

#[test]
fn with_mod_start_pfn_the_initrd_goes_unmapped_after_the_mapping() {
    let cfg = PvBuildConfig {
        ramdisk_len: Some(0x10_0001),
        ..config(NR_PAGES)
    };
    let p = plan_of(&linux_notes(), &cfg).unwrap();
    let r = p.layout.ramdisk.unwrap();
    assert_eq!(
        r,
        Ramdisk {
            pfn: 0x1400,
            pages: 0x101,
            len: 0x10_0001,
            mapped: false
        }
    );
    assert_eq!(p.ramdisk_pfn(), Some(0x1400));
    assert_eq!(p.layout.p2m.start, 0x1007, "nothing moves for it");
    assert_eq!(p.first_free_pfn(), 0x1501);
    let si = &p.start_info;
    assert_eq!(si.flags, sif::VIRT_P2M_4TOOLS | sif::MOD_START_PFN);
    // A pfn, and (as Xen gives it) the length in whole pages.
    assert_eq!((si.mod_start, si.mod_len), (0x1400, 0x10_1000));
    assert!(walk_plan(&p, p.va(0x1400)).is_err());
}

#[test]
fn without_mod_start_pfn_the_initrd_is_mapped_after_the_kernel() {
    let notes = without(&linux_notes(), XEN_ELFNOTE_MOD_START_PFN);
    let cfg = PvBuildConfig {
        ramdisk_len: Some(0x10_0001),
        ..config(NR_PAGES)
    };
    let p = plan_of(&notes, &cfg).unwrap();
    let l = &p.layout;
    assert_eq!(
        l.ramdisk,
        Some(Ramdisk {
            pfn: 0x1007,
            pages: 0x101,
            len: 0x10_0001,
            mapped: true
        })
    );
    assert_eq!(l.p2m, 0x1108..0x1118);
    assert_eq!(l.start_info, 0x1118);
    assert_eq!(l.first_free, l.mapped_pages);
    let si = &p.start_info;
    assert_eq!(si.flags, sif::VIRT_P2M_4TOOLS);
    assert_eq!((si.mod_start, si.mod_len), (p.va(0x1007), 0x10_0001));
    assert_eq!(walk_plan(&p, si.mod_start + 0x10_0000), Ok(0x1107 * 4096));
    // MOD_START_PFN 0 counts as absent.
    let notes = with(
        &notes,
        (XEN_ELFNOTE_MOD_START_PFN, 0u32.to_le_bytes().to_vec()),
    );
    assert!(
        plan_of(&notes, &cfg)
            .unwrap()
            .layout
            .ramdisk
            .unwrap()
            .mapped
    );
}

#[test]
fn an_empty_initrd_is_no_initrd() {
    let cfg = PvBuildConfig {
        ramdisk_len: Some(0),
        ..config(NR_PAGES)
    };
    let p = plan_of(&linux_notes(), &cfg).unwrap();
    assert_eq!(p.layout.ramdisk, None);
    assert_eq!(p.start_info.flags & sif::MOD_START_PFN, 0);
}

#[test]
fn the_hypercall_page_is_the_page_the_note_names() {
    let notes = with(
        &linux_notes(),
        num(XEN_ELFNOTE_HYPERCALL_PAGE, VIRT_BASE + 0x100_2000),
    );
    let p = plan_of(&notes, &config(NR_PAGES)).unwrap();
    assert_eq!(p.hypercall_page_pfn(), Some(0x1002));
    assert!(p.summary().to_string().contains("hypercall page 0x1002"));
}

#[test]
fn paddr_offset_moves_the_kernel_down_in_pseudo_physical_memory() {
    use vmm_glue::xen::elfnote::XEN_ELFNOTE_PADDR_OFFSET;
    let notes = with(
        &with(&linux_notes(), num(XEN_ELFNOTE_PADDR_OFFSET, 0x80_0000)),
        num(
            vmm_glue::xen::elfnote::XEN_ELFNOTE_ENTRY,
            VIRT_BASE + 0x80_0040,
        ),
    );
    let p = plan_of(&notes, &config(NR_PAGES)).unwrap();
    assert_eq!(p.layout.kernel, 0x800..0x807);
    assert_eq!(p.kernel.segments[0].gpa, 0x80_0000);
    assert_eq!(p.regs.rip, VIRT_BASE + 0x80_0040);
}

#[test]
fn a_percpu_segment_linked_at_virtual_zero_loads_at_its_physical_address() {
    let p = plan_of(&linux_notes(), &config(NR_PAGES)).unwrap();
    let gpas: Vec<(usize, u64, u64)> = p
        .kernel
        .segments
        .iter()
        .map(|s| (s.index, s.gpa, s.mem_size))
        .collect();
    assert_eq!(
        gpas,
        [
            (0, 0x100_0000, 0x3000),
            (1, 0x100_4000, 0x2000),
            (2, 0x100_6000, 0x1000)
        ]
    );
    assert_eq!((p.kernel.start, p.kernel.end), (0x100_0000, 0x100_7000));
}

#[test]
fn a_kernel_at_virtual_zero_maps_from_zero() {
    // Mini-OS style: VIRT_BASE 0 (the default), no Linux notes.
    use crate::pv::testimg::text;
    use vmm_glue::xen::elfnote::*;
    let notes = alloc::vec![
        num(XEN_ELFNOTE_ENTRY, 0x100_0040),
        text(XEN_ELFNOTE_LOADER, "generic"),
        text(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        num(XEN_ELFNOTE_HYPERCALL_PAGE, 0x100_2000),
    ];
    let p = plan_of(&notes, &config(NR_PAGES)).unwrap();
    assert_eq!(p.virt_base, 0);
    assert_eq!(p.regs.rip, 0x100_0040);
    assert_eq!(p.regs.rsi, p.layout.start_info * 4096);
    assert_eq!(p.hypercall_page_pfn(), Some(0x1002));
    assert_eq!(walk_plan(&p, 0), Ok(0));
    assert_eq!(walk_plan(&p, 0x100_0040), Ok(0x100_0040));
}
