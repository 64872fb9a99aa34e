//! The native transport, for QEMU booting the image without a hypervisor:
//! configuration mechanism #1 (address to port 0xCF8, data at 0xCFC +
//! offset % 4, bus 0 only), and interrupts by MSI/MSI-X messages the guest
//! programs itself (address 0xFEE0_0000 with the local APIC ID of this
//! CPU, data = a vector of the guest's IDT). The local APIC is software
//! enabled through its spurious-interrupt vector register; its timer and
//! LINT pins and the 8259 PICs are masked so that nothing else arrives.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::mmio::Mmio;
use super::{Bar, BarKind, Counters, Function, Irq, PciError, Root, Sbdf, Transport};
use crate::{cpu, idt};

/// The configuration address port.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The configuration data port.
pub const CONFIG_DATA: u16 = 0xcfc;
/// The MSI address of the local APICs (destination ID in bits 19:12).
pub const MSI_ADDRESS: u32 = 0xfee0_0000;
/// `IA32_APIC_BASE`.
const MSR_APIC_BASE: u32 = 0x1b;
/// The vectors MSI and MSI-X messages name, one per interrupt asked for.
pub const VECTORS: [u8; 4] = [0x50, 0x51, 0x52, 0x53];
/// The local APIC's spurious-interrupt vector.
pub const SPURIOUS: u8 = 0xff;

/// Local APIC registers (xAPIC offsets; x2APIC MSR = 0x800 + offset/16).
mod lapic {
    pub const ID: u32 = 0x20;
    pub const TPR: u32 = 0x80;
    pub const EOI: u32 = 0xb0;
    pub const SVR: u32 = 0xf0;
    pub const LVT_TIMER: u32 = 0x320;
    pub const LVT_LINT0: u32 = 0x350;
    pub const LVT_LINT1: u32 = 0x360;
    pub const LVT_ERROR: u32 = 0x370;
    /// LVT mask bit.
    pub const MASKED: u32 = 1 << 16;
    /// SVR: APIC software enable.
    pub const ENABLE: u32 = 1 << 8;
}

static COUNTERS: Counters = Counters::new();
/// xAPIC MMIO base, 0 in x2APIC mode or before setup.
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);
static X2APIC: AtomicBool = AtomicBool::new(false);
static NEXT_VECTOR: AtomicUsize = AtomicUsize::new(0);

fn lapic_read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        return cpu::rdmsr(0x800 + reg / 16) as u32;
    }
    let base = XAPIC_BASE.load(Ordering::Relaxed);
    let m = lapic_mmio(base);
    m.map_or(u32::MAX, |m| m.read32(u64::from(reg)))
}

fn lapic_write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC register MSRs change interrupt delivery only,
        // which is what this module sets up.
        unsafe { cpu::wrmsr(0x800 + reg / 16, u64::from(value)) };
        return;
    }
    if let Some(m) = lapic_mmio(XAPIC_BASE.load(Ordering::Relaxed)) {
        m.write32(u64::from(reg), value);
    }
}

fn lapic_mmio(base: u64) -> Option<Mmio> {
    if base == 0 {
        return None;
    }
    Mmio::map(&Bar {
        kind: BarKind::Mem32,
        prefetchable: false,
        addr: base,
        size: 4096,
    })
    .ok()
}

fn handle(i: usize) {
    COUNTERS.hit(i);
    lapic_write(lapic::EOI, 0);
}

fn vector0() {
    handle(0);
}
fn vector1() {
    handle(1);
}
fn vector2() {
    handle(2);
}
fn vector3() {
    handle(3);
}
fn spurious() {}

/// Interrupts taken at `vector` (one of [`VECTORS`]).
pub fn interrupts(vector: u8) -> u32 {
    VECTORS
        .iter()
        .position(|&v| v == vector)
        .map_or(0, |i| COUNTERS.count(i))
}

/// TSC in the handler of the last interrupt at `vector`.
pub fn last_tsc(vector: u8) -> u64 {
    VECTORS
        .iter()
        .position(|&v| v == vector)
        .map_or(0, |i| COUNTERS.tsc(i))
}

/// Opens a short interrupt window (`sti; pause; cli`).
pub fn interrupt_window() {
    // SAFETY: the handlers run on their own IST stack, preserve every
    // register and return; interrupts are off again afterwards.
    unsafe { core::arch::asm!("sti", "pause", "nop", "cli", options(nostack)) };
}

/// The native transport.
#[derive(Debug)]
pub struct Native {
    accesses: u64,
    apic_id: u32,
    lapic: bool,
}

impl Native {
    /// Sets up the local APIC and the IDT handlers; config access needs
    /// nothing.
    pub fn new() -> Native {
        let mut n = Native {
            accesses: 0,
            apic_id: 0,
            lapic: false,
        };
        n.lapic = n.setup_lapic();
        n
    }

    /// The root bus: 0000:00.
    pub fn roots(&self) -> [Root; 1] {
        [Root { segment: 0, bus: 0 }]
    }

    /// Whether the local APIC could be enabled (MSI needs it).
    pub fn lapic_ok(&self) -> bool {
        self.lapic
    }

    fn setup_lapic(&mut self) -> bool {
        let base = cpu::rdmsr(MSR_APIC_BASE);
        if base & (1 << 11) == 0 {
            crate::println!("xpci: native: the local APIC is disabled in IA32_APIC_BASE");
            return false;
        }
        if base & (1 << 10) != 0 {
            X2APIC.store(true, Ordering::Relaxed);
        } else {
            let addr = base & 0xf_ffff_f000;
            if lapic_mmio(addr).is_none() {
                crate::println!("xpci: native: cannot map the local APIC at {addr:#x}");
                return false;
            }
            XAPIC_BASE.store(addr, Ordering::Relaxed);
        }
        // SAFETY: masking the 8259 PICs (their interrupt mask registers)
        // only stops legacy interrupts, which this guest does not use.
        unsafe {
            cpu::outb(0x21, 0xff);
            cpu::outb(0xa1, 0xff);
        }
        let handlers: [fn(); 4] = [vector0, vector1, vector2, vector3];
        for (&v, &h) in VECTORS.iter().zip(handlers.iter()) {
            idt::set_interrupt_handler(v, h);
        }
        idt::set_interrupt_handler(SPURIOUS, spurious);
        for lvt in [
            lapic::LVT_TIMER,
            lapic::LVT_LINT0,
            lapic::LVT_LINT1,
            lapic::LVT_ERROR,
        ] {
            lapic_write(lvt, lapic::MASKED);
        }
        lapic_write(lapic::TPR, 0);
        lapic_write(lapic::SVR, lapic::ENABLE | u32::from(SPURIOUS));
        let id = lapic_read(lapic::ID);
        self.apic_id = if X2APIC.load(Ordering::Relaxed) {
            id
        } else {
            id >> 24
        };
        crate::println!(
            "xpci: native: local APIC {} id {}, MSI vectors {:#x}..={:#x}",
            if X2APIC.load(Ordering::Relaxed) {
                "x2APIC"
            } else {
                "xAPIC"
            },
            self.apic_id,
            VECTORS[0],
            VECTORS[VECTORS.len() - 1]
        );
        true
    }

    fn next_vector(&self) -> Result<u8, PciError> {
        if !self.lapic {
            return Err(PciError::OP_FAILED);
        }
        let i = NEXT_VECTOR.fetch_add(1, Ordering::Relaxed);
        VECTORS.get(i).copied().ok_or(PciError::OP_FAILED)
    }

    fn msi_address(&self) -> u32 {
        MSI_ADDRESS | ((self.apic_id & 0xff) << 12)
    }

    fn address(f: Sbdf, offset: u16) -> u32 {
        0x8000_0000
            | (u32::from(f.bus) << 16)
            | (u32::from(f.dev) << 11)
            | (u32::from(f.func) << 8)
            | u32::from(offset & 0xfc)
    }

    fn check(f: Sbdf, offset: u16, size: u8) -> Result<(), PciError> {
        if f.seg != 0 {
            return Err(PciError::DEV_NOT_FOUND);
        }
        if !matches!(size, 1 | 2 | 4) || !offset.is_multiple_of(u16::from(size)) || offset >= 0x100
        {
            return Err(PciError::INVALID_OFFSET);
        }
        Ok(())
    }
}

impl Default for Native {
    fn default() -> Self {
        Native::new()
    }
}

impl Transport for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn intx_name(&self) -> &'static str {
        "line"
    }

    fn extended_config(&self) -> bool {
        false
    }

    fn read(&mut self, f: Sbdf, offset: u16, size: u8) -> Result<u32, PciError> {
        Native::check(f, offset, size)?;
        self.accesses += 1;
        let data = CONFIG_DATA + (offset & 3);
        // SAFETY: configuration mechanism #1: the address write selects a
        // register, the data read returns it; config reads have no side
        // effects on memory.
        let v = unsafe {
            cpu::outl(CONFIG_ADDRESS, Native::address(f, offset));
            match size {
                1 => u32::from(cpu::inb(data)),
                2 => u32::from(cpu::inw(data)),
                _ => cpu::inl(data),
            }
        };
        Ok(v)
    }

    fn write(&mut self, f: Sbdf, offset: u16, size: u8, value: u32) -> Result<(), PciError> {
        Native::check(f, offset, size)?;
        self.accesses += 1;
        let data = CONFIG_DATA + (offset & 3);
        // SAFETY: as for `read`; a config write can make the function
        // decode or DMA, which the drivers only enable for buffers they
        // set aside.
        unsafe {
            cpu::outl(CONFIG_ADDRESS, Native::address(f, offset));
            match size {
                1 => cpu::outb(data, value as u8),
                2 => cpu::outw(data, value as u16),
                _ => cpu::outl(data, value),
            }
        }
        Ok(())
    }

    fn enable_msi(&mut self, f: &Function) -> Result<Irq, PciError> {
        let msi = f.msi.ok_or(PciError::OP_FAILED)?;
        let vector = self.next_vector()?;
        let o = msi.offset;
        self.write(f.addr, o + 4, 4, self.msi_address())?;
        let (data, mask) = if msi.is_64bit() {
            self.write(f.addr, o + 8, 4, 0)?;
            (o + 12, o + 16)
        } else {
            (o + 8, o + 12)
        };
        self.write(f.addr, data, 2, u32::from(vector))?;
        if msi.maskable() {
            self.write(f.addr, mask, 4, 0)?;
        }
        let control = self.read(f.addr, o + 2, 2)? as u16;
        // One message (MME 0), enabled.
        self.write(f.addr, o + 2, 2, u32::from((control & !0x70) | 1))?;
        Ok(Irq::Vector(vector))
    }

    fn disable_msi(&mut self, f: &Function) -> Result<(), PciError> {
        let msi = f.msi.ok_or(PciError::OP_FAILED)?;
        let control = self.read(f.addr, msi.offset + 2, 2)? as u16;
        self.write(f.addr, msi.offset + 2, 2, u32::from(control & !1))
    }

    fn enable_msix(&mut self, f: &Function, entry: u16) -> Result<Irq, PciError> {
        let msix = f.msix.ok_or(PciError::OP_FAILED)?;
        if entry >= msix.entries {
            return Err(PciError::OP_FAILED);
        }
        let bar = f
            .bars
            .get(usize::from(msix.table.0))
            .copied()
            .flatten()
            .ok_or(PciError::OP_FAILED)?;
        let table = Mmio::map(&bar).map_err(|_| PciError::OP_FAILED)?;
        let vector = self.next_vector()?;
        let at = u64::from(msix.table.1) + 16 * u64::from(entry);
        let control = self.read(f.addr, msix.offset + 2, 2)? as u16;
        // Enabled with the function masked while the entry is written.
        self.write(
            f.addr,
            msix.offset + 2,
            2,
            u32::from(control | (1 << 15) | (1 << 14)),
        )?;
        table.write32(at, self.msi_address());
        table.write32(at + 4, 0);
        table.write32(at + 8, u32::from(vector));
        table.write32(at + 12, 0);
        self.write(
            f.addr,
            msix.offset + 2,
            2,
            u32::from((control | (1 << 15)) & !(1 << 14)),
        )?;
        Ok(Irq::Vector(vector))
    }

    fn disable_msix(&mut self, f: &Function) -> Result<(), PciError> {
        let msix = f.msix.ok_or(PciError::OP_FAILED)?;
        let control = self.read(f.addr, msix.offset + 2, 2)? as u16;
        self.write(f.addr, msix.offset + 2, 2, u32::from(control & !(1 << 15)))
    }

    fn accesses(&self) -> u64 {
        self.accesses
    }
}
