//! Where the kernel's segments go: by physical address.
//!
//! A PV kernel's pseudo-physical address space is its ELF physical one
//! shifted down by `XEN_ELFNOTE_PADDR_OFFSET` (libelf's
//! `elf_xen_addr_calc_check`), and it runs mapped at
//! `VIRT_BASE + pseudo-physical`. `p_vaddr` is never used: Linux links its
//! per-CPU segment at virtual 0 while its physical address is right.
//! Loadable means `PT_LOAD` with one of R, W, X (libelf's
//! `elf_phdr_is_loadable`); segments without memory are skipped.

use super::error::BuildError;
use crate::pvh::elf::{Elf, PF_R, PF_W, PF_X, PT_LOAD};
use alloc::vec::Vec;

/// One segment to load: `file_size` bytes from `file_offset` in the image
/// to pseudo-physical (= guest-physical, the p2m being the identity)
/// `gpa`, then zeros up to `mem_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSegment {
    /// The program header's index.
    pub index: usize,
    pub gpa: u64,
    pub file_offset: usize,
    pub file_size: usize,
    pub mem_size: u64,
}

impl KernelSegment {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.gpa + self.mem_size
    }

    /// The bytes to copy from `image` (`None` if they are not in it).
    pub fn bytes<'a>(&self, image: &'a [u8]) -> Option<&'a [u8]> {
        image.get(self.file_offset..self.file_offset.checked_add(self.file_size)?)
    }
}

/// The kernel's segments, sorted by address, and the pseudo-physical
/// range they span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelImage {
    pub segments: Vec<KernelSegment>,
    /// The lowest segment's first byte.
    pub start: u64,
    /// One past the highest segment's last byte.
    pub end: u64,
}

/// The loadable segments of `elf` at their pseudo-physical addresses.
pub fn segments(elf: &Elf<'_>, paddr_offset: u64) -> Result<KernelImage, BuildError> {
    let mut segments = Vec::new();
    for (index, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.flags & (PF_R | PF_W | PF_X) == 0 || ph.memsz == 0 {
            continue;
        }
        let gpa = ph
            .paddr
            .checked_sub(paddr_offset)
            .ok_or(BuildError::BelowPaddrOffset {
                index,
                paddr: ph.paddr,
                paddr_offset,
            })?;
        if gpa.checked_add(ph.memsz).is_none() {
            return Err(BuildError::SegmentOverflow {
                index,
                paddr: ph.paddr,
                memsz: ph.memsz,
            });
        }
        let file_size =
            usize::try_from(ph.filesz).map_err(|_| BuildError::TooLargeForHost { index })?;
        let file_offset = if file_size == 0 {
            0
        } else {
            usize::try_from(ph.offset).map_err(|_| BuildError::TooLargeForHost { index })?
        };
        segments.push(KernelSegment {
            index,
            gpa,
            file_offset,
            file_size,
            mem_size: ph.memsz,
        });
    }
    vmm_glue::compact::sort_by_key(&mut segments, |s| s.gpa);
    for pair in segments.windows(2) {
        if let [a, b] = pair {
            if a.end() > b.gpa {
                return Err(BuildError::Overlap {
                    first: a.index,
                    first_range: (a.gpa, a.end()),
                    second: b.index,
                    second_range: (b.gpa, b.end()),
                });
            }
        }
    }
    let start = segments.first().ok_or(BuildError::NoLoadSegments)?.gpa;
    let end = segments
        .iter()
        .map(KernelSegment::end)
        .max()
        .unwrap_or(start);
    Ok(KernelImage {
        segments,
        start,
        end,
    })
}
