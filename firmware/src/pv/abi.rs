//! Xen's 64-bit PV guest ABI as the guest side sees it, written from the
//! public headers (`xen.h`, `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`,
//! `callback.h`, `elfnote.h`) with compile-time layout checks. Only what
//! the PV runtime and `pv_hello` use is named here.

use core::mem::{offset_of, size_of};

/// Hypercall numbers (`__HYPERVISOR_*`, `xen.h`) that only PV guests use;
/// the shared ones are in [`vmm_glue::xen::hypercall`].
pub mod nr {
    pub use vmm_glue::xen::hypercall::*;

    /// `set_trap_table(const struct trap_info *)`.
    pub const SET_TRAP_TABLE: u64 = 0;
    /// `mmu_update(reqs, count, *done, foreigndom)`.
    pub const MMU_UPDATE: u64 = 1;
    /// `set_gdt(frames, entries)`.
    pub const SET_GDT: u64 = 2;
    /// `stack_switch(ss, rsp)`.
    pub const STACK_SWITCH: u64 = 3;
    /// `fpu_taskswitch(set)`: the virtual CR0.TS.
    pub const FPU_TASKSWITCH: u64 = 5;
    /// `update_descriptor(maddr, desc)`.
    pub const UPDATE_DESCRIPTOR: u64 = 10;
    /// `update_va_mapping(va, pte, flags)`.
    pub const UPDATE_VA_MAPPING: u64 = 14;
    /// `vm_assist(cmd, type)`.
    pub const VM_ASSIST: u64 = 21;
    /// `iret()`: the frame is on the stack; it never returns to its caller.
    pub const IRET: u64 = 23;
    /// `set_segment_base(which, base)`.
    pub const SET_SEGMENT_BASE: u64 = 25;
    /// `mmuext_op(ops, count, *done, foreigndom)`.
    pub const MMUEXT_OP: u64 = 26;
    /// `callback_op(cmd, arg)`.
    pub const CALLBACK_OP: u64 = 30;
}

/// Where a 64-bit PV kernel lives (`arch-x86/xen-x86_64.h`) and where this
/// runtime puts itself.
pub mod va {
    /// `VIRT_BASE` of this runtime's images, as Linux's
    /// `__START_KERNEL_map`: pfn N is mapped at `VIRT_BASE + N * 4096`.
    pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
    /// Where the image is loaded (pseudo-physical, `PADDR_OFFSET` 0).
    pub const IMAGE_PHYS: u64 = 0x10_0000;
    /// `HYPERVISOR_VIRT_START`: the hypervisor's hole begins here.
    pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
    /// `HYPERVISOR_VIRT_END`.
    pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
}

/// The flat selectors of a 64-bit PV guest (`xen-x86_64.h`): kernel and
/// user share them, both run in ring 3.
pub mod sel {
    /// `FLAT_KERNEL_CS` = `FLAT_USER_CS` = `FLAT_RING3_CS64`.
    pub const FLAT_CS: u16 = 0xe033;
    /// `FLAT_KERNEL_SS` = `FLAT_USER_SS` = `FLAT_RING3_SS64`.
    pub const FLAT_SS: u16 = 0xe02b;
    /// `FLAT_KERNEL_CS` with RPL 0: what a bounce frame's CS says when the
    /// guest was in kernel mode (`create_bounce_frame` clears the RPL).
    pub const KERNEL_CS_IN_FRAME: u16 = FLAT_CS & !3;
    /// `FIRST_RESERVED_GDT_ENTRY`: guest GDTs hold at most this many.
    pub const FIRST_RESERVED_GDT_ENTRY: u64 = 7168;
    /// Xen's own ring-0 code selector (GDT entry 7169): never a valid
    /// call-gate target for a guest.
    pub const XEN_RING0_CS: u16 = 0xe008;
}

/// Page-table entry bits (x86-64; `MMU_NORMAL_PT_UPDATE` values carry
/// machine frame numbers).
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User accessible.
    pub const USER: u64 = 1 << 2;
    /// Accessed.
    pub const A: u64 = 1 << 5;
    /// Dirty.
    pub const D: u64 = 1 << 6;
    /// Page size (2 MiB / 1 GiB); Xen refuses it in PV L2 and L3 entries.
    pub const PSE: u64 = 1 << 7;
    /// No execute.
    pub const NX: u64 = 1 << 63;
    /// The machine address bits.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
    /// What Linux's `_PAGE_TABLE` sets in an entry that points at a table.
    pub const TABLE: u64 = P | RW | USER | A | D;
}

/// `MMU_*` commands in the low bits of `mmu_update.ptr` (`xen.h`).
pub mod mmu {
    /// `MMU_NORMAL_PT_UPDATE`: checked `*ptr = val`.
    pub const NORMAL_PT_UPDATE: u64 = 0;
}

/// `MMUEXT_*` (`xen.h`).
pub mod mmuext {
    /// Validate a frame as an L1 table and pin it.
    pub const PIN_L1_TABLE: u32 = 0;
    /// Validate a frame as an L4 table and pin it.
    pub const PIN_L4_TABLE: u32 = 3;
    /// Drop a pin.
    pub const UNPIN_TABLE: u32 = 4;
    /// Flush this vCPU's TLB.
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    /// Flush one address from this vCPU's TLB.
    pub const INVLPG_LOCAL: u32 = 7;
    /// Install the root used in guest user mode.
    pub const NEW_USER_BASEPTR: u32 = 15;
}

/// `UVMF_*` flags of `update_va_mapping` (`xen.h`).
pub mod uvmf {
    /// No flush.
    pub const NONE: u64 = 0;
    /// Flush the one address (on this vCPU with [`NONE`]'s `UVMF_LOCAL` = 0).
    pub const INVLPG: u64 = 2;
}

/// `VMASST_*` (`xen.h`).
pub mod vmasst {
    /// `VMASST_CMD_enable`.
    pub const CMD_ENABLE: u64 = 0;
    /// `VMASST_CMD_disable`.
    pub const CMD_DISABLE: u64 = 1;
    /// `VMASST_TYPE_writable_pagetables`: writes to read-only L1 tables
    /// are validated and emulated.
    pub const TYPE_WRITABLE_PAGETABLES: u64 = 2;
}

/// `callback_op` (`callback.h`).
pub mod callback {
    /// `CALLBACKOP_register`.
    pub const OP_REGISTER: u64 = 0;
    /// `CALLBACKOP_unregister`.
    pub const OP_UNREGISTER: u64 = 1;
    /// `CALLBACKTYPE_event`: the event upcall.
    pub const TYPE_EVENT: u16 = 0;
    /// `CALLBACKTYPE_failsafe`: a segment reload failed.
    pub const TYPE_FAILSAFE: u16 = 1;
    /// `CALLBACKTYPE_syscall`: `syscall` from guest user mode.
    pub const TYPE_SYSCALL: u16 = 2;
    /// `CALLBACKF_mask_events`: set `evtchn_upcall_mask` on delivery.
    pub const F_MASK_EVENTS: u16 = 1 << 0;
}

/// `SEGBASE_*` of `set_segment_base` (`xen-x86_64.h`).
pub mod segbase {
    /// The FS base.
    pub const FS: u64 = 0;
    /// The kernel's (in kernel mode, the active) GS base.
    pub const GS_KERNEL: u64 = 2;
    /// The user GS selector, loaded from the GDT.
    pub const GS_USER_SEL: u64 = 3;
}

/// `VGCF_in_syscall` in an iret frame's flags: return with SYSRET
/// semantics (RCX and R11 are not restored).
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// RFLAGS bits the bounce frames and `iret` deal in.
pub mod rflags {
    /// Interrupt enable: in a frame, `!evtchn_upcall_mask`.
    pub const IF: u64 = 1 << 9;
    /// Direction.
    pub const DF: u64 = 1 << 10;
    /// I/O privilege level (two bits).
    pub const IOPL: u64 = 3 << 12;
    /// Resume flag.
    pub const RF: u64 = 1 << 16;
}

/// `struct start_info` (`xen.h`), 64-bit layout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    /// "xen-<version>-<platform>", NUL-padded.
    pub magic: [u8; 32],
    /// Pages of the domain.
    pub nr_pages: u64,
    /// Machine address (not frame) of the shared info page.
    pub shared_info: u64,
    /// `SIF_*`.
    pub flags: u32,
    /// Padding.
    pub pad0: u32,
    /// Machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// Event channel of the xenstore ring.
    pub store_evtchn: u32,
    /// Padding.
    pub pad1: u32,
    /// `console.domU.mfn`: machine frame of the console ring.
    pub console_mfn: u64,
    /// `console.domU.evtchn`.
    pub console_evtchn: u32,
    /// Padding.
    pub pad2: u32,
    /// Virtual address of the boot L4.
    pub pt_base: u64,
    /// Frames of the boot page tables.
    pub nr_pt_frames: u64,
    /// Virtual address of the p2m list (`mfn_list[pfn]`).
    pub mfn_list: u64,
    /// Virtual address (or pfn, with `SIF_MOD_START_PFN`) of the initrd.
    pub mod_start: u64,
    /// Bytes of the initrd.
    pub mod_len: u64,
    /// The command line, NUL-terminated.
    pub cmd_line: [u8; 1024],
    /// First pfn of a p2m list mapped by `INIT_P2M`.
    pub first_p2m_pfn: u64,
    /// Frames of that list and its tables.
    pub nr_p2m_frames: u64,
}

const _: () = assert!(
    size_of::<StartInfo>() == 1168
        && offset_of!(StartInfo, nr_pages) == 32
        && offset_of!(StartInfo, shared_info) == 40
        && offset_of!(StartInfo, flags) == 48
        && offset_of!(StartInfo, store_mfn) == 56
        && offset_of!(StartInfo, store_evtchn) == 64
        && offset_of!(StartInfo, console_mfn) == 72
        && offset_of!(StartInfo, console_evtchn) == 80
        && offset_of!(StartInfo, pt_base) == 88
        && offset_of!(StartInfo, nr_pt_frames) == 96
        && offset_of!(StartInfo, mfn_list) == 104
        && offset_of!(StartInfo, mod_start) == 112
        && offset_of!(StartInfo, mod_len) == 120
        && offset_of!(StartInfo, cmd_line) == 128
        && offset_of!(StartInfo, first_p2m_pfn) == 1152
);

/// `SIF_PRIVILEGED`: the domain may use privileged hypercalls.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: this is the initial domain.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// `struct trap_info` (`arch-x86/xen.h`): one virtual IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// The exception vector.
    pub vector: u8,
    /// Bits 0-1: the DPL `int n` needs; bit 2: mask events on delivery.
    pub flags: u8,
    /// Code selector (RPL fixed up by the hypervisor).
    pub cs: u16,
    /// Padding.
    pub pad: u32,
    /// Handler; 0 ends the table.
    pub address: u64,
}

/// `TrapInfo::flags` bit 2 (`TI_SET_IF`): delivery sets
/// `evtchn_upcall_mask`.
pub const TI_MASK_EVENTS: u8 = 1 << 2;

const _: () = assert!(size_of::<TrapInfo>() == 16 && offset_of!(TrapInfo, address) == 8);

/// `struct callback_register` (`callback.h`), 64-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackRegister {
    /// `CALLBACKTYPE_*`.
    pub kind: u16,
    /// `CALLBACKF_*`.
    pub flags: u16,
    /// Padding.
    pub pad: u32,
    /// The handler (`xen_callback_t` is a plain address on x86-64).
    pub address: u64,
}

const _: () =
    assert!(size_of::<CallbackRegister>() == 16 && offset_of!(CallbackRegister, address) == 8);

/// `struct mmu_update` (`xen.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Machine address of the entry, command in bits 0-2.
    pub ptr: u64,
    /// The new entry.
    pub val: u64,
}

const _: () = assert!(size_of::<MmuUpdate>() == 16);

/// `struct mmuext_op` (`xen.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    /// `MMUEXT_*`.
    pub cmd: u32,
    /// Padding.
    pub pad: u32,
    /// A machine frame or a linear address.
    pub arg1: u64,
    /// An entry count, a vCPU mask pointer or a source frame.
    pub arg2: u64,
}

const _: () = assert!(size_of::<MmuextOp>() == 24 && offset_of!(MmuextOp, arg1) == 8);

/// `struct multicall_entry` (`xen.h`), 64-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    /// The hypercall number.
    pub op: u64,
    /// Its result, written by the hypervisor.
    pub result: u64,
    /// Its arguments.
    pub args: [u64; 6],
}

const _: () = assert!(
    size_of::<MulticallEntry>() == 64
        && offset_of!(MulticallEntry, result) == 8
        && offset_of!(MulticallEntry, args) == 16
);

/// `struct iret_context` (`xen-x86_64.h`): the stack at the `iret`
/// hypercall, lowest address first. The runtime's assembly builds it; the
/// offsets are named here so the layout has one checked description.
pub mod iret_context {
    /// RAX, returned to the guest.
    pub const RAX: usize = 0;
    /// R11 (restored unless `VGCF_in_syscall`).
    pub const R11: usize = 8;
    /// RCX (restored unless `VGCF_in_syscall`).
    pub const RCX: usize = 16;
    /// `VGCF_*` flags.
    pub const FLAGS: usize = 24;
    /// Where to return.
    pub const RIP: usize = 32;
    /// CS; RPL 3 returns to guest user mode.
    pub const CS: usize = 40;
    /// RFLAGS; IF becomes `!evtchn_upcall_mask`.
    pub const RFLAGS: usize = 48;
    /// RSP.
    pub const RSP: usize = 56;
    /// SS.
    pub const SS: usize = 64;
    /// Size.
    pub const SIZE: usize = 72;
}

/// Xen's ELF notes a PV kernel carries (`elfnote.h`).
pub use vmm_glue::xen::elfnote;

/// Hypercall-page geometry for a 64-bit PV guest
/// (`pv_ring3_init_hypercall_page` in Xen's `arch/x86/pv/hypercall.c`):
/// 128 stubs of 32 bytes, the page first filled with `int3`.
pub mod page {
    /// Bytes per stub.
    pub const STUB_SIZE: usize = 32;
    /// `push %rcx; push %r11; mov $N, %eax; syscall; pop %r11; pop %rcx;
    /// ret` with N = 0; the rest of the 32 bytes stays 0xcc.
    pub const STUB0: [u8; 14] = [
        0x51, 0x41, 0x53, 0xb8, 0, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3,
    ];
    /// Stub 23 (`iret`): `push %rcx; push %r11; push %rax; mov $23, %eax;
    /// syscall`; guests jump to it with the rest of the frame pushed.
    pub const STUB_IRET: [u8; 11] = [0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05];
    /// What the rest of the page holds.
    pub const FILL: u8 = 0xcc;
}
