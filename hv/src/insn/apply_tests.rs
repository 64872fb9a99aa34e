//! `apply_load` and `store_value` against a plain register file, and
//! properties of `decode` over arbitrary bytes.

use super::*;

const M64: Mode = Mode::Bits64;
const M32: Mode = Mode::Bits32;
const M16: Mode = Mode::Bits16;
const RAX: Reg = Reg::Gpr(0);

struct Regs([u64; 16]);

impl RegFile for Regs {
    fn get(&self, index: u8) -> u64 {
        self.0[usize::from(index)]
    }
    fn set(&mut self, index: u8, value: u64) {
        self.0[usize::from(index)] = value;
    }
}

const OLD: u64 = 0x1122_3344_5566_7788;

fn after_load(dst: Reg, size: u8, dst_size: u8, extend: Extend, value: u64) -> u64 {
    let mut r = Regs([OLD; 16]);
    let l = Load {
        dst,
        size,
        dst_size,
        extend,
    };
    apply_load(&mut r, &l, value);
    r.0[usize::from(dst.index())]
}

#[test]
fn byte_load_keeps_the_upper_56_bits() {
    assert_eq!(
        after_load(RAX, 1, 1, Extend::None, 0xffff_ffff),
        0x1122_3344_5566_77ff
    );
}

#[test]
fn high_byte_load_writes_bits_15_to_8() {
    assert_eq!(
        after_load(Reg::HighByte(1), 1, 1, Extend::None, 0xab),
        0x1122_3344_5566_ab88
    );
}

#[test]
fn word_load_keeps_the_upper_48_bits() {
    assert_eq!(
        after_load(RAX, 2, 2, Extend::None, 0xbeef),
        0x1122_3344_5566_beef
    );
}

#[test]
fn dword_load_zero_extends() {
    assert_eq!(
        after_load(Reg::Gpr(9), 4, 4, Extend::None, 0xffff_ffff),
        0xffff_ffff
    );
}

#[test]
fn qword_load_replaces() {
    assert_eq!(after_load(RAX, 8, 8, Extend::None, u64::MAX), u64::MAX);
}

#[test]
fn movsx_byte_to_qword_sign_extends() {
    assert_eq!(after_load(RAX, 1, 8, Extend::Sign, 0xff), u64::MAX);
    assert_eq!(after_load(RAX, 1, 8, Extend::Sign, 0x7f), 0x7f);
}

#[test]
fn movsx_word_to_dword_clears_the_top_half() {
    assert_eq!(after_load(RAX, 2, 4, Extend::Sign, 0xffff), 0xffff_ffff);
}

#[test]
fn movsx_byte_to_word_keeps_the_upper_48_bits() {
    assert_eq!(
        after_load(RAX, 1, 2, Extend::Sign, 0x80),
        0x1122_3344_5566_ff80
    );
}

#[test]
fn movzx_ignores_bits_above_the_memory_size() {
    assert_eq!(after_load(RAX, 1, 8, Extend::Zero, 0xffff), 0xff);
    assert_eq!(after_load(RAX, 2, 4, Extend::Zero, 0xffff_ffff), 0xffff);
}

#[test]
fn movsxd_sign_extends_a_dword() {
    assert_eq!(
        after_load(RAX, 4, 8, Extend::Sign, 0x8000_0000),
        0xffff_ffff_8000_0000
    );
}

#[test]
fn store_value_of_a_high_byte_register() {
    let r = Regs([OLD; 16]);
    let s = Store {
        src: Src::Reg(Reg::HighByte(0)),
        size: 1,
    };
    assert_eq!(store_value(&r, &s), 0x77);
}

#[test]
fn store_value_is_masked_to_the_size() {
    let r = Regs([OLD; 16]);
    let s = Store {
        src: Src::Reg(Reg::Gpr(3)),
        size: 2,
    };
    assert_eq!(store_value(&r, &s), 0x7788);
    let s = Store {
        src: Src::Imm(0x1234_5678),
        size: 4,
    };
    assert_eq!(store_value(&r, &s), 0x1234_5678);
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_stays_within_15_bytes(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        mode in 0u8..3,
    ) {
        let mode = [M16, M32, M64][usize::from(mode)];
        if let Ok(insn) = decode(&bytes, mode) {
            proptest::prop_assert!(usize::from(insn.len) <= MAX_LEN);
            proptest::prop_assert!(usize::from(insn.len) <= bytes.len());
            if let Access::Load(l) = insn.access {
                proptest::prop_assert!(l.size <= l.dst_size);
            }
        }
    }

    #[test]
    fn prefixed_movs_decode_with_their_prefix_count(
        prefixes in proptest::collection::vec(
            proptest::sample::select(vec![0x66u8, 0x67, 0xf2, 0xf3, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65]),
            0..8,
        ),
    ) {
        let mut b = prefixes.clone();
        b.extend_from_slice(&[0x8b, 0x03]);
        let insn = decode(&b, M64).unwrap();
        proptest::prop_assert_eq!(usize::from(insn.len), prefixes.len() + 2);
    }
}
