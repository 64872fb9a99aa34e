//! Root and context entries, legacy (non-scalable) mode (VT-d
//! specification 9.1 and 9.3).
//!
//! The root table has 256 128-bit entries, one per bus: bit 0 present,
//! bits 63:12 the bus's context table. A context table has 256 128-bit
//! entries, one per device and function (devfn). Low 64 bits: bit 0
//! present, bit 1 FPD (fault processing disable), bits 3:2 TT (translation
//! type; 00 = untranslated requests through second-level tables), bits
//! 63:12 SLPTPTR (the top second-level table). High 64 bits: bits 2:0 AW
//! (address width: 1 = 39-bit 3-level, 2 = 48-bit 4-level), bits 23:8 DID
//! (domain id).

use bitfield::bitfield;

use super::sl::PagingLevels;

bitfield! {
    /// A root entry's low 64 bits (the high 64 are reserved, 0).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RootLow(pub u64);
    impl Debug;
    /// P: the bus has a context table.
    pub present, set_present: 0;
    /// CTP: the context table's frame number (address bits 63:12).
    pub table_frame, set_table_frame: 63, 12;
}

impl RootLow {
    /// The context table's address.
    pub fn table(&self) -> u64 {
        self.table_frame() << 12
    }
}

bitfield! {
    /// A context entry's 128 bits (low half in bits 63:0).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RawContext(pub u128);
    impl Debug;
    /// P: the entry is present.
    pub present, set_present: 0;
    /// FPD: faults are not recorded or reported.
    pub fpd, set_fpd: 1;
    /// TT: the translation type (00b untranslated requests only).
    pub u8, tt, set_tt: 3, 2;
    /// SLPTPTR: the top second-level table's frame number.
    pub u64, sl_frame, set_sl_frame: 63, 12;
    /// AW: the address width (1 = 39-bit, 2 = 48-bit).
    pub u8, aw, set_aw: 66, 64;
    /// DID: the domain id (IOTLB tag).
    pub u16, did, set_did: 87, 72;
}

impl RawContext {
    /// From the two 64-bit halves as the table holds them.
    pub const fn from_halves([lo, hi]: [u64; 2]) -> Self {
        Self((hi as u128) << 64 | lo as u128)
    }

    /// The two 64-bit halves, low then high.
    pub const fn halves(&self) -> [u64; 2] {
        [self.0 as u64, (self.0 >> 64) as u64]
    }
}

/// A root entry pointing at `context_table`: `[low, high]`.
pub fn root_entry(context_table: u64) -> [u64; 2] {
    let mut r = RootLow(0);
    r.set_present(true);
    r.set_table_frame(context_table >> 12);
    [r.0, 0]
}

/// A present context entry, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextEntry {
    /// The domain id (IOTLB tag).
    pub domain_id: u16,
    /// The top-level second-level table (SLPTPTR).
    pub sl_root: u64,
    /// The AW field (1 = 3-level, 2 = 4-level).
    pub aw: u8,
    /// The translation type (0 = untranslated requests only).
    pub translation_type: u8,
    /// Faults are not recorded or reported (FPD).
    pub fault_processing_disabled: bool,
}

impl ContextEntry {
    /// The entry this driver writes: present, faults reported,
    /// translation type 00, walking `levels`-level tables at `sl_root`.
    pub fn new(domain_id: u16, sl_root: u64, levels: PagingLevels) -> Self {
        Self {
            domain_id,
            sl_root: sl_root & !0xfff,
            aw: levels.context_aw() as u8,
            translation_type: 0,
            fault_processing_disabled: false,
        }
    }

    /// The raw entry: `[low, high]`.
    pub fn encode(&self) -> [u64; 2] {
        let mut e = RawContext(0);
        e.set_present(true);
        e.set_fpd(self.fault_processing_disabled);
        e.set_tt(self.translation_type & 3);
        e.set_sl_frame(self.sl_root >> 12);
        e.set_aw(self.aw & 7);
        e.set_did(self.domain_id);
        e.halves()
    }

    /// Decodes a raw entry; `None` when it is not present.
    pub fn decode(raw: [u64; 2]) -> Option<Self> {
        let e = RawContext::from_halves(raw);
        e.present().then(|| Self {
            domain_id: e.did(),
            sl_root: e.sl_frame() << 12,
            aw: e.aw(),
            translation_type: e.tt(),
            fault_processing_disabled: e.fpd(),
        })
    }
}
