//! The VMRUN entry and exit code: guest general-purpose registers and
//! extended state (XSAVE with the guest's XCR0, or FXSAVE) in, VMLOAD and
//! VMRUN, everything back out after the exit.

use super::super::xstate::Switch;
use crate::virt::GuestRegs;
use core::arch::global_asm;

/// What `hv_svm_run` reads and writes, in this order.
#[repr(C, align(64))]
#[derive(Debug)]
pub(super) struct RunState {
    pub(super) regs: GuestRegs,
    pub(super) xstate: Switch,
}

const _: () = assert!(core::mem::offset_of!(RunState, xstate) == 0x70);

global_asm!(
    r#"
    .section .text.hv_svm_run, "ax"
    .global hv_svm_run
    /* rdi = RunState, rsi = guest VMCB pa, rdx = host VMCB pa */
hv_svm_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdx
    push rdi
    /* Extended state: the guest's in. The host keeps nothing in it across
       this call (the vector registers are all caller-saved, and MXCSR and
       the x87 control word are put back to their defaults on the way out),
       so it is not saved. With XSAVE (requested-feature mask all ones) the
       guest's area is restored under the host's XCR0, which has every
       component a guest may enable: one the guest has not enabled is
       clear in the area's XSTATE_BV and so put in its initial
       configuration, not left as another vCPU had it. Then the guest's
       XCR0. */
    mov r10, [rdi + 0x70]
    cmp qword ptr [rdi + 0x90], 0
    je .Lsvm_fx_in
    mov eax, -1
    mov edx, -1
    xrstor64 [r10]
    mov rax, [rdi + 0x80]
    cmp rax, [rdi + 0x88]
    je .Lsvm_state_in
    mov rdx, rax
    shr rdx, 32
    xor ecx, ecx
    xsetbv
    jmp .Lsvm_state_in
.Lsvm_fx_in:
    fxrstor64 [r10]
.Lsvm_state_in:
    mov rax, rsi
    mov rbx, [rdi + 0x00]
    mov rcx, [rdi + 0x08]
    mov rdx, [rdi + 0x10]
    mov rsi, [rdi + 0x18]
    mov rbp, [rdi + 0x28]
    mov r8,  [rdi + 0x30]
    mov r9,  [rdi + 0x38]
    mov r10, [rdi + 0x40]
    mov r11, [rdi + 0x48]
    mov r12, [rdi + 0x50]
    mov r13, [rdi + 0x58]
    mov r14, [rdi + 0x60]
    mov r15, [rdi + 0x68]
    mov rdi, [rdi + 0x20]
    /* IF=1 while the guest runs: with V_INTR_MASKING the host's IF decides
       whether a physical interrupt exits the guest (INTR intercept). GIF=0
       holds it off until VMRUN; after the exit GIF is 0 again and IF goes
       back to 0 before STGI, so the interrupt stays pending for the caller
       (`take_pending_interrupts`). */
    clgi
    sti
    vmload rax
    vmrun rax
    cli
    vmsave rax
    mov rax, [rsp]
    mov [rax + 0x00], rbx
    mov [rax + 0x08], rcx
    mov [rax + 0x10], rdx
    mov [rax + 0x18], rsi
    mov [rax + 0x20], rdi
    mov [rax + 0x28], rbp
    mov [rax + 0x30], r8
    mov [rax + 0x38], r9
    mov [rax + 0x40], r10
    mov [rax + 0x48], r11
    mov [rax + 0x50], r12
    mov [rax + 0x58], r13
    mov [rax + 0x60], r14
    mov [rax + 0x68], r15
    /* Extended state: the guest's out, the host's XCR0 back, and the x87
       unit and MXCSR as the host's code expects them. */
    mov rdi, rax
    mov r10, [rdi + 0x70]
    cmp qword ptr [rdi + 0x90], 0
    je .Lsvm_fx_out
    mov eax, -1
    mov edx, -1
    xsave64 [r10]
    /* The guest's XCR0 as the CPU holds it (a CPU that does not intercept
       XSETBV lets the guest change it), kept for its next entry. */
    xor ecx, ecx
    xgetbv
    shl rdx, 32
    or rax, rdx
    mov [rdi + 0x80], rax
    mov rax, [rdi + 0x88]
    cmp rax, [rdi + 0x80]
    je .Lsvm_host_fp
    mov rdx, rax
    shr rdx, 32
    xor ecx, ecx
    xsetbv
    jmp .Lsvm_host_fp
.Lsvm_fx_out:
    fxsave64 [r10]
.Lsvm_host_fp:
    fninit
    ldmxcsr [rdi + 0x78]
.Lsvm_state_out:
    pop rdi
    pop rax
    vmload rax
    stgi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

global_asm!(
    r#"
    .section .text.hv_svm_vmsave, "ax"
    .global hv_svm_vmsave
hv_svm_vmsave:
    mov rax, rdi
    vmsave rax
    ret
    "#
);

extern "C" {
    pub(super) fn hv_svm_run(run: *mut RunState, vmcb: u64, host_vmcb: u64);
    pub(super) fn hv_svm_vmsave(vmcb: u64);
}
