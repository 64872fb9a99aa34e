//! The radix page-table builder every table the hypervisor hands to
//! hardware is made with: the IOMMUs' DMA tables (IOVA to host-physical,
//! [`crate::iommu`]) and the domains' nested page tables (guest-physical to
//! host-physical, [`nested`]: AMD NPT and Intel EPT).
//!
//! Each table is a 4 KiB frame of 512 64-bit entries; the input address's
//! bits 12 + 9(n - 1) and up select the entry at level n (1 = 4 KiB
//! pages). An entry at level 2 or 3 may be a 2 MiB or 1 GiB leaf instead
//! of pointing at a table. What an entry's bits mean is the format's
//! [`EntryFormat`] (VT-d second-level, AMD-Vi I/O, NPT, EPT); how ranges
//! are mapped, large pages split, emptied tables retired and frames freed
//! is [`Radix`], the same for all of them.
//!
//! (The hypervisor's own identity map, built once at boot, is not made
//! here; see `hv`'s `arch::paging`.)

use alloc::vec::Vec;

pub mod nested;

/// Host memory for page tables: zeroed 4 KiB frames, and 64-bit accesses
/// to them by host-physical address.
///
/// Accesses are plain memory accesses; the IOMMU drivers order their
/// writes so that a unit never sees a half-written entry become present
/// (they write the upper half of a 128-bit entry first).
pub trait TableMemory {
    /// A zeroed, 4 KiB-aligned frame, or `None` when memory is exhausted.
    fn alloc_zeroed(&mut self) -> Option<u64>;

    /// Returns a frame [`alloc_zeroed`](Self::alloc_zeroed) gave out.
    fn free(&mut self, hpa: u64);

    /// Reads the 64-bit word at `hpa` (8-byte aligned, inside a frame
    /// this memory gave out). This must be a volatile read: an IOMMU
    /// writes completion status words into this memory while the driver
    /// polls them.
    fn read64(&mut self, hpa: u64) -> u64;

    /// Writes the 64-bit word at `hpa` (8-byte aligned, inside a frame
    /// this memory gave out).
    fn write64(&mut self, hpa: u64, v: u64);

    /// Writes `[hpa, hpa + len)` back from the CPU caches to memory
    /// (`clflush` of every line, then a fence).
    ///
    /// Called after table writes only when the unit's table walks do not
    /// snoop the caches (VT-d ECAP.C clear); the default does nothing,
    /// which is right for coherent units (and for QEMU's) and for the
    /// CPU's own nested walks.
    fn flush(&mut self, hpa: u64, len: u64) {
        let _ = (hpa, len);
    }
}

/// Bytes in a table frame and in the smallest page.
const PAGE: u64 = 4096;
/// Entries in a table.
const ENTRIES: u64 = 512;

/// How one kind of table encodes an entry: constants only, one value per
/// format (VT-d's second-level and AMD-Vi's I/O tables in
/// [`crate::iommu`], [`nested::NPT`] and [`nested::EPT`]), so that one walk
/// serves them all with no branches on the format.
#[derive(Debug)]
pub struct EntryFormat {
    /// The bits holding the next table or the page.
    pub addr: u64,
    /// An entry is present (maps a page or points at a table) when any of
    /// these bits is set.
    pub present: u64,
    /// A present entry at level 2 or above maps a large page rather than
    /// pointing at a table when its `large_mask` bits equal `large_is`.
    pub large_mask: u64,
    /// See `large_mask`.
    pub large_is: u64,
    /// Set in every leaf, besides its rights.
    pub leaf: u64,
    /// Set in a leaf at level 2 or above.
    pub leaf_large: u64,
    /// A table pointer at level n: these bits (granting every right, the
    /// leaves below decide) plus `table_level` times n - 1.
    pub table: u64,
    /// See `table`.
    pub table_level: u64,
    /// The rights bits (and, where the format has them, memory type and
    /// execute rights), which a large page hands on to the pages it is
    /// split into.
    pub rights: u64,
    /// The rights of a read-only mapping of memory.
    pub read_only: u64,
    /// The rights of a read-write mapping of memory.
    pub read_write: u64,
    /// The rights of a read-write mapping of device memory (MMIO);
    /// formats with memory types make it uncached.
    pub device: u64,
    /// A walk faults at a present entry without this bit.
    pub read: u64,
    /// Writes go through only if every entry on the walk has this bit.
    pub write: u64,
    /// Whether unmapping retires the tables it leaves empty. The IOMMUs'
    /// tables do (their owners reclaim them after invalidating the
    /// units); nested page tables keep them until the domain dies, as
    /// nothing tells them when the CPUs' cached walks are gone, and their
    /// number is bounded by the guest-physical space they cover.
    pub prune: bool,
}

impl EntryFormat {
    /// Whether `e` is present.
    #[inline]
    const fn is_present(&self, e: u64) -> bool {
        e & self.present != 0
    }

    /// Whether the present entry `e` found at `level` maps memory rather
    /// than a table.
    #[inline]
    const fn is_leaf(&self, e: u64, level: u32) -> bool {
        level == 1 || e & self.large_mask == self.large_is
    }

    /// An entry at `level` mapping the page at `hpa` (aligned to the
    /// level's span) with `rights`.
    #[inline]
    const fn make_leaf(&self, hpa: u64, level: u32, rights: u64) -> u64 {
        hpa | self.leaf | rights | if level > 1 { self.leaf_large } else { 0 }
    }

    /// An entry at `level` pointing at the table at `frame`.
    #[inline]
    const fn make_table(&self, frame: u64, level: u32) -> u64 {
        frame | self.table | (self.table_level * (level as u64 - 1))
    }
}

/// What a mapping grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Memory, read-only.
    ReadOnly,
    /// Memory, read-write.
    ReadWrite,
    /// Device memory, read-write.
    Device,
}

impl Access {
    /// The rights bits of this access in `format`.
    const fn bits(self, format: &EntryFormat) -> u64 {
        match self {
            Self::ReadOnly => format.read_only,
            Self::ReadWrite => format.read_write,
            Self::Device => format.device,
        }
    }
}

/// Why a table operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// No frame for a table.
    NoMemory,
    /// A range that is not 4 KiB aligned, is empty, lies beyond the
    /// tables' input width, or (for a mapping) whose host end is above
    /// what an entry holds.
    BadRange {
        /// Start of the range.
        iova: u64,
        /// Length of the range.
        len: u64,
    },
}

/// The shape of a set of tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of levels (3 or 4), which fixes the input width.
    pub levels: u32,
    /// Use 2 MiB leaves where addresses and length allow.
    pub large_2m: bool,
    /// Use 1 GiB leaves where addresses and length allow.
    pub large_1g: bool,
    /// The unit's table walks snoop the caches; when false every table
    /// write is followed by [`TableMemory::flush`].
    pub coherent: bool,
}

/// Bytes covered by one entry at `level` (1 = 4 KiB pages).
const fn span(level: u32) -> u64 {
    PAGE << (9 * (level - 1))
}

/// The address of the entry for `iova` in `table` at `level`.
const fn slot(table: u64, iova: u64, level: u32) -> u64 {
    table + ((iova >> (12 + 9 * (level - 1))) & (ENTRIES - 1)) * 8
}

/// One set of tables (a domain's) in one [`EntryFormat`].
///
/// The tables only change memory; table frames that fall out of use are
/// retired and freed only by [`reclaim`](Self::reclaim), after the caller
/// invalidated the units' caches (they may still walk them until then).
#[derive(Debug)]
pub struct Radix {
    root: u64,
    shape: Shape,
    format: &'static EntryFormat,
    retired: Vec<u64>,
}

impl Radix {
    /// Empty tables in `format` (every IOVA unmapped): allocates the
    /// top-level table.
    pub fn new(
        mem: &mut impl TableMemory,
        shape: Shape,
        format: &'static EntryFormat,
    ) -> Result<Self, TableError> {
        let mut tables = Self {
            root: 0,
            shape,
            format,
            retired: Vec::new(),
        };
        tables.root = tables.alloc(mem)?;
        Ok(tables)
    }

    /// The host-physical address of the top-level table.
    pub const fn root(&self) -> u64 {
        self.root
    }

    /// Table frames waiting for [`reclaim`](Self::reclaim).
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// The input address width in bits.
    const fn width(&self) -> u32 {
        12 + 9 * self.shape.levels
    }

    /// Maps `[iova, iova + len)` to `[hpa, hpa + len)` read-only or
    /// read-write, replacing whatever was mapped there; see the vendors'
    /// `map` for the rules.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        hpa: u64,
        len: u64,
        writable: bool,
    ) -> Result<(), TableError> {
        let access = if writable {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        self.map_as(mem, iova, hpa, len, access)
    }

    /// Maps `[iova, iova + len)` to `[hpa, hpa + len)` with `access`,
    /// replacing whatever was mapped there. All three must be multiples
    /// of 4 KiB and `len` non-zero; the range must lie below the input
    /// width and `hpa + len` at or below 2^52. Large pages are used where
    /// the shape allows and both addresses and the length line up.
    pub fn map_as(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        hpa: u64,
        len: u64,
        access: Access,
    ) -> Result<(), TableError> {
        let end = self.check_range(iova, len)?;
        self.check_host(iova, hpa, len)?;
        let walk = MapWalk {
            delta: hpa.wrapping_sub(iova),
            rights: access.bits(self.format),
        };
        self.map_in(mem, self.root, self.shape.levels, iova, end, walk)
    }

    /// Maps the 4 KiB page at `iova` to `hpa` with `access` if nothing
    /// maps it yet: `Ok(false)`, with nothing changed, when a page or a
    /// large page maps it already. The tables on the way are made as
    /// needed (and stay on failure).
    pub fn map_free(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        hpa: u64,
        access: Access,
    ) -> Result<bool, TableError> {
        self.check_range(iova, PAGE)?;
        self.check_host(iova, hpa, PAGE)?;
        let f = self.format;
        let mut table = self.root;
        for level in (2..=self.shape.levels).rev() {
            let slot = slot(table, iova, level);
            let e = mem.read64(slot);
            if f.is_present(e) && f.is_leaf(e, level) {
                return Ok(false);
            }
            table = self.child_table(mem, slot, level)?;
        }
        let slot = slot(table, iova, 1);
        if f.is_present(mem.read64(slot)) {
            return Ok(false);
        }
        self.write(mem, slot, f.make_leaf(hpa, 1, access.bits(f)));
        Ok(true)
    }

    /// Unmaps `[iova, iova + len)`, splitting large pages partly inside
    /// it (the pieces keep the large page's rights) and, where the format
    /// prunes, retiring tables left empty. Unmapped parts are skipped.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        iova: u64,
        len: u64,
    ) -> Result<(), TableError> {
        let end = self.check_range(iova, len)?;
        self.unmap_in(mem, self.root, self.shape.levels, iova, end)
    }

    /// Where `iova` goes: the host-physical address and whether writes are
    /// allowed, or `None` if an access there faults.
    pub fn translate(&self, mem: &mut impl TableMemory, iova: u64) -> Option<(u64, bool)> {
        if iova >> self.width() != 0 {
            return None;
        }
        let f = self.format;
        let mut table = self.root;
        let mut writable = true;
        for level in (1..=self.shape.levels).rev() {
            let e = mem.read64(slot(table, iova, level));
            if !f.is_present(e) || e & f.read == 0 {
                return None;
            }
            writable &= e & f.write != 0;
            if f.is_leaf(e, level) {
                let offset = span(level) - 1;
                return Some(((e & f.addr & !offset) | (iova & offset), writable));
            }
            table = e & f.addr;
        }
        None
    }

    /// Frees the retired table frames.
    pub fn reclaim(&mut self, mem: &mut impl TableMemory) {
        for frame in self.retired.drain(..) {
            mem.free(frame);
        }
    }

    /// Frees every table frame.
    pub fn destroy(mut self, mem: &mut impl TableMemory) {
        self.free_all(mem);
    }

    /// Frees every table frame, for an owner that is being dropped: the
    /// tables must not be used afterwards (their root is gone).
    pub fn free_all(&mut self, mem: &mut impl TableMemory) {
        self.retire_table(mem, self.root, self.shape.levels);
        self.reclaim(mem);
    }

    fn check_range(&self, iova: u64, len: u64) -> Result<u64, TableError> {
        let limit = 1u64 << self.width();
        match iova.checked_add(len) {
            Some(end) if iova % PAGE == 0 && len % PAGE == 0 && len != 0 && end <= limit => Ok(end),
            _ => Err(TableError::BadRange { iova, len }),
        }
    }

    fn check_host(&self, iova: u64, hpa: u64, len: u64) -> Result<(), TableError> {
        if hpa % PAGE != 0
            || hpa
                .checked_add(len)
                .is_none_or(|e| e > self.format.addr + PAGE)
        {
            return Err(TableError::BadRange { iova, len });
        }
        Ok(())
    }

    fn alloc(&mut self, mem: &mut impl TableMemory) -> Result<u64, TableError> {
        let frame = mem.alloc_zeroed().ok_or(TableError::NoMemory)?;
        if !self.shape.coherent {
            mem.flush(frame, PAGE);
        }
        Ok(frame)
    }

    fn write(&self, mem: &mut impl TableMemory, at: u64, v: u64) {
        mem.write64(at, v);
        if !self.shape.coherent {
            mem.flush(at, 8);
        }
    }

    fn large_page_allowed(&self, level: u32) -> bool {
        match level {
            2 => self.shape.large_2m,
            3 => self.shape.large_1g,
            _ => false,
        }
    }

    /// Maps `[start, end)` (inside the span of `table`, at `level`) as
    /// `walk` says.
    fn map_in(
        &mut self,
        mem: &mut impl TableMemory,
        table: u64,
        level: u32,
        start: u64,
        end: u64,
        walk: MapWalk,
    ) -> Result<(), TableError> {
        let size = span(level);
        let mut at = start;
        while at < end {
            let base = at & !(size - 1);
            let next = (base + size).min(end);
            let slot = slot(table, at, level);
            let target = at.wrapping_add(walk.delta);
            let whole = at == base && next - base == size;
            if level == 1 || (whole && target % size == 0 && self.large_page_allowed(level)) {
                let f = self.format;
                let old = mem.read64(slot);
                self.write(mem, slot, f.make_leaf(target, level, walk.rights));
                if f.is_present(old) && !f.is_leaf(old, level) {
                    self.retire_table(mem, old & f.addr, level - 1);
                }
            } else {
                let child = self.child_table(mem, slot, level)?;
                self.map_in(mem, child, level - 1, at, next, walk)?;
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
    ) -> Result<(), TableError> {
        let f = self.format;
        let size = span(level);
        let mut at = start;
        while at < end {
            let base = at & !(size - 1);
            let next = (base + size).min(end);
            let slot = slot(table, at, level);
            let e = mem.read64(slot);
            at = next;
            if !f.is_present(e) {
                continue;
            }
            if base >= start && next - base == size {
                self.write(mem, slot, 0);
                if !f.is_leaf(e, level) {
                    self.retire_table(mem, e & f.addr, level - 1);
                }
                continue;
            }
            let child = self.child_table(mem, slot, level)?;
            self.unmap_in(mem, child, level - 1, base.max(start), next)?;
            if f.prune && (0..ENTRIES).all(|i| !f.is_present(mem.read64(child + i * 8))) {
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
    ) -> Result<u64, TableError> {
        let f = self.format;
        let e = mem.read64(slot);
        if f.is_present(e) && !f.is_leaf(e, level) {
            return Ok(e & f.addr);
        }
        let child = self.alloc(mem)?;
        if f.is_present(e) {
            // Split the large page into 512 pages one level down, with the
            // same rights.
            let piece = span(level - 1);
            let page = e & f.addr & !(span(level) - 1);
            for i in 0..ENTRIES {
                let leaf = f.make_leaf(page + i * piece, level - 1, e & f.rights);
                self.write(mem, child + i * 8, leaf);
            }
        }
        self.write(mem, slot, f.make_table(child, level));
        Ok(child)
    }

    /// Retires `table` (at `level`) and every table below it.
    fn retire_table(&mut self, mem: &mut impl TableMemory, table: u64, level: u32) {
        if level > 1 {
            for i in 0..ENTRIES {
                let e = mem.read64(table + i * 8);
                if self.format.is_present(e) && !self.format.is_leaf(e, level) {
                    self.retire_table(mem, e & self.format.addr, level - 1);
                }
            }
        }
        self.retired.push(table);
    }
}

/// What a mapping writes: host address minus IOVA, and the rights bits.
#[derive(Clone, Copy)]
struct MapWalk {
    delta: u64,
    rights: u64,
}
