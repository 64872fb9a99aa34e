//! Decoding the x86 instructions that move data to or from memory, for
//! emulating a guest's access to emulated or absent MMIO.
//!
//! The decoder takes the bytes at the guest's RIP (at most 15, Intel SDM
//! vol. 2, 2.3.11) and the code-segment mode, and gives the instruction's
//! length, its memory operand and the access: a [`Load`] into a register or
//! a [`Store`] of a register or an immediate. It knows the MOV family that
//! compilers emit for MMIO: `88`/`89`/`8A`/`8B`, `C6 /0`/`C7 /0`, the
//! `A0`–`A3` moffs forms, `0F B6`/`B7`/`BE`/`BF` (MOVZX/MOVSX), `63`
//! (MOVSXD, 64-bit mode) and `0F C3` (MOVNTI). Everything else is
//! [`DecodeError::Unsupported`]: the caller refuses to guess.
//!
//! [`apply_load`] writes a loaded value into a register file with the
//! architectural partial-register rules (SDM vol. 1, 3.4.1.1).

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod tests;

/// The longest legal instruction, in bytes.
pub const MAX_LEN: usize = 15;

/// The default operand and address size of the code being decoded, from
/// CR0.PE, CS.L and CS.D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Real mode, or a 16-bit code segment.
    Bits16,
    /// A 32-bit code segment (protected or compatibility mode).
    Bits32,
    /// 64-bit mode (EFER.LMA and CS.L).
    Bits64,
}

/// A general-purpose register as an instruction names it. The low 16 are in
/// the SDM's encoding order (RAX = 0 .. R15 = 15); at byte size, indices
/// 4–7 are SPL, BPL, SIL, DIL (only with a REX prefix). Without REX those
/// encodings name AH, CH, DH and BH, the second byte of RAX, RCX, RDX and
/// RBX: [`Reg::HighByte`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// RAX..R15 (or a part of it starting at bit 0), by encoding.
    Gpr(u8),
    /// Bits 15:8 of RAX, RCX, RDX or RBX (0..=3): AH, CH, DH, BH.
    HighByte(u8),
}

impl Reg {
    /// The encoding (0..=15) of the 64-bit register this one is part of.
    pub fn index(self) -> u8 {
        match self {
            Reg::Gpr(n) => n & 15,
            Reg::HighByte(n) => n & 3,
        }
    }
}

/// How a loaded value narrower than its destination is widened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// MOVZX.
    Zero,
    /// MOVSX, MOVSXD.
    Sign,
    /// A plain MOV: the memory and register sizes are the same.
    None,
}

/// A read of memory into a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub dst: Reg,
    /// Bytes read from memory: 1, 2, 4 or 8.
    pub size: u8,
    /// Bytes of the register written: 1, 2, 4 or 8 (more than `size` only
    /// for MOVZX/MOVSX/MOVSXD).
    pub dst_size: u8,
    pub extend: Extend,
}

/// What a store writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Reg(Reg),
    /// An immediate, already sign-extended to the store size and masked to
    /// it.
    Imm(u64),
}

/// A write of a register or an immediate to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub src: Src,
    /// Bytes written: 1, 2, 4 or 8.
    pub size: u8,
}

/// The memory access an instruction makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Load(Load),
    Store(Store),
}

/// A segment-override prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// The memory operand: `seg:[base + index * scale + disp]`, or
/// `[rip + disp]` (the RIP of the next instruction), or an absolute offset
/// (no base, no index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemOperand {
    /// Base register encoding (0..=15); for 16-bit addressing, BX, BP, SI
    /// or DI.
    pub base: Option<u8>,
    /// Index register encoding (0..=15).
    pub index: Option<u8>,
    /// 1, 2, 4 or 8.
    pub scale: u8,
    /// The displacement, sign-extended (moffs: zero-extended).
    pub disp: i64,
    pub rip_relative: bool,
    /// The segment override, if any prefix named one.
    pub seg: Option<Seg>,
    /// Address size in bytes: 2, 4 or 8.
    pub addr_size: u8,
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes, prefixes included (at most [`MAX_LEN`]).
    pub len: u8,
    pub access: Access,
    pub mem: MemOperand,
}

/// Why bytes do not decode to an access this module emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does.
    Truncated,
    /// Longer than 15 bytes (the CPU raises #GP).
    TooLong,
    /// An opcode (after `0F`, the second byte) this decoder does not
    /// emulate.
    Unsupported { opcode: u16 },
    /// The operand is a register, not memory (mod = 11).
    RegisterOperand,
    /// An encoding the CPU would reject with #UD: LOCK on a MOV, a prefix
    /// MOVNTI does not allow, a non-zero `/reg` on `C6`/`C7`.
    Invalid,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "the instruction bytes end early"),
            DecodeError::TooLong => write!(f, "longer than 15 bytes"),
            DecodeError::Unsupported { opcode } => {
                write!(f, "opcode {opcode:#x} is not an emulated memory move")
            }
            DecodeError::RegisterOperand => write!(f, "no memory operand"),
            DecodeError::Invalid => write!(f, "an invalid encoding (#UD)"),
        }
    }
}

/// The legacy prefixes and REX seen before the opcode.
#[derive(Clone, Copy, Debug, Default)]
struct Prefixes {
    opsize: bool,
    addrsize: bool,
    lock: bool,
    rep: bool,
    seg: Option<Seg>,
    /// The REX byte, if the last prefix was one (64-bit mode only).
    rex: Option<u8>,
}

impl Prefixes {
    fn rex_bit(&self, bit: u8) -> u8 {
        self.rex.map_or(0, |r| (r >> bit) & 1)
    }
    fn w(&self) -> bool {
        self.rex_bit(3) != 0
    }
    fn r(&self) -> u8 {
        self.rex_bit(2) << 3
    }
    fn x(&self) -> u8 {
        self.rex_bit(1) << 3
    }
    fn b(&self) -> u8 {
        self.rex_bit(0) << 3
    }
}

/// Reads the instruction bytes in order, enforcing both the end of the
/// input and the 15-byte limit.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` (1, 2, 4 or 8) little-endian bytes.
    fn uint(&mut self, n: u8) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(self.u8()?) << (8 * i);
        }
        Ok(v)
    }

    /// `n` bytes, sign-extended.
    fn int(&mut self, n: u8) -> Result<i64, DecodeError> {
        Ok(sign_extend(self.uint(n)?, n) as i64)
    }
}

/// Sign-extends the low `size` bytes of `v` to 64 bits.
pub fn sign_extend(v: u64, size: u8) -> u64 {
    match size {
        1 => i64::from(v as u8 as i8) as u64,
        2 => i64::from(v as u16 as i16) as u64,
        4 => i64::from(v as u32 as i32) as u64,
        _ => v,
    }
}

/// The low `size` bytes of all-ones.
pub fn mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Decodes the instruction at the start of `bytes` (which may be shorter
/// than 15 bytes if no more could be read) in `mode`.
pub fn decode(bytes: &[u8], mode: Mode) -> Result<Insn, DecodeError> {
    let mut c = Cursor { bytes, pos: 0 };
    let mut p = Prefixes::default();
    let opcode = loop {
        let b = c.u8()?;
        // A REX prefix only counts directly before the opcode: a legacy
        // prefix after it cancels it.
        let rex = p.rex.take();
        match b {
            0x66 => p.opsize = true,
            0x67 => p.addrsize = true,
            0xf0 => p.lock = true,
            0xf2 | 0xf3 => p.rep = true,
            0x26 => p.seg = Some(Seg::Es),
            0x2e => p.seg = Some(Seg::Cs),
            0x36 => p.seg = Some(Seg::Ss),
            0x3e => p.seg = Some(Seg::Ds),
            0x64 => p.seg = Some(Seg::Fs),
            0x65 => p.seg = Some(Seg::Gs),
            0x40..=0x4f if mode == Mode::Bits64 => p.rex = Some(b),
            _ => {
                p.rex = rex;
                break b;
            }
        }
    };
    let opsize = operand_size(mode, &p);
    let addr_size = address_size(mode, p.addrsize);
    let (access, mem) = match opcode {
        0x88..=0x8b => {
            let size = if opcode & 1 == 0 { 1 } else { opsize };
            let (reg, mem) = modrm(&mut c, mode, &p, addr_size)?;
            let r = gpr(reg, size, &p);
            let access = if opcode & 2 == 0 {
                Access::Store(Store {
                    src: Src::Reg(r),
                    size,
                })
            } else {
                plain_load(r, size)
            };
            (access, mem)
        }
        0xc6 | 0xc7 => {
            let size = if opcode == 0xc6 { 1 } else { opsize };
            let (reg, mem) = modrm(&mut c, mode, &p, addr_size)?;
            if reg & 7 != 0 {
                return Err(DecodeError::Invalid);
            }
            let imm = c.int(size.min(4))? as u64 & mask(size);
            let access = Access::Store(Store {
                src: Src::Imm(imm),
                size,
            });
            (access, mem)
        }
        0xa0..=0xa3 => {
            let size = if opcode & 1 == 0 { 1 } else { opsize };
            let offset = c.uint(addr_size)?;
            let mem = MemOperand {
                base: None,
                index: None,
                scale: 1,
                disp: offset as i64,
                rip_relative: false,
                seg: p.seg,
                addr_size,
            };
            // AL, AX, EAX or RAX: a REX prefix changes nothing but W.
            let r = Reg::Gpr(0);
            let access = if opcode & 2 == 0 {
                plain_load(r, size)
            } else {
                Access::Store(Store {
                    src: Src::Reg(r),
                    size,
                })
            };
            (access, mem)
        }
        0x63 if mode == Mode::Bits64 => {
            let (reg, mem) = modrm(&mut c, mode, &p, addr_size)?;
            let size = opsize.min(4);
            let access = Access::Load(Load {
                dst: gpr(reg, opsize, &p),
                size,
                dst_size: opsize,
                extend: if opsize == 8 {
                    Extend::Sign
                } else {
                    Extend::None
                },
            });
            (access, mem)
        }
        0x0f => {
            let op2 = c.u8()?;
            let (reg, mem) = match op2 {
                0xb6 | 0xb7 | 0xbe | 0xbf | 0xc3 => modrm(&mut c, mode, &p, addr_size)?,
                _ => {
                    return Err(DecodeError::Unsupported {
                        opcode: 0x0f00 | u16::from(op2),
                    })
                }
            };
            let access = if op2 == 0xc3 {
                // MOVNTI: no 66/F2/F3, 32 or 64 bits only.
                if p.opsize || p.rep || opsize == 2 {
                    return Err(DecodeError::Invalid);
                }
                Access::Store(Store {
                    src: Src::Reg(gpr(reg, opsize, &p)),
                    size: opsize,
                })
            } else {
                Access::Load(Load {
                    dst: gpr(reg, opsize, &p),
                    size: if op2 & 1 == 0 { 1 } else { 2 },
                    dst_size: opsize,
                    extend: if op2 & 8 == 0 {
                        Extend::Zero
                    } else {
                        Extend::Sign
                    },
                })
            };
            (access, mem)
        }
        _ => {
            return Err(DecodeError::Unsupported {
                opcode: u16::from(opcode),
            })
        }
    };
    // None of these instructions accepts LOCK (#UD).
    if p.lock {
        return Err(DecodeError::Invalid);
    }
    Ok(Insn {
        len: c.pos as u8,
        access,
        mem,
    })
}

fn plain_load(dst: Reg, size: u8) -> Access {
    Access::Load(Load {
        dst,
        size,
        dst_size: size,
        extend: Extend::None,
    })
}

fn operand_size(mode: Mode, p: &Prefixes) -> u8 {
    match mode {
        Mode::Bits64 if p.w() => 8,
        Mode::Bits64 | Mode::Bits32 => {
            if p.opsize {
                2
            } else {
                4
            }
        }
        Mode::Bits16 => {
            if p.opsize {
                4
            } else {
                2
            }
        }
    }
}

fn address_size(mode: Mode, prefix: bool) -> u8 {
    match (mode, prefix) {
        (Mode::Bits64, false) => 8,
        (Mode::Bits64, true) | (Mode::Bits32, false) | (Mode::Bits16, true) => 4,
        (Mode::Bits32, true) | (Mode::Bits16, false) => 2,
    }
}

/// The register a ModRM `reg` field (REX.R included) names at `size`.
fn gpr(reg: u8, size: u8, p: &Prefixes) -> Reg {
    if size == 1 && p.rex.is_none() && (4..8).contains(&reg) {
        Reg::HighByte(reg - 4)
    } else {
        Reg::Gpr(reg)
    }
}

/// Decodes ModRM, SIB and displacement; returns the `reg` field (with
/// REX.R) and the memory operand. A register operand (mod = 11) is an
/// error: these instructions only reach here through a memory access.
fn modrm(
    c: &mut Cursor<'_>,
    mode: Mode,
    p: &Prefixes,
    addr_size: u8,
) -> Result<(u8, MemOperand), DecodeError> {
    let m = c.u8()?;
    let md = m >> 6;
    let reg = ((m >> 3) & 7) | p.r();
    let rm = m & 7;
    if md == 3 {
        return Err(DecodeError::RegisterOperand);
    }
    let mut mem = MemOperand {
        base: None,
        index: None,
        scale: 1,
        disp: 0,
        rip_relative: false,
        seg: p.seg,
        addr_size,
    };
    if addr_size == 2 {
        // SDM vol. 2, table 2-1: BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP, BX.
        const BX: u8 = 3;
        const BP: u8 = 5;
        const SI: u8 = 6;
        const DI: u8 = 7;
        let (base, index) = match rm {
            0 => (BX, Some(SI)),
            1 => (BX, Some(DI)),
            2 => (BP, Some(SI)),
            3 => (BP, Some(DI)),
            4 => (SI, None),
            5 => (DI, None),
            6 => (BP, None),
            _ => (BX, None),
        };
        match (md, rm) {
            (0, 6) => mem.disp = c.int(2)?,
            _ => {
                mem.base = Some(base);
                mem.index = index;
                mem.disp = match md {
                    1 => c.int(1)?,
                    2 => c.int(2)?,
                    _ => 0,
                };
            }
        }
        return Ok((reg, mem));
    }
    // 32- and 64-bit addressing: SDM vol. 2, tables 2-2 and 2-3.
    if rm == 4 {
        let sib = c.u8()?;
        let index = ((sib >> 3) & 7) | p.x();
        let base = sib & 7;
        mem.scale = 1 << (sib >> 6);
        // Index 100 without REX.X means none.
        mem.index = (index != 4).then_some(index);
        if base == 5 && md == 0 {
            mem.disp = c.int(4)?;
        } else {
            mem.base = Some(base | p.b());
        }
    } else if rm == 5 && md == 0 {
        mem.disp = c.int(4)?;
        mem.rip_relative = mode == Mode::Bits64;
    } else {
        mem.base = Some(rm | p.b());
    }
    match md {
        1 => mem.disp = c.int(1)?,
        2 => mem.disp = c.int(4)?,
        _ => {}
    }
    Ok((reg, mem))
}

/// The registers a load writes and a store reads, by encoding (RAX = 0 ..
/// R15 = 15).
pub trait RegFile {
    fn get(&self, index: u8) -> u64;
    fn set(&mut self, index: u8, value: u64);
}

/// Writes `value` (the `load.size` bytes read from memory, in its low
/// bits) into `load.dst` as the CPU would: widened per `load.extend` to
/// `load.dst_size`; an 8- or 16-bit write keeps the rest of the register
/// (AH..BH are bits 15:8), a 32-bit write clears bits 63:32 (in 64-bit
/// mode architecturally; outside it those bits are not visible, so
/// clearing them there is as good), a 64-bit write replaces it.
pub fn apply_load(regs: &mut impl RegFile, load: &Load, value: u64) {
    let value = match load.extend {
        Extend::Sign => sign_extend(value, load.size),
        Extend::Zero | Extend::None => value & mask(load.size),
    } & mask(load.dst_size);
    let i = load.dst.index();
    let old = regs.get(i);
    let new = match (load.dst, load.dst_size) {
        (Reg::HighByte(_), _) => (old & !0xff00) | ((value & 0xff) << 8),
        (_, 1) => (old & !0xff) | value,
        (_, 2) => (old & !0xffff) | value,
        // 4 bytes: zero-extended; 8 bytes: the whole register.
        _ => value,
    };
    regs.set(i, new);
}

/// The value a store writes: the immediate, or the low `store.size` bytes
/// of the source register (bits 15:8 for AH..BH).
pub fn store_value(regs: &impl RegFile, store: &Store) -> u64 {
    let v = match store.src {
        Src::Imm(v) => v,
        Src::Reg(r @ Reg::HighByte(_)) => regs.get(r.index()) >> 8,
        Src::Reg(r) => regs.get(r.index()),
    };
    v & mask(store.size)
}
