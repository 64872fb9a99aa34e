//! Finding Xen through CPUID, setting up the hypercall page and making
//! hypercalls.
//!
//! The Xen leaves sit at the first base 0x4000_0000 + 0x100·k whose EBX,
//! ECX, EDX spell "XenVMMXenVMM". Leaf base+2 names the MSR that takes the
//! guest-physical address of a page for the hypervisor to fill with 32-byte
//! stubs (`mov eax, N; vmcall|vmmcall; ret` for hypercall N). Hypercalls go
//! through that page; [`direct`] issues the instruction itself, as guests
//! that do not trust the page do. Without Xen leaves (plain QEMU) every
//! hypercall returns -ENOSYS without leaving the guest.
//!
//! A PV guest ([`crate::pv`]) finds no CPUID leaves to ask: its runtime
//! calls [`init_pv`] at entry, and from then on [`hypercall`] goes through
//! the PV hypercall page and [`direct`] issues `syscall`, so the console,
//! shutdown and the `xen` helpers work unchanged.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use vmm_glue::Gpa;

use crate::abi::{cpuid as leaves, errno, hypercall as nr, sched, xen_version};
use crate::cpu::{self, Vendor};

/// Size of one stub in the hypercall page.
pub const STUB_SIZE: usize = 32;
/// Stubs in the (first) hypercall page.
pub const STUBS: u64 = 4096 / STUB_SIZE as u64;

// The hypercall page: executable, page aligned, and full of int3 until the
// hypervisor fills it, so a call through an unfilled page stops with #BP.
global_asm!(
    r#"
    .section .text.fw_hypercall_page, "ax"
    .balign 4096
    .global fw_hypercall_page
fw_hypercall_page:
    .fill 4096, 1, 0xcc
    "#,
    options(att_syntax)
);

extern "C" {
    static fw_hypercall_page: [u8; 4096];
}

/// What the Xen CPUID leaves say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenLeaves {
    /// The base leaf (0x4000_0000 + 0x100·k).
    pub base: u32,
    /// EAX of the base leaf: the last Xen leaf.
    pub max_leaf: u32,
    /// EAX of base+1: major << 16 | minor.
    pub version: u32,
    /// EAX of base+2: number of hypercall pages.
    pub hypercall_pages: u32,
    /// EBX of base+2: the hypercall page MSR.
    pub hypercall_msr: u32,
}

impl XenLeaves {
    /// The Xen version as (major, minor).
    pub fn version(&self) -> (u32, u32) {
        (self.version >> 16, self.version & 0xffff)
    }
}

/// Scans the hypervisor CPUID range for the Xen signature.
pub fn detect() -> Option<XenLeaves> {
    (0..0x100).find_map(|k| {
        let base = leaves::FIRST_LEAF + k * leaves::BASE_STRIDE;
        let sig = cpu::cpuid(base, 0);
        let is_xen = sig.ebx == leaves::SIGNATURE_EBX
            && sig.ecx == leaves::SIGNATURE_ECX
            && sig.edx == leaves::SIGNATURE_EDX;
        if !is_xen || sig.eax < base + leaves::HYPERCALL_LEAF {
            return None;
        }
        let version = cpu::cpuid(base + leaves::VERSION_LEAF, 0);
        let hypercall = cpu::cpuid(base + leaves::HYPERCALL_LEAF, 0);
        Some(XenLeaves {
            base,
            max_leaf: sig.eax,
            version: version.eax,
            hypercall_pages: hypercall.eax,
            hypercall_msr: hypercall.ebx,
        })
    })
}

// Set once by `init`, before the guest's code runs; read everywhere.
static XEN_BASE: AtomicU32 = AtomicU32::new(0);
static PAGE_READY: AtomicBool = AtomicBool::new(false);
static AMD: AtomicBool = AtomicBool::new(false);
static PV: AtomicBool = AtomicBool::new(false);

/// Switches hypercalls to the 64-bit PV convention. Called once by the PV
/// runtime's start of day.
pub(crate) fn init_pv() {
    PV.store(true, Ordering::Release);
}

/// Whether this is a PV guest.
pub fn is_pv() -> bool {
    PV.load(Ordering::Acquire)
}

/// How [`init`] left things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// No Xen leaves: console on port 0xE9, exit through isa-debug-exit.
    Bare,
    /// Xen found and the hypercall page filled.
    Page(XenLeaves),
    /// Xen found but the hypercall page MSR write faulted or left the page
    /// untouched: hypercalls use the instruction directly.
    Direct(XenLeaves),
}

/// Finds Xen and registers the hypercall page. Called once by the runtime.
pub(crate) fn init() -> Setup {
    AMD.store(cpu::vendor() == Vendor::Amd, Ordering::Relaxed);
    let Some(xen) = detect() else {
        return Setup::Bare;
    };
    XEN_BASE.store(xen.base, Ordering::Relaxed);
    let page = hypercall_page();
    // SAFETY: the MSR makes the hypervisor write hypercall stubs into the
    // page-aligned `fw_hypercall_page`, which exists for that and which no
    // Rust code reads except through `stub`.
    let written = unsafe { crate::probe::wrmsr(xen.hypercall_msr, page.raw()) };
    if written.is_ok() && stub(0)[0] != 0xcc {
        PAGE_READY.store(true, Ordering::Release);
        Setup::Page(xen)
    } else {
        Setup::Direct(xen)
    }
}

/// The Xen leaves found at start, if any.
pub fn xen() -> Option<XenLeaves> {
    (XEN_BASE.load(Ordering::Relaxed) != 0)
        .then(detect)
        .flatten()
}

/// Whether Xen was found at start (a PV guest always has it).
pub fn is_xen() -> bool {
    XEN_BASE.load(Ordering::Relaxed) != 0 || is_pv()
}

/// Whether hypercalls go through a filled hypercall page.
pub fn page_ready() -> bool {
    PAGE_READY.load(Ordering::Acquire)
}

/// The guest-physical address of the hypercall page.
pub fn hypercall_page() -> Gpa {
    Gpa(core::ptr::addr_of!(fw_hypercall_page) as u64)
}

/// A copy of stub `n` of the hypercall page (`n` < [`STUBS`]).
pub fn stub(n: usize) -> [u8; STUB_SIZE] {
    let base = core::ptr::addr_of!(fw_hypercall_page).cast::<u8>();
    let mut out = [0u8; STUB_SIZE];
    for (i, b) in out.iter_mut().enumerate() {
        let off = (n * STUB_SIZE + i) % 4096;
        // SAFETY: `off` < 4096 keeps the read inside the page; volatile
        // because the hypervisor, not Rust, writes it.
        *b = unsafe { base.add(off).read_volatile() };
    }
    out
}

/// The hypercall instruction of this CPU (`syscall` for a PV guest).
pub fn instruction() -> &'static str {
    if is_pv() {
        "syscall"
    } else if AMD.load(Ordering::Relaxed) {
        "vmmcall"
    } else {
        "vmcall"
    }
}

/// Hypercall `nr` with up to five arguments (RDI, RSI, RDX, R10, R8),
/// through the hypercall page when it is filled and `nr` has a stub there,
/// otherwise with the instruction directly. Returns RAX; -ENOSYS without
/// Xen.
///
/// # Safety
/// Arguments that are guest addresses must point at memory valid for what
/// hypercall `nr` reads or writes there (the identity map makes a
/// guest-virtual address the guest-physical one).
pub unsafe fn hypercall(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    if is_pv() {
        // SAFETY: the caller vouches for the arguments.
        return unsafe { crate::pv::hypercall::call(nr, a1, a2, a3, a4, a5) };
    }
    if !is_xen() {
        return -errno::ENOSYS;
    }
    if !page_ready() || nr >= STUBS {
        // SAFETY: the caller vouches for the arguments.
        return unsafe { direct(nr, a1, a2, a3, a4, a5) };
    }
    let entry = hypercall_page().raw() + nr * STUB_SIZE as u64;
    // SAFETY: the stub is the hypervisor's `mov eax, nr; vmcall; ret`; the
    // caller vouches for the arguments.
    unsafe { call_stub(entry, nr, a1, a2, a3, a4, a5) }
}

/// Calls the hypercall stub at `entry` (a hypercall page's, PVH or PV)
/// with hypercall number `nr` in RAX and the arguments in RDI, RSI, RDX,
/// R10, R8; the hypervisor may clobber the argument registers, and RCX and
/// R11 (a PV stub's SYSCALL) are clobbered too.
///
/// # Safety
/// `entry` must be a stub that returns; the arguments must be valid for
/// hypercall `nr` as for [`hypercall`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn call_stub(entry: u64, nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: u64;
    // SAFETY: as the caller vouches above.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rax") nr => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret as i64
}

/// Hypercall `nr` issued with `vmmcall` (AMD, Hygon) or `vmcall` (others)
/// directly, bypassing the hypercall page. Returns -ENOSYS without Xen.
///
/// # Safety
/// As for [`hypercall`].
pub unsafe fn direct(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    if is_pv() {
        // SAFETY: the caller vouches for the arguments.
        return unsafe { crate::pv::hypercall::syscall(nr, a1, a2, a3, a4, a5) };
    }
    if !is_xen() {
        return -errno::ENOSYS;
    }
    let ret: u64;
    if AMD.load(Ordering::Relaxed) {
        // SAFETY: a hypercall; the caller vouches for the arguments.
        unsafe {
            asm!(
                "vmmcall",
                inlateout("rax") nr => ret,
                inlateout("rdi") a1 => _,
                inlateout("rsi") a2 => _,
                inlateout("rdx") a3 => _,
                inlateout("r10") a4 => _,
                inlateout("r8") a5 => _,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
    } else {
        // SAFETY: as above.
        unsafe {
            asm!(
                "vmcall",
                inlateout("rax") nr => ret,
                inlateout("rdi") a1 => _,
                inlateout("rsi") a2 => _,
                inlateout("rdx") a3 => _,
                inlateout("r10") a4 => _,
                inlateout("r8") a5 => _,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
    }
    ret as i64
}

/// Hypercall `nr` with `cmd` as its first argument and the others zero,
/// for probing numbers and commands this runtime has no wrapper for;
/// through the page, or with the instruction if `direct_call`.
pub fn probe(nr: u64, cmd: u16, direct_call: bool) -> i64 {
    // SAFETY: any argument a hypercall takes as a guest address is below
    // 64 KiB (`cmd`) or 0, and guest-physical memory below 64 KiB holds
    // nothing this program uses (the image starts at 1 MiB).
    unsafe {
        if direct_call {
            direct(nr, u64::from(cmd), 0, 0, 0, 0)
        } else {
            hypercall(nr, u64::from(cmd), 0, 0, 0, 0)
        }
    }
}

/// `xen_version(XENVER_version)`: major << 16 | minor, or a negative errno.
pub fn xen_version() -> i64 {
    // SAFETY: XENVER_version takes no buffer.
    unsafe { hypercall(nr::XEN_VERSION, xen_version::VERSION, 0, 0, 0, 0) }
}

/// `xen_version(XENVER_version)` issued with the instruction directly.
pub fn xen_version_direct() -> i64 {
    // SAFETY: XENVER_version takes no buffer.
    unsafe { direct(nr::XEN_VERSION, xen_version::VERSION, 0, 0, 0, 0) }
}

/// `sched_op(SCHEDOP_yield)`.
pub fn sched_yield() -> i64 {
    // SAFETY: SCHEDOP_yield takes no argument.
    unsafe { hypercall(nr::SCHED_OP, sched::YIELD, 0, 0, 0, 0) }
}

/// `sched_op(SCHEDOP_block)`: sleep until an event is pending.
pub fn sched_block() -> i64 {
    // SAFETY: SCHEDOP_block takes no argument.
    unsafe { hypercall(nr::SCHED_OP, sched::BLOCK, 0, 0, 0, 0) }
}

/// `console_io(CONSOLEIO_write, bytes)`.
pub fn console_write(bytes: &[u8]) -> i64 {
    // SAFETY: the hypervisor reads `bytes.len()` bytes at the slice's
    // address, which the slice makes valid.
    unsafe {
        hypercall(
            nr::CONSOLE_IO,
            crate::abi::console_io::WRITE,
            bytes.len() as u64,
            bytes.as_ptr() as u64,
            0,
            0,
        )
    }
}

/// `sched_op(SCHEDOP_shutdown, &{reason})`. Returns only if the hypervisor
/// refused.
pub fn sched_shutdown(reason: u32) -> i64 {
    let arg = sched::SchedShutdown { reason };
    // SAFETY: the hypervisor reads the 4-byte struct at `&arg`, which lives
    // across the call.
    unsafe {
        hypercall(
            nr::SCHED_OP,
            sched::SHUTDOWN,
            core::ptr::addr_of!(arg) as u64,
            0,
            0,
            0,
        )
    }
}
