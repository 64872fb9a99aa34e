//! `io/pciif.h`: the page a PCI frontend shares with its backend, the op
//! it posts there, and the codes of both sides. All fields are
//! little-endian; the backend copies what it acts on out of the page once
//! (the page is the guest's and changes under it), the frontend copies
//! its op in and the answer out.

use core::mem::{offset_of, size_of};

/// `XEN_PCI_MAGIC`, which the frontend writes to its `magic` node.
pub const MAGIC: &str = "7";

/// `SH_INFO_MAX_VEC`: the most MSI-X entries one op carries.
pub const SH_INFO_MAX_VEC: usize = 128;

/// `_XEN_PCIF_active` (bit 0 of `flags`): the frontend posted an op.
pub const FLAG_PCIF_ACTIVE: u32 = 1 << 0;
/// `_XEN_PCIB_AERHANDLER` (bit 1): the frontend can service AER requests.
pub const FLAG_PCIB_AERHANDLER: u32 = 1 << 1;
/// `_XEN_PCIB_active` (bit 2): the backend posted an AER request.
pub const FLAG_PCIB_ACTIVE: u32 = 1 << 2;

/// `XEN_PCI_OP_*`: what the op asks for.
pub mod cmd {
    /// `XEN_PCI_OP_conf_read`.
    pub const CONF_READ: u32 = 0;
    /// `XEN_PCI_OP_conf_write`.
    pub const CONF_WRITE: u32 = 1;
    /// `XEN_PCI_OP_enable_msi`: answers the pirq in `value`.
    pub const ENABLE_MSI: u32 = 2;
    /// `XEN_PCI_OP_disable_msi`.
    pub const DISABLE_MSI: u32 = 3;
    /// `XEN_PCI_OP_enable_msix`: `value` entries; answers a pirq per entry.
    pub const ENABLE_MSIX: u32 = 4;
    /// `XEN_PCI_OP_disable_msix`.
    pub const DISABLE_MSIX: u32 = 5;
    /// `XEN_PCI_OP_aer_detected` (a backend-to-frontend request).
    pub const AER_DETECTED: u32 = 6;
    /// `XEN_PCI_OP_aer_resume` (a backend-to-frontend request).
    pub const AER_RESUME: u32 = 7;
    /// `XEN_PCI_OP_aer_mmio` (a backend-to-frontend request).
    pub const AER_MMIO: u32 = 8;
    /// `XEN_PCI_OP_aer_slotreset` (a backend-to-frontend request).
    pub const AER_SLOTRESET: u32 = 9;
    /// `XEN_PCI_OP_enable_multi_msi`.
    pub const ENABLE_MULTI_MSI: u32 = 10;
}

/// `XEN_PCI_ERR_*`: the op's `err`.
pub mod err {
    /// `XEN_PCI_ERR_success`.
    pub const SUCCESS: i32 = 0;
    /// `XEN_PCI_ERR_dev_not_found`.
    pub const DEV_NOT_FOUND: i32 = -1;
    /// `XEN_PCI_ERR_invalid_offset`.
    pub const INVALID_OFFSET: i32 = -2;
    /// `XEN_PCI_ERR_access_denied`.
    pub const ACCESS_DENIED: i32 = -3;
    /// `XEN_PCI_ERR_not_implemented`.
    pub const NOT_IMPLEMENTED: i32 = -4;
    /// `XEN_PCI_ERR_op_failed`.
    pub const OP_FAILED: i32 = -5;
}

/// `struct xen_msix_entry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsixEntry {
    /// `vector`: out, the pirq (the frontend sends 0xffff).
    pub vector: u16,
    /// `entry`: in, the MSI-X table index.
    pub entry: u16,
}

/// The fields of `struct xen_pci_op` before its MSI-X entries, in order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciOpHead {
    /// `cmd`: one of [`cmd`].
    pub cmd: u32,
    /// `err`: out, one of [`err`] or a negative errno.
    pub err: i32,
    /// `domain`: the PCI segment as the guest sees it.
    pub domain: u32,
    /// `bus`: the guest's bus.
    pub bus: u32,
    /// `devfn`: `(slot << 3) | function`.
    pub devfn: u32,
    /// `offset`: the config-space offset.
    pub offset: i32,
    /// `size`: 1, 2 or 4.
    pub size: i32,
    /// `value`: in, write data or vector count; out, read data, pirq or
    /// status.
    pub value: u32,
    /// `info`: unused by the known frontends.
    pub info: u32,
}

/// `struct xen_pci_op`: the fields of [`PciOpHead`], then the MSI-X
/// entries (the same layout as the flat C struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciOp {
    /// `cmd` .. `info`.
    pub head: PciOpHead,
    /// `msix_entries`.
    pub msix_entries: [MsixEntry; SH_INFO_MAX_VEC],
}

/// `struct xen_pcie_aer_op`: a backend-to-frontend AER request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AerOp {
    /// `cmd`: an AER op code ([`cmd::AER_DETECTED`] ..).
    pub cmd: u32,
    /// `err`: in, the `pci_channel_state`; out, the `pci_ers_result`.
    pub err: i32,
    /// `domain`.
    pub domain: u32,
    /// `bus`.
    pub bus: u32,
    /// `devfn`.
    pub devfn: u32,
}

/// `struct xen_pci_sharedinfo`: the granted page begins with it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SharedInfo {
    /// `flags`: the `FLAG_*` bits.
    pub flags: u32,
    /// `op`: the frontend's op.
    pub op: PciOp,
    /// `aer_op`: the backend's AER request.
    pub aer_op: AerOp,
}

/// Byte offset of `flags` in the page.
pub const FLAGS: usize = offset_of!(SharedInfo, flags);
/// Byte offset of `op` in the page.
pub const OP: usize = offset_of!(SharedInfo, op);
/// The size of `struct xen_pci_op`.
pub const OP_SIZE: usize = size_of::<PciOp>();
/// Byte offset of `aer_op` in the page.
pub const AER_OP: usize = offset_of!(SharedInfo, aer_op);
/// The size of `struct xen_pcie_aer_op`.
pub const AER_OP_SIZE: usize = size_of::<AerOp>();
/// The size of `struct xen_pci_sharedinfo`.
pub const SHAREDINFO_SIZE: usize = size_of::<SharedInfo>();
/// The size of one `struct xen_msix_entry`.
pub const MSIX_ENTRY_SIZE: usize = size_of::<MsixEntry>();

/// Byte offsets of the fields of `struct xen_pci_op`, from the op's start.
pub mod field {
    use super::PciOp;
    use core::mem::offset_of;

    /// `cmd` (u32).
    pub const CMD: usize = offset_of!(PciOp, head.cmd);
    /// `err` (i32).
    pub const ERR: usize = offset_of!(PciOp, head.err);
    /// `domain` (u32).
    pub const DOMAIN: usize = offset_of!(PciOp, head.domain);
    /// `bus` (u32).
    pub const BUS: usize = offset_of!(PciOp, head.bus);
    /// `devfn` (u32).
    pub const DEVFN: usize = offset_of!(PciOp, head.devfn);
    /// `offset` (i32).
    pub const OFFSET: usize = offset_of!(PciOp, head.offset);
    /// `size` (i32).
    pub const SIZE: usize = offset_of!(PciOp, head.size);
    /// `value` (u32).
    pub const VALUE: usize = offset_of!(PciOp, head.value);
    /// `info` (u32).
    pub const INFO: usize = offset_of!(PciOp, head.info);
    /// `msix_entries[SH_INFO_MAX_VEC]`.
    pub const MSIX_ENTRIES: usize = offset_of!(PciOp, msix_entries);
}

// The layout `io/pciif.h` gives on x86 (no padding anywhere).
const _: () = {
    assert!(field::ERR == 4 && field::DEVFN == 16 && field::VALUE == 28);
    assert!(field::INFO == 32 && field::MSIX_ENTRIES == 36);
    assert!(OP_SIZE == 548 && MSIX_ENTRY_SIZE == 4);
    assert!(OP == 4 && AER_OP == 552 && AER_OP_SIZE == 20);
    assert!(SHAREDINFO_SIZE == 572);
};
