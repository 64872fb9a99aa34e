//! PCI for the `xpci` guest: a [`Transport`] that reaches configuration
//! space and sets up message-signalled interrupts, an enumeration that
//! reads every function the way real frontends do ([`scan`]), an
//! lspci-like listing ([`show`]) and small drivers for QEMU's devices
//! ([`edu`], [`nvme`], [`e1000`]).
//!
//! Two transports implement the trait: [`native`] (ports 0xCF8/0xCFC, the
//! local APIC and MSI programmed by the guest, for QEMU without a
//! hypervisor) and [`crate::xen::pcifront`] (Xen's paravirtual PCI
//! protocol). The drivers only see the trait, so they run and measure the
//! same way on both.
//!
//! Safety: `unsafe` is in [`mmio`] (volatile access to device memory),
//! [`pio`] (port access to I/O BARs) and [`native`] (port I/O, the local
//! APIC, the IDT handlers).

pub mod attack;
pub mod attack_pci;
pub mod attack_proto;
pub mod bench;
pub mod e1000;
pub mod edu;
pub mod mmio;
pub mod native;
pub mod nvme;
pub mod pio;
pub mod show;

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub use vmm_glue::Sbdf;

use crate::cpu;

use vmm_glue::pci::caps::{CapWalk, ExtCapWalk};
pub use vmm_glue::pci::regs::{cap_id as cap, command, header as reg, status};

/// A `XEN_PCI_ERR_*` value (or a negative errno a backend put there) that
/// a configuration access or an interrupt op answered with; natively
/// nothing fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciError(pub i32);

impl PciError {
    /// `XEN_PCI_ERR_dev_not_found`: no such function, or no answer.
    pub const DEV_NOT_FOUND: PciError = PciError(-1);
    /// `XEN_PCI_ERR_invalid_offset`: offset or size not allowed.
    pub const INVALID_OFFSET: PciError = PciError(-2);
    /// `XEN_PCI_ERR_op_failed`.
    pub const OP_FAILED: PciError = PciError(-5);
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            -1 => "dev_not_found",
            -2 => "invalid_offset",
            -3 => "access_denied",
            -4 => "not_implemented",
            -5 => "op_failed",
            _ => "errno",
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// A root bus to enumerate: PCI segment and bus number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Root {
    /// PCI segment (domain).
    pub segment: u16,
    /// Bus number.
    pub bus: u8,
}

/// How the guest reaches configuration space and asks for interrupts.
///
/// Config accesses take a size of 1, 2 or 4 bytes at an offset aligned to
/// it. The interrupt methods return an [`Irq`] that the driver waits on:
/// the transport has programmed or asked for everything the device needs
/// except enabling its own interrupt sources.
pub trait Transport {
    /// A short name for the output ("pcifront", "native").
    fn name(&self) -> &'static str;
    /// What the Interrupt Line register holds here ("pirq", "line").
    fn intx_name(&self) -> &'static str;
    /// Whether offsets 0x100..0x1000 (extended configuration space) can
    /// be reached.
    fn extended_config(&self) -> bool;
    /// Reads `size` bytes at `offset` of function `f`'s configuration
    /// space.
    fn read(&mut self, f: Sbdf, offset: u16, size: u8) -> Result<u32, PciError>;
    /// Writes `size` bytes of `value` at `offset`.
    fn write(&mut self, f: Sbdf, offset: u16, size: u8, value: u32) -> Result<(), PciError>;
    /// Enables single-vector MSI of `f`.
    fn enable_msi(&mut self, f: &Function) -> Result<Irq, PciError>;
    /// Disables MSI of `f`.
    fn disable_msi(&mut self, f: &Function) -> Result<(), PciError>;
    /// Enables MSI-X of `f` with one vector, table entry `entry`.
    fn enable_msix(&mut self, f: &Function, entry: u16) -> Result<Irq, PciError>;
    /// Disables MSI-X of `f`.
    fn disable_msix(&mut self, f: &Function) -> Result<(), PciError>;
    /// Config accesses (or ops) made so far.
    fn accesses(&self) -> u64;
}

/// Where an interrupt arrives and how the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Irq {
    /// Natively: an IDT vector the MSI message names (see [`native`]).
    Vector(u8),
    /// Under Xen: an event channel port bound to a pirq.
    Event {
        /// The pirq the backend mapped.
        pirq: u32,
        /// The port `EVTCHNOP_bind_pirq` returned.
        port: u32,
    },
}

impl fmt::Display for Irq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Irq::Vector(v) => write!(f, "vector {v:#x}"),
            Irq::Event { pirq, port } => write!(f, "pirq {pirq} port {port}"),
        }
    }
}

/// TSC cycles to spin, with interrupts open, before waiting by
/// `SCHEDOP_poll` under Xen.
const SPIN_CYCLES: u64 = 2_000_000;

impl Irq {
    /// Interrupts taken on it so far.
    pub fn count(&self) -> u32 {
        match *self {
            Irq::Vector(v) => native::interrupts(v),
            Irq::Event { port, .. } => crate::xen::evtchn::events(port),
        }
    }

    /// TSC in the handler of the last interrupt, if the handler keeps it.
    fn last_tsc(&self) -> Option<u64> {
        match *self {
            Irq::Vector(v) => Some(native::last_tsc(v)),
            Irq::Event { port, .. } => {
                (port < 64).then(|| crate::xen::evtchn::last_event_tsc(port))
            }
        }
    }

    /// Waits, with interrupts open, until [`Irq::count`] differs from
    /// `since` or `ms` milliseconds passed. Returns the TSC at which the
    /// handler saw the interrupt (or at which this loop did), `None` on
    /// timeout.
    pub fn wait(&self, since: u32, ms: u64) -> Option<u64> {
        let start = cpu::rdtsc();
        let limit = ms.saturating_mul(tsc_per_ms());
        loop {
            if self.count() != since {
                return Some(self.last_tsc().unwrap_or_else(cpu::rdtsc));
            }
            let spent = cpu::rdtsc().wrapping_sub(start);
            if spent > limit {
                return None;
            }
            match *self {
                Irq::Vector(_) => native::interrupt_window(),
                Irq::Event { port, .. } => {
                    crate::xen::evtchn::interrupt_window();
                    if spent > SPIN_CYCLES && self.count() == since {
                        // Sleep until the port is pending (or 1 ms), then
                        // let the upcall take it.
                        if let Some(now) = crate::xen::shared::now() {
                            crate::xen::evtchn::poll(&[port], now + 1_000_000);
                        }
                    }
                }
            }
        }
    }
}

/// TSC ticks per millisecond: from the pvclock under Xen, from CPUID
/// leaves 0x15/0x16 natively, else 3 GHz is assumed.
pub fn tsc_per_ms() -> u64 {
    static CACHED: AtomicU64 = AtomicU64::new(0);
    let c = CACHED.load(Ordering::Relaxed);
    if c != 0 {
        return c;
    }
    let mut v = crate::xen::shared::time_info()
        .map(|t| t.ticks_for(1_000_000))
        .unwrap_or(0);
    if v == 0 {
        let max = cpu::cpuid(0, 0).eax;
        if max >= 0x15 {
            let l = cpu::cpuid(0x15, 0);
            if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
                v = u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax) / 1000;
            }
        }
        if v == 0 && max >= 0x16 {
            v = u64::from(cpu::cpuid(0x16, 0).eax & 0xffff) * 1000;
        }
    }
    if v == 0 {
        v = 3_000_000;
    }
    CACHED.store(v, Ordering::Relaxed);
    v
}

/// Waits until `done()` holds, for up to `ms` milliseconds of TSC time;
/// returns whether it held.
pub fn wait_for(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = cpu::rdtsc();
    let limit = ms.saturating_mul(tsc_per_ms());
    loop {
        if done() {
            return true;
        }
        if cpu::rdtsc().wrapping_sub(start) > limit {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// What a base address register decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Mem32,
    /// 64-bit memory space (takes two registers).
    Mem64,
}

/// A sized base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// What it decodes.
    pub kind: BarKind,
    /// Prefetchable (memory BARs).
    pub prefetchable: bool,
    /// The address programmed in it.
    pub addr: u64,
    /// Its size in bytes (a power of two).
    pub size: u64,
}

impl Bar {
    /// Whether it decodes memory space.
    pub fn is_mem(&self) -> bool {
        self.kind != BarKind::Io
    }
}

/// The expansion ROM register, sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rom {
    /// The address programmed in it.
    pub addr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The ROM enable bit.
    pub enabled: bool,
}

/// A capability found in the list: its ID and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cap {
    /// Capability ID (extended capabilities: 16 bits).
    pub id: u16,
    /// Offset in configuration space.
    pub offset: u16,
}

/// The MSI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msi {
    /// Offset of the capability.
    pub offset: u16,
    /// Message control at enumeration.
    pub control: u16,
}

impl Msi {
    /// 64-bit message address.
    pub fn is_64bit(&self) -> bool {
        self.control & (1 << 7) != 0
    }

    /// Per-vector masking.
    pub fn maskable(&self) -> bool {
        self.control & (1 << 8) != 0
    }
}

/// The MSI-X capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msix {
    /// Offset of the capability.
    pub offset: u16,
    /// Table entries.
    pub entries: u16,
    /// BAR index (BIR) and offset of the table.
    pub table: (u8, u32),
    /// BAR index and offset of the pending bit array.
    pub pba: (u8, u32),
}

/// Capabilities kept per function.
pub const MAX_CAPS: usize = 12;

/// What enumeration learnt about one function.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// Its address.
    pub addr: Sbdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code (base, sub, programming interface).
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// Header type (bit 7 cleared).
    pub header: u8,
    /// Multi-function bit of the header type.
    pub multifunction: bool,
    /// Command register at enumeration.
    pub command: u16,
    /// Interrupt Line.
    pub irq_line: u8,
    /// Interrupt Pin.
    pub irq_pin: u8,
    /// Base address registers by index; the upper half of a 64-bit BAR is
    /// `None`.
    pub bars: [Option<Bar>; 6],
    /// The expansion ROM, if it decodes anything.
    pub rom: Option<Rom>,
    /// Capabilities, in list order.
    pub caps: [Cap; MAX_CAPS],
    /// How many of `caps` are valid.
    pub ncaps: usize,
    /// Extended capabilities, in list order.
    pub ext_caps: [Cap; MAX_CAPS],
    /// How many of `ext_caps` are valid.
    pub next_caps: usize,
    /// The MSI capability.
    pub msi: Option<Msi>,
    /// The MSI-X capability.
    pub msix: Option<Msix>,
}

impl Function {
    fn new(addr: Sbdf, id: u32) -> Function {
        Function {
            addr,
            vendor: id as u16,
            device: (id >> 16) as u16,
            class: 0,
            revision: 0,
            header: 0,
            multifunction: false,
            command: 0,
            irq_line: 0,
            irq_pin: 0,
            bars: [None; 6],
            rom: None,
            caps: [Cap::default(); MAX_CAPS],
            ncaps: 0,
            ext_caps: [Cap::default(); MAX_CAPS],
            next_caps: 0,
            msi: None,
            msix: None,
        }
    }

    /// `vendor:device` as one number, vendor in the high half.
    pub fn ids(&self) -> u32 {
        (u32::from(self.vendor) << 16) | u32::from(self.device)
    }

    /// The capabilities found.
    pub fn caps(&self) -> &[Cap] {
        &self.caps[..self.ncaps]
    }

    /// The extended capabilities found.
    pub fn ext_caps(&self) -> &[Cap] {
        &self.ext_caps[..self.next_caps]
    }

    /// The Interrupt Line as an INTx number (under Xen the pirq): `None`
    /// for 0 and 0xff.
    pub fn intx(&self) -> Option<u8> {
        (self.irq_line != 0 && self.irq_line != 0xff).then_some(self.irq_line)
    }

    /// The command bits its BARs need: memory and/or I/O decoding.
    pub fn decode_bits(&self) -> u16 {
        self.bars.iter().flatten().fold(0, |acc, b| {
            acc | if b.is_mem() {
                command::MEMORY_SPACE
            } else {
                command::IO_SPACE
            }
        })
    }
}

/// Functions kept by a scan.
pub const MAX_FUNCTIONS: usize = 24;

/// The functions a scan found.
#[derive(Debug)]
pub struct Functions {
    list: [Option<Function>; MAX_FUNCTIONS],
    len: usize,
    /// Functions seen past [`MAX_FUNCTIONS`] (listed, not kept).
    pub dropped: usize,
}

impl Functions {
    /// No functions.
    pub const fn new() -> Functions {
        Functions {
            list: [None; MAX_FUNCTIONS],
            len: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, f: Function) {
        match self.list.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(f);
                self.len += 1;
            }
            None => self.dropped += 1,
        }
    }

    /// The functions, in scan order.
    pub fn iter(&self) -> impl Iterator<Item = &Function> {
        self.list[..self.len].iter().flatten()
    }
}

impl Default for Functions {
    fn default() -> Self {
        Functions::new()
    }
}

/// Config reads and writes that cannot fail in the middle of a function's
/// enumeration: an error reads as all ones (what the PCI core does) and is
/// counted.
struct Cfg<'a, T: Transport> {
    t: &'a mut T,
    f: Sbdf,
    errors: u32,
}

impl<T: Transport> Cfg<'_, T> {
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        match self.t.read(self.f, offset, size) {
            Ok(v) => v,
            Err(_) => {
                self.errors += 1;
                u32::MAX >> (32 - 8 * u32::from(size))
            }
        }
    }

    fn r8(&mut self, offset: u16) -> u8 {
        self.read(offset, 1) as u8
    }

    fn r16(&mut self, offset: u16) -> u16 {
        self.read(offset, 2) as u16
    }

    fn r32(&mut self, offset: u16) -> u32 {
        self.read(offset, 4)
    }

    fn w(&mut self, offset: u16, size: u8, value: u32) {
        if self.t.write(self.f, offset, size, value).is_err() {
            self.errors += 1;
        }
    }
}

/// Enumerates every devfn of every root: a 4-byte read of the IDs (an
/// error or all ones means absent), then [`probe`] of each present
/// function, printed as it is found (see [`show`]).
pub fn scan<T: Transport>(t: &mut T, roots: &[Root], out: &mut Functions) {
    for root in roots {
        for devfn in 0..=255u8 {
            let Some(addr) = Sbdf::new(root.segment, root.bus, devfn >> 3, devfn & 7) else {
                continue;
            };
            let id = match t.read(addr, reg::ID, 4) {
                Ok(id) if id as u16 != 0xffff && id != 0 => id,
                _ => continue,
            };
            let f = probe(t, addr, id);
            show::function(t.intx_name(), &f);
            out.push(f);
        }
    }
}

/// Reads what a driver needs of a present function: class and revision
/// (4 bytes), header type, command, Interrupt Line and Pin (1 and 2
/// bytes, as Linux reads them), the BARs and ROM sized with decoding off,
/// and the capability lists.
pub fn probe<T: Transport>(t: &mut T, addr: Sbdf, id: u32) -> Function {
    let ext = t.extended_config();
    let mut c = Cfg {
        t,
        f: addr,
        errors: 0,
    };
    let mut f = Function::new(addr, id);
    let class_rev = c.r32(reg::CLASS_REV);
    f.revision = class_rev as u8;
    f.class = class_rev >> 8;
    let header = c.r8(reg::HEADER_TYPE);
    f.header = header & 0x7f;
    f.multifunction = header & 0x80 != 0;
    f.command = c.r16(command::OFFSET);
    f.irq_line = c.r8(reg::INTERRUPT_LINE);
    f.irq_pin = c.r8(reg::INTERRUPT_PIN);
    let (nbars, rom_reg) = match f.header {
        0 => (6, Some(reg::ROM)),
        1 => (2, Some(reg::BRIDGE_ROM)),
        _ => (0, None),
    };
    // Decoding off while the BARs read back sizes instead of addresses.
    let decode = command::IO_SPACE | command::MEMORY_SPACE;
    if f.command & decode != 0 {
        c.w(command::OFFSET, 2, u32::from(f.command & !decode));
    }
    let mut i = 0;
    while i < nbars {
        let (bar, regs) = size_bar(&mut c, reg::BAR0 + 4 * i as u16, i + 1 < nbars);
        f.bars[i] = bar;
        i += regs;
    }
    if let Some(r) = rom_reg {
        f.rom = size_rom(&mut c, r);
    }
    if f.command & decode != 0 {
        c.w(command::OFFSET, 2, u32::from(f.command));
    }
    caps(&mut c, &mut f);
    if ext && f.caps().iter().any(|k| k.id == u16::from(cap::PCIE)) {
        ext_caps(&mut c, &mut f);
    }
    if c.errors != 0 {
        crate::println!(
            "xpci: {}   {} config accesses failed during the probe",
            show::Addr(addr),
            c.errors
        );
    }
    f
}

/// Sizes the BAR at `offset`: save, all ones, read, restore (both halves
/// of a 64-bit BAR, if `upper_half` says another BAR register follows).
/// Returns the BAR and the registers it takes.
fn size_bar<T: Transport>(
    c: &mut Cfg<'_, T>,
    offset: u16,
    upper_half: bool,
) -> (Option<Bar>, usize) {
    let orig = c.r32(offset);
    c.w(offset, 4, u32::MAX);
    let probe = c.r32(offset);
    c.w(offset, 4, orig);
    if orig & 1 != 0 {
        let mut mask = probe & !0x3;
        if mask == 0 {
            return (None, 1);
        }
        if mask & 0xffff_0000 == 0 {
            mask |= 0xffff_0000;
        }
        let bar = Bar {
            kind: BarKind::Io,
            prefetchable: false,
            addr: u64::from(orig & !0x3),
            size: u64::from((!mask).wrapping_add(1)),
        };
        return (Some(bar), 1);
    }
    let prefetchable = orig & 0x8 != 0;
    let is64 = (orig >> 1) & 3 == 2;
    let (addr, mask, regs) = if is64 && upper_half {
        let orig_hi = c.r32(offset + 4);
        c.w(offset + 4, 4, u32::MAX);
        let probe_hi = c.r32(offset + 4);
        c.w(offset + 4, 4, orig_hi);
        (
            (u64::from(orig_hi) << 32) | u64::from(orig & !0xf),
            (u64::from(probe_hi) << 32) | u64::from(probe & !0xf),
            2,
        )
    } else {
        (
            u64::from(orig & !0xf),
            0xffff_ffff_0000_0000 | u64::from(probe & !0xf),
            1,
        )
    };
    if mask as u32 == 0 && (regs == 1 || mask >> 32 == 0) {
        return (None, regs);
    }
    let bar = Bar {
        kind: if regs == 2 {
            BarKind::Mem64
        } else {
            BarKind::Mem32
        },
        prefetchable,
        addr,
        size: (!mask).wrapping_add(1),
    };
    (Some(bar), regs)
}

/// Sizes the expansion ROM register (enable bit kept clear while sizing).
fn size_rom<T: Transport>(c: &mut Cfg<'_, T>, offset: u16) -> Option<Rom> {
    let orig = c.r32(offset);
    c.w(offset, 4, 0xffff_f800);
    let probe = c.r32(offset) & 0xffff_f800;
    c.w(offset, 4, orig);
    (probe != 0).then(|| Rom {
        addr: u64::from(orig & 0xffff_f800),
        size: u64::from((!probe).wrapping_add(1)),
        enabled: orig & 1 != 0,
    })
}

/// Walks the capability list with 1- and 2-byte reads, as the frontends
/// of Linux and NetBSD do (the shared walk of `vmm_glue`).
fn caps<T: Transport>(c: &mut Cfg<'_, T>, f: &mut Function) {
    if f.header > 1 {
        return;
    }
    let mut walk = CapWalk::new(c.r16(status::OFFSET), c.r8(reg::CAP_PTR));
    while let Some(found) = walk.step(|at| u16::from(c.r8(at)) | u16::from(c.r8(at + 1)) << 8) {
        let (id, off) = (found.id as u8, found.offset);
        if f.ncaps < MAX_CAPS {
            f.caps[f.ncaps] = Cap {
                id: u16::from(id),
                offset: off,
            };
            f.ncaps += 1;
        }
        match id {
            cap::MSI => {
                f.msi = Some(Msi {
                    offset: off,
                    control: c.r16(off + 2),
                })
            }
            cap::MSIX => {
                let control = c.r16(off + 2);
                let table = c.r32(off + 4);
                let pba = c.r32(off + 8);
                f.msix = Some(Msix {
                    offset: off,
                    entries: (control & 0x7ff) + 1,
                    table: ((table & 7) as u8, table & !7),
                    pba: ((pba & 7) as u8, pba & !7),
                });
            }
            _ => {}
        }
    }
}

/// Walks the extended capability list from 0x100 (4-byte reads).
fn ext_caps<T: Transport>(c: &mut Cfg<'_, T>, f: &mut Function) {
    let mut walk = ExtCapWalk::new();
    while let Some(found) = walk.step(|at| c.t.read(c.f, at, 4).ok()) {
        if f.next_caps < MAX_CAPS {
            f.ext_caps[f.next_caps] = Cap {
                id: found.id,
                offset: found.offset,
            };
            f.next_caps += 1;
        }
    }
}

/// Turns on `bits` (decoding, bus mastering) in `f`'s command register
/// with one 2-byte read and write; returns the value written.
pub fn enable<T: Transport>(t: &mut T, f: &Function, bits: u16) -> Result<u16, PciError> {
    let cmd = t.read(f.addr, command::OFFSET, 2)? as u16;
    let new = cmd | bits;
    t.write(f.addr, command::OFFSET, 2, u32::from(new))?;
    Ok(new)
}

/// TSC samples of one measurement, for `xpci-bench:` lines.
#[derive(Debug)]
pub struct Samples {
    buf: [u64; Samples::MAX],
    len: usize,
}

impl Samples {
    /// Samples kept (later ones are dropped).
    pub const MAX: usize = 256;

    /// None yet.
    pub const fn new() -> Samples {
        Samples {
            buf: [0; Samples::MAX],
            len: 0,
        }
    }

    /// Adds one.
    pub fn push(&mut self, cycles: u64) {
        if let Some(s) = self.buf.get_mut(self.len) {
            *s = cycles;
            self.len += 1;
        }
    }

    /// How many were kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first sample, if any.
    pub fn first(&self) -> Option<u64> {
        self.buf[..self.len].first().copied()
    }

    /// Whether none were kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Median (the upper one of an even count) and mean; zeros when
    /// empty. Sorts the samples.
    pub fn median_mean(&mut self) -> (u64, u64) {
        let s = &mut self.buf[..self.len];
        if s.is_empty() {
            return (0, 0);
        }
        s.sort_unstable();
        let sum: u128 = s.iter().map(|&v| u128::from(v)).sum();
        (s[s.len() / 2], (sum / s.len() as u128) as u64)
    }

    /// Prints `xpci-bench: <name> median <cycles> mean <cycles>` (nothing
    /// when empty).
    pub fn report(&mut self, name: &str) {
        if self.is_empty() {
            return;
        }
        let (median, mean) = self.median_mean();
        crate::println!("xpci-bench: {name} median {median} mean {mean}");
    }
}

impl Default for Samples {
    fn default() -> Self {
        Samples::new()
    }
}

/// Interrupts counted per vector by [`native`]'s handlers, and the TSC of
/// the last one.
pub(crate) struct Counters {
    count: [AtomicU32; 4],
    tsc: [AtomicU64; 4],
}

impl Counters {
    pub(crate) const fn new() -> Counters {
        Counters {
            count: [const { AtomicU32::new(0) }; 4],
            tsc: [const { AtomicU64::new(0) }; 4],
        }
    }

    pub(crate) fn hit(&self, i: usize) {
        if let (Some(t), Some(c)) = (self.tsc.get(i), self.count.get(i)) {
            t.store(cpu::rdtsc(), Ordering::SeqCst);
            c.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn count(&self, i: usize) -> u32 {
        self.count.get(i).map_or(0, |c| c.load(Ordering::SeqCst))
    }

    pub(crate) fn tsc(&self, i: usize) -> u64 {
        self.tsc.get(i).map_or(0, |c| c.load(Ordering::SeqCst))
    }
}
