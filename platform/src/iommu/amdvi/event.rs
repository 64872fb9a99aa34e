//! Event log entries (specification section 2.5): what the unit reports
//! about requests it blocked and errors it met.
//!
//! An entry is 128 bits. Low 64 bits: bits 15:0 DeviceID (the
//! requester), bits 47:32 DomainID (or PASID[15:0] when GN is set), bits
//! 59:48 flags, bits 63:60 EventCode. High 64 bits: an address (the
//! faulting IOVA, the table entry or the command, depending on the
//! code).
//!
//! The flags of IO_PAGE_FAULT and the other request events (bits of the
//! 12-bit field): 0 GN (guest request), 1 NX, 2 US, 3 I (an interrupt
//! request), 4 PR (the page was present: a permission fault), 5 RW (a
//! write), 6 PE (permission error), 7 RZ (a reserved bit was set in a
//! table entry), 8 TR (a translation request).

use core::fmt;

use vmm_glue::Sbdf;

/// Flag bit 3: I, an interrupt request.
pub const EV_I: u16 = 1 << 3;
/// Flag bit 4: PR, the page was present.
pub const EV_PR: u16 = 1 << 4;
/// Flag bit 5: RW, a write.
pub const EV_RW: u16 = 1 << 5;
/// Flag bit 7: RZ, a reserved bit was set.
pub const EV_RZ: u16 = 1 << 7;

/// Whether a blocked request read or wrote memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A DMA read.
    Read,
    /// A DMA write.
    Write,
}

impl Access {
    const fn from_flags(flags: u16) -> Self {
        if flags & EV_RW != 0 {
            Self::Write
        } else {
            Self::Read
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// One decoded event log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// IO_PAGE_FAULT (02h) for a DMA: the domain does not map the
    /// address, or not for this kind of access.
    PageFault {
        /// The requester.
        device: Sbdf,
        /// The domain of its device table entry.
        domain: u16,
        /// The IOVA.
        address: u64,
        /// Read or write.
        access: Access,
        /// The raw flags.
        flags: u16,
    },
    /// IO_PAGE_FAULT (02h) with I set: an interrupt the device's
    /// remapping table does not allow (no valid entry for its index, an
    /// index beyond the table, or remapping set to target-abort).
    InterruptBlocked {
        /// The requester.
        device: Sbdf,
        /// The address of the interrupt request.
        address: u64,
        /// The raw flags.
        flags: u16,
    },
    /// ILLEGAL_DEV_TABLE_ENTRY (01h): the device's entry has a reserved
    /// bit set or an invalid combination.
    IllegalDeviceEntry {
        /// The requester.
        device: Sbdf,
        /// The address of the request.
        address: u64,
        /// The raw flags.
        flags: u16,
    },
    /// DEV_TAB_HARDWARE_ERROR (03h): reading the device table failed.
    DeviceTableError {
        /// The requester.
        device: Sbdf,
        /// The device table address read.
        address: u64,
    },
    /// PAGE_TAB_HARDWARE_ERROR (04h): reading an I/O page table failed.
    PageTableError {
        /// The requester.
        device: Sbdf,
        /// Its domain.
        domain: u16,
        /// The table entry address read.
        address: u64,
    },
    /// ILLEGAL_COMMAND_ERROR (05h): a command with a bad opcode or a
    /// reserved bit set; command processing stopped.
    IllegalCommand {
        /// The command's address.
        address: u64,
    },
    /// COMMAND_HARDWARE_ERROR (06h): reading the command buffer failed.
    CommandError {
        /// The address read.
        address: u64,
    },
    /// IOTLB_INV_TIMEOUT (07h): a device did not answer an ATS
    /// invalidation.
    IotlbTimeout {
        /// The device.
        device: Sbdf,
        /// The command's address.
        address: u64,
    },
    /// INVALID_DEVICE_REQUEST (08h): a request the device's entry does
    /// not allow at all (for example a translation request without ATS).
    InvalidRequest {
        /// The requester.
        device: Sbdf,
        /// The address of the request.
        address: u64,
        /// The raw flags.
        flags: u16,
    },
    /// Any other event code.
    Other {
        /// The event code.
        code: u8,
        /// The raw entry.
        raw: [u64; 2],
    },
}

impl Event {
    /// Decodes an entry `[low, high]` of a unit serving `segment`.
    pub const fn decode(segment: u16, raw: [u64; 2]) -> Self {
        let [lo, address] = raw;
        let devid = lo as u16;
        let device = Sbdf {
            seg: segment,
            bus: (devid >> 8) as u8,
            dev: ((devid >> 3) & 0x1f) as u8,
            func: (devid & 7) as u8,
        };
        let domain = (lo >> 32) as u16;
        let flags = ((lo >> 48) & 0xfff) as u16;
        match (lo >> 60) as u8 {
            0x1 => Self::IllegalDeviceEntry {
                device,
                address,
                flags,
            },
            0x2 if flags & EV_I != 0 => Self::InterruptBlocked {
                device,
                address,
                flags,
            },
            0x2 => Self::PageFault {
                device,
                domain,
                address,
                access: Access::from_flags(flags),
                flags,
            },
            0x3 => Self::DeviceTableError { device, address },
            0x4 => Self::PageTableError {
                device,
                domain,
                address,
            },
            0x5 => Self::IllegalCommand { address },
            0x6 => Self::CommandError { address },
            0x7 => Self::IotlbTimeout { device, address },
            0x8 => Self::InvalidRequest {
                device,
                address,
                flags,
            },
            code => Self::Other { code, raw },
        }
    }

    /// The device the event is about, if it names one.
    pub const fn device(&self) -> Option<Sbdf> {
        match *self {
            Self::PageFault { device, .. }
            | Self::InterruptBlocked { device, .. }
            | Self::IllegalDeviceEntry { device, .. }
            | Self::DeviceTableError { device, .. }
            | Self::PageTableError { device, .. }
            | Self::IotlbTimeout { device, .. }
            | Self::InvalidRequest { device, .. } => Some(device),
            Self::IllegalCommand { .. } | Self::CommandError { .. } | Self::Other { .. } => None,
        }
    }
}

impl fmt::Display for Event {
    /// One log line, for example `amd-vi: I/O page fault from
    /// 0000:00:03.0 (domain 1) at 0x3ffff000: write` or `amd-vi:
    /// interrupt from 0000:00:03.0 blocked (no remapping entry)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("amd-vi: ")?;
        match *self {
            Self::PageFault {
                device,
                domain,
                address,
                access,
                flags,
            } => {
                write!(
                    f,
                    "I/O page fault from {device} (domain {domain}) at {address:#x}: {}",
                    access.name()
                )?;
                if flags & EV_RZ != 0 {
                    f.write_str(" (reserved bit set in a table entry)")?;
                } else if flags & EV_PR != 0 {
                    f.write_str(" (mapped without that permission)")?;
                }
                Ok(())
            }
            Self::InterruptBlocked { device, flags, .. } => {
                write!(f, "interrupt from {device} blocked")?;
                if flags & EV_RZ != 0 {
                    f.write_str(" (reserved bit set in its remapping entry)")
                } else {
                    f.write_str(" (no remapping entry)")
                }
            }
            Self::IllegalDeviceEntry {
                device, address, ..
            } => write!(
                f,
                "illegal device table entry for {device} (request at {address:#x})"
            ),
            Self::DeviceTableError { device, address } => write!(
                f,
                "hardware error reading the device table entry of {device} at {address:#x}"
            ),
            Self::PageTableError {
                device,
                domain,
                address,
            } => write!(
                f,
                "hardware error reading an I/O page table entry at {address:#x} \
                 for {device} (domain {domain})"
            ),
            Self::IllegalCommand { address } => {
                write!(f, "illegal command at {address:#x}; command processing stopped")
            }
            Self::CommandError { address } => {
                write!(f, "hardware error reading the command at {address:#x}")
            }
            Self::IotlbTimeout { device, address } => write!(
                f,
                "{device} did not answer an IOTLB invalidation (command at {address:#x})"
            ),
            Self::InvalidRequest {
                device, address, ..
            } => write!(
                f,
                "invalid request from {device} at {address:#x} (not allowed by its device table entry)"
            ),
            Self::Other { code, raw } => write!(
                f,
                "event {code:#x} ({:#018x} {:#018x})",
                raw[0], raw[1]
            ),
        }
    }
}
