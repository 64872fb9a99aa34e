//! Test doubles: table memory (shared with the VT-d tests), and a
//! register file that runs the command buffer the way the specification
//! describes, records every register write and every command, and can
//! log events.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::regs::*;
use super::AmdViRegs;
pub(crate) use crate::iommu::testmem::{FakeMem, SharedMem};
use crate::iommu::TableMemory;

/// QEMU's Extended Feature Register: PreF, PPR, GT, IA, GA, HE, HATS 10b
/// (6 levels), GATS 10b.
pub(crate) const EFR_QEMU: u64 = 0x29d3;

/// One register write the driver made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// A 32-bit write: offset, value.
    W32(u32, u32),
    /// A 64-bit write: offset, value.
    W64(u32, u64),
}

/// A register file of one unit.
#[derive(Debug)]
pub(crate) struct FakeRegs {
    regs: BTreeMap<u32, u64>,
    /// Every write, in order.
    pub writes: Vec<Write>,
    /// The memory the unit reads commands from and writes into; without
    /// it no command is ever run.
    pub mem: Option<SharedMem>,
    /// Commands the unit ran, in order.
    pub commands: Vec<[u64; 2]>,
    /// The unit takes no commands (CmdBufRun set, head never moves).
    pub stuck: bool,
    /// Status.CmdBufRun never comes on.
    pub never_runs: bool,
    /// Status.CmdBufRun and EventLogRun never go off.
    pub never_stops: bool,
    /// The next command with this opcode halts the command buffer as an
    /// illegal command would.
    pub halt_on: Option<u64>,
}

impl FakeRegs {
    pub(crate) fn new(efr: u64, mem: &SharedMem) -> Self {
        let mut r = Self {
            regs: BTreeMap::new(),
            writes: Vec::new(),
            mem: Some(mem.clone()),
            commands: Vec::new(),
            stuck: false,
            never_runs: false,
            never_stops: false,
            halt_on: None,
        };
        r.set(EXT_FEATURES, efr);
        r
    }

    pub(crate) fn get(&self, off: u32) -> u64 {
        self.regs.get(&off).copied().unwrap_or(0)
    }

    pub(crate) fn set(&mut self, off: u32, v: u64) {
        self.regs.insert(off, v);
    }

    /// The writes made since the last call.
    pub(crate) fn take_writes(&mut self) -> Vec<Write> {
        core::mem::take(&mut self.writes)
    }

    /// The commands run since the last call.
    pub(crate) fn take_commands(&mut self) -> Vec<[u64; 2]> {
        core::mem::take(&mut self.commands)
    }

    fn update_run_bits(&mut self) {
        let control = self.get(CONTROL);
        let on = control & CTL_IOMMU_EN != 0;
        let mut status = self.get(STATUS);
        let cmd = on && control & CTL_CMD_BUF_EN != 0 && !self.never_runs;
        let evt = on && control & CTL_EVENT_LOG_EN != 0;
        if cmd || self.never_stops {
            status |= ST_CMD_BUF_RUN;
        } else {
            status &= !ST_CMD_BUF_RUN;
        }
        if evt || self.never_stops {
            status |= ST_EVENT_LOG_RUN;
        } else {
            status &= !ST_EVENT_LOG_RUN;
        }
        self.set(STATUS, status);
    }

    /// Logs the event `raw` as the unit would: at the tail, unless
    /// logging is off or the log is full (then EventOverflow is set).
    pub(crate) fn log_event(&mut self, raw: [u64; 2]) {
        let status = self.get(STATUS);
        if status & ST_EVENT_LOG_RUN == 0 || status & ST_EVENT_OVERFLOW != 0 {
            return;
        }
        let base = self.get(EVT_BASE) & 0x000f_ffff_ffff_f000;
        let len = 16u64 << ((self.get(EVT_BASE) >> 56) & 0xf);
        let tail = self.get(EVT_TAIL) & RING_PTR;
        let next = (tail + 16) % len;
        if next == self.get(EVT_HEAD) & RING_PTR {
            self.set(STATUS, status | ST_EVENT_OVERFLOW);
            return;
        }
        let mem = self.mem.clone().expect("event log memory");
        let mut mem = mem.0.borrow_mut();
        mem.write64(base + tail, raw[0]);
        mem.write64(base + tail + 8, raw[1]);
        self.set(EVT_TAIL, next);
        self.set(STATUS, status | ST_EVENT_LOG_INT);
    }

    /// Runs commands from the head to the tail pointer.
    fn run_commands(&mut self) {
        let Some(mem) = self.mem.clone() else {
            return;
        };
        if self.stuck || self.get(STATUS) & ST_CMD_BUF_RUN == 0 {
            return;
        }
        let base = self.get(CMD_BASE) & 0x000f_ffff_ffff_f000;
        let len = 16u64 << ((self.get(CMD_BASE) >> 56) & 0xf);
        let tail = self.get(CMD_TAIL) & RING_PTR;
        let mut head = self.get(CMD_HEAD) & RING_PTR;
        while head != tail {
            let at = base + head;
            let c = {
                let mut m = mem.0.borrow_mut();
                [m.read64(at), m.read64(at + 8)]
            };
            let opcode = c[0] >> 60;
            if self.halt_on == Some(opcode) || !well_formed(c) {
                self.halt_on = None;
                let status = self.get(STATUS) & !ST_CMD_BUF_RUN;
                self.set(STATUS, status);
                self.set(CMD_HEAD, head);
                // ILLEGAL_COMMAND_ERROR: code 5, the command's address.
                self.log_event([5 << 60, at]);
                return;
            }
            self.commands.push(c);
            if opcode == 1 && c[0] & 1 != 0 {
                mem.0
                    .borrow_mut()
                    .write64(c[0] & 0x000f_ffff_ffff_fff8, c[1]);
            }
            head = (head + 16) % len;
        }
        self.set(CMD_HEAD, head);
    }
}

/// What the fake unit does with a DMA or an interrupt request.
impl FakeRegs {
    /// The device table entry of `devid`, or `None` (and an
    /// ILLEGAL_DEV_TABLE_ENTRY event) beyond the table.
    fn dte(&mut self, devid: u16, address: u64) -> Option<[u64; 4]> {
        let reg = self.get(DEV_TAB_BASE);
        let size = ((reg & 0x1ff) + 1) * 4096;
        if u64::from(devid) * 32 >= size {
            self.log_event([1 << 60 | u64::from(devid), address]);
            return None;
        }
        let at = (reg & 0x000f_ffff_ffff_f000) + u64::from(devid) * 32;
        let mem = self.mem.clone().expect("table memory");
        let mut m = mem.0.borrow_mut();
        Some(core::array::from_fn(|i| m.read64(at + 8 * i as u64)))
    }

    /// A DMA access by `devid` at `iova`, walked the way the
    /// specification describes (independently of the driver's own
    /// `translate`): the host-physical address, or `None` after logging
    /// an IO_PAGE_FAULT (RW for writes, PR when a leaf was found).
    pub(crate) fn dma(&mut self, devid: u16, iova: u64, write: bool) -> Option<u64> {
        if self.get(CONTROL) & CTL_IOMMU_EN == 0 {
            return Some(iova);
        }
        let dte = self.dte(devid, iova)?;
        if dte[0] & 1 == 0 {
            // V = 0: untranslated.
            return Some(iova);
        }
        let fault = |regs: &mut Self, present: bool| {
            let flags = u64::from(write) << 5 | u64::from(present) << 4;
            let domain = dte[1] & 0xffff;
            regs.log_event([
                2 << 60 | flags << 48 | domain << 32 | u64::from(devid),
                iova,
            ]);
            None
        };
        if dte[0] & 2 == 0 {
            return fault(self, false);
        }
        let need = if write { 1u64 << 62 } else { 1 << 61 };
        let mut rights = dte[0] & (3 << 61);
        let mode = ((dte[0] >> 9) & 7) as u32;
        if mode == 0 {
            return if rights & need != 0 {
                Some(iova)
            } else {
                fault(self, false)
            };
        }
        if mode > 6 || (mode < 6 && iova >> (12 + 9 * mode) != 0) {
            return fault(self, false);
        }
        let mem = self.mem.clone().expect("table memory");
        let mut table = dte[0] & 0x000f_ffff_ffff_f000;
        let mut level = mode;
        loop {
            let index = (iova >> (12 + 9 * (level - 1))) & 511;
            let e = mem.0.borrow_mut().read64(table + index * 8);
            if e & 1 == 0 {
                return fault(self, false);
            }
            rights &= e;
            let next = ((e >> 9) & 7) as u32;
            if next == 0 || level == 1 {
                let size = 1u64 << (12 + 9 * (level - 1));
                if rights & need == 0 {
                    return fault(self, true);
                }
                return Some((e & 0x000f_ffff_ffff_f000 & !(size - 1)) | (iova & (size - 1)));
            }
            assert_eq!(next, level - 1, "a skipped level at {table:#x}");
            table = e & 0x000f_ffff_ffff_f000;
            level -= 1;
        }
    }

    /// An MSI write by `devid`: the vector and destination APIC id the
    /// processor gets, or `None` after logging an IO_PAGE_FAULT with I
    /// set (RZ when the entry has reserved or unsupported values).
    pub(crate) fn interrupt(&mut self, devid: u16, address: u64, data: u32) -> Option<(u8, u8)> {
        let passed = Some((data as u8, (address >> 12) as u8));
        if self.get(CONTROL) & CTL_IOMMU_EN == 0 {
            return passed;
        }
        let dte = self.dte(devid, address)?;
        let blocked = |regs: &mut Self, reserved: bool| {
            let flags = 1u64 << 3 | 1 << 5 | u64::from(reserved) << 7;
            regs.log_event([2 << 60 | flags << 48 | u64::from(devid), address]);
            None
        };
        if dte[0] & 1 == 0 || dte[2] & 1 == 0 {
            // V = 0 or IV = 0: not remapped.
            return passed;
        }
        // Delivery modes other than fixed and arbitrated follow the pass
        // bits (INIT 56, ExtInt 57, NMI 58).
        let pass_bit = match (data >> 8) & 7 {
            0 | 1 => None,
            5 => Some(56),
            7 => Some(57),
            4 => Some(58),
            _ => return blocked(self, false),
        };
        if let Some(bit) = pass_bit {
            return if dte[2] & (1 << bit) != 0 {
                passed
            } else {
                blocked(self, false)
            };
        }
        match (dte[2] >> 60) & 3 {
            0b01 => return passed,
            0b10 => {}
            _ => return blocked(self, false),
        }
        let index = u64::from(data & 0x7ff);
        if index >= 1 << ((dte[2] >> 1) & 0xf) {
            return blocked(self, false);
        }
        let at = (dte[2] & 0x000f_ffff_ffff_ffc0) + index * 4;
        let word = self
            .mem
            .clone()
            .expect("table memory")
            .0
            .borrow_mut()
            .read64(at & !7);
        let irte = (word >> ((at & 4) * 8)) as u32;
        if irte & 1 == 0 {
            return blocked(self, false);
        }
        // IntType (4:2) above arbitrated, GuestMode (7) or reserved bits.
        if (irte >> 2) & 7 > 1 || irte & (1 << 7) != 0 || irte >> 24 != 0 {
            return blocked(self, true);
        }
        Some(((irte >> 16) as u8, (irte >> 8) as u8))
    }
}

/// Whether a command has a known opcode and its reserved bits clear (the
/// checks QEMU makes).
fn well_formed(c: [u64; 2]) -> bool {
    let bits = |v: u64, hi: u32, lo: u32| (v >> lo) & ((1 << (hi - lo + 1)) - 1);
    match c[0] >> 60 {
        1 => bits(c[0], 59, 52) == 0,
        2 | 5 => bits(c[0], 59, 16) == 0 && c[1] == 0,
        3 => bits(c[0], 31, 20) == 0 && bits(c[0], 59, 48) == 0 && bits(c[1], 11, 3) == 0,
        8 => bits(c[0], 59, 0) == 0 && c[1] == 0,
        _ => false,
    }
}

impl AmdViRegs for FakeRegs {
    fn read32(&mut self, off: u32) -> u32 {
        (self.get(off & !7) >> ((off & 4) * 8)) as u32
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.writes.push(Write::W32(off, v));
        let shift = (off & 4) * 8;
        let old = self.get(off & !7);
        let new = (old & !(0xffff_ffff << shift)) | u64::from(v) << shift;
        self.write_reg(off & !7, new);
    }

    fn read64(&mut self, off: u32) -> u64 {
        self.get(off)
    }

    fn write64(&mut self, off: u32, v: u64) {
        self.writes.push(Write::W64(off, v));
        self.write_reg(off, v);
    }
}

impl FakeRegs {
    fn write_reg(&mut self, off: u32, v: u64) {
        match off {
            EXT_FEATURES => {}
            STATUS => {
                let cur = self.get(STATUS);
                self.set(STATUS, cur & !(v & ST_RW1C));
            }
            CONTROL => {
                self.set(CONTROL, v);
                self.update_run_bits();
                self.run_commands();
            }
            CMD_TAIL => {
                self.set(CMD_TAIL, v);
                self.run_commands();
            }
            _ => self.set(off, v),
        }
    }
}
