//! AMD-Vi DMA and interrupt remapping (AMD I/O Virtualization Technology
//! (IOMMU) Specification, #48882): host page tables per domain, 32-bit
//! interrupt remapping entries per device.
//!
//! One [`AmdVi`] drives one unit (an IVHD of the IVRS table). After
//! [`AmdVi::init`] the unit is on and every device id in its device table
//! is blocked: its entry is valid with no read or write permission (see
//! [`DeviceEntry::blocked`]). A device assigned to a guest gets an entry
//! pointing at its domain's I/O page tables ([`AmdVi::attach`],
//! [`IoTables`]), which map the guest's RAM at IOVA = guest-physical
//! address, and an interrupt remapping table ([`AmdVi::set_irq_table`])
//! whose entries ([`AmdVi::map_irq`]) are the only interrupts it can
//! raise.
//!
//! The order the hypervisor follows:
//!
//! 1. `AmdVi::init(regs, mem, segment, max_bus)` for each IVHD (the unit
//!    is on from here and blocks every device on buses `0..=max_bus`);
//! 2. `IoTables::new(mem, amdvi.io_config())` and `map` per domain's RAM,
//!    then per assigned function `amdvi.set_irq_table(mem, sbdf, n)` and
//!    `amdvi.attach(mem, sbdf, domain_id, &tables)` (domain ids from 1;
//!    0 is the blocked entries');
//! 3. for each MSI or MSI-X vector the guest enables,
//!    `amdvi.map_irq(mem, sbdf, index, vector, apic_id)` gives the address
//!    and data to program into the device; `unmap_irq` when it is
//!    disabled;
//! 4. later `unmap` then `amdvi.flush_domain(mem, id)` then
//!    `tables.reclaim(mem)`; after `map`, `amdvi.sync_after_map(mem, id)`;
//!    poll `amdvi.events(mem)` and log each [`Event`]; on teardown
//!    `amdvi.block_irqs` and `amdvi.detach` each function, then
//!    `tables.destroy(mem)`.
//!
//! `max_bus` should cover every bus with devices behind the unit (255
//! costs 2 MiB): a unit is not required to check a device id against the
//! table's size before reading its entry (QEMU does not).
//!
//! Under QEMU: 7.2 and 10.0 translate DMA only with `-device amd-iommu,pt=off`
//! (with its default `pt=on` every device reaches all memory whatever the
//! device table says), remaps interrupts only with `intremap=on`, and
//! rejects a device table entry whose DomainID has bit 8 set (it checks
//! that bit as reserved), so domain ids there stay below 256. Releases
//! that have a `dma-remap` property translate only with `dma-remap=on`.
//! QEMU logs an I/O page fault only when a walk meets an entry that is
//! there but does not allow the access (a blocked device entry does), not
//! when it ends at an empty one; it logs no event for a blocked
//! interrupt; and it takes a message a device writes by DMA as coming
//! from the I/O APIC (device id 00:14.0).
//!
//! Not handled: IVMD unity-mapped ranges (a device that needs one, such
//! as a USB controller under legacy emulation, faults once blocked),
//! device ids above `max_bus`, ATS, guest translation, the 128-bit
//! (guest virtual APIC) remapping entries and so x2APIC destinations
//! above 255.

mod cmd;
mod dte;
mod event;
mod io;
mod irq;
pub mod regs;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;
use vmm_glue::compact::VecMap;
use vmm_glue::log;

use vmm_glue::Sbdf;

pub use cmd::{Command, ALL_PAGES, CMD_ENTRIES};
pub use dte::{DeviceEntry, DTE_SIZE};
#[cfg(test)]
pub(crate) use dte::{DteWord0, DteWord1, DteWord2};
pub use event::{Access, Event};
pub use io::{IoConfig, IoLevels, IoTables, PTE_ADDR, PTE_IR, PTE_IW, PTE_NEXT_SHIFT, PTE_PR};
pub use irq::{irte, MAX_IRQ_ENTRIES, MSI_ADDRESS};
pub use regs::Features;

use super::TableMemory;
use cmd::CommandRing;
use regs::*;

/// One unit's registers (MMIO at the IVHD's base address, 16 KiB; QEMU
/// puts it at `0xfed8_0000`). Offsets are bytes from that base; 64-bit
/// accesses are naturally aligned.
pub trait AmdViRegs {
    /// Reads the 32-bit register at `off`.
    fn read32(&mut self, off: u32) -> u32;
    /// Writes the 32-bit register at `off`.
    fn write32(&mut self, off: u32, v: u32);
    /// Reads the 64-bit register at `off`.
    fn read64(&mut self, off: u32) -> u64;
    /// Writes the 64-bit register at `off`.
    fn write64(&mut self, off: u32, v: u64);
}

/// Table memory that can also hand out physically contiguous runs of
/// frames: the device table is one table of up to 512 frames (2 MiB for
/// all 64 Ki device ids), which [`TableMemory`]'s single frames cannot
/// hold.
///
/// The frames of a run are accessed through [`TableMemory::read64`] and
/// [`TableMemory::write64`] like any other.
pub trait ContiguousMemory: TableMemory {
    /// `frames` zeroed, physically contiguous 4 KiB frames starting at a
    /// 4 KiB-aligned address, or `None` when no such run is free.
    fn alloc_zeroed_contiguous(&mut self, frames: usize) -> Option<u64>;

    /// Returns a run [`alloc_zeroed_contiguous`](Self::alloc_zeroed_contiguous)
    /// gave out, with the same length.
    fn free_contiguous(&mut self, hpa: u64, frames: usize);
}

/// How many times a status bit or a completion store is read before the
/// unit is declared unresponsive (about a second at typical MMIO read
/// latencies).
pub const POLL_LIMIT: u32 = 1_000_000;

/// Entries in the event log (EventLen = 8: one 4 KiB page).
pub const EVENT_ENTRIES: u64 = 256;

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdViError {
    /// The unit did not complete something in time: names the command
    /// whose completion wait never stored, or the status bit that never
    /// changed.
    Timeout(&'static str),
    /// The unit stopped fetching commands (Status.CmdBufRun clear: an
    /// illegal command or a hardware error, which the event log says
    /// more about) while running the named command's batch; the
    /// command buffer was restarted empty.
    CommandHalted(&'static str),
    /// No frame for a table.
    NoMemory,
    /// The unit does not translate DMA at all (EFR.HATS = 11b).
    NoHostTranslation,
    /// A range that is not 4 KiB aligned, is empty, or lies beyond the
    /// tables' IOVA width.
    BadRange {
        /// Start of the range.
        iova: u64,
        /// Length of the range.
        len: u64,
    },
    /// Domain id 0 belongs to the blocked entries.
    BadDomain(u16),
    /// The function is on a segment this unit does not serve.
    WrongSegment(Sbdf),
    /// The function's bus is above the device table's last bus.
    OutsideDeviceTable(Sbdf),
    /// The function has no interrupt remapping table.
    NoIrqTable(Sbdf),
    /// An interrupt index beyond the function's remapping table.
    BadIrqIndex {
        /// The function.
        dev: Sbdf,
        /// The index asked for.
        index: u16,
    },
    /// A remapping table size outside `1..=MAX_IRQ_ENTRIES`.
    BadIrqCount(u16),
    /// Vectors 0 to 15 are not deliverable.
    BadVector(u8),
}

impl fmt::Display for AmdViError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(what) => write!(f, "the unit did not answer ({what} timed out)"),
            Self::CommandHalted(what) => write!(
                f,
                "the unit stopped processing commands at {what} (see its event log)"
            ),
            Self::NoMemory => f.write_str("out of memory for remapping tables"),
            Self::NoHostTranslation => {
                f.write_str("the unit does not translate DMA (EFR.HATS = 11b)")
            }
            Self::BadRange { iova, len } => write!(
                f,
                "bad DMA range {iova:#x}+{len:#x} (unaligned, empty or beyond the IOVA width)"
            ),
            Self::BadDomain(id) => write!(f, "domain id {id} is not usable (0 is reserved)"),
            Self::WrongSegment(sbdf) => write!(f, "{sbdf} is not on this unit's segment"),
            Self::OutsideDeviceTable(sbdf) => {
                write!(f, "{sbdf} is on a bus beyond this unit's device table")
            }
            Self::NoIrqTable(sbdf) => write!(f, "{sbdf} has no interrupt remapping table"),
            Self::BadIrqIndex { dev, index } => {
                write!(f, "interrupt index {index} is beyond the table of {dev}")
            }
            Self::BadIrqCount(n) => write!(
                f,
                "{n} interrupt remapping entries asked for (1 to {MAX_IRQ_ENTRIES})"
            ),
            Self::BadVector(v) => write!(f, "vector {v:#x} is not deliverable"),
        }
    }
}

/// A device's interrupt remapping table.
#[derive(Clone, Copy, Debug)]
struct IrqTable {
    hpa: u64,
    entries: u16,
}

/// One AMD-Vi unit.
#[derive(Debug)]
pub struct AmdVi<R> {
    regs: R,
    features: Features,
    levels: IoLevels,
    segment: u16,
    max_bus: u8,
    dev_table: u64,
    dev_table_frames: usize,
    empty_root: u64,
    ring: CommandRing,
    event_log: u64,
    irq_tables: VecMap<u16, IrqTable>,
}

impl<R: AmdViRegs> AmdVi<R> {
    /// Takes over the unit at `regs`, serving PCI segment `segment` and
    /// device ids on buses `0..=max_bus`:
    ///
    /// 1. reads the Extended Feature Register ([`Features`]) and chooses
    ///    4-level tables (every HATS value allows them);
    /// 2. stops the unit if firmware left it on (Control = 0, then waits
    ///    for Status.CmdBufRun and EventLogRun to clear);
    /// 3. allocates the device table (2 frames per bus, contiguous) with
    ///    every entry [`DeviceEntry::blocked`], an empty top-level table
    ///    for those entries, the command buffer, the event log (256
    ///    entries each) and a page for completion stores;
    /// 4. disables the exclusion range, programs the three base
    ///    registers, zeroes the head and tail pointers, clears the status
    ///    bits;
    /// 5. sets Coherent, EventLogEn and CmdBufEn, then IommuEn (event and
    ///    completion interrupts stay off: the driver polls), and waits
    ///    for CmdBufRun;
    /// 6. drops whatever the unit cached: INVALIDATE_DEVTAB_ENTRY for
    ///    every device id in the table, then INVALIDATE_IOMMU_ALL if EFR.IA
    ///    says it exists, else INVALIDATE_INTERRUPT_TABLE for every device
    ///    id and INVALIDATE_IOMMU_PAGES for every domain id; each batch ends
    ///    in a COMPLETION_WAIT whose store is polled. The per-device
    ///    invalidations come first even with IA because an emulated unit
    ///    (QEMU with `dma-remap=on`) starts translating a device's DMA only
    ///    when its entry is invalidated on its own.
    ///
    /// If a step after 4 fails the unit may be using the tables, so they
    /// stay allocated.
    pub fn init(
        mut regs: R,
        mem: &mut impl ContiguousMemory,
        segment: u16,
        max_bus: u8,
    ) -> Result<Self, AmdViError> {
        let features = Features(regs.read64(EXT_FEATURES));
        if features.host_levels().is_none() {
            return Err(AmdViError::NoHostTranslation);
        }
        let levels = IoLevels::Four;
        if regs.read64(CONTROL) & (CTL_IOMMU_EN | CTL_CMD_BUF_EN | CTL_EVENT_LOG_EN) != 0 {
            regs.write64(CONTROL, 0);
            poll(
                &mut regs,
                ST_CMD_BUF_RUN | ST_EVENT_LOG_RUN,
                0,
                "Status.CmdBufRun (stopping the unit)",
            )?;
        }
        let dev_table_frames = (usize::from(max_bus) + 1) * 2;
        let dev_table = mem
            .alloc_zeroed_contiguous(dev_table_frames)
            .ok_or(AmdViError::NoMemory)?;
        let mut frames = Vec::new();
        for _ in 0..4 {
            match mem.alloc_zeroed() {
                Some(f) => frames.push(f),
                None => {
                    for f in frames {
                        mem.free(f);
                    }
                    mem.free_contiguous(dev_table, dev_table_frames);
                    return Err(AmdViError::NoMemory);
                }
            }
        }
        let [empty_root, cmd_buf, event_log, status] = [frames[0], frames[1], frames[2], frames[3]];
        let mut unit = Self {
            regs,
            features,
            levels,
            segment,
            max_bus,
            dev_table,
            dev_table_frames,
            empty_root,
            ring: CommandRing::new(cmd_buf, status),
            event_log,
            irq_tables: VecMap::new(),
        };
        let blocked = unit.blocked_entry();
        for devid in 0..unit.device_ids() {
            let slot = dev_table + u64::from(devid) * DTE_SIZE;
            for (i, w) in blocked.0.iter().enumerate() {
                if *w != 0 {
                    mem.write64(slot + 8 * i as u64, *w);
                }
            }
        }
        unit.start(mem)?;
        Ok(unit)
    }

    fn start(&mut self, mem: &mut impl TableMemory) -> Result<(), AmdViError> {
        let r = &mut self.regs;
        // ExEn = 0: no range bypasses translation.
        r.write64(EXCL_BASE, 0);
        r.write64(EXCL_LIMIT, 0);
        // Size (bits 8:0) = pages - 1.
        r.write64(
            DEV_TAB_BASE,
            self.dev_table | (self.dev_table_frames as u64 - 1),
        );
        r.write64(CMD_BASE, self.ring.base | RING_LEN_256);
        r.write64(CMD_HEAD, 0);
        r.write64(CMD_TAIL, 0);
        r.write64(EVT_BASE, self.event_log | RING_LEN_256);
        r.write64(EVT_HEAD, 0);
        r.write64(EVT_TAIL, 0);
        r.write64(STATUS, ST_RW1C);
        let on = CTL_COHERENT | CTL_EVENT_LOG_EN | CTL_CMD_BUF_EN;
        r.write64(CONTROL, on);
        r.write64(CONTROL, on | CTL_IOMMU_EN);
        poll(r, ST_CMD_BUF_RUN, ST_CMD_BUF_RUN, "Status.CmdBufRun")?;
        let ids = self.device_ids();
        let entries = (0..ids).map(|id| Command::InvalidateDevtabEntry(id as u16));
        if self.features.invalidate_all() {
            self.submit(mem, entries.chain([Command::InvalidateAll]))
        } else {
            let tables = (0..ids).map(|id| Command::InvalidateInterruptTable(id as u16));
            let domains = (0..=u16::MAX).map(Command::InvalidateDomain);
            self.submit(mem, entries.chain(tables).chain(domains))
        }
    }

    /// The unit's extended features.
    pub const fn features(&self) -> Features {
        self.features
    }

    /// The table depth chosen for this unit.
    pub const fn levels(&self) -> IoLevels {
        self.levels
    }

    /// The table shape for domains attached on this unit: its depth and
    /// large pages (every AMD-Vi unit walks 2 MiB and 1 GiB leaves).
    pub const fn io_config(&self) -> IoConfig {
        IoConfig {
            levels: self.levels,
            large_pages: true,
        }
    }

    /// The PCI segment this unit serves.
    pub const fn segment(&self) -> u16 {
        self.segment
    }

    /// The last bus the device table covers.
    pub const fn max_bus(&self) -> u8 {
        self.max_bus
    }

    /// The device table: its host-physical address and length in frames.
    pub const fn device_table(&self) -> (u64, usize) {
        (self.dev_table, self.dev_table_frames)
    }

    /// The device table entry of `dev` (for self-checks).
    pub fn device_entry(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> Option<DeviceEntry> {
        let slot = self.slot(dev).ok()?;
        Some(read_entry(mem, slot))
    }

    /// Whether `dev`'s entry blocks it: no DMA and no interrupt table
    /// (read back after detaching).
    #[inline(never)]
    pub fn blocks(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> bool {
        self.device_entry(mem, dev)
            .is_some_and(|e| !e.allows_dma() && e.interrupt_table().is_none())
    }

    /// Lets function `dev` DMA through `tables` as domain `domain_id`:
    /// writes word 1 (DomainID) and then word 0 (V, TV, Mode, root, IR,
    /// IW) of its entry, so the unit sees either the blocked entry or the
    /// new one, then INVALIDATE_DEVTAB_ENTRY for the device and
    /// INVALIDATE_IOMMU_PAGES for the domain. A device attached to
    /// another domain is detached first. The interrupt fields (word 2)
    /// are left as they are.
    ///
    /// Domain ids start at 1. Each id must always name the same tables.
    #[inline(never)]
    pub fn attach(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        domain_id: u16,
        tables: &IoTables,
    ) -> Result<(), AmdViError> {
        let slot = self.slot(dev)?;
        if domain_id == 0 {
            return Err(AmdViError::BadDomain(domain_id));
        }
        let levels = tables.config().levels.count() as u8;
        let word0 = DeviceEntry::translated_word0(tables.root(), levels);
        let old = read_entry(mem, slot);
        if old.0[0] == word0 && old.domain_id() == domain_id {
            return Ok(());
        }
        if old.domain_id() != 0 {
            self.detach(mem, dev)?;
        }
        mem.write64(slot + 8, u64::from(domain_id));
        mem.write64(slot, word0);
        self.submit(
            mem,
            [
                Command::InvalidateDevtabEntry(dev.rid()),
                Command::InvalidateDomain(domain_id),
            ],
        )
    }

    /// Blocks DMA from function `dev` again: word 0 back to the blocked
    /// value, then DomainID 0, then INVALIDATE_DEVTAB_ENTRY and
    /// INVALIDATE_IOMMU_PAGES for the domain it was in. Nothing happens
    /// if it was not attached. Interrupt remapping is left as it is
    /// ([`block_irqs`](Self::block_irqs)).
    #[inline(never)]
    pub fn detach(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> Result<(), AmdViError> {
        let slot = self.slot(dev)?;
        let old = read_entry(mem, slot);
        let blocked = self.blocked_entry();
        if old.0[..2] == blocked.0[..2] {
            return Ok(());
        }
        mem.write64(slot, blocked.0[0]);
        mem.write64(slot + 8, blocked.0[1]);
        self.submit(
            mem,
            [
                Command::InvalidateDevtabEntry(dev.rid()),
                Command::InvalidateDomain(old.domain_id()),
            ],
        )
    }

    /// Drops the unit's cached translations of `domain_id` (after
    /// unmapping, or after a map replaced a mapping).
    pub fn flush_domain(
        &mut self,
        mem: &mut impl TableMemory,
        domain_id: u16,
    ) -> Result<(), AmdViError> {
        self.submit(mem, [Command::InvalidateDomain(domain_id)])
    }

    /// Makes new mappings of `domain_id` visible to the unit. A unit may
    /// cache not-present entries (the capability header's NpCache bit,
    /// which QEMU sets and which this driver cannot read), so this is
    /// always a domain flush.
    pub fn sync_after_map(
        &mut self,
        mem: &mut impl TableMemory,
        domain_id: u16,
    ) -> Result<(), AmdViError> {
        self.flush_domain(mem, domain_id)
    }

    /// Takes the logged events: decodes every entry from the head to the
    /// tail pointer and moves the head past them. If the log overflowed
    /// (Status.EventOverflow; logging then stops), logs a warning and
    /// restarts logging: EventLogEn off, wait for EventLogRun to clear,
    /// clear EventOverflow, EventLogEn on.
    pub fn events(&mut self, mem: &mut impl TableMemory) -> Vec<Event> {
        let mut out = Vec::new();
        let status = self.regs.read64(STATUS);
        let log_len = EVENT_ENTRIES * 16;
        let tail = self.regs.read64(EVT_TAIL) & (log_len - 16);
        let mut head = self.regs.read64(EVT_HEAD) & (log_len - 16);
        while head != tail {
            let at = self.event_log + head;
            out.push(Event::decode(
                self.segment,
                [mem.read64(at), mem.read64(at + 8)],
            ));
            head = (head + 16) % log_len;
        }
        if !out.is_empty() {
            self.regs.write64(EVT_HEAD, head);
        }
        if status & ST_EVENT_LOG_INT != 0 {
            self.regs.write64(STATUS, ST_EVENT_LOG_INT);
        }
        if status & ST_EVENT_OVERFLOW != 0 {
            log::warn!("amd-vi: the event log overflowed; some events were lost");
            let control = self.regs.read64(CONTROL);
            self.regs.write64(CONTROL, control & !CTL_EVENT_LOG_EN);
            if poll(&mut self.regs, ST_EVENT_LOG_RUN, 0, "Status.EventLogRun").is_err() {
                log::warn!("amd-vi: event logging did not stop; it stays off");
                return out;
            }
            self.regs.write64(STATUS, ST_EVENT_OVERFLOW);
            self.regs.write64(CONTROL, control | CTL_EVENT_LOG_EN);
        }
        out
    }

    /// The entry every device id not attached to a domain has.
    fn blocked_entry(&self) -> DeviceEntry {
        DeviceEntry::blocked(self.empty_root, self.levels.count() as u8)
    }

    /// Device ids the device table covers.
    fn device_ids(&self) -> u32 {
        (u32::from(self.max_bus) + 1) * 256
    }

    /// The address of `dev`'s device table entry.
    fn slot(&self, dev: Sbdf) -> Result<u64, AmdViError> {
        if dev.seg != self.segment {
            return Err(AmdViError::WrongSegment(dev));
        }
        if dev.bus > self.max_bus {
            return Err(AmdViError::OutsideDeviceTable(dev));
        }
        Ok(self.dev_table + u64::from(dev.rid()) * DTE_SIZE)
    }

    fn submit(
        &mut self,
        mem: &mut impl TableMemory,
        commands: impl IntoIterator<Item = Command>,
    ) -> Result<(), AmdViError> {
        self.ring.submit(&mut self.regs, mem, commands)
    }
}

fn read_entry(mem: &mut impl TableMemory, slot: u64) -> DeviceEntry {
    DeviceEntry([
        mem.read64(slot),
        mem.read64(slot + 8),
        mem.read64(slot + 16),
        mem.read64(slot + 24),
    ])
}

/// Reads the status register until `value & mask == want`, at most
/// [`POLL_LIMIT`] times.
fn poll(
    regs: &mut impl AmdViRegs,
    mask: u64,
    want: u64,
    what: &'static str,
) -> Result<u64, AmdViError> {
    for _ in 0..POLL_LIMIT {
        let v = regs.read64(STATUS);
        if v & mask == want {
            return Ok(v);
        }
    }
    Err(AmdViError::Timeout(what))
}
