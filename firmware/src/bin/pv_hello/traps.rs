//! The trap table and callbacks, `mov %cr3`, the shared info page, and
//! the bounce frames Xen builds for exceptions (`pv-abi.md` 5.1-5.2,
//! Xen's `pv/callback.c`, `pv/traps.c pv_inject_event`,
//! `x86_64/entry.S create_bounce_frame`).

use firmware::pv::abi::{rflags, sel};
use firmware::pv::provoke::{self, Provoked, Trigger, MARKS};
use firmware::pv::traps::{self, Kind};
use firmware::pv::{boot, hypercall, mm, shared, StartInfo};
use firmware::{println, report};

/// Where an unmapped address is: L4 slot 0 of the kernel tables is empty
/// (the builder maps only the VIRT_BASE region).
pub const UNMAPPED: u64 = 0x0000_0000_dead_b000;

/// What a bounce frame should hold.
pub struct Expect {
    /// The vector.
    pub vector: u8,
    /// The error code, if the vector has one.
    pub error_code: Option<u64>,
    /// The RIP slot.
    pub rip: u64,
    /// The saved `evtchn_upcall_mask` (bits 32-39 of the CS slot); it is
    /// also `!IF` in the RFLAGS slot.
    pub saved_mask: u8,
    /// `arch.cr2` for a #PF.
    pub cr2: Option<u64>,
}

/// Checks a bounce from guest kernel mode against Xen's frame, printing
/// each field that differs; one check named `name`.
pub fn frame_ok(name: &str, p: &Provoked, e: &Expect) -> bool {
    let Some(r) = p.record else {
        println!("  {name}: no bounce arrived");
        return report::check(name, false);
    };
    let words = 7 + u64::from(e.error_code.is_some());
    let want_rflags = (p.rflags & !(rflags::IF | rflags::IOPL | rflags::RF))
        | if e.saved_mask == 0 { rflags::IF } else { 0 };
    let fields: [(&str, u64, u64); 11] = [
        ("vector", kind_code(r.kind), u64::from(e.vector)),
        ("frame address", r.frame, (p.rsp & !15) - 8 * words),
        ("rcx", r.rcx, MARKS[0]),
        ("r11", r.r11, MARKS[1]),
        (
            "error code",
            r.error_code.unwrap_or(u64::MAX),
            e.error_code.unwrap_or(u64::MAX),
        ),
        ("rip", r.rip, e.rip),
        (
            "cs slot",
            r.cs,
            u64::from(sel::KERNEL_CS_IN_FRAME) | (u64::from(e.saved_mask) << 32),
        ),
        // RF may be set in the image of a fault; nothing else may differ.
        ("rflags (RF aside)", r.rflags & !rflags::RF, want_rflags),
        ("rsp", r.rsp, p.rsp),
        ("ss", r.ss, u64::from(sel::FLAT_SS)),
        (
            "cr2",
            r.cr2.unwrap_or(u64::MAX),
            e.cr2.unwrap_or(r.cr2.unwrap_or(u64::MAX)),
        ),
    ];
    let mut ok = true;
    for (field, got, want) in fields {
        if got != want {
            println!("  {name}: {field} {got:#x}, expected {want:#x}");
            ok = false;
        }
    }
    if p.after != [MARKS[0], MARKS[1], p.after[2]] {
        println!(
            "  {name}: after iret rcx {:#x} r11 {:#x}, expected {:#x} {:#x}",
            p.after[0], p.after[1], MARKS[0], MARKS[1]
        );
        ok = false;
    }
    report::check(name, ok)
}

fn kind_code(k: Kind) -> u64 {
    match k {
        Kind::Exception(v) => u64::from(v),
        Kind::Event => 0x100,
        Kind::Syscall => 0x101,
    }
}

/// Sets up traps, callbacks, the kernel stack and shared info; false if
/// the later groups cannot run.
pub fn run(si: &StartInfo) -> bool {
    let [table, event, failsafe, syscall] = traps::install();
    report::check_eq("set_trap_table (31 vectors)", table, 0);
    report::check_eq("callback_op: register the event callback", event, 0);
    report::check_eq(
        "callback_op: register the failsafe callback (mask events)",
        failsafe,
        0,
    );
    report::check_eq(
        "callback_op: register the syscall callback (mask events)",
        syscall,
        0,
    );
    report::check_eq(
        "stack_switch(FLAT_KERNEL_SS, the kernel stack)",
        hypercall::stack_switch(u64::from(sel::FLAT_SS), boot::kernel_stack_top()),
        0,
    );

    // Xen emulates `mov %cr3` for the guest kernel and answers the kernel
    // root's frame (`emul-priv-op.c read_cr`, `xen_pfn_to_cr3`).
    let l4 = mm::mfn_of_va(si.pt_base).map(|m| m * mm::PAGE_SIZE);
    match provoke::read_cr3() {
        Ok(cr3) => report::check_eq(
            "mov from %cr3 (emulated) gives the machine address of pt_base's L4",
            Some(cr3),
            l4,
        ),
        Err(r) => {
            println!(
                "  mov from %cr3 raised {:?} (error code {:#x?})",
                r.kind, r.error_code
            );
            report::check(
                "mov from %cr3 (emulated) gives the machine address of pt_base's L4",
                false,
            )
        }
    };

    // Shared info over a page of the pool: that VA has an L1 entry.
    let Some(window) = mm::take() else {
        return report::check("shared info: a pool page to map it at", false);
    };
    let mapped = report::check_eq(
        "update_va_mapping: shared info at a free VA (read-write)",
        shared::map(si.shared_info, window.va),
        0,
    );
    if !mapped {
        return false;
    }
    println!("pv_hello: shared info at {:#x}", window.va);
    report::check_eq(
        "shared info: vcpu_info[0].evtchn_upcall_mask is 1 at start",
        shared::upcall_mask(),
        Some(1),
    );
    exceptions();
    true
}

/// #UD, #BP, #GP and #PF from guest kernel mode, each frame checked, and
/// each handler returning with the `iret` hypercall one way or the other.
fn exceptions() {
    traps::set_iret_via_syscall(false);
    let p = provoke::provoke(Trigger::Ud2);
    frame_ok(
        "#UD (ud2): Xen's bounce frame; iret through the page's stub",
        &p,
        &Expect {
            vector: 6,
            error_code: None,
            rip: p.at,
            saved_mask: 1,
            cr2: None,
        },
    );
    report::check_eq("#UD: RAX back after iret", p.after[2], MARKS[2]);

    traps::set_iret_via_syscall(true);
    let p = provoke::provoke(Trigger::Int3);
    frame_ok(
        "#BP (int3): Xen's bounce frame, RIP after the int3; iret by syscall",
        &p,
        &Expect {
            vector: 3,
            error_code: None,
            rip: p.next,
            saved_mask: 1,
            cr2: None,
        },
    );
    report::check_eq("#BP: RAX back after iret", p.after[2], MARKS[2]);

    // HLT is not among what `emul-priv-op.c validate` emulates: #GP(0).
    traps::set_iret_via_syscall(false);
    let p = provoke::provoke(Trigger::Hlt);
    frame_ok(
        "#GP (hlt in ring 3): Xen's bounce frame, error code 0",
        &p,
        &Expect {
            vector: 13,
            error_code: Some(0),
            rip: p.at,
            saved_mask: 1,
            cr2: None,
        },
    );

    // A kernel-mode write to a not-present page: error code W (2), U/S
    // clear because the guest was in kernel mode (`pv_inject_event`).
    traps::set_iret_via_syscall(true);
    let p = provoke::provoke(Trigger::Write(UNMAPPED + 8, MARKS[2]));
    frame_ok(
        "#PF (write to an unmapped VA): error code 2, CR2 in vcpu_info.arch.cr2",
        &p,
        &Expect {
            vector: 14,
            error_code: Some(2),
            rip: p.at,
            saved_mask: 1,
            cr2: Some(UNMAPPED + 8),
        },
    );
    let p = provoke::provoke(Trigger::Read(UNMAPPED));
    frame_ok(
        "#PF (read of an unmapped VA): error code 0",
        &p,
        &Expect {
            vector: 14,
            error_code: Some(0),
            rip: p.at,
            saved_mask: 1,
            cr2: Some(UNMAPPED),
        },
    );

    // fpu_taskswitch(1) sets the virtual CR0.TS: the next x87 instruction
    // is #NM, whose delivery clears TS again (Xen's `do_device_not_available`),
    // so the same instruction then runs without a bounce.
    traps::set_iret_via_syscall(false);
    report::check_eq("fpu_taskswitch(1)", hypercall::fpu_taskswitch(true), 0);
    let p = provoke::provoke(Trigger::Fnop);
    frame_ok(
        "#NM (fnop with the virtual CR0.TS set): Xen's bounce frame",
        &p,
        &Expect {
            vector: 7,
            error_code: None,
            rip: p.at,
            saved_mask: 1,
            cr2: None,
        },
    );
    let again = provoke::provoke(Trigger::Fnop);
    report::check_eq(
        "#NM: its delivery cleared TS, the next fnop runs",
        again.record.map(|r| r.kind),
        None,
    );

    // #UD's trap_info has flags bit 2 (TI_SET_IF): with events enabled,
    // delivery masks them, the frame saves mask 0 (IF set in RFLAGS), and
    // the iret re-enables them from that IF (`do_iret`).
    traps::set_iret_via_syscall(false);
    shared::set_upcall_mask(0);
    let p = provoke::provoke(Trigger::Ud2);
    let after = shared::upcall_mask();
    shared::set_upcall_mask(1);
    frame_ok(
        "#UD with events enabled: frame saves mask 0 and IF",
        &p,
        &Expect {
            vector: 6,
            error_code: None,
            rip: p.at,
            saved_mask: 0,
            cr2: None,
        },
    );
    report::check_eq(
        "#UD with events enabled: trap_info flag 2 masks events in the handler",
        p.record.and_then(|r| r.mask_on_entry),
        Some(1),
    );
    report::check_eq(
        "#UD with events enabled: iret with IF set enables them again",
        after,
        Some(0),
    );
}
