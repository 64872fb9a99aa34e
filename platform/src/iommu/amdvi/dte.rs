//! Device table entries (specification section 2.2.2): 256 bits per
//! device id, indexed by the requester id (bus << 8 | devfn).
//!
//! The fields this driver writes, as four 64-bit words:
//!
//! - word 0: bit 0 V (the entry is valid), bit 1 TV (the translation
//!   fields are valid), bits 11:9 Mode (page table levels, 0 = no
//!   translation), bits 51:12 Page Table Root Pointer, bit 61 IR and bit
//!   62 IW (read and write permission; 0 denies every such access, with
//!   or without translation);
//! - word 1: bits 15:0 DomainID (tags the unit's cached translations);
//!   every other field 0 (no ATS, events not suppressed, port I/O and
//!   system management requests target-aborted);
//! - word 2: bit 0 IV (the interrupt fields are valid), bits 4:1
//!   IntTabLen (the remapping table has 2^IntTabLen entries), bit 5 IG
//!   (drop unmapped interrupts silently), bits 51:6 Interrupt Table Root
//!   Pointer, bits 61:60 IntCtl (00b target-abort, 01b pass through, 10b
//!   remap fixed and arbitrated interrupts), and the pass bits for INIT
//!   (56), ExtInt (57), NMI (58), LINT0 (62), LINT1 (63): 0 blocks those;
//! - word 3: 0.

/// Word 0 bit 0: V.
pub const DTE_V: u64 = 1 << 0;
/// Word 0 bit 1: TV.
pub const DTE_TV: u64 = 1 << 1;
/// Word 0 bits 11:9: Mode.
pub const DTE_MODE_SHIFT: u32 = 9;
/// Word 0 bits 51:12: the page table root.
pub const DTE_ROOT: u64 = 0x000f_ffff_ffff_f000;
/// Word 0 bit 61: IR.
pub const DTE_IR: u64 = 1 << 61;
/// Word 0 bit 62: IW.
pub const DTE_IW: u64 = 1 << 62;

/// Word 2 bit 0: IV.
pub const DTE_IV: u64 = 1 << 0;
/// Word 2 bits 4:1: IntTabLen.
pub const DTE_INT_TAB_LEN_SHIFT: u32 = 1;
/// Word 2 bits 51:6: the interrupt remapping table (64-byte aligned).
pub const DTE_INT_ROOT: u64 = 0x000f_ffff_ffff_ffc0;
/// Word 2 bits 61:60: IntCtl.
pub const DTE_INT_CTL_SHIFT: u32 = 60;
/// IntCtl 10b: fixed and arbitrated interrupts are remapped through the
/// table.
pub const INT_CTL_REMAP: u64 = 0b10;

/// Bytes per entry.
pub const DTE_SIZE: u64 = 32;

/// A device table entry, as its four 64-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DeviceEntry(pub [u64; 4]);

impl DeviceEntry {
    /// The entry every device id starts with and returns to when
    /// detached: V = 1, TV = 1, IR = IW = 0, Mode = `levels` with a root
    /// pointing at an empty top-level table, DomainID 0, IV = 0.
    ///
    /// The specification gives IR and IW effect whether or not the entry
    /// translates ("IR/IW = 0: the device may not read/write"), so V = 1
    /// with IR = IW = 0 target-aborts every DMA; the empty table is a
    /// second wall for implementations that treat Mode 0 as pure pass
    /// through (QEMU with `dma-remap` does), since with Mode != 0 every
    /// walk ends at a not-present entry. V = 0 would pass DMA through
    /// untranslated and TV = 0 leaves the outcome implementation-defined,
    /// so neither is used.
    ///
    /// Word 2 is [`BLOCKED_IRQS`](Self::BLOCKED_IRQS): every interrupt
    /// is blocked too. IV = 0 would let the device's messages through
    /// untranslated, and a message a device writes by DMA may be taken as
    /// coming from another requester (QEMU attributes it to the I/O
    /// APIC's device id), so no device id keeps IV = 0. A device given to
    /// a guest, or an I/O APIC with a routed input, gets a remapping table
    /// ([`AmdVi::set_irq_table`](super::AmdVi::set_irq_table)).
    pub const fn blocked(empty_root: u64, levels: u8) -> Self {
        Self([
            DTE_V | DTE_TV | (levels as u64) << DTE_MODE_SHIFT | (empty_root & DTE_ROOT),
            0,
            Self::BLOCKED_IRQS,
            0,
        ])
    }

    /// Word 0 of an entry translating through tables at `root` with
    /// `levels` levels, reads and writes allowed (the tables' entries
    /// narrow that).
    pub const fn translated_word0(root: u64, levels: u8) -> u64 {
        DTE_V | DTE_TV | (levels as u64) << DTE_MODE_SHIFT | (root & DTE_ROOT) | DTE_IR | DTE_IW
    }

    /// Word 2 with remapping through the table at `table` of
    /// 2^`len_log2` entries: IV = 1, IntCtl = 10b, IG = 0 (unmapped
    /// interrupts are logged), every pass bit 0.
    pub const fn remapped_word2(table: u64, len_log2: u8) -> u64 {
        DTE_IV
            | (len_log2 as u64) << DTE_INT_TAB_LEN_SHIFT
            | (table & DTE_INT_ROOT)
            | INT_CTL_REMAP << DTE_INT_CTL_SHIFT
    }

    /// Word 2 that blocks every interrupt: IV = 1, IntCtl = 00b
    /// (target-abort fixed and arbitrated interrupts), no table, every
    /// pass bit 0.
    pub const BLOCKED_IRQS: u64 = DTE_IV;

    /// V.
    pub const fn valid(&self) -> bool {
        self.0[0] & DTE_V != 0
    }

    /// Mode: the number of page table levels (0: no translation).
    pub const fn mode(&self) -> u8 {
        ((self.0[0] >> DTE_MODE_SHIFT) & 7) as u8
    }

    /// The page table root.
    pub const fn root(&self) -> u64 {
        self.0[0] & DTE_ROOT
    }

    /// IR and IW.
    pub const fn permissions(&self) -> (bool, bool) {
        (self.0[0] & DTE_IR != 0, self.0[0] & DTE_IW != 0)
    }

    /// DomainID.
    pub const fn domain_id(&self) -> u16 {
        self.0[1] as u16
    }

    /// Whether DMA from the device reaches memory at all (V and TV set
    /// with IR or IW).
    pub const fn allows_dma(&self) -> bool {
        let (r, w) = self.permissions();
        self.valid() && self.0[0] & DTE_TV != 0 && (r || w)
    }

    /// The interrupt remapping table and its entry count, when IV = 1 and
    /// IntCtl = 10b.
    pub const fn interrupt_table(&self) -> Option<(u64, u32)> {
        let w = self.0[2];
        if w & DTE_IV == 0 || (w >> DTE_INT_CTL_SHIFT) & 3 != INT_CTL_REMAP {
            return None;
        }
        let len = 1 << ((w >> DTE_INT_TAB_LEN_SHIFT) & 0xf);
        Some((w & DTE_INT_ROOT, len))
    }
}
