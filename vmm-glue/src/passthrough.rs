//! The seam between the PCI backend's policy (`pciback`) and the hypervisor
//! that carries it out for one guest.
//!
//! `pciback` decides *what* happens to an assigned function when its guest
//! writes a register or sends an op; the hypervisor implements
//! [`PassthroughHost`] for the domain that owns the function and does it:
//! config-space accesses, mapping BAR windows into the guest's nested page
//! tables, device MMIO the backend emulates (the MSI-X table), and
//! interrupts (a host vector behind a guest pirq). Host tests implement it
//! with recording fakes.

use core::fmt;

use crate::pci::{PciConfig, Sbdf};

/// Why a BAR window could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The range is not page aligned or is empty.
    Unaligned,
    /// The guest-physical range overlaps the guest's RAM, another mapped
    /// window or a range the hypervisor keeps (its own pages, the local
    /// APIC page).
    Overlap,
    /// The host-physical range is not device memory this guest may reach
    /// (it overlaps host RAM, or no assigned BAR covers it).
    NotPermitted,
    /// Out of memory for page tables.
    NoMemory,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unaligned => "the range is not page aligned",
            Self::Overlap => "it overlaps guest RAM or another mapped window",
            Self::NotPermitted => "the host range is not this guest's device memory",
            Self::NoMemory => "out of memory for page tables",
        })
    }
}

/// Why an interrupt could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// No free host vector or guest pirq.
    Exhausted,
    /// Interrupts from this function are not allowed (no interrupt
    /// remapping and no insecure opt-in).
    Refused,
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exhausted => "no free interrupt vector or pirq",
            Self::Refused => "interrupts from this device are not allowed",
        })
    }
}

/// Which interrupt of a function an MSI route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiSource {
    /// The MSI capability's (single) message.
    Msi,
    /// MSI-X table entry `n`.
    Msix(u16),
}

/// What the function must send for one interrupt, and the guest pirq it
/// becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRoute {
    /// The pirq the guest binds with `EVTCHNOP_bind_pirq`.
    pub pirq: u32,
    /// The message address to program into the function.
    pub address: u64,
    /// The message data to program into the function.
    pub data: u32,
}

/// What the hypervisor does on behalf of `pciback` for the guest that owns
/// the functions being served.
///
/// All addresses are byte addresses. `len`s are multiples of 4096.
pub trait PassthroughHost {
    /// Host config space.
    fn config(&mut self) -> &mut dyn PciConfig;

    /// Maps guest-physical `[gpa, gpa + len)` to host-physical
    /// `[hpa, hpa + len)` as uncached device memory, readable and writable
    /// by the guest without exits.
    fn map_mmio(&mut self, gpa: u64, hpa: u64, len: u64) -> Result<(), MapError>;

    /// Removes a window [`map_mmio`](Self::map_mmio) made (accesses there
    /// trap again and read as absent memory).
    fn unmap_mmio(&mut self, gpa: u64, len: u64);

    /// Lets the guest reach host I/O ports `[port, port + len)` (an I/O
    /// BAR of one of its functions) with its own `in`/`out` instructions.
    fn map_ports(&mut self, port: u16, len: u16) -> Result<(), MapError>;

    /// Takes back ports [`map_ports`](Self::map_ports) gave: the guest's
    /// accesses there read all-ones and write nothing again.
    fn unmap_ports(&mut self, port: u16, len: u16);

    /// Reads `size` (1, 2, 4 or 8) bytes of device memory at `hpa` (an
    /// address inside one of the function's memory BARs).
    fn mmio_read(&mut self, hpa: u64, size: u8) -> u64;

    /// Writes `size` (1, 2, 4 or 8) bytes of device memory at `hpa`.
    fn mmio_write(&mut self, hpa: u64, size: u8, value: u64);

    /// Sets up an interrupt of function `sbdf`: a host vector the
    /// hypervisor owns, delivered to the guest as a fresh pirq.
    fn alloc_msi(&mut self, sbdf: Sbdf, source: MsiSource) -> Result<MsiRoute, IrqError>;

    /// Tears down a route [`alloc_msi`](Self::alloc_msi) made. The function
    /// must not send it any more (its MSI/MSI-X is off or the entry masked).
    fn free_msi(&mut self, sbdf: Sbdf, pirq: u32);

    /// Waits `us` microseconds (resets need 100 ms settle times).
    fn delay_us(&mut self, us: u32);
}
