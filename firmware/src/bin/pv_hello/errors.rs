//! Bad arguments get Xen's errors and the guest goes on. Each check names
//! the Xen function that decides the error (`xen/arch/x86/mm.c` unless
//! said otherwise).

use firmware::pv::abi::{callback, mmuext, pte, segbase, sel, uvmf, MmuUpdate, MmuextOp, TrapInfo};
use firmware::pv::hypercall::{
    mmu_update, mmu_update_one, mmuext, mmuext_one, register_callback, set_gdt, set_segment_base,
    set_trap_table, stack_switch, unregister_callback, update_descriptor, update_va_mapping,
};
use firmware::pv::{boot, mm, provoke, traps};
use firmware::report;
use firmware::xen::errno::{EBUSY, EINVAL, ENOSYS, EPERM, ESRCH};
use firmware::xen::layout::DOMID_SELF;

use crate::paging::{free_l2_slot, ro, rw};
use crate::segments::DATA_DPL3;
use crate::traps::UNMAPPED;

/// A machine address far above any frame of the domain (1 TiB).
const NO_SUCH_MADDR: u64 = 1 << 40;
/// A domain id no domain has.
const NO_SUCH_DOMAIN: u32 = 0x1234;
/// Not canonical.
const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;
/// A 64-bit TSS descriptor (present, type 9): a system descriptor.
const TSS_DESC: u64 = 0x0000_8900_0000_0067;

/// The low half of a 64-bit call gate to `selector`, present, with `dpl`.
fn call_gate(selector: u16, dpl: u64) -> u64 {
    (0x8c00 | (dpl << 13)) << 32 | u64::from(selector) << 16 | 0x1000
}

pub fn run() {
    let (Some(l1), Some(plain)) = (mm::take(), mm::take()) else {
        report::check("errors: two pool pages", false);
        return;
    };
    let dom_self = u32::from(DOMID_SELF);
    report::check_eq(
        "errors: a pinned L1 to aim at (read-only, MMUEXT_PIN_L1_TABLE)",
        (
            update_va_mapping(l1.va, ro(&l1), uvmf::INVLPG),
            mmuext_one(mmuext::PIN_L1_TABLE, l1.mfn),
        ),
        (0, 0),
    );

    // do_mmu_update: the entry's frame is not the domain's.
    report::check_eq(
        "mmu_update of an entry in a frame the domain does not have: -EINVAL",
        mmu_update_one(NO_SUCH_MADDR, 0),
        -EINVAL,
    );
    // get_page_from_l1e: not RAM, and no I/O memory permission.
    report::check_eq(
        "mmu_update mapping a frame the domain does not have: -EPERM",
        mmu_update_one(
            l1.maddr(40),
            mm::entry(NO_SUCH_MADDR >> 12, pte::P | pte::A | pte::NX),
        ),
        -EPERM,
    );
    // get_pg_owner: no such domain.
    report::check_eq(
        "mmu_update with a foreign domain that does not exist: -ESRCH, none done",
        mmu_update(
            &[MmuUpdate {
                ptr: l1.maddr(40),
                val: 0,
            }],
            NO_SUCH_DOMAIN,
        ),
        (-ESRCH, 0),
    );
    // do_mmu_update takes the command from ptr & 7: 4 is none.
    report::check_eq(
        "mmu_update with ptr misaligned by 4: -ENOSYS (bits 0-2 are the command)",
        mmu_update_one(l1.maddr(40) + 4, 0),
        -ENOSYS,
    );
    // mod_l2_entry: PSE is in L2_DISALLOW_MASK.
    if let Some((l2, _)) = free_l2_slot() {
        report::check_eq(
            "mmu_update of an L2 entry with PSE (a superpage): -EINVAL",
            mmu_update_one(
                l2.entry_maddr(),
                mm::entry(plain.mfn, pte::P | pte::RW | pte::PSE | pte::A | pte::D),
            ),
            -EINVAL,
        );
    }
    // do_mmu_update stops at the first failure; *pdone counts the rest.
    report::check_eq(
        "mmu_update of two entries, the second bad: -EINVAL, one done",
        mmu_update(
            &[
                MmuUpdate {
                    ptr: l1.maddr(48),
                    val: 0,
                },
                MmuUpdate {
                    ptr: NO_SUCH_MADDR,
                    val: 0,
                },
            ],
            dom_self,
        ),
        (-EINVAL, 1),
    );
    // get_page_from_l1e: a page table cannot get the writable type.
    report::check_eq(
        "update_va_mapping mapping the pinned L1 writable: -EBUSY",
        update_va_mapping(l1.va, rw(&l1), uvmf::INVLPG),
        -EBUSY,
    );
    // do_mmuext_op: test_and_set_bit(_PGT_pinned) was set.
    report::check_eq(
        "MMUEXT_PIN_L1_TABLE of a pinned table: -EINVAL",
        mmuext_one(mmuext::PIN_L1_TABLE, l1.mfn),
        -EINVAL,
    );
    // _get_page_type: a writable page cannot take the L1 type.
    report::check_eq(
        "MMUEXT_PIN_L1_TABLE of a page mapped writable: -EINVAL",
        mmuext_one(mmuext::PIN_L1_TABLE, plain.mfn),
        -EINVAL,
    );
    report::check_eq(
        "MMUEXT_UNPIN_TABLE of the pinned L1",
        mmuext_one(mmuext::UNPIN_TABLE, l1.mfn),
        0,
    );
    // do_mmuext_op: test_and_clear_bit(_PGT_pinned) was clear.
    report::check_eq(
        "MMUEXT_UNPIN_TABLE of an unpinned table: -EINVAL",
        mmuext_one(mmuext::UNPIN_TABLE, l1.mfn),
        -EINVAL,
    );
    report::check_eq(
        "update_va_mapping: the unpinned L1 writable again",
        update_va_mapping(l1.va, rw(&l1), uvmf::INVLPG),
        0,
    );
    report::check_eq(
        "MMUEXT command 99: -ENOSYS",
        mmuext(&[MmuextOp {
            cmd: 99,
            ..MmuextOp::default()
        }]),
        -ENOSYS,
    );
    // __do_update_va_mapping: map_guest_l1e finds no L1.
    report::check_eq(
        "update_va_mapping of a VA without an L1: -EINVAL",
        update_va_mapping(UNMAPPED, rw(&plain), uvmf::INVLPG),
        -EINVAL,
    );

    // pv/callback.c do_set_trap_table: is_canonical_address.
    let table = [
        TrapInfo {
            vector: 0x80,
            flags: 3,
            cs: sel::FLAT_CS,
            pad: 0,
            address: NON_CANONICAL,
        },
        TrapInfo::default(),
    ];
    report::check_eq(
        "set_trap_table with a non-canonical handler: -EINVAL",
        set_trap_table(&table),
        -EINVAL,
    );
    // pv/callback.c register_guest_callback / unregister_guest_callback.
    report::check_eq(
        "callback_op register with a non-canonical address: -EINVAL",
        register_callback(callback::TYPE_EVENT, 0, NON_CANONICAL),
        -EINVAL,
    );
    report::check_eq(
        "callback_op register of an unknown type (6): -ENOSYS",
        register_callback(6, 0, traps::event_entry()),
        -ENOSYS,
    );
    report::check_eq(
        "callback_op unregister of the event callback: -EINVAL",
        unregister_callback(callback::TYPE_EVENT),
        -EINVAL,
    );
    let p = provoke::provoke(provoke::Trigger::Int3);
    report::check(
        "the trap table still works after the refused calls",
        p.record
            .is_some_and(|r| r.kind == traps::Kind::Exception(3)),
    );

    // pv/descriptor-tables.c do_update_descriptor / check_descriptor.
    report::check_eq(
        "update_descriptor at an address misaligned by 4: -EINVAL",
        update_descriptor(plain.maddr(4), DATA_DPL3),
        -EINVAL,
    );
    report::check_eq(
        "update_descriptor of a TSS descriptor: -EINVAL",
        update_descriptor(plain.maddr(8), TSS_DESC),
        -EINVAL,
    );
    report::check_eq(
        "update_descriptor of a call gate to Xen's own code selector (0xe008): -EINVAL",
        update_descriptor(plain.maddr(16), call_gate(sel::XEN_RING0_CS, 3)),
        -EINVAL,
    );
    // A gate to a selector of the guest's own GDT is fine, even with DPL
    // 0: check_descriptor raises the DPL to 3, keeps it in the target
    // selector's RPL and forces the gate's own DPL to 0, so that using the
    // gate traps (`emul-gate-op.c` emulates it).
    report::check_eq(
        "update_descriptor of a DPL 0 call gate to GDT selector 0x10: accepted",
        update_descriptor(plain.maddr(24), call_gate(0x10, 0)),
        0,
    );
    report::check_eq(
        "update_descriptor: the gate is stored with DPL 0 and target 0x13 (the DPL, raised to 3, in its RPL)",
        plain.read(24),
        call_gate(0x13, 0),
    );
    let frames = [0u64; 16];
    report::check_eq(
        "set_gdt of more than 7168 entries: -EINVAL",
        set_gdt(&frames, sel::FIRST_RESERVED_GDT_ENTRY + 1),
        -EINVAL,
    );

    // pv/misc-hypercalls.c do_set_segment_base.
    report::check_eq(
        "set_segment_base(SEGBASE_FS, non-canonical): -EINVAL",
        set_segment_base(segbase::FS, NON_CANONICAL),
        -EINVAL,
    );
    report::check_eq(
        "set_segment_base of an unknown segment (7): -EINVAL",
        set_segment_base(7, 0),
        -EINVAL,
    );
    // do_stack_switch has no error: it raises the RPL to 3.
    report::check_eq(
        "stack_switch with an RPL 0 selector: 0 (Xen fixes the RPL up)",
        stack_switch(u64::from(sel::FLAT_SS & !3), boot::kernel_stack_top()),
        0,
    );

    // The hypervisor's fast-path stub lives in the per-domain area
    // (hv::pv::fast::page: code, data and the vcpu_info window in L1 slots
    // 257-259 of 0xffff820000000000): supervisor pages, which the guest
    // kernel in ring 3 can neither read nor write.
    for (name, va) in [
        (
            "the fast-path stub's code page: a read from the guest kernel is #PF (present, supervisor)",
            0xffff_8200_0010_1000u64,
        ),
        (
            "the fast-path stub's data page: a read from the guest kernel is #PF (present, supervisor)",
            0xffff_8200_0010_2000,
        ),
        (
            "the fast-path stub's vcpu_info window: a read from the guest kernel is #PF (present, supervisor)",
            0xffff_8200_0010_3000,
        ),
    ] {
        let got = provoke::peek(va).err().map(|t| (t.kind, t.error_code));
        report::check_eq(name, got, Some((traps::Kind::Exception(14), Some(1))));
    }
}
