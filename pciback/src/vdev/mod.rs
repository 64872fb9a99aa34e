//! One assigned PCI function as its guest sees it: a virtualised config
//! space over the real one, BAR windows mapped while memory decoding is on,
//! and the function's interrupts (MSI, MSI-X, INTx) as guest pirqs.
//!
//! SKELETON: the public API below is fixed (the xenbus backend and the
//! hypervisor are written against it); the bodies are being implemented.

use alloc::vec::Vec;
use core::fmt;

use vmm_glue::{PassthroughHost, PciConfig, Sbdf};

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
pub struct VirtDevice {
    info: DeviceInfo,
    opts: DeviceOptions,
}

impl VirtDevice {
    /// The function described by `info`, its capabilities read from `hw`.
    /// Decoding is off in the guest's view until the guest turns it on.
    pub fn new(info: DeviceInfo, opts: DeviceOptions, hw: &mut dyn PciConfig) -> Self {
        let _ = hw;
        Self { info, opts }
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
        let _ = (host, offset, size);
        todo!()
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
        let _ = (host, offset, size, value, notices);
        todo!()
    }

    /// `XEN_PCI_OP_enable_msi`: the pirq.
    pub fn enable_msi(&mut self, host: &mut dyn PassthroughHost) -> Result<u32, OpError> {
        let _ = host;
        todo!()
    }

    /// `XEN_PCI_OP_disable_msi`: the value to answer (the INTx pirq or 0).
    pub fn disable_msi(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        let _ = host;
        todo!()
    }

    /// `XEN_PCI_OP_enable_msix` for table `entries`: one pirq per entry.
    pub fn enable_msix(
        &mut self,
        host: &mut dyn PassthroughHost,
        entries: &[u16],
    ) -> Result<Vec<u32>, OpError> {
        let _ = (host, entries);
        todo!()
    }

    /// `XEN_PCI_OP_disable_msix`: the value to answer (the INTx pirq or 0).
    pub fn disable_msix(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        let _ = host;
        todo!()
    }

    /// Whether guest-physical `gpa` is in a page this function traps (the
    /// MSI-X table or PBA page of a BAR mapped at the guest's address).
    pub fn traps(&self, gpa: u64) -> bool {
        let _ = gpa;
        false
    }

    /// A guest read of a trapped page: `None` if `gpa` is not one.
    pub fn mmio_read(&mut self, host: &mut dyn PassthroughHost, gpa: u64, size: u8) -> Option<u64> {
        let _ = (host, gpa, size);
        None
    }

    /// A guest write to a trapped page: `false` if `gpa` is not one.
    pub fn mmio_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        gpa: u64,
        size: u8,
        value: u64,
    ) -> bool {
        let _ = (host, gpa, size, value);
        false
    }

    /// The guest is gone: interrupts freed, windows unmapped, the function
    /// quiesced again (reset and restore are the caller's, see
    /// [`crate::reset`]).
    pub fn release(&mut self, host: &mut dyn PassthroughHost) {
        let _ = host;
    }
}
