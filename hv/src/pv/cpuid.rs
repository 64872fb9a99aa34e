//! The CPUID features a 64-bit PV guest may see.
//!
//! Xen's public `arch-x86/cpufeatureset.h` marks each feature with the
//! guests it applies to: 'A' all guests, 'S' HVM guests only, 'H' HVM
//! guests with hardware paging only. A PV guest gets only the 'A' ones
//! (`calculate_pv_max_policy`): no PSE, PSE36, PGE, MTRR, VME, PCID,
//! INVPCID, 1 GiB pages, VMX, SVM or x2APIC. The masks below are those 'A'
//! bits per CPUID word, taken from that header; on top, features the
//! container cannot give a guest in ring 3 are taken out: FSGSBASE (the
//! container's CR4.FSGSBASE stays clear), RDTSCP and RDPID (TSC_AUX is not
//! switched), the machine-check architecture (its MSRs are not emulated),
//! HTT (one vCPU). OSXSAVE is set by the caller from the container's CR4,
//! as Xen sets it for PV guests. The caller applies this to the HVM
//! policy's registers (`hv::hvm::cpuid`), so what no guest gets there (the
//! speculation-control MSRs' bits, PKU, TSC_ADJUST, ...) a PV guest does
//! not get either.

/// Leaf 1 EDX: FPU DE TSC MSR PAE MCE CX8 APIC SEP MCA CMOV PAT CLFLUSH
/// ACPI MMX FXSR SSE SSE2 SS HTT (the 'A' bits).
pub const LEAF1_EDX_A: u32 = 0x1fc9_cbf5;
/// Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 FMA CX16 SSE4_1 SSE4_2 MOVBE POPCNT
/// AESNI XSAVE AVX F16C RDRAND HYPERVISOR.
pub const LEAF1_ECX_A: u32 = 0xf6d8_3203;
/// Leaf 0x80000001 EDX: SYSCALL NX MMXEXT FFXSR RDTSCP LM 3DNOWEXT 3DNOW.
pub const E1_EDX_A: u32 = 0xea50_0800;
/// Leaf 0x80000001 ECX: LAHF_LM CMP_LEGACY ABM SSE4A MISALIGNSSE
/// 3DNOWPREFETCH XOP FMA4 TBM DBEXT ADDR_MSK_EXT.
pub const E1_ECX_A: u32 = 0x4421_09e3;
/// Leaf 7.0 EBX: FSGSBASE BMI1 AVX2 BMI2 ERMS RTM AVX512F AVX512DQ RDSEED
/// ADX AVX512_IFMA CLFLUSHOPT CLWB AVX512CD SHA AVX512BW AVX512VL.
pub const L7_EBX_A: u32 = 0xf1af_0b29;
/// Leaf 7.0 ECX: PREFETCHWT1 AVX512_VBMI AVX512_VBMI2 GFNI VAES
/// VPCLMULQDQ AVX512_VNNI AVX512_BITALG AVX512_VPOPCNTDQ RDPID CLDEMOTE.
pub const L7_ECX_A: u32 = 0x0240_5f43;
/// Leaf 7.0 EDX: FSRM MD_CLEAR SERIALIZE AVX512_FP16 IBRSB STIBP
/// ARCH_CAPS SSBD.
pub const L7_EDX_A: u32 = 0xac80_4410;

/// What the container takes out on top of Xen's policy.
mod not_here {
    /// Leaf 1 EDX: MCE (7), MCA (14), HTT (28).
    pub const LEAF1_EDX: u32 = (1 << 7) | (1 << 14) | (1 << 28);
    /// Leaf 0x80000001 EDX: RDTSCP (27).
    pub const E1_EDX: u32 = 1 << 27;
    /// Leaf 7.0 EBX: FSGSBASE (0).
    pub const L7_EBX: u32 = 1;
    /// Leaf 7.0 ECX: RDPID (22).
    pub const L7_ECX: u32 = 1 << 22;
    /// Leaf 7.0 EDX: ARCH_CAPS (29): its MSR is not emulated.
    pub const L7_EDX: u32 = 1 << 29;
}

/// Leaf 1 ECX bit 27.
pub const OSXSAVE: u32 = 1 << 27;

/// The PV view of `(leaf, subleaf)` whose registers `r` (EAX, EBX, ECX,
/// EDX) are what an HVM guest would see; `osxsave` is the container's
/// CR4.OSXSAVE.
pub fn filter(leaf: u32, sub: u32, r: [u32; 4], osxsave: bool) -> [u32; 4] {
    let [a, b, c, d] = r;
    match (leaf, sub) {
        (1, _) => {
            let mut c = c & LEAF1_ECX_A & !OSXSAVE;
            if osxsave && c & (1 << 26) != 0 {
                c |= OSXSAVE;
            }
            // One logical processor per package.
            let b = (b & !0x00ff_0000) | (1 << 16);
            [a, b, c, d & LEAF1_EDX_A & !not_here::LEAF1_EDX]
        }
        (7, 0) => [
            a,
            b & L7_EBX_A & !not_here::L7_EBX,
            c & L7_ECX_A & !not_here::L7_ECX,
            d & L7_EDX_A & !not_here::L7_EDX,
        ],
        (0x8000_0001, _) => [a, b, c & E1_ECX_A, d & E1_EDX_A & !not_here::E1_EDX],
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_features_a_pv_guest_cannot_use_are_hidden() {
        let all = [u32::MAX; 4];
        let [_, _, c, d] = filter(1, 0, all, true);
        for (bit, what) in [
            (3, "PSE"),
            (13, "PGE"),
            (12, "MTRR"),
            (17, "PSE36"),
            (1, "VME"),
        ] {
            assert_eq!(d & (1 << bit), 0, "{what}");
        }
        for (bit, what) in [(5, "VMX"), (17, "PCID"), (21, "X2APIC"), (3, "MONITOR")] {
            assert_eq!(c & (1 << bit), 0, "{what}");
        }
        let [_, _, _, d] = filter(0x8000_0001, 0, all, true);
        assert_eq!(d & (1 << 26), 0, "1 GiB pages");
        assert_ne!(d & (1 << 20), 0, "NX");
        assert_ne!(d & (1 << 29), 0, "LM");
        let [_, _, c, _] = filter(0x8000_0001, 0, all, true);
        assert_eq!(c & (1 << 2), 0, "SVM");
    }

    #[test]
    fn osxsave_follows_the_container_and_needs_xsave() {
        let r = [0, 0, (1 << 26) | OSXSAVE, 0];
        assert_ne!(filter(1, 0, r, true)[2] & OSXSAVE, 0);
        assert_eq!(filter(1, 0, r, false)[2] & OSXSAVE, 0);
        assert_eq!(filter(1, 0, [0, 0, OSXSAVE, 0], true)[2] & OSXSAVE, 0);
    }

    #[test]
    fn what_the_container_cannot_give_is_hidden_too() {
        let all = [u32::MAX; 4];
        assert_eq!(filter(7, 0, all, true)[1] & 1, 0, "FSGSBASE");
        assert_eq!(filter(7, 0, all, true)[2] & (1 << 22), 0, "RDPID");
        assert_eq!(
            filter(0x8000_0001, 0, all, true)[3] & (1 << 27),
            0,
            "RDTSCP"
        );
        assert_eq!(filter(1, 0, all, true)[3] & (1 << 7), 0, "MCE");
        assert_ne!(filter(7, 0, all, true)[1] & (1 << 5), 0, "AVX2 stays");
    }

    #[test]
    fn other_leaves_pass_through() {
        assert_eq!(filter(0xd, 0, [1, 2, 3, 4], true), [1, 2, 3, 4]);
    }
}
