//! A round trip through guest user mode (`pv-abi.md` 1.1, 4.5, 5.2-5.5;
//! Xen's `entry.S switch_to_kernel` and `create_bounce_frame`,
//! `pv/iret.c do_iret`).
//!
//! A user root of four new tables maps the program (read-only, user) at
//! [`CODE`] and a stack page after it; it is pinned and installed with
//! `MMUEXT_NEW_USER_BASEPTR`. The `iret` hypercall with CS RPL 3 enters
//! user mode; each `syscall`, the `int3` and the #PF from there arrive on
//! the kernel stack `stack_switch` named, with the user's RIP and RSP and
//! CS RPL 3 in the frame, and `iret` goes back until the program's last
//! `syscall`.

use firmware::pv::abi::{mmuext, pte, rflags, sel, uvmf, va::VIRT_BASE};
use firmware::pv::hypercall::{mmuext_one, stack_switch, update_va_mapping};
use firmware::pv::provoke::{self, Trigger};
use firmware::pv::traps::{self, Kind, Record};
use firmware::pv::{boot, mm, shared, user};
use firmware::{println, report};

use crate::paging::ro;

/// Where the program runs in user mode (L4 0, L3 0, L2 2, L1 0).
const CODE: u64 = 0x40_0000;
/// The user stack page follows it; the stack starts at its top.
const STACK_TOP: u64 = CODE + 2 * 4096;
/// What the kernel hands the program in RBX.
const MARKER: u64 = 0x05e7_0005_e700_0001;

/// Checks a bounce from user mode; one check named `name`.
fn user_frame_ok(
    name: &str,
    r: Option<&Record>,
    kind: Kind,
    rip: u64,
    error_code: Option<u64>,
) -> bool {
    let Some(r) = r else {
        println!("  {name}: no bounce");
        return report::check(name, false);
    };
    let words = 7 + u64::from(error_code.is_some());
    let fields: [(&str, u64, u64); 7] = [
        ("kind", u64::from(r.kind == kind), 1),
        ("rip", r.rip, rip),
        // From user mode the CS slot keeps RPL 3 and the saved mask is
        // the user's (0: events were enabled there).
        ("cs slot", r.cs, u64::from(sel::FLAT_CS)),
        ("rsp", r.rsp, STACK_TOP),
        ("ss", r.ss, u64::from(sel::FLAT_SS)),
        // Bounces from user mode land on the stack_switch stack.
        (
            "frame address",
            r.frame,
            (boot::kernel_stack_top() & !15) - 8 * words,
        ),
        (
            "error code",
            r.error_code.unwrap_or(u64::MAX),
            error_code.unwrap_or(u64::MAX),
        ),
    ];
    let mut ok = r.rflags & rflags::IF != 0;
    if !ok {
        println!("  {name}: rflags {:#x} without IF", r.rflags);
    }
    for (field, got, want) in fields {
        if got != want {
            println!("  {name}: {field} {got:#x}, expected {want:#x}");
            ok = false;
        }
    }
    report::check(name, ok)
}

/// Builds the user root (program and stack) and installs it with
/// `MMUEXT_NEW_USER_BASEPTR`; `false` if a step failed (reported).
fn install_user_root() -> bool {
    let frames = [(); 6].map(|_| mm::take());
    let [Some(l4), Some(l3), Some(l2), Some(l1), Some(code), Some(stack)] = frames else {
        report::check("user: six pool pages", false);
        return false;
    };
    code.copy_from(user::program());
    l1.write(0, mm::entry(code.mfn, pte::P | pte::USER | pte::A));
    l1.write(
        8,
        mm::entry(
            stack.mfn,
            pte::P | pte::RW | pte::USER | pte::A | pte::D | pte::NX,
        ),
    );
    l2.write(8 * mm::index(CODE, 2) as u64, mm::entry(l1.mfn, pte::TABLE));
    l3.write(0, mm::entry(l2.mfn, pte::TABLE));
    l4.write(0, mm::entry(l3.mfn, pte::TABLE));
    let ro_rcs = [&l4, &l3, &l2, &l1].map(|f| update_va_mapping(f.va, ro(f), uvmf::INVLPG));
    report::check_eq("user: the four new tables made read-only", ro_rcs, [0; 4]);
    report::check_eq(
        "user: MMUEXT_PIN_L4_TABLE of the user L4",
        mmuext_one(mmuext::PIN_L4_TABLE, l4.mfn),
        0,
    );
    report::check_eq(
        "user: MMUEXT_NEW_USER_BASEPTR",
        mmuext_one(mmuext::NEW_USER_BASEPTR, l4.mfn),
        0,
    )
}

/// `crash=kernel-stack`: the kernel stack for bounces from user mode
/// (`stack_switch`) moved to an address nothing maps, then user mode: its
/// first system call cannot be delivered, and Xen ends the domain. Does
/// not return when the hypervisor does that.
pub fn crash_without_kernel_stack() {
    if !install_user_root() {
        return;
    }
    let nowhere = VIRT_BASE + 0x4000_0000;
    report::check_eq(
        "crash: stack_switch to an address nothing maps",
        stack_switch(u64::from(sel::FLAT_SS), nowhere),
        0,
    );
    println!("pv_hello: crash=kernel-stack: a system call from user mode with no kernel stack");
    traps::set_iret_via_syscall(false);
    let run = user::run(CODE, STACK_TOP, MARKER, VIRT_BASE + 0x10_0000);
    report::check("crash: the system call was not delivered", run.aborted);
}

pub fn run() {
    if !install_user_root() {
        return;
    }
    let kernel_va = VIRT_BASE + 0x10_0000;
    traps::set_iret_via_syscall(false);
    let run = user::run(CODE, STACK_TOP, MARKER, kernel_va);
    let mut records = [None; 8];
    for (slot, r) in records
        .iter_mut()
        .zip(traps::since(run.first).filter(|r| r.kind != Kind::Event))
    {
        *slot = Some(r);
    }
    for r in records.iter().flatten() {
        println!(
            "pv_hello: user bounce {:?} rip {:#x} cs {:#x} rsp {:#x} rax {:#x} error code {:?}",
            r.kind, r.rip, r.cs, r.rsp, r.rax, r.error_code
        );
    }
    report::check("user: the program ran to its last syscall", !run.aborted);
    let o = user::offsets();
    let first = records[0].as_ref();
    user_frame_ok(
        "user: syscall bounced to the syscall callback with the user's RIP, RSP, CS RPL 3",
        first,
        Kind::Syscall,
        CODE + o.after_syscall1,
        None,
    );
    report::check(
        "user: syscall frame: RCX is the return RIP, RAX the user's (pushed on the user stack)",
        first.is_some_and(|r| r.rcx == CODE + o.after_syscall1 && r.rax == MARKER),
    );
    report::check_eq(
        "user: syscall callback ran with events masked (CALLBACKF_mask_events)",
        first.and_then(|r| r.mask_on_entry),
        Some(1),
    );
    user_frame_ok(
        "user: int3 bounced to the #BP handler with CS RPL 3",
        records[1].as_ref(),
        Kind::Exception(3),
        CODE + o.after_int3,
        None,
    );
    user_frame_ok(
        "user: a load of a kernel address is #PF with error code U (4)",
        records[2].as_ref(),
        Kind::Exception(14),
        CODE + o.load,
        Some(4),
    );
    report::check_eq(
        "user: that #PF's CR2 is the kernel address",
        records[2].and_then(|r| r.cr2),
        Some(kernel_va),
    );
    user_frame_ok(
        "user: the last syscall came back from user mode after the iret",
        records[3].as_ref(),
        Kind::Syscall,
        CODE + o.after_syscall2,
        None,
    );

    // Back in kernel mode: the kernel root is active again.
    let l4k = mm::mfn_of_va(mm::pt_base()).map(|m| m * mm::PAGE_SIZE);
    report::check_eq(
        "back in kernel mode: mov from %cr3 gives the kernel L4",
        provoke::read_cr3().ok(),
        l4k,
    );
    let p = provoke::provoke(Trigger::Read(CODE));
    report::check_eq(
        "back in kernel mode: the user page is not mapped (#PF, error code 0)",
        p.record.map(|r| (r.kind, r.error_code)),
        Some((Kind::Exception(14), Some(0))),
    );
    report::check_eq(
        "back in kernel mode: events masked",
        shared::upcall_mask(),
        Some(1),
    );
}
