//! The bytes a plan writes.

use super::*;
use crate::pv::testimg::{num, text_byte, with, VIRT_BASE};
use vmm_glue::xen::elfnote::XEN_ELFNOTE_HYPERCALL_PAGE;
use vmm_glue::xen::start_info::PvStartInfo;

#[test]
fn the_kernel_is_copied_by_physical_address_with_gaps_and_bss_zeroed() {
    let (_, mem) = written(&linux_notes(), &config(NR_PAGES), None);
    let text: Vec<u8> = (0x100_0000..0x100_3000).map(text_byte).collect();
    assert_eq!(mem.bytes(0x100_0000, 0x3000), text);
    assert!(mem.bytes(0x100_3000, 0x1000).iter().all(|&b| b == 0), "gap");
    assert!(mem.bytes(0x100_4000, 0x800).iter().all(|&b| b == 0x5a));
    assert!(mem.bytes(0x100_4800, 0x1800).iter().all(|&b| b == 0), "bss");
    // The per-CPU segment (virtual 0) at its physical address.
    assert!(mem.bytes(0x100_6000, 0x1000).iter().all(|&b| b == 0xc3));
    // Below the kernel nothing is written.
    assert_eq!(mem.byte(0xff_ffff), UNWRITTEN);
    assert_eq!(mem.byte(0), UNWRITTEN);
}

#[test]
fn the_p2m_list_is_the_identity() {
    // Not a multiple of 512 pages: the last p2m page ends in zeros.
    let nr_pages = NR_PAGES + 100;
    let (p, mem) = written(&linux_notes(), &config(nr_pages), None);
    let base = p.p2m_pfns().start * PAGE_SIZE;
    assert_eq!(p.p2m_pfns().end - p.p2m_pfns().start, 17);
    for i in 0..nr_pages {
        assert_eq!(mem.u64_at(base + i * 8), i);
    }
    for i in nr_pages..17 * 512 {
        assert_eq!(mem.u64_at(base + i * 8), 0);
    }
}

#[test]
fn the_start_info_page_holds_the_plans_start_info() {
    let image = image(&linux_notes());
    let mut p = plan(&image, &config(NR_PAGES)).unwrap();
    // Event channels known only after planning.
    p.start_info.store_evtchn = 7;
    p.start_info.console_evtchn = 8;
    let mut mem = Mem::new(NR_PAGES);
    p.write(&image, None, &mut mem).unwrap();
    let gpa = p.start_info_pfn() * PAGE_SIZE;
    let bytes: [u8; PvStartInfo::SIZE] = mem.bytes(gpa, PvStartInfo::SIZE).try_into().unwrap();
    let si = PvStartInfo::from_bytes(&bytes);
    assert_eq!(si, p.start_info);
    assert_eq!((si.store_evtchn, si.console_evtchn), (7, 8));
    let rest = mem.bytes(gpa + PvStartInfo::SIZE as u64, 4096 - PvStartInfo::SIZE);
    assert!(rest.iter().all(|&b| b == 0));
    // RSI is its virtual address.
    assert_eq!(walk_plan(&p, p.regs.rsi), Ok(gpa));
}

#[test]
fn rings_and_stack_are_zeroed_and_tables_written() {
    let (p, mem) = written(&linux_notes(), &config(NR_PAGES), None);
    for pfn in [p.store_pfn(), p.console_pfn(), p.layout.stack] {
        assert!(mem.bytes(pfn * 4096, 4096).iter().all(|&b| b == 0));
    }
    for (pfn, _) in p.page_tables() {
        let want: Vec<u8> = p
            .table(pfn)
            .unwrap()
            .iter()
            .flat_map(|e| e.to_le_bytes())
            .collect();
        assert_eq!(mem.bytes(pfn * 4096, 4096), want);
    }
    // The room after the stack is mapped but not written.
    assert_eq!(mem.byte((p.layout.stack + 1) * 4096), UNWRITTEN);
}

#[test]
fn the_hypercall_page_has_xens_64_bit_stubs() {
    let notes = with(
        &linux_notes(),
        num(XEN_ELFNOTE_HYPERCALL_PAGE, VIRT_BASE + 0x100_2000),
    );
    let (p, mem) = written(&notes, &config(NR_PAGES), None);
    assert_eq!(p.hypercall_page_pfn(), Some(0x1002));
    let page = mem.bytes(0x100_2000, 4096);
    assert_eq!(page, hypercall_page());
    // Stub 0: push %rcx; push %r11; mov $0,%eax; syscall; pop %r11;
    // pop %rcx; ret; then int3 up to the next stub.
    let mut stub0 =
        alloc::vec![0x51, 0x41, 0x53, 0xb8, 0, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3];
    stub0.resize(32, 0xcc);
    assert_eq!(page[..32], stub0);
    let mut stub17 = stub0.clone();
    stub17[4] = 17;
    assert_eq!(page[17 * 32..18 * 32], stub17);
    // Stub 23 (iret): push %rcx; push %r11; push %rax; mov $23,%eax;
    // syscall; and no return.
    let mut stub23 = alloc::vec![0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05];
    stub23.resize(32, 0xcc);
    assert_eq!(page[23 * 32..24 * 32], stub23);
    let mut stub127 = stub0.clone();
    stub127[4] = 127;
    assert_eq!(page[127 * 32..], stub127);
    // The rest of the kernel is untouched.
    assert_eq!(mem.byte(0x100_1fff), text_byte(0x100_1fff));
    assert_eq!(mem.byte(0x100_3000), 0);
}

#[test]
fn the_initrd_is_written_where_planned_with_its_last_page_zero_filled() {
    let initrd: Vec<u8> = (0..0x1_0001u32).map(|i| (i % 251) as u8 + 1).collect();
    let cfg = PvBuildConfig {
        ramdisk_len: Some(initrd.len() as u64),
        ..config(NR_PAGES)
    };
    let (p, mem) = written(&linux_notes(), &cfg, Some(&initrd));
    let gpa = p.ramdisk_pfn().unwrap() * 4096;
    assert_eq!(mem.bytes(gpa, initrd.len()), initrd);
    let tail = mem.bytes(gpa + initrd.len() as u64, 0xfff);
    assert!(tail.iter().all(|&b| b == 0));
}

#[test]
fn writing_with_another_image_or_initrd_is_an_error() {
    let image = image(&linux_notes());
    let cfg = PvBuildConfig {
        ramdisk_len: Some(0x2000),
        ..config(NR_PAGES)
    };
    let p = plan(&image, &cfg).unwrap();
    let mut mem = Mem::new(NR_PAGES);
    let err = p.write(&image[..0x100], Some(&[0; 0x2000]), &mut mem);
    assert_eq!(err, Err(WriteError::ImageMismatch { index: 0 }));
    let err = p.write(&image, Some(&[0; 0x1000]), &mut mem).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the initrd is 4096 bytes long, planned for 8192"
    );
    let err = p.write(&image, None, &mut mem).unwrap_err();
    assert_eq!(err.to_string(), "no initrd given, planned for 8192 bytes");
}

#[test]
fn a_refused_guest_write_says_what_was_being_written() {
    let image = image(&linux_notes());
    let p = plan(&image, &config(NR_PAGES)).unwrap();
    // Memory that ends inside the p2m list.
    let mut mem = Mem::new(0x1010);
    let err = p.write(&image, None, &mut mem).unwrap_err();
    assert_eq!(
        err,
        WriteError::Guest {
            what: "the p2m list",
            gpa: 0x1010 * 4096,
            error: "outside RAM"
        }
    );
    assert_eq!(
        err.to_string(),
        "writing the p2m list at 0x1010000: outside RAM"
    );
}

#[test]
fn a_linux_sized_write_takes_few_calls() {
    // Pages and segments are written whole: the writer sees a call per
    // segment or page, not per byte.
    let (p, mem) = written(&linux_notes(), &config(NR_PAGES), None);
    let pages = p.p2m_pfns().end - p.p2m_pfns().start + p.nr_pt_frames() + 4;
    assert!(
        (mem.writes as u64) < 2 * pages + 20,
        "{} writes",
        mem.writes
    );
}
