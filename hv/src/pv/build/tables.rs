//! The boot page tables: the initial mapping of pfn 0.. at `VIRT_BASE`.
//!
//! As Xen's builder makes them (`xg_dom_x86.c count_pgtables`,
//! `setup_pgtables_pv`, `alloc_pgtables_x86_64`): 4 KiB pages only; one L4,
//! then as many L3s, L2s and L1s as cover the mapped range at their
//! level's granularity (512 GiB, 1 GiB, 2 MiB), allocated in that order
//! (so the L4 comes first and `pt_base` is its address). L1 entries are
//! `P|RW|A`, except that a page which is itself one of these tables is
//! mapped without RW; L2-L4 entries are `P|RW|A|D|USER`. Frame numbers are
//! pfns (the p2m is the identity). Entries of an L1 outside the mapped
//! range stay empty.
//!
//! The tables are computed on demand from a few numbers, so the plan holds
//! no table memory.

use crate::pv::abi::pte;

/// Protection of an L1 entry (`lvl_prot[0]`).
pub const L1_PROT: u64 = pte::PRESENT | pte::RW | pte::ACCESSED;
/// Protection of an L2, L3 or L4 entry (`lvl_prot[1..3]`).
pub const UPPER_PROT: u64 = pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY | pte::USER;

/// The 48 bits of a virtual address the tables translate.
const VA_MASK: u64 = (1 << 48) - 1;

/// log2 of the bytes one entry of a level-`level` table maps.
const fn entry_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// log2 of the bytes one level-`level` table maps.
const fn table_shift(level: u8) -> u32 {
    entry_shift(level) + 9
}

/// Where the boot page tables are and what they map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootTables {
    /// The virtual address of pfn 0.
    pub virt_base: u64,
    /// Pages mapped: pfn 0 up to this, at `virt_base` on. At least 1; the
    /// range is canonical and in one half of the address space.
    pub mapped_pages: u64,
    /// The L4's pfn; the other tables follow it.
    pub l4_pfn: u64,
    /// Tables per level: `count[0]` L1s .. `count[3]` L4s (1).
    pub count: [u64; 4],
}

impl BootTables {
    /// The tables mapping `mapped_pages` pages at `virt_base`, from
    /// `l4_pfn` on.
    pub fn new(virt_base: u64, mapped_pages: u64, l4_pfn: u64) -> Self {
        let from = virt_base & VA_MASK;
        let last = virt_base.wrapping_add(mapped_pages.max(1) * 4096 - 1) & VA_MASK;
        let per_level = |level: u8| {
            let shift = table_shift(level);
            (last >> shift) - (from >> shift) + 1
        };
        Self {
            virt_base,
            mapped_pages,
            l4_pfn,
            count: [per_level(1), per_level(2), per_level(3), 1],
        }
    }

    /// How many frames the tables take.
    pub fn nr_frames(&self) -> u64 {
        self.count.iter().sum()
    }

    /// The first table of `level` (1-4).
    pub fn first_of(&self, level: u8) -> u64 {
        let above: u64 = self.count[usize::from(level)..].iter().sum();
        self.l4_pfn + above
    }

    /// Every table frame as (pfn, level), by ascending pfn: L4, L3s, L2s, L1s.
    pub fn frames(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        (1..=4u8).rev().flat_map(move |level| {
            let first = self.first_of(level);
            (first..first + self.count[usize::from(level - 1)]).map(move |pfn| (pfn, level))
        })
    }

    /// Whether `pfn` is one of the tables.
    pub fn contains(&self, pfn: u64) -> bool {
        (self.l4_pfn..self.l4_pfn + self.nr_frames()).contains(&pfn)
    }

    /// The level of table `pfn`, if it is one.
    pub fn level_of(&self, pfn: u64) -> Option<u8> {
        (1..=4u8).find(|&level| {
            let first = self.first_of(level);
            (first..first + self.count[usize::from(level - 1)]).contains(&pfn)
        })
    }

    /// The first (48-bit) address the tables of `level` (1-3) cover.
    fn low(&self, level: u8) -> u64 {
        let shift = table_shift(level);
        ((self.virt_base & VA_MASK) >> shift) << shift
    }

    /// The index among the tables of `level` (1-3) of the one covering
    /// the 48-bit address `va`, if there is one.
    fn table_covering(&self, level: u8, va: u64) -> Option<u64> {
        let index = va.checked_sub(self.low(level))? >> table_shift(level);
        (index < self.count[usize::from(level - 1)]).then_some(index)
    }

    /// The 512 entries of table `pfn`, or `None` if `pfn` is no table.
    pub fn entries(&self, pfn: u64) -> Option<[u64; 512]> {
        let level = self.level_of(pfn)?;
        let k = pfn - self.first_of(level);
        let base = if level == 4 {
            0
        } else {
            self.low(level) + (k << table_shift(level))
        };
        let from = self.virt_base & VA_MASK;
        let last = from + (self.mapped_pages * 4096 - 1);
        let mut out = [0u64; 512];
        for (i, e) in out.iter_mut().enumerate() {
            let va = base + ((i as u64) << entry_shift(level));
            let entry = if level == 1 {
                (from..=last).contains(&va).then(|| {
                    let target = (va - from) >> 12;
                    let prot = if self.contains(target) {
                        L1_PROT & !pte::RW
                    } else {
                        L1_PROT
                    };
                    (target << 12) | prot
                })
            } else {
                self.table_covering(level - 1, va)
                    .map(|c| ((self.first_of(level - 1) + c) << 12) | UPPER_PROT)
            };
            *e = entry.unwrap_or(0);
        }
        Some(out)
    }

    /// The bytes of table `pfn`.
    pub fn bytes(&self, pfn: u64) -> Option<[u8; 4096]> {
        let entries = self.entries(pfn)?;
        let mut out = [0u8; 4096];
        for (chunk, e) in out.chunks_exact_mut(8).zip(entries) {
            chunk.copy_from_slice(&e.to_le_bytes());
        }
        Some(out)
    }
}
