//! Grant tables v1 (`grant_table.h`) as Xen answers an HVM/PVH guest:
//! query_size, set_version/get_version, the table frame mapped with
//! `XENMAPSPACE_grant_table` and reported back by setup_table, and
//! GNTTABOP_copy between a page granted to ourselves and plain frames,
//! with the per-op status codes Xen gives for bad references, read-only
//! and unusable entries, foreign frames, page-crossing copies and missing
//! domains.
//!
//! Xen answers `set_version(2)` with -ENOSYS only when v2 is disabled for
//! the domain (`max_grant_version = 1` in its xl.cfg, or
//! `gnttab=max-ver:1` on Xen's command line); its default allows v2.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::xen::grant::{self, copy_flags, gtf, st};
use firmware::xen::layout::{GnttabCopy, GnttabCopyPtr, DOMID_SELF};
use firmware::xen::page::{Page, PageBuf};
use firmware::xen::{self, errno::*};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// A domid in the valid range that no domain has in these tests.
const NO_SUCH_DOMAIN: u16 = 0x7000;
/// First grant reference past the ones reserved for the toolstack.
const GREF_RW: u32 = 10;
const GREF_RO: u32 = 11;
const GREF_NOT_LIVE: u32 = 12;
const GREF_OTHER_DOMAIN: u32 = 13;

static GRANTED: PageBuf = PageBuf::new();
static READONLY: PageBuf = PageBuf::new();
static PLAIN: PageBuf = PageBuf::new();

fn main(_start_info: Gpa) -> ! {
    println!("abi_grant: grant tables v1, GNTTABOP_copy");
    if !hypervisor::is_xen() {
        report::skip("grant tables", "no Xen CPUID leaves");
        report::finish();
    }
    let me = xen::domid().unwrap_or(0);
    let (rc, q) = grant::query_size(DOMID_SELF);
    println!("abi_grant: query_size: rc {rc}, {q:?}");
    report::check_eq("query_size(self) status", (rc, q.status), (0, st::OKAY));
    report::check(
        "query_size: a new table has 1 frame (INITIAL_NR_GRANT_FRAMES), max >= 1",
        q.nr_frames == 1 && q.max_nr_frames >= 1,
    );
    report::check_eq(
        "query_size of a missing domain is GNTST_bad_domain",
        grant::query_size(NO_SUCH_DOMAIN).1.status,
        st::BAD_DOMAIN,
    );
    versions();
    if !table(q.max_nr_frames) {
        report::finish();
    }
    copies(me);
    errors();
    report::finish()
}

fn versions() {
    report::check_eq("set_version(1)", grant::set_version(1), (0, 1));
    report::check_eq(
        "set_version(2) with v2 disabled is -ENOSYS",
        grant::set_version(2).0,
        -ENOSYS,
    );
    report::check_eq(
        "set_version(3) is -EINVAL",
        grant::set_version(3).0,
        -EINVAL,
    );
    report::check_eq(
        "set_version(0) is -EINVAL",
        grant::set_version(0).0,
        -EINVAL,
    );
    report::check_eq(
        "get_version(self) is 1",
        grant::get_version(DOMID_SELF),
        Ok(1),
    );
    report::check_eq(
        "get_version of a missing domain is -ESRCH",
        grant::get_version(NO_SUCH_DOMAIN),
        Err(-ESRCH),
    );
}

fn table(max_frames: u32) -> bool {
    if !report::check_eq("add_to_physmap(grant_table, 0)", grant::map_frame(0), 0) {
        return false;
    }
    let gfn = grant::frame_page(0).map_or(0, Page::gfn);
    let mut frames = [0u64; 1];
    let (rc, status) = grant::setup_table(DOMID_SELF, &mut frames);
    report::check_eq("setup_table(self, 1)", (rc, status), (0, st::OKAY));
    report::check_eq("setup_table reports the frame mapped", frames[0], gfn);

    let mut too_many = [0u64; 64];
    let n = (max_frames as usize + 1).min(too_many.len());
    let (rc, status) = grant::setup_table(DOMID_SELF, &mut too_many[..n]);
    report::check_eq(
        "setup_table past max_nr_frames is GNTST_general_error",
        (rc, status),
        (0, st::GENERAL_ERROR),
    );
    let (rc, status) = grant::setup_table(NO_SUCH_DOMAIN, &mut frames);
    report::check_eq(
        "setup_table of a missing domain is GNTST_bad_domain",
        (rc, status),
        (0, st::BAD_DOMAIN),
    );
    let mut two = [
        firmware::xen::layout::GnttabSetupTable::default(),
        firmware::xen::layout::GnttabSetupTable::default(),
    ];
    report::check_eq(
        "setup_table with count 2 is -EINVAL",
        grant::gnttab_op(grant::cmd::SETUP_TABLE, &mut two),
        -EINVAL,
    );
    let far = u64::from(max_frames) + 8;
    let rc = xen::add_to_physmap(xen::mem::SPACE_GRANT_TABLE, far, gfn);
    report::check_eq(
        "add_to_physmap(grant_table, past the max) is -EINVAL",
        rc,
        -EINVAL,
    );
    true
}

fn ptr(u: u64, domid: u16, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u, domid, offset }
}

fn one(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> (i64, i16) {
    let mut op = [GnttabCopy {
        source,
        dest,
        len,
        flags,
        status: 99,
    }];
    let rc = grant::copy(&mut op);
    (rc, op[0].status)
}

fn copies(me: u16) {
    let granted = GRANTED.page();
    let plain = PLAIN.page();
    for i in 0..4096 {
        granted
            .u8(i)
            .store((i % 251) as u8, core::sync::atomic::Ordering::Relaxed);
    }
    plain.fill(0);
    grant::grant(GREF_RW, me, granted.gfn(), false);
    grant::grant(GREF_RO, me, READONLY.page().gfn(), true);

    let r = one(
        ptr(u64::from(GREF_RW), me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        4096,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq("copy from a self-granted gref to a frame", r, (0, st::OKAY));
    let mut a = [0u8; 4096];
    let mut b = [0u8; 4096];
    granted.read(0, &mut a);
    plain.read(0, &mut b);
    report::check("the frame holds the granted page's bytes", a == b);

    plain.write(100, b"written back through a grant");
    let r = one(
        ptr(plain.gfn(), DOMID_SELF, 100),
        ptr(u64::from(GREF_RW), DOMID_SELF, 2000),
        28,
        copy_flags::DEST_GREF,
    );
    report::check_eq(
        "copy from a frame into the gref (DOMID_SELF, offsets)",
        r,
        (0, st::OKAY),
    );
    let mut back = [0u8; 28];
    granted.read(2000, &mut back);
    report::check_eq(
        "the granted page got the bytes at the offset",
        &back,
        b"written back through a grant",
    );
    report::check_eq(
        "the entry's reading/writing flags are clear after the copies",
        grant::entry(GREF_RW).map(|e| e.0 & (gtf::READING | gtf::WRITING)),
        Some(0),
    );

    let r = one(
        ptr(u64::from(GREF_RO), me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq("a read-only grant is a fine copy source", r, (0, st::OKAY));
    let r = one(
        ptr(plain.gfn(), DOMID_SELF, 0),
        ptr(u64::from(GREF_RO), me, 0),
        16,
        copy_flags::DEST_GREF,
    );
    report::check_eq(
        "a read-only grant as copy destination is GNTST_general_error",
        r,
        (0, st::GENERAL_ERROR),
    );

    grant::set_entry(GREF_NOT_LIVE, 0, me, granted.gfn() as u32);
    let r = one(
        ptr(u64::from(GREF_NOT_LIVE), me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "an entry without GTF_permit_access is GNTST_general_error",
        r,
        (0, st::GENERAL_ERROR),
    );
    grant::grant(GREF_OTHER_DOMAIN, me.wrapping_add(1), granted.gfn(), false);
    let r = one(
        ptr(u64::from(GREF_OTHER_DOMAIN), me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "an entry granted to another domain is GNTST_general_error",
        r,
        (0, st::GENERAL_ERROR),
    );

    let r = one(
        ptr(0x7fff_ffff, me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "a gref past the table is GNTST_bad_gntref",
        r,
        (0, st::BAD_GNTREF),
    );
    let r = one(
        ptr(u64::from(GREF_RW), me, 4000),
        ptr(plain.gfn(), DOMID_SELF, 0),
        200,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "a copy crossing the page end is GNTST_bad_copy_arg",
        r,
        (0, st::BAD_COPY_ARG),
    );
    let r = one(
        ptr(granted.gfn(), DOMID_SELF, 0),
        ptr(plain.gfn(), me, 0),
        16,
        0,
    );
    report::check_eq(
        "a frame named with a numeric domid (not DOMID_SELF) is GNTST_permission_denied",
        r,
        (0, st::PERMISSION_DENIED),
    );
    let r = one(
        ptr(u64::from(GREF_RW), NO_SUCH_DOMAIN, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "a gref of a missing domain is GNTST_bad_domain",
        r,
        (0, st::BAD_DOMAIN),
    );
    let r = one(
        ptr(u64::from(GREF_RW), me, 0),
        ptr(plain.gfn(), DOMID_SELF, 0),
        16,
        copy_flags::SOURCE_GREF,
    );
    report::check_eq(
        "a good copy still works after the failures",
        r,
        (0, st::OKAY),
    );
    let good = GnttabCopy {
        source: ptr(u64::from(GREF_RW), me, 0),
        dest: ptr(plain.gfn(), DOMID_SELF, 0),
        len: 8,
        flags: copy_flags::SOURCE_GREF,
        status: 99,
    };
    let mut batch = [
        good,
        GnttabCopy {
            source: ptr(0x7fff_ffff, me, 0),
            ..good
        },
        GnttabCopy { len: 0, ..good },
    ];
    let rc = grant::copy(&mut batch);
    report::check_eq(
        "a batch of three copies: each op gets its own status",
        (rc, batch.map(|op| op.status)),
        (0, [st::OKAY, st::BAD_GNTREF, st::OKAY]),
    );
}

fn errors() {
    let mut none: [GnttabCopy; 0] = [];
    report::check_eq("copy with count 0", grant::copy(&mut none), 0);
    report::check_eq(
        "copy with an unmapped op array is -EFAULT",
        xen::grant_op_unmapped(grant::cmd::COPY, 1),
        -EFAULT,
    );
    report::check_eq(
        "query_size with an unmapped argument is -EFAULT",
        xen::grant_op_unmapped(grant::cmd::QUERY_SIZE, 1),
        -EFAULT,
    );
    report::check_eq(
        "unknown GNTTABOP (99) is -ENOSYS",
        xen::grant_op_unmapped(99, 1),
        -ENOSYS,
    );
    let mut op = [firmware::xen::layout::GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        status: 99,
        frame_list: xen::UNMAPPED,
    }];
    let rc = grant::gnttab_op(grant::cmd::SETUP_TABLE, &mut op);
    report::check_eq(
        "setup_table with an unmapped frame list is GNTST_bad_virt_addr",
        (rc, op[0].status),
        (0, st::BAD_VIRT_ADDR),
    );
}
