//! Loading a checked start state (`VCPUOP_initialise`, or a STARTUP
//! IPI's real mode) into a VMCS.

use super::vmcs::{self, ar};
use super::{vmwrite, VmxVcpu, CR0_PE, CR0_PG, EFER_LMA};
use crate::virt::start::{StartSeg, StartState};
use crate::virt::GuestRegs;

/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;

/// VMX access rights for a packed attribute (bits 8..12 move to 12..16);
/// a null segment is unusable.
fn access(attr: u16) -> u64 {
    if attr == 0 {
        return ar::UNUSABLE.into();
    }
    let a = u64::from(attr);
    (a & 0xff) | ((a & 0xf00) << 4)
}

impl VmxVcpu {
    /// Loads `s` (see [`crate::virt::Vcpu::load_start_state`]). `false`
    /// for CR4 bits this CPU's VMX does not allow, and for 32-bit PAE
    /// paging (its PDPTEs would have to be loaded from the VMCS).
    pub fn load_start_state(&mut self, s: &StartState) -> bool {
        if s.cr4 & !self.cr4_fixed1 != 0 {
            return false;
        }
        if s.cr0 & CR0_PG != 0 && s.cr4 & CR4_PAE != 0 && s.efer & EFER_LMA == 0 {
            return false;
        }
        self.make_current();
        let g = &s.gprs;
        self.run.regs = GuestRegs {
            rcx: g[1],
            rdx: g[2],
            rbx: g[3],
            rbp: g[5],
            rsi: g[6],
            rdi: g[7],
            ..GuestRegs::default()
        };
        self.run.rax = g[0];
        self.exit_insn_len = None;
        self.cr0_shadow = s.cr0;
        self.cr4_shadow = s.cr4;
        vmwrite(vmcs::CR0_SHADOW, s.cr0);
        vmwrite(vmcs::CR4_SHADOW, s.cr4);
        vmwrite(vmcs::GUEST_CR0, self.real_cr0(s.cr0));
        vmwrite(vmcs::GUEST_CR4, self.real_cr4(s.cr4));
        vmwrite(vmcs::GUEST_CR3, s.cr3);
        vmwrite(vmcs::GUEST_EFER, s.efer);
        vmwrite(vmcs::GUEST_RSP, g[StartState::RSP]);
        vmwrite(vmcs::GUEST_RIP, s.rip);
        vmwrite(vmcs::GUEST_RFLAGS, s.rflags);
        // Real mode (a STARTUP IPI's start): selectors are bases / 16 and
        // FS and GS are like DS; protected and long mode have flat FS and GS.
        let real = s.cr0 & CR0_PE == 0;
        let flat = if real {
            s.ds
        } else {
            StartSeg {
                base: 0,
                limit: 0xffff_ffff,
                attr: 0xc93,
            }
        };
        for (sel, limit, rights, base, seg) in [
            (
                vmcs::GUEST_CS_SEL,
                vmcs::GUEST_CS_LIMIT,
                vmcs::GUEST_CS_AR,
                vmcs::GUEST_CS_BASE,
                s.cs,
            ),
            (
                vmcs::GUEST_SS_SEL,
                vmcs::GUEST_SS_LIMIT,
                vmcs::GUEST_SS_AR,
                vmcs::GUEST_SS_BASE,
                s.ss,
            ),
            (
                vmcs::GUEST_DS_SEL,
                vmcs::GUEST_DS_LIMIT,
                vmcs::GUEST_DS_AR,
                vmcs::GUEST_DS_BASE,
                s.ds,
            ),
            (
                vmcs::GUEST_ES_SEL,
                vmcs::GUEST_ES_LIMIT,
                vmcs::GUEST_ES_AR,
                vmcs::GUEST_ES_BASE,
                s.es,
            ),
            (
                vmcs::GUEST_FS_SEL,
                vmcs::GUEST_FS_LIMIT,
                vmcs::GUEST_FS_AR,
                vmcs::GUEST_FS_BASE,
                flat,
            ),
            (
                vmcs::GUEST_GS_SEL,
                vmcs::GUEST_GS_LIMIT,
                vmcs::GUEST_GS_AR,
                vmcs::GUEST_GS_BASE,
                flat,
            ),
            (
                vmcs::GUEST_TR_SEL,
                vmcs::GUEST_TR_LIMIT,
                vmcs::GUEST_TR_AR,
                vmcs::GUEST_TR_BASE,
                s.tr,
            ),
        ] {
            vmwrite(
                sel,
                if real && sel != vmcs::GUEST_TR_SEL {
                    seg.base >> 4
                } else {
                    0
                },
            );
            vmwrite(limit, seg.limit.into());
            vmwrite(rights, access(seg.attr));
            vmwrite(base, seg.base);
        }
        vmwrite(vmcs::GUEST_LDTR_SEL, 0);
        vmwrite(vmcs::GUEST_LDTR_LIMIT, 0);
        vmwrite(vmcs::GUEST_LDTR_AR, ar::UNUSABLE.into());
        vmwrite(vmcs::GUEST_LDTR_BASE, 0);
        vmwrite(vmcs::GUEST_GDTR_BASE, 0);
        vmwrite(vmcs::GUEST_GDTR_LIMIT, 0xffff);
        vmwrite(vmcs::GUEST_IDTR_BASE, 0);
        vmwrite(vmcs::GUEST_IDTR_LIMIT, 0xffff);
        vmwrite(vmcs::GUEST_DR7, 0x400);
        vmwrite(vmcs::GUEST_INTERRUPTIBILITY, 0);
        vmwrite(vmcs::GUEST_ACTIVITY_STATE, 0);
        vmwrite(vmcs::GUEST_PENDING_DEBUG, 0);
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, 0);
        self.request_interrupt_window(false);
        true
    }
}
