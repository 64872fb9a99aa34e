//! Config-space registers pciback reads and writes, with the bits it uses.
//!
//! Offsets and bit positions are those of the PCI Local Bus Specification
//! 3.0: the type 0/1 header (section 6.2), the MSI capability (6.8.1) and the
//! MSI-X capability (6.8.2).

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
    /// Bit 10, Interrupt Disable: may not assert INTx.
    pub const INTX_DISABLE: u16 = 1 << 10;
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
}

/// The MSI capability (ID 0x05).
pub mod msi {
    /// Capability ID.
    pub const CAP_ID: u8 = 0x05;
    /// Offset of Message Control from the capability start. The word below
    /// it holds the capability ID and next pointer, both read-only.
    pub const CONTROL: u16 = 2;
    /// Message Control bit 0, MSI Enable.
    pub const ENABLE: u16 = 1 << 0;
}

/// The MSI-X capability (ID 0x11).
pub mod msix {
    /// Capability ID.
    pub const CAP_ID: u8 = 0x11;
    /// Offset of Message Control from the capability start. The word below
    /// it holds the capability ID and next pointer, both read-only.
    pub const CONTROL: u16 = 2;
    /// Message Control bit 15, MSI-X Enable.
    pub const ENABLE: u16 = 1 << 15;
    /// Message Control bit 14, Function Mask: no vector may send a message.
    pub const FUNCTION_MASK: u16 = 1 << 14;
}
