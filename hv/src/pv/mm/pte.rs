//! What Xen accepts in a 64-bit PV guest's page-table entries and what it
//! adds to them (`mm.c` `arch_init_memory`, the `*_DISALLOW_MASK` macros,
//! `FASTPATH_*_WHITELIST`; `pv/mm.h` `adjust_guest_l*e`).

use crate::pv::abi::pte::{
    ACCESSED, ADDR, AVAIL, AVAIL_HIGH, DIRTY, GLOBAL, GUEST_KERNEL, NX, PAT, PCD, PRESENT, PSE,
    PWT, RW, USER,
};

/// The bits Xen calls "flags": 0-11 and 52-63 (`get_pte_flags`).
const FLAG_BITS: u64 = 0xfff | (0xfff << 52);

/// What every level allows (`base_disallow_mask` is the complement): present,
/// writable, user, accessed, dirty, the guest's free bits and NX. PWT, PCD,
/// PSE/PAT and GLOBAL are refused, so a PV guest has no superpages.
const BASE_ALLOWED: u64 = PRESENT | RW | USER | ACCESSED | DIRTY | AVAIL | AVAIL_HIGH | NX;
const BASE_DISALLOW: u64 = FLAG_BITS & !BASE_ALLOWED;

/// The cache-attribute bits of an L1 entry (`PAGE_CACHE_ATTRS`).
pub const CACHE_ATTRS: u64 = PAT | PCD | PWT;
/// Uncached under Xen's PAT (`_PAGE_UC`: PCD and PWT, PAT entry 3).
const UC: u64 = PCD | PWT;

/// `L1_DISALLOW_MASK`: GLOBAL is allowed in L1 entries. Xen's debug builds
/// also refuse `_PAGE_GNTTAB` (bit 62); release builds (what guests run on,
/// and what NetBSD, which uses the high free bits, needs) define it as 0,
/// so bit 62 is the guest's here too.
const L1_DISALLOW: u64 = BASE_DISALLOW & !GLOBAL;

/// `l1_disallow_mask(d)`: PWT, PCD and PAT are the guest's to choose only
/// when the domain may flush caches (it has I/O memory or ports).
pub const fn l1_disallow(io_resources: bool) -> u64 {
    if io_resources {
        L1_DISALLOW & !CACHE_ATTRS
    } else {
        L1_DISALLOW
    }
}

/// `L2_DISALLOW_MASK`, `l3_disallow_mask` (64-bit guest), `L4_DISALLOW_MASK`.
pub const LN_DISALLOW: u64 = BASE_DISALLOW;

/// Bits an L1 update may change without revalidation
/// (`FASTPATH_FLAG_WHITELIST`).
const FASTPATH_L1: u64 = NX | AVAIL_HIGH | AVAIL | GLOBAL | DIRTY | ACCESSED | USER;
/// The same for L2-L4 (`FASTPATH_PDE_FLAG_WHITELIST` with linear page
/// tables on: RW must revalidate, it decides whether a linear entry is
/// allowed).
const FASTPATH_PDE: u64 = FASTPATH_L1;

/// The frame an entry maps.
pub const fn mfn(e: u64) -> u64 {
    (e & ADDR) >> 12
}

pub const fn present(e: u64) -> bool {
    e & PRESENT != 0
}

pub const fn writable(e: u64) -> bool {
    e & RW != 0
}

/// `l1e_has_changed(old, new, ~whitelist)`: the frame or a bit outside the
/// whitelist differs.
const fn has_changed(old: u64, new: u64, whitelist: u64) -> bool {
    (old ^ new) & (ADDR | (FLAG_BITS & !whitelist)) != 0
}

/// Whether an L1 update must be revalidated.
pub const fn l1_changed(old: u64, new: u64) -> bool {
    has_changed(old, new, FASTPATH_L1)
}

/// Whether an L2-L4 update must be revalidated.
pub const fn ln_changed(old: u64, new: u64) -> bool {
    has_changed(old, new, FASTPATH_PDE)
}

/// `adjust_guest_l1e` for a 64-bit guest. The kernel runs in ring 3, so an
/// entry the guest made for its kernel gets USER and `_PAGE_GUEST_KERNEL`
/// (bit 52) to remember it; an entry made for user mode gets GLOBAL, as Xen
/// gives it. The container runs with CR4.PGE clear, so the hardware
/// ignores GLOBAL: it is added only so the guest reads back the values Xen
/// would have written.
pub const fn adjust_l1(e: u64) -> u64 {
    if !present(e) {
        return e;
    }
    let mut e = e;
    if e & USER == 0 {
        e |= USER | GUEST_KERNEL;
    }
    if e & GUEST_KERNEL == 0 {
        e |= GLOBAL | USER;
    }
    e
}

/// `adjust_guest_l2e` / `adjust_guest_l3e` (64-bit) / `adjust_guest_l4e`:
/// USER on every present entry, and ACCESSED on L4 entries.
pub const fn adjust_ln(level: u8, e: u64) -> u64 {
    if !present(e) {
        e
    } else if level == 4 {
        e | USER | ACCESSED
    } else {
        e | USER
    }
}

/// The PAT entry an L1 entry selects (`pte_flags_to_cacheattr`).
const fn cacheattr(e: u64) -> u64 {
    ((e >> 5) & 4) | ((e >> 3) & 3)
}

/// The bits to flip in an L1 entry mapping I/O memory so the mapping is not
/// cacheable (`get_page_from_l1e`): an entry whose PAT entry under
/// `XEN_MSR_PAT` is WB, WT or WP is made UC; UC, UC- and WC stay.
pub const fn io_cache_flip(e: u64) -> u64 {
    // XEN_MSR_PAT entries 0..7: WB, WT, UC-, UC, WC, WP, UC, UC.
    match cacheattr(e) {
        2 | 3 | 4 | 6 | 7 => 0,
        _ => (e & CACHE_ATTRS) ^ UC,
    }
}

/// The frame number Xen reads as `INVALID_MFN` in an entry
/// (`PADDR_MASK >> PAGE_SHIFT`): mapping it is -EINVAL, not -EPERM.
pub const INVALID_MFN: u64 = ADDR >> 12;

/// PSE is the same bit as PAT; named here for the L2/L3 refusal.
pub const SUPERPAGE: u64 = PSE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_disallow_is_pwt_pcd_pse_global() {
        assert_eq!(BASE_DISALLOW, PWT | PCD | PSE | GLOBAL);
        assert_eq!(l1_disallow(false), PWT | PCD | PAT);
        assert_eq!(l1_disallow(true), 0);
        assert_eq!(LN_DISALLOW & SUPERPAGE, SUPERPAGE);
    }

    #[test]
    fn kernel_l1_entry_gets_user_and_guest_kernel() {
        let e = 0x0123_4000 | PRESENT | RW;
        assert_eq!(adjust_l1(e), e | USER | GUEST_KERNEL);
    }

    #[test]
    fn user_l1_entry_gets_global() {
        let e = 0x0123_4000 | PRESENT | USER;
        assert_eq!(adjust_l1(e), e | GLOBAL);
        // Already adjusted kernel entries stay as they are.
        let k = adjust_l1(0x5000 | PRESENT);
        assert_eq!(adjust_l1(k), k);
        assert_eq!(adjust_l1(0x5000), 0x5000);
    }

    #[test]
    fn higher_levels_get_user_and_l4_accessed() {
        assert_eq!(adjust_ln(2, 0x5000 | PRESENT), 0x5000 | PRESENT | USER);
        assert_eq!(
            adjust_ln(4, 0x5000 | PRESENT),
            0x5000 | PRESENT | USER | ACCESSED
        );
        assert_eq!(adjust_ln(4, 0x5000), 0x5000);
    }

    #[test]
    fn fast_path_ignores_accessed_dirty_and_free_bits_only() {
        let e = 0x5000 | PRESENT | RW;
        assert!(!l1_changed(
            e,
            e | ACCESSED | DIRTY | AVAIL | NX | (1 << 60)
        ));
        assert!(l1_changed(e, e & !RW));
        assert!(l1_changed(e, e + 0x1000));
        assert!(l1_changed(e, e | PCD));
        assert!(ln_changed(e, e & !RW));
    }

    #[test]
    fn io_mappings_are_forced_uncached_unless_uc_or_wc() {
        assert_eq!(io_cache_flip(0), PCD | PWT); // WB -> UC
        assert_eq!(io_cache_flip(PWT), PCD); // WT -> UC
        assert_eq!(io_cache_flip(PCD), 0); // UC-
        assert_eq!(io_cache_flip(PCD | PWT), 0); // UC
        assert_eq!(io_cache_flip(PAT), 0); // WC
        assert_eq!(io_cache_flip(PAT | PWT) ^ (PAT | PWT), PCD | PWT); // WP -> UC
    }
}
