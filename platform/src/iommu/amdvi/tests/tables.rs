//! I/O page tables: entry layouts, large pages, splitting, freeing, and
//! a model check of map/unmap sequences.

use proptest::prelude::*;

use super::super::fake::FakeMem;
use super::super::{AmdViError, IoConfig, IoLevels, IoTables};
use crate::iommu::TableMemory;

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

fn config(levels: IoLevels, large_pages: bool) -> IoConfig {
    IoConfig {
        levels,
        large_pages,
    }
}

/// The entry for `iova` at `level` (1 = page table), walking from the top.
fn entry(mem: &mut FakeMem, t: &IoTables, iova: u64, level: u32) -> u64 {
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
    let mut t = IoTables::new(&mut mem, config(IoLevels::Three, true)).unwrap();
    t.map(&mut mem, 0x4000_1000, 0x1_2345_6000, K4, true)
        .unwrap();
    t.map(&mut mem, 0x4000_2000, 0x1_2345_7000, K4, false)
        .unwrap();
    let l3 = entry(&mut mem, &t, 0x4000_1000, 3);
    let l2 = entry(&mut mem, &t, 0x4000_1000, 2);
    // Directory entries: IW (62) | IR (61) | next table (51:12) | Next
    // Level (11:9) one below | PR (0).
    assert_eq!(l3 & !0x000f_ffff_ffff_f000, 0x6000_0000_0000_0401);
    assert_eq!(l2 & !0x000f_ffff_ffff_f000, 0x6000_0000_0000_0201);
    // Leaf, read-write: IW | IR | page | Next Level 0 | PR.
    assert_eq!(entry(&mut mem, &t, 0x4000_1000, 1), 0x6000_0001_2345_6001);
    // Leaf, read-only: IR | page | PR.
    assert_eq!(entry(&mut mem, &t, 0x4000_2000, 1), 0x2000_0001_2345_7001);
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
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
    t.map(&mut mem, 0x20_0000, 0x8000_0000, 2 * M2 + K4, true)
        .unwrap();
    // Level-2 leaf: Next Level 0 makes it a 2 MiB page.
    assert_eq!(entry(&mut mem, &t, 0x20_0000, 2), 0x6000_0000_8000_0001);
    assert_eq!(entry(&mut mem, &t, 0x40_0000, 2), 0x6000_0000_8020_0001);
    // The tail 4 KiB went into a page table.
    assert_eq!(entry(&mut mem, &t, 0x60_0000, 1), 0x6000_0000_8040_0001);
    assert_eq!(t.translate(&mut mem, 0x3f_f123), Some((0x801f_f123, true)));
}

#[test]
fn misaligned_host_addresses_or_no_large_pages_give_4k_pages() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
    t.map(&mut mem, 0x20_0000, 0x8000_1000, M2, true).unwrap();
    // A directory: Next Level 1.
    assert_eq!((entry(&mut mem, &t, 0x20_0000, 2) >> 9) & 7, 1);
    let mut u = IoTables::new(&mut mem, config(IoLevels::Four, false)).unwrap();
    u.map(&mut mem, 0x20_0000, 0x8000_0000, M2, true).unwrap();
    assert_eq!((entry(&mut mem, &u, 0x20_0000, 2) >> 9) & 7, 1);
    assert_eq!(entry(&mut mem, &u, 0x3f_f000, 1), 0x6000_0000_801f_f001);
}

#[test]
fn aligned_1g_ranges_become_1g_pages() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
    t.map(&mut mem, G1, 3 * G1, G1, false).unwrap();
    // Level-3 leaf, read-only: IR | 1 GiB page | PR.
    assert_eq!(entry(&mut mem, &t, G1, 3), 0x2000_0000_c000_0001);
    assert_eq!(
        t.translate(&mut mem, G1 + 0x1234_5678),
        Some((3 * G1 + 0x1234_5678, false))
    );
}

#[test]
fn unmapping_part_of_a_large_page_splits_it() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
    t.map(&mut mem, 0, G1, G1, true).unwrap();
    t.unmap(&mut mem, 0x20_3000, K4).unwrap();
    assert_eq!(t.translate(&mut mem, 0x20_3000), None);
    assert_eq!(
        t.translate(&mut mem, 0x20_2fff),
        Some((G1 + 0x20_2fff, true))
    );
    assert_eq!(
        t.translate(&mut mem, 0x3fff_f000),
        Some((G1 + 0x3fff_f000, true))
    );
    // The 1 GiB page became 2 MiB pages, the touched one 4 KiB pages.
    assert_eq!(entry(&mut mem, &t, 0, 2), 0x6000_0000_0000_0001 | G1);
    assert_eq!(
        entry(&mut mem, &t, 0x20_2000, 1),
        0x6000_0000_0000_0001 | (G1 + 0x20_2000)
    );
    assert_eq!(t.retired(), 0);
}

#[test]
fn mapping_over_a_large_page_splits_it_and_keeps_the_rest() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Three, true)).unwrap();
    t.map(&mut mem, 0, 0x100_0000, M2, true).unwrap();
    t.map(&mut mem, 0x1000, 0x5000, K4, false).unwrap();
    assert_eq!(t.translate(&mut mem, 0x1000), Some((0x5000, false)));
    assert_eq!(t.translate(&mut mem, 0x2000), Some((0x100_2000, true)));
}

#[test]
fn a_large_page_over_a_table_retires_the_table() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Three, true)).unwrap();
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
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
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
fn destroy_frees_every_frame() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
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
fn a_read_only_directory_or_missing_ir_denies_the_walk() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Three, false)).unwrap();
    t.map(&mut mem, 0, 0x5000, K4, true).unwrap();
    // Clear IW in the top directory entry: writes are denied below it.
    let top = t.root();
    let e = mem.read64(top);
    mem.write64(top, e & !(1 << 62));
    assert_eq!(t.translate(&mut mem, 0x10), Some((0x5010, false)));
    // Clear IR too: nothing gets through.
    mem.write64(top, e & !(3 << 61));
    assert_eq!(t.translate(&mut mem, 0x10), None);
}

#[test]
fn bad_ranges_are_refused() {
    let mut mem = FakeMem::new();
    let mut t = IoTables::new(&mut mem, config(IoLevels::Three, true)).unwrap();
    let bad = |iova, len| Err(AmdViError::BadRange { iova, len });
    assert_eq!(t.map(&mut mem, 0x1001, 0, K4, true), bad(0x1001, K4));
    assert_eq!(t.map(&mut mem, 0x1000, 0, 0x800, true), bad(0x1000, 0x800));
    assert_eq!(t.map(&mut mem, 0x1000, 0, 0, true), bad(0x1000, 0));
    assert_eq!(t.map(&mut mem, 0x1000, 0x10, K4, true), bad(0x1000, K4));
    // 3-level tables end at 512 GiB.
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
    let mut t = IoTables::new(&mut mem, config(IoLevels::Four, true)).unwrap();
    mem.limit = Some(2);
    assert_eq!(t.map(&mut mem, 0, 0, K4, true), Err(AmdViError::NoMemory));
    mem.limit = None;
    t.map(&mut mem, 0, 0, M2, true).unwrap();
    mem.limit = Some(mem.live());
    assert_eq!(t.unmap(&mut mem, 0, K4), Err(AmdViError::NoMemory));
    assert_eq!(t.translate(&mut mem, 0), Some((0, true)));
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

/// Page numbers and counts at 4 KiB, 2 MiB and 1 GiB granularity, so
/// large pages, splits and retirements all happen.
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
        large_pages in any::<bool>(),
    ) {
        let mut mem = FakeMem::new();
        let mut t = IoTables::new(&mut mem, config(IoLevels::Four, large_pages)).unwrap();
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
        prop_assert_eq!(mem.allocated, mem.freed);
    }
}
