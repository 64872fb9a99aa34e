use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use vmm_glue::xen::event_channel::DOMID_SELF;
use vmm_glue::xen::grant_table::{gntcopy, gntst, gtf, GnttabCopy, GnttabCopyPtr, GrantEntryV1};

use super::copy::{plan_copy, CopyEnd, CopyPlan};
use super::*;

const GRANTER: DomId = 1;
const BACKEND: DomId = 2;

/// One frame of table with `entries` at refs 0.. .
fn frames(entries: &[GrantEntryV1]) -> Vec<u8> {
    let mut b = vec![0u8; PAGE_SIZE];
    for (i, e) in entries.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&e.to_bytes());
    }
    b
}

fn grants() -> Grants {
    let mut g = Grants::new();
    g.add_domain(GRANTER, DEFAULT_MAX_FRAMES).unwrap();
    g.add_domain(BACKEND, DEFAULT_MAX_FRAMES).unwrap();
    g.table_mut(GRANTER).unwrap().setup_table(1).unwrap();
    g
}

fn rw(domid: DomId, frame: u32) -> GrantEntryV1 {
    GrantEntryV1 {
        flags: gtf::PERMIT_ACCESS,
        domid,
        frame,
    }
}

fn flags(b: &[u8], r: GrantRef) -> u16 {
    b.entry(r).unwrap().flags
}

#[test]
fn status_values_are_xens() {
    assert_eq!(GrantStatus::GeneralError.status(), -1);
    assert_eq!(GrantStatus::BadDomain.status(), -2);
    assert_eq!(GrantStatus::BadGntref.status(), -3);
    assert_eq!(GrantStatus::BadHandle.status(), -4);
    assert_eq!(GrantStatus::PermissionDenied.status(), -8);
    assert_eq!(GrantStatus::BadPage.status(), -9);
    assert_eq!(GrantStatus::BadCopyArg.status(), -10);
    assert_eq!(GrantStatus::NoSpace.status(), gntst::NO_SPACE);
    assert_eq!(ENTRIES_PER_FRAME, 512);
}

#[test]
fn query_size_reports_frames_and_limit() {
    let g = grants();
    assert_eq!(
        g.query_size(GRANTER, DOMID_SELF),
        Ok(QuerySize {
            nr_frames: 1,
            max_nr_frames: 4
        })
    );
    assert_eq!(g.query_size(BACKEND, BACKEND).map(|q| q.nr_frames), Ok(0));
    assert_eq!(g.query_size(BACKEND, 9), Err(GrantStatus::BadDomain));
    assert_eq!(
        g.query_size(BACKEND, GRANTER),
        Err(GrantStatus::PermissionDenied)
    );
}

#[test]
fn setup_table_grows_never_shrinks_and_respects_the_limit() {
    let mut t = GrantTable::new(4);
    assert_eq!(t.setup_table(2), Ok(()));
    assert_eq!(t.nr_frames(), 2);
    assert_eq!(t.setup_table(1), Ok(()));
    assert_eq!(t.nr_frames(), 2);
    assert_eq!(t.setup_table(5), Err(GrantStatus::GeneralError));
    assert_eq!(t.setup_table(4), Ok(()));
    assert_eq!(t.nr_entries(), 4 * 512);
}

#[test]
fn add_to_physmap_frame_index_grows_table() {
    let mut t = GrantTable::new(4);
    assert_eq!(t.map_frame(2), Ok(()));
    assert_eq!(t.nr_frames(), 3);
    assert_eq!(t.map_frame(0), Ok(()));
    assert_eq!(t.nr_frames(), 3);
    assert_eq!(t.map_frame(4), Err(Errno::Inval));
}

#[test]
fn set_version_one_ok_two_enosys_other_einval() {
    let mut t = GrantTable::new(4);
    assert_eq!(t.set_version(1), Ok(1));
    assert_eq!(t.set_version(2), Err(Errno::NoSys));
    assert_eq!(t.set_version(0), Err(Errno::Inval));
    assert_eq!(t.set_version(3), Err(Errno::Inval));
    assert_eq!(t.version(), 1);
}

#[test]
fn add_domain_twice_is_eexist() {
    let mut g = grants();
    assert_eq!(g.add_domain(GRANTER, 4), Err(Errno::Exist));
}

#[test]
fn writable_map_sets_reading_and_writing_until_unmap() {
    let mut g = grants();
    let mut f = frames(&[GrantEntryV1::default(), rw(BACKEND, 0x1234)]);
    let m = g.map(BACKEND, GRANTER, &mut f[..], 1, false).unwrap();
    assert_eq!((m.frame, m.readonly), (0x1234, false));
    assert_eq!(
        flags(&f, 1),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    assert_eq!(g.unmap(BACKEND, m.handle, &mut f[..]), Ok((GRANTER, 1)));
    assert_eq!(flags(&f, 1), gtf::PERMIT_ACCESS);
    assert_eq!(g.mappings(), 0);
}

#[test]
fn readonly_map_of_readonly_grant_sets_reading_only() {
    let mut g = grants();
    let mut f = frames(&[GrantEntryV1 {
        flags: gtf::PERMIT_ACCESS | gtf::READONLY,
        domid: BACKEND,
        frame: 7,
    }]);
    let m = g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    assert_eq!(
        flags(&f, 0),
        gtf::PERMIT_ACCESS | gtf::READONLY | gtf::READING
    );
    g.unmap(BACKEND, m.handle, &mut f[..]).unwrap();
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS | gtf::READONLY);
}

#[test]
fn writable_map_of_readonly_grant_is_general_error() {
    let mut g = grants();
    let mut f = frames(&[GrantEntryV1 {
        flags: gtf::PERMIT_ACCESS | gtf::READONLY,
        domid: BACKEND,
        frame: 7,
    }]);
    assert_eq!(
        g.map(BACKEND, GRANTER, &mut f[..], 0, false),
        Err(GrantStatus::GeneralError)
    );
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS | gtf::READONLY);
}

#[test]
fn map_of_grant_to_another_domain_is_general_error() {
    let mut g = grants();
    let mut f = frames(&[rw(3, 7)]);
    assert_eq!(
        g.map(BACKEND, GRANTER, &mut f[..], 0, true),
        Err(GrantStatus::GeneralError)
    );
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS);
}

#[test]
fn map_of_invalid_or_transfer_entry_is_general_error() {
    let mut g = grants();
    let mut f = frames(&[
        GrantEntryV1 {
            flags: gtf::INVALID,
            domid: BACKEND,
            frame: 7,
        },
        GrantEntryV1 {
            flags: gtf::ACCEPT_TRANSFER,
            domid: BACKEND,
            frame: 7,
        },
    ]);
    for r in 0..2 {
        assert_eq!(
            g.map(BACKEND, GRANTER, &mut f[..], r, true),
            Err(GrantStatus::GeneralError)
        );
    }
}

#[test]
fn map_beyond_the_granters_entries_is_bad_gntref() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    assert_eq!(
        g.map(BACKEND, GRANTER, &mut f[..], 512, true),
        Err(GrantStatus::BadGntref)
    );
    // The table says two frames but only one is backed: still refused.
    g.table_mut(GRANTER).unwrap().setup_table(2).unwrap();
    assert_eq!(
        g.map(BACKEND, GRANTER, &mut f[..], 600, true),
        Err(GrantStatus::BadGntref)
    );
    // A domain with no frames set up grants nothing.
    assert_eq!(
        g.map(GRANTER, BACKEND, &mut f[..], 0, true),
        Err(GrantStatus::BadGntref)
    );
}

#[test]
fn map_from_unknown_domain_is_bad_domain() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    assert_eq!(
        g.map(BACKEND, 9, &mut f[..], 0, true),
        Err(GrantStatus::BadDomain)
    );
}

#[test]
fn writing_clears_with_last_writer_and_reading_with_last_mapping() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    let r1 = g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS | gtf::READING);
    let w1 = g.map(BACKEND, GRANTER, &mut f[..], 0, false).unwrap();
    let w2 = g.map(BACKEND, GRANTER, &mut f[..], 0, false).unwrap();
    let all = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;
    assert_eq!(flags(&f, 0), all);
    g.unmap(BACKEND, w1.handle, &mut f[..]).unwrap();
    assert_eq!(flags(&f, 0), all);
    g.unmap(BACKEND, w2.handle, &mut f[..]).unwrap();
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS | gtf::READING);
    assert!(g.is_mapped(GRANTER, 0));
    g.unmap(BACKEND, r1.handle, &mut f[..]).unwrap();
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS);
    assert!(!g.is_mapped(GRANTER, 0));
}

#[test]
fn pinned_grant_keeps_its_frame_and_refuses_other_mappers() {
    let mut g = grants();
    g.add_domain(3, 4).unwrap();
    let mut f = frames(&[rw(BACKEND, 7)]);
    let a = g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    // The granter rewrites the entry while it is mapped (a guest bug).
    f[4..8].copy_from_slice(&99u32.to_le_bytes());
    let b = g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    assert_eq!((a.frame, b.frame), (7, 7));
    assert_ne!(a.handle, b.handle);
    assert_eq!(
        g.map(3, GRANTER, &mut f[..], 0, true),
        Err(GrantStatus::GeneralError)
    );
}

#[test]
fn unmap_of_unknown_or_foreign_handle_is_bad_handle() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    assert_eq!(g.unmap(BACKEND, 5, &mut f[..]), Err(GrantStatus::BadHandle));
    let m = g.map(BACKEND, GRANTER, &mut f[..], 0, false).unwrap();
    assert_eq!(
        g.unmap(GRANTER, m.handle, &mut f[..]),
        Err(GrantStatus::BadHandle)
    );
    g.unmap(BACKEND, m.handle, &mut f[..]).unwrap();
    assert_eq!(
        g.unmap(BACKEND, m.handle, &mut f[..]),
        Err(GrantStatus::BadHandle)
    );
}

#[test]
fn handles_run_out_with_no_space() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    for _ in 0..MAX_MAPPINGS {
        g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    }
    assert_eq!(
        g.map(BACKEND, GRANTER, &mut f[..], 0, true),
        Err(GrantStatus::NoSpace)
    );
}

#[test]
fn remove_domain_waits_for_its_grants_to_be_unmapped() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    let m = g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    assert_eq!(g.remove_domain(GRANTER), Err(Errno::Busy));
    let held: Vec<_> = g.mappings_of(BACKEND).collect();
    assert_eq!(held, vec![(m.handle, GRANTER, 0)]);
    g.unmap(BACKEND, m.handle, &mut f[..]).unwrap();
    assert_eq!(g.remove_domain(GRANTER), Ok(()));
    assert_eq!(g.remove_domain(GRANTER), Err(Errno::Srch));
}

// ---- GNTTABOP_copy ----

fn copy_op(src: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy {
        source: src,
        dest,
        len,
        flags,
        status: 0,
    }
}

fn ptr(u: u64, domid: DomId, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u, domid, offset }
}

fn known(d: DomId) -> bool {
    d == GRANTER || d == BACKEND
}

#[test]
fn copy_from_grant_to_own_frame_is_planned() {
    let op = copy_op(
        ptr(5, GRANTER, 100),
        ptr(0x42, DOMID_SELF, 0),
        3996,
        gntcopy::SOURCE_GREF,
    );
    assert_eq!(
        plan_copy(BACKEND, &op, known),
        Ok(CopyPlan {
            source: CopyEnd::Gref {
                domid: GRANTER,
                gref: 5,
                offset: 100
            },
            dest: CopyEnd::Gmfn {
                gmfn: 0x42,
                offset: 0
            },
            len: 3996
        })
    );
}

#[test]
fn copy_bounds_are_offset_plus_len_within_a_page() {
    let both = gntcopy::SOURCE_GREF | gntcopy::DEST_GREF;
    let ok = copy_op(ptr(1, GRANTER, 0), ptr(2, GRANTER, 0), 4096, both);
    assert!(plan_copy(BACKEND, &ok, known).is_ok());
    let src_over = copy_op(ptr(1, GRANTER, 1), ptr(2, GRANTER, 0), 4096, both);
    assert_eq!(
        plan_copy(BACKEND, &src_over, known),
        Err(GrantStatus::BadCopyArg)
    );
    let dst_over = copy_op(ptr(1, GRANTER, 0), ptr(2, GRANTER, 4000), 97, both);
    assert_eq!(
        plan_copy(BACKEND, &dst_over, known),
        Err(GrantStatus::BadCopyArg)
    );
    let far = copy_op(
        ptr(1, GRANTER, u16::MAX),
        ptr(2, GRANTER, 0),
        u16::MAX,
        both,
    );
    assert_eq!(
        plan_copy(BACKEND, &far, known),
        Err(GrantStatus::BadCopyArg)
    );
}

#[test]
fn copy_by_frame_of_another_domain_is_permission_denied() {
    let op = copy_op(ptr(1, GRANTER, 0), ptr(2, DOMID_SELF, 0), 8, 0);
    assert_eq!(
        plan_copy(BACKEND, &op, known),
        Err(GrantStatus::PermissionDenied)
    );
    let op = copy_op(ptr(1, DOMID_SELF, 0), ptr(2, GRANTER, 0), 8, 0);
    assert_eq!(
        plan_copy(BACKEND, &op, known),
        Err(GrantStatus::PermissionDenied)
    );
}

#[test]
fn copy_from_grant_of_unknown_domain_is_bad_domain() {
    let op = copy_op(ptr(1, 9, 0), ptr(2, DOMID_SELF, 0), 8, gntcopy::SOURCE_GREF);
    assert_eq!(plan_copy(BACKEND, &op, known), Err(GrantStatus::BadDomain));
}

#[test]
fn copy_grant_of_self_resolves_to_caller() {
    let op = copy_op(
        ptr(1, DOMID_SELF, 0),
        ptr(2, DOMID_SELF, 0),
        8,
        gntcopy::SOURCE_GREF,
    );
    assert_eq!(
        plan_copy(BACKEND, &op, known).map(|p| p.source),
        Ok(CopyEnd::Gref {
            domid: BACKEND,
            gref: 1,
            offset: 0
        })
    );
}

#[test]
fn copy_frame_applies_the_map_checks() {
    let g = grants();
    let ro = GrantEntryV1 {
        flags: gtf::PERMIT_ACCESS | gtf::READONLY,
        domid: BACKEND,
        frame: 8,
    };
    let f = frames(&[rw(BACKEND, 7), ro, rw(3, 9)]);
    assert_eq!(g.copy_frame(BACKEND, GRANTER, &f[..], 0, true), Ok(7));
    assert_eq!(g.copy_frame(BACKEND, GRANTER, &f[..], 1, false), Ok(8));
    assert_eq!(
        g.copy_frame(BACKEND, GRANTER, &f[..], 1, true),
        Err(GrantStatus::GeneralError)
    );
    assert_eq!(
        g.copy_frame(BACKEND, GRANTER, &f[..], 2, false),
        Err(GrantStatus::GeneralError)
    );
    assert_eq!(
        g.copy_frame(BACKEND, GRANTER, &f[..], 3, false),
        Err(GrantStatus::GeneralError)
    );
    assert_eq!(
        g.copy_frame(BACKEND, GRANTER, &f[..], 512, false),
        Err(GrantStatus::BadGntref)
    );
    assert_eq!(
        g.copy_frame(BACKEND, 9, &f[..], 0, false),
        Err(GrantStatus::BadDomain)
    );
    // The entry is not changed by a copy.
    assert_eq!(flags(&f, 0), gtf::PERMIT_ACCESS);
}

#[test]
fn copy_frame_of_mapped_grant_uses_the_pinned_frame() {
    let mut g = grants();
    let mut f = frames(&[rw(BACKEND, 7)]);
    g.map(BACKEND, GRANTER, &mut f[..], 0, true).unwrap();
    f[4..8].copy_from_slice(&99u32.to_le_bytes());
    assert_eq!(g.copy_frame(BACKEND, GRANTER, &f[..], 0, false), Ok(7));
}

// ---- Properties ----

proptest! {
    #[test]
    fn random_entries_never_map_without_permit_access_for_the_mapper(
        flags in any::<u16>(),
        domid in 0u16..4,
        frame in any::<u32>(),
        gref in 0u32..600,
        readonly in any::<bool>(),
    ) {
        let mut g = grants();
        let e = GrantEntryV1 { flags, domid, frame };
        let mut f = frames(&vec![e; 512]);
        let r = g.map(BACKEND, GRANTER, &mut f[..], gref, readonly);
        if let Ok(m) = r {
            prop_assert!(gref < 512);
            prop_assert_eq!(flags & gtf::TYPE_MASK, gtf::PERMIT_ACCESS);
            prop_assert_eq!(domid, BACKEND);
            prop_assert!(readonly || flags & gtf::READONLY == 0);
            prop_assert_eq!(m.frame, frame);
            prop_assert!(f[..].entry(gref).unwrap().flags & gtf::READING != 0);
        } else {
            // A refused map leaves the entry alone.
            prop_assert_eq!(f[..].entry(gref.min(511)).unwrap().flags, flags);
        }
    }

    #[test]
    fn random_map_unmap_sequences_leave_flags_matching_live_mappings(
        ops in proptest::collection::vec((any::<bool>(), 0u32..4, any::<bool>(), 0usize..8), 0..80)
    ) {
        let mut g = grants();
        let mut f = frames(&[rw(BACKEND, 1), rw(BACKEND, 2), rw(BACKEND, 3), rw(BACKEND, 4)]);
        let mut live: Vec<(u32, GrantRef, bool)> = Vec::new();
        for (map, gref, readonly, pick) in ops {
            if map {
                if let Ok(m) = g.map(BACKEND, GRANTER, &mut f[..], gref, readonly) {
                    live.push((m.handle, gref, readonly));
                }
            } else if !live.is_empty() {
                let (h, _, _) = live.remove(pick % live.len());
                prop_assert!(g.unmap(BACKEND, h, &mut f[..]).is_ok());
            }
            for r in 0..4 {
                let fl = f[..].entry(r).unwrap().flags;
                let any = live.iter().any(|&(_, g, _)| g == r);
                let w = live.iter().any(|&(_, g, ro)| g == r && !ro);
                prop_assert_eq!(fl & gtf::READING != 0, any);
                prop_assert_eq!(fl & gtf::WRITING != 0, w);
            }
        }
    }

    #[test]
    fn random_copies_never_plan_out_of_page(
        so in any::<u16>(), doff in any::<u16>(), len in any::<u16>(), flags in 0u16..4,
        sd in prop_oneof![Just(DOMID_SELF), 0u16..4], dd in prop_oneof![Just(DOMID_SELF), 0u16..4],
    ) {
        let op = copy_op(ptr(1, sd, so), ptr(2, dd, doff), len, flags);
        if let Ok(p) = plan_copy(BACKEND, &op, known) {
            for e in [p.source, p.dest] {
                let off = match e {
                    CopyEnd::Gref { offset, .. } | CopyEnd::Gmfn { offset, .. } => offset,
                };
                prop_assert!(usize::from(off) + usize::from(p.len) <= PAGE_SIZE);
            }
        }
    }
}
