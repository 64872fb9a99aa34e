//! The Command register and the BAR windows it drives.
//!
//! The guest's Command register is a shadow. The hardware's is written by
//! pciback alone: memory decode on exactly while the guest's windows are
//! mapped, I/O decode on exactly while its I/O BARs' ports are handed to
//! the guest, bus mastering as the guest asks, INTx disabled as the guest
//! asks or while MSI/MSI-X is on; every other bit (SERR, parity, MWI...)
//! keeps the host's value.

use alloc::vec::Vec;

use vmm_glue::PassthroughHost;

use super::{BarKind, Notice, VirtDevice};
use crate::regs::command;

/// The page size windows are mapped in.
pub(super) const PAGE: u64 = 4096;

/// One BAR as the guest has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct GuestBar {
    /// The address the guest programmed (the host's at assignment).
    pub addr: u64,
    /// Whether its windows are mapped (possibly none, when the MSI-X table
    /// and PBA pages are all of it).
    pub mapped: bool,
    /// The windows mapped: guest address and length.
    pub windows: Vec<(u64, u64)>,
}

/// The page-granular byte range `[start, end)` relative to a BAR.
fn pages(offset: u64, len: u64) -> (u64, u64) {
    let start = offset & !(PAGE - 1);
    let end = (offset + len).div_ceil(PAGE) * PAGE;
    (start, end)
}

impl VirtDevice {
    /// The ranges of BAR `bar` (relative to its start) that are never
    /// mapped: the MSI-X table and PBA pages.
    pub(super) fn holes(&self, bar: usize) -> Vec<(u64, u64)> {
        let mut holes = Vec::new();
        if let Some(m) = self.layout.msix {
            if m.table_bar == bar {
                holes.push(pages(m.table_offset, m.table_len()));
            }
            if m.pba_bar == bar {
                holes.push(pages(m.pba_offset, m.pba_len()));
            }
        }
        holes
    }

    /// The windows of BAR `bar` relative to its start: the whole BAR minus
    /// the holes.
    pub(super) fn window_plan(&self, bar: usize) -> Vec<(u64, u64)> {
        let size = self.info.bars[bar].size;
        let mut windows = alloc::vec![(0, size)];
        for (hs, he) in self.holes(bar) {
            let mut next = Vec::new();
            for (s, e) in windows {
                if he <= s || e <= hs {
                    next.push((s, e));
                    continue;
                }
                if s < hs {
                    next.push((s, hs));
                }
                if he < e {
                    next.push((he, e));
                }
            }
            windows = next;
        }
        windows
    }

    /// A guest write to the Command register.
    pub(super) fn command_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        value: u16,
        notices: &mut Vec<Notice>,
    ) {
        self.cmd = value & !command::RESERVED;
        self.update_decoding(host, notices);
    }

    /// Maps or unmaps the windows as the guest's memory decode and the
    /// power state ask, then writes the hardware Command register.
    pub(super) fn update_decoding(
        &mut self,
        host: &mut dyn PassthroughHost,
        notices: &mut Vec<Notice>,
    ) {
        let want = self.cmd & command::MEMORY_SPACE != 0 && !self.d3hot;
        self.set_decoding(host, want, notices);
        let want_io = self.cmd & command::IO_SPACE != 0 && !self.d3hot;
        self.set_io_decoding(host, want_io, notices);
    }

    /// Hands the I/O BARs' ports to the guest and turns the hardware's I/O
    /// decode on, or the reverse. Ports are not translated: an I/O BAR the
    /// guest moved away from the host's ports is not handed over (a Notice
    /// says so).
    pub(super) fn set_io_decoding(
        &mut self,
        host: &mut dyn PassthroughHost,
        on: bool,
        notices: &mut Vec<Notice>,
    ) {
        if on && !self.io_decoding {
            for bar in 0..self.info.bars.len() {
                let b = self.info.bars[bar];
                if b.kind != BarKind::Io {
                    continue;
                }
                let guest = self.bars[bar].addr;
                let (Ok(port), Ok(len)) = (u16::try_from(b.base), u16::try_from(b.size)) else {
                    continue;
                };
                if guest != b.base {
                    notices.push(self.notice(format_args!(
                        "BAR{} at port {guest:#x} not handed over: I/O BARs stay at the host's ports ({port:#x})",
                        b.index
                    )));
                    continue;
                }
                match host.map_ports(port, len) {
                    Ok(()) => self.io_ports.push((port, len)),
                    Err(e) => notices.push(self.notice(format_args!(
                        "BAR{} ports {port:#x}+{len:#x} not handed over: {e}",
                        b.index
                    ))),
                }
            }
            self.io_decoding = true;
        }
        if !on && self.io_decoding {
            self.io_decoding = false;
            self.sync_command(host);
            for (port, len) in self.io_ports.drain(..) {
                host.unmap_ports(port, len);
            }
        }
        self.sync_command(host);
    }

    /// Turns decoding on (windows mapped, then hardware decode on) or off
    /// (hardware decode off, then windows unmapped), and writes the
    /// hardware Command register in either case.
    pub(super) fn set_decoding(
        &mut self,
        host: &mut dyn PassthroughHost,
        on: bool,
        notices: &mut Vec<Notice>,
    ) {
        if on && !self.decoding {
            for bar in 0..self.info.bars.len() {
                self.map_bar(host, bar, notices);
            }
            self.decoding = true;
        }
        if !on && self.decoding {
            self.decoding = false;
            self.sync_command(host);
            for bar in 0..self.info.bars.len() {
                self.unmap_bar(host, bar);
            }
        }
        self.sync_command(host);
    }

    /// The hardware Command register as pciback wants it.
    pub(super) fn hw_command(&self, current: u16) -> u16 {
        let owned =
            command::IO_SPACE | command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE;
        let mut cmd = current & !owned;
        if self.decoding {
            cmd |= command::MEMORY_SPACE;
        }
        if self.io_decoding && !self.io_ports.is_empty() {
            cmd |= command::IO_SPACE;
        }
        cmd |= self.cmd & command::BUS_MASTER;
        if self.cmd & command::INTX_DISABLE != 0 || self.msi.route.is_some() || self.msix.enabled {
            cmd |= command::INTX_DISABLE;
        }
        cmd
    }

    /// Writes the hardware Command register (the Status half as zero, so
    /// no error bit is cleared).
    pub(super) fn sync_command(&mut self, host: &mut dyn PassthroughHost) {
        let sbdf = self.info.sbdf;
        let cfg = host.config();
        let current = cfg.read16(sbdf, command::OFFSET);
        let want = self.hw_command(current);
        if want != current {
            cfg.write_command(sbdf, want);
        }
    }

    /// Maps the windows of memory BAR `bar` at the guest's address, unless
    /// the rules refuse it (then a Notice says why and it stays unmapped).
    fn map_bar(&mut self, host: &mut dyn PassthroughHost, bar: usize, notices: &mut Vec<Notice>) {
        let b = self.info.bars[bar];
        if b.kind == BarKind::Io || self.bars[bar].mapped {
            return;
        }
        let gpa = self.bars[bar].addr;
        let refuse = if b.size < PAGE {
            Some("it is smaller than a page (its page may hold another device's registers)")
        } else if gpa % PAGE != b.base % PAGE {
            Some("its page offset differs from the host's")
        } else if gpa.checked_add(b.size).is_none() {
            Some("it does not fit below 2^64")
        } else {
            None
        };
        if let Some(why) = refuse {
            notices.push(self.notice(format_args!("BAR{} at {gpa:#x} not mapped: {why}", b.index)));
            return;
        }
        let mut done = Vec::new();
        for (start, end) in self.window_plan(bar) {
            let (g, h, len) = (gpa + start, b.base + start, end - start);
            match host.map_mmio(g, h, len) {
                Ok(()) => done.push((g, len)),
                Err(e) => {
                    notices.push(self.notice(format_args!(
                        "BAR{} window {g:#x}+{len:#x} not mapped: {e}; \
                         the guest should move the BAR elsewhere",
                        b.index
                    )));
                    for (g, len) in done {
                        host.unmap_mmio(g, len);
                    }
                    return;
                }
            }
        }
        self.bars[bar].windows = done;
        self.bars[bar].mapped = true;
    }

    /// Unmaps the windows of BAR `bar`.
    fn unmap_bar(&mut self, host: &mut dyn PassthroughHost, bar: usize) {
        let g = &mut self.bars[bar];
        for (gpa, len) in g.windows.drain(..) {
            host.unmap_mmio(gpa, len);
        }
        g.mapped = false;
    }

    /// Runs `f` with the hardware's memory decode on (pciback's own
    /// accesses to the MSI-X table need it even while the guest has
    /// decoding off), restoring the Command register after. In D3hot the
    /// function's memory does not answer (an access would end in an
    /// Unsupported Request), so `f` does not run.
    pub(super) fn with_memory_decode(
        &mut self,
        host: &mut dyn PassthroughHost,
        f: impl FnOnce(&mut Self, &mut dyn PassthroughHost),
    ) {
        if self.d3hot {
            return;
        }
        let sbdf = self.info.sbdf;
        let before = host.config().read16(sbdf, command::OFFSET);
        let off = before & command::MEMORY_SPACE == 0;
        if off {
            host.config()
                .write_command(sbdf, before | command::MEMORY_SPACE);
        }
        f(self, host);
        if off {
            self.sync_command(host);
        }
    }
}
