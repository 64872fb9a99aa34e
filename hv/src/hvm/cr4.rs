//! Which CR4 values an HVM guest may load, for both backends: the bits its
//! CPUID offers (Xen's `hvm_cr4_guest_valid_bits`) and the SDM's checks of
//! MOV to CR4 (vol. 3 2.5, vol. 2 MOV-Move to/from Control Registers); and
//! the decoding of that instruction where SVM does not say which register
//! it read.

/// CR4 bits.
pub mod bit {
    pub const VME: u64 = 1 << 0;
    pub const PVI: u64 = 1 << 1;
    pub const TSD: u64 = 1 << 2;
    pub const DE: u64 = 1 << 3;
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const MCE: u64 = 1 << 6;
    pub const PGE: u64 = 1 << 7;
    pub const PCE: u64 = 1 << 8;
    pub const OSFXSR: u64 = 1 << 9;
    pub const OSXMMEXCPT: u64 = 1 << 10;
    pub const UMIP: u64 = 1 << 11;
    pub const FSGSBASE: u64 = 1 << 16;
    pub const PCIDE: u64 = 1 << 17;
    pub const OSXSAVE: u64 = 1 << 18;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
    pub const PKE: u64 = 1 << 22;
}

/// The CR4 bits a guest whose CPUID shows leaf 1 ECX/EDX `l1` and leaf 7.0
/// EBX/ECX `l7` may set. VMXE never (no nested virtualisation), CET never
/// (not offered); PCE always, as under Xen.
pub fn valid(l1: (u32, u32), l7: (u32, u32)) -> u64 {
    let ((c1, d1), (b7, c7)) = (l1, l7);
    let has = |word: u32, n: u32| word & (1 << n) != 0;
    let rules: [(bool, u64); 16] = [
        (has(d1, 1), bit::VME | bit::PVI),
        (has(d1, 4), bit::TSD),
        (has(d1, 2), bit::DE),
        (has(d1, 3), bit::PSE),
        (has(d1, 6), bit::PAE),
        (has(d1, 7) || has(d1, 14), bit::MCE),
        (has(d1, 13), bit::PGE),
        (true, bit::PCE),
        (has(d1, 24), bit::OSFXSR),
        (has(d1, 25), bit::OSXMMEXCPT),
        (has(c7, 2), bit::UMIP),
        (has(b7, 0), bit::FSGSBASE),
        (has(c1, 17), bit::PCIDE),
        (has(c1, 26), bit::OSXSAVE),
        (has(b7, 7), bit::SMEP),
        (has(b7, 20), bit::SMAP),
    ];
    let pke = if has(c7, 3) { bit::PKE } else { 0 };
    rules
        .iter()
        .filter(|(on, _)| *on)
        .fold(pke, |acc, (_, b)| acc | b)
}

/// Whether MOV to CR4 of `new` (over `old`) succeeds for a guest allowed
/// `valid` bits: no other bit set; in long mode (`long_mode`) PAE stays
/// set; PCIDE goes from 0 to 1 only in long mode with CR3[11:0] (`cr3`)
/// zero. Anything else is #GP.
pub fn write_ok(old: u64, new: u64, valid: u64, long_mode: bool, cr3: u64) -> bool {
    let pcide_on = new & !old & bit::PCIDE != 0;
    new & !valid == 0
        && !(long_mode && new & bit::PAE == 0)
        && !(pcide_on && (!long_mode || cr3 & 0xfff != 0))
}

/// Whether a change from `old` to `new` needs the guest's TLB flushed: a
/// paging-related bit changed (as when the CPU executes the write).
pub fn flushes_tlb(old: u64, new: u64) -> bool {
    let paging = bit::PSE | bit::PAE | bit::PGE | bit::PCIDE | bit::SMEP | bit::SMAP | bit::PKE;
    (old ^ new) & paging != 0
}

/// Decodes MOV to CR4 (`[REX] 0F 22 /r` with ModRM.reg = 4) at the start of
/// `bytes`: the source register (0 RAX .. 15 R15, REX.B extending ModRM.rm;
/// the mod bits are ignored, as the CPU does) and the instruction's length.
pub fn decode_mov_to_cr4(bytes: &[u8]) -> Option<(u8, u64)> {
    let (rex, rest) = match bytes.split_first()? {
        (&r, rest) if r & 0xf0 == 0x40 => (r, rest),
        _ => (0, bytes),
    };
    let [0x0f, 0x22, modrm, ..] = *rest else {
        return None;
    };
    if (modrm >> 3) & 7 != 4 || rex & 4 != 0 {
        return None;
    }
    let gpr = (modrm & 7) | ((rex & 1) << 3);
    Some((gpr, 3 + u64::from(rex != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bits_follow_the_guests_cpuid() {
        assert_eq!(valid((0, 0), (0, 0)), bit::PCE);
        let sse_pae = (1 << 6) | (1 << 24) | (1 << 25);
        assert_eq!(
            valid((0, sse_pae), (0, 0)),
            bit::PCE | bit::PAE | bit::OSFXSR | bit::OSXMMEXCPT
        );
        assert_eq!(valid((1 << 26, 0), (0, 0)) & bit::OSXSAVE, bit::OSXSAVE);
        assert_eq!(valid((0, 0), (1 << 7, 0)) & bit::SMEP, bit::SMEP);
        assert_eq!(valid((0, 0), (0, 1 << 3)) & bit::PKE, bit::PKE);
        let all = valid((u32::MAX, u32::MAX), (u32::MAX, u32::MAX));
        assert_eq!(all & (1 << 13), 0, "VMXE");
        assert_eq!(all & (1 << 23), 0, "CET");
        assert_eq!(all & (1 << 12), 0, "LA57");
    }

    #[test]
    fn reserved_and_unoffered_bits_and_clearing_pae_in_long_mode_fail() {
        let valid = bit::PAE | bit::PGE | bit::PCIDE | bit::OSFXSR;
        assert!(write_ok(0, bit::PAE | bit::PGE, valid, false, 0));
        assert!(!write_ok(0, bit::PAE | bit::SMEP, valid, false, 0));
        assert!(!write_ok(0, 1 << 13, valid, false, 0), "VMXE");
        assert!(!write_ok(0, 1 << 40, valid, false, 0));
        assert!(!write_ok(bit::PAE, bit::PGE, valid, true, 0));
        assert!(write_ok(bit::PAE, bit::PAE | bit::PGE, valid, true, 0));
    }

    #[test]
    fn pcide_turns_on_only_in_long_mode_with_pcid_zero() {
        let valid = bit::PAE | bit::PCIDE;
        let on = bit::PAE | bit::PCIDE;
        assert!(write_ok(bit::PAE, on, valid, true, 0x1000));
        assert!(!write_ok(bit::PAE, on, valid, true, 0x1001));
        assert!(!write_ok(bit::PAE, on, valid, false, 0));
        assert!(write_ok(on, on, valid, true, 0x1001), "already on");
    }

    #[test]
    fn paging_bits_flush_and_others_do_not() {
        assert!(flushes_tlb(0, bit::PGE));
        assert!(!flushes_tlb(0, bit::OSFXSR));
    }

    #[test]
    fn mov_to_cr4_decodes_the_source_register() {
        assert_eq!(decode_mov_to_cr4(&[0x0f, 0x22, 0xe0]), Some((0, 3)));
        assert_eq!(decode_mov_to_cr4(&[0x0f, 0x22, 0xe3, 0x90]), Some((3, 3)));
        assert_eq!(decode_mov_to_cr4(&[0x41, 0x0f, 0x22, 0xe7]), Some((15, 4)));
        // mod bits other than 11 still name a register.
        assert_eq!(decode_mov_to_cr4(&[0x0f, 0x22, 0x21]), Some((1, 3)));
        assert_eq!(decode_mov_to_cr4(&[0x0f, 0x22, 0xc0]), None, "CR0");
        assert_eq!(decode_mov_to_cr4(&[0x44, 0x0f, 0x22, 0xe0]), None, "CR12");
        assert_eq!(decode_mov_to_cr4(&[0x0f, 0x20, 0xe0]), None, "MOV from");
        assert_eq!(decode_mov_to_cr4(&[0x0f]), None);
    }
}
