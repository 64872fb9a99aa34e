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
//!
//! This module supplies the entry format; the walk (mapping, splitting
//! large pages, retiring emptied tables) is the IOMMUs' shared `radix`
//! builder.

use bitfield::bitfield;

use super::AmdViError;
use crate::iommu::TableMemory;
use crate::radix::{EntryFormat, Radix, Shape, TableError};

bitfield! {
    /// An I/O page table entry.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct IoPte(pub u64);
    impl Debug;
    /// PR: present.
    pub present, set_present: 0;
    /// Next Level: the level of the table pointed to; 0 in a leaf.
    pub u8, next_level, set_next_level: 11, 9;
    /// The frame number of the next table or the page.
    pub frame, set_frame: 51, 12;
    /// IR: read permission.
    pub ir, set_ir: 61;
    /// IW: write permission.
    pub iw, set_iw: 62;
}

/// Entry bit 0: present ([`IoPte::present`]).
pub const PTE_PR: u64 = 1 << 0;
/// Entry bits 11:9: Next Level ([`IoPte::next_level`]).
pub const PTE_NEXT_SHIFT: u32 = 9;
/// Entry bits 51:12: the next table or the page ([`IoPte::frame`]).
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Entry bit 61: read permission ([`IoPte::ir`]).
pub const PTE_IR: u64 = 1 << 61;
/// Entry bit 62: write permission ([`IoPte::iw`]).
pub const PTE_IW: u64 = 1 << 62;

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

/// The I/O page table entry format: present with PR; a leaf has Next
/// Level 0 (above level 1, a page of the level's default size), a
/// directory entry the level below it; rights are intersected along the
/// walk, and any entry without IR faults.
static IO_FORMAT: EntryFormat = EntryFormat {
    addr: PTE_ADDR,
    present: PTE_PR,
    large_mask: 7 << PTE_NEXT_SHIFT,
    large_is: 0,
    leaf: PTE_PR,
    leaf_large: 0,
    table: PTE_PR | PTE_IR | PTE_IW,
    table_level: 1 << PTE_NEXT_SHIFT,
    rights: PTE_IR | PTE_IW,
    read_only: PTE_IR,
    read_write: PTE_IR | PTE_IW,
    device: PTE_IR | PTE_IW,
    read: PTE_IR,
    write: PTE_IW,
    prune: true,
};

/// The driver's error for a table error.
const fn amdvi_error(e: TableError) -> AmdViError {
    match e {
        TableError::NoMemory => AmdViError::NoMemory,
        TableError::BadRange { iova, len } => AmdViError::BadRange { iova, len },
    }
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
    tables: Radix,
    config: IoConfig,
}

impl IoTables {
    /// Empty tables (every IOVA unmapped): allocates the top-level table.
    pub fn new(mem: &mut impl TableMemory, config: IoConfig) -> Result<Self, AmdViError> {
        let shape = Shape {
            levels: config.levels.count(),
            large_2m: config.large_pages,
            large_1g: config.large_pages,
            coherent: true,
        };
        let tables = Radix::new(mem, shape, &IO_FORMAT).map_err(amdvi_error)?;
        Ok(Self { tables, config })
    }

    /// The host-physical address of the top-level table (the device table
    /// entry's Page Table Root Pointer).
    pub const fn root(&self) -> u64 {
        self.tables.root()
    }

    /// The shape the tables were built with.
    pub const fn config(&self) -> IoConfig {
        self.config
    }

    /// Table frames waiting for [`reclaim`](Self::reclaim).
    pub fn retired(&self) -> usize {
        self.tables.retired()
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
        self.tables
            .map(mem, iova, hpa, len, writable)
            .map_err(amdvi_error)
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
        self.tables.unmap(mem, iova, len).map_err(amdvi_error)
    }

    /// Where `iova` goes: the host-physical address and whether writes are
    /// allowed, or `None` if a DMA there faults.
    pub fn translate(&self, mem: &mut impl TableMemory, iova: u64) -> Option<(u64, bool)> {
        self.tables.translate(mem, iova)
    }

    /// Frees the table frames retired by earlier `map` and `unmap` calls.
    /// Call it only after every unit using these tables was flushed for
    /// the domain.
    pub fn reclaim(&mut self, mem: &mut impl TableMemory) {
        self.tables.reclaim(mem);
    }

    /// Frees every table frame. No device table entry may point at these
    /// tables any more and the domain must have been flushed.
    pub fn destroy(self, mem: &mut impl TableMemory) {
        self.tables.destroy(mem);
    }
}
