//! The hypercall page and `xen_version` through it and by `syscall`
//! (`pv-abi.md` 6.1-6.2, Xen's `pv_ring3_init_hypercall_page`), and
//! `multicall`.

use firmware::pv::abi::{nr, page, pte, uvmf};
use firmware::pv::hypercall::{self, Call, RESULT_UNSET};
use firmware::pv::{mm, provoke};
use firmware::xen::errno::ENOSYS;
use firmware::{hypervisor, println, report};

/// Stub `n` as Xen writes it: 14 (or, for `iret`, 11) bytes of code and
/// int3 up to 32.
fn expected_stub(n: usize) -> [u8; page::STUB_SIZE] {
    let mut s = [page::FILL; page::STUB_SIZE];
    if n == nr::IRET as usize {
        s[..page::STUB_IRET.len()].copy_from_slice(&page::STUB_IRET);
    } else {
        s[..page::STUB0.len()].copy_from_slice(&page::STUB0);
        s[4..8].copy_from_slice(&(n as u32).to_le_bytes());
    }
    s
}

pub fn version() {
    report::check(
        "hypercall page: filled by the builder",
        hypercall::page_filled(),
    );
    report::check_eq(
        "hypercall page: stub 0 is Xen's 64-bit PV stub",
        hypercall::stub_bytes(0),
        expected_stub(0),
    );
    report::check_eq(
        "hypercall page: stub 23 is Xen's iret stub",
        hypercall::stub_bytes(nr::IRET as usize),
        expected_stub(nr::IRET as usize),
    );
    let bad = (0..128).find(|&n| hypercall::stub_bytes(n) != expected_stub(n));
    if let Some(n) = bad {
        println!("  stub {n}: {:02x?}", hypercall::stub_bytes(n));
    }
    report::check("hypercall page: all 128 stubs are Xen's", bad.is_none());

    let through_page = hypervisor::xen_version();
    let by_syscall = hypervisor::xen_version_direct();
    println!(
        "pv_hello: xen_version: {}.{} (page {through_page:#x}, syscall {by_syscall:#x})",
        through_page >> 16,
        through_page & 0xffff
    );
    report::check("xen_version through the hypercall page", through_page > 0);
    report::check_eq(
        "xen_version by syscall gives the same",
        by_syscall,
        through_page,
    );
}

pub fn multicall() {
    let (Some(target), Some(window)) = (mm::take(), mm::take()) else {
        report::check("multicall: two pool pages", false);
        return;
    };
    target.fill(0x6d75_6c74_6963_616c);
    let pte = mm::entry(target.mfn, pte::P | pte::RW | pte::A | pte::D | pte::NX);
    let version = hypervisor::xen_version() as u64;
    let (rc, results) = hypercall::multicall(&[
        Call::XenVersion,
        Call::XenVersion,
        Call::UpdateVaMapping(window.va, pte, uvmf::INVLPG),
    ]);
    report::check_eq("multicall with three entries", rc, 0);
    report::check_eq(
        "multicall: each entry's result is set",
        [results[0], results[1], results[2], results[3]],
        [version, version, 0, RESULT_UNSET],
    );
    report::check_eq(
        "multicall: the update_va_mapping entry took effect",
        provoke::peek(window.va).ok(),
        Some(0x6d75_6c74_6963_616c),
    );
    // An unknown hypercall in a batch fails alone: its result is
    // -ENOSYS, the batch succeeds (`do_multicall` stores each result).
    let (rc, results) = hypercall::multicall(&[Call::Raw(99), Call::XenVersion]);
    report::check_eq(
        "multicall: an unknown hypercall's entry gets -ENOSYS, the next still runs",
        (rc, results[0] as i64, results[1]),
        (0, -ENOSYS, version),
    );
}
