//! CPUID as the guest sees it: the Xen leaves and the host's leaves
//! through the allow-list of Xen's HVM policy (`hv::hvm::cpuid`).
//! Extended state (XSAVE, AVX, AVX-512 and leaf 0xD) is shown as far as
//! the guest may enable it (`hv::hvm::xstate`).

use super::{xen, Domain};
use crate::arch::cpu::CR4_OSXSAVE;
use hv::hvm::xstate as xs;

impl Domain {
    pub(super) fn cpuid(&mut self) {
        let leaf = self.vcpu.rax() as u32;
        let sub = self.vcpu.regs().rcx as u32;
        let allowed = self.vcpu.xcr0_allowed();
        let (a, b, c, d) = match leaf {
            xen::CPUID_BASE => {
                let sig = b"XenVMMXenVMM";
                let w = |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
                (xen::CPUID_BASE + 4, w(0), w(4), w(8))
            }
            0x4000_0001 => (((xen::VERSION.0 << 16) | xen::VERSION.1) as u32, 0, 0, 0),
            0x4000_0002 => (1, xen::HYPERCALL_MSR, 0, 0),
            0x4000_0003 => (0, 0, 0, 0),
            // HVM features: x2APIC accesses virtualised (bit 1), vCPU id
            // (bit 3) and domain id (bit 4) present.
            0x4000_0004 => ((1 << 1) | (1 << 3) | (1 << 4), 0, u32::from(self.id), 0),
            0x4000_0005..=0x4fff_ffff => (0, 0, 0, 0),
            _ => {
                let r = crate::arch::cpu::cpuid(leaf, sub);
                let [mut a, mut b, mut c, mut d] =
                    hv::hvm::cpuid::filter(leaf, sub, [r.eax, r.ebx, r.ecx, r.edx]);
                match leaf {
                    1 => {
                        // XSAVE and AVX as far as allowed, OSXSAVE from the
                        // guest's CR4; the local APIC is an x2APIC; the
                        // hypervisor bit set.
                        let osxsave = self.vcpu.paging_state().2 & CR4_OSXSAVE != 0;
                        c = xs::leaf1_ecx(c, allowed, osxsave);
                        c |= (1 << 21) | (1 << 31);
                        b &= 0x00ff_ffff; // initial APIC id 0
                    }
                    // AVX2 and the AVX-512 family follow XCR0.
                    7 if sub == 0 => (b, c, d) = xs::leaf7_0((b, c, d), allowed),
                    7 if sub == 1 => a = xs::leaf7_1_eax(a, allowed),
                    0xd => {
                        let host = |i: u32| {
                            let r = crate::arch::cpu::cpuid(0xd, i);
                            [r.eax, r.ebx, r.ecx, r.edx]
                        };
                        [a, b, c, d] = xs::leaf_d(sub, self.vcpu.xcr0(), allowed, host);
                    }
                    0x8000_000a => (a, b, c, d) = (0, 0, 0, 0),
                    _ => {}
                }
                (a, b, c, d)
            }
        };
        let [a, b, c, d] = if self.is_pv() {
            let osxsave = self.vcpu.cr4() & CR4_OSXSAVE != 0;
            hv::pv::cpuid::filter(leaf, sub, [a, b, c, d], osxsave)
        } else {
            [a, b, c, d]
        };
        self.vcpu.set_rax(u64::from(a));
        let r = self.vcpu.regs();
        r.rbx = u64::from(b);
        r.rcx = u64::from(c);
        r.rdx = u64::from(d);
    }
}
