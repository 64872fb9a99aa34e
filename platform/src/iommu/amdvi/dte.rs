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

use bitfield::bitfield;

bitfield! {
    /// Word 0 of a device table entry: translation.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct DteWord0(pub u64);
    impl Debug;
    /// V: the entry is valid.
    pub v, set_v: 0;
    /// TV: the translation fields are valid.
    pub tv, set_tv: 1;
    /// Mode: page table levels (0: no translation).
    pub u8, mode, set_mode: 11, 9;
    /// The page table root's frame number.
    pub root_frame, set_root_frame: 51, 12;
    /// IR: the device may read.
    pub ir, set_ir: 61;
    /// IW: the device may write.
    pub iw, set_iw: 62;
}

bitfield! {
    /// Word 1 of a device table entry.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct DteWord1(pub u64);
    impl Debug;
    /// DomainID: tags the unit's cached translations.
    pub u16, domain_id, set_domain_id: 15, 0;
}

bitfield! {
    /// Word 2 of a device table entry: interrupts.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct DteWord2(pub u64);
    impl Debug;
    /// IV: the interrupt fields are valid.
    pub iv, set_iv: 0;
    /// IntTabLen: the remapping table has 2^IntTabLen entries.
    pub u8, int_tab_len, set_int_tab_len: 4, 1;
    /// IG: unmapped interrupts are dropped silently.
    pub ig, set_ig: 5;
    /// The remapping table's address in 64-byte units (bits 51:6).
    pub int_root_units, set_int_root_units: 51, 6;
    /// IntCtl: 00b target-abort, 01b pass through, 10b remap.
    pub u8, int_ctl, set_int_ctl: 61, 60;
}

/// IntCtl 10b: fixed and arbitrated interrupts are remapped through the
/// table.
pub const INT_CTL_REMAP: u8 = 0b10;

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
    pub fn blocked(empty_root: u64, levels: u8) -> Self {
        Self([
            Self::word0(empty_root, levels, false),
            0,
            Self::BLOCKED_IRQS,
            0,
        ])
    }

    /// Word 0: V, TV, Mode `levels`, the root, and IR = IW = `dma`.
    fn word0(root: u64, levels: u8, dma: bool) -> u64 {
        let mut w = DteWord0(0);
        w.set_v(true);
        w.set_tv(true);
        w.set_mode(levels);
        w.set_root_frame(root >> 12);
        w.set_ir(dma);
        w.set_iw(dma);
        w.0
    }

    /// Word 0 of an entry translating through tables at `root` with
    /// `levels` levels, reads and writes allowed (the tables' entries
    /// narrow that).
    pub fn translated_word0(root: u64, levels: u8) -> u64 {
        Self::word0(root, levels, true)
    }

    /// Word 2 with remapping through the table at `table` of
    /// 2^`len_log2` entries: IV = 1, IntCtl = 10b, IG = 0 (unmapped
    /// interrupts are logged), every pass bit 0.
    pub fn remapped_word2(table: u64, len_log2: u8) -> u64 {
        let mut w = DteWord2(0);
        w.set_iv(true);
        w.set_int_tab_len(len_log2);
        w.set_int_root_units(table >> 6);
        w.set_int_ctl(INT_CTL_REMAP);
        w.0
    }

    /// Word 2 that blocks every interrupt: IV = 1, IntCtl = 00b
    /// (target-abort fixed and arbitrated interrupts), no table, every
    /// pass bit 0.
    pub const BLOCKED_IRQS: u64 = 1;

    /// V.
    pub fn valid(&self) -> bool {
        DteWord0(self.0[0]).v()
    }

    /// Mode: the number of page table levels (0: no translation).
    pub fn mode(&self) -> u8 {
        DteWord0(self.0[0]).mode()
    }

    /// The page table root.
    pub fn root(&self) -> u64 {
        DteWord0(self.0[0]).root_frame() << 12
    }

    /// IR and IW.
    pub fn permissions(&self) -> (bool, bool) {
        let w = DteWord0(self.0[0]);
        (w.ir(), w.iw())
    }

    /// DomainID.
    pub fn domain_id(&self) -> u16 {
        DteWord1(self.0[1]).domain_id()
    }

    /// Whether DMA from the device reaches memory at all (V and TV set
    /// with IR or IW).
    pub fn allows_dma(&self) -> bool {
        let (r, w) = self.permissions();
        self.valid() && DteWord0(self.0[0]).tv() && (r || w)
    }

    /// The interrupt remapping table and its entry count, when IV = 1 and
    /// IntCtl = 10b.
    pub fn interrupt_table(&self) -> Option<(u64, u32)> {
        let w = DteWord2(self.0[2]);
        (w.iv() && w.int_ctl() == INT_CTL_REMAP)
            .then(|| (w.int_root_units() << 6, 1 << w.int_tab_len()))
    }
}
