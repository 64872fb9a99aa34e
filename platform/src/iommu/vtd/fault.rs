//! Primary fault records: what a blocked DMA or interrupt request left in
//! a fault recording register (VT-d specification 7.1 and 11.4.14).
//!
//! A record is 128 bits. Low 64 bits: bits 63:12 FI, the faulting page
//! (for interrupt requests bits 63:48 hold the interrupt index). High 64
//! bits (record bits 127:64): bit 63 F (valid, write 1 to clear), bit 62 T
//! (0 write, 1 read), bits 61:60 AT, bits 59:40 PASID value, bits 39:32
//! FR (the fault reason), bit 31 PP (PASID present), bits 15:0 SID (the
//! requester: bus, device, function).

use core::fmt;

use vmm_glue::Sbdf;

use super::regs::FRCD_F;

/// Whether the faulting request read or wrote memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// A DMA read (or an atomic/page request reported as read).
    Read,
    /// A DMA write (interrupt requests are writes too).
    Write,
}

/// One decoded fault record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The requester.
    pub source: Sbdf,
    /// Read or write.
    pub kind: AccessKind,
    /// The fault reason code (see [`reason_text`]).
    pub reason: u8,
    /// The faulting page address (DMA faults) or, for interrupt
    /// remapping faults, the interrupt index in bits 63:48.
    pub address: u64,
    /// The PASID of the request, if it carried one.
    pub pasid: Option<u32>,
}

impl Fault {
    /// Decodes a fault record of segment `segment` from its low and high
    /// 64 bits; `None` when its F bit is clear (no fault recorded).
    pub const fn decode(segment: u16, lo: u64, hi: u64) -> Option<Self> {
        if hi & FRCD_F == 0 {
            return None;
        }
        let sid = hi as u16;
        let kind = if hi & (1 << 62) != 0 {
            AccessKind::Read
        } else {
            AccessKind::Write
        };
        let pasid = if hi & (1 << 31) != 0 {
            Some(((hi >> 40) & 0xf_ffff) as u32)
        } else {
            None
        };
        Some(Self {
            source: Sbdf {
                seg: segment,
                bus: (sid >> 8) as u8,
                dev: ((sid >> 3) & 0x1f) as u8,
                func: (sid & 7) as u8,
            },
            kind,
            reason: (hi >> 32) as u8,
            address: lo & !0xfff,
            pasid,
        })
    }

    /// Whether this is an interrupt remapping fault (reasons 0x20 to
    /// 0x2f) rather than a DMA remapping one.
    pub const fn is_interrupt(&self) -> bool {
        self.reason & 0xf0 == 0x20
    }

    /// For an interrupt remapping fault, the interrupt index the request
    /// computed (FI bits 63:48; the rest of FI is clear for these
    /// faults). `None` for a DMA fault.
    pub const fn interrupt_index(&self) -> Option<u16> {
        if self.is_interrupt() {
            Some((self.address >> 48) as u16)
        } else {
            None
        }
    }
}

/// What a fault reason code means, for the codes the specification lists
/// for legacy-mode DMA remapping and for interrupt remapping.
pub const fn reason_text(reason: u8) -> Option<&'static str> {
    Some(match reason {
        0x01 => "root entry not present",
        0x02 => "context entry not present (device not assigned)",
        0x03 => "invalid context entry",
        0x04 => "address beyond the domain's address width",
        0x05 => "second-level write without write permission",
        0x06 => "second-level read without read permission",
        0x07 => "error fetching a second-level paging entry",
        0x08 => "error fetching the root entry",
        0x09 => "error fetching the context entry",
        0x0a => "reserved field set in the root entry",
        0x0b => "reserved field set in the context entry",
        0x0c => "reserved field set in a second-level paging entry",
        0x0d => "request blocked by the context entry's translation type",
        0x20 => "reserved field set in the interrupt request",
        0x21 => "interrupt index beyond the remapping table",
        0x22 => "interrupt remapping entry not present",
        0x23 => "error fetching the interrupt remapping table",
        0x24 => "reserved field set in the interrupt remapping entry",
        0x25 => "compatibility-format interrupt blocked (not a remappable MSI)",
        0x26 => "interrupt source id check failed (requester is not the entry's function)",
        0x27 => "error fetching a posted-interrupt descriptor",
        0x28 => "reserved field set in a posted-interrupt descriptor",
        _ => return None,
    })
}

impl fmt::Display for Fault {
    /// `vt-d: DMA write fault from 0000:00:03.0 at 0x3ffff000: reason
    /// 0x05 (second-level write without write permission)`; for an
    /// interrupt remapping fault the interrupt index replaces the
    /// address: `vt-d: interrupt fault from 0000:01:00.0 index 33:
    /// reason 0x22 (interrupt remapping entry not present)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(index) = self.interrupt_index() {
            write!(f, "vt-d: interrupt fault from {}", self.source)?;
            // A compatibility-format request names no entry: its index
            // field means nothing.
            if self.reason != 0x25 {
                write!(f, " index {index}")?;
            }
        } else {
            let kind = match self.kind {
                AccessKind::Read => "read",
                AccessKind::Write => "write",
            };
            write!(
                f,
                "vt-d: DMA {kind} fault from {} at {:#x}",
                self.source, self.address
            )?;
        }
        if let Some(pasid) = self.pasid {
            write!(f, " (PASID {pasid:#x})")?;
        }
        write!(f, ": reason {:#04x}", self.reason)?;
        if let Some(text) = reason_text(self.reason) {
            write!(f, " ({text})")?;
        }
        Ok(())
    }
}
