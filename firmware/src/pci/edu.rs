//! QEMU's `edu` teaching device (1234:11e8, QEMU `docs/specs/edu.rst`):
//! identification, the liveness register, factorial, interrupts raised
//! by the guest and DMA between RAM and the device's 4 KiB buffer, with
//! the completion signalled by MSI.
//!
//! Measured (TSC cycles): a register read, an interrupt from the write
//! that raises it to the handler (after one that warms up), and a 2 KiB
//! DMA from the start command to the device clearing its run bit (see
//! `DMA_BYTES`; QEMU completes edu DMA from a 100 ms timer, so this
//! measures little but the timer).

use core::sync::atomic::Ordering;

use super::mmio::Mmio;
use super::{command, wait_for, Function, Samples, Transport};
use crate::cpu;
use crate::report::{check, check_eq};
use crate::xen::page::{Page, PageBuf};
use crate::{println, report};

/// Vendor and device ID.
pub const IDS: u32 = 0x1234_11e8;

/// Registers of BAR0.
pub mod reg {
    /// Identification: 0xRRrr00ed (major, minor version).
    pub const ID: u64 = 0x00;
    /// Liveness check: reads back the inverse of what was written.
    pub const LIVENESS: u64 = 0x04;
    /// Factorial: write n, read n! once the status says done.
    pub const FACTORIAL: u64 = 0x08;
    /// Status: bit 0 computing, bit 7 interrupt when the factorial is done.
    pub const STATUS: u64 = 0x20;
    /// Interrupt status: the values that raised it.
    pub const IRQ_STATUS: u64 = 0x24;
    /// Raise an interrupt with this value.
    pub const IRQ_RAISE: u64 = 0x60;
    /// Acknowledge: clears these bits of the interrupt status.
    pub const IRQ_ACK: u64 = 0x64;
    /// DMA source address.
    pub const DMA_SRC: u64 = 0x80;
    /// DMA destination address.
    pub const DMA_DST: u64 = 0x88;
    /// DMA byte count.
    pub const DMA_COUNT: u64 = 0x90;
    /// DMA command.
    pub const DMA_CMD: u64 = 0x98;
}

/// The identification value of QEMU's edu 1.0.
pub const ID_VALUE: u32 = 0x0100_00ed;
/// DMA command: start (cleared by the device when done).
const DMA_START: u32 = 1;
/// DMA command: direction edu -> RAM (0: RAM -> edu).
pub const DMA_TO_RAM: u32 = 2;
/// DMA command: direction RAM -> edu.
pub const DMA_TO_EDU: u32 = 0;
/// DMA command: raise interrupt 0x100 when done.
const DMA_IRQ: u32 = 4;
/// The interrupt status value of a finished DMA.
const DMA_IRQ_VALUE: u32 = 0x100;
/// The device's DMA buffer, in its own address space.
pub const DEVICE_BUFFER: u64 = 0x40000;
/// DMA addresses must fit edu's 28-bit DMA mask: QEMU's edu clears the
/// bits above it (printing "EDU: clamping DMA") unless the device was
/// created with a wider `dma_mask`.
pub const DMA_LIMIT: u64 = 1 << 28;
/// Bytes per DMA transfer: half the device buffer, as QEMU's edu up to
/// 7.2 rejects (with a hardware error that ends QEMU) a transfer that
/// ends exactly at the end of its buffer.
pub const DMA_BYTES: usize = 2048;
/// Interrupt raised by the guest in the latency test.
const RAISE_VALUE: u32 = 0x1;
/// Milliseconds to wait for an interrupt or a DMA.
pub const TIMEOUT_MS: u64 = 2000;

/// The DMA source and destination in RAM, first in `.bss` (linker.ld):
/// guest-physical 0-2 MiB, the one host-contiguous range `hv.hpa0=` tells
/// the bench's guest when no IOMMU translates edu's DMA.
#[link_section = ".bss.dma"]
static SRC: PageBuf = PageBuf::new();
#[link_section = ".bss.dma"]
static DST: PageBuf = PageBuf::new();

/// The guest's DMA buffers (source, destination), one page each, below
/// edu's DMA mask.
pub fn buffers() -> (Page, Page) {
    (SRC.page(), DST.page())
}

/// Turns on memory decoding and bus mastering and maps BAR0; says what
/// failed otherwise. Prints nothing: for the attack and bench modes,
/// after [`run`] has checked the same steps.
pub fn open<T: Transport>(t: &mut T, f: &Function) -> Result<Mmio, &'static str> {
    let bar = f.bars[0].ok_or("no BAR0")?;
    let mmio = Mmio::map(&bar).map_err(|_| "BAR0 cannot be mapped")?;
    let cmd = super::enable(t, f, f.decode_bits() | command::BUS_MASTER)
        .map_err(|_| "the command register cannot be written")?;
    if cmd & (command::MEMORY_SPACE | command::BUS_MASTER)
        != command::MEMORY_SPACE | command::BUS_MASTER
    {
        return Err("memory decoding or bus mastering stays off");
    }
    Ok(mmio)
}

/// Raises an interrupt, waits for it on `irq`, then reads and
/// acknowledges the interrupt status as a driver's handler does. Returns
/// the TSC cycles from the raising write to the handler, `None` if it did
/// not arrive within [`TIMEOUT_MS`] or the status did not show it.
pub fn raise(mmio: &Mmio, irq: super::Irq) -> Option<u64> {
    let before = irq.count();
    let t0 = cpu::rdtsc();
    mmio.write32(reg::IRQ_RAISE, RAISE_VALUE);
    let at = irq.wait(before, TIMEOUT_MS)?;
    let status = mmio.read32(reg::IRQ_STATUS);
    mmio.write32(reg::IRQ_ACK, status);
    (status & RAISE_VALUE != 0).then(|| at.saturating_sub(t0))
}

/// Drives one edu function; `rounds` repeats the measurements (at least
/// once).
pub fn run<T: Transport>(t: &mut T, f: &Function, rounds: usize, bench: bool) {
    let Some(bar) = f.bars[0] else {
        check("edu: BAR0 present", false);
        return;
    };
    let mmio = match Mmio::map(&bar) {
        Ok(m) => m,
        Err(e) => {
            println!("xpci: edu: BAR0 at {:#x}: {e:?}", bar.addr);
            check("edu: BAR0 mapped", false);
            return;
        }
    };
    let cmd = super::enable(t, f, f.decode_bits() | command::BUS_MASTER);
    check_eq(
        "edu: memory decoding and bus mastering on",
        cmd.map(|c| c & (command::MEMORY_SPACE | command::BUS_MASTER)),
        Ok(command::MEMORY_SPACE | command::BUS_MASTER),
    );

    let id = mmio.read32(reg::ID);
    println!("xpci: edu: identification {id:#010x}");
    check_eq("edu: identification register", id, ID_VALUE);
    mmio.write32(reg::LIVENESS, 0x1234_5678);
    check_eq(
        "edu: liveness register reads back the inverse",
        mmio.read32(reg::LIVENESS),
        !0x1234_5678,
    );
    factorial(&mmio);

    let irq = match t.enable_msi(f) {
        Ok(irq) => irq,
        Err(e) => {
            println!("xpci: edu: enable MSI: {e}");
            check("edu: MSI enabled", false);
            return;
        }
    };
    println!("xpci: edu: MSI as {irq}");
    check("edu: MSI enabled", true);

    // One interrupt more than measured: the first one (cold caches and
    // paths) only warms up.
    let mut latency = Samples::new();
    let mut raised = true;
    for round in 0..=rounds.max(1) {
        let Some(cycles) = raise(&mmio, irq) else {
            raised = false;
            break;
        };
        if round > 0 {
            latency.push(cycles);
        }
    }
    check("edu: raised interrupt arrives by MSI", raised);
    if let Some(first) = latency.first() {
        println!("xpci: edu: interrupt latency {first} cycles");
    }

    dma_roundtrip(&mmio, irq);

    let mut reads = Samples::new();
    for _ in 0..rounds.max(1) * 100 {
        let t0 = cpu::rdtsc();
        let _ = mmio.read32(reg::ID);
        reads.push(cpu::rdtsc().wrapping_sub(t0));
    }
    let mut transfers = Samples::new();
    if bench {
        for _ in 0..rounds {
            match dma(&mmio, DEVICE_BUFFER, DST.page().addr(), DMA_TO_RAM, None) {
                Some(c) => transfers.push(c),
                None => break,
            }
        }
    }

    check_eq("edu: MSI disabled", t.disable_msi(f), Ok(()));
    if crate::hypervisor::is_xen() {
        intx(t, f, &mmio);
    }
    if bench {
        reads.report("edu-mmio-read");
        latency.report("edu-irq");
        transfers.report("edu-dma-2k");
    }
}

/// With MSI off, edu raises INTx: under Xen the Interrupt Line is the
/// pirq, bound with `EVTCHNOP_bind_pirq`; the line is level-triggered, so
/// the pirq needs `PHYSDEVOP_eoi` after the device was served, and only
/// then can the next interrupt arrive. Two interrupts, each acknowledged
/// at edu and then EOId.
fn intx<T: Transport>(t: &mut T, f: &Function, mmio: &Mmio) {
    let Some(line) = f.intx() else {
        crate::report::skip("edu: INTx", "no Interrupt Line");
        return;
    };
    let pirq = u32::from(line);
    let port = match crate::xen::evtchn::bind_pirq(pirq, 0) {
        Ok(p) => p,
        Err(e) => {
            println!("xpci: edu: INTx pirq {pirq}: bind_pirq: error {e}");
            check("edu: INTx pirq bound", false);
            return;
        }
    };
    let _ = crate::xen::evtchn::unmask(port);
    println!("xpci: edu: INTx as pirq {pirq} port {port}");
    check_eq(
        "edu: INTx pirq needs an EOI (irq_status_query)",
        crate::xen::physdev_irq_status(pirq).map(|f| f & 1),
        Ok(1),
    );
    // Nothing left pending at edu (a status bit still set would assert the
    // line as soon as INTx is allowed).
    let status = mmio.read32(reg::IRQ_STATUS);
    mmio.write32(reg::IRQ_ACK, status);
    // INTx allowed (Interrupt Disable, command bit 10, off).
    let cmd = t.read(f.addr, super::command::OFFSET, 2).unwrap_or(0) as u16;
    let _ = t.write(
        f.addr,
        super::command::OFFSET,
        2,
        u32::from(cmd & !command::INTX_DISABLE),
    );
    let irq = super::Irq::Event { pirq, port };
    let mut got = 0;
    for _ in 0..2 {
        let before = irq.count();
        mmio.write32(reg::IRQ_RAISE, RAISE_VALUE);
        let at = irq.wait(before, TIMEOUT_MS);
        let status = mmio.read32(reg::IRQ_STATUS);
        mmio.write32(reg::IRQ_ACK, status);
        if at.is_none() || status & RAISE_VALUE == 0 {
            println!(
                "xpci: edu: INTx: events {before} -> {}, status {status:#x}",
                irq.count()
            );
            break;
        }
        if crate::xen::physdev_eoi(pirq) != 0 {
            break;
        }
        got += 1;
    }
    check_eq(
        "edu: two INTx interrupts arrive, each after the last EOI",
        got,
        2,
    );
    let _ = t.write(
        f.addr,
        super::command::OFFSET,
        2,
        u32::from(cmd | command::INTX_DISABLE),
    );
    let _ = crate::xen::evtchn::close(port);
}

/// 10! through the factorial register.
fn factorial(mmio: &Mmio) {
    mmio.write32(reg::FACTORIAL, 10);
    let done = wait_for(TIMEOUT_MS, || mmio.read32(reg::STATUS) & 1 == 0);
    let v = mmio.read32(reg::FACTORIAL);
    println!("xpci: edu: 10! = {v}");
    check("edu: factorial finishes", done);
    check_eq("edu: 10! = 3628800", v, 3_628_800);
}

/// Starts one [`DMA_BYTES`] transfer and waits for it: see [`dma_of`].
pub fn dma(mmio: &Mmio, src: u64, dst: u64, dir: u32, irq: Option<super::Irq>) -> Option<u64> {
    dma_of(mmio, src, dst, DMA_BYTES as u64, dir, irq)
}

/// Starts a transfer of `count` bytes from `src` to `dst` (`cmd`: the
/// direction and interrupt bits) and returns at once; edu finishes it on
/// its own timer.
pub fn dma_start(mmio: &Mmio, src: u64, dst: u64, count: u64, cmd: u32) {
    mmio.write64(reg::DMA_SRC, src);
    mmio.write64(reg::DMA_DST, dst);
    mmio.write64(reg::DMA_COUNT, count);
    mmio.write64(reg::DMA_CMD, u64::from(DMA_START | cmd));
}

/// Starts one DMA of `count` bytes in direction `dir` ([`DMA_TO_RAM`] or
/// [`DMA_TO_EDU`]) and waits for it: by interrupt when `irq` is given
/// (checking and acknowledging the interrupt status), otherwise by the
/// run bit. Returns the TSC cycles from start to completion.
pub fn dma_of(
    mmio: &Mmio,
    src: u64,
    dst: u64,
    count: u64,
    dir: u32,
    irq: Option<super::Irq>,
) -> Option<u64> {
    let before = irq.map(|i| i.count());
    let t0 = cpu::rdtsc();
    let flags = if irq.is_some() { DMA_IRQ } else { 0 };
    dma_start(mmio, src, dst, count, dir | flags);
    match (irq, before) {
        (Some(irq), Some(before)) => {
            let at = irq.wait(before, TIMEOUT_MS)?;
            let status = mmio.read32(reg::IRQ_STATUS);
            mmio.write32(reg::IRQ_ACK, status);
            (status & DMA_IRQ_VALUE != 0).then(|| at.saturating_sub(t0))
        }
        _ => {
            let done = wait_for(TIMEOUT_MS, || {
                mmio.read64(reg::DMA_CMD) & u64::from(DMA_START) == 0
            });
            done.then(|| cpu::rdtsc().wrapping_sub(t0))
        }
    }
}

/// RAM -> edu -> RAM through the device buffer, completion by MSI, and
/// the copy compared with the source.
fn dma_roundtrip(mmio: &Mmio, irq: super::Irq) {
    let (src, dst) = (SRC.page(), DST.page());
    if src.addr() + DMA_BYTES as u64 > DMA_LIMIT || dst.addr() + DMA_BYTES as u64 > DMA_LIMIT {
        report::skip("edu: DMA", "buffers above edu's 28-bit DMA mask");
        return;
    }
    for i in 0..DMA_BYTES / 8 {
        let v = 0x5a5a_0000_0000_0000 | ((i as u64) << 8) | 0xed;
        src.u64(8 * i).store(v, Ordering::Relaxed);
        dst.u64(8 * i).store(0, Ordering::Relaxed);
    }
    core::sync::atomic::fence(Ordering::SeqCst);
    let to_dev = dma(mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, Some(irq));
    check(
        "edu: DMA RAM -> edu completes with an MSI",
        to_dev.is_some(),
    );
    let to_ram = dma(mmio, DEVICE_BUFFER, dst.addr(), DMA_TO_RAM, Some(irq));
    check(
        "edu: DMA edu -> RAM completes with an MSI",
        to_ram.is_some(),
    );
    core::sync::atomic::fence(Ordering::SeqCst);
    let same = (0..DMA_BYTES / 8)
        .all(|i| src.u64(8 * i).load(Ordering::Relaxed) == dst.u64(8 * i).load(Ordering::Relaxed));
    println!(
        "xpci: edu: DMA {DMA_BYTES} bytes {:#x} -> edu -> {:#x}: {}",
        src.addr(),
        dst.addr(),
        if same { "same" } else { "different" }
    );
    check("edu: DMA copy equals the source", same);
}
