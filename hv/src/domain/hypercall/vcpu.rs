//! `vcpu_op`: bringing vCPUs up (`VCPUOP_initialise` with an HVM context,
//! `up`) and down, where each vCPU's `vcpu_info` and runstate live,
//! whether it is up, and its timers.

use super::{vcpu_ctx, Domain, Errno, HcResult, Outcome};
use hv::xenabi::{
    RunstateArea, VcpuRegisterVcpuInfo, VcpuSetPeriodicTimer, VcpuSetSingleshotTimer,
};
use vmm_glue::xen::shared_info::VCPU_INFO_SIZE;

const VCPUOP_INITIALISE: u64 = 0;
const VCPUOP_UP: u64 = 1;
const VCPUOP_DOWN: u64 = 2;
const VCPUOP_IS_UP: u64 = 3;
const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;
/// `VCPU_SSHOTTMR_future`: fail with -ETIME if the deadline has passed.
const SSHOTTMR_FUTURE: u32 = 1;
/// The shortest period Xen accepts (1 ms).
const MIN_PERIOD_NS: u64 = 1_000_000;

impl Domain {
    pub(super) fn hc_vcpu_op(&mut self, args: [u64; 5]) -> Outcome {
        let (cmd, vcpu, arg) = (args[0], args[1], args[2]);
        let k = match u32::try_from(vcpu) {
            Ok(k) if k < self.nr_vcpus() => k,
            _ => return Outcome::Ret(Err(Errno::NoEnt)),
        };
        match cmd {
            VCPUOP_DOWN => {
                if let Some(end) = self.vcpu_down(k, "taken down by VCPUOP_down") {
                    return Outcome::Shutdown(match end {
                        super::Ending::Shutdown(r) => r,
                        super::Ending::Destroyed(_) => 3,
                    });
                }
                Outcome::Ret(Ok(0))
            }
            _ => Outcome::Ret(self.vcpu_op_on(cmd, k, arg)),
        }
    }

    /// `VCPUOP_initialise`: vCPU `k` gets the context at `arg`.
    fn vcpu_initialise(&mut self, k: u32, arg: u64) -> HcResult {
        let b: [u8; vcpu_ctx::SIZE] = self.copy_from_guest(arg)?;
        if self.xen_of(k).is_none_or(|x| x.initialised) {
            return Err(Errno::Exist);
        }
        let start = vcpu_ctx::parse(&b, &vcpu_ctx::host_limits())?;
        let loaded = self
            .vcpu_of_mut(k)
            .is_some_and(|v| v.load_start_state(&start));
        if !loaded {
            return Err(Errno::Inval);
        }
        if let Some(x) = self.xen_of_mut(k) {
            x.initialised = true;
        }
        self.log_guest(alloc::format!(
            "vCPU {k} initialised: {} rip {:#x} rsp {:#x}",
            if start.efer & (1 << 10) != 0 {
                "64-bit"
            } else {
                "32-bit"
            },
            start.rip,
            start.gprs[crate::virt::start::StartState::RSP]
        ));
        Ok(0)
    }

    /// Every `vcpu_op` command but `down`, on vCPU `k`.
    fn vcpu_op_on(&mut self, cmd: u64, k: u32, arg: u64) -> HcResult {
        match cmd {
            VCPUOP_INITIALISE => self.vcpu_initialise(k, arg),
            VCPUOP_UP => {
                let x = self.xen_of_mut(k).ok_or(Errno::NoEnt)?;
                if !x.initialised {
                    return Err(Errno::Inval);
                }
                x.up = true;
                Ok(0)
            }
            VCPUOP_IS_UP => Ok(self.xen_of(k).is_some_and(|x| x.up).into()),
            VCPUOP_REGISTER_VCPU_INFO => {
                let a = self.read_arg::<VcpuRegisterVcpuInfo>(arg)?.v;
                let offset = u64::from(a.offset);
                if offset + VCPU_INFO_SIZE as u64 > 4096 {
                    return Err(Errno::Inval);
                }
                if self.xen_of(k).is_none_or(|x| x.vcpu_info.is_some()) {
                    return Err(Errno::Inval);
                }
                let gpa = a.mfn.checked_mul(4096).ok_or(Errno::Inval)? + offset;
                if self.mem.translate(gpa).is_none() {
                    return Err(Errno::Inval);
                }
                // The current contents move to the new place.
                let mut info = [0u8; VCPU_INFO_SIZE];
                let slot = k as usize * VCPU_INFO_SIZE;
                let _ = self.with_shared(|p| {
                    if let Some(s) = p.get(slot..slot + VCPU_INFO_SIZE) {
                        info.copy_from_slice(s);
                    }
                });
                self.mem.write(gpa, &info).map_err(|_| Errno::Inval)?;
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.vcpu_info = Some(gpa);
                self.update_time();
                Ok(0)
            }
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
                // A handle: 4 bytes in compat, where the area is 44 bytes
                // (its 8-byte fields 4-byte aligned).
                let gva = self.read_arg::<RunstateArea>(arg)?.v.addr;
                let size = RunstateArea::info_size(self.abi());
                // Running since now, no time accounted elsewhere.
                self.copy_to_guest(
                    gva,
                    &[0u8; RunstateArea::info_size(hv::xenabi::Abi::X64)][..size],
                )?;
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.runstate = Some(gva);
                Ok(0)
            }
            VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
                // `struct vcpu_register_time_memory_area { handle addr }`:
                // a guest-virtual address, kept as the guest-physical
                // address it has now (the guest's kernel memory does not
                // move), or none (0). Written at once, then with every
                // time update.
                let n = self.abi().ulong_size();
                let mut b = [0u8; 8];
                self.read_guest(arg, &mut b[..n])?;
                let va = u64::from_le_bytes(b);
                let gpa = if va == 0 {
                    None
                } else {
                    let size = vmm_glue::xen::time::VCPU_TIME_INFO_SIZE as u64;
                    if va & 0xfff > 4096 - size {
                        return Err(Errno::Inval);
                    }
                    Some(self.guest_gpa(va).ok_or(Errno::Fault)?)
                };
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.time_area = gpa;
                self.update_time();
                Ok(0)
            }
            VCPUOP_SET_PERIODIC_TIMER => {
                let period = self.read_arg::<VcpuSetPeriodicTimer>(arg)?.v.period_ns;
                if period < MIN_PERIOD_NS {
                    return Err(Errno::Inval);
                }
                let now = crate::domain::time::now_ns();
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.periodic = Some((period, now + period));
                Ok(0)
            }
            VCPUOP_STOP_PERIODIC_TIMER => {
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.periodic = None;
                Ok(0)
            }
            // As in Xen, a vCPU sets and stops only its own singleshot
            // timer.
            VCPUOP_SET_SINGLESHOT_TIMER | VCPUOP_STOP_SINGLESHOT_TIMER if k != self.vcpus.cur => {
                Err(Errno::Inval)
            }
            VCPUOP_SET_SINGLESHOT_TIMER => {
                // 12 bytes in both ABIs: the 64-bit tail padding is not read.
                let a = self.read_arg::<VcpuSetSingleshotTimer>(arg)?.v;
                let (deadline, flags) = (a.timeout_abs_ns, a.flags);
                if flags & SSHOTTMR_FUTURE != 0 && deadline < crate::domain::time::now_ns() {
                    return Err(Errno::Time);
                }
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.singleshot = Some(deadline);
                Ok(0)
            }
            VCPUOP_STOP_SINGLESHOT_TIMER => {
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.singleshot = None;
                Ok(0)
            }
            _ => Err(Errno::NoSys),
        }
    }
}
