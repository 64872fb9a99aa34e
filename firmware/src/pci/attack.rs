//! Attacks through edu's DMA engine, for the IOMMU's isolation tests: a
//! 2 KiB write of 0xa5 bytes to an address the guest does not own, a
//! 2 KiB read from one, and MSI messages forged by DMA to the local APIC
//! window (0xFEEx_xxxx): in the compatibility format a fixed interrupt at
//! vector 0xdf (one the hypervisor hands to devices, and gave nobody) and
//! an NMI; in VT-d's remappable format two indices the guest was never
//! given (one past the hypervisor's table).
//!
//! The guest cannot see whether the IOMMU blocked a transfer (edu
//! reports nothing); its checks pass when it survived, edu still answers
//! and nothing came back: no data from a read, no event on edu's pirq
//! after a forged message. Whether the hypervisor blocked and logged the
//! attempt is in the hypervisor's log.
//!
//! An IOVA is a guest-physical address: one that is also the guest's own
//! RAM (a host address such as `hv.canary=` often is) reaches that RAM
//! through the IOMMU, which is correct. The guest then checks that a
//! write landed in its own RAM and that a read brought its own RAM back,
//! and refuses to aim a write at its own image.
//!
//! QEMU's edu clears DMA address bits above its `dma_mask` (28 bits by
//! default, so 0xFEE0_0000 becomes 0x0EE0_0000); the guest says so when
//! an address is above it.

use core::fmt;
use core::sync::atomic::Ordering;

use super::edu::{self, reg, DEVICE_BUFFER, DMA_BYTES, DMA_LIMIT, DMA_TO_EDU, DMA_TO_RAM};
use super::mmio::Mmio;
use super::{Function, Irq, Transport};
use crate::println;
use crate::report::check;
use crate::xen::pcifront::Text;

/// Attacks one command line may ask for.
pub const MAX_ATTACKS: usize = 8;
/// The local APICs' MSI window.
pub const MSI_WINDOW: u64 = 0xfee0_0000;
/// Forged MSI data: fixed delivery, level assert, vector 0xdf.
pub const MSI_FIXED: u32 = 0x0000_40df;
/// Forged MSI data: NMI delivery.
pub const MSI_NMI: u32 = 0x0000_0400;
/// The remappable-format indices forged: the last entry of a 256-entry
/// table (free unless 256 interrupts are routed) and the largest index
/// there is.
pub const FORGED_INDICES: [u16; 2] = [255, 0x7fff];
/// Milliseconds to watch for an event after a forged message.
const WATCH_MS: u64 = 50;
/// The byte a DMA write attack carries.
const WRITE_BYTE: u8 = 0xa5;
/// The byte edu's buffer holds before a DMA read attack.
const READ_FILL: u8 = 0x5a;

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// `dma-write:ADDR`: 2 KiB of 0xa5 from the guest to IOVA ADDR.
    DmaWrite(u64),
    /// `dma-read:ADDR`: 2 KiB from IOVA ADDR into edu, then into the guest.
    DmaRead(u64),
    /// `msi-forge[:fixed|:nmi|:remap]`: MSI messages written by DMA to
    /// the interrupt window (all three kinds by default).
    MsiForge {
        /// Forge [`MSI_FIXED`].
        fixed: bool,
        /// Forge [`MSI_NMI`].
        nmi: bool,
        /// Forge remappable-format messages with [`FORGED_INDICES`].
        remap: bool,
    },
    /// `dma-after-death`: starts a 2 KiB DMA of 0xa5 into the guest's own
    /// buffer and powers the guest off before edu finishes it (100 ms
    /// later): the write comes when the memory is no longer the guest's.
    DmaAfterDeath,
    /// A protocol or lifecycle case ([`super::attack_proto`]), for the
    /// domain id given (0: any).
    Proto(super::attack_proto::Case, u16),
    /// `config`, `bar`, `msix` or `irq`: a class of attacks on the
    /// backend's virtualisation ([`super::attack_pci`]).
    Pci(super::attack_pci::Class),
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Attack::DmaWrite(a) => write!(f, "dma-write {a:#x}"),
            Attack::DmaRead(a) => write!(f, "dma-read {a:#x}"),
            Attack::DmaAfterDeath => f.write_str("dma-after-death"),
            Attack::Proto(c, _) => f.write_str(c.name()),
            Attack::Pci(c) => f.write_str(c.name()),
            Attack::MsiForge { fixed, nmi, remap } => match (fixed, nmi, remap) {
                (true, false, false) => f.write_str("msi-forge:fixed"),
                (false, true, false) => f.write_str("msi-forge:nmi"),
                (false, false, true) => f.write_str("msi-forge:remap"),
                _ => f.write_str("msi-forge"),
            },
        }
    }
}

impl Attack {
    /// Reads one item of `attack=`: `dma-write:ADDR`, `dma-read:ADDR`
    /// (ADDR hexadecimal with `0x`, `canary` for the `hv.canary=` address,
    /// or `peer` for the `hv.peer=` address: where another guest's memory
    /// is in the host), `msi-forge`, `msi-forge:fixed`, `msi-forge:nmi`,
    /// `msi-forge:remap`, `dma-after-death`, a protocol or lifecycle case
    /// of [`super::attack_proto`] (`NAME` or `NAME@DOMID`), or a class of
    /// [`super::attack_pci`] (`config`, `bar`, `msix`, `irq`).
    pub fn parse(
        item: &str,
        canary: Option<u64>,
        peer: Option<u64>,
    ) -> Result<Attack, &'static str> {
        let (fixed, nmi, remap) = match item {
            "msi-forge" => (true, true, true),
            "msi-forge:fixed" => (true, false, false),
            "msi-forge:nmi" => (false, true, false),
            "msi-forge:remap" => (false, false, true),
            _ => (false, false, false),
        };
        if fixed || nmi || remap {
            return Ok(Attack::MsiForge { fixed, nmi, remap });
        }
        if item == "dma-after-death" {
            return Ok(Attack::DmaAfterDeath);
        }
        if let Some((c, dom)) = super::attack_proto::Case::parse(item) {
            return Ok(Attack::Proto(c, dom));
        }
        if let Some(c) = super::attack_pci::Class::parse(item) {
            return Ok(Attack::Pci(c));
        }
        let (kind, addr) = item.split_once(':').ok_or("unknown attack")?;
        let addr = match addr {
            "canary" => canary.ok_or("no hv.canary= on the command line")?,
            "peer" => peer.ok_or("no hv.peer= on the command line")?,
            a => parse_hex(a).ok_or("the address is not 0x<hex>")?,
        };
        match kind {
            "dma-write" => Ok(Attack::DmaWrite(addr)),
            "dma-read" => Ok(Attack::DmaRead(addr)),
            _ => Err("unknown attack"),
        }
    }
}

/// `0x<hex>` as a number.
pub fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// RAM ranges the memory map gives the guest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ram {
    ranges: [(u64, u64); 8],
    n: usize,
}

impl Ram {
    /// Adds `[start, end)` (ignored past 8 ranges).
    pub fn add(&mut self, start: u64, end: u64) {
        if let Some(r) = self.ranges.get_mut(self.n) {
            *r = (start, end);
            self.n += 1;
        }
    }

    /// Whether `[addr, addr + len)` overlaps the guest's RAM below 1 GiB
    /// (identity mapped, so the guest can look at it).
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        self.ranges[..self.n]
            .iter()
            .any(|&(s, e)| addr < e && s < end && end <= crate::boot::IDENTITY_MAPPED)
    }
}

/// Runs `attacks` with edu function `f`, in order; `ram` is the guest's
/// RAM.
pub fn run<T: Transport>(t: &mut T, f: &Function, attacks: &[Attack], ram: &Ram) {
    let mmio = match edu::open(t, f) {
        Ok(m) => m,
        Err(why) => {
            println!("xpci: attack: edu: {why}");
            check("attack: edu ready", false);
            return;
        }
    };
    for &a in attacks {
        match a {
            Attack::DmaWrite(addr) => dma_write(&mmio, addr, ram),
            Attack::DmaRead(addr) => dma_read(&mmio, addr, ram),
            Attack::MsiForge { fixed, nmi, remap } => msi_forge(t, f, &mmio, fixed, nmi, remap),
            Attack::DmaAfterDeath => dma_after_death(&mmio),
            // Run by the transport that has the raw ops (`xpci`).
            Attack::Proto(..) | Attack::Pci(_) => {}
        }
    }
}

/// Says so when edu will not use `addr` as given.
fn note_mask(addr: u64, len: u64) {
    if addr.saturating_add(len) > DMA_LIMIT {
        println!(
            "xpci: attack: {addr:#x} is above edu's default 28-bit DMA mask: \
             QEMU's edu uses {:#x} unless the device has a wider dma_mask",
            addr & (DMA_LIMIT - 1)
        );
    }
}

/// Fills the first `len` bytes of the guest's source buffer with `byte`.
fn fill_source(byte: u8, len: usize) {
    let (src, _) = edu::buffers();
    for i in 0..len {
        src.u8(i).store(byte, Ordering::Relaxed);
    }
    core::sync::atomic::fence(Ordering::SeqCst);
}

/// edu's status register and identification after an attack; whether
/// edu still answers.
fn after(mmio: &Mmio) -> (u32, bool) {
    let status = mmio.read32(reg::STATUS);
    (status, mmio.read32(reg::ID) == edu::ID_VALUE)
}

fn outcome(done: bool) -> &'static str {
    if done {
        "done"
    } else {
        "timed out"
    }
}

/// Whether the guest's own RAM at `addr` holds `len` bytes of `byte`.
fn own_ram_holds(addr: u64, len: usize, byte: u8) -> bool {
    (0..len as u64).all(|i| read_own(addr + i) == byte)
}

/// A byte of the guest's own RAM (identity mapped below 1 GiB).
fn read_own(addr: u64) -> u8 {
    let page = crate::xen::page::Page::at(addr >> 12);
    page.map_or(0, |p| p.u8((addr & 0xfff) as usize).load(Ordering::Relaxed))
}

fn dma_write(mmio: &Mmio, addr: u64, ram: &Ram) {
    let what = Attack::DmaWrite(addr);
    let own = ram.overlaps(addr, DMA_BYTES as u64);
    let (start, end) = crate::boot::image_range();
    if own && addr < end.raw() && start.raw() < addr + DMA_BYTES as u64 {
        println!("xpci: attack: {what}: that is this guest's image; not attacked");
        crate::report::skip(
            Text::new(format_args!(
                "attack: {what}: the guest survived and edu still answers"
            ))
            .as_str(),
            "the address is this guest's image",
        );
        return;
    }
    note_mask(addr, DMA_BYTES as u64);
    if own {
        println!("xpci: attack: {what}: that is this guest's own RAM: the write must land there");
    }
    fill_source(WRITE_BYTE, DMA_BYTES);
    let (src, _) = edu::buffers();
    let loaded = edu::dma(mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, None).is_some();
    let done = loaded && edu::dma(mmio, DEVICE_BUFFER, addr, DMA_TO_RAM, None).is_some();
    let (status, alive) = after(mmio);
    println!(
        "xpci: attack: {what} {}, edu status {status:#04x}",
        outcome(done)
    );
    let landed = !own || own_ram_holds(addr, DMA_BYTES, WRITE_BYTE);
    if own {
        println!(
            "xpci: attack: {what}: this guest's RAM there {} the written bytes",
            if landed { "holds" } else { "does not hold" }
        );
    }
    check_named(
        what,
        "the guest survived and edu still answers",
        done && alive && landed,
    );
}

fn dma_read(mmio: &Mmio, addr: u64, ram: &Ram) {
    let what = Attack::DmaRead(addr);
    let own = ram.overlaps(addr, DMA_BYTES as u64);
    note_mask(addr, DMA_BYTES as u64);
    let (src, dst) = edu::buffers();
    fill_source(READ_FILL, DMA_BYTES);
    for i in 0..DMA_BYTES {
        dst.u8(i).store(0xff, Ordering::Relaxed);
    }
    let loaded = edu::dma(mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, None).is_some();
    let read = loaded && edu::dma(mmio, addr, DEVICE_BUFFER, DMA_TO_EDU, None).is_some();
    let done = read && edu::dma(mmio, DEVICE_BUFFER, dst.addr(), DMA_TO_RAM, None).is_some();
    core::sync::atomic::fence(Ordering::SeqCst);
    let all = |b: u8| (0..DMA_BYTES).all(|i| dst.u8(i).load(Ordering::Relaxed) == b);
    let mine = own
        && (0..DMA_BYTES).all(|i| dst.u8(i).load(Ordering::Relaxed) == read_own(addr + i as u64));
    let got = if mine {
        "its own RAM"
    } else if all(READ_FILL) {
        "edu's buffer unchanged"
    } else if all(0) {
        "zeros"
    } else {
        "data"
    };
    let (status, alive) = after(mmio);
    println!(
        "xpci: attack: {what} {}, edu status {status:#04x}; the guest got {got} (first bytes {:#018x})",
        outcome(done),
        dst.u64(0).load(Ordering::Relaxed)
    );
    check_named(
        what,
        "the guest survived and received nothing from there",
        done && alive && got != "data",
    );
}

fn msi_forge<T: Transport>(
    t: &mut T,
    f: &Function,
    mmio: &Mmio,
    fixed: bool,
    nmi: bool,
    remap: bool,
) {
    let irq = match t.enable_msi(f) {
        Ok(irq) => irq,
        Err(e) => {
            println!("xpci: attack: msi-forge: enable MSI: {e}");
            check("attack: msi-forge: MSI enabled", false);
            return;
        }
    };
    println!("xpci: attack: msi-forge: edu's MSI as {irq}");
    note_mask(MSI_WINDOW, 4);
    if fixed {
        forge(mmio, irq, "fixed vector 0xdf", MSI_WINDOW, MSI_FIXED);
    }
    if nmi {
        forge(mmio, irq, "NMI", MSI_WINDOW, MSI_NMI);
    }
    if remap {
        for index in FORGED_INDICES {
            let what = Text::new(format_args!("remappable index {index}"));
            forge(mmio, irq, what.as_str(), remappable(index), 0);
        }
    }
    let _ = t.disable_msi(f);
}

/// VT-d's remappable-format message address for `index` (interrupt
/// format bit 4 set, index bits 14:0 at 19:5 and bit 15 at 2, no
/// subhandle).
pub const fn remappable(index: u16) -> u64 {
    MSI_WINDOW | 1 << 4 | ((index as u64) & 0x7fff) << 5 | ((index as u64) >> 15) << 2
}

/// One forged message: `data` to `address` by a 4-byte DMA, then
/// [`WATCH_MS`] of watching edu's pirq.
fn forge(mmio: &Mmio, irq: Irq, kind: &str, address: u64, data: u32) {
    let (src, _) = edu::buffers();
    src.u32(0).store(data, Ordering::SeqCst);
    let before = irq.count();
    let loaded = edu::dma_of(mmio, src.addr(), DEVICE_BUFFER, 4, DMA_TO_EDU, None).is_some();
    let done = loaded && edu::dma_of(mmio, DEVICE_BUFFER, address, 4, DMA_TO_RAM, None).is_some();
    let arrived = irq.wait(before, WATCH_MS).is_some();
    let events = irq.count().wrapping_sub(before);
    let (status, alive) = after(mmio);
    println!(
        "xpci: attack: msi-forge {kind} (data {data:#010x} to {address:#x}) {}, edu status {status:#04x}; \
         {events} events on {irq} in {WATCH_MS} ms",
        outcome(done)
    );
    let name = Text::new(format_args!(
        "attack: msi-forge {kind}: the guest survived and saw no event"
    ));
    check(name.as_str(), done && alive && !arrived);
}

/// Loads edu with 2 KiB of 0xa5, starts its DMA into the guest's own
/// buffer and powers the guest off at once: whether the write landed
/// anywhere is for the hypervisor to say (`debug.canary` checks the
/// domain's freed memory).
fn dma_after_death(mmio: &Mmio) -> ! {
    fill_source(WRITE_BYTE, DMA_BYTES);
    let (src, dst) = edu::buffers();
    let loaded = edu::dma(mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, None).is_some();
    check("attack: dma-after-death: edu loaded", loaded);
    edu::dma_start(
        mmio,
        DEVICE_BUFFER,
        dst.addr(),
        DMA_BYTES as u64,
        DMA_TO_RAM,
    );
    println!(
        "xpci: attack: dma-after-death: edu's DMA of {DMA_BYTES} bytes to {:#x} (this guest's buffer) started; powering off before it ends",
        dst.addr()
    );
    crate::report::summary();
    crate::power::shutdown(crate::power::ShutdownReason::Poweroff)
}

/// A check named `attack: <what>: <claim>`.
fn check_named(what: Attack, claim: &str, ok: bool) {
    let name = Text::new(format_args!("attack: {what}: {claim}"));
    check(name.as_str(), ok);
}
