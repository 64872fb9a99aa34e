//! Instructions expected to trap, run from guest kernel mode: each sits
//! in an `asm!` block with a `.guest_fixup` entry ([`crate::probe`]'s
//! table), so that the dispatcher in [`super::traps`] resumes after it and
//! the bounce it caused is in [`traps::log`] for the caller to inspect.
//! [`provoke`] also records the state the frame should reflect.

use core::arch::asm;

use super::traps::{count, since, Kind, Record};
use crate::probe::fixup_entry;

/// A bounce in short: what arrived and its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trapped {
    /// What arrived.
    pub kind: Kind,
    /// The error code, if the vector has one.
    pub error_code: Option<u64>,
}

impl From<Record> for Trapped {
    fn from(r: Record) -> Trapped {
        Trapped {
            kind: r.kind,
            error_code: r.error_code,
        }
    }
}

/// `Ok(value)` if nothing bounced since `before`, else what did.
fn outcome<T>(before: usize, value: T) -> Result<T, Trapped> {
    match since(before).last() {
        Some(r) => Err(r.into()),
        None => Ok(value),
    }
}

/// What an instruction expected to trap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provoked {
    /// The bounce, if one arrived.
    pub record: Option<Record>,
    /// The instruction's address.
    pub at: u64,
    /// The address after it.
    pub next: u64,
    /// RSP when it ran.
    pub rsp: u64,
    /// RFLAGS (PUSHF) just before it.
    pub rflags: u64,
    /// RCX, R11 and RAX were loaded with [`MARKS`] before it; their
    /// values after the return.
    pub after: [u64; 3],
}

/// What RCX, R11 and RAX hold when a provoked exception happens, so that
/// the frame's RCX and R11 and the registers after `iret` can be checked.
pub const MARKS: [u64; 3] = [
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x9999_aaaa_bbbb_cccc,
];

/// The instructions [`provoke`] executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `ud2`: #UD.
    Ud2,
    /// `int3`: #BP, reported at the next instruction.
    Int3,
    /// `hlt` in ring 3: #GP(0) (Xen's `emul-priv-op.c validate` does not
    /// emulate it).
    Hlt,
    /// A store of the value (8 bytes, in RAX instead of its mark) at the
    /// address, which must be unmapped or map a page of the pool
    /// ([`super::mm::probe_writable`]; anything else panics).
    Write(u64, u64),
    /// A load of 8 bytes from the address (into RDX).
    Read(u64),
    /// `fnop`, an x87 instruction: #NM while CR0.TS is set.
    Fnop,
}

/// Executes `trigger` with RCX, R11, RAX set to [`MARKS`], expecting a
/// bounce that resumes after it (at the fix-up address).
pub fn provoke(trigger: Trigger) -> Provoked {
    if let Trigger::Write(va, _) = trigger {
        assert!(
            super::mm::probe_writable(va),
            "a probe store at {va:#x} would reach memory this program uses"
        );
    }
    let before = count();
    let (at, next, rsp, rflags): (u64, u64, u64, u64);
    let (rcx, r11, rax): (u64, u64, u64);
    // SAFETY: each instruction either faults, and the dispatcher resumes at
    // label 3 by the fix-up entry (#BP reports label 3 itself), or (a
    // store or load the hypervisor lets through) touches only the address
    // named: a load changes nothing, and a store's address was checked
    // above to be unmapped or to reach a pool page, which no Rust value
    // lives in. RCX, R11 and RAX are declared clobbered.
    unsafe {
        // An instruction without operands at label 2; the fix-up entry
        // names where the fault is reported (`$from`) and resumes at 3.
        macro_rules! plain {
            ($insn:literal, $from:literal) => {
                asm!(
                    "pushfq", "popq {fl}",
                    "leaq 2f(%rip), {at}", "leaq 3f(%rip), {nx}", "movq %rsp, {sp}",
                    $insn, "3:",
                    fixup_entry!($from, "3b"),
                    fl = out(reg) rflags, at = out(reg) at, nx = out(reg) next, sp = out(reg) rsp,
                    inout("rcx") MARKS[0] => rcx, inout("r11") MARKS[1] => r11,
                    inout("rax") MARKS[2] => rax,
                    options(att_syntax),
                )
            };
        }
        match trigger {
            Trigger::Ud2 => plain!("2: ud2", "2b"),
            Trigger::Int3 => plain!("2: int3", "3b"),
            Trigger::Hlt => plain!("2: hlt", "2b"),
            Trigger::Fnop => plain!("2: fnop", "2b"),
            Trigger::Write(va, value) => asm!(
                "pushfq", "popq {fl}",
                "leaq 2f(%rip), {at}", "leaq 3f(%rip), {nx}", "movq %rsp, {sp}",
                "2: movq %rax, ({va})", "3:",
                fixup_entry!("2b", "3b"),
                va = in(reg) va,
                fl = out(reg) rflags, at = out(reg) at, nx = out(reg) next, sp = out(reg) rsp,
                inout("rcx") MARKS[0] => rcx, inout("r11") MARKS[1] => r11,
                inout("rax") value => rax,
                options(att_syntax),
            ),
            Trigger::Read(va) => asm!(
                "pushfq", "popq {fl}",
                "leaq 2f(%rip), {at}", "leaq 3f(%rip), {nx}", "movq %rsp, {sp}",
                "movq %rax, %rdx",
                "2: movq ({va}), %rdx", "3:",
                fixup_entry!("2b", "3b"),
                va = in(reg) va,
                fl = out(reg) rflags, at = out(reg) at, nx = out(reg) next, sp = out(reg) rsp,
                inout("rcx") MARKS[0] => rcx, inout("r11") MARKS[1] => r11,
                inout("rax") MARKS[2] => rax, out("rdx") _,
                options(att_syntax),
            ),
        }
    }
    Provoked {
        record: since(before).last(),
        at,
        next,
        rsp,
        rflags,
        after: [rcx, r11, rax],
    }
}

/// The 8 bytes at `va`, or the bounce (#PF, #GP) the load raised.
pub fn peek(va: u64) -> Result<u64, Trapped> {
    let before = count();
    let value: u64;
    // SAFETY: a load changes nothing; a fault resumes at label 3.
    unsafe {
        asm!(
            "2: movq ({a}), {v}", "3:",
            fixup_entry!("2b", "3b"),
            a = in(reg) va,
            v = inout(reg) 0u64 => value,
            options(att_syntax, nostack),
        );
    }
    outcome(before, value)
}

/// `mov %cr3, %reg` (a #GP in ring 3 that Xen emulates for the guest
/// kernel, `emul-priv-op.c read_cr`): `Ok(value)`, or the bounce if it was
/// not emulated.
pub fn read_cr3() -> Result<u64, Trapped> {
    let before = count();
    let value: u64;
    // SAFETY: reading CR3 changes nothing; a #GP resumes at label 3 with
    // `value` as it was (0).
    unsafe {
        asm!(
            "2: movq %cr3, {v}", "3:",
            fixup_entry!("2b", "3b"),
            v = inout(reg) 0u64 => value,
            options(att_syntax, nostack),
        );
    }
    outcome(before, value)
}

/// Loads `selector` into DS, reads DS back and loads the null selector
/// again: `Ok(read back)`, or the bounce (#GP, #NP) the load raised.
pub fn load_ds(selector: u16) -> Result<u16, Trapped> {
    let before = count();
    let back: u64;
    // SAFETY: in 64-bit mode DS's base and limit are ignored, so no access
    // of this program changes meaning; a fault resumes at label 3 and DS
    // is null again either way.
    unsafe {
        asm!(
            "xorl %eax, %eax",
            "2: movw {s:x}, %ds", "3:",
            fixup_entry!("2b", "3b"),
            "movw %ds, %ax",
            "movq %rax, {b}",
            "xorl %eax, %eax",
            "movw %ax, %ds",
            s = in(reg) u64::from(selector),
            b = out(reg) back,
            out("rax") _,
            options(att_syntax, nostack),
        );
    }
    outcome(before, back as u16)
}

/// The selector in GS.
pub fn gs_selector() -> u16 {
    let sel: u16;
    // SAFETY: reads a segment register.
    unsafe { asm!("movw %gs, {s:x}", s = out(reg) sel, options(att_syntax, nomem, nostack)) };
    sel
}

/// `pub fn $name(offset) -> Result<u64, Trapped>`: the 8 bytes at
/// `%$seg:offset`.
macro_rules! segment_read {
    ($name:ident, $seg:literal) => {
        #[doc = concat!("The 8 bytes at `%", $seg, ":offset`.")]
        pub fn $name(offset: u64) -> Result<u64, Trapped> {
            let before = count();
            let value: u64;
            // SAFETY: a load through the segment, whose base the caller set
            // to a mapped buffer; a fault resumes at label 3.
            unsafe {
                asm!(
                    concat!("2: movq %", $seg, ":({o}), {v}"), "3:",
                    fixup_entry!("2b", "3b"),
                    o = in(reg) offset,
                    v = inout(reg) 0u64 => value,
                    options(att_syntax, nostack),
                );
            }
            outcome(before, value)
        }
    };
}

segment_read!(read_fs, "fs");
segment_read!(read_gs, "gs");
