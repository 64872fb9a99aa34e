//! Intel VT-d DMA remapping, legacy (root/context table) mode with
//! second-level translation (Intel Virtualization Technology for Directed
//! I/O, Architecture Specification).
//!
//! One [`Vtd`] drives one remapping unit (a DRHD of the DMAR table). After
//! [`Vtd::init`] the unit has an empty root table; after
//! [`Vtd::enable_translation`] every DMA from a device without a present
//! context entry is blocked and recorded as a fault. A device assigned to
//! a guest gets a context entry ([`Vtd::attach`]) pointing at its domain's
//! second-level tables ([`SlTables`]), which map the guest's RAM at
//! IOVA = guest-physical address.
//!
//! The order the hypervisor follows:
//!
//! 1. `Vtd::init(regs, mem, segment)` for each DRHD (translation still off);
//! 2. `SlTables::new(mem, vtd.sl_config())` and `map` per domain's RAM,
//!    then `vtd.attach(mem, sbdf, domain_id, &tables)` per assigned
//!    function (domain ids from 1);
//! 3. `vtd.enable_translation()`;
//! 4. later `unmap` then `vtd.flush_domain(mem, id)` then `tables.reclaim(mem)`;
//!    after `map`, `vtd.sync_after_map(mem, id)`; poll `vtd.faults()` and log
//!    each [`Fault`]; on teardown `vtd.detach` each function, then
//!    `tables.destroy(mem)`.
//!
//! Interrupt remapping ([`ir`]), on units with ECAP.IR and queued
//! invalidation: `IrTable::new(mem, mode, vtd.caps().coherent())`, then
//! `vtd.enable_interrupt_remapping(mem, &table)` (from then on
//! compatibility-format MSIs are blocked); per assigned MSI or MSI-X
//! vector `table.set(mem, index, irte)`, `vtd.invalidate_irte(mem,
//! index)`, and the function is programmed with [`remappable_msi`]`(index)`;
//! `table.clear` and `invalidate_irte` again when the vector goes away.

mod context;
mod fault;
pub mod ir;
pub mod qi;
pub mod regs;
mod sl;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;
use vmm_glue::log;

use vmm_glue::Sbdf;

pub use context::{root_entry, ContextEntry};
pub use fault::{reason_text, AccessKind, Fault};
pub use ir::{remappable_msi, ApicMode, IrTable, Irte, IR_ENTRIES};
pub use qi::{ContextScope, IotlbScope};
pub use regs::Caps;
pub use sl::{PagingLevels, SlConfig, SlTables, SL_ADDR, SL_PS, SL_R, SL_W};

use super::TableMemory;
use regs::*;

/// One remapping unit's registers (MMIO at the DRHD's register base).
/// Offsets are bytes from that base; 64-bit accesses are naturally
/// aligned.
pub trait VtdRegs {
    /// Reads the 32-bit register at `off`.
    fn read32(&mut self, off: u32) -> u32;
    /// Writes the 32-bit register at `off`.
    fn write32(&mut self, off: u32, v: u32);
    /// Reads the 64-bit register at `off`.
    fn read64(&mut self, off: u32) -> u64;
    /// Writes the 64-bit register at `off`.
    fn write64(&mut self, off: u32, v: u64);
}

/// How many times a status bit is read before a handshake is declared
/// timed out (about a second at typical MMIO read latencies).
pub const POLL_LIMIT: u32 = 1_000_000;

/// Why a remapping operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VtdError {
    /// The unit did not complete a handshake: names the register and bit
    /// that never reached the expected value.
    Timeout(&'static str),
    /// The unit completed an invalidation with granularity 0, which means
    /// it rejected the request; names the register.
    Rejected(&'static str),
    /// No frame for a table.
    NoMemory,
    /// The unit supports neither 3-level nor 4-level second-level tables
    /// (the CAP.SAGAW field is given).
    NoUsableWidth(u8),
    /// These tables have a depth the unit does not support.
    LevelsUnsupported(PagingLevels),
    /// A range that is not 4 KiB aligned, is empty, or lies beyond the
    /// tables' address width.
    BadRange {
        /// Start of the range.
        iova: u64,
        /// Length of the range.
        len: u64,
    },
    /// A domain id beyond the unit's CAP.ND, or 0 on a unit in caching
    /// mode (which reserves it).
    BadDomain(u16),
    /// The function is on a segment this unit does not serve.
    WrongSegment(Sbdf),
    /// The invalidation queue reported an error (the FSTS value: IQE,
    /// ICE or ITE set).
    QueueError(u32),
    /// The operation needs queued invalidation, which the unit lacks.
    NoQueue,
    /// The unit lacks a capability the operation needs; names the
    /// capability field (`ECAP.IR`, `ECAP.EIM`).
    Unsupported(&'static str),
    /// An interrupt remapping entry that cannot be written: its index and
    /// what is wrong with it.
    BadIrte {
        /// The entry's index.
        index: u16,
        /// What is wrong.
        why: &'static str,
    },
}

impl fmt::Display for VtdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(what) => write!(f, "the unit did not answer ({what} timed out)"),
            Self::Rejected(reg) => write!(f, "the unit rejected an invalidation ({reg})"),
            Self::NoMemory => f.write_str("out of memory for remapping tables"),
            Self::NoUsableWidth(sagaw) => write!(
                f,
                "no usable address width (SAGAW {sagaw:#x}: neither 39-bit nor 48-bit tables)"
            ),
            Self::LevelsUnsupported(l) => {
                write!(f, "the unit does not support {}-level tables", l.count())
            }
            Self::BadRange { iova, len } => write!(
                f,
                "bad DMA range {iova:#x}+{len:#x} (unaligned, empty or beyond the address width)"
            ),
            Self::BadDomain(id) => write!(f, "domain id {id} is not usable on this unit"),
            Self::WrongSegment(sbdf) => write!(f, "{sbdf} is not on this unit's segment"),
            Self::QueueError(fsts) => {
                write!(
                    f,
                    "the invalidation queue reported an error (FSTS {fsts:#x})"
                )
            }
            Self::NoQueue => f.write_str("the unit has no queued invalidation"),
            Self::Unsupported(what) => write!(f, "the unit lacks {what}"),
            Self::BadIrte { index, why } => {
                write!(f, "interrupt remapping entry {index}: {why}")
            }
        }
    }
}

/// One VT-d remapping unit.
#[derive(Debug)]
pub struct Vtd<R> {
    regs: R,
    caps: Caps,
    levels: PagingLevels,
    segment: u16,
    root: u64,
    queue: Option<qi::Queue>,
}

impl<R: VtdRegs> Vtd<R> {
    /// Takes over the unit at `regs`, serving PCI segment `segment`: reads
    /// its capabilities, chooses 4-level tables if SAGAW allows (else
    /// 3-level), installs an empty root table, turns queued invalidation
    /// on if the unit has it (ECAP.QI; otherwise the CCMD and IOTLB
    /// registers are used), invalidates the context cache and the IOTLB
    /// globally and clears stale fault records.
    /// Translation stays as it was (off unless firmware left it on, in
    /// which case every device is blocked from here on).
    pub fn init(mut regs: R, mem: &mut impl TableMemory, segment: u16) -> Result<Self, VtdError> {
        let caps = Caps {
            ver: regs.read32(VER),
            cap: regs.read64(CAP),
            ecap: regs.read64(ECAP),
        };
        let levels = if caps.sagaw() & PagingLevels::Four.sagaw_bit() != 0 {
            PagingLevels::Four
        } else if caps.sagaw() & PagingLevels::Three.sagaw_bit() != 0 {
            PagingLevels::Three
        } else {
            return Err(VtdError::NoUsableWidth(caps.sagaw()));
        };
        let root = mem.alloc_zeroed().ok_or(VtdError::NoMemory)?;
        let mut vtd = Self {
            regs,
            caps,
            levels,
            segment,
            root,
            queue: None,
        };
        vtd.flush_table(mem, root, 4096);
        // On failure the queue's frames (if it was enabled) stay
        // allocated: the unit may still point at them.
        match vtd.start(mem) {
            Ok(()) => Ok(vtd),
            Err(e) => {
                mem.free(root);
                Err(e)
            }
        }
    }

    fn start(&mut self, mem: &mut impl TableMemory) -> Result<(), VtdError> {
        if self.regs.read32(GSTS) & G_QIE != 0 {
            // Firmware left queued invalidation on, with a queue we do not
            // own: let it drain, then turn it off.
            let tail = self.regs.read64(IQT);
            poll64(&mut self.regs, IQH, u64::MAX, tail, "IQH (draining)")?;
            command(&mut self.regs, G_QIE, false, G_QIE, false, "GSTS.QIES")?;
        }
        // Legacy mode: RTADDR.TTM (bits 11:10) = 00.
        self.regs.write64(RTADDR, self.root);
        command(&mut self.regs, G_RTP, true, G_RTP, true, "GSTS.RTPS")?;
        if self.caps.queued_invalidation() {
            self.queue = Some(qi::Queue::enable(
                &mut self.regs,
                mem,
                self.caps.coherent(),
            )?);
        }
        self.invalidate_context(mem, ContextScope::Global)?;
        self.invalidate_iotlb(mem, IotlbScope::Global)?;
        self.faults();
        Ok(())
    }

    /// Whether invalidations go through the invalidation queue.
    pub const fn queued_invalidation(&self) -> bool {
        self.queue.is_some()
    }

    /// The unit's capabilities.
    pub const fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The table depth chosen for this unit.
    pub const fn levels(&self) -> PagingLevels {
        self.levels
    }

    /// The PCI segment this unit serves.
    pub const fn segment(&self) -> u16 {
        self.segment
    }

    /// The host-physical address of the root table.
    pub const fn root_table(&self) -> u64 {
        self.root
    }

    /// The table shape for domains attached on this unit: its depth, the
    /// large pages it supports and its coherency. Tables shared by several
    /// units need a shape all of them accept (same depth, large pages and
    /// coherency only if all have them).
    pub const fn sl_config(&self) -> SlConfig {
        SlConfig {
            levels: self.levels,
            superpage_2m: self.caps.sl_2m(),
            superpage_1g: self.caps.sl_1g(),
            coherent: self.caps.coherent(),
        }
    }

    /// Whether the unit translates (GSTS.TES).
    pub fn translation_enabled(&mut self) -> bool {
        self.regs.read32(GSTS) & G_TE != 0
    }

    /// Turns translation on (GCMD.TE, then waits for GSTS.TES). From then
    /// on a device without a present context entry cannot DMA at all.
    /// Protected memory regions firmware may have left enabled are then
    /// turned off, as translation now guards memory.
    pub fn enable_translation(&mut self) -> Result<(), VtdError> {
        command(&mut self.regs, G_TE, true, G_TE, true, "GSTS.TES")?;
        if self.regs.read32(PMEN) & PMEN_PRS != 0 {
            self.regs.write32(PMEN, 0);
            poll32(&mut self.regs, PMEN, PMEN_PRS, 0, "PMEN.PRS")?;
        }
        Ok(())
    }

    /// Turns translation off (every device then reaches all memory
    /// untranslated; only for shutting down).
    pub fn disable_translation(&mut self) -> Result<(), VtdError> {
        command(&mut self.regs, G_TE, false, G_TE, false, "GSTS.TES")
    }

    /// Lets function `dev` DMA through `tables` as domain `domain_id`:
    /// allocates the bus's context table if it has none, writes the
    /// device's context entry (replacing, with an invalidation in between,
    /// an entry for another domain) and invalidates the context cache for
    /// the device and the IOTLB for the domain.
    ///
    /// Domain ids must be below [`Caps::domains`]; use ids from 1 (a unit
    /// in caching mode reserves 0). Each id must always name the same
    /// tables.
    pub fn attach(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        domain_id: u16,
        tables: &SlTables,
    ) -> Result<(), VtdError> {
        if dev.seg != self.segment {
            return Err(VtdError::WrongSegment(dev));
        }
        if u32::from(domain_id) >= self.caps.domains()
            || (domain_id == 0 && self.caps.caching_mode())
        {
            return Err(VtdError::BadDomain(domain_id));
        }
        let levels = tables.config().levels;
        if self.caps.sagaw() & levels.sagaw_bit() == 0 {
            return Err(VtdError::LevelsUnsupported(levels));
        }
        let entry = ContextEntry::new(domain_id, tables.root(), levels).encode();
        let slot = self.context_slot(mem, dev, true)?;
        let old = [mem.read64(slot), mem.read64(slot + 8)];
        if old == entry {
            return Ok(());
        }
        if ContextEntry::decode(old).is_some() {
            self.clear_context(mem, dev, slot)?;
        }
        mem.write64(slot + 8, entry[1]);
        mem.write64(slot, entry[0]);
        self.flush_table(mem, slot, 16);
        self.write_buffer_flush()?;
        // A unit in caching mode may have cached the not-present entry
        // under domain id 0.
        let did = if self.caps.caching_mode() {
            0
        } else {
            domain_id
        };
        let sid = dev.rid();
        self.invalidate_context(mem, ContextScope::Device { sid, did })?;
        self.invalidate_iotlb(mem, IotlbScope::Domain(domain_id))
    }

    /// Blocks function `dev` again: clears its context entry and
    /// invalidates the context cache and the IOTLB of the domain it was
    /// in. Nothing happens if it had no entry.
    pub fn detach(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> Result<(), VtdError> {
        if dev.seg != self.segment {
            return Err(VtdError::WrongSegment(dev));
        }
        match self.context_slot(mem, dev, false)? {
            0 => Ok(()),
            slot => self.clear_context(mem, dev, slot),
        }
    }

    /// The context entry of `dev`, if present (for self-checks).
    pub fn context(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> Option<ContextEntry> {
        if dev.seg != self.segment {
            return None;
        }
        match self.context_slot(mem, dev, false) {
            Ok(0) | Err(_) => None,
            Ok(slot) => ContextEntry::decode([mem.read64(slot), mem.read64(slot + 8)]),
        }
    }

    /// Invalidates the IOTLB for `domain_id` (after unmapping, or after a
    /// map replaced a mapping).
    pub fn flush_domain(
        &mut self,
        mem: &mut impl TableMemory,
        domain_id: u16,
    ) -> Result<(), VtdError> {
        self.write_buffer_flush()?;
        self.invalidate_iotlb(mem, IotlbScope::Domain(domain_id))
    }

    /// Makes new mappings of `domain_id` visible to the unit: an IOTLB
    /// invalidation if the unit caches not-present entries (CAP.CM), a
    /// write-buffer flush if it needs one (CAP.RWBF), else nothing.
    pub fn sync_after_map(
        &mut self,
        mem: &mut impl TableMemory,
        domain_id: u16,
    ) -> Result<(), VtdError> {
        if self.caps.caching_mode() {
            self.flush_domain(mem, domain_id)
        } else {
            self.write_buffer_flush()
        }
    }

    /// Invalidates the interrupt entry cache globally (after changing
    /// interrupt remapping entries). Needs queued invalidation.
    pub fn flush_interrupt_cache(&mut self, mem: &mut impl TableMemory) -> Result<(), VtdError> {
        let coherent = self.caps.coherent();
        let queue = self.queue.as_mut().ok_or(VtdError::NoQueue)?;
        queue.submit(
            &mut self.regs,
            mem,
            coherent,
            &[qi::interrupt_cache_descriptor()],
        )
    }

    /// Takes the recorded faults: reads every fault recording register
    /// whose F bit is set, clears it, and clears FSTS.PFO (logging a
    /// warning if records overflowed and faults were lost).
    pub fn faults(&mut self) -> Vec<Fault> {
        let mut out = Vec::new();
        let fsts = self.regs.read32(FSTS);
        if fsts & (FSTS_PPF | FSTS_PFO) == 0 {
            return out;
        }
        let base = self.caps.fault_offset();
        for i in 0..self.caps.fault_records() {
            let at = base + i * 16;
            let hi = self.regs.read64(at + 8);
            if hi & FRCD_F == 0 {
                continue;
            }
            let lo = self.regs.read64(at);
            // F is bit 127 of the record: bit 31 of its last dword (RW1C).
            self.regs.write32(at + 12, 1 << 31);
            out.extend(Fault::decode(self.segment, lo, hi));
        }
        if fsts & FSTS_PFO != 0 {
            log::warn!("vt-d: fault records overflowed; some DMA faults were not recorded");
            self.regs.write32(FSTS, FSTS_PFO);
        }
        out
    }

    /// The address of `dev`'s context entry, allocating the bus's context
    /// table if `create`; 0 if the bus has none and `create` is false.
    fn context_slot(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        create: bool,
    ) -> Result<u64, VtdError> {
        let root_slot = self.root + u64::from(dev.bus) * 16;
        let root = mem.read64(root_slot);
        let root = context::RootLow(root);
        let table = if root.present() {
            root.table()
        } else if create {
            let table = mem.alloc_zeroed().ok_or(VtdError::NoMemory)?;
            self.flush_table(mem, table, 4096);
            let [lo, hi] = root_entry(table);
            mem.write64(root_slot + 8, hi);
            mem.write64(root_slot, lo);
            self.flush_table(mem, root_slot, 16);
            table
        } else {
            return Ok(0);
        };
        let devfn = u64::from(dev.rid() & 0xff);
        Ok(table + devfn * 16)
    }

    fn clear_context(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        slot: u64,
    ) -> Result<(), VtdError> {
        let Some(old) = ContextEntry::decode([mem.read64(slot), mem.read64(slot + 8)]) else {
            return Ok(());
        };
        mem.write64(slot, 0);
        mem.write64(slot + 8, 0);
        self.flush_table(mem, slot, 16);
        self.write_buffer_flush()?;
        let (sid, did) = (dev.rid(), old.domain_id);
        self.invalidate_context(mem, ContextScope::Device { sid, did })?;
        self.invalidate_iotlb(mem, IotlbScope::Domain(did))
    }

    fn flush_table(&self, mem: &mut impl TableMemory, hpa: u64, len: u64) {
        if !self.caps.coherent() {
            mem.flush(hpa, len);
        }
    }

    fn write_buffer_flush(&mut self) -> Result<(), VtdError> {
        if self.caps.rwbf() {
            command(&mut self.regs, G_WBF, true, G_WBF, false, "GSTS.WBFS")?;
        }
        Ok(())
    }

    /// Invalidates context-cache entries: through the queue if there is
    /// one, else through CCMD (ICC, CIRG and for a device FM = 0, SID and
    /// DID; then ICC is awaited clear and CAIG checked).
    fn invalidate_context(
        &mut self,
        mem: &mut impl TableMemory,
        scope: ContextScope,
    ) -> Result<(), VtdError> {
        if let Some(queue) = self.queue.as_mut() {
            let d = qi::context_descriptor(scope);
            return queue.submit(&mut self.regs, mem, self.caps.coherent(), &[d]);
        }
        let request = match scope {
            ContextScope::Global => CCMD_GLOBAL,
            ContextScope::Device { sid, did } => {
                CCMD_DEVICE | u64::from(sid) << CCMD_SID_SHIFT | u64::from(did)
            }
        };
        self.regs.write64(CCMD, CCMD_ICC | request);
        let done = poll64(&mut self.regs, CCMD, CCMD_ICC, 0, "CCMD.ICC")?;
        if (done >> CCMD_CAIG_SHIFT) & 3 == 0 {
            return Err(VtdError::Rejected("CCMD"));
        }
        Ok(())
    }

    /// Invalidates IOTLB entries: through the queue if there is one, else
    /// through the IOTLB register at ECAP.IRO + 8 (IVT, IIRG, DID, drain
    /// bits; then IVT is awaited clear and IAIG checked).
    fn invalidate_iotlb(
        &mut self,
        mem: &mut impl TableMemory,
        scope: IotlbScope,
    ) -> Result<(), VtdError> {
        let (dr, dw) = (self.caps.drain_reads(), self.caps.drain_writes());
        if let Some(queue) = self.queue.as_mut() {
            let d = qi::iotlb_descriptor(scope, dr, dw);
            return queue.submit(&mut self.regs, mem, self.caps.coherent(), &[d]);
        }
        let mut request = IOTLB_IVT
            | match scope {
                IotlbScope::Global => IOTLB_GLOBAL,
                IotlbScope::Domain(did) => IOTLB_DOMAIN | u64::from(did) << IOTLB_DID_SHIFT,
            };
        if dr {
            request |= IOTLB_DR;
        }
        if dw {
            request |= IOTLB_DW;
        }
        let at = self.caps.iotlb_offset() + IOTLB_REG;
        self.regs.write64(at, request);
        let done = poll64(&mut self.regs, at, IOTLB_IVT, 0, "IOTLB.IVT")?;
        if (done >> IOTLB_IAIG_SHIFT) & 3 == 0 {
            return Err(VtdError::Rejected("IOTLB"));
        }
        Ok(())
    }
}

/// Writes GCMD with the persistent enables from GSTS and `bit` set (`on`)
/// or cleared, then waits until GSTS has `status` set (`want`) or clear.
fn command(
    regs: &mut impl VtdRegs,
    bit: u32,
    on: bool,
    status: u32,
    want: bool,
    what: &'static str,
) -> Result<(), VtdError> {
    let current = regs.read32(GSTS) & G_PERSISTENT;
    let value = if on { current | bit } else { current & !bit };
    regs.write32(GCMD, value);
    poll32(regs, GSTS, status, if want { status } else { 0 }, what).map(drop)
}

/// Reads the 32-bit register at `off` until `value & mask == want`, at
/// most [`POLL_LIMIT`] times.
fn poll32(
    regs: &mut impl VtdRegs,
    off: u32,
    mask: u32,
    want: u32,
    what: &'static str,
) -> Result<u32, VtdError> {
    for _ in 0..POLL_LIMIT {
        let v = regs.read32(off);
        if v & mask == want {
            return Ok(v);
        }
    }
    Err(VtdError::Timeout(what))
}

/// Reads the 64-bit register at `off` until `value & mask == want`, at
/// most [`POLL_LIMIT`] times.
fn poll64(
    regs: &mut impl VtdRegs,
    off: u32,
    mask: u64,
    want: u64,
    what: &'static str,
) -> Result<u64, VtdError> {
    for _ in 0..POLL_LIMIT {
        let v = regs.read64(off);
        if v & mask == want {
            return Ok(v);
        }
    }
    Err(VtdError::Timeout(what))
}
