//! Guest config accesses: the engine that splits an access over the
//! register descriptors ([`fields`](super::fields)) and each register's
//! handler.

use alloc::format;
use alloc::vec::Vec;

use vmm_glue::PassthroughHost;

use super::fields::{Field, Kind};
use super::{BarKind, CfgError, Notice, VirtDevice};
use crate::regs::{command, header, msi, msix, pm};

/// Config space at and above this offset (PCI Express extended config
/// space) is hidden: it reads 0 and writes are dropped.
const EXTENDED: u16 = 0x100;

/// A guest write, as one descriptor sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Write {
    /// The register's new value: the guest's view with the written
    /// writable bits replaced.
    pub new: u32,
    /// The write-1-to-clear bits the guest wrote 1 to.
    pub clear: u32,
    /// What the guest wrote, in the register's bytes it wrote.
    pub written: u32,
    /// The register's bytes the guest wrote.
    pub bytes: u32,
}

/// Checks size and alignment against a config space of `limit` bytes.
fn check(offset: u16, size: u8, limit: u16) -> Result<(), CfgError> {
    let ok = matches!(size, 1 | 2 | 4)
        && offset.is_multiple_of(u16::from(size))
        && u32::from(offset) + u32::from(size) <= u32::from(limit);
    if ok {
        Ok(())
    } else {
        Err(CfgError::InvalidOffset)
    }
}

/// The byte mask of `size` bytes.
fn bytes_mask(size: u8) -> u32 {
    if size >= 4 {
        u32::MAX
    } else {
        (1 << (u32::from(size) * 8)) - 1
    }
}

impl VirtDevice {
    pub(super) fn cfg_read(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        size: u8,
    ) -> Result<u32, CfgError> {
        check(offset, size, self.info.config_size)?;
        if offset >= EXTENDED {
            return Ok(0);
        }
        let mut value = 0u32;
        let mut byte = offset;
        while byte < offset + u16::from(size) {
            let shift = u32::from(byte - offset) * 8;
            if let Some(f) = self.table.find(byte).copied() {
                let reg = self.field_read(host, &f) & !(f.rsvdp | f.rsvdz);
                let end = (f.offset + u16::from(f.size)).min(offset + u16::from(size));
                for b in byte..end {
                    let v = (reg >> (u32::from(b - f.offset) * 8)) & 0xff;
                    value |= v << (u32::from(b - offset) * 8);
                }
                byte = end;
            } else {
                if self.opts.permissive {
                    let sbdf = self.info.sbdf;
                    value |= u32::from(host.config().read8(sbdf, byte)) << shift;
                }
                byte += 1;
            }
        }
        Ok(value)
    }

    pub(super) fn cfg_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        size: u8,
        value: u32,
        notices: &mut Vec<Notice>,
    ) -> Result<(), CfgError> {
        check(offset, size, self.info.config_size)?;
        let value = value & bytes_mask(size);
        if offset >= EXTENDED {
            notices.push(self.notice(format_args!(
                "write of {value:#x} to extended config space at {offset:#x} dropped (hidden)"
            )));
            return Ok(());
        }
        let end = offset + u16::from(size);
        let mut unclaimed = 0u32;
        let mut byte = offset;
        while byte < end {
            let Some(f) = self.table.find(byte).copied() else {
                unclaimed |= 0xff << (u32::from(byte - offset) * 8);
                byte += 1;
                continue;
            };
            let f_end = (f.offset + u16::from(f.size)).min(end);
            let (mut written, mut bytes) = (0u32, 0u32);
            for b in byte..f_end {
                let v = (value >> (u32::from(b - offset) * 8)) & 0xff;
                written |= v << (u32::from(b - f.offset) * 8);
                bytes |= 0xff << (u32::from(b - f.offset) * 8);
            }
            if !matches!(f.kind, Kind::Const(_) | Kind::HwRo) {
                let w = bytes & f.writable();
                // The current value matters only for the bits the write
                // leaves alone (a whole writable field written needs no
                // read of the register first).
                let cur = if f.width_mask() & !w == 0 {
                    0
                } else {
                    self.field_read(host, &f)
                };
                let write = Write {
                    new: ((cur & !w) | (written & w)) & !f.rsvdz,
                    clear: written & bytes & f.rw1c,
                    written,
                    bytes,
                };
                self.field_write(host, &f, write, notices)?;
            }
            byte = f_end;
        }
        if unclaimed != 0 {
            self.unclaimed_write(host, offset, size, value, unclaimed, notices);
        }
        Ok(())
    }

    /// A write to bytes no descriptor covers: dropped, or passed to the
    /// hardware for a permissive function.
    fn unclaimed_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        size: u8,
        value: u32,
        mask: u32,
        notices: &mut Vec<Notice>,
    ) {
        if !self.opts.permissive {
            notices.push(self.notice(format_args!(
                "write of {:#x} to config offset {offset:#x} dropped: pciback does not \
                 virtualise that register (permissive=1 would pass it to the device)",
                value & mask
            )));
            return;
        }
        notices.push(self.notice(format_args!(
            "permissive: write of {:#x} to config offset {offset:#x} passed to the device",
            value & mask
        )));
        // The access as the guest made it, or byte by byte when part of it
        // is virtualised: never a read-modify-write of the dword, which
        // would write back (and so clear) write-1-to-clear bits set in
        // bytes the guest did not write.
        let sbdf = self.info.sbdf;
        let cfg = host.config();
        if mask == bytes_mask(size) {
            cfg.write_bytes(sbdf, offset, size, value);
            return;
        }
        for i in 0..u16::from(size) {
            if mask >> (8 * i) & 0xff != 0 {
                cfg.write_bytes(sbdf, offset + i, 1, value >> (8 * i));
            }
        }
    }

    /// The register's current value as the guest sees it (before the
    /// reserved masks).
    fn field_read(&mut self, host: &mut dyn PassthroughHost, f: &Field) -> u32 {
        let shift = u32::from(f.offset & 3) * 8;
        let sbdf = self.info.sbdf;
        let hw = |host: &mut dyn PassthroughHost| {
            (host.config().read32(sbdf, f.offset & !3) >> shift) & f.width_mask()
        };
        match f.kind {
            Kind::Const(v) => v,
            Kind::HwRo | Kind::HwRw => hw(host),
            Kind::Command => self.cmd.into(),
            Kind::Status => {
                let cap_list = if self.layout.visible.is_empty() {
                    0
                } else {
                    crate::regs::status::CAP_LIST
                };
                (hw(host) & !u32::from(crate::regs::status::CAP_LIST)) | u32::from(cap_list)
            }
            Kind::Bar { bar, hi } => self.bar_read(bar, hi),
            Kind::Rom => self.rom,
            Kind::PmCtrl => hw(host),
            Kind::MsiControl => {
                let control = self.layout.msi.map_or(0, |m| m.control);
                let enable = if self.msi.route.is_some() {
                    msi::ENABLE
                } else {
                    0
                };
                (control | enable).into()
            }
            Kind::MsiAddrLo => self.msi.addr_lo,
            Kind::MsiAddrHi => self.msi.addr_hi,
            Kind::MsiData => self.msi.data.into(),
            Kind::MsiMask => self.msi.mask,
            Kind::MsixControl => {
                let entries = self.layout.msix.map_or(1, |m| m.entries);
                let mut c = entries - 1;
                if self.msix.enabled {
                    c |= msix::ENABLE;
                }
                if self.msix.function_mask {
                    c |= msix::FUNCTION_MASK;
                }
                c.into()
            }
        }
    }

    fn field_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        f: &Field,
        w: Write,
        notices: &mut Vec<Notice>,
    ) -> Result<(), CfgError> {
        let sbdf = self.info.sbdf;
        match f.kind {
            Kind::Const(_) | Kind::HwRo => {}
            Kind::HwRw => {
                let shift = u32::from(f.offset & 3) * 8;
                let cfg = host.config();
                let old = cfg.read32(sbdf, f.offset & !3);
                let mask = f.width_mask() << shift;
                // Never start BIST by writing back the byte beside.
                let keep = old & !mask & !(u32::from(header::BIST_START) << 24);
                cfg.write32(sbdf, f.offset & !3, keep | ((w.new << shift) & mask));
            }
            Kind::Command => self.command_write(host, w.new as u16, notices),
            Kind::Status => {
                if w.clear != 0 {
                    let cfg = host.config();
                    let cmd = cfg.read16(sbdf, command::OFFSET);
                    cfg.write32(sbdf, command::OFFSET, u32::from(cmd) | w.clear << 16);
                }
            }
            Kind::Bar { bar, hi } => self.bar_write(bar, hi, w.new, notices),
            Kind::Rom => {
                if w.written & w.bytes & header::ROM_ENABLE != 0 {
                    notices.push(self.notice(format_args!(
                        "the expansion ROM cannot be enabled by a guest; the enable bit is ignored"
                    )));
                }
                let size = self.info.rom.map_or(0, |r| r.size);
                let mask = header::ROM_ADDRESS & !(size as u32).wrapping_sub(1);
                self.rom = w.new & mask;
            }
            Kind::PmCtrl => return self.pm_write(host, f.offset, w, notices),
            Kind::MsiControl => {
                let on = self.msi.route.is_some();
                if (w.new as u16 & msi::ENABLE != 0) != on {
                    notices.push(self.notice(format_args!(
                        "MSI enable through config space ignored: the guest asks with \
                         XEN_PCI_OP_enable_msi/disable_msi"
                    )));
                }
            }
            Kind::MsiAddrLo => self.msi.addr_lo = w.new,
            Kind::MsiAddrHi => self.msi.addr_hi = w.new,
            Kind::MsiData => self.msi.data = w.new as u16,
            Kind::MsiMask => {
                self.msi.mask = w.new;
                self.apply_msi_mask(host);
            }
            Kind::MsixControl => {
                let c = w.new as u16;
                if (c & msix::ENABLE != 0) != self.msix.enabled {
                    notices.push(self.notice(format_args!(
                        "MSI-X enable through config space ignored: the guest asks with \
                         XEN_PCI_OP_enable_msix/disable_msix"
                    )));
                }
                let mask = c & msix::FUNCTION_MASK != 0;
                if mask != self.msix.function_mask {
                    self.msix.function_mask = mask;
                    self.apply_msix_control(host);
                }
            }
        }
        Ok(())
    }

    /// The guest's BAR register.
    fn bar_read(&self, bar: usize, hi: bool) -> u32 {
        let Some(b) = self.info.bars.get(bar) else {
            return 0;
        };
        let addr = self.bars[bar].addr;
        if hi {
            return (addr >> 32) as u32;
        }
        let flags = match b.kind {
            BarKind::Io => header::BAR_IO,
            BarKind::Mem32 => 0,
            BarKind::Mem64 => header::BAR_MEM64,
        } | if b.prefetchable {
            header::BAR_PREFETCH
        } else {
            0
        };
        addr as u32 | flags
    }

    /// A guest write to a BAR register: kept as the guest's address (the
    /// hardware BAR never moves), masked to the BAR's size so that writing
    /// all ones reads back the size; ignored while the guest has decoding
    /// on.
    fn bar_write(&mut self, bar: usize, hi: bool, value: u32, notices: &mut Vec<Notice>) {
        let Some(b) = self.info.bars.get(bar).copied() else {
            return;
        };
        let decode = match b.kind {
            BarKind::Io => command::IO_SPACE,
            BarKind::Mem32 | BarKind::Mem64 => command::MEMORY_SPACE,
        };
        let old = self.bars[bar].addr;
        let new = if hi {
            (old & 0xffff_ffff) | u64::from(value) << 32
        } else {
            (old & !0xffff_ffff) | u64::from(value)
        };
        let low_flags = if b.kind == BarKind::Io { 0b11 } else { 0xf };
        let mut new = new & !(b.size.max(1) - 1) & !low_flags;
        if b.kind != BarKind::Mem64 {
            new &= 0xffff_ffff;
        }
        if new == old {
            return;
        }
        if self.cmd & decode != 0 {
            notices.push(self.notice(format_args!(
                "write of {value:#x} to BAR{} ignored: the guest has decoding on \
                 (turn it off in the command register first)",
                b.index + u8::from(hi)
            )));
            return;
        }
        self.bars[bar].addr = new;
    }

    /// A guest write to PM Control/Status: only D0 <-> D3hot, applied to
    /// the hardware with the 10 ms wait; PME_En stays off; PME_Status is
    /// write-1-to-clear.
    fn pm_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        w: Write,
        notices: &mut Vec<Notice>,
    ) -> Result<(), CfgError> {
        let sbdf = self.info.sbdf;
        let cur = host.config().read16(sbdf, offset);
        let from = cur & pm::STATE_MASK;
        let to = w.new as u16 & pm::STATE_MASK;
        if from != to && !matches!((from, to), (pm::D0, pm::D3HOT) | (pm::D3HOT, pm::D0)) {
            notices.push(self.notice(format_args!(
                "power state change D{from} -> D{to} refused: only D0 and D3hot are supported"
            )));
            return Err(CfgError::AccessDenied);
        }
        let keep = cur & !(pm::STATE_MASK | pm::DATA_SELECT | pm::PME_ENABLE | pm::PME_STATUS);
        let data_select = w.new as u16 & pm::DATA_SELECT;
        let pmcsr = keep | data_select | from | (w.clear as u16 & pm::PME_STATUS);
        if to == from {
            host.config().write32(sbdf, offset & !3, pmcsr.into());
            return Ok(());
        }
        if to == pm::D3HOT {
            // Nothing may reach the function's memory while it does not
            // decode.
            self.set_decoding(host, false, notices);
            self.power_saved = Some(crate::reset::save(host.config(), sbdf));
        }
        host.config()
            .write32(sbdf, offset & !3, u32::from((pmcsr & !pm::STATE_MASK) | to));
        host.delay_us(pm::D3HOT_DELAY_US);
        self.d3hot = to == pm::D3HOT;
        if to == pm::D0 {
            if let Some(saved) = self.power_saved.take() {
                if cur & pm::NO_SOFT_RESET == 0 {
                    // The function reset itself: its BARs, MSI and MSI-X
                    // registers are back at their defaults.
                    crate::reset::restore(host.config(), &saved);
                    self.reprogram_msix(host);
                }
            }
            self.update_decoding(host, notices);
        }
        Ok(())
    }

    /// A Notice about this function.
    pub(super) fn notice(&self, what: core::fmt::Arguments<'_>) -> Notice {
        Notice(format!("pciback: {}: {}", self.info.sbdf, what))
    }
}
