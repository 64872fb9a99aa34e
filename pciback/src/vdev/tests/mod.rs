//! Host tests of the assigned-function policy, over the QEMU device layouts
//! of [`crate::testkit`].

mod config;
mod layout;
mod msix_mmio;
mod ops;
mod proptests;

use alloc::vec::Vec;

use super::{DeviceOptions, Notice, VirtDevice};
use crate::testkit::{FakeHost, Fixture};

/// One function assigned to a guest, with what the backend would log.
struct Rig {
    fx: Fixture,
    host: FakeHost,
    dev: VirtDevice,
    notices: Vec<Notice>,
}

impl Rig {
    fn new(fx: Fixture) -> Self {
        Self::with(fx, DeviceOptions::default())
    }

    fn permissive(fx: Fixture) -> Self {
        Self::with(fx, DeviceOptions { permissive: true })
    }

    fn with(fx: Fixture, opts: DeviceOptions) -> Self {
        let (host, dev) = fx.device(opts);
        Self {
            fx,
            host,
            dev,
            notices: Vec::new(),
        }
    }

    /// A guest read that must succeed.
    fn rd(&mut self, offset: u16, size: u8) -> u32 {
        self.dev
            .read(&mut self.host, offset, size)
            .unwrap_or_else(|e| panic!("read {offset:#x}/{size}: {e:?}"))
    }

    /// A guest write that must succeed.
    fn wr(&mut self, offset: u16, size: u8, value: u32) {
        self.dev
            .write(&mut self.host, offset, size, value, &mut self.notices)
            .unwrap_or_else(|e| panic!("write {offset:#x}/{size}: {e:?}"));
    }

    /// The hardware dword at `offset`.
    fn hw(&self, offset: u16) -> u32 {
        self.host.function(self.fx.info.sbdf).peek(offset)
    }

    /// The hardware Command register.
    fn hw_cmd(&self) -> u16 {
        self.host.command(self.fx.info.sbdf)
    }

    /// What a guest BAR reads after writing all ones to it.
    fn size_bar(&mut self, offset: u16) -> u32 {
        let old = self.rd(offset, 4);
        self.wr(offset, 4, u32::MAX);
        let mask = self.rd(offset, 4);
        self.wr(offset, 4, old);
        mask
    }

    /// The guest's capability list: `(id, offset)`.
    fn chain(&mut self) -> Vec<(u8, u16)> {
        let mut out = Vec::new();
        if self.rd(0x06, 2) & 0x10 == 0 {
            return out;
        }
        let mut at = self.rd(0x34, 1) as u16;
        while at != 0 && out.len() < 48 {
            out.push((self.rd(at, 1) as u8, at));
            at = self.rd(at + 1, 1) as u16;
        }
        out
    }

    /// Turns memory decode (and bus mastering) on in the guest's Command
    /// register.
    fn decode_on(&mut self) {
        self.wr(0x04, 2, 0x0006);
    }

    /// Whether a notice containing `text` was given.
    fn noticed(&self, text: &str) -> bool {
        self.notices.iter().any(|n| n.0.contains(text))
    }
}
