//! `hvm_op`: the HVM parameters a PVH guest reads (where its xenstore and
//! console rings are) and the one it sets (how it takes upcalls).

use super::super::state::XenState;
use super::{Errno, HcResult, View};
use crate::domain::GuestLog;
use hv::evtchn::EventChannels;
use hv::hub::only_self;
use hv::xenabi::HvmParam;

const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;

const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
const HVM_PARAM_STORE_PFN: u32 = 1;
const HVM_PARAM_STORE_EVTCHN: u32 = 2;
const HVM_PARAM_CONSOLE_PFN: u32 = 17;
const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// Deprecated: always PAE now.
const HVM_PARAM_PAE_ENABLED: u32 = 4;
const HVM_PARAM_ALTP2M: u32 = 35;
const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
/// `HVM_NR_PARAMS`: indices at or above are -EINVAL.
const HVM_NR_PARAMS: u32 = 39;
/// `HVM_PARAM_CALLBACK_IRQ` type 2: a vector in bits 0-7.
const CALLBACK_TYPE_VECTOR: u64 = 2;

/// `hvm_op(cmd, arg)` (`args`) of domain `me` with Xen state `xen`; a
/// callback the guest asks for that is not offered goes to its `log`.
pub(super) fn hvm_op(
    me: u16,
    g: &View<'_>,
    xen: &mut XenState,
    log: &mut GuestLog<'_>,
    ev: &EventChannels,
    args: [u64; 5],
) -> HcResult {
    match args[0] {
        HVMOP_SET_PARAM | HVMOP_GET_PARAM => {
            let mut a = g.read_arg::<HvmParam>(args[1])?;
            only_self(me, a.v.domid, ev)?;
            let (index, value) = (a.v.index, a.v.value);
            if index >= HVM_NR_PARAMS {
                return Err(Errno::Inval);
            }
            if args[0] == HVMOP_SET_PARAM {
                let r = set_param(xen, index, value);
                if index == HVM_PARAM_CALLBACK_IRQ && r.is_err() {
                    log.log(alloc::format!(
                        "callback irq {value:#x}: only the vector type (2) is offered, -EINVAL"
                    ));
                }
                return r;
            }
            a.v.value = get_param(xen, index)?;
            g.write_arg(args[1], &mut a)?;
            Ok(0)
        }
        _ => Err(Errno::NoSys),
    }
}

/// Sets parameter `index`: only the callback is the guest's to set, and
/// only as a vector (-EINVAL otherwise).
fn set_param(xen: &mut XenState, index: u32, value: u64) -> HcResult {
    match index {
        HVM_PARAM_CALLBACK_IRQ => {
            if value == 0 {
                xen.callback_vector = None;
                return Ok(0);
            }
            let vector = (value & 0xff) as u8;
            if value >> 56 != CALLBACK_TYPE_VECTOR || vector < 0x10 {
                return Err(Errno::Inval);
            }
            xen.callback_vector = Some(vector);
            Ok(0)
        }
        // The toolstack's parameters are not the guest's to change.
        _ => Err(Errno::Perm),
    }
}

/// What the guest may read of its own parameters (Xen's
/// `hvm_allow_get_param`): the callback, its rings and two harmless ones;
/// a deprecated index is -EINVAL, the toolstack's -EPERM.
fn get_param(xen: &XenState, index: u32) -> Result<u64, Errno> {
    Ok(match index {
        HVM_PARAM_CALLBACK_IRQ => xen
            .callback_vector
            .map_or(0, |v| (CALLBACK_TYPE_VECTOR << 56) | u64::from(v)),
        HVM_PARAM_STORE_PFN => xen.store_gpa >> 12,
        HVM_PARAM_STORE_EVTCHN => u64::from(xen.ports.xenstore_guest),
        HVM_PARAM_CONSOLE_PFN => xen.console_gpa >> 12,
        HVM_PARAM_CONSOLE_EVTCHN => u64::from(xen.ports.console_guest),
        HVM_PARAM_ALTP2M | HVM_PARAM_X87_FIP_WIDTH => 0,
        HVM_PARAM_PAE_ENABLED => return Err(Errno::Inval),
        _ => return Err(Errno::Perm),
    })
}
