//! The PV entry and start of day.
//!
//! The domain builder enters `pv_start` in 64-bit mode at guest ring 3
//! (CS `FLAT_KERNEL_CS`, SS `FLAT_KERNEL_SS`) on its own page tables, with
//! RSI the virtual address of `start_info`, RSP the top of its boot stack
//! and events masked (`pv-abi.md` 2.4, Xen's `xg_dom_x86.c vcpu_x86_64`).
//! The entry records that state, zeroes `.bss`, moves to this image's
//! stack and calls the guest's `pv_guest_main` (see
//! [`crate::pv_guest_main!`]), which runs [`start`].

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::abi::{sel, StartInfo};
use super::hypercall;

/// Size of the stack the guest's `main` runs on.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Size of the stack the hypervisor bounces to from guest user mode (the
/// one `stack_switch` names).
pub const KERNEL_STACK_SIZE: usize = 16 * 1024;

global_asm!(
    r#"
    .pushsection .text.pv_entry, "ax"
    .global pv_start
pv_start:
    cld
    movq %rsi, %r12
    movq %rsp, %r13
    /* .bss is this image's; the builder's stack and start_info are not. */
    leaq __bss_start(%rip), %rdi
    leaq __bss_end(%rip), %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb
    movq %r12, pv_entry_state+0(%rip)
    movq %r13, pv_entry_state+8(%rip)
    pushfq
    popq %rax
    movq %rax, pv_entry_state+16(%rip)
    xorl %eax, %eax
    movw %cs, %ax
    movq %rax, pv_entry_state+24(%rip)
    movw %ss, %ax
    movq %rax, pv_entry_state+32(%rip)
    leaq pv_boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movq %r12, %rdi
    call pv_guest_main
1:  ud2
    jmp 1b
    .popsection

    .pushsection .bss.pv_stacks, "aw", @nobits
    .balign 4096
pv_boot_stack:
    .skip {boot_stack}
pv_boot_stack_top:
    .balign 4096
pv_kernel_stack:
    .skip {kernel_stack}
    .global pv_kernel_stack_top
pv_kernel_stack_top:
    .popsection
    "#,
    boot_stack = const BOOT_STACK_SIZE,
    kernel_stack = const KERNEL_STACK_SIZE,
    options(att_syntax)
);

/// RSI, RSP, RFLAGS, CS and SS as the builder left them, stored by the
/// entry (after zeroing `.bss`, which holds this).
#[no_mangle]
static pv_entry_state: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

extern "C" {
    static pv_kernel_stack_top: u8;
}

/// The registers the guest started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryState {
    /// RSI: the virtual address of `start_info`.
    pub rsi: u64,
    /// RSP: the top of the builder's boot stack.
    pub rsp: u64,
    /// RFLAGS as the guest sees them (PUSHF).
    pub rflags: u64,
    /// CS.
    pub cs: u16,
    /// SS.
    pub ss: u16,
}

/// The state [`pv_start`] recorded.
pub fn entry_state() -> EntryState {
    let get = |i: usize| pv_entry_state[i].load(Ordering::Relaxed);
    EntryState {
        rsi: get(0),
        rsp: get(1),
        rflags: get(2),
        cs: get(3) as u16,
        ss: get(4) as u16,
    }
}

extern "C" {
    static __image_end: u8;
}

/// The end of this image (after `.bss`, page aligned).
pub fn image_end() -> u64 {
    core::ptr::addr_of!(__image_end) as u64
}

/// The top of the stack for bounces from guest user mode.
pub fn kernel_stack_top() -> u64 {
    core::ptr::addr_of!(pv_kernel_stack_top) as u64
}

/// A copy of the start info at virtual address `va`.
///
/// # Safety
/// `va` must be the address the builder passed in RSI: a mapped page
/// holding `struct start_info`.
unsafe fn read_start_info(va: u64) -> StartInfo {
    // SAFETY: the caller vouches that `va` holds a start_info; it is
    // copied out with a volatile read because the builder, not Rust,
    // wrote it.
    unsafe { core::ptr::read_volatile(va as *const StartInfo) }
}

/// Sets up the runtime and runs `main` with a copy of the start info and
/// its address. [`crate::pv_guest_main!`] calls this.
pub fn start(name: &str, start_info_va: u64, main: fn(&StartInfo, u64) -> !) -> ! {
    crate::hypervisor::init_pv();
    // SAFETY: the entry passes on RSI, the builder's start_info address.
    let si = unsafe { read_start_info(start_info_va) };
    super::mm::init(&si);
    let entry = entry_state();
    if hypercall::page_filled() {
        crate::println!(
            "firmware: {name}: 64-bit PV guest at {:#x}, start_info at {start_info_va:#x}; hypercall page at {:#x} (syscall)",
            pv_start_va(),
            hypercall::page_va()
        );
    } else {
        crate::println!(
            "firmware: {name}: 64-bit PV guest; the hypercall page at {:#x} was not filled, using syscall directly",
            hypercall::page_va()
        );
    }
    if entry.cs != sel::FLAT_CS || entry.ss != sel::FLAT_SS {
        crate::println!(
            "firmware: {name}: entered with CS {:#x} SS {:#x}, not the flat kernel selectors",
            entry.cs,
            entry.ss
        );
    }
    main(&si, start_info_va)
}

extern "C" {
    static pv_start: u8;
}

/// The entry point's address.
pub fn pv_start_va() -> u64 {
    core::ptr::addr_of!(pv_start) as u64
}
