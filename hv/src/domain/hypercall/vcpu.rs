//! `vcpu_op`: bringing vCPUs up (`VCPUOP_initialise` with an HVM context,
//! `up`) and down, where each vCPU's `vcpu_info` and runstate live,
//! whether it is up, and its timers. A command is answered over the
//! caller's [`View`] and the target vCPU's Xen state; what needs the
//! domain's vCPUs (loading a context, taking one down, moving a
//! `vcpu_info` out of the shared info page) is returned for it.

use super::{vcpu_ctx, Errno, View};
use crate::domain::state::VcpuXen;
use crate::virt::start::StartState;
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

/// What a `vcpu_op` leaves to the domain.
pub(in crate::domain) enum VcpuOp {
    /// Done: return this.
    Ret(i64),
    /// Done, and the time the guest sees is to be written again (a time
    /// area moved): return 0.
    TimeMoved,
    /// `VCPUOP_initialise`: load this context (checked) into the vCPU.
    Initialise(alloc::boxed::Box<StartState>),
    /// `VCPUOP_register_vcpu_info`: the `vcpu_info` moves to this
    /// guest-physical address (RAM, within a page).
    VcpuInfo(u64),
    /// `VCPUOP_down`.
    Down,
}

/// `vcpu_op(cmd, k, arg)` on vCPU `k` (Xen state `x`; `current`: the
/// caller itself).
pub(in crate::domain) fn vcpu_op(
    g: &View<'_>,
    x: &mut VcpuXen,
    current: bool,
    cmd: u64,
    arg: u64,
) -> Result<VcpuOp, Errno> {
    match cmd {
        VCPUOP_DOWN => return Ok(VcpuOp::Down),
        VCPUOP_INITIALISE => {
            let b: [u8; vcpu_ctx::SIZE] = g.copy_from_guest(arg)?;
            if x.initialised {
                return Err(Errno::Exist);
            }
            let start = vcpu_ctx::parse(&b, &vcpu_ctx::host_limits())?;
            return Ok(VcpuOp::Initialise(alloc::boxed::Box::new(start)));
        }
        VCPUOP_UP => {
            if !x.initialised {
                return Err(Errno::Inval);
            }
            x.up = true;
        }
        VCPUOP_IS_UP => return Ok(VcpuOp::Ret(x.up.into())),
        VCPUOP_REGISTER_VCPU_INFO => {
            let a = g.read_arg::<VcpuRegisterVcpuInfo>(arg)?.v;
            let offset = u64::from(a.offset);
            if offset + VCPU_INFO_SIZE as u64 > 4096 || x.vcpu_info.is_some() {
                return Err(Errno::Inval);
            }
            let gpa = a.mfn.checked_mul(4096).ok_or(Errno::Inval)? + offset;
            if g.mem.translate(gpa).is_none() {
                return Err(Errno::Inval);
            }
            return Ok(VcpuOp::VcpuInfo(gpa));
        }
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            // A handle: 4 bytes in compat, where the area is 44 bytes
            // (its 8-byte fields 4-byte aligned).
            let gva = g.read_arg::<RunstateArea>(arg)?.v.addr;
            let size = RunstateArea::info_size(g.abi());
            // Running since now, no time accounted elsewhere.
            g.copy_to_guest(
                gva,
                &[0u8; RunstateArea::info_size(hv::xenabi::Abi::X64)][..size],
            )?;
            x.runstate = Some(gva);
        }
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
            // `struct vcpu_register_time_memory_area { handle addr }`:
            // a guest-virtual address, kept as the guest-physical
            // address it has now (the guest's kernel memory does not
            // move), or none (0). Written at once, then with every
            // time update.
            let n = g.abi().ulong_size();
            let mut b = [0u8; 8];
            g.read_guest(arg, &mut b[..n])?;
            let va = u64::from_le_bytes(b);
            x.time_area = if va == 0 {
                None
            } else {
                let size = vmm_glue::xen::time::VCPU_TIME_INFO_SIZE as u64;
                if va & 0xfff > 4096 - size {
                    return Err(Errno::Inval);
                }
                Some(g.gpa(va).ok_or(Errno::Fault)?)
            };
            return Ok(VcpuOp::TimeMoved);
        }
        VCPUOP_SET_PERIODIC_TIMER => {
            let period = g.read_arg::<VcpuSetPeriodicTimer>(arg)?.v.period_ns;
            if period < MIN_PERIOD_NS {
                return Err(Errno::Inval);
            }
            let now = crate::domain::time::now_ns();
            x.periodic = Some((period, now + period));
        }
        VCPUOP_STOP_PERIODIC_TIMER => x.periodic = None,
        // As in Xen, a vCPU sets and stops only its own singleshot
        // timer.
        VCPUOP_SET_SINGLESHOT_TIMER | VCPUOP_STOP_SINGLESHOT_TIMER if !current => {
            return Err(Errno::Inval)
        }
        VCPUOP_SET_SINGLESHOT_TIMER => {
            // 12 bytes in both ABIs: the 64-bit tail padding is not read.
            let a = g.read_arg::<VcpuSetSingleshotTimer>(arg)?.v;
            let (deadline, flags) = (a.timeout_abs_ns, a.flags);
            if flags & SSHOTTMR_FUTURE != 0 && deadline < crate::domain::time::now_ns() {
                return Err(Errno::Time);
            }
            x.singleshot = Some(deadline);
        }
        VCPUOP_STOP_SINGLESHOT_TIMER => x.singleshot = None,
        _ => return Err(Errno::NoSys),
    }
    Ok(VcpuOp::Ret(0))
}
