//! A scripted config space for host tests: one function, dwords with
//! per-register writable and write-1-to-clear masks, and a log of every
//! access.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

/// One dword of config space.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reg {
    pub value: u32,
    /// Bits a write replaces.
    pub writable: u32,
    /// Bits a written 1 clears (a written 0 leaves them).
    pub rw1c: u32,
}

/// One access, as the function saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read { offset: u16, value: u32 },
    Write { offset: u16, value: u32 },
}

#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub sbdf: Sbdf,
    /// Dwords not listed read as `absent` and ignore writes.
    pub regs: BTreeMap<u16, Reg>,
    pub absent: u32,
    pub log: Vec<Access>,
    /// The size of the config space: 256 (the default) or 4096.
    pub size: u16,
}

impl FakeConfig {
    /// A function whose unlisted registers read 0.
    pub fn new(sbdf: Sbdf) -> Self {
        Self {
            sbdf,
            regs: BTreeMap::new(),
            absent: 0,
            log: Vec::new(),
            size: 256,
        }
    }

    /// An address where nothing answers: every read is all ones.
    pub fn empty_slot(sbdf: Sbdf) -> Self {
        Self {
            absent: u32::MAX,
            ..Self::new(sbdf)
        }
    }

    /// The same function with a config space of `size` bytes (4096 for
    /// PCI Express extended config space).
    pub fn with_size(mut self, size: u16) -> Self {
        self.size = size;
        self
    }

    pub fn with(mut self, offset: u16, value: u32, writable: u32, rw1c: u32) -> Self {
        self.regs.insert(
            offset,
            Reg {
                value,
                writable,
                rw1c,
            },
        );
        self
    }

    /// The current value, without logging an access.
    pub fn peek(&self, offset: u16) -> u32 {
        self.regs.get(&offset).map_or(self.absent, |r| r.value)
    }

    pub fn writes(&self) -> Vec<(u16, u32)> {
        self.log
            .iter()
            .filter_map(|a| match *a {
                Access::Write { offset, value } => Some((offset, value)),
                Access::Read { .. } => None,
            })
            .collect()
    }

    fn check(&self, sbdf: Sbdf, offset: u16) {
        assert_eq!(sbdf, self.sbdf, "access to another function");
        assert_eq!(offset % 4, 0, "unaligned dword access at {offset:#x}");
        assert!(
            offset < self.size,
            "access beyond config space at {offset:#x}"
        );
    }
}

impl PciConfig for FakeConfig {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        self.check(sbdf, offset);
        let value = self.peek(offset);
        self.log.push(Access::Read { offset, value });
        value
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        self.check(sbdf, offset);
        self.log.push(Access::Write { offset, value });
        if let Some(r) = self.regs.get_mut(&offset) {
            r.value = (r.value & !r.writable) | (value & r.writable);
            r.value &= !(value & r.rw1c);
        }
    }

    /// Only the written bytes change: write-1-to-clear bits elsewhere in
    /// the dword stay.
    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        let dword = offset & !3;
        self.check(sbdf, dword);
        let shift = u32::from(offset & 3) * 8;
        let mask = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        } << shift;
        let value = (value << shift) & mask;
        self.log.push(Access::Write {
            offset: dword,
            value,
        });
        if let Some(r) = self.regs.get_mut(&dword) {
            let w = r.writable & mask;
            r.value = (r.value & !w) | (value & w);
            r.value &= !(value & r.rw1c);
        }
    }

    fn config_size(&self, _sbdf: Sbdf) -> u16 {
        self.size
    }
}
