//! What a guest with several vCPUs needs beyond the runtime: the control
//! registers a 64-bit secondary vCPU can share with vCPU 0, the x2APIC
//! (enable, IPI, EOI), and the whole code of a secondary vCPU started in
//! 32-bit protected mode with paging off ([`entry32`], for
//! `VCPUOP_initialise` with a `VCPU_HVM_MODE_32B` context): it writes
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
//!
//! And the code of a secondary vCPU started by INIT and STARTUP IPIs in
//! real mode ([`RealModeAp`]), with the raw ICR write that sends them.

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

use crate::cpu::{rdmsr, wrmsr};
use core::arch::asm;

/// The 32-bit entry point's address (below 4 GiB: the image is loaded at
/// 1 MiB).
pub fn entry32() -> u64 {
    fw_ap32_entry as *const () as u64
}

/// `IA32_EFER`.
const EFER: u32 = 0xc000_0080;
const APIC_BASE: u32 = 0x1b;
const APIC_BASE_EXTD: u64 = 1 << 10;
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
const X2APIC_ICR: u32 = 0x830;

/// This vCPU's CR0, CR3, CR4 and EFER: what a 64-bit secondary vCPU needs
/// to run in the same address space.
pub fn long_mode_state() -> (u64, u64, u64, u64) {
    let (cr0, cr3, cr4): (u64, u64, u64);
    // SAFETY: reading control registers changes nothing.
    unsafe {
        asm!("mov {}, cr0", "mov {}, cr3", "mov {}, cr4", out(reg) cr0, out(reg) cr3,
             out(reg) cr4, options(nomem, nostack, preserves_flags));
    }
    (cr0, cr3, cr4, rdmsr(EFER))
}

/// Switches this vCPU's local APIC to x2APIC mode and software-enables it
/// (spurious vector 0xff).
pub fn x2apic_enable() {
    let base = rdmsr(APIC_BASE);
    // SAFETY: the APIC base stays where it is; x2APIC mode only changes how
    // this program reaches the APIC (MSRs), and only this module does.
    unsafe {
        wrmsr(APIC_BASE, base | APIC_BASE_EXTD);
        wrmsr(X2APIC_SVR, 0x1ff);
    }
}

/// A fixed-mode IPI with `vector` to the vCPU with x2APIC id `dest`.
pub fn x2apic_send_ipi(dest: u32, vector: u8) {
    // SAFETY: an IPI changes no state of this vCPU.
    unsafe { wrmsr(X2APIC_ICR, (u64::from(dest) << 32) | u64::from(vector)) };
}

/// Ends the interrupt in service (x2APIC EOI).
pub fn x2apic_eoi() {
    // SAFETY: an EOI only retires the interrupt in service.
    unsafe { wrmsr(X2APIC_EOI, 0) };
}

core::arch::global_asm!(
    r#"
    .pushsection .text.fw_ap16, "ax"
    .code16
    .global fw_ap16_start
    .global fw_ap16_end
fw_ap16_start:
    mov ax, cs
    mov ds, ax
    mov word ptr [0x100], ax
    lock inc word ptr [0x102]
2:
    sti
    hlt
    jmp 2b
fw_ap16_end:
    .code64
    .popsection
"#
);

extern "C" {
    fn fw_ap16_start();
    fn fw_ap16_end();
}

/// Where [`RealModeAp`]'s code goes: page 8 (0x8000), free low RAM.
pub const REAL_MODE_PAGE: u64 = 0x8000;
/// Offsets in that page: the CS it saw, its start count.
const RM_CS: u64 = 0x100;
const RM_COUNT: u64 = 0x102;

/// The code of a secondary vCPU started by a STARTUP IPI, in real mode at
/// [`REAL_MODE_PAGE`] (vector 8): it stores CS, increments its start count
/// with a locked add, then halts with interrupts on, again and again: it
/// stays up, blocked (nothing is sent to it), until an INIT takes it
/// down.
#[derive(Debug)]
pub struct RealModeAp;

impl RealModeAp {
    /// Copies the code to [`REAL_MODE_PAGE`] and clears its data.
    pub fn install() -> RealModeAp {
        let start = fw_ap16_start as *const () as usize;
        let end = fw_ap16_end as *const () as usize;
        let len = (end - start).min(RM_CS as usize);
        // SAFETY: page 8 is guest RAM below 640 KiB that the runtime never
        // uses (the image is at 1 MiB), identity-mapped; only this type
        // touches it, and no vCPU runs it yet.
        unsafe {
            core::ptr::copy_nonoverlapping(start as *const u8, REAL_MODE_PAGE as *mut u8, len);
        }
        for off in [RM_CS, RM_COUNT] {
            Self::write16(off, 0);
        }
        RealModeAp
    }

    fn read16(off: u64) -> u16 {
        // SAFETY: inside the page `install` set up; the AP writes it
        // concurrently, hence the volatile access.
        unsafe { core::ptr::read_volatile((REAL_MODE_PAGE + off) as *const u16) }
    }

    fn write16(off: u64, v: u16) {
        // SAFETY: as in `read16`.
        unsafe { core::ptr::write_volatile((REAL_MODE_PAGE + off) as *mut u16, v) }
    }

    /// The CS the last start saw.
    pub fn cs(&self) -> u16 {
        Self::read16(RM_CS)
    }

    /// How many times the code started.
    pub fn starts(&self) -> u16 {
        Self::read16(RM_COUNT)
    }
}

/// Writes `icr` to the x2APIC ICR (MSR 0x830) as it is: any delivery
/// mode, shorthand and destination.
pub fn x2apic_write_icr(icr: u64) {
    // SAFETY: an IPI changes no state of this vCPU (INIT and STARTUP never
    // reach the sender).
    unsafe { wrmsr(X2APIC_ICR, icr) };
}
