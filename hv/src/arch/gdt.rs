//! The hypervisor's GDT and TSS. The TSS carries the interrupt stacks (IST)
//! every IDT gate switches to, and a non-zero TR is what VMX wants as host
//! state.

use core::arch::asm;
use core::ptr::addr_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// TSS selector.
pub const TSS_SEL: u16 = 0x18;

/// IST slots (1-based as the IDT encodes them).
pub const IST_EXCEPTION: u8 = 1;
pub const IST_DOUBLE_FAULT: u8 = 2;
pub const IST_NMI: u8 = 3;
pub const IST_MACHINE_CHECK: u8 = 4;
pub const IST_INTERRUPT: u8 = 5;
const IST_COUNT: usize = 5;
const IST_SIZE: usize = 16 * 1024;

#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}
const _: () = assert!(core::mem::size_of::<Tss>() == 104);

#[repr(C, align(16))]
struct IstStacks([[u8; IST_SIZE]; IST_COUNT]);

static mut IST_STACKS: IstStacks = IstStacks([[0; IST_SIZE]; IST_COUNT]);
static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: core::mem::size_of::<Tss>() as u16,
};
static mut GDT: [u64; 5] = [
    0,
    0x00AF_9A00_0000_FFFF, // 64-bit code, DPL 0
    0x00CF_9200_0000_FFFF, // data
    0,                     // TSS low (filled in by `init`)
    0,                     // TSS high
];

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// The address range of IST stack `slot` (1-based), for diagnostics.
pub fn ist_range(slot: u8) -> (u64, u64) {
    let base = addr_of!(IST_STACKS) as u64 + (u64::from(slot) - 1) * IST_SIZE as u64;
    (base, base + IST_SIZE as u64)
}

/// Loads the GDT, reloads the segment registers and loads the TSS.
pub fn init() {
    // SAFETY: runs once on the boot CPU before interrupts are enabled;
    // nothing else references these statics yet. The descriptors are
    // well-formed 64-bit descriptors and the selectors match them.
    unsafe {
        let tss = &raw mut TSS;
        for slot in 1..=IST_COUNT as u8 {
            (*tss).ist[usize::from(slot) - 1] = ist_range(slot).1;
        }
        let base = tss as u64;
        let limit = (core::mem::size_of::<Tss>() - 1) as u64;
        let low = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40) // present, 64-bit available TSS
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        let gdt = &raw mut GDT;
        (*gdt)[3] = low;
        (*gdt)[4] = base >> 32;
        let ptr = DescriptorPointer {
            limit: (5 * 8 - 1) as u16,
            base: gdt as u64,
        };
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ss, {ds:x}",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) addr_of!(ptr),
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) u64::from(KERNEL_DS),
            tss = in(reg) u64::from(TSS_SEL),
            tmp = out(reg) _,
        );
    }
}

/// The TSS's linear address (TR's base, for the VMX host state).
pub fn tss_base() -> u64 {
    addr_of!(TSS) as u64
}
