//! The shared info page and `vcpu_info` of a 64-bit x86 guest
//! (`xen/include/public/xen.h`, `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`).
//!
//! Only the parts the 2-level event channel ABI touches are named here: the
//! per-vCPU `evtchn_upcall_pending`, `evtchn_upcall_mask` and
//! `evtchn_pending_sel`, and the page-wide `evtchn_pending[]` and
//! `evtchn_mask[]` bitmaps. `xen_ulong_t` is 64 bits wide on x86_64.

use core::mem::{offset_of, size_of};

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in the shared info page.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// Bits in one `xen_ulong_t` word of the event bitmaps.
pub const BITS_PER_EVTCHN_WORD: usize = 64;

/// Words in `evtchn_pending[]` and `evtchn_mask[]`: `sizeof(xen_ulong_t) * 8`.
pub const EVTCHN_WORDS: usize = 64;

/// Ports of the 2-level ABI for a 64-bit guest: `EVTCHN_2L_NR_CHANNELS`.
pub const EVTCHN_2L_NR_CHANNELS: usize = BITS_PER_EVTCHN_WORD * EVTCHN_WORDS;

/// `struct vcpu_time_info` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Odd while the hypervisor updates the fields.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC at the last update of `system_time`.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-nanosecond multiplier (32.32 fixed point).
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

/// `struct arch_vcpu_info` for x86 (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    /// Faulting address of the last page fault (PV only).
    pub cr2: u64,
    /// Padding.
    pub pad: u64,
}

/// `struct vcpu_info` (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set by the hypervisor when an upcall is due; cleared by the guest.
    pub evtchn_upcall_pending: u8,
    /// Set by the guest to hold off upcalls.
    pub evtchn_upcall_mask: u8,
    /// Which words of `evtchn_pending[]` may have pending, unmasked bits.
    pub evtchn_pending_sel: u64,
    /// Architecture state.
    pub arch: ArchVcpuInfo,
    /// The pvclock.
    pub time: VcpuTimeInfo,
}

/// The head of `struct shared_info` up to the wallclock: the event parts.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfoEvents {
    /// One `vcpu_info` per legacy vCPU.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// One pending bit per port.
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    /// One mask bit per port.
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    /// Wallclock version (odd while updating), followed by the rest of the
    /// page which is not named here.
    pub wc_version: u32,
}

/// Size of `struct vcpu_info`.
pub const VCPU_INFO_SIZE: usize = size_of::<VcpuInfo>();
/// Offset of `evtchn_upcall_pending` in `vcpu_info`.
pub const VCPU_INFO_UPCALL_PENDING: usize = offset_of!(VcpuInfo, evtchn_upcall_pending);
/// Offset of `evtchn_upcall_mask` in `vcpu_info`.
pub const VCPU_INFO_UPCALL_MASK: usize = offset_of!(VcpuInfo, evtchn_upcall_mask);
/// Offset of `evtchn_pending_sel` in `vcpu_info`.
pub const VCPU_INFO_PENDING_SEL: usize = offset_of!(VcpuInfo, evtchn_pending_sel);
/// Offset of `evtchn_pending[]` in `shared_info`.
pub const SHARED_INFO_EVTCHN_PENDING: usize = offset_of!(SharedInfoEvents, evtchn_pending);
/// Offset of `evtchn_mask[]` in `shared_info`.
pub const SHARED_INFO_EVTCHN_MASK: usize = offset_of!(SharedInfoEvents, evtchn_mask);
/// Offset of `wc_version` in `shared_info`.
pub const SHARED_INFO_WC_VERSION: usize = offset_of!(SharedInfoEvents, wc_version);

// The layout in xen.h for x86_64: 32 x 64-byte vcpu_info, then the two
// 512-byte bitmaps, then the wallclock.
const _: () = assert!(
    size_of::<VcpuTimeInfo>() == 32
        && offset_of!(VcpuTimeInfo, tsc_timestamp) == 8
        && offset_of!(VcpuTimeInfo, system_time) == 16
        && offset_of!(VcpuTimeInfo, tsc_to_system_mul) == 24
        && offset_of!(VcpuTimeInfo, tsc_shift) == 28
        && offset_of!(VcpuTimeInfo, flags) == 29
);
const _: () = assert!(
    VCPU_INFO_SIZE == 64
        && VCPU_INFO_UPCALL_PENDING == 0
        && VCPU_INFO_UPCALL_MASK == 1
        && VCPU_INFO_PENDING_SEL == 8
        && offset_of!(VcpuInfo, arch) == 16
        && offset_of!(VcpuInfo, time) == 32
);
const _: () = assert!(
    SHARED_INFO_EVTCHN_PENDING == 2048
        && SHARED_INFO_EVTCHN_MASK == 2560
        && SHARED_INFO_WC_VERSION == 3072
        && EVTCHN_2L_NR_CHANNELS == 4096
);
