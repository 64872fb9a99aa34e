//! The CPUID features an HVM (PVH) guest may see: an allow-list per
//! feature word, as Xen builds its HVM policy.
//!
//! Xen's public `arch-x86/cpufeatureset.h` marks each feature with the
//! guests it applies to: 'A' all guests, 'S' HVM guests, 'H' HVM guests
//! with hardware paging. Everything else (Debug Store, DS-CPL, MONITOR,
//! VMX, SMX, the thermal and performance-monitoring bits, LA57, CET, ...)
//! a guest never sees. The masks below are the A, S and H bits of Xen
//! 4.17 per word, less what `hv` does not emulate (each named in
//! [`not_here`]). What follows the guest's XCR0 (XSAVE, AVX, AVX-512) and
//! the bits set by the caller (x2APIC, HYPERVISOR, OSXSAVE) are applied
//! afterwards by `hv::hvm::xstate` and the exit handler; PV guests get the
//! 'A' bits of this policy (`hv::pv::cpuid`).

/// Leaf 1 EDX: the 'A' bits and VME PSE MTRR PGE PSE36.
const LEAF1_EDX: u32 = 0x1fc9_cbf5 | 0x0002_300a;
/// Leaf 1 ECX: the 'A' bits and PCID X2APIC TSC_DEADLINE.
const LEAF1_ECX: u32 = 0xf6d8_3203 | 0x0122_0000;
/// Leaf 7.0 EBX: the 'A' bits and TSC_ADJUST SMEP INVPCID SMAP.
const L7_EBX: u32 = 0xfdaf_0b29 | 0x0010_0482;
/// Leaf 7.0 ECX: the 'A' bits and UMIP PKU.
const L7_ECX: u32 = 0x0240_5f43 | 0x0000_000c;
/// Leaf 7.0 EDX: the 'A' bits and L1D_FLUSH.
const L7_EDX: u32 = 0xac00_441c | 0x1000_0000;
/// Leaf 7.1 EAX: AVX_VNNI AVX512_BF16 FZRM FSRS FSRCS.
const L7_1_EAX: u32 = 0x0000_1c30;
/// Leaf 0x80000001 EDX: the 'A' bits and PAGE1GB; on AMD the word also
/// repeats leaf 1's common bits, which follow leaf 1's policy.
const E1_EDX: u32 = 0xea50_0800 | 0x0400_0000;
/// The leaf 1 EDX bits AMD repeats in 0x80000001 EDX.
const E1_EDX_COMMON: u32 = 0x0183_f3ff;
/// Leaf 0x80000001 ECX: the 'A' bits and CR8_LEGACY.
const E1_ECX: u32 = 0x0421_09e3 | 0x0000_0010;
/// Leaf 0x80000008 EBX: CLZERO RSTR_FP_ERR_PTRS IBPB SSB_NO BTC_NO
/// IBPB_RET (the 'S' ones all control speculation through MSRs).
const E8_EBX: u32 = 0x6400_1005;
/// Leaf 0x80000021 EAX: the 'A' bits.
const E21_EAX: u32 = 0x7800_0064;

/// What Xen gives an HVM guest and `hv` takes out: features whose MSRs or
/// state are not emulated or not switched between guests.
pub mod not_here {
    /// Leaf 1 EDX: MCE (7), MTRR (12), MCA (14): no machine-check or MTRR
    /// MSRs.
    pub const LEAF1_EDX: u32 = (1 << 7) | (1 << 12) | (1 << 14);
    /// Leaf 1 ECX: TSC_DEADLINE (24): the APIC timer does not count.
    pub const LEAF1_ECX: u32 = 1 << 24;
    /// Leaf 7.0 EBX: TSC_ADJUST (1): its MSR is not emulated.
    pub const L7_EBX: u32 = 1 << 1;
    /// Leaf 7.0 ECX: PKU (3), whose PKRU register is not switched between
    /// guests; RDPID (22): TSC_AUX is not switched.
    pub const L7_ECX: u32 = (1 << 3) | (1 << 22);
    /// Leaf 7.0 EDX: IBRSB (26), STIBP (27), L1D_FLUSH (28), ARCH_CAPS
    /// (29), SSBD (31): SPEC_CTRL, PRED_CMD, FLUSH_CMD and
    /// ARCH_CAPABILITIES are not emulated.
    pub const L7_EDX: u32 = 0xbc00_0000;
    /// Leaf 0x80000001 EDX: RDTSCP (27): TSC_AUX is not switched.
    pub const E1_EDX: u32 = 1 << 27;
    /// Leaf 0x80000001 ECX: DBEXT (26): the breakpoint address-mask MSRs
    /// are not emulated.
    pub const E1_ECX: u32 = 1 << 26;
    /// Leaf 0x80000008 EBX: IBPB (12): PRED_CMD is not emulated.
    pub const E8_EBX: u32 = 1 << 12;
}

/// The HVM view of `(leaf, subleaf)` whose host registers are `r` (EAX,
/// EBX, ECX, EDX): each feature word masked by its allow-list. Leaves
/// without feature bits pass through.
pub fn filter(leaf: u32, sub: u32, r: [u32; 4]) -> [u32; 4] {
    let [a, b, c, d] = r;
    match (leaf, sub) {
        (1, _) => [
            a,
            b,
            c & LEAF1_ECX & !not_here::LEAF1_ECX,
            d & LEAF1_EDX & !not_here::LEAF1_EDX,
        ],
        (7, 0) => [
            a,
            b & L7_EBX & !not_here::L7_EBX,
            c & L7_ECX & !not_here::L7_ECX,
            d & L7_EDX & !not_here::L7_EDX,
        ],
        (7, 1) => [a & L7_1_EAX, 0, 0, 0],
        (7, _) => [0; 4],
        (0x8000_0001, _) => {
            let common = E1_EDX_COMMON & LEAF1_EDX & !not_here::LEAF1_EDX;
            [
                a,
                b,
                c & E1_ECX & !not_here::E1_ECX,
                d & (E1_EDX & !not_here::E1_EDX | common),
            ]
        }
        // Power management: no invariant TSC or other bits (Xen's word 7
        // has none for HVM guests).
        (0x8000_0007, _) => [a, b, c, 0],
        (0x8000_0008, _) => [a, b & E8_EBX & !not_here::E8_EBX, c, d],
        (0x8000_0021, _) => [a & E21_EAX, b, c, d],
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [u32; 4] = [u32::MAX; 4];

    #[test]
    fn leaf1_hides_debug_store_monitor_vmx_and_thermal_bits() {
        let [_, _, c, d] = filter(1, 0, ALL);
        for (bit, what) in [(21, "DS"), (29, "TM"), (31, "PBE"), (18, "PSN")] {
            assert_eq!(d & (1 << bit), 0, "{what}");
        }
        for (bit, what) in [
            (2, "DTES64"),
            (3, "MONITOR"),
            (4, "DS-CPL"),
            (5, "VMX"),
            (6, "SMX"),
            (7, "EST"),
            (8, "TM2"),
            (15, "PDCM"),
            (24, "TSC_DEADLINE"),
        ] {
            assert_eq!(c & (1 << bit), 0, "{what}");
        }
        for (bit, what) in [(0, "SSE3"), (17, "PCID"), (21, "X2APIC"), (26, "XSAVE")] {
            assert_ne!(c & (1 << bit), 0, "{what}");
        }
        for (bit, what) in [(13, "PGE"), (1, "VME"), (25, "SSE"), (28, "HTT")] {
            assert_ne!(d & (1 << bit), 0, "{what}");
        }
    }

    #[test]
    fn a_bit_the_host_lacks_stays_clear() {
        assert_eq!(filter(1, 0, [0; 4]), [0; 4]);
        assert_eq!(filter(7, 0, [2, 0, 0, 0]), [2, 0, 0, 0]);
    }

    #[test]
    fn leaf7_keeps_the_allowed_words_and_drops_unemulated_msrs() {
        let [a, b, c, d] = filter(7, 0, ALL);
        assert_eq!(a, u32::MAX, "max subleaf");
        assert_ne!(b & (1 << 7), 0, "SMEP");
        assert_eq!(b & (1 << 14), 0, "MPX");
        assert_eq!(b & (1 << 1), 0, "TSC_ADJUST");
        assert_eq!(c & (1 << 16), 0, "LA57");
        assert_eq!(c & (1 << 7), 0, "CET_SS");
        assert_eq!(c & (1 << 3), 0, "PKU");
        assert_ne!(c & (1 << 2), 0, "UMIP");
        assert_eq!(d & (1 << 26), 0, "IBRSB");
        assert_ne!(d & (1 << 10), 0, "MD_CLEAR");
        assert_eq!(filter(7, 1, ALL), [0x1c30, 0, 0, 0]);
        assert_eq!(filter(7, 2, ALL), [0; 4]);
    }

    #[test]
    fn extended_leaves_keep_the_amd_common_bits_within_leaf1_policy() {
        let [_, _, c, d] = filter(0x8000_0001, 0, ALL);
        assert_eq!(c & (1 << 2), 0, "SVM");
        assert_eq!(c & (1 << 26), 0, "DBEXT");
        assert_ne!(c & (1 << 0), 0, "LAHF_LM");
        assert_eq!(d & (1 << 27), 0, "RDTSCP");
        assert_ne!(d & (1 << 29), 0, "LM");
        assert_ne!(d & 1, 0, "FPU (common)");
        assert_eq!(d & (1 << 12), 0, "MTRR (common, hidden in leaf 1)");
        assert_eq!(filter(0x8000_0007, 0, ALL)[3], 0);
        assert_eq!(filter(0x8000_0008, 0, ALL)[1] & (1 << 12), 0);
    }
}
