//! The PVH start-of-day structures (`xen/include/public/arch-x86/hvm/start_info.h`).
//!
//! A PVH guest starts in 32-bit protected mode with paging off and `ebx`
//! holding the physical address of an [`HvmStartInfo`]. From it the guest
//! finds its command line, an array of [`HvmModlistEntry`] (initrd and other
//! modules), the RSDP and, from version 1 on, an array of
//! [`HvmMemmapTableEntry`] (its memory map). An address field of 0 means
//! "not present". All fields are little-endian.
//!
//! The structs mirror the C layout (checked at compile time below) and turn
//! into guest bytes through `to_bytes`, so no struct is ever reinterpreted
//! as memory.

use core::mem::{offset_of, size_of};

/// `XEN_HVM_START_MAGIC_VALUE`: "xEn3" with the 0x80 bit of the "E" set.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// The structure version this crate writes: 1 adds the memory map.
pub const XEN_HVM_START_INFO_VERSION: u32 = 1;

/// Memory-map entry types: the ACPI address range types.
pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
/// Reserved: the guest must not use it.
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
/// ACPI tables, reclaimable once read.
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
/// ACPI non-volatile storage.
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
/// Memory with detected errors.
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
/// Memory disabled by firmware.
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
/// Persistent memory.
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;
/// Xen-specific (OEM range): the shared info page.
pub const XEN_HVM_MEMMAP_TYPE_SHARED_INFO: u32 = 0xF000_0001;
/// Xen-specific (OEM range): grant table frames.
pub const XEN_HVM_MEMMAP_TYPE_GRANT_TABLE: u32 = 0xF000_0002;
/// Xen-specific (OEM range): the grant table v2 status frames.
pub const XEN_HVM_MEMMAP_TYPE_GNTTAB_STATUS: u32 = 0xF000_0003;
/// Xen-specific (OEM range): a region suitable for grant and foreign mappings.
pub const XEN_HVM_MEMMAP_TYPE_FOREIGN_REG: u32 = 0xF000_0004;

/// `struct hvm_start_info` (version 1 layout, 56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmStartInfo {
    /// [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// Structure version; [`XEN_HVM_START_INFO_VERSION`].
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Number of entries at `modlist_paddr`.
    pub nr_modules: u32,
    /// Physical address of an array of [`HvmModlistEntry`].
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP.
    pub rsdp_paddr: u64,
    /// Physical address of an array of [`HvmMemmapTableEntry`] (version 1).
    pub memmap_paddr: u64,
    /// Number of entries at `memmap_paddr`; 0 when there is no map (version 1).
    pub memmap_entries: u32,
    /// Must be zero (version 1).
    pub reserved: u32,
}

/// `struct hvm_modlist_entry` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmModlistEntry {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size of the module in bytes.
    pub size: u64,
    /// Physical address of the module's NUL-terminated command line.
    pub cmdline_paddr: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// `struct hvm_memmap_table_entry` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapTableEntry {
    /// Base address of the region.
    pub addr: u64,
    /// Size of the region in bytes.
    pub size: u64,
    /// `type` in the header: one of the `XEN_HVM_MEMMAP_TYPE_*` values.
    pub type_: u32,
    /// Must be zero.
    pub reserved: u32,
}

// The offsets drawn in start_info.h.
const _: () = assert!(
    size_of::<HvmStartInfo>() == 56
        && offset_of!(HvmStartInfo, magic) == 0
        && offset_of!(HvmStartInfo, version) == 4
        && offset_of!(HvmStartInfo, flags) == 8
        && offset_of!(HvmStartInfo, nr_modules) == 12
        && offset_of!(HvmStartInfo, modlist_paddr) == 16
        && offset_of!(HvmStartInfo, cmdline_paddr) == 24
        && offset_of!(HvmStartInfo, rsdp_paddr) == 32
        && offset_of!(HvmStartInfo, memmap_paddr) == 40
        && offset_of!(HvmStartInfo, memmap_entries) == 48
        && offset_of!(HvmStartInfo, reserved) == 52
);
const _: () = assert!(
    size_of::<HvmModlistEntry>() == 32
        && offset_of!(HvmModlistEntry, paddr) == 0
        && offset_of!(HvmModlistEntry, size) == 8
        && offset_of!(HvmModlistEntry, cmdline_paddr) == 16
        && offset_of!(HvmModlistEntry, reserved) == 24
);
const _: () = assert!(
    size_of::<HvmMemmapTableEntry>() == 24
        && offset_of!(HvmMemmapTableEntry, addr) == 0
        && offset_of!(HvmMemmapTableEntry, size) == 8
        && offset_of!(HvmMemmapTableEntry, type_) == 16
        && offset_of!(HvmMemmapTableEntry, reserved) == 20
);

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(b)
}

fn get_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}

impl HvmStartInfo {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put_u32(&mut b, offset_of!(Self, magic), self.magic);
        put_u32(&mut b, offset_of!(Self, version), self.version);
        put_u32(&mut b, offset_of!(Self, flags), self.flags);
        put_u32(&mut b, offset_of!(Self, nr_modules), self.nr_modules);
        put_u64(&mut b, offset_of!(Self, modlist_paddr), self.modlist_paddr);
        put_u64(&mut b, offset_of!(Self, cmdline_paddr), self.cmdline_paddr);
        put_u64(&mut b, offset_of!(Self, rsdp_paddr), self.rsdp_paddr);
        put_u64(&mut b, offset_of!(Self, memmap_paddr), self.memmap_paddr);
        put_u32(
            &mut b,
            offset_of!(Self, memmap_entries),
            self.memmap_entries,
        );
        put_u32(&mut b, offset_of!(Self, reserved), self.reserved);
        b
    }

    /// The structure held in guest-memory bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        Self {
            magic: get_u32(b, offset_of!(Self, magic)),
            version: get_u32(b, offset_of!(Self, version)),
            flags: get_u32(b, offset_of!(Self, flags)),
            nr_modules: get_u32(b, offset_of!(Self, nr_modules)),
            modlist_paddr: get_u64(b, offset_of!(Self, modlist_paddr)),
            cmdline_paddr: get_u64(b, offset_of!(Self, cmdline_paddr)),
            rsdp_paddr: get_u64(b, offset_of!(Self, rsdp_paddr)),
            memmap_paddr: get_u64(b, offset_of!(Self, memmap_paddr)),
            memmap_entries: get_u32(b, offset_of!(Self, memmap_entries)),
            reserved: get_u32(b, offset_of!(Self, reserved)),
        }
    }
}

impl HvmModlistEntry {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put_u64(&mut b, offset_of!(Self, paddr), self.paddr);
        put_u64(&mut b, offset_of!(Self, size), self.size);
        put_u64(&mut b, offset_of!(Self, cmdline_paddr), self.cmdline_paddr);
        put_u64(&mut b, offset_of!(Self, reserved), self.reserved);
        b
    }

    /// The entry held in guest-memory bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        Self {
            paddr: get_u64(b, offset_of!(Self, paddr)),
            size: get_u64(b, offset_of!(Self, size)),
            cmdline_paddr: get_u64(b, offset_of!(Self, cmdline_paddr)),
            reserved: get_u64(b, offset_of!(Self, reserved)),
        }
    }
}

impl HvmMemmapTableEntry {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        put_u64(&mut b, offset_of!(Self, addr), self.addr);
        put_u64(&mut b, offset_of!(Self, size), self.size);
        put_u32(&mut b, offset_of!(Self, type_), self.type_);
        put_u32(&mut b, offset_of!(Self, reserved), self.reserved);
        b
    }

    /// The entry held in guest-memory bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        Self {
            addr: get_u64(b, offset_of!(Self, addr)),
            size: get_u64(b, offset_of!(Self, size)),
            type_: get_u32(b, offset_of!(Self, type_)),
            reserved: get_u32(b, offset_of!(Self, reserved)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_info_bytes_follow_the_documented_offsets() {
        let si = HvmStartInfo {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version: XEN_HVM_START_INFO_VERSION,
            flags: 0x0102_0304,
            nr_modules: 2,
            modlist_paddr: 0x1122_3344_5566_7788,
            cmdline_paddr: 0x10_0000,
            rsdp_paddr: 0xE_0000,
            memmap_paddr: 0xFEFF_0000,
            memmap_entries: 7,
            reserved: 0,
        };
        let b = si.to_bytes();
        assert_eq!(
            b[0..4],
            [0x78, 0xC5, 0x6E, 0x33],
            "\"xEn3\" with the E's 0x80 bit"
        );
        assert_eq!(b[4..8], 1u32.to_le_bytes());
        assert_eq!(b[8..12], [4, 3, 2, 1]);
        assert_eq!(b[12..16], 2u32.to_le_bytes());
        assert_eq!(b[16..24], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(b[24..32], 0x10_0000u64.to_le_bytes());
        assert_eq!(b[32..40], 0xE_0000u64.to_le_bytes());
        assert_eq!(b[40..48], 0xFEFF_0000u64.to_le_bytes());
        assert_eq!(b[48..52], 7u32.to_le_bytes());
        assert_eq!(b[52..56], [0; 4]);
        assert_eq!(HvmStartInfo::from_bytes(&b), si);
    }

    #[test]
    fn modlist_entry_bytes_follow_the_documented_offsets() {
        let m = HvmModlistEntry {
            paddr: 0x200_0000,
            size: 0x12_3456,
            cmdline_paddr: 0xFEFF_0100,
            reserved: 0,
        };
        let b = m.to_bytes();
        assert_eq!(b[0..8], 0x200_0000u64.to_le_bytes());
        assert_eq!(b[8..16], 0x12_3456u64.to_le_bytes());
        assert_eq!(b[16..24], 0xFEFF_0100u64.to_le_bytes());
        assert_eq!(b[24..32], [0; 8]);
        assert_eq!(HvmModlistEntry::from_bytes(&b), m);
    }

    #[test]
    fn memmap_entry_bytes_follow_the_documented_offsets() {
        let e = HvmMemmapTableEntry {
            addr: 0x1_0000_0000,
            size: 0x4000_0000,
            type_: XEN_HVM_MEMMAP_TYPE_RAM,
            reserved: 0,
        };
        let b = e.to_bytes();
        assert_eq!(b[0..8], 0x1_0000_0000u64.to_le_bytes());
        assert_eq!(b[8..16], 0x4000_0000u64.to_le_bytes());
        assert_eq!(b[16..20], 1u32.to_le_bytes());
        assert_eq!(b[20..24], [0; 4]);
        assert_eq!(HvmMemmapTableEntry::from_bytes(&b), e);
    }
}
