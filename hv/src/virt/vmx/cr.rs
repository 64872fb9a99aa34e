//! Control-register virtualisation: the guest's CR0/CR4 live in the read
//! shadows, the real values keep the bits VMX fixes; MOV to/from CR, CLTS
//! and LMSW exits are emulated here.

use super::vmcs::{self, entry_ctl};
use super::{vmread, vmwrite, VmxVcpu, CR0_PE, CR0_PG, CR0_TS, EFER_LMA, EFER_LME};
use hv::hvm::vmx::{cr0_write_ok, cr4_write_ok, decode_cr_access, CrAccess, Fixed};

impl VmxVcpu {
    /// The real CR0 for a guest value: the bits VMX fixes forced.
    pub(super) fn real_cr0(&self, guest: u64) -> u64 {
        Fixed {
            fixed0: self.cr0_fixed0,
            fixed1: self.cr0_fixed1,
        }
        .unrestricted_cr0()
        .apply(guest)
    }

    /// The real CR4 for a guest value. OSXSAVE, when the CPU has it, is
    /// not fixed: the guest owns it (it is outside the guest/host mask).
    pub(super) fn real_cr4(&self, guest: u64) -> u64 {
        Fixed {
            fixed0: self.cr4_fixed0,
            fixed1: self.cr4_fixed1,
        }
        .apply(guest)
    }

    /// General-purpose register `n` in the SDM's encoding (0 RAX .. 15 R15).
    pub(super) fn gpr(&self, n: u64) -> u64 {
        let r = &self.run.regs;
        match n {
            0 => self.run.rax,
            1 => r.rcx,
            2 => r.rdx,
            3 => r.rbx,
            4 => vmread(vmcs::GUEST_RSP),
            5 => r.rbp,
            6 => r.rsi,
            7 => r.rdi,
            8 => r.r8,
            9 => r.r9,
            10 => r.r10,
            11 => r.r11,
            12 => r.r12,
            13 => r.r13,
            14 => r.r14,
            _ => r.r15,
        }
    }

    pub(super) fn set_gpr(&mut self, n: u64, v: u64) {
        let r = &mut self.run.regs;
        match n {
            0 => self.run.rax = v,
            1 => r.rcx = v,
            2 => r.rdx = v,
            3 => r.rbx = v,
            4 => vmwrite(vmcs::GUEST_RSP, v),
            5 => r.rbp = v,
            6 => r.rsi = v,
            7 => r.rdi = v,
            8 => r.r8 = v,
            9 => r.r9 = v,
            10 => r.r10 = v,
            11 => r.r11 = v,
            12 => r.r12 = v,
            13 => r.r13 = v,
            14 => r.r14 = v,
            _ => r.r15 = v,
        }
    }

    /// The guest writes CR0: keep the shadow, force VMX's fixed bits, and
    /// enter or leave long mode as the CPU would.
    pub(super) fn write_cr0(&mut self, v: u64) -> bool {
        if !cr0_write_ok(v) {
            return false;
        }
        let old = vmread(vmcs::GUEST_CR0);
        let efer = vmread(vmcs::GUEST_EFER);
        let mut entry = vmread(vmcs::ENTRY_CONTROLS);
        if v & CR0_PG != 0 && old & CR0_PG == 0 && efer & EFER_LME != 0 {
            vmwrite(vmcs::GUEST_EFER, efer | EFER_LMA);
            entry |= u64::from(entry_ctl::IA32E_MODE_GUEST);
        } else if v & CR0_PG == 0 && old & CR0_PG != 0 {
            vmwrite(vmcs::GUEST_EFER, efer & !EFER_LMA);
            entry &= !u64::from(entry_ctl::IA32E_MODE_GUEST);
        }
        vmwrite(vmcs::ENTRY_CONTROLS, entry);
        self.cr0_shadow = v;
        vmwrite(vmcs::CR0_SHADOW, v);
        vmwrite(vmcs::GUEST_CR0, self.real_cr0(v));
        true
    }

    /// The guest writes CR4 (a bit in the guest/host mask changed): what
    /// VMX allows and the guest's CPUID offers, under the SDM's rules.
    pub(crate) fn write_cr4(&mut self, v: u64) -> bool {
        self.make_current();
        let lma = vmread(vmcs::GUEST_EFER) & EFER_LMA != 0;
        let cr3 = vmread(vmcs::GUEST_CR3);
        if !cr4_write_ok(v, self.cr4_fixed1)
            || !hv::hvm::cr4::write_ok(self.cr4_shadow, v, self.cr4_valid, lma, cr3)
        {
            return false;
        }
        self.cr4_shadow = v;
        vmwrite(vmcs::CR4_SHADOW, v);
        vmwrite(vmcs::GUEST_CR4, self.real_cr4(v));
        true
    }

    /// Emulates a control-register access exit; `false` means #GP.
    pub(super) fn cr_access(&mut self, qual: u64) -> bool {
        match decode_cr_access(qual) {
            CrAccess::MovTo { cr, gpr } => {
                let v = self.gpr(gpr.into());
                match cr {
                    0 => self.write_cr0(v),
                    3 => {
                        vmwrite(vmcs::GUEST_CR3, v);
                        true
                    }
                    4 => self.write_cr4(v),
                    8 => true, // no virtual APIC yet: the TPR is ignored
                    _ => false,
                }
            }
            CrAccess::MovFrom { cr, gpr } => {
                let v = match cr {
                    3 => vmread(vmcs::GUEST_CR3),
                    8 => 0,
                    _ => return false,
                };
                self.set_gpr(gpr.into(), v);
                true
            }
            CrAccess::Clts => self.write_cr0(self.cr0_shadow & !CR0_TS),
            CrAccess::Lmsw { source } => {
                // LMSW: loads PE, MP, EM, TS; cannot clear PE.
                let v = (self.cr0_shadow & !0xe) | u64::from(source) | (self.cr0_shadow & CR0_PE);
                self.write_cr0(v)
            }
        }
    }
}
