//! Event channel operations (`xen/include/public/event_channel.h`) and the
//! virtual IRQ numbers (`xen/include/public/xen.h`).

use core::mem::{offset_of, size_of};

/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: u16 = 0x7FF0;

/// `EVTCHNOP_*` command numbers (first argument of `event_channel_op`).
pub mod op {
    /// Binds to a remote domain's unbound port.
    pub const BIND_INTERDOMAIN: u32 = 0;
    /// Binds a virtual IRQ.
    pub const BIND_VIRQ: u32 = 1;
    /// Binds a physical IRQ.
    pub const BIND_PIRQ: u32 = 2;
    /// Closes a port.
    pub const CLOSE: u32 = 3;
    /// Notifies the other end.
    pub const SEND: u32 = 4;
    /// Reports a port's state.
    pub const STATUS: u32 = 5;
    /// Allocates a port for a remote domain to bind.
    pub const ALLOC_UNBOUND: u32 = 6;
    /// Binds an inter-vCPU port.
    pub const BIND_IPI: u32 = 7;
    /// Changes the vCPU notified for a port.
    pub const BIND_VCPU: u32 = 8;
    /// Unmasks a port, delivering it if pending.
    pub const UNMASK: u32 = 9;
    /// Closes every port of a domain.
    pub const RESET: u32 = 10;
    /// FIFO ABI: registers a control block.
    pub const INIT_CONTROL: u32 = 11;
    /// FIFO ABI: adds an event array page.
    pub const EXPAND_ARRAY: u32 = 12;
    /// FIFO ABI: sets a port's priority.
    pub const SET_PRIORITY: u32 = 13;
    /// Continues a preempted reset.
    pub const RESET_CONT: u32 = 14;
}

/// `EVTCHNSTAT_*`: the `status` field of [`EvtchnStatus`].
pub mod stat {
    /// Not in use.
    pub const CLOSED: u32 = 0;
    /// Waiting for a remote domain to bind.
    pub const UNBOUND: u32 = 1;
    /// Connected to a remote domain's port.
    pub const INTERDOMAIN: u32 = 2;
    /// Bound to a physical IRQ.
    pub const PIRQ: u32 = 3;
    /// Bound to a virtual IRQ.
    pub const VIRQ: u32 = 4;
    /// Bound to an inter-vCPU interrupt.
    pub const IPI: u32 = 5;
}

/// `VIRQ_*` numbers (xen.h). "V." in the header marks per-vCPU VIRQs; the
/// others are global and bind only on vCPU 0.
pub mod virq {
    /// V. Timebase update and/or requested timeout.
    pub const TIMER: u32 = 0;
    /// V. Request guest to dump debug info.
    pub const DEBUG: u32 = 1;
    /// G. (DOM0) Bytes received on emergency console.
    pub const CONSOLE: u32 = 2;
    /// G. (DOM0) Exceptional event for some domain.
    pub const DOM_EXC: u32 = 3;
    /// G. (DOM0) Trace buffer has records available.
    pub const TBUF: u32 = 4;
    /// G. (DOM0) A domain has paused for debugging.
    pub const DEBUGGER: u32 = 6;
    /// V. XenOprofile interrupt.
    pub const XENOPROF: u32 = 7;
    /// G. (DOM0) Bytes received on console.
    pub const CON_RING: u32 = 8;
    /// G. (DOM0) PCPU state changed.
    pub const PCPU_STATE: u32 = 9;
    /// G. (DOM0) A memory event has occurred.
    pub const MEM_EVENT: u32 = 10;
    /// G. Argo interdomain message notification.
    pub const ARGO: u32 = 11;
    /// G. (DOM0) Low on heap memory.
    pub const ENOMEM: u32 = 12;
    /// V. PMC interrupt.
    pub const XENPMU: u32 = 13;
    /// First architecture-specific VIRQ (x86: `VIRQ_MCA`, global).
    pub const ARCH_0: u32 = 16;
    /// `NR_VIRQS`.
    pub const NR_VIRQS: u32 = 24;

    /// Whether `virq` is global (bindable on vCPU 0 only).
    pub const fn is_global(virq: u32) -> bool {
        !matches!(virq, TIMER | DEBUG | XENOPROF | XENPMU)
    }
}

/// `struct evtchn_status` (24 bytes): `dom` and `port` in, the rest out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// Domain owning the port (`DOMID_SELF` allowed).
    pub dom: u16,
    /// Port to query.
    pub port: u32,
    /// `EVTCHNSTAT_*`.
    pub status: u32,
    /// The vCPU notified for this port.
    pub vcpu: u32,
    /// The union: `unbound.dom` (u16 at 0), `interdomain.dom` (u16 at 0) and
    /// `interdomain.port` (u32 at 4), `pirq` or `virq` (u32 at 0).
    pub u: [u32; 2],
}

const _: () = assert!(
    size_of::<EvtchnStatus>() == 24
        && offset_of!(EvtchnStatus, dom) == 0
        && offset_of!(EvtchnStatus, port) == 4
        && offset_of!(EvtchnStatus, status) == 8
        && offset_of!(EvtchnStatus, vcpu) == 12
        && offset_of!(EvtchnStatus, u) == 16
);

impl EvtchnStatus {
    /// Size in guest memory.
    pub const SIZE: usize = size_of::<Self>();

    /// The guest-memory bytes (little-endian; padding zero).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        b[0..2].copy_from_slice(&self.dom.to_le_bytes());
        b[4..8].copy_from_slice(&self.port.to_le_bytes());
        b[8..12].copy_from_slice(&self.status.to_le_bytes());
        b[12..16].copy_from_slice(&self.vcpu.to_le_bytes());
        b[16..20].copy_from_slice(&self.u[0].to_le_bytes());
        b[20..24].copy_from_slice(&self.u[1].to_le_bytes());
        b
    }
}
