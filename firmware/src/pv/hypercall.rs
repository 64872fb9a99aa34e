//! Hypercalls of a 64-bit PV guest: `syscall` from guest kernel mode with
//! the number in RAX and the arguments in RDI, RSI, RDX, R10, R8
//! (`arch-x86/xen-x86_64.h`); RCX and R11 are lost to `syscall`. The
//! domain builder fills the page named by the `HYPERCALL_PAGE` note with
//! stubs that save RCX and R11 around the instruction; [`page`] calls
//! through a stub, [`syscall`] issues the instruction itself, as Linux
//! does since it dropped the page.
//!
//! Typed wrappers for the PV-only hypercalls follow; each returns the raw
//! result (negative: a Xen errno) so that the guest can compare errors
//! with Xen's.

use core::arch::{asm, global_asm};

use super::abi::{
    callback, nr, page as stub, CallbackRegister, MmuUpdate, MmuextOp, MulticallEntry, TrapInfo,
};

// The page the builder fills. It sits in `.text` so that it is executable
// and inside the image; until the builder fills it, it is all int3.
global_asm!(
    r#"
    .pushsection .text.pv_hypercall_page, "ax"
    .balign 4096
    .global pv_hypercall_page
pv_hypercall_page:
    .fill 4096, 1, 0xcc
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    static pv_hypercall_page: [u8; 4096];
}

/// The virtual address of the hypercall page.
pub fn page_va() -> u64 {
    core::ptr::addr_of!(pv_hypercall_page) as u64
}

/// A copy of stub `n` (0..128).
pub fn stub_bytes(n: usize) -> [u8; stub::STUB_SIZE] {
    let base = core::ptr::addr_of!(pv_hypercall_page).cast::<u8>();
    let mut out = [0u8; stub::STUB_SIZE];
    for (i, b) in out.iter_mut().enumerate() {
        let off = (n * stub::STUB_SIZE + i) % 4096;
        // SAFETY: `off` < 4096 keeps the read inside the page; volatile
        // because the builder, not Rust, wrote it.
        *b = unsafe { base.add(off).read_volatile() };
    }
    out
}

/// Whether the builder filled the page (stub 0 is no longer int3).
pub fn page_filled() -> bool {
    stub_bytes(0)[0] != stub::FILL
}

/// Hypercall `nr` through its stub in the hypercall page.
///
/// # Safety
/// Arguments that are guest addresses must point at memory valid for what
/// hypercall `nr` reads or writes there. `nr` must not be `iret`, whose
/// stub does not return.
pub unsafe fn page(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    debug_assert!(nr != nr::IRET && nr < 128);
    let entry = page_va() + (nr % 128) * stub::STUB_SIZE as u64;
    // SAFETY: the stub is the builder's `push %rcx; push %r11; mov $nr,
    // %eax; syscall; pop %r11; pop %rcx; ret`; the caller vouches for the
    // arguments.
    unsafe { crate::hypervisor::call_stub(entry, nr, a1, a2, a3, a4, a5) }
}

/// Hypercall `nr` with `syscall` issued here, not through the page.
///
/// # Safety
/// As for [`page`].
pub unsafe fn syscall(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    debug_assert!(nr != nr::IRET);
    let ret: u64;
    // SAFETY: a hypercall from guest kernel mode; the caller vouches for
    // the arguments. SYSCALL clobbers RCX and R11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, att_syntax),
        );
    }
    ret as i64
}

/// The hypercall path the runtime uses: the page once it is filled,
/// `syscall` otherwise.
///
/// # Safety
/// As for [`page`].
pub unsafe fn call(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    // SAFETY: the caller vouches for the arguments.
    unsafe {
        if page_filled() {
            page(nr, a1, a2, a3, a4, a5)
        } else {
            syscall(nr, a1, a2, a3, a4, a5)
        }
    }
}

/// Hypercall `nr(cmd, &mut arg)`: the hypervisor may read and write
/// `arg`.
pub fn op<T>(nr: u64, cmd: u64, arg: &mut T) -> i64 {
    // SAFETY: the only pointer is to `arg`, live and exclusively borrowed.
    unsafe { call(nr, cmd, arg as *mut T as u64, 0, 0, 0) }
}

/// Hypercall `nr(&mut arg)`: the hypervisor may read and write `arg`.
pub fn op1<T>(nr: u64, arg: &mut T) -> i64 {
    // SAFETY: as for [`op`].
    unsafe { call(nr, arg as *mut T as u64, 0, 0, 0, 0) }
}

/// `set_trap_table(table)`: `table` must end with an entry whose address
/// is 0.
pub fn set_trap_table(table: &[TrapInfo]) -> i64 {
    if table.last().is_none_or(|t| t.address != 0) {
        return -crate::xen::errno::EINVAL;
    }
    // SAFETY: the hypervisor reads entries up to the terminating one,
    // which the slice holds.
    unsafe { call(nr::SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0, 0, 0) }
}

/// `callback_op(CALLBACKOP_register, {kind, flags, address})`.
pub fn register_callback(kind: u16, flags: u16, address: u64) -> i64 {
    let arg = CallbackRegister {
        kind,
        flags,
        pad: 0,
        address,
    };
    // SAFETY: the hypervisor reads the 16-byte struct, which lives across
    // the call.
    unsafe {
        call(
            nr::CALLBACK_OP,
            callback::OP_REGISTER,
            core::ptr::addr_of!(arg) as u64,
            0,
            0,
            0,
        )
    }
}

/// `callback_op(CALLBACKOP_unregister, {kind})`.
pub fn unregister_callback(kind: u16) -> i64 {
    let arg: [u16; 2] = [kind, 0];
    // SAFETY: the hypervisor reads the 4-byte struct, which lives across
    // the call.
    unsafe {
        call(
            nr::CALLBACK_OP,
            callback::OP_UNREGISTER,
            arg.as_ptr() as u64,
            0,
            0,
            0,
        )
    }
}

/// `stack_switch(ss, rsp)`: the stack bounces from guest user mode use.
pub fn stack_switch(ss: u64, rsp: u64) -> i64 {
    // SAFETY: no argument is a pointer the hypervisor dereferences now.
    unsafe { call(nr::STACK_SWITCH, ss, rsp, 0, 0, 0) }
}

/// `mmu_update(reqs, reqs.len(), &done, foreigndom)`: the result and how
/// many requests the hypervisor reports done.
pub fn mmu_update(reqs: &[MmuUpdate], foreigndom: u32) -> (i64, u32) {
    let mut done: u32 = u32::MAX;
    // SAFETY: the hypervisor reads `reqs` and writes the 4-byte `done`,
    // both live across the call. Page-table effects are the caller's
    // concern: a checked update can only change this domain's tables.
    let rc = unsafe {
        call(
            nr::MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            core::ptr::addr_of_mut!(done) as u64,
            u64::from(foreigndom),
            0,
        )
    };
    (rc, done)
}

/// One `MMU_NORMAL_PT_UPDATE` of the entry at machine address `ptr`.
pub fn mmu_update_one(ptr: u64, val: u64) -> i64 {
    mmu_update(
        &[MmuUpdate { ptr, val }],
        u32::from(crate::xen::layout::DOMID_SELF),
    )
    .0
}

/// `mmuext_op(ops, ops.len(), NULL, DOMID_SELF)`.
pub fn mmuext(ops: &[MmuextOp]) -> i64 {
    // SAFETY: the hypervisor reads `ops`, which lives across the call.
    unsafe {
        call(
            nr::MMUEXT_OP,
            ops.as_ptr() as u64,
            ops.len() as u64,
            0,
            u64::from(crate::xen::layout::DOMID_SELF),
            0,
        )
    }
}

/// One `mmuext_op` command with `arg1`.
pub fn mmuext_one(cmd: u32, arg1: u64) -> i64 {
    mmuext(&[MmuextOp {
        cmd,
        arg1,
        ..MmuextOp::default()
    }])
}

/// `update_va_mapping(va, pte, flags)`.
pub fn update_va_mapping(va: u64, pte: u64, flags: u64) -> i64 {
    // SAFETY: `flags` carries no vCPU-mask pointer (callers pass
    // `UVMF_INVLPG`/`UVMF_NONE` with `UVMF_LOCAL`); the mapping change is
    // the caller's concern.
    unsafe { call(nr::UPDATE_VA_MAPPING, va, pte, flags, 0, 0) }
}

/// `fpu_taskswitch(set)`: sets or clears the virtual CR0.TS.
pub fn fpu_taskswitch(set: bool) -> i64 {
    // SAFETY: no memory argument.
    unsafe { call(nr::FPU_TASKSWITCH, u64::from(set), 0, 0, 0, 0) }
}

/// `vm_assist(cmd, type)`.
pub fn vm_assist(cmd: u64, kind: u64) -> i64 {
    // SAFETY: no pointer arguments.
    unsafe { call(nr::VM_ASSIST, cmd, kind, 0, 0, 0) }
}

/// `set_gdt(frames, entries)`.
pub fn set_gdt(frames: &[u64], entries: u64) -> i64 {
    // SAFETY: the hypervisor reads `ceil(entries / 512)` frame numbers;
    // callers pass at least that many.
    unsafe { call(nr::SET_GDT, frames.as_ptr() as u64, entries, 0, 0, 0) }
}

/// `update_descriptor(maddr, desc)`.
pub fn update_descriptor(maddr: u64, desc: u64) -> i64 {
    // SAFETY: `maddr` is a machine address the hypervisor checks.
    unsafe { call(nr::UPDATE_DESCRIPTOR, maddr, desc, 0, 0, 0) }
}

/// `set_segment_base(which, base)`.
pub fn set_segment_base(which: u64, base: u64) -> i64 {
    // SAFETY: no pointer the hypervisor dereferences.
    unsafe { call(nr::SET_SEGMENT_BASE, which, base, 0, 0, 0) }
}

/// A hypercall [`multicall`] can batch: ones whose arguments are no
/// pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `xen_version(XENVER_version, NULL)`.
    XenVersion,
    /// `update_va_mapping(va, pte, flags)`.
    UpdateVaMapping(u64, u64, u64),
    /// Hypercall number `n` with zero arguments (for unknown numbers).
    Raw(u64),
}

impl Call {
    fn entry(self) -> MulticallEntry {
        let (op, args) = match self {
            Call::XenVersion => (nr::XEN_VERSION, [0; 6]),
            Call::UpdateVaMapping(va, pte, flags) => {
                (nr::UPDATE_VA_MAPPING, [va, pte, flags, 0, 0, 0])
            }
            Call::Raw(n) => (n, [0; 6]),
        };
        MulticallEntry {
            op,
            result: RESULT_UNSET,
            args,
        }
    }
}

/// What a multicall entry's `result` holds before the hypervisor writes it.
pub const RESULT_UNSET: u64 = 0xdead_beef_dead_beef;

/// `multicall` of up to eight `calls`: the hypercall's result and each
/// entry's `result` field afterwards (the rest [`RESULT_UNSET`]).
pub fn multicall(calls: &[Call]) -> (i64, [u64; 8]) {
    let mut entries = [Call::Raw(0).entry(); 8];
    let n = calls.len().min(8);
    for (e, c) in entries.iter_mut().zip(&calls[..n]) {
        *e = c.entry();
    }
    // SAFETY: no batched call takes a pointer (`Call`); `update_va_mapping`
    // changes a mapping as the caller asked.
    let rc = unsafe { multicall_raw(&mut entries[..n]) };
    let mut results = [RESULT_UNSET; 8];
    for (r, e) in results.iter_mut().zip(&entries[..n]) {
        *r = e.result;
    }
    (rc, results)
}

/// `multicall(entries, entries.len())`: the hypervisor writes each
/// entry's result.
///
/// # Safety
/// Each entry's arguments must be valid for its hypercall, as for
/// [`page`].
pub unsafe fn multicall_raw(entries: &mut [MulticallEntry]) -> i64 {
    // SAFETY: the hypervisor reads and writes `entries`, which the slice
    // makes valid; the caller vouches for what they do.
    unsafe {
        call(
            nr::MULTICALL,
            entries.as_mut_ptr() as u64,
            entries.len() as u64,
            0,
            0,
            0,
        )
    }
}
