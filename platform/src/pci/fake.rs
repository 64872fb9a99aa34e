//! A scripted config space for tests: functions with per-dword writable
//! masks (so BARs size like real ones), an access log, and a record of BAR
//! writes made while the function was decoding.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

/// One logged config access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read { sbdf: Sbdf, offset: u16, value: u32 },
    Write { sbdf: Sbdf, offset: u16, value: u32 },
}

/// A function's 4 KiB of config space.
#[derive(Clone, Debug)]
pub(crate) struct FakeFunction {
    regs: Vec<u32>,
    writable: Vec<u32>,
}

fn set_byte(word: &mut u32, offset: u16, value: u8) {
    let shift = (offset & 3) * 8;
    *word = (*word & !(0xff << shift)) | (u32::from(value) << shift);
}

impl FakeFunction {
    /// A function with the given IDs, class code (class << 16 | subclass
    /// << 8 | prog-if) and header type. The command register is writable,
    /// the status register read-only.
    pub(crate) fn new(vendor: u16, device: u16, class: u32, header_type: u8) -> Self {
        let mut f = Self {
            regs: alloc::vec![0; 1024],
            writable: alloc::vec![0; 1024],
        };
        f.regs[0] = u32::from(device) << 16 | u32::from(vendor);
        f.regs[2] = class << 8 | 0x01;
        f.regs[3] = u32::from(header_type) << 16;
        f.writable[1] = 0xffff;
        f
    }

    pub(crate) fn endpoint(vendor: u16, device: u16, class: u32) -> Self {
        Self::new(vendor, device, class, 0)
    }

    /// A PCI-to-PCI bridge with the given bus numbers.
    pub(crate) fn bridge(primary: u8, secondary: u8, subordinate: u8) -> Self {
        let mut f = Self::new(0x1b36, 0x000c, 0x06_04_00, 1);
        f.regs[6] = u32::from_le_bytes([primary, secondary, subordinate, 0]);
        f.writable[6] = 0x00ff_ffff;
        f
    }

    pub(crate) fn multifunction(mut self) -> Self {
        self.regs[3] |= 0x80 << 16;
        self
    }

    pub(crate) fn command(mut self, command: u16) -> Self {
        self.regs[1] = (self.regs[1] & 0xffff_0000) | u32::from(command);
        self
    }

    pub(crate) fn irq(mut self, pin: u8, line: u8) -> Self {
        self.regs[15] = u32::from(pin) << 8 | u32::from(line);
        self
    }

    /// Sets a raw dword (and makes it read-only).
    pub(crate) fn raw(mut self, offset: u16, value: u32) -> Self {
        self.regs[usize::from(offset / 4)] = value;
        self.writable[usize::from(offset / 4)] = 0;
        self
    }

    fn bar_slot(index: u8) -> usize {
        4 + usize::from(index)
    }

    pub(crate) fn mem32_bar(mut self, index: u8, base: u32, size: u32, pref: bool) -> Self {
        let slot = Self::bar_slot(index);
        self.regs[slot] = base | if pref { 8 } else { 0 };
        self.writable[slot] = !(size - 1) & !0xf;
        self
    }

    pub(crate) fn mem1m_bar(mut self, index: u8, base: u32, size: u32) -> Self {
        let slot = Self::bar_slot(index);
        self.regs[slot] = base | 2;
        self.writable[slot] = !(size - 1) & 0x000f_fff0;
        self
    }

    pub(crate) fn mem64_bar(mut self, index: u8, base: u64, size: u64, pref: bool) -> Self {
        let slot = Self::bar_slot(index);
        let mask = !(size - 1);
        self.regs[slot] = base as u32 | 4 | if pref { 8 } else { 0 };
        self.writable[slot] = mask as u32 & !0xf;
        self.regs[slot + 1] = (base >> 32) as u32;
        self.writable[slot + 1] = (mask >> 32) as u32;
        self
    }

    /// An I/O BAR; `bits16` models a decoder whose upper half reads zero.
    pub(crate) fn io_bar(mut self, index: u8, base: u32, size: u32, bits16: bool) -> Self {
        let slot = Self::bar_slot(index);
        self.regs[slot] = base | 1;
        self.writable[slot] = !(size - 1) & !3 & if bits16 { 0xffff } else { !0 };
        self
    }

    /// An expansion ROM (at 0x30 or 0x38 by header type); bit 0 (enable)
    /// is writable.
    pub(crate) fn rom(mut self, base: u32, size: u32) -> Self {
        let slot = self.rom_slot();
        self.regs[slot] = base;
        self.writable[slot] = (!(size - 1) & 0xffff_f800) | 1;
        self
    }

    fn rom_slot(&self) -> usize {
        if (self.regs[3] >> 16) & 0x7f == 1 {
            0x38 / 4
        } else {
            0x30 / 4
        }
    }

    /// A capability chain at the given offsets, linked in order, with the
    /// capabilities pointer and status bit set.
    pub(crate) fn caps(mut self, chain: &[(u16, u8)]) -> Self {
        self.regs[1] |= 0x10 << 16;
        if let Some(&(first, _)) = chain.first() {
            set_byte(&mut self.regs[0x34 / 4], 0x34, first as u8);
        }
        for (i, &(off, id)) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(0, |&(o, _)| o as u8);
            self = self.cap_at(off, id, next);
        }
        self
    }

    /// One capability header with an explicit next pointer.
    pub(crate) fn cap_at(mut self, offset: u16, id: u8, next: u8) -> Self {
        self.regs[1] |= 0x10 << 16;
        let word = &mut self.regs[usize::from(offset / 4)];
        set_byte(word, offset, id);
        set_byte(word, offset + 1, next);
        self
    }

    /// An extended capability header.
    pub(crate) fn ext_cap(mut self, offset: u16, id: u16, version: u8, next: u16) -> Self {
        self.regs[usize::from(offset / 4)] =
            u32::from(next) << 20 | u32::from(version & 0xf) << 16 | u32::from(id);
        self
    }

    fn is_bar(&self, offset: u16) -> bool {
        let header = (self.regs[3] >> 16) & 0x7f;
        match header {
            0 => (0x10..0x28).contains(&offset) || offset == 0x30,
            1 => (0x10..0x18).contains(&offset) || offset == 0x38,
            _ => false,
        }
    }
}

/// Config space made of [`FakeFunction`]s; absent functions read all-ones.
#[derive(Debug)]
pub(crate) struct FakeConfig {
    funcs: BTreeMap<Sbdf, FakeFunction>,
    size: u16,
    pub(crate) log: Vec<Access>,
    /// BAR or ROM writes that happened while memory or I/O decode was on.
    pub(crate) writes_while_decoding: Vec<(Sbdf, u16, u32)>,
}

pub(crate) fn sbdf(bus: u8, dev: u8, func: u8) -> Sbdf {
    Sbdf::new(0, bus, dev, func).unwrap()
}

impl FakeConfig {
    /// An empty config space of `size` bytes per function (256 or 4096).
    pub(crate) fn new(size: u16) -> Self {
        Self {
            funcs: BTreeMap::new(),
            size,
            log: Vec::new(),
            writes_while_decoding: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, at: Sbdf, f: FakeFunction) -> &mut Self {
        self.funcs.insert(at, f);
        self
    }

    pub(crate) fn with(mut self, at: Sbdf, f: FakeFunction) -> Self {
        self.add(at, f);
        self
    }

    /// The current register value, without logging.
    pub(crate) fn reg(&self, at: Sbdf, offset: u16) -> u32 {
        self.funcs
            .get(&at)
            .map_or(!0, |f| f.regs[usize::from(offset / 4)])
    }

    /// Every register of every function, for before/after comparisons.
    pub(crate) fn snapshot(&self) -> Vec<(Sbdf, Vec<u32>)> {
        self.funcs
            .iter()
            .map(|(s, f)| (*s, f.regs.clone()))
            .collect()
    }

    /// Whether any access touched `at`.
    pub(crate) fn touched(&self, at: Sbdf) -> bool {
        self.log.iter().any(|a| match *a {
            Access::Read { sbdf, .. } | Access::Write { sbdf, .. } => sbdf == at,
        })
    }

    /// The writes to `at`, in order.
    pub(crate) fn writes(&self, at: Sbdf) -> Vec<(u16, u32)> {
        self.log
            .iter()
            .filter_map(|a| match *a {
                Access::Write {
                    sbdf,
                    offset,
                    value,
                } if sbdf == at => Some((offset, value)),
                _ => None,
            })
            .collect()
    }
}

impl PciConfig for FakeConfig {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        assert_eq!(offset % 4, 0, "unaligned read");
        let value = if offset < self.size {
            self.reg(sbdf, offset)
        } else {
            !0
        };
        self.log.push(Access::Read {
            sbdf,
            offset,
            value,
        });
        value
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        assert_eq!(offset % 4, 0, "unaligned write");
        self.log.push(Access::Write {
            sbdf,
            offset,
            value,
        });
        if offset >= self.size {
            return;
        }
        let Some(f) = self.funcs.get_mut(&sbdf) else {
            return;
        };
        if f.is_bar(offset) && f.regs[1] & 3 != 0 {
            self.writes_while_decoding.push((sbdf, offset, value));
        }
        let slot = usize::from(offset / 4);
        f.regs[slot] = (f.regs[slot] & !f.writable[slot]) | (value & f.writable[slot]);
    }

    fn config_size(&self, _sbdf: Sbdf) -> u16 {
        self.size
    }
}
