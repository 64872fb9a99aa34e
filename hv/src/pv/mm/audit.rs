//! A consistency check of the whole bookkeeping against the tables in
//! memory: every count equals the references that exist (Xen's
//! `audit_domains` idea), and no frame is both mapped writable and a table.

use alloc::format;
use alloc::string::String;
use core::fmt;
use vmm_glue::compact::VecMap;

use super::pte::{self, mfn, present, writable};
use super::types::guest_l4_slot;
use super::{Frames, PageType, PvMm, VcpuRoots};
use crate::pv::abi::va::{END_XEN_SLOT, FIRST_XEN_SLOT, SLOT_M2P, SLOT_PERDOMAIN};

/// The first inconsistency found, at frame `mfn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditError {
    pub mfn: u64,
    pub what: String,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame {:#x}: {}", self.mfn, self.what)
    }
}

/// The references one frame should have.
#[derive(Clone, Copy, Debug, Default)]
struct Expect {
    count: u64,
    refs: u64,
    linear: i64,
}

fn err(mfn: u64, what: String) -> AuditError {
    AuditError { mfn, what }
}

impl PvMm {
    /// Check every frame's counts against the references that exist: the
    /// entries of validated tables in `mem`, pins, the vCPUs' `roots`, the
    /// descriptor-page references in `seg_desc` (one per reference held)
    /// and the special frames' own writable reference. Also checks that
    /// validated tables hold only acceptable, adjusted entries and the
    /// hypervisor's L4 slots.
    pub fn audit<M: Frames + ?Sized>(
        &self,
        mem: &M,
        roots: &[VcpuRoots],
        seg_desc: &[u64],
    ) -> Result<(), AuditError> {
        let mut want: VecMap<u64, Expect> = VecMap::new();
        let held = roots
            .iter()
            .flat_map(|r| [r.kernel, r.user])
            .flatten()
            .chain(seg_desc.iter().copied());
        let pins = self.frames().filter(|(_, f)| f.pinned()).map(|(m, _)| m);
        for m in held.chain(pins) {
            let e = want.entry(m).or_default();
            e.count += 1;
            e.refs += 1;
        }
        for (m, f) in self.frames() {
            if f.special_frame() {
                want.entry(m).or_default().count += 1;
            }
        }
        for (t, f) in self.frames() {
            let Some(level) = f.ty.level() else {
                continue;
            };
            if f.count == 0 || !f.validated() {
                continue;
            }
            self.audit_table(mem, t, level, &mut want)?;
        }
        for (m, f) in self.frames() {
            let e = want.remove(&m).unwrap_or_default();
            let got = (u64::from(f.count), u64::from(f.refs), i64::from(f.linear));
            if got != (e.count, e.refs, e.linear) {
                return Err(err(
                    m,
                    format!(
                        "{:?}: count {} refs {} linear {}, but {} typed and {} general references and linear {} exist",
                        f.ty, got.0, got.1, got.2, e.count, e.refs, e.linear
                    ),
                ));
            }
            if f.ty.level().is_some() && f.count > 0 && !f.validated() {
                return Err(err(m, format!("{:?} in use but not validated", f.ty)));
            }
            if f.pinned() && f.ty.level().is_none() {
                return Err(err(m, format!("pinned as {:?}", f.ty)));
            }
        }
        match want.into_iter().next() {
            Some((m, _)) => Err(err(
                m,
                String::from("referenced but not a frame of the domain"),
            )),
            None => Ok(()),
        }
    }

    fn audit_table<M: Frames + ?Sized>(
        &self,
        mem: &M,
        t: u64,
        level: u8,
        want: &mut VecMap<u64, Expect>,
    ) -> Result<(), AuditError> {
        let table = mem
            .read_table(t)
            .ok_or_else(|| err(t, String::from("table not readable")))?;
        for (i, &e) in table.iter().enumerate() {
            if level == 4 && !guest_l4_slot(i) {
                let ok = match i {
                    SLOT_M2P => e == 0 || e == self.slots.m2p,
                    SLOT_PERDOMAIN => e == self.slots.perdomain,
                    _ => e == 0,
                };
                if !ok && (FIRST_XEN_SLOT..END_XEN_SLOT).contains(&i) {
                    return Err(err(t, format!("Xen slot {i} holds {e:#x}")));
                }
                continue;
            }
            if !present(e) {
                continue;
            }
            let target = mfn(e);
            let at = |what: &str| err(t, format!("L{level} entry {i} ({e:#x}): {what}"));
            if level == 1 {
                if e & pte::l1_disallow(self.io_resources()) != 0 || e != pte::adjust_l1(e) {
                    return Err(at("flags not as validated"));
                }
                let Some(f) = self.frame(target) else {
                    continue;
                };
                let w = want.entry(target).or_default();
                w.refs += 1;
                if writable(e) {
                    if f.ty != PageType::Writable {
                        return Err(at(&format!("writable mapping of a {:?} frame", f.ty)));
                    }
                    w.count += 1;
                }
                continue;
            }
            if e & pte::LN_DISALLOW != 0 || e != pte::adjust_ln(level, e) {
                return Err(at("flags not as validated"));
            }
            if target == t {
                if writable(e) {
                    return Err(at("writable self-map"));
                }
                continue;
            }
            let f = self.frame(target).ok_or_else(|| at("not the domain's"))?;
            let w = want.entry(target).or_default();
            w.refs += 1;
            w.count += 1;
            if f.ty == PageType::table(level) {
                if writable(e) {
                    return Err(at("writable linear entry"));
                }
                w.linear -= 1;
                want.entry(t).or_default().linear += 1;
            } else if f.ty != PageType::table(level - 1) {
                return Err(at(&format!("points at a {:?} frame", f.ty)));
            }
        }
        Ok(())
    }
}
