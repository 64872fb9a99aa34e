//! Second-level page tables: one set per domain, translating a device's
//! DMA address (IOVA, here the guest-physical address) to host-physical
//! memory (VT-d specification 3.7 and 9.8).
//!
//! Each table is a 4 KiB frame of 512 64-bit entries. An entry is present
//! when its Read (bit 0) or Write (bit 1) bit is set; bits 51:12 hold the
//! next table or the page; bit 7 (PS) in a level-2 or level-3 entry makes
//! it a 2 MiB or 1 GiB leaf. Access rights are the intersection along the
//! walk, so every non-leaf entry grants both.
//!
//! This module supplies the entry format; the walk (mapping, splitting
//! large pages, retiring emptied tables) is the shared `radix`
//! builder.

use bitfield::bitfield;

use super::VtdError;
use crate::radix::{EntryFormat, Radix, Shape, TableError, TableMemory};

bitfield! {
    /// A second-level entry.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct SlPte(pub u64);
    impl Debug;
    /// R: read access.
    pub read, set_read: 0;
    /// W: write access.
    pub write, set_write: 1;
    /// PS: the entry maps a 2 MiB (level 2) or 1 GiB (level 3) page.
    pub ps, set_ps: 7;
    /// ADDR: the frame number of the next table or the page.
    pub frame, set_frame: 51, 12;
}

/// Entry bit 0: read access ([`SlPte::read`]).
pub const SL_R: u64 = 1 << 0;
/// Entry bit 1: write access ([`SlPte::write`]).
pub const SL_W: u64 = 1 << 1;
/// Entry bit 7: page size ([`SlPte::ps`]).
pub const SL_PS: u64 = 1 << 7;
/// Entry bits 51:12: the address of the next table or the page
/// ([`SlPte::frame`]).
pub const SL_ADDR: u64 = 0x000f_ffff_ffff_f000;

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

/// The second-level entry format: present with R or W; PS makes a large
/// page; rights are intersected along the walk, so every table pointer
/// grants both, and a leaf without R faults.
static SL_FORMAT: EntryFormat = EntryFormat {
    addr: SL_ADDR,
    present: SL_R | SL_W,
    large_mask: SL_PS,
    large_is: SL_PS,
    leaf: 0,
    leaf_large: SL_PS,
    table: SL_R | SL_W,
    table_level: 0,
    rights: SL_R | SL_W,
    read_only: SL_R,
    read_write: SL_R | SL_W,
    device: SL_R | SL_W,
    read: SL_R,
    write: SL_W,
    prune: true,
};

/// The driver's error for a table error.
const fn vtd_error(e: TableError) -> VtdError {
    match e {
        TableError::NoMemory => VtdError::NoMemory,
        TableError::BadRange { iova, len } => VtdError::BadRange { iova, len },
    }
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
    tables: Radix,
    config: SlConfig,
}

impl SlTables {
    /// Empty tables (every IOVA unmapped): allocates the top-level table.
    /// 1 GiB pages are only used together with 2 MiB pages (splitting one
    /// makes 2 MiB pages).
    pub fn new(mem: &mut impl TableMemory, mut config: SlConfig) -> Result<Self, VtdError> {
        config.superpage_1g &= config.superpage_2m;
        let shape = Shape {
            levels: config.levels.count(),
            large_2m: config.superpage_2m,
            large_1g: config.superpage_1g,
            coherent: config.coherent,
        };
        let tables = Radix::new(mem, shape, &SL_FORMAT).map_err(vtd_error)?;
        Ok(Self { tables, config })
    }

    /// The host-physical address of the top-level table (the context
    /// entry's SLPTPTR).
    pub const fn root(&self) -> u64 {
        self.tables.root()
    }

    /// The shape the tables were built with.
    pub const fn config(&self) -> SlConfig {
        self.config
    }

    /// Table frames waiting for [`reclaim`](Self::reclaim).
    pub fn retired(&self) -> usize {
        self.tables.retired()
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
        self.tables
            .map(mem, iova, hpa, len, writable)
            .map_err(vtd_error)
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
        self.tables.unmap(mem, iova, len).map_err(vtd_error)
    }

    /// Where `iova` goes: the host-physical address and whether writes are
    /// allowed, or `None` if a DMA there faults.
    pub fn translate(&self, mem: &mut impl TableMemory, iova: u64) -> Option<(u64, bool)> {
        self.tables.translate(mem, iova)
    }

    /// Frees the table frames retired by earlier `map` and `unmap` calls.
    /// Call it only after the IOTLB of every unit using these tables was
    /// invalidated for the domain.
    pub fn reclaim(&mut self, mem: &mut impl TableMemory) {
        self.tables.reclaim(mem);
    }

    /// Frees every table frame. No context entry may point at these
    /// tables any more and the IOTLB must have been invalidated.
    pub fn destroy(self, mem: &mut impl TableMemory) {
        self.tables.destroy(mem);
    }
}
