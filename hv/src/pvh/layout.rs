//! The guest's physical memory map.
//!
//! Guest RAM mirrors the host's holes (Xen's `e820_host`): it never overlaps
//! a host PCI MMIO window or reserved area, so a passed-through device's BARs
//! can be identity-mapped and the values the guest reads from them are
//! usable guest-physical addresses.
//!
//! The map, from the bottom:
//! - RAM `[0, 0xA0000)` (640 KiB, as on a PC and as Xen gives PVH guests);
//! - reserved `[0xA0000, 1 MiB)` (VGA window, option ROMs, BIOS);
//! - RAM from 1 MiB upwards in the gaps between the host's holes, until the
//!   requested amount is placed (above 4 GiB when it does not fit below);
//! - a reserved entry for every host hole;
//! - the special pages ([`SpecialPages`]): carved from the top of the highest
//!   RAM range below 4 GiB (just below the first hole above the RAM, like
//!   Xen's special pages below its MMIO hole) and marked reserved, so the
//!   guest's own allocator never hands them out. They come on top of the
//!   requested RAM: the guest still sees exactly that much usable memory.
//!
//! Guest-physical addresses stop at 2^46; everything a 32-bit guest without
//! paging must read (the special pages) stays below 4 GiB.

use crate::memmap::{Range, Region, RegionKind, PAGE};
use alloc::vec::Vec;
use core::fmt;

/// End of conventional memory.
pub const LOW_RAM_END: u64 = 0xA_0000;
/// Start of RAM above the legacy area.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// 4 GiB.
pub const FOUR_GIB: u64 = 1 << 32;
/// The guest-physical address width.
pub const MAX_GPA: u64 = 1 << 46;

/// Pages for the start-of-day blob (start info, module list, memory map and
/// strings, see [`super::start_info`]).
pub const START_INFO_PAGES: u64 = 4;
/// Bytes for the start-of-day blob.
pub const START_INFO_BYTES: u64 = START_INFO_PAGES * PAGE;
/// All special pages: the start-of-day blob, the xenstore ring and the
/// console ring.
pub const SPECIAL_PAGES: u64 = START_INFO_PAGES + 2;

/// Guest-physical pages the hypervisor fills in (all below 4 GiB, all inside
/// one reserved entry of the map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialPages {
    /// [`START_INFO_BYTES`] for the start-of-day blob: its `base_gpa`.
    pub start_info: u64,
    /// The xenstore ring page (`HVM_PARAM_STORE_PFN`).
    pub xenstore: u64,
    /// The PV console ring page (`HVM_PARAM_CONSOLE_PFN`).
    pub console: u64,
}

impl SpecialPages {
    fn at(base: u64) -> Self {
        Self {
            start_info: base,
            xenstore: base + START_INFO_BYTES,
            console: base + START_INFO_BYTES + PAGE,
        }
    }

    /// All special pages.
    pub fn range(&self) -> Range {
        Range::new(self.start_info, self.start_info + SPECIAL_PAGES * PAGE)
    }
}

/// A guest's physical memory layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestLayout {
    /// Usable RAM in bytes (the request rounded up to a page).
    pub ram_bytes: u64,
    /// The guest's e820: sorted, disjoint, page-aligned.
    pub e820: Vec<Region>,
    pub special: SpecialPages,
}

/// Why a layout cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// No RAM requested.
    NoRam,
    /// A host hole ends before it starts.
    InvertedHole(Range),
    /// The requested RAM does not fit below 2^46 around the holes.
    TooMuchRam { requested: u64, available: u64 },
    /// No RAM range below 4 GiB can hold the special pages.
    NoRoomForSpecialPages,
    /// A module does not fit in guest RAM above the image.
    ModuleDoesNotFit { index: usize, size: u64, after: u64 },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoRam => f.write_str("the guest has no memory"),
            Self::InvertedHole(r) => write!(
                f,
                "host hole {:#x}..{:#x} ends before it starts",
                r.start, r.end
            ),
            Self::TooMuchRam {
                requested,
                available,
            } => write!(
                f,
                "{} MiB of guest RAM do not fit below 2^46 around the host's holes \
                 ({} MiB available)",
                requested >> 20,
                available >> 20
            ),
            Self::NoRoomForSpecialPages => write!(
                f,
                "no guest RAM range below 4 GiB can hold the {SPECIAL_PAGES} start-of-day pages"
            ),
            Self::ModuleDoesNotFit { index, size, after } => write!(
                f,
                "module {index} ({size:#x} bytes) does not fit in guest RAM above {after:#x}"
            ),
        }
    }
}

/// `ranges` sorted with overlapping ones merged.
fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    vmm_glue::compact::sort(&mut ranges);
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

fn page_up(x: u64) -> u64 {
    x.div_ceil(PAGE).saturating_mul(PAGE)
}

impl GuestLayout {
    /// Lays out `ram_bytes` of guest RAM (rounded up to a page) around
    /// `host_holes`, which are rounded outwards to pages; overlapping holes
    /// merge into one reserved entry.
    pub fn new(ram_bytes: u64, host_holes: &[Range]) -> Result<Self, LayoutError> {
        if ram_bytes == 0 {
            return Err(LayoutError::NoRam);
        }
        let ram_bytes = page_up(ram_bytes);
        let mut blocked = Vec::with_capacity(host_holes.len() + 1);
        blocked.push(Range::new(LOW_RAM_END, HIGH_RAM_START));
        for &h in host_holes {
            if h.start > h.end {
                return Err(LayoutError::InvertedHole(h));
            }
            if !h.is_empty() {
                blocked.push(Range::new(h.start / PAGE * PAGE, page_up(h.end)));
            }
        }
        let blocked = merge(blocked);

        // The gaps below 2^46, split at 4 GiB, filled bottom-up.
        let special_bytes = SPECIAL_PAGES * PAGE;
        let need = ram_bytes.saturating_add(special_bytes);
        let mut ram: Vec<Range> = Vec::new();
        let mut placed = 0u64;
        let mut cursor = 0u64;
        let ends = blocked
            .iter()
            .map(|b| (b.start, b.end))
            .chain([(MAX_GPA, MAX_GPA)]);
        for (hole_start, hole_end) in ends {
            let gap_end = hole_start.min(MAX_GPA);
            for (s, e) in [
                (cursor, gap_end.min(FOUR_GIB)),
                (cursor.max(FOUR_GIB), gap_end),
            ] {
                if s < e && placed < need {
                    let take = (e - s).min(need - placed);
                    ram.push(Range::new(s, s + take));
                    placed += take;
                }
            }
            cursor = cursor.max(hole_end);
            if placed == need || cursor >= MAX_GPA {
                break;
            }
        }
        if placed < need {
            return Err(LayoutError::TooMuchRam {
                requested: ram_bytes,
                available: placed.saturating_sub(special_bytes),
            });
        }

        // The special pages: the top of the highest RAM range below 4 GiB
        // that can hold them.
        let slot = ram
            .iter()
            .rposition(|r| r.end <= FOUR_GIB && r.len() >= special_bytes)
            .ok_or(LayoutError::NoRoomForSpecialPages)?;
        let special = SpecialPages::at(ram[slot].end - special_bytes);
        ram[slot].end -= special_bytes;

        let mut e820: Vec<Region> = Vec::new();
        let region = |r: Range, kind| Region {
            base: r.start,
            len: r.len(),
            kind,
        };
        for r in ram.iter().filter(|r| !r.is_empty()) {
            match e820.last_mut() {
                Some(last) if last.kind == RegionKind::Usable && last.end() == r.start => {
                    last.len += r.len()
                }
                _ => e820.push(region(*r, RegionKind::Usable)),
            }
        }
        e820.push(region(special.range(), RegionKind::Reserved));
        e820.extend(blocked.iter().map(|b| region(*b, RegionKind::Reserved)));
        vmm_glue::compact::sort_by_key(&mut e820, |r| r.base);
        Ok(Self {
            ram_bytes,
            e820,
            special,
        })
    }

    /// The usable RAM ranges.
    pub fn ram(&self) -> impl Iterator<Item = Range> + '_ {
        self.e820
            .iter()
            .filter(|r| r.kind == RegionKind::Usable)
            .map(|r| Range::new(r.base, r.end()))
    }

    /// The guest-physical ranges that need host memory behind them: RAM
    /// and the special pages.
    pub fn backed(&self) -> Vec<Range> {
        let mut v: Vec<Range> = self.ram().chain([self.special.range()]).collect();
        vmm_glue::compact::sort(&mut v);
        v
    }

    /// Places modules of `sizes` bytes in guest RAM, each page-aligned, in
    /// order, from `after` (the end of the kernel image) upwards. Their
    /// guest-physical addresses.
    pub fn place_modules(&self, after: u64, sizes: &[u64]) -> Result<Vec<u64>, LayoutError> {
        let mut cursor = page_up(after);
        let mut out = Vec::with_capacity(sizes.len());
        for (index, &size) in sizes.iter().enumerate() {
            let gpa = self
                .ram()
                .filter(|r| r.end > cursor)
                .find_map(|r| {
                    let start = page_up(r.start.max(cursor));
                    let end = start.checked_add(size)?;
                    (end <= r.end).then_some(start)
                })
                .ok_or(LayoutError::ModuleDoesNotFit {
                    index,
                    size,
                    after: cursor,
                })?;
            out.push(gpa);
            cursor = page_up(gpa.saturating_add(size));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    const SPECIAL: u64 = SPECIAL_PAGES * PAGE;

    /// QEMU q35's holes: the ECAM window and the MMIO below 4 GiB.
    const Q35: [Range; 2] = [
        Range::new(0xB000_0000, 0xC000_0000),
        Range::new(0xFE00_0000, 0x1_0000_0000),
    ];

    fn usable(base: u64, end: u64) -> Region {
        Region {
            base,
            len: end - base,
            kind: RegionKind::Usable,
        }
    }

    fn reserved(base: u64, end: u64) -> Region {
        Region {
            base,
            len: end - base,
            kind: RegionKind::Reserved,
        }
    }

    /// What every layout must satisfy.
    fn check(l: &GuestLayout, holes: &[Range]) {
        let mut prev_end = 0;
        for r in &l.e820 {
            assert!(r.len > 0, "{r:?} is empty");
            assert!(r.base >= prev_end, "{:?} unsorted or overlapping", l.e820);
            prev_end = r.end();
            if r.kind == RegionKind::Usable {
                assert!(r.base % PAGE == 0 && r.len % PAGE == 0, "{r:?} unaligned");
                assert!(r.end() <= MAX_GPA);
                for h in holes {
                    assert!(
                        r.end() <= h.start || r.base >= h.end,
                        "{r:?} overlaps hole {h:?}"
                    );
                }
                assert!(r.end() <= LOW_RAM_END || r.base >= HIGH_RAM_START, "{r:?}");
            }
        }
        assert_eq!(l.ram().map(|r| r.len()).sum::<u64>(), l.ram_bytes);
        let s = l.special.range();
        assert!(s.end <= FOUR_GIB);
        assert!(
            l.e820
                .iter()
                .any(|r| r.kind == RegionKind::Reserved && r.base <= s.start && s.end <= r.end()),
            "special pages {s:?} not reserved"
        );
        assert_eq!(l.special.xenstore, s.start + START_INFO_BYTES);
        assert_eq!(l.special.console, l.special.xenstore + PAGE);
    }

    #[test]
    fn small_guest_gets_low_ram_and_ram_from_1m_with_special_pages_on_top() {
        let l = GuestLayout::new(64 * MIB, &Q35).unwrap();
        check(&l, &Q35);
        let top = HIGH_RAM_START + 64 * MIB - LOW_RAM_END;
        assert_eq!(
            l.e820,
            [
                usable(0, LOW_RAM_END),
                reserved(LOW_RAM_END, HIGH_RAM_START),
                usable(HIGH_RAM_START, top),
                reserved(top, top + SPECIAL),
                reserved(0xB000_0000, 0xC000_0000),
                reserved(0xFE00_0000, 0x1_0000_0000),
            ]
        );
        assert_eq!(l.special.start_info, top);
        assert_eq!(
            l.backed().iter().map(Range::len).sum::<u64>(),
            64 * MIB + SPECIAL
        );
    }

    #[test]
    fn three_gib_guest_continues_above_the_ecam_window() {
        let l = GuestLayout::new(3 * GIB, &Q35).unwrap();
        check(&l, &Q35);
        let below = LOW_RAM_END + (0xB000_0000 - HIGH_RAM_START);
        let top = 0xC000_0000 + (3 * GIB - below);
        assert_eq!(
            l.e820,
            [
                usable(0, LOW_RAM_END),
                reserved(LOW_RAM_END, HIGH_RAM_START),
                usable(HIGH_RAM_START, 0xB000_0000),
                reserved(0xB000_0000, 0xC000_0000),
                usable(0xC000_0000, top),
                reserved(top, top + SPECIAL),
                reserved(0xFE00_0000, 0x1_0000_0000),
            ]
        );
    }

    #[test]
    fn five_gib_guest_continues_above_4g_with_special_pages_below_the_mmio_hole() {
        let l = GuestLayout::new(5 * GIB, &Q35).unwrap();
        check(&l, &Q35);
        let special = 0xFE00_0000 - SPECIAL;
        assert_eq!(l.special.start_info, special);
        let below = LOW_RAM_END + (0xB000_0000 - HIGH_RAM_START) + (special - 0xC000_0000);
        assert_eq!(
            l.e820[4..],
            [
                usable(0xC000_0000, special),
                reserved(special, 0xFE00_0000),
                reserved(0xFE00_0000, FOUR_GIB),
                usable(FOUR_GIB, FOUR_GIB + 5 * GIB - below),
            ]
        );
    }

    #[test]
    fn without_holes_ram_crosses_4g_and_special_pages_stay_below() {
        let l = GuestLayout::new(5 * GIB, &[]).unwrap();
        check(&l, &[]);
        assert_eq!(l.special.range().end, FOUR_GIB);
        let ram: Vec<Range> = l.ram().collect();
        assert_eq!(ram[1], Range::new(HIGH_RAM_START, FOUR_GIB - SPECIAL));
        assert_eq!(ram[2].start, FOUR_GIB);
    }

    #[test]
    fn overlapping_and_unaligned_holes_merge_and_round_outwards() {
        let holes = [
            Range::new(0x800_0123, 0x900_0000),
            Range::new(0x880_0000, 0xA00_0001),
            Range::new(0x9_F000, 0xA_8000),
        ];
        let l = GuestLayout::new(512 * MIB, &holes).unwrap();
        check(&l, &holes);
        assert!(l.e820.contains(&reserved(0x800_0000, 0xA00_1000)));
        assert!(l.e820.contains(&reserved(0x9_F000, HIGH_RAM_START)));
        assert_eq!(l.e820[0], usable(0, 0x9_F000));
    }

    #[test]
    fn ram_that_does_not_fit_below_2_pow_46_is_an_error() {
        let err = GuestLayout::new(MAX_GPA, &Q35).unwrap_err();
        assert!(matches!(err, LayoutError::TooMuchRam { .. }), "{err:?}");
        assert!(err.to_string().contains("do not fit below 2^46"));
        let huge_hole = [Range::new(GIB, u64::MAX)];
        assert!(matches!(
            GuestLayout::new(2 * GIB, &huge_hole),
            Err(LayoutError::TooMuchRam { .. })
        ));
        assert!(GuestLayout::new(GIB - 2 * MIB, &huge_hole).is_ok());
    }

    #[test]
    fn bad_requests_are_errors() {
        assert_eq!(GuestLayout::new(0, &Q35), Err(LayoutError::NoRam));
        let inverted = Range::new(0xC000_0000, 0xB000_0000);
        assert_eq!(
            GuestLayout::new(GIB, &[inverted]),
            Err(LayoutError::InvertedHole(inverted))
        );
        // Everything below 4 GiB is a hole: nowhere for the special pages.
        assert_eq!(
            GuestLayout::new(GIB, &[Range::new(0, FOUR_GIB)]),
            Err(LayoutError::NoRoomForSpecialPages)
        );
    }

    #[test]
    fn ram_size_rounds_up_to_a_page() {
        let l = GuestLayout::new(64 * MIB + 1, &Q35).unwrap();
        assert_eq!(l.ram_bytes, 64 * MIB + PAGE);
        check(&l, &Q35);
    }

    #[test]
    fn modules_go_above_the_image_page_aligned_and_around_holes() {
        let l = GuestLayout::new(3 * GIB, &Q35).unwrap();
        let at = l
            .place_modules(0x100_0000 + 0x12_3456, &[0x1000, 5, 0, 0x1000_0000])
            .unwrap();
        assert_eq!(at[0], 0x112_4000);
        assert_eq!(at[1], 0x112_5000);
        assert_eq!(at[2], 0x112_6000);
        assert_eq!(at[3], 0x112_6000);
        // Past the ECAM window when the RAM below it is used up.
        let at = l.place_modules(0xAFF0_0000, &[0x20_0000]).unwrap();
        assert_eq!(at, [0xC000_0000]);
        assert!(matches!(
            l.place_modules(0x100_0000, &[4 * GIB]),
            Err(LayoutError::ModuleDoesNotFit { index: 0, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn layouts_keep_ram_out_of_every_hole(
            ram in 1u64..(64 * GIB),
            holes in proptest::collection::vec((0u64..(8 * GIB), 0u64..GIB), 0..8),
        ) {
            let holes: Vec<Range> = holes.iter().map(|&(s, l)| Range::new(s, s + l)).collect();
            match GuestLayout::new(ram, &holes) {
                Ok(l) => check(&l, &holes),
                Err(e) => proptest::prop_assert!(
                    matches!(e, LayoutError::NoRoomForSpecialPages),
                    "{e:?}"
                ),
            }
        }
    }
}
