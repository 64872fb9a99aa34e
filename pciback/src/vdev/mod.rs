//! One assigned PCI function as its guest sees it: a virtualised config
//! space over the real one, BAR windows mapped while memory decoding is on,
//! and the function's interrupts (MSI, MSI-X, INTx) as guest pirqs.
//!
//! The policy, register by register (the guest is untrusted; see
//! docs/threat-model.md):
//!
//! - **accesses** are 1, 2 or 4 bytes, naturally aligned, inside
//!   [`DeviceInfo::config_size`]; anything else is
//!   [`CfgError::InvalidOffset`];
//! - **register descriptors** (`fields.rs`) say what serves each register,
//!   with RO / RW1C / RsvdP / RsvdZ masks; a write no descriptor covers is
//!   dropped with a [`Notice`], or passed to the hardware (with a Notice)
//!   for a [`DeviceOptions::permissive`] function; bytes no descriptor
//!   covers read 0 (the hardware's value when permissive);
//! - **identity** (vendor, device, class, revision, subsystem, header type)
//!   is read once at assignment and is read-only;
//! - **Command** is a shadow the guest reads back. Its memory decode maps the
//!   memory BARs' windows into the guest at the guest's BAR addresses (never
//!   the MSI-X table and PBA pages) and turns the hardware's decode on;
//!   turning it off unmaps them. Bus mastering reaches the hardware; INTx
//!   disable too, forced on while MSI or MSI-X is on; nothing else does (the
//!   hardware keeps its own SERR, parity... bits, and I/O decode stays off:
//!   port I/O is not forwarded);
//! - **Status** is the hardware's, with the capability-list bit as the
//!   guest's list has it; its error bits are write-1-to-clear;
//! - **BARs** are shadows: a guest write moves where the guest sees the BAR,
//!   never the hardware BAR; writing all ones reads back the size (both
//!   halves of a 64-bit BAR, I/O BARs too); writes while the guest has that
//!   kind of decoding on are ignored. A window is mapped only at the host's
//!   page offset, only for BARs of at least a page, and only where the host
//!   accepts it (no overlap with RAM or other windows). The **ROM** BAR is
//!   sized the same way and can never be enabled; it is never mapped;
//! - **Interrupt Line** reads [`DeviceInfo::intx_pirq`]; writes are ignored;
//! - **capabilities**: the guest's list holds Power Management, MSI, MSI-X
//!   and PCI Express; everything else (vendor-specific ones included) is
//!   skipped by rewritten next pointers. PM: only D0 <-> D3hot, applied with
//!   the 10 ms wait, PME_En forced off. MSI and MSI-X: the guest sees its own
//!   address/data values and the virtual enable state; enabling is only
//!   through [`VirtDevice::enable_msi`]/[`VirtDevice::enable_msix`]. PCI
//!   Express: read-only. **Extended config space** (0x100 and up) reads 0
//!   and drops writes;
//! - the **MSI-X table and PBA** locations are read once at assignment
//!   (XSA-337) and their pages trap ([`VirtDevice::mmio_read`],
//!   [`VirtDevice::mmio_write`]).
//!
//! Op errors are negative errno values, as Linux pciback answers them (see
//! [`errno`]).

mod bars;
mod config;
mod fields;
mod layout;
mod msi;
mod msix_table;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;

use vmm_glue::{PassthroughHost, PciConfig, Sbdf};

use crate::quiesce::{quiesce, QuiesceCaps};
use crate::regs::{command, header};
use crate::reset::SavedConfig;

/// The negative errno values the ops answer in [`OpError`].
pub mod errno {
    pub use super::msi::{EALREADY, EINVAL, ENODEV, ENOSPC, ENXIO, EPERM, MAX_MSIX_VECTORS};
}

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O ports.
    Io,
    /// Memory below 4 GiB (one BAR register).
    Mem32,
    /// Memory anywhere (two BAR registers; `index` is the low one).
    Mem64,
}

/// One implemented BAR of the function, as the hypervisor sized it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarInfo {
    /// BAR register index 0..=5 (6 for the expansion ROM).
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// The host address it is programmed to.
    pub base: u64,
    /// The size of its window (a power of two).
    pub size: u64,
}

/// What the hypervisor found about the function at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its host address.
    pub sbdf: Sbdf,
    /// Header layout: 0 endpoint, 1 PCI-to-PCI bridge.
    pub header_type: u8,
    /// Implemented BARs.
    pub bars: Vec<BarInfo>,
    /// The expansion ROM, if implemented.
    pub rom: Option<BarInfo>,
    /// 4096 (PCI Express, ECAM) or 256.
    pub config_size: u16,
    /// The pirq the guest's Interrupt Line reads (INTx), or 0 for none.
    pub intx_pirq: u8,
}

/// Per-function options from the guest's `pci = [...]` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceOptions {
    /// `permissive=1`: writes to registers nothing virtualises reach the
    /// hardware (with a log line) instead of being dropped.
    pub permissive: bool,
}

/// A config access refused, with the `XEN_PCI_ERR_*` it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgError {
    /// Size not 1, 2 or 4, unaligned, or beyond the config space:
    /// `XEN_PCI_ERR_invalid_offset` (-2).
    InvalidOffset,
    /// A write the policy refuses: `XEN_PCI_ERR_access_denied` (-3).
    AccessDenied,
}

impl CfgError {
    /// The `XEN_PCI_ERR_*` value for the op's `err` field.
    pub const fn xen_err(self) -> i32 {
        match self {
            Self::InvalidOffset => -2,
            Self::AccessDenied => -3,
        }
    }
}

/// An `enable_msi`/`enable_msix` refused, with the value for the op's
/// `err` field (a negative errno as Linux pciback answers, or
/// `XEN_PCI_ERR_op_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpError(pub i32);

/// Something a guest did that the log should show (rate-limited by the
/// caller), e.g. a dropped write or a refused BAR mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice(pub alloc::string::String);

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One assigned function.
#[derive(Debug)]
#[cfg_attr(any(test, fuzzing), derive(Clone))]
pub struct VirtDevice {
    info: DeviceInfo,
    opts: DeviceOptions,
    /// Its capabilities and MSI-X table, read at assignment.
    layout: layout::Layout,
    /// The register descriptors.
    table: fields::Table,
    /// The guest's Command register.
    cmd: u16,
    /// The guest's BARs, by index in `info.bars`.
    bars: Vec<bars::GuestBar>,
    /// The guest's ROM BAR.
    rom: u32,
    /// Windows mapped and the hardware's memory decode on.
    decoding: bool,
    /// I/O BARs handed to the guest and the hardware's I/O decode on.
    io_decoding: bool,
    /// The port ranges handed to the guest, `(port, len)`.
    io_ports: Vec<(u16, u16)>,
    /// The guest put the function in D3hot.
    d3hot: bool,
    /// The config saved on the way to D3hot, restored on the way back if
    /// the function resets itself there.
    power_saved: Option<SavedConfig>,
    /// MSI.
    msi: msi::MsiState,
    /// MSI-X.
    msix: msi::MsixState,
}

impl VirtDevice {
    /// The function described by `info`, its capabilities read from `hw`.
    /// Decoding is off in the guest's view until the guest turns it on.
    ///
    /// The guest's BARs start at the host's addresses; its Command register
    /// starts with everything off but the hardware's INTx disable.
    pub fn new(info: DeviceInfo, opts: DeviceOptions, hw: &mut dyn PciConfig) -> Self {
        let sbdf = info.sbdf;
        let layout = layout::discover(hw, sbdf, &info);
        let snap = fields::Snapshot {
            id: hw.read32(sbdf, header::ID),
            class_rev: hw.read32(sbdf, header::CLASS_REV),
            header_type: hw.read8(sbdf, header::HEADER_TYPE),
            subsystem: if info.header_type & 0x7f == 0 {
                hw.read32(sbdf, header::SUBSYSTEM)
            } else {
                0
            },
        };
        let table = fields::build(&info, &layout, &snap);
        let cmd = hw.read16(sbdf, command::OFFSET) & command::INTX_DISABLE;
        let bars = info
            .bars
            .iter()
            .map(|b| bars::GuestBar {
                addr: b.base,
                ..Default::default()
            })
            .collect();
        let rom = info.rom.map_or(0, |r| r.base as u32 & header::ROM_ADDRESS);
        let entries = layout.msix.map_or(0, |m| usize::from(m.entries));
        Self {
            info,
            opts,
            layout,
            table,
            cmd,
            bars,
            rom,
            decoding: false,
            io_decoding: false,
            io_ports: Vec::new(),
            d3hot: false,
            power_saved: None,
            msi: msi::MsiState::default(),
            msix: msi::MsixState {
                entries: alloc::vec![msi::Entry::default(); entries],
                ..Default::default()
            },
        }
    }

    /// Its host address.
    pub fn sbdf(&self) -> Sbdf {
        self.info.sbdf
    }

    /// What the hypervisor found at boot.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Its options.
    pub fn options(&self) -> DeviceOptions {
        self.opts
    }

    /// A guest config read of `size` bytes at `offset`.
    pub fn read(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        size: u8,
    ) -> Result<u32, CfgError> {
        self.cfg_read(host, offset, size)
    }

    /// A guest config write. Notices (dropped writes, refused mappings) are
    /// pushed to `notices`.
    pub fn write(
        &mut self,
        host: &mut dyn PassthroughHost,
        offset: u16,
        size: u8,
        value: u32,
        notices: &mut Vec<Notice>,
    ) -> Result<(), CfgError> {
        self.cfg_write(host, offset, size, value, notices)
    }

    /// `XEN_PCI_OP_enable_msi`: the pirq.
    ///
    /// Refused with [`errno::ENODEV`] if the function has no MSI capability,
    /// [`errno::EALREADY`] if MSI is on, [`errno::ENXIO`] if MSI-X is on,
    /// [`errno::ENOSPC`] or [`errno::EPERM`] if the host has no vector or
    /// refuses. The host's address and data go into the capability, MSI is
    /// enabled (one vector) and INTx disabled in the hardware.
    pub fn enable_msi(&mut self, host: &mut dyn PassthroughHost) -> Result<u32, OpError> {
        self.msi_enable(host)
    }

    /// `XEN_PCI_OP_disable_msi`: the value to answer (the INTx pirq or 0).
    /// MSI off and its route freed; nothing happens if MSI is off.
    pub fn disable_msi(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        self.msi_disable(host)
    }

    /// `XEN_PCI_OP_enable_msix` for table `entries`: one pirq per entry.
    ///
    /// Refused with [`errno::EINVAL`] for no entries or more than
    /// [`errno::MAX_MSIX_VECTORS`], [`errno::ENODEV`] without an MSI-X
    /// capability, [`errno::EALREADY`] if MSI-X is on, [`errno::ENXIO`] if
    /// MSI is on, the guest has memory decode off or the function is in
    /// D3hot (its table does not answer), [`errno::EINVAL`] for
    /// an entry beyond the table or given twice, [`errno::ENOSPC`] or
    /// [`errno::EPERM`] if the host cannot route them all (those it routed
    /// are freed). The entries are written into the hardware table unmasked,
    /// then MSI-X is enabled and INTx disabled.
    pub fn enable_msix(
        &mut self,
        host: &mut dyn PassthroughHost,
        entries: &[u16],
    ) -> Result<Vec<u32>, OpError> {
        self.msix_enable(host, entries)
    }

    /// `XEN_PCI_OP_disable_msix`: the value to answer (the INTx pirq or 0).
    /// The entries masked, MSI-X off, the routes freed; nothing happens if
    /// MSI-X is off.
    pub fn disable_msix(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        self.msix_disable(host)
    }

    /// Whether guest-physical `gpa` is in a page this function traps (the
    /// MSI-X table or PBA page of a BAR mapped at the guest's address).
    pub fn traps(&self, gpa: u64) -> bool {
        self.trapped(gpa)
    }

    /// A guest read of a trapped page: `None` if `gpa` is not one.
    pub fn mmio_read(&mut self, host: &mut dyn PassthroughHost, gpa: u64, size: u8) -> Option<u64> {
        self.table_read(host, gpa, size)
    }

    /// A guest write to a trapped page: `false` if `gpa` is not one.
    pub fn mmio_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        gpa: u64,
        size: u8,
        value: u64,
    ) -> bool {
        self.table_write(host, gpa, size, value)
    }

    /// The guest is gone: interrupts freed, windows unmapped, the function
    /// quiesced again (reset and restore are the caller's, see
    /// [`crate::reset`]).
    ///
    /// The guest's view goes back to what [`new`](Self::new) gave it, so
    /// the same `VirtDevice` can be handed to a new guest.
    pub fn release(&mut self, host: &mut dyn PassthroughHost) {
        self.release_quiesced(host);
    }

    /// [`release`](Self::release), returning what the registers read back
    /// after quiescing (for the log line; check
    /// [`QuiesceReport::is_quiet`](crate::quiesce::QuiesceReport::is_quiet)).
    pub fn release_quiesced(
        &mut self,
        host: &mut dyn PassthroughHost,
    ) -> crate::quiesce::QuiesceReport {
        self.msi_disable(host);
        self.msix_disable(host);
        let mut ignored = Vec::new();
        self.set_decoding(host, false, &mut ignored);
        self.set_io_decoding(host, false, &mut ignored);
        self.cmd = command::INTX_DISABLE;
        self.d3hot = false;
        self.power_saved = None;
        for (g, b) in self.bars.iter_mut().zip(&self.info.bars) {
            g.addr = b.base;
        }
        self.rom = self
            .info
            .rom
            .map_or(0, |r| r.base as u32 & header::ROM_ADDRESS);
        self.msi = msi::MsiState::default();
        for e in &mut self.msix.entries {
            *e = msi::Entry::default();
        }
        self.msix.function_mask = false;
        let caps = QuiesceCaps {
            msi: self.layout.msi.map(|m| m.offset),
            msix: self.layout.msix.map(|m| m.offset),
        };
        quiesce(&mut DynConfig(host.config()), self.info.sbdf, caps)
    }

    /// Whether the guest's memory windows are mapped (and the hardware's
    /// memory decode is on).
    pub fn is_decoding(&self) -> bool {
        self.decoding
    }

    /// The I/O port ranges handed to the guest, `(port, len)`.
    pub fn io_ports(&self) -> &[(u16, u16)] {
        &self.io_ports
    }

    /// The Command register as the guest reads it.
    pub fn guest_command(&self) -> u16 {
        self.cmd
    }

    /// Whether MSI is on (through [`enable_msi`](Self::enable_msi)).
    pub fn msi_enabled(&self) -> bool {
        self.msi.route.is_some()
    }

    /// Whether MSI-X is on (through [`enable_msix`](Self::enable_msix)).
    pub fn msix_enabled(&self) -> bool {
        self.msix.enabled
    }

    /// The guest-physical windows mapped now: `(gpa, len)`.
    pub fn windows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bars.iter().flat_map(|b| b.windows.iter().copied())
    }

    /// The host-physical ranges that are never mapped into the guest (the
    /// MSI-X table and PBA pages): `(hpa, len)`.
    pub fn trapped_host_ranges(&self) -> Vec<(u64, u64)> {
        (0..self.info.bars.len())
            .flat_map(|bar| {
                let base = self.info.bars[bar].base;
                self.holes(bar)
                    .into_iter()
                    .map(move |(s, e)| (base + s, e - s))
            })
            .collect()
    }
}

/// `&mut dyn PciConfig` as a sized [`PciConfig`], for helpers that take
/// `impl PciConfig`.
struct DynConfig<'a>(&'a mut dyn PciConfig);

impl PciConfig for DynConfig<'_> {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        self.0.read32(sbdf, offset)
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        self.0.write32(sbdf, offset, value);
    }

    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        self.0.write_bytes(sbdf, offset, size, value);
    }

    fn config_size(&self, sbdf: Sbdf) -> u16 {
        self.0.config_size(sbdf)
    }
}
