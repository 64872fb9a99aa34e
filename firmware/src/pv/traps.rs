//! Exceptions, the event upcall and `syscall` from guest user mode, as the
//! hypervisor bounces them to a PV guest (`pv-abi.md` 5.2, Xen's
//! `x86_64/entry.S create_bounce_frame`).
//!
//! Every bounce lands on the guest stack with RSP pointing at
//!
//! ```text
//! rcx, r11, [error code], rip, cs | saved_upcall_mask << 32, rflags, rsp, ss
//! ```
//!
//! (the error code only for the exceptions that have one). One small stub
//! per vector pushes what it is and jumps to the common path, which saves
//! the other registers and the FPU/SSE state, and calls
//! [`pv_trap_dispatch`] with a pointer to everything. The dispatcher
//! records the frame (see [`log`]), lets the event and user-mode handlers
//! act, resumes an instruction that is expected to fault at its fix-up
//! address ([`crate::probe`]'s table), and ends the guest on anything else.
//! The way back is the `iret` hypercall with the frame's
//! `rip, cs, rflags, rsp, ss` and flags 0 (RCX and R11 restored from the
//! frame): by jumping to the hypercall page's `iret` stub, or by pushing
//! RCX, R11, RAX and issuing `syscall` as Linux's `xen_iret` does
//! ([`set_iret_via_syscall`] picks one).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::abi::{callback, nr, page as stub, sel, TrapInfo, TI_MASK_EVENTS};
use super::{hypercall, shared, user};
use crate::{println, report};

/// Vectors 0-31 are exceptions; these codes mark the other entries.
const EVENT: u64 = 0x100;
/// `syscall` from guest user mode.
const SYSCALL: u64 = 0x101;
/// The failsafe callback.
const FAILSAFE: u64 = 0x102;
/// Set in the code a stub pushes when the frame has an error code.
const HAS_EC: u64 = 1 << 16;

/// Exceptions whose bounce frame carries an error code (`X86_EXC_HAVE_EC`
/// in Xen: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX).
pub const HAVE_EC: u32 = (1 << 8)
    | (1 << 10)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14)
    | (1 << 17)
    | (1 << 21)
    | (1 << 29)
    | (1 << 30);

/// Whether the dispatcher's way back is `syscall` (else the page's stub).
#[no_mangle]
static pv_iret_via_syscall: AtomicBool = AtomicBool::new(false);

// The stubs (16 bytes apart from `pv_vectors`), the callback entries, the
// common path, and the user-mode entry and exit.
global_asm!(
    r#"
    .pushsection .text.pv_traps, "ax"

    .macro pv_vector n, ec
    .org pv_vectors + 16 * \n
    pushq $(\n | (\ec << 16))
    jmp pv_trap_common
    .endm

    .balign 16
    .global pv_vectors
pv_vectors:
    pv_vector 0, 0
    pv_vector 1, 0
    pv_vector 2, 0
    pv_vector 3, 0
    pv_vector 4, 0
    pv_vector 5, 0
    pv_vector 6, 0
    pv_vector 7, 0
    pv_vector 8, 1
    pv_vector 9, 0
    pv_vector 10, 1
    pv_vector 11, 1
    pv_vector 12, 1
    pv_vector 13, 1
    pv_vector 14, 1
    pv_vector 15, 0
    pv_vector 16, 0
    pv_vector 17, 1
    pv_vector 18, 0
    pv_vector 19, 0
    pv_vector 20, 0
    pv_vector 21, 1
    pv_vector 22, 0
    pv_vector 23, 0
    pv_vector 24, 0
    pv_vector 25, 0
    pv_vector 26, 0
    pv_vector 27, 0
    pv_vector 28, 0
    pv_vector 29, 1
    pv_vector 30, 1
    pv_vector 31, 0
    .org pv_vectors + 16 * 32

    .global pv_event_entry
pv_event_entry:
    pushq ${event}
    jmp pv_trap_common

    .global pv_syscall_entry
pv_syscall_entry:
    pushq ${syscall}
    jmp pv_trap_common

    .global pv_failsafe_entry
pv_failsafe_entry:
    pushq ${failsafe}
    jmp pv_trap_common

pv_trap_common:
    pushq %rax
    pushq %rbx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rbx
    subq $512, %rsp
    andq $-64, %rsp
    fxsave64 (%rsp)
    movq %rbx, %rdi
    cld
    call pv_trap_dispatch
    testq %rax, %rax
    jnz pv_user_leave
    fxrstor64 (%rsp)
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rbx
    popq %rax
    /* lea and pop leave the flags of this test alone */
    testl ${has_ec}, (%rsp)
    leaq 8(%rsp), %rsp
    popq %rcx
    popq %r11
    jz 1f
    leaq 8(%rsp), %rsp
1:  pushq $0

    /* The iret hypercall, with flags, rip, cs, rflags, rsp, ss pushed. */
pv_iret_tail:
    cmpb $0, pv_iret_via_syscall(%rip)
    jne 2f
    jmp pv_hypercall_page + {iret_stub}
2:  pushq %rcx
    pushq %r11
    pushq %rax
    movl ${iret}, %eax
    syscall
    ud2

    /* pv_user_enter(rip, rsp, rdx for the user, rbx for the user, r12
       for the user): into guest user mode until pv_user_leave. */
    .global pv_user_enter
pv_user_enter:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, pv_user_saved_rsp(%rip)
    movq %rcx, %rbx
    movq %r8, %r12
    pushq ${user_ss}
    pushq %rsi
    pushq ${user_rflags}
    pushq ${user_cs}
    pushq %rdi
    pushq $0
    jmp pv_iret_tail

pv_user_leave:
    movq pv_user_saved_rsp(%rip), %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    xorl %eax, %eax
    ret
    .popsection

    .pushsection .bss.pv_user_saved_rsp, "aw", @nobits
    .balign 8
pv_user_saved_rsp:
    .skip 8
    .popsection
    "#,
    event = const EVENT,
    syscall = const SYSCALL,
    failsafe = const FAILSAFE,
    has_ec = const HAS_EC,
    iret_stub = const nr::IRET as usize * stub::STUB_SIZE,
    iret = const nr::IRET,
    user_ss = const sel::FLAT_SS,
    user_cs = const sel::FLAT_CS,
    user_rflags = const super::abi::rflags::IF,
    options(att_syntax)
);

extern "C" {
    static pv_vectors: [u8; 16 * 32];
    static pv_event_entry: u8;
    static pv_syscall_entry: u8;
    static pv_failsafe_entry: u8;
    fn pv_user_enter(rip: u64, rsp: u64, rdx: u64, rbx: u64, r12: u64) -> u64;
}

/// The address of vector `v`'s stub.
pub fn vector_entry(v: u8) -> u64 {
    core::ptr::addr_of!(pv_vectors) as u64 + 16 * u64::from(v % 32)
}

/// The event callback's address.
pub fn event_entry() -> u64 {
    core::ptr::addr_of!(pv_event_entry) as u64
}

/// The syscall callback's address.
pub fn syscall_entry() -> u64 {
    core::ptr::addr_of!(pv_syscall_entry) as u64
}

/// The failsafe callback's address.
pub fn failsafe_entry() -> u64 {
    core::ptr::addr_of!(pv_failsafe_entry) as u64
}

/// Chooses how handlers return: `true` for `syscall` with RCX, R11, RAX
/// pushed (Linux's `xen_iret`), `false` for a jump to the page's stub.
pub fn set_iret_via_syscall(yes: bool) {
    pv_iret_via_syscall.store(yes, Ordering::SeqCst);
}

/// The trap table this runtime installs: every exception vector but NMI
/// (which has a callback of its own), `int3` and `into` allowed from
/// user mode (DPL 3, as Linux does), and #UD delivered with events masked
/// (flags bit 2), so a test can see `TI_SET_IF` work.
pub fn table() -> [TrapInfo; 32] {
    let mut t = [TrapInfo::default(); 32];
    let mut n = 0;
    for v in 0..32u8 {
        if v == 2 {
            continue;
        }
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        let mask = if v == 6 { TI_MASK_EVENTS } else { 0 };
        t[n] = TrapInfo {
            vector: v,
            flags: dpl | mask,
            cs: sel::FLAT_CS,
            pad: 0,
            address: vector_entry(v),
        };
        n += 1;
    }
    // The 32nd entry stays zero: the end of the table.
    t
}

/// Installs [`table`] and registers the event, failsafe and syscall
/// callbacks (the last two with `CALLBACKF_mask_events`, as Linux does).
/// Returns the four results in that order.
pub fn install() -> [i64; 4] {
    [
        hypercall::set_trap_table(&table()),
        hypercall::register_callback(callback::TYPE_EVENT, 0, event_entry()),
        hypercall::register_callback(
            callback::TYPE_FAILSAFE,
            callback::F_MASK_EVENTS,
            failsafe_entry(),
        ),
        hypercall::register_callback(
            callback::TYPE_SYSCALL,
            callback::F_MASK_EVENTS,
            syscall_entry(),
        ),
    ]
}

/// What arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An exception bounced through the trap table.
    Exception(u8),
    /// The event upcall.
    Event,
    /// `syscall` from guest user mode.
    Syscall,
}

/// One bounce as the handler found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// What it was.
    pub kind: Kind,
    /// Where the frame starts (the RCX slot): RSP when the handler ran.
    pub frame: u64,
    /// RCX and R11 from the frame.
    pub rcx: u64,
    /// R11 from the frame.
    pub r11: u64,
    /// The error code, for the exceptions that have one.
    pub error_code: Option<u64>,
    /// The RIP slot.
    pub rip: u64,
    /// The whole CS slot: the selector in bits 0-15, the saved
    /// `evtchn_upcall_mask` in bits 32-39.
    pub cs: u64,
    /// The RFLAGS slot.
    pub rflags: u64,
    /// The RSP slot.
    pub rsp: u64,
    /// The SS slot.
    pub ss: u64,
    /// RAX, RBX and RDX at the bounce.
    pub rax: u64,
    /// RBX at the bounce.
    pub rbx: u64,
    /// RDX at the bounce.
    pub rdx: u64,
    /// vCPU 0's `evtchn_upcall_mask` when the handler ran (`None` before
    /// shared info is mapped).
    pub mask_on_entry: Option<u8>,
    /// `vcpu_info.arch.cr2` when the handler ran (`None` before shared
    /// info is mapped).
    pub cr2: Option<u64>,
}

impl Record {
    /// The saved `evtchn_upcall_mask` of the CS slot.
    pub fn saved_mask(&self) -> u8 {
        (self.cs >> 32) as u8
    }

    /// The selector of the CS slot.
    pub fn selector(&self) -> u16 {
        self.cs as u16
    }

    /// Whether the bounce came from guest user mode (CS RPL 3).
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// The saved registers and the frame, as the common path left them.
struct Saved(*mut u64);

impl Saved {
    const RBX: usize = 11;
    const RDX: usize = 10;
    const RAX: usize = 12;
    const CODE: usize = 13;
    const RCX: usize = 14;
    const R11: usize = 15;

    fn get(&self, i: usize) -> u64 {
        // SAFETY: `self.0` points at the 16 saved words and the frame of
        // up to 7 more the common path passed (see `pv_trap_common`);
        // callers stay below 23.
        unsafe { self.0.add(i).read_volatile() }
    }

    fn set(&self, i: usize, v: u64) {
        // SAFETY: as for `get`; the words are this stack's, read back by
        // the common path when the dispatcher returns.
        unsafe { self.0.add(i).write_volatile(v) }
    }

    fn code(&self) -> u64 {
        self.get(Self::CODE)
    }

    /// Index of the RIP slot.
    fn rip_slot(&self) -> usize {
        if self.code() & HAS_EC != 0 {
            17
        } else {
            16
        }
    }

    fn record(&self) -> Record {
        let code = self.code();
        let kind = match code & !HAS_EC {
            EVENT => Kind::Event,
            SYSCALL => Kind::Syscall,
            v => Kind::Exception(v as u8),
        };
        let r = self.rip_slot();
        Record {
            kind,
            frame: self.0 as u64 + 8 * Self::RCX as u64,
            rcx: self.get(Self::RCX),
            r11: self.get(Self::R11),
            error_code: (code & HAS_EC != 0).then(|| self.get(16)),
            rip: self.get(r),
            cs: self.get(r + 1),
            rflags: self.get(r + 2),
            rsp: self.get(r + 3),
            ss: self.get(r + 4),
            rax: self.get(Self::RAX),
            rbx: self.get(Self::RBX),
            rdx: self.get(Self::RDX),
            mask_on_entry: shared::upcall_mask(),
            cr2: shared::cr2(),
        }
    }

    fn set_rip(&self, rip: u64) {
        self.set(self.rip_slot(), rip);
    }
}

/// Records kept, newest last.
const LOG: usize = 8;
const WORDS: usize = 17;

static LOG_WORDS: [[AtomicU64; WORDS]; LOG] = [const { [const { AtomicU64::new(0) }; WORDS] }; LOG];
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn encode(r: &Record) -> [u64; WORDS] {
    let kind = match r.kind {
        Kind::Exception(v) => u64::from(v),
        Kind::Event => EVENT,
        Kind::Syscall => SYSCALL,
    };
    let opt = |o: Option<u64>| o.map_or((0, 0), |v| (1, v));
    let (has_ec, ec) = opt(r.error_code);
    let (has_mask, mask) = opt(r.mask_on_entry.map(u64::from));
    let (has_cr2, cr2) = opt(r.cr2);
    [
        kind,
        r.frame,
        r.rcx,
        r.r11,
        has_ec,
        ec,
        r.rip,
        r.cs,
        r.rflags,
        r.rsp,
        r.ss,
        r.rax,
        r.rbx,
        r.rdx,
        has_mask | (has_cr2 << 1),
        mask,
        cr2,
    ]
}

fn decode(w: &[u64; WORDS]) -> Record {
    let kind = match w[0] {
        EVENT => Kind::Event,
        SYSCALL => Kind::Syscall,
        v => Kind::Exception(v as u8),
    };
    Record {
        kind,
        frame: w[1],
        rcx: w[2],
        r11: w[3],
        error_code: (w[4] != 0).then_some(w[5]),
        rip: w[6],
        cs: w[7],
        rflags: w[8],
        rsp: w[9],
        ss: w[10],
        rax: w[11],
        rbx: w[12],
        rdx: w[13],
        mask_on_entry: (w[14] & 1 != 0).then_some(w[15] as u8),
        cr2: (w[14] & 2 != 0).then_some(w[16]),
    }
}

fn push(r: &Record) {
    let n = COUNT.load(Ordering::SeqCst);
    for (slot, v) in LOG_WORDS[n % LOG].iter().zip(encode(r)) {
        slot.store(v, Ordering::SeqCst);
    }
    COUNT.store(n + 1, Ordering::SeqCst);
}

/// How many bounces have arrived since the guest started.
pub fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

/// Bounce number `n` (counting from 0), if it is still in the log of the
/// last eight.
pub fn log(n: usize) -> Option<Record> {
    let c = count();
    if n >= c || c - n > LOG {
        return None;
    }
    let mut w = [0u64; WORDS];
    for (dst, slot) in w.iter_mut().zip(&LOG_WORDS[n % LOG]) {
        *dst = slot.load(Ordering::SeqCst);
    }
    Some(decode(&w))
}

/// The bounces since `since` (a [`count`] taken before), oldest first, at
/// most eight.
pub fn since(since: usize) -> impl Iterator<Item = Record> {
    (since..count()).filter_map(log)
}

/// What the dispatcher tells the common path.
const IRET: u64 = 0;
/// Leave guest user mode for the context `pv_user_enter` saved.
const LEAVE_USER: u64 = 1;

/// Called by the common path with the saved registers and the frame.
#[no_mangle]
extern "C" fn pv_trap_dispatch(saved: *mut u64) -> u64 {
    let saved = Saved(saved);
    if saved.code() == FAILSAFE {
        failsafe();
    }
    let rec = saved.record();
    push(&rec);
    match rec.kind {
        Kind::Event => {
            shared::upcall();
            IRET
        }
        Kind::Syscall if user::active() => {
            if user::on_syscall(&rec) {
                LEAVE_USER
            } else {
                IRET
            }
        }
        Kind::Exception(_) if rec.from_user() && user::active() => match user::on_exception(&rec) {
            Some(resume) => {
                saved.set_rip(resume);
                IRET
            }
            None => LEAVE_USER,
        },
        Kind::Exception(_) => match crate::probe::resume_address(rec.rip) {
            Some(resume) => {
                saved.set_rip(resume);
                IRET
            }
            None => unexpected(&rec),
        },
        Kind::Syscall => unexpected(&rec),
    }
}

/// A bounce nobody expected: say what it was and end the guest.
fn unexpected(r: &Record) -> ! {
    match r.kind {
        Kind::Exception(v) => println!(
            "firmware: unhandled exception {} (vector {v}) at rip {:#x}: error code {:#x}, cr2 {:#x}, rsp {:#x}, cs {:#x}, rflags {:#x}",
            crate::idt::name(u64::from(v)),
            r.rip,
            r.error_code.unwrap_or(0),
            r.cr2.unwrap_or(0),
            r.rsp,
            r.cs,
            r.rflags
        ),
        _ => println!(
            "firmware: unexpected {:?} bounce at rip {:#x}, cs {:#x}, rsp {:#x}",
            r.kind, r.rip, r.cs, r.rsp
        ),
    }
    report::summary();
    crate::shutdown(crate::ShutdownReason::Crash)
}

/// The failsafe callback: a segment reload failed (its frame also holds
/// DS, ES, FS, GS). Nothing here loads segments the hypervisor would have
/// to reload, so it ends the guest.
fn failsafe() -> ! {
    println!("firmware: the failsafe callback ran");
    report::summary();
    crate::shutdown(crate::ShutdownReason::Crash)
}

/// Enters guest user mode at `rip` with `rsp`, RDX = `rdx`, RBX = `rbx`
/// and R12 = `r12` through the `iret` hypercall (CS `FLAT_USER_CS` with
/// RPL 3, events enabled), and returns once [`user`] decides the user
/// program is done.
///
/// # Safety
/// The user root (`MMUEXT_NEW_USER_BASEPTR`), the kernel stack
/// (`stack_switch`), the syscall callback and [`user::begin`] must be in
/// place, and `rip` must be code mapped in the user tables.
pub(crate) unsafe fn enter_user(rip: u64, rsp: u64, rdx: u64, rbx: u64, r12: u64) {
    // SAFETY: the caller vouches for the user-mode setup; the assembly
    // saves this context's callee-saved registers and RSP and restores
    // them when the dispatcher answers LEAVE_USER.
    unsafe {
        pv_user_enter(rip, rsp, rdx, rbx, r12);
    }
}
