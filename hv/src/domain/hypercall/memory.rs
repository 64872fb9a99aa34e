//! `memory_op`: the guest's memory map and reservation, and placing the
//! shared info page and grant table frames in its physical address space.

use super::{Domain, Errno, HcResult};
use hv::hub::Hub;
use hv::xenabi::{AddToPhysmap, DomidArg, MemoryMap};

const XENMEM_CURRENT_RESERVATION: u64 = 3;
const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
const XENMEM_MEMORY_MAP: u64 = 9;
const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `cmd` bits that carry the command; the rest are a continuation index.
const MEMOP_CMD_MASK: u64 = (1 << 6) - 1;

const XENMAPSPACE_SHARED_INFO: u32 = 0;
const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `idx` bit of `XENMAPSPACE_grant_table` asking for a v2 status frame.
const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 1 << 31;

/// Where a guest may ask for pages outside its memory map.
const UNPOPULATED_LIMIT: u64 = 1 << 40;

/// One `struct e820entry` as `XENMEM_memory_map` returns it.
const E820_ENTRY: usize = MemoryMap::E820_ENTRY_SIZE;

impl Domain {
    pub(super) fn hc_memory_op(&mut self, args: [u64; 5], hub: &mut Hub) -> HcResult {
        if let Some(r) = self.pv_memory_op(args[0] & MEMOP_CMD_MASK, args[1]) {
            return r;
        }
        match args[0] & MEMOP_CMD_MASK {
            XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
                self.only_self(self.read_arg::<DomidArg>(args[1])?.v.domid, hub)?;
                Ok((self.ram_pages()) as i64)
            }
            XENMEM_MAXIMUM_GPFN => {
                self.only_self(self.read_arg::<DomidArg>(args[1])?.v.domid, hub)?;
                let top = self.xen.e820.iter().map(|r| r.0 + r.1).max().unwrap_or(0);
                Ok((top.saturating_sub(1) >> 12) as i64)
            }
            XENMEM_MEMORY_MAP => self.memory_map(args[1]),
            XENMEM_ADD_TO_PHYSMAP => self.add_to_physmap(args[1], hub),
            _ => Err(Errno::NoSys),
        }
    }

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
        let mut a = self.read_arg::<MemoryMap>(arg)?;
        let (room, buffer) = (a.v.nr_entries as usize, a.v.buffer);
        let n = room.min(self.xen.e820.len());
        let mut out = alloc::vec![0u8; n * E820_ENTRY];
        for (i, &(base, len, kind)) in self.xen.e820.iter().take(n).enumerate() {
            let e = &mut out[i * E820_ENTRY..(i + 1) * E820_ENTRY];
            e[0..8].copy_from_slice(&base.to_le_bytes());
            e[8..16].copy_from_slice(&len.to_le_bytes());
            e[16..20].copy_from_slice(&kind.to_le_bytes());
        }
        self.copy_to_guest(buffer, &out)?;
        a.v.nr_entries = n as u32;
        // Only `nr_entries` is written back.
        self.copy_to_guest(arg, &a.bytes()[..MemoryMap::OUT_SIZE])?;
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
            self.log_guest(alloc::format!(
                "add_to_physmap space {space} at guest-physical {gpa:#x}: inside its memory \
                 map or beyond 1 TiB, -EINVAL"
            ));
            return Err(Errno::Inval);
        }
        let hpa = self.mem.add_page(gpa).map_err(|_| {
            self.log_guest(alloc::format!(
                "add_to_physmap space {space} at guest-physical {gpa:#x}: no more pages \
                 outside RAM for this domain, -ENOMEM"
            ));
            Errno::NoMem
        })?;
        self.tables.map_4k(gpa, hpa).ok_or(Errno::NoMem)
    }

    /// `struct xen_add_to_physmap { u16 domid; u16 size; u32 space; u64
    /// idx; u64 gpfn; }`. The page must be the guest's RAM: the shared info
    /// page or grant frame then lives in that page.
    fn add_to_physmap(&mut self, arg: u64, hub: &mut Hub) -> HcResult {
        let a = self.read_arg::<AddToPhysmap>(arg)?.v;
        self.only_self(a.domid, hub)?;
        let (space, idx, gpfn) = (a.space, a.idx, a.gpfn);
        let gpa = gpfn.checked_mul(4096).ok_or(Errno::Inval)?;
        if !matches!(space, XENMAPSPACE_SHARED_INFO | XENMAPSPACE_GRANT_TABLE) {
            return Err(Errno::Inval);
        }
        if self.mem.translate(gpa).is_none() {
            self.back_unpopulated(gpa, space)?;
        }
        match space {
            XENMAPSPACE_SHARED_INFO => {
                if idx != 0 {
                    return Err(Errno::Inval);
                }
                if !self.place_shared_info(gpa) {
                    return Err(Errno::Inval);
                }
                self.update_time();
                Ok(0)
            }
            XENMAPSPACE_GRANT_TABLE => {
                if idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
                    return Err(Errno::Inval);
                }
                let i = u32::try_from(idx).map_err(|_| Errno::Inval)?;
                let table = hub.grants.table_mut(self.id).ok_or(Errno::Srch)?;
                table.map_frame(i)?;
                let i = i as usize;
                if self.xen.grant_frames.len() <= i {
                    self.xen.grant_frames.resize(i + 1, None);
                }
                // The frame's contents move with it; a new frame is empty.
                let mut page = [0u8; 4096];
                if let Some(old) = self.xen.grant_frames[i] {
                    self.mem.read(old, &mut page).map_err(|_| Errno::Fault)?;
                }
                self.mem.write(gpa, &page).map_err(|_| Errno::Fault)?;
                self.xen.grant_frames[i] = Some(gpa);
                Ok(0)
            }
            // As Xen for a space it does not know.
            _ => Err(Errno::Inval),
        }
    }
}
