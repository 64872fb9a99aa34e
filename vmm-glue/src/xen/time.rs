//! Time in the shared info page of a 64-bit x86 guest: the wallclock
//! fields after the event bitmaps (`struct shared_info` in
//! `xen/include/public/xen.h`, where `wc_sec_hi` follows `wc_nsec` directly
//! for every guest but 32-bit x86) and the pvclock flags
//! (`XEN_PVCLOCK_*`). `struct vcpu_time_info` itself is in
//! [`super::shared_info`].

use core::mem::{offset_of, size_of};

use super::shared_info::{SharedInfoEvents, VcpuInfo, VcpuTimeInfo, SHARED_INFO_WC_VERSION};

/// `XEN_PVCLOCK_TSC_STABLE_BIT`: the TSC is the same on every vCPU, so a
/// guest need not keep the last value it read to stay monotonic.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED`: the guest was paused by the toolstack.
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// The wallclock of `struct shared_info` on x86_64: time of day at system
/// time 0, under a version counter like `vcpu_time_info`'s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wallclock {
    /// Odd while the hypervisor updates the fields.
    pub wc_version: u32,
    /// Seconds since 1970-01-01 UTC, low 32 bits.
    pub wc_sec: u32,
    /// Nanoseconds within the second.
    pub wc_nsec: u32,
    /// Seconds since 1970-01-01 UTC, high 32 bits.
    pub wc_sec_hi: u32,
}

/// Offset of `wc_version` in `shared_info`.
pub const SHARED_INFO_WC: usize = SHARED_INFO_WC_VERSION;
/// Offset of `wc_sec` in `shared_info`.
pub const SHARED_INFO_WC_SEC: usize = SHARED_INFO_WC + offset_of!(Wallclock, wc_sec);
/// Offset of `wc_nsec` in `shared_info`.
pub const SHARED_INFO_WC_NSEC: usize = SHARED_INFO_WC + offset_of!(Wallclock, wc_nsec);
/// Offset of `wc_sec_hi` in `shared_info`.
pub const SHARED_INFO_WC_SEC_HI: usize = SHARED_INFO_WC + offset_of!(Wallclock, wc_sec_hi);
/// Offset of `time` (the `vcpu_time_info`) in `vcpu_info`.
pub const VCPU_INFO_TIME: usize = offset_of!(VcpuInfo, time);
/// Size of `struct vcpu_time_info`.
pub const VCPU_TIME_INFO_SIZE: usize = size_of::<VcpuTimeInfo>();

// xen.h on x86_64: wc_version at 0xc00, wc_sec, wc_nsec, wc_sec_hi, then
// arch_shared_info at 0xc10 (8-byte aligned for its xen_ulong_t fields).
const _: () = assert!(
    offset_of!(SharedInfoEvents, wc_version) == 0xc00
        && size_of::<Wallclock>() == 16
        && SHARED_INFO_WC_SEC == 0xc04
        && SHARED_INFO_WC_NSEC == 0xc08
        && SHARED_INFO_WC_SEC_HI == 0xc0c
        && VCPU_INFO_TIME == 32
        && VCPU_TIME_INFO_SIZE == 32
);
