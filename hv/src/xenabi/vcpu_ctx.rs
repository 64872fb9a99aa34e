//! `vcpu_hvm_context_t` (`xen/include/public/hvm/hvm_vcpu.h`), the
//! argument of `VCPUOP_initialise` for HVM/PVH guests, decoded and checked
//! into a [`Start`] a vCPU can be loaded with, or -EINVAL. The checks are
//! Xen's (`arch_set_info_hvm_guest`, `check_segment`) plus what the CPU
//! would refuse; a few are stricter: the start is in protected mode at
//! CPL 0, and a 32-bit start is not in long mode. The layout is the same
//! for 32-bit and 64-bit guests.

use super::Abi;
use crate::evtchn::Errno;

/// The structure's size: mode, pad and the larger union member.
pub const SIZE: usize = 128;

/// The structure's size for a guest with `abi` (the same in both).
pub const fn size(_abi: Abi) -> usize {
    SIZE
}

const MODE_32B: u32 = 0;
const MODE_64B: u32 = 1;

/// One segment: base, byte limit and the descriptor's attribute bits
/// packed as in the VMCB (type, S, DPL, P in 0..8; AVL, L, D/B, G in
/// 8..12). Attribute 0 is a null segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seg {
    /// Base address.
    pub base: u64,
    /// Byte limit.
    pub limit: u32,
    /// Attribute bits.
    pub attr: u16,
}

/// A complete, checked start state: general-purpose registers in Xen's
/// order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI), control registers,
/// EFER (with LMA as the CPU would set it) and the segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Start {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI.
    pub gprs: [u64; 8],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags (bit 1 set).
    pub rflags: u64,
    /// CR0 (ET set).
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER, LMA following LME and CR0.PG.
    pub efer: u64,
    /// Code segment.
    pub cs: Seg,
    /// Data segment.
    pub ds: Seg,
    /// Stack segment.
    pub ss: Seg,
    /// Extra segment.
    pub es: Seg,
    /// Task register.
    pub tr: Seg,
}

impl Start {
    /// Index of RSP in [`Start::gprs`].
    pub const RSP: usize = 4;
}

/// Little-endian fields of the context (0 beyond its end).
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn get<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut a = [0u8; N];
        if let Some(s) = self.0.get(off..off.saturating_add(N)) {
            a.copy_from_slice(s);
        }
        a
    }
    fn u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.get(off))
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.get(off))
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.get(off))
    }
}

use crate::regbits::{
    CR0_CD, CR0_ET, CR0_NW, CR0_PE, CR0_PG, CR4_FSGSBASE, CR4_OSXSAVE, CR4_PAE, EFER_LMA, EFER_LME,
    EFER_NXE, EFER_SCE,
};

/// PE MP EM TS ET NE WP AM NW CD PG.
const CR0_KNOWN: u64 = 0x3f | (1 << 16) | (1 << 18) | CR0_NW | CR0_CD | CR0_PG;
/// VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT.
const CR4_BASE: u64 = 0x7ff;
/// RFLAGS bits that must be 0: reserved (3, 5, 15, 22..) and VM (17).
const RFLAGS_MBZ: u64 = (1 << 3) | (1 << 5) | (1 << 15) | (1 << 17) | !0x3f_ffff;
const RFLAGS_MBS: u64 = 1 << 1;

/// What the host CPU allows in a guest's control registers.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Physical address bits (CR3 must fit).
    pub phys_bits: u32,
    /// CR4.OSXSAVE may be set.
    pub xsave: bool,
    /// CR4.FSGSBASE may be set.
    pub fsgsbase: bool,
    /// EFER.NXE may be set.
    pub nx: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cs,
    Ss,
    DsEs,
    Tr,
}

/// Xen's `check_segment`, after setting the accessed (busy for TR) bit of
/// a present segment, plus the limit/granularity agreement VMX requires.
fn segment(base: u32, limit: u32, attr: u16, kind: Kind) -> Result<Seg, Errno> {
    let mut attr = attr;
    if attr & 0xf000 != 0 {
        return Err(Errno::Inval);
    }
    if attr == 0 {
        return match kind {
            Kind::DsEs => Ok(Seg::default()),
            _ => Err(Errno::Inval),
        };
    }
    let present = attr & 0x80 != 0;
    if present {
        attr |= if kind == Kind::Tr { 2 } else { 1 };
    }
    let (ty, system) = (attr & 0xf, attr & 0x10 == 0);
    let ok = present
        && match kind {
            Kind::Tr => system && ty == 0xb,
            Kind::Cs => !system && ty & 8 != 0 && attr & (1 << 9) == 0,
            Kind::Ss => !system && ty & 8 == 0 && ty & 2 != 0,
            Kind::DsEs => !system && (ty & 8 == 0 || ty & 2 != 0),
        };
    let g = attr & (1 << 11) != 0;
    let limit_ok = if g {
        limit & 0xfff == 0xfff
    } else {
        limit >> 20 == 0
    };
    if !ok || !limit_ok {
        return Err(Errno::Inval);
    }
    Ok(Seg {
        base: base.into(),
        limit,
        attr,
    })
}

/// The descriptor privilege level of a segment.
fn dpl(s: &Seg) -> u16 {
    (s.attr >> 5) & 3
}

/// Checks what both modes share: CR0, CR4, EFER (LMA made to follow LME
/// and CR0.PG), CR3 and RFLAGS.
fn control(s: &mut Start, lim: &Limits) -> Result<(), Errno> {
    s.cr0 |= CR0_ET;
    let pg = s.cr0 & CR0_PG != 0;
    let mut cr4_ok = CR4_BASE;
    if lim.xsave {
        cr4_ok |= CR4_OSXSAVE;
    }
    if lim.fsgsbase {
        cr4_ok |= CR4_FSGSBASE;
    }
    let mut efer_ok = EFER_SCE | EFER_LME | EFER_LMA;
    if lim.nx {
        efer_ok |= EFER_NXE;
    }
    let lma = s.efer & EFER_LME != 0 && pg;
    let bad = s.cr0 & !CR0_KNOWN != 0
        || s.cr0 & CR0_PE == 0
        || (s.cr0 & CR0_NW != 0 && s.cr0 & CR0_CD == 0)
        || s.cr4 & !cr4_ok != 0
        || s.efer & !efer_ok != 0
        || (s.efer & EFER_LMA != 0 && !lma)
        || (lma && s.cr4 & CR4_PAE == 0)
        || s.cr3 >> lim.phys_bits.clamp(32, 52) != 0
        || s.rflags & RFLAGS_MBZ != 0;
    if bad {
        return Err(Errno::Inval);
    }
    s.efer = (s.efer & !EFER_LMA) | if lma { EFER_LMA } else { 0 };
    s.rflags |= RFLAGS_MBS;
    Ok(())
}

/// Decodes and checks the context in `b`.
pub fn parse(b: &[u8; SIZE], lim: &Limits) -> Result<Start, Errno> {
    let f = Fields(b.as_slice());
    if f.u32(4) != 0 {
        return Err(Errno::Inval);
    }
    let mut s = Start::default();
    match f.u32(0) {
        MODE_32B => {
            let r = |i: usize| u64::from(f.u32(8 + 4 * i));
            for (i, g) in s.gprs.iter_mut().enumerate() {
                *g = r(i);
            }
            (s.rip, s.rflags) = (r(8), r(9));
            (s.cr0, s.cr3, s.cr4) = (r(10), r(11), r(12));
            s.efer = f.u64(64);
            let pads = f.u32(60) != 0 || f.u16(122) != 0 || f.u16(124) != 0 || f.u16(126) != 0;
            if pads {
                return Err(Errno::Inval);
            }
            // Bases at 72, limits at 92, attributes at 112: CS DS SS ES TR.
            let seg = |i: usize, kind| {
                segment(
                    f.u32(72 + 4 * i),
                    f.u32(92 + 4 * i),
                    f.u16(112 + 2 * i),
                    kind,
                )
            };
            s.cs = seg(0, Kind::Cs)?;
            s.ds = seg(1, Kind::DsEs)?;
            s.ss = seg(2, Kind::Ss)?;
            s.es = seg(3, Kind::DsEs)?;
            s.tr = seg(4, Kind::Tr)?;
            control(&mut s, lim)?;
            let limit = if s.cs.attr & (1 << 11) != 0 {
                u64::from(s.cs.limit) | 0xfff
            } else {
                u64::from(s.cs.limit)
            };
            let bad = s.rip > limit
                || dpl(&s.cs) != 0
                || dpl(&s.ss) != 0
                || (s.ds.attr != 0 && dpl(&s.ds) > dpl(&s.cs))
                || (s.es.attr != 0 && dpl(&s.es) > dpl(&s.cs))
                || s.efer & EFER_LMA != 0;
            if bad {
                return Err(Errno::Inval);
            }
        }
        MODE_64B => {
            let r = |i: usize| f.u64(8 + 8 * i);
            for (i, g) in s.gprs.iter_mut().enumerate() {
                *g = r(i);
            }
            (s.rip, s.rflags) = (r(8), r(9));
            (s.cr0, s.cr3, s.cr4, s.efer) = (r(10), r(11), r(12), r(13));
            let canonical = |a: u64| ((a as i64) << 16 >> 16) as u64 == a;
            if !canonical(s.rip)
                || s.cr0 & CR0_PG == 0
                || s.cr4 & CR4_PAE == 0
                || s.efer & EFER_LME == 0
            {
                return Err(Errno::Inval);
            }
            let flat = |attr| Seg {
                base: 0,
                limit: u32::MAX,
                attr,
            };
            s.cs = flat(0xa9b);
            (s.ds, s.ss, s.es) = (flat(0xc93), flat(0xc93), flat(0xc93));
            s.tr = Seg {
                base: 0,
                limit: 0x67,
                attr: 0x8b,
            };
            control(&mut s, lim)?;
        }
        _ => return Err(Errno::Inval),
    }
    Ok(s)
}
