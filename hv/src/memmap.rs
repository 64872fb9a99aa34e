//! Physical memory bookkeeping: the boot memory map, the ranges the
//! hypervisor must never hand out, and a frame allocator over what is left.
//!
//! Everything here is allocation-free: it runs before the heap exists (the
//! heap itself comes from [`FrameAllocator`]).

use core::fmt;

/// A fixed-capacity list (no heap).
#[derive(Clone, Copy)]
pub struct FixedList<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> FixedList<T, N> {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// Appends `v`, or gives it back when full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        if self.len == N {
            return Err(v);
        }
        self.items[self.len] = v;
        self.len += 1;
        Ok(())
    }

    /// Removes the item at `i`, keeping order.
    pub fn remove(&mut self, i: usize) -> T {
        let v = self.items[i];
        self.items.copy_within(i + 1..self.len, i);
        self.len -= 1;
        v
    }

    /// Inserts `v` at `i`, keeping order; gives it back when full.
    pub fn insert(&mut self, i: usize, v: T) -> Result<(), T> {
        if self.len == N || i > self.len {
            return Err(v);
        }
        self.items.copy_within(i..self.len, i + 1);
        self.items[i] = v;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default, const N: usize> Default for FixedList<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default + fmt::Debug, const N: usize> fmt::Debug for FixedList<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// What a memory-map entry holds (the e820 types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegionKind {
    Usable,
    #[default]
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Bad,
    /// UEFI runtime services code or data: the firmware's, for good
    /// (GRUB's type 20 for runtime code; the EFI memory map's types 5 and
    /// 6).
    EfiRuntime,
    Other(u32),
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usable => f.write_str("usable"),
            Self::Reserved => f.write_str("reserved"),
            Self::AcpiReclaimable => f.write_str("ACPI tables"),
            Self::AcpiNvs => f.write_str("ACPI NVS"),
            Self::Bad => f.write_str("bad memory"),
            Self::EfiRuntime => f.write_str("EFI runtime services"),
            Self::Other(t) => write!(f, "type {t}"),
        }
    }
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl Region {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// What is left of `r` around `hole`: the part before it and the part
/// after it, either possibly empty.
fn around(r: Range, hole: Range) -> [Range; 2] {
    [
        Range::new(r.start, hole.start.clamp(r.start, r.end)),
        Range::new(hole.end.clamp(r.start, r.end), r.end),
    ]
}

/// `ranges` without `hole`: a range it overlaps loses that part (and is
/// split in two when it held it in its middle).
pub fn subtract_all(ranges: &mut alloc::vec::Vec<Range>, hole: Range) {
    if hole.is_empty() {
        return;
    }
    let mut kept = alloc::vec::Vec::with_capacity(ranges.len() + 1);
    for r in ranges.drain(..) {
        kept.extend(around(r, hole).into_iter().filter(|p| !p.is_empty()));
    }
    *ranges = kept;
}

/// Page size.
pub const PAGE: u64 = 4096;

/// The hypervisor keeps away from the first MiB (BIOS data, EBDA, option
/// ROMs, real-mode structures firmware may still use).
pub const LOW_MEMORY_END: u64 = 0x10_0000;

/// Free frames: the usable memory of `map`, page-aligned inwards, minus the
/// first MiB and every `reserved` range (page-aligned outwards). Overlapping
/// usable entries are merged; a reserved, ACPI or bad entry overlapping a
/// usable one wins.
pub fn free_ranges<const N: usize>(map: &[Region], reserved: &[Range]) -> FixedList<Range, N> {
    let mut free = FixedList::<Range, N>::new();
    for r in map.iter().filter(|r| r.kind == RegionKind::Usable) {
        let start = r.base.max(LOW_MEMORY_END).div_ceil(PAGE) * PAGE;
        let end = r.end() / PAGE * PAGE;
        if start < end {
            add_range(&mut free, Range::new(start, end));
        }
    }
    let holes = map
        .iter()
        .filter(|r| r.kind != RegionKind::Usable)
        .map(|r| Range::new(r.base, r.end()));
    for hole in holes.chain(reserved.iter().copied()) {
        let hole = Range::new(
            hole.start / PAGE * PAGE,
            hole.end.div_ceil(PAGE).saturating_mul(PAGE),
        );
        subtract(&mut free, hole);
    }
    free
}

/// Adds `r` to the sorted, disjoint list `list`, merging neighbours.
fn add_range<const N: usize>(list: &mut FixedList<Range, N>, r: Range) {
    let mut r = r;
    let mut i = 0;
    while i < list.len() {
        let cur = list.as_slice()[i];
        if cur.end < r.start {
            i += 1;
        } else if r.end < cur.start {
            break;
        } else {
            r = Range::new(cur.start.min(r.start), cur.end.max(r.end));
            list.remove(i);
        }
    }
    // A full list loses the range: with 32+ disjoint usable ranges the
    // smallest tail pieces are the least useful.
    let _ = list.insert(i, r);
}

/// Removes `hole` from every range of `list`.
fn subtract<const N: usize>(list: &mut FixedList<Range, N>, hole: Range) {
    let mut i = 0;
    while i < list.len() {
        let cur = list.as_slice()[i];
        if hole.end <= cur.start || hole.start >= cur.end {
            i += 1;
            continue;
        }
        list.remove(i);
        let [left, right] = around(cur, hole);
        if !right.is_empty() {
            let _ = list.insert(i, right);
        }
        if !left.is_empty() {
            let _ = list.insert(i, left);
            i += 1;
        }
        if !right.is_empty() {
            i += 1;
        }
    }
}

/// Hands out page-aligned physical frames from a set of free ranges.
#[derive(Clone, Debug)]
pub struct FrameAllocator<const N: usize> {
    free: FixedList<Range, N>,
    total: u64,
}

impl<const N: usize> FrameAllocator<N> {
    /// An allocator over `free` (sorted, disjoint, page-aligned ranges).
    pub fn new(free: FixedList<Range, N>) -> Self {
        let total = free.as_slice().iter().map(Range::len).sum();
        Self { free, total }
    }

    /// `count` contiguous frames aligned to `align` bytes (a power of two,
    /// at least a page), lowest address first.
    pub fn alloc(&mut self, count: u64, align: u64) -> Option<u64> {
        let align = align.max(PAGE);
        let bytes = count.checked_mul(PAGE)?;
        for i in 0..self.free.len() {
            let r = self.free.as_slice()[i];
            let start = r.start.checked_add(align - 1)? & !(align - 1);
            let end = start.checked_add(bytes)?;
            if end <= r.end {
                subtract(&mut self.free, Range::new(start, end));
                return Some(start);
            }
        }
        None
    }

    /// Gives back `count` frames at `base`.
    pub fn free(&mut self, base: u64, count: u64) {
        add_range(&mut self.free, Range::new(base, base + count * PAGE));
    }

    /// Bytes still free.
    pub fn free_bytes(&self) -> u64 {
        self.free.as_slice().iter().map(Range::len).sum()
    }

    /// Bytes this allocator started with.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The free ranges.
    pub fn ranges(&self) -> &[Range] {
        self.free.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracting_cuts_splits_or_keeps_ranges() {
        let mut r = alloc::vec![
            Range::new(0x1000, 0x5000),
            Range::new(0x8000, 0x9000),
            Range::new(0xa000, 0xb000),
        ];
        // Splits the first, removes the second whole, misses the third.
        subtract_all(&mut r, Range::new(0x2000, 0x9000));
        assert_eq!(r, [Range::new(0x1000, 0x2000), Range::new(0xa000, 0xb000)]);
        // Cuts the start of one and the end of another.
        let mut r = alloc::vec![Range::new(0x1000, 0x3000), Range::new(0x4000, 0x6000)];
        subtract_all(&mut r, Range::new(0x2000, 0x5000));
        assert_eq!(r, [Range::new(0x1000, 0x2000), Range::new(0x5000, 0x6000)]);
        // An empty cut changes nothing.
        subtract_all(&mut r, Range::new(0x1800, 0x1800));
        assert_eq!(r, [Range::new(0x1000, 0x2000), Range::new(0x5000, 0x6000)]);
    }

    fn usable(base: u64, len: u64) -> Region {
        Region {
            base,
            len,
            kind: RegionKind::Usable,
        }
    }

    #[test]
    fn qemu_like_map_leaves_ram_above_1m_minus_the_image() {
        let map = [
            usable(0, 0x9fc00),
            Region {
                base: 0x9fc00,
                len: 0x400,
                kind: RegionKind::Reserved,
            },
            Region {
                base: 0xf0000,
                len: 0x10000,
                kind: RegionKind::Reserved,
            },
            usable(0x10_0000, 0x1fee_0000),
            Region {
                base: 0x1ffe_0000,
                len: 0x2_0000,
                kind: RegionKind::Reserved,
            },
        ];
        let image = Range::new(0x10_0000, 0x18_1234);
        let free = free_ranges::<32>(&map, &[image]);
        assert_eq!(free.as_slice(), [Range::new(0x18_2000, 0x1ffe_0000)]);
    }

    #[test]
    fn reserved_ranges_split_usable_memory() {
        let map = [usable(0x10_0000, 0x100_0000)];
        let free = free_ranges::<32>(
            &map,
            &[
                Range::new(0x40_0800, 0x40_1000),
                Range::new(0x80_0000, 0x90_0000),
            ],
        );
        assert_eq!(
            free.as_slice(),
            [
                Range::new(0x10_0000, 0x40_0000),
                Range::new(0x40_1000, 0x80_0000),
                Range::new(0x90_0000, 0x110_0000)
            ]
        );
    }

    #[test]
    fn overlapping_reserved_entry_wins_over_usable() {
        let map = [
            usable(0x10_0000, 0x100_0000),
            Region {
                base: 0x50_0000,
                len: 0x1000,
                kind: RegionKind::AcpiNvs,
            },
        ];
        let free = free_ranges::<32>(&map, &[]);
        assert_eq!(
            free.as_slice(),
            [
                Range::new(0x10_0000, 0x50_0000),
                Range::new(0x50_1000, 0x110_0000)
            ]
        );
    }

    #[test]
    fn unaligned_usable_entries_shrink_inwards() {
        let map = [usable(0x10_0123, 0x2000)];
        let free = free_ranges::<32>(&map, &[]);
        assert_eq!(free.as_slice(), [Range::new(0x10_1000, 0x10_2000)]);
    }

    #[test]
    fn overlapping_usable_entries_merge() {
        let map = [usable(0x20_0000, 0x10_0000), usable(0x10_0000, 0x18_0000)];
        let free = free_ranges::<32>(&map, &[]);
        assert_eq!(free.as_slice(), [Range::new(0x10_0000, 0x30_0000)]);
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_inside_free_memory() {
        let map = [usable(0x10_0000, 0x80_0000)];
        let mut fa =
            FrameAllocator::new(free_ranges::<32>(&map, &[Range::new(0x10_0000, 0x10_3000)]));
        let total = fa.free_bytes();
        let a = fa.alloc(1, PAGE).unwrap();
        let b = fa.alloc(512, 0x20_0000).unwrap();
        let c = fa.alloc(3, PAGE).unwrap();
        assert_eq!(a, 0x10_3000);
        assert_eq!(b % 0x20_0000, 0);
        assert!(c >= a + PAGE && (c >= b + 0x20_0000 || c + 3 * PAGE <= b));
        assert_eq!(fa.free_bytes(), total - (1 + 512 + 3) * PAGE);
        fa.free(b, 512);
        fa.free(a, 1);
        fa.free(c, 3);
        assert_eq!(fa.free_bytes(), total);
        assert_eq!(fa.ranges(), [Range::new(0x10_3000, 0x90_0000)]);
    }

    #[test]
    fn exhausted_allocator_says_none() {
        let mut fa = FrameAllocator::new(free_ranges::<4>(&[usable(0x10_0000, 0x2000)], &[]));
        assert!(fa.alloc(2, PAGE).is_some());
        assert_eq!(fa.alloc(1, PAGE), None);
        assert_eq!(fa.alloc(u64::MAX, PAGE), None);
    }

    proptest::proptest! {
        #[test]
        fn free_ranges_never_overlap_reserved_or_low_memory(
            entries in proptest::collection::vec((0u64..1 << 32, 0u64..1 << 28, 1u32..6), 1..12),
            reserved in proptest::collection::vec((0u64..1 << 32, 0u64..1 << 24), 0..8),
        ) {
            let map: Vec<Region> = entries.iter().map(|&(b, l, t)| Region {
                base: b, len: l, kind: match t { 1 => RegionKind::Usable, 3 => RegionKind::AcpiReclaimable, _ => RegionKind::Reserved },
            }).collect();
            let res: Vec<Range> = reserved.iter().map(|&(s, l)| Range::new(s, s + l)).collect();
            let free = free_ranges::<64>(&map, &res);
            let mut prev_end = 0;
            for f in free.as_slice() {
                proptest::prop_assert!(f.start >= LOW_MEMORY_END && f.start % PAGE == 0 && f.end % PAGE == 0);
                proptest::prop_assert!(f.start >= prev_end, "sorted and disjoint");
                prev_end = f.end;
                for r in &res {
                    proptest::prop_assert!(f.end <= r.start || f.start >= r.end, "{f:?} overlaps reserved {r:?}");
                }
                for m in map.iter().filter(|m| m.kind != RegionKind::Usable) {
                    proptest::prop_assert!(f.end <= m.base || f.start >= m.end(), "{f:?} overlaps {m:?}");
                }
                // every free byte is inside some usable entry
                proptest::prop_assert!(map.iter().any(|m| m.kind == RegionKind::Usable && m.base <= f.start && f.start < m.end()));
            }
        }
    }
}
