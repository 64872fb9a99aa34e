//! RDMSR and WRMSR as the guest sees them.

use super::{xen, Domain};
use crate::virt;
use hv::vlapic::VLapic;
use vmm_glue::log;

/// MSR numbers (Intel SDM vol. 4; AMD APM vol. 2 appendix A).
mod num {
    pub const FEATURE_CONTROL: u32 = 0x3a;
    pub const PLATFORM_INFO: u32 = 0xce;
    pub const MISC_FEATURES: u32 = 0x140;
    pub const DEBUGCTL: u32 = 0x1d9;
    pub const HWCR: u32 = 0xc001_0015;
    pub const NB_CFG: u32 = 0xc001_001f;
    pub const C1E: u32 = 0xc001_0055;
    pub const DE_CFG: u32 = 0xc001_1029;
}

/// Whether the host (and so the guest) is an Intel CPU.
fn intel() -> bool {
    crate::arch::cpu::cpuid(0, 0).ebx == u32::from_le_bytes(*b"Genu")
}

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
            // Each of the eight entries a memory type (UC, WC, WT, WP, WB,
            // UC-), else #GP, as Xen checks.
            (0x277, true)
                if value
                    .to_le_bytes()
                    .iter()
                    .all(|&t| matches!(t, 0 | 1 | 4..=7)) =>
            {
                self.vcpu.set_pat(value);
                true
            }
            // The local APIC's mode: xAPIC, x2APIC or disabled
            // (`hv::vlapic`).
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
            // DEBUGCTL reads 0. LBR and BTF, which Xen lets a VMX guest
            // set, are accepted and ignored (Xen ignores LBR where it
            // knows no model's LBR MSRs); other bits #GP.
            (num::DEBUGCTL, false) => read(0, self),
            (num::DEBUGCTL, true) => value & !3 == 0,
            // PLATFORM_INFO is read-only: CPUID faulting (bit 32), which
            // Xen offers every HVM guest; MISC_FEATURES_ENABLES turns it on.
            (num::PLATFORM_INFO, false) => read(1 << 32, self),
            (num::MISC_FEATURES, false) => read(u64::from(self.xen.cpu.cpuid_faulting), self),
            (num::MISC_FEATURES, true) if value & !1 == 0 => {
                self.xen.cpu.cpuid_faulting = value != 0;
                true
            }
            // Read as Xen answers them (no guest writes): Intel's feature
            // control locked with VMX off; AMD's HWCR 0 and DE_CFG with
            // LFENCE serialising; the C1E and NB_CFG registers 0 on both.
            (num::FEATURE_CONTROL, false) if intel() => read(1, self),
            (num::HWCR, false) if !intel() => read(0, self),
            (num::DE_CFG, false) if !intel() => read(1 << 1, self),
            (num::C1E | num::NB_CFG, false) => read(0, self),
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

    /// Whether CPUID #GPs here: CPUID faulting is on and the guest is not
    /// at CPL 0 (Intel's CPUID-faulting feature, which Xen emulates).
    pub(super) fn cpuid_faults(&self) -> bool {
        self.xen.cpu.cpuid_faulting && self.vcpu.cpl() != 0
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
