//! Extended processor state (Intel SDM vol. 1 ch. 13, AMD64 APM vol. 2
//! 11.5): the XCR0 components the hypervisor switches for guests, the
//! rules XSETBV enforces, XSAVE area sizes from CPUID leaf 0xD, and the
//! CPUID feature bits that depend on them.

/// XCR0 state components.
pub const X87: u64 = 1 << 0;
pub const SSE: u64 = 1 << 1;
pub const AVX: u64 = 1 << 2;
pub const OPMASK: u64 = 1 << 5;
pub const ZMM_HI256: u64 = 1 << 6;
pub const HI16_ZMM: u64 = 1 << 7;
/// The three AVX-512 components, which XCR0 enables together or not at all.
pub const AVX512: u64 = OPMASK | ZMM_HI256 | HI16_ZMM;
/// The components this hypervisor switches with XSAVE/XRSTOR and may
/// offer a guest (no MPX, PKRU, AMX or supervisor state).
pub const MANAGED: u64 = X87 | SSE | AVX | AVX512;

/// Size of the legacy region plus the XSAVE header.
pub const LEGACY_AND_HEADER: u32 = 512 + 64;
/// Offset of XSTATE_BV in an XSAVE area.
pub const XSTATE_BV_OFFSET: usize = 512;
/// Offset of MXCSR in the legacy region.
pub const MXCSR_OFFSET: usize = 24;
/// MXCSR after reset: all exceptions masked.
pub const MXCSR_DEFAULT: u32 = 0x1f80;

/// The XCR0 bits a guest may set: the host's supported components
/// (CPUID.(EAX=0Dh,ECX=0):EDX:EAX) that this hypervisor manages, with AVX
/// only alongside SSE and AVX-512 only complete and alongside AVX.
pub fn allowed_xcr0(supported: u64) -> u64 {
    let mut a = supported & MANAGED;
    if a & (X87 | SSE) != X87 | SSE {
        return a & X87;
    }
    if a & AVX == 0 || a & AVX512 != AVX512 {
        a &= !AVX512;
    }
    a
}

/// Whether `value` is a valid XCR0 for a guest allowed `allowed`: x87 set,
/// no bit outside `allowed`, AVX only with SSE, the AVX-512 bits all or
/// none and only with AVX.
pub fn xcr0_valid(value: u64, allowed: u64) -> bool {
    value & X87 != 0
        && value & !allowed == 0
        && (value & AVX == 0 || value & SSE != 0)
        && (value & AVX512 == 0 || (value & AVX512 == AVX512 && value & AVX != 0))
}

/// What XSETBV raises when the write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsetbvFault {
    /// CR4.OSXSAVE is clear: #UD.
    InvalidOpcode,
    /// CPL > 0, ECX names no XCR, or the value is invalid: #GP(0).
    GeneralProtection,
}

impl XsetbvFault {
    /// The exception vector and error code to inject.
    pub fn exception(self) -> (u8, Option<u32>) {
        match self {
            Self::InvalidOpcode => (6, None),
            Self::GeneralProtection => (13, Some(0)),
        }
    }
}

/// Checks a guest XSETBV (ECX = `ecx`, EDX:EAX = `value`) executed at
/// `cpl` with CR4.OSXSAVE = `osxsave`; the new XCR0 on success.
pub fn check_xsetbv(
    osxsave: bool,
    cpl: u8,
    ecx: u32,
    value: u64,
    allowed: u64,
) -> Result<u64, XsetbvFault> {
    if !osxsave {
        return Err(XsetbvFault::InvalidOpcode);
    }
    if cpl != 0 || ecx != 0 || !xcr0_valid(value, allowed) {
        return Err(XsetbvFault::GeneralProtection);
    }
    Ok(value)
}

/// The XCR0 the CPU holds while the guest runs: the guest's, with SSE
/// always on so that XSAVE switches the XMM registers and MXCSR even for a
/// guest that has not enabled (or has disabled) the SSE component. A guest
/// that sets x87 alone reads x87|SSE back with XGETBV.
pub fn hardware_xcr0(guest: u64) -> u64 {
    guest | SSE
}

/// The guest's XCR0 after a run in which the CPU held `hw` (read back on
/// exit) while `loaded` = [`hardware_xcr0`] of `guest` was loaded: `guest`
/// unless the guest changed XCR0 without an exit (a CPU that does not
/// honour the XSETBV intercept, such as QEMU's TCG under SVM), in which
/// case the CPU has checked the value and it is the guest's.
pub fn xcr0_after_exit(guest: u64, hw: u64) -> u64 {
    if hw == hardware_xcr0(guest) {
        guest
    } else {
        hw
    }
}

/// XSTATE_BV of a saved guest area once XCR0 becomes `hw`: components
/// left out of XCR0 are marked as in their initial configuration, since
/// XRSTOR refuses an area whose XSTATE_BV names a component XCR0 does not
/// enable.
pub fn xstate_bv_for(bv: u64, hw: u64) -> u64 {
    bv & hw
}

/// One state component as CPUID.(EAX=0Dh,ECX=i) describes it: its size
/// (EAX) and its offset in the standard format (EBX).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Component {
    pub size: u32,
    pub offset: u32,
}

/// The size of a standard-format XSAVE area holding the components of
/// `xcr0`, from `component(i)` = CPUID.(EAX=0Dh,ECX=i) for i >= 2.
pub fn xsave_size(xcr0: u64, component: impl Fn(u32) -> Component) -> u32 {
    (2..63)
        .filter(|i| xcr0 & (1 << i) != 0)
        .map(|i| {
            let c = component(i);
            c.offset.saturating_add(c.size)
        })
        .fold(LEGACY_AND_HEADER, u32::max)
}

/// CPUID leaf 1 ECX bits that depend on XSAVE.
pub mod leaf1 {
    pub const FMA: u32 = 1 << 12;
    pub const XSAVE: u32 = 1 << 26;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const AVX: u32 = 1 << 28;
    pub const F16C: u32 = 1 << 29;
}

/// Leaf 1 ECX for a guest allowed `allowed` (0 without XSAVE), whose
/// CR4.OSXSAVE is `osxsave`.
pub fn leaf1_ecx(host: u32, allowed: u64, osxsave: bool) -> u32 {
    let avx_bits = leaf1::FMA | leaf1::AVX | leaf1::F16C;
    let mut c = host & !(leaf1::XSAVE | leaf1::OSXSAVE | avx_bits);
    if allowed & X87 != 0 && host & leaf1::XSAVE != 0 {
        c |= leaf1::XSAVE;
        if osxsave {
            c |= leaf1::OSXSAVE;
        }
        if allowed & AVX != 0 {
            c |= host & avx_bits;
        }
    }
    c
}

/// CPUID leaf 7 subleaf 0 bits of AVX2 and the AVX-512 family.
pub mod leaf7 {
    pub const EBX_AVX2: u32 = 1 << 5;
    /// F, DQ, IFMA, PF, ER, CD, BW, VL.
    pub const EBX_AVX512: u32 = (1 << 16)
        | (1 << 17)
        | (1 << 21)
        | (1 << 26)
        | (1 << 27)
        | (1 << 28)
        | (1 << 30)
        | (1 << 31);
    /// VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ.
    pub const ECX_AVX512: u32 = (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14);
    /// 4VNNIW, 4FMAPS, VP2INTERSECT, FP16.
    pub const EDX_AVX512: u32 = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23);
    /// Subleaf 1 EAX: AVX-VNNI (4), AVX512_BF16 (5).
    pub const SUB1_EAX_AVX_VNNI: u32 = 1 << 4;
    pub const SUB1_EAX_AVX512_BF16: u32 = 1 << 5;
}

/// Leaf 7 subleaf 0 EBX, ECX, EDX with AVX2 and AVX-512 shown only as far
/// as `allowed` lets the guest enable their state.
pub fn leaf7_0(host: (u32, u32, u32), allowed: u64) -> (u32, u32, u32) {
    let (mut b, mut c, mut d) = host;
    if allowed & AVX == 0 {
        b &= !leaf7::EBX_AVX2;
    }
    if allowed & AVX512 != AVX512 {
        b &= !leaf7::EBX_AVX512;
        c &= !leaf7::ECX_AVX512;
        d &= !leaf7::EDX_AVX512;
    }
    (b, c, d)
}

/// Leaf 7 subleaf 1 EAX, likewise.
pub fn leaf7_1_eax(host: u32, allowed: u64) -> u32 {
    let mut a = host;
    if allowed & AVX == 0 {
        a &= !leaf7::SUB1_EAX_AVX_VNNI;
    }
    if allowed & AVX512 != AVX512 {
        a &= !leaf7::SUB1_EAX_AVX512_BF16;
    }
    a
}

/// Leaf 0xD subleaf 1 EAX bits passed to the guest: XSAVEOPT (0), XSAVEC
/// (1) and XGETBV with ECX=1 (2) need nothing of the hypervisor; XSAVES
/// (3, supervisor state) and XFD (4) are hidden.
pub const LEAF_D1_EAX_SHOWN: u32 = 0b111;

/// The size of a compacted-format XSAVE area (XSAVEC) holding the
/// components of `xcr0`: the legacy area and header, then each component
/// in order, aligned to 64 bytes where its CPUID.(0Dh,i).ECX bit 1 says so;
/// `host(i)` = [EAX (size), EBX, ECX, EDX].
pub fn compacted_size(xcr0: u64, host: impl Fn(u32) -> [u32; 4]) -> u32 {
    (2..63)
        .filter(|i| xcr0 & (1 << i) != 0)
        .fold(LEGACY_AND_HEADER, |at, i| {
            let r = host(i);
            let at = if r[2] & 2 != 0 {
                at.next_multiple_of(64)
            } else {
                at
            };
            at.saturating_add(r[0])
        })
}

/// CPUID leaf 0xD subleaf `sub` for a guest allowed `allowed` whose XCR0 is
/// `guest_xcr0`, from the host's `host(sub)` = [EAX, EBX, ECX, EDX].
/// Subleaf 0: the allowed components, the area size for the current XCR0
/// and for all allowed components. Subleaf 1: XSAVES and friends hidden,
/// EBX the compacted size for the current XCR0 (no supervisor state: XSS
/// is 0), which a guest using XSAVEC sizes its areas by.
/// Subleaves 2..63: the host's description of allowed components, zeros
/// for the others.
pub fn leaf_d(sub: u32, guest_xcr0: u64, allowed: u64, host: impl Fn(u32) -> [u32; 4]) -> [u32; 4] {
    if allowed == 0 {
        return [0; 4];
    }
    let component = |i: u32| {
        let r = host(i);
        Component {
            size: r[0],
            offset: r[1],
        }
    };
    match sub {
        0 => [
            allowed as u32,
            xsave_size(guest_xcr0 & allowed, component),
            xsave_size(allowed, component),
            (allowed >> 32) as u32,
        ],
        1 => [
            host(1)[0] & LEAF_D1_EAX_SHOWN,
            compacted_size(guest_xcr0 & allowed, &host),
            0,
            0,
        ],
        2..=62 if allowed & (1 << sub) != 0 => host(sub),
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Skylake-X-like layout: AVX at 576 (256 bytes), opmask at 1088
    /// (64), ZMM_Hi256 at 1152 (512), Hi16_ZMM at 1664 (1024); MPX and
    /// PKRU (not managed) at their usual places.
    fn skylake(i: u32) -> [u32; 4] {
        match i {
            1 => [0xf, 0, 0, 0],
            2 => [256, 576, 0, 0],
            3 => [64, 960, 0, 0],
            4 => [64, 1024, 0, 0],
            5 => [64, 1088, 0, 0],
            6 => [512, 1152, 0, 0],
            7 => [1024, 1664, 0, 0],
            9 => [8, 2688, 0, 0],
            _ => [0; 4],
        }
    }

    #[test]
    fn subleaf_1_gives_the_compacted_size_of_the_current_xcr0() {
        // x87, SSE, AVX: 576 + 256.
        assert_eq!(leaf_d(1, 0x7, 0xe7, skylake)[1], 832);
        // With the AVX-512 state: opmask, ZMM_Hi256, Hi16_ZMM packed.
        assert_eq!(
            leaf_d(1, 0xe7, 0xe7, skylake)[1],
            576 + 256 + 64 + 512 + 1024
        );
        // Only what is allowed counts.
        assert_eq!(leaf_d(1, 0xe7, 0x7, skylake)[1], 832);
    }

    #[test]
    fn compacted_components_that_ask_for_it_start_on_64_bytes() {
        let aligned = |i: u32| match i {
            2 => [200, 576, 0, 0],
            5 => [64, 0, 2, 0],
            _ => [0; 4],
        };
        assert_eq!(compacted_size((1 << 2) | (1 << 5) | 3, aligned), 832 + 64);
    }

    fn component(i: u32) -> Component {
        let r = skylake(i);
        Component {
            size: r[0],
            offset: r[1],
        }
    }

    const ALL_SKX: u64 = 0x2ff;

    #[test]
    fn allowed_keeps_x87_sse_avx_and_complete_avx512_only() {
        assert_eq!(allowed_xcr0(ALL_SKX), X87 | SSE | AVX | AVX512);
        assert_eq!(allowed_xcr0(0x7), X87 | SSE | AVX);
    }

    #[test]
    fn allowed_drops_partial_avx512_and_avx512_without_avx() {
        assert_eq!(allowed_xcr0(X87 | SSE | AVX | OPMASK), X87 | SSE | AVX);
        assert_eq!(allowed_xcr0(X87 | SSE | AVX512), X87 | SSE);
    }

    #[test]
    fn xsetbv_x87_sse_avx_is_accepted() {
        assert_eq!(check_xsetbv(true, 0, 0, 7, 7), Ok(7));
    }

    #[test]
    fn xsetbv_without_x87_is_gp() {
        assert_eq!(
            check_xsetbv(true, 0, 0, SSE | AVX, 7),
            Err(XsetbvFault::GeneralProtection)
        );
    }

    #[test]
    fn xsetbv_avx_without_sse_is_gp() {
        assert_eq!(
            check_xsetbv(true, 0, 0, X87 | AVX, 7),
            Err(XsetbvFault::GeneralProtection)
        );
    }

    #[test]
    fn xsetbv_with_ecx_other_than_0_is_gp() {
        assert_eq!(
            check_xsetbv(true, 0, 1, 3, 7),
            Err(XsetbvFault::GeneralProtection)
        );
    }

    #[test]
    fn xsetbv_of_a_bit_not_allowed_is_gp() {
        assert_eq!(
            check_xsetbv(true, 0, 0, 3 | (1 << 9), allowed_xcr0(ALL_SKX)),
            Err(XsetbvFault::GeneralProtection)
        );
        assert_eq!(
            check_xsetbv(true, 0, 0, 7, 3),
            Err(XsetbvFault::GeneralProtection)
        );
    }

    #[test]
    fn xsetbv_avx512_needs_all_three_bits_and_avx() {
        let allowed = MANAGED;
        assert_eq!(check_xsetbv(true, 0, 0, 7 | AVX512, allowed), Ok(0xe7));
        assert!(check_xsetbv(true, 0, 0, 7 | OPMASK, allowed).is_err());
        assert!(check_xsetbv(true, 0, 0, 3 | AVX512, allowed).is_err());
    }

    #[test]
    fn xsetbv_outside_ring_0_is_gp_and_without_osxsave_is_ud() {
        assert_eq!(
            check_xsetbv(true, 3, 0, 7, 7),
            Err(XsetbvFault::GeneralProtection)
        );
        assert_eq!(
            check_xsetbv(false, 0, 0, 7, 7),
            Err(XsetbvFault::InvalidOpcode)
        );
    }

    #[test]
    fn x87_only_is_valid_and_runs_with_sse_in_hardware() {
        assert_eq!(check_xsetbv(true, 0, 0, X87, 7), Ok(X87));
        assert_eq!(hardware_xcr0(X87), X87 | SSE);
        assert_eq!(hardware_xcr0(7), 7);
    }

    #[test]
    fn xcr0_after_an_exit_without_a_change_is_the_guests() {
        assert_eq!(xcr0_after_exit(X87, X87 | SSE), X87);
        assert_eq!(xcr0_after_exit(7, 7), 7);
    }

    #[test]
    fn xcr0_changed_by_an_unintercepted_xsetbv_is_taken_from_the_cpu() {
        assert_eq!(xcr0_after_exit(X87, 7), 7);
        assert_eq!(xcr0_after_exit(7, X87 | SSE), X87 | SSE);
    }

    #[test]
    fn xstate_bv_drops_components_xcr0_no_longer_enables() {
        assert_eq!(xstate_bv_for(7, 3), 3);
        assert_eq!(xstate_bv_for(0xe7, 7), 7);
        assert_eq!(xstate_bv_for(1, 7), 1);
    }

    #[test]
    fn size_of_x87_sse_is_the_legacy_region_and_header() {
        assert_eq!(xsave_size(3, component), 576);
    }

    #[test]
    fn size_with_avx_ends_after_the_ymm_upper_halves() {
        assert_eq!(xsave_size(7, component), 832);
    }

    #[test]
    fn size_with_avx512_ends_after_hi16_zmm() {
        assert_eq!(xsave_size(0xe7, component), 2688);
    }

    #[test]
    fn leaf_d_subleaf_0_reports_allowed_bits_current_and_max_sizes() {
        let allowed = allowed_xcr0(ALL_SKX);
        assert_eq!(leaf_d(0, 7, allowed, skylake), [0xe7, 832, 2688, 0]);
        assert_eq!(leaf_d(0, 1, allowed, skylake), [0xe7, 576, 2688, 0]);
    }

    #[test]
    fn leaf_d_subleaf_1_hides_xsaves() {
        assert_eq!(leaf_d(1, 7, 7, skylake), [0x7, 832, 0, 0]);
    }

    #[test]
    fn leaf_d_describes_allowed_components_only() {
        assert_eq!(leaf_d(2, 7, 7, skylake), [256, 576, 0, 0]);
        assert_eq!(leaf_d(3, 7, 7, skylake), [0; 4]); // MPX
        assert_eq!(leaf_d(5, 7, 7, skylake), [0; 4]); // AVX-512 not allowed
        assert_eq!(leaf_d(9, 7, MANAGED, skylake), [0; 4]); // PKRU
        assert_eq!(leaf_d(63, 7, MANAGED, skylake), [0; 4]);
    }

    #[test]
    fn leaf_d_is_empty_without_xsave() {
        assert_eq!(leaf_d(0, 0, 0, skylake), [0; 4]);
    }

    #[test]
    fn leaf1_shows_xsave_osxsave_from_the_guest_cr4_and_avx() {
        let host = leaf1::XSAVE | leaf1::OSXSAVE | leaf1::AVX | leaf1::FMA | 1;
        assert_eq!(
            leaf1_ecx(host, 7, false),
            leaf1::XSAVE | leaf1::AVX | leaf1::FMA | 1
        );
        assert_eq!(
            leaf1_ecx(host, 7, true),
            leaf1::XSAVE | leaf1::OSXSAVE | leaf1::AVX | leaf1::FMA | 1
        );
    }

    #[test]
    fn leaf1_hides_avx_when_not_allowed_and_everything_without_xsave() {
        let host = leaf1::XSAVE | leaf1::OSXSAVE | leaf1::AVX | leaf1::F16C;
        assert_eq!(leaf1_ecx(host, 3, true), leaf1::XSAVE | leaf1::OSXSAVE);
        assert_eq!(leaf1_ecx(host, 0, true), 0);
    }

    #[test]
    fn leaf7_shows_avx2_with_avx_and_avx512_only_when_complete() {
        let host = (
            leaf7::EBX_AVX2 | leaf7::EBX_AVX512 | 1,
            leaf7::ECX_AVX512 | 4,
            leaf7::EDX_AVX512,
        );
        assert_eq!(leaf7_0(host, MANAGED), host);
        assert_eq!(leaf7_0(host, 7), (leaf7::EBX_AVX2 | 1, 4, 0));
        assert_eq!(leaf7_0(host, 3), (1, 4, 0));
        assert_eq!(leaf7_1_eax(0x30, 7), 0x10);
        assert_eq!(leaf7_1_eax(0x30, 3), 0);
    }
}
