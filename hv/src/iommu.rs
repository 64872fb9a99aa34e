//! DMA remapping: the IOMMU units the firmware describes (VT-d from DMAR),
//! driven by `platform::iommu`, so that a function assigned to a guest
//! reaches only that guest's RAM (I/O virtual address = guest-physical
//! address) and every other function's DMA is blocked.
//!
//! At boot every unit gets an empty root table and translation is turned
//! on: from then on a function without a context entry (every hidden
//! function, and everything the hypervisor does not use) cannot DMA. A
//! domain's functions share one set of second-level tables mapping exactly
//! its RAM; releasing a function clears its context entry (and flushes)
//! before the domain's memory is freed.

use crate::virt::guest_mem::Chunk;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use platform::acpi::{Dmar, ScopeType};
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

/// A unit and the functions it translates for.
#[derive(Debug)]
struct Unit {
    vtd: Vtd<MmioRegs>,
    base: u64,
    segment: u16,
    include_all: bool,
    /// Functions its device scopes name (endpoints, and everything below a
    /// named bridge).
    scope: Vec<Sbdf>,
    /// Its interrupt remapping table, when remapping is on, and which
    /// entries are in use.
    ir: Option<(IrTable, Vec<bool>)>,
}

/// The units and each domain's tables.
#[derive(Debug, Default)]
struct Iommus {
    units: Vec<Unit>,
    domains: BTreeMap<u16, SlTables>,
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

/// Brings up every VT-d unit of `dmar` and turns translation on; units
/// that fail are reported and left alone.
pub fn init(dmar: Option<&Dmar>, funcs: &[PciFunction]) {
    let Some(dmar) = dmar else {
        return;
    };
    let mut units = Vec::new();
    for (i, d) in dmar.drhds().enumerate() {
        let mut scope = Vec::new();
        for s in &d.scopes {
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
            vtd,
            base: d.register_base,
            segment: d.segment,
            include_all: d.include_pci_all(),
            scope,
            ir,
        });
    }
    *IOMMU.lock() = Some(Iommus {
        units,
        domains: BTreeMap::new(),
    });
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
    /// The unit that translates for `sbdf`: the one whose scope names it,
    /// else the segment's catch-all unit.
    fn unit_for(&mut self, sbdf: Sbdf) -> Option<&mut Unit> {
        let i = self
            .units
            .iter()
            .position(|u| u.segment == sbdf.seg && u.scope.contains(&sbdf))
            .or_else(|| {
                self.units
                    .iter()
                    .position(|u| u.segment == sbdf.seg && u.include_all)
            })?;
        self.units.get_mut(i)
    }
}

/// Whether `sbdf`'s interrupts go through an interrupt remapping table.
pub fn remaps(sbdf: Sbdf) -> bool {
    IOMMU
        .lock()
        .as_mut()
        .and_then(|m| m.unit_for(sbdf))
        .is_some_and(|u| u.ir.is_some())
}

/// An interrupt-remapping entry sending `vector` to the boot CPU, usable
/// only by `sbdf`: the entry's index and the message the function must
/// send. `None` when `sbdf` is not remapped; an error when the table is
/// full or the unit refused.
pub fn route_msi(sbdf: Sbdf, vector: u8) -> Option<Result<(u16, u64, u32), alloc::string::String>> {
    let mut guard = IOMMU.lock();
    let u = guard.as_mut()?.unit_for(sbdf)?;
    let Unit { vtd, ir, .. } = u;
    let (table, used) = ir.as_mut()?;
    let Some(idx) = used.iter().position(|u| !u) else {
        return Some(Err(alloc::string::String::from(
            "the interrupt remapping table is full",
        )));
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

/// Frees entry `handle` that [`route_msi`] gave `sbdf`.
pub fn unroute_msi(sbdf: Sbdf, handle: u16) {
    let mut guard = IOMMU.lock();
    let Some(u) = guard.as_mut().and_then(|m| m.unit_for(sbdf)) else {
        return;
    };
    let Unit { vtd, ir, .. } = u;
    if let Some((table, used)) = ir.as_mut() {
        let _ = table.clear(&mut HostFrames, handle);
        let _ = vtd.invalidate_irte(&mut HostFrames, handle);
        if let Some(u) = used.get_mut(usize::from(handle)) {
            *u = false;
        }
    }
}

/// Whether a unit translates `sbdf`'s DMA.
pub fn covers(sbdf: Sbdf) -> bool {
    IOMMU
        .lock()
        .as_mut()
        .is_some_and(|m| m.unit_for(sbdf).is_some())
}

/// Lets `sbdf` DMA into domain `dom`'s RAM (`ram`), and nowhere else.
pub fn attach(dom: u16, ram: &[Chunk], sbdf: Sbdf) -> Result<(), alloc::string::String> {
    let mut guard = IOMMU.lock();
    let m = guard.as_mut().ok_or("no IOMMU")?;
    let cfg = m
        .unit_for(sbdf)
        .map(|u| u.vtd.sl_config())
        .ok_or("no IOMMU unit translates for it")?;
    if let alloc::collections::btree_map::Entry::Vacant(slot) = m.domains.entry(dom) {
        let mut t = SlTables::new(&mut HostFrames, cfg).map_err(|e| alloc::format!("{e}"))?;
        for c in ram {
            if let Err(e) = t.map(
                &mut HostFrames,
                c.gpa,
                c.hpa,
                crate::virt::guest_mem::CHUNK,
                true,
            ) {
                t.destroy(&mut HostFrames);
                return Err(alloc::format!("mapping its RAM: {e}"));
            }
        }
        slot.insert(t);
    }
    let Iommus { units, domains } = m;
    let tables = domains.get(&dom).ok_or("no tables")?;
    let unit = units
        .iter_mut()
        .find(|u| u.segment == sbdf.seg && (u.scope.contains(&sbdf) || u.include_all))
        .ok_or("no IOMMU unit translates for it")?;
    unit.vtd
        .attach(&mut HostFrames, sbdf, dom, tables)
        .map_err(|e| alloc::format!("{e}"))?;
    unit.vtd
        .sync_after_map(&mut HostFrames, dom)
        .map_err(|e| alloc::format!("{e}"))?;
    log::info!(
        "iommu: {sbdf} translates through dom{dom}'s tables (VT-d unit at {:#x}): DMA reaches its RAM only",
        unit.base
    );
    Ok(())
}

/// Blocks `sbdf`'s DMA again (its context entry cleared and flushed).
pub fn detach(sbdf: Sbdf) {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return };
    if let Some(u) = m.unit_for(sbdf) {
        if let Err(e) = u.vtd.detach(&mut HostFrames, sbdf) {
            log::error!("iommu: {sbdf}: cannot be blocked: {e}");
        }
    }
}

/// Frees domain `dom`'s tables; its functions must be detached already.
pub fn remove_domain(dom: u16) {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return };
    if let Some(t) = m.domains.remove(&dom) {
        for u in m.units.iter_mut() {
            let _ = u.vtd.flush_domain(&mut HostFrames, dom);
        }
        t.destroy(&mut HostFrames);
    }
}

/// Logs (and clears) the faults the units recorded; returns how many.
pub fn poll_faults() -> usize {
    let mut guard = IOMMU.lock();
    let Some(m) = guard.as_mut() else { return 0 };
    let mut n = 0;
    for u in m.units.iter_mut() {
        for f in u.vtd.faults() {
            log::warn!("iommu: blocked: {f}");
            n += 1;
        }
    }
    n
}
