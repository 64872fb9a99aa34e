//! Instructions that are expected to fault, and how the exception handler
//! resumes after them.
//!
//! Each probe is one instruction whose address, and the address to resume
//! at, go into the `.guest_fixup` section (collected by the linker script).
//! On an exception at a listed address the handler records the error code
//! and CR2, puts `vector + 1` in R11 (zero before the instruction) and
//! resumes; the probe turns that into a [`Fault`]. No probe's asm is
//! declared free of memory effects: the handler writes the fault details
//! while it runs.

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// An exception a probe caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector (13 = #GP, 14 = #PF...).
    pub vector: u8,
    /// The error code (0 for exceptions without one).
    pub error_code: u64,
    /// CR2 at the time (meaningful for #PF).
    pub cr2: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (vector {}), error code {:#x}, cr2 {:#x}",
            crate::idt::name(u64::from(self.vector)),
            self.vector,
            self.error_code,
            self.cr2
        )
    }
}

static LAST_ERROR: AtomicU64 = AtomicU64::new(0);
static LAST_CR2: AtomicU64 = AtomicU64::new(0);

/// One `.guest_fixup` entry: the RIP the exception reports, then the RIP to
/// resume at. Both are local labels of the asm block it appears in.
macro_rules! fixup_entry {
    ($fault:literal, $resume:literal) => {
        concat!(
            ".pushsection .guest_fixup, \"a\"\n",
            ".balign 8\n",
            ".quad ",
            $fault,
            ", ",
            $resume,
            "\n",
            ".popsection"
        )
    };
}
pub(crate) use fixup_entry;

extern "C" {
    static __fixup_start: [u64; 2];
    static __fixup_end: [u64; 2];
}

/// The resume address for an exception at `rip`, if a probe is there.
pub(crate) fn resume_address(rip: u64) -> Option<u64> {
    let start = core::ptr::addr_of!(__fixup_start);
    let end = core::ptr::addr_of!(__fixup_end);
    let n = (end as usize - start as usize) / core::mem::size_of::<[u64; 2]>();
    // SAFETY: the linker script puts the `.guest_fixup` entries, pairs of
    // u64 written by the probes below, between these two symbols; the
    // section is 8-aligned and never written.
    let table = unsafe { core::slice::from_raw_parts(start, n) };
    table.iter().find(|e| e[0] == rip).map(|e| e[1])
}

/// Remembers the details of an exception a probe is about to report.
pub(crate) fn record(error_code: u64, cr2: u64) {
    LAST_ERROR.store(error_code, Ordering::Relaxed);
    LAST_CR2.store(cr2, Ordering::Relaxed);
}

fn fault(marker: u64) -> Option<Fault> {
    (marker != 0).then(|| Fault {
        vector: (marker - 1) as u8,
        error_code: LAST_ERROR.load(Ordering::Relaxed),
        cr2: LAST_CR2.load(Ordering::Relaxed),
    })
}

/// RDMSR that reports a fault (a missing MSR raises #GP) instead of
/// crashing.
pub fn rdmsr(msr: u32) -> Result<u64, Fault> {
    let (lo, hi, marker): (u32, u32, u64);
    // SAFETY: reading an MSR changes no state this program relies on; a
    // fault resumes at label 3 with R11 set (see the module comment).
    unsafe {
        asm!(
            "2: rdmsr",
            "3:",
            fixup_entry!("2b", "3b"),
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    match fault(marker) {
        Some(f) => Err(f),
        None => Ok((u64::from(hi) << 32) | u64::from(lo)),
    }
}

/// WRMSR that reports a fault instead of crashing.
///
/// # Safety
/// As for [`crate::cpu::wrmsr`], should the write succeed.
pub unsafe fn wrmsr(msr: u32, value: u64) -> Result<(), Fault> {
    let marker: u64;
    // SAFETY: the caller vouches for the write; a fault resumes at label 3.
    unsafe {
        asm!(
            "2: wrmsr",
            "3:",
            fixup_entry!("2b", "3b"),
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    fault(marker).map_or(Ok(()), Err)
}

/// Reads 8 bytes at guest-virtual `addr`, reporting a fault (#PF for an
/// unmapped address, #GP for a non-canonical one) instead of crashing.
///
/// # Safety
/// Reading `addr` must have no side effect the caller does not want (MMIO).
pub unsafe fn read_u64(addr: u64) -> Result<u64, Fault> {
    let (value, marker): (u64, u64);
    // SAFETY: the caller vouches for the read's effects; the value is
    // returned by copy, so no reference to the memory is made. A fault
    // resumes at label 3.
    unsafe {
        asm!(
            "2: mov {v}, qword ptr [{a}]",
            "3:",
            fixup_entry!("2b", "3b"),
            a = in(reg) addr,
            v = lateout(reg) value,
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    fault(marker).map_or(Ok(value), Err)
}

/// Executes `int3`. Returns the #BP (vector 3) the guest's IDT received,
/// or `None` if it never arrived.
pub fn breakpoint() -> Option<Fault> {
    let marker: u64;
    // SAFETY: int3 touches no memory; #BP is a trap, so the RIP it reports
    // is already the one after the instruction (label 3).
    unsafe {
        asm!(
            "int3",
            "3:",
            fixup_entry!("3b", "3b"),
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    fault(marker)
}

/// Executes `ud2`. Returns the #UD (vector 6) the guest's IDT received, or
/// `None` if execution went on without one.
pub fn ud2() -> Option<Fault> {
    let marker: u64;
    // SAFETY: ud2 touches no memory; the #UD resumes after it (label 3).
    unsafe {
        asm!(
            "2: ud2",
            "3:",
            fixup_entry!("2b", "3b"),
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    fault(marker)
}

/// CR4 as it reads now.
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 changes nothing.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// MOV to CR4 that reports a fault (#GP for a bit the CPU or hypervisor
/// refuses) instead of crashing.
///
/// # Safety
/// Should the write succeed, the new CR4 must suit the running program.
pub unsafe fn write_cr4(value: u64) -> Result<(), Fault> {
    let marker: u64;
    // SAFETY: the caller vouches for the value; a fault resumes at label 3.
    unsafe {
        asm!(
            "2: mov cr4, {v}",
            "3:",
            fixup_entry!("2b", "3b"),
            v = in(reg) value,
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    fault(marker).map_or(Ok(()), Err)
}
