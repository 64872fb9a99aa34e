//! PCI passthrough on this machine: the [`Machine`] the passthrough
//! policy (`hv::assign`) drives, and what the hypervisor does for
//! `pciback` ([`DomHost`], the [`PassthroughHost`] of one domain).
//!
//! The decisions (who may have which function, in which order it is
//! handed over and taken back) are `hv::assign`'s, the config-space policy
//! `pciback`'s; this module carries them out: config space through the
//! host's ECAM or ports, the IOMMU, I/O APIC inputs, device resets, BAR
//! windows in the domain's nested page tables, host vectors behind guest
//! pirqs (`hv::irqroute`).

use crate::virt::guest_mem::Chunk;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hv::assign::{Function, HideError, HostUse, Machine, Pool, Who};
use hv::domcfg::PciAssignment;
use hv::evtchn::EventChannels;
use hv::irqroute::IrqRoutes;
use pciback::hide::HideMatch;
use pciback::owner::{AssignError, Registry};
use pciback::quiesce::QuiesceReport;
use pciback::reset::SavedConfig;
use pciback::vdev::{BarInfo, BarKind, DeviceInfo, DeviceOptions, VirtDevice};
use platform::pci::host::PciHost;
use platform::pci::BarKind as HostBarKind;
use platform::pci::PciFunction;
use spin::Mutex;
use vmm_glue::compact::VecMap;
use vmm_glue::log;
use vmm_glue::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost, PciConfig, Sbdf};

mod dom_host;
pub use dom_host::DomHost;

/// The machine's PCI functions and who owns them.
#[derive(Debug)]
pub struct Passthrough {
    pub host: PciHost,
    pub funcs: Vec<PciFunction>,
    /// The hidden functions, their owners and INTx lines.
    pub pool: Pool<crate::intx::Line>,
    pub routes: IrqRoutes,
    /// Each hidden function's config as hiding left it, restored after
    /// every reset.
    golden: VecMap<Sbdf, SavedConfig>,
    /// Each hidden function's config as the host had it before, restored
    /// when it is given back.
    host_cfg: VecMap<Sbdf, SavedConfig>,
}

impl Passthrough {
    /// The pool and the machine it drives (`ram`: the RAM of the domain
    /// functions are attached to).
    fn split<'a>(&'a mut self, ram: &'a [Chunk]) -> (&'a mut Pool<crate::intx::Line>, Hw<'a>) {
        let hw = Hw {
            host: &mut self.host,
            funcs: &self.funcs,
            routes: &mut self.routes,
            golden: &mut self.golden,
            host_cfg: &mut self.host_cfg,
            ram,
        };
        (&mut self.pool, hw)
    }
}

/// The pool, boxed: `None` of the 4 KiB `Passthrough` itself is not all
/// zero bytes, so the static would be 4 KiB of the image's data instead
/// of zeroed memory.
static PT: Mutex<Option<Box<Passthrough>>> = Mutex::new(None);

/// Makes the pool and hides the functions `pciback.hide=` lists (as the
/// shell's `pci-assignable-add` does); how many are hidden.
pub fn init(
    host: PciHost,
    funcs: Vec<PciFunction>,
    listed: &[(Sbdf, HideMatch)],
    insecure: bool,
) -> usize {
    *PT.lock() = Some(Box::new(Passthrough {
        host,
        funcs,
        pool: Pool::new(insecure),
        routes: IrqRoutes::new(hv::hub::NR_PIRQS),
        golden: VecMap::new(),
        host_cfg: VecMap::new(),
    }));
    for &(sbdf, matched) in listed {
        if let Err(e) = hide(sbdf, matched) {
            log::warn!("pciback: {sbdf} not hidden: {e}");
        }
    }
    with(|pt| pt.pool.registry().len()).unwrap_or(0)
}

/// Takes `sbdf` from the host into the pool (`hv::assign::Pool::hide`: the
/// checks, quiesce, reset and IOMMU quarantine), logs how, and maps its
/// memory BARs above 4 GiB for the hypervisor's own accesses (the MSI-X
/// table).
pub fn hide(sbdf: Sbdf, matched: HideMatch) -> Result<QuiesceReport, HideError> {
    let mut guard = PT.lock();
    let pt = guard.as_mut().ok_or(HideError::NoSuchFunction)?;
    let (pool, mut hw) = pt.split(&[]);
    let report = pool.hide(&mut hw, sbdf, matched)?;
    let Some(f) = pt.funcs.iter().find(|f| f.sbdf == sbdf) else {
        return Ok(report);
    };
    if !report.is_quiet() {
        let problems: Vec<String> = report.problems().map(|p| format!("{p}")).collect();
        log::warn!(
            "pciback: {sbdf} did not go quiet ({}): it stays hidden, but may still decode or master",
            problems.join(", ")
        );
    }
    log::info!(
        "pciback: hidden {sbdf} ({:04x}:{:04x} {}): {report}; {}",
        f.vendor,
        f.device,
        f.class_name(),
        if report.is_quiet() {
            "quiesced: decoding, bus mastering, INTx, MSI and MSI-X off"
        } else {
            "NOT fully quiesced (see the warning above)"
        }
    );
    for b in f
        .bars
        .iter()
        .filter(|b| b.kind != HostBarKind::Io && b.index != platform::pci::Bar::ROM_INDEX)
    {
        crate::arch::phys::map_device(b.base, b.size, &sbdf);
    }
    Ok(report)
}

/// Gives `sbdf`, hidden and no domain's, back to the host with the config
/// it had before hiding.
pub fn unhide(sbdf: Sbdf) -> Result<(), AssignError> {
    let mut guard = PT.lock();
    let pt = guard.as_mut().ok_or(AssignError::NotHidden)?;
    let (pool, mut hw) = pt.split(&[]);
    pool.unhide(&mut hw, sbdf)?;
    log::info!("pciback: {sbdf} given back to the host, with its config from before hiding");
    Ok(())
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
/// far as `hv::assign` allows (refusals are logged with the reason and
/// what to do); the rest are assigned (reset and quiet) and returned.
pub fn assign(dom: u16, name: &str, list: &[PciAssignment], ram: &[Chunk]) -> Vec<VirtDevice> {
    let mut out = Vec::new();
    let mut guard = PT.lock();
    let Some(pt) = guard.as_mut() else {
        return out;
    };
    for a in list {
        out.extend(assign_in(pt, Who { dom, name }, a, ram).ok());
    }
    out
}

/// Gives running domain `dom` (`name`, its RAM `ram`) the function `a`
/// names, as at its build (hot-plug); the refusal's reason otherwise.
pub fn assign_one(
    dom: u16,
    name: &str,
    a: &PciAssignment,
    ram: &[Chunk],
) -> Result<VirtDevice, String> {
    let mut guard = PT.lock();
    let pt = guard.as_mut().ok_or("no PCI functions are hidden")?;
    assign_in(pt, Who { dom, name }, a, ram)
}

fn assign_in(
    pt: &mut Passthrough,
    who: Who<'_>,
    a: &PciAssignment,
    ram: &[Chunk],
) -> Result<VirtDevice, String> {
    let (pool, mut hw) = pt.split(ram);
    let g = pool
        .assign(&mut hw, who, a)
        .map_err(|e| alloc::format!("{e}"))?;
    let f = pt
        .funcs
        .iter()
        .find(|f| f.sbdf == g.sbdf)
        .ok_or("the function is gone")?;
    let opts = DeviceOptions {
        permissive: a.permissive,
    };
    Ok(VirtDevice::new(
        device_info(f, g.intx_pirq),
        opts,
        &mut pt.host,
    ))
}

/// This machine, as the passthrough policy drives it.
struct Hw<'a> {
    host: &'a mut PciHost,
    funcs: &'a [PciFunction],
    routes: &'a mut IrqRoutes,
    golden: &'a mut VecMap<Sbdf, SavedConfig>,
    host_cfg: &'a mut VecMap<Sbdf, SavedConfig>,
    /// The RAM of the domain being given functions.
    ram: &'a [Chunk],
}

impl Hw<'_> {
    fn find(&self, sbdf: Sbdf) -> Option<&PciFunction> {
        self.funcs.iter().find(|f| f.sbdf == sbdf)
    }
}

impl Machine for Hw<'_> {
    type Line = crate::intx::Line;

    fn function(&self, sbdf: Sbdf) -> Option<Function> {
        self.find(sbdf).map(|f| Function {
            vendor: f.vendor,
            device: f.device,
            class: f.class_name(),
            bridge: f.is_bridge() || f.class == 0x06,
        })
    }

    fn remaps(&self, sbdf: Sbdf) -> bool {
        crate::iommu::remaps(sbdf)
    }

    fn dma_covered(&self, sbdf: Sbdf) -> bool {
        crate::iommu::covers(sbdf)
    }

    fn iommu_attach(&mut self, dom: u16, sbdf: Sbdf) -> Result<(), String> {
        crate::iommu::attach(dom, self.ram, sbdf)
    }

    fn iommu_detach(&mut self, sbdf: Sbdf) {
        crate::iommu::detach(sbdf);
    }

    fn iommu_remove_domain(&mut self, dom: u16) {
        crate::iommu::remove_domain(dom);
    }

    fn quiesce(&mut self, sbdf: Sbdf) -> QuiesceReport {
        let caps = self
            .find(sbdf)
            .map(crate::discover::quiesce_caps)
            .unwrap_or_default();
        pciback::quiesce::quiesce(self.host, sbdf, caps)
    }

    fn save_config(&mut self, sbdf: Sbdf) {
        let saved = pciback::reset::save(self.host, sbdf);
        self.golden.insert(sbdf, saved);
    }

    fn restore_config(&mut self, sbdf: Sbdf) {
        if let Some(saved) = self.golden.get(&sbdf) {
            pciback::reset::restore(self.host, saved);
        }
    }

    fn reset(&mut self, sbdf: Sbdf, why: &str) {
        reset_function(self, sbdf, why);
    }

    fn intx_setup(
        &mut self,
        who: Who<'_>,
        sbdf: Sbdf,
        registry: &Registry,
    ) -> Option<(u8, crate::intx::Line)> {
        let funcs = self.funcs;
        let f = funcs.iter().find(|f| f.sbdf == sbdf)?;
        setup_intx(self, who, f, registry)
    }

    fn intx_teardown(&mut self, line: &crate::intx::Line) {
        crate::intx::teardown(line);
    }

    fn free_routes(&mut self, dom: u16) -> usize {
        let freed = self.routes.remove_domain(dom);
        for r in &freed {
            if let Some(h) = r.handle {
                crate::iommu::unroute_msi(r.sbdf, h);
            }
        }
        freed.len()
    }

    fn host_use(&self, sbdf: Sbdf) -> Option<HostUse> {
        let f = self.find(sbdf)?;
        // COM1 is an ISA device: the ISA (LPC) bridge decodes it. A PCI
        // serial controller decoding 0x3f8 would be the console itself.
        let com1 = |b: &platform::pci::Bar| {
            b.kind == HostBarKind::Io && (b.base..b.base.saturating_add(b.size)).contains(&0x3f8)
        };
        match (f.class, f.subclass) {
            (0x06, 0x01) => Some(HostUse::Console),
            (0x07, _) if f.bars.iter().any(com1) => Some(HostUse::Console),
            // Class 08h/06h: an IOMMU (AMD-Vi's own function; VT-d has none).
            (0x08, 0x06) => Some(HostUse::Iommu),
            _ => None,
        }
    }

    fn sharers(&self, sbdf: Sbdf) -> Vec<Sbdf> {
        let Some(f) = self.find(sbdf) else {
            return Vec::new();
        };
        let acs = f
            .find_ext_cap(vmm_glue::pci::regs::cap_id::EXT_ACS)
            .is_some();
        let alias = crate::iommu::alias_of(sbdf);
        self.funcs
            .iter()
            .map(|o| o.sbdf)
            .filter(|&o| o != sbdf)
            .filter(|&o| {
                let same_device = (o.seg, o.bus, o.dev) == (sbdf.seg, sbdf.bus, sbdf.dev);
                (same_device && f.multifunction && !acs)
                    || alias.is_some() && (Some(o) == alias || crate::iommu::alias_of(o) == alias)
            })
            .collect()
    }

    fn keep_host_config(&mut self, sbdf: Sbdf) {
        let saved = pciback::reset::save(self.host, sbdf);
        self.host_cfg.insert(sbdf, saved);
    }

    fn restore_host_config(&mut self, sbdf: Sbdf) {
        if let Some(saved) = self.host_cfg.remove(&sbdf) {
            pciback::reset::restore(self.host, &saved);
        }
    }

    fn released(&mut self, sbdf: Sbdf) {
        if KEEP_BUS_MASTER.load(core::sync::atomic::Ordering::Relaxed) {
            let cmd = self.host.read16(sbdf, 4);
            self.host.write16(sbdf, 4, cmd | 1 << 2);
            log::warn!(
                "pciback: debug.keep-bus-master: {sbdf} keeps bus mastering on after its release; only the IOMMU stops its DMA"
            );
        }
    }
}

/// Gives `f`'s INTx to domain `dom`: its GSI from `_PRT`, a host vector,
/// the I/O APIC input (masked until the guest binds the pirq, which is the
/// GSI): the pirq and the input. `None` (no INTx) when it has no pin, no
/// route the tables tell statically (the reason is logged), or shares the
/// line with
/// another function (a shared line would let one guest see, or starve,
/// another's interrupts).
fn setup_intx(
    hw: &mut Hw<'_>,
    who: Who<'_>,
    f: &PciFunction,
    registry: &Registry,
) -> Option<(u8, crate::intx::Line)> {
    let dom = who.dom;
    if f.interrupt_pin == 0 {
        return None;
    }
    let intx = match crate::intx::gsi_of(f, hw.funcs, hw.host) {
        Ok(i) => i,
        Err(why) => {
            log::warn!(
                "pciback: {who}: {}: INTx not offered: {why}; MSI and MSI-X are unaffected",
                f.sbdf
            );
            return None;
        }
    };
    log::info!(
        "intx: {} INT{}: {intx}",
        f.sbdf,
        char::from(b'@' + f.interrupt_pin)
    );
    let route = intx.route;
    let (funcs, host) = (hw.funcs, &mut *hw.host);
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
        return None;
    }
    let pirq = u8::try_from(route.gsi).ok()?;
    let Some(vector) = hw.routes.alloc_fixed(dom, f.sbdf, route.gsi) else {
        log::warn!(
            "pciback: {who}: {}: INTx not offered: no free vector",
            f.sbdf
        );
        return None;
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
            Some((pirq, line))
        }
        Err(e) => {
            hw.routes.free(dom, route.gsi);
            log::warn!("pciback: {who}: {}: INTx not offered: {e}", f.sbdf);
            None
        }
    }
}

/// The INTx line of `dom` behind `pirq`.
fn line_of(dom: u16, pirq: u32) -> Option<crate::intx::Line> {
    with(|pt| pt.pool.line(dom, pirq)).flatten()
}

/// Whether `pirq` of `dom` is an INTx line (which needs the guest's EOI).
pub fn is_intx(dom: u16, pirq: u32) -> bool {
    line_of(dom, pirq).is_some()
}

/// The guest bound `pirq` or said it served it (`PHYSDEVOP_eoi`): its INTx
/// input is unmasked. `false` if `pirq` is not one of its INTx lines.
pub fn intx_ready(dom: u16, pirq: u32) -> bool {
    line_of(dom, pirq)
        .map(|l| crate::intx::unmask(&l))
        .is_some()
}

/// The guest closed the port of `pirq`: if it is one of its INTx lines,
/// the input is masked until it binds the pirq again.
pub fn intx_unbound(dom: u16, pirq: u32) {
    if let Some(l) = line_of(dom, pirq) {
        crate::intx::mask(&l);
    }
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

pub(super) fn spin_us(us: u32) {
    let end = crate::domain::time::now_ns() + u64::from(us) * 1000;
    while crate::domain::time::now_ns() < end {
        core::hint::spin_loop();
    }
}

/// Resets `sbdf` (FLR, else D3hot -> D0, else a secondary bus reset when
/// it is alone below its bridge) and says how in the log. A function with
/// no reset keeps going (the policy restores its config), and the log
/// says its internal state is not cleared.
fn reset_function(hw: &mut Hw<'_>, sbdf: Sbdf, why: &str) {
    let parent = hw
        .funcs
        .iter()
        .find(|f| f.sbdf == sbdf)
        .and_then(|f| f.parent);
    let sole = parent.filter(|&b| hw.funcs.iter().filter(|f| f.parent == Some(b)).count() == 1);
    match pciback::reset::reset(&mut ResetHost(hw.host), sbdf, sole) {
        Ok(m) => log::info!("pciback: {sbdf} reset ({why}): {m}"),
        Err(e) => {
            use pciback::reset::NoResetReason as R;
            let hiding = why == hv::assign::HIDING;
            let reason = match e.reason {
                R::NoMethod { .. } => {
                    "no function level reset, no D3hot -> D0 reset and not alone below a bridge"
                }
                R::NoResponse => "nothing answers at that address",
                R::NotReady { .. } => "it did not answer again within a second",
                R::NotABridge { .. } => "the bridge above it is not a PCI-to-PCI bridge",
            };
            if hiding {
                log::info!(
                    "pciback: {sbdf} not reset (hidden): {reason}; its config as hidden is restored"
                );
            } else {
                log::warn!(
                    "pciback: {sbdf} not reset ({why}): {reason}; only its saved config is restored, state inside the device may carry over to the next owner"
                );
            }
        }
    }
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

/// Takes domain `dom`'s functions `sbdfs` back into the pool (reset,
/// quiet, blocked in the IOMMU): the domain must be done with them
/// (windows unmapped, interrupts off).
pub fn give_back(dom: u16, name: &str, sbdfs: &[Sbdf]) {
    let mut guard = PT.lock();
    let Some(pt) = guard.as_mut() else { return };
    let (pool, mut hw) = pt.split(&[]);
    pool.give_back(&mut hw, Who { dom, name }, sbdfs);
}

/// Takes one function `sbdf` back from running domain `dom` (hot-unplug):
/// its remaining interrupt routes freed, then released as at the
/// domain's end (blocked in the IOMMU, reset, quiesced, in the pool).
/// The domain must be done with it (windows unmapped, MSI off).
pub fn release_one(dom: u16, name: &str, sbdf: Sbdf) {
    let mut guard = PT.lock();
    let Some(pt) = guard.as_mut() else { return };
    for r in pt.routes.remove_function(dom, sbdf) {
        if let Some(h) = r.handle {
            crate::iommu::unroute_msi(r.sbdf, h);
        }
    }
    let (pool, mut hw) = pt.split(&[]);
    pool.release(&mut hw, Who { dom, name }, sbdf);
}

/// Raises the pirqs behind the device vectors that fired; the effects wait
/// in the registry for the caller to apply.
#[link_section = ".text.hot"]
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
