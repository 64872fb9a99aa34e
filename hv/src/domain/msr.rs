//! RDMSR and WRMSR as the guest sees them.

use super::{xen, Domain};
use crate::virt;
use hv::vlapic::VLapic;
use vmm_glue::log;

impl Domain {
    /// Emulates RDMSR/WRMSR; `false` means #GP.
    pub(super) fn msr(&mut self, write: bool) -> bool {
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
            // The local APIC starts in xAPIC mode; the guest may switch it
            // to x2APIC but not move or disable it.
            (0x1b, false) => read(self.xen.cpu.lapic.base(), self),
            (0x1b, true) => self.xen.cpu.lapic.set_base(value).is_ok(),
            (m, false) if VLapic::is_x2apic_msr(m) => match self.xen.cpu.lapic.read_msr(m) {
                Some(v) => read(v, self),
                None => false,
            },
            (m, true) if VLapic::is_x2apic_msr(m) => {
                let ok = self.xen.cpu.lapic.write_msr(m, value).is_ok();
                // The ICR: the part of an IPI for other vCPUs.
                if ok && m == 0x830 {
                    self.ipi_others(value);
                }
                ok
            }
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
}
