//! `attack=hypercall`: the PV hypercalls with hostile arguments, next to
//! a victim domain (`victim=ID`): the victim's and the hypervisor's host
//! frames (`hv.peer=`, `hv.canary=` from `debug.canary`) as machine frames
//! to map, pin, copy, clear and load, the victim as foreign domain, lists
//! and output pointers in the hypervisor's virtual range, reserved
//! page-table bits, unaligned and out-of-range values. Each expected value
//! is what Xen 4.17 gives an unprivileged 64-bit PV domain (the comments
//! name the function that decides, `xen/arch/x86/mm.c` unless said
//! otherwise), and where a refused call could have changed something the
//! case also reads it back.
//!
//! One difference is by design: a PV domain's machine frames are its own
//! container's guest-physical frames, so another domain's frame cannot be
//! named at all. A host frame number of the victim or the hypervisor is a
//! frame the attacker does not have, not RAM: Xen's answer for that
//! (`-EPERM` to map, `-EINVAL` to use as a table) is the expected one, where
//! Xen would give `-EBUSY` to map a frame another domain owns.

use firmware::pci::attack::parse_hex;
use firmware::println;
use firmware::pv::abi::{mmuext, nr, pte, segbase, uvmf, MmuUpdate, MmuextOp, StartInfo};
use firmware::pv::hypercall::{
    self, mmu_update, mmuext, mmuext_one, set_segment_base, update_descriptor, update_va_mapping,
    vm_assist,
};
use firmware::pv::mm::{self, Frame};
use firmware::report::Table;
use firmware::xen::errno::*;

use crate::paging::{ro, rw};

/// The start of the hypervisor's virtual range (Xen's `access_ok` refuses
/// it whatever the guest's tables say).
const HV_VA: u64 = 0xffff_8000_0000_0000;
const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;
/// A domain id no domain has.
const ABSENT: u64 = 0x1234;
/// Xen's `-ENODEV` (not in `errno`).
const ENODEV: i64 = 19;

/// `MMUEXT_*` this file uses besides [`mmuext`]'s.
const NEW_BASEPTR: u32 = 5;
const TLB_FLUSH_MULTI: u32 = 8;
const SET_LDT: u32 = 13;
const CLEAR_PAGE: u32 = 16;
const COPY_PAGE: u32 = 17;

/// Hypercall numbers this file calls raw.
const SET_CALLBACKS: u64 = 4;
const FPU_TASKSWITCH: u64 = 5;
const SET_DEBUGREG: u64 = 8;
const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
const MULTICALL: u64 = 13;
const SCHED_OP: u64 = 29;
const PHYSDEV_OP: u64 = 33;
const PHYSDEVOP_SET_IOPL: u64 = 6;

type T = Table<64>;

/// Whose host frame a case aims at.
#[derive(Debug, Clone, Copy)]
enum Who {
    Victim = 0,
    Canary = 1,
}

/// Its pool pages the frame cases use: a pinned L1, a page mapped
/// writable with a marker, and a zeroed page.
struct Pages {
    l1: Frame,
    plain: Frame,
    other: Frame,
}

/// A case aimed at a host frame `f` that is not the guest's: its names
/// against the victim's and the canary's frame, the call and Xen's answer.
type FrameCase = ([&'static str; 2], fn(&Pages, u64) -> i64, i64);

fn mmu_one(ptr: u64, val: u64) -> i64 {
    mmu_update(
        &[MmuUpdate { ptr, val }],
        u32::from(firmware::xen::layout::DOMID_SELF),
    )
    .0
}

fn ext(cmd: u32, arg1: u64, arg2: u64) -> i64 {
    mmuext(&[MmuextOp {
        cmd,
        arg1,
        arg2,
        ..MmuextOp::default()
    }])
}

/// A writable mapping of frame `f`.
fn map(f: u64) -> u64 {
    mm::entry(f, pte::P | pte::RW | pte::A | pte::D | pte::NX)
}

/// Every use of a frame the guest does not have: Xen's `get_page_from_gfn`
/// fails (-EINVAL), or, to map it, `get_page_from_l1e` finds no RAM and no
/// I/O memory permission (-EPERM).
const FRAME_CASES: &[FrameCase] = &[
    (
        [
            "mmu_update of an entry in the victim's host frame: -EINVAL",
            "mmu_update of an entry in the canary's host frame: -EINVAL",
        ],
        |_, f| mmu_one(f << 12, 0),
        -EINVAL,
    ),
    (
        [
            "mmu_update mapping the victim's host frame: -EPERM",
            "mmu_update mapping the canary's host frame: -EPERM",
        ],
        |p, f| mmu_one(p.l1.maddr(40), map(f)),
        -EPERM,
    ),
    (
        [
            "update_va_mapping of its page to the victim's host frame: -EPERM",
            "update_va_mapping of its page to the canary's host frame: -EPERM",
        ],
        |p, f| update_va_mapping(p.plain.va, map(f), uvmf::INVLPG),
        -EPERM,
    ),
    (
        [
            "MMUEXT_PIN_L1_TABLE of the victim's host frame: -EINVAL",
            "MMUEXT_PIN_L1_TABLE of the canary's host frame: -EINVAL",
        ],
        |_, f| ext(mmuext::PIN_L1_TABLE, f, 0),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_PIN_L4_TABLE of the victim's host frame: -EINVAL",
            "MMUEXT_PIN_L4_TABLE of the canary's host frame: -EINVAL",
        ],
        |_, f| ext(mmuext::PIN_L4_TABLE, f, 0),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_NEW_BASEPTR to the victim's host frame: -EINVAL",
            "MMUEXT_NEW_BASEPTR to the canary's host frame: -EINVAL",
        ],
        |_, f| ext(NEW_BASEPTR, f, 0),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_NEW_USER_BASEPTR to the victim's host frame: -EINVAL",
            "MMUEXT_NEW_USER_BASEPTR to the canary's host frame: -EINVAL",
        ],
        |_, f| ext(mmuext::NEW_USER_BASEPTR, f, 0),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_CLEAR_PAGE of the victim's host frame: -EINVAL",
            "MMUEXT_CLEAR_PAGE of the canary's host frame: -EINVAL",
        ],
        |_, f| ext(CLEAR_PAGE, f, 0),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_COPY_PAGE from the victim's host frame into its page: -EINVAL",
            "MMUEXT_COPY_PAGE from the canary's host frame into its page: -EINVAL",
        ],
        |p, f| ext(COPY_PAGE, p.other.mfn, f),
        -EINVAL,
    ),
    (
        [
            "MMUEXT_COPY_PAGE from its page into the victim's host frame: -EINVAL",
            "MMUEXT_COPY_PAGE from its page into the canary's host frame: -EINVAL",
        ],
        |p, f| ext(COPY_PAGE, f, p.plain.mfn),
        -EINVAL,
    ),
    (
        [
            "update_descriptor in the victim's host frame: -EINVAL",
            "update_descriptor in the canary's host frame: -EINVAL",
        ],
        |_, f| update_descriptor((f << 12) + 8, 0),
        -EINVAL,
    ),
    (
        [
            "set_gdt of the victim's host frame: -EINVAL",
            "set_gdt of the canary's host frame: -EINVAL",
        ],
        |_, f| hypercall::set_gdt(&[f], 16),
        -EINVAL,
    ),
];

/// A hypercall with raw arguments.
fn raw(nr: u64, a: [u64; 4]) -> i64 {
    // SAFETY: every pointer passed is in the hypervisor's range (which the
    // hypervisor must refuse), non-canonical, or points at a live local of
    // the caller; frames named are not this guest's, or pool pages the
    // caller owns.
    unsafe { hypercall::call(nr, a[0], a[1], a[2], a[3], 0) }
}

fn is(t: &mut T, case: &'static str, rc: i64, want: i64) -> bool {
    t.case(case, format_args!("{rc}"), rc == want)
}

/// The value of `key=0x...` on the command line.
fn hex(si: &StartInfo, key: &str) -> Option<u64> {
    let end = si.cmd_line.iter().position(|&b| b == 0)?;
    let line = core::str::from_utf8(&si.cmd_line[..end]).ok()?;
    line.split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(parse_hex)
}

pub fn run(si: &StartInfo) {
    // Let the victim (domain 1) fill its guard first: each SCHEDOP_yield
    // hands it the CPU for a time slice.
    for _ in 0..200 {
        raw(SCHED_OP, [0; 4]);
    }
    let mut t = T::new("attack-hypercall-pv");
    let victim = hex(si, "victim").unwrap_or(1);
    // Frames this guest may have: its pages and the special pages after
    // them, to the end of the next 2 MiB.
    let mine = (si.nr_pages + 512).next_multiple_of(512);
    let foreign = |key| hex(si, key).map(|a| a >> 12).filter(|&f| f >= mine);
    // The victim's and the canary's frames may be in host memory below the
    // end of this guest's frames (under Bochs): then the number names a
    // page of this guest's own, and the cases aimed at it are left out.
    let targets = [
        (Who::Victim, foreign("hv.peer")),
        (Who::Canary, foreign("hv.canary")),
    ];
    let (Some(l1), Some(plain), Some(other)) = (mm::take(), mm::take(), mm::take()) else {
        t.case("three pool pages", format_args!("missing"), false);
        t.print();
        return;
    };
    println!("attack_pv: victim d{victim}; host frames (none: among its own {mine}): {targets:x?}");
    // A pinned L1 whose entries the cases aim at, and a marker in `plain`.
    let pinned = update_va_mapping(l1.va, ro(&l1), uvmf::INVLPG) == 0
        && mmuext_one(mmuext::PIN_L1_TABLE, l1.mfn) == 0;
    t.case("a pinned L1 to aim at", format_args!("{pinned}"), pinned);
    const MARK: u64 = 0x5eed_0fa7_7ac4;
    plain.write(0, MARK);
    let intact = |f: &Frame, at: u64, want: u64| f.read(at) == want;

    let pages = Pages { l1, plain, other };
    for (who, f) in targets {
        let Some(f) = f else { continue };
        for c in FRAME_CASES {
            is(&mut t, c.0[who as usize], (c.1)(&pages, f), c.2);
        }
    }
    let Pages { l1, plain, other } = pages;
    mmu_update_cases(&mut t, &l1, &plain, victim);
    t.case(
        "mmu_update: the pinned L1 is as it was after the refused updates",
        format_args!("{:#x}", l1.read(40) | l1.read(48)),
        intact(&l1, 40, 0) && intact(&l1, 48, 0),
    );

    // update_va_mapping (__do_update_va_mapping).
    for (case, va) in [
        (
            "update_va_mapping of a VA in the hypervisor's range: -EINVAL",
            HV_VA,
        ),
        (
            "update_va_mapping of a non-canonical VA: -EINVAL",
            NON_CANONICAL,
        ),
    ] {
        is(
            &mut t,
            case,
            update_va_mapping(va, rw(&plain), uvmf::INVLPG),
            -EINVAL,
        );
    }
    t.case(
        "update_va_mapping: its page still maps its own frame (marker read back)",
        format_args!("{:#x}", plain.read(0)),
        intact(&plain, 0, MARK),
    );
    // vcpumask_to_pcpumask's -EFAULT is returned as is (after the update).
    is(
        &mut t,
        "update_va_mapping with a vCPU bitmap in the hypervisor's range: -EFAULT",
        update_va_mapping(plain.va, rw(&plain), uvmf::INVLPG | HV_VA),
        -EFAULT,
    );
    // get_pg_owner, then xsm_update_va_mapping for a present entry.
    is(
        &mut t,
        "update_va_mapping_otherdomain naming the victim, a present entry: -EPERM",
        raw(
            UPDATE_VA_MAPPING_OTHERDOMAIN,
            [plain.va, rw(&plain), uvmf::INVLPG, victim],
        ),
        -EPERM,
    );
    is(
        &mut t,
        "update_va_mapping_otherdomain naming no domain: -ESRCH",
        raw(
            UPDATE_VA_MAPPING_OTHERDOMAIN,
            [plain.va, rw(&plain), uvmf::INVLPG, ABSENT],
        ),
        -ESRCH,
    );

    mmuext_cases(&mut t, &plain, victim);
    t.case(
        "mmuext_op: its pages are as they were (marker read back, the other page zero)",
        format_args!("{:#x}", plain.read(0) ^ other.read(8)),
        intact(&plain, 0, MARK) && intact(&other, 8, 0),
    );

    other_cases(&mut t);
    t.print();
}

/// `mmu_update` (`do_mmu_update`) against the victim's and the canary's
/// frames, the victim as foreign domain, and pointers Xen refuses.
fn mmu_update_cases(t: &mut T, l1: &Frame, plain: &Frame, victim: u64) {
    let own = u32::from(firmware::xen::layout::DOMID_SELF);
    // mod_l1_entry: l1_disallow_mask (a domain without I/O resources may
    // not choose the cache attributes: PWT, PCD, PAT).
    for (case, bits) in [
        (
            "mmu_update with PCD in an L1 entry of a domain without devices: -EINVAL",
            1u64 << 4,
        ),
        (
            "mmu_update with PAT (bit 7) in an L1 entry of a domain without devices: -EINVAL",
            1 << 7,
        ),
    ] {
        let val = mm::entry(plain.mfn, pte::P | pte::A | pte::NX | bits);
        is(
            t,
            case,
            mmu_update(
                &[MmuUpdate {
                    ptr: l1.maddr(40),
                    val,
                }],
                own,
            )
            .0,
            -EINVAL,
        );
    }
    let req = [MmuUpdate {
        ptr: l1.maddr(48),
        val: 0,
    }];
    // xsm_mmu_update: another domain's pages or tables.
    is(
        t,
        "mmu_update with the victim as page owner: -EPERM",
        mmu_update(&req, victim as u32).0,
        -EPERM,
    );
    is(
        t,
        "mmu_update with the victim as page-table owner: -EPERM",
        mmu_update(&req, ((victim as u32 + 1) << 16) | own).0,
        -EPERM,
    );
    // guest_handle_okay / __copy_from_guest.
    is(
        t,
        "mmu_update with its request list in the hypervisor's range: -EFAULT",
        raw(nr::MMU_UPDATE, [HV_VA, 1, 0, u64::from(own)]),
        -EFAULT,
    );
    // The count done is written back, its failure ignored.
    is(
        t,
        "mmu_update with its done count in the hypervisor's range: 0",
        raw(
            nr::MMU_UPDATE,
            [req.as_ptr() as u64, 1, HV_VA, u64::from(own)],
        ),
        0,
    );
}

/// `mmuext_op` (`do_mmuext_op`) with the victim's and the canary's frames
/// and hostile addresses.
fn mmuext_cases(t: &mut T, plain: &Frame, victim: u64) {
    let op = ext;
    // MMUEXT_SET_LDT: a base in the hypervisor's range, unaligned, too
    // many entries.
    is(
        t,
        "MMUEXT_SET_LDT at the hypervisor's range: -EINVAL",
        op(SET_LDT, HV_VA, 16),
        -EINVAL,
    );
    is(
        t,
        "MMUEXT_SET_LDT at an unaligned base: -EINVAL",
        op(SET_LDT, plain.va + 8, 16),
        -EINVAL,
    );
    is(
        t,
        "MMUEXT_SET_LDT of 8193 entries: -EINVAL",
        op(SET_LDT, plain.va, 8193),
        -EINVAL,
    );
    // vcpumask_to_pcpumask fails: -EINVAL here.
    is(
        t,
        "MMUEXT_TLB_FLUSH_MULTI with a vCPU bitmap in the hypervisor's range: -EINVAL",
        op(TLB_FLUSH_MULTI, 0, HV_VA),
        -EINVAL,
    );
    // get_pg_owner, then not a PV domain (the victim is PVH).
    let flush = MmuextOp {
        cmd: mmuext::TLB_FLUSH_LOCAL,
        ..MmuextOp::default()
    };
    is(
        t,
        "mmuext_op with the victim as foreign domain: -EINVAL (not PV)",
        raw(nr::MMUEXT_OP, [&flush as *const _ as u64, 1, 0, victim]),
        -EINVAL,
    );
    is(
        t,
        "mmuext_op with its list in the hypervisor's range: -EFAULT",
        raw(nr::MMUEXT_OP, [HV_VA, 1, 0, 0x7ff0]),
        -EFAULT,
    );
}

/// The other PV hypercalls: descriptors, tables and callbacks given from
/// the hypervisor's range, debug registers, `vm_assist`, `physdev_op`.
fn other_cases(t: &mut T) {
    // pv/descriptor-tables.c: do_set_gdt.
    is(
        t,
        "set_gdt with its frame list in the hypervisor's range: -EFAULT",
        raw(nr::SET_GDT, [HV_VA, 16, 0, 0]),
        -EFAULT,
    );
    // pv/callback.c.
    is(
        t,
        "set_trap_table with its table in the hypervisor's range: -EFAULT",
        raw(nr::SET_TRAP_TABLE, [HV_VA, 0, 0, 0]),
        -EFAULT,
    );
    is(
        t,
        "callback_op register with its argument in the hypervisor's range: -EFAULT",
        raw(nr::CALLBACK_OP, [0, HV_VA, 0, 0]),
        -EFAULT,
    );
    // do_set_callbacks ignores register_guest_callback's errors.
    is(
        t,
        "set_callbacks with non-canonical addresses: 0 (Xen ignores each one's error)",
        raw(SET_CALLBACKS, [NON_CANONICAL; 4]),
        0,
    );
    // pv/misc-hypercalls.c: set_debugreg.
    is(
        t,
        "set_debugreg(0) to an address in the hypervisor's range: -EPERM",
        raw(SET_DEBUGREG, [0, HV_VA, 0, 0]),
        -EPERM,
    );
    is(
        t,
        "set_debugreg(7) with general detect (bit 13): -EPERM",
        raw(SET_DEBUGREG, [7, 1 << 13, 0, 0]),
        -EPERM,
    );
    is(
        t,
        "set_debugreg(8): -ENODEV",
        raw(SET_DEBUGREG, [8, 0, 0, 0]),
        -ENODEV,
    );
    // do_fpu_taskswitch has no error; TS set and cleared again.
    is(
        t,
        "fpu_taskswitch(-1) then (0): 0",
        raw(FPU_TASKSWITCH, [u64::MAX; 4]) | raw(FPU_TASKSWITCH, [0; 4]),
        0,
    );
    // common/domain.c do_vm_assist: the type first, then the command.
    is(
        t,
        "vm_assist of type 64: -EINVAL",
        vm_assist(0, 64),
        -EINVAL,
    );
    is(
        t,
        "vm_assist of an unknown type (31): -EINVAL",
        vm_assist(0, 31),
        -EINVAL,
    );
    is(t, "vm_assist command 2: -ENOSYS", vm_assist(2, 2), -ENOSYS);
    // pv/misc-hypercalls.c do_set_segment_base: non-canonical only.
    is(
        t,
        "set_segment_base(SEGBASE_GS_KERNEL, non-canonical): -EINVAL",
        set_segment_base(segbase::GS_KERNEL, NON_CANONICAL),
        -EINVAL,
    );
    // physdev.c.
    let mut iopl = [4u32];
    is(
        t,
        "physdev_op(set_iopl) of 4: -EINVAL",
        raw(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, iopl.as_mut_ptr() as u64, 0, 0],
        ),
        -EINVAL,
    );
    is(
        t,
        "physdev_op(set_iopl) with its argument in the hypervisor's range: -EFAULT",
        raw(PHYSDEV_OP, [PHYSDEVOP_SET_IOPL, HV_VA, 0, 0]),
        -EFAULT,
    );
    // common/multicall.c.
    is(
        t,
        "multicall with its list in the hypervisor's range: -EFAULT",
        raw(MULTICALL, [HV_VA, 1, 0, 0]),
        -EFAULT,
    );
}
