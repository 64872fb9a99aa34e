//! `VCPUOP_initialise`'s context: decoded and checked by
//! [`hv::xenabi::vcpu_ctx`] (host-tested) against what this CPU allows,
//! into the [`StartState`] the backends load.

use crate::virt::start::StartState;
pub use hv::xenabi::vcpu_ctx::SIZE;
use hv::xenabi::vcpu_ctx::{self, Limits};

/// What this CPU allows in a guest's control registers.
pub fn host_limits() -> Limits {
    use crate::arch::cpu::cpuid;
    let ext = cpuid(0x8000_0000, 0).eax;
    let phys_bits = if ext >= 0x8000_0008 {
        cpuid(0x8000_0008, 0).eax & 0xff
    } else {
        36
    };
    Limits {
        phys_bits,
        xsave: cpuid(1, 0).ecx & (1 << 26) != 0,
        fsgsbase: cpuid(7, 0).ebx & 1 != 0,
        nx: ext >= 0x8000_0001 && cpuid(0x8000_0001, 0).edx & (1 << 20) != 0,
    }
}

/// Decodes and checks the context in `b`: -EINVAL for one this CPU cannot
/// start.
pub fn parse(b: &[u8; SIZE], lim: &Limits) -> Result<StartState, super::Errno> {
    vcpu_ctx::parse(b, lim)
}
