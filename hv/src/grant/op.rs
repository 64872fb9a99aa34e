//! `grant_table_op`, version 1, as a guest calls it: the table's size and
//! frames, its version, and copies. A domain's table lives in the RAM
//! pages it placed with `XENMEM_add_to_physmap`; [`GuestFrames`] reaches
//! it there. Mapping grants is for the hypervisor's own backends
//! ([`Grants::map`](super::Grants::map)); a guest asking to map gets
//! -ENOSYS.

use super::copy::{plan_copy, CopyEnd};
use super::{GrantFrames, GrantStatus, ENTRIES_PER_FRAME};
use crate::evtchn::{DomId, Errno};
use crate::guestview::{GuestCpu, GuestPhys, GuestView};
use crate::hub::{only_self, Hub};
use crate::xenabi::{
    GnttabCopy, GnttabGetVersion, GnttabQuerySize, GnttabSetVersion, GnttabSetupTable,
};
use vmm_glue::xen::event_channel::DOMID_SELF;
use vmm_glue::xen::grant_table::{gntst, op, GnttabCopy as GnttabCopyOp, GrantEntryV1, GrantRef};

/// Copies in one `GNTTABOP_copy` batch before the guest must call again.
const COPY_BATCH_MAX: u64 = 512;
/// `INVALID_GFN` as the frame list reports an unplaced frame.
const INVALID_GFN: u64 = u64::MAX;

/// A domain's grant table frames in its RAM.
#[derive(Debug)]
pub struct GuestFrames<'a, M> {
    pub mem: &'a M,
    /// Where each frame is placed (guest-physical; index = frame).
    pub frames: &'a [Option<u64>],
}

impl<M: GuestPhys> GuestFrames<'_, M> {
    fn entry_gpa(&self, r: GrantRef) -> Option<u64> {
        let frame = self
            .frames
            .get((r / ENTRIES_PER_FRAME) as usize)
            .copied()??;
        Some(frame + u64::from(r % ENTRIES_PER_FRAME) * GrantEntryV1::SIZE as u64)
    }
}

impl<M: GuestPhys> GrantFrames for GuestFrames<'_, M> {
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

/// `grant_table_op(cmd, uop, count)` (`args`) of domain `me`, whose grant
/// frames are placed at `frames`: the value for RAX, or an error.
pub fn grant_table_op<M: GuestPhys, C: GuestCpu>(
    me: DomId,
    g: &GuestView<'_, M, C>,
    frames: &[Option<u64>],
    args: [u64; 5],
    hub: &mut Hub,
) -> Result<i64, Errno> {
    let (cmd, uop, count) = (args[0], args[1], args[2]);
    let Ok(cmd) = u32::try_from(cmd) else {
        return Err(Errno::NoSys);
    };
    match cmd {
        op::QUERY_SIZE => {
            if count != 1 {
                return Err(Errno::Inval);
            }
            let mut a = g.read_arg::<GnttabQuerySize>(uop)?;
            // Another domain, even one without a table (domain 0):
            // Xen looks it up, then refuses.
            let other = a.v.dom != DOMID_SELF && a.v.dom != me;
            let q = if other && hub.evtchn.has_domain(a.v.dom) {
                Err(GrantStatus::PermissionDenied)
            } else {
                hub.grants.query_size(me, a.v.dom)
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
            g.write_arg(uop, &mut a)?;
            Ok(0)
        }
        op::SETUP_TABLE => {
            if count != 1 {
                return Err(Errno::Inval);
            }
            let mut a = g.read_arg::<GnttabSetupTable>(uop)?;
            let pfn_size = GnttabSetupTable::pfn_size(g.abi());
            let (dom, nr, list) = (a.v.dom, a.v.nr_frames, a.v.frame_list);
            let mut return_status = None;
            let mut status = if dom != DOMID_SELF && dom != me {
                // Xen looks the domain up before it checks the right.
                if hub.evtchn.has_domain(dom) {
                    GrantStatus::PermissionDenied.status()
                } else {
                    GrantStatus::BadDomain.status()
                }
            } else {
                match hub.grants.table_mut(me).map(|t| t.setup_table(nr)) {
                    Some(Ok(())) => {
                        for i in 0..nr {
                            let gfn = frames
                                .get(i as usize)
                                .copied()
                                .flatten()
                                .map_or(INVALID_GFN, |g| g >> 12);
                            let at = list.wrapping_add(u64::from(i) * pfn_size as u64);
                            if g.copy_to_guest(at, &gfn.to_le_bytes()[..pfn_size]).is_err() {
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
            g.write_arg(uop, &mut a)?;
            Ok(0)
        }
        op::SET_VERSION => {
            if count != 1 {
                return Err(Errno::Inval);
            }
            let mut a = g.read_arg::<GnttabSetVersion>(uop)?;
            let table = hub.grants.table_mut(me).ok_or(Errno::Srch)?;
            a.v.version = table.set_version(a.v.version)?;
            g.write_arg(uop, &mut a)?;
            Ok(0)
        }
        op::GET_VERSION => {
            if count != 1 {
                return Err(Errno::Inval);
            }
            let mut a = g.read_arg::<GnttabGetVersion>(uop)?;
            only_self(me, a.v.dom, &hub.evtchn)?;
            a.v.version = hub.grants.table(me).ok_or(Errno::Srch)?.version();
            g.write_arg(uop, &mut a)?;
            Ok(0)
        }
        op::COPY => {
            if count > COPY_BATCH_MAX {
                return Err(Errno::Inval);
            }
            let size = GnttabCopy::size(g.abi()) as u64;
            for i in 0..count {
                let at = uop.wrapping_add(i * size);
                let mut a = g.read_arg::<GnttabCopy>(at)?;
                let frames = GuestFrames { mem: g.mem, frames };
                a.v.status = match grant_copy(me, &frames, a.v.into(), hub) {
                    Ok(()) => gntst::OKAY,
                    Err(s) => s.status(),
                };
                g.write_arg(at, &mut a)?;
            }
            Ok(0)
        }
        _ => Err(Errno::NoSys),
    }
}

/// One `struct gnttab_copy` of domain `me`, whose memory and grant frames
/// are `frames`. Both ends must be this domain's memory: a frame of its
/// own, or a grant in its own table (granted to itself); grants of other
/// guests are reachable only by the hypervisor's backends.
fn grant_copy<M: GuestPhys>(
    me: DomId,
    frames: &GuestFrames<'_, M>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guestview::testing::{Cpu, Ram};

    const ME: DomId = 1;

    /// A 64-bit guest of 8 pages with paging off, and a hub that knows it
    /// and domain 2.
    fn guest() -> (Ram, Cpu, Hub) {
        let mut hub = Hub::new();
        hub.add_domain(ME).unwrap();
        hub.add_domain(2).unwrap();
        let cpu = Cpu {
            cr3: None,
            long: true,
        };
        (Ram::new(8), cpu, hub)
    }

    fn call(ram: &Ram, cpu: &Cpu, hub: &mut Hub, frames: &[Option<u64>], args: [u64; 3]) -> i64 {
        let g = GuestView { mem: ram, cpu };
        grant_table_op(ME, &g, frames, [args[0], args[1], args[2], 0, 0], hub).unwrap()
    }

    fn word(ram: &Ram, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        ram.read(gpa, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    fn status(ram: &Ram, gpa: u64) -> i16 {
        let mut b = [0u8; 2];
        ram.read(gpa, &mut b).unwrap();
        i16::from_le_bytes(b)
    }

    /// `struct gnttab_setup_table` at 0x100 for `nr` frames into `list`.
    fn setup_table(ram: &Ram, nr: u32, list: u64) {
        ram.write(0x100, &DOMID_SELF.to_le_bytes()).unwrap();
        ram.write(0x104, &nr.to_le_bytes()).unwrap();
        ram.write(0x108, &0x5555u16.to_le_bytes()).unwrap();
        ram.write(0x110, &list.to_le_bytes()).unwrap();
    }

    #[test]
    fn setup_table_lists_each_placed_frame_and_invalid_gfn_for_the_rest() {
        let (ram, cpu, mut hub) = guest();
        setup_table(&ram, 2, 0x200);
        let frames = [Some(0x5000), None];
        assert_eq!(
            call(
                &ram,
                &cpu,
                &mut hub,
                &frames,
                [op::SETUP_TABLE.into(), 0x100, 1]
            ),
            0
        );
        assert_eq!(status(&ram, 0x108), gntst::OKAY);
        assert_eq!((word(&ram, 0x200), word(&ram, 0x208)), (5, INVALID_GFN));
        assert_eq!(hub.grants.query_size(ME, ME).unwrap().nr_frames, 2);
    }

    #[test]
    fn setup_table_with_a_frame_list_outside_memory_is_bad_virt_addr() {
        let (ram, cpu, mut hub) = guest();
        setup_table(&ram, 1, 0x10_0000);
        let frames = [Some(0x5000)];
        assert_eq!(
            call(
                &ram,
                &cpu,
                &mut hub,
                &frames,
                [op::SETUP_TABLE.into(), 0x100, 1]
            ),
            0
        );
        assert_eq!(status(&ram, 0x108), gntst::BAD_VIRT_ADDR);
    }

    #[test]
    fn query_size_of_another_domain_is_refused_and_its_fields_kept() {
        let (ram, cpu, mut hub) = guest();
        ram.write(0x100, &2u16.to_le_bytes()).unwrap();
        ram.write(0x104, &[0xaa; 8]).unwrap();
        assert_eq!(
            call(&ram, &cpu, &mut hub, &[], [op::QUERY_SIZE.into(), 0x100, 1]),
            0
        );
        assert_eq!(status(&ram, 0x10c), gntst::PERMISSION_DENIED);
        assert_eq!(word(&ram, 0x104), 0xaaaa_aaaa_aaaa_aaaa);
        ram.write(0x100, &DOMID_SELF.to_le_bytes()).unwrap();
        call(&ram, &cpu, &mut hub, &[], [op::QUERY_SIZE.into(), 0x100, 1]);
        assert_eq!(status(&ram, 0x10c), gntst::OKAY);
        let q = hub.grants.query_size(ME, ME).unwrap();
        assert_eq!(
            word(&ram, 0x104),
            u64::from(q.nr_frames) | u64::from(q.max_nr_frames) << 32
        );
    }

    /// A `struct gnttab_copy` at `at` from frame `src` to frame `dst`
    /// (offsets 0x10 and 0x20), 8 bytes.
    fn copy_entry(ram: &Ram, at: u64, src: u64, dst: u64) {
        let mut b = [0u8; 40];
        b[0..8].copy_from_slice(&src.to_le_bytes());
        b[8..10].copy_from_slice(&DOMID_SELF.to_le_bytes());
        b[10..12].copy_from_slice(&0x10u16.to_le_bytes());
        b[16..24].copy_from_slice(&dst.to_le_bytes());
        b[24..26].copy_from_slice(&DOMID_SELF.to_le_bytes());
        b[26..28].copy_from_slice(&0x20u16.to_le_bytes());
        b[32..34].copy_from_slice(&8u16.to_le_bytes());
        b[36..38].copy_from_slice(&0x7777u16.to_le_bytes());
        ram.write(at, &b).unwrap();
    }

    #[test]
    fn copy_moves_bytes_between_the_guests_frames_and_a_frame_outside_is_bad_page() {
        let (ram, cpu, mut hub) = guest();
        ram.write(0x3010, b"grantcpy").unwrap();
        copy_entry(&ram, 0x100, 3, 4);
        copy_entry(&ram, 0x128, 3, 100);
        assert_eq!(
            call(&ram, &cpu, &mut hub, &[], [op::COPY.into(), 0x100, 2]),
            0
        );
        let mut b = [0u8; 8];
        ram.read(0x4020, &mut b).unwrap();
        assert_eq!(&b, b"grantcpy");
        assert_eq!(status(&ram, 0x124), gntst::OKAY);
        assert_eq!(status(&ram, 0x14c), gntst::BAD_PAGE);
    }
}
