//! `GNTTABOP_copy` argument checks, as a pure function that turns one
//! `struct gnttab_copy` into a plan of what to copy.
//!
//! Checks in the order of Xen's `__gnttab_copy`: both ends must stay
//! inside their page (`GNTST_bad_copy_arg`); an end given by frame must be
//! the caller's own (`DOMID_SELF`, else `GNTST_permission_denied`); an end
//! given by grant must name a known domain (`GNTST_bad_domain`). Newer Xen
//! checks the domains before the bounds; a request wrong in both ways gets
//! a different error there. The grant entries themselves are checked when
//! the plan is carried out, with [`super::Grants::copy_frame`] (read-only
//! for the source, writable for the destination).

use vmm_glue::xen::event_channel::DOMID_SELF;
use vmm_glue::xen::grant_table::{gntcopy, GnttabCopy, GrantRef};

use super::{GrantStatus, PAGE_SIZE};
use crate::evtchn::DomId;

/// One end of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyEnd {
    /// A grant of `domid` to the caller.
    Gref {
        /// The granting domain.
        domid: DomId,
        /// The grant reference.
        gref: GrantRef,
        /// Byte offset in the granted page.
        offset: u16,
    },
    /// A frame of the caller.
    Gmfn {
        /// The caller's guest frame number.
        gmfn: u64,
        /// Byte offset in the page.
        offset: u16,
    },
}

/// A checked copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPlan {
    /// Where to read.
    pub source: CopyEnd,
    /// Where to write.
    pub dest: CopyEnd,
    /// Bytes.
    pub len: u16,
}

fn end(
    me: DomId,
    is_gref: bool,
    u: u64,
    domid: DomId,
    offset: u16,
    known: &impl Fn(DomId) -> bool,
) -> Result<CopyEnd, GrantStatus> {
    if !is_gref {
        if domid != DOMID_SELF {
            return Err(GrantStatus::PermissionDenied);
        }
        return Ok(CopyEnd::Gmfn { gmfn: u, offset });
    }
    let domid = if domid == DOMID_SELF { me } else { domid };
    if !known(domid) {
        return Err(GrantStatus::BadDomain);
    }
    // The union holds a 32-bit grant_ref_t in its low half.
    Ok(CopyEnd::Gref {
        domid,
        gref: u as u32,
        offset,
    })
}

/// Checks one copy requested by `me`; `known` says which domains exist.
pub fn plan_copy(
    me: DomId,
    op: &GnttabCopy,
    known: impl Fn(DomId) -> bool,
) -> Result<CopyPlan, GrantStatus> {
    let len = usize::from(op.len);
    if usize::from(op.source.offset) + len > PAGE_SIZE
        || usize::from(op.dest.offset) + len > PAGE_SIZE
    {
        return Err(GrantStatus::BadCopyArg);
    }
    let src_gref = op.flags & gntcopy::SOURCE_GREF != 0;
    let dst_gref = op.flags & gntcopy::DEST_GREF != 0;
    if (!src_gref && op.source.domid != DOMID_SELF) || (!dst_gref && op.dest.domid != DOMID_SELF) {
        return Err(GrantStatus::PermissionDenied);
    }
    let s = &op.source;
    let d = &op.dest;
    Ok(CopyPlan {
        source: end(me, src_gref, s.u, s.domid, s.offset, &known)?,
        dest: end(me, dst_gref, d.u, d.domid, d.offset, &known)?,
        len: op.len,
    })
}
