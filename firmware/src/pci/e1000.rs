//! Intel e1000 (82540EM, 8086:100e) and e1000e (82574L, 8086:10d3) as QEMU
//! and Bochs model them: a device reset through CTRL.RST, the link-up bit
//! of STATUS, the MAC address in the EEPROM (words 0..3, read through
//! EERD) and in receive address 0 (RAL0/RAH0). As a driver does after a
//! reset, receive address 0 is programmed from the EEPROM when the reset
//! left it invalid (Bochs clears it; QEMU keeps it). When the function
//! has an I/O BAR, STATUS is read once more through its I/O window
//! (IOADDR at +0 selects a register, IODATA at +4 reads it) and compared
//! with the MMIO read.

use super::mmio::Mmio;
use super::pio::Pio;
use super::{command, wait_for, BarKind, Function, Transport};
use crate::report::{check, check_eq};
use crate::{println, report};

/// 82540EM (QEMU `e1000`).
pub const E1000_IDS: u32 = 0x8086_100e;
/// 82574L (QEMU `e1000e`).
pub const E1000E_IDS: u32 = 0x8086_10d3;

/// Registers of BAR0.
mod reg {
    /// Device control.
    pub const CTRL: u64 = 0x0000;
    /// Device status.
    pub const STATUS: u64 = 0x0008;
    /// EEPROM read.
    pub const EERD: u64 = 0x0014;
    /// Interrupt mask clear.
    pub const IMC: u64 = 0x00d8;
    /// Interrupt Cause Read (reading clears it).
    pub const ICR: u64 = 0x00c0;
    /// Interrupt Cause Set.
    pub const ICS: u64 = 0x00c8;
    /// Interrupt Mask Set.
    pub const IMS: u64 = 0x00d0;
    /// Interrupt throttling interval.
    pub const ITR: u64 = 0x00c4;
    /// EITR of MSI-X vector 0 (82574: 0xE8 + 4 * vector).
    pub const EITR0: u64 = 0x00e8;
    /// Interrupt vector allocation (82574).
    pub const IVAR: u64 = 0x00e4;
    /// Receive address low, entry 0.
    pub const RAL0: u64 = 0x5400;
    /// Receive address high, entry 0.
    pub const RAH0: u64 = 0x5404;
}

/// The I/O window: IOADDR selects the register IODATA reads and writes.
mod io {
    /// IOADDR: the register offset.
    pub const IOADDR: u16 = 0x0;
    /// IODATA: the selected register.
    pub const IODATA: u16 = 0x4;
}

/// CTRL: device reset (self-clearing).
const CTRL_RST: u32 = 1 << 26;
/// STATUS: link up.
const STATUS_LU: u32 = 1 << 1;
/// Interrupt cause Link Status Change: the one the INTx test sets.
const ICR_LSC: u32 = 1 << 2;
/// RAH: address valid.
const RAH_AV: u32 = 1 << 31;

/// The check names of one model.
struct Names {
    model: &'static str,
    bar: &'static str,
    mapped: &'static str,
    enabled: &'static str,
    reset: &'static str,
    mac: &'static str,
    eeprom: &'static str,
    io_decode: &'static str,
    io_status: &'static str,
    intx: &'static str,
    eerd: Eerd,
}

const E1000: Names = Names {
    model: "e1000",
    bar: "e1000: BAR0 present",
    mapped: "e1000: BAR0 mapped",
    enabled: "e1000: memory decoding and bus mastering on",
    reset: "e1000: reset completes",
    mac: "e1000: receive address 0 holds a valid unicast MAC",
    eeprom: "e1000: the EEPROM's MAC is in receive address 0",
    io_decode: "e1000: I/O decoding on",
    io_status: "e1000: STATUS through the I/O BAR equals the MMIO read",
    intx: "e1000: two INTx interrupts arrive, each after the last EOI",
    eerd: EERD_82540,
};

const E1000E: Names = Names {
    model: "e1000e",
    bar: "e1000e: BAR0 present",
    mapped: "e1000e: BAR0 mapped",
    enabled: "e1000e: memory decoding and bus mastering on",
    reset: "e1000e: reset completes",
    mac: "e1000e: receive address 0 holds a valid unicast MAC",
    eeprom: "e1000e: the EEPROM's MAC is in receive address 0",
    io_decode: "e1000e: I/O decoding on",
    io_status: "e1000e: STATUS through the I/O BAR equals the MMIO read",
    intx: "e1000e: two INTx interrupts arrive, each after the last EOI",
    eerd: EERD_82574,
};

/// EERD: start a read.
const EERD_START: u32 = 1;

/// The layout of EERD, which differs between the models.
#[derive(Debug, Clone, Copy)]
struct Eerd {
    /// Done bit.
    done: u32,
    /// Shift of the word address.
    addr_shift: u32,
}

/// 82540EM: done at bit 4, address at bits 15:8.
const EERD_82540: Eerd = Eerd {
    done: 1 << 4,
    addr_shift: 8,
};
/// 82574L: done at bit 1, address at bits 15:2.
const EERD_82574: Eerd = Eerd {
    done: 1 << 1,
    addr_shift: 2,
};

/// EEPROM word `word` through EERD (data in bits 31:16).
fn eeprom_word(mmio: &Mmio, layout: Eerd, word: u32) -> Option<u16> {
    mmio.write32(reg::EERD, (word << layout.addr_shift) | EERD_START);
    let mut v = 0;
    let done = wait_for(10, || {
        v = mmio.read32(reg::EERD);
        v & layout.done != 0
    });
    done.then_some((v >> 16) as u16)
}

/// The MAC address in EEPROM words 0..3.
fn eeprom_mac(mmio: &Mmio, layout: Eerd) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    for w in 0..3 {
        let v = eeprom_word(mmio, layout, w)?.to_le_bytes();
        mac[2 * w as usize] = v[0];
        mac[2 * w as usize + 1] = v[1];
    }
    Some(mac)
}

/// Receive address 0 and its address-valid bit.
fn receive_address(mmio: &Mmio) -> ([u8; 6], bool) {
    let ral = mmio.read32(reg::RAL0).to_le_bytes();
    let rah = mmio.read32(reg::RAH0);
    let hi = rah.to_le_bytes();
    (
        [ral[0], ral[1], ral[2], ral[3], hi[0], hi[1]],
        rah & RAH_AV != 0,
    )
}

/// A usable station address: not zero, not broadcast, not multicast.
fn unicast(mac: &[u8; 6]) -> bool {
    *mac != [0; 6] && *mac != [0xff; 6] && mac[0] & 1 == 0
}

/// Drives one e1000 or e1000e function.
pub fn run<T: Transport>(t: &mut T, f: &Function) {
    let names = if f.ids() == E1000E_IDS {
        &E1000E
    } else {
        &E1000
    };
    let name = names.model;
    let Some(bar) = f.bars[0] else {
        check(names.bar, false);
        return;
    };
    let mmio = match Mmio::map(&bar) {
        Ok(m) => m,
        Err(e) => {
            println!("xpci: {name}: BAR0 at {:#x}: {e:?}", bar.addr);
            check(names.mapped, false);
            return;
        }
    };
    let cmd = super::enable(t, f, f.decode_bits() | command::BUS_MASTER);
    let io_on = cmd.is_ok_and(|c| c & command::IO_SPACE != 0);
    check_eq(
        names.enabled,
        cmd.map(|c| c & (command::MEMORY_SPACE | command::BUS_MASTER)),
        Ok(command::MEMORY_SPACE | command::BUS_MASTER),
    );
    mmio.write32(reg::IMC, u32::MAX);
    let ctrl = mmio.read32(reg::CTRL);
    mmio.write32(reg::CTRL, ctrl | CTRL_RST);
    let reset = wait_for(100, || mmio.read32(reg::CTRL) & CTRL_RST == 0);
    // The reset takes about 1 us on hardware; let it settle.
    wait_for(1, || false);
    mmio.write32(reg::IMC, u32::MAX);
    check(names.reset, reset);

    let eeprom = eeprom_mac(&mmio, names.eerd);
    let (mut mac, mut valid) = receive_address(&mmio);
    if let Some(e) = eeprom.filter(|e| unicast(e) && !(valid && unicast(&mac))) {
        mmio.write32(reg::RAL0, u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
        mmio.write32(
            reg::RAH0,
            u32::from(u16::from_le_bytes([e[4], e[5]])) | RAH_AV,
        );
        (mac, valid) = receive_address(&mmio);
    }
    let status = mmio.read32(reg::STATUS);
    println!(
        "xpci: {name}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} link {}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        if status & STATUS_LU != 0 {
            "up"
        } else {
            "down"
        }
    );
    check(names.mac, valid && unicast(&mac));
    match eeprom {
        Some(e) => check_eq(names.eeprom, mac, e),
        None => {
            println!("xpci: {name}: no EEPROM read through EERD");
            check(names.eeprom, false)
        }
    };
    io_status(f, &mmio, names, io_on);
    if crate::hypervisor::is_xen() {
        intx(t, f, &mmio, names);
    }
}

/// INTx under Xen: the Interrupt Line's pirq bound, then twice a Link
/// Status Change cause set through ICS, its event awaited, ICR read (which
/// clears the cause and lowers the line) and the pirq EOId. Nothing
/// without an Interrupt Line (INTx not offered).
fn intx<T: Transport>(t: &mut T, f: &Function, mmio: &Mmio, names: &Names) {
    let name = names.model;
    let Some(line) = f.intx() else {
        crate::report::skip(names.intx, "no Interrupt Line");
        return;
    };
    let pirq = u32::from(line);
    let port = match crate::xen::evtchn::bind_pirq(pirq, 0) {
        Ok(p) => p,
        Err(e) => {
            println!("xpci: {name}: INTx pirq {pirq}: bind_pirq: error {e}");
            check(names.intx, false);
            return;
        }
    };
    let _ = crate::xen::evtchn::unmask(port);
    println!("xpci: {name}: INTx as pirq {pirq} port {port}");
    let _ = mmio.read32(reg::ICR);
    let cmd = t.read(f.addr, super::command::OFFSET, 2).unwrap_or(0) as u16;
    let _ = t.write(
        f.addr,
        super::command::OFFSET,
        2,
        u32::from(cmd & !command::INTX_DISABLE),
    );
    mmio.write32(reg::IMS, ICR_LSC);
    let irq = super::Irq::Event { pirq, port };
    let mut got = 0;
    for _ in 0..2 {
        let before = irq.count();
        mmio.write32(reg::ICS, ICR_LSC);
        let arrived = irq.wait(before, 1000).is_some();
        let icr = mmio.read32(reg::ICR);
        if !arrived || icr & ICR_LSC == 0 || crate::xen::physdev_eoi(pirq) != 0 {
            println!("xpci: {name}: INTx: event {arrived}, ICR {icr:#x}");
            break;
        }
        got += 1;
    }
    check_eq(names.intx, got, 2);
    mmio.write32(reg::IMC, u32::MAX);
    let _ = t.write(
        f.addr,
        super::command::OFFSET,
        2,
        u32::from(cmd | command::INTX_DISABLE),
    );
    let _ = crate::xen::evtchn::close(port);
}

/// The e1000e's MSI-X interrupt for `bench-only=msix-irq`: MSI-X table
/// entry 0 enabled through the backend, IVAR routing the transmit queue 0
/// cause to it, that cause unmasked and set through ICS.
#[derive(Debug)]
pub struct MsixIrq {
    mmio: Mmio,
    irq: super::Irq,
    /// TSC ticks to leave between two interrupts ([`MSIX_GAP_NS`]).
    gap: u64,
    /// TSC when the last interrupt arrived.
    last: core::cell::Cell<u64>,
}

/// The time left between two measured interrupts, ns: QEMU's e1000e
/// signals at most one interrupt per MSI-X vector every 128 us (500 units
/// of 256 ns, its least EITR interval), so back-to-back raises would
/// measure that wait instead of the path.
const MSIX_GAP_NS: u64 = 200_000;

/// IVAR's TxQ0 field: MSI-X vector 0, valid (bits 11:8).
const IVAR_TXQ0_VECTOR0: u32 = 0x8 << 8;
/// Interrupt cause TxQ0 (transmit queue 0, MSI-X mode).
const ICR_TXQ0: u32 = 1 << 22;

impl MsixIrq {
    /// Sets the e1000e `f` up for it; a line says why not.
    pub fn setup<T: Transport>(t: &mut T, f: &Function) -> Option<MsixIrq> {
        let bar = f.bars[0]?;
        let mmio = match Mmio::map(&bar) {
            Ok(m) => m,
            Err(e) => {
                println!("xpci-bench: e1000e: BAR0: {e:?}");
                return None;
            }
        };
        super::enable(t, f, f.decode_bits() | command::BUS_MASTER).ok()?;
        let irq = match t.enable_msix(f, 0) {
            Ok(irq) => irq,
            Err(e) => {
                println!("xpci-bench: e1000e: enable MSI-X: {e}");
                return None;
            }
        };
        // No interrupt throttling (ITR, and EITR of vector 0): each cause
        // is signalled at once.
        mmio.write32(reg::ITR, 0);
        mmio.write32(reg::EITR0, 0);
        mmio.write32(reg::IVAR, IVAR_TXQ0_VECTOR0);
        let _ = mmio.read32(reg::ICR);
        mmio.write32(reg::IMS, ICR_TXQ0);
        let gap = crate::xen::shared::time_info()
            .map(|t| t.ticks_for(MSIX_GAP_NS))
            .filter(|&g| g > 0)
            .unwrap_or(MSIX_GAP_NS * 4);
        Some(MsixIrq {
            mmio,
            irq,
            gap,
            last: core::cell::Cell::new(0),
        })
    }

    /// [`MSIX_GAP_NS`] after the last one, sets the TxQ0 cause through ICS
    /// and waits for the event of MSI-X vector 0, then reads ICR (clearing
    /// the causes): the TSC cycles from the ICS write to the event handler,
    /// `None` if none came.
    pub fn raise(&self) -> Option<u64> {
        while crate::cpu::rdtsc().wrapping_sub(self.last.get()) < self.gap {
            core::hint::spin_loop();
        }
        let before = self.irq.count();
        let t0 = crate::cpu::rdtsc();
        self.mmio.write32(reg::ICS, ICR_TXQ0);
        let at = self.irq.wait(before, 1000)?;
        self.last.set(at);
        let _ = self.mmio.read32(reg::ICR);
        Some(at.saturating_sub(t0))
    }

    /// Masks every cause and disables MSI-X again.
    pub fn finish<T: Transport>(self, t: &mut T, f: &Function) -> bool {
        self.mmio.write32(reg::IMC, u32::MAX);
        t.disable_msix(f).is_ok()
    }
}

/// STATUS through the I/O BAR (IOADDR = its offset, then IODATA, 32-bit
/// port accesses), compared with the MMIO read; nothing without an I/O
/// BAR. QEMU's e1000 does not implement the window (it reads 0 there):
/// a 0 from an e1000 is reported as SKIP.
fn io_status(f: &Function, mmio: &Mmio, names: &Names, io_on: bool) {
    let Some(bar) = f.bars.iter().flatten().find(|b| b.kind == BarKind::Io) else {
        return;
    };
    check(names.io_decode, io_on);
    let Some(pio) = Pio::new(bar) else {
        println!(
            "xpci: {}: I/O BAR at {:#x} size {} is outside the port space",
            names.model, bar.addr, bar.size
        );
        check(names.io_status, false);
        return;
    };
    pio.write32(io::IOADDR, reg::STATUS as u32);
    let by_io = pio.read32(io::IODATA);
    let by_mmio = mmio.read32(reg::STATUS);
    println!(
        "xpci: {}: STATUS through I/O BAR {by_io:#010x} (MMIO {by_mmio:#010x})",
        names.model
    );
    if by_io == 0 && f.ids() == E1000_IDS {
        report::skip(
            names.io_status,
            "an e1000 read 0 through IODATA (QEMU's e1000 leaves its I/O window unimplemented)",
        );
        return;
    }
    check_eq(names.io_status, by_io, by_mmio);
}
