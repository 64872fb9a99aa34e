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
//!
//! The units and the domains' tables are a [`platform::iommu::IommuSet`]
//! driven through `vmm-glue`'s remapping seams; this module finds the
//! units in the firmware's tables, gives them registers and frames, and
//! says what happened in the log.

use crate::virt::guest_mem::Chunk;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use platform::acpi::{Dmar, Ivrs, ScopeType};
use platform::iommu::amdvi::{AmdVi, AmdViRegs, ContiguousMemory};
use platform::iommu::set::AMD_IRQS;
use platform::iommu::vtd::{ApicMode, IrTable, Vtd, VtdRegs, IR_ENTRIES};
use platform::iommu::{Iommu, IommuSet, Scope, TableMemory};
use platform::pci::PciFunction;
use spin::Mutex;
use vmm_glue::log;
use vmm_glue::{DmaRemapping, Gpa, Hpa, InterruptRemapping, RamRange, RemappedIoapic, Sbdf};

/// One unit's registers, reached through the hypervisor's uncached
/// identity map of the space below 4 GiB.
#[derive(Debug)]
struct MmioRegs {
    base: u64,
}

// SAFETY (every access below): `base` is a unit's register block, from
// the DMAR or IVRS table, which the hypervisor alone drives (the units are
// never given to a guest), and `off` an offset inside it the unit's
// driver in `platform::iommu` chose.
impl MmioRegs {
    fn r32(&mut self, off: u32) -> u32 {
        // SAFETY: a register of this unit (above).
        unsafe { crate::arch::phys::mmio_read(self.base + u64::from(off), 4) }.unwrap_or(u64::MAX)
            as u32
    }
    fn w32(&mut self, off: u32, v: u32) {
        // SAFETY: a register of this unit (above).
        unsafe { crate::arch::phys::mmio_write(self.base + u64::from(off), 4, u64::from(v)) };
    }
    fn r64(&mut self, off: u32) -> u64 {
        // SAFETY: a register of this unit (above).
        unsafe { crate::arch::phys::mmio_read(self.base + u64::from(off), 8) }.unwrap_or(u64::MAX)
    }
    fn w64(&mut self, off: u32, v: u64) {
        // SAFETY: a register of this unit (above).
        unsafe { crate::arch::phys::mmio_write(self.base + u64::from(off), 8, v) };
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

/// Table frames from the hypervisor's frame allocator, for every table
/// made with `platform`'s builders: the IOMMUs' and the domains' nested
/// page tables (`virt::stage2`). Frames are scrubbed when they go back.
#[derive(Debug)]
pub struct HostFrames;

/// How many frames the page tables hold now: every IOMMU unit's root,
/// context and interrupt tables, every domain's DMA translation tables
/// and its nested page tables.
static TABLE_FRAMES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The frames the page tables hold now.
pub fn table_frames() -> u64 {
    TABLE_FRAMES.load(core::sync::atomic::Ordering::Relaxed)
}

fn held(frames: u64, alloc: bool) {
    use core::sync::atomic::Ordering::Relaxed;
    if alloc {
        TABLE_FRAMES.fetch_add(frames, Relaxed);
    } else {
        TABLE_FRAMES.fetch_sub(frames, Relaxed);
    }
}

// Out of line: the table builders call these from many places.
impl TableMemory for HostFrames {
    #[inline(never)]
    fn alloc_zeroed(&mut self) -> Option<u64> {
        // Zeroed by the allocator.
        let f = crate::mem::alloc_frames(1, 4096)?;
        held(1, true);
        Some(f)
    }

    #[inline(never)]
    fn free(&mut self, hpa: u64) {
        // SAFETY: the table builders free only frames `alloc_zeroed` gave
        // them, once, after the unit stopped using them.
        unsafe { crate::arch::phys::zero_owned(hpa, 4096) };
        crate::mem::free_frames(hpa, 1);
        held(1, false);
    }

    fn read64(&mut self, hpa: u64) -> u64 {
        // SAFETY: the table builders read only 8-byte entries of the
        // frames they hold from `alloc_zeroed`.
        unsafe { crate::arch::phys::read_owned_u64(hpa) }
    }

    fn write64(&mut self, hpa: u64, v: u64) {
        // SAFETY: as in `read64`: an entry of a table frame they own.
        unsafe { crate::arch::phys::write_owned_u64(hpa, v) };
    }
}

impl ContiguousMemory for HostFrames {
    fn alloc_zeroed_contiguous(&mut self, frames: usize) -> Option<u64> {
        // Zeroed by the allocator.
        let f = crate::mem::alloc_frames(frames as u64, 4096)?;
        held(frames as u64, true);
        Some(f)
    }

    fn free_contiguous(&mut self, hpa: u64, frames: usize) {
        // SAFETY: the AMD-Vi driver frees only what
        // `alloc_zeroed_contiguous` gave it, once, with that length.
        unsafe { crate::arch::phys::zero_owned(hpa, frames as u64 * 4096) };
        crate::mem::free_frames(hpa, frames as u64);
        held(frames as u64, false);
    }
}

/// The units and each domain's tables.
static IOMMU: Mutex<Option<IommuSet<MmioRegs, HostFrames>>> = Mutex::new(None);

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
    let mut set = IommuSet::new(HostFrames);
    if let Some(dmar) = dmar {
        init_vtd(dmar, funcs, &mut set);
    }
    if let Some(ivrs) = ivrs {
        init_amdvi(ivrs, funcs, &mut set);
    }
    for (f, r) in set.quarantine_reserved() {
        match r {
            Ok(()) => log::info!(
                "iommu: {f} quarantined with its reserved memory only (RMRR, one to one)"
            ),
            Err(e) => log::error!("iommu: {f}: its reserved memory cannot be mapped: {e}"),
        }
    }
    *IOMMU.lock() = Some(set);
}

fn init_vtd(dmar: &Dmar, funcs: &[PciFunction], set: &mut IommuSet<MmioRegs, HostFrames>) {
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
        // Memory the firmware says functions keep using (RMRRs): mapped
        // one to one for a domain given such a function.
        let mut reserved = Vec::new();
        for r in dmar.rmrrs().filter(|r| r.segment == d.segment) {
            let (base, end) = (r.base & !0xfff, (r.limit | 0xfff).saturating_add(1));
            for s in &r.scopes {
                let path: Vec<(u8, u8)> = s.path.iter().map(|p| (p.dev, p.func)).collect();
                let sub = s.scope_type == ScopeType::SubHierarchy;
                for f in scope_functions(d.segment, s.start_bus, &path, sub, funcs) {
                    log::info!(
                        "iommu: {f} uses reserved memory {base:#x}-{:#x} (RMRR): mapped one to one for its owner",
                        end - 1
                    );
                    reserved.push((f, base, end));
                }
            }
        }
        let scope = Scope {
            segment: d.segment,
            include_all: d.include_pci_all(),
            functions: scope,
            ioapics,
            reserved,
            aliases: Vec::new(),
        };
        set.add(Iommu::Vtd { vtd, ir }, d.register_base, scope);
    }
}

/// The IVRS memory definitions (IVMD) that ask for a one-to-one map
/// (unity flag, bit 0) for functions of `scope`: `(function, base, end)`.
fn unity_ranges(ivrs: &Ivrs, segment: u16, scope: &[Sbdf]) -> Vec<(Sbdf, u64, u64)> {
    const UNITY: u8 = 1 << 0;
    let mut out = Vec::new();
    for b in &ivrs.blocks {
        let platform::acpi::IvrsBlock::Ivmd(m) = b else {
            continue;
        };
        if m.flags & UNITY == 0 || m.length == 0 {
            continue;
        }
        let base = m.start & !0xfff;
        let end = (m.start.saturating_add(m.length) + 0xfff) & !0xfff;
        for &f in scope.iter().filter(|f| f.seg == segment) {
            let id = f.rid();
            let covered = match m.block_type {
                0x20 => true,
                0x21 => id == m.device_id,
                0x22 => (m.device_id..=m.aux_data).contains(&id),
                _ => false,
            };
            if covered {
                log::info!(
                    "iommu: {f} uses reserved memory {base:#x}-{:#x} (IVMD): mapped one to one for its owner",
                    end - 1
                );
                out.push((f, base, end));
            }
        }
    }
    out
}

fn init_amdvi(ivrs: &Ivrs, funcs: &[PciFunction], set: &mut IommuSet<MmioRegs, HostFrames>) {
    let sbdfs: Vec<Sbdf> = funcs.iter().map(|f| f.sbdf).collect();
    for (i, h) in ivrs.units().into_iter().enumerate() {
        let mut scope = Scope::from_ivhd(h, &sbdfs);
        let max_bus = funcs
            .iter()
            .filter(|f| f.sbdf.seg == h.segment)
            .map(|f| {
                f.bridge
                    .map_or(f.sbdf.bus, |b| b.subordinate.max(f.sbdf.bus))
            })
            .chain(scope.aliases.iter().map(|a| a.1.bus))
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
            scope.functions.len(),
        );
        for (f, a) in &scope.aliases {
            log::info!("iommu: AMD-Vi unit {i}: {f} is aliased to {a} (its requests carry that ID; both entries are set)");
        }
        log::info!(
            "iommu: AMD-Vi unit {i}: interrupt remapping per function ({AMD_IRQS} entries each, given at assignment) and per I/O APIC (indexed by vector); interrupts from every other device id blocked"
        );
        scope.reserved = unity_ranges(ivrs, h.segment, &scope.functions);
        set.add(Iommu::AmdVi(amd), h.base_address, scope);
    }
}

/// Turns interrupt remapping on for unit `i` when it can: a table of
/// [`IR_ENTRIES`] entries, every entry checking the full requester ID, and
/// compatibility-format interrupts blocked (a device writing a message of
/// its own to 0xFEEx_xxxx is stopped and the fault recorded).
fn enable_remapping(i: usize, vtd: &mut Vtd<MmioRegs>) -> Option<IrTable> {
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
    Some(table)
}

/// Runs `f` on the set, or returns `none` when there is none (before
/// [`init`]).
fn with<T>(none: T, f: impl FnOnce(&mut IommuSet<MmioRegs, HostFrames>) -> T) -> T {
    match IOMMU.lock().as_mut() {
        Some(set) => f(set),
        None => none,
    }
}

/// The units: kind (`VT-d`, `AMD-Vi`), register base, whether they remap
/// interrupts.
pub fn units() -> Vec<(&'static str, u64, bool)> {
    with(Vec::new(), |set| {
        set.units()
            .iter()
            .map(|u| (u.kind(), u.base(), u.remaps()))
            .collect()
    })
}

/// The requester ID `sbdf`'s requests carry when it is not its own (an
/// AMD-Vi alias).
pub fn alias_of(sbdf: Sbdf) -> Option<Sbdf> {
    with(None, |set| {
        let u = set.unit_for(sbdf)?;
        u.scope().aliases.iter().find(|a| a.0 == sbdf).map(|a| a.1)
    })
}

/// Whether `sbdf`'s interrupts go through an interrupt remapping table.
pub fn remaps(sbdf: Sbdf) -> bool {
    with(false, |set| set.remaps(sbdf))
}

/// An interrupt-remapping entry sending `vector` to the boot CPU, usable
/// only by `sbdf`: the entry's index and the message the function must
/// send. `None` when `sbdf` is not remapped; an error when the table is
/// full or the unit refused.
pub fn route_msi(sbdf: Sbdf, vector: u8) -> Option<Result<(u16, u64, u32), String>> {
    let dest = u32::from(crate::arch::lapic::id());
    with(None, |set| match set.route_msi(sbdf, vector, dest) {
        Ok(m) => m.map(|m| Ok((m.handle, m.address, m.data))),
        Err(e) => Some(Err(e.to_string())),
    })
}

/// A level-triggered remapping entry for input of I/O APIC `ioapic_id`
/// (a PCI INTx line) sending `vector` to the boot CPU: its handle, for a
/// remappable redirection entry. `None` when no unit remaps interrupts;
/// an error when units do but none lists that I/O APIC (its messages
/// would be blocked).
pub fn route_ioapic(ioapic_id: u8, vector: u8) -> Option<Result<RemappedIoapic, String>> {
    let dest = u32::from(crate::arch::lapic::id());
    with(None, |set| {
        set.route_ioapic(ioapic_id, vector, dest).transpose()
    })
    .map(|r| r.map_err(|e| e.to_string()))
}

/// Frees entry `handle` that [`route_ioapic`] gave I/O APIC `ioapic_id`.
pub fn unroute_ioapic(ioapic_id: u8, handle: u16) {
    with((), |set| set.unroute_ioapic(ioapic_id, handle));
}

/// Frees entry `handle` that [`route_msi`] gave `sbdf`.
pub fn unroute_msi(sbdf: Sbdf, handle: u16) {
    with((), |set| set.unroute_msi(sbdf, handle));
}

/// Whether a unit translates `sbdf`'s DMA.
pub fn covers(sbdf: Sbdf) -> bool {
    with(false, |set| set.covers(sbdf))
}

/// Lets `sbdf` DMA into domain `dom`'s RAM (`ram`), and nowhere else; on
/// AMD-Vi it also gets its interrupt remapping table (every interrupt
/// blocked until one is routed).
pub fn attach(dom: u16, ram: &[Chunk], sbdf: Sbdf) -> Result<(), String> {
    let ram: Vec<RamRange> = ram
        .iter()
        .map(|c| RamRange {
            gpa: Gpa(c.gpa),
            hpa: Hpa(c.hpa),
            len: crate::virt::guest_mem::CHUNK,
        })
        .collect();
    let mut guard = IOMMU.lock();
    let set = guard.as_mut().ok_or("no IOMMU")?;
    set.attach(dom, &ram, sbdf).map_err(|e| e.to_string())?;
    if let Some(u) = set.unit_for(sbdf) {
        log::info!(
            "iommu: {sbdf} translates through dom{dom}'s tables ({} unit at {:#x}): DMA reaches its RAM only",
            u.kind(),
            u.base()
        );
    }
    Ok(())
}

/// Blocks `sbdf`'s DMA (and, on AMD-Vi, its interrupts) again, flushed,
/// and reads its entry back.
pub fn detach(sbdf: Sbdf) {
    let mut guard = IOMMU.lock();
    let Some(set) = guard.as_mut() else { return };
    let Some((entry, reserved)) = set.unit_for(sbdf).map(|u| {
        let entry = match u.iommu() {
            Iommu::Vtd { .. } => "context",
            Iommu::AmdVi(_) => "device table",
        };
        (entry, u.scope().reserved.iter().any(|r| r.0 == sbdf))
    }) else {
        return;
    };
    match set.detach(sbdf) {
        Ok(true) if reserved => log::info!(
            "iommu: {sbdf} back in quarantine (its reserved memory only; its {entry} entry read back)"
        ),
        Ok(true) => log::info!(
            "iommu: {sbdf} blocked again (no owner: no DMA, no interrupts; its {entry} entry read back)"
        ),
        Ok(false) => {
            log::error!("iommu: {sbdf}: its entry still lets it through after detaching")
        }
        Err(e) => log::error!("iommu: {sbdf}: cannot be blocked: {e}"),
    }
}

/// Maps the page at `gpa` to `hpa` (`Some`) or unmaps it (`None`) in
/// domain `dom`'s DMA tables, flushed (a balloon): `false` if a unit
/// failed. A domain without tables has nothing to change.
pub fn remap_page(dom: u16, gpa: u64, hpa: Option<u64>) -> bool {
    with(true, |set| set.remap_page(dom, gpa, hpa).is_ok())
}

/// The units' entries in use: a set of translation tables per domain and
/// unit, and the interrupt remapping entries routed.
#[cfg(feature = "test-hooks")]
pub fn entries_in_use() -> usize {
    with(0, |set| set.entries_in_use())
}

/// Frees domain `dom`'s tables; its functions must be detached already.
pub fn remove_domain(dom: u16) {
    with((), |set| set.remove_domain(dom));
}

/// Logs (and clears) the faults and events the units recorded; returns
/// how many.
pub fn poll_faults() -> usize {
    let recorded = with(Vec::new(), |set| set.recorded());
    if !recorded.is_empty() {
        let now = crate::domain::time::now_ns();
        let mut limit = FAULT_LOG.lock();
        for r in &recorded {
            // A device kept blocking (a guest's DMA loop) must not keep
            // the serial line, and the hypervisor, busy with its faults.
            if let Some(n) = limit.allow(now) {
                log::warn!("iommu: blocked: {r}{}", hv::ratelimit::Suppressed(n));
            }
        }
    }
    recorded.len()
}

/// The fault lines: a burst of 32, then one per 100 ms.
static FAULT_LOG: Mutex<hv::ratelimit::RateLimit> =
    Mutex::new(hv::ratelimit::RateLimit::new(32, 100_000_000));
