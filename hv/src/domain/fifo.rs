//! The FIFO event channel ABI for one domain: `EVTCHNOP_init_control`,
//! `expand_array` and `set_priority`, and the effects of event channel
//! operations applied to the guest's queues once it switched
//! (`hv::evtchn::fifo` holds the queue logic).

use super::pv::PvDomain;
use super::space::GuestSpace;
use super::state::XenState;
use super::vcpus::VcpuSet;
use super::Domain;
use crate::virt::guest_mem::GuestMemory;
use alloc::boxed::Box;
use hv::evtchn::fifo::{self, Fifo, Words};
use hv::evtchn::shared::SharedPage;
use hv::evtchn::{Effect, Errno, EventChannels, PortState, VcpuId};
use vmm_glue::xen::shared_info::{VCPU_INFO_SIZE, VCPU_INFO_UPCALL_PENDING, XEN_LEGACY_MAX_VCPUS};

/// The domain's memory as the queue logic reaches it.
struct GuestWords<'a>(&'a GuestMemory);

impl Words for GuestWords<'_> {
    fn get(&mut self, gpa: u64) -> Option<u32> {
        self.0.read_entry(gpa, 4).map(|v| v as u32)
    }

    fn set(&mut self, gpa: u64, v: u32) -> bool {
        self.0.write(gpa, &v.to_le_bytes()).is_ok()
    }
}

/// `vcpu_mark_events_pending`: sets `evtchn_upcall_pending` in `vcpu`'s
/// `vcpu_info` (its Xen state in `vcpus`, or `xen.cpu` for the running
/// one); true if newly set.
fn mark_upcall(mem: &mut GuestSpace, xen: &mut XenState, vcpus: &VcpuSet, vcpu: VcpuId) -> bool {
    let Some(x) = vcpus.xen_of(vcpu, &xen.cpu) else {
        return false;
    };
    if let Some(gpa) = x.vcpu_info {
        let at = gpa + VCPU_INFO_UPCALL_PENDING as u64;
        let mut b = [0u8];
        return mem.read(at, &mut b).is_ok() && b[0] == 0 && mem.write(at, &[1]).is_ok();
    }
    if vcpu as usize >= XEN_LEGACY_MAX_VCPUS {
        return false;
    }
    let at = vcpu as usize * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_PENDING;
    xen.with_shared(mem, |p| core::mem::replace(&mut p[at], 1) == 0)
        .unwrap_or(false)
}

/// What `EVTCHNOP_init_control` and `expand_array` touch: the domain's
/// guest space, its Xen state (the queues, the shared info page), the
/// vCPU set (whose `vcpu_info` an event carried over marks) and a PV
/// domain's page types (a page the hypervisor writes in holds a writable
/// reference).
pub(super) struct FifoControl<'a> {
    pub me: u16,
    pub mem: &'a mut GuestSpace,
    pub xen: &'a mut XenState,
    pub vcpus: &'a VcpuSet,
    pub pv: Option<&'a mut PvDomain>,
}

impl FifoControl<'_> {
    /// The page `gfn` for the hypervisor to write in (Xen's
    /// `map_guest_page`): -EINVAL unless it is the domain's memory and, for
    /// a PV domain, can take a writable-type reference (held until
    /// [`Domain::fifo_destroy`]).
    fn page(&mut self, gfn: u64) -> Result<u64, Errno> {
        let gpa = gfn.checked_mul(4096).ok_or(Errno::Inval)?;
        if self.mem.translate(gpa).is_none() {
            return Err(Errno::Inval);
        }
        if let Some(pv) = self.pv.as_deref_mut() {
            pv.mm
                .get_writable(&mut super::pv::hypercall::MemFrames(self.mem), gfn)?;
        }
        Ok(gpa)
    }

    /// `EVTCHNOP_init_control`: maps `vcpu`'s control block; the first one
    /// switches the domain to FIFO, carrying the 2-level pending bits of its
    /// ports over (raised when their event array page arrives).
    pub(super) fn init_control(
        &mut self,
        ev: &EventChannels,
        gfn: u64,
        offset: u32,
        vcpu: VcpuId,
    ) -> Result<(), Errno> {
        let nr_vcpus = self.vcpus.len();
        if vcpu >= nr_vcpus {
            return Err(Errno::NoEnt);
        }
        fifo::check_control_offset(offset)?;
        if self.xen.fifo.as_ref().is_some_and(|f| f.has_control(vcpu)) {
            return Err(Errno::Inval);
        }
        let gpa = self.page(gfn)?;
        if self.xen.fifo.is_none() {
            let mut f = Box::new(Fifo::new(nr_vcpus));
            let n = ev.table_len(self.me) as u32;
            let _ = self.xen.with_shared(self.mem, |page| {
                if let Ok(sp) = SharedPage::new(page) {
                    for p in (1..n).filter(|&p| sp.is_pending(p) == Ok(true)) {
                        f.save_pending(p);
                    }
                }
            });
            self.xen.fifo = Some(f);
        }
        let f = self.xen.fifo.as_deref_mut().ok_or(Errno::Inval)?;
        f.map_control(vcpu, gpa + u64::from(offset))
    }

    /// `EVTCHNOP_expand_array`: -EOPNOTSUPP before `init_control`,
    /// -ENOSPC when the array is full, -EINVAL for a page that is not the
    /// domain's. Ports of the new page raised meanwhile are raised now.
    pub(super) fn expand_array(&mut self, ev: &EventChannels, gfn: u64) -> Result<(), Errno> {
        self.xen
            .fifo
            .as_deref()
            .ok_or(Errno::OpNotSupp)?
            .check_room()?;
        let gpa = self.page(gfn)?;
        let Some(f) = self.xen.fifo.as_deref_mut() else {
            return Err(Errno::OpNotSupp);
        };
        for port in f.add_page(gpa)? {
            let Some(c) = ev.channel(self.me, port) else {
                break;
            };
            let tell = {
                let Some(f) = self.xen.fifo.as_deref_mut() else {
                    break;
                };
                f.take_saved(port) && f.set_pending(&mut GuestWords(self.mem), port, c.notify_vcpu)
            };
            if tell {
                mark_upcall(self.mem, self.xen, self.vcpus, c.notify_vcpu);
            }
        }
        Ok(())
    }
}

impl Domain {
    /// Whether the domain switched to the FIFO ABI.
    pub(super) fn uses_fifo(&self) -> bool {
        self.xen.fifo.is_some()
    }

    /// Applies one effect to the guest's queues; true if its vCPU must
    /// get an upcall.
    pub(super) fn apply_fifo(&mut self, e: Effect) -> bool {
        let Some(f) = self.xen.fifo.as_deref_mut() else {
            return false;
        };
        let mut m = GuestWords(&self.mem);
        let (vcpu, tell) = match e {
            Effect::SetPending { port, vcpu, .. } => (vcpu, f.set_pending(&mut m, port, vcpu)),
            Effect::Unmask { port, vcpu, .. } => (vcpu, f.unmask(&mut m, port, vcpu)),
            Effect::ClearPending { port, .. } => {
                f.close(&mut m, port);
                return false;
            }
        };
        tell && mark_upcall(&mut self.mem, &mut self.xen, &self.vcpus, vcpu)
    }

    /// Whether `port`'s event word is pending (`SCHEDOP_poll`).
    pub(super) fn fifo_pending(&self, port: u32) -> bool {
        self.xen
            .fifo
            .as_deref()
            .is_some_and(|f| f.is_pending(&mut GuestWords(&self.mem), port))
    }

    /// Under the FIFO ABI, whether the current vCPU's pending upcall would
    /// find nothing; if so, what its handler would do to the queues is
    /// done (`hv::evtchn::fifo::Fifo::leave_out_upcall`; the caller clears
    /// `evtchn_upcall_pending`).
    pub(super) fn fifo_leave_out_upcall(&mut self) -> bool {
        let cur = self.vcpus.cur;
        self.xen
            .fifo
            .as_deref()
            .is_some_and(|f| f.leave_out_upcall(&mut GuestWords(&self.mem), cur))
    }

    /// Back to the 2-level ABI (`EVTCHNOP_reset`): the pages are released.
    pub(super) fn fifo_destroy(&mut self) {
        let Some(f) = self.xen.fifo.take() else {
            return;
        };
        let Domain { pv, mem, .. } = self;
        if let Some(pv) = pv.as_mut() {
            let mut m = super::pv::hypercall::MemFrames(mem);
            let controls = f.controls().flatten();
            for gpa in f.pages().iter().copied().chain(controls) {
                pv.mm.put_writable(&mut m, gpa >> 12);
            }
        }
    }
}

/// `EVTCHNOP_set_priority` of domain `me` with Xen state `xen`: -EINVAL
/// for a port not bound, -ENOSYS under the 2-level ABI, -EINVAL for a
/// priority beyond 15.
pub(super) fn set_priority(
    xen: &mut XenState,
    me: u16,
    ev: &EventChannels,
    port: u32,
    priority: u32,
) -> Result<(), Errno> {
    match ev.channel(me, port) {
        Some(c) if c.state != PortState::Free => {}
        _ => return Err(Errno::Inval),
    }
    let f = xen.fifo.as_deref_mut().ok_or(Errno::NoSys)?;
    f.set_priority(port, priority)
}
