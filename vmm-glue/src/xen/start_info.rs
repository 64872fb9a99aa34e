//! The start-of-day structures: PVH's (`xen/include/public/arch-x86/hvm/start_info.h`)
//! and 64-bit PV's (`struct start_info` in `xen/include/public/xen.h`).
//!
//! A PVH guest starts in 32-bit protected mode with paging off and `ebx`
//! holding the physical address of an [`HvmStartInfo`]. From it the guest
//! finds its command line, an array of [`HvmModlistEntry`] (initrd and other
//! modules), the RSDP and, from version 1 on, an array of
//! [`HvmMemmapTableEntry`] (its memory map). An address field of 0 means
//! "not present". All fields are little-endian.
//!
//! A 64-bit PV guest starts in long mode on the domain builder's page
//! tables with `rsi` holding the virtual address of a [`PvStartInfo`].
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

/// `MAX_GUEST_CMDLINE`: the PV command line's buffer, its NUL included.
pub const MAX_GUEST_CMDLINE: usize = 1024;

/// The magic a 64-bit PV guest's [`PvStartInfo`] starts with: the builder
/// writes the guest type, `xen-<version>-<platform>`.
pub const XEN_PV_START_MAGIC_X86_64: &[u8] = b"xen-3.0-x86_64";

/// `struct start_info` as a 64-bit PV guest sees it (1168 bytes).
///
/// The console union is written in its domU form (`console.domU.mfn` and
/// `.evtchn`); the dom0 form shares those bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvStartInfo {
    /// `xen-<version>-<platform>`, NUL-padded: [`XEN_PV_START_MAGIC_X86_64`].
    pub magic: [u8; 32],
    /// Total pages of the domain.
    pub nr_pages: u64,
    /// The shared info page's machine ADDRESS (not frame number).
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// Event channel of the xenstore ring.
    pub store_evtchn: u32,
    /// `console.domU.mfn`: machine frame of the console ring.
    pub console_mfn: u64,
    /// `console.domU.evtchn`: event channel of the console ring.
    pub console_evtchn: u32,
    /// Virtual address of the boot page tables' root (the L4).
    pub pt_base: u64,
    /// Frames of boot page tables, from `pt_base` on.
    pub nr_pt_frames: u64,
    /// Virtual address of the p2m list (`mfn_list[pfn]`, u64 each).
    pub mfn_list: u64,
    /// Virtual address of the first module, or its pfn when
    /// `SIF_MOD_START_PFN` is set; 0 without a module.
    pub mod_start: u64,
    /// Length of the first module in bytes.
    pub mod_len: u64,
    /// The NUL-terminated command line.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First pfn of a p2m list mapped at `XEN_ELFNOTE_INIT_P2M`, with its
    /// page tables; 0 otherwise.
    pub first_p2m_pfn: u64,
    /// Frames from `first_p2m_pfn` on; 0 without such a list.
    pub nr_p2m_frames: u64,
}

// The offsets of `struct start_info` on x86_64 (`xen.h`).
const _: () = assert!(
    size_of::<PvStartInfo>() == 1168
        && offset_of!(PvStartInfo, magic) == 0
        && offset_of!(PvStartInfo, nr_pages) == 32
        && offset_of!(PvStartInfo, shared_info) == 40
        && offset_of!(PvStartInfo, flags) == 48
        && offset_of!(PvStartInfo, store_mfn) == 56
        && offset_of!(PvStartInfo, store_evtchn) == 64
        && offset_of!(PvStartInfo, console_mfn) == 72
        && offset_of!(PvStartInfo, console_evtchn) == 80
        && offset_of!(PvStartInfo, pt_base) == 88
        && offset_of!(PvStartInfo, nr_pt_frames) == 96
        && offset_of!(PvStartInfo, mfn_list) == 104
        && offset_of!(PvStartInfo, mod_start) == 112
        && offset_of!(PvStartInfo, mod_len) == 120
        && offset_of!(PvStartInfo, cmd_line) == 128
        && offset_of!(PvStartInfo, first_p2m_pfn) == 1152
        && offset_of!(PvStartInfo, nr_p2m_frames) == 1160
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

impl Default for PvStartInfo {
    fn default() -> Self {
        Self {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console_mfn: 0,
            console_evtchn: 0,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }
}

impl PvStartInfo {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes (padding zero).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        let magic = offset_of!(Self, magic);
        b[magic..magic + 32].copy_from_slice(&self.magic);
        put_u64(&mut b, offset_of!(Self, nr_pages), self.nr_pages);
        put_u64(&mut b, offset_of!(Self, shared_info), self.shared_info);
        put_u32(&mut b, offset_of!(Self, flags), self.flags);
        put_u64(&mut b, offset_of!(Self, store_mfn), self.store_mfn);
        put_u32(&mut b, offset_of!(Self, store_evtchn), self.store_evtchn);
        put_u64(&mut b, offset_of!(Self, console_mfn), self.console_mfn);
        put_u32(
            &mut b,
            offset_of!(Self, console_evtchn),
            self.console_evtchn,
        );
        put_u64(&mut b, offset_of!(Self, pt_base), self.pt_base);
        put_u64(&mut b, offset_of!(Self, nr_pt_frames), self.nr_pt_frames);
        put_u64(&mut b, offset_of!(Self, mfn_list), self.mfn_list);
        put_u64(&mut b, offset_of!(Self, mod_start), self.mod_start);
        put_u64(&mut b, offset_of!(Self, mod_len), self.mod_len);
        let cmd = offset_of!(Self, cmd_line);
        b[cmd..cmd + MAX_GUEST_CMDLINE].copy_from_slice(&self.cmd_line);
        put_u64(&mut b, offset_of!(Self, first_p2m_pfn), self.first_p2m_pfn);
        put_u64(&mut b, offset_of!(Self, nr_p2m_frames), self.nr_p2m_frames);
        b
    }

    /// The structure held in guest-memory bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let mut magic = [0; 32];
        let at = offset_of!(Self, magic);
        magic.copy_from_slice(&b[at..at + 32]);
        let mut cmd_line = [0; MAX_GUEST_CMDLINE];
        let at = offset_of!(Self, cmd_line);
        cmd_line.copy_from_slice(&b[at..at + MAX_GUEST_CMDLINE]);
        Self {
            magic,
            nr_pages: get_u64(b, offset_of!(Self, nr_pages)),
            shared_info: get_u64(b, offset_of!(Self, shared_info)),
            flags: get_u32(b, offset_of!(Self, flags)),
            store_mfn: get_u64(b, offset_of!(Self, store_mfn)),
            store_evtchn: get_u32(b, offset_of!(Self, store_evtchn)),
            console_mfn: get_u64(b, offset_of!(Self, console_mfn)),
            console_evtchn: get_u32(b, offset_of!(Self, console_evtchn)),
            pt_base: get_u64(b, offset_of!(Self, pt_base)),
            nr_pt_frames: get_u64(b, offset_of!(Self, nr_pt_frames)),
            mfn_list: get_u64(b, offset_of!(Self, mfn_list)),
            mod_start: get_u64(b, offset_of!(Self, mod_start)),
            mod_len: get_u64(b, offset_of!(Self, mod_len)),
            cmd_line,
            first_p2m_pfn: get_u64(b, offset_of!(Self, first_p2m_pfn)),
            nr_p2m_frames: get_u64(b, offset_of!(Self, nr_p2m_frames)),
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

    #[test]
    fn pv_start_info_bytes_follow_the_documented_offsets() {
        let mut si = PvStartInfo {
            nr_pages: 0x1_0000,
            shared_info: 0x1020_0000,
            flags: 0x18,
            store_mfn: 0x5001,
            store_evtchn: 1,
            console_mfn: 0x5002,
            console_evtchn: 2,
            pt_base: 0xffff_ffff_8500_3000,
            nr_pt_frames: 0x2b,
            mfn_list: 0xffff_ffff_8490_0000,
            mod_start: 0x5400,
            mod_len: 0x10_0000,
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
            ..PvStartInfo::default()
        };
        si.magic[..14].copy_from_slice(XEN_PV_START_MAGIC_X86_64);
        si.cmd_line[..4].copy_from_slice(b"ro q");
        let b = si.to_bytes();
        assert_eq!(&b[0..15], b"xen-3.0-x86_64\0");
        assert_eq!(b[32..40], 0x1_0000u64.to_le_bytes());
        assert_eq!(b[40..48], 0x1020_0000u64.to_le_bytes());
        assert_eq!(
            b[48..56],
            [0x18, 0, 0, 0, 0, 0, 0, 0],
            "flags, then padding"
        );
        assert_eq!(b[56..64], 0x5001u64.to_le_bytes());
        assert_eq!(b[64..72], [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[72..80], 0x5002u64.to_le_bytes());
        assert_eq!(b[80..88], [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[88..96], 0xffff_ffff_8500_3000u64.to_le_bytes());
        assert_eq!(b[96..104], 0x2bu64.to_le_bytes());
        assert_eq!(b[104..112], 0xffff_ffff_8490_0000u64.to_le_bytes());
        assert_eq!(b[112..120], 0x5400u64.to_le_bytes());
        assert_eq!(b[120..128], 0x10_0000u64.to_le_bytes());
        assert_eq!(&b[128..133], b"ro q\0");
        assert_eq!(b[1152..1168], [0; 16]);
        assert_eq!(PvStartInfo::from_bytes(&b), si);
    }
}
