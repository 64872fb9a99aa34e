//! Second-level page tables: one set per domain, translating a device's
//! DMA address (IOVA, here the guest-physical address) to host-physical
//! memory (VT-d specification 3.7 and 9.8).
//!
//! Each table is a 4 KiB frame of 512 64-bit entries. An entry is present
//! when its Read (bit 0) or Write (bit 1) bit is set; bits 51:12 hold the
//! next table or the page; bit 7 (PS) in a level-2 or level-3 entry makes
//! it a 2 MiB or 1 GiB leaf. Access rights are the intersection along the
//! walk, so every non-leaf entry grants both.

use alloc::vec::Vec;

use super::VtdError;
use crate::iommu::TableMemory;

/// Entry bit 0: read access.
pub const SL_R: u64 = 1 << 0;
/// Entry bit 1: write access.
pub const SL_W: u64 = 1 << 1;
/// Entry bit 7: page size, the entry maps a 2 MiB (level 2) or 1 GiB
/// (level 3) page.
pub const SL_PS: u64 = 1 << 7;
/// Entry bits 51:12: the address of the next table or the page.
pub const SL_ADDR: u64 = 0x000f_ffff_ffff_f000;

const PAGE: u64 = 4096;
const ENTRIES: u64 = 512;

/// How many levels the second-level tables have, which fixes the input
/// address width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PagingLevels {
    /// 3 levels, 39-bit IOVAs (SAGAW bit 1).
    Three,
    /// 4 levels, 48-bit IOVAs (SAGAW bit 2).
    Four,
}

impl PagingLevels {
    /// The number of levels.
    pub const fn count(self) -> u32 {
        match self {
            Self::Three => 3,
            Self::Four => 4,
        }
    }

    /// The input address width in bits.
    pub const fn width(self) -> u32 {
        12 + 9 * self.count()
    }

    /// The context entry's AW field: 1 for 39-bit, 2 for 48-bit.
    pub const fn context_aw(self) -> u64 {
        self.count() as u64 - 2
    }

    /// The SAGAW bit that advertises this width.
    pub const fn sagaw_bit(self) -> u8 {
        1 << (self.count() - 2)
    }
}

/// The shape of a domain's tables and what the unit allows in them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlConfig {
    /// Number of levels.
    pub levels: PagingLevels,
    /// Use 2 MiB leaves where addresses and length allow (CAP.SLLPS bit 34).
    pub superpage_2m: bool,
    /// Use 1 GiB leaves where addresses and length allow (CAP.SLLPS bit
    /// 35); only together with `superpage_2m`.
    pub superpage_1g: bool,
    /// The unit's table walks are cache coherent (ECAP.C). When false
    /// every table write is followed by [`TableMemory::flush`].
    pub coherent: bool,
}

impl SlConfig {
    /// 4 KiB pages only, coherent walks.
    pub const fn small_pages(levels: PagingLevels) -> Self {
        Self {
            levels,
            superpage_2m: false,
            superpage_1g: false,
            coherent: true,
        }
    }
}

/// Bytes covered by one entry at `level` (1 = 4 KiB pages).
const fn span(level: u32) -> u64 {
    PAGE << (9 * (level - 1))
}

const fn index(iova: u64, level: u32) -> u64 {
    (iova >> (12 + 9 * (level - 1))) & (ENTRIES - 1)
}

const fn present(e: u64) -> bool {
    e & (SL_R | SL_W) != 0
}

/// Whether an entry found at `level` maps memory rather than a table.
const fn is_leaf(e: u64, level: u32) -> bool {
    level == 1 || e & SL_PS != 0
}

/// One domain's second-level page tables.
///
/// The tables only change memory; after [`unmap`](Self::unmap), or after
/// [`map`](Self::map) replaced a mapping, the caller invalidates the
/// domain's IOTLB on every unit that uses them
/// ([`Vtd::flush_domain`](super::Vtd::flush_domain)) and then calls
/// [`reclaim`](Self::reclaim) to free the table frames that fell out of
/// use (they are kept until then because the unit may still walk them).
#[derive(Debug)]
pub struct SlTables {
    root: u64,
    config: SlConfig,
    retired: Vec<u64>,
}

impl SlTables {
    /// Empty tables (every IOVA unmapped): allocates the top-level table.
    /// 1 GiB pages are only used together with 2 MiB pages (splitting one
    /// makes 2 MiB pages).
    pub fn new(mem: &mut impl TableMemory, mut config: SlConfig) -> Result<Self, VtdError> {
        config.superpage_1g &= config.superpage_2m;
        let mut tables = Self {
            root: 0,
            config,
            retired: Vec::new(),
        };
        tables.root = tables.alloc(mem)?;
        Ok(tables)
    }

    /// The host-physical address of the top-level table (the context
    /// entry's SLPTPTR).
    pub const fn root(&self) -> u64 {
        self.root
    }

    /// The shape the tables were built with.
    pub const fn config(&self) -> SlConfig {
        self.config
    }

    /// Table frames waiting for [`reclaim`](Self::reclaim).
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Maps `[iova, iova + len)` to `[hpa, hpa + len)`, read-only or
    /// read-write, replacing whatever was mapped there. All three must be
    /// multiples of 4 KiB and `len` non-zero; the range must lie below the
    /// tables' input width and `hpa + len` below 2^52. Large pages are used
    /// where the configuration allows and both addresses and the length
    /// line up.
    ///
    /// DMA writes to `0xfee0_0000..=0xfeef_ffff` are interrupt requests and
    /// never translated, so a mapping there is unreachable for devices.
    ///
    /// On [`VtdError::NoMemory`] the range may be partly mapped; unmap it.
    /// Replacing a present mapping needs an IOTLB flush like an unmap does.
    /// When the unit caches not-present entries (CAP.CM) even a first
    /// mapping needs one ([`Vtd::sync_after_map`](super::Vtd::sync_after_map)).
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        hpa: u64,
        len: u64,
        writable: bool,
    ) -> Result<(), VtdError> {
        let end = self.check_range(iova, len)?;
        if hpa % PAGE != 0 || hpa.checked_add(len).is_none_or(|e| e > SL_ADDR + PAGE) {
            return Err(VtdError::BadRange { iova, len });
        }
        let perms = if writable { SL_R | SL_W } else { SL_R };
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
    /// input width). Unmapped parts of the range are skipped; a large page
    /// partly inside the range is split first, which needs a table frame
    /// ([`VtdError::NoMemory`] if there is none; the range may then be
    /// partly unmapped). Tables left empty are retired.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        len: u64,
    ) -> Result<(), VtdError> {
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
            if !present(e) {
                return None;
            }
            writable &= e & SL_W != 0;
            if is_leaf(e, level) {
                if e & SL_R == 0 {
                    return None;
                }
                let hpa = (e & SL_ADDR & !(span(level) - 1)) | (iova & (span(level) - 1));
                return Some((hpa, writable));
            }
            table = e & SL_ADDR;
        }
        None
    }

    /// Frees the table frames retired by earlier `map` and `unmap` calls.
    /// Call it only after the IOTLB of every unit using these tables was
    /// invalidated for the domain.
    pub fn reclaim(&mut self, mem: &mut impl TableMemory) {
        for frame in self.retired.drain(..) {
            mem.free(frame);
        }
    }

    /// Frees every table frame. No context entry may point at these
    /// tables any more and the IOTLB must have been invalidated.
    pub fn destroy(mut self, mem: &mut impl TableMemory) {
        let top = self.config.levels.count();
        self.retire_table(mem, self.root, top);
        self.reclaim(mem);
    }

    fn check_range(&self, iova: u64, len: u64) -> Result<u64, VtdError> {
        let limit = 1u64 << self.config.levels.width();
        match iova.checked_add(len) {
            Some(end) if iova % PAGE == 0 && len % PAGE == 0 && len != 0 && end <= limit => Ok(end),
            _ => Err(VtdError::BadRange { iova, len }),
        }
    }

    fn alloc(&mut self, mem: &mut impl TableMemory) -> Result<u64, VtdError> {
        let frame = mem.alloc_zeroed().ok_or(VtdError::NoMemory)?;
        if !self.config.coherent {
            mem.flush(frame, PAGE);
        }
        Ok(frame)
    }

    fn write(&self, mem: &mut impl TableMemory, at: u64, v: u64) {
        mem.write64(at, v);
        if !self.config.coherent {
            mem.flush(at, 8);
        }
    }

    fn large_page_allowed(&self, level: u32) -> bool {
        match level {
            2 => self.config.superpage_2m,
            3 => self.config.superpage_1g,
            _ => false,
        }
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
    ) -> Result<(), VtdError> {
        let size = span(level);
        let mut at = start;
        while at < end {
            let base = at & !(size - 1);
            let next = (base + size).min(end);
            let slot = table + index(at, level) * 8;
            let target = at.wrapping_add(delta);
            let whole = at == base && next - base == size;
            if level == 1 || (whole && target % size == 0 && self.large_page_allowed(level)) {
                let old = mem.read64(slot);
                let ps = if level == 1 { 0 } else { SL_PS };
                self.write(mem, slot, target | ps | perms);
                if present(old) && !is_leaf(old, level) {
                    self.retire_table(mem, old & SL_ADDR, level - 1);
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
    ) -> Result<(), VtdError> {
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
            let whole = base >= start && next - base == size;
            if whole {
                self.write(mem, slot, 0);
                if !is_leaf(e, level) {
                    self.retire_table(mem, e & SL_ADDR, level - 1);
                }
                continue;
            }
            let child = self.child_table(mem, slot, level)?;
            self.unmap_in(mem, child, level - 1, base.max(start), next)?;
            if (0..ENTRIES).all(|i| !present(mem.read64(child + i * 8))) {
                self.write(mem, slot, 0);
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
    ) -> Result<u64, VtdError> {
        let e = mem.read64(slot);
        if present(e) && !is_leaf(e, level) {
            return Ok(e & SL_ADDR);
        }
        let child = self.alloc(mem)?;
        if present(e) {
            // Split the large page into 512 pages one level down, with the
            // same rights.
            let piece = span(level - 1);
            let ps = if level - 1 == 1 { 0 } else { SL_PS };
            let page = e & SL_ADDR & !(span(level) - 1);
            for i in 0..ENTRIES {
                self.write(
                    mem,
                    child + i * 8,
                    (page + i * piece) | ps | (e & (SL_R | SL_W)),
                );
            }
        }
        self.write(mem, slot, child | SL_R | SL_W);
        Ok(child)
    }

    /// Retires `table` (at `level`) and every table below it.
    fn retire_table(&mut self, mem: &mut impl TableMemory, table: u64, level: u32) {
        if level > 1 {
            for i in 0..ENTRIES {
                let e = mem.read64(table + i * 8);
                if present(e) && !is_leaf(e, level) {
                    self.retire_table(mem, e & SL_ADDR, level - 1);
                }
            }
        }
        self.retired.push(table);
    }
}
