//! Event channels (2-level ABI) and the callback-vector upcall, plus the
//! ways to wait for an event: `SCHEDOP_block`, `SCHEDOP_poll`, and the
//! timers (`set_timer_op`, `VCPUOP_set_singleshot_timer`) that raise
//! `VIRQ_TIMER`.
//!
//! The upcall handler follows `xen.h`: clear `evtchn_upcall_pending`
//! first, exchange `evtchn_pending_sel` with 0, then for each selected word
//! handle the pending and unmasked ports, clearing their pending bits. It
//! counts upcalls and events per port for the guests to check.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::layout::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindPirq, EvtchnBindVcpu,
    EvtchnBindVirq, EvtchnInitControl, EvtchnSetPriority, EvtchnStatus, SchedPoll, SingleshotTimer,
};
use super::{hvm, nr, op, sched, set_param_of, shared, vcpu};
use crate::hypervisor;

/// `EVTCHNOP_*` (`event_channel.h`).
pub mod cmd {
    /// `EVTCHNOP_bind_interdomain`.
    pub const BIND_INTERDOMAIN: u64 = 0;
    /// `EVTCHNOP_bind_virq`.
    pub const BIND_VIRQ: u64 = 1;
    /// `EVTCHNOP_bind_pirq`.
    pub const BIND_PIRQ: u64 = 2;
    /// `EVTCHNOP_close`.
    pub const CLOSE: u64 = 3;
    /// `EVTCHNOP_send`.
    pub const SEND: u64 = 4;
    /// `EVTCHNOP_status`.
    pub const STATUS: u64 = 5;
    /// `EVTCHNOP_alloc_unbound`.
    pub const ALLOC_UNBOUND: u64 = 6;
    /// `EVTCHNOP_bind_ipi`.
    pub const BIND_IPI: u64 = 7;
    /// `EVTCHNOP_bind_vcpu`.
    pub const BIND_VCPU: u64 = 8;
    /// `EVTCHNOP_unmask`.
    pub const UNMASK: u64 = 9;
    /// `EVTCHNOP_reset`.
    pub const RESET: u64 = 10;
    /// `EVTCHNOP_init_control`.
    pub const INIT_CONTROL: u64 = 11;
    /// `EVTCHNOP_expand_array`.
    pub const EXPAND_ARRAY: u64 = 12;
    /// `EVTCHNOP_set_priority`.
    pub const SET_PRIORITY: u64 = 13;
}

/// `EVTCHNSTAT_*`.
pub mod stat {
    /// Free or reserved.
    pub const CLOSED: u32 = 0;
    /// Waiting for a remote end.
    pub const UNBOUND: u32 = 1;
    /// Connected to a remote port.
    pub const INTERDOMAIN: u32 = 2;
    /// Bound to a virtual IRQ.
    pub const VIRQ: u32 = 4;
    /// Bound to an IPI.
    pub const IPI: u32 = 5;
}

/// `VIRQ_TIMER`: the per-vCPU timer.
pub const VIRQ_TIMER: u32 = 0;
/// `NR_VIRQS`.
pub const NR_VIRQS: u32 = 24;
/// Ports of the 2-level ABI (64 words of 64 bits).
pub const NR_PORTS: usize = 4096;
/// The vector the hypervisor injects for an upcall (Linux's choice too).
pub const CALLBACK_VECTOR: u8 = 0xf3;

static UPCALLS: AtomicU32 = AtomicU32::new(0);
static EVENTS: [AtomicU32; NR_PORTS] = [const { AtomicU32::new(0) }; NR_PORTS];
static LAST_TSC: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

fn ev<T>(command: u64, arg: &mut T) -> i64 {
    op(nr::EVENT_CHANNEL_OP, command, arg)
}

fn port_or(rc: i64, port: u32) -> Result<u32, i64> {
    if rc < 0 {
        Err(rc)
    } else {
        Ok(port)
    }
}

/// `EVTCHNOP_alloc_unbound(dom, remote_dom)`: the new port.
pub fn alloc_unbound(dom: u16, remote_dom: u16) -> Result<u32, i64> {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom,
        port: u32::MAX,
    };
    let rc = ev(cmd::ALLOC_UNBOUND, &mut a);
    port_or(rc, a.port)
}

/// `EVTCHNOP_bind_interdomain(remote_dom, remote_port)`: the local port.
pub fn bind_interdomain(remote_dom: u16, remote_port: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindInterdomain {
        remote_dom,
        remote_port,
        local_port: u32::MAX,
    };
    let rc = ev(cmd::BIND_INTERDOMAIN, &mut a);
    port_or(rc, a.local_port)
}

/// `EVTCHNOP_bind_virq(virq, vcpu)`: the port.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindVirq {
        virq,
        vcpu,
        port: u32::MAX,
    };
    let rc = ev(cmd::BIND_VIRQ, &mut a);
    port_or(rc, a.port)
}

/// `BIND_PIRQ__WILL_SHARE`: the pirq may be shared with other domains.
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// `EVTCHNOP_bind_pirq(pirq, flags)`: the port that a physical interrupt
/// (an INTx line or an MSI mapped into this domain's pirq space) raises.
pub fn bind_pirq(pirq: u32, flags: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindPirq {
        pirq,
        flags,
        port: u32::MAX,
    };
    let rc = ev(cmd::BIND_PIRQ, &mut a);
    port_or(rc, a.port)
}

/// `EVTCHNOP_bind_ipi(vcpu)`: the port.
pub fn bind_ipi(vcpu: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindIpi {
        vcpu,
        port: u32::MAX,
    };
    let rc = ev(cmd::BIND_IPI, &mut a);
    port_or(rc, a.port)
}

/// `EVTCHNOP_send(port)`.
pub fn send(port: u32) -> i64 {
    let mut p = port;
    ev(cmd::SEND, &mut p)
}

/// `EVTCHNOP_close(port)`.
pub fn close(port: u32) -> i64 {
    let mut p = port;
    ev(cmd::CLOSE, &mut p)
}

/// `EVTCHNOP_unmask(port)`.
pub fn unmask(port: u32) -> i64 {
    let mut p = port;
    ev(cmd::UNMASK, &mut p)
}

/// `EVTCHNOP_bind_vcpu(port, vcpu)`.
pub fn bind_vcpu(port: u32, vcpu: u32) -> i64 {
    let mut a = EvtchnBindVcpu { port, vcpu };
    ev(cmd::BIND_VCPU, &mut a)
}

/// `EVTCHNOP_status(dom, port)`.
pub fn status(dom: u16, port: u32) -> Result<EvtchnStatus, i64> {
    let mut s = EvtchnStatus {
        dom,
        port,
        status: u32::MAX,
        ..EvtchnStatus::default()
    };
    let rc = ev(cmd::STATUS, &mut s);
    if rc < 0 {
        Err(rc)
    } else {
        Ok(s)
    }
}

/// `EVTCHNOP_init_control` with the given control block location: the
/// `link_bits` the hypervisor wrote back.
pub fn init_control(control_gfn: u64, offset: u32, vcpu: u32) -> Result<u8, i64> {
    let mut c = EvtchnInitControl {
        control_gfn,
        offset,
        vcpu,
        link_bits: 0xff,
        ..EvtchnInitControl::default()
    };
    let rc = ev(cmd::INIT_CONTROL, &mut c);
    if rc < 0 {
        Err(rc)
    } else {
        Ok(c.link_bits)
    }
}

/// `EVTCHNOP_expand_array(array_gfn)`.
pub fn expand_array(array_gfn: u64) -> i64 {
    let mut gfn = array_gfn;
    ev(cmd::EXPAND_ARRAY, &mut gfn)
}

/// `EVTCHNOP_set_priority(port, priority)`.
pub fn set_priority(port: u32, priority: u32) -> i64 {
    let mut a = EvtchnSetPriority { port, priority };
    ev(cmd::SET_PRIORITY, &mut a)
}

/// Installs the upcall handler at [`CALLBACK_VECTOR`] and asks for it with
/// `HVM_PARAM_CALLBACK_IRQ` = vector type; returns the set_param result.
pub fn setup_upcall() -> i64 {
    setup_upcall_with(upcall)
}

/// As [`setup_upcall`] with another handler (a FIFO ABI guest's).
pub fn setup_upcall_with(handler: fn()) -> i64 {
    crate::idt::set_interrupt_handler(CALLBACK_VECTOR, handler);
    set_param_of(
        super::layout::DOMID_SELF,
        hvm::PARAM_CALLBACK_IRQ,
        (hvm::CALLBACK_TYPE_VECTOR << 56) | u64::from(CALLBACK_VECTOR),
    )
}

fn upcall() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    shared::clear_upcall_pending();
    let mut sel = shared::take_pending_sel();
    while sel != 0 {
        let w = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let mut bits = shared::deliverable(w);
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let port = w * 64 + b;
            shared::clear_pending(port as u32);
            if let Some(n) = EVENTS.get(port) {
                n.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(t) = LAST_TSC.get(port) {
                t.store(crate::cpu::rdtsc(), Ordering::SeqCst);
            }
        }
    }
}

/// Upcalls taken so far.
pub fn upcalls() -> u32 {
    UPCALLS.load(Ordering::SeqCst)
}

/// Events the upcall handler saw on `port` so far.
pub fn events(port: u32) -> u32 {
    EVENTS
        .get(port as usize)
        .map_or(0, |n| n.load(Ordering::SeqCst))
}

/// TSC when the handler last saw an event on `port` (< 64), 0 if never.
pub fn last_event_tsc(port: u32) -> u64 {
    LAST_TSC
        .get(port as usize)
        .map_or(0, |t| t.load(Ordering::SeqCst))
}

/// Opens an interrupt window of a few instructions (`sti; nop; ...;
/// cli`) in which a pending upcall is taken.
pub fn interrupt_window() {
    // SAFETY: the upcall handler runs on its own IST stack, preserves all
    // registers and returns; interrupts are off again afterwards.
    unsafe { asm!("sti", "nop", "nop", "nop", "nop", "cli", options(nostack)) };
}

/// Opens interrupt windows until `done()` or `spins` windows passed;
/// returns whether `done()` held.
pub fn wait_until(spins: u32, done: impl Fn() -> bool) -> bool {
    for _ in 0..spins {
        if done() {
            return true;
        }
        interrupt_window();
    }
    done()
}

/// `sti` then `SCHEDOP_block` with the instruction directly (the STI
/// shadow covers the hypercall itself), then `cli`. A pending upcall is
/// taken right after the hypercall returns.
pub fn sti_block() -> i64 {
    if !hypervisor::is_xen() {
        return -super::errno::ENOSYS;
    }
    let ret: u64;
    // SAFETY: SCHEDOP_block takes no argument; the upcall handler runs on
    // its own stack and preserves registers other than those declared.
    unsafe {
        if hypervisor::instruction() == "vmmcall" {
            asm!("sti", "vmmcall", "cli",
                inlateout("rax") nr::SCHED_OP => ret,
                inlateout("rdi") sched::BLOCK => _, inlateout("rsi") 0u64 => _,
                lateout("rdx") _, lateout("r10") _, lateout("r8") _,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        } else {
            asm!("sti", "vmcall", "cli",
                inlateout("rax") nr::SCHED_OP => ret,
                inlateout("rdi") sched::BLOCK => _, inlateout("rsi") 0u64 => _,
                lateout("rdx") _, lateout("r10") _, lateout("r8") _,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
    }
    ret as i64
}

/// `SCHEDOP_poll(ports, timeout)` (interrupts stay as they are).
pub fn poll(ports: &[u32], timeout_ns: u64) -> i64 {
    let mut p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        timeout: timeout_ns,
    };
    op(nr::SCHED_OP, sched::POLL, &mut p)
}

/// `set_timer_op(deadline)`: absolute system time in ns, 0 cancels.
pub fn set_timer_op(deadline: u64) -> i64 {
    // SAFETY: set_timer_op takes a number, not an address.
    unsafe { super::raw(nr::SET_TIMER_OP, deadline, 0, 0) }
}

/// `VCPUOP_set_singleshot_timer(vcpu, deadline, flags)`.
pub fn set_singleshot(vcpu_id: u32, deadline: u64, flags: u32) -> i64 {
    let mut t = SingleshotTimer {
        timeout_abs_ns: deadline,
        flags,
    };
    // SAFETY: `t` lives across the call; the hypervisor only reads it.
    unsafe {
        super::raw(
            nr::VCPU_OP,
            vcpu::SET_SINGLESHOT_TIMER,
            u64::from(vcpu_id),
            core::ptr::addr_of_mut!(t) as u64,
        )
    }
}

/// `VCPUOP_stop_singleshot_timer(vcpu)`.
pub fn stop_singleshot(vcpu_id: u32) -> i64 {
    // SAFETY: the command takes no buffer.
    unsafe {
        super::raw(
            nr::VCPU_OP,
            vcpu::STOP_SINGLESHOT_TIMER,
            u64::from(vcpu_id),
            0,
        )
    }
}
