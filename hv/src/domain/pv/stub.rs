//! The fast-path stub (`hv::pv::fast` says what it is for): position-
//! independent code that every PV domain gets a copy of in its per-domain
//! area, entered by the guest's SYSCALL at CPL 0. It reaches its data page
//! (the next page up) RIP-relative.
//!
//! Paths, each the slow path's semantics exactly (`traps.rs` `pv_syscall`,
//! `pv_deliver_events`, `hypercall.rs` `pv_iret`, `hv::pv::bounce`):
//! - a SYSCALL from guest user mode: bounced to the syscall callback on the
//!   kernel stack (`stack_switch`), kernel page tables and GS;
//! - `iret` (hypercall 23) from guest kernel mode: the `iret_context` at
//!   RSP read back, to a CS and SS the hypervisor listed as loadable, a
//!   canonical RIP, user mode only with user page tables;
//! - `xen_version(XENVER_version, NULL)` from guest kernel mode: the
//!   version, which Linux calls only to have pending events delivered;
//! - `stack_switch` and `set_segment_base` from guest kernel mode (`hypercall.rs`
//!   `call` and `set_segment_base`), which Linux makes on every context
//!   switch: the kernel stack in the data page, the FS and GS bases in
//!   their MSRs, the user GS selector loaded by the CPU (one it refuses
//!   faults, and the slow path gives Xen's result);
//! - then, as before every entry, a pending event upcall when the context
//!   returned to has events unmasked (one bounce per pass: a second one is
//!   forwarded), or, when no port is pending and unmasked, what the
//!   guest's handler would do instead (`hv::pv::fast::upcall_finds_a_port`;
//!   under the FIFO ABI `hv::evtchn::fifo::Fifo::leave_out_upcall`).
//!
//! Everything else goes to the hypervisor with VMMCALL (patched to VMCALL
//! on VMX) at `hv_pvstub_forward`, after which the hypervisor rolls the
//! vCPU back to just after its SYSCALL. Guest memory is touched only before
//! the commit (at `.Lpvs_finish`), so a fault there rolls back too.
//!
//! A host interrupt (or the end of a time slice) while the vCPU is in the
//! stub may raise events: from the event check (`hv_pvstub_events`;
//! before it nothing about events is decided yet) to the end of the event
//! commit (`hv_pvstub_committed`) it rolls the vCPU back in the same way,
//! so that no upcall the stub decided to leave out before those events
//! were raised clears them; elsewhere the stub goes on, and after the
//! commit the hypervisor asks for an exit as soon as the guest runs again
//! if an upcall is pending for a context with events enabled.
//!
//! Register use: RAX, RCX, RDX, RSI, RDI, R11 and RSP, all saved on entry
//! (RCX and R11 as SYSCALL left them) and restored, or set as the return
//! requires, before IRETQ.

use core::arch::global_asm;
use hv::pv::fast::off;

global_asm!(
    r#"
    .set PVS_D, 0x1000
    .set PVS_KMODE, PVS_D + 0x00
    .set PVS_KCR3, PVS_D + 0x08
    .set PVS_UCR3, PVS_D + 0x10
    .set PVS_KSP, PVS_D + 0x18
    .set PVS_SYSCALL_CB, PVS_D + 0x20
    .set PVS_SYSCALL_MASK, PVS_D + 0x28
    .set PVS_EVENT_CB, PVS_D + 0x30
    .set PVS_VCPU_INFO, PVS_D + 0x38
    .set PVS_VERSION, PVS_D + 0x40
    .set PVS_ENABLED, PVS_D + 0x48
    .set PVS_CS_OK, PVS_D + 0x50
    .set PVS_SS_OK, PVS_D + 0x58
    .set PVS_SHARED, PVS_D + 0x60
    .set PVS_FIFO_CONTROL, PVS_D + 0x68
    .set PVS_FIFO_WORDS, PVS_D + 0x70
    .set PVS_KSS, PVS_D + 0x78
    .set PVS_E_RSP, PVS_D + 0x80
    .set PVS_E_RCX, PVS_D + 0x88
    .set PVS_E_R11, PVS_D + 0x90
    .set PVS_E_CR3, PVS_D + 0x98
    .set PVS_E_RAX, PVS_D + 0xa0
    .set PVS_E_RDI, PVS_D + 0xa8
    .set PVS_E_RSI, PVS_D + 0xb0
    .set PVS_E_RDX, PVS_D + 0xb8
    .set PVS_E_COMPAT, PVS_D + 0xc0
    .set PVS_T_RIP, PVS_D + 0x100
    .set PVS_T_CS, PVS_D + 0x108
    .set PVS_T_RFLAGS, PVS_D + 0x110
    .set PVS_T_RSP, PVS_D + 0x118
    .set PVS_T_SS, PVS_D + 0x120
    .set PVS_T_RCX, PVS_D + 0x128
    .set PVS_T_R11, PVS_D + 0x130
    .set PVS_T_RAX, PVS_D + 0x138
    .set PVS_T_KMODE, PVS_D + 0x140
    .set PVS_T_MASK, PVS_D + 0x148
    .set PVS_T_DELIVERED, PVS_D + 0x150
    .set PVS_T_COUNT, PVS_D + 0x158
    .set PVS_T_UPCALL, PVS_D + 0x160
    .set PVS_T_EMPTY, PVS_D + 0x168
    /* Counter offsets in the data page (for PVS_T_COUNT). */
    .set PVS_COUNT_SYSCALL, 0x180
    .set PVS_COUNT_IRET, 0x188
    .set PVS_COUNT_XENVER, 0x190
    .set PVS_COUNT_STACK_SWITCH, 0x1b0
    .set PVS_COUNT_SEGMENT_BASE, 0x1b8
    .set PVS_N_UPCALL, PVS_D + 0x198
    .set PVS_N_FORWARD, PVS_D + 0x1a0
    .set PVS_N_EMPTY, PVS_D + 0x1a8
    .set PVS_STACK_TOP, PVS_D + 0x1000

    .section .text.hv_pvstub, "ax"
    .balign 64
    .global hv_pvstub_begin
hv_pvstub_begin:
.Lpvs:
    /* LSTAR: SYSCALL from 64-bit mode. */
    mov qword ptr [rip + .Lpvs + PVS_E_COMPAT], 0
    jmp .Lpvs_entry
    .balign 16, 0xcc
    /* CSTAR (offset 16): SYSCALL from compatibility mode. */
    mov qword ptr [rip + .Lpvs + PVS_E_COMPAT], 1
.Lpvs_entry:
    mov [rip + .Lpvs + PVS_E_RSP], rsp
    mov [rip + .Lpvs + PVS_E_RCX], rcx
    mov [rip + .Lpvs + PVS_E_R11], r11
    mov [rip + .Lpvs + PVS_E_RAX], rax
    mov [rip + .Lpvs + PVS_E_RDI], rdi
    mov [rip + .Lpvs + PVS_E_RSI], rsi
    mov [rip + .Lpvs + PVS_E_RDX], rdx
    mov rax, cr3
    mov [rip + .Lpvs + PVS_E_CR3], rax
    lea rsp, [rip + .Lpvs + PVS_STACK_TOP]
    mov qword ptr [rip + .Lpvs + PVS_T_DELIVERED], 0
    mov qword ptr [rip + .Lpvs + PVS_T_UPCALL], 0
    mov qword ptr [rip + .Lpvs + PVS_T_EMPTY], 0
    cmp qword ptr [rip + .Lpvs + PVS_ENABLED], 0
    je .Lpvs_forward
    cmp qword ptr [rip + .Lpvs + PVS_E_COMPAT], 0
    jne .Lpvs_forward
    cmp qword ptr [rip + .Lpvs + PVS_KMODE], 0
    je .Lpvs_user_syscall
    mov rax, [rip + .Lpvs + PVS_E_RAX]
    cmp rax, 23
    je .Lpvs_iret
    cmp rax, 17
    je .Lpvs_xenver
    cmp rax, 3
    je .Lpvs_stack_switch
    cmp rax, 25
    je .Lpvs_segment_base
.Lpvs_forward:
    inc qword ptr [rip + .Lpvs + PVS_N_FORWARD]
    .global hv_pvstub_forward
hv_pvstub_forward:
    vmmcall
    ud2

    /* A system call from guest user mode: the syscall callback. */
.Lpvs_user_syscall:
    call .Lpvs_t_after_syscall
    mov rax, [rip + .Lpvs + PVS_E_RAX]
    mov [rip + .Lpvs + PVS_T_RAX], rax
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 0
    mov qword ptr [rip + .Lpvs + PVS_T_COUNT], PVS_COUNT_SYSCALL
    mov rdi, [rip + .Lpvs + PVS_SYSCALL_CB]
    test rdi, rdi
    jz .Lpvs_forward
    mov rsi, [rip + .Lpvs + PVS_SYSCALL_MASK]
    mov edx, 1
    call .Lpvs_deliver
    jmp .Lpvs_events

    /* HYPERVISOR_iret: struct iret_context at RSP (rax, r11, rcx, flags,
       rip, cs, rflags, rsp, ss). */
.Lpvs_iret:
    mov rsi, [rip + .Lpvs + PVS_E_RSP]
    mov rax, [rsi]
    mov [rip + .Lpvs + PVS_T_RAX], rax
    mov rax, [rsi + 32]
    mov rdx, rax
    shl rdx, 16
    sar rdx, 16
    cmp rdx, rax
    jne .Lpvs_forward
    mov [rip + .Lpvs + PVS_T_RIP], rax
    mov rax, [rsi + 40]
    mov edx, eax
    and edx, 3
    cmp edx, 3
    je .Lpvs_iret_user
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 1
    jmp .Lpvs_iret_cs
.Lpvs_iret_user:
    cmp qword ptr [rip + .Lpvs + PVS_UCR3], 0
    je .Lpvs_forward
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 0
.Lpvs_iret_cs:
    or eax, 3
    movzx eax, ax
    lea rdx, [rip + .Lpvs + PVS_CS_OK]
    call .Lpvs_selector_ok
    jne .Lpvs_forward
    mov [rip + .Lpvs + PVS_T_CS], rax
    mov rax, [rsi + 64]
    or eax, 3
    movzx eax, ax
    lea rdx, [rip + .Lpvs + PVS_SS_OK]
    call .Lpvs_selector_ok
    jne .Lpvs_forward
    mov [rip + .Lpvs + PVS_T_SS], rax
    mov rax, [rsi + 56]
    mov [rip + .Lpvs + PVS_T_RSP], rax
    mov rax, [rsi + 48]
    mov edx, eax
    shr edx, 9
    and edx, 1
    xor edx, 1
    mov [rip + .Lpvs + PVS_T_MASK], rdx
    and rax, 0x3d4fd5
    or rax, 0x202
    mov [rip + .Lpvs + PVS_T_RFLAGS], rax
    test qword ptr [rsi + 24], 0x100
    jz .Lpvs_iret_regs
    mov rdx, [rip + .Lpvs + PVS_T_RIP]
    mov [rip + .Lpvs + PVS_T_RCX], rdx
    mov [rip + .Lpvs + PVS_T_R11], rax
    jmp .Lpvs_iret_done
.Lpvs_iret_regs:
    mov rdx, [rsi + 16]
    mov [rip + .Lpvs + PVS_T_RCX], rdx
    mov rdx, [rsi + 8]
    mov [rip + .Lpvs + PVS_T_R11], rdx
.Lpvs_iret_done:
    mov qword ptr [rip + .Lpvs + PVS_T_COUNT], PVS_COUNT_IRET
    jmp .Lpvs_events

    /* xen_version(XENVER_version, NULL). */
.Lpvs_xenver:
    cmp qword ptr [rip + .Lpvs + PVS_E_RDI], 0
    jne .Lpvs_forward
    call .Lpvs_t_after_syscall
    mov rax, [rip + .Lpvs + PVS_VERSION]
    mov [rip + .Lpvs + PVS_T_RAX], rax
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 1
    mov qword ptr [rip + .Lpvs + PVS_T_COUNT], PVS_COUNT_XENVER
    jmp .Lpvs_events

    /* stack_switch(ss, sp): the kernel stack of the next bounce from
       user mode (`kernel_ss` with RPL 3, as the slow path keeps it). */
.Lpvs_stack_switch:
    mov rax, [rip + .Lpvs + PVS_E_RDI]
    or eax, 3
    movzx eax, ax
    mov [rip + .Lpvs + PVS_KSS], rax
    mov rax, [rip + .Lpvs + PVS_E_RSI]
    mov [rip + .Lpvs + PVS_KSP], rax
    mov qword ptr [rip + .Lpvs + PVS_T_COUNT], PVS_COUNT_STACK_SWITCH
    jmp .Lpvs_returns_zero

    /* set_segment_base(which, base): FS (0), the user GS base (1: the
       inactive one in kernel mode), the kernel GS base (2), each a
       canonical base written to its MSR (which the container passes
       through); the user GS selector (3) from the GDT or null, loaded
       with its base made the user GS base and the kernel's kept. A
       selector the CPU refuses faults here, and the slow path gives
       Xen's result (the null selector); LDT selectors and anything else
       are forwarded. */
.Lpvs_segment_base:
    mov rsi, [rip + .Lpvs + PVS_E_RSI]
    mov rax, [rip + .Lpvs + PVS_E_RDI]
    cmp rax, 3
    je .Lpvs_segment_base_sel
    cmp rax, 2
    ja .Lpvs_forward
    mov rdx, rsi
    shl rdx, 16
    sar rdx, 16
    cmp rdx, rsi
    jne .Lpvs_forward
    mov ecx, 0xc0000100
    test rax, rax
    jz .Lpvs_segment_base_write
    mov ecx, 0xc0000102
    cmp rax, 1
    je .Lpvs_segment_base_write
    mov ecx, 0xc0000101
.Lpvs_segment_base_write:
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
    wrmsr
    jmp .Lpvs_segment_base_done
.Lpvs_segment_base_sel:
    movzx esi, si
    cmp esi, 3
    jbe .Lpvs_segment_base_null
    or esi, 3
    test esi, 4
    jnz .Lpvs_forward
    mov ecx, 0xc0000101
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    mov gs, si
    mov ecx, 0xc0000101
    rdmsr
    mov ecx, 0xc0000102
    wrmsr
    jmp .Lpvs_segment_base_kernel
.Lpvs_segment_base_null:
    mov ecx, 0xc0000101
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    xor eax, eax
    mov gs, ax
    xor edx, edx
    mov ecx, 0xc0000102
    wrmsr
.Lpvs_segment_base_kernel:
    mov rax, rdi
    mov rdx, rdi
    shr rdx, 32
    mov ecx, 0xc0000101
    wrmsr
.Lpvs_segment_base_done:
    mov qword ptr [rip + .Lpvs + PVS_T_COUNT], PVS_COUNT_SEGMENT_BASE
    /* Back to the kernel after its SYSCALL, RAX 0. */
.Lpvs_returns_zero:
    call .Lpvs_t_after_syscall
    mov qword ptr [rip + .Lpvs + PVS_T_RAX], 0
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 1
    jmp .Lpvs_events

    /* A pending upcall for the context returned to, if it has events
       unmasked and the guest registered an event callback; left out when
       no selected word has a port pending and unmasked
       (`hv::pv::fast::upcall_finds_a_port`), or under the FIFO ABI when
       every ready queue holds one event, on the first event array page,
       not pending or masked (`hv::evtchn::fifo::idle_queue`). From here
       to `hv_pvstub_committed` (the subroutines below included, which
       leave nothing a rollback would not redo) a host interrupt rolls
       the vCPU back. */
    .global hv_pvstub_events
hv_pvstub_events:
.Lpvs_events:
    cmp qword ptr [rip + .Lpvs + PVS_T_MASK], 0
    jne .Lpvs_finish
    mov rsi, [rip + .Lpvs + PVS_VCPU_INFO]
    cmp byte ptr [rsi], 0
    je .Lpvs_finish
    cmp qword ptr [rip + .Lpvs + PVS_EVENT_CB], 0
    je .Lpvs_finish
    mov rdi, [rip + .Lpvs + PVS_SHARED]
    test rdi, rdi
    jz .Lpvs_events_fifo
    mov rax, [rsi + 8]
.Lpvs_events_scan:
    test rax, rax
    jz .Lpvs_events_empty
    bsf rcx, rax
    mov rdx, [rdi + 0x800 + rcx * 8]
    mov r11, [rdi + 0xa00 + rcx * 8]
    not r11
    test rdx, r11
    jnz .Lpvs_events_deliver
    btr rax, rcx
    jmp .Lpvs_events_scan
.Lpvs_events_empty:
    mov qword ptr [rip + .Lpvs + PVS_T_EMPTY], 1
    jmp .Lpvs_finish
.Lpvs_events_fifo:
    mov rdi, [rip + .Lpvs + PVS_FIFO_CONTROL]
    test rdi, rdi
    jz .Lpvs_events_deliver
    mov r11, [rip + .Lpvs + PVS_FIFO_WORDS]
    mov eax, [rdi]
    test eax, 0xffff0000
    jnz .Lpvs_events_deliver
.Lpvs_events_fifo_scan:
    test eax, eax
    jz .Lpvs_events_fifo_empty
    bsf ecx, eax
    mov edx, [rdi + 8 + rcx * 4]
    test edx, edx
    jz .Lpvs_events_deliver
    cmp edx, 1024
    jae .Lpvs_events_deliver
    mov edx, [r11 + rdx * 4]
    bt edx, 29
    jnc .Lpvs_events_deliver
    test edx, 0x1ffff
    jnz .Lpvs_events_deliver
    bt edx, 31
    jnc .Lpvs_events_fifo_next
    bt edx, 30
    jnc .Lpvs_events_deliver
.Lpvs_events_fifo_next:
    btr eax, ecx
    jmp .Lpvs_events_fifo_scan
.Lpvs_events_fifo_empty:
    mov qword ptr [rip + .Lpvs + PVS_T_EMPTY], 2
    jmp .Lpvs_finish
.Lpvs_events_deliver:
    mov rdi, [rip + .Lpvs + PVS_EVENT_CB]
    mov esi, 1
    xor edx, edx
    call .Lpvs_deliver
    mov qword ptr [rip + .Lpvs + PVS_T_UPCALL], 1
    jmp .Lpvs_finish

    /* T = the vCPU as SYSCALL left it: RIP and RCX the return address,
       RFLAGS and R11 its flags, its RSP, the flat ring-3 CS and SS (Xen's
       SYSCALL frames record those), the events mask it has now. */
.Lpvs_t_after_syscall:
    mov rax, [rip + .Lpvs + PVS_E_RCX]
    mov [rip + .Lpvs + PVS_T_RIP], rax
    mov [rip + .Lpvs + PVS_T_RCX], rax
    mov rax, [rip + .Lpvs + PVS_E_R11]
    mov [rip + .Lpvs + PVS_T_RFLAGS], rax
    mov [rip + .Lpvs + PVS_T_R11], rax
    mov rax, [rip + .Lpvs + PVS_E_RSP]
    mov [rip + .Lpvs + PVS_T_RSP], rax
    mov qword ptr [rip + .Lpvs + PVS_T_CS], 0xe033
    mov qword ptr [rip + .Lpvs + PVS_T_SS], 0xe02b
    mov rsi, [rip + .Lpvs + PVS_VCPU_INFO]
    movzx eax, byte ptr [rsi + 1]
    mov [rip + .Lpvs + PVS_T_MASK], rax
    ret

    /* ZF set if AX is one of the four selectors at [RDX]. */
.Lpvs_selector_ok:
    cmp ax, word ptr [rdx]
    je .Lpvs_selector_ret
    cmp ax, word ptr [rdx + 2]
    je .Lpvs_selector_ret
    cmp ax, word ptr [rdx + 4]
    je .Lpvs_selector_ret
    cmp ax, word ptr [rdx + 6]
.Lpvs_selector_ret:
    ret

    /* Bounce the context in T to handler RDI (RSI: it masks events; RDX:
       it clears DF), as `hv::pv::bounce::bounce` does. */
.Lpvs_deliver:
    cmp qword ptr [rip + .Lpvs + PVS_T_DELIVERED], 0
    jne .Lpvs_forward
    mov qword ptr [rip + .Lpvs + PVS_T_DELIVERED], 1
    cmp qword ptr [rip + .Lpvs + PVS_T_KMODE], 0
    jne .Lpvs_deliver_kernel
    mov rax, [rip + .Lpvs + PVS_KSP]
    mov rcx, [rip + .Lpvs + PVS_KCR3]
    mov r11, cr3
    cmp rcx, r11
    je .Lpvs_deliver_user_cs
    mov cr3, rcx
.Lpvs_deliver_user_cs:
    mov r11, [rip + .Lpvs + PVS_T_CS]
    jmp .Lpvs_deliver_stack
.Lpvs_deliver_kernel:
    mov rax, [rip + .Lpvs + PVS_T_RSP]
    mov r11, [rip + .Lpvs + PVS_T_CS]
    and r11, -4
.Lpvs_deliver_stack:
    and rax, -16
    mov rcx, 0xffff800000000000
    cmp rax, rcx
    jbe .Lpvs_deliver_frame
    mov rcx, 0xffff880000000040
    cmp rax, rcx
    jb .Lpvs_forward
.Lpvs_deliver_frame:
    mov rcx, [rip + .Lpvs + PVS_T_MASK]
    shl rcx, 32
    or r11, rcx
    sub rax, 56
    mov rcx, [rip + .Lpvs + PVS_T_RCX]
    mov [rax], rcx
    mov rcx, [rip + .Lpvs + PVS_T_R11]
    mov [rax + 8], rcx
    mov rcx, [rip + .Lpvs + PVS_T_RIP]
    mov [rax + 16], rcx
    mov [rax + 24], r11
    mov rcx, [rip + .Lpvs + PVS_T_RFLAGS]
    and rcx, -0x3201
    cmp qword ptr [rip + .Lpvs + PVS_T_MASK], 0
    jne .Lpvs_deliver_if
    or rcx, 0x200
.Lpvs_deliver_if:
    mov [rax + 32], rcx
    mov rcx, [rip + .Lpvs + PVS_T_RSP]
    mov [rax + 40], rcx
    mov rcx, [rip + .Lpvs + PVS_T_SS]
    mov [rax + 48], rcx
    mov [rip + .Lpvs + PVS_T_RSP], rax
    mov [rip + .Lpvs + PVS_T_RIP], rdi
    mov [rip + .Lpvs + PVS_T_RCX], rdi
    mov qword ptr [rip + .Lpvs + PVS_T_CS], 0xe033
    mov qword ptr [rip + .Lpvs + PVS_T_SS], 0xe02b
    mov rcx, [rip + .Lpvs + PVS_T_RFLAGS]
    and rcx, -0x74101
    test rdx, rdx
    jz .Lpvs_deliver_df
    and rcx, -0x401
.Lpvs_deliver_df:
    mov [rip + .Lpvs + PVS_T_RFLAGS], rcx
    mov [rip + .Lpvs + PVS_T_R11], rcx
    mov qword ptr [rip + .Lpvs + PVS_T_KMODE], 1
    test rsi, rsi
    jz .Lpvs_deliver_done
    mov qword ptr [rip + .Lpvs + PVS_T_MASK], 1
.Lpvs_deliver_done:
    ret

    /* The commit: nothing below touches guest memory or can fault.
       First an upcall with nothing to find: what its handler would do.
       Under the 2-level ABI (T_EMPTY 1) clear the selector; under FIFO
       (2) unlink each ready queue's one event and take READY; then clear
       `evtchn_upcall_pending`, last. Up to `hv_pvstub_committed` a host
       interrupt rolls the vCPU back (the events it raises must not meet
       a decision taken before it), and what is done by then leaves at
       worst an upcall that finds nothing: never a selector bit, READY
       bit or LINKED event that keeps Xen's set_pending from raising the
       upcall again. */
.Lpvs_finish:
    mov rsi, [rip + .Lpvs + PVS_VCPU_INFO]
    cmp qword ptr [rip + .Lpvs + PVS_T_EMPTY], 0
    je .Lpvs_finish_mask
    cmp qword ptr [rip + .Lpvs + PVS_T_EMPTY], 2
    je .Lpvs_finish_fifo
    mov qword ptr [rsi + 8], 0
    jmp .Lpvs_finish_empty
.Lpvs_finish_fifo:
    mov rdi, [rip + .Lpvs + PVS_FIFO_CONTROL]
    mov r11, [rip + .Lpvs + PVS_FIFO_WORDS]
    mov eax, [rdi]
    and eax, 0xffff
.Lpvs_finish_fifo_next:
    test eax, eax
    jz .Lpvs_finish_fifo_done
    bsf ecx, eax
    btr eax, ecx
    mov edx, [rdi + 8 + rcx * 4]
    /* Within the window whatever the words say now. */
    cmp edx, 1024
    jae .Lpvs_finish_fifo_next
    and dword ptr [r11 + rdx * 4], 0xdffe0000
    jmp .Lpvs_finish_fifo_next
.Lpvs_finish_fifo_done:
    mov dword ptr [rdi], 0
.Lpvs_finish_empty:
    mov byte ptr [rsi], 0
    .global hv_pvstub_committed
hv_pvstub_committed:
    inc qword ptr [rip + .Lpvs + PVS_N_EMPTY]
.Lpvs_finish_mask:
    mov rax, [rip + .Lpvs + PVS_T_MASK]
    mov [rsi + 1], al
.Lpvs_finish_mode:
    mov rax, [rip + .Lpvs + PVS_T_KMODE]
    cmp rax, [rip + .Lpvs + PVS_KMODE]
    je .Lpvs_finish_cr3
    mov [rip + .Lpvs + PVS_KMODE], rax
    swapgs
.Lpvs_finish_cr3:
    mov rcx, [rip + .Lpvs + PVS_UCR3]
    test rax, rax
    jz .Lpvs_finish_load
    mov rcx, [rip + .Lpvs + PVS_KCR3]
.Lpvs_finish_load:
    mov rdx, cr3
    cmp rcx, rdx
    je .Lpvs_finish_count
    mov cr3, rcx
.Lpvs_finish_count:
    lea rax, [rip + .Lpvs + PVS_D]
    add rax, [rip + .Lpvs + PVS_T_COUNT]
    inc qword ptr [rax]
    cmp qword ptr [rip + .Lpvs + PVS_T_UPCALL], 0
    je .Lpvs_finish_return
    inc qword ptr [rip + .Lpvs + PVS_N_UPCALL]
.Lpvs_finish_return:
    push qword ptr [rip + .Lpvs + PVS_T_SS]
    push qword ptr [rip + .Lpvs + PVS_T_RSP]
    push qword ptr [rip + .Lpvs + PVS_T_RFLAGS]
    push qword ptr [rip + .Lpvs + PVS_T_CS]
    push qword ptr [rip + .Lpvs + PVS_T_RIP]
    mov rax, [rip + .Lpvs + PVS_T_RAX]
    mov rcx, [rip + .Lpvs + PVS_T_RCX]
    mov r11, [rip + .Lpvs + PVS_T_R11]
    mov rdi, [rip + .Lpvs + PVS_E_RDI]
    mov rsi, [rip + .Lpvs + PVS_E_RSI]
    mov rdx, [rip + .Lpvs + PVS_E_RDX]
    .global hv_pvstub_iretq
hv_pvstub_iretq:
    iretq
    .global hv_pvstub_end
hv_pvstub_end:
    "#
);

extern "C" {
    static hv_pvstub_begin: u8;
    static hv_pvstub_forward: u8;
    static hv_pvstub_events: u8;
    static hv_pvstub_committed: u8;
    static hv_pvstub_iretq: u8;
    static hv_pvstub_end: u8;
}

/// The stub's offsets of its data fields must be `hv::pv::fast::off`'s.
const _: () = {
    assert!(off::KMODE == 0x00 && off::KCR3 == 0x08 && off::UCR3 == 0x10);
    assert!(off::KSP == 0x18 && off::SYSCALL_CB == 0x20 && off::SYSCALL_MASK == 0x28);
    assert!(off::EVENT_CB == 0x30 && off::VCPU_INFO == 0x38 && off::VERSION == 0x40);
    assert!(off::ENABLED == 0x48 && off::CS_OK == 0x50 && off::SS_OK == 0x58);
    assert!(off::E_RSP == 0x80 && off::E_RCX == 0x88 && off::E_R11 == 0x90);
    assert!(off::E_CR3 == 0x98 && off::E_RAX == 0xa0 && off::E_RDI == 0xa8);
    assert!(off::E_RSI == 0xb0 && off::E_RDX == 0xb8 && off::E_COMPAT == 0xc0);
    assert!(off::T_FIRST == 0x100 && off::T_MASK == 0x148);
    assert!(off::N_SYSCALL == 0x180 && off::N_IRET == 0x188 && off::N_XENVER == 0x190);
    assert!(off::N_UPCALL == 0x198 && off::N_FORWARD == 0x1a0 && off::N_EMPTY == 0x1a8);
    assert!(off::SHARED == 0x60 && off::FIFO_CONTROL == 0x68 && off::FIFO_WORDS == 0x70);
    assert!(off::KSS == 0x78 && off::N_STACK_SWITCH == 0x1b0 && off::N_SEGMENT_BASE == 0x1b8);
};

/// Which instruction forwards to the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Vmmcall,
    Vmcall,
}

fn addr(s: &u8) -> usize {
    s as *const u8 as usize
}

/// The stub's bytes (at most a page), with the forwarding instruction for
/// the backend.
pub fn code(forward: Forward) -> alloc::vec::Vec<u8> {
    // SAFETY: the symbols delimit the stub in this image's text; only their
    // addresses are taken and the bytes between them read.
    let (begin, fwd, end) = unsafe {
        (
            addr(&hv_pvstub_begin),
            addr(&hv_pvstub_forward),
            addr(&hv_pvstub_end),
        )
    };
    assert!(
        end > begin && end - begin <= 4096,
        "the PV stub fits a page"
    );
    // SAFETY: [begin, end) is the stub's code, readable text of this image.
    let mut v = unsafe { core::slice::from_raw_parts(begin as *const u8, end - begin) }.to_vec();
    let at = fwd - begin;
    assert_eq!(
        &v[at..at + 3],
        &[0x0f, 0x01, 0xd9],
        "VMMCALL at the forward"
    );
    if forward == Forward::Vmcall {
        v[at + 2] = 0xc1;
    }
    v
}

/// Offsets in the stub of the forwarding instruction and of its final
/// IRETQ.
pub fn forward_offset() -> u64 {
    // SAFETY: only the symbols' addresses are taken.
    unsafe { (addr(&hv_pvstub_forward) - addr(&hv_pvstub_begin)) as u64 }
}

/// Offsets in the stub of its event check and of the end of its event
/// commit: a host interrupt between the two rolls the vCPU back, one
/// elsewhere resumes the stub.
pub fn events_offset() -> u64 {
    // SAFETY: only the symbols' addresses are taken.
    unsafe { (addr(&hv_pvstub_events) - addr(&hv_pvstub_begin)) as u64 }
}

pub fn committed_offset() -> u64 {
    // SAFETY: only the symbols' addresses are taken.
    unsafe { (addr(&hv_pvstub_committed) - addr(&hv_pvstub_begin)) as u64 }
}

pub fn iretq_offset() -> u64 {
    // SAFETY: only the symbols' addresses are taken.
    unsafe { (addr(&hv_pvstub_iretq) - addr(&hv_pvstub_begin)) as u64 }
}
