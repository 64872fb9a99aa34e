//! Test doubles: table memory (shared with the AMD-Vi tests), and a
//! register file that answers the unit's handshakes the way the
//! specification describes and records every write.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::regs::*;
use super::VtdRegs;
pub(crate) use crate::iommu::testmem::{FakeMem, SharedMem};
use crate::iommu::TableMemory;

/// One register write the driver made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// A 32-bit write: offset, value.
    W32(u32, u32),
    /// A 64-bit write: offset, value.
    W64(u32, u64),
}

/// QEMU-like capabilities: 16-bit domain ids, 39- and 48-bit tables, MGAW
/// 48, fault records at 0x220 (4 of them), 2M and 1G pages, PSI.
pub(crate) const CAP_DEFAULT: u64 = 6
    | (0b00110 << 8)
    | (47 << 16)
    | ((0x220 / 16) << 24)
    | (1 << 34)
    | (1 << 35)
    | (1 << 39)
    | (3 << 40);
/// IOTLB registers at 0xf0, coherent walks, IR and EIM, no QI.
pub(crate) const ECAP_DEFAULT: u64 = 1 | (1 << 3) | (1 << 4) | ((0xf0 / 16) << 8);
/// Where the IOTLB invalidate register is with [`ECAP_DEFAULT`].
pub(crate) const IOTLB_AT: u32 = 0xf8;

/// A register file of one unit.
#[derive(Debug)]
pub(crate) struct FakeRegs {
    bytes: Vec<u8>,
    /// Every write, in order.
    pub writes: Vec<Write>,
    /// GSTS bits that never follow their GCMD bits.
    pub stuck_gsts: u32,
    /// CCMD.ICC never clears.
    pub stuck_ccmd: bool,
    /// IOTLB.IVT never clears.
    pub stuck_iotlb: bool,
    /// Invalidations complete with granularity 0 (rejected).
    pub reject: bool,
    /// The memory the invalidation queue lives in; without it the queue
    /// is never processed.
    pub queue_mem: Option<SharedMem>,
    /// Descriptors the queue consumed, in order.
    pub descriptors: Vec<[u64; 2]>,
    /// The next descriptor fetched is reported as an invalidation queue
    /// error (FSTS.IQE) and the queue stops there.
    pub fail_descriptor: bool,
    /// The IRTA value the unit took at the last GCMD.SIRTP.
    pub latched_irta: Option<u64>,
    /// The interrupt entry cache: entries the unit has read, by index,
    /// until an interrupt entry cache invalidation drops them.
    irte_cache: BTreeMap<u16, [u64; 2]>,
}

/// What the unit did with an interrupt request (a DMA write to
/// `0xFEEx_xxxx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Irq {
    /// Passed through unremapped (remapping off, or compatibility format
    /// allowed by GCMD.CFI).
    Unremapped,
    /// Remapped and delivered.
    Delivered {
        /// The entry's vector.
        vector: u8,
        /// The entry's destination APIC id.
        dest: u32,
    },
    /// Blocked, with this fault reason recorded.
    Blocked(u8),
}

impl FakeRegs {
    pub(crate) fn new(cap: u64, ecap: u64) -> Self {
        let mut r = Self {
            bytes: alloc::vec![0; 0x1000],
            writes: Vec::new(),
            stuck_gsts: 0,
            stuck_ccmd: false,
            stuck_iotlb: false,
            reject: false,
            queue_mem: None,
            descriptors: Vec::new(),
            fail_descriptor: false,
            latched_irta: None,
            irte_cache: BTreeMap::new(),
        };
        r.set32(VER, 0x10);
        r.set64(CAP, cap);
        r.set64(ECAP, ecap);
        r
    }

    pub(crate) fn qemu() -> Self {
        Self::new(CAP_DEFAULT, ECAP_DEFAULT)
    }

    pub(crate) fn get32(&self, off: u32) -> u32 {
        let o = off as usize;
        u32::from_le_bytes(self.bytes[o..o + 4].try_into().unwrap())
    }

    pub(crate) fn set32(&mut self, off: u32, v: u32) {
        let o = off as usize;
        self.bytes[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn get64(&self, off: u32) -> u64 {
        u64::from(self.get32(off)) | u64::from(self.get32(off + 4)) << 32
    }

    pub(crate) fn set64(&mut self, off: u32, v: u64) {
        self.set32(off, v as u32);
        self.set32(off + 4, (v >> 32) as u32);
    }

    fn caps(&self) -> Caps {
        Caps {
            ver: self.get32(VER),
            cap: self.get64(CAP),
            ecap: self.get64(ECAP),
        }
    }

    /// Puts a fault record `[lo, hi]` in slot `i` and sets FSTS.PPF.
    pub(crate) fn record_fault(&mut self, i: u32, lo: u64, hi: u64) {
        let at = self.caps().fault_offset() + i * 16;
        self.set64(at, lo);
        self.set64(at + 8, hi);
        self.update_ppf();
    }

    fn update_ppf(&mut self) {
        let caps = self.caps();
        let pending = (0..caps.fault_records())
            .any(|i| self.get64(caps.fault_offset() + i * 16 + 8) & FRCD_F != 0);
        let fsts = self.get32(FSTS) & !FSTS_PPF;
        self.set32(FSTS, fsts | if pending { FSTS_PPF } else { 0 });
    }

    /// The writes made since the last call.
    pub(crate) fn take_writes(&mut self) -> Vec<Write> {
        core::mem::take(&mut self.writes)
    }
}

impl VtdRegs for FakeRegs {
    fn read32(&mut self, off: u32) -> u32 {
        self.get32(off)
    }

    fn read64(&mut self, off: u32) -> u64 {
        self.get64(off)
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.writes.push(Write::W32(off, v));
        let caps = self.caps();
        let frcd = caps.fault_offset()..caps.fault_offset() + caps.fault_records() * 16;
        match off {
            GCMD => {
                let old = self.get32(GSTS);
                // RTPS and IRTPS stay set once their pointer was set.
                let mut next = (old & (G_RTP | G_IRTP)) | (v & G_PERSISTENT);
                if v & G_RTP != 0 {
                    next |= G_RTP;
                }
                if v & G_IRTP != 0 {
                    next |= G_IRTP;
                    self.latched_irta = Some(self.get64(IRTA));
                }
                let stuck = self.stuck_gsts;
                let next = (next & !stuck) | (old & stuck);
                if next & !old & G_QIE != 0 {
                    // Enabling the queue resets its head.
                    self.set64(IQH, 0);
                }
                self.set32(GSTS, next);
            }
            FSTS => {
                let rw1c = v & (FSTS_PFO | 0b111_1100);
                let cur = self.get32(FSTS);
                self.set32(FSTS, cur & !rw1c);
            }
            PMEN => self.set32(
                PMEN,
                if v & PMEN_EPM != 0 {
                    PMEN_EPM | PMEN_PRS
                } else {
                    0
                },
            ),
            o if frcd.contains(&o) && (o - frcd.start) % 16 == 12 => {
                if v & (1 << 31) != 0 {
                    let cur = self.get32(o);
                    self.set32(o, cur & !(1 << 31));
                    self.update_ppf();
                }
            }
            _ => self.set32(off, v),
        }
    }

    fn write64(&mut self, off: u32, v: u64) {
        self.writes.push(Write::W64(off, v));
        let iotlb = self.caps().iotlb_offset() + IOTLB_REG;
        let granted = |requested: u64| if self.reject { 0 } else { requested };
        if off == CCMD && !self.stuck_ccmd {
            let cirg = (v >> 61) & 3;
            let v = (v & !CCMD_ICC & !(3 << CCMD_CAIG_SHIFT)) | granted(cirg) << CCMD_CAIG_SHIFT;
            self.set64(off, v);
        } else if off == iotlb && !self.stuck_iotlb {
            let iirg = (v >> 60) & 3;
            let v = (v & !IOTLB_IVT & !(3 << IOTLB_IAIG_SHIFT)) | granted(iirg) << IOTLB_IAIG_SHIFT;
            self.set64(off, v);
        } else {
            self.set64(off, v);
            if off == IQT {
                self.run_queue();
            }
        }
    }
}

impl FakeRegs {
    /// Consumes descriptors from IQH to IQT as the unit would.
    fn run_queue(&mut self) {
        let Some(mem) = self.queue_mem.clone() else {
            return;
        };
        if self.get32(GSTS) & G_QIE == 0 || self.get32(FSTS) & FSTS_IQE != 0 {
            return;
        }
        let base = self.get64(IQA) & !0xfff;
        let tail = (self.get64(IQT) >> 4) & 0x7fff;
        let mut head = (self.get64(IQH) >> 4) & 0x7fff;
        let mut mem = mem.0.borrow_mut();
        while head != tail {
            let at = base + head * 16;
            let d = [mem.read64(at), mem.read64(at + 8)];
            if self.fail_descriptor || !(1..=7).contains(&(d[0] & 0xf)) {
                self.fail_descriptor = false;
                let fsts = self.get32(FSTS);
                self.set32(FSTS, fsts | FSTS_IQE);
                break;
            }
            self.descriptors.push(d);
            if d[0] & 0xf == 4 {
                // Interrupt entry cache: G (bit 4) 0 global, 1 the 2^IM
                // entries from IIDX.
                if d[0] & (1 << 4) == 0 {
                    self.irte_cache.clear();
                } else {
                    let first = u32::from((d[0] >> 32) as u16);
                    let count = 1u32 << ((d[0] >> 27) & 0x1f);
                    self.irte_cache
                        .retain(|&i, _| !(first..first + count).contains(&u32::from(i)));
                }
            }
            if d[0] & 0xf == 5 && d[0] & (1 << 5) != 0 {
                // Wait descriptor with a status write: 32 bits of data at
                // the 4-byte aligned address in the high half.
                let addr = d[1] & !3;
                let word = mem.read64(addr & !7);
                let shift = (addr & 4) * 8;
                let data = (d[0] >> 32) << shift;
                mem.write64(addr & !7, (word & !(0xffff_ffff << shift)) | data);
            }
            head = (head + 1) % 256;
        }
        drop(mem);
        self.set64(IQH, head << 4);
    }
}

impl FakeRegs {
    /// The unit receiving an interrupt request from requester `sid`
    /// (VT-d specification 5.1.4 and 5.1.5), reading the remapping table
    /// from the queue's memory: compatibility format is blocked unless
    /// GCMD.CFI allows it in xAPIC mode; a remappable request's handle
    /// (plus the subhandle in the data if SHV) selects an entry, which
    /// must be within IRTA.S, present and, with SVT = 01 and SQ = 00,
    /// name `sid`. A blocked request is recorded in a free fault record.
    pub(crate) fn interrupt(&mut self, sid: u16, address: u64, data: u32) -> Irq {
        assert_eq!(address >> 20, 0xfee, "not an interrupt request");
        let gsts = self.get32(GSTS);
        let Some(irta) = self.latched_irta.filter(|_| gsts & G_IRE != 0) else {
            return Irq::Unremapped;
        };
        let x2apic = irta & IRTA_EIME != 0;
        if address & (1 << 4) == 0 {
            if !x2apic && gsts & G_CFI != 0 {
                return Irq::Unremapped;
            }
            return self.interrupt_fault(sid, 0, 0x25);
        }
        let handle = ((address >> 5) & 0x7fff) | ((address >> 2) & 1) << 15;
        let index = if address & (1 << 3) != 0 {
            (handle + u64::from(data & 0xffff)) & 0xffff
        } else {
            handle
        } as u16;
        if u64::from(index) >= 2 << (irta & 0xf) {
            return self.interrupt_fault(sid, index, 0x21);
        }
        let entry = match self.irte_cache.get(&index) {
            Some(&e) => e,
            None => {
                let mem = self.queue_mem.clone().expect("table memory");
                let mut mem = mem.0.borrow_mut();
                let at = (irta & !0xfff) + u64::from(index) * 16;
                let e = [mem.read64(at), mem.read64(at + 8)];
                drop(mem);
                self.irte_cache.insert(index, e);
                e
            }
        };
        let [lo, hi] = entry;
        if lo & 1 == 0 {
            self.irte_cache.remove(&index);
            return self.interrupt_fault(sid, index, 0x22);
        }
        let (svt, sq) = ((hi >> 18) & 3, (hi >> 16) & 3);
        if svt == 1 && sq == 0 && hi as u16 != sid {
            return self.interrupt_fault(sid, index, 0x26);
        }
        let dest = if x2apic {
            (lo >> 32) as u32
        } else {
            ((lo >> 40) & 0xff) as u32
        };
        Irq::Delivered {
            vector: (lo >> 16) as u8,
            dest,
        }
    }

    fn interrupt_fault(&mut self, sid: u16, index: u16, reason: u8) -> Irq {
        let caps = self.caps();
        let free = (0..caps.fault_records())
            .find(|&i| self.get64(caps.fault_offset() + i * 16 + 8) & FRCD_F == 0);
        match free {
            // FI bits 63:48: the interrupt index; T = 0 (a write).
            Some(i) => self.record_fault(
                i,
                u64::from(index) << 48,
                FRCD_F | u64::from(reason) << 32 | u64::from(sid),
            ),
            None => {
                let fsts = self.get32(FSTS);
                self.set32(FSTS, fsts | FSTS_PFO);
            }
        }
        Irq::Blocked(reason)
    }
}
