//! INTx for passed-through functions: which GSI each function's interrupt
//! pin drives (ACPI `_PRT`, read by `platform::acpi::aml`, with the bridge
//! swizzle below the root bus), and the I/O APIC inputs behind them.
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
use core::sync::atomic::{AtomicU64, Ordering};
use platform::acpi::aml::{self, PrtEntry, PrtSource, Route};
use platform::ioapic::{IoApic, IoApicRegs, Redirection};
use platform::pci::PciFunction;
use spin::Mutex;
use vmm_glue::log;

/// An I/O APIC's index/data window, through the hypervisor's uncached
/// identity map below 4 GiB.
#[derive(Debug)]
struct Window {
    base: u64,
}

impl IoApicRegs for Window {
    fn read(&mut self, reg: u8) -> u32 {
        crate::arch::phys::mmio_write(self.base, 4, u64::from(reg));
        crate::arch::phys::mmio_read(self.base + 0x10, 4).unwrap_or(u64::MAX) as u32
    }

    fn write(&mut self, reg: u8, v: u32) {
        crate::arch::phys::mmio_write(self.base, 4, u64::from(reg));
        crate::arch::phys::mmio_write(self.base + 0x10, 4, u64::from(v));
    }
}

struct Apic {
    id: u8,
    base: u64,
    chip: IoApic<Window>,
}

struct State {
    apics: Vec<Apic>,
    routes: Vec<PrtEntry>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Per vector: the I/O APIC input to mask when it fires, as
/// `base << 16 | (input + 1)`; 0 for none.
static LINES: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

/// Finds the I/O APICs (MADT) and the root bus's routing table (`_PRT` in
/// the DSDT or an SSDT).
pub fn init(madt: Option<&platform::acpi::Madt>, dsdt: Option<&[u8]>, ssdts: &[&[u8]]) {
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
    let routes = match dsdt {
        Some(d) => {
            match aml::pci_routes(d, ssdts) {
                Ok(r) => {
                    let wired = r.iter().filter(|e| e.source.route().is_some()).count();
                    log::info!(
                        "intx: _PRT of the root bus: {} entries, {wired} with a GSI",
                        r.len()
                    );
                    r
                }
                Err(e) => {
                    log::warn!("intx: no PCI routing table from ACPI ({e:?}); INTx is not offered to guests");
                    Vec::new()
                }
            }
        }
        None => {
            log::warn!("intx: no DSDT; INTx is not offered to guests");
            Vec::new()
        }
    };
    *STATE.lock() = Some(State { apics, routes });
}

/// The GSI `f`'s interrupt pin drives: its pin swizzled through each
/// bridge up to the root bus, then looked up in `_PRT`.
pub fn gsi_of(
    f: &PciFunction,
    funcs: &[PciFunction],
    cfg: &mut dyn vmm_glue::PciConfig,
) -> Option<Route> {
    if f.interrupt_pin == 0 || f.interrupt_pin > 4 {
        return None;
    }
    let mut below = Vec::new();
    let mut at = f;
    while let Some(bridge) = at.parent {
        below.push(at.sbdf.dev);
        at = funcs.iter().find(|b| b.sbdf == bridge)?;
    }
    let pin = hv::irqroute::swizzle(f.interrupt_pin - 1, &below);
    let guard = STATE.lock();
    let routes = &guard.as_ref()?.routes;
    if let Some(r) = aml::gsi_for(routes, at.sbdf.dev, pin) {
        return Some(r);
    }
    // A link device whose _CRS is computed (the i440FX/PIIX `LNKA`..`LNKD`
    // links): the PIIX's PIRQ route registers say which ISA IRQ it is.
    let link = routes.iter().find_map(|e| match &e.source {
        PrtSource::NeedsChipsetRouting { link } if e.device == at.sbdf.dev && e.pin == pin => {
            link.last()
        }
        _ => None,
    })?;
    drop(guard);
    piix_link_irq(link.0, funcs, cfg)
}

/// The ISA IRQ the PIIX3/PIIX4 routes PCI link `LNKx` to (its PIRQ route
/// control register x at 0x60 + x of the ISA bridge, function 0: bit 7
/// set = not routed, bits 3:0 the IRQ), as a level-triggered, active-low
/// GSI (an ISA IRQ is the same-numbered I/O APIC input).
fn piix_link_irq(
    link: [u8; 4],
    funcs: &[PciFunction],
    cfg: &mut dyn vmm_glue::PciConfig,
) -> Option<Route> {
    let [b'L', b'N', b'K', x @ b'A'..=b'D'] = link else {
        return None;
    };
    let isa = funcs
        .iter()
        .find(|f| f.vendor == 0x8086 && matches!(f.device, 0x7000 | 0x7110) && f.sbdf.func == 0)?;
    let reg = cfg.read8(isa.sbdf, 0x60 + u16::from(x - b'A'));
    (reg & 0x80 == 0 && (3..16).contains(&(reg & 0xf))).then_some(Route {
        gsi: u32::from(reg & 0xf),
        level: true,
        active_low: true,
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
