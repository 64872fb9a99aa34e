//! The entry formats of nested paging, the second-level tables a domain's
//! guest-physical addresses go through: AMD NPT uses the ordinary
//! long-mode entry layout (APM vol. 2, 15.25.5), Intel EPT its own (SDM
//! vol. 3, 29.3.2). Both are 4-level tables with 2 MiB leaves for the
//! domain's RAM chunks and 4 KiB leaves for the rest.
//!
//! What each entry grants, by [`Access`](super::Access):
//!
//! | | NPT | EPT |
//! |---|---|---|
//! | `ReadWrite` (RAM) | P, RW, U/S | R, W, X, write-back |
//! | `ReadOnly` | P, U/S | R, X, write-back |
//! | `Device` (MMIO) | P, RW, U/S, PWT, PCD (UC with the default PAT) | R, W, uncached (type 0) |
//! | a table | P, RW, U/S | R, W, X |
//!
//! NPT needs U/S at every level: nested walks are user-mode accesses.
//! Neither format sets EPT's "ignore PAT" or NPT's NX: the guest's own PAT
//! still applies to RAM, and every memory page is executable.

use super::{EntryFormat, Shape};

/// The shape of every domain's nested tables: 4 levels (48-bit
/// guest-physical addresses), 2 MiB leaves, walked by the CPU (coherent).
pub const SHAPE: Shape = Shape {
    levels: 4,
    large_2m: true,
    large_1g: false,
    coherent: true,
};

/// Entry bits 51:12 of both formats: the next table or the page.
pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Bit 7 in a level-2 or level-3 entry of both formats: a large page.
pub const LARGE: u64 = 1 << 7;

/// NPT: present.
pub const NPT_P: u64 = 1 << 0;
/// NPT: writable.
pub const NPT_RW: u64 = 1 << 1;
/// NPT: user (every level, or the nested walk faults).
pub const NPT_US: u64 = 1 << 2;
/// NPT: page-level write-through.
pub const NPT_PWT: u64 = 1 << 3;
/// NPT: page-level cache disable.
pub const NPT_PCD: u64 = 1 << 4;
/// NPT: no execute.
pub const NPT_NX: u64 = 1 << 63;

/// EPT: read.
pub const EPT_R: u64 = 1 << 0;
/// EPT: write.
pub const EPT_W: u64 = 1 << 1;
/// EPT: execute.
pub const EPT_X: u64 = 1 << 2;
/// EPT leaf bits 5:3: memory type write-back (6).
pub const EPT_WB: u64 = 6 << 3;
/// EPT leaf bits 5:3: the memory-type field (0 = uncached).
pub const EPT_TYPE: u64 = 7 << 3;
/// EPT leaf bit 6: ignore the guest's PAT.
pub const EPT_IPAT: u64 = 1 << 6;

/// AMD nested paging (NPT).
pub static NPT: EntryFormat = EntryFormat {
    addr: ADDR,
    present: NPT_P,
    large_mask: LARGE,
    large_is: LARGE,
    leaf: NPT_P,
    leaf_large: LARGE,
    table: NPT_P | NPT_RW | NPT_US,
    table_level: 0,
    rights: NPT_RW | NPT_US | NPT_PWT | NPT_PCD | NPT_NX,
    read_only: NPT_US,
    read_write: NPT_US | NPT_RW,
    device: NPT_US | NPT_RW | NPT_PWT | NPT_PCD,
    // An entry without U/S faults a nested walk.
    read: NPT_US,
    write: NPT_RW,
    prune: false,
};

/// Intel extended page tables (EPT).
pub static EPT: EntryFormat = EntryFormat {
    addr: ADDR,
    // Any of read, write or execute.
    present: EPT_R | EPT_W | EPT_X,
    large_mask: LARGE,
    large_is: LARGE,
    leaf: 0,
    leaf_large: LARGE,
    table: EPT_R | EPT_W | EPT_X,
    table_level: 0,
    rights: EPT_R | EPT_W | EPT_X | EPT_TYPE | EPT_IPAT,
    read_only: EPT_R | EPT_X | EPT_WB,
    read_write: EPT_R | EPT_W | EPT_X | EPT_WB,
    device: EPT_R | EPT_W,
    // This builder makes no execute-only pages.
    read: EPT_R,
    write: EPT_W,
    prune: false,
};

/// The EPT pointer of the tables at `root`: write-back paging structures
/// (bits 2:0) and a 4-level walk (bits 5:3 = levels - 1).
pub const fn ept_pointer(root: u64) -> u64 {
    root | 6 | (3 << 3)
}

#[cfg(test)]
mod tests;
