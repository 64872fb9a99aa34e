//! The load plan: which bytes of the image go to which guest-physical
//! addresses, checked against the guest's memory map.
//!
//! A PVH guest starts with paging off, so segments load at their physical
//! addresses (`p_paddr`), not at `p_vaddr` (Linux links at
//! `0xffffffff81000000` and loads at 16 MiB).

use super::elf::{Elf, PT_LOAD};
use crate::memmap::{Region, RegionKind};
use alloc::vec::Vec;
use core::fmt;

/// One `PT_LOAD` segment to copy into the guest: `file_size` bytes from
/// `file_offset` in the image to `gpa`, then zeros up to `mem_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub gpa: u64,
    pub file_offset: usize,
    pub file_size: usize,
    pub mem_size: u64,
}

impl Segment {
    /// One past the last guest-physical byte.
    pub fn end(&self) -> u64 {
        self.gpa.saturating_add(self.mem_size)
    }

    /// The bytes to copy from `image` (`None` if they are not in it).
    pub fn bytes<'a>(&self, image: &'a [u8]) -> Option<&'a [u8]> {
        image.get(self.file_offset..self.file_offset.checked_add(self.file_size)?)
    }
}

/// How to load an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The guest's first instruction (`XEN_ELFNOTE_PHYS32_ENTRY`).
    pub entry: u32,
    /// The non-empty `PT_LOAD` segments, by ascending address.
    pub segments: Vec<Segment>,
    /// One past the highest guest-physical byte of any segment.
    pub image_end: u64,
}

/// Why an image cannot be loaded into a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No `PT_LOAD` segment with memory.
    NoSegments,
    /// A segment's address range overflows.
    AddressOverflow {
        index: usize,
        paddr: u64,
        memsz: u64,
    },
    /// Two segments share guest-physical memory (program header indices).
    Overlap {
        first: usize,
        first_range: (u64, u64),
        second: usize,
        second_range: (u64, u64),
    },
    /// A segment reaches memory that is not guest RAM: `at` is the first
    /// such byte, `region` the map entry covering it (none: a gap or past
    /// the end of the map).
    OutsideRam {
        index: usize,
        range: (u64, u64),
        at: u64,
        region: Option<Region>,
    },
    /// The entry point lies in no segment.
    EntryOutside { entry: u32 },
    /// A file range does not fit the host's address width.
    TooLargeForHost { index: usize },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoSegments => f.write_str("the image has no PT_LOAD segment with memory"),
            Self::AddressOverflow {
                index,
                paddr,
                memsz,
            } => write!(
                f,
                "program header {index}: {paddr:#x}+{memsz:#x} runs past the end of the \
                 address space"
            ),
            Self::Overlap {
                first,
                first_range: (a, b),
                second,
                second_range: (c, d),
            } => write!(
                f,
                "program headers {first} ({a:#x}..{b:#x}) and {second} ({c:#x}..{d:#x}) overlap"
            ),
            Self::OutsideRam {
                index,
                range: (a, b),
                at,
                region,
            } => {
                write!(
                    f,
                    "program header {index} ({a:#x}..{b:#x}) does not fit in guest RAM: {at:#x} "
                )?;
                match region {
                    Some(r) => write!(f, "is {} ({:#x}..{:#x})", r.kind, r.base, r.end()),
                    None => f.write_str("is not RAM (give the guest more memory?)"),
                }
            }
            Self::EntryOutside { entry } => {
                write!(f, "the entry point {entry:#x} lies in no PT_LOAD segment")
            }
            Self::TooLargeForHost { index } => {
                write!(
                    f,
                    "program header {index}: file range too large for this host"
                )
            }
        }
    }
}

/// Plans loading `elf`, entered at `entry`, into a guest whose memory map is
/// `memmap`: every segment must lie in usable entries of the map.
pub fn plan(elf: &Elf<'_>, entry: u32, memmap: &[Region]) -> Result<LoadPlan, PlanError> {
    let mut segments: Vec<(usize, Segment)> = Vec::new();
    for (index, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.memsz == 0 {
            continue;
        }
        if ph.paddr.checked_add(ph.memsz).is_none() {
            return Err(PlanError::AddressOverflow {
                index,
                paddr: ph.paddr,
                memsz: ph.memsz,
            });
        }
        let file_size =
            usize::try_from(ph.filesz).map_err(|_| PlanError::TooLargeForHost { index })?;
        let file_offset = if file_size == 0 {
            0
        } else {
            usize::try_from(ph.offset).map_err(|_| PlanError::TooLargeForHost { index })?
        };
        segments.push((
            index,
            Segment {
                gpa: ph.paddr,
                file_offset,
                file_size,
                mem_size: ph.memsz,
            },
        ));
    }
    vmm_glue::compact::sort_by_key(&mut segments, |(_, s)| s.gpa);
    for pair in segments.windows(2) {
        if let [(i, a), (j, b)] = pair {
            if a.end() > b.gpa {
                return Err(PlanError::Overlap {
                    first: *i,
                    first_range: (a.gpa, a.end()),
                    second: *j,
                    second_range: (b.gpa, b.end()),
                });
            }
        }
    }
    for (index, s) in &segments {
        if let Some(at) = first_non_ram(memmap, s.gpa, s.end()) {
            return Err(PlanError::OutsideRam {
                index: *index,
                range: (s.gpa, s.end()),
                at,
                region: memmap
                    .iter()
                    .find(|r| r.kind != RegionKind::Usable && r.base <= at && at < r.end())
                    .copied(),
            });
        }
    }
    let in_segment = |s: &Segment| s.gpa <= u64::from(entry) && u64::from(entry) < s.end();
    if segments.is_empty() {
        return Err(PlanError::NoSegments);
    }
    if !segments.iter().any(|(_, s)| in_segment(s)) {
        return Err(PlanError::EntryOutside { entry });
    }
    let image_end = segments.iter().map(|(_, s)| s.end()).max().unwrap_or(0);
    Ok(LoadPlan {
        entry,
        segments: segments.into_iter().map(|(_, s)| s).collect(),
        image_end,
    })
}

/// The first byte of `[start, end)` not covered by usable entries of `map`
/// (or covered by a non-usable one), if any.
fn first_non_ram(map: &[Region], start: u64, end: u64) -> Option<u64> {
    let mut at = start;
    while at < end {
        if map
            .iter()
            .any(|r| r.kind != RegionKind::Usable && r.base <= at && at < r.end())
        {
            return Some(at);
        }
        // The furthest a usable entry covering `at` reaches, stopping at the
        // next non-usable entry.
        let Some(reach) = map
            .iter()
            .filter(|r| r.kind == RegionKind::Usable && r.base <= at && at < r.end())
            .map(Region::end)
            .max()
        else {
            return Some(at);
        };
        let blocked = map
            .iter()
            .filter(|r| r.kind != RegionKind::Usable && r.len != 0 && r.base > at)
            .map(|r| r.base)
            .min()
            .unwrap_or(u64::MAX);
        at = reach.min(blocked);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::elf::{Class, PT_NOTE};
    use super::super::layout::GuestLayout;
    use super::super::testimg::{phys32, pvh_kernel, Builder, Off, Ph};
    use super::*;
    use crate::memmap::Range;
    use alloc::string::ToString;

    const MIB: u64 = 1 << 20;
    const Q35: [Range; 2] = [
        Range::new(0xB000_0000, 0xC000_0000),
        Range::new(0xFE00_0000, 0x1_0000_0000),
    ];

    fn map(ram: u64) -> Vec<Region> {
        GuestLayout::new(ram, &Q35).unwrap().e820
    }

    fn plan_of(b: &Builder, entry: u32, memmap: &[Region]) -> Result<LoadPlan, PlanError> {
        let image = b.build();
        plan(&Elf::parse(&image).unwrap(), entry, memmap)
    }

    #[test]
    fn kernels_at_0_1m_and_16m_load_at_their_physical_addresses() {
        for class in [Class::Elf32, Class::Elf64] {
            for paddr in [0, 0x10_0000, 0x100_0000] {
                let b = pvh_kernel(class, paddr);
                let image = b.build();
                let p = plan(&Elf::parse(&image).unwrap(), paddr + 0x40, &map(64 * MIB)).unwrap();
                assert_eq!(p.entry, paddr + 0x40);
                assert_eq!(
                    p.segments,
                    [Segment {
                        gpa: u64::from(paddr),
                        file_offset: b.payload_start(),
                        file_size: 0x1800,
                        mem_size: 0x3000,
                    }]
                );
                assert_eq!(p.image_end, u64::from(paddr) + 0x3000);
                let bytes = p.segments[0].bytes(&image).unwrap();
                assert_eq!(bytes.len(), 0x1800);
                assert_eq!(bytes[1], 7);
            }
        }
    }

    #[test]
    fn segments_come_out_sorted_and_empty_ones_are_skipped() {
        let mut b = Builder::new(Class::Elf64);
        b.load(0x20_0000, &[2; 0x100], 0x1000);
        b.load(0x30_0000, &[], 0); // nothing at all
        b.load(0x10_0000, &[1; 0x100], 0x1000);
        b.load(0x40_0000, &[], 0x8000); // .bss only
        let p = plan_of(&b, 0x10_0000, &map(64 * MIB)).unwrap();
        let at: Vec<(u64, usize, u64)> = p
            .segments
            .iter()
            .map(|s| (s.gpa, s.file_size, s.mem_size))
            .collect();
        assert_eq!(
            at,
            [
                (0x10_0000, 0x100, 0x1000),
                (0x20_0000, 0x100, 0x1000),
                (0x40_0000, 0, 0x8000)
            ]
        );
        assert_eq!(p.image_end, 0x40_8000);
        assert_eq!(p.segments[2].bytes(&b.build()), Some(&[][..]));
    }

    #[test]
    fn overlapping_segments_are_an_error() {
        let mut b = Builder::new(Class::Elf32);
        b.load(0x10_0000, &[1; 0x10], 0x2000);
        b.load(0x10_1000, &[2; 0x10], 0x1000);
        let err = plan_of(&b, 0x10_0000, &map(64 * MIB)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "program headers 0 (0x100000..0x102000) and 1 (0x101000..0x102000) overlap"
        );
    }

    #[test]
    fn huge_memory_size_is_an_error_not_an_overflow() {
        let mut b = Builder::new(Class::Elf64);
        b.load(0x10_0000, &[1; 0x10], u64::MAX - 0x1000);
        assert!(matches!(
            plan_of(&b, 0x10_0000, &map(64 * MIB)),
            Err(PlanError::AddressOverflow { index: 0, .. })
        ));
        let mut b = Builder::new(Class::Elf32);
        b.load(0x10_0000, &[1; 0x10], 0xFFFF_0000);
        assert!(matches!(
            plan_of(&b, 0x10_0000, &map(64 * MIB)),
            Err(PlanError::OutsideRam { index: 0, .. })
        ));
    }

    #[test]
    fn a_segment_past_the_end_of_ram_says_so() {
        let b = pvh_kernel(Class::Elf64, 0x100_0000);
        // 16 MiB of RAM reach 0x1060000 (640 KiB sit below 1 MiB): it fits.
        assert!(plan_of(&b, 0x100_0040, &map(16 * MIB)).is_ok());
        let err = plan_of(&b, 0x100_0040, &map(8 * MIB)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "program header 0 (0x1000000..0x1003000) does not fit in guest RAM: 0x1000000 is \
             not RAM (give the guest more memory?)"
        );
    }

    #[test]
    fn a_segment_in_the_legacy_hole_or_a_host_hole_is_an_error() {
        let b = pvh_kernel(Class::Elf32, 0x9_F000);
        let err = plan_of(&b, 0x9_F040, &map(64 * MIB)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "program header 0 (0x9f000..0xa2000) does not fit in guest RAM: 0xa0000 is reserved \
             (0xa0000..0x100000)"
        );
        let b = pvh_kernel(Class::Elf64, 0xAFFF_F000);
        assert!(matches!(
            plan_of(&b, 0xAFFF_F040, &map(4 << 30)),
            Err(PlanError::OutsideRam {
                at: 0xB000_0000,
                ..
            })
        ));
    }

    #[test]
    fn a_segment_over_the_special_pages_is_an_error() {
        let layout = GuestLayout::new(64 * MIB, &Q35).unwrap();
        let special = layout.special.start_info;
        let b = pvh_kernel(Class::Elf32, special as u32 - 0x1000);
        assert!(matches!(
            plan(&Elf::parse(&b.build()).unwrap(), special as u32 - 0xFC0, &layout.e820),
            Err(PlanError::OutsideRam { at, .. }) if at == special
        ));
    }

    #[test]
    fn segments_may_span_adjacent_ram_entries() {
        let memmap = [
            Region {
                base: 0x10_0000,
                len: 0x10_0000,
                kind: RegionKind::Usable,
            },
            Region {
                base: 0x20_0000,
                len: 0x10_0000,
                kind: RegionKind::Usable,
            },
        ];
        let b = pvh_kernel(Class::Elf64, 0x1F_F000);
        assert!(plan_of(&b, 0x1F_F040, &memmap).is_ok());
    }

    #[test]
    fn a_gap_between_ram_entries_is_not_ram() {
        let memmap = [
            Region {
                base: 0x10_0000,
                len: 0x1000,
                kind: RegionKind::Usable,
            },
            Region {
                base: 0x10_2000,
                len: 0x1000,
                kind: RegionKind::Usable,
            },
        ];
        assert_eq!(
            first_non_ram(&memmap, 0x10_0000, 0x10_3000),
            Some(0x10_1000)
        );
        assert_eq!(first_non_ram(&memmap, 0x10_2000, 0x10_3000), None);
        assert_eq!(
            first_non_ram(&memmap, 0x10_2000, 0x10_3001),
            Some(0x10_3000)
        );
        assert_eq!(first_non_ram(&[], 0, 1), Some(0));
    }

    #[test]
    fn entry_outside_every_segment_and_no_segments_are_errors() {
        let b = pvh_kernel(Class::Elf64, 0x10_0000);
        assert_eq!(
            plan_of(&b, 0x20_0000, &map(64 * MIB)),
            Err(PlanError::EntryOutside { entry: 0x20_0000 })
        );
        let mut b = Builder::new(Class::Elf64);
        b.note_segment(&phys32(0x10_0000));
        b.phs.push(Ph {
            p_type: PT_NOTE,
            flags: 0,
            offset: Off::Abs(0),
            vaddr: 0,
            paddr: 0,
            filesz: 0,
            memsz: 0,
            align: 4,
        });
        assert_eq!(
            plan_of(&b, 0x10_0000, &map(64 * MIB)),
            Err(PlanError::NoSegments)
        );
    }
}
