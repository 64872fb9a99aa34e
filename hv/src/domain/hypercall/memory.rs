//! `memory_op`: the guest's memory map and reservation, ballooning
//! (`decrease_reservation`, `populate_physmap`, `exchange`), and placing
//! the shared info page and grant table frames in its physical address
//! space.
//!
//! A PVH domain's pages given back leave its nested page tables (and its
//! IOMMU tables when it has passed-through functions): the guest-physical
//! page becomes a hole like other absent memory (reads all-ones, writes
//! dropped). Their frames stay in the domain's pool (`GuestMemory`), from
//! which `populate_physmap` and `exchange` take, so a domain never holds
//! more than the memory it was built with (Xen's `max_pages`) and a frame
//! never reaches another domain.

use super::{Errno, HcResult, View};
use crate::domain::guest_va::view;
use crate::domain::pci::PciFront;
use crate::domain::space::GuestSpace;
use crate::domain::state::XenState;
use crate::domain::GuestLog;
use crate::virt::guest_mem::PageState;
use crate::virt::Vcpu;
use hv::hub::{only_self, Hub};
use hv::xenabi::{
    Abi, AddToPhysmap, DomidArg, MemoryMap, XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO,
};

const XENMEM_INCREASE_RESERVATION: u64 = 0;
const XENMEM_DECREASE_RESERVATION: u64 = 1;
const XENMEM_POPULATE_PHYSMAP: u64 = 6;
const XENMEM_EXCHANGE: u64 = 11;
const XENMEM_CURRENT_RESERVATION: u64 = 3;
const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
const XENMEM_MEMORY_MAP: u64 = 9;
const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `cmd` bits that carry the command; the rest are a continuation index.
pub(super) const MEMOP_CMD_MASK: u64 = (1 << 6) - 1;

/// Where a guest may ask for pages outside its memory map.
const UNPOPULATED_LIMIT: u64 = 1 << 40;

/// One `struct e820entry` as `XENMEM_memory_map` returns it.
const E820_ENTRY: usize = MemoryMap::E820_ENTRY_SIZE;

/// What `memory_op` changes of a domain: its guest-physical space, its
/// Xen state (memory map, grant frames, shared info page), its log; seen
/// through its current vCPU, beside its PCI frontend (whose trapped pages
/// are not populatable, and whose IOMMU mappings follow the space).
pub(in crate::domain) struct Memory<'a> {
    pub id: u16,
    pub space: &'a mut GuestSpace,
    pub cpu: &'a Vcpu,
    pub xen: &'a mut XenState,
    pub pci: Option<&'a PciFront>,
    pub log: GuestLog<'a>,
    /// Set when the shared info page moved: the time in it is to be
    /// written again.
    pub time_stale: bool,
}

impl Memory<'_> {
    /// The guest access of the calling vCPU.
    #[inline]
    fn view(&self) -> View<'_> {
        view(self.space, self.cpu)
    }

    /// `memory_op(cmd, arg)` (`args`): `None` for a command that is not
    /// the guest's (the control domain's, or unknown).
    pub(in crate::domain) fn op(&mut self, args: [u64; 5], hub: &mut Hub) -> Option<HcResult> {
        match args[0] & MEMOP_CMD_MASK {
            XENMEM_CURRENT_RESERVATION
            | XENMEM_MAXIMUM_RESERVATION
            | XENMEM_INCREASE_RESERVATION
            | XENMEM_DECREASE_RESERVATION
            | XENMEM_POPULATE_PHYSMAP
            | XENMEM_EXCHANGE
            | XENMEM_MAXIMUM_GPFN
            | XENMEM_MEMORY_MAP
            | XENMEM_ADD_TO_PHYSMAP => Some(self.guest_op(args, hub)),
            _ => None,
        }
    }

    fn guest_op(&mut self, args: [u64; 5], hub: &mut Hub) -> HcResult {
        match args[0] & MEMOP_CMD_MASK {
            XENMEM_CURRENT_RESERVATION => {
                only_self(
                    self.id,
                    self.view().read_arg::<DomidArg>(args[1])?.v.domid,
                    &hub.evtchn,
                )?;
                Ok((self.ram_pages() - self.space.pool_pages()) as i64)
            }
            XENMEM_MAXIMUM_RESERVATION => {
                only_self(
                    self.id,
                    self.view().read_arg::<DomidArg>(args[1])?.v.domid,
                    &hub.evtchn,
                )?;
                Ok(self.ram_pages() as i64)
            }
            // Pages the guest would not see (a translated guest's are not
            // mapped): no extent done.
            XENMEM_INCREASE_RESERVATION => Ok(0),
            XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP => {
                let populate = args[0] & MEMOP_CMD_MASK == XENMEM_POPULATE_PHYSMAP;
                Ok(self.reservation(args[1], populate, hub))
            }
            XENMEM_EXCHANGE => self.exchange(args[1], hub),
            XENMEM_MAXIMUM_GPFN => {
                only_self(
                    self.id,
                    self.view().read_arg::<DomidArg>(args[1])?.v.domid,
                    &hub.evtchn,
                )?;
                let top = self.xen.e820.iter().map(|r| r.0 + r.1).max().unwrap_or(0);
                Ok((top.saturating_sub(1) >> 12) as i64)
            }
            XENMEM_MEMORY_MAP => self.memory_map(args[1]),
            XENMEM_ADD_TO_PHYSMAP => self.add_to_physmap(args[1], hub),
            _ => Err(Errno::NoSys),
        }
    }

    /// The RAM pages of the guest's memory map: the memory it was built
    /// with (Xen's `max_pages`).
    fn ram_pages(&self) -> u64 {
        self.xen
            .e820
            .iter()
            .filter(|r| r.2 == 1)
            .map(|r| r.1 >> 12)
            .sum()
    }

    /// `struct xen_memory_map { u32 nr_entries; (pad) u64 buffer; }`: the
    /// first `nr_entries` entries of the guest's map (all of them if it has
    /// room), and how many were written.
    fn memory_map(&mut self, arg: u64) -> HcResult {
        let mut a = self.view().read_arg::<MemoryMap>(arg)?;
        let (room, buffer) = (a.v.nr_entries as usize, a.v.buffer);
        let n = room.min(self.xen.e820.len());
        let mut out = alloc::vec![0u8; n * E820_ENTRY];
        for (i, &(base, len, kind)) in self.xen.e820.iter().take(n).enumerate() {
            let e = &mut out[i * E820_ENTRY..(i + 1) * E820_ENTRY];
            e[0..8].copy_from_slice(&base.to_le_bytes());
            e[8..16].copy_from_slice(&len.to_le_bytes());
            e[16..20].copy_from_slice(&kind.to_le_bytes());
        }
        self.view().copy_to_guest(buffer, &out)?;
        a.v.nr_entries = n as u32;
        // Only `nr_entries` is written back.
        self.view()
            .copy_to_guest(arg, &a.bytes()[..MemoryMap::OUT_SIZE])?;
        Ok(0)
    }

    /// Gives the guest a fresh page at `gpa`, which is none of its memory:
    /// where Linux puts its grant frames (space it considers unpopulated).
    /// Allowed only outside every entry of the guest's memory map (its RAM,
    /// special pages and the host's holes, where passed-through BARs go),
    /// below 1 TiB, and for a few pages per domain.
    fn back_unpopulated(&mut self, gpa: u64, space: u32) -> Result<(), Errno> {
        let in_map = self
            .xen
            .e820
            .iter()
            .any(|&(base, len, _)| gpa.wrapping_sub(base) < len);
        if in_map || gpa >= UNPOPULATED_LIMIT {
            self.log.log(alloc::format!(
                "add_to_physmap space {space} at guest-physical {gpa:#x}: inside its memory \
                 map or beyond 1 TiB, -EINVAL"
            ));
            return Err(Errno::Inval);
        }
        let hpa = self.space.add_page(gpa).map_err(|_| {
            self.log.log(alloc::format!(
                "add_to_physmap space {space} at guest-physical {gpa:#x}: no more pages \
                 outside RAM for this domain, -ENOMEM"
            ));
            Errno::NoMem
        })?;
        // SAFETY: the page `GuestMemory` just added for `gpa`; it owns the
        // frame until the domain ends.
        unsafe { self.space.tables.map_4k(gpa, hpa) }.ok_or(Errno::NoMem)
    }

    /// Whether the PCI frontend traps the page at `gpa`.
    fn pci_traps(&self, gpa: u64) -> bool {
        self.pci.is_some_and(|f| f.traps(gpa))
    }

    /// `struct xen_add_to_physmap { u16 domid; u16 size; u32 space; u64
    /// idx; u64 gpfn; }`. The page must be the guest's RAM: the shared info
    /// page or grant frame then lives in that page.
    fn add_to_physmap(&mut self, arg: u64, hub: &mut Hub) -> HcResult {
        let a = self.view().read_arg::<AddToPhysmap>(arg)?.v;
        only_self(self.id, a.domid, &hub.evtchn)?;
        let (space, idx, gpfn) = (a.space, a.idx, a.gpfn);
        let gpa = gpfn.checked_mul(4096).ok_or(Errno::Inval)?;
        // An index that cannot be mapped fails before a page is placed
        // outside RAM for it (no page is left behind by a failed call).
        if !a.mappable() {
            return Err(Errno::Inval);
        }
        if space == XENMAPSPACE_GRANT_TABLE {
            let table = hub.grants.table_mut(self.id).ok_or(Errno::Srch)?;
            table.map_frame(idx as u32)?;
        }
        if self.space.translate(gpa).is_none() {
            self.back_unpopulated(gpa, space)?;
        }
        match space {
            XENMAPSPACE_SHARED_INFO => {
                if !crate::domain::events::place_shared_info(self.xen, self.space, gpa) {
                    return Err(Errno::Inval);
                }
                self.time_stale = true;
                Ok(0)
            }
            XENMAPSPACE_GRANT_TABLE => {
                let i = idx as usize;
                if self.xen.grant_frames.len() <= i {
                    self.xen.grant_frames.resize(i + 1, None);
                }
                // The frame's contents move with it; a new frame is empty.
                let mut page = [0u8; 4096];
                if let Some(old) = self.xen.grant_frames[i] {
                    self.space.read(old, &mut page).map_err(|_| Errno::Fault)?;
                }
                self.space.write(gpa, &page).map_err(|_| Errno::Fault)?;
                self.xen.grant_frames[i] = Some(gpa);
                Ok(0)
            }
            // As Xen for a space it does not know.
            _ => Err(Errno::Inval),
        }
    }
}

/// `struct xen_memory_reservation`: `extent_start` (a handle), `nr_extents`
/// (`xen_ulong_t`), `extent_order`, `mem_flags` (u32), `domid` (u16);
/// 32 bytes, 20 in the compat layout.
#[derive(Clone, Copy, Debug)]
pub(in crate::domain) struct Reservation {
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    pub mem_flags: u32,
    pub domid: u16,
}

impl Reservation {
    /// Its size in `abi`.
    pub const fn size(abi: Abi) -> usize {
        match abi {
            Abi::X64 => 32,
            Abi::Compat => 20,
        }
    }

    /// Decodes one from `b` (at least [`Self::size`] bytes).
    pub fn decode(b: &[u8], abi: Abi) -> Self {
        let u = |o: usize, n: usize| {
            let mut v = [0u8; 8];
            if let (Some(d), Some(s)) = (v.get_mut(..n), b.get(o..o + n)) {
                d.copy_from_slice(s);
            }
            u64::from_le_bytes(v)
        };
        let (w, o) = match abi {
            Abi::X64 => (8, 16),
            Abi::Compat => (4, 8),
        };
        Self {
            extent_start: u(0, w),
            nr_extents: u(w, w),
            extent_order: u(o, 4) as u32,
            mem_flags: u(o + 4, 4) as u32,
            domid: u(o + 8, 2) as u16,
        }
    }
}

/// The largest extent order a domU may use (`CONFIG_DOMU_MAX_ORDER`), and
/// one with passed-through functions (`CONFIG_PTDOM_MAX_ORDER`).
const DOMU_MAX_ORDER: u32 = 9;
const PTDOM_MAX_ORDER: u32 = 12;

/// The most extents one call handles (Xen's continuation limit: the rest
/// is the guest's to ask again).
const EXTENTS_MAX: u64 = u32::MAX as u64 >> 6;

/// The largest extent order a domain may use (Xen's `max_order`): more
/// with passed-through functions (`pci`).
pub(in crate::domain) fn max_order(pci: bool) -> u32 {
    if pci {
        PTDOM_MAX_ORDER
    } else {
        DOMU_MAX_ORDER
    }
}

impl Memory<'_> {
    /// The largest extent order this domain may use.
    fn max_order(&self) -> u32 {
        max_order(self.pci.is_some())
    }

    /// Entry `i` of a guest array of `xen_pfn_t` at `at`.
    fn pfn_at(&self, at: u64, i: u64) -> Result<u64, Errno> {
        let w: u64 = if self.view().abi() == Abi::X64 { 8 } else { 4 };
        let mut b = [0u8; 8];
        self.view()
            .read_guest(at.wrapping_add(i * w), &mut b[..w as usize])?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a `struct xen_memory_reservation` at `gva` and its size.
    fn read_reservation(&self, gva: u64, off: usize) -> Result<Reservation, Errno> {
        let abi = self.view().abi();
        let mut b = [0u8; 32];
        let n = Reservation::size(abi);
        self.view()
            .read_guest(gva.wrapping_add(off as u64), &mut b[..n])?;
        Ok(Reservation::decode(&b, abi))
    }

    /// `decrease_reservation` and `populate_physmap` as Xen answers them:
    /// the number of extents done. Nothing is done (0) for an argument
    /// that cannot be read, another domain, an order beyond `max_order`;
    /// the first extent that fails ends the call (partial success).
    fn reservation(&mut self, arg: u64, populate: bool, hub: &Hub) -> i64 {
        let Ok(r) = self.read_reservation(arg, 0) else {
            return 0;
        };
        if only_self(self.id, r.domid, &hub.evtchn).is_err() || r.extent_order > self.max_order() {
            return 0;
        }
        let pages = 1u64 << r.extent_order;
        let mut done = 0;
        while done < r.nr_extents.min(EXTENTS_MAX) {
            let Ok(first) = self.pfn_at(r.extent_start, done) else {
                break;
            };
            let ok = if populate {
                // As Xen's allocation against `max_pages`: the whole extent
                // or nothing.
                self.space.pool_pages() >= pages
                    && (0..pages).all(|k| self.populate_gfn(first.wrapping_add(k)))
            } else {
                (0..pages).all(|k| self.balloon_out(first.wrapping_add(k)))
            };
            if !ok {
                break;
            }
            done += 1;
        }
        done as i64
    }

    /// Whether the guest may give back the page at `gfn`: its RAM (not a
    /// page the hypervisor placed or keeps state in, not a special page).
    fn removable(&self, gfn: u64) -> Option<u64> {
        let gpa = gfn.checked_mul(4096)?;
        let in_ram =
            |&(base, len, kind): &(u64, u64, u32)| kind == 1 && gpa.wrapping_sub(base) < len;
        let outside = !self
            .xen
            .e820
            .iter()
            .any(|&(b, l, _)| gpa.wrapping_sub(b) < l);
        let hv_page = self.xen.shared.gpa == Some(gpa)
            || self.xen.grant_frames.contains(&Some(gpa))
            || gpa == self.xen.store_gpa
            || gpa == self.xen.console_gpa;
        (self.space.page_state(gpa) == PageState::Ram
            && (self.xen.e820.iter().any(in_ram) || outside)
            && !hv_page)
            .then_some(gpa)
    }

    /// Gives back the page at `gfn` (Xen's `guest_remove_page`): out of
    /// the IOMMU and nested page tables, its frame scrubbed into the pool.
    fn balloon_out(&mut self, gfn: u64) -> bool {
        let Some(gpa) = self.removable(gfn) else {
            return false;
        };
        if self.pci.is_some() && !crate::iommu::remap_page(self.id, gpa, None) {
            return false;
        }
        self.space.remove(gpa)
    }

    /// Whether a page may be populated at `gpa`: absent, and either a page
    /// of the RAM in the memory map given back earlier or outside the map
    /// (below 1 TiB, not the local APIC's page or a trapped PCI page).
    fn populatable(&self, gpa: u64) -> bool {
        let entry = self
            .xen
            .e820
            .iter()
            .find(|&&(b, l, _)| gpa.wrapping_sub(b) < l);
        self.space.page_state(gpa) == PageState::Absent
            && entry.is_none_or(|e| e.2 == 1)
            && gpa < UNPOPULATED_LIMIT
            && gpa != hv::vlapic::MMIO_BASE
            && !self.pci_traps(gpa)
    }

    /// Backs `gfn` with a scrubbed frame from the pool (Xen's
    /// `populate_physmap` of one page).
    fn populate_gfn(&mut self, gfn: u64) -> bool {
        let Some(gpa) = gfn.checked_mul(4096).filter(|&g| self.populatable(g)) else {
            return false;
        };
        let Some(hpa) = self.space.populate(gpa) else {
            return false;
        };
        if self.pci.is_some() && !crate::iommu::remap_page(self.id, gpa, Some(hpa)) {
            // Back to the pool; nothing else saw it.
            self.space.discard(gpa);
            return false;
        }
        true
    }

    /// `XENMEM_exchange`: `struct xen_memory_exchange { in, out,
    /// nr_exchanged }`. Chunk by chunk (the larger of the two extent
    /// sizes), the input pages are given back and the output extents
    /// populated at the pfns the guest lists (the frames are scrubbed: the
    /// contents do not move). A chunk that cannot be exchanged changes
    /// nothing and ends the call with its error; `nr_exchanged` says how
    /// many input extents were.
    fn exchange(&mut self, arg: u64, hub: &Hub) -> HcResult {
        let abi = self.view().abi();
        let size = Reservation::size(abi);
        let inp = self.read_reservation(arg, 0)?;
        let out = self.read_reservation(arg, size)?;
        let done_at = arg.wrapping_add(2 * size as u64);
        let w = if abi == Abi::X64 { 8 } else { 4 };
        let mut b = [0u8; 8];
        self.view().read_guest(done_at, &mut b[..w])?;
        let mut exchanged = u64::from_le_bytes(b);
        let total = |r: &Reservation| r.nr_extents.checked_shl(r.extent_order);
        if exchanged > inp.nr_extents
            || inp.domid != out.domid
            || total(&inp).is_none()
            || total(&inp) != total(&out)
            || inp.nr_extents >> inp.extent_order.max(out.extent_order) > EXTENTS_MAX
        {
            return Err(Errno::Inval);
        }
        if exchanged == inp.nr_extents {
            return Ok(0);
        }
        only_self(self.id, inp.domid, &hub.evtchn)?;
        if inp.extent_order.max(out.extent_order) > self.max_order() {
            return Err(Errno::Perm);
        }
        // A chunk: 2^in_chunk input extents, 2^out_chunk output ones.
        let in_chunk = out.extent_order.saturating_sub(inp.extent_order);
        let out_chunk = inp.extent_order.saturating_sub(out.extent_order);
        let chunk_pages = 1u64 << inp.extent_order.max(out.extent_order);
        let mut rc = Ok(0);
        for i in (exchanged >> in_chunk)..(inp.nr_extents >> in_chunk) {
            if let Err(e) = self.exchange_chunk(&inp, &out, i, (in_chunk, out_chunk), chunk_pages) {
                rc = Err(e);
                break;
            }
            exchanged = (i + 1) << in_chunk;
        }
        self.view()
            .copy_to_guest(done_at, &exchanged.to_le_bytes()[..w])?;
        rc
    }

    /// Chunk `i` of an exchange: checks every input and output page first,
    /// so a failure changes nothing.
    fn exchange_chunk(
        &mut self,
        inp: &Reservation,
        out: &Reservation,
        i: u64,
        (in_chunk, out_chunk): (u32, u32),
        pages: u64,
    ) -> Result<(), Errno> {
        let mut gone = alloc::vec::Vec::with_capacity(pages as usize);
        for j in 0..1u64 << in_chunk {
            let first = self.pfn_at(inp.extent_start, (i << in_chunk) + j)?;
            for k in 0..1u64 << inp.extent_order {
                let gpa = self.removable(first.wrapping_add(k)).ok_or(Errno::Inval)?;
                if gone.contains(&gpa) {
                    return Err(Errno::Inval);
                }
                gone.push(gpa);
            }
        }
        let mut new = alloc::vec::Vec::with_capacity(pages as usize);
        for j in 0..1u64 << out_chunk {
            let first = self.pfn_at(out.extent_start, (i << out_chunk) + j)?;
            for k in 0..1u64 << out.extent_order {
                let gpa = first
                    .wrapping_add(k)
                    .checked_mul(4096)
                    .ok_or(Errno::Inval)?;
                // Free now, or once the input pages are given back.
                let free = self.populatable(gpa) || gone.contains(&gpa);
                if !free || new.contains(&gpa) {
                    return Err(Errno::Inval);
                }
                new.push(gpa);
            }
        }
        for &gpa in &gone {
            if !self.balloon_out(gpa >> 12) {
                return Err(Errno::NoMem);
            }
        }
        for &gpa in &new {
            if !self.populate_gfn(gpa >> 12) {
                return Err(Errno::NoMem);
            }
        }
        Ok(())
    }
}
