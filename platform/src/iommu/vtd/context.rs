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

use super::sl::PagingLevels;

/// Root and context entry bit 0: present.
pub const PRESENT: u64 = 1;
/// Root and context entry bits 63:12: the table address.
pub const TABLE_ADDR: u64 = !0xfff;
/// Context entry bit 1: fault processing disable.
pub const CTX_FPD: u64 = 1 << 1;
/// Context entry low bits 3:2: translation type.
pub const CTX_TT_SHIFT: u32 = 2;
/// Context entry high bits 23:8: domain id.
pub const CTX_DID_SHIFT: u32 = 8;

/// A root entry pointing at `context_table`: `[low, high]`.
pub const fn root_entry(context_table: u64) -> [u64; 2] {
    [(context_table & TABLE_ADDR) | PRESENT, 0]
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
    pub const fn new(domain_id: u16, sl_root: u64, levels: PagingLevels) -> Self {
        Self {
            domain_id,
            sl_root: sl_root & TABLE_ADDR,
            aw: levels.context_aw() as u8,
            translation_type: 0,
            fault_processing_disabled: false,
        }
    }

    /// The raw entry: `[low, high]`.
    pub const fn encode(&self) -> [u64; 2] {
        let fpd = if self.fault_processing_disabled {
            CTX_FPD
        } else {
            0
        };
        [
            (self.sl_root & TABLE_ADDR)
                | ((self.translation_type as u64 & 3) << CTX_TT_SHIFT)
                | fpd
                | PRESENT,
            (self.aw as u64 & 7) | ((self.domain_id as u64) << CTX_DID_SHIFT),
        ]
    }

    /// Decodes a raw entry; `None` when it is not present.
    pub const fn decode(raw: [u64; 2]) -> Option<Self> {
        let [lo, hi] = raw;
        if lo & PRESENT == 0 {
            return None;
        }
        Some(Self {
            domain_id: (hi >> CTX_DID_SHIFT) as u16,
            sl_root: lo & TABLE_ADDR,
            aw: (hi & 7) as u8,
            translation_type: ((lo >> CTX_TT_SHIFT) & 3) as u8,
            fault_processing_disabled: lo & CTX_FPD != 0,
        })
    }
}
