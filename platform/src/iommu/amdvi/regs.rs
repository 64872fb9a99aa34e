//! The unit's MMIO registers (AMD I/O Virtualization Technology (IOMMU)
//! Specification, #48882, section 3.4) and the Extended Feature Register.
//!
//! Offsets are bytes from the base address in the IVHD. Every register
//! used here is 64 bits wide.

use core::fmt;

/// Device Table Base Address: bits 51:12 the table (4 KiB aligned), bits
/// 8:0 its size in 4 KiB pages minus one.
pub const DEV_TAB_BASE: u32 = 0x0000;
/// Command Buffer Base Address: bits 51:12 the buffer, bits 59:56
/// ComLen, the number of 16-byte entries as a power of two (8 to 15).
pub const CMD_BASE: u32 = 0x0008;
/// Event Log Base Address: bits 51:12 the log, bits 59:56 EventLen (as
/// ComLen).
pub const EVT_BASE: u32 = 0x0010;
/// IOMMU Control Register.
pub const CONTROL: u32 = 0x0018;
/// Exclusion Range Base: bit 0 ExEn, bit 1 Allow; DMA inside an enabled
/// range bypasses translation.
pub const EXCL_BASE: u32 = 0x0020;
/// Exclusion Range Limit.
pub const EXCL_LIMIT: u32 = 0x0028;
/// Extended Feature Register (read-only; see [`Features`]).
pub const EXT_FEATURES: u32 = 0x0030;
/// Command Buffer Head Pointer: bits 18:4, byte offset of the next
/// command the unit reads.
pub const CMD_HEAD: u32 = 0x2000;
/// Command Buffer Tail Pointer: bits 18:4, byte offset past the last
/// command software wrote.
pub const CMD_TAIL: u32 = 0x2008;
/// Event Log Head Pointer: bits 18:4, byte offset of the next entry
/// software reads.
pub const EVT_HEAD: u32 = 0x2010;
/// Event Log Tail Pointer: bits 18:4, byte offset past the last entry the
/// unit wrote.
pub const EVT_TAIL: u32 = 0x2018;
/// IOMMU Status Register.
pub const STATUS: u32 = 0x2020;

/// The offset bits (18:4) of the head and tail pointers.
pub const RING_PTR: u64 = 0x7fff0;

/// Control bit 0 IommuEn: translation and remapping on.
pub const CTL_IOMMU_EN: u64 = 1 << 0;
/// Control bit 2 EventLogEn.
pub const CTL_EVENT_LOG_EN: u64 = 1 << 2;
/// Control bit 3 EventIntEn: an interrupt when an event is logged.
pub const CTL_EVENT_INT_EN: u64 = 1 << 3;
/// Control bit 4 ComWaitIntEn: an interrupt on COMPLETION_WAIT with I = 1.
pub const CTL_COM_WAIT_INT_EN: u64 = 1 << 4;
/// Control bit 10 Coherent: device table reads snoop the processor
/// caches.
pub const CTL_COHERENT: u64 = 1 << 10;
/// Control bit 12 CmdBufEn.
pub const CTL_CMD_BUF_EN: u64 = 1 << 12;

/// Status bit 0 EventOverflow (write 1 to clear): the log was full and
/// logging stopped.
pub const ST_EVENT_OVERFLOW: u64 = 1 << 0;
/// Status bit 1 EventLogInt (write 1 to clear).
pub const ST_EVENT_LOG_INT: u64 = 1 << 1;
/// Status bit 2 ComWaitInt (write 1 to clear).
pub const ST_COM_WAIT_INT: u64 = 1 << 2;
/// Status bit 3 EventLogRun (read-only): the unit is logging events.
pub const ST_EVENT_LOG_RUN: u64 = 1 << 3;
/// Status bit 4 CmdBufRun (read-only): the unit is fetching commands.
pub const ST_CMD_BUF_RUN: u64 = 1 << 4;
/// The write-1-to-clear bits the driver clears at start: EventOverflow,
/// EventLogInt, ComWaitInt, PprOverflow (bit 5), PprInt (bit 6).
pub const ST_RW1C: u64 = 0b110_0111;

/// ComLen / EventLen for 256 entries of 16 bytes: one 4 KiB page.
pub const RING_LEN_256: u64 = 8 << 56;

/// The Extended Feature Register (MMIO 0x30).
///
/// Bit 0 PreFSup, 1 PPRSup, 2 XTSup, 3 NXSup, 4 GTSup, 6 IASup, 7 GASup,
/// 8 HESup, 9 PCSup, 11:10 HATS, 13:12 GATS. Only meaningful when the
/// capability header's EFRSup bit is set; a unit without it reads 0
/// here, which this driver takes as "4-level host tables, nothing
/// optional".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Features(pub u64);

impl Features {
    const fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }

    /// PreFSup: PREFETCH_IOMMU_PAGES is supported.
    pub const fn prefetch(self) -> bool {
        self.bit(0)
    }

    /// PPRSup: peripheral page requests are supported.
    pub const fn ppr(self) -> bool {
        self.bit(1)
    }

    /// XTSup: x2APIC interrupt destinations are supported.
    pub const fn x2apic(self) -> bool {
        self.bit(2)
    }

    /// NXSup: no-execute protection is supported.
    pub const fn no_execute(self) -> bool {
        self.bit(3)
    }

    /// GTSup: guest (two-level) translation is supported.
    pub const fn guest_translation(self) -> bool {
        self.bit(4)
    }

    /// IASup: the INVALIDATE_IOMMU_ALL command is supported.
    pub const fn invalidate_all(self) -> bool {
        self.bit(6)
    }

    /// GASup: guest virtual APIC (128-bit remapping entries) is
    /// supported.
    pub const fn guest_apic(self) -> bool {
        self.bit(7)
    }

    /// HESup: hardware error registers are present.
    pub const fn hardware_errors(self) -> bool {
        self.bit(8)
    }

    /// PCSup: performance counters are present.
    pub const fn perf_counters(self) -> bool {
        self.bit(9)
    }

    /// The HATS field (bits 11:10).
    pub const fn hats(self) -> u8 {
        ((self.0 >> 10) & 3) as u8
    }

    /// The deepest host page table the unit walks (HATS 00b: 4 levels,
    /// 01b: 5, 10b: 6), or `None` for 11b: no host translation at all.
    pub const fn host_levels(self) -> Option<u8> {
        match self.hats() {
            3 => None,
            h => Some(4 + h),
        }
    }

    /// The GATS field (bits 13:12): guest table levels, 00b 4, 01b 5.
    pub const fn gats(self) -> u8 {
        ((self.0 >> 12) & 3) as u8
    }
}

impl fmt::Display for Features {
    /// `EFR 0x...: host tables up to 6 levels; IA GT GA PPR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EFR {:#x}: ", self.0)?;
        match self.host_levels() {
            Some(n) => write!(f, "host tables up to {n} levels")?,
            None => f.write_str("no host translation")?,
        }
        let flags = [
            (self.invalidate_all(), "IA"),
            (self.guest_translation(), "GT"),
            (self.guest_apic(), "GA"),
            (self.x2apic(), "XT"),
            (self.no_execute(), "NX"),
            (self.ppr(), "PPR"),
            (self.prefetch(), "PreF"),
            (self.hardware_errors(), "HE"),
            (self.perf_counters(), "PC"),
        ];
        let mut sep = "; ";
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            write!(f, "{sep}{name}")?;
            sep = " ";
        }
        Ok(())
    }
}
