//! The state a secondary vCPU starts in (`VCPUOP_initialise`), already
//! checked by common code, and loading it into either backend.

use super::Vcpu;

/// One segment as Xen's `vcpu_hvm_context` gives it: base, byte limit and
/// the descriptor's attribute bits packed as in the VMCB (type, S, DPL, P
/// in 0..8; AVL, L, D/B, G in 8..12). Attribute 0 is a null segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartSeg {
    pub base: u64,
    pub limit: u32,
    pub attr: u16,
}

/// A complete, checked start state: general-purpose registers in Xen's
/// order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI), control registers,
/// EFER (with LMA as the CPU would set it) and the segments. FS and GS
/// are flat data segments, LDTR is unusable, GDTR and IDTR are the PVH
/// entry's (base 0, limit 0xffff).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartState {
    pub gprs: [u64; 8],
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs: StartSeg,
    pub ds: StartSeg,
    pub ss: StartSeg,
    pub es: StartSeg,
    pub tr: StartSeg,
}

impl StartState {
    pub const RSP: usize = 4;
}

impl Vcpu {
    /// Loads `s` as the vCPU's whole architectural state (no event
    /// pending, no interrupt shadow) and flushes its TLB. `false` when the
    /// backend cannot run that state (the caller answers -EINVAL).
    pub fn load_start_state(&mut self, s: &StartState) -> bool {
        match self {
            Vcpu::Svm(v) => v.load_start_state(s),
            Vcpu::Vmx(v) => v.load_start_state(s),
        }
    }
}
