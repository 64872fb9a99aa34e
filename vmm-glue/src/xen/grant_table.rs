//! Grant tables, version 1 (`xen/include/public/grant_table.h`).
//!
//! A domain grants another access to one of its frames by filling a
//! [`GrantEntryV1`] in its grant table (frames it set up with
//! `GNTTABOP_setup_table` or `XENMEM_add_to_physmap`). The hypervisor sets
//! `GTF_reading`/`GTF_writing` in the entry while the grant is mapped.

use core::mem::{offset_of, size_of};

/// A grant reference: an index into the granter's table.
pub type GrantRef = u32;

/// `GNTTABOP_*` command numbers (first argument of `grant_table_op`).
pub mod op {
    /// Maps a granted frame.
    pub const MAP_GRANT_REF: u32 = 0;
    /// Unmaps a mapping by handle.
    pub const UNMAP_GRANT_REF: u32 = 1;
    /// Sets up the caller's table frames.
    pub const SETUP_TABLE: u32 = 2;
    /// Dumps a table to the console.
    pub const DUMP_TABLE: u32 = 3;
    /// Transfers a page.
    pub const TRANSFER: u32 = 4;
    /// Copies between granted and own frames.
    pub const COPY: u32 = 5;
    /// Reports the table's current and maximum size.
    pub const QUERY_SIZE: u32 = 6;
    /// Unmaps and replaces a mapping.
    pub const UNMAP_AND_REPLACE: u32 = 7;
    /// Selects the table format.
    pub const SET_VERSION: u32 = 8;
    /// Version 2 status frames.
    pub const GET_STATUS_FRAMES: u32 = 9;
    /// Reports the table format.
    pub const GET_VERSION: u32 = 10;
    /// Swaps two entries.
    pub const SWAP_GRANT_REF: u32 = 11;
    /// Cache maintenance on granted frames.
    pub const CACHE_FLUSH: u32 = 12;
}

/// `GTF_*`: bits of [`GrantEntryV1::flags`].
pub mod gtf {
    /// Type: the entry grants nothing.
    pub const INVALID: u16 = 0;
    /// Type: `domid` may map or copy `frame`.
    pub const PERMIT_ACCESS: u16 = 1;
    /// Type: `domid` may transfer a frame to us.
    pub const ACCEPT_TRANSFER: u16 = 2;
    /// Type: a transitive grant (version 2 only).
    pub const TRANSITIVE: u16 = 3;
    /// The type bits.
    pub const TYPE_MASK: u16 = 3;
    /// `permit_access`: the grantee may only read.
    pub const READONLY: u16 = 1 << 2;
    /// Set by the hypervisor while the frame is mapped (or being copied).
    pub const READING: u16 = 1 << 3;
    /// Set by the hypervisor while the frame is mapped writable.
    pub const WRITING: u16 = 1 << 4;
    /// Cache attribute: write-through.
    pub const PWT: u16 = 1 << 5;
    /// Cache attribute: cache disable.
    pub const PCD: u16 = 1 << 6;
    /// Cache attribute: PAT.
    pub const PAT: u16 = 1 << 7;
    /// A sub-page grant (version 2 only).
    pub const SUB_PAGE: u16 = 1 << 8;
    /// `accept_transfer`: the transfer is committed.
    pub const TRANSFER_COMMITTED: u16 = 1 << 2;
    /// `accept_transfer`: the transfer is complete.
    pub const TRANSFER_COMPLETED: u16 = 1 << 3;
}

/// `GNTMAP_*`: flags of `gnttab_map_grant_ref`.
pub mod gntmap {
    /// Map for device (IOMMU) access.
    pub const DEVICE_MAP: u32 = 1 << 0;
    /// Map into the caller's address space.
    pub const HOST_MAP: u32 = 1 << 1;
    /// Map read-only.
    pub const READONLY: u32 = 1 << 2;
    /// User-mode mapping.
    pub const APPLICATION_MAP: u32 = 1 << 3;
    /// `host_addr` is the address of a PTE.
    pub const CONTAINS_PTE: u32 = 1 << 4;
}

/// `GNTCOPY_*`: flags of [`GnttabCopy`].
pub mod gntcopy {
    /// `source.u` is a grant reference (else a frame of `DOMID_SELF`).
    pub const SOURCE_GREF: u16 = 1 << 0;
    /// `dest.u` is a grant reference (else a frame of `DOMID_SELF`).
    pub const DEST_GREF: u16 = 1 << 1;
}

/// `GNTST_*`: the per-operation `status` values. All errors are negative.
pub mod gntst {
    /// Normal return.
    pub const OKAY: i16 = 0;
    /// General undefined error.
    pub const GENERAL_ERROR: i16 = -1;
    /// Unrecognised domain id.
    pub const BAD_DOMAIN: i16 = -2;
    /// Unrecognised or inappropriate gntref.
    pub const BAD_GNTREF: i16 = -3;
    /// Unrecognised or inappropriate handle.
    pub const BAD_HANDLE: i16 = -4;
    /// Inappropriate virtual address to map.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// Inappropriate device address to unmap.
    pub const BAD_DEV_ADDR: i16 = -6;
    /// Out of space in I/O MMU.
    pub const NO_DEVICE_SPACE: i16 = -7;
    /// Not enough privilege for operation.
    pub const PERMISSION_DENIED: i16 = -8;
    /// Specified page was invalid for op.
    pub const BAD_PAGE: i16 = -9;
    /// Copy arguments cross page boundary.
    pub const BAD_COPY_ARG: i16 = -10;
    /// Transfer page address too large.
    pub const ADDRESS_TOO_BIG: i16 = -11;
    /// Operation not done; try again.
    pub const EAGAIN: i16 = -12;
    /// Out of space (handles etc).
    pub const NO_SPACE: i16 = -13;
}

/// `grant_entry_v1_t` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: u16,
    /// The granted frame (`permit_access`) or the transferred frame.
    pub frame: u32,
}

const _: () = assert!(
    size_of::<GrantEntryV1>() == 8
        && offset_of!(GrantEntryV1, flags) == 0
        && offset_of!(GrantEntryV1, domid) == 2
        && offset_of!(GrantEntryV1, frame) == 4
);

impl GrantEntryV1 {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        b[0..2].copy_from_slice(&self.flags.to_le_bytes());
        b[2..4].copy_from_slice(&self.domid.to_le_bytes());
        b[4..8].copy_from_slice(&self.frame.to_le_bytes());
        b
    }

    /// The entry held in guest-memory bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        Self {
            flags: u16::from_le_bytes([b[0], b[1]]),
            domid: u16::from_le_bytes([b[2], b[3]]),
            frame: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// `struct gnttab_query_size` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: domain to query (`DOMID_SELF`).
    pub dom: u16,
    /// OUT: frames in use.
    pub nr_frames: u32,
    /// OUT: frames the domain may use.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_setup_table` (24 bytes on x86_64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// IN: domain (`DOMID_SELF`).
    pub dom: u16,
    /// IN: frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// IN: guest handle to an array of `xen_pfn_t` to fill.
    pub frame_list: u64,
}

/// `struct gnttab_set_version` (4 bytes): IN version, OUT the version in use.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetVersion {
    /// 1 or 2.
    pub version: u32,
}

/// `struct gnttab_map_grant_ref` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// IN: where to map.
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: grant reference.
    pub ref_: GrantRef,
    /// IN: granting domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmapping.
    pub handle: u32,
    /// OUT: bus address for device mappings.
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// IN: the mapping's address.
    pub host_addr: u64,
    /// IN: the mapping's bus address.
    pub dev_bus_addr: u64,
    /// IN: handle from the map.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_copy_ptr` (16 bytes on x86_64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// The union `{ grant_ref_t ref; xen_pfn_t gmfn; }`.
    pub u: u64,
    /// The domain (`DOMID_SELF` for a frame).
    pub domid: u16,
    /// Byte offset in the page.
    pub offset: u16,
}

/// `struct gnttab_copy` (40 bytes on x86_64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopy {
    /// IN: where to copy from.
    pub source: GnttabCopyPtr,
    /// IN: where to copy to.
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

const _: () = assert!(
    size_of::<GnttabQuerySize>() == 16
        && offset_of!(GnttabQuerySize, nr_frames) == 4
        && offset_of!(GnttabQuerySize, max_nr_frames) == 8
        && offset_of!(GnttabQuerySize, status) == 12
);
const _: () = assert!(
    size_of::<GnttabSetupTable>() == 24
        && offset_of!(GnttabSetupTable, nr_frames) == 4
        && offset_of!(GnttabSetupTable, status) == 8
        && offset_of!(GnttabSetupTable, frame_list) == 16
);
const _: () = assert!(size_of::<GnttabSetVersion>() == 4);
const _: () = assert!(
    size_of::<GnttabMapGrantRef>() == 32
        && offset_of!(GnttabMapGrantRef, flags) == 8
        && offset_of!(GnttabMapGrantRef, ref_) == 12
        && offset_of!(GnttabMapGrantRef, dom) == 16
        && offset_of!(GnttabMapGrantRef, status) == 18
        && offset_of!(GnttabMapGrantRef, handle) == 20
        && offset_of!(GnttabMapGrantRef, dev_bus_addr) == 24
);
const _: () = assert!(
    size_of::<GnttabUnmapGrantRef>() == 24
        && offset_of!(GnttabUnmapGrantRef, dev_bus_addr) == 8
        && offset_of!(GnttabUnmapGrantRef, handle) == 16
        && offset_of!(GnttabUnmapGrantRef, status) == 20
);
const _: () = assert!(
    size_of::<GnttabCopyPtr>() == 16
        && offset_of!(GnttabCopyPtr, domid) == 8
        && offset_of!(GnttabCopyPtr, offset) == 10
        && size_of::<GnttabCopy>() == 40
        && offset_of!(GnttabCopy, dest) == 16
        && offset_of!(GnttabCopy, len) == 32
        && offset_of!(GnttabCopy, flags) == 34
        && offset_of!(GnttabCopy, status) == 36
);
