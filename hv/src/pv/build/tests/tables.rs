//! The boot page tables, walked through the bytes written, as the CPU
//! walks them in 4-level long mode.

use super::*;
use crate::pv::testimg::{num, with, VIRT_BASE};
use vmm_glue::xen::elfnote::{XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_VIRT_BASE};

/// Linux's notes with the image mapped at `virt_base` instead.
fn at(virt_base: u64) -> Vec<XenNote> {
    with(
        &with(&linux_notes(), num(XEN_ELFNOTE_VIRT_BASE, virt_base)),
        num(XEN_ELFNOTE_ENTRY, virt_base + 0x100_0040),
    )
}

/// Checks every page of the mapping through the tables in `mem`: it
/// translates to its pfn, its L1 entry is `P|A` plus RW unless it is a
/// page table, and the entries above are `P|RW|A|D|USER`.
fn check_mapping(p: &PvPlan, mem: &Mem) {
    let cr3 = p.l4_pfn() * PAGE_SIZE;
    for pfn in 0..p.layout.mapped_pages {
        let offset = (pfn * 8 * 13) % PAGE_SIZE;
        let va = p.va(pfn) + offset;
        let got = translate(CR0, cr3, CR4, EFER, va, |gpa, size| mem.entry(gpa, size));
        assert_eq!(got, Ok(pfn * PAGE_SIZE + offset), "pfn {pfn:#x}");
        let path = entries_to(mem, p.l4_pfn(), va);
        let [l4, l3, l2, l1] = path[..] else {
            panic!("pfn {pfn:#x}: walk stopped at {path:x?}");
        };
        for upper in [l4, l3, l2] {
            assert_eq!(upper & 0xfff, 0x67, "P|RW|USER|A|D");
            assert_eq!(upper >> 52, 0, "no NX, no software bits");
        }
        let table = p.layout.tables.contains(pfn);
        assert_eq!(p.page_tables().any(|(t, _)| t == pfn), table);
        assert_eq!(l1, (pfn << 12) | if table { 0x21 } else { 0x23 });
    }
}

#[test]
fn every_address_of_the_mapping_translates_to_its_pfn_and_tables_are_read_only() {
    let (p, mem) = written(&linux_notes(), &config(NR_PAGES), None);
    check_mapping(&p, &mem);
}

#[test]
fn nothing_outside_the_mapping_is_mapped() {
    let (p, mem) = written(&linux_notes(), &config(NR_PAGES), None);
    let walk = |va: u64| {
        translate(CR0, p.l4_pfn() * 4096, CR4, EFER, va, |gpa, size| {
            mem.entry(gpa, size)
        })
    };
    // The mapping ends on a 4 MiB boundary, with its last L1.
    assert_eq!(
        walk(p.mapped_end() - 1),
        Ok(p.layout.mapped_pages * 4096 - 1)
    );
    assert_eq!(
        walk(p.mapped_end()),
        Err(WalkError::NotPresent { level: 2 })
    );
    assert_eq!(
        walk(VIRT_BASE - 4096),
        Err(WalkError::NotPresent { level: 3 })
    );
    assert_eq!(walk(0), Err(WalkError::NotPresent { level: 4 }));
    assert_eq!(
        walk(0xffff_8000_0000_0000),
        Err(WalkError::NotPresent { level: 4 }),
        "the hypervisor's slots are left for the memory manager to fill"
    );
}

#[test]
fn every_table_frame_is_listed_once_with_its_level() {
    let p = plan_of(&linux_notes(), &config(NR_PAGES)).unwrap();
    let frames: Vec<(u64, u8)> = p.page_tables().collect();
    let mut want = alloc::vec![(0x101a, 4), (0x101b, 3), (0x101c, 2)];
    want.extend((0x101d..0x1027).map(|pfn| (pfn, 1)));
    assert_eq!(frames, want);
    assert_eq!(frames.len() as u64, p.nr_pt_frames());
    for (pfn, level) in frames {
        let entries = p.table(pfn).unwrap();
        for e in entries.iter().filter(|&&e| e & 1 != 0) {
            let target = e >> 12;
            let below = p.layout.tables.level_of(target);
            if level > 1 {
                assert_eq!(below, Some(level - 1), "table {pfn:#x} -> {target:#x}");
            }
        }
    }
    assert_eq!(p.table(0x1027), None, "the stack is no table");
    assert_eq!(p.table(0x1019), None);
}

#[test]
fn a_mapping_across_an_l4_slot_boundary_gets_two_l3s_and_two_l2s() {
    // The kernel starts exactly at 512 GiB; the mapping runs from 16 MiB
    // below it to 4 MiB above.
    let notes = at(0x80_0000_0000 - 0x100_0000);
    let (p, mem) = written(&notes, &config(NR_PAGES), None);
    assert_eq!(p.layout.mapped_pages, 0x1400);
    assert_eq!(p.layout.tables.count, [10, 2, 2, 1]);
    check_mapping(&p, &mem);
    let l4 = p.table(p.l4_pfn()).unwrap();
    assert!(l4[0] & 1 != 0 && l4[1] & 1 != 0);
    assert_eq!(l4.iter().filter(|&&e| e != 0).count(), 2);
}

#[test]
fn a_virt_base_off_a_2_mib_boundary_leaves_the_first_l1_entries_empty() {
    let virt_base = VIRT_BASE + 0x10_3000;
    let (p, mem) = written(&at(virt_base), &config(NR_PAGES), None);
    // The 4 MiB rounding is of the virtual end, not of the page count.
    assert_eq!(p.mapped_end() % (4 << 20), 0);
    assert_eq!(p.layout.mapped_pages % 1024, 1024 - 0x103);
    check_mapping(&p, &mem);
    let first_l1 = p.table(p.layout.tables.first_of(1)).unwrap();
    assert!(first_l1[..0x103].iter().all(|&e| e == 0));
    assert_eq!(first_l1[0x103], 0x23, "pfn 0");
    assert_eq!(
        translate(
            CR0,
            p.l4_pfn() * 4096,
            CR4,
            EFER,
            virt_base - 4096,
            |gpa, s| { mem.entry(gpa, s) }
        ),
        Err(WalkError::NotPresent { level: 1 })
    );
}

#[test]
fn a_large_domain_maps_its_p2m_list_with_the_kernel() {
    // 4 GiB: a 8 MiB p2m list, mapped after the kernel.
    let nr_pages = 0x10_0000;
    let p = plan_of(&linux_notes(), &config(nr_pages)).unwrap();
    assert_eq!(p.p2m_pfns(), 0x1007..0x1807);
    assert!(p.va(0x1807) <= p.mapped_end());
    for pfn in [0x1007, 0x1400, 0x1806, p.layout.stack] {
        assert_eq!(walk_plan(&p, p.va(pfn)), Ok(pfn * 4096));
    }
    assert_eq!(p.layout.tables.count[0], p.layout.mapped_pages / 512);
}
