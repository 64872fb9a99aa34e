//! The privileged instructions a PV kernel executes in ring 3, emulated as
//! Xen's `pv/emul-priv-op.c` does after the #GP they raise: RDMSR and
//! WRMSR (the MSRs Xen lets a PV guest read and write), MOV from and to
//! CR0, CR3, CR4 and the debug registers, CLTS, WBINVD, XSETBV, port I/O
//! under the virtual IOPL, CLI/STI (accepted and ignored, as Xen does).
//! Anything else, or from guest user mode, is the guest's own #GP.

use super::super::guest_va::fetch_insn;
use super::super::{Domain, Ending};
use crate::virt::pv::SegName;
use hv::pv::abi::{va, XEN_MSR_PAT};
use hv::pv::emul::{decode_priv, Port, Priv};
use hv::regbits::CR0_TS;

/// MSRs.
mod msr {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const PERF_CAPABILITIES: u32 = 0x345;
    pub const PAT: u32 = 0x277;
    pub const EFER: u32 = 0xc000_0080;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const SHADOW_GS_BASE: u32 = 0xc000_0102;
}

/// EFER as a 64-bit PV guest sees it: SCE, LME, LMA, NXE.
const GUEST_EFER: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

/// What emulating one instruction came to.
enum Done {
    /// Emulated: RIP moves past it.
    Next,
    /// The guest gets #GP(0) at the instruction.
    Fault,
}

impl Domain {
    /// General-purpose register `n` in the SDM's encoding (0 RAX .. 15 R15).
    pub(in crate::domain) fn gpr(&mut self, n: u8) -> u64 {
        match n & 15 {
            0 => self.vcpu.rax(),
            4 => self.vcpu.rsp(),
            n => self.vcpu.regs().get(n).unwrap_or(0),
        }
    }

    pub(in crate::domain) fn set_gpr(&mut self, n: u8, v: u64) {
        match n & 15 {
            0 => self.vcpu.set_rax(v),
            4 => self.vcpu.set_rsp(v),
            n => {
                if let Some(r) = self.vcpu.regs().slot(n) {
                    *r = v;
                }
            }
        }
    }

    /// The virtual CR0.TS (`clts`, a CR0 write).
    pub(super) fn pv_fpu_taskswitch(&mut self, set: bool) {
        if let Some(v) = self.xen.cpu.pv.as_deref_mut() {
            super::hypercall::fpu_taskswitch(v, &mut self.vcpu, set);
        }
    }

    /// Emulates the privileged instruction at RIP after a #GP(0); `None`
    /// when it was emulated, else how the domain goes on.
    pub(in crate::domain) fn pv_priv_op(&mut self) -> Option<Option<Ending>> {
        let mut b = [0u8; 15];
        let got = fetch_insn(self, &mut b);
        let kernel = self.pvv().is_some_and(|v| v.kernel_mode);
        let Some((op, len)) = decode_priv(&b[..got]) else {
            self.exits.exception += 1;
            return Some(self.pv_trap(13, Some(0)));
        };
        let done = match op {
            Priv::In { port, size } => {
                self.exits.io += 1;
                self.pv_port(port, size, None)
            }
            Priv::Out { port, size } => {
                self.exits.io += 1;
                let v = self.vcpu.rax();
                self.pv_port(port, size, Some(v))
            }
            _ if !kernel => Done::Fault,
            Priv::Rdmsr => {
                self.exits.msr += 1;
                self.pv_rdmsr()
            }
            Priv::Wrmsr => {
                self.exits.msr += 1;
                self.pv_wrmsr()
            }
            Priv::ReadCr { cr, reg } => {
                self.exits.other += 1;
                match self.pv_read_cr(cr) {
                    Some(v) => {
                        self.set_gpr(reg, v);
                        Done::Next
                    }
                    None => Done::Fault,
                }
            }
            Priv::WriteCr { cr, reg } => {
                self.exits.other += 1;
                let v = self.gpr(reg);
                self.pv_write_cr(cr, v)
            }
            Priv::ReadDr { dr, reg } => {
                self.exits.other += 1;
                match self.pvv().map(|v| v.debugreg.get(u64::from(dr))) {
                    Some(Ok(v)) => {
                        self.set_gpr(reg, v);
                        Done::Next
                    }
                    _ => Done::Fault,
                }
            }
            Priv::WriteDr { dr, reg } => {
                self.exits.other += 1;
                let v = self.gpr(reg);
                match self.pvv_mut().map(|x| x.debugreg.set(u64::from(dr), v)) {
                    Some(Ok(_)) => Done::Next,
                    _ => Done::Fault,
                }
            }
            Priv::Clts => {
                self.exits.other += 1;
                self.pv_fpu_taskswitch(false);
                Done::Next
            }
            Priv::Wbinvd | Priv::Invd => {
                self.exits.other += 1;
                Done::Next
            }
            Priv::Xsetbv => {
                self.exits.other += 1;
                match self.vcpu.xsetbv_pv() {
                    Ok(()) => Done::Next,
                    Err(_) => Done::Fault,
                }
            }
            // Xen skips CLI/STI when the virtual IOPL admits them and
            // changes nothing (the upcall mask is the guest's to write).
            Priv::Cli | Priv::Sti => {
                self.exits.other += 1;
                if self.pv_iopl_ok() {
                    Done::Next
                } else {
                    Done::Fault
                }
            }
            // HLT is not among what Xen emulates for a PV guest (its
            // `validate`): the guest's own #GP, as string I/O, RDTSC(P)
            // (only with CR4.TSD) and RDPMC are.
            Priv::Hlt | Priv::StringIo | Priv::Rdtsc | Priv::Rdtscp | Priv::Rdpmc => Done::Fault,
        };
        match done {
            Done::Next => {
                let rip = self.vcpu.rip().wrapping_add(len as u64);
                self.vcpu.set_rip(rip);
                None
            }
            Done::Fault => {
                self.exits.exception += 1;
                Some(self.pv_trap(13, Some(0)))
            }
        }
    }

    /// Whether the guest's virtual privilege admits I/O: its kernel counts
    /// as ring 1 (ring 0 with `VMASST_TYPE_architectural_iopl`), its user
    /// mode as ring 3 (`iopl_ok`).
    fn pv_iopl_ok(&self) -> bool {
        let Some(v) = self.pvv() else {
            return false;
        };
        let arch = self
            .pv
            .as_ref()
            .is_some_and(|p| p.assist(hv::pv::abi::vmasst::TYPE_ARCHITECTURAL_IOPL));
        let cpl = if v.kernel_mode { u64::from(!arch) } else { 3 };
        (v.iopl >> 12) & 3 >= cpl
    }

    /// IN (`out` = None) or OUT of `size` bytes. Ports of the domain's
    /// passed-through functions reach the device, PIT channel 2 and port
    /// 0x61 are the domain's model of them (as for a PVH domain); reads
    /// elsewhere give all ones and writes are dropped (port 0xE9 is the
    /// debug console).
    fn pv_port(&mut self, port: Port, size: u8, out: Option<u64>) -> Done {
        if !self.pv_iopl_ok() {
            return Done::Fault;
        }
        let port = match port {
            Port::Imm(p) => u16::from(p),
            Port::Dx => self.vcpu.regs().rdx as u16,
        };
        self.exits.by_port.add(port);
        let mask: u64 = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => 0xffff_ffff,
        };
        match out {
            Some(v) => {
                if self.pci_port(port, size) {
                    // SAFETY: an I/O BAR port of this domain's functions
                    // (`pci_port` just checked).
                    unsafe { crate::arch::cpu::port_out(port, size, v as u32) };
                } else if size == 1 && hv::vpit::Channel2::handles(port) {
                    self.pit_port(port, Some(v as u8));
                } else if port == 0xe9 && size == 1 {
                    self.console_byte(v as u8);
                }
            }
            None => {
                let v = if self.pci_port(port, size) {
                    // SAFETY: an I/O BAR port of this domain's functions
                    // (`pci_port` just checked).
                    u64::from(unsafe { crate::arch::cpu::port_in(port, size) })
                } else if size == 1 && hv::vpit::Channel2::handles(port) {
                    self.pit_port(port, None).map_or(mask, u64::from)
                } else {
                    mask
                };
                let rax = (self.vcpu.rax() & !mask) | (v & mask);
                self.vcpu.set_rax(rax);
            }
        }
        Done::Next
    }

    fn pv_rdmsr(&mut self) -> Done {
        let reg = self.vcpu.regs().rcx as u32;
        let first_vcpu = self.vcpus.cur == 0;
        let v = match reg {
            msr::APIC_BASE => Some(0xfee0_0000 | (1 << 11) | if first_vcpu { 1 << 8 } else { 0 }),
            msr::FS_BASE => Some(self.vcpu.seg(SegName::Fs).base),
            msr::GS_BASE => Some(self.vcpu.seg(SegName::Gs).base),
            msr::SHADOW_GS_BASE => self.pvv().map(|v| v.shadow_gs),
            msr::TSC => Some(crate::arch::cpu::rdtsc()),
            msr::EFER => Some(GUEST_EFER),
            msr::PAT => Some(XEN_MSR_PAT),
            // Fast strings; BTS and PEBS unavailable (bits 11, 12).
            msr::MISC_ENABLE => Some(1 | (1 << 11) | (1 << 12)),
            msr::PERF_CAPABILITIES => Some(0),
            _ => None,
        };
        let v = match v {
            Some(v) => v,
            None => {
                // Xen fakes reads of MSRs the host has while the guest has
                // no #GP handler yet (early boot), rather than crash it.
                let no_handler = self.pvv().is_some_and(|v| v.traps[13].address == 0);
                if no_handler && reg >> 16 != 0x4000 && crate::arch::cpu::rdmsr_safe(reg).is_some()
                {
                    self.log_guest(alloc::format!("faking RDMSR {reg:#x}"));
                    0
                } else {
                    return Done::Fault;
                }
            }
        };
        self.vcpu.set_rax(v & 0xffff_ffff);
        self.vcpu.regs().rdx = v >> 32;
        Done::Next
    }

    fn pv_wrmsr(&mut self) -> Done {
        let reg = self.vcpu.regs().rcx as u32;
        let v = (self.vcpu.rax() & 0xffff_ffff) | (self.vcpu.regs().rdx << 32);
        match reg {
            msr::FS_BASE | msr::GS_BASE | msr::SHADOW_GS_BASE => {
                if !va::canonical(v) {
                    return Done::Fault;
                }
                match reg {
                    msr::FS_BASE => {
                        let s = self.vcpu.seg(SegName::Fs);
                        self.vcpu
                            .set_seg(SegName::Fs, crate::virt::pv::SegReg { base: v, ..s });
                    }
                    msr::GS_BASE => {
                        let s = self.vcpu.seg(SegName::Gs);
                        self.vcpu
                            .set_seg(SegName::Gs, crate::virt::pv::SegReg { base: v, ..s });
                    }
                    _ => {
                        if let Some(p) = self.pvv_mut() {
                            p.shadow_gs = v;
                        }
                    }
                }
                Done::Next
            }
            // Writes that keep the value are allowed (Linux writes EFER
            // back); changes are not.
            msr::EFER if v == GUEST_EFER => Done::Next,
            msr::PAT if v == XEN_MSR_PAT => Done::Next,
            msr::MISC_ENABLE if v == 1 | (1 << 11) | (1 << 12) => Done::Next,
            _ => Done::Fault,
        }
    }

    /// The guest's view of CR0 (TS virtual), CR2, CR3 (its kernel root),
    /// CR4, CR8.
    fn pv_read_cr(&mut self, cr: u8) -> Option<u64> {
        let v = self.pvv()?;
        match cr {
            0 => {
                let ts = if v.ts { CR0_TS } else { 0 };
                Some((self.vcpu.cr0() & !CR0_TS) | ts)
            }
            2 => {
                let mut b = [0u8; 8];
                let gpa = self.vcpu_info_gpa(self.vcpus.cur)?;
                self.mem.read(gpa + 16, &mut b).ok()?;
                Some(u64::from_le_bytes(b))
            }
            3 => Some(v.roots.kernel.unwrap_or(0) << 12),
            4 => Some(self.vcpu.cr4()),
            8 => Some(0),
            _ => None,
        }
    }

    /// CR0: only TS may change (`fpu_taskswitch`); CR3: a new kernel root
    /// (`MMUEXT_NEW_BASEPTR`); CR4: accepted and ignored, as Xen keeps the
    /// real CR4 its own.
    fn pv_write_cr(&mut self, cr: u8, v: u64) -> Done {
        match cr {
            0 => {
                let cur = self.vcpu.cr0() & !CR0_TS;
                if (v & !CR0_TS) != cur {
                    return Done::Fault;
                }
                self.pv_fpu_taskswitch(v & CR0_TS != 0);
                Done::Next
            }
            3 => match self.with_pv_cpu(|c| c.new_baseptr(v >> 12)) {
                Some(Ok(())) => Done::Next,
                _ => Done::Fault,
            },
            4 | 8 => Done::Next,
            _ => Done::Fault,
        }
    }
}
