//! Argument structures and shared pages of the Xen guest ABI (x86-64), as
//! documented in Xen's public headers, with compile-time size and offset
//! checks. Each struct names the header and C struct it mirrors.

use core::mem::{offset_of, size_of};

/// `domid_t` for "the calling domain" (`xen.h`, `DOMID_SELF`).
pub const DOMID_SELF: u16 = 0x7ff0;

/// `struct xen_add_to_physmap` (`memory.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AddToPhysmap {
    /// Domain whose physmap changes.
    pub domid: u16,
    /// Number of pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space (grant frame number...).
    pub idx: u64,
    /// Guest frame to map it at.
    pub gpfn: u64,
}
const _: () = assert!(size_of::<AddToPhysmap>() == 24);
const _: () = assert!(offset_of!(AddToPhysmap, space) == 4);
const _: () = assert!(offset_of!(AddToPhysmap, gpfn) == 16);

/// `struct xen_hvm_param` (`hvm/hvm_op.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct HvmParam {
    /// Target domain.
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// `HVM_PARAM_*`.
    pub index: u32,
    /// The value read or written.
    pub value: u64,
}
const _: () = assert!(size_of::<HvmParam>() == 16);
const _: () = assert!(offset_of!(HvmParam, index) == 4);
const _: () = assert!(offset_of!(HvmParam, value) == 8);

/// `struct evtchn_alloc_unbound` (`event_channel.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnAllocUnbound {
    /// Domain the port is allocated in.
    pub dom: u16,
    /// Domain allowed to bind to it.
    pub remote_dom: u16,
    /// OUT: the new port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnAllocUnbound>() == 8);

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnBindInterdomain {
    /// Domain of the unbound port.
    pub remote_dom: u16,
    /// The unbound port.
    pub remote_port: u32,
    /// OUT: the local end.
    pub local_port: u32,
}
const _: () = assert!(size_of::<EvtchnBindInterdomain>() == 12);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnBindVirq {
    /// `VIRQ_*`.
    pub virq: u32,
    /// vCPU to notify.
    pub vcpu: u32,
    /// OUT: the port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindVirq>() == 12);

/// `struct evtchn_bind_pirq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnBindPirq {
    /// The pirq to bind.
    pub pirq: u32,
    /// `BIND_PIRQ__*` flags.
    pub flags: u32,
    /// OUT: the port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindPirq>() == 12);

/// `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnBindIpi {
    /// vCPU to notify.
    pub vcpu: u32,
    /// OUT: the port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindIpi>() == 8);

/// `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnBindVcpu {
    /// The port.
    pub port: u32,
    /// vCPU to notify from now on.
    pub vcpu: u32,
}
const _: () = assert!(size_of::<EvtchnBindVcpu>() == 8);

/// `struct evtchn_init_control` (FIFO ABI).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnInitControl {
    /// Frame of the control block.
    pub control_gfn: u64,
    /// Offset of the control block in the frame.
    pub offset: u32,
    /// vCPU.
    pub vcpu: u32,
    /// OUT: `EVTCHN_FIFO_LINK_BITS`.
    pub link_bits: u8,
    /// Padding.
    pub pad: [u8; 7],
}
const _: () = assert!(size_of::<EvtchnInitControl>() == 24);

/// `struct evtchn_set_priority` (FIFO ABI).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnSetPriority {
    /// The port.
    pub port: u32,
    /// 0 (highest) to 15.
    pub priority: u32,
}
const _: () = assert!(size_of::<EvtchnSetPriority>() == 8);

/// `struct sched_poll` (`sched.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedPoll {
    /// Guest pointer to an array of ports.
    pub ports: u64,
    /// Number of ports.
    pub nr_ports: u32,
    /// Absolute system time (ns) to give up at; 0: never.
    pub timeout: u64,
}
const _: () = assert!(size_of::<SchedPoll>() == 24);
const _: () = assert!(offset_of!(SchedPoll, timeout) == 16);

/// `struct vcpu_set_singleshot_timer` (`vcpu.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleshotTimer {
    /// Absolute system time (ns).
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}
const _: () = assert!(size_of::<SingleshotTimer>() == 16);

// The grant table and event channel structures the hypervisor reads are
// shared with it (compile-time checked there).
pub use vmm_glue::xen::event_channel::EvtchnStatus;
pub use vmm_glue::xen::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabQuerySize, GnttabSetupTable, GrantEntryV1,
};

/// Offsets in `struct vcpu_info` (`xen.h`, x86: 64 bytes).
pub mod vcpu_info {
    /// `uint8_t evtchn_upcall_pending`.
    pub const UPCALL_PENDING: usize = 0;
    /// `uint8_t evtchn_upcall_mask`.
    pub const UPCALL_MASK: usize = 1;
    /// `xen_ulong_t evtchn_pending_sel`.
    pub const PENDING_SEL: usize = 8;
    /// `struct vcpu_time_info time` (after the 16-byte `arch_vcpu_info`).
    pub const TIME: usize = 32;
    /// Size of one `vcpu_info`.
    pub const SIZE: usize = 64;
}

/// Offsets in `struct vcpu_time_info` (`xen.h`, 32 bytes).
pub mod time_info {
    /// `uint32_t version`: odd while being updated.
    pub const VERSION: usize = 0;
    /// `uint64_t tsc_timestamp`.
    pub const TSC_TIMESTAMP: usize = 8;
    /// `uint64_t system_time` (ns).
    pub const SYSTEM_TIME: usize = 16;
    /// `uint32_t tsc_to_system_mul`.
    pub const MUL: usize = 24;
    /// `int8_t tsc_shift`.
    pub const SHIFT: usize = 28;
    /// `uint8_t flags` (`XEN_PVCLOCK_*`).
    pub const FLAGS: usize = 29;
}

/// Offsets in `struct shared_info` (`xen.h`, x86-64).
pub mod shared_info {
    /// `vcpu_info[XEN_LEGACY_MAX_VCPUS]` (32 of them).
    pub const VCPU_INFO: usize = 0;
    /// `xen_ulong_t evtchn_pending[64]`.
    pub const EVTCHN_PENDING: usize = 2048;
    /// `xen_ulong_t evtchn_mask[64]`.
    pub const EVTCHN_MASK: usize = 2560;
    /// `uint32_t wc_version`.
    pub const WC_VERSION: usize = 3072;
    /// `uint32_t wc_sec`.
    pub const WC_SEC: usize = 3076;
    /// `uint32_t wc_nsec`.
    pub const WC_NSEC: usize = 3080;
    /// `uint32_t wc_sec_hi` (x86-64 only).
    pub const WC_SEC_HI: usize = 3084;
    /// Words in each of the pending and mask bitmaps.
    pub const EVTCHN_WORDS: usize = 64;
}

/// Offsets in `struct xencons_interface` (`io/console.h`).
pub mod console_ring {
    /// `char in[1024]`.
    pub const IN: usize = 0;
    /// Size of `in`.
    pub const IN_SIZE: usize = 1024;
    /// `char out[2048]`.
    pub const OUT: usize = 1024;
    /// Size of `out`.
    pub const OUT_SIZE: usize = 2048;
    /// `XENCONS_RING_IDX in_cons`.
    pub const IN_CONS: usize = 3072;
    /// `in_prod`.
    pub const IN_PROD: usize = 3076;
    /// `out_cons`.
    pub const OUT_CONS: usize = 3080;
    /// `out_prod`.
    pub const OUT_PROD: usize = 3084;
}

/// Offsets in `struct xenstore_domain_interface` (`io/xs_wire.h`).
pub mod xenstore_ring {
    /// `char req[XENSTORE_RING_SIZE]`.
    pub const REQ: usize = 0;
    /// `char rsp[XENSTORE_RING_SIZE]`.
    pub const RSP: usize = 1024;
    /// `XENSTORE_RING_SIZE`.
    pub const SIZE: usize = 1024;
    /// `req_cons`.
    pub const REQ_CONS: usize = 2048;
    /// `req_prod`.
    pub const REQ_PROD: usize = 2052;
    /// `rsp_cons`.
    pub const RSP_CONS: usize = 2056;
    /// `rsp_prod`.
    pub const RSP_PROD: usize = 2060;
    /// `server_features`.
    pub const SERVER_FEATURES: usize = 2064;
    /// `connection`.
    pub const CONNECTION: usize = 2068;
    /// `error`.
    pub const ERROR: usize = 2072;
    /// `XENSTORE_PAYLOAD_MAX`.
    pub const PAYLOAD_MAX: usize = 4096;
}
