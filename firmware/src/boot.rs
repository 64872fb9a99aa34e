//! The PVH entry: the Xen ELF note, the 32-bit entry and the switch to long
//! mode.
//!
//! The loader enters `pvh_start32` in 32-bit protected mode with paging off,
//! flat segments and EBX holding the physical address of `hvm_start_info`.
//! The entry keeps EBX, loads this image's GDT and segments, zeroes `.bss`
//! (page tables, stacks and the TSS live there), fills in the TSS descriptor
//! and the TSS's IST pointers, identity-maps the first 1 GiB with 2 MiB
//! pages, enables SSE (the precompiled `core` uses it everywhere), PAE, long
//! mode and paging, loads the task register and calls the guest's
//! `guest_main(start_info)` (see [`crate::guest_main!`]) on the boot stack.

use core::arch::global_asm;

use vmm_glue::Gpa;

use crate::abi::elfnote;

/// Size of the stack `guest_main` runs on.
pub const BOOT_STACK_SIZE: usize = 256 * 1024;
/// Size of each exception stack (IST1: exceptions, IST2: #DF, NMI, #MC).
pub const IST_STACK_SIZE: usize = 16 * 1024;
/// Guest-virtual addresses below this are identity-mapped (1 GiB).
pub const IDENTITY_MAPPED: u64 = 1 << 30;

/// GDT selector of the 64-bit code segment.
pub const CODE64_SELECTOR: u16 = 0x10;
/// GDT selector of the TSS.
pub const TSS_SELECTOR: u16 = 0x20;

// Offsets in the 64-bit TSS (Intel SDM vol. 3, "64-bit TSS format").
const TSS_SIZE: usize = 104;
const TSS_IST1: usize = 0x24;
const TSS_IST2: usize = 0x2c;
const TSS_IOMAP_BASE: usize = 0x66;

global_asm!(
    r#"
    /* XEN_ELFNOTE_PHYS32_ENTRY: name "Xen", a 4-byte physical entry. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long {note_phys32_entry}
    .asciz "Xen"
    .balign 4
    .long pvh_start32

    .section .data.fw_gdt, "aw"
    .balign 16
fw_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code, flat */
    .quad 0x00af9a000000ffff    /* 0x10: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x18: data, flat */
fw_gdt_tss:                     /* 0x20: 64-bit TSS, base filled at entry */
    .quad 0x0000890000000000 + ({tss_size} - 1)
    .quad 0
fw_gdt_end:
fw_gdt_ptr:
    .short fw_gdt_end - fw_gdt - 1
    .quad fw_gdt

    .balign 8
    .global fw_start_info
fw_start_info:
    .quad 0

    .section .boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, %esi             /* hvm_start_info; kept in ESI until stored */

    /* Our own GDT and segments: nothing about the loader's is relied on. */
    lgdt fw_gdt_ptr
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    ljmp $0x08, $1f
1:
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl %esi, fw_start_info
    movl $fw_boot_stack_top, %esp

    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb fw_no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc fw_no_long_mode

    /* TSS: descriptor base, exception stacks, no I/O permission map. */
    movl $fw_tss, %eax
    movw %ax, fw_gdt_tss + 2
    shrl $16, %eax
    movb %al, fw_gdt_tss + 4
    movb %ah, fw_gdt_tss + 7
    movl $fw_ist1_top, fw_tss + {tss_ist1}
    movl $fw_ist2_top, fw_tss + {tss_ist2}
    movw ${tss_size}, fw_tss + {tss_iomap}

    /* PML4[0] -> PDPT[0] -> one page directory of 512 2 MiB pages. */
    movl $fw_pdpt + 3, fw_pml4
    movl $fw_pd + 3, fw_pdpt
    movl $fw_pd, %edi
    movl $0x83, %eax            /* present, writable, 2 MiB */
    movl $512, %ecx
2:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 2b

    /* The page below the boot stack is not present: a stack overflow
       faults (the exception handler runs on its own stack and names it)
       instead of running on into .bss and the image. Its 2 MiB page is
       mapped with 4 KiB pages for that. */
    movl $fw_boot_guard, %edx
    andl $~0x1fffff, %edx
    orl $3, %edx                /* present, writable */
    movl $fw_pt_guard, %edi
    movl $512, %ecx
7:  movl %edx, (%edi)
    addl $0x1000, %edx
    addl $8, %edi
    loop 7b
    movl $fw_boot_guard, %eax
    shrl $12, %eax
    andl $511, %eax
    movl $0, fw_pt_guard(,%eax,8)
    movl $fw_boot_guard, %eax
    shrl $21, %eax
    movl $fw_pt_guard + 3, fw_pd(,%eax,8)

    /* SSE: CR0.EM off, CR0.MP on; CR4: PAE, OSFXSR, OSXMMEXCPT. */
    movl %cr0, %eax
    andl $~(1 << 2), %eax
    orl $(1 << 1), %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4

    movl $fw_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx      /* EFER.LME */
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax  /* PG, WP, PE */
    movl %eax, %cr0
    ljmp ${code64}, $fw_start64

fw_no_long_mode:
    /* No hypercalls in 32-bit code: say why on port 0xe9 and leave. */
    movl $fw_no_long_mode_msg, %esi
    movw $0xe9, %dx
3:  lodsb
    testb %al, %al
    jz 4f
    outb %al, %dx
    jmp 3b
4:  movw $0xf4, %dx
    movl $1, %eax
    outl %eax, %dx
5:  hlt
    jmp 5b

    .code64
fw_start64:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movq $fw_boot_stack_top, %rsp
    movw ${tss_sel}, %ax
    ltr %ax
    xorl %ebp, %ebp
    movl fw_start_info(%rip), %edi
    call guest_main
6:  cli
    hlt
    jmp 6b

    .section .rodata.fw_boot_msg, "a"
fw_no_long_mode_msg:
    .asciz "firmware: this CPU has no 64-bit long mode\n"

    .section .bss.fw_boot, "aw", @nobits
    .balign 4096
fw_pml4: .skip 4096
fw_pdpt: .skip 4096
fw_pd: .skip 4096
fw_pt_guard: .skip 4096
    .balign 16
fw_tss: .skip {tss_size}
    .balign 16
fw_ist1: .skip {ist}
fw_ist1_top:
fw_ist2: .skip {ist}
fw_ist2_top:
    .balign 4096
    .global fw_boot_guard
fw_boot_guard: .skip 4096
fw_boot_stack: .skip {stack}
fw_boot_stack_top:
    "#,
    note_phys32_entry = const elfnote::PHYS32_ENTRY,
    tss_size = const TSS_SIZE,
    tss_ist1 = const TSS_IST1,
    tss_ist2 = const TSS_IST2,
    tss_iomap = const TSS_IOMAP_BASE,
    code64 = const CODE64_SELECTOR,
    tss_sel = const TSS_SELECTOR,
    ist = const IST_STACK_SIZE,
    stack = const BOOT_STACK_SIZE,
    options(att_syntax)
);

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static fw_boot_guard: u8;
}

/// Whether `addr` is in the page below the boot stack, which is not
/// mapped: a fault there is the boot stack overflowing.
pub fn is_stack_guard(addr: u64) -> bool {
    // Only the symbol's address is taken; nothing is read through it.
    let guard = core::ptr::addr_of!(fw_boot_guard) as u64;
    (guard..guard + 4096).contains(&addr)
}

/// The guest-physical range `[start, end)` this image occupies (through
/// `.bss`, page aligned).
pub fn image_range() -> (Gpa, Gpa) {
    // Only the addresses of the linker-script symbols are taken; nothing is
    // read through them.
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    (Gpa(start), Gpa(end))
}

/// Physical-address bits of a page-table entry.
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Present, writable, 2 MiB, cache disabled, write-through.
const PDE_MMIO: u64 = 0x83 | 0x18;

#[repr(C, align(4096))]
struct PageTable([u64; 512]);

/// The page directory for 3..4 GiB, where a PC has its device registers
/// and local APIC (mapped there on demand).
static mut MMIO_PD: PageTable = PageTable([0; 512]);

/// Identity-maps the 2 MiB page holding `gpa` (in 3..4 GiB), uncached,
/// through [`MMIO_PD`]; false for another address, or if the boot page
/// tables map that GiB otherwise.
pub fn map_mmio_2m(gpa: u64) -> bool {
    if gpa >> 30 != 3 {
        return false;
    }
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags))
    };
    let pd = core::ptr::addr_of_mut!(MMIO_PD).cast::<u64>();
    // SAFETY: the runtime's PML4 and its first PDPT sit in this image,
    // identity-mapped, and are only written here after boot; the PDPT slot
    // is empty or already MMIO_PD's, so no mapping the program relies on
    // changes. MMIO_PD is 4 KiB-aligned, identity-mapped, used by nothing
    // else. Reloading CR3 flushes the TLB.
    unsafe {
        let pml4 = (cr3 & PTE_ADDR) as *const u64;
        let pdpt = (pml4.read_volatile() & PTE_ADDR) as *mut u64;
        let slot = pdpt.add(((gpa >> 30) & 511) as usize);
        let entry = slot.read_volatile();
        if entry & 1 != 0 && entry & PTE_ADDR != pd as u64 {
            return false;
        }
        pd.add(((gpa >> 21) & 511) as usize)
            .write_volatile((gpa & !((2 << 20) - 1)) | PDE_MMIO);
        slot.write_volatile(pd as u64 | 3);
        core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack));
    }
    true
}
