//! A second vCPU (`vcpus = 2`): vCPU 0 brings vCPU 1 up with
//! `VCPUOP_initialise` (a flat 32-bit protected-mode context with its own
//! stack, `hvm_vcpu.h`) and `VCPUOP_up`. vCPU 1 prints a line on port
//! 0xE9, increments a shared counter, sends an event over an IPI port
//! bound to vCPU 0 and halts with interrupts off (it goes down). vCPU 0
//! checks `VCPUOP_is_up` before and after, the counter, the event, and the
//! errors: -ENOENT for vCPU 2, -EEXIST for a second initialise, -EINVAL
//! for bad contexts and for `up` before `initialise`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use firmware::xen::errno::*;
use firmware::xen::{self, evtchn, nr, shared};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

const VCPUOP_INITIALISE: u64 = 0;
const VCPUOP_UP: u64 = 1;
const VCPUOP_IS_UP: u64 = 3;
/// `vcpu_hvm_context_t`: mode, pad, then the 32- or 64-bit registers.
const CTX_SIZE: usize = 128;
/// Scheduler yields to wait for vCPU 1.
const YIELDS: u32 = 2000;

/// What vCPU 1 increments.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// vCPU 1's stack.
static AP_STACK: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];
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

/// A 32-bit context (VCPU_HVM_MODE_32B) that runs [`firmware::ap32`].
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
        firmware::ap32::entry(),
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

fn main(_start_info: Gpa) -> ! {
    println!("smp: a second vCPU brought up by VCPUOP_initialise and VCPUOP_up");
    if !hypervisor::is_xen() {
        report::skip("vCPU 1", "no Xen CPUID leaves");
        report::finish();
    }
    if !report::check_eq("add_to_physmap(shared_info)", shared::map(), 0) {
        report::finish();
    }
    report::check_eq("set_param(CALLBACK_IRQ, vector)", evtchn::setup_upcall(), 0);
    report::check_eq("is_up(0) is 1", is_up(0), 1);
    report::check_eq("is_up(1) is 0 before VCPUOP_up", is_up(1), 0);
    report::check_eq("is_up(2) is -ENOENT", is_up(2), -ENOENT);
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
    report::check_eq("is_up(1) is 1 after up", is_up(1), 1);
    let before = evtchn::events(port);
    let mut done = false;
    for _ in 0..YIELDS {
        hypervisor::sched_yield();
        evtchn::interrupt_window();
        if COUNTER.load(Ordering::SeqCst) == 1 && evtchn::events(port) > before && is_up(1) == 0 {
            done = true;
            break;
        }
    }
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
    report::finish()
}

/// Makes a good context bad.
type Spoil = fn(&mut [u8; CTX_SIZE]);

/// The errors before vCPU 1 is initialised; none of them may leave it
/// initialised or up.
fn errors(good: &[u8; CTX_SIZE]) {
    let mut ctx = *good;
    report::check_eq(
        "initialise(2) is -ENOENT",
        vcpu_op(VCPUOP_INITIALISE, 2, &mut ctx),
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
