//! PCI passthrough: the pool of hidden functions, handing them to domains
//! and taking them back, and what the hypervisor does for `pciback`
//! ([`DomHost`], the [`PassthroughHost`] of one domain).
//!
//! The policy (config space, BAR windows, MSI/MSI-X, the xenbus protocol)
//! is `pciback`'s; this module carries it out: config space through the
//! host's ECAM or ports, BAR windows in the domain's nested page tables,
//! host vectors behind guest pirqs (`hv::irqroute`), device resets.

use crate::virt::guest_mem::{Chunk, GuestMemory};
use crate::virt::GuestTables;
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use hv::domcfg::PciAssignment;
use hv::evtchn::EventChannels;
use hv::irqroute::IrqRoutes;
use pciback::owner::Registry;
use pciback::reset::SavedConfig;
use pciback::vdev::{BarInfo, BarKind, DeviceInfo, DeviceOptions, VirtDevice};
use platform::pci::host::PciHost;
use platform::pci::BarKind as HostBarKind;
use platform::pci::PciFunction;
use spin::Mutex;
use vmm_glue::compact::VecMap;
use vmm_glue::log;
use vmm_glue::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost, PciConfig, Sbdf};

/// The guest's local APIC page, never a BAR window.
const LAPIC_PAGE: u64 = 0xfee0_0000;
/// The MSI address window; the destination APIC id (the boot CPU's) goes
/// in bits 19:12, physical mode.
const MSI_ADDRESS: u64 = 0xfee0_0000;
const PAGE: u64 = 4096;

/// The machine's PCI functions and who owns them.
#[derive(Debug)]
pub struct Passthrough {
    pub host: PciHost,
    pub funcs: Vec<PciFunction>,
    pub registry: Registry,
    /// `pciback.insecure`: passthrough without interrupt remapping.
    pub insecure: bool,
    pub routes: IrqRoutes,
    /// Each hidden function's config as hiding left it, restored after
    /// every reset.
    golden: VecMap<Sbdf, SavedConfig>,
    /// The INTx lines of assigned functions, with their owner.
    lines: VecMap<Sbdf, (u16, crate::intx::Line)>,
}

/// The pool, boxed: `None` of the 4 KiB `Passthrough` itself is not all
/// zero bytes, so the static would be 4 KiB of the image's data instead
/// of zeroed memory.
static PT: Mutex<Option<Box<Passthrough>>> = Mutex::new(None);

/// Makes the pool from what discovery found.
pub fn init(mut host: PciHost, funcs: Vec<PciFunction>, registry: Registry, insecure: bool) {
    let golden = registry
        .iter()
        .map(|(s, _)| (*s, pciback::reset::save(&mut host, *s)))
        .collect();
    if insecure {
        log::warn!(
            "pciback: WARNING: pciback.insecure: passthrough is allowed without interrupt remapping or DMA isolation; a guest driving a device can overwrite any memory and send any interrupt"
        );
    }
    *PT.lock() = Some(Box::new(Passthrough {
        host,
        funcs,
        registry,
        insecure,
        routes: IrqRoutes::new(hv::hub::NR_PIRQS),
        golden,
        lines: VecMap::new(),
    }));
}

/// Runs `f` on the pool; `None` before [`init`].
pub fn with<R>(f: impl FnOnce(&mut Passthrough) -> R) -> Option<R> {
    PT.lock().as_deref_mut().map(f)
}

fn device_info(f: &PciFunction, intx_pirq: u8) -> DeviceInfo {
    let bar = |b: &platform::pci::Bar| BarInfo {
        index: b.index,
        kind: match b.kind {
            HostBarKind::Io => BarKind::Io,
            HostBarKind::Mem64 => BarKind::Mem64,
            HostBarKind::Mem32 | HostBarKind::Mem1M => BarKind::Mem32,
        },
        prefetchable: b.prefetchable,
        base: b.base,
        size: b.size,
    };
    DeviceInfo {
        sbdf: f.sbdf,
        header_type: f.header_type,
        bars: f.bars.iter().map(bar).collect(),
        rom: f.rom.as_ref().map(bar),
        config_size: f.config_size,
        intx_pirq,
    }
}

/// Gives domain `dom` (`name`) the functions its `pci = [...]` lists, as
/// far as allowed: each must be hidden (or `seize=1`), exist, not be a
/// bridge and not be owned. Refusals are logged with the reason and what
/// to do; the rest are assigned (reset and quiet) and returned.
pub fn assign(dom: u16, name: &str, list: &[PciAssignment], ram: &[Chunk]) -> Vec<VirtDevice> {
    let mut out = Vec::new();
    let mut guard = PT.lock();
    let Some(pt) = guard.as_mut() else {
        return out;
    };
    for a in list {
        let who = format!("dom{dom} ({name})");
        let Some(f) = pt.funcs.iter().find(|f| f.sbdf == a.sbdf).cloned() else {
            log::error!(
                "pciback: {who}: {} not assigned: no such PCI function on this machine (check the address with the boot log's PCI table)",
                a.sbdf
            );
            continue;
        };
        let remapped = crate::iommu::remaps(a.sbdf);
        if !remapped && !pt.insecure {
            log::error!(
                "pciback: {who}: {} not assigned: no IOMMU remaps its interrupts, so it could forge interrupts (and, without DMA remapping, reach any memory); boot with pciback.insecure to allow it anyway",
                a.sbdf
            );
            continue;
        }
        if f.is_bridge() || f.class == 0x06 {
            log::error!(
                "pciback: {who}: {} not assigned: it is a bridge ({}), part of the machine itself; list the devices behind it instead",
                a.sbdf,
                f.class_name()
            );
            continue;
        }
        if a.seize && pt.registry.owner(a.sbdf).is_none() {
            seize(pt, &f);
        }
        if let Err(e) = pt.registry.assign(a.sbdf, dom) {
            log::error!("pciback: {who}: {} not assigned: {e}", a.sbdf);
            continue;
        }
        let dma_isolated = crate::iommu::covers(a.sbdf);
        if dma_isolated {
            if let Err(e) = crate::iommu::attach(dom, ram, a.sbdf) {
                log::error!(
                    "pciback: {who}: {} not assigned: its DMA cannot be confined to the domain ({e})",
                    a.sbdf
                );
                pt.registry.release(a.sbdf, dom);
                continue;
            }
        } else if !pt.insecure {
            log::error!(
                "pciback: {who}: {} not assigned: no IOMMU translates its DMA; boot with pciback.insecure to allow it anyway",
                a.sbdf
            );
            pt.registry.release(a.sbdf, dom);
            continue;
        }
        reset_function(pt, a.sbdf, "assigned");
        let opts = DeviceOptions {
            permissive: a.permissive,
        };
        let intx_pirq = setup_intx(pt, dom, &who, &f);
        let dev = VirtDevice::new(device_info(&f, intx_pirq), opts, &mut pt.host);
        let mode = match (remapped, dma_isolated) {
            (true, true) => "",
            (false, true) => {
                " (DMA confined by the IOMMU; WITHOUT interrupt remapping: pciback.insecure)"
            }
            (_, false) => " WITHOUT DMA isolation or interrupt remapping (pciback.insecure)",
        };
        log::info!(
            "pciback: {} ({:04x}:{:04x} {}) assigned to {who}{}{mode}",
            a.sbdf,
            f.vendor,
            f.device,
            f.class_name(),
            if a.permissive { ", permissive" } else { "" },
        );
        if !dma_isolated {
            log::warn!(
                "pciback: WARNING: {who} drives {} without DMA isolation: it can reach all memory",
                a.sbdf
            );
        } else if !remapped {
            log::warn!(
                "pciback: WARNING: {who} drives {} without interrupt remapping: it can send any interrupt",
                a.sbdf
            );
        }
        out.push(dev);
    }
    out
}

/// Gives `f`'s INTx to domain `dom`: its GSI from `_PRT`, a host vector,
/// the I/O APIC input (masked until the guest binds the pirq, which is the
/// GSI). 0 (no INTx) when it has no pin, no route the tables tell
/// statically (the reason is logged), or shares the line with
/// another function (a shared line would let one guest see, or starve,
/// another's interrupts).
fn setup_intx(pt: &mut Passthrough, dom: u16, who: &str, f: &PciFunction) -> u8 {
    if f.interrupt_pin == 0 {
        return 0;
    }
    let intx = match crate::intx::gsi_of(f, &pt.funcs, &mut pt.host) {
        Ok(i) => i,
        Err(why) => {
            log::warn!(
                "pciback: {who}: {}: INTx not offered: {why}; MSI and MSI-X are unaffected",
                f.sbdf
            );
            return 0;
        }
    };
    log::info!(
        "intx: {} INT{}: {intx}",
        f.sbdf,
        char::from(b'@' + f.interrupt_pin)
    );
    let route = intx.route;
    let Passthrough {
        funcs,
        host,
        registry,
        ..
    } = &mut *pt;
    let sharer = funcs.iter().find(|o| {
        if o.sbdf == f.sbdf
            || !crate::intx::gsi_of(o, funcs, host).is_ok_and(|i| i.route.gsi == route.gsi)
        {
            return false;
        }
        if o.bridge.is_none() || registry.owner(o.sbdf).is_some() {
            return true;
        }
        // A bridge the hypervisor keeps shares the line by the swizzle (its own INTA and a card
        // at device 0 below it or below a sibling port). Nothing here
        // drives a bridge's own interrupts: its Interrupt Disable bit
        // (which stops only the bridge's own INTx, not the ones it
        // forwards) takes it off the line.
        use vmm_glue::pci::regs::command;
        let cmd = host.read16(o.sbdf, command::OFFSET);
        host.write16(o.sbdf, command::OFFSET, cmd | command::INTX_DISABLE);
        log::info!(
            "intx: bridge {}'s own INTx disabled: it shares GSI {} with {}",
            o.sbdf,
            route.gsi,
            f.sbdf
        );
        false
    });
    if let Some(o) = sharer {
        log::warn!(
            "pciback: {who}: {}: INTx not offered: GSI {} is shared with {}",
            f.sbdf,
            route.gsi,
            o.sbdf
        );
        return 0;
    }
    let Ok(pirq) = u8::try_from(route.gsi) else {
        return 0;
    };
    let Some(vector) = pt.routes.alloc_fixed(dom, f.sbdf, route.gsi) else {
        log::warn!(
            "pciback: {who}: {}: INTx not offered: no free vector",
            f.sbdf
        );
        return 0;
    };
    match crate::intx::setup(route, vector) {
        Ok(line) => {
            log::info!(
                "pciback: {who}: {} INTx: GSI {} ({}, active {}) -> vector {vector:#x}, pirq {pirq}",
                f.sbdf,
                route.gsi,
                if route.level { "level" } else { "edge" },
                if route.active_low { "low" } else { "high" },
            );
            pt.lines.insert(f.sbdf, (dom, line));
            pirq
        }
        Err(e) => {
            pt.routes.free(dom, route.gsi);
            log::warn!("pciback: {who}: {}: INTx not offered: {e}", f.sbdf);
            0
        }
    }
}

/// The INTx line of `dom` behind `pirq`.
fn line_of(pt: &Passthrough, dom: u16, pirq: u32) -> Option<crate::intx::Line> {
    pt.lines
        .values()
        .find(|(d, l)| *d == dom && l.gsi == pirq)
        .map(|(_, l)| *l)
}

/// Whether `pirq` of `dom` is an INTx line (which needs the guest's EOI).
pub fn is_intx(dom: u16, pirq: u32) -> bool {
    with(|pt| line_of(pt, dom, pirq).is_some()).unwrap_or(false)
}

/// The guest bound `pirq` or said it served it (`PHYSDEVOP_eoi`): its INTx
/// input is unmasked. `false` if `pirq` is not one of its INTx lines.
pub fn intx_ready(dom: u16, pirq: u32) -> bool {
    with(|pt| match line_of(pt, dom, pirq) {
        Some(l) => {
            crate::intx::unmask(&l);
            true
        }
        None => false,
    })
    .unwrap_or(false)
}

/// The guest closed the port of `pirq`: if it is one of its INTx lines,
/// the input is masked until it binds the pirq again.
pub fn intx_unbound(dom: u16, pirq: u32) {
    with(|pt| {
        if let Some(l) = line_of(pt, dom, pirq) {
            crate::intx::mask(&l);
        }
    });
}

/// Config space and waits, for resets outside any domain.
struct ResetHost<'a>(&'a mut PciHost);

impl PassthroughHost for ResetHost<'_> {
    fn config(&mut self) -> &mut dyn PciConfig {
        self.0
    }
    fn map_mmio(&mut self, _: u64, _: u64, _: u64) -> Result<(), MapError> {
        Err(MapError::NotPermitted)
    }
    fn unmap_mmio(&mut self, _: u64, _: u64) {}
    fn map_ports(&mut self, _: u16, _: u16) -> Result<(), MapError> {
        Err(MapError::NotPermitted)
    }
    fn unmap_ports(&mut self, _: u16, _: u16) {}
    fn mmio_read(&mut self, _: u64, _: u8) -> u64 {
        u64::MAX
    }
    fn mmio_write(&mut self, _: u64, _: u8, _: u64) {}
    fn alloc_msi(&mut self, _: Sbdf, _: MsiSource) -> Result<MsiRoute, IrqError> {
        Err(IrqError::Refused)
    }
    fn free_msi(&mut self, _: Sbdf, _: u32) {}
    fn delay_us(&mut self, us: u32) {
        spin_us(us);
    }
}

fn spin_us(us: u32) {
    let end = crate::domain::time::now_ns() + u64::from(us) * 1000;
    while crate::domain::time::now_ns() < end {
        core::hint::spin_loop();
    }
}

/// Resets `sbdf` (FLR, else D3hot -> D0, else a secondary bus reset when
/// it is alone below its bridge) and puts back the config hiding left;
/// says how in the log. A function with no reset keeps going with its
/// config restored, and the log says its internal state is not cleared.
fn reset_function(pt: &mut Passthrough, sbdf: Sbdf, why: &str) {
    let parent = pt
        .funcs
        .iter()
        .find(|f| f.sbdf == sbdf)
        .and_then(|f| f.parent);
    let sole = parent.filter(|&b| pt.funcs.iter().filter(|f| f.parent == Some(b)).count() == 1);
    match pciback::reset::reset(&mut ResetHost(&mut pt.host), sbdf, sole) {
        Ok(m) => log::info!("pciback: {sbdf} reset ({why}): {m}"),
        Err(e) => {
            use pciback::reset::NoResetReason as R;
            let reason = match e.reason {
                R::NoMethod { .. } => {
                    "no function level reset, no D3hot -> D0 reset and not alone below a bridge"
                }
                R::NoResponse => "nothing answers at that address",
                R::NotReady { .. } => "it did not answer again within a second",
                R::NotABridge { .. } => "the bridge above it is not a PCI-to-PCI bridge",
            };
            log::warn!(
                "pciback: {sbdf} not reset ({why}): {reason}; only its saved config is restored, state inside the device may carry over to the next owner"
            );
        }
    }
    if let Some(saved) = pt.golden.get(&sbdf) {
        pciback::reset::restore(&mut pt.host, saved);
    }
}

/// `seize=1` for a function `pciback.hide=` did not name: quiesce it and
/// add it to the pool.
fn seize(pt: &mut Passthrough, f: &PciFunction) {
    let caps = crate::discover::quiesce_caps(f);
    let report = pciback::quiesce::quiesce(&mut pt.host, f.sbdf, caps);
    let _ = pt
        .registry
        .hide(f.sbdf, pciback::hide::HideMatch::Seized, report);
    let saved = pciback::reset::save(&mut pt.host, f.sbdf);
    pt.golden.insert(f.sbdf, saved);
    log::warn!(
        "pciback: {} seized (seize=1): it was not in pciback.hide=; {report}",
        f.sbdf
    );
}

/// `debug.keep-bus-master`: released functions keep bus mastering on.
static KEEP_BUS_MASTER: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Sets `debug.keep-bus-master`: from here on a released function's bus
/// mastering is turned back on after its release, as a device that
/// ignores its Command register would behave, so that only the IOMMU
/// stops its late DMA (isolation tests).
#[cfg(feature = "test-hooks")]
pub fn keep_bus_master(on: bool) {
    KEEP_BUS_MASTER.store(on, core::sync::atomic::Ordering::Relaxed);
}

/// Takes domain `dom`'s functions back into the pool: `devs` must have
/// been released already (windows unmapped, interrupts off).
pub fn give_back(dom: u16, name: &str, devs: Vec<VirtDevice>) {
    let mut guard = PT.lock();
    let Some(pt) = guard.as_mut() else { return };
    let freed = pt.routes.remove_domain(dom);
    for r in &freed {
        if let Some(h) = r.handle {
            crate::iommu::unroute_msi(r.sbdf, h);
        }
    }
    let freed = freed.len();
    for d in devs {
        let sbdf = d.sbdf();
        if let Some((_, line)) = pt.lines.remove(&sbdf) {
            crate::intx::teardown(&line);
        }
        // No DMA from here on: its context entry is gone (and flushed).
        crate::iommu::detach(sbdf);
        reset_function(pt, sbdf, "released");
        let caps = pt
            .funcs
            .iter()
            .find(|f| f.sbdf == sbdf)
            .map(crate::discover::quiesce_caps)
            .unwrap_or_default();
        let report = pciback::quiesce::quiesce(&mut pt.host, sbdf, caps);
        if KEEP_BUS_MASTER.load(core::sync::atomic::Ordering::Relaxed) {
            let cmd = pt.host.read16(sbdf, 4);
            pt.host.write16(sbdf, 4, cmd | 1 << 2);
            log::warn!(
                "pciback: debug.keep-bus-master: {sbdf} keeps bus mastering on after its release; only the IOMMU stops its DMA"
            );
        }
        pt.registry.release(sbdf, dom);
        log::info!(
            "pciback: {sbdf} released by dom{dom} ({name}): {report}; back in the hidden pool"
        );
    }
    crate::iommu::remove_domain(dom);
    if freed > 0 {
        log::info!("pciback: dom{dom}: {freed} interrupt routes freed");
    }
}

/// Raises the pirqs behind the device vectors that fired; the effects wait
/// in the registry for the caller to apply.
pub fn deliver(evtchn: &mut EventChannels) -> usize {
    if !crate::arch::lapic::device_pending() {
        return 0;
    }
    let guard = PT.lock();
    let Some(pt) = guard.as_ref() else { return 0 };
    let mut n = 0;
    for v in crate::arch::lapic::take_device_vectors() {
        log::trace!("pciback: device vector {v:#x} fired");
        match pt.routes.route(v) {
            Some(r) if evtchn.raise_pirq(r.dom, r.pirq) => n += 1,
            // A line fires before the guest bound its pirq only if the
            // device misbehaves, or someone forged the message.
            Some(r) => note_dropped(format_args!(
                "interrupt on vector {v:#x} for dom{} pirq {} ({}), which no port is bound to: dropped",
                r.dom, r.pirq, r.sbdf
            )),
            None => note_dropped(format_args!(
                "interrupt on vector {v:#x}, which no device owns: dropped"
            )),
        }
    }
    n
}

/// Logs a dropped device interrupt (the first 16; then one line says the
/// rest are not logged).
fn note_dropped(what: core::fmt::Arguments<'_>) {
    use core::sync::atomic::{AtomicU32, Ordering};
    static DROPPED: AtomicU32 = AtomicU32::new(0);
    match DROPPED.fetch_add(1, Ordering::Relaxed) {
        0..=15 => log::warn!("pciback: {what}"),
        16 => log::warn!("pciback: more dropped interrupts; not logged"),
        _ => {}
    }
}

/// What the hypervisor does for `pciback` on behalf of one domain.
pub struct DomHost<'a> {
    pub dom: u16,
    pub pt: &'a mut Passthrough,
    pub mem: &'a GuestMemory,
    pub tables: &'a mut GuestTables,
    /// The BAR windows mapped into the domain, `(gpa, len)`.
    pub windows: &'a mut Vec<(u64, u64)>,
    pub evtchn: &'a mut EventChannels,
    /// The I/O port ranges handed to the domain, `(port, len)`.
    pub ports: &'a mut Vec<(u16, u16)>,
    /// Set when a mapping went away: the guest's TLB must be flushed.
    pub flush: bool,
}

impl core::fmt::Debug for DomHost<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DomHost").field("dom", &self.dom).finish()
    }
}

impl DomHost<'_> {
    /// Whether `[hpa, hpa + len)` lies in a memory BAR of a function this
    /// domain owns.
    fn owns_device_memory(&self, hpa: u64, len: u64) -> bool {
        let Some(end) = hpa.checked_add(len) else {
            return false;
        };
        self.pt.funcs.iter().any(|f| {
            self.pt.registry.owner(f.sbdf) == Some(&pciback::owner::Owner::Domain(self.dom))
                && f.bars.iter().any(|b| {
                    b.kind != HostBarKind::Io
                        && hpa >= b.base
                        && end <= b.base.saturating_add(b.size.max(PAGE))
                })
        })
    }
}

impl PassthroughHost for DomHost<'_> {
    fn config(&mut self) -> &mut dyn PciConfig {
        &mut self.pt.host
    }

    fn map_mmio(&mut self, gpa: u64, hpa: u64, len: u64) -> Result<(), MapError> {
        if len == 0 || !(gpa | hpa | len).is_multiple_of(PAGE) {
            return Err(MapError::Unaligned);
        }
        let gend = gpa.checked_add(len).ok_or(MapError::Unaligned)?;
        if !self.owns_device_memory(hpa, len) {
            return Err(MapError::NotPermitted);
        }
        let overlaps_window = self.windows.iter().any(|&(g, l)| gpa < g + l && g < gend);
        let overlaps_ram = (gpa..gend)
            .step_by(PAGE as usize)
            .any(|p| self.mem.translate(p).is_some() || p == LAPIC_PAGE);
        if overlaps_window || overlaps_ram {
            return Err(MapError::Overlap);
        }
        let mut done = 0;
        while done < len {
            // SAFETY: inside the functions' memory the domain owns
            // (`owns_device_memory` above), a window pciback asked for.
            if unsafe { self.tables.map_mmio_4k(gpa + done, hpa + done) }.is_none() {
                for back in (0..done).step_by(PAGE as usize) {
                    self.tables.unmap_4k(gpa + back);
                }
                self.flush = true;
                return Err(MapError::NoMemory);
            }
            done += PAGE;
        }
        self.windows.push((gpa, len));
        Ok(())
    }

    fn unmap_mmio(&mut self, gpa: u64, len: u64) {
        for p in (0..len).step_by(PAGE as usize) {
            self.tables.unmap_4k(gpa + p);
        }
        self.windows.retain(|&(g, l)| !(g == gpa && l == len));
        self.flush = true;
    }

    fn map_ports(&mut self, port: u16, len: u16) -> Result<(), MapError> {
        let end = u32::from(port) + u32::from(len);
        if len == 0 || end > 0x1_0000 {
            return Err(MapError::Unaligned);
        }
        let owned = self.pt.funcs.iter().any(|f| {
            self.pt.registry.owner(f.sbdf) == Some(&pciback::owner::Owner::Domain(self.dom))
                && f.bars.iter().any(|b| {
                    b.kind == HostBarKind::Io
                        && u64::from(port) >= b.base
                        && u64::from(end) <= b.base + b.size
                })
        });
        if !owned {
            return Err(MapError::NotPermitted);
        }
        let taken = self
            .ports
            .iter()
            .any(|&(p, l)| u32::from(port) < u32::from(p) + u32::from(l) && u32::from(p) < end);
        if taken {
            return Err(MapError::Overlap);
        }
        self.ports.push((port, len));
        Ok(())
    }

    fn unmap_ports(&mut self, port: u16, len: u16) {
        self.ports.retain(|&r| r != (port, len));
    }

    fn mmio_read(&mut self, hpa: u64, size: u8) -> u64 {
        if !self.owns_device_memory(hpa & !(PAGE - 1), PAGE) {
            return u64::MAX;
        }
        // SAFETY: the page is inside a memory BAR of a function assigned
        // to this domain (checked just above).
        unsafe { crate::arch::phys::mmio_read(hpa, size) }.unwrap_or(u64::MAX)
    }

    fn mmio_write(&mut self, hpa: u64, size: u8, value: u64) {
        if self.owns_device_memory(hpa & !(PAGE - 1), PAGE) {
            // SAFETY: the page is inside a memory BAR of a function
            // assigned to this domain (checked just above).
            unsafe { crate::arch::phys::mmio_write(hpa, size, value) };
        }
    }

    fn alloc_msi(&mut self, sbdf: Sbdf, source: MsiSource) -> Result<MsiRoute, IrqError> {
        let (vector, pirq) = self
            .pt
            .routes
            .alloc(self.dom, sbdf)
            .ok_or(IrqError::Exhausted)?;
        let (address, data) = match crate::iommu::route_msi(sbdf, vector) {
            Some(Ok((handle, address, data))) => {
                self.pt.routes.set_handle(vector, handle);
                (address, data)
            }
            Some(Err(e)) => {
                log::warn!(
                    "pciback: dom{}: {sbdf}: no interrupt remapping entry: {e}",
                    self.dom
                );
                self.pt.routes.free(self.dom, pirq);
                return Err(IrqError::Exhausted);
            }
            None if self.pt.insecure => (
                MSI_ADDRESS | u64::from(crate::arch::lapic::id()) << 12,
                u32::from(vector),
            ),
            None => {
                self.pt.routes.free(self.dom, pirq);
                return Err(IrqError::Refused);
            }
        };
        if self.evtchn.permit_pirq(self.dom, pirq).is_err() {
            self.free_msi(sbdf, pirq);
            return Err(IrqError::Exhausted);
        }
        log::debug!(
            "pciback: dom{}: {sbdf} {source:?} -> vector {vector:#x}, pirq {pirq}, message {address:#x}/{data:#x}",
            self.dom
        );
        Ok(MsiRoute {
            pirq,
            address,
            data,
        })
    }

    fn free_msi(&mut self, _sbdf: Sbdf, pirq: u32) {
        if let Some((_, r)) = self.pt.routes.free(self.dom, pirq) {
            if let Some(h) = r.handle {
                crate::iommu::unroute_msi(r.sbdf, h);
            }
        }
        self.evtchn.revoke_pirq(self.dom, pirq);
    }

    fn delay_us(&mut self, us: u32) {
        spin_us(us);
    }
}
