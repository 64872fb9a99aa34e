//! The image's first instructions: multiboot headers and the 32-bit entry.
//!
//! Both boot protocols enter `_start32` in 32-bit protected mode with paging
//! off, EAX holding the boot loader's magic and EBX the physical address of
//! its information structure. The entry saves both, zeroes `.bss`, enables
//! SSE (the precompiled `core` uses it everywhere), identity-maps the first
//! 4 GiB with 2 MiB pages, enters long mode and calls [`crate::kmain`].
//! The Rust side then replaces these page tables with its own.

use core::arch::global_asm;

/// Size of the boot stack (the stack `kmain` runs on).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .set MB1_MAGIC, 0x1BADB002
    /* page-align modules, memory info, a.out kludge address fields */
    .set MB1_FLAGS, 0x00010003
    .set MB2_MAGIC, 0xE85250D6

    .section .multiboot_header, "a"
    .balign 4
mb1_header:
    .long MB1_MAGIC
    .long MB1_FLAGS
    .long -(MB1_MAGIC + MB1_FLAGS)
    .long mb1_header        /* header_addr */
    .long __image_start     /* load_addr */
    .long __load_end        /* load_end_addr */
    .long __bss_end         /* bss_end_addr */
    .long _start32          /* entry_addr */

    .balign 8
mb2_header:
    .long MB2_MAGIC
    .long 0                 /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + (mb2_header_end - mb2_header))
    /* entry address tag */
    .balign 8
    .short 3, 0
    .long 12
    .long _start32
    /* end tag */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:

    .section .data.boot_args, "aw"
    .balign 4
    .global boot_magic
boot_magic: .long 0
    .global boot_info
boot_info: .long 0

    .section .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    movl %eax, boot_magic
    movl %ebx, boot_info

    /* zero .bss: the stack and the boot page tables live there */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    movl $boot_stack_top, %esp

    /* long mode available? */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc no_long_mode

    /* SSE for Rust: CR0.EM off, CR0.MP on; CR4.OSFXSR, OSXMMEXCPT, PAE */
    movl %cr0, %eax
    andl $~(1 << 2), %eax
    orl $(1 << 1), %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4

    /* PML4[0] -> PDPT; PDPT[0..4] -> 4 page directories of 2 MiB pages */
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $3, %eax
    movl $boot_pdpt, %edi
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $0x1000, %eax
    addl $8, %edi
    loop 1b
    movl $boot_pd, %edi
    movl $0x83, %eax             /* present, writable, 2 MiB */
    movl $2048, %ecx
2:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 2b

    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx       /* EFER.LME */
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $start64

no_long_mode:
    movl $no_long_mode_msg, %esi
3:  lodsb
    testb %al, %al
    jz 5f
    movb %al, %bl
    movw $0x3FD, %dx
4:  inb %dx, %al
    testb $0x20, %al
    jz 4b
    movb %bl, %al
    movw $0x3F8, %dx
    outb %al, %dx
    jmp 3b
5:  hlt
    jmp 5b

    .code64
start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl boot_magic(%rip), %edi
    movl boot_info(%rip), %esi
    call kmain
6:  cli
    hlt
    jmp 6b

    .section .rodata.boot_msg, "a"
no_long_mode_msg:
    .asciz "hv: this CPU has no 64-bit long mode; the hypervisor needs an x86-64 CPU\r\n"

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd: .skip 4 * 4096
    .balign 16
boot_stack: .skip {stack}
    .global boot_stack_top
boot_stack_top:
    "#,
    stack = const BOOT_STACK_SIZE,
    options(att_syntax)
);
