//! `memory_op` commands a PV guest makes about machine frames: where the
//! M2P is (`XENMEM_machphys_mapping`), giving frames back and getting them
//! back (`decrease_reservation`, `populate_physmap`), and
//! `XENMEM_exchange`, with which Linux's swiotlb-xen makes its bounce
//! buffer machine-contiguous below an address limit. With an identity p2m
//! the frames a guest already has are contiguous as its pseudo-physical
//! ones are, so an exchange hands back the same frames when they satisfy
//! the request (Xen may return any frames), and fails as Xen fails when no
//! memory meets the limit.

use super::super::guest_va::View;
use super::super::hypercall::memory::{max_order, Reservation};
use super::super::hypercall::{Errno, HcResult};
use super::PvDomain;
use alloc::vec::Vec;
use hv::pv::abi::{domid, va};
use hv::xenabi::Abi;

pub(in crate::domain) const XENMEM_INCREASE_RESERVATION: u64 = 0;
pub(in crate::domain) const XENMEM_DECREASE_RESERVATION: u64 = 1;
pub(in crate::domain) const XENMEM_POPULATE_PHYSMAP: u64 = 6;
pub(in crate::domain) const XENMEM_EXCHANGE: u64 = 11;
pub(in crate::domain) const XENMEM_MACHPHYS_MAPPING: u64 = 12;

/// The most extents one call handles (the rest is the guest's to retry).
const EXTENTS_MAX: u64 = 1 << 20;

/// The address limit `mem_flags` asks for (bits 0-7), in bits.
fn address_bits(r: &Reservation) -> u32 {
    r.mem_flags & 0xff
}

/// -EPERM unless `d` names the caller `me`.
fn pv_self(me: u16, d: u16) -> Result<(), Errno> {
    if d == domid::SELF || d == me {
        Ok(())
    } else {
        Err(Errno::Perm)
    }
}

/// What a PV domain's own `memory_op` commands touch: the caller's guest
/// access and the domain's PV state (frames and M2P); `ptdom`: it has
/// passed-through functions (a larger `max_order`).
pub(in crate::domain) struct PvMemory<'a> {
    pub me: u16,
    pub g: View<'a>,
    pub pv: &'a mut PvDomain,
    pub ptdom: bool,
}

impl PvMemory<'_> {
    /// A PV-only `memory_op` command; `None` for the others.
    pub(in crate::domain) fn op(&mut self, cmd: u64, arg: u64) -> Option<HcResult> {
        Some(match cmd {
            XENMEM_MACHPHYS_MAPPING => {
                // { v_start, v_end, max_mfn }.
                let mut b = [0u8; 24];
                b[0..8].copy_from_slice(&va::MACH2PHYS_VIRT_START.to_le_bytes());
                b[8..16].copy_from_slice(&va::MACH2PHYS_VIRT_END.to_le_bytes());
                b[16..24].copy_from_slice(&(va::MACH2PHYS_NR_ENTRIES - 1).to_le_bytes());
                self.g.copy_to_guest(arg, &b).map(|()| 0)
            }
            XENMEM_EXCHANGE => self.pv_exchange(arg),
            XENMEM_DECREASE_RESERVATION => self.pv_decrease(arg),
            XENMEM_POPULATE_PHYSMAP => self.pv_populate(arg),
            // No memory beyond the domain's to give: no extent done.
            XENMEM_INCREASE_RESERVATION => Ok(0),
            _ => return None,
        })
    }

    /// `XENMEM_exchange`: the input extents' frames, when contiguous and
    /// within the output's address limit, are the output extents.
    fn pv_exchange(&mut self, arg: u64) -> HcResult {
        let b: [u8; 72] = self.g.copy_from_guest(arg)?;
        let (inp, out) = (
            Reservation::decode(&b[0..32], Abi::X64),
            Reservation::decode(&b[32..64], Abi::X64),
        );
        if u64::from_le_bytes(b[64..72].try_into().unwrap_or([0; 8])) != 0 {
            return Err(Errno::Inval);
        }
        pv_self(self.me, inp.domid)?;
        pv_self(self.me, out.domid)?;
        if inp.extent_order.max(out.extent_order) > max_order(self.ptdom) {
            return Err(Errno::Perm);
        }
        let frames_in = inp
            .nr_extents
            .checked_shl(inp.extent_order)
            .ok_or(Errno::Inval)?;
        if inp.nr_extents > EXTENTS_MAX
            || out.nr_extents > EXTENTS_MAX
            || Some(frames_in) != out.nr_extents.checked_shl(out.extent_order)
        {
            return Err(Errno::Inval);
        }
        let mut frames = Vec::with_capacity(frames_in as usize);
        for i in 0..inp.nr_extents {
            let e: [u8; 8] = self
                .g
                .copy_from_guest(inp.extent_start.wrapping_add(i * 8))?;
            let first = u64::from_le_bytes(e);
            frames.extend(first..first + (1 << inp.extent_order));
        }
        let Some(&base) = frames.first() else {
            return Ok(0);
        };
        let contiguous = frames
            .iter()
            .enumerate()
            .all(|(i, &f)| f == base + i as u64);
        let bits = address_bits(&out);
        let below = bits == 0 || bits >= 52 || (base + frames_in) << 12 <= 1u64 << bits;
        let plain = {
            let pv = &*self.pv;
            frames.iter().all(|&f| {
                pv.mm.is_ram(f)
                    && pv
                        .mm
                        .frame_state(f)
                        .is_some_and(|s| s.count == 0 && s.refs == 0)
            })
        };
        if !contiguous || !below || !plain {
            // As Xen when it finds no memory to give: nothing exchanged.
            return Err(Errno::NoMem);
        }
        for j in 0..out.nr_extents {
            let at = out.extent_start.wrapping_add(j * 8);
            let g: [u8; 8] = self.g.copy_from_guest(at)?;
            let gpfn = u64::from_le_bytes(g);
            let mfn = base + (j << out.extent_order);
            // The new frames' M2P entries name the guest's pfns.
            for k in 0..(1u64 << out.extent_order) {
                self.pv.area.set_m2p(mfn + k, gpfn.wrapping_add(k));
            }
            self.g.copy_to_guest(at, &mfn.to_le_bytes())?;
        }
        self.g
            .copy_to_guest(arg + 64, &inp.nr_extents.to_le_bytes())?;
        Ok(0)
    }

    /// `decrease_reservation`: the listed frames leave the domain (they
    /// can no longer be mapped); returns how many extents went.
    fn pv_decrease(&mut self, arg: u64) -> HcResult {
        let Ok(b) = self.g.copy_from_guest::<32>(arg) else {
            return Ok(0);
        };
        let r = Reservation::decode(&b, Abi::X64);
        // Another domain: nothing done, as Xen answers it.
        if pv_self(self.me, r.domid).is_err() || r.extent_order > max_order(self.ptdom) {
            return Ok(0);
        }
        let mut done = 0;
        for i in 0..r.nr_extents.min(EXTENTS_MAX) {
            let e: [u8; 8] = match self.g.copy_from_guest(r.extent_start.wrapping_add(i * 8)) {
                Ok(e) => e,
                Err(_) => break,
            };
            let first = u64::from_le_bytes(e);
            let pv = &mut *self.pv;
            let ok = (first..first + (1 << r.extent_order)).all(|f| pv.mm.remove_ram(f).is_ok());
            if !ok {
                break;
            }
            // Their contents go, as the frames would go back to Xen.
            let _ = self
                .g
                .mem
                .write(first << 12, &alloc::vec![0u8; 4096 << r.extent_order]);
            done += 1;
        }
        Ok(done)
    }

    /// `populate_physmap`: frames given back earlier return, at the
    /// pfns asked for (the identity p2m names them); returns how many.
    fn pv_populate(&mut self, arg: u64) -> HcResult {
        let Ok(b) = self.g.copy_from_guest::<32>(arg) else {
            return Ok(0);
        };
        let r = Reservation::decode(&b, Abi::X64);
        // Another domain: nothing done, as Xen answers it.
        if pv_self(self.me, r.domid).is_err() || r.extent_order > max_order(self.ptdom) {
            return Ok(0);
        }
        let mut done = 0;
        for i in 0..r.nr_extents.min(EXTENTS_MAX) {
            let at = r.extent_start.wrapping_add(i * 8);
            let Ok(e) = self.g.copy_from_guest::<8>(at) else {
                break;
            };
            let gpfn = u64::from_le_bytes(e);
            let pv = &mut *self.pv;
            let ok = (gpfn..gpfn + (1 << r.extent_order)).all(|f| pv.mm.add_ram(f).is_ok());
            if !ok {
                break;
            }
            if self.g.copy_to_guest(at, &gpfn.to_le_bytes()).is_err() {
                break;
            }
            done += 1;
        }
        Ok(done)
    }
}
