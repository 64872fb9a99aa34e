//! IOMMUs: the units the firmware describes (VT-d from DMAR, AMD-Vi from
//! IVRS), driven by `platform::iommu`, so that a function assigned to a
//! guest reaches only that guest's RAM (I/O virtual address = guest-physical
//! address), every other function's DMA is blocked, and every interrupt a
//! passed-through function sends goes through a remapping entry that only
//! that function may use.
//!
//! At boot every unit is set up with nothing attached and turned on: from
//! then on a function without an owner (every hidden function, and
//! everything the hypervisor does not use) cannot DMA. A domain's functions
//! share one set of tables per unit mapping exactly its RAM; releasing a
//! function blocks it again (and flushes) before the domain's memory is
//! freed.

use crate::virt::guest_mem::Chunk;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use platform::acpi::{Dmar, Ivrs, ScopeType};
use platform::iommu::amdvi::{AmdVi, AmdViRegs, ContiguousMemory, IoTables};
use platform::iommu::vtd::{
    remappable_msi, ApicMode, IrTable, Irte, SlTables, Vtd, VtdRegs, IR_ENTRIES,
};
use platform::iommu::TableMemory;
use platform::pci::PciFunction;
use spin::Mutex;
use vmm_glue::Sbdf;

/// One unit's registers, reached through the hypervisor's uncached
/// identity map of the space below 4 GiB.
#[derive(Debug)]
struct MmioRegs {
    base: u64,
}

impl MmioRegs {
    fn r32(&mut self, off: u32) -> u32 {
        crate::arch::phys::mmio_read(self.base + u64::from(off), 4).unwrap_or(u64::MAX) as u32
    }
    fn w32(&mut self, off: u32, v: u32) {
        crate::arch::phys::mmio_write(self.base + u64::from(off), 4, u64::from(v));
    }
    fn r64(&mut self, off: u32) -> u64 {
        crate::arch::phys::mmio_read(self.base + u64::from(off), 8).unwrap_or(u64::MAX)
    }
    fn w64(&mut self, off: u32, v: u64) {
        crate::arch::phys::mmio_write(self.base + u64::from(off), 8, v);
    }
}

impl AmdViRegs for MmioRegs {
    fn read32(&mut self, off: u32) -> u32 {
        self.r32(off)
    }
    fn write32(&mut self, off: u32, v: u32) {
        self.w32(off, v)
    }
    fn read64(&mut self, off: u32) -> u64 {
        self.r64(off)
    }
    fn write64(&mut self, off: u32, v: u64) {
        self.w64(off, v)
    }
}

impl VtdRegs for MmioRegs {
    fn read32(&mut self, off: u32) -> u32 {
        crate::arch::phys::mmio_read(self.base + u64::from(off), 4).unwrap_or(u64::MAX) as u32
    }

    fn write32(&mut self, off: u32, v: u32) {
        crate::arch::phys::mmio_write(self.base + u64::from(off), 4, u64::from(v));
    }

    fn read64(&mut self, off: u32) -> u64 {
        crate::arch::phys::mmio_read(self.base + u64::from(off), 8).unwrap_or(u64::MAX)
    }

    fn write64(&mut self, off: u32, v: u64) {
        crate::arch::phys::mmio_write(self.base + u64::from(off), 8, v);
    }
}

/// Table frames from the hypervisor's frame allocator.
#[derive(Debug)]
struct HostFrames;

impl TableMemory for HostFrames {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        let f = crate::mem::alloc_frames(1, 4096)?;
        crate::arch::phys::zero_owned(f, 4096);
        Some(f)
    }

    fn free(&mut self, hpa: u64) {
        crate::arch::phys::zero_owned(hpa, 4096);
        crate::mem::free_frames(hpa, 1);
    }

    fn read64(&mut self, hpa: u64) -> u64 {
        crate::arch::phys::read_owned_u64(hpa)
    }

    fn write64(&mut self, hpa: u64, v: u64) {
        crate::arch::phys::write_owned_u64(hpa, v);
    }
}

impl ContiguousMemory for HostFrames {
    fn alloc_zeroed_contiguous(&mut self, frames: usize) -> Option<u64> {
        let f = crate::mem::alloc_frames(frames as u64, 4096)?;
        crate::arch::phys::zero_owned(f, frames as u64 * 4096);
        Some(f)
    }

    fn free_contiguous(&mut self, hpa: u64, frames: usize) {
        crate::arch::phys::zero_owned(hpa, frames as u64 * 4096);
        crate::mem::free_frames(hpa, frames as u64);
    }
}

/// A unit's driver and its interrupt-remapping bookkeeping.
#[derive(Debug)]
enum Driver {
    /// VT-d, with its one remapping table (when remapping is on) and
    /// which entries are in use.
    Vtd {
        vtd: Vtd<MmioRegs>,
        ir: Option<(IrTable, Vec<bool>)>,
    },
    /// AMD-Vi, with each attached function's remapping entries in use.
    AmdVi {
        amd: AmdVi<MmioRegs>,
        irqs: BTreeMap<Sbdf, Vec<bool>>,
    },
}

/// Remapping entries per function on AMD-Vi (MSI plus up to 128 MSI-X
/// vectors fit).
const AMD_IRQS: u16 = 256;

/// A domain's tables on one unit.
#[derive(Debug)]
enum Tables {
    Vtd(SlTables),
    AmdVi(IoTables),
}

/// A unit and the functions it translates for.
#[derive(Debug)]
struct Unit {
    driver: Driver,
    /// "VT-d" or "AMD-Vi", for the log.
    kind: &'static str,
    base: u64,
    segment: u16,
    include_all: bool,
    /// Functions its device scopes name (endpoints, and everything below a
    /// named bridge; AMD-Vi: its device ID ranges).
    scope: Vec<Sbdf>,
    /// The I/O APICs under it (VT-d scopes): APIC ID and the requester ID
    /// their interrupts carry.
    ioapics: Vec<(u8, Sbdf)>,
}

/// The units and each domain's tables, by (unit, domain).
#[derive(Debug, Default)]
struct Iommus {
    units: Vec<Unit>,
    domains: BTreeMap<(usize, u16), Tables>,
}

static IOMMU: Mutex<Option<Iommus>> = Mutex::new(None);

/// The functions a scope names, following bridges through `funcs`.
fn scope_functions(
    seg: u16,
    start_bus: u8,
    path: &[(u8, u8)],
    sub: bool,
    funcs: &[PciFunction],
) -> Vec<Sbdf> {
    let mut bus = start_bus;
    let mut at = None;
    for (i, &(dev, func)) in path.iter().enumerate() {
        let Some(s) = Sbdf::new(seg, bus, dev, func) else {
            return Vec::new();
        };
        at = Some(s);
        if i + 1 < path.len() {
            match funcs.iter().find(|f| f.sbdf == s).and_then(|f| f.bridge) {
                Some(b) => bus = b.secondary,
                None => return Vec::new(),
            }
        }
    }
    let Some(at) = at else { return Vec::new() };
    let mut out = alloc::vec![at];
    if sub {
        if let Some(b) = funcs.iter().find(|f| f.sbdf == at).and_then(|f| f.bridge) {
            out.extend(
                funcs
                    .iter()
                    .filter(|f| {
                        f.sbdf.seg == seg && (b.secondary..=b.subordinate).contains(&f.sbdf.bus)
                    })
                    .map(|f| f.sbdf),
            );
        }
    }
    out
}

/// Brings up every IOMMU unit the firmware describes (DMAR's VT-d units,
/// IVRS's AMD-Vi units) and turns it on; units that fail are reported and
/// left alone.
pub fn init(dmar: Option<&Dmar>, ivrs: Option<&Ivrs>, funcs: &[PciFunction]) {
    let mut units = Vec::new();
    if let Some(dmar) = dmar {
        init_vtd(dmar, funcs, &mut units);
    }
    if let Some(ivrs) = ivrs {
        init_amdvi(ivrs, funcs, &mut units);
    }
    *IOMMU.lock() = Some(Iommus {
        units,
        domains: BTreeMap::new(),
    });
}

fn init_vtd(dmar: &Dmar, funcs: &[PciFunction], units: &mut Vec<Unit>) {
    for (i, d) in dmar.drhds().enumerate() {
        let mut scope = Vec::new();
        let mut ioapics = Vec::new();
        for s in &d.scopes {
            if s.scope_type == ScopeType::IoApic {
                if let Some(p) = s.path.first() {
                    if let Some(sid) = Sbdf::new(d.segment, s.start_bus, p.dev, p.func) {
                        ioapics.push((s.enumeration_id, sid));
                    }
                }
                continue;
            }
            let sub = match s.scope_type {
                ScopeType::Endpoint => false,
                ScopeType::SubHierarchy => true,
                _ => continue,
            };
            let path: Vec<(u8, u8)> = s.path.iter().map(|p| (p.dev, p.func)).collect();
            scope.extend(scope_functions(d.segment, s.start_bus, &path, sub, funcs));
        }
        let regs = MmioRegs {
            base: d.register_base,
        };
        let mut vtd = match Vtd::init(regs, &mut HostFrames, d.segment) {
            Ok(v) => v,
            Err(e) => {
                log::error!(
                    "iommu: VT-d unit {i} at {:#x}: cannot be set up: {e}; devices under it get no DMA isolation",
                    d.register_base
                );
                continue;
            }
        };
        if let Err(e) = vtd.enable_translation() {
            log::error!(
                "iommu: VT-d unit {i} at {:#x}: translation cannot be turned on: {e}",
                d.register_base
            );
            continue;
        }
        let ir = enable_remapping(i, &mut vtd);
        let cfg = vtd.sl_config();
        log::info!(
            "iommu: VT-d unit {i} at {:#x}: DMA remapping on ({}-level tables, 2 MiB pages {}, {} functions in scope{}); functions without an owner are blocked",
            d.register_base,
            cfg.levels.count(),
            if cfg.superpage_2m { "yes" } else { "no" },
            scope.len(),
            if d.include_pci_all() { " + all others" } else { "" },
        );
        units.push(Unit {
            driver: Driver::Vtd { vtd, ir },
            kind: "VT-d",
            base: d.register_base,
            segment: d.segment,
            include_all: d.include_pci_all(),
            scope,
            ioapics,
        });
    }
}

fn init_amdvi(ivrs: &Ivrs, funcs: &[PciFunction], units: &mut Vec<Unit>) {
    for (i, h) in ivrs.ivhds().enumerate() {
        let ranges = h.device_ranges();
        let include_all = ranges.iter().any(|r| r.first == 0 && r.last == 0xffff);
        let scope: Vec<Sbdf> = funcs
            .iter()
            .filter(|f| f.sbdf.seg == h.segment)
            .filter(|f| {
                ranges
                    .iter()
                    .any(|r| (r.first..=r.last).contains(&f.sbdf.rid()))
            })
            .map(|f| f.sbdf)
            .collect();
        let max_bus = funcs
            .iter()
            .filter(|f| f.sbdf.seg == h.segment)
            .map(|f| {
                f.bridge
                    .map_or(f.sbdf.bus, |b| b.subordinate.max(f.sbdf.bus))
            })
            .max()
            .unwrap_or(0);
        let regs = MmioRegs {
            base: h.base_address,
        };
        let amd = match AmdVi::init(regs, &mut HostFrames, h.segment, max_bus) {
            Ok(a) => a,
            Err(e) => {
                log::error!(
                    "iommu: AMD-Vi unit {i} at {:#x}: cannot be set up: {e}; devices under it get no DMA isolation",
                    h.base_address
                );
                continue;
            }
        };
        log::info!(
            "iommu: AMD-Vi unit {i} at {:#x}: DMA remapping on (device table for buses 00-{max_bus:02x}, {} functions in scope); functions without an owner are blocked",
            h.base_address,
            scope.len(),
        );
        log::info!(
            "iommu: AMD-Vi unit {i}: interrupt remapping per function ({AMD_IRQS} entries each, given at assignment)"
        );
        units.push(Unit {
            driver: Driver::AmdVi {
                amd,
                irqs: BTreeMap::new(),
            },
            kind: "AMD-Vi",
            base: h.base_address,
            segment: h.segment,
            include_all,
            scope,
            ioapics: Vec::new(),
        });
    }
}

/// Turns interrupt remapping on for unit `i` when it can: a table of
/// [`IR_ENTRIES`] entries, every entry checking the full requester ID, and
/// compatibility-format interrupts blocked (a device writing a message of
/// its own to 0xFEEx_xxxx is stopped and the fault recorded).
fn enable_remapping(i: usize, vtd: &mut Vtd<MmioRegs>) -> Option<(IrTable, Vec<bool>)> {
    if !vtd.caps().interrupt_remapping() {
        log::warn!("iommu: VT-d unit {i}: no interrupt remapping (ECAP.IR clear)");
        return None;
    }
    let coherent = vtd.caps().coherent();
    let table = match IrTable::new(&mut HostFrames, ApicMode::Xapic, coherent) {
        Ok(t) => t,
        Err(e) => {
            log::error!("iommu: VT-d unit {i}: no interrupt remapping table: {e}");
            return None;
        }
    };
    if let Err(e) = vtd.enable_interrupt_remapping(&mut HostFrames, &table) {
        log::error!("iommu: VT-d unit {i}: interrupt remapping cannot be turned on: {e}");
        table.destroy(&mut HostFrames);
        return None;
    }
    log::info!(
        "iommu: VT-d unit {i}: interrupt remapping on ({} entries, requester ID checked, compatibility-format interrupts blocked)",
        IR_ENTRIES
    );
    Some((table, alloc::vec![false; usize::from(IR_ENTRIES)]))
}

impl Iommus {
    /// The index of the unit that translates for `sbdf`: the one whose
    /// scope names it, else the segment's catch-all unit.
    fn unit_index(&self, sbdf: Sbdf) -> Option<usize> {
        self.units
            .iter()
            .position(|u| u.segment == sbdf.seg && u.scope.contains(&sbdf))
            .or_else(|| {
                self.units
                    .iter()
                    .position(|u| u.segment == sbdf.seg && u.include_all)
            })
    }

    fn unit_for(&mut self, sbdf: Sbdf) -> Option<&mut Unit> {
        let i = self.unit_index(sbdf)?;
        self.units.get_mut(i)
    }
}

/// Whether `sbdf`'s interrupts go through an interrupt remapping table.
pub fn remaps(sbdf: Sbdf) -> bool {
    IOMMU
        .lock()
        .as_mut()
        .and_then(|m| m.unit_for(sbdf))
        .is_some_and(|u| match &u.driver {
            Driver::Vtd { ir, .. } => ir.is_some(),
            Driver::AmdVi { .. } => true,
        })
}

/// An interrupt-remapping entry sending `vector` to the boot CPU, usable
/// only by `sbdf`: the entry's index and the message the function must
/// send. `None` when `sbdf` is not remapped; an error when the table is
/// full or the unit refused.
pub fn route_msi(sbdf: Sbdf, vector: u8) -> Option<Result<(u16, u64, u32), String>> {
    let mut guard = IOMMU.lock();
    let u = guard.as_mut()?.unit_for(sbdf)?;
    match &mut u.driver {
        Driver::Vtd { vtd, ir } => {
            let (table, used) = ir.as_mut()?;
            let Some(idx) = used.iter().position(|u| !u) else {
                return Some(Err(String::from("the interrupt remapping table is full")));
            };
            let idx16 = idx as u16;
            let entry = Irte {
                vector,
                dest_apic_id: 0,
                source: sbdf,
            };
            let r = table
                .set(&mut HostFrames, idx16, entry)
                .and_then(|()| vtd.invalidate_irte(&mut HostFrames, idx16));
            Some(match r {
                Ok(()) => {
                    used[idx] = true;
                    let (address, data) = remappable_msi(idx16);
                    Ok((idx16, address, data))
                }
                Err(e) => Err(alloc::format!("{e}")),
            })
        }
        Driver::AmdVi { amd, irqs } => {
            let used = irqs.get_mut(&sbdf)?;
            let Some(idx) = used.iter().position(|u| !u) else {
                return Some(Err(String::from("the function's remapping table is full")));
            };
            let idx16 = idx as u16;
            Some(match amd.map_irq(&mut HostFrames, sbdf, idx16, vector, 0) {
                Ok((address, data)) => {
                    used[idx] = true;
                    Ok((idx16, address, data))
                }
                Err(e) => Err(alloc::format!("{e}")),
            })
        }
    }
}

/// A level-triggered remapping entry for input of I/O APIC `ioapic_id`
/// (a PCI INTx line) sending `vector` to the boot CPU: its handle, for a
/// remappable redirection entry. `None` when that I/O APIC's interrupts
/// are not remapped (no VT-d unit with remapping lists it).
pub fn route_ioapic(ioapic_id: u8, vector: u8) -> Option<Result<u16, String>> {
    let mut guard = IOMMU.lock();
    let m = guard.as_mut()?;
    let u = m
        .units
        .iter_mut()
        .find(|u| u.ioapics.iter().any(|&(id, _)| id == ioapic_id))?;
    let sid = u.ioapics.iter().find(|&&(id, _)| id == ioapic_id)?.1;
    let Driver::Vtd { vtd, ir } = &mut u.driver else {
        return None;
    };
    let (table, used) = ir.as_mut()?;
    let Some(idx) = used.iter().position(|u| !u) else {
        return Some(Err(String::from("the interrupt remapping table is full")));
    };
    let idx16 = idx as u16;
    let entry = Irte {
        vector,
        dest_apic_id: 0,
        source: sid,
    };
    let r = table
        .set_level(&mut HostFrames, idx16, entry)
        .and_then(|()| vtd.invalidate_irte(&mut HostFrames, idx16));
    Some(match r {
        Ok(()) => {
            used[idx] = true;
            Ok(idx16)
        }
        Err(e) => Err(alloc::format!("{e}")),
    })
}

/// Frees entry `handle` that [`route_ioapic`] gave I/O APIC `ioapic_id`.
pub fn unroute_ioapic(ioapic_id: u8, handle: u16) {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return };
    let Some(u) = m
        .units
        .iter_mut()
        .find(|u| u.ioapics.iter().any(|&(id, _)| id == ioapic_id))
    else {
        return;
    };
    if let Driver::Vtd {
        vtd,
        ir: Some((table, used)),
    } = &mut u.driver
    {
        let _ = table.clear(&mut HostFrames, handle);
        let _ = vtd.invalidate_irte(&mut HostFrames, handle);
        if let Some(u) = used.get_mut(usize::from(handle)) {
            *u = false;
        }
    }
}

/// Frees entry `handle` that [`route_msi`] gave `sbdf`.
pub fn unroute_msi(sbdf: Sbdf, handle: u16) {
    let mut guard = IOMMU.lock();
    let Some(u) = guard.as_mut().and_then(|m| m.unit_for(sbdf)) else {
        return;
    };
    match &mut u.driver {
        Driver::Vtd { vtd, ir } => {
            if let Some((table, used)) = ir.as_mut() {
                let _ = table.clear(&mut HostFrames, handle);
                let _ = vtd.invalidate_irte(&mut HostFrames, handle);
                if let Some(u) = used.get_mut(usize::from(handle)) {
                    *u = false;
                }
            }
        }
        Driver::AmdVi { amd, irqs } => {
            let _ = amd.unmap_irq(&mut HostFrames, sbdf, handle);
            if let Some(u) = irqs
                .get_mut(&sbdf)
                .and_then(|v| v.get_mut(usize::from(handle)))
            {
                *u = false;
            }
        }
    }
}

/// Whether a unit translates `sbdf`'s DMA.
pub fn covers(sbdf: Sbdf) -> bool {
    IOMMU
        .lock()
        .as_mut()
        .is_some_and(|m| m.unit_index(sbdf).is_some())
}

/// Tables for domain `dom` on unit `u`, mapping exactly `ram`.
fn new_tables(u: &Unit, ram: &[Chunk]) -> Result<Tables, String> {
    let len = crate::virt::guest_mem::CHUNK;
    match &u.driver {
        Driver::Vtd { vtd, .. } => {
            let mut t = SlTables::new(&mut HostFrames, vtd.sl_config())
                .map_err(|e| alloc::format!("{e}"))?;
            for c in ram {
                if let Err(e) = t.map(&mut HostFrames, c.gpa, c.hpa, len, true) {
                    t.destroy(&mut HostFrames);
                    return Err(alloc::format!("mapping its RAM: {e}"));
                }
            }
            Ok(Tables::Vtd(t))
        }
        Driver::AmdVi { amd, .. } => {
            let mut t = IoTables::new(&mut HostFrames, amd.io_config())
                .map_err(|e| alloc::format!("{e}"))?;
            for c in ram {
                if let Err(e) = t.map(&mut HostFrames, c.gpa, c.hpa, len, true) {
                    t.destroy(&mut HostFrames);
                    return Err(alloc::format!("mapping its RAM: {e}"));
                }
            }
            Ok(Tables::AmdVi(t))
        }
    }
}

/// Lets `sbdf` DMA into domain `dom`'s RAM (`ram`), and nowhere else; on
/// AMD-Vi it also gets its interrupt remapping table (every interrupt
/// blocked until one is routed).
pub fn attach(dom: u16, ram: &[Chunk], sbdf: Sbdf) -> Result<(), String> {
    let mut guard = IOMMU.lock();
    let m = guard.as_mut().ok_or("no IOMMU")?;
    let ui = m
        .unit_index(sbdf)
        .ok_or("no IOMMU unit translates for it")?;
    if let alloc::collections::btree_map::Entry::Vacant(slot) = m.domains.entry((ui, dom)) {
        slot.insert(new_tables(&m.units[ui], ram)?);
    }
    let Iommus { units, domains } = m;
    let tables = domains.get(&(ui, dom)).ok_or("no tables")?;
    let unit = &mut units[ui];
    let r = match (&mut unit.driver, tables) {
        (Driver::Vtd { vtd, .. }, Tables::Vtd(t)) => vtd
            .attach(&mut HostFrames, sbdf, dom, t)
            .and_then(|()| vtd.sync_after_map(&mut HostFrames, dom))
            .map_err(|e| alloc::format!("{e}")),
        (Driver::AmdVi { amd, irqs }, Tables::AmdVi(t)) => amd
            .set_irq_table(&mut HostFrames, sbdf, AMD_IRQS)
            .and_then(|()| amd.attach(&mut HostFrames, sbdf, dom, t))
            .and_then(|()| amd.sync_after_map(&mut HostFrames, dom))
            .map(|()| {
                irqs.insert(sbdf, alloc::vec![false; usize::from(AMD_IRQS)]);
            })
            .map_err(|e| alloc::format!("{e}")),
        _ => Err(String::from("the unit and the tables disagree")),
    };
    r?;
    log::info!(
        "iommu: {sbdf} translates through dom{dom}'s tables ({} unit at {:#x}): DMA reaches its RAM only",
        unit.kind,
        unit.base
    );
    Ok(())
}

/// Blocks `sbdf`'s DMA (and, on AMD-Vi, its interrupts) again, flushed.
pub fn detach(sbdf: Sbdf) {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return };
    if let Some(u) = m.unit_for(sbdf) {
        let r = match &mut u.driver {
            Driver::Vtd { vtd, .. } => vtd
                .detach(&mut HostFrames, sbdf)
                .map_err(|e| alloc::format!("{e}")),
            Driver::AmdVi { amd, irqs } => {
                irqs.remove(&sbdf);
                amd.block_irqs(&mut HostFrames, sbdf)
                    .and_then(|()| amd.detach(&mut HostFrames, sbdf))
                    .map_err(|e| alloc::format!("{e}"))
            }
        };
        // Read back what the unit now walks for it.
        let blocked = match &mut u.driver {
            Driver::Vtd { vtd, .. } => vtd.context(&mut HostFrames, sbdf).is_none(),
            Driver::AmdVi { amd, .. } => amd
                .device_entry(&mut HostFrames, sbdf)
                .is_some_and(|e| !e.allows_dma() && e.interrupt_table().is_none()),
        };
        match (r, blocked) {
            (Ok(()), true) => log::info!(
                "iommu: {sbdf} blocked again (no owner: no DMA, no interrupts; its {} entry read back)",
                if matches!(u.driver, Driver::Vtd { .. }) {
                    "context"
                } else {
                    "device table"
                }
            ),
            (Ok(()), false) => {
                log::error!("iommu: {sbdf}: its entry still lets it through after detaching")
            }
            (Err(e), _) => log::error!("iommu: {sbdf}: cannot be blocked: {e}"),
        }
    }
}

/// Frees domain `dom`'s tables; its functions must be detached already.
pub fn remove_domain(dom: u16) {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return };
    let keys: Vec<(usize, u16)> = m.domains.keys().filter(|k| k.1 == dom).copied().collect();
    for k in keys {
        let Some(t) = m.domains.remove(&k) else {
            continue;
        };
        let Some(u) = m.units.get_mut(k.0) else {
            continue;
        };
        match (&mut u.driver, t) {
            (Driver::Vtd { vtd, .. }, Tables::Vtd(t)) => {
                let _ = vtd.flush_domain(&mut HostFrames, dom);
                t.destroy(&mut HostFrames);
            }
            (Driver::AmdVi { amd, .. }, Tables::AmdVi(t)) => {
                let _ = amd.flush_domain(&mut HostFrames, dom);
                t.destroy(&mut HostFrames);
            }
            // Cannot happen: tables are made for their unit's kind. Kept
            // rather than freed, as a unit might still walk them.
            (_, _) => {}
        }
    }
}

/// Logs (and clears) the faults and events the units recorded; returns
/// how many.
pub fn poll_faults() -> usize {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return 0 };
    let mut n = 0;
    for u in m.units.iter_mut() {
        match &mut u.driver {
            Driver::Vtd { vtd, .. } => {
                for f in vtd.faults() {
                    log::warn!("iommu: blocked: {f}");
                    n += 1;
                }
            }
            Driver::AmdVi { amd, .. } => {
                for e in amd.events(&mut HostFrames) {
                    log::warn!("iommu: blocked: {e}");
                    n += 1;
                }
            }
        }
    }
    n
}
