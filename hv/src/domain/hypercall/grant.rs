//! `grant_table_op`, version 1: the table's size and frames, its version,
//! and copies. A domain's table lives in the RAM pages it placed with
//! `XENMEM_add_to_physmap`; [`GuestFrames`] reaches it there. Mapping
//! grants is for the hypervisor's own backends ([`hv::grant::Grants::map`]);
//! a guest asking to map gets -ENOSYS.

use super::{Domain, Errno, HcResult, DOMID_SELF};
use crate::virt::guest_mem::GuestMemory;
use hv::grant::copy::{plan_copy, CopyEnd};
use hv::grant::{GrantFrames, GrantStatus, ENTRIES_PER_FRAME};
use hv::hub::Hub;
use hv::xenabi::{
    GnttabCopy, GnttabGetVersion, GnttabQuerySize, GnttabSetVersion, GnttabSetupTable,
};
use vmm_glue::xen::grant_table::{gntst, op, GnttabCopy as GnttabCopyOp, GrantEntryV1, GrantRef};

/// Copies in one `GNTTABOP_copy` batch before the guest must call again.
const COPY_BATCH_MAX: u64 = 512;
/// `INVALID_GFN` as the frame list reports an unplaced frame.
const INVALID_GFN: u64 = u64::MAX;

/// A domain's grant table frames in its RAM.
pub(in crate::domain) struct GuestFrames<'a> {
    pub mem: &'a GuestMemory,
    pub frames: &'a [Option<u64>],
}

impl GuestFrames<'_> {
    fn entry_gpa(&self, r: GrantRef) -> Option<u64> {
        let frame = self
            .frames
            .get((r / ENTRIES_PER_FRAME) as usize)
            .copied()??;
        Some(frame + u64::from(r % ENTRIES_PER_FRAME) * GrantEntryV1::SIZE as u64)
    }
}

impl GrantFrames for GuestFrames<'_> {
    fn entry(&self, r: GrantRef) -> Option<GrantEntryV1> {
        let mut b = [0u8; GrantEntryV1::SIZE];
        self.mem.read(self.entry_gpa(r)?, &mut b).ok()?;
        Some(GrantEntryV1::from_bytes(&b))
    }

    fn update_flags(&mut self, r: GrantRef, set: u16, clear: u16) {
        let Some(gpa) = self.entry_gpa(r) else { return };
        let mut b = [0u8; 2];
        if self.mem.read(gpa, &mut b).is_ok() {
            let f = (u16::from_le_bytes(b) | set) & !clear;
            let _ = self.mem.write(gpa, &f.to_le_bytes());
        }
    }
}

impl Domain {
    pub(super) fn hc_grant_table_op(&mut self, args: [u64; 5], hub: &mut Hub) -> HcResult {
        let (cmd, uop, count) = (args[0], args[1], args[2]);
        let Ok(cmd) = u32::try_from(cmd) else {
            return Err(Errno::NoSys);
        };
        match cmd {
            op::QUERY_SIZE => {
                if count != 1 {
                    return Err(Errno::Inval);
                }
                let mut a = self.read_arg::<GnttabQuerySize>(uop)?;
                // Another domain, even one without a table (domain 0):
                // Xen looks it up, then refuses.
                let other = a.v.dom != DOMID_SELF && a.v.dom != self.id;
                let q = if other && hub.evtchn.has_domain(a.v.dom) {
                    Err(GrantStatus::PermissionDenied)
                } else {
                    hub.grants.query_size(self.id, a.v.dom)
                };
                match q {
                    Ok(q) => {
                        a.v.nr_frames = q.nr_frames;
                        a.v.max_nr_frames = q.max_nr_frames;
                        a.v.status = gntst::OKAY;
                    }
                    // The other fields stay as the guest wrote them.
                    Err(s) => a.v.status = s.status(),
                }
                self.write_arg(uop, &mut a)?;
                Ok(0)
            }
            op::SETUP_TABLE => {
                if count != 1 {
                    return Err(Errno::Inval);
                }
                let mut a = self.read_arg::<GnttabSetupTable>(uop)?;
                let pfn_size = GnttabSetupTable::pfn_size(self.abi());
                let (dom, nr, list) = (a.v.dom, a.v.nr_frames, a.v.frame_list);
                let mut return_status = None;
                let mut status = if dom != DOMID_SELF && dom != self.id {
                    // Xen looks the domain up before it checks the right.
                    if hub.evtchn.has_domain(dom) {
                        GrantStatus::PermissionDenied.status()
                    } else {
                        GrantStatus::BadDomain.status()
                    }
                } else {
                    match hub.grants.table_mut(self.id).map(|t| t.setup_table(nr)) {
                        Some(Ok(())) => {
                            for i in 0..nr {
                                let gfn = self
                                    .xen
                                    .grant_frames
                                    .get(i as usize)
                                    .copied()
                                    .flatten()
                                    .map_or(INVALID_GFN, |g| g >> 12);
                                let at = list.wrapping_add(u64::from(i) * pfn_size as u64);
                                if self
                                    .copy_to_guest(at, &gfn.to_le_bytes()[..pfn_size])
                                    .is_err()
                                {
                                    // As Xen: the operation's status says
                                    // the frame list could not be written.
                                    return_status = Some(gntst::BAD_VIRT_ADDR);
                                    break;
                                }
                            }
                            0
                        }
                        Some(Err(s)) => s.status(),
                        None => GrantStatus::BadDomain.status(),
                    }
                };
                if let Some(s) = return_status {
                    status = s;
                }
                a.v.status = status;
                self.write_arg(uop, &mut a)?;
                Ok(0)
            }
            op::SET_VERSION => {
                if count != 1 {
                    return Err(Errno::Inval);
                }
                let mut a = self.read_arg::<GnttabSetVersion>(uop)?;
                let table = hub.grants.table_mut(self.id).ok_or(Errno::Srch)?;
                a.v.version = table.set_version(a.v.version)?;
                self.write_arg(uop, &mut a)?;
                Ok(0)
            }
            op::GET_VERSION => {
                if count != 1 {
                    return Err(Errno::Inval);
                }
                let mut a = self.read_arg::<GnttabGetVersion>(uop)?;
                self.only_self(a.v.dom, hub)?;
                a.v.version = hub.grants.table(self.id).ok_or(Errno::Srch)?.version();
                self.write_arg(uop, &mut a)?;
                Ok(0)
            }
            op::COPY => {
                if count > COPY_BATCH_MAX {
                    return Err(Errno::Inval);
                }
                let size = GnttabCopy::size(self.abi()) as u64;
                for i in 0..count {
                    let at = uop.wrapping_add(i * size);
                    let mut a = self.read_arg::<GnttabCopy>(at)?;
                    let frames = GuestFrames {
                        mem: &self.mem,
                        frames: &self.xen.grant_frames,
                    };
                    a.v.status = match grant_copy(self.id, &frames, a.v.into(), hub) {
                        Ok(()) => gntst::OKAY,
                        Err(s) => s.status(),
                    };
                    self.write_arg(at, &mut a)?;
                }
                Ok(0)
            }
            _ => Err(Errno::NoSys),
        }
    }
}

/// One `struct gnttab_copy` of domain `me`, whose memory and grant frames
/// are `frames`. Both ends must be this domain's memory: a frame of its
/// own, or a grant in its own table (granted to itself); grants of other
/// guests are reachable only by the hypervisor's backends.
fn grant_copy(
    me: u16,
    frames: &GuestFrames<'_>,
    op: GnttabCopyOp,
    hub: &Hub,
) -> Result<(), GrantStatus> {
    let plan = plan_copy(me, &op, |d| hub.grants.table(d).is_some())?;
    let gpa = |e: CopyEnd, writable: bool| -> Result<u64, GrantStatus> {
        match e {
            CopyEnd::Gmfn { gmfn, offset } => gmfn
                .checked_mul(4096)
                .map(|a| a + u64::from(offset))
                .ok_or(GrantStatus::BadCopyArg),
            CopyEnd::Gref {
                domid,
                gref,
                offset,
            } => {
                if domid != me {
                    return Err(GrantStatus::PermissionDenied);
                }
                let frame = hub.grants.copy_frame(me, domid, frames, gref, writable)?;
                Ok(u64::from(frame) * 4096 + u64::from(offset))
            }
        }
    };
    let src = gpa(plan.source, false)?;
    let dst = gpa(plan.dest, true)?;
    let mut buf = alloc::vec![0u8; usize::from(plan.len)];
    // A frame that is not the guest's memory: GNTST_bad_page, as Xen.
    frames
        .mem
        .read(src, &mut buf)
        .map_err(|_| GrantStatus::BadPage)?;
    frames
        .mem
        .write(dst, &buf)
        .map_err(|_| GrantStatus::BadPage)?;
    Ok(())
}
