//! The state a secondary vCPU starts in (`VCPUOP_initialise`, or the real
//! mode of a STARTUP IPI, [`hv::ipi::startup_state`]), already checked by
//! common code, and loading it into either backend.

use super::Vcpu;

/// A complete, checked start state and its segments, as
/// [`hv::xenabi::vcpu_ctx`] decodes them: FS and GS become flat data
/// segments (in real mode, CR0.PE clear: copies of DS, and every selector
/// its segment's base / 16), LDTR unusable, GDTR and IDTR the PVH entry's
/// (base 0, limit 0xffff).
pub use hv::xenabi::vcpu_ctx::{Seg as StartSeg, Start as StartState};

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
