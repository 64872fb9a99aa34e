//! The start info and the state the builder entered the guest with
//! (`pv-abi.md` 2.2-2.4: Xen's `xg_dom_x86.c`, `start_info_x86_64`,
//! `vcpu_x86_64`).

use firmware::pv::abi::{pte, rflags, sel, va::VIRT_BASE, SIF_INITDOMAIN, SIF_PRIVILEGED};
use firmware::pv::{boot, mm, StartInfo};
use firmware::{println, report};

/// The text of a NUL-terminated byte array, if it is terminated and UTF-8.
fn c_str(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&bytes[..end]).ok()
}

/// Whether the command line has the word `word`.
pub fn has_word(si: &StartInfo, word: &str) -> bool {
    c_str(&si.cmd_line).is_some_and(|l| l.split(' ').any(|w| w == word))
}

pub fn run(si: &StartInfo, si_va: u64) {
    let magic = c_str(&si.magic).unwrap_or("?");
    println!(
        "pv_hello: start_info: magic \"{magic}\", {} pages, shared_info at {:#x}, pt_base {:#x} ({} frames), mfn_list {:#x}, flags {:#x}",
        si.nr_pages, si.shared_info, si.pt_base, si.nr_pt_frames, si.mfn_list, si.flags
    );
    println!(
        "pv_hello: start_info: xenstore mfn {:#x} port {}, console mfn {:#x} port {}",
        si.store_mfn, si.store_evtchn, si.console_mfn, si.console_evtchn
    );
    report::check(
        "start_info: magic starts with xen-3.0-x86_64",
        magic.starts_with("xen-3.0-x86_64"),
    );
    report::check("start_info: nr_pages > 0", si.nr_pages > 0);

    let entry = boot::entry_state();
    println!(
        "pv_hello: entry: rsi {:#x} rsp {:#x} rflags {:#x} cs {:#x} ss {:#x}",
        entry.rsi, entry.rsp, entry.rflags, entry.cs, entry.ss
    );
    report::check_eq("entry: RSI is the start_info address", entry.rsi, si_va);
    report::check(
        "entry: start_info is a page of the VIRT_BASE mapping",
        si_va.is_multiple_of(mm::PAGE_SIZE) && si_va > VIRT_BASE,
    );
    report::check_eq("entry: CS is FLAT_KERNEL_CS", entry.cs, sel::FLAT_CS);
    report::check_eq("entry: SS is FLAT_KERNEL_SS", entry.ss, sel::FLAT_SS);
    // The builder allocates the boot stack after the image (`pv-abi.md`
    // 2.2); RSP is the top of that page.
    let image_end = boot::image_end();
    report::check(
        "entry: RSP is the top of a boot stack page after the image",
        entry.rsp.is_multiple_of(mm::PAGE_SIZE) && entry.rsp > image_end,
    );
    report::check_eq("entry: IOPL 0", entry.rflags & rflags::IOPL, 0);

    // The builder maps pfn N at VIRT_BASE + N * 4096, the page tables
    // among them but read-only (`alloc_pgtables_x86_64`, `get_pg_prot`).
    report::check(
        "start_info: pt_base is a page of the VIRT_BASE mapping",
        si.pt_base.is_multiple_of(mm::PAGE_SIZE) && si.pt_base > VIRT_BASE && si.nr_pt_frames > 0,
    );
    let l4_pte = mm::step(si.pt_base, 1).map(|s| s.entry);
    report::check(
        "boot tables: the L4 is mapped read-only at pt_base",
        l4_pte.is_some_and(|e| e & pte::P != 0 && e & pte::RW == 0),
    );
    let image = mm::step(boot::pv_start_va(), 1).map(|s| s.entry & pte::ADDR);
    report::check_eq(
        "boot tables: the image is mapped at VIRT_BASE + pfn * 4096 (pfn by mfn_list)",
        image,
        mm::mfn_of_pfn(mm::pfn_of_va(boot::pv_start_va())).map(|m| m * mm::PAGE_SIZE),
    );

    let mismatch = (0..si.nr_pages).find(|&pfn| mm::mfn_of_pfn(pfn) != Some(pfn));
    if let Some(pfn) = mismatch {
        println!("  mfn_list[{pfn:#x}] = {:#x?}", mm::mfn_of_pfn(pfn));
    }
    report::check(
        "start_info: mfn_list is the identity (mfn_list[i] == i for every page)",
        mismatch.is_none(),
    );
    report::check(
        "start_info: store and console mfn and event channels are non-zero",
        si.store_mfn != 0 && si.store_evtchn != 0 && si.console_mfn != 0 && si.console_evtchn != 0,
    );
    report::check(
        "start_info: the xenstore and console rings are pages of the domain",
        si.store_mfn < si.nr_pages && si.console_mfn < si.nr_pages,
    );
    report::check(
        "start_info: shared_info is a page-aligned machine address",
        si.shared_info != 0 && si.shared_info.is_multiple_of(mm::PAGE_SIZE),
    );
    report::check_eq(
        "start_info: not privileged, not the initial domain",
        si.flags & (SIF_PRIVILEGED | SIF_INITDOMAIN),
        0,
    );
    report::check(
        "start_info: no initrd",
        si.mod_start == 0 && si.mod_len == 0,
    );
    let line = c_str(&si.cmd_line);
    if let Some(line) = line {
        println!("pv_hello: command line: \"{line}\"");
    }
    report::check(
        "start_info: cmd_line is NUL-terminated text",
        line.is_some(),
    );
}
