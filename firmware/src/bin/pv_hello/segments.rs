//! Segments (`pv-abi.md` 3.3-3.7; Xen's `pv/descriptor-tables.c`
//! `pv_set_gdt`, `do_update_descriptor`, `check_descriptor`, and
//! `pv/misc-hypercalls.c do_set_segment_base`).

use firmware::pv::abi::{segbase, uvmf};
use firmware::pv::hypercall::{set_gdt, set_segment_base, update_descriptor, update_va_mapping};
use firmware::pv::{mm, provoke};
use firmware::report;
use firmware::xen::errno::EINVAL;

use crate::paging::ro;

/// A flat data segment, DPL 3, accessed.
pub const DATA_DPL3: u64 = 0x00cf_f300_0000_ffff;
/// The same with DPL 0.
pub const DATA_DPL0: u64 = 0x00cf_9300_0000_ffff;
/// A 64-bit code segment, DPL 3.
pub const CODE64_DPL3: u64 = 0x00af_fb00_0000_ffff;

pub fn run() {
    let (Some(gdt), Some(buf)) = (mm::take(), mm::take()) else {
        report::check("segments: two pool pages", false);
        return;
    };
    gdt.write(8, DATA_DPL3);
    gdt.write(16, CODE64_DPL3);
    // A frame mapped writable cannot become a descriptor table
    // (`get_page_and_type(..., PGT_seg_desc_page)` fails).
    report::check_eq(
        "set_gdt of a frame still mapped writable: -EINVAL",
        set_gdt(&[gdt.mfn], 16),
        -EINVAL,
    );
    report::check_eq(
        "update_va_mapping: the GDT frame read-only",
        update_va_mapping(gdt.va, ro(&gdt), uvmf::INVLPG),
        0,
    );
    report::check_eq("set_gdt(one frame, 16 entries)", set_gdt(&[gdt.mfn], 16), 0);
    report::check_eq(
        "mov %ax, %ds with selector 0x0b of the new GDT",
        provoke::load_ds(0x0b).ok(),
        Some(0x0b),
    );
    // check_descriptor raises a DPL below 3 to 3 for a 64-bit guest.
    report::check_eq(
        "update_descriptor(entry 3, a DPL 0 data descriptor)",
        update_descriptor(gdt.maddr(24), DATA_DPL0),
        0,
    );
    report::check_eq(
        "update_descriptor: the entry holds it with DPL 3",
        gdt.read(24),
        DATA_DPL3,
    );
    report::check_eq(
        "mov %ax, %ds with the updated entry (selector 0x1b)",
        provoke::load_ds(0x1b).ok(),
        Some(0x1b),
    );

    buf.write(0, 0x6673_6261_7365_2121);
    buf.write(8, 0x0123_4567_89ab_cdef);
    report::check_eq(
        "set_segment_base(SEGBASE_FS, a buffer)",
        set_segment_base(segbase::FS, buf.va),
        0,
    );
    report::check_eq(
        "%fs:0 and %fs:8 read the buffer",
        (provoke::read_fs(0).ok(), provoke::read_fs(8).ok()),
        (Some(0x6673_6261_7365_2121), Some(0x0123_4567_89ab_cdef)),
    );
    report::check_eq(
        "set_segment_base(SEGBASE_FS, 0)",
        set_segment_base(segbase::FS, 0),
        0,
    );

    // The user GS selector loads GS from the GDT (its base becomes the
    // user's) and leaves the kernel's GS base, the active one, alone; a
    // selector that cannot be loaded gives the null selector.
    report::check_eq(
        "set_segment_base(SEGBASE_GS_KERNEL, a buffer)",
        set_segment_base(segbase::GS_KERNEL, buf.va),
        0,
    );
    for (call, what, sel, want) in [
        (
            "set_segment_base(SEGBASE_GS_USER_SEL, 0x0b)",
            "%gs holds 0x0b, %gs:8 still reads the buffer",
            0x0b,
            0x0b,
        ),
        (
            "set_segment_base(SEGBASE_GS_USER_SEL, 0)",
            "%gs null, %gs:8 still reads the buffer",
            0,
            0,
        ),
        (
            "set_segment_base(SEGBASE_GS_USER_SEL, 0x1b)",
            "%gs holds 0x1b, %gs:8 still reads the buffer",
            0x1b,
            0x1b,
        ),
        (
            "set_segment_base(SEGBASE_GS_USER_SEL, 0x83, past the GDT's 16 entries)",
            "%gs null instead, %gs:8 still reads the buffer",
            0x83,
            0,
        ),
    ] {
        report::check_eq(call, set_segment_base(segbase::GS_USER_SEL, sel), 0);
        report::check_eq(
            what,
            (provoke::gs_selector(), provoke::read_gs(8).ok()),
            (want, Some(0x0123_4567_89ab_cdef)),
        );
    }
    report::check_eq(
        "set_segment_base(SEGBASE_GS_KERNEL, 0)",
        set_segment_base(segbase::GS_KERNEL, 0),
        0,
    );
}
