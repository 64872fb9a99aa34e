//! A round trip through guest user mode.
//!
//! The user program (copied by the guest into a page it maps in a user
//! root) uses its stack, calls the kernel with `syscall`, executes `int3`,
//! reads a kernel address it cannot reach, and ends with a second
//! `syscall` carrying [`FINISH`] in RAX:
//!
//! ```text
//! push %rbx; pop %rax     RAX = the marker the kernel put in RBX
//! syscall                 bounced to the syscall callback; iret back
//! int3                    bounced to the #BP handler with CS RPL 3; iret back
//! mov (%rdx), %rax        #PF from user mode (error code U); resumed after it
//! mov %r12, %rax          R12 = FINISH
//! syscall                 the kernel leaves user mode for good
//! ud2
//! ```
//!
//! [`run`] enters it through the `iret` hypercall; the dispatcher in
//! [`super::traps`] calls [`on_syscall`] and [`on_exception`] for bounces
//! from user mode while a run is active, and the run ends when the
//! program says [`FINISH`] or does something it should not.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::traps::{self, Kind, Record};

/// What the program's last `syscall` carries in RAX.
pub const FINISH: u64 = 0xf1f1_5eed_0000_0002;

global_asm!(
    r#"
    .pushsection .rodata.pv_user_program, "a"
    .global pv_user_program
pv_user_program:
    pushq %rbx
    popq %rax
    syscall
pv_user_after_syscall1:
    int3
pv_user_after_int3:
pv_user_load:
    movq (%rdx), %rax
pv_user_after_load:
    movq %r12, %rax
    syscall
pv_user_after_syscall2:
    ud2
pv_user_program_end:

    .balign 8
    .global pv_user_offsets
pv_user_offsets:
    .quad pv_user_after_syscall1 - pv_user_program
    .quad pv_user_after_int3 - pv_user_program
    .quad pv_user_load - pv_user_program
    .quad pv_user_after_load - pv_user_program
    .quad pv_user_after_syscall2 - pv_user_program
    .quad pv_user_program_end - pv_user_program
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    static pv_user_program: u8;
    static pv_user_offsets: [u64; 6];
}

/// Where, relative to the program's start, its bounces should report RIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// After the first `syscall` (RCX and the frame's RIP).
    pub after_syscall1: u64,
    /// After `int3` (#BP is a trap).
    pub after_int3: u64,
    /// The load that faults.
    pub load: u64,
    /// After it.
    pub after_load: u64,
    /// After the last `syscall`.
    pub after_syscall2: u64,
}

/// The program's offsets.
pub fn offsets() -> Offsets {
    // SAFETY: `pv_user_offsets` is six quads the assembler computed, never
    // written.
    let o = unsafe { core::ptr::addr_of!(pv_user_offsets).read() };
    Offsets {
        after_syscall1: o[0],
        after_int3: o[1],
        load: o[2],
        after_load: o[3],
        after_syscall2: o[4],
    }
}

/// The program's bytes.
pub fn program() -> &'static [u8] {
    // SAFETY: `pv_user_offsets[5]` bytes of read-only data start at
    // `pv_user_program`.
    unsafe {
        let len = core::ptr::addr_of!(pv_user_offsets).read()[5] as usize;
        core::slice::from_raw_parts(core::ptr::addr_of!(pv_user_program), len)
    }
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static ABORTED: AtomicBool = AtomicBool::new(false);
static BASE: AtomicU64 = AtomicU64::new(0);

/// Whether a run is in progress (bounces from user mode are the
/// program's).
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// A `syscall` from the program: `true` ends the run.
pub(crate) fn on_syscall(r: &Record) -> bool {
    if r.rax == FINISH {
        ACTIVE.store(false, Ordering::SeqCst);
        return true;
    }
    false
}

/// An exception in the program: where to resume it, or `None` to end
/// the run (anything but the `int3` and the faulting load).
pub(crate) fn on_exception(r: &Record) -> Option<u64> {
    let base = BASE.load(Ordering::SeqCst);
    let o = offsets();
    match r.kind {
        Kind::Exception(3) => return Some(r.rip),
        Kind::Exception(14) if r.rip == base + o.load => return Some(base + o.after_load),
        _ => {}
    }
    ABORTED.store(true, Ordering::SeqCst);
    ACTIVE.store(false, Ordering::SeqCst);
    None
}

/// How a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// [`traps::count`] before it: its bounces are `traps::since(first)`.
    pub first: usize,
    /// Whether the program did something unexpected and was stopped.
    pub aborted: bool,
}

/// Runs the program, copied to `code_va` in the user tables, with its
/// stack ending at `stack_top`, `marker` in RBX and `kernel_va` (which
/// the user tables must not map) in RDX.
///
/// The caller must have installed the user root, the kernel stack and
/// the callbacks (`traps::install`, `stack_switch`,
/// `MMUEXT_NEW_USER_BASEPTR`); the hypervisor crashes a domain that
/// returns to user mode without a user root.
pub fn run(code_va: u64, stack_top: u64, marker: u64, kernel_va: u64) -> Run {
    let first = traps::count();
    BASE.store(code_va, Ordering::SeqCst);
    ABORTED.store(false, Ordering::SeqCst);
    ACTIVE.store(true, Ordering::SeqCst);
    // SAFETY: the caller has set up user mode as documented above; the
    // program ends with a FINISH syscall, and anything unexpected also
    // ends the run (`on_exception`).
    unsafe { traps::enter_user(code_va, stack_top, kernel_va, marker, FINISH) };
    ACTIVE.store(false, Ordering::SeqCst);
    Run {
        first,
        aborted: ABORTED.load(Ordering::SeqCst),
    }
}
