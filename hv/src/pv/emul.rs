//! Decoding what a PV guest's kernel executes that the hypervisor must
//! emulate: the privileged instructions that fault with #GP in ring 3
//! (`pv/emul-priv-op.c` emulates them for PV guests), the forced-emulation
//! prefix (`ud2; .ascii "xen"` before CPUID), and the writes to a
//! read-only page-table page that the writable page-table assist turns
//! into validated updates (`pv/ro-page-fault.c`).
//!
//! Decoding is by bytes only; the caller fetched up to 15 bytes at RIP. An
//! instruction this module does not know is `None`: the caller then gives
//! the guest the fault it took.

/// The forced-emulation prefix `XEN_EMULATE_PREFIX`: `ud2a; .ascii "xen"`.
pub const EMULATE_PREFIX: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

/// Whether `bytes` start with the forced-emulation prefix followed by CPUID
/// (the only instruction Xen emulates after it); the whole is 7 bytes.
pub fn forced_cpuid(bytes: &[u8]) -> bool {
    bytes.get(..7) == Some(&[0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2][..])
}

/// Where a port number comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Imm(u8),
    /// DX.
    Dx,
}

/// A privileged instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priv {
    /// IN: `size` bytes (1, 2, 4) from `port` into AL/AX/EAX.
    In {
        port: Port,
        size: u8,
    },
    /// OUT: `size` bytes from AL/AX/EAX.
    Out {
        port: Port,
        size: u8,
    },
    /// INS/OUTS, with or without REP: not emulated (the guest gets #GP).
    StringIo,
    Rdmsr,
    Wrmsr,
    /// `mov %crN, reg` (`reg` by encoding, 0-15).
    ReadCr {
        cr: u8,
        reg: u8,
    },
    /// `mov reg, %crN`.
    WriteCr {
        cr: u8,
        reg: u8,
    },
    /// `mov %drN, reg`.
    ReadDr {
        dr: u8,
        reg: u8,
    },
    /// `mov reg, %drN`.
    WriteDr {
        dr: u8,
        reg: u8,
    },
    Clts,
    Wbinvd,
    Invd,
    Xsetbv,
    Hlt,
    Cli,
    Sti,
    Rdtsc,
    Rdtscp,
    Rdpmc,
}

/// Legacy and REX prefixes before an opcode.
#[derive(Clone, Copy, Debug, Default)]
struct Prefixes {
    len: usize,
    opsize: bool,
    rep: bool,
    lock: bool,
    rex: u8,
}

fn prefixes(bytes: &[u8]) -> Prefixes {
    let mut p = Prefixes::default();
    while let Some(&b) = bytes.get(p.len) {
        match b {
            0x66 => p.opsize = true,
            0xf3 | 0xf2 => p.rep = true,
            0xf0 => p.lock = true,
            0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x67 => {}
            0x40..=0x4f => {
                // REX must come last; anything after it ends the prefixes.
                p.rex = b;
                p.len += 1;
                return p;
            }
            _ => return p,
        }
        p.len += 1;
        if p.len >= 14 {
            return p;
        }
    }
    p
}

/// Decodes a privileged instruction at the start of `bytes` (64-bit code);
/// returns it and its length.
pub fn decode_priv(bytes: &[u8]) -> Option<(Priv, usize)> {
    let p = prefixes(bytes);
    let at = p.len;
    let op = *bytes.get(at)?;
    let io_size = if p.opsize { 2 } else { 4 };
    let one = |i: Priv| Some((i, at + 1));
    match op {
        0xe4 => Some((
            Priv::In {
                port: Port::Imm(*bytes.get(at + 1)?),
                size: 1,
            },
            at + 2,
        )),
        0xe5 => Some((
            Priv::In {
                port: Port::Imm(*bytes.get(at + 1)?),
                size: io_size,
            },
            at + 2,
        )),
        0xe6 => Some((
            Priv::Out {
                port: Port::Imm(*bytes.get(at + 1)?),
                size: 1,
            },
            at + 2,
        )),
        0xe7 => Some((
            Priv::Out {
                port: Port::Imm(*bytes.get(at + 1)?),
                size: io_size,
            },
            at + 2,
        )),
        0xec => one(Priv::In {
            port: Port::Dx,
            size: 1,
        }),
        0xed => one(Priv::In {
            port: Port::Dx,
            size: io_size,
        }),
        0xee => one(Priv::Out {
            port: Port::Dx,
            size: 1,
        }),
        0xef => one(Priv::Out {
            port: Port::Dx,
            size: io_size,
        }),
        0x6c..=0x6f => one(Priv::StringIo),
        0xf4 => one(Priv::Hlt),
        0xfa => one(Priv::Cli),
        0xfb => one(Priv::Sti),
        0x0f => {
            let op2 = *bytes.get(at + 1)?;
            let two = |i: Priv| Some((i, at + 2));
            match op2 {
                0x30 => two(Priv::Wrmsr),
                0x32 => two(Priv::Rdmsr),
                0x31 => two(Priv::Rdtsc),
                0x33 => two(Priv::Rdpmc),
                0x06 => two(Priv::Clts),
                0x08 => two(Priv::Invd),
                0x09 => two(Priv::Wbinvd),
                0x20..=0x23 => {
                    // MOV to/from control and debug registers: ModRM with
                    // mod ignored (always register), reg = CR/DR number
                    // (REX.R extends it), rm = the GPR (REX.B extends it).
                    let m = *bytes.get(at + 2)?;
                    let n = ((m >> 3) & 7) | if p.rex & 4 != 0 { 8 } else { 0 };
                    let reg = (m & 7) | if p.rex & 1 != 0 { 8 } else { 0 };
                    let i = match op2 {
                        0x20 => Priv::ReadCr { cr: n, reg },
                        0x22 => Priv::WriteCr { cr: n, reg },
                        0x21 => Priv::ReadDr { dr: n, reg },
                        _ => Priv::WriteDr { dr: n, reg },
                    };
                    Some((i, at + 3))
                }
                0x01 => match *bytes.get(at + 2)? {
                    0xd1 => Some((Priv::Xsetbv, at + 3)),
                    0xf9 => Some((Priv::Rdtscp, at + 3)),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// The length of a ModRM memory operand's encoding after the opcode (ModRM,
/// SIB, displacement), for 64-bit addressing; `None` for a register
/// operand (mod = 3) or too few bytes.
fn modrm_len(bytes: &[u8]) -> Option<usize> {
    let m = *bytes.first()?;
    let (md, rm) = (m >> 6, m & 7);
    if md == 3 {
        return None;
    }
    let mut len = 1;
    let mut base = rm;
    if rm == 4 {
        base = bytes.get(1)? & 7;
        len += 1;
    }
    len += match md {
        0 if rm == 5 => 4,
        0 if rm == 4 && base == 5 => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    (bytes.len() >= len).then_some(len)
}

/// The value a write to memory stores, from where the instruction gets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A general-purpose register by encoding (0-15); for byte operations
    /// without REX, 4-7 name AH, CH, DH, BH.
    Reg(u8),
    /// An immediate, sign-extended to the operand size.
    Imm(u64),
}

/// The read-modify-write operations on memory that page-table code uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rmw {
    /// MOV to memory.
    Mov,
    /// XCHG: the old value goes into the register.
    Xchg,
    /// CMPXCHG: compared with RAX; on a match the operand is stored, else
    /// the old value goes into RAX (ZF tells which).
    Cmpxchg,
    And,
    Or,
    Xor,
    /// BTS/BTR/BTC with the bit number from the operand (CF gets the old
    /// bit).
    Bts,
    Btr,
    Btc,
}

/// A write to memory through a memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub op: Rmw,
    pub src: Operand,
    /// Operand size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub len: usize,
    /// With a LOCK prefix.
    pub lock: bool,
    /// The byte-register encodings 4-7 name AH..BH (no REX prefix).
    pub high_byte_regs: bool,
}

/// Decodes a write to memory at the start of `bytes` (64-bit code): MOV
/// (88, 89, C6 /0, C7 /0), XCHG (86, 87), CMPXCHG (0F B0, 0F B1), AND, OR,
/// XOR (20, 21, 08, 09, 30, 31, 80/81/83 /4 /1 /6), BTS/BTR/BTC (0F AB,
/// 0F B3, 0F BB, 0F BA /5 /6 /7).
pub fn decode_write(bytes: &[u8]) -> Option<Write> {
    let p = prefixes(bytes);
    let mut at = p.len;
    let w = p.rex & 8 != 0;
    let full = if w {
        8
    } else if p.opsize {
        2
    } else {
        4
    };
    let rex_r = if p.rex & 4 != 0 { 8 } else { 0 };
    let op = *bytes.get(at)?;
    at += 1;
    let two_byte = op == 0x0f;
    let op2 = if two_byte {
        let b = *bytes.get(at)?;
        at += 1;
        Some(b)
    } else {
        None
    };
    let m = *bytes.get(at)?;
    let reg = ((m >> 3) & 7) | rex_r;
    let mlen = modrm_len(bytes.get(at..)?)?;
    let after = at + mlen;
    let imm = |n: usize| -> Option<u64> {
        let b = bytes.get(after..after + n)?;
        Some(match n {
            1 => i64::from(b[0] as i8) as u64,
            2 => i64::from(i16::from_le_bytes([b[0], b[1]])) as u64,
            _ => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) as u64,
        })
    };
    let make = |op: Rmw, src: Operand, size: u8, len: usize| Write {
        op,
        src,
        size,
        len,
        lock: p.lock,
        high_byte_regs: p.rex == 0,
    };
    let ext = (m >> 3) & 7;
    match (op, op2) {
        (0x88, None) => Some(make(Rmw::Mov, Operand::Reg(reg), 1, after)),
        (0x89, None) => Some(make(Rmw::Mov, Operand::Reg(reg), full, after)),
        (0xc6, None) if ext == 0 => Some(make(Rmw::Mov, Operand::Imm(imm(1)?), 1, after + 1)),
        (0xc7, None) if ext == 0 => {
            let n = if full == 2 { 2 } else { 4 };
            Some(make(Rmw::Mov, Operand::Imm(imm(n)?), full, after + n))
        }
        (0x86, None) => Some(make(Rmw::Xchg, Operand::Reg(reg), 1, after)),
        (0x87, None) => Some(make(Rmw::Xchg, Operand::Reg(reg), full, after)),
        (0x20, None) => Some(make(Rmw::And, Operand::Reg(reg), 1, after)),
        (0x21, None) => Some(make(Rmw::And, Operand::Reg(reg), full, after)),
        (0x08, None) => Some(make(Rmw::Or, Operand::Reg(reg), 1, after)),
        (0x09, None) => Some(make(Rmw::Or, Operand::Reg(reg), full, after)),
        (0x30, None) => Some(make(Rmw::Xor, Operand::Reg(reg), 1, after)),
        (0x31, None) => Some(make(Rmw::Xor, Operand::Reg(reg), full, after)),
        (0x80 | 0x81 | 0x83, None) => {
            let alu = match ext {
                1 => Rmw::Or,
                4 => Rmw::And,
                6 => Rmw::Xor,
                _ => return None,
            };
            let (size, n) = match op {
                0x80 => (1, 1),
                0x83 => (full, 1),
                _ => (full, if full == 2 { 2 } else { 4 }),
            };
            Some(make(alu, Operand::Imm(imm(n)?), size, after + n))
        }
        (0x0f, Some(0xb0)) => Some(make(Rmw::Cmpxchg, Operand::Reg(reg), 1, after)),
        (0x0f, Some(0xb1)) => Some(make(Rmw::Cmpxchg, Operand::Reg(reg), full, after)),
        (0x0f, Some(0xab)) => Some(make(Rmw::Bts, Operand::Reg(reg), full, after)),
        (0x0f, Some(0xb3)) => Some(make(Rmw::Btr, Operand::Reg(reg), full, after)),
        (0x0f, Some(0xbb)) => Some(make(Rmw::Btc, Operand::Reg(reg), full, after)),
        (0x0f, Some(0xba)) => {
            let bt = match ext {
                5 => Rmw::Bts,
                6 => Rmw::Btr,
                7 => Rmw::Btc,
                _ => return None,
            };
            let b = *bytes.get(after)?;
            Some(make(bt, Operand::Imm(u64::from(b)), full, after + 1))
        }
        _ => None,
    }
}

/// What applying a write to the old memory value gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The new memory value (`None`: memory is not written, a CMPXCHG that
    /// did not match).
    pub new: Option<u64>,
    /// A register to set: (encoding, value) — XCHG's and a failed
    /// CMPXCHG's old value.
    pub reg: Option<(u8, u64)>,
    /// ZF for CMPXCHG, CF for the bit operations.
    pub flag: Option<bool>,
}

/// Applies `w` with operand value `src` (the register's or immediate's
/// value, already read) to memory holding `old` (`size` bytes); `rax` is
/// CMPXCHG's comparand. Bit numbers wrap at the operand size (a register
/// bit offset beyond the operand addresses other memory: the caller only
/// emulates operations on the faulting entry and refuses others).
pub fn apply(w: &Write, src: u64, old: u64, rax: u64) -> Applied {
    let mask = if w.size == 8 {
        u64::MAX
    } else {
        (1u64 << (w.size * 8)) - 1
    };
    let (src, old) = (src & mask, old & mask);
    let bit = |n: u64| 1u64 << (n % (u64::from(w.size) * 8));
    match w.op {
        Rmw::Mov => Applied {
            new: Some(src),
            reg: None,
            flag: None,
        },
        Rmw::Xchg => Applied {
            new: Some(src),
            reg: match w.src {
                Operand::Reg(r) => Some((r, old)),
                Operand::Imm(_) => None,
            },
            flag: None,
        },
        Rmw::Cmpxchg => {
            if rax & mask == old {
                Applied {
                    new: Some(src),
                    reg: None,
                    flag: Some(true),
                }
            } else {
                Applied {
                    new: None,
                    reg: Some((0, old)),
                    flag: Some(false),
                }
            }
        }
        Rmw::And => Applied {
            new: Some(old & src),
            reg: None,
            flag: None,
        },
        Rmw::Or => Applied {
            new: Some(old | src),
            reg: None,
            flag: None,
        },
        Rmw::Xor => Applied {
            new: Some(old ^ src),
            reg: None,
            flag: None,
        },
        Rmw::Bts => Applied {
            new: Some(old | bit(src)),
            reg: None,
            flag: Some(old & bit(src) != 0),
        },
        Rmw::Btr => Applied {
            new: Some(old & !bit(src)),
            reg: None,
            flag: Some(old & bit(src) != 0),
        },
        Rmw::Btc => Applied {
            new: Some(old ^ bit(src)),
            reg: None,
            flag: Some(old & bit(src) != 0),
        },
    }
}

#[cfg(test)]
mod tests;
