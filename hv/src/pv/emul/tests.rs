use super::*;

#[test]
fn msr_cr_and_io_instructions_decode_with_their_lengths() {
    assert_eq!(decode_priv(&[0x0f, 0x30]), Some((Priv::Wrmsr, 2)));
    assert_eq!(decode_priv(&[0x0f, 0x32]), Some((Priv::Rdmsr, 2)));
    // mov %cr0, %rax; mov %cr4, %r9 (REX.B); mov %rax, %cr8 (REX.R)
    assert_eq!(
        decode_priv(&[0x0f, 0x20, 0xc0]),
        Some((Priv::ReadCr { cr: 0, reg: 0 }, 3))
    );
    assert_eq!(
        decode_priv(&[0x41, 0x0f, 0x20, 0xe1]),
        Some((Priv::ReadCr { cr: 4, reg: 9 }, 4))
    );
    assert_eq!(
        decode_priv(&[0x44, 0x0f, 0x22, 0xc0]),
        Some((Priv::WriteCr { cr: 8, reg: 0 }, 4))
    );
    assert_eq!(
        decode_priv(&[0x0f, 0x21, 0xf8]),
        Some((Priv::ReadDr { dr: 7, reg: 0 }, 3))
    );
    assert_eq!(
        decode_priv(&[0xe4, 0x71]),
        Some((
            Priv::In {
                port: Port::Imm(0x71),
                size: 1
            },
            2
        ))
    );
    assert_eq!(
        decode_priv(&[0x66, 0xef]),
        Some((
            Priv::Out {
                port: Port::Dx,
                size: 2
            },
            2
        ))
    );
    assert_eq!(
        decode_priv(&[0xed]),
        Some((
            Priv::In {
                port: Port::Dx,
                size: 4
            },
            1
        ))
    );
    assert_eq!(decode_priv(&[0xf3, 0x6c]), Some((Priv::StringIo, 2)));
    assert_eq!(decode_priv(&[0x0f, 0x01, 0xd1]), Some((Priv::Xsetbv, 3)));
    assert_eq!(decode_priv(&[0x0f, 0x09]), Some((Priv::Wbinvd, 2)));
    assert_eq!(decode_priv(&[0xf4]), Some((Priv::Hlt, 1)));
}

#[test]
fn unknown_or_truncated_instructions_are_none() {
    assert_eq!(decode_priv(&[0x90]), None);
    assert_eq!(decode_priv(&[0x0f]), None);
    assert_eq!(decode_priv(&[0x0f, 0x20]), None);
    assert_eq!(decode_priv(&[0xe4]), None);
    assert_eq!(decode_priv(&[0x0f, 0x01, 0xc8]), None);
    assert_eq!(decode_priv(&[]), None);
}

#[test]
fn the_forced_emulation_prefix_is_recognised_only_before_cpuid() {
    assert!(forced_cpuid(&[
        0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2, 0x90
    ]));
    assert!(!forced_cpuid(&[0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0x30]));
    assert!(!forced_cpuid(&[0x0f, 0x0b, b'x', b'e', b'n']));
}

#[test]
fn pte_writes_linux_makes_decode() {
    // mov %rsi, (%rdi)
    let w = decode_write(&[0x48, 0x89, 0x37]).unwrap();
    assert_eq!(
        (w.op, w.src, w.size, w.len),
        (Rmw::Mov, Operand::Reg(6), 8, 3)
    );
    // xchg %rax, 0x8(%rdi)
    let w = decode_write(&[0x48, 0x87, 0x47, 0x08]).unwrap();
    assert_eq!(
        (w.op, w.src, w.size, w.len),
        (Rmw::Xchg, Operand::Reg(0), 8, 4)
    );
    // lock btr $1, (%rdi)  (clear_bit(_PAGE_BIT_RW))
    let w = decode_write(&[0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01]).unwrap();
    assert_eq!(
        (w.op, w.src, w.size, w.len),
        (Rmw::Btr, Operand::Imm(1), 8, 6)
    );
    assert!(w.lock);
    // lock btr %rax, (%rdx)
    let w = decode_write(&[0xf0, 0x48, 0x0f, 0xb3, 0x02]).unwrap();
    assert_eq!((w.op, w.src, w.len), (Rmw::Btr, Operand::Reg(0), 5));
    // lock cmpxchg %rcx, (%r8)
    let w = decode_write(&[0xf0, 0x49, 0x0f, 0xb1, 0x08]).unwrap();
    assert_eq!(
        (w.op, w.src, w.size, w.len),
        (Rmw::Cmpxchg, Operand::Reg(1), 8, 5)
    );
    // movq $0, (%rax,%rbx,8)
    let w = decode_write(&[0x48, 0xc7, 0x04, 0xd8, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        (w.op, w.src, w.size, w.len),
        (Rmw::Mov, Operand::Imm(0), 8, 8)
    );
    // mov %eax, 0x12345678(%rip)
    let w = decode_write(&[0x89, 0x05, 0x78, 0x56, 0x34, 0x12]).unwrap();
    assert_eq!((w.size, w.len), (4, 6));
    // andq $-3, -8(%rbp)
    let w = decode_write(&[0x48, 0x83, 0x65, 0xf8, 0xfd]).unwrap();
    assert_eq!((w.op, w.src, w.len), (Rmw::And, Operand::Imm(!2), 5));
    // mov %al, (%rdi) : a byte store
    let w = decode_write(&[0x88, 0x07]).unwrap();
    assert_eq!((w.size, w.high_byte_regs), (1, true));
}

#[test]
fn register_operands_and_other_opcodes_are_not_writes() {
    // mov %rsi, %rdi (mod = 3)
    assert_eq!(decode_write(&[0x48, 0x89, 0xf7]), None);
    // add %rax, (%rdi)
    assert_eq!(decode_write(&[0x48, 0x01, 0x07]), None);
    // bt (read only) 0f a3
    assert_eq!(decode_write(&[0x48, 0x0f, 0xa3, 0x07]), None);
    // truncated displacement
    assert_eq!(decode_write(&[0x48, 0x89, 0x87, 0x00]), None);
}

#[test]
fn applying_writes_gives_the_new_value_and_the_register_results() {
    let mov = decode_write(&[0x48, 0x89, 0x37]).unwrap();
    assert_eq!(apply(&mov, 5, 9, 0).new, Some(5));
    let xchg = decode_write(&[0x48, 0x87, 0x07]).unwrap();
    let a = apply(&xchg, 0, 0x1067, 0);
    assert_eq!((a.new, a.reg), (Some(0), Some((0, 0x1067))));
    let cx = decode_write(&[0xf0, 0x48, 0x0f, 0xb1, 0x0f]).unwrap();
    let hit = apply(&cx, 7, 3, 3);
    assert_eq!((hit.new, hit.flag), (Some(7), Some(true)));
    let miss = apply(&cx, 7, 3, 4);
    assert_eq!(
        (miss.new, miss.reg, miss.flag),
        (None, Some((0, 3)), Some(false))
    );
    let btr = decode_write(&[0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01]).unwrap();
    let a = apply(&btr, 1, 0x1067, 0);
    assert_eq!((a.new, a.flag), (Some(0x1065), Some(true)));
    // A 4-byte store only sees and writes the low 4 bytes.
    let mov4 = decode_write(&[0x89, 0x37]).unwrap();
    assert_eq!(apply(&mov4, 0x1_2345_6789, 0, 0).new, Some(0x2345_6789));
}
