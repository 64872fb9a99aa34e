//! The guest's IDT: the 32 exception vectors, each on an IST stack (the
//! precompiled `core` writes below RSP, so an exception must not push onto
//! the interrupted stack).
//!
//! An exception at a [`crate::probe`] site resumes after it; any other is
//! printed (vector, RIP, error code, CR2) and ends the guest with
//! `SHUTDOWN_crash`.
//!
//! Vectors 32..=255 are interrupts: [`set_interrupt_handler`] installs a
//! Rust function for one (on IST2, away from the exception stack, so an
//! exception inside the handler does not overwrite its frame). An interrupt
//! at a vector without a handler is reported like an unhandled exception.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::boot::CODE64_SELECTOR;
use crate::power::{shutdown, ShutdownReason};
use crate::{println, probe};

/// Number of exception vectors.
const VECTORS: usize = 32;
/// Number of gates: exceptions and interrupts.
const GATES: usize = 256;
/// Bytes between two interrupt stubs (`fw_irq_stubs`).
const IRQ_STUB_SIZE: u64 = 16;

/// The registers the common stub saves, lowest address first, then what
/// the stub and the CPU pushed.
#[repr(C)]
#[derive(Debug)]
struct Frame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 22 * 8);

// One stub per vector: push a zero where the CPU pushes no error code, push
// the vector, join the common path. The common path saves the integer
// registers and the SSE state (a probe resumes the interrupted code, whose
// XMM registers the Rust handler may have used), calls `fw_exception` with
// the frame, and returns with IRETQ. 15 pushes on top of the CPU's 5 and the
// stub's 2 keep RSP 16-byte aligned for FXSAVE and the call.
global_asm!(
    r#"
    .macro FW_EXC_STUB vec, err
    .balign 16
fw_exc_stub_\vec:
    .if \err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp fw_exc_common
    .endm

    .section .text.fw_exc, "ax"
    FW_EXC_STUB 0, 0
    FW_EXC_STUB 1, 0
    FW_EXC_STUB 2, 0
    FW_EXC_STUB 3, 0
    FW_EXC_STUB 4, 0
    FW_EXC_STUB 5, 0
    FW_EXC_STUB 6, 0
    FW_EXC_STUB 7, 0
    FW_EXC_STUB 8, 1
    FW_EXC_STUB 9, 0
    FW_EXC_STUB 10, 1
    FW_EXC_STUB 11, 1
    FW_EXC_STUB 12, 1
    FW_EXC_STUB 13, 1
    FW_EXC_STUB 14, 1
    FW_EXC_STUB 15, 0
    FW_EXC_STUB 16, 0
    FW_EXC_STUB 17, 1
    FW_EXC_STUB 18, 0
    FW_EXC_STUB 19, 0
    FW_EXC_STUB 20, 0
    FW_EXC_STUB 21, 1
    FW_EXC_STUB 22, 0
    FW_EXC_STUB 23, 0
    FW_EXC_STUB 24, 0
    FW_EXC_STUB 25, 0
    FW_EXC_STUB 26, 0
    FW_EXC_STUB 27, 0
    FW_EXC_STUB 28, 0
    FW_EXC_STUB 29, 1
    FW_EXC_STUB 30, 1
    FW_EXC_STUB 31, 0

fw_exc_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    subq $512, %rsp
    fxsave64 (%rsp)
    cld
    call fw_exception
    fxrstor64 (%rsp)
    addq $512, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    /* Interrupt stubs for vectors 32..=255, IRQ_STUB_SIZE bytes apart. */
    .balign 16
    .global fw_irq_stubs
fw_irq_stubs:
    .set fw_irq_vec, 32
    .rept 224
    .balign 16
    pushq $0
    pushq $fw_irq_vec
    jmp fw_exc_common
    .set fw_irq_vec, fw_irq_vec + 1
    .endr

    .section .rodata.fw_exc_stubs, "a"
    .balign 8
    .global fw_exc_stubs
fw_exc_stubs:
    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad fw_exc_stub_\vec
    .endr
    "#,
    options(att_syntax)
);

extern "C" {
    static fw_exc_stubs: [u64; VECTORS];
    static fw_irq_stubs: [u8; 224 * IRQ_STUB_SIZE as usize];
}

/// An IDT gate (interrupt gate, 64-bit).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Gate>() == 16);

impl Gate {
    const EMPTY: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present, DPL 0 interrupt gate (type 0xE) to `handler` on IST `ist`.
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: CODE64_SELECTOR,
            ist,
            attributes: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; GATES]>);

// SAFETY: the guest runs on one vCPU; the table is written by `init`,
// before it is loaded, and by `set_interrupt_handler` with interrupts off.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([Gate::EMPTY; GATES]));

/// The Rust handler of each interrupt vector (a `fn()` as usize, 0: none).
static HANDLERS: [AtomicUsize; GATES] = [const { AtomicUsize::new(0) }; GATES];

/// Fills in the IDT and loads it. Called once by the runtime before the
/// guest's code runs.
pub(crate) fn init() {
    // SAFETY: `fw_exc_stubs` is the read-only table of stub addresses
    // defined above.
    let stubs = unsafe { &*core::ptr::addr_of!(fw_exc_stubs) };
    // SAFETY: single vCPU, interrupts off, and the IDT is not loaded yet
    // (or reloaded with the same contents): nothing else reads or writes
    // the table while this reference lives.
    let idt = unsafe { &mut *IDT.0.get() };
    for (vector, gate) in idt.iter_mut().take(VECTORS).enumerate() {
        // #DF, NMI and #MC get their own stack so that they can arrive
        // while another exception is being handled.
        let ist = if matches!(vector, 2 | 8 | 18) { 2 } else { 1 };
        *gate = Gate::interrupt(stubs[vector], ist);
    }
    load();
}

/// Loads this runtime's IDT (again).
pub fn load() {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer {
        limit: (core::mem::size_of::<[Gate; GATES]>() - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the descriptor points at the static IDT, whose gates point at
    // the stubs above; LIDT only reads the descriptor.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

/// Makes interrupts at `vector` (32..=255) call `handler` with interrupts
/// off; it returns with IRETQ (no local APIC EOI is sent: interrupts that
/// need one must send it themselves). Returns false for an exception vector.
pub fn set_interrupt_handler(vector: u8, handler: fn()) -> bool {
    if usize::from(vector) < VECTORS {
        return false;
    }
    HANDLERS[usize::from(vector)].store(handler as usize, Ordering::Release);
    // Only the address of the stub block defined above is taken.
    let stubs = core::ptr::addr_of!(fw_irq_stubs) as u64;
    let stub = stubs + (u64::from(vector) - VECTORS as u64) * IRQ_STUB_SIZE;
    let rflags: u64;
    // SAFETY: saving RFLAGS and clearing IF touches no memory but the stack.
    unsafe { asm!("pushfq", "pop {}", "cli", out(reg) rflags) };
    // SAFETY: interrupts are off and the guest has one vCPU, so nothing
    // reads the gate while it is written; `stub` pushes a zero error code
    // and the vector and enters the common path.
    unsafe { (*IDT.0.get())[usize::from(vector)] = Gate::interrupt(stub, 2) };
    if rflags & (1 << 9) != 0 {
        // SAFETY: interrupts were on before; turning them back on is what
        // the caller had.
        unsafe { asm!("sti", options(nomem, nostack)) };
    }
    true
}

/// Loads an empty IDT and executes `int3`: neither the #BP, nor the #GP
/// for it, nor the #DF for that can be delivered, so the CPU shuts down
/// (triple fault). Returns, with this runtime's IDT loaded again, only if
/// execution went on after that.
pub fn triple_fault() {
    let empty = [0u16; 5];
    // SAFETY: the empty descriptor (limit 0, base 0) is only read by LIDT.
    // Exceptions cannot be delivered until `load` below, which is the
    // point; int3 itself touches no memory.
    unsafe {
        asm!("lidt [{}]", "int3", in(reg) empty.as_ptr(), options(readonly, nostack));
    }
    load();
}

/// The exception's mnemonic.
pub fn name(vector: u64) -> &'static str {
    const NAMES: [&str; VECTORS] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
        "#GP", "#PF", "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "reserved", "reserved",
        "reserved", "reserved", "reserved", "reserved", "#HV", "#VC", "#SX", "reserved",
    ];
    usize::try_from(vector)
        .ok()
        .and_then(|v| NAMES.get(v))
        .copied()
        .unwrap_or("?")
}

/// Called by the common stub with the saved frame.
#[no_mangle]
extern "C" fn fw_exception(frame: &mut Frame) {
    if let Some(slot) = HANDLERS
        .get(frame.vector as usize)
        .filter(|_| frame.vector >= 32)
    {
        let handler = slot.load(Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_interrupt_handler` stores non-zero values,
            // and it stores `fn()` pointers.
            let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
            handler();
            return;
        }
    }
    let cr2 = crate::cpu::read_cr2();
    if let Some(resume) = probe::resume_address(frame.rip) {
        probe::record(frame.error_code, cr2);
        frame.r11 = frame.vector + 1;
        frame.rip = resume;
        return;
    }
    if frame.vector == 14 && crate::boot::is_stack_guard(cr2) {
        println!(
            "firmware: boot stack overflow ({} KiB): a #PF on the guard page below it at rip {:#x}, cr2 {cr2:#x}",
            crate::boot::BOOT_STACK_SIZE / 1024,
            frame.rip
        );
    }
    println!(
        "firmware: unhandled exception {} (vector {}) at rip {:#x}: error code {:#x}, cr2 {:#x}, rsp {:#x}, rflags {:#x}",
        name(frame.vector),
        frame.vector,
        frame.rip,
        frame.error_code,
        cr2,
        frame.rsp,
        frame.rflags
    );
    shutdown(ShutdownReason::Crash);
}
