//! The control domain's hypercalls and sub-commands, answered as Xen
//! answers a domain without privilege (`hv::xenabi::control`).

use super::super::guest_va::read_virt;
use super::{Domain, Errno};
use hv::hub::Hub;
use hv::xenabi::control::{self, Caller};

/// A domain asking, and the registry of domains.
struct Asking<'a>(&'a Domain, &'a Hub);

impl Caller for Asking<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> bool {
        read_virt(self.0, gva, buf).is_ok()
    }

    fn exists(&self, domid: u16) -> bool {
        self.1.evtchn.has_domain(domid)
    }

    fn id(&self) -> u16 {
        self.0.id
    }

    fn compat(&self) -> bool {
        !self.0.vcpu.long_mode()
    }
}

impl Domain {
    /// Hypercall `nr` if it is the control domain's: its error.
    pub(super) fn control_hypercall(&self, nr: u64, args: [u64; 5], hub: &Hub) -> Option<Errno> {
        control::hypercall(nr, args, self.is_pv(), &Asking(self, hub))
    }

    /// `memory_op(cmd)` if it is the control domain's: its error.
    pub(super) fn control_memory_op(&self, cmd: u64, arg: u64, hub: &Hub) -> Option<Errno> {
        control::memory_op(cmd, arg, &Asking(self, hub))
    }

    /// A PV domain's `physdev_op(cmd)` if it is the control domain's: its
    /// error. (A PVH domain's are -ENOSYS, as Xen's `hvm_physdev_op`.)
    pub(super) fn control_physdev_op(&self, cmd: u64, arg: u64, hub: &Hub) -> Option<Errno> {
        if !self.is_pv() {
            return None;
        }
        control::physdev_op(cmd, arg, &Asking(self, hub))
    }
}
