//! The PV memory manager: page types and every page-table update a 64-bit
//! PV guest makes, with Xen's semantics and error codes.
//!
//! The container's nested paging bounds whatever a guest does to its own
//! page tables, so nothing here is needed for the host's safety: it exists
//! so guests (Linux, NetBSD, Mini-OS, our test guest) find the Xen they were
//! written for, including its errors. The model follows `xen/arch/x86/mm.c`
//! (comments name the Xen function each piece follows):
//!
//! - every frame of the domain has a *type* (none, writable, L1-L4,
//!   segment descriptors) held by a count of typed references, and a count
//!   of general references (mappings of any kind); a frame has one type at
//!   a time, so a frame mapped writable anywhere cannot become a table;
//! - a present entry of a validated table references what it points at: an
//!   L2-L4 entry the next level's table (validated recursively when its type
//!   count goes 0 -> 1), an L1 entry the frame (as writable when the entry
//!   is); pins and the vCPUs' roots reference L4s; when a table's count
//!   returns to 0 every entry's reference is dropped again;
//! - the values written into the guest's tables are adjusted as Xen's
//!   `adjust_guest_l*e` does (the kernel runs in ring 3), and every L4
//!   gets the hypervisor's slots 256-271.
//!
//! The integrator supplies the memory ([`Frames`]) and carries out the
//! [`Effects`] each operation returns, after it returns. It also:
//! - loops over `mmu_update`/`mmuext_op` arrays (`pdone`, counts), after
//!   checking `foreigndom` with [`mmu_update_owner`] / [`mmuext_owner`];
//! - walks the current kernel root to the L1 frame and index for
//!   `update_va_mapping` (an address Xen's `__addr_ok` refuses, or no
//!   present non-superpage L2 entry: -EINVAL) and does the flush
//!   [`uvmf_flush`] names after a success;
//! - decodes the faulting instruction for the writable page-table assist
//!   (`VMASST_TYPE_writable_pagetables`, kernel-mode write faults on a
//!   present read-only mapping of a frame [`PvMm::is_l1`] accepts) and
//!   bounces the #PF when [`PvMm::ptwr_write`] fails;
//! - holds each vCPU's [`VcpuRoots`], the GDT/LDT frames' descriptor
//!   references ([`PvMm::get_seg_desc`]) and checks descriptors itself;
//! - owns the M2P ([`M2pWrite`]) and registers the special and I/O frames.
//!
//! Choices where the container differs from Xen:
//! - frame numbers: RAM is 0..nr_pages; a frame that is not the domain's
//!   answers as Xen answers for another domain's RAM below
//!   [`PvMm::set_frame_limit`] and as unpermitted MMIO above it;
//! - user entries get GLOBAL as in Xen, though the container leaves
//!   CR4.PGE clear (the hardware ignores it); `_PAGE_GNTTAB` (bit 62) is the
//!   guest's, as in release builds of Xen;
//! - frame 0 is RAM, so it can be a kernel root but not a user root
//!   (`NEW_USER_BASEPTR` 0 means none).
//!
//! Left out, as not needed in the container: preemption and continuations
//! (every operation completes), shadow paging and log-dirty, the L1TF
//! checks of non-present entries, XPTI, 32-bit guests, superpages, the
//! TLB-flush timestamp filter (a type change always asks for a flush), and
//! grant mappings written into the guest's tables (a domU with frontends
//! only never maps others' grants).

mod audit;
mod ext;
mod frame;
mod owner;
pub mod pte;
mod types;
mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ext;
#[cfg(test)]
mod tests_prop;

use alloc::vec::Vec;

use crate::evtchn::Errno;

pub use audit::AuditError;
pub use ext::{cmd, MmuextOp};
pub use owner::{mmu_update_owner, mmuext_owner, Foreign};
pub use update::{mmu_cmd, uvmf_flush, PtwrError, PtwrOutcome};

use frame::Frame;

/// The domain's memory by machine frame, as the PV code reads and writes it.
pub trait Frames {
    /// The 512 entries of frame `mfn`, or `None` if the domain has no such frame.
    fn read_table(&self, mfn: u64) -> Option<[u64; 512]>;
    /// Entry `index` of frame `mfn`.
    fn read_entry(&self, mfn: u64, index: usize) -> Option<u64>;
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) -> Option<()>;

    /// Replace entry `index` of frame `mfn` with `new` if it holds `old`,
    /// returning the value it held. The default reads, compares and writes;
    /// an implementation over memory that other vCPUs' page walks update
    /// (accessed and dirty bits) should use an atomic compare-exchange, as
    /// `MMU_PT_UPDATE_PRESERVE_AD` and the guest's `cmpxchg` on its page
    /// tables rely on it.
    fn cmpxchg_entry(&mut self, mfn: u64, index: usize, old: u64, new: u64) -> Option<u64> {
        let cur = self.read_entry(mfn, index)?;
        if cur == old {
            self.write_entry(mfn, index, new)?;
        }
        Some(cur)
    }
}

/// A frame's type (Xen's `PGT_*`), exclusive of the others while its type
/// count is non-zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// Never used as anything (`PGT_none`).
    #[default]
    None,
    /// Mapped writable somewhere (`PGT_writable_page`).
    Writable,
    L1,
    L2,
    L3,
    L4,
    /// Part of a GDT or LDT (`PGT_seg_desc_page`).
    SegDesc,
}

impl PageType {
    /// The page-table type of `level` (1..=4).
    pub const fn table(level: u8) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            _ => PageType::L4,
        }
    }

    /// The level of a page-table type.
    pub const fn level(self) -> Option<u8> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            _ => None,
        }
    }
}

/// The entries the hypervisor writes into L4 slots 256 (the read-only M2P)
/// and 260 (its per-domain area) of every L4 it validates; slots 257-259
/// and 261-271 are written as 0 (`init_xen_l4_slots`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenSlots {
    pub m2p: u64,
    pub perdomain: u64,
}

/// The roots a vCPU holds a reference on: its kernel root
/// (`MMUEXT_NEW_BASEPTR`, Xen's `guest_table`) and user root
/// (`MMUEXT_NEW_USER_BASEPTR`, `guest_table_user`), by machine frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRoots {
    pub kernel: Option<u64>,
    pub user: Option<u64>,
}

/// Whose frames an update maps (`foreigndom` of `mmu_update`, see
/// [`mmu_update_owner`]): the domain's own, or `DOMID_IO` (I/O memory only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PgOwner {
    #[default]
    Own,
    Io,
}

/// TLB work an operation asks for. Every address given is canonical.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flush {
    #[default]
    None,
    /// One page on this vCPU (`INVLPG_LOCAL`).
    LocalVa(u64),
    /// This vCPU's TLB (`TLB_FLUSH_LOCAL`).
    Local,
    /// One page on every vCPU of the domain (`INVLPG_ALL`).
    AllVa(u64),
    /// Every vCPU of the domain (`TLB_FLUSH_ALL`, an L2-L4 update, a frame
    /// changing type).
    All,
    /// The vCPUs in the bitmap at guest address `vcpumask` (an array of
    /// `unsigned long`, bit n = vCPU n): their whole TLBs (`va: None`) or one
    /// page. The caller reads the bitmap; when it cannot be read
    /// (`vcpumask_to_pcpumask`'s -EFAULT) the operation fails with
    /// `unreadable`: -EINVAL for `mmuext_op`, which replaces the error,
    /// -EFAULT for `update_va_mapping`, which returns it (after the update).
    Vcpus {
        vcpumask: u64,
        va: Option<u64>,
        unreadable: Errno,
    },
}

impl Flush {
    /// Both flushes' work in one: the same flush stays, a page flush is
    /// covered by the whole TLB of the same scope, anything else becomes a
    /// flush of every vCPU.
    pub fn merge(self, other: Flush) -> Flush {
        use Flush::*;
        match (self, other) {
            (None, x) | (x, None) => x,
            (a, b) if a == b => a,
            (Local, LocalVa(_)) | (LocalVa(_), Local) | (LocalVa(_), LocalVa(_)) => Local,
            _ => All,
        }
    }
}

/// A vCPU's LDT as `MMUEXT_SET_LDT` asks for it: `base` is 0 when `ents` is.
/// The caller compares it with the current one and, when it differs, drops
/// the LDT's mapped pages (their [`PvMm::put_seg_desc`] references and a local
/// TLB flush, Xen's `pv_destroy_ldt`) and loads the new one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ldt {
    pub base: u64,
    pub ents: u32,
}

/// `MMU_MACHPHYS_UPDATE`: the caller sets `m2p[mfn] = pfn` in the M2P it owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct M2pWrite {
    pub mfn: u64,
    pub pfn: u64,
}

/// What the caller must do after a successful operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub flush: Flush,
    /// The vCPU's kernel root changed (or was installed again): load it as
    /// CR3 (which also flushes the vCPU's TLB).
    pub reload_cr3: bool,
    /// Drop the vCPU's lazily mapped LDT pages (`pv_destroy_ldt` in
    /// `new_guest_cr3`).
    pub destroy_ldt: bool,
    /// Write back and invalidate caches (`MMUEXT_FLUSH_CACHE[_GLOBAL]`).
    pub flush_cache: bool,
    pub m2p: Option<M2pWrite>,
    pub ldt: Option<Ldt>,
}

impl Effects {
    fn flush(&mut self, f: Flush) {
        self.flush = self.flush.merge(f);
    }
}

/// One frame's bookkeeping, for queries and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameState {
    /// The type while `count` is non-zero (Xen keeps the last type after; so
    /// does this, to know when a type changes).
    pub ty: PageType,
    /// Typed references.
    pub count: u32,
    /// General references (mappings, pins, roots), not counting the
    /// domain's own allocation.
    pub refs: u32,
    pub pinned: bool,
    pub validated: bool,
    /// Xen's `linear_pt_count`: > 0 the number of linear entries this table
    /// holds, < 0 the number of other tables' linear entries pointing at it.
    pub linear: i16,
    /// Given back with `decrease_reservation` ([`PvMm::remove_ram`]).
    pub removed: bool,
}

/// A range of I/O frames the domain was given (device BARs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IoRange {
    start: u64,
    end: u64,
    read_only: bool,
}

/// The page-type state of one PV domain.
#[derive(Debug)]
pub struct PvMm {
    /// RAM frames 0..nr_pages.
    ram: Vec<Frame>,
    /// The shared info page and grant frames, sorted by frame.
    special: Vec<(u64, Frame)>,
    io: Vec<IoRange>,
    ioports: bool,
    m2p_strict: bool,
    frame_limit: u64,
    slots: XenSlots,
    /// The effects of the operation in progress.
    fx: Effects,
}

impl PvMm {
    /// A domain with RAM frames `0..nr_pages`, all untyped.
    pub fn new(nr_pages: u64, slots: XenSlots) -> Self {
        let n = usize::try_from(nr_pages).unwrap_or(0);
        PvMm {
            ram: alloc::vec![Frame::default(); n],
            special: Vec::new(),
            io: Vec::new(),
            ioports: false,
            m2p_strict: false,
            frame_limit: pte::INVALID_MFN,
            slots,
            fx: Effects::default(),
        }
    }

    /// The number of RAM frames.
    pub fn nr_pages(&self) -> u64 {
        self.ram.len() as u64
    }

    /// Xen's `max_page` stand-in: a frame below it that is not the domain's
    /// is treated as another domain's RAM (an L1 entry mapping it is
    /// -EBUSY), one at or above it as memory Xen has no page for (-EPERM).
    /// Default: every frame number is below it.
    pub fn set_frame_limit(&mut self, limit: u64) {
        self.frame_limit = limit;
    }

    /// Add a special frame (shared info, grant table): the domain's,
    /// writable, never a table. Xen shares these with a permanent writable
    /// type reference (`share_xen_page_with_guest`), as here.
    pub fn add_special(&mut self, mfn: u64) -> Result<(), Errno> {
        if mfn < self.nr_pages() || self.in_io(mfn).is_some() {
            return Err(Errno::Inval);
        }
        match self.special.binary_search_by_key(&mfn, |(m, _)| *m) {
            Ok(_) => Err(Errno::Exist),
            Err(at) => {
                self.special.insert(at, (mfn, Frame::special()));
                Ok(())
            }
        }
    }

    /// Give the domain I/O frames `start..start+count` (a BAR): L1 entries
    /// may map them, and the domain may choose cache attributes. Read-only
    /// ranges (Xen's `mmio_ro_ranges`, e.g. MSI-X tables) are mapped without
    /// RW whatever the entry asks.
    pub fn add_io(&mut self, start: u64, count: u64, read_only: bool) -> Result<(), Errno> {
        let end = start.checked_add(count).ok_or(Errno::Inval)?;
        let overlaps_ram = start < self.nr_pages();
        let overlaps_special = self.special.iter().any(|(m, _)| (start..end).contains(m));
        let overlaps_io = self.io.iter().any(|r| start < r.end && r.start < end);
        if count == 0 || overlaps_ram || overlaps_special || overlaps_io {
            return Err(Errno::Inval);
        }
        self.io.push(IoRange {
            start,
            end,
            read_only,
        });
        Ok(())
    }

    /// Take I/O frames back (the device went away). Existing mappings stay
    /// as they are (Xen does not revoke them either: its caller zaps them).
    pub fn remove_io(&mut self, start: u64, count: u64) {
        let end = start.saturating_add(count);
        self.io.retain(|r| !(r.start >= start && r.end <= end));
    }

    /// Whether the domain has I/O ports (Xen's `ioport_caps`), which with
    /// I/O memory makes `cache_flush_permitted`.
    pub fn set_ioport_access(&mut self, on: bool) {
        self.ioports = on;
    }

    /// `VMASST_TYPE_m2p_strict`: the M2P slot is filled when an L4 is
    /// validated and cleared when it becomes a user root; without it, it is
    /// filled when an L4 becomes a kernel root.
    pub fn set_m2p_strict(&mut self, on: bool) {
        self.m2p_strict = on;
    }

    /// `cache_flush_permitted`: the domain has I/O memory or ports.
    pub fn io_resources(&self) -> bool {
        !self.io.is_empty() || self.ioports
    }

    /// `decrease_reservation` of one frame (Xen's `guest_remove_page`).
    /// The frame leaves the domain, but as in Xen a frame still referenced
    /// (mapped, a table, pinned) stays usable until its last reference goes:
    /// removing it succeeds. -ENXIO if the frame is not the domain's RAM
    /// (or was removed already), -EINVAL for a special frame.
    pub fn remove_ram(&mut self, mfn: u64) -> Result<(), Errno> {
        if self.special_index(mfn).is_some() {
            return Err(Errno::Inval);
        }
        match self.ram_mut(mfn) {
            Some(f) if f.owned() && !f.removed() => {
                f.set_removed(true);
                f.reset_if_free();
                Ok(())
            }
            _ => Err(Errno::NxIo),
        }
    }

    /// Take a frame away for `XENMEM_exchange` (Xen's `steal_page`): only a
    /// RAM frame nothing references. -EINVAL otherwise.
    pub fn steal_ram(&mut self, mfn: u64) -> Result<(), Errno> {
        match self.ram_mut(mfn) {
            Some(f) if !f.removed() && f.refs == 0 && f.count == 0 => {
                *f = Frame::default();
                f.set_removed(true);
                Ok(())
            }
            _ => Err(Errno::Inval),
        }
    }

    /// `populate_physmap` of one frame: give a removed RAM frame back.
    /// -EINVAL if it is not a removed RAM frame.
    pub fn add_ram(&mut self, mfn: u64) -> Result<(), Errno> {
        match self.ram_mut(mfn) {
            Some(f) if f.removed() => {
                f.set_removed(false);
                Ok(())
            }
            _ => Err(Errno::Inval),
        }
    }

    /// Whether `mfn` is the domain's RAM now.
    pub fn is_ram(&self, mfn: u64) -> bool {
        self.ram_frame(mfn).is_some_and(|f| !f.removed())
    }

    /// A frame's bookkeeping (RAM and special frames).
    pub fn frame_state(&self, mfn: u64) -> Option<FrameState> {
        self.frame(mfn).map(Frame::state)
    }

    /// The frame's type while it has typed references, else `None`.
    pub fn type_of(&self, mfn: u64) -> PageType {
        match self.frame(mfn) {
            Some(f) if f.count > 0 => f.ty,
            _ => PageType::None,
        }
    }

    pub fn is_pinned(&self, mfn: u64) -> bool {
        self.frame(mfn).is_some_and(Frame::pinned)
    }

    /// Whether `mfn` is a validated L1 table (what the writable page-table
    /// assist emulates writes to).
    pub fn is_l1(&self, mfn: u64) -> bool {
        self.frame(mfn)
            .is_some_and(|f| f.ty == PageType::L1 && f.count > 0 && f.validated())
    }

    /// Start an operation: no effects yet.
    fn begin(&mut self) {
        self.fx = Effects::default();
    }

    /// End an operation: its effects if it succeeded. (Out of line: every
    /// operation ends here.)
    #[inline(never)]
    fn finish<T>(&mut self, r: Result<T, Errno>) -> Result<Effects, Errno> {
        let fx = core::mem::take(&mut self.fx);
        r.map(|_| fx)
    }
}
