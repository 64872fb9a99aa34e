//! Byte sequences assembled by hand from the SDM vol. 2 opcode tables
//! (appendix A) and the ModRM/SIB tables (2-1, 2-2, 2-3).

use super::*;

const M64: Mode = Mode::Bits64;
const M32: Mode = Mode::Bits32;
const M16: Mode = Mode::Bits16;

fn load(dst: Reg, size: u8, dst_size: u8, extend: Extend) -> Access {
    Access::Load(Load {
        dst,
        size,
        dst_size,
        extend,
    })
}

fn mov_load(dst: Reg, size: u8) -> Access {
    load(dst, size, size, Extend::None)
}

fn store_reg(src: Reg, size: u8) -> Access {
    Access::Store(Store {
        src: Src::Reg(src),
        size,
    })
}

fn store_imm(imm: u64, size: u8) -> Access {
    Access::Store(Store {
        src: Src::Imm(imm),
        size,
    })
}

fn mem(base: Option<u8>, index: Option<u8>, scale: u8, disp: i64, addr_size: u8) -> MemOperand {
    MemOperand {
        base,
        index,
        scale,
        disp,
        rip_relative: false,
        seg: None,
        addr_size,
    }
}

/// Decodes and checks length and access.
fn check(bytes: &[u8], mode: Mode, len: u8, access: Access) -> Insn {
    let insn = decode(bytes, mode).unwrap();
    assert_eq!(insn.len, len, "length of {bytes:02x?}");
    assert_eq!(insn.access, access, "access of {bytes:02x?}");
    insn
}

const RAX: Reg = Reg::Gpr(0);

// --- MOV 8A/8B/88/89 and operand sizes ---

#[test]
fn mov_eax_from_rbx_pointer() {
    let i = check(&[0x8b, 0x03], M64, 2, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(3), None, 1, 0, 8));
}

#[test]
fn rex_w_makes_mov_64_bit() {
    check(&[0x48, 0x8b, 0x03], M64, 3, mov_load(RAX, 8));
}

#[test]
fn operand_size_prefix_makes_mov_16_bit() {
    check(&[0x66, 0x8b, 0x03], M64, 3, mov_load(RAX, 2));
}

#[test]
fn rex_w_wins_over_operand_size_prefix() {
    check(&[0x66, 0x48, 0x8b, 0x03], M64, 4, mov_load(RAX, 8));
}

#[test]
fn legacy_prefix_after_rex_cancels_the_rex() {
    check(&[0x48, 0x66, 0x8b, 0x03], M64, 4, mov_load(RAX, 2));
}

#[test]
fn mov_al_byte_load() {
    check(&[0x8a, 0x03], M64, 2, mov_load(RAX, 1));
}

#[test]
fn byte_reg_4_without_rex_is_ah() {
    check(&[0x8a, 0x23], M64, 2, mov_load(Reg::HighByte(0), 1));
}

#[test]
fn byte_reg_4_with_empty_rex_is_spl() {
    check(&[0x40, 0x8a, 0x23], M64, 3, mov_load(Reg::Gpr(4), 1));
}

#[test]
fn byte_reg_with_rex_r_is_r12b() {
    check(&[0x44, 0x8a, 0x23], M64, 3, mov_load(Reg::Gpr(12), 1));
}

#[test]
fn byte_store_from_bh_without_rex() {
    let i = check(&[0x88, 0x3e], M64, 2, store_reg(Reg::HighByte(3), 1));
    assert_eq!(i.mem.base, Some(6));
}

#[test]
fn byte_store_from_dil_with_rex() {
    check(&[0x40, 0x88, 0x3e], M64, 3, store_reg(Reg::Gpr(7), 1));
}

#[test]
fn byte_regs_in_32_bit_mode_are_high_bytes() {
    check(&[0x8a, 0x2b], M32, 2, mov_load(Reg::HighByte(1), 1));
}

#[test]
fn mov_store_dword_sib_rsp_base_disp8() {
    // mov [rsp+8], eax: ModRM 01 000 100, SIB 00 100 100 (no index).
    let i = check(&[0x89, 0x44, 0x24, 0x08], M64, 4, store_reg(RAX, 4));
    assert_eq!(i.mem, mem(Some(4), None, 1, 8, 8));
}

#[test]
fn sib_scaled_index_with_disp32() {
    // mov eax, [rsi+rcx*4+0x12345678]: ModRM 10 000 100, SIB 10 001 110.
    let b = [0x8b, 0x84, 0x8e, 0x78, 0x56, 0x34, 0x12];
    let i = check(&b, M64, 7, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(6), Some(1), 4, 0x1234_5678, 8));
}

#[test]
fn sib_without_base_takes_disp32() {
    // mov eax, [0xfeb00000]: SIB 00 100 101 with mod 00.
    let b = [0x8b, 0x04, 0x25, 0x00, 0x00, 0xb0, 0xfe];
    let i = check(&b, M64, 7, mov_load(RAX, 4));
    assert_eq!(
        i.mem,
        mem(None, None, 1, i64::from(0xfeb0_0000u32 as i32), 8)
    );
}

#[test]
fn sib_negative_disp8_is_sign_extended() {
    // mov eax, [rbx+rdx*2-4]: ModRM 01 000 100, SIB 01 010 011.
    let i = check(&[0x8b, 0x44, 0x53, 0xfc], M64, 4, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(3), Some(2), 2, -4, 8));
}

#[test]
fn rex_x_and_b_extend_sib_index_and_base() {
    // mov rax, [r12+r12*8]: REX.WXB, SIB 11 100 100.
    let i = check(&[0x4b, 0x8b, 0x04, 0xe4], M64, 4, mov_load(RAX, 8));
    assert_eq!(i.mem, mem(Some(12), Some(12), 8, 0, 8));
}

#[test]
fn rex_x_index_without_base() {
    // mov eax, [r12*1+0x1000]: REX.X, SIB 00 100 101.
    let b = [0x42, 0x8b, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00];
    let i = check(&b, M64, 8, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(None, Some(12), 1, 0x1000, 8));
}

#[test]
fn r12_base_still_needs_a_sib() {
    let i = check(&[0x41, 0x8b, 0x04, 0x24], M64, 4, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(12), None, 1, 0, 8));
}

#[test]
fn r13_base_needs_mod_01_disp8() {
    let i = check(&[0x41, 0x8b, 0x45, 0x00], M64, 4, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(13), None, 1, 0, 8));
}

#[test]
fn rip_relative_disp32() {
    let b = [0x8b, 0x05, 0x10, 0x00, 0x00, 0x00];
    let i = check(&b, M64, 6, mov_load(RAX, 4));
    assert!(i.mem.rip_relative);
    assert_eq!((i.mem.base, i.mem.disp), (None, 0x10));
}

#[test]
fn rip_relative_is_not_changed_by_rex_b() {
    let b = [0x41, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff];
    let i = check(&b, M64, 7, mov_load(RAX, 4));
    assert!(i.mem.rip_relative);
    assert_eq!(i.mem.disp, -16);
}

#[test]
fn mod_00_rm_101_is_absolute_in_32_bit_mode() {
    let b = [0x8b, 0x05, 0x00, 0x00, 0xb0, 0xfe];
    let i = check(&b, M32, 6, mov_load(RAX, 4));
    assert!(!i.mem.rip_relative);
    assert_eq!(
        i.mem,
        mem(None, None, 1, i64::from(0xfeb0_0000u32 as i32), 4)
    );
}

#[test]
fn rex_r_names_r9_as_load_destination() {
    check(&[0x44, 0x8b, 0x0b], M64, 3, mov_load(Reg::Gpr(9), 4));
}

#[test]
fn rex_byte_is_dec_in_32_bit_mode() {
    assert_eq!(
        decode(&[0x48, 0x8b, 0x03], M32),
        Err(DecodeError::Unsupported { opcode: 0x48 })
    );
}

// --- prefixes ---

#[test]
fn segment_override_is_recorded_last_one_wins() {
    let i = check(&[0x64, 0x8b, 0x03], M64, 3, mov_load(RAX, 4));
    assert_eq!(i.mem.seg, Some(Seg::Fs));
    let i = check(&[0x2e, 0x3e, 0x65, 0x8b, 0x03], M64, 5, mov_load(RAX, 4));
    assert_eq!(i.mem.seg, Some(Seg::Gs));
    let i = check(&[0x26, 0x8b, 0x03], M32, 3, mov_load(RAX, 4));
    assert_eq!(i.mem.seg, Some(Seg::Es));
    let i = check(&[0x36, 0x8b, 0x03], M32, 3, mov_load(RAX, 4));
    assert_eq!(i.mem.seg, Some(Seg::Ss));
}

#[test]
fn rep_prefixes_on_mov_are_ignored() {
    check(&[0xf3, 0x89, 0x03], M64, 3, store_reg(RAX, 4));
    check(&[0xf2, 0x8b, 0x03], M64, 3, mov_load(RAX, 4));
}

#[test]
fn lock_on_mov_is_invalid() {
    assert_eq!(decode(&[0xf0, 0x89, 0x03], M64), Err(DecodeError::Invalid));
}

#[test]
fn fifteen_bytes_is_the_limit() {
    let mut b = [0x66u8; 15];
    b[13] = 0x8b;
    b[14] = 0x03;
    check(&b, M64, 15, mov_load(RAX, 2));
    let mut b = [0x66u8; 16];
    b[14] = 0x8b;
    b[15] = 0x03;
    assert_eq!(decode(&b, M64), Err(DecodeError::TooLong));
}

#[test]
fn displacement_past_fifteen_bytes_is_too_long() {
    let mut b = [0x66u8; 20];
    b[10] = 0x8b;
    b[11] = 0x84; // mod 10: SIB then disp32 ends at byte 17
    assert_eq!(decode(&b, M64), Err(DecodeError::TooLong));
}

// --- immediates ---

#[test]
fn c6_byte_immediate_store() {
    check(&[0xc6, 0x00, 0x7f], M64, 3, store_imm(0x7f, 1));
}

#[test]
fn c7_dword_immediate_store() {
    let b = [0xc7, 0x00, 0x78, 0x56, 0x34, 0x12];
    check(&b, M64, 6, store_imm(0x1234_5678, 4));
}

#[test]
fn c7_with_rex_w_sign_extends_imm32() {
    let b = [0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff];
    check(&b, M64, 7, store_imm(u64::MAX, 8));
    let b = [0x48, 0xc7, 0x00, 0x00, 0x00, 0x00, 0x80];
    check(&b, M64, 7, store_imm(0xffff_ffff_8000_0000, 8));
}

#[test]
fn c7_with_operand_size_prefix_takes_imm16() {
    check(
        &[0x66, 0xc7, 0x00, 0x34, 0x12],
        M64,
        5,
        store_imm(0x1234, 2),
    );
}

#[test]
fn c7_rip_relative_counts_the_immediate() {
    let b = [0xc7, 0x05, 0x01, 0, 0, 0, 0x78, 0x56, 0x34, 0x12];
    check(&b, M64, 10, store_imm(0x1234_5678, 4));
}

#[test]
fn c7_in_16_bit_mode_takes_imm16() {
    check(&[0xc7, 0x07, 0xcd, 0xab], M16, 4, store_imm(0xabcd, 2));
}

#[test]
fn c6_with_nonzero_reg_field_is_invalid() {
    assert_eq!(decode(&[0xc6, 0x08, 0x00], M64), Err(DecodeError::Invalid));
}

// --- moffs ---

#[test]
fn moffs_load_in_64_bit_mode_takes_8_byte_offset() {
    let b = [0xa1, 0x00, 0x00, 0xb0, 0xfe, 0, 0, 0, 0];
    let i = check(&b, M64, 9, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(None, None, 1, 0xfeb0_0000, 8));
}

#[test]
fn moffs_store_rax_with_rex_w() {
    let b = [0x48, 0xa3, 0x08, 0x00, 0xb0, 0xfe, 0, 0, 0, 0];
    check(&b, M64, 10, store_reg(RAX, 8));
}

#[test]
fn moffs_with_address_size_prefix_in_64_bit_mode_is_4_bytes() {
    let i = check(
        &[0x67, 0xa0, 0x00, 0x00, 0xb0, 0xfe],
        M64,
        6,
        mov_load(RAX, 1),
    );
    assert_eq!(i.mem, mem(None, None, 1, 0xfeb0_0000, 4));
}

#[test]
fn moffs_byte_store_of_al() {
    check(&[0xa2, 0x00, 0x00, 0xb0, 0xfe], M32, 5, store_reg(RAX, 1));
}

#[test]
fn moffs_in_32_bit_mode() {
    check(&[0xa1, 0x00, 0x00, 0xb0, 0xfe], M32, 5, mov_load(RAX, 4));
    check(&[0x67, 0xa1, 0x00, 0x10], M32, 4, mov_load(RAX, 4));
}

#[test]
fn moffs_in_16_bit_mode() {
    check(&[0xa1, 0x00, 0x10], M16, 3, mov_load(RAX, 2));
    check(&[0x66, 0xa1, 0x00, 0x10], M16, 4, mov_load(RAX, 4));
    check(
        &[0x67, 0xa1, 0x00, 0x00, 0xb0, 0xfe],
        M16,
        6,
        mov_load(RAX, 2),
    );
}

// --- MOVZX, MOVSX, MOVSXD, MOVNTI ---

#[test]
fn movzx_byte_into_eax() {
    check(&[0x0f, 0xb6, 0x03], M64, 3, load(RAX, 1, 4, Extend::Zero));
}

#[test]
fn movzx_word_into_rax() {
    check(
        &[0x48, 0x0f, 0xb7, 0x03],
        M64,
        4,
        load(RAX, 2, 8, Extend::Zero),
    );
}

#[test]
fn movzx_byte_into_ax() {
    check(
        &[0x66, 0x0f, 0xb6, 0x03],
        M64,
        4,
        load(RAX, 1, 2, Extend::Zero),
    );
}

#[test]
fn movsx_byte_into_rax() {
    check(
        &[0x48, 0x0f, 0xbe, 0x03],
        M64,
        4,
        load(RAX, 1, 8, Extend::Sign),
    );
}

#[test]
fn movsx_word_into_eax() {
    check(&[0x0f, 0xbf, 0x03], M64, 3, load(RAX, 2, 4, Extend::Sign));
}

#[test]
fn movzx_into_reg_4_is_esp_not_ah() {
    check(
        &[0x0f, 0xb6, 0x23],
        M64,
        3,
        load(Reg::Gpr(4), 1, 4, Extend::Zero),
    );
}

#[test]
fn movsxd_with_rex_w_sign_extends_dword() {
    check(&[0x48, 0x63, 0x03], M64, 3, load(RAX, 4, 8, Extend::Sign));
}

#[test]
fn movsxd_without_rex_w_is_a_plain_dword_load() {
    check(&[0x63, 0x03], M64, 2, mov_load(RAX, 4));
}

#[test]
fn opcode_63_outside_64_bit_mode_is_arpl() {
    assert_eq!(
        decode(&[0x63, 0x03], M32),
        Err(DecodeError::Unsupported { opcode: 0x63 })
    );
}

#[test]
fn movnti_dword_and_qword() {
    check(&[0x0f, 0xc3, 0x03], M64, 3, store_reg(RAX, 4));
    check(&[0x4c, 0x0f, 0xc3, 0x03], M64, 4, store_reg(Reg::Gpr(8), 8));
}

#[test]
fn movnti_with_operand_size_prefix_is_invalid() {
    assert_eq!(
        decode(&[0x66, 0x0f, 0xc3, 0x03], M64),
        Err(DecodeError::Invalid)
    );
}

// --- 16-bit addressing ---

#[test]
fn addr16_bx_plus_si() {
    let i = check(&[0x67, 0x8b, 0x00], M32, 3, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(3), Some(6), 1, 0, 2));
}

#[test]
fn addr16_bp_with_negative_disp8() {
    let i = check(&[0x67, 0x8b, 0x46, 0xfe], M32, 4, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(Some(5), None, 1, -2, 2));
}

#[test]
fn addr16_mod_00_rm_110_is_disp16() {
    let i = check(&[0x67, 0x8b, 0x06, 0x34, 0x12], M32, 5, mov_load(RAX, 4));
    assert_eq!(i.mem, mem(None, None, 1, 0x1234, 2));
}

#[test]
fn addr16_bx_with_disp16() {
    let i = check(&[0x8b, 0x87, 0x00, 0x10], M16, 4, mov_load(RAX, 2));
    assert_eq!(i.mem, mem(Some(3), None, 1, 0x1000, 2));
}

#[test]
fn addr16_bp_plus_di() {
    let i = check(&[0x88, 0x03], M16, 2, store_reg(RAX, 1));
    assert_eq!(i.mem, mem(Some(5), Some(7), 1, 0, 2));
}

#[test]
fn sixteen_bit_mode_with_address_prefix_uses_sib() {
    // mov ax, [esi+ecx*4]
    let i = check(&[0x67, 0x8b, 0x04, 0x8e], M16, 4, mov_load(RAX, 2));
    assert_eq!(i.mem, mem(Some(6), Some(1), 4, 0, 4));
}

// --- what is refused ---

#[test]
fn register_operand_is_refused() {
    assert_eq!(
        decode(&[0x8b, 0xc3], M64),
        Err(DecodeError::RegisterOperand)
    );
}

#[test]
fn other_opcodes_are_unsupported() {
    assert_eq!(
        decode(&[0x90], M64),
        Err(DecodeError::Unsupported { opcode: 0x90 })
    );
    assert_eq!(
        decode(&[0x0f, 0x0b], M64),
        Err(DecodeError::Unsupported { opcode: 0x0f0b })
    );
    assert_eq!(
        decode(&[0xff, 0x20], M64),
        Err(DecodeError::Unsupported { opcode: 0xff })
    );
}

#[test]
fn short_input_is_truncated() {
    assert_eq!(decode(&[], M64), Err(DecodeError::Truncated));
    assert_eq!(decode(&[0x66], M64), Err(DecodeError::Truncated));
    assert_eq!(decode(&[0x8b], M64), Err(DecodeError::Truncated));
    let b = [0x8b, 0x84, 0x8e, 0x78, 0x56];
    assert_eq!(decode(&b, M64), Err(DecodeError::Truncated));
    assert_eq!(
        decode(&[0xc7, 0x00, 0x78], M64),
        Err(DecodeError::Truncated)
    );
}
