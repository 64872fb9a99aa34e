//! Page tables the PV way (`pv-abi.md` 4.3-4.8, Xen's `mm.c`,
//! `pv/ro-page-fault.c`): a new L1 built in a zeroed page, made read-only,
//! pinned, hooked into a free slot of the boot L2 with `mmu_update`, read
//! through; then changed by a plain store with the writable page-table
//! assist on, flushed with `MMUEXT_INVLPG_LOCAL`, unpinned and unhooked.

use firmware::pv::abi::{mmuext, pte, uvmf, va::VIRT_BASE, vmasst};
use firmware::pv::hypercall::{mmu_update_one, mmuext_one, update_va_mapping, vm_assist};
use firmware::pv::mm::{self, Frame};
use firmware::pv::provoke::{self, Trigger};
use firmware::pv::traps;
use firmware::{println, report};

use crate::traps::{frame_ok, Expect};

const PATTERNS: [u64; 3] = [
    0xd0d0_d0d0_0000_0000,
    0xd1d1_d1d1_1111_1111,
    0xd2d2_d2d2_2222_2222,
];

/// A read-only, non-executable mapping of `f` for an L1 entry.
pub fn ro(f: &Frame) -> u64 {
    mm::entry(f.mfn, pte::P | pte::A | pte::NX)
}

/// A writable, non-executable mapping of `f` for an L1 entry.
pub fn rw(f: &Frame) -> u64 {
    mm::entry(f.mfn, pte::P | pte::RW | pte::A | pte::D | pte::NX)
}

/// A slot of the boot L2 (the one mapping VIRT_BASE's first GiB) that
/// maps nothing: its index and the VA it covers.
pub fn free_l2_slot() -> Option<(mm::Step, u64)> {
    (256..512).find_map(|i| {
        let va = VIRT_BASE + (i << 21);
        let s = mm::step(va, 2)?;
        (s.level == 2 && s.entry & pte::P == 0).then_some((s, va))
    })
}

pub fn run() {
    let (Some(l1), Some(d0), Some(d1), Some(d2)) = (mm::take(), mm::take(), mm::take(), mm::take())
    else {
        report::check("paging: four pool pages", false);
        return;
    };
    for (f, p) in [&d0, &d1, &d2].into_iter().zip(PATTERNS) {
        f.fill(p);
    }
    let Some((l2, va)) = free_l2_slot() else {
        report::check("paging: a free slot in the boot L2", false);
        return;
    };
    println!(
        "pv_hello: new L1 at mfn {:#x} for {va:#x} (L2 mfn {:#x} slot {})",
        l1.mfn, l2.table_mfn, l2.index
    );
    l1.write(0, rw(&d0));
    l1.write(8, ro(&d1));
    report::check_eq(
        "update_va_mapping: the new L1's page read-only",
        update_va_mapping(l1.va, ro(&l1), uvmf::INVLPG),
        0,
    );
    report::check_eq(
        "MMUEXT_PIN_L1_TABLE of the new L1",
        mmuext_one(mmuext::PIN_L1_TABLE, l1.mfn),
        0,
    );
    report::check_eq(
        "mmu_update: hook the L1 into the free L2 slot",
        mmu_update_one(l2.entry_maddr(), mm::entry(l1.mfn, pte::TABLE)),
        0,
    );
    report::check_eq(
        "the new mapping reads both pages",
        (provoke::peek(va).ok(), provoke::peek(va + 4096).ok()),
        (Some(PATTERNS[0]), Some(PATTERNS[1])),
    );
    let p = provoke::provoke(Trigger::Write(va + 4096 + 16, 0));
    frame_ok(
        "a store through the read-only entry: #PF, error code P|W (3)",
        &p,
        &Expect {
            vector: 14,
            error_code: Some(3),
            rip: p.at,
            saved_mask: 1,
            cr2: Some(va + 4096 + 16),
        },
    );

    // Without the assist a store to the pinned L1 faults like any other.
    let p = provoke::provoke(Trigger::Write(l1.va, rw(&d2)));
    frame_ok(
        "assist off: a store to the pinned L1 raises #PF (error code 3)",
        &p,
        &Expect {
            vector: 14,
            error_code: Some(3),
            rip: p.at,
            saved_mask: 1,
            cr2: Some(l1.va),
        },
    );
    report::check_eq(
        "vm_assist(enable, writable_pagetables)",
        vm_assist(vmasst::CMD_ENABLE, vmasst::TYPE_WRITABLE_PAGETABLES),
        0,
    );
    let p = provoke::provoke(Trigger::Write(l1.va, rw(&d2)));
    report::check(
        "assist on: a plain store to the pinned L1 is validated and emulated (no #PF)",
        p.record.is_none(),
    );
    report::check_eq(
        "assist on: the L1 entry now maps the third page",
        l1.read(0) & pte::ADDR,
        d2.mfn * mm::PAGE_SIZE,
    );
    report::check_eq(
        "MMUEXT_INVLPG_LOCAL of the VA",
        mmuext_one(mmuext::INVLPG_LOCAL, va),
        0,
    );
    report::check_eq(
        "after the flush the VA reads the third page",
        provoke::peek(va).ok(),
        Some(PATTERNS[2]),
    );
    // The assist validates like mmu_update: mapping the L1 itself
    // writable is refused, and the #PF reaches the guest
    // (`ptwr_emulated_update`: get_page_from_l1e fails).
    let p = provoke::provoke(Trigger::Write(l1.va + 16, rw(&l1)));
    frame_ok(
        "assist on: a store mapping the L1 itself writable is refused (#PF)",
        &p,
        &Expect {
            vector: 14,
            error_code: Some(3),
            rip: p.at,
            saved_mask: 1,
            cr2: Some(l1.va + 16),
        },
    );
    report::check_eq("the refused entry stays empty", l1.read(16), 0);
    report::check_eq(
        "vm_assist(disable, writable_pagetables)",
        vm_assist(vmasst::CMD_DISABLE, vmasst::TYPE_WRITABLE_PAGETABLES),
        0,
    );
    report::check_eq(
        "MMUEXT_TLB_FLUSH_LOCAL",
        mmuext_one(mmuext::TLB_FLUSH_LOCAL, 0),
        0,
    );

    report::check_eq(
        "MMUEXT_UNPIN_TABLE of the new L1",
        mmuext_one(mmuext::UNPIN_TABLE, l1.mfn),
        0,
    );
    report::check_eq(
        "mmu_update: unhook the L1",
        mmu_update_one(l2.entry_maddr(), 0),
        0,
    );
    let p = provoke::provoke(Trigger::Read(va));
    report::check_eq(
        "the unhooked VA is unmapped again (#PF)",
        p.record.map(|r| (r.kind, r.error_code)),
        Some((traps::Kind::Exception(14), Some(0))),
    );
    report::check_eq(
        "update_va_mapping: the former L1 writable again",
        update_va_mapping(l1.va, rw(&l1), uvmf::INVLPG),
        0,
    );
}
