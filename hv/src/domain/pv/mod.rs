//! A PV domain's side of the exit path: Xen's 64-bit PV semantics around
//! a guest that runs in the hardware container at CPL 3.
//!
//! - `area`: the hypervisor frames the guest reads (M2P, GDT, TSS);
//! - `traps`: exceptions, system calls, software interrupts and events
//!   bounced into the guest kernel, kernel/user mode switches;
//! - `priv_op`: the privileged instructions a PV kernel executes, emulated
//!   as Xen emulates them;
//! - `hypercall`: the PV-only hypercalls (trap table, callbacks, stack,
//!   segments, descriptors, `iret`, page tables through `hv::pv::mm`);
//! - `build`: loading a PV kernel with `hv::pv::build`'s plan.
//!
//! The logic that needs no hardware (bounce frames, descriptor checks,
//! decoding, page types) is in `hv::pv`, tested on the host.

pub mod area;
mod build;
pub mod fast;
pub(super) mod hypercall;
pub(in crate::domain) mod memory;
mod priv_op;
mod stub;
mod traps;

pub use build::PvInput;

use alloc::boxed::Box;
use area::HvArea;

/// One entry of the guest's virtual IDT (`struct trap_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// Bits 0-1: the DPL that may raise the vector with `int n`; bit 2:
    /// delivery masks events.
    pub flags: u8,
    pub cs: u16,
    pub address: u64,
}

impl TrapInfo {
    pub fn dpl(&self) -> u8 {
        self.flags & 3
    }

    pub fn masks_events(&self) -> bool {
        self.flags & 4 != 0
    }
}

/// A callback the guest registered (`callback_op`, `set_callbacks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Callback {
    pub address: u64,
    /// `CALLBACKF_mask_events`.
    pub mask_events: bool,
}

/// The callbacks of one vCPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callbacks {
    pub event: Callback,
    pub failsafe: Callback,
    pub syscall: Callback,
    pub syscall32: Callback,
    pub sysenter: Callback,
    pub nmi: Callback,
}

/// The PV state of one vCPU.
#[derive(Debug)]
pub struct PvVcpu {
    /// The vCPU runs its kernel (Xen's `TF_kernel_mode`).
    pub kernel_mode: bool,
    /// The kernel and user root tables (machine frames) the vCPU holds.
    pub roots: hv::pv::mm::VcpuRoots,
    /// The stack for bounces from user mode (`stack_switch`).
    pub kernel_sp: u64,
    pub kernel_ss: u16,
    /// The GS base of the mode not running (the CPU holds the other one).
    pub shadow_gs: u64,
    pub traps: Box<[TrapInfo; 256]>,
    pub callbacks: Callbacks,
    /// The virtual IOPL (in RFLAGS position): `PHYSDEVOP_set_iopl`.
    pub iopl: u64,
    /// The GDT frames (`set_gdt`) and entries.
    pub gdt_frames: [u64; hv::pv::abi::gdt::FIRST_RESERVED_GDT_PAGE],
    pub gdt_ents: u32,
    /// The LDT (`MMUEXT_SET_LDT`): linear address and entries.
    pub ldt: (u64, u32),
    /// The virtual CR0.TS (`fpu_taskswitch`).
    pub ts: bool,
    pub debugreg: hv::pv::debugreg::DebugRegs,
    /// CS and SS selectors known to load with the current GDT: Xen's flat
    /// ones, and those an `iret` of the slow path loaded since the GDT last
    /// changed (the fast-path stub returns only to these).
    pub cs_ok: [u16; 4],
    pub ss_ok: [u16; 4],
    /// An interrupt-window exit is asked for, for an upcall that became
    /// pending while the vCPU was in the fast-path stub.
    pub upcall_window: bool,
}

impl PvVcpu {
    pub fn new(kernel_sp: u64) -> Self {
        Self {
            kernel_mode: true,
            roots: hv::pv::mm::VcpuRoots::default(),
            kernel_sp,
            kernel_ss: hv::pv::abi::sel::FLAT_KERNEL_SS,
            shadow_gs: 0,
            traps: Box::new([TrapInfo::default(); 256]),
            callbacks: Callbacks::default(),
            iopl: 0,
            gdt_frames: [0; hv::pv::abi::gdt::FIRST_RESERVED_GDT_PAGE],
            gdt_ents: 0,
            ldt: (0, 0),
            ts: false,
            debugreg: hv::pv::debugreg::DebugRegs::default(),
            cs_ok: hv::pv::fast::FLAT_CS,
            ss_ok: hv::pv::fast::FLAT_SS,
            upcall_window: false,
        }
    }

    /// Forgets the selectors `iret` found loadable: the GDT changed.
    pub fn gdt_changed(&mut self) {
        self.cs_ok = hv::pv::fast::FLAT_CS;
        self.ss_ok = hv::pv::fast::FLAT_SS;
    }
}

/// The descriptor `selector` names in vCPU `k`'s GDT (`v`'s, copied in
/// `area`; the reserved entries included); `None` for LDT selectors and
/// indices beyond the table.
pub(in crate::domain) fn gdt_descriptor(
    v: &PvVcpu,
    area: &HvArea,
    k: u32,
    selector: u16,
) -> Option<u64> {
    use hv::pv::abi::gdt::FIRST_RESERVED_GDT_ENTRY;
    if selector & 4 != 0 {
        return None;
    }
    let index = usize::from(selector >> 3);
    if index < FIRST_RESERVED_GDT_ENTRY && index >= v.gdt_ents as usize {
        return None;
    }
    area.gdt_entry(k, index)
}

/// The PV state of a domain.
#[derive(Debug)]
pub struct PvDomain {
    pub mm: hv::pv::mm::PvMm,
    pub area: HvArea,
    /// `vm_assist` types enabled (bit per `VMASST_TYPE_*`).
    pub vm_assist: u64,
}

impl PvDomain {
    pub fn assist(&self, ty: u32) -> bool {
        self.vm_assist & (1 << ty) != 0
    }
}
