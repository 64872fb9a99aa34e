//! Intel e1000 (82540EM, 8086:100e) and e1000e (82574L, 8086:10d3) as QEMU
//! models them: a device reset through CTRL.RST, the link-up bit of
//! STATUS, and the MAC address in receive address 0 (RAL0/RAH0).

use super::mmio::Mmio;
use super::{command, wait_for, Function, Transport};
use crate::println;
use crate::report::{check, check_eq};

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
    /// Interrupt mask clear.
    pub const IMC: u64 = 0x00d8;
    /// Receive address low, entry 0.
    pub const RAL0: u64 = 0x5400;
    /// Receive address high, entry 0.
    pub const RAH0: u64 = 0x5404;
}

/// CTRL: device reset (self-clearing).
const CTRL_RST: u32 = 1 << 26;
/// STATUS: link up.
const STATUS_LU: u32 = 1 << 1;
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
}

const E1000: Names = Names {
    model: "e1000",
    bar: "e1000: BAR0 present",
    mapped: "e1000: BAR0 mapped",
    enabled: "e1000: memory decoding and bus mastering on",
    reset: "e1000: reset completes",
    mac: "e1000: receive address 0 holds a valid unicast MAC",
};

const E1000E: Names = Names {
    model: "e1000e",
    bar: "e1000e: BAR0 present",
    mapped: "e1000e: BAR0 mapped",
    enabled: "e1000e: memory decoding and bus mastering on",
    reset: "e1000e: reset completes",
    mac: "e1000e: receive address 0 holds a valid unicast MAC",
};

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
    let cmd = super::enable(t, f, f.decode_bits() | command::MASTER);
    check_eq(
        names.enabled,
        cmd.map(|c| c & (command::MEMORY | command::MASTER)),
        Ok(command::MEMORY | command::MASTER),
    );
    mmio.write32(reg::IMC, u32::MAX);
    let ctrl = mmio.read32(reg::CTRL);
    mmio.write32(reg::CTRL, ctrl | CTRL_RST);
    let reset = wait_for(100, || mmio.read32(reg::CTRL) & CTRL_RST == 0);
    // The reset takes about 1 us on hardware; let it settle.
    wait_for(1, || false);
    mmio.write32(reg::IMC, u32::MAX);
    check(names.reset, reset);

    let status = mmio.read32(reg::STATUS);
    let ral = mmio.read32(reg::RAL0);
    let rah = mmio.read32(reg::RAH0);
    let mac = [
        ral as u8,
        (ral >> 8) as u8,
        (ral >> 16) as u8,
        (ral >> 24) as u8,
        rah as u8,
        (rah >> 8) as u8,
    ];
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
    let valid = rah & RAH_AV != 0 && mac != [0; 6] && mac != [0xff; 6] && mac[0] & 1 == 0;
    check(names.mac, valid);
}
