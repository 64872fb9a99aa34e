//! `vcpu_op`: where vCPU 0's `vcpu_info` and runstate live, whether a vCPU
//! is up, and its timers.

use super::{Domain, Errno, Fields, HcResult};
use vmm_glue::xen::shared_info::VCPU_INFO_SIZE;

const VCPUOP_IS_UP: u64 = 3;
const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
/// `VCPU_SSHOTTMR_future`: fail with -ETIME if the deadline has passed.
const SSHOTTMR_FUTURE: u32 = 1;
/// The shortest period Xen accepts (1 ms).
const MIN_PERIOD_NS: u64 = 1_000_000;
/// `struct vcpu_runstate_info`: state, entry time, four times.
const RUNSTATE_SIZE: usize = 48;
const RUNSTATE_SIZE_COMPAT: usize = 44;

impl Domain {
    pub(super) fn hc_vcpu_op(&mut self, args: [u64; 5]) -> HcResult {
        let (cmd, vcpu, arg) = (args[0], args[1], args[2]);
        // One vCPU per domain: id 0.
        if vcpu != 0 {
            return Err(Errno::NoEnt);
        }
        match cmd {
            VCPUOP_IS_UP => Ok(1),
            VCPUOP_REGISTER_VCPU_INFO => {
                // struct vcpu_register_vcpu_info { u64 mfn; u32 offset; u32 rsvd; }
                let b: [u8; 16] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                let offset = u64::from(f.u32(8));
                if offset + VCPU_INFO_SIZE as u64 > 4096 {
                    return Err(Errno::Inval);
                }
                if self.xen.vcpu_info.is_some() {
                    return Err(Errno::Inval);
                }
                let gpa = f.u64(0).checked_mul(4096).ok_or(Errno::Inval)? + offset;
                if self.mem.translate(gpa).is_none() {
                    return Err(Errno::Inval);
                }
                // The current contents move to the new place.
                let mut info = [0u8; VCPU_INFO_SIZE];
                let _ = self.with_shared(|p| info.copy_from_slice(&p[..VCPU_INFO_SIZE]));
                self.mem.write(gpa, &info).map_err(|_| Errno::Inval)?;
                self.xen.vcpu_info = Some(gpa);
                self.update_time();
                Ok(0)
            }
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
                // A handle: 4 bytes in compat, where the area is 44 bytes
                // (its 8-byte fields 4-byte aligned).
                let (gva, size) = if self.compat() {
                    let b: [u8; 4] = self.copy_from_guest(arg)?;
                    (u64::from(u32::from_le_bytes(b)), RUNSTATE_SIZE_COMPAT)
                } else {
                    let b: [u8; 8] = self.copy_from_guest(arg)?;
                    (u64::from_le_bytes(b), RUNSTATE_SIZE)
                };
                // Running since now, no time accounted elsewhere.
                self.copy_to_guest(gva, &[0u8; RUNSTATE_SIZE][..size])?;
                self.xen.runstate = Some(gva);
                Ok(0)
            }
            VCPUOP_SET_PERIODIC_TIMER => {
                let b: [u8; 8] = self.copy_from_guest(arg)?;
                let period = u64::from_le_bytes(b);
                if period < MIN_PERIOD_NS {
                    return Err(Errno::Inval);
                }
                let now = crate::domain::time::now_ns();
                self.xen.periodic = Some((period, now + period));
                Ok(0)
            }
            VCPUOP_STOP_PERIODIC_TIMER => {
                self.xen.periodic = None;
                Ok(0)
            }
            VCPUOP_SET_SINGLESHOT_TIMER => {
                // { u64 timeout_abs_ns; u32 flags } (12 bytes in compat).
                let mut b = [0u8; 16];
                self.read_guest(arg, &mut b[..12])?;
                let f = Fields(&b);
                let (deadline, flags) = (f.u64(0), f.u32(8));
                if flags & SSHOTTMR_FUTURE != 0 && deadline < crate::domain::time::now_ns() {
                    return Err(Errno::Time);
                }
                self.xen.singleshot = Some(deadline);
                Ok(0)
            }
            VCPUOP_STOP_SINGLESHOT_TIMER => {
                self.xen.singleshot = None;
                Ok(0)
            }
            _ => Err(Errno::NoSys),
        }
    }
}
