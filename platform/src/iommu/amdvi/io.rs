//! Host I/O page tables: one set per domain, translating a device's DMA
//! address (IOVA, here the guest-physical address) to host-physical
//! memory (specification section 2.2.3).
//!
//! Each table is a 4 KiB frame of 512 64-bit entries:
//!
//! - bit 0 PR: present;
//! - bits 11:9 Next Level: in a directory entry the level of the table it
//!   points to (always one below here: no level skipping), 0 in a leaf;
//! - bits 51:12: the next table or the page;
//! - bit 61 IR, bit 62 IW: read and write permission, intersected along
//!   the walk (directory entries grant both).
//!
//! A level-2 or level-3 entry with Next Level 0 is a 2 MiB or 1 GiB leaf
//! (the default page size of that level). The Next Level 7 encoding of
//! other page sizes is not used.

use alloc::vec::Vec;

use super::AmdViError;
use crate::iommu::TableMemory;

/// Entry bit 0: present.
pub const PTE_PR: u64 = 1 << 0;
/// Entry bits 11:9: Next Level.
pub const PTE_NEXT_SHIFT: u32 = 9;
/// Entry bits 51:12: the next table or the page.
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Entry bit 61: read permission.
pub const PTE_IR: u64 = 1 << 61;
/// Entry bit 62: write permission.
pub const PTE_IW: u64 = 1 << 62;

const PAGE: u64 = 4096;
const ENTRIES: u64 = 512;

/// How many levels the tables have (the device table entry's Mode),
/// which fixes the IOVA width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IoLevels {
    /// 3 levels, 39-bit IOVAs.
    Three,
    /// 4 levels, 48-bit IOVAs.
    Four,
}

impl IoLevels {
    /// The number of levels (the Mode field).
    pub const fn count(self) -> u32 {
        match self {
            Self::Three => 3,
            Self::Four => 4,
        }
    }

    /// The IOVA width in bits.
    pub const fn width(self) -> u32 {
        12 + 9 * self.count()
    }
}

/// The shape of a domain's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoConfig {
    /// Number of levels.
    pub levels: IoLevels,
    /// Use 2 MiB and 1 GiB leaves where addresses and length allow.
    pub large_pages: bool,
}

/// Bytes covered by one entry at `level` (1 = 4 KiB pages).
const fn span(level: u32) -> u64 {
    PAGE << (9 * (level - 1))
}

const fn index(iova: u64, level: u32) -> u64 {
    (iova >> (12 + 9 * (level - 1))) & (ENTRIES - 1)
}

const fn present(e: u64) -> bool {
    e & PTE_PR != 0
}

/// Whether an entry found at `level` maps memory rather than a table.
const fn is_leaf(e: u64, level: u32) -> bool {
    level == 1 || (e >> PTE_NEXT_SHIFT) & 7 == 0
}

/// A directory entry at `level` pointing at `table`.
const fn directory(table: u64, level: u32) -> u64 {
    table | ((level as u64 - 1) << PTE_NEXT_SHIFT) | PTE_IR | PTE_IW | PTE_PR
}

/// One domain's I/O page tables.
///
/// The tables only change memory; after [`unmap`](Self::unmap), or after
/// [`map`](Self::map) replaced a mapping, the caller invalidates the
/// domain on every unit that uses them
/// ([`AmdVi::flush_domain`](super::AmdVi::flush_domain)) and then calls
/// [`reclaim`](Self::reclaim) to free the table frames that fell out of
/// use (they are kept until then because the unit may still walk them).
#[derive(Debug)]
pub struct IoTables {
    root: u64,
    config: IoConfig,
    retired: Vec<u64>,
}

impl IoTables {
    /// Empty tables (every IOVA unmapped): allocates the top-level table.
    pub fn new(mem: &mut impl TableMemory, config: IoConfig) -> Result<Self, AmdViError> {
        let root = mem.alloc_zeroed().ok_or(AmdViError::NoMemory)?;
        Ok(Self {
            root,
            config,
            retired: Vec::new(),
        })
    }

    /// The host-physical address of the top-level table (the device table
    /// entry's Page Table Root Pointer).
    pub const fn root(&self) -> u64 {
        self.root
    }

    /// The shape the tables were built with.
    pub const fn config(&self) -> IoConfig {
        self.config
    }

    /// Table frames waiting for [`reclaim`](Self::reclaim).
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Maps `[iova, iova + len)` to `[hpa, hpa + len)`, read-only or
    /// read-write, replacing whatever was mapped there. All three must be
    /// multiples of 4 KiB and `len` non-zero; the range must lie below the
    /// tables' IOVA width and `hpa + len` at or below 2^52. Large pages
    /// are used where the configuration allows and both addresses and the
    /// length line up.
    ///
    /// DMA writes to `0xfee0_0000..=0xfeef_ffff` are interrupt requests
    /// and never translated, so a mapping there is unreachable for
    /// devices.
    ///
    /// On [`AmdViError::NoMemory`] the range may be partly mapped; unmap
    /// it. Replacing a present mapping needs a flush like an unmap does,
    /// and since a unit may cache not-present entries (the capability
    /// header's NpCache bit), so does a first mapping
    /// ([`AmdVi::sync_after_map`](super::AmdVi::sync_after_map)).
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        hpa: u64,
        len: u64,
        writable: bool,
    ) -> Result<(), AmdViError> {
        let end = self.check_range(iova, len)?;
        if hpa % PAGE != 0 || hpa.checked_add(len).is_none_or(|e| e > PTE_ADDR + PAGE) {
            return Err(AmdViError::BadRange { iova, len });
        }
        let perms = if writable { PTE_IR | PTE_IW } else { PTE_IR };
        let top = self.config.levels.count();
        self.map_in(
            mem,
            self.root,
            top,
            iova,
            end,
            hpa.wrapping_sub(iova),
            perms,
        )
    }

    /// Unmaps `[iova, iova + len)` (4 KiB aligned, non-zero, below the
    /// IOVA width). Unmapped parts of the range are skipped; a large page
    /// partly inside the range is split first, which needs a table frame
    /// ([`AmdViError::NoMemory`] if there is none; the range may then be
    /// partly unmapped). Tables left empty are retired.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        len: u64,
    ) -> Result<(), AmdViError> {
        let end = self.check_range(iova, len)?;
        let top = self.config.levels.count();
        self.unmap_in(mem, self.root, top, iova, end)
    }

    /// Where `iova` goes: the host-physical address and whether writes are
    /// allowed, or `None` if a DMA there faults.
    pub fn translate(&self, mem: &mut impl TableMemory, iova: u64) -> Option<(u64, bool)> {
        if iova >> self.config.levels.width() != 0 {
            return None;
        }
        let mut table = self.root;
        let mut writable = true;
        for level in (1..=self.config.levels.count()).rev() {
            let e = mem.read64(table + index(iova, level) * 8);
            if !present(e) || e & PTE_IR == 0 {
                return None;
            }
            writable &= e & PTE_IW != 0;
            if is_leaf(e, level) {
                let hpa = (e & PTE_ADDR & !(span(level) - 1)) | (iova & (span(level) - 1));
                return Some((hpa, writable));
            }
            table = e & PTE_ADDR;
        }
        None
    }

    /// Frees the table frames retired by earlier `map` and `unmap` calls.
    /// Call it only after every unit using these tables was flushed for
    /// the domain.
    pub fn reclaim(&mut self, mem: &mut impl TableMemory) {
        for frame in self.retired.drain(..) {
            mem.free(frame);
        }
    }

    /// Frees every table frame. No device table entry may point at these
    /// tables any more and the domain must have been flushed.
    pub fn destroy(mut self, mem: &mut impl TableMemory) {
        let top = self.config.levels.count();
        self.retire_table(mem, self.root, top);
        self.reclaim(mem);
    }

    fn check_range(&self, iova: u64, len: u64) -> Result<u64, AmdViError> {
        let limit = 1u64 << self.config.levels.width();
        match iova.checked_add(len) {
            Some(end) if iova % PAGE == 0 && len % PAGE == 0 && len != 0 && end <= limit => Ok(end),
            _ => Err(AmdViError::BadRange { iova, len }),
        }
    }

    fn large_page_allowed(&self, level: u32) -> bool {
        self.config.large_pages && (level == 2 || level == 3)
    }

    /// Maps `[start, end)` (inside the span of `table`, at `level`) to
    /// `iova + delta`.
    #[allow(clippy::too_many_arguments)]
    fn map_in(
        &mut self,
        mem: &mut impl TableMemory,
        table: u64,
        level: u32,
        start: u64,
        end: u64,
        delta: u64,
        perms: u64,
    ) -> Result<(), AmdViError> {
        let size = span(level);
        let mut at = start;
        while at < end {
            let base = at & !(size - 1);
            let next = (base + size).min(end);
            let slot = table + index(at, level) * 8;
            let target = at.wrapping_add(delta);
            let whole = at == base && next - base == size;
            if level == 1 || (whole && target % size == 0 && self.large_page_allowed(level)) {
                // A leaf: Next Level 0.
                let old = mem.read64(slot);
                mem.write64(slot, target | perms | PTE_PR);
                if present(old) && !is_leaf(old, level) {
                    self.retire_table(mem, old & PTE_ADDR, level - 1);
                }
            } else {
                let child = self.child_table(mem, slot, level)?;
                self.map_in(mem, child, level - 1, at, next, delta, perms)?;
            }
            at = next;
        }
        Ok(())
    }

    /// Unmaps `[start, end)` inside the span of `table` at `level`.
    fn unmap_in(
        &mut self,
        mem: &mut impl TableMemory,
        table: u64,
        level: u32,
        start: u64,
        end: u64,
    ) -> Result<(), AmdViError> {
        let size = span(level);
        let mut at = start;
        while at < end {
            let base = at & !(size - 1);
            let next = (base + size).min(end);
            let slot = table + index(at, level) * 8;
            let e = mem.read64(slot);
            at = next;
            if !present(e) {
                continue;
            }
            if base >= start && next - base == size {
                mem.write64(slot, 0);
                if !is_leaf(e, level) {
                    self.retire_table(mem, e & PTE_ADDR, level - 1);
                }
                continue;
            }
            let child = self.child_table(mem, slot, level)?;
            self.unmap_in(mem, child, level - 1, base.max(start), next)?;
            if (0..ENTRIES).all(|i| !present(mem.read64(child + i * 8))) {
                mem.write64(slot, 0);
                self.retired.push(child);
            }
        }
        Ok(())
    }

    /// The table below the entry at `slot` (at `level` > 1): the existing
    /// one, a new empty one, or a new one holding the pieces of the large
    /// page the entry mapped.
    fn child_table(
        &mut self,
        mem: &mut impl TableMemory,
        slot: u64,
        level: u32,
    ) -> Result<u64, AmdViError> {
        let e = mem.read64(slot);
        if present(e) && !is_leaf(e, level) {
            return Ok(e & PTE_ADDR);
        }
        let child = mem.alloc_zeroed().ok_or(AmdViError::NoMemory)?;
        if present(e) {
            // Split the large page into 512 leaves one level down, with
            // the same rights.
            let piece = span(level - 1);
            let page = e & PTE_ADDR & !(span(level) - 1);
            let rights = e & (PTE_IR | PTE_IW);
            for i in 0..ENTRIES {
                mem.write64(child + i * 8, (page + i * piece) | rights | PTE_PR);
            }
        }
        mem.write64(slot, directory(child, level));
        Ok(child)
    }

    /// Retires `table` (at `level`) and every table below it.
    fn retire_table(&mut self, mem: &mut impl TableMemory, table: u64, level: u32) {
        if level > 1 {
            for i in 0..ENTRIES {
                let e = mem.read64(table + i * 8);
                if present(e) && !is_leaf(e, level) {
                    self.retire_table(mem, e & PTE_ADDR, level - 1);
                }
            }
        }
        self.retired.push(table);
    }
}
