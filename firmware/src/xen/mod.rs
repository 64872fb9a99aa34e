//! The Xen guest ABI beyond start of day, for the conformance guests
//! (`abi_*`): shared_info and the event channel upcall, pvclock time, the
//! PV console and xenstore rings, grant tables. Written from Xen's public
//! headers (`xen.h`, `arch-x86/xen.h`, `memory.h`, `hvm/params.h`,
//! `hvm/hvm_op.h`, `event_channel.h`, `grant_table.h`, `sched.h`,
//! `vcpu.h`, `io/xs_wire.h`, `io/console.h`); [`layout`] holds the
//! structures with their compile-time checks.
//!
//! Hypercall wrappers return the raw result (`Ok` for >= 0, `Err(-errno)`
//! otherwise) so that the guests can compare errors with what Xen
//! specifies instead of hiding them.
//!
//! Safety: `unsafe` is in [`page`] (raw access to shared pages and the
//! page tables), in the `op` helpers here, which pass pointers to live
//! Rust values to the hypervisor, in [`xenstore::Client::open_in`]
//! (building a client in place) and in [`pcifront`] (the static that holds
//! its client, handed out once).

pub mod console;
pub mod evtchn;
pub mod fifo;
pub mod grant;
pub mod layout;
pub mod page;
pub mod pcifront;
pub mod shared;
pub mod xenstore;

use crate::hypervisor::{self, hypercall};
use layout::{AddToPhysmap, HvmParam, DOMID_SELF};

/// Hypercall numbers (`xen.h`, `__HYPERVISOR_*`).
pub use vmm_glue::xen::hypercall as nr;

/// Xen error numbers (`errno.h`), positive; hypercalls return them negated.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i64 = 1;
    /// No such file or directory / no such vCPU.
    pub const ENOENT: i64 = 2;
    /// No such domain.
    pub const ESRCH: i64 = 3;
    /// Try again.
    pub const EAGAIN: i64 = 11;
    /// Permission denied.
    pub const EACCES: i64 = 13;
    /// Bad address.
    pub const EFAULT: i64 = 14;
    /// Busy.
    pub const EBUSY: i64 = 16;
    /// Already exists.
    pub const EEXIST: i64 = 17;
    /// Invalid argument.
    pub const EINVAL: i64 = 22;
    /// Function not implemented.
    pub const ENOSYS: i64 = 38;
    /// No space left (a full FIFO event array).
    pub const ENOSPC: i64 = 28;
    /// Timer expired (a deadline in the past).
    pub const ETIME: i64 = 62;
    /// Operation not supported.
    pub const EOPNOTSUPP: i64 = 95;
}

/// `HVMOP_*` (`hvm/hvm_op.h`) and `HVM_PARAM_*` (`hvm/params.h`).
pub mod hvm {
    /// `HVMOP_set_param`.
    pub const SET_PARAM: u64 = 0;
    /// `HVMOP_get_param`.
    pub const GET_PARAM: u64 = 1;
    /// `HVM_PARAM_CALLBACK_IRQ`.
    pub const PARAM_CALLBACK_IRQ: u32 = 0;
    /// `HVM_PARAM_STORE_PFN`.
    pub const PARAM_STORE_PFN: u32 = 1;
    /// `HVM_PARAM_STORE_EVTCHN`.
    pub const PARAM_STORE_EVTCHN: u32 = 2;
    /// `HVM_PARAM_CONSOLE_PFN`.
    pub const PARAM_CONSOLE_PFN: u32 = 17;
    /// `HVM_PARAM_CONSOLE_EVTCHN`.
    pub const PARAM_CONSOLE_EVTCHN: u32 = 18;
    /// `HVM_NR_PARAMS` in Xen 4.17: the first invalid index.
    pub const NR_PARAMS: u32 = 39;
    /// `HVM_PARAM_CALLBACK_TYPE_VECTOR`, in bits 63:56 of the value.
    pub const CALLBACK_TYPE_VECTOR: u64 = 2;
}

/// `XENMEM_*` and `XENMAPSPACE_*` (`memory.h`).
pub mod mem {
    /// `XENMEM_add_to_physmap`.
    pub const ADD_TO_PHYSMAP: u64 = 7;
    /// `XENMAPSPACE_shared_info`.
    pub const SPACE_SHARED_INFO: u32 = 0;
    /// `XENMAPSPACE_grant_table`.
    pub const SPACE_GRANT_TABLE: u32 = 1;
}

/// `VCPUOP_*` (`vcpu.h`).
pub mod vcpu {
    /// `VCPUOP_is_up`.
    pub const IS_UP: u64 = 3;
    /// `VCPUOP_set_periodic_timer`.
    pub const SET_PERIODIC_TIMER: u64 = 6;
    /// `VCPUOP_stop_periodic_timer`.
    pub const STOP_PERIODIC_TIMER: u64 = 7;
    /// `VCPUOP_set_singleshot_timer`.
    pub const SET_SINGLESHOT_TIMER: u64 = 8;
    /// `VCPUOP_stop_singleshot_timer`.
    pub const STOP_SINGLESHOT_TIMER: u64 = 9;
    /// `VCPU_SSHOTTMR_future`: fail with -ETIME if the deadline has passed.
    pub const SSHOTTMR_FUTURE: u32 = 1;
}

/// `SCHEDOP_*` (`sched.h`).
pub mod sched {
    /// `SCHEDOP_yield`.
    pub const YIELD: u64 = 0;
    /// `SCHEDOP_block`.
    pub const BLOCK: u64 = 1;
    /// `SCHEDOP_poll`.
    pub const POLL: u64 = 3;
}

/// Hypercall `nr(cmd, &mut arg)`: the hypervisor may read and write `arg`.
pub fn op<T>(nr: u64, cmd: u64, arg: &mut T) -> i64 {
    // SAFETY: `arg` is a live, exclusively borrowed value of the size the
    // command expects (the callers pass the matching `layout` struct).
    unsafe { hypercall(nr, cmd, arg as *mut T as u64, 0, 0, 0) }
}

/// Hypercall `nr(a1, a2, a3)` with raw arguments that are not pointers to
/// memory this program uses (or are pointers to a scratch area).
///
/// # Safety
/// Any argument the hypercall takes as a guest address must point at
/// memory that may be read and overwritten.
pub unsafe fn raw(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: the caller vouches for the arguments.
    unsafe { hypercall(nr, a1, a2, a3, 0, 0) }
}

/// `PHYSDEVOP_eoi(pirq)`: the guest is done with a level-triggered pirq
/// (a passed-through function's INTx line), which may fire again.
pub fn physdev_eoi(pirq: u32) -> i64 {
    /// `PHYSDEVOP_eoi`.
    const EOI: u64 = 12;
    let mut arg: u32 = pirq;
    op(nr::PHYSDEV_OP, EOI, &mut arg)
}

/// `PHYSDEVOP_irq_status_query(pirq)`: the flags (`XENIRQSTAT_needs_eoi`
/// is bit 0) or the error.
pub fn physdev_irq_status(pirq: u32) -> Result<u32, i64> {
    /// `PHYSDEVOP_irq_status_query`.
    const IRQ_STATUS_QUERY: u64 = 5;
    let mut arg: [u32; 2] = [pirq, 0];
    result(op(nr::PHYSDEV_OP, IRQ_STATUS_QUERY, &mut arg)).map(|_| arg[1])
}

/// Turns a hypercall result into `Ok(value)` or `Err(-errno)`.
pub fn result(rc: i64) -> Result<u64, i64> {
    if rc < 0 {
        Err(rc)
    } else {
        Ok(rc as u64)
    }
}

/// This domain's id from CPUID leaf base+4 (ECX, valid when EAX bit 4,
/// `XEN_HVM_CPUID_DOMID_PRESENT`, is set).
pub fn domid() -> Option<u16> {
    let xen = hypervisor::xen()?;
    if xen.max_leaf < xen.base + 4 {
        return None;
    }
    let leaf = crate::cpu::cpuid(xen.base + 4, 0);
    (leaf.eax & (1 << 4) != 0).then_some(leaf.ecx as u16)
}

/// `HVMOP_get_param(domid, index)`.
pub fn get_param_of(domid: u16, index: u32) -> Result<u64, i64> {
    let mut p = HvmParam {
        domid,
        index,
        ..HvmParam::default()
    };
    let rc = op(nr::HVM_OP, hvm::GET_PARAM, &mut p);
    if rc < 0 {
        Err(rc)
    } else {
        Ok(p.value)
    }
}

/// `HVMOP_get_param(DOMID_SELF, index)`.
pub fn get_param(index: u32) -> Result<u64, i64> {
    get_param_of(DOMID_SELF, index)
}

/// `HVMOP_set_param(domid, index, value)`.
pub fn set_param_of(domid: u16, index: u32, value: u64) -> i64 {
    let mut p = HvmParam {
        domid,
        pad: 0,
        index,
        value,
    };
    op(nr::HVM_OP, hvm::SET_PARAM, &mut p)
}

/// `XENMEM_add_to_physmap(DOMID_SELF, space, idx, gpfn)`.
pub fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> i64 {
    let mut a = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    op(nr::MEMORY_OP, mem::ADD_TO_PHYSMAP, &mut a)
}

/// Finds the named `key=value` word on the start info command line.
pub fn cmdline_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ').find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// A canonical guest-virtual address that no page table of this runtime
/// maps: a hypervisor must answer -EFAULT for an argument there.
pub const UNMAPPED: u64 = 0x0000_7fff_dead_0000;

/// Hypercall `nr(cmd, UNMAPPED)`: checks a hypervisor's -EFAULT path
/// without handing it any of this program's memory.
pub fn call_unmapped(nr: u64, cmd: u64) -> i64 {
    // SAFETY: the only address passed is UNMAPPED, which no page of this
    // program is at.
    unsafe { raw(nr, cmd, UNMAPPED, 0) }
}

/// `SCHEDOP_poll` with its ports array at [`UNMAPPED`].
pub fn poll_unmapped(nr_ports: u32) -> i64 {
    let mut p = layout::SchedPoll {
        ports: UNMAPPED,
        nr_ports,
        timeout: 0,
    };
    op(nr::SCHED_OP, sched::POLL, &mut p)
}

/// `vcpu_op(cmd, vcpu_id, UNMAPPED)`: commands without an argument, or
/// the -EFAULT path of those with one.
pub fn vcpu_op_unmapped(cmd: u64, vcpu_id: u32) -> i64 {
    // SAFETY: the only address passed is UNMAPPED (see `call_unmapped`).
    unsafe { raw(nr::VCPU_OP, cmd, u64::from(vcpu_id), UNMAPPED) }
}

/// `grant_table_op(cmd, UNMAPPED, count)`: the -EFAULT path.
pub fn grant_op_unmapped(cmd: u64, count: u32) -> i64 {
    // SAFETY: the only address passed is UNMAPPED (see `call_unmapped`).
    unsafe { raw(nr::GRANT_TABLE_OP, cmd, UNMAPPED, u64::from(count)) }
}

/// `vcpu_op(cmd, vcpu_id, &mut arg)`: the hypervisor may read and write
/// `arg`.
pub fn vcpu_op_arg<T>(cmd: u64, vcpu_id: u32, arg: &mut T) -> i64 {
    // SAFETY: `arg` is a live, exclusively borrowed value of the size the
    // command expects (the callers pass the matching struct).
    unsafe { raw(nr::VCPU_OP, cmd, u64::from(vcpu_id), arg as *mut T as u64) }
}
