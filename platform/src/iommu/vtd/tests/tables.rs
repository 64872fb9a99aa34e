//! Second-level tables: entry layouts, large pages, splitting, freeing,
//! and a model check of map/unmap sequences.

use proptest::prelude::*;

use crate::iommu::vtd::fake::FakeMem;
use crate::iommu::vtd::{PagingLevels, SlConfig, SlTables, VtdError};
use crate::iommu::TableMemory;

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

fn config(levels: PagingLevels, m2: bool, g1: bool) -> SlConfig {
    SlConfig {
        levels,
        superpage_2m: m2,
        superpage_1g: g1,
        coherent: true,
    }
}

/// The entry for `iova` at `level` (1 = page table), walking from the top.
fn entry(mem: &mut FakeMem, t: &SlTables, iova: u64, level: u32) -> u64 {
    let mut table = t.root();
    for l in (level..=t.config().levels.count()).rev() {
        let e = mem.read64(table + ((iova >> (12 + 9 * (l - 1))) & 511) * 8);
        if l == level {
            return e;
        }
        table = e & 0x000f_ffff_ffff_f000;
    }
    unreachable!()
}

#[test]
fn a_4k_mapping_has_the_spec_layout_at_every_level() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Three, true, true)).unwrap();
    t.map(&mut mem, 0x4000_1000, 0x1_2345_6000, K4, true)
        .unwrap();
    t.map(&mut mem, 0x4000_2000, 0x1_2345_7000, K4, false)
        .unwrap();
    let l3 = entry(&mut mem, &t, 0x4000_1000, 3);
    let l2 = entry(&mut mem, &t, 0x4000_1000, 2);
    // Non-leaf: address of the next table (bits 51:12) | W (bit 1) | R
    // (bit 0); PS (bit 7) clear.
    assert_eq!(l3 & 0xfff, 0b11);
    assert_eq!(l2 & 0xfff, 0b11);
    // Leaf, read-write: page address | W | R.
    assert_eq!(entry(&mut mem, &t, 0x4000_1000, 1), 0x1_2345_6003);
    // Leaf, read-only: page address | R.
    assert_eq!(entry(&mut mem, &t, 0x4000_2000, 1), 0x1_2345_7001);
    assert_eq!(
        t.translate(&mut mem, 0x4000_1abc),
        Some((0x1_2345_6abc, true))
    );
    assert_eq!(
        t.translate(&mut mem, 0x4000_2008),
        Some((0x1_2345_7008, false))
    );
    assert_eq!(t.translate(&mut mem, 0x4000_3000), None);
    // The top table, one directory, one page table.
    assert_eq!(mem.live(), 3);
}

#[test]
fn aligned_2m_ranges_become_2m_pages() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, false)).unwrap();
    t.map(&mut mem, 0x20_0000, 0x8000_0000, 2 * M2 + K4, true)
        .unwrap();
    // Level-2 leaf: 2 MiB page address | PS (bit 7) | W | R.
    assert_eq!(entry(&mut mem, &t, 0x20_0000, 2), 0x8000_0083);
    assert_eq!(entry(&mut mem, &t, 0x40_0000, 2), 0x8020_0083);
    // The tail 4 KiB went into a page table.
    assert_eq!(entry(&mut mem, &t, 0x60_0000, 1), 0x8040_0003);
    assert_eq!(t.translate(&mut mem, 0x3f_f123), Some((0x801f_f123, true)));
}

#[test]
fn misaligned_host_addresses_or_no_sllps_give_4k_pages() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, false)).unwrap();
    t.map(&mut mem, 0x20_0000, 0x8000_1000, M2, true).unwrap();
    assert_eq!(entry(&mut mem, &t, 0x20_0000, 2) & 0x80, 0);
    let mut u = SlTables::new(&mut mem, config(PagingLevels::Four, false, false)).unwrap();
    u.map(&mut mem, 0x20_0000, 0x8000_0000, M2, true).unwrap();
    assert_eq!(entry(&mut mem, &u, 0x20_0000, 2) & 0x80, 0);
    assert_eq!(entry(&mut mem, &u, 0x3f_f000, 1), 0x801f_f003);
}

#[test]
fn aligned_1g_ranges_become_1g_pages_when_allowed() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, true)).unwrap();
    t.map(&mut mem, G1, 3 * G1, G1, false).unwrap();
    // Level-3 leaf: 1 GiB page address | PS | R.
    assert_eq!(entry(&mut mem, &t, G1, 3), 0xc000_0081);
    assert_eq!(
        t.translate(&mut mem, G1 + 0x1234_5678),
        Some((3 * G1 + 0x1234_5678, false))
    );
    // 1 GiB pages need 2 MiB pages too.
    let u = SlTables::new(&mut mem, config(PagingLevels::Four, false, true)).unwrap();
    assert!(!u.config().superpage_1g);
}

#[test]
fn unmapping_part_of_a_large_page_splits_it() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, true)).unwrap();
    t.map(&mut mem, 0, G1, G1, true).unwrap();
    t.unmap(&mut mem, 0x20_3000, K4).unwrap();
    assert_eq!(t.translate(&mut mem, 0x20_3000), None);
    assert_eq!(
        t.translate(&mut mem, 0x20_2fff),
        Some((G1 + 0x20_2fff, true))
    );
    assert_eq!(
        t.translate(&mut mem, 0x20_4000),
        Some((G1 + 0x20_4000, true))
    );
    assert_eq!(
        t.translate(&mut mem, 0x3fff_f000),
        Some((G1 + 0x3fff_f000, true))
    );
    // The 1 GiB page became 2 MiB pages, the touched one 4 KiB pages.
    assert_eq!(entry(&mut mem, &t, 0, 2), G1 | 0x83);
    assert_eq!(entry(&mut mem, &t, 0x20_2000, 1), G1 + 0x20_2003);
    assert_eq!(t.retired(), 0);
}

#[test]
fn mapping_over_a_large_page_splits_it_and_keeps_the_rest() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Three, true, false)).unwrap();
    t.map(&mut mem, 0, 0x100_0000, M2, true).unwrap();
    t.map(&mut mem, 0x1000, 0x5000, K4, false).unwrap();
    assert_eq!(t.translate(&mut mem, 0x1000), Some((0x5000, false)));
    assert_eq!(t.translate(&mut mem, 0x2000), Some((0x100_2000, true)));
}

#[test]
fn a_large_page_over_a_table_retires_the_table() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Three, true, false)).unwrap();
    t.map(&mut mem, 0, 0x5000, K4, true).unwrap();
    let live = mem.live();
    t.map(&mut mem, 0, 0x100_0000, M2, true).unwrap();
    assert_eq!(t.retired(), 1);
    t.reclaim(&mut mem);
    assert_eq!(mem.live(), live - 1);
    assert_eq!(t.translate(&mut mem, 0x1000), Some((0x100_1000, true)));
}

#[test]
fn unmapping_everything_retires_every_table_but_the_top() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, false)).unwrap();
    t.map(&mut mem, 0x1000, 0x1000, 3 * M2, true).unwrap();
    t.map(&mut mem, 0x80_0000_0000, 0x1000, K4, true).unwrap();
    t.unmap(&mut mem, 0, 1 << 48).unwrap();
    t.reclaim(&mut mem);
    assert_eq!(mem.live(), 1);
    assert_eq!(t.translate(&mut mem, 0x1000), None);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    assert_eq!(mem.allocated, mem.freed);
}

#[test]
fn unmapping_an_unmapped_range_is_quick_and_harmless() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, false)).unwrap();
    t.unmap(&mut mem, 0, 1 << 48).unwrap();
    assert_eq!(mem.live(), 1);
}

#[test]
fn destroy_frees_every_frame() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, true)).unwrap();
    t.map(&mut mem, 0x1000, 0x1000, G1 + M2 + 5 * K4, true)
        .unwrap();
    t.map(&mut mem, 0x7f_0000_0000, 0x1000, K4, true).unwrap();
    t.unmap(&mut mem, 0x3000, K4).unwrap();
    assert!(mem.live() > 5);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    assert_eq!(mem.allocated, mem.freed);
}

#[test]
fn bad_ranges_are_refused() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Three, true, false)).unwrap();
    let bad = |iova, len| Err(VtdError::BadRange { iova, len });
    assert_eq!(t.map(&mut mem, 0x1001, 0, K4, true), bad(0x1001, K4));
    assert_eq!(t.map(&mut mem, 0x1000, 0, 0x800, true), bad(0x1000, 0x800));
    assert_eq!(t.map(&mut mem, 0x1000, 0, 0, true), bad(0x1000, 0));
    assert_eq!(t.map(&mut mem, 0x1000, 0x10, K4, true), bad(0x1000, K4));
    // 39-bit tables end at 512 GiB.
    assert_eq!(t.map(&mut mem, 1 << 39, 0, K4, true), bad(1 << 39, K4));
    assert_eq!(
        t.map(&mut mem, (1 << 39) - K4, 0, 2 * K4, true),
        bad((1 << 39) - K4, 2 * K4)
    );
    // Host addresses end at 2^52.
    assert_eq!(
        t.map(&mut mem, 0, (1 << 52) - K4, 2 * K4, true),
        bad(0, 2 * K4)
    );
    assert_eq!(t.unmap(&mut mem, !0xfff_u64, K4), bad(!0xfff_u64, K4));
    t.map(&mut mem, (1 << 39) - K4, (1 << 52) - K4, K4, true)
        .unwrap();
    assert_eq!(t.translate(&mut mem, 1 << 39), None);
    assert_eq!(mem.live(), 3);
}

#[test]
fn running_out_of_memory_is_an_error() {
    let mut mem = FakeMem::new();
    let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, false)).unwrap();
    mem.limit = Some(2);
    assert_eq!(t.map(&mut mem, 0, 0, K4, true), Err(VtdError::NoMemory));
    mem.limit = None;
    t.map(&mut mem, 0, 0, M2, true).unwrap();
    mem.limit = Some(mem.live());
    assert_eq!(t.unmap(&mut mem, 0, K4), Err(VtdError::NoMemory));
    assert_eq!(t.translate(&mut mem, 0), Some((0, true)));
}

#[test]
fn a_non_coherent_table_write_is_flushed() {
    let mut mem = FakeMem::new();
    let mut cfg = config(PagingLevels::Three, false, false);
    cfg.coherent = false;
    let mut t = SlTables::new(&mut mem, cfg).unwrap();
    mem.flushes.clear();
    t.map(&mut mem, 0, 0x5000, K4, true).unwrap();
    // Two new tables (whole frames), their entries and the leaf.
    assert_eq!(mem.flushes.len(), 5);
    assert!(mem.flushes.iter().filter(|f| f.1 == 4096).count() == 2);
    let leaf = entry_addr(&mut mem, &t, 0, 1);
    assert!(mem.flushes.contains(&(leaf, 8)));
}

fn entry_addr(mem: &mut FakeMem, t: &SlTables, iova: u64, level: u32) -> u64 {
    let mut table = t.root();
    for l in (level + 1..=t.config().levels.count()).rev() {
        table = mem.read64(table + ((iova >> (12 + 9 * (l - 1))) & 511) * 8) & !0xfff;
    }
    table + ((iova >> (12 + 9 * (level - 1))) & 511) * 8
}

/// One step of a random sequence.
#[derive(Clone, Copy, Debug)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        target: u64,
        writable: bool,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
}

/// Pages in the first 4 GiB (2^20 pages).
const WINDOW: u64 = 1 << 20;

/// Page numbers and counts at 4 KiB, 2 MiB and 1 GiB granularity, so large
/// pages, splits and retirements all happen.
fn pages() -> impl Strategy<Value = (u64, u64)> {
    let page = prop_oneof![
        0..WINDOW,
        (0..WINDOW / 512).prop_map(|p| p * 512),
        (0..4u64).prop_map(|p| p << 18),
    ];
    let count = prop_oneof![
        1..8u64,
        (1..4u64).prop_map(|n| n * 512),
        (1..3u64).prop_map(|n| n << 18),
    ];
    (page, count).prop_map(|(p, n)| (p, n.min(WINDOW - p)))
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![
        0..1u64 << 30,
        (0..1u64 << 21).prop_map(|t| t * 512),
        (0..4096u64).prop_map(|t| t << 18),
    ];
    // Gigabyte-sized ranges start 2 MiB aligned on both sides, so they do
    // not cost 2^18 page entries each.
    let aligned = |page: u64, pages: u64, target: u64| {
        if pages >= 1 << 18 {
            (page & !511, pages, target & !511)
        } else {
            (page, pages, target)
        }
    };
    prop_oneof![
        (pages(), target, any::<bool>()).prop_map(move |((page, pages), target, writable)| {
            let (page, pages, target) = aligned(page, pages, target);
            Op::Map {
                page,
                pages: pages.min(WINDOW - page),
                target,
                writable,
            }
        }),
        pages().prop_map(|(page, pages)| Op::Unmap { page, pages }),
    ]
}

/// The model: the last operation covering `page` decides.
fn model(ops: &[Op], page: u64) -> Option<(u64, bool)> {
    ops.iter().rev().find_map(|op| match *op {
        Op::Map {
            page: p,
            pages,
            target,
            writable,
        } if (p..p + pages).contains(&page) => Some(Some((target + page - p, writable))),
        Op::Unmap { page: p, pages } if (p..p + pages).contains(&page) => Some(None),
        _ => None,
    })?
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn translation_matches_the_model_after_any_map_unmap_sequence(
        ops in proptest::collection::vec(op(), 1..10),
        samples in proptest::collection::vec(0..WINDOW, 16),
        g1 in any::<bool>(),
    ) {
        let mut mem = FakeMem::new();
        let mut t = SlTables::new(&mut mem, config(PagingLevels::Four, true, g1)).unwrap();
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Map { page, pages, target, writable } => {
                    t.map(&mut mem, page * K4, target * K4, pages * K4, writable).unwrap();
                }
                Op::Unmap { page, pages } => t.unmap(&mut mem, page * K4, pages * K4).unwrap(),
            }
            // Probe every operation's edges and the samples.
            let mut probes = samples.clone();
            for op in &ops[..=n] {
                let (Op::Map { page, pages, .. } | Op::Unmap { page, pages }) = *op;
                let last = page + pages - 1;
                probes.extend([page.wrapping_sub(1), page, page + 1, page + pages / 2, last, last + 1]);
            }
            for p in probes.into_iter().filter(|&p| p < WINDOW) {
                let want = model(&ops[..=n], p).map(|(h, w)| (h * K4 + 0x18, w));
                prop_assert_eq!(t.translate(&mut mem, p * K4 + 0x18), want, "page {:#x} after op {}", p, n);
            }
        }
        t.unmap(&mut mem, 0, 1 << 48).unwrap();
        t.reclaim(&mut mem);
        prop_assert_eq!(mem.live(), 1);
        t.destroy(&mut mem);
        prop_assert_eq!(mem.live(), 0);
    }
}
