//! Code for a secondary vCPU started in 32-bit protected mode with paging
//! off (`VCPUOP_initialise` with a `VCPU_HVM_MODE_32B` context): it writes
//! a line to port 0xE9, increments a counter with a locked add, sends an
//! event with `EVTCHNOP_send` through the hypercall page and halts with
//! interrupts off. Everything it needs comes in the context's registers:
//!
//! | register | holds |
//! |---|---|
//! | EAX | the address of the hypercall page's `event_channel_op` stub |
//! | EDX, ECX | the line and its length (> 0) |
//! | ESI | the address of the `u32` counter |
//! | EDI | the port to send on |
//! | ESP | the top of its own stack (4 bytes are used) |

core::arch::global_asm!(
    r#"
    .pushsection .text.fw_ap32, "ax"
    .code32
    .global fw_ap32_entry
fw_ap32_entry:
    mov ebp, eax
2:
    mov al, byte ptr [edx]
    out 0xe9, al
    inc edx
    dec ecx
    jnz 2b
    lock inc dword ptr [esi]
    push edi
    mov ecx, esp
    mov ebx, 4
    call ebp
    cli
3:
    hlt
    jmp 3b
    .code64
    .popsection
"#
);

extern "C" {
    fn fw_ap32_entry();
}

/// The entry point's address (below 4 GiB: the image is loaded at 1 MiB).
pub fn entry() -> u64 {
    fw_ap32_entry as *const () as u64
}
