//! The control domain's hypercalls and sub-commands, answered as Xen
//! answers a domain without privilege (`hv::xenabi::control`).

use super::{Errno, View};
use hv::evtchn::EventChannels;
use hv::xenabi::control::{self, Caller};

/// Domain `.0` asking through its view `.1`, and the registry of domains.
struct Asking<'a>(u16, &'a View<'a>, &'a EventChannels);

impl Caller for Asking<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> bool {
        self.1.read_virt(gva, buf).is_ok()
    }

    fn exists(&self, domid: u16) -> bool {
        self.2.has_domain(domid)
    }

    fn id(&self) -> u16 {
        self.0
    }

    fn compat(&self) -> bool {
        !self.1.cpu.long_mode()
    }
}

/// Hypercall `nr` of domain `me` if it is the control domain's: its error.
pub(super) fn hypercall(
    me: u16,
    g: &View<'_>,
    ev: &EventChannels,
    nr: u64,
    args: [u64; 5],
) -> Option<Errno> {
    control::hypercall(nr, args, g.mem.pv, &Asking(me, g, ev))
}

/// `memory_op(cmd)` of domain `me` if it is the control domain's: its error.
pub(super) fn memory_op(
    me: u16,
    g: &View<'_>,
    ev: &EventChannels,
    cmd: u64,
    arg: u64,
) -> Option<Errno> {
    control::memory_op(cmd, arg, &Asking(me, g, ev))
}

/// A PV domain's `physdev_op(cmd)` if it is the control domain's: its
/// error. (A PVH domain's are -ENOSYS, as Xen's `hvm_physdev_op`.)
pub(super) fn physdev_op(
    me: u16,
    g: &View<'_>,
    ev: &EventChannels,
    cmd: u64,
    arg: u64,
) -> Option<Errno> {
    if !g.mem.pv {
        return None;
    }
    control::physdev_op(cmd, arg, &Asking(me, g, ev))
}
