//! Domains: a guest's memory, nested page tables and vCPU, and the handling
//! of its exits (CPUID, MSRs, port I/O, hypercalls, faults). Nothing a guest
//! does here may stop the hypervisor: a guest that cannot go on is
//! destroyed with a log line that says why.

use crate::virt::guest_mem::{GuestMemory, OutOfRange};
use crate::virt::{self, GuestTables, Vcpu, Virt, VmExit};
use alloc::string::String;
use alloc::vec::Vec;
use hv::gpt;

/// Xen hypercall numbers and errno values (xen/include/public/xen.h,
/// errno.h).
mod xen {
    pub const XEN_VERSION: u64 = 17;
    pub const CONSOLE_IO: u64 = 18;
    pub const SCHED_OP: u64 = 29;
    pub const CONSOLEIO_WRITE: u64 = 0;
    pub const SCHEDOP_YIELD: u64 = 0;
    pub const SCHEDOP_BLOCK: u64 = 1;
    pub const SCHEDOP_SHUTDOWN: u64 = 2;
    pub const XENVER_VERSION: u64 = 0;
    pub const XENVER_EXTRAVERSION: u64 = 1;
    pub const ENOSYS: i64 = 38;
    pub const EFAULT: i64 = 14;
    pub const EINVAL: i64 = 22;
    /// The version this hypervisor reports (the Xen ABI it follows).
    pub const VERSION: (u64, u64) = (4, 17);
    /// CPUID base of the Xen leaves and the hypercall-page MSR.
    pub const CPUID_BASE: u32 = 0x4000_0000;
    pub const HYPERCALL_MSR: u32 = 0x4000_0000;
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

/// Exits taken, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitCounts {
    pub cpuid: u64,
    pub msr: u64,
    pub io: u64,
    pub hypercall: u64,
    pub hlt: u64,
    pub npf: u64,
    pub other: u64,
}

/// One guest domain (one vCPU for now).
#[derive(Debug)]
pub struct Domain {
    pub id: u16,
    pub name: String,
    pub mem: GuestMemory,
    // Kept for the lifetime of the domain: the vCPU's nested CR3 or EPT
    // pointer points here.
    _tables: GuestTables,
    pub vcpu: Vcpu,
    console: Vec<u8>,
    pub exits: ExitCounts,
    /// Set by an exit that gives up the CPU; ends the current slice.
    yield_cpu: bool,
}

/// Splits `[gva, gva + len)` into page pieces and calls `each(gpa, offset,
/// n)` for each, translating through the guest's own page tables; stops at
/// the first piece that fails.
fn for_each_page(
    dom: &Domain,
    gva: u64,
    len: usize,
    mut each: impl FnMut(u64, usize, usize) -> Result<(), OutOfRange>,
) -> Result<(), ()> {
    let (cr0, cr3, cr4, efer) = dom.vcpu.paging_state();
    let mut done = 0;
    while done < len {
        let va = gva.wrapping_add(done as u64);
        let gpa = gpt::translate(cr0, cr3, cr4, efer, va, |a, size| {
            let mut b = [0u8; 8];
            dom.mem.read(a, &mut b[..size]).ok()?;
            Some(u64::from_le_bytes(b))
        })
        .map_err(|_| ())?;
        let n = (4096 - (va & 0xfff) as usize).min(len - done);
        each(gpa, done, n).map_err(|_| ())?;
        done += n;
    }
    Ok(())
}

/// Reads guest-virtual memory into `buf`.
fn read_virt(dom: &Domain, gva: u64, buf: &mut [u8]) -> Result<(), ()> {
    let len = buf.len();
    for_each_page(dom, gva, len, |gpa, off, n| {
        dom.mem.read(gpa, &mut buf[off..off + n])
    })
}

/// Writes `data` to guest-virtual memory.
fn write_virt(dom: &Domain, gva: u64, data: &[u8]) -> Result<(), ()> {
    for_each_page(dom, gva, data.len(), |gpa, off, n| {
        dom.mem.write(gpa, &data[off..off + n])
    })
}

/// The length of the instruction at the guest's RIP if it is `opcode`
/// after optional prefixes; `None` if the bytes are something else.
fn insn_len(dom: &Domain, opcode: &[u8]) -> Option<u64> {
    let mut bytes = [0u8; 15];
    read_virt(dom, dom.vcpu.rip(), &mut bytes).ok()?;
    let long = dom.vcpu.long_mode();
    let mut i = 0;
    while i < 14 {
        match bytes[i] {
            0x66 | 0x67 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0xf0 => i += 1,
            0x40..=0x4f if long => i += 1,
            _ => break,
        }
    }
    bytes
        .get(i..i + opcode.len())
        .filter(|b| *b == opcode)
        .map(|_| (i + opcode.len()) as u64)
}

impl Domain {
    /// A domain over `mem` whose vCPU enters at `entry` with `rbx` (the
    /// PVH start info). `None` when memory is short.
    pub fn new(
        virt: &Virt,
        id: u16,
        name: String,
        mem: GuestMemory,
        entry: u32,
        rbx: u64,
    ) -> Option<Self> {
        let (tables, vcpu) = virt.new_pvh_vcpu(id, &mem, entry, rbx)?;
        Some(Self {
            id,
            name,
            mem,
            _tables: tables,
            vcpu,
            console: Vec::new(),
            exits: ExitCounts::default(),
            yield_cpu: false,
        })
    }

    fn prefix(&self) -> String {
        alloc::format!("[d{} {}]", self.id, self.name)
    }

    /// Runs the guest for one time slice: until the host timer ticks, the
    /// guest gives up the CPU (HLT, `SCHEDOP_yield` or `SCHEDOP_block`), or
    /// the domain ends.
    pub fn run_slice(&mut self, virt: &Virt) -> Slice {
        self.yield_cpu = false;
        loop {
            let exit = self.vcpu.run(virt);
            if let Some(end) = self.handle(exit) {
                self.flush_console();
                return Slice::Ended(end);
            }
            if core::mem::take(&mut self.yield_cpu) {
                return Slice::Yielded;
            }
        }
    }

    fn destroy(&self, why: String) -> Option<Ending> {
        log::error!(
            "{} destroyed: {why}; guest state: {}",
            self.prefix(),
            self.vcpu.dump()
        );
        Some(Ending::Destroyed(why))
    }

    /// Advances RIP past the exiting instruction (its length as the CPU
    /// reports it, or decoded), or ends the domain if it cannot be decoded.
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

    fn handle(&mut self, exit: VmExit) -> Option<Ending> {
        match exit {
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
                if string {
                    return self.destroy(alloc::format!(
                        "string I/O on port {port:#x} is not supported"
                    ));
                }
                if write {
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
            VmExit::Hypercall => {
                self.exits.hypercall += 1;
                let (insn, name) = self.vcpu.hypercall_insn();
                if let Some(end) = self.skip(&insn, name) {
                    return Some(end);
                }
                self.hypercall()
            }
            VmExit::Hlt => {
                self.exits.hlt += 1;
                // HLT gives up the CPU; with no event sources yet the vCPU
                // is runnable again at once (a wake-up the guest must
                // tolerate, as after any interrupt).
                self.yield_cpu = true;
                self.skip(&[0xf4], "HLT")
            }
            VmExit::NestedPageFault { gpa, write, fetch } => {
                self.exits.npf += 1;
                let how = if fetch {
                    "executed"
                } else if write {
                    "wrote"
                } else {
                    "read"
                };
                self.destroy(alloc::format!(
                    "{how} guest-physical {gpa:#x}, which is not its memory"
                ))
            }
            VmExit::Shutdown => self.destroy(String::from("triple fault")),
            VmExit::Invalid => self.destroy(String::from(
                "the CPU refused the guest state (VMEXIT_INVALID)",
            )),
            VmExit::ExternalInterrupt => {
                // The host handled the interrupt; a timer tick ends the
                // slice.
                self.yield_cpu = crate::arch::lapic::take_tick();
                None
            }
            VmExit::SliceEnd => {
                self.yield_cpu = true;
                None
            }
            VmExit::Xsetbv => {
                self.exits.other += 1;
                self.vcpu.inject_exception(13, Some(0));
                None
            }
            VmExit::Exception { vector, .. } => {
                self.destroy(alloc::format!("exception {vector} intercepted"))
            }
            VmExit::Unknown(code) => self.destroy(alloc::format!("unhandled exit code {code:#x}")),
        }
    }

    fn cpuid(&mut self) {
        let leaf = self.vcpu.rax() as u32;
        let sub = self.vcpu.regs().rcx as u32;
        let (a, b, c, d) = match leaf {
            xen::CPUID_BASE => {
                let sig = b"XenVMMXenVMM";
                let w = |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
                (xen::CPUID_BASE + 4, w(0), w(4), w(8))
            }
            0x4000_0001 => (((xen::VERSION.0 << 16) | xen::VERSION.1) as u32, 0, 0, 0),
            0x4000_0002 => (1, xen::HYPERCALL_MSR, 0, 0),
            0x4000_0003 => (0, 0, 0, 0),
            // HVM features: vCPU id (bit 3) and domain id (bit 4) present.
            0x4000_0004 => ((1 << 3) | (1 << 4), 0, u32::from(self.id), 0),
            0x4000_0005..=0x4fff_ffff => (0, 0, 0, 0),
            _ => {
                let r = crate::arch::cpu::cpuid(leaf, sub);
                let (mut a, mut b, mut c, mut d) = (r.eax, r.ebx, r.ecx, r.edx);
                match leaf {
                    1 => {
                        // No VMX/SMX, no XSAVE/AVX (state switching is FXSAVE
                        // only for now), no x2APIC yet; the hypervisor bit set.
                        c &= !((1 << 5) | (1 << 6) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28));
                        c |= 1 << 31;
                        b &= 0x00ff_ffff; // initial APIC id 0
                    }
                    7 if sub == 0 => b &= !((1 << 5) | 0xffff_0000), // AVX2, AVX-512
                    0xd => (a, b, c, d) = (0, 0, 0, 0),
                    0x8000_0001 => c &= !(1 << 2), // SVM
                    0x8000_000a => (a, b, c, d) = (0, 0, 0, 0),
                    _ => {}
                }
                (a, b, c, d)
            }
        };
        self.vcpu.set_rax(u64::from(a));
        let r = self.vcpu.regs();
        r.rbx = u64::from(b);
        r.rcx = u64::from(c);
        r.rdx = u64::from(d);
    }

    /// Emulates RDMSR/WRMSR; `false` means #GP.
    fn msr(&mut self, write: bool) -> bool {
        let msr = self.vcpu.regs().rcx as u32;
        let value = (self.vcpu.rax() & 0xffff_ffff) | (self.vcpu.regs().rdx << 32);
        let read = |v: u64, d: &mut Self| {
            d.vcpu.set_rax(v & 0xffff_ffff);
            d.vcpu.regs().rdx = v >> 32;
            true
        };
        match (msr, write) {
            (0xc000_0080, false) => read(self.vcpu.efer(), self),
            (0xc000_0080, true) => {
                // SCE, LME, LMA, NXE only.
                if value & !((1 << 0) | (1 << 8) | (1 << 10) | (1 << 11)) != 0 {
                    return false;
                }
                self.vcpu.set_efer(value);
                true
            }
            (0x277, false) => read(self.vcpu.pat(), self),
            (0x277, true) => {
                self.vcpu.set_pat(value);
                true
            }
            (0x1b, false) => read(0xfee0_0900, self),
            (0x10, false) => read(crate::arch::cpu::rdtsc(), self),
            (xen::HYPERCALL_MSR, true) => self.hypercall_page(value),
            _ => {
                log::debug!(
                    "{} {} of unknown MSR {msr:#x}: #GP",
                    self.prefix(),
                    if write { "write" } else { "read" }
                );
                false
            }
        }
    }

    /// The guest asks for the hypercall page at guest-physical `gpa`.
    fn hypercall_page(&mut self, gpa: u64) -> bool {
        if gpa & 0xfff != 0 {
            return false;
        }
        let mut page = [0u8; 4096];
        virt::hypercall_stubs(&mut page, self.vcpu.hypercall_insn().0);
        self.mem.write(gpa, &page).is_ok()
    }

    fn hypercall(&mut self) -> Option<Ending> {
        let long = self.vcpu.long_mode();
        let nr = self.vcpu.rax() & if long { u64::MAX } else { 0xffff_ffff };
        let r = *self.vcpu.regs();
        let args = if long {
            [r.rdi, r.rsi, r.rdx, r.r10, r.r8]
        } else {
            [r.rbx, r.rcx, r.rdx, r.rsi, r.rdi]
        };
        let result: i64 = match nr {
            xen::XEN_VERSION => match args[0] {
                xen::XENVER_VERSION => ((xen::VERSION.0 << 16) | xen::VERSION.1) as i64,
                xen::XENVER_EXTRAVERSION => {
                    let mut text = [0u8; 16];
                    text[..4].copy_from_slice(b"-hv\0");
                    if write_virt(self, args[1], &text).is_ok() {
                        0
                    } else {
                        -xen::EFAULT
                    }
                }
                _ => -xen::ENOSYS,
            },
            xen::CONSOLE_IO => match args[0] {
                xen::CONSOLEIO_WRITE => {
                    let len = (args[1] as usize).min(4096);
                    let mut buf = alloc::vec![0u8; len];
                    if read_virt(self, args[2], &mut buf).is_ok() {
                        for b in buf {
                            self.console_byte(b);
                        }
                        0
                    } else {
                        -xen::EFAULT
                    }
                }
                _ => -xen::ENOSYS,
            },
            xen::SCHED_OP => match args[0] {
                xen::SCHEDOP_YIELD | xen::SCHEDOP_BLOCK => {
                    // Block has no event to wait for yet: like yield.
                    self.yield_cpu = true;
                    0
                }
                xen::SCHEDOP_SHUTDOWN => {
                    let mut reason = [0u8; 4];
                    if read_virt(self, args[1], &mut reason).is_err() {
                        -xen::EFAULT
                    } else {
                        let reason = u32::from_le_bytes(reason);
                        if reason > 4 {
                            -xen::EINVAL
                        } else {
                            self.flush_console();
                            let what = ["poweroff", "reboot", "suspend", "crash", "watchdog"]
                                [reason as usize];
                            log::info!("{} shut down: {what}", self.prefix());
                            return Some(Ending::Shutdown(reason));
                        }
                    }
                }
                _ => -xen::ENOSYS,
            },
            _ => {
                log::debug!("{} unknown hypercall {nr}: -ENOSYS", self.prefix());
                -xen::ENOSYS
            }
        };
        self.vcpu.set_rax(result as u64);
        None
    }

    /// Collects console output and prints it a line at a time.
    fn console_byte(&mut self, b: u8) {
        match b {
            b'\n' => self.flush_console(),
            b'\r' => {}
            _ if self.console.len() >= 200 => {
                self.flush_console();
                self.console.push(b);
            }
            _ => self.console.push(b),
        }
    }

    fn flush_console(&mut self) {
        if self.console.is_empty() {
            return;
        }
        let text: String = self
            .console
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        log::info!("{} {text}", self.prefix());
        self.console.clear();
    }
}
