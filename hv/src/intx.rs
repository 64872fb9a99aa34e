//! INTx for passed-through functions: which GSI each function's interrupt
//! pin drives (the `_PRT`s of its host bridge and of the bridges above it,
//! read by `platform::acpi::aml`, with the swizzle through a bridge that
//! has none, as Linux looks them up), and the I/O APIC inputs behind
//! them. What the tables do not tell statically is refused with the
//! reason, never guessed.
//!
//! A line is level-triggered: when its vector arrives the handler masks the
//! input before the local APIC's EOI (so the still-asserted line cannot
//! fire again), the owner's pirq is raised, and the input is unmasked when
//! the guest says it is done (`PHYSDEVOP_eoi`), or when it binds the pirq.
//! With VT-d interrupt remapping the input's redirection entry is in
//! remappable format, pointing at a level-triggered remapping entry that
//! only that I/O APIC may use; with AMD-Vi it keeps the ordinary format
//! and its vector is the index into the I/O APIC's own remapping table.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use platform::acpi::aml::{self, AmlPath, PrtError, PrtSource, Route, Routing};
use platform::ioapic::{IoApic, IoApicRegs, Redirection};
use platform::pci::{chipset, PciFunction};
use spin::Mutex;
use vmm_glue::log;

/// An I/O APIC's index/data window, through the hypervisor's uncached
/// identity map below 4 GiB.
#[derive(Debug)]
struct Window {
    base: u64,
}

// SAFETY (both accesses): `base` is an I/O APIC's register window (IOREGSEL
// at 0, IOWIN at 0x10) from the MADT, which only the hypervisor drives.
impl IoApicRegs for Window {
    fn read(&mut self, reg: u8) -> u32 {
        // SAFETY: this I/O APIC's IOREGSEL and IOWIN (above).
        unsafe {
            crate::arch::phys::mmio_write(self.base, 4, u64::from(reg));
            crate::arch::phys::mmio_read(self.base + 0x10, 4).unwrap_or(u64::MAX) as u32
        }
    }

    fn write(&mut self, reg: u8, v: u32) {
        // SAFETY: this I/O APIC's IOREGSEL and IOWIN (above).
        unsafe {
            crate::arch::phys::mmio_write(self.base, 4, u64::from(reg));
            crate::arch::phys::mmio_write(self.base + 0x10, 4, u64::from(v));
        }
    }
}

struct Apic {
    id: u8,
    base: u64,
    chip: IoApic<Window>,
}

struct State {
    apics: Vec<Apic>,
    routing: Option<Routing<'static>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Per vector: the I/O APIC input to mask when it fires, as
/// `base << 16 | (input + 1)`; 0 for none.
static LINES: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

/// Finds the I/O APICs (MADT) and the host bridges with their routing
/// tables (`_PRT` in the DSDT or an SSDT).
pub fn init(
    madt: Option<&platform::acpi::Madt>,
    dsdt: Option<&'static [u8]>,
    ssdts: &[&'static [u8]],
) {
    let mut apics = Vec::new();
    if let Some(m) = madt {
        for io in m.io_apics() {
            let base = u64::from(io.address);
            let mut chip = IoApic::new(Window { base }, io.gsi_base);
            let range = chip.gsi_range();
            // Everything masked until a passed-through function needs it.
            for gsi in range.clone() {
                let _ = chip.mask(gsi);
            }
            log::info!(
                "intx: I/O APIC {} at {base:#x}: GSIs {}-{}, all inputs masked",
                io.id,
                range.start,
                range.end.saturating_sub(1)
            );
            apics.push(Apic {
                id: io.id,
                base,
                chip,
            });
        }
    }
    let routing = match dsdt.map(|d| Routing::build(d, ssdts)) {
        Some(Ok(r)) => {
            for e in r.namespace().errors() {
                let table = match e.table {
                    0 => dsdt,
                    i => ssdts.get(i - 1).copied(),
                };
                aml_error(table.unwrap_or_default(), e);
            }
            report(&r);
            Some(r)
        }
        Some(Err(e)) => {
            log::warn!("intx: the DSDT cannot be read ({e}); INTx is not offered to guests");
            None
        }
        None => {
            log::warn!("intx: no DSDT; INTx is not offered to guests");
            None
        }
    };
    *STATE.lock() = Some(State { apics, routing });
}

/// Where the AML reader gave up in `table`: named by signature, OEM IDs
/// and address (the tables are identity-mapped), with what is lost.
fn aml_error(table: &[u8], e: &platform::acpi::aml::AmlError) {
    let id = |r: core::ops::Range<usize>| platform::acpi::IdText(table.get(r).unwrap_or_default());
    log::warn!(
        "intx: {} (OEM \"{}\" \"{}\") at {:#x}: {} at offset {:#x}; the rest of that scope is not read (a _PRT there is lost)",
        id(0..4),
        id(10..16),
        id(16..24),
        table.as_ptr() as u64,
        e.kind,
        e.offset
    );
}

/// One line per host bridge: its root bus and what its `_PRT` gives.
fn report(r: &Routing<'_>) {
    if r.host_bridges().is_empty() {
        log::warn!("intx: no PCI host bridge in the DSDT; INTx is not offered to guests");
    }
    for h in r.host_bridges() {
        let (path, seg, bus) = (&h.path, h.segment, h.bus);
        if let Some(what) = h.undetermined {
            log::warn!(
                "intx: host bridge {path}: its {what} is computed at run time; no INTx is routed through it"
            );
            continue;
        }
        match r.prt(path) {
            None => log::info!("intx: host bridge {path} (root bus {seg:04x}:{bus:02x}): no _PRT"),
            Some(Ok(p)) => {
                let wired = p
                    .entries
                    .iter()
                    .filter(|e| e.source.route().is_some())
                    .count();
                log::info!(
                    "intx: host bridge {path} (root bus {seg:04x}:{bus:02x}): {} gives {} in APIC mode: {} entries, {wired} with a GSI",
                    p.path,
                    p.from,
                    p.entries.len()
                );
                if let Some(e) = p.skipped.first() {
                    log::warn!(
                        "intx: {}: {} invalid entries left out, as Linux does (the first: {e})",
                        p.path,
                        p.skipped.len()
                    );
                }
            }
            Some(Err(e)) => log::warn!(
                "intx: host bridge {path} (root bus {seg:04x}:{bus:02x}): {}",
                Refusal::Prt(e)
            ),
        }
    }
}

/// Where a function's INTx pin is delivered, and the table entry that
/// says so.
#[derive(Clone, Debug)]
pub struct Intx {
    pub route: Route,
    /// The `_PRT` the entry is in.
    pub prt: AmlPath,
    /// The function the entry is for: the function itself, or the bridge
    /// above it its pin was swizzled up to.
    pub at: vmm_glue::Sbdf,
    /// The entry's pin (after any swizzle).
    pub pin: u8,
    /// How many bridges the pin was swizzled through first.
    pub swizzled: usize,
    /// The link device, if the entry names one.
    pub link: Option<AmlPath>,
}

impl fmt::Display for Intx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entry for {} INT{}",
            self.prt,
            self.at,
            char::from(b'A' + self.pin)
        )?;
        match self.swizzled {
            0 => {}
            1 => write!(f, " (its pin swizzled through 1 bridge)")?,
            n => write!(f, " (its pin swizzled through {n} bridges)")?,
        }
        if let Some(l) = &self.link {
            write!(f, " via {l}")?;
        }
        write!(f, ": GSI {}", self.route.gsi)
    }
}

/// Why a function gets no INTx.
#[derive(Clone, Debug)]
pub enum Refusal {
    /// No DSDT, or one that cannot be read.
    NoRouting,
    /// No host bridge in the namespace has this root bus.
    NoHostBridge(u16, u8),
    /// No host bridge is known to have this root bus, and one whose
    /// `_SEG` or `_BBN` cannot be read statically may be the one.
    UndeterminedRoot(u16, u8, AmlPath, aml::NameSeg),
    /// No table on the way up has an entry for the pin.
    NoEntry,
    /// A table on the way cannot be decided or read.
    Prt(PrtError),
    /// The entry's link device cannot be followed.
    Link(aml::NameString, &'static str),
    /// The entry's link device computes its interrupt from chipset
    /// registers this hypervisor does not know.
    Chipset(AmlPath),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRouting => write!(f, "no ACPI routing tables"),
            Self::NoHostBridge(s, b) => write!(f, "no host bridge for root bus {s:04x}:{b:02x} in the DSDT"),
            Self::UndeterminedRoot(s, b, path, what) => write!(
                f,
                "no host bridge is known for root bus {s:04x}:{b:02x}, and {path}'s {what} is computed at run time, so it may be that bridge; INTx refused rather than guessed"
            ),
            Self::NoEntry => write!(f, "no _PRT on the way to the root bus has an entry for its pin"),
            Self::Prt(PrtError::Undecided { prt, why }) => {
                write!(f, "{prt} cannot be decided statically: {} at +{:#x}", why.why, why.offset)?;
                if let Some(n) = &why.name {
                    write!(f, " (depends on {n})")?;
                }
                write!(f, "; INTx refused rather than guessed")
            }
            Self::Prt(PrtError::Bad { prt, error }) => write!(f, "{prt}: {error}"),
            Self::Link(l, why) => write!(f, "link {l} cannot be followed: {why}"),
            Self::Chipset(l) => write!(
                f,
                "link {l} computes its interrupt from chipset registers this hypervisor does not know (not a PIIX or ICH9 PIRQ link)"
            ),
        }
    }
}

/// The GSI `f`'s interrupt pin drives, found as Linux finds it: the
/// `_PRT` of each bus from `f`'s up to the root (a bridge's own table,
/// found by `_ADR` under its parent's device, else the pin swizzled
/// through it), keyed by segment and bus through the host bridges.
pub fn gsi_of(
    f: &PciFunction,
    funcs: &[PciFunction],
    cfg: &mut dyn vmm_glue::PciConfig,
) -> Result<Intx, Refusal> {
    if f.interrupt_pin == 0 || f.interrupt_pin > 4 {
        return Err(Refusal::NoEntry);
    }
    // The function and the bridges above it (loop-proof: at most one
    // step per function).
    let mut chain = alloc::vec![f];
    for b in platform::pci::upstream_bridges(funcs, f.sbdf) {
        chain.push(funcs.iter().find(|x| x.sbdf == b).ok_or(Refusal::NoEntry)?);
    }
    let at = *chain.last().ok_or(Refusal::NoEntry)?;
    let guard = STATE.lock();
    let r = guard
        .as_ref()
        .and_then(|s| s.routing.as_ref())
        .ok_or(Refusal::NoRouting)?;
    let (seg, bus) = (at.sbdf.seg, at.sbdf.bus);
    let host = r.host_bridge(seg, bus).ok_or_else(|| {
        r.undetermined_bridge()
            .and_then(|h| {
                Some(Refusal::UndeterminedRoot(
                    seg,
                    bus,
                    h.path.clone(),
                    h.undetermined?,
                ))
            })
            .unwrap_or(Refusal::NoHostBridge(seg, bus))
    })?;
    // The ACPI device of the bus each function sits on: the host bridge
    // for the root bus, below it each bridge's device by _ADR.
    let mut buses: Vec<Option<&AmlPath>> = alloc::vec![None; chain.len()];
    let mut dev = Some(&host.path);
    for i in (0..chain.len()).rev() {
        buses[i] = dev;
        dev = dev.and_then(|p| r.child(p, chain[i].sbdf.dev, chain[i].sbdf.func));
    }
    let devices: Vec<u8> = chain.iter().map(|c| c.sbdf.dev).collect();
    let found = hv::irqroute::lookup(&devices, f.interrupt_pin - 1, |i, d, p| {
        match r.prt(buses[i]?)? {
            Err(e) => Some(Err(Refusal::Prt(e))),
            Ok(prt) => {
                let e = prt
                    .entries
                    .into_iter()
                    .find(|e| e.device == d && e.pin == p)?;
                Some(Ok((prt.path, e)))
            }
        }
    });
    let (swizzled, hit) = found.ok_or(Refusal::NoEntry)?;
    let (prt, entry) = hit?;
    let (route, link) = match entry.source {
        PrtSource::Wired(route) => (route, None),
        PrtSource::Link { link, route } => (route, Some(link)),
        PrtSource::NeedsChipsetRouting { link } => {
            let flags = r.link_flags(&link);
            drop(guard);
            match chipset_link_irq(&link, flags, funcs, cfg) {
                Some(route) => (route, Some(link)),
                None => return Err(Refusal::Chipset(link)),
            }
        }
        PrtSource::Unresolved { link, why } => return Err(Refusal::Link(link, why)),
    };
    Ok(Intx {
        route,
        prt,
        at: chain.get(swizzled).map_or(f.sbdf, |c| c.sbdf),
        pin: entry.pin,
        swizzled,
        link,
    })
}

/// The ISA IRQ a PIIX3/PIIX4 or ICH9 routes PCI link `LNKx` to (its PIRQ
/// route control register: `platform::pci::chipset`), as a GSI (an ISA
/// IRQ is the same-numbered I/O APIC input) with the trigger and polarity
/// of the link's `_PRS` (level, active-low when it has none).
fn chipset_link_irq(
    link: &AmlPath,
    flags: Option<(bool, bool)>,
    funcs: &[PciFunction],
    cfg: &mut dyn vmm_glue::PciConfig,
) -> Option<Route> {
    let [b'L', b'N', b'K', x @ b'A'..=b'H'] = link.last()?.0 else {
        return None;
    };
    let x = x - b'A';
    let (bridge, reg) = funcs
        .iter()
        .find_map(|f| chipset::pirq_register(f.vendor, f.device, f.sbdf.func, x).map(|r| (f, r)))?;
    let irq = chipset::pirq_irq(cfg.read8(bridge.sbdf, reg))?;
    let (level, active_low) = flags.unwrap_or((true, true));
    Some(Route {
        gsi: u32::from(irq),
        level,
        active_low,
    })
}

/// An I/O APIC input set up for a passed-through function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub gsi: u32,
    pub vector: u8,
    ioapic: u8,
    /// Its interrupt-remapping entry, if remapped.
    handle: Option<u16>,
}

/// Programs the input of `route` to send `vector` (masked; see
/// [`unmask`]).
pub fn setup(route: Route, vector: u8) -> Result<Line, String> {
    let mut guard = STATE.lock();
    let st = guard.as_mut().ok_or("no I/O APIC")?;
    let apic = st
        .apics
        .iter_mut()
        .find(|a| a.chip.gsi_range().contains(&route.gsi))
        .ok_or("no I/O APIC has that GSI")?;
    let remapped = match crate::iommu::route_ioapic(apic.id, vector) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return Err(alloc::format!("no interrupt remapping entry: {e}")),
        None => None,
    };
    let r = match remapped {
        Some(r) if r.remappable_format => {
            Redirection::remapped(r.handle, vector, route.level, route.active_low, true)
        }
        // AMD-Vi: the vector is the index of the remapping entry.
        _ => Redirection::fixed(
            vector,
            crate::arch::lapic::id(),
            route.level,
            route.active_low,
            true,
        ),
    };
    let handle = remapped.map(|r| r.handle);
    apic.chip
        .set(route.gsi, r)
        .map_err(|e| alloc::format!("{e:?}"))?;
    let input = route.gsi - apic.chip.gsi_range().start;
    if route.level {
        LINES[usize::from(vector)].store(apic.base << 16 | u64::from(input + 1), Ordering::Release);
    }
    Ok(Line {
        gsi: route.gsi,
        vector,
        ioapic: apic.id,
        handle,
    })
}

fn with_chip(gsi: u32, f: impl FnOnce(&mut IoApic<Window>, u32)) {
    if let Some(st) = STATE.lock().as_mut() {
        if let Some(a) = st
            .apics
            .iter_mut()
            .find(|a| a.chip.gsi_range().contains(&gsi))
        {
            f(&mut a.chip, gsi);
        }
    }
}

/// Lets the input deliver again.
pub fn unmask(line: &Line) {
    with_chip(line.gsi, |c, g| {
        let _ = c.unmask(g);
    });
}

/// Stops the input delivering (until [`unmask`]).
pub fn mask(line: &Line) {
    with_chip(line.gsi, |c, g| {
        let _ = c.mask(g);
    });
}

/// Masks the input, clears it and frees its remapping entry.
pub fn teardown(line: &Line) {
    with_chip(line.gsi, |c, g| {
        let _ = c.mask(g);
    });
    LINES[usize::from(line.vector)].store(0, Ordering::Release);
    if let Some(h) = line.handle {
        crate::iommu::unroute_ioapic(line.ioapic, h);
    }
}

/// From the interrupt handler: masks the level-triggered input behind
/// `vector`, if there is one, before its EOI. No lock: the host takes
/// interrupts only where no other I/O APIC access is under way.
pub fn mask_from_interrupt(vector: u8) {
    let v = LINES[usize::from(vector)].load(Ordering::Acquire);
    if v == 0 {
        return;
    }
    let mut window = Window { base: v >> 16 };
    let input = (v & 0xffff) as u8 - 1;
    // The low half of redirection entry `input`; bit 16 masks it.
    let reg = 0x10 + 2 * input;
    let low = window.read(reg);
    window.write(reg, low | 1 << 16);
}
