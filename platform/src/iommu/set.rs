//! Every IOMMU unit of the machine, of either kind, behind `vmm-glue`'s
//! [`DmaRemapping`] and [`InterruptRemapping`] seams.
//!
//! An [`IommuSet`] holds the units the firmware describes (VT-d units from
//! DMAR, AMD-Vi units from IVRS), each with its [`Scope`]: the functions
//! and I/O APICs it serves. A function is served by the unit whose scope
//! names it, else by its segment's catch-all unit (DMAR `INCLUDE_PCI_ALL`,
//! an IVRS range over every device id).
//!
//! A domain's functions share one set of tables per unit, built on its
//! first attach there and mapping exactly the domain's RAM at I/O virtual
//! address = guest-physical address; they live until
//! [`DmaRemapping::remove_domain`]. Interrupt remapping entries send a
//! fixed vector to one local APIC and check the source: on VT-d one table
//! per unit whose entries name the full requester ID, on AMD-Vi a table
//! per function (given at attach, taken at detach) and one per I/O APIC
//! (given at its first routed input, indexed by vector).
//!
//! On AMD-Vi a function whose requests carry another requester ID (an
//! IVRS alias, [`Scope::aliases`]) is attached through that ID's device
//! table entry as well as its own, and its interrupts are remapped in that
//! ID's table; functions carrying one ID share it and its entry, so they
//! are only ever in one domain (an attach that would split them is
//! refused), and the entry is blocked again when the last of them is
//! detached.

use alloc::vec::Vec;
use core::fmt;
use vmm_glue::compact::Entry;
use vmm_glue::compact::VecMap;

use vmm_glue::iommu::Detail;
use vmm_glue::{
    DmaRemapping, InterruptRemapping, IommuError, RamRange, RemappedIoapic, RemappedMsi, Sbdf,
};

use super::amdvi::{self, AmdVi, AmdViRegs, IoTables};
pub use super::scope::Scope;
use super::vtd::{self, remappable_msi, IrTable, Irte, SlTables, Vtd, VtdRegs, IR_ENTRIES};
use super::TableMemory;

#[cfg(test)]
mod tests;

/// Interrupt remapping entries each function gets on AMD-Vi (MSI plus up
/// to 128 MSI-X vectors fit).
pub const AMD_IRQS: u16 = 256;

/// One IOMMU unit: the closed set of the kinds this hypervisor drives.
#[derive(Debug)]
pub enum Iommu<R> {
    /// An Intel VT-d unit (a DMAR DRHD), translation on.
    Vtd {
        /// Its driver.
        vtd: Vtd<R>,
        /// Its interrupt remapping table, when remapping is on
        /// ([`Vtd::enable_interrupt_remapping`] done with it).
        ir: Option<IrTable>,
    },
    /// An AMD-Vi unit (an IVRS IVHD), on; it remaps the interrupts of
    /// every function attached to it.
    AmdVi(AmdVi<R>),
}

impl<R> Iommu<R> {
    /// "VT-d" or "AMD-Vi", for the log.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Vtd { .. } => "VT-d",
            Self::AmdVi(_) => "AMD-Vi",
        }
    }
}

/// A unit of the set, with its scope and which of its interrupt
/// remapping entries are in use.
#[derive(Debug)]
pub struct Unit<R> {
    iommu: Iommu<R>,
    base: u64,
    scope: Scope,
    /// VT-d: the entries of its table in use (empty without a table).
    ir_used: Vec<bool>,
    /// AMD-Vi: the entries in use of each requester ID's table (an
    /// attached function's own ID, or the alias its requests carry, whose
    /// table the functions sharing it share; an I/O APIC's).
    irqs: VecMap<Sbdf, Vec<bool>>,
    /// AMD-Vi: the attached functions and their domains.
    attached: Vec<(Sbdf, u16)>,
}

impl<R> Unit<R> {
    /// An attached function other than `dev` whose requests carry `rid`,
    /// and its domain.
    #[inline(never)]
    fn sharer(&self, dev: Sbdf, rid: Sbdf) -> Option<(Sbdf, u16)> {
        let carries = |&&(g, _): &&(Sbdf, u16)| g != dev && self.scope.requester(g) == rid;
        self.attached.iter().find(carries).copied()
    }

    /// The unit.
    pub const fn iommu(&self) -> &Iommu<R> {
        &self.iommu
    }

    /// Its register base, for the log.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// What it serves.
    pub const fn scope(&self) -> &Scope {
        &self.scope
    }

    /// "VT-d" or "AMD-Vi", for the log.
    pub const fn kind(&self) -> &'static str {
        self.iommu.kind()
    }

    /// Whether interrupts of the functions it serves are remapped.
    pub const fn remaps(&self) -> bool {
        match &self.iommu {
            Iommu::Vtd { ir, .. } => ir.is_some(),
            Iommu::AmdVi(_) => true,
        }
    }
}

/// A domain's tables on one unit.
#[derive(Debug)]
enum Tables {
    Vtd(SlTables),
    AmdVi(IoTables),
}

/// Something a unit recorded: a blocked DMA or interrupt, or an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A VT-d fault record.
    Vtd(vtd::Fault),
    /// An AMD-Vi event log entry.
    AmdVi(amdvi::Event),
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vtd(x) => fmt::Display::fmt(x, f),
            Self::AmdVi(x) => fmt::Display::fmt(x, f),
        }
    }
}

/// The machine's IOMMU units and each domain's tables on them, with the
/// memory (`M`) the tables live in. `R` reaches a unit's registers (of
/// either kind).
#[derive(Debug)]
pub struct IommuSet<R, M> {
    units: Vec<Unit<R>>,
    /// By (unit index, domain id).
    domains: VecMap<(usize, u16), Tables>,
    mem: M,
}

fn detail(e: impl fmt::Display) -> Detail {
    Detail::new(&e)
}

/// The domain id of the quarantine tables: a function the firmware says
/// keeps using some memory (an RMRR) is attached there while no guest owns
/// it, with only that memory mapped one to one; everything else it does is
/// blocked. Guest domain ids stay below it.
pub const QUARANTINE_DOMAIN: u16 = 250;

impl<R, M> IommuSet<R, M> {
    /// No units yet; tables will come from `mem`.
    pub const fn new(mem: M) -> Self {
        Self {
            units: Vec::new(),
            domains: VecMap::new(),
            mem,
        }
    }

    /// Adds a unit that is set up and on, with nothing attached, at
    /// register base `base` (for the log), serving `scope`. Returns its
    /// index.
    pub fn add(&mut self, iommu: Iommu<R>, base: u64, scope: Scope) -> usize {
        let ir_used = match &iommu {
            Iommu::Vtd { ir: Some(_), .. } => alloc::vec![false; usize::from(IR_ENTRIES)],
            _ => Vec::new(),
        };
        self.units.push(Unit {
            iommu,
            base,
            scope,
            ir_used,
            irqs: VecMap::new(),
            attached: Vec::new(),
        });
        self.units.len() - 1
    }

    /// The units, in the order they were added.
    pub fn units(&self) -> &[Unit<R>] {
        &self.units
    }

    /// The index of the unit that serves `dev`: the one whose scope
    /// names it, else its segment's catch-all unit.
    pub fn unit_index(&self, dev: Sbdf) -> Option<usize> {
        let on_segment = |u: &Unit<R>| u.scope.segment == dev.seg;
        let named = |u: &Unit<R>| on_segment(u) && u.scope.functions.contains(&dev);
        let catch_all = |u: &Unit<R>| on_segment(u) && u.scope.include_all;
        self.units
            .iter()
            .position(named)
            .or_else(|| self.units.iter().position(catch_all))
    }

    /// The unit that serves `dev`.
    pub fn unit_for(&self, dev: Sbdf) -> Option<&Unit<R>> {
        self.units.get(self.unit_index(dev)?)
    }

    /// Whether domain `dom` has tables on unit `unit`.
    pub fn has_tables(&self, unit: usize, dom: u16) -> bool {
        self.domains.contains_key(&(unit, dom))
    }

    /// Entries in use, for the resource accounts: a set of translation
    /// tables per domain and unit, and every interrupt remapping entry
    /// routed.
    pub fn entries_in_use(&self) -> usize {
        let used = |v: &[bool]| v.iter().filter(|&&b| b).count();
        let irqs: usize = self
            .units
            .iter()
            .map(|u| used(&u.ir_used) + u.irqs.values().map(|v| used(v)).sum::<usize>())
            .sum();
        self.domains.len() + irqs
    }
}

impl<R: VtdRegs + AmdViRegs, M: TableMemory> IommuSet<R, M> {
    /// Attaches every function with reserved memory (RMRRs) to the
    /// quarantine tables ([`QUARANTINE_DOMAIN`]), so that it keeps that
    /// memory, and only that, while no guest owns it. Returns each such
    /// function with the outcome.
    pub fn quarantine_reserved(&mut self) -> Vec<(Sbdf, Result<(), IommuError>)> {
        let mut devs: Vec<Sbdf> = self
            .units
            .iter()
            .flat_map(|u| u.scope.reserved.iter().map(|r| r.0))
            .collect();
        vmm_glue::compact::sort(&mut devs);
        devs.dedup();
        devs.into_iter()
            .map(|d| (d, self.attach(QUARANTINE_DOMAIN, &[], d)))
            .collect()
    }

    /// Takes what the units recorded since the last call (VT-d fault
    /// records, AMD-Vi event log entries), unit by unit.
    pub fn recorded(&mut self) -> Vec<Recorded> {
        let mut out = Vec::new();
        for u in &mut self.units {
            match &mut u.iommu {
                Iommu::Vtd { vtd, .. } => out.extend(vtd.faults().into_iter().map(Recorded::Vtd)),
                Iommu::AmdVi(amd) => {
                    out.extend(amd.events(&mut self.mem).into_iter().map(Recorded::AmdVi))
                }
            }
        }
        out
    }

    /// Maps the 4 KiB page at `gpa` to `hpa` (`Some`) or unmaps it
    /// (`None`) in domain `dom`'s tables on every unit that has them, and
    /// makes the unit see the change (an unmap is flushed before this
    /// returns, so the frame can go to another owner). A domain without
    /// tables has nothing to change.
    pub fn remap_page(&mut self, dom: u16, gpa: u64, hpa: Option<u64>) -> Result<(), IommuError> {
        const PAGE: u64 = 4096;
        let Self {
            units,
            domains,
            mem,
        } = self;
        for (&(ui, d), t) in domains.iter_mut() {
            let Some(unit) = units.get_mut(ui).filter(|_| d == dom) else {
                continue;
            };
            let r = match (&mut unit.iommu, t) {
                (Iommu::Vtd { vtd, .. }, Tables::Vtd(t)) => {
                    let r = match hpa {
                        Some(h) => t
                            .map(mem, gpa, h, PAGE, true)
                            .and_then(|()| vtd.sync_after_map(mem, dom)),
                        None => t
                            .unmap(mem, gpa, PAGE)
                            .and_then(|()| vtd.flush_domain(mem, dom)),
                    };
                    if r.is_ok() {
                        t.reclaim(mem);
                    }
                    r.map_err(detail)
                }
                (Iommu::AmdVi(amd), Tables::AmdVi(t)) => {
                    let r = match hpa {
                        Some(h) => t
                            .map(mem, gpa, h, PAGE, true)
                            .and_then(|()| amd.sync_after_map(mem, dom)),
                        None => t
                            .unmap(mem, gpa, PAGE)
                            .and_then(|()| amd.flush_domain(mem, dom)),
                    };
                    if r.is_ok() {
                        t.reclaim(mem);
                    }
                    r.map_err(detail)
                }
                _ => Err(detail("the unit and the tables disagree")),
            };
            r.map_err(IommuError::Mapping)?;
        }
        Ok(())
    }

    /// Tables for a domain on `unit`, mapping exactly `ram`.
    fn new_tables(unit: &Unit<R>, mem: &mut M, ram: &[RamRange]) -> Result<Tables, IommuError> {
        match &unit.iommu {
            Iommu::Vtd { vtd, .. } => {
                let mut t = SlTables::new(mem, vtd.sl_config())
                    .map_err(|e| IommuError::Tables(detail(e)))?;
                for r in ram {
                    if let Err(e) = t.map(mem, r.gpa.raw(), r.hpa.raw(), r.len, true) {
                        t.destroy(mem);
                        return Err(IommuError::Mapping(detail(e)));
                    }
                }
                Ok(Tables::Vtd(t))
            }
            Iommu::AmdVi(amd) => {
                let mut t = IoTables::new(mem, amd.io_config())
                    .map_err(|e| IommuError::Tables(detail(e)))?;
                for r in ram {
                    if let Err(e) = t.map(mem, r.gpa.raw(), r.hpa.raw(), r.len, true) {
                        t.destroy(mem);
                        return Err(IommuError::Mapping(detail(e)));
                    }
                }
                Ok(Tables::AmdVi(t))
            }
        }
    }
}

/// The first free entry of `used`.
fn free_entry(used: &[bool]) -> Result<u16, IommuError> {
    let idx = used.iter().position(|u| !u).ok_or(IommuError::TableFull)?;
    u16::try_from(idx).map_err(|_| IommuError::TableFull)
}

/// Writes `entry` (level-triggered if `level`) into a free entry of a
/// VT-d unit's table, invalidates the unit's cached copy and marks it in
/// `used`; returns its index.
fn vtd_route<R: VtdRegs>(
    vtd: &mut Vtd<R>,
    table: &mut IrTable,
    used: &mut [bool],
    mem: &mut impl TableMemory,
    entry: Irte,
    level: bool,
) -> Result<u16, IommuError> {
    let handle = free_entry(used)?;
    let written = if level {
        table.set_level(mem, handle, entry)
    } else {
        table.set(mem, handle, entry)
    };
    written
        .and_then(|()| vtd.invalidate_irte(mem, handle))
        .map_err(|e| IommuError::Unit(detail(e)))?;
    if let Some(u) = used.get_mut(usize::from(handle)) {
        *u = true;
    }
    Ok(handle)
}

/// An AMD-Vi remapping entry's destination: an xAPIC id.
fn xapic_dest(dest_apic: u32) -> Result<u8, IommuError> {
    u8::try_from(dest_apic).map_err(|_| {
        IommuError::Unit(detail(format_args!(
            "destination APIC id {dest_apic} needs x2APIC remapping entries"
        )))
    })
}

/// Marks entry `handle` of `used` free.
fn release(used: &mut [bool], handle: u16) {
    if let Some(u) = used.get_mut(usize::from(handle)) {
        *u = false;
    }
}

impl<R: VtdRegs + AmdViRegs, M: TableMemory> DmaRemapping for IommuSet<R, M> {
    fn covers(&self, dev: Sbdf) -> bool {
        self.unit_index(dev).is_some()
    }

    fn attach(&mut self, dom: u16, ram: &[RamRange], dev: Sbdf) -> Result<(), IommuError> {
        // Guests' ids stay below the quarantine's, whose tables hold no RAM.
        if dom > QUARANTINE_DOMAIN || (dom == QUARANTINE_DOMAIN && !ram.is_empty()) {
            return Err(IommuError::Unit(detail(alloc::format!(
                "domain id {dom} is not below {QUARANTINE_DOMAIN}, the quarantine's"
            ))));
        }
        let ui = self.unit_index(dev).ok_or(IommuError::NotCovered)?;
        let Self {
            units,
            domains,
            mem,
        } = self;
        let unit = units.get_mut(ui).ok_or(IommuError::NotCovered)?;
        // Functions whose requests carry one ID share its device table
        // entry: they can only be in one domain.
        let rid = unit.scope.requester(dev);
        let sharer = unit.sharer(dev, rid);
        if let Some((g, d)) = sharer.filter(|s| s.1 != dom) {
            return Err(IommuError::Unit(detail(format_args!(
                "it shares requester ID {rid} (IVRS alias) with {g}, in domain {d}"
            ))));
        }
        // A reserved range of the function must not be the guest's RAM:
        // the device would DMA into guest memory the guest uses.
        let reserved: Vec<(u64, u64)> = unit
            .scope
            .reserved
            .iter()
            .filter(|&&(f, _, _)| f == dev)
            .map(|&(_, b, e)| (b, e))
            .collect();
        for &(b, e) in &reserved {
            let clash = ram
                .iter()
                .any(|r| r.gpa.raw() < e && b < r.gpa.raw().saturating_add(r.len));
            if clash {
                return Err(IommuError::Mapping(detail(alloc::format!(
                    "its reserved memory {b:#x}-{:#x} (RMRR) is the guest's RAM there",
                    e - 1
                ))));
            }
        }
        let tables = match domains.entry((ui, dom)) {
            Entry::Occupied(t) => t.into_mut(),
            Entry::Vacant(slot) => slot.insert(Self::new_tables(unit, mem, ram)?),
        };
        for &(b, e) in &reserved {
            let r = match tables {
                Tables::Vtd(t) => t.map(mem, b, b, e - b, true).map_err(detail),
                Tables::AmdVi(t) => t.map(mem, b, b, e - b, true).map_err(detail),
            };
            r.map_err(IommuError::Mapping)?;
        }
        match (&mut unit.iommu, &*tables) {
            (Iommu::Vtd { vtd, .. }, Tables::Vtd(t)) => vtd
                .attach(mem, dev, dom, t)
                .and_then(|()| vtd.sync_after_map(mem, dom))
                .map_err(|e| IommuError::Unit(detail(e))),
            (Iommu::AmdVi(amd), Tables::AmdVi(t)) => {
                // Interrupts are looked up in the table of the ID they
                // carry, new unless a function sharing it has one; an
                // aliased function's own entry points there too, and both
                // entries get the domain's tables.
                let mut r = Ok(());
                if sharer.is_none() {
                    r = amd.set_irq_table(mem, rid, AMD_IRQS);
                    unit.irqs
                        .insert(rid, alloc::vec![false; usize::from(AMD_IRQS)]);
                }
                if rid != dev {
                    r = r
                        .and_then(|()| amd.share_irq_table(mem, dev, rid))
                        .and_then(|()| amd.attach(mem, rid, dom, t));
                }
                r.and_then(|()| amd.attach(mem, dev, dom, t))
                    .and_then(|()| amd.sync_after_map(mem, dom))
                    .map(|()| match unit.attached.iter_mut().find(|a| a.0 == dev) {
                        Some(a) => a.1 = dom,
                        None => unit.attached.push((dev, dom)),
                    })
                    .map_err(|e| IommuError::Unit(detail(e)))
            }
            // Tables are made for their unit's kind.
            _ => Err(IommuError::Unit(detail("the unit and the tables disagree"))),
        }
    }

    fn detach(&mut self, dev: Sbdf) -> Result<bool, IommuError> {
        let ui = self.unit_index(dev).ok_or(IommuError::NotCovered)?;
        let mem = &mut self.mem;
        let unit = self.units.get_mut(ui).ok_or(IommuError::NotCovered)?;
        // The entries to block: its own, and the ID its requests carry
        // unless a function sharing that is still attached.
        let mut cleared = [dev, dev];
        if let Some(i) = unit.attached.iter().position(|a| a.0 == dev) {
            unit.attached.swap_remove(i);
        }
        let rid = unit.scope.requester(dev);
        let sharer = unit.sharer(dev, rid);
        let r = match &mut unit.iommu {
            Iommu::Vtd { vtd, .. } => vtd.detach(mem, dev).map_err(detail),
            Iommu::AmdVi(amd) => {
                match sharer {
                    // The ID's entry and table serve the sharer still;
                    // the function's requests carry that ID, so its DMA
                    // stays confined to the sharer's domain.
                    Some((g, _)) if rid == dev => Err(detail(format_args!(
                        "{g} carries its requester ID (IVRS alias) and is still attached"
                    ))),
                    _ => {
                        if sharer.is_none() {
                            unit.irqs.remove(&rid);
                            cleared[1] = rid;
                        }
                        let mut r = amd.block_irqs(mem, dev).and_then(|()| amd.detach(mem, dev));
                        if cleared[1] != dev {
                            r = r
                                .and_then(|()| amd.block_irqs(mem, rid))
                                .and_then(|()| amd.detach(mem, rid));
                        }
                        r.map_err(detail)
                    }
                }
            }
        };
        r.map_err(IommuError::Unit)?;
        if unit.scope.reserved.iter().any(|r| r.0 == dev) {
            // Back to the quarantine tables: nothing but its reserved
            // memory, one to one.
            self.attach(QUARANTINE_DOMAIN, &[], dev)?;
            let unit = &mut self.units[ui];
            return Ok(match &mut unit.iommu {
                Iommu::Vtd { vtd, .. } => vtd
                    .context(&mut self.mem, dev)
                    .is_some_and(|c| c.domain_id == QUARANTINE_DOMAIN),
                Iommu::AmdVi(amd) => amd
                    .device_entry(&mut self.mem, dev)
                    .is_some_and(|e| e.domain_id() == QUARANTINE_DOMAIN),
            });
        }
        // Read back what the unit now walks for it (and for the ID its
        // requests carry, if that was blocked too).
        Ok(match &mut unit.iommu {
            Iommu::Vtd { vtd, .. } => vtd.context(mem, dev).is_none(),
            Iommu::AmdVi(amd) => amd.blocks(mem, dev) && amd.blocks(mem, cleared[1]),
        })
    }

    fn remove_domain(&mut self, dom: u16) {
        let keys: Vec<(usize, u16)> = self
            .domains
            .keys()
            .filter(|k| k.1 == dom)
            .copied()
            .collect();
        for k in keys {
            let Some(unit) = self.units.get_mut(k.0) else {
                continue;
            };
            let Some(t) = self.domains.remove(&k) else {
                continue;
            };
            let mem = &mut self.mem;
            match (&mut unit.iommu, t) {
                (Iommu::Vtd { vtd, .. }, Tables::Vtd(t)) => {
                    // The tables go even if the flush failed: nothing
                    // points at them any more.
                    let _ = vtd.flush_domain(mem, dom);
                    t.destroy(mem);
                }
                (Iommu::AmdVi(amd), Tables::AmdVi(t)) => {
                    let _ = amd.flush_domain(mem, dom);
                    t.destroy(mem);
                }
                // Cannot happen: tables are made for their unit's kind.
                // Kept rather than freed, as a unit might still walk them.
                (_, t) => {
                    self.domains.insert(k, t);
                }
            }
        }
    }
}

impl<R: VtdRegs + AmdViRegs, M: TableMemory> InterruptRemapping for IommuSet<R, M> {
    fn remaps(&self, dev: Sbdf) -> bool {
        self.unit_for(dev).is_some_and(Unit::remaps)
    }

    fn route_msi(
        &mut self,
        dev: Sbdf,
        vector: u8,
        dest_apic: u32,
    ) -> Result<Option<RemappedMsi>, IommuError> {
        let Some(ui) = self.unit_index(dev) else {
            return Ok(None);
        };
        let mem = &mut self.mem;
        let Some(unit) = self.units.get_mut(ui) else {
            return Ok(None);
        };
        match &mut unit.iommu {
            Iommu::Vtd { vtd, ir } => {
                let Some(table) = ir.as_mut() else {
                    return Ok(None);
                };
                let entry = Irte {
                    vector,
                    dest_apic_id: dest_apic,
                    source: dev,
                };
                let handle = vtd_route(vtd, table, &mut unit.ir_used, mem, entry, false)?;
                let (address, data) = remappable_msi(handle);
                Ok(Some(RemappedMsi {
                    handle,
                    address,
                    data,
                }))
            }
            Iommu::AmdVi(amd) => {
                // The entry goes in the table of the ID its messages carry.
                let rid = unit.scope.requester(dev);
                let used = match unit.attached.iter().any(|a| a.0 == dev) {
                    true => unit.irqs.get_mut(&rid),
                    false => None,
                };
                let Some(used) = used else {
                    return Ok(None);
                };
                let handle = free_entry(used)?;
                let dest = xapic_dest(dest_apic)?;
                let (address, data) = amd
                    .map_irq(mem, rid, handle, vector, dest)
                    .map_err(|e| IommuError::Unit(detail(e)))?;
                if let Some(u) = used.get_mut(usize::from(handle)) {
                    *u = true;
                }
                Ok(Some(RemappedMsi {
                    handle,
                    address,
                    data,
                }))
            }
        }
    }

    fn unroute_msi(&mut self, dev: Sbdf, handle: u16) {
        let Some(ui) = self.unit_index(dev) else {
            return;
        };
        let mem = &mut self.mem;
        let Some(unit) = self.units.get_mut(ui) else {
            return;
        };
        match &mut unit.iommu {
            Iommu::Vtd { vtd, ir } => {
                if let Some(table) = ir.as_mut() {
                    let _ = table.clear(mem, handle);
                    let _ = vtd.invalidate_irte(mem, handle);
                    release(&mut unit.ir_used, handle);
                }
            }
            Iommu::AmdVi(amd) => {
                let rid = unit.scope.requester(dev);
                if !unit.attached.iter().any(|a| a.0 == dev) {
                    return;
                }
                let _ = amd.unmap_irq(mem, rid, handle);
                if let Some(used) = unit.irqs.get_mut(&rid) {
                    release(used, handle);
                }
            }
        }
    }

    fn route_ioapic(
        &mut self,
        ioapic_id: u8,
        vector: u8,
        dest_apic: u32,
    ) -> Result<Option<RemappedIoapic>, IommuError> {
        let mem = &mut self.mem;
        let Some((unit, sid)) = self.units.iter_mut().find_map(|u| {
            let sid = u.scope.ioapics.iter().find(|&&(id, _)| id == ioapic_id)?.1;
            Some((u, sid))
        }) else {
            // Not in any unit's scope (DMAR device scope, IVRS special
            // entry): a unit that remaps interrupts would block its
            // messages, whatever is programmed.
            if self.units.iter().any(Unit::remaps) {
                return Err(IommuError::Unit(detail(format_args!(
                    "I/O APIC {ioapic_id} is in no IOMMU's scope (DMAR, IVRS), so its interrupts are blocked"
                ))));
            }
            return Ok(None);
        };
        match &mut unit.iommu {
            Iommu::Vtd {
                vtd,
                ir: Some(table),
            } => {
                let entry = Irte {
                    vector,
                    dest_apic_id: dest_apic,
                    source: sid,
                };
                let handle = vtd_route(vtd, table, &mut unit.ir_used, mem, entry, true)?;
                Ok(Some(RemappedIoapic {
                    handle,
                    remappable_format: true,
                }))
            }
            Iommu::Vtd { ir: None, .. } => Ok(None),
            Iommu::AmdVi(amd) => {
                // The I/O APIC's table is made on its first route; until
                // then its device id, like every other, has its
                // interrupts blocked.
                let used = match unit.irqs.entry(sid) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        amd.set_irq_table(mem, sid, AMD_IRQS)
                            .map_err(|e| IommuError::Unit(detail(e)))?;
                        e.insert(alloc::vec![false; usize::from(AMD_IRQS)])
                    }
                };
                // The index is the vector (see RemappedIoapic).
                let handle = u16::from(vector);
                if used.get(usize::from(handle)).copied().unwrap_or(true) {
                    return Err(IommuError::Unit(detail(format_args!(
                        "vector {vector:#x} already has an entry of I/O APIC {ioapic_id}"
                    ))));
                }
                let dest = xapic_dest(dest_apic)?;
                amd.map_irq(mem, sid, handle, vector, dest)
                    .map_err(|e| IommuError::Unit(detail(e)))?;
                if let Some(u) = used.get_mut(usize::from(handle)) {
                    *u = true;
                }
                Ok(Some(RemappedIoapic {
                    handle,
                    remappable_format: false,
                }))
            }
        }
    }

    fn unroute_ioapic(&mut self, ioapic_id: u8, handle: u16) {
        let mem = &mut self.mem;
        let Some(unit) = self
            .units
            .iter_mut()
            .find(|u| u.scope.ioapics.iter().any(|&(id, _)| id == ioapic_id))
        else {
            return;
        };
        let sid = unit
            .scope
            .ioapics
            .iter()
            .find(|&&(id, _)| id == ioapic_id)
            .map(|&(_, sid)| sid);
        match &mut unit.iommu {
            Iommu::Vtd {
                vtd,
                ir: Some(table),
            } => {
                let _ = table.clear(mem, handle);
                let _ = vtd.invalidate_irte(mem, handle);
                release(&mut unit.ir_used, handle);
            }
            Iommu::Vtd { ir: None, .. } => {}
            Iommu::AmdVi(amd) => {
                let Some(sid) = sid else { return };
                let _ = amd.unmap_irq(mem, sid, handle);
                if let Some(used) = unit.irqs.get_mut(&sid) {
                    release(used, handle);
                }
            }
        }
    }
}
