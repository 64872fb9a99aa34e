//! Secondary vCPUs (`vcpus = 3`): vCPU 0 brings vCPU 1 up with
//! `VCPUOP_initialise` (a flat 32-bit protected-mode context with its own
//! stack, `hvm_vcpu.h`) and `VCPUOP_up`. vCPU 1 prints a line on port
//! 0xE9, increments a shared counter, sends an event over an IPI port
//! bound to vCPU 0 and halts with interrupts off (it goes down). Then
//! vCPU 2 starts in 64-bit mode (a `VCPU_HVM_MODE_64B` context sharing
//! vCPU 0's page tables) in Rust code that prints through `console_io`,
//! counts, sends the event again, sends vCPU 0 an x2APIC IPI and halts.
//! vCPU 0 checks `VCPUOP_is_up` before and after, the counter, the events,
//! the IPI, and the errors: -ENOENT for vCPU 3, -EEXIST for a second
//! initialise, -EINVAL for bad contexts and for `up` before `initialise`.
//! Last, Linux's way through the x2APIC ICR: a STARTUP alone does not
//! restart vCPU 1 (it has a context), INIT and STARTUP to vCPU 0 itself
//! and to absent ids start nobody, INIT + de-assert + STARTUP start vCPU 1
//! in real mode at 0x8000 (`smp::RealModeAp`: it stores CS, counts its
//! start and halts with interrupts on), a second STARTUP while it is up
//! does not restart it, INIT takes it down, and after a flood of IPIs for
//! nobody and for down vCPUs, INIT and STARTUP to all but self start
//! vCPUs 1 and 2 together.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use firmware::xen::errno::*;
use firmware::xen::{self, evtchn, nr, shared};
use firmware::{cpu, hypervisor, idt, println, report, smp, Gpa};

firmware::guest_main!(main);

const VCPUOP_INITIALISE: u64 = 0;
const VCPUOP_UP: u64 = 1;
const VCPUOP_IS_UP: u64 = 3;
/// `vcpu_hvm_context_t`: mode, pad, then the 32- or 64-bit registers.
const CTX_SIZE: usize = 128;
/// Scheduler yields to wait for vCPU 1.
const YIELDS: u32 = 2000;

/// The vCPUs of the domain (`vcpus =` in its configuration).
const NR_VCPUS: u32 = 3;
/// The vector of vCPU 2's IPI to vCPU 0.
const IPI_VECTOR: u8 = 0xe0;

/// What vCPUs 1 and 2 increment.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// vCPU 1's stack.
static AP_STACK: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];
/// vCPU 2's stack.
static AP64_STACK: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];
/// The IPI port bound to vCPU 0, for vCPU 2.
static PORT: AtomicU32 = AtomicU32::new(0);
/// IPIs vCPU 0 took at [`IPI_VECTOR`].
static IPIS: AtomicU32 = AtomicU32::new(0);
/// What vCPU 1 prints (its scenario looks for it).
static AP_LINE: &[u8] = b"smp: vCPU 1 up in 32-bit protected mode\n";

fn vcpu_op(cmd: u64, vcpu: u32, ctx: &mut [u8; CTX_SIZE]) -> i64 {
    xen::vcpu_op_arg(cmd, vcpu, ctx)
}

fn is_up(vcpu: u32) -> i64 {
    xen::vcpu_op_unmapped(VCPUOP_IS_UP, vcpu)
}

fn put32(b: &mut [u8; CTX_SIZE], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put16(b: &mut [u8; CTX_SIZE], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// A 32-bit context (VCPU_HVM_MODE_32B) that runs [`smp::entry32`].
fn context32(port: u32) -> [u8; CTX_SIZE] {
    let mut b = [0u8; CTX_SIZE];
    let stub = hypervisor::hypercall_page().0 + nr::EVENT_CHANNEL_OP * 32;
    let stack_top = AP_STACK.as_ptr() as u64 + core::mem::size_of_val(&AP_STACK) as u64;
    // eax ecx edx ebx esp ebp esi edi eip eflags at 8 + 4 * i.
    let regs = [
        stub,
        AP_LINE.len() as u64,
        AP_LINE.as_ptr() as u64,
        0,
        stack_top,
        0,
        COUNTER.as_ptr() as u64,
        u64::from(port),
        smp::entry32(),
        0x2,
    ];
    for (i, r) in regs.into_iter().enumerate() {
        put32(&mut b, 8 + 4 * i, r as u32);
    }
    put32(&mut b, 48, 0x11); // cr0: PE, ET
                             // Limits at 92 (CS DS SS ES TR), attributes at 112.
    for i in 0..4 {
        put32(&mut b, 92 + 4 * i, u32::MAX);
    }
    put32(&mut b, 108, 0x67);
    put16(&mut b, 112, 0xc9b);
    for i in 1..4 {
        put16(&mut b, 112 + 2 * i, 0xc93);
    }
    put16(&mut b, 120, 0x8b);
    b
}

fn put64(b: &mut [u8; CTX_SIZE], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// A 64-bit context (VCPU_HVM_MODE_64B) that runs [`ap64_main`] on its
/// own stack with vCPU 0's paging and control registers.
fn context64() -> [u8; CTX_SIZE] {
    let mut b = [0u8; CTX_SIZE];
    let (cr0, cr3, cr4, efer) = smp::long_mode_state();
    // At a function's entry RSP + 8 is 16-byte aligned.
    let rsp = AP64_STACK.as_ptr() as u64 + core::mem::size_of_val(&AP64_STACK) as u64 - 8;
    put32(&mut b, 0, 1);
    // rax rcx rdx rbx rsp rbp rsi rdi rip rflags cr0 cr3 cr4 efer at 8 + 8 * i.
    put64(&mut b, 8 + 8 * 4, rsp);
    put64(&mut b, 8 + 8 * 8, ap64_main as *const () as u64);
    put64(&mut b, 8 + 8 * 9, 0x2);
    put64(&mut b, 8 + 8 * 10, cr0);
    put64(&mut b, 8 + 8 * 11, cr3);
    // Xen's CR4 check lets through what its guests use: the runtime's PAE,
    // OSFXSR and OSXMMEXCPT (and OSXSAVE if the guest set it).
    put64(&mut b, 8 + 8 * 12, cr4);
    put64(&mut b, 8 + 8 * 13, efer & ((1 << 0) | (1 << 8) | (1 << 11)));
    b
}

/// vCPU 2, in 64-bit mode from its first instruction (no IDT, no GDT:
/// nothing here may fault).
extern "C" fn ap64_main() -> ! {
    hypervisor::console_write(b"smp: vCPU 2 up in 64-bit mode\n");
    COUNTER.fetch_add(1, Ordering::SeqCst);
    evtchn::send(PORT.load(Ordering::SeqCst));
    smp::x2apic_enable();
    smp::x2apic_send_ipi(0, IPI_VECTOR);
    cpu::halt_forever()
}

fn on_ipi() {
    IPIS.fetch_add(1, Ordering::SeqCst);
    smp::x2apic_eoi();
}

/// Yields until `done()` or [`YIELDS`] rounds passed (the other vCPUs run
/// when this one gives up the CPU); returns whether `done()` held.
fn wait_for(done: impl Fn() -> bool) -> bool {
    for _ in 0..YIELDS {
        hypervisor::sched_yield();
        evtchn::interrupt_window();
        if done() {
            return true;
        }
    }
    false
}

fn main(_start_info: Gpa) -> ! {
    println!("smp: secondary vCPUs brought up by VCPUOP_initialise and VCPUOP_up");
    if !hypervisor::is_xen() {
        report::skip("secondary vCPUs", "no Xen CPUID leaves");
        report::finish();
    }
    if !report::check_eq("add_to_physmap(shared_info)", shared::map(), 0) {
        report::finish();
    }
    report::check_eq("set_param(CALLBACK_IRQ, vector)", evtchn::setup_upcall(), 0);
    report::check_eq("is_up(0) is 1", is_up(0), 1);
    report::check_eq("is_up(1) is 0 before VCPUOP_up", is_up(1), 0);
    report::check_eq("is_up(2) is 0 before VCPUOP_up", is_up(2), 0);
    report::check_eq("is_up(3) is -ENOENT", is_up(NR_VCPUS), -ENOENT);
    report::check_eq(
        "set_singleshot_timer of another vCPU is -EINVAL",
        evtchn::set_singleshot(1, u64::MAX, 0),
        -EINVAL,
    );
    let Ok(port) = evtchn::bind_ipi(0) else {
        report::check("bind_ipi(vCPU 0)", false);
        report::finish();
    };
    report::check_eq("unmask(ipi)", evtchn::unmask(port), 0);
    let good = context32(port);
    errors(&good);
    let mut ctx = good;
    report::check_eq(
        "initialise(1, 32-bit context)",
        vcpu_op(VCPUOP_INITIALISE, 1, &mut ctx),
        0,
    );
    let mut ctx = good;
    report::check_eq(
        "initialise(1) again is -EEXIST",
        vcpu_op(VCPUOP_INITIALISE, 1, &mut ctx),
        -EEXIST,
    );
    report::check_eq("is_up(1) is 0 after initialise", is_up(1), 0);
    report::check_eq("up(1)", xen::vcpu_op_unmapped(VCPUOP_UP, 1), 0);
    // vCPU 1 may already have had its turn, run to its end and gone down
    // (the scheduler can switch right after the hypercall): then it counted.
    let up = is_up(1);
    report::check(
        "is_up(1) is 1 after up, unless vCPU 1 already ran and went down",
        up == 1 || (up == 0 && COUNTER.load(Ordering::SeqCst) == 1),
    );
    let before = evtchn::events(port);
    let done = wait_for(|| {
        COUNTER.load(Ordering::SeqCst) == 1 && evtchn::events(port) > before && is_up(1) == 0
    });
    report::check("vCPU 1 ran, sent its event and went down", done);
    report::check_eq(
        "the counter vCPU 1 incremented",
        COUNTER.load(Ordering::SeqCst),
        1,
    );
    report::check(
        "the event from vCPU 1 arrived on vCPU 0",
        evtchn::events(port) > before,
    );
    report::check_eq(
        "is_up(1) is 0 after its HLT with interrupts off",
        is_up(1),
        0,
    );
    report::check_eq("is_up(0) is still 1", is_up(0), 1);
    long_mode(port);
    startup_ipis();
    report::finish()
}

/// vCPU 2 in 64-bit mode: an event and an x2APIC IPI to vCPU 0.
fn long_mode(port: u32) {
    PORT.store(port, Ordering::SeqCst);
    smp::x2apic_enable();
    report::check(
        "an IDT handler for the IPI vector",
        idt::set_interrupt_handler(IPI_VECTOR, on_ipi),
    );
    let mut ctx = context64();
    report::check_eq(
        "initialise(2, 64-bit context)",
        vcpu_op(VCPUOP_INITIALISE, 2, &mut ctx),
        0,
    );
    report::check_eq("up(2)", xen::vcpu_op_unmapped(VCPUOP_UP, 2), 0);
    let before = evtchn::events(port);
    let done = wait_for(|| {
        COUNTER.load(Ordering::SeqCst) == 2
            && evtchn::events(port) > before
            && IPIS.load(Ordering::SeqCst) > 0
            && is_up(2) == 0
    });
    report::check("vCPU 2 ran, sent its event and IPI and went down", done);
    report::check_eq(
        "the counter vCPUs 1 and 2 incremented",
        COUNTER.load(Ordering::SeqCst),
        2,
    );
    report::check(
        "the event from vCPU 2 arrived on vCPU 0",
        evtchn::events(port) > before,
    );
    report::check_eq(
        "the x2APIC IPI from vCPU 2 arrived on vCPU 0",
        IPIS.load(Ordering::SeqCst),
        1,
    );
    report::check_eq(
        "is_up(2) is 0 after its HLT with interrupts off",
        is_up(2),
        0,
    );
}

const ICR_INIT: u64 = (5 << 8) | (1 << 14) | (1 << 15);
const ICR_INIT_DEASSERT: u64 = (5 << 8) | (1 << 15);
/// A STARTUP IPI into [`smp::REAL_MODE_PAGE`].
const ICR_STARTUP: u64 = (6 << 8) | (smp::REAL_MODE_PAGE >> 12);
const SELF: u64 = 1 << 18;
const ALL_BUT_SELF: u64 = 3 << 18;

fn dest(id: u64) -> u64 {
    id << 32
}

/// Linux's way: INIT, INIT de-assert and STARTUP IPIs through the local
/// APIC start vCPUs 1 and 2 (both down, with the contexts they had) in
/// real mode at 0x8000, INIT takes them down again; what must not start
/// anything does not.
fn startup_ipis() {
    let ap = smp::RealModeAp::install();
    // Gives the other vCPUs some turns.
    let settle = || {
        for _ in 0..50 {
            hypervisor::sched_yield();
        }
    };
    smp::x2apic_write_icr(ICR_STARTUP | dest(1));
    settle();
    report::check_eq(
        "STARTUP alone does not start vCPU 1 (it has a context)",
        ap.starts(),
        0,
    );
    for icr in [ICR_INIT | SELF, ICR_INIT | dest(0), ICR_STARTUP | SELF] {
        smp::x2apic_write_icr(icr);
    }
    for id in [3, 7, 0x55, 0x101, 0xffff_fffe] {
        smp::x2apic_write_icr(ICR_INIT | dest(id));
        smp::x2apic_write_icr(ICR_STARTUP | dest(id));
    }
    settle();
    report::check(
        "INIT and STARTUP to itself and to absent ids start nobody",
        ap.starts() == 0 && is_up(0) == 1 && is_up(1) == 0 && is_up(2) == 0,
    );
    for icr in [ICR_INIT, ICR_INIT_DEASSERT, ICR_STARTUP] {
        smp::x2apic_write_icr(icr | dest(1));
    }
    let running = wait_for(|| ap.starts() == 1 && is_up(1) == 1);
    report::check("INIT, STARTUP: vCPU 1 runs the real-mode code", running);
    report::check_eq(
        "vCPU 1 started at CS 0x800, IP 0",
        ap.cs(),
        (smp::REAL_MODE_PAGE >> 4) as u16,
    );
    // It is up, halted with interrupts on: a second STARTUP (as Linux
    // sends) must not restart it.
    smp::x2apic_write_icr(ICR_STARTUP | dest(1));
    settle();
    report::check_eq("a STARTUP to running vCPU 1 is ignored", ap.starts(), 1);
    report::check_eq("vCPU 2 was not started", is_up(2), 0);
    smp::x2apic_write_icr(ICR_INIT | dest(1));
    report::check_eq("INIT takes running vCPU 1 down", is_up(1), 0);
    // Both at once, by the all-but-self shorthand, after a flood of IPIs
    // for nobody and for vCPUs that are down.
    for i in 0..1000u64 {
        let icr = match i % 4 {
            0 => 0x40 | ALL_BUT_SELF,
            1 => 0x41 | dest(8 + i),
            2 => ICR_INIT_DEASSERT | dest(i % 3),
            _ => ICR_STARTUP | dest(0x100 + i),
        };
        smp::x2apic_write_icr(icr);
    }
    smp::x2apic_write_icr(ICR_INIT | ALL_BUT_SELF);
    smp::x2apic_write_icr(ICR_STARTUP | ALL_BUT_SELF);
    let both = wait_for(|| ap.starts() == 3 && is_up(1) == 1 && is_up(2) == 1);
    report::check(
        "INIT, STARTUP to all but self after a flood: vCPUs 1 and 2 run",
        both,
    );
    smp::x2apic_write_icr(ICR_INIT | ALL_BUT_SELF);
    report::check(
        "INIT to all but self: vCPUs 1 and 2 down, vCPU 0 still up",
        is_up(1) == 0 && is_up(2) == 0 && is_up(0) == 1,
    );
}

/// Makes a good context bad.
type Spoil = fn(&mut [u8; CTX_SIZE]);

/// The errors before vCPU 1 is initialised; none of them may leave it
/// initialised or up.
fn errors(good: &[u8; CTX_SIZE]) {
    let mut ctx = *good;
    report::check_eq(
        "initialise(3) is -ENOENT",
        vcpu_op(VCPUOP_INITIALISE, NR_VCPUS, &mut ctx),
        -ENOENT,
    );
    report::check_eq(
        "up(1) before initialise is -EINVAL",
        xen::vcpu_op_unmapped(VCPUOP_UP, 1),
        -EINVAL,
    );
    let bad: [(&str, Spoil); 7] = [
        ("mode 2", |b| put32(b, 0, 2)),
        ("pad set", |b| put32(b, 4, 1)),
        ("null CS", |b| put16(b, 112, 0)),
        ("data segment as CS", |b| put16(b, 112, 0xc93)),
        ("CR0.PG without PE", |b| put32(b, 48, 0x8000_0010)),
        ("EIP beyond the CS limit", |b| {
            put32(b, 92, 0xfffff);
            put16(b, 112, 0x49b);
            put32(b, 40, 0x20_0000);
        }),
        ("64-bit mode, non-canonical RIP", |b| {
            *b = [0; CTX_SIZE];
            put32(b, 0, 1);
            b[8 + 8 * 8..8 + 8 * 9].copy_from_slice(&0x8000_0000_0000_0000u64.to_le_bytes());
            b[8 + 8 * 10..8 + 8 * 11].copy_from_slice(&0x8000_0011u64.to_le_bytes());
            b[8 + 8 * 12..8 + 8 * 13].copy_from_slice(&0x20u64.to_le_bytes());
            b[8 + 8 * 13..8 + 8 * 14].copy_from_slice(&0x100u64.to_le_bytes());
        }),
    ];
    for (what, spoil) in bad {
        let mut ctx = *good;
        spoil(&mut ctx);
        let rc = vcpu_op(VCPUOP_INITIALISE, 1, &mut ctx);
        if rc != -EINVAL {
            println!("  initialise with {what}: got {rc}, expected {}", -EINVAL);
        }
        report::check("initialise(1) with a bad context is -EINVAL", rc == -EINVAL);
    }
    report::check_eq("is_up(1) is 0 after the bad contexts", is_up(1), 0);
}
