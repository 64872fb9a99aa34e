//! What a domU's `foreigndom` argument may name (`page_alloc.c`
//! `get_pg_owner`, the XSM default policy in `xsm/dummy.h`), for the
//! integrator's `mmu_update` and `mmuext_op` loops.

use super::PgOwner;
use crate::evtchn::Errno;
use crate::pv::abi::domid;

/// Another domain a `foreigndom` may name, as the caller knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// No such domain.
    Absent,
    /// A PV domain.
    Pv,
    /// A PVH/HVM domain.
    Hvm,
}

/// The page owner of an `mmu_update` call of domain `self_id`:
/// `foreigndom[15:0]` names the owner of the mapped frames, and
/// `foreigndom[31:16]`, when non-zero, one more than the owner of the page
/// tables.
///
/// `DOMID_SELF` is the domain itself; naming itself by id is -ESRCH
/// ("cannot specify itself as foreign domain"); `DOMID_IO` maps I/O memory
/// only; an unknown domain is -ESRCH. Naming `DOMID_XEN` or another domain
/// passes Xen's lookup but its XSM check then fails the first request with
/// -EPERM (a call with count 0 returns 0): `Err(Perm)` here.
pub fn mmu_update_owner(
    foreigndom: u32,
    self_id: u16,
    other: impl Fn(u16) -> Foreign,
) -> Result<PgOwner, Errno> {
    let pt = foreigndom >> 16;
    if pt != 0 {
        let id = (pt - 1) as u16;
        if id != self_id {
            return match other(id) {
                Foreign::Absent => Err(Errno::Srch),
                _ => Err(Errno::Perm),
            };
        }
    }
    match foreigndom as u16 {
        domid::SELF => Ok(PgOwner::Own),
        id if id == self_id => Err(Errno::Srch),
        domid::IO => Ok(PgOwner::Io),
        domid::XEN => Err(Errno::Perm),
        id => match other(id) {
            Foreign::Absent => Err(Errno::Srch),
            _ => Err(Errno::Perm),
        },
    }
}

/// Whether an `mmuext_op` call of domain `self_id` may go on with
/// `foreigndom` (its low 16 bits): only `DOMID_SELF`. Its own id and
/// unknown domains are -ESRCH, `DOMID_IO`/`DOMID_XEN` and non-PV domains
/// -EINVAL ("not a PV domain"), another PV domain -EPERM (XSM). Xen checks
/// this before the first op, whatever the count.
pub fn mmuext_owner(
    foreigndom: u32,
    self_id: u16,
    other: impl Fn(u16) -> Foreign,
) -> Result<(), Errno> {
    match foreigndom as u16 {
        domid::SELF => Ok(()),
        id if id == self_id => Err(Errno::Srch),
        domid::IO | domid::XEN => Err(Errno::Inval),
        id => match other(id) {
            Foreign::Absent => Err(Errno::Srch),
            Foreign::Hvm => Err(Errno::Inval),
            Foreign::Pv => Err(Errno::Perm),
        },
    }
}
