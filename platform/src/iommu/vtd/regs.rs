//! The remapping unit's register offsets and fields (VT-d specification,
//! chapter 11 "Register Descriptions"), and the capability report.

use core::fmt;

/// Version register (32-bit): bits 7:4 major, 3:0 minor.
pub const VER: u32 = 0x00;
/// Capability register (64-bit).
pub const CAP: u32 = 0x08;
/// Extended capability register (64-bit).
pub const ECAP: u32 = 0x10;
/// Global command register (32-bit, write only).
pub const GCMD: u32 = 0x18;
/// Global status register (32-bit).
pub const GSTS: u32 = 0x1c;
/// Root table address register (64-bit).
pub const RTADDR: u32 = 0x20;
/// Context command register (64-bit).
pub const CCMD: u32 = 0x28;
/// Fault status register (32-bit).
pub const FSTS: u32 = 0x34;
/// Fault event control register (32-bit).
pub const FECTL: u32 = 0x38;
/// Protected memory enable register (32-bit).
pub const PMEN: u32 = 0x64;
/// Invalidation queue head register (64-bit).
pub const IQH: u32 = 0x80;
/// Invalidation queue tail register (64-bit).
pub const IQT: u32 = 0x88;
/// Invalidation queue address register (64-bit).
pub const IQA: u32 = 0x90;
/// Invalidation completion status register (32-bit).
pub const ICS: u32 = 0x9c;
/// Interrupt remapping table address register (64-bit): bits 63:12 the
/// table, bit 11 EIME, bits 3:0 S (2^(S + 1) entries).
pub const IRTA: u32 = 0xb8;

/// IRTA bit 11: extended interrupt mode enable (x2APIC destination ids;
/// compatibility-format interrupts are then always blocked).
pub const IRTA_EIME: u64 = 1 << 11;

/// GCMD/GSTS bit 31: translation enable / status (TE/TES).
pub const G_TE: u32 = 1 << 31;
/// GCMD/GSTS bit 30: set root table pointer / status (SRTP/RTPS).
pub const G_RTP: u32 = 1 << 30;
/// GCMD/GSTS bit 29: set fault log / status (SFL/FLS).
pub const G_FL: u32 = 1 << 29;
/// GCMD/GSTS bit 28: enable advanced fault logging (EAFL/AFLS).
pub const G_AFL: u32 = 1 << 28;
/// GCMD/GSTS bit 27: write buffer flush / status (WBF/WBFS).
pub const G_WBF: u32 = 1 << 27;
/// GCMD/GSTS bit 26: queued invalidation enable / status (QIE/QIES).
pub const G_QIE: u32 = 1 << 26;
/// GCMD/GSTS bit 25: interrupt remapping enable / status (IRE/IRES).
pub const G_IRE: u32 = 1 << 25;
/// GCMD/GSTS bit 24: set interrupt remap table pointer (SIRTP/IRTPS).
pub const G_IRTP: u32 = 1 << 24;
/// GCMD/GSTS bit 23: compatibility format interrupt (CFI/CFIS).
pub const G_CFI: u32 = 1 << 23;
/// The GSTS bits that report a persistent enable (TE, EAFL, QIE, IRE,
/// CFI). A GCMD write carries these over from GSTS and adds one command;
/// the one-shot bits (SRTP, SFL, WBF, SIRTP) must not be repeated
/// (specification 11.4.4).
pub const G_PERSISTENT: u32 = G_TE | G_AFL | G_QIE | G_IRE | G_CFI;

/// CCMD bit 63: invalidate context cache (set to start, clear when done).
pub const CCMD_ICC: u64 = 1 << 63;
/// CCMD bits 62:61 (CIRG), global invalidation request.
pub const CCMD_GLOBAL: u64 = 1 << 61;
/// CCMD bits 62:61 (CIRG), domain-selective invalidation request.
pub const CCMD_DOMAIN: u64 = 2 << 61;
/// CCMD bits 62:61 (CIRG), device-selective invalidation request.
pub const CCMD_DEVICE: u64 = 3 << 61;
/// CCMD bits 60:59 (CAIG): the granularity hardware actually used; 0
/// means the request was rejected.
pub const CCMD_CAIG_SHIFT: u32 = 59;
/// CCMD bits 31:16: source id for device-selective invalidation.
pub const CCMD_SID_SHIFT: u32 = 16;

/// IOTLB register bit 63: invalidate IOTLB (set to start, clear when done).
pub const IOTLB_IVT: u64 = 1 << 63;
/// IOTLB register bits 61:60 (IIRG), global invalidation.
pub const IOTLB_GLOBAL: u64 = 1 << 60;
/// IOTLB register bits 61:60 (IIRG), domain-selective invalidation.
pub const IOTLB_DOMAIN: u64 = 2 << 60;
/// IOTLB register bits 58:57 (IAIG): the granularity hardware used; 0
/// means the request was rejected.
pub const IOTLB_IAIG_SHIFT: u32 = 57;
/// IOTLB register bit 49: drain reads (only if CAP.DRD).
pub const IOTLB_DR: u64 = 1 << 49;
/// IOTLB register bit 48: drain writes (only if CAP.DWD).
pub const IOTLB_DW: u64 = 1 << 48;
/// IOTLB register bits 47:32: domain id for domain-selective invalidation.
pub const IOTLB_DID_SHIFT: u32 = 32;
/// Offset of the IOTLB invalidate register within the IOTLB register
/// pair at ECAP.IRO (the IVA register is at +0).
pub const IOTLB_REG: u32 = 8;

/// FSTS bit 0: primary fault overflow (RW1C).
pub const FSTS_PFO: u32 = 1 << 0;
/// FSTS bit 1: primary pending fault (read only: some record has F set).
pub const FSTS_PPF: u32 = 1 << 1;
/// FSTS bit 4: invalidation queue error (RW1C).
pub const FSTS_IQE: u32 = 1 << 4;
/// FSTS bit 5: invalidation completion error (RW1C).
pub const FSTS_ICE: u32 = 1 << 5;
/// FSTS bit 6: invalidation time-out error (RW1C).
pub const FSTS_ITE: u32 = 1 << 6;
/// FSTS bits 15:8: index of the first pending fault record.
pub const FSTS_FRI_SHIFT: u32 = 8;

/// Fault recording register, upper 64 bits, bit 63 (bit 127 of the
/// record): fault (RW1C). Cleared by writing 1 to bit 31 of the 32-bit
/// word at record offset 12.
pub const FRCD_F: u64 = 1 << 63;

/// PMEN bit 31: enable protected memory regions.
pub const PMEN_EPM: u32 = 1 << 31;
/// PMEN bit 0: protected region status.
pub const PMEN_PRS: u32 = 1 << 0;

/// ICS bit 0: invalidation wait descriptor complete (RW1C).
pub const ICS_IWC: u32 = 1 << 0;

/// What one remapping unit can do: the raw VER, CAP and ECAP registers
/// with accessors for the fields this driver uses (specification 11.4.1
/// to 11.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// The version register.
    pub ver: u32,
    /// The capability register.
    pub cap: u64,
    /// The extended capability register.
    pub ecap: u64,
}

const fn field(v: u64, lo: u32, bits: u32) -> u64 {
    (v >> lo) & ((1 << bits) - 1)
}

impl Caps {
    /// Architecture version (major, minor).
    pub const fn version(&self) -> (u8, u8) {
        (((self.ver >> 4) & 0xf) as u8, (self.ver & 0xf) as u8)
    }

    /// CAP.ND (bits 2:0): the number of domain ids, `2^(4 + 2 * ND)`.
    pub const fn domains(&self) -> u32 {
        1 << (4 + 2 * field(self.cap, 0, 3))
    }

    /// CAP.RWBF (bit 4): table updates need a write-buffer flush.
    pub const fn rwbf(&self) -> bool {
        self.cap & (1 << 4) != 0
    }

    /// CAP.CM (bit 7): caching mode, not-present entries may be cached,
    /// so making an entry present needs an invalidation too.
    pub const fn caching_mode(&self) -> bool {
        self.cap & (1 << 7) != 0
    }

    /// CAP.SAGAW (bits 12:8): supported adjusted guest address widths;
    /// bit 1 is 39-bit (3-level), bit 2 48-bit (4-level), bit 3 57-bit
    /// (5-level) second-level tables.
    pub const fn sagaw(&self) -> u8 {
        field(self.cap, 8, 5) as u8
    }

    /// CAP.MGAW (bits 21:16, plus one): the maximum guest address width.
    pub const fn mgaw(&self) -> u8 {
        field(self.cap, 16, 6) as u8 + 1
    }

    /// CAP.FRO (bits 33:24, times 16): offset of the first fault
    /// recording register.
    pub const fn fault_offset(&self) -> u32 {
        (field(self.cap, 24, 10) * 16) as u32
    }

    /// CAP.SLLPS bit 34: second-level 2 MiB pages.
    pub const fn sl_2m(&self) -> bool {
        self.cap & (1 << 34) != 0
    }

    /// CAP.SLLPS bit 35: second-level 1 GiB pages.
    pub const fn sl_1g(&self) -> bool {
        self.cap & (1 << 35) != 0
    }

    /// CAP.PSI (bit 39): page-selective IOTLB invalidation.
    pub const fn psi(&self) -> bool {
        self.cap & (1 << 39) != 0
    }

    /// CAP.NFR (bits 47:40, plus one): the number of fault recording
    /// registers.
    pub const fn fault_records(&self) -> u32 {
        field(self.cap, 40, 8) as u32 + 1
    }

    /// CAP.DWD (bit 54): IOTLB invalidation can drain writes.
    pub const fn drain_writes(&self) -> bool {
        self.cap & (1 << 54) != 0
    }

    /// CAP.DRD (bit 55): IOTLB invalidation can drain reads.
    pub const fn drain_reads(&self) -> bool {
        self.cap & (1 << 55) != 0
    }

    /// ECAP.C (bit 0): hardware walks of the remapping tables snoop the
    /// CPU caches. When clear, every table write must be written back
    /// from the cache ([`TableMemory::flush`](crate::iommu::TableMemory::flush)).
    pub const fn coherent(&self) -> bool {
        self.ecap & 1 != 0
    }

    /// ECAP.QI (bit 1): queued invalidation.
    pub const fn queued_invalidation(&self) -> bool {
        self.ecap & (1 << 1) != 0
    }

    /// ECAP.DT (bit 2): device TLBs (ATS).
    pub const fn device_tlb(&self) -> bool {
        self.ecap & (1 << 2) != 0
    }

    /// ECAP.IR (bit 3): interrupt remapping.
    pub const fn interrupt_remapping(&self) -> bool {
        self.ecap & (1 << 3) != 0
    }

    /// ECAP.EIM (bit 4): extended (x2APIC) interrupt mode.
    pub const fn extended_interrupt_mode(&self) -> bool {
        self.ecap & (1 << 4) != 0
    }

    /// ECAP.PT (bit 6): pass-through translation type.
    pub const fn pass_through(&self) -> bool {
        self.ecap & (1 << 6) != 0
    }

    /// ECAP.SC (bit 7): snoop control.
    pub const fn snoop_control(&self) -> bool {
        self.ecap & (1 << 7) != 0
    }

    /// ECAP.IRO (bits 17:8, times 16): offset of the IOTLB register pair
    /// (IVA at +0, IOTLB invalidate at +8).
    pub const fn iotlb_offset(&self) -> u32 {
        (field(self.ecap, 8, 10) * 16) as u32
    }
}

impl fmt::Display for Caps {
    /// One line: `version 1.0, SAGAW 39/48-bit, MGAW 48, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.version();
        write!(f, "version {major}.{minor}, SAGAW")?;
        let mut sep = ' ';
        for (bit, width) in [(1, 39), (2, 48), (3, 57)] {
            if self.sagaw() & (1 << bit) != 0 {
                write!(f, "{sep}{width}")?;
                sep = '/';
            }
        }
        if sep == ' ' {
            f.write_str(" none")?;
        } else {
            f.write_str("-bit")?;
        }
        write!(f, ", MGAW {}, large pages", self.mgaw())?;
        match (self.sl_2m(), self.sl_1g()) {
            (false, false) => f.write_str(" none")?,
            (true, false) => f.write_str(" 2M")?,
            (false, true) => f.write_str(" 1G")?,
            (true, true) => f.write_str(" 2M/1G")?,
        }
        write!(
            f,
            ", {} domains, {} fault records at {:#x}, IOTLB at {:#x}",
            self.domains(),
            self.fault_records(),
            self.fault_offset(),
            self.iotlb_offset()
        )?;
        for (set, name) in [
            (self.queued_invalidation(), "QI"),
            (self.interrupt_remapping(), "IR"),
            (self.extended_interrupt_mode(), "EIM"),
            (self.pass_through(), "PT"),
            (self.device_tlb(), "DT"),
            (self.snoop_control(), "SC"),
            (self.coherent(), "C"),
            (self.caching_mode(), "CM"),
            (self.rwbf(), "RWBF"),
            (self.psi(), "PSI"),
        ] {
            if set {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}
