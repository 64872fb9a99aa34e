//! Domains: a guest's memory, nested page tables and vCPUs (`vcpus`), and
//! the handling of their exits (CPUID, MSRs, port I/O, hypercalls,
//! faults). Nothing a guest does here may stop the hypervisor: a guest
//! that cannot go on is destroyed with a log line that says why.

mod cpuid;
mod events;
mod exits;
pub use exits::ExitCounts;
mod fifo;
mod guest_va;
mod hypercall;
mod mmio;
mod msr;
mod pci;
pub(crate) mod pv;
pub use pv::PvInput;
mod space;
mod state;
pub mod time;
mod vcpus;

use crate::virt::guest_mem::GuestMemory;
use crate::virt::{Vcpu, Virt, VmExit};
use alloc::string::String;
use alloc::vec::Vec;
use guest_va::insn_len;
use space::GuestSpace;
use vmm_glue::log;

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
use hv::hub::Hub;
use hv::pvconsole::Source;

/// What the guest learns about the hypervisor (xen/include/public/xen.h,
/// arch-x86/cpuid.h).
pub(crate) mod xen {
    /// The version this hypervisor reports (the Xen ABI it follows).
    pub const VERSION: (u64, u64) = (4, 17);
    /// CPUID base of the Xen leaves and the hypercall-page MSR.
    pub const CPUID_BASE: u32 = 0x4000_0000;
    pub const HYPERCALL_MSR: u32 = 0x4000_0000;
}

/// The log lines a guest causes, rate-limited per domain by its console:
/// borrowed by handlers that log beside the other components they change.
pub(super) struct GuestLog<'a> {
    id: u16,
    name: &'a str,
    console: &'a mut hv::console::Console,
}

impl<'a> GuestLog<'a> {
    #[inline]
    fn new(id: u16, name: &'a str, console: &'a mut hv::console::Console) -> Self {
        Self { id, name, console }
    }

    /// Logs `what` unless the domain's rate limit holds it back.
    #[inline(never)]
    pub(super) fn log(&mut self, what: String) {
        if let Some(n) = self.console.log_allowed(time::now_ns()) {
            let s = hv::ratelimit::Suppressed(n);
            log::info!("[d{} {}] {what}{s}", self.id, self.name);
        }
    }
}

/// How a domain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `SCHEDOP_shutdown` with this reason (0 poweroff, 1 reboot, 2 suspend,
    /// 3 crash, 4 watchdog).
    Shutdown(u32),
    /// Destroyed by the hypervisor, with the reason.
    Destroyed(String),
}

/// How a time slice of a domain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slice {
    /// The domain gave up the CPU (HLT, `SCHEDOP_yield`/`block`) or its
    /// slice ran out (a host timer tick); it can run again.
    Yielded,
    /// The domain is over.
    Ended(Ending),
}

/// One guest domain, a composition of components that each own one piece
/// of the data flow: its guest-physical space (`mem`: memory and nested
/// page tables), its vCPUs (the one that runs now in `vcpu` with its Xen
/// state in `xen.cpu`, the others in the vCPU set `vcpus`), its Xen state
/// (`xen`), its console (`console`), its PCI frontend (`pci`). Code that
/// needs one component borrows that field, not the domain.
#[derive(Debug)]
pub struct Domain {
    pub id: u16,
    pub name: String,
    /// Guest memory and the nested page tables ([`space`]).
    pub mem: GuestSpace,
    pub vcpu: Vcpu,
    /// The vCPUs by index, the others than `vcpu` parked.
    vcpus: vcpus::VcpuSet,
    /// Console output and the guest's log lines ([`hv::console`]).
    console: hv::console::Console,
    pub exits: ExitCounts,
    /// PIT channel 2 and port 0x61 (`hv::vpit`), for a PVH domain.
    pit: hv::vpit::Channel2,
    /// The event channels' effects are taken into this buffer (kept, so
    /// that it does not allocate on every exit).
    effect_buf: Vec<hv::evtchn::Effect>,
    /// The current vCPU's code page as last translated (`guest_va`).
    code_page: core::cell::Cell<Option<guest_va::CodePage>>,
    /// Set by an exit that gives up the CPU; ends the current slice.
    yield_cpu: bool,
    xen: state::XenState,
    /// Passed-through PCI functions and their frontend connection.
    pci: Option<pci::PciFront>,
    /// The domain's own port bitmap, once an I/O BAR was handed to it.
    io_bitmap: Option<crate::virt::io_bitmap::IoBitmap>,
    /// A PV domain's state: page types, the hypervisor's frames.
    pv: Option<alloc::boxed::Box<pv::PvDomain>>,
}

impl Domain {
    /// A domain over `mem` with `nr_vcpus` vCPUs: vCPU 0 enters at
    /// `entry` with `rbx` (the PVH start info), the others start down.
    /// `None` when memory is short.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        virt: &Virt,
        id: u16,
        name: String,
        mem: GuestMemory,
        entry: u32,
        rbx: u64,
        rings: (u64, u64),
        ports: hv::hub::BackendPorts,
        nr_vcpus: u32,
    ) -> Option<Self> {
        let (tables, vcpu) = virt.new_pvh_vcpu(id, &mem, entry, rbx)?;
        let mut parked = Vec::new();
        parked.push(None);
        for k in 1..nr_vcpus.max(1) {
            parked.push(Some(vcpus::Parked {
                vcpu: virt.new_vcpu(id, k, &tables, entry, rbx)?,
                xen: state::VcpuXen::new(k),
            }));
        }
        Some(Self {
            id,
            name,
            mem: GuestSpace::new(mem, tables),
            vcpu,
            vcpus: vcpus::VcpuSet::new(parked),
            console: hv::console::Console::new(nr_vcpus),
            exits: ExitCounts::default(),
            pit: hv::vpit::Channel2::default(),
            effect_buf: Vec::new(),
            code_page: core::cell::Cell::new(None),
            yield_cpu: false,
            xen: state::XenState::new(id, rings.0, rings.1, ports),
            pci: None,
            io_bitmap: None,
            pv: None,
        })
    }

    /// The guest access of the current vCPU ([`guest_va::View`]),
    /// borrowing only the memory and the vCPU.
    #[inline]
    fn view(&self) -> guest_va::View<'_> {
        guest_va::view(&self.mem, &self.vcpu)
    }

    // Out of line: every guest console line and log uses it.
    #[inline(never)]
    fn prefix(&self) -> String {
        alloc::format!("[d{} {}]", self.id, self.name)
    }

    /// Runs the guest for one time slice: until the host timer ticks, the
    /// guest gives up the CPU (HLT, `SCHEDOP_yield` or `SCHEDOP_block`), or
    /// the domain ends.
    pub fn run_slice(&mut self, virt: &Virt, hub: &mut Hub) -> Slice {
        self.yield_cpu = false;
        self.update_time();
        loop {
            if self.is_pv() {
                // Inside the fast-path stub (CPL 0) the vCPU is between two
                // guest states: nothing is delivered until it is out.
                let in_stub = self.vcpu.cpl() == 0;
                self.pv_upcall_window(in_stub);
                if !in_stub {
                    if let Some(end) = self.pv_deliver_events() {
                        self.flush_console();
                        return Slice::Ended(end);
                    }
                }
                self.pv_publish();
            } else {
                self.deliver_upcall();
            }
            if self.mem.take_flush() {
                self.vcpu.flush_stage2(virt, &self.mem.tables);
            }
            let exit = self.vcpu.run(virt);
            if self.is_pv() {
                self.pv_sync();
            }
            if let Some(end) = self.handle(exit, hub) {
                self.flush_console();
                return Slice::Ended(end);
            }
            // Passed-through functions' interrupts that arrived (with this
            // exit, or while the host ran) become pirq events.
            let irqs = crate::passthrough::deliver(&mut hub.evtchn);
            self.exits.device_irqs += irqs as u64;
            if self.next_deadline().is_some() {
                self.fire_timers(hub, time::now_ns());
                // A timer the guest set (or moved) with this exit: the
                // host timer comes by then.
                if let Some(due) = self.next_deadline() {
                    crate::arch::lapic::arm_by(due);
                }
            }
            self.apply_effects(hub);
            if core::mem::take(&mut self.yield_cpu) {
                return Slice::Yielded;
            }
        }
    }

    /// A byte access to PIT channel 2 or port 0x61 (`hv::vpit`): writes
    /// `out`, or returns what a read gives.
    fn pit_port(&mut self, port: u16, out: Option<u8>) -> Option<u8> {
        let now = hv::vpit::ticks_at(crate::arch::time::now_ns());
        match out {
            Some(v) => {
                self.pit.write(port, v, now);
                None
            }
            None => self.pit.read(port, now),
        }
    }

    /// Sets the memory map `XENMEM_memory_map` reports: base, length, e820
    /// type.
    pub fn set_memory_map(&mut self, e820: Vec<(u64, u64, u32)>) {
        self.xen.e820 = e820;
    }

    /// A log line a guest caused, rate-limited per domain.
    pub(super) fn log_guest(&mut self, what: String) {
        GuestLog::new(self.id, &self.name, &mut self.console).log(what);
    }

    /// Ends the domain because of what its current vCPU did (named when
    /// the domain has several).
    fn destroy(&self, why: String) -> Option<Ending> {
        let why = if self.nr_vcpus() > 1 {
            alloc::format!("vCPU {}: {why}", self.vcpus.cur)
        } else {
            why
        };
        log::error!(
            "{} destroyed: {why}; guest state: {}",
            self.prefix(),
            self.vcpu.dump()
        );
        Some(Ending::Destroyed(why))
    }

    /// Advances RIP past the exiting instruction (its length as the CPU
    /// reports it, or decoded), or ends the domain if it cannot be decoded.
    /// MOV to CR4 that SVM intercepted: the source register from the exit
    /// or the instruction, the write checked by the vCPU (#GP if refused).
    fn cr4_write(&mut self, gpr: Option<u8>) -> Option<Ending> {
        let mut bytes = [0u8; 15];
        let n = guest_va::fetch_insn(self, &mut bytes);
        let decoded = hv::hvm::cr4::decode_mov_to_cr4(&bytes[..n]);
        let len = self.vcpu.exit_insn_len().or(decoded.map(|d| d.1));
        // RSP (4) is not among the registers common code holds.
        let value = match gpr.or(decoded.map(|d| d.0)) {
            Some(0) => Some(self.vcpu.rax()),
            Some(n) => self.vcpu.regs().get(n),
            None => None,
        };
        let (Some(value), Some(len)) = (value, len) else {
            return self.destroy(String::from("cannot decode a MOV to CR4"));
        };
        if self.vcpu.write_cr4(value) {
            let rip = self.vcpu.rip().wrapping_add(len);
            self.vcpu.set_rip(rip);
        } else {
            self.vcpu.inject_exception(13, Some(0));
        }
        None
    }

    #[link_section = ".text.hot"]
    fn skip(&mut self, opcode: &[u8], what: &str) -> Option<Ending> {
        match self.vcpu.exit_insn_len().or_else(|| insn_len(self, opcode)) {
            Some(len) => {
                let rip = self.vcpu.rip().wrapping_add(len);
                self.vcpu.set_rip(rip);
                None
            }
            None => self.destroy(alloc::format!(
                "cannot decode the {what} instruction at rip {:#x}",
                self.vcpu.rip()
            )),
        }
    }

    #[link_section = ".text.hot"]
    fn handle(&mut self, exit: VmExit, hub: &mut Hub) -> Option<Ending> {
        // A PV vCPU at CPL 0 is in its fast-path stub: host interrupts and
        // slice ends leave it there unless it is deciding about events,
        // anything else rolls it back.
        if self.is_pv() && self.vcpu.cpl() == 0 {
            let host = matches!(
                exit,
                VmExit::ExternalInterrupt | VmExit::SliceEnd | VmExit::InterruptWindow
            );
            if !host {
                return self.pv_stub_exit(exit, hub, false);
            }
            if self.pv_stub_deciding() {
                self.host_exit(exit);
                return self.pv_stub_exit(exit, hub, true);
            }
        }
        match exit {
            // A PV guest runs in ring 3: these instructions fault there
            // first on hardware that checks privilege before the intercept;
            // where the intercept comes first they are emulated the same
            // way (or given the guest's #GP), never injected.
            VmExit::Msr { .. } | VmExit::Xsetbv | VmExit::Hlt if self.is_pv() => {
                self.pv_priv_op().unwrap_or(None)
            }
            VmExit::Cpuid if self.cpuid_faults() => {
                self.exits.cpuid += 1;
                self.vcpu.inject_exception(13, Some(0));
                None
            }
            VmExit::Cpuid => {
                self.exits.cpuid += 1;
                self.cpuid();
                self.skip(&[0x0f, 0xa2], "CPUID")
            }
            VmExit::Msr { write } => {
                self.exits.msr += 1;
                let opcode: &[u8] = if write { &[0x0f, 0x30] } else { &[0x0f, 0x32] };
                if self.msr(write) {
                    self.skip(opcode, "RDMSR/WRMSR")
                } else {
                    self.vcpu.inject_exception(13, Some(0));
                    None
                }
            }
            VmExit::Io {
                port,
                size,
                write,
                string,
                next_rip,
                ..
            } => {
                self.exits.io += 1;
                self.exits.by_port.add(port);
                if string {
                    return self.destroy(alloc::format!(
                        "string I/O on port {port:#x} is not supported"
                    ));
                }
                if self.pci_port(port, size) {
                    // An I/O BAR of a passed-through function: the access
                    // goes to the device as the guest made it.
                    if write {
                        // SAFETY: an I/O BAR port of this domain's
                        // functions (`pci_port` just checked).
                        unsafe { crate::arch::cpu::port_out(port, size, self.vcpu.rax() as u32) };
                    } else {
                        // SAFETY: as for the write above.
                        let v = unsafe { crate::arch::cpu::port_in(port, size) };
                        let mask: u64 = match size {
                            1 => 0xff,
                            2 => 0xffff,
                            _ => 0xffff_ffff,
                        };
                        let rax = (self.vcpu.rax() & !mask) | (u64::from(v) & mask);
                        self.vcpu.set_rax(rax);
                    }
                } else if size == 1 && hv::vpit::Channel2::handles(port) {
                    let out = write.then(|| self.vcpu.rax() as u8);
                    if let Some(v) = self.pit_port(port, out) {
                        self.vcpu.set_rax((self.vcpu.rax() & !0xff) | u64::from(v));
                    }
                } else if write {
                    if port == 0xe9 && size == 1 {
                        self.console_byte(self.vcpu.rax() as u8);
                    }
                } else {
                    let mask = match size {
                        1 => 0xff,
                        2 => 0xffff,
                        _ => 0xffff_ffff,
                    };
                    let rax = self.vcpu.rax() | mask;
                    self.vcpu.set_rax(rax);
                }
                self.vcpu.set_rip(next_rip);
                None
            }
            // A PV guest makes hypercalls with SYSCALL; VMMCALL/VMCALL is an
            // undefined opcode for it, as under Xen.
            VmExit::Hypercall if self.is_pv() => {
                self.exits.exception += 1;
                self.pv_trap(6, None)
            }
            VmExit::Hypercall => {
                self.exits.hypercall += 1;
                let (insn, name) = self.vcpu.hypercall_insn();
                if let Some(end) = self.skip(&insn, name) {
                    return Some(end);
                }
                self.hypercall(hub)
            }
            VmExit::Hlt => {
                self.exits.hlt += 1;
                if let Some(end) = self.skip(&[0xf4], "HLT") {
                    return Some(end);
                }
                // As in Xen: HLT with interrupts disabled takes the vCPU
                // down, and a domain with no vCPU up is powered off (how a
                // PVH Linux without a power-off method ends `poweroff`).
                if self.vcpu.rflags() & RFLAGS_IF == 0 {
                    return self.vcpu_down(self.vcpus.cur, "halted with interrupts disabled");
                }
                // Otherwise HLT gives up the CPU until an interrupt is due:
                // an upcall, a self-IPI, or (a guest with neither set up)
                // its next turn.
                self.yield_cpu = true;
                if self.xen.callback_vector.is_some()
                    && !self.upcall_pending(self.vcpus.cur)
                    && self.xen.cpu.lapic.deliverable().is_none()
                {
                    self.xen.cpu.wait = events::Wait::Event;
                }
                None
            }
            VmExit::NestedPageFault { gpa, write, fetch } => {
                self.exits.npf += 1;
                self.npf(gpa, write, fetch, hub)
            }
            VmExit::Shutdown => self.destroy(String::from("triple fault")),
            VmExit::Invalid => self.destroy(String::from(
                "the CPU refused the guest state (VMEXIT_INVALID)",
            )),
            VmExit::ExternalInterrupt | VmExit::SliceEnd | VmExit::InterruptWindow => {
                self.host_exit(exit);
                None
            }
            VmExit::Cr4Write { gpr } => {
                self.exits.other += 1;
                self.cr4_write(gpr)
            }
            VmExit::Xsetbv => {
                self.exits.other += 1;
                match self.vcpu.xsetbv() {
                    Ok(()) => self.skip(&[0x0f, 0x01, 0xd1], "XSETBV"),
                    Err(fault) => {
                        let (vector, error) = fault.exception();
                        self.vcpu.inject_exception(vector, error);
                        None
                    }
                }
            }
            VmExit::Exception { vector, error, cr2 } if self.is_pv() => {
                self.pv_exception(vector, error, cr2)
            }
            VmExit::Exception { vector, .. } => {
                self.destroy(alloc::format!("exception {vector} intercepted"))
            }
            VmExit::Unknown(code) => self.destroy(alloc::format!("unhandled exit code {code:#x}")),
        }
    }

    /// Counts an exit the host caused or asked for, and sees whether it
    /// ends the slice.
    #[link_section = ".text.hot"]
    fn host_exit(&mut self, exit: VmExit) {
        match exit {
            VmExit::ExternalInterrupt => {
                self.exits.interrupt += 1;
                // The host handled the interrupt; a timer tick ends the
                // slice.
                self.yield_cpu = crate::arch::lapic::take_tick();
            }
            VmExit::SliceEnd => {
                self.exits.interrupt += 1;
                self.yield_cpu = true;
            }
            // The guest can take an interrupt now: the next entry delivers
            // what is pending (the caller injects it).
            _ => self.exits.window += 1,
        }
    }

    /// Collects hypervisor console output (`console_io`, port 0xE9) and
    /// prints it a line at a time.
    fn console_byte(&mut self, b: u8) {
        self.line_byte(Source::Hypervisor, b);
    }

    /// Collects a byte from `from` and prints the line it completes.
    fn line_byte(&mut self, from: Source, b: u8) {
        if let Some(text) = self.console.byte(from, b) {
            self.print_line(text);
        }
    }

    /// Prints what both sources left of a line.
    fn flush_console(&mut self) {
        for from in [Source::Hypervisor, Source::Ring] {
            if let Some(text) = self.console.take_line(from) {
                self.print_line(text);
            }
        }
    }

    /// Prints a line of the guest's console.
    fn print_line(&self, text: String) {
        log::info!("{} {text}", self.prefix());
    }
}
