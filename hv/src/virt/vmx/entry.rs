//! The VM entry and exit code: guest general-purpose registers and extended
//! state (XSAVE with the guest's XCR0, or FXSAVE) in, VMLAUNCH or VMRESUME,
//! everything back out on exit or VMfail.

use super::vmcs;
use crate::virt::xstate::Switch;
use crate::virt::GuestRegs;
use core::arch::global_asm;

/// What `hv_vmx_run` reads and writes, in this order.
#[repr(C, align(64))]
#[derive(Debug)]
pub(super) struct RunState {
    pub(super) regs: GuestRegs,
    /// RAX is not in the VMCS.
    pub(super) rax: u64,
    pub(super) xstate: Switch,
}

const _: () = {
    assert!(core::mem::offset_of!(RunState, rax) == 0x70);
    assert!(core::mem::offset_of!(RunState, xstate) == 0x78);
    assert!(vmcs::HOST_RSP.0 == 0x6c14);
};

global_asm!(
    r#"
    .section .text.hv_vmx_run, "ax"
    .global hv_vmx_run
    .global hv_vmx_exit
    /* rdi = RunState, esi = 1 to VMRESUME, 0 to VMLAUNCH.
       Returns 0 after a VM exit, 1 if the instruction failed (VMfail). */
hv_vmx_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdi
    sub rsp, 32
    /* VM exits leave the GDTR and IDTR limits at 0xffff: keep the real ones */
    sgdt [rsp]
    sidt [rsp + 16]
    /* Extended state: the guest's in, as in the SVM entry code (the host
       keeps nothing in it across this call; the guest's area is restored
       under the host's XCR0 so that components the guest has not enabled
       are initialised, then the guest's XCR0 is loaded). */
    mov r10, [rdi + 0x78]
    cmp qword ptr [rdi + 0x98], 0
    je .Lvmx_fx_in
    mov eax, -1
    mov edx, -1
    xrstor64 [r10]
    mov rax, [rdi + 0x88]
    cmp rax, [rdi + 0x90]
    je .Lvmx_state_in
    mov rdx, rax
    shr rdx, 32
    xor ecx, ecx
    xsetbv
    jmp .Lvmx_state_in
.Lvmx_fx_in:
    fxrstor64 [r10]
.Lvmx_state_in:
    mov rax, 0x6c14
    vmwrite rax, rsp
    test esi, esi
    mov rax, [rdi + 0x70]
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
    jnz 2f
    vmlaunch
    jmp 3f
2:
    vmresume
3:
    /* VMfail: the guest registers were not changed */
    mov rdi, [rsp + 32]
    mov eax, 1
    jmp 4f
hv_vmx_exit:
    push rax
    mov rax, [rsp + 40]
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
    pop qword ptr [rax + 0x70]
    mov rdi, rax
    xor eax, eax
4:
    lgdt [rsp]
    lidt [rsp + 16]
    /* Extended state: the guest's out, the host's XCR0 back, and the x87
       unit and MXCSR as the host's code expects them; r12 keeps the return
       value (it is restored below). */
    mov r12d, eax
    mov r10, [rdi + 0x78]
    cmp qword ptr [rdi + 0x98], 0
    je .Lvmx_fx_out
    mov eax, -1
    mov edx, -1
    xsave64 [r10]
    /* The guest's XCR0 as the CPU holds it (a CPU that does not intercept
       XSETBV lets the guest change it), kept for its next entry. */
    xor ecx, ecx
    xgetbv
    shl rdx, 32
    or rax, rdx
    mov [rdi + 0x88], rax
    mov rax, [rdi + 0x90]
    cmp rax, [rdi + 0x88]
    je .Lvmx_host_fp
    mov rdx, rax
    shr rdx, 32
    xor ecx, ecx
    xsetbv
    jmp .Lvmx_host_fp
.Lvmx_fx_out:
    fxsave64 [r10]
.Lvmx_host_fp:
    fninit
    ldmxcsr [rdi + 0x80]
.Lvmx_state_out:
    mov eax, r12d
    add rsp, 32
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

extern "C" {
    pub(super) fn hv_vmx_run(run: *mut RunState, resume: u32) -> u32;
    pub(super) static hv_vmx_exit: u8;
}
