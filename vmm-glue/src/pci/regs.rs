//! PCI config-space registers and the bits of them that the hypervisor,
//! its backend and our guests use: one set of definitions for all of them.
//!
//! Offsets and bit positions are those of the PCI Local Bus Specification
//! 3.0: the type 0/1 header (section 6.2), the MSI capability (6.8.1) and the
//! MSI-X capability (6.8.2); the PCI Bus Power Management Interface
//! Specification 1.2 (the PM capability); the PCI Express Base Specification
//! (the PCI Express capability, section 7.5.3).

/// The type 0/1 header fields other than Command and Status.
pub mod header {
    /// Vendor ID (16 bits) and Device ID (16 bits).
    pub const ID: u16 = 0x00;
    /// Revision ID (8 bits) and Class Code (24 bits).
    pub const CLASS_REV: u16 = 0x08;
    /// Cache Line Size (8 bits).
    pub const CACHE_LINE: u16 = 0x0c;
    /// Latency Timer (8 bits).
    pub const LATENCY: u16 = 0x0d;
    /// Header Type (8 bits): layout in bits 6:0, multi-function in bit 7.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// Header Type bit 7: the device has functions other than 0.
    pub const MULTIFUNCTION: u8 = 0x80;
    /// Header layout 0: a general device.
    pub const TYPE_ENDPOINT: u8 = 0;
    /// Header layout 1: a PCI-to-PCI bridge.
    pub const TYPE_BRIDGE: u8 = 1;
    /// Header layout 2: a CardBus bridge.
    pub const TYPE_CARDBUS: u8 = 2;
    /// BIST (8 bits).
    pub const BIST: u16 = 0x0f;
    /// BIST bit 6, Start BIST.
    pub const BIST_START: u8 = 1 << 6;
    /// Base Address Register 0; BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: u16 = 0x10;
    /// CardBus: Capabilities Pointer (8 bits).
    pub const CARDBUS_CAP_PTR: u16 = 0x14;
    /// Type 1: Primary, Secondary and Subordinate Bus Numbers.
    pub const BUS_NUMBERS: u16 = 0x18;
    /// Type 1: Secondary Bus Number (8 bits).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Type 0: Subsystem Vendor ID and Subsystem ID.
    pub const SUBSYSTEM: u16 = 0x2c;
    /// Type 0: Expansion ROM Base Address.
    pub const ROM: u16 = 0x30;
    /// Type 1: Expansion ROM Base Address.
    pub const BRIDGE_ROM: u16 = 0x38;
    /// Capabilities Pointer (8 bits).
    pub const CAP_PTR: u16 = 0x34;
    /// Interrupt Line (8 bits).
    pub const INTERRUPT_LINE: u16 = 0x3c;
    /// Interrupt Pin (8 bits).
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// Type 1: Bridge Control (16 bits).
    pub const BRIDGE_CONTROL: u16 = 0x3e;
    /// Bridge Control bit 6, Secondary Bus Reset.
    pub const SECONDARY_BUS_RESET: u16 = 1 << 6;
    /// The end of the header; capabilities start here.
    pub const END: u16 = 0x40;
    /// The first PCI Express extended capability.
    pub const EXT_CAP_START: u16 = 0x100;
    /// BAR bit 0: the BAR decodes I/O space.
    pub const BAR_IO: u32 = 1;
    /// Memory BAR bits 2:1 = 10b: a 64-bit BAR.
    pub const BAR_MEM64: u32 = 0b100;
    /// Memory BAR bit 3: prefetchable.
    pub const BAR_PREFETCH: u32 = 1 << 3;
    /// Expansion ROM bit 0: ROM address decode enable.
    pub const ROM_ENABLE: u32 = 1;
    /// Expansion ROM bits 31:11: the address.
    pub const ROM_ADDRESS: u32 = 0xffff_f800;
}

/// The Command register: offset 0x04, 16 bits, below the Status register.
pub mod command {
    /// Byte offset in config space.
    pub const OFFSET: u16 = 0x04;
    /// Bit 0, I/O Space: respond to I/O space accesses.
    pub const IO_SPACE: u16 = 1 << 0;
    /// Bit 1, Memory Space: respond to memory space accesses.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// Bit 2, Bus Master: may issue memory and I/O requests (DMA, and MSI
    /// writes).
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Bit 3, Special Cycles.
    pub const SPECIAL: u16 = 1 << 3;
    /// Bit 4, Memory Write and Invalidate Enable.
    pub const MWI: u16 = 1 << 4;
    /// Bit 5, VGA Palette Snoop.
    pub const VGA_PALETTE: u16 = 1 << 5;
    /// Bit 6, Parity Error Response.
    pub const PARITY: u16 = 1 << 6;
    /// Bit 7, IDSEL Stepping/Wait Cycle Control.
    pub const WAIT: u16 = 1 << 7;
    /// Bit 8, SERR# Enable.
    pub const SERR: u16 = 1 << 8;
    /// Bit 9, Fast Back-to-Back Enable.
    pub const FAST_BACK: u16 = 1 << 9;
    /// Bit 10, Interrupt Disable: may not assert INTx.
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// Bits 15:11, reserved.
    pub const RESERVED: u16 = 0xf800;
}

/// The Status register: offset 0x06, 16 bits, above the Command register.
pub mod status {
    /// Byte offset in config space.
    pub const OFFSET: u16 = 0x06;
    /// The write-1-to-clear error bits: Master Data Parity Error (8),
    /// Signaled Target Abort (11), Received Target Abort (12), Received
    /// Master Abort (13), Signaled System Error (14), Detected Parity
    /// Error (15).
    pub const RW1C: u16 = 0xf900;
    /// Bit 4, Capabilities List: the capability pointer is valid.
    pub const CAP_LIST: u16 = 1 << 4;
    /// The read-only bits: Immediate Readiness (0), Interrupt Status (3),
    /// Capabilities List (4), 66 MHz Capable (5), Fast Back-to-Back
    /// Capable (7), DEVSEL Timing (10:9).
    pub const RO: u16 = 0x06b9;
    /// The reserved bits: 2:1 and 6.
    pub const RESERVED: u16 = 0x0046;
}

/// Capability IDs (PCI Code and ID Assignment Specification).
pub mod cap_id {
    /// Power management.
    pub const PM: u8 = 0x01;
    /// AGP.
    pub const AGP: u8 = 0x02;
    /// Vital product data.
    pub const VPD: u8 = 0x03;
    /// Slot identification.
    pub const SLOT_ID: u8 = 0x04;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// HyperTransport.
    pub const HT: u8 = 0x08;
    /// Vendor specific.
    pub const VENDOR: u8 = 0x09;
    /// Debug port.
    pub const DEBUG: u8 = 0x0a;
    /// PCI hot-plug.
    pub const HOTPLUG: u8 = 0x0c;
    /// Bridge subsystem vendor ID.
    pub const SUBSYSTEM_VENDOR: u8 = 0x0d;
    /// AGP 8x.
    pub const AGP8X: u8 = 0x0e;
    /// Secure device.
    pub const SECURE: u8 = 0x0f;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
    /// SATA configuration.
    pub const SATA: u8 = 0x12;
    /// Advanced features.
    pub const AF: u8 = 0x13;
    /// Enhanced allocation.
    pub const EA: u8 = 0x14;
    /// Extended: advanced error reporting.
    pub const EXT_AER: u16 = 0x01;
    /// Extended: virtual channel.
    pub const EXT_VC: u16 = 0x02;
    /// Extended: device serial number.
    pub const EXT_DSN: u16 = 0x03;
    /// Extended: power budgeting.
    pub const EXT_POWER_BUDGET: u16 = 0x04;
    /// Extended: root complex link declaration.
    pub const EXT_RCLD: u16 = 0x05;
    /// Extended: vendor specific.
    pub const EXT_VENDOR: u16 = 0x0b;
    /// Extended: access control services.
    pub const EXT_ACS: u16 = 0x0d;
    /// Extended: alternative routing-ID interpretation.
    pub const EXT_ARI: u16 = 0x0e;
    /// Extended: address translation services.
    pub const EXT_ATS: u16 = 0x0f;
    /// Extended: single root I/O virtualisation.
    pub const EXT_SRIOV: u16 = 0x10;
    /// Extended: resizable BAR.
    pub const EXT_REBAR: u16 = 0x15;
    /// Extended: latency tolerance reporting.
    pub const EXT_LTR: u16 = 0x18;
    /// Extended: secondary PCI Express.
    pub const EXT_SECONDARY_PCIE: u16 = 0x19;
    /// Extended: process address space ID.
    pub const EXT_PASID: u16 = 0x1b;
    /// Extended: L1 PM substates.
    pub const EXT_L1SS: u16 = 0x1e;
    /// Extended: data link feature.
    pub const EXT_DLF: u16 = 0x25;
    /// Extended: physical layer 16 GT/s.
    pub const EXT_PL16: u16 = 0x26;
}

/// The Power Management capability (ID 0x01).
pub mod pm {
    /// Capability ID.
    pub const CAP_ID: u8 = super::cap_id::PM;
    /// Offset of the Power Management Capabilities register (PMC, 16
    /// bits).
    pub const PMC: u16 = 2;
    /// PMC bits 15:11, PME_Support: the states the function can signal PME
    /// from.
    pub const PMC_PME_SUPPORT: u16 = 0xf800;
    /// Offset of the Power Management Control/Status register (PMCSR, 16
    /// bits).
    pub const PMCSR: u16 = 4;
    /// PMCSR bits 1:0, PowerState.
    pub const STATE_MASK: u16 = 0b11;
    /// PowerState D0.
    pub const D0: u16 = 0;
    /// PowerState D3hot.
    pub const D3HOT: u16 = 0b11;
    /// PMCSR bit 3, No_Soft_Reset: D3hot to D0 keeps the function's
    /// state (so it does not reset it).
    pub const NO_SOFT_RESET: u16 = 1 << 3;
    /// PMCSR bit 8, PME_En.
    pub const PME_ENABLE: u16 = 1 << 8;
    /// PMCSR bits 12:9, Data_Select.
    pub const DATA_SELECT: u16 = 0x1e00;
    /// PMCSR bit 15, PME_Status (write 1 to clear).
    pub const PME_STATUS: u16 = 1 << 15;
    /// The wait after a transition to or from D3hot: 10 ms.
    pub const D3HOT_DELAY_US: u32 = 10_000;
}

/// The PCI Express capability (ID 0x10).
pub mod pcie {
    /// Capability ID.
    pub const CAP_ID: u8 = super::cap_id::PCIE;
    /// Offset of the PCI Express Capabilities register (16 bits): version
    /// in bits 3:0, device/port type in bits 7:4.
    pub const FLAGS: u16 = 2;
    /// Offset of Device Capabilities (32 bits).
    pub const DEVCAP: u16 = 4;
    /// Device Capabilities bit 28, Function Level Reset Capability.
    pub const DEVCAP_FLR: u32 = 1 << 28;
    /// Offset of Device Control (16 bits).
    pub const DEVCTL: u16 = 8;
    /// Device Control bit 15, Initiate Function Level Reset.
    pub const DEVCTL_FLR: u16 = 1 << 15;
    /// Offset of Device Status (16 bits).
    pub const DEVSTA: u16 = 0xa;
    /// Device Status bit 5, Transactions Pending.
    pub const DEVSTA_TRPND: u16 = 1 << 5;
    /// The capability's size for version 2 and later.
    pub const LEN_V2: u16 = 0x3c;
    /// The capability's size for version 1 (up to Link Status).
    pub const LEN_V1: u16 = 0x14;
}

/// The vendor-specific capability (ID 0x09).
pub mod vendor {
    /// Capability ID.
    pub const CAP_ID: u8 = super::cap_id::VENDOR;
}

/// The MSI capability (ID 0x05).
pub mod msi {
    /// Capability ID.
    pub const CAP_ID: u8 = super::cap_id::MSI;
    /// Offset of Message Control from the capability start. The word below
    /// it holds the capability ID and next pointer, both read-only.
    pub const CONTROL: u16 = 2;
    /// Message Control bit 0, MSI Enable.
    pub const ENABLE: u16 = 1 << 0;
    /// Message Control bits 3:1, Multiple Message Capable.
    pub const MMC: u16 = 0b1110;
    /// Message Control bits 6:4, Multiple Message Enable.
    pub const MME: u16 = 0b111_0000;
    /// Message Control bit 7, 64-bit Address Capable.
    pub const ADDR64: u16 = 1 << 7;
    /// Message Control bit 8, Per-Vector Masking Capable.
    pub const MASKABLE: u16 = 1 << 8;
    /// Offset of Message Address (low 32 bits).
    pub const ADDRESS_LO: u16 = 4;
    /// Offset of Message Upper Address (64-bit layout only).
    pub const ADDRESS_HI: u16 = 8;
    /// Offset of Message Data in the 32-bit layout.
    pub const DATA_32: u16 = 8;
    /// Offset of Message Data in the 64-bit layout.
    pub const DATA_64: u16 = 0xc;
    /// Offset of Mask Bits from Message Data (maskable functions).
    pub const MASK_FROM_DATA: u16 = 4;
    /// Offset of Pending Bits from Message Data (maskable functions).
    pub const PENDING_FROM_DATA: u16 = 8;
}

/// The MSI-X capability (ID 0x11).
pub mod msix {
    /// Capability ID.
    pub const CAP_ID: u8 = super::cap_id::MSIX;
    /// Offset of Message Control from the capability start. The word below
    /// it holds the capability ID and next pointer, both read-only.
    pub const CONTROL: u16 = 2;
    /// Message Control bit 15, MSI-X Enable.
    pub const ENABLE: u16 = 1 << 15;
    /// Message Control bit 14, Function Mask: no vector may send a message.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// Message Control bits 10:0, Table Size: entries minus one.
    pub const TABLE_SIZE: u16 = 0x7ff;
    /// Offset of Table Offset/Table BIR.
    pub const TABLE: u16 = 4;
    /// Offset of PBA Offset/PBA BIR.
    pub const PBA: u16 = 8;
    /// Bits 2:0 of the Table and PBA registers: the BAR index.
    pub const BIR_MASK: u32 = 0b111;
    /// The size of one table entry: address low, address high, data,
    /// vector control.
    pub const ENTRY_SIZE: u64 = 16;
    /// Offset of Vector Control in an entry.
    pub const VECTOR_CONTROL: u64 = 12;
    /// Vector Control bit 0, Mask Bit.
    pub const ENTRY_MASKED: u32 = 1;
}
