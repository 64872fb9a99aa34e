//! Each decoder against byte layouts written out by hand from Xen's
//! headers, in both ABIs, and encode/decode round trips.

use super::vcpu_ctx::{self, Limits};
use super::*;
use crate::evtchn::Errno;

/// Bytes of `n` zeros with little-endian `fields` (offset, value, width)
/// written in.
fn layout(n: usize, fields: &[(usize, u64, usize)]) -> alloc::vec::Vec<u8> {
    let mut b = alloc::vec![0u8; n];
    for &(off, v, w) in fields {
        b[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }
    b
}

/// Decoding `bytes` gives `want`, encoding `want` over `bytes` leaves them
/// unchanged, a byte fewer is [`Short`], and a round trip from zeroed
/// bytes gives `want` back.
fn check<T: XenArg>(bytes: &[u8], abi: Abi, want: T) {
    assert_eq!(T::size(abi), bytes.len());
    assert_eq!(T::decode(bytes, abi), Ok(want));
    let mut out = bytes.to_vec();
    want.encode(&mut out, abi).unwrap();
    assert_eq!(out, bytes);
    let n = bytes.len();
    assert_eq!(
        T::decode(&bytes[..n - 1], abi),
        Err(Short {
            need: n,
            got: n - 1
        })
    );
    assert!(want.encode(&mut out[..n - 1], abi).is_err());
    let mut zero = alloc::vec![0u8; n];
    want.encode(&mut zero, abi).unwrap();
    assert_eq!(T::decode(&zero, abi), Ok(want));
}

#[test]
fn add_to_physmap_x64_has_8_byte_idx_and_gpfn_at_8_and_16() {
    let b = layout(
        24,
        &[
            (0, 0x7ff0, 2),
            (2, 3, 2),
            (4, 1, 4),
            (8, 0x1_0000_0002, 8),
            (16, 0xabcd_ef01_2345, 8),
        ],
    );
    let want = AddToPhysmap {
        domid: 0x7ff0,
        size: 3,
        space: 1,
        idx: 0x1_0000_0002,
        gpfn: 0xabcd_ef01_2345,
    };
    check(&b, Abi::X64, want);
}

#[test]
fn add_to_physmap_compat_has_4_byte_idx_and_gpfn_at_8_and_12() {
    let b = layout(
        16,
        &[
            (0, 5, 2),
            (2, 1, 2),
            (4, 0, 4),
            (8, 7, 4),
            (12, 0xfeed_f00d, 4),
        ],
    );
    let want = AddToPhysmap {
        domid: 5,
        size: 1,
        space: 0,
        idx: 7,
        gpfn: 0xfeed_f00d,
    };
    check(&b, Abi::Compat, want);
}

#[test]
fn memory_map_handle_is_at_8_in_x64_and_at_4_in_compat() {
    let want = MemoryMap {
        nr_entries: 9,
        buffer: 0x1234_5678,
    };
    check(
        &layout(16, &[(0, 9, 4), (8, 0x1234_5678, 8)]),
        Abi::X64,
        want,
    );
    check(
        &layout(8, &[(0, 9, 4), (4, 0x1234_5678, 4)]),
        Abi::Compat,
        want,
    );
    assert_eq!(MemoryMap::OUT_SIZE, 4);
}

#[test]
fn memory_map_encode_keeps_the_x64_padding_the_guest_wrote() {
    let mut b = layout(16, &[(0, 2, 4), (4, 0xdead_beef, 4), (8, 0x1000, 8)]);
    let mut m = MemoryMap::decode(&b, Abi::X64).unwrap();
    m.nr_entries = 1;
    m.encode(&mut b, Abi::X64).unwrap();
    assert_eq!(
        b,
        layout(16, &[(0, 1, 4), (4, 0xdead_beef, 4), (8, 0x1000, 8)])
    );
}

#[test]
fn domid_arg_is_two_bytes() {
    check(
        &layout(2, &[(0, 0x7ff0, 2)]),
        Abi::X64,
        DomidArg { domid: 0x7ff0 },
    );
    check(&layout(2, &[(0, 3, 2)]), Abi::Compat, DomidArg { domid: 3 });
}

#[test]
fn hvm_param_is_the_same_16_bytes_in_both_abis() {
    let b = layout(
        16,
        &[(0, 0x7ff0, 2), (4, 17, 4), (8, 0x0200_0000_0000_00f3, 8)],
    );
    let want = HvmParam {
        domid: 0x7ff0,
        index: 17,
        value: 0x0200_0000_0000_00f3,
    };
    check(&b, Abi::X64, want);
    check(&b, Abi::Compat, want);
}

#[test]
fn evtchn_structs_have_the_same_layout_in_both_abis() {
    for abi in [Abi::X64, Abi::Compat] {
        let au = EvtchnAllocUnbound {
            dom: 0x7ff0,
            remote_dom: 2,
            port: 5,
        };
        check(&layout(8, &[(0, 0x7ff0, 2), (2, 2, 2), (4, 5, 4)]), abi, au);
        let bi = EvtchnBindInterdomain {
            remote_dom: 1,
            remote_port: 4,
            local_port: 6,
        };
        check(&layout(12, &[(0, 1, 2), (4, 4, 4), (8, 6, 4)]), abi, bi);
        let bv = EvtchnBindVirq {
            virq: 0,
            vcpu: 1,
            port: 3,
        };
        check(&layout(12, &[(4, 1, 4), (8, 3, 4)]), abi, bv);
        let bp = EvtchnBindPirq {
            pirq: 9,
            flags: 1,
            port: 2,
        };
        check(&layout(12, &[(0, 9, 4), (4, 1, 4), (8, 2, 4)]), abi, bp);
        let ipi = EvtchnBindIpi { vcpu: 2, port: 8 };
        check(&layout(8, &[(0, 2, 4), (4, 8, 4)]), abi, ipi);
        check(&layout(4, &[(0, 77, 4)]), abi, EvtchnPort { port: 77 });
        let st = EvtchnStatusQuery {
            dom: 0x7ff0,
            port: 3,
        };
        check(&layout(8, &[(0, 0x7ff0, 2), (4, 3, 4)]), abi, st);
        let bc = EvtchnBindVcpu { port: 3, vcpu: 1 };
        check(&layout(8, &[(0, 3, 4), (4, 1, 4)]), abi, bc);
        check(
            &layout(2, &[(0, 0x7ff0, 2)]),
            abi,
            EvtchnReset { dom: 0x7ff0 },
        );
    }
}

#[test]
fn evtchn_alloc_unbound_write_back_sets_only_the_port() {
    let mut b = layout(8, &[(0, 0x7ff0, 2), (2, 0, 2), (4, 0xffff_ffff, 4)]);
    let mut a = EvtchnAllocUnbound::decode(&b, Abi::X64).unwrap();
    a.port = 7;
    a.encode(&mut b, Abi::X64).unwrap();
    assert_eq!(b, layout(8, &[(0, 0x7ff0, 2), (4, 7, 4)]));
}

#[test]
fn sched_poll_x64_is_24_bytes_with_timeout_at_16() {
    let b = layout(
        24,
        &[(0, 0xffff_8000_0000_1000, 8), (8, 2, 4), (16, 1_000_000, 8)],
    );
    let want = SchedPoll {
        ports: 0xffff_8000_0000_1000,
        nr_ports: 2,
        timeout: 1_000_000,
    };
    check(&b, Abi::X64, want);
}

#[test]
fn sched_poll_compat_is_16_bytes_with_timeout_at_8() {
    let b = layout(
        16,
        &[(0, 0xc000_1000, 4), (4, 128, 4), (8, 0x1_0000_0001, 8)],
    );
    let want = SchedPoll {
        ports: 0xc000_1000,
        nr_ports: 128,
        timeout: 0x1_0000_0001,
    };
    check(&b, Abi::Compat, want);
}

#[test]
fn sched_shutdown_is_the_reason() {
    check(
        &layout(4, &[(0, 3, 4)]),
        Abi::X64,
        SchedShutdown { reason: 3 },
    );
    check(
        &layout(4, &[(0, 0, 4)]),
        Abi::Compat,
        SchedShutdown { reason: 0 },
    );
}

#[test]
fn gnttab_query_size_status_is_signed_at_12() {
    let b = layout(
        16,
        &[(0, 0x7ff0, 2), (4, 1, 4), (8, 64, 4), (12, 0xfff8, 2)],
    );
    let want = GnttabQuerySize {
        dom: 0x7ff0,
        nr_frames: 1,
        max_nr_frames: 64,
        status: -8,
    };
    check(&b, Abi::X64, want);
    check(&b, Abi::Compat, want);
}

#[test]
fn gnttab_setup_table_frame_list_is_at_16_in_x64_and_at_12_in_compat() {
    let want = GnttabSetupTable {
        dom: 0x7ff0,
        nr_frames: 4,
        status: -5,
        frame_list: 0x8000_0000,
    };
    let x64 = layout(
        24,
        &[
            (0, 0x7ff0, 2),
            (4, 4, 4),
            (8, 0xfffb, 2),
            (16, 0x8000_0000, 8),
        ],
    );
    check(&x64, Abi::X64, want);
    let compat = layout(
        16,
        &[
            (0, 0x7ff0, 2),
            (4, 4, 4),
            (8, 0xfffb, 2),
            (12, 0x8000_0000, 4),
        ],
    );
    check(&compat, Abi::Compat, want);
    assert_eq!(GnttabSetupTable::pfn_size(Abi::X64), 8);
    assert_eq!(GnttabSetupTable::pfn_size(Abi::Compat), 4);
}

#[test]
fn gnttab_set_and_get_version() {
    for abi in [Abi::X64, Abi::Compat] {
        check(
            &layout(4, &[(0, 1, 4)]),
            abi,
            GnttabSetVersion { version: 1 },
        );
        let gv = GnttabGetVersion {
            dom: 0x7ff0,
            version: 1,
        };
        check(&layout(8, &[(0, 0x7ff0, 2), (4, 1, 4)]), abi, gv);
    }
}

#[test]
fn gnttab_copy_x64_ends_are_16_bytes_and_status_at_36() {
    let b = layout(
        40,
        &[
            (0, 0x1_2345, 8),
            (8, 0x7ff0, 2),
            (10, 0x10, 2),
            (16, 7, 8),
            (24, 1, 2),
            (26, 0xff0, 2),
            (32, 16, 2),
            (34, 2, 2),
            (36, 0xfff6, 2),
        ],
    );
    let want = GnttabCopy {
        source_u: 0x1_2345,
        source_domid: 0x7ff0,
        source_offset: 0x10,
        dest_u: 7,
        dest_domid: 1,
        dest_offset: 0xff0,
        len: 16,
        flags: 2,
        status: -10,
    };
    check(&b, Abi::X64, want);
}

#[test]
fn gnttab_copy_compat_ends_are_8_bytes_and_status_at_20() {
    let b = layout(
        24,
        &[
            (0, 0x1_2345, 4),
            (4, 0x7ff0, 2),
            (6, 0x10, 2),
            (8, 7, 4),
            (12, 1, 2),
            (14, 0xff0, 2),
            (16, 16, 2),
            (18, 2, 2),
            (20, 0, 2),
        ],
    );
    let want = GnttabCopy {
        source_u: 0x1_2345,
        source_domid: 0x7ff0,
        source_offset: 0x10,
        dest_u: 7,
        dest_domid: 1,
        dest_offset: 0xff0,
        len: 16,
        flags: 2,
        status: 0,
    };
    check(&b, Abi::Compat, want);
    let glue = vmm_glue::xen::grant_table::GnttabCopy::from(want);
    assert_eq!(
        (glue.source.u, glue.dest.offset, glue.len),
        (0x1_2345, 0xff0, 16)
    );
}

#[test]
fn compat_encode_keeps_the_low_32_bits_of_a_handle() {
    let m = MemoryMap {
        nr_entries: 1,
        buffer: 0x1_0000_0010,
    };
    let mut b = [0u8; 8];
    m.encode(&mut b, Abi::Compat).unwrap();
    assert_eq!(MemoryMap::decode(&b, Abi::Compat).unwrap().buffer, 0x10);
}

#[test]
fn vcpu_structs() {
    for abi in [Abi::X64, Abi::Compat] {
        let info = VcpuRegisterVcpuInfo {
            mfn: 0x1_0000_0001,
            offset: 64,
            rsvd: 0,
        };
        check(&layout(16, &[(0, 0x1_0000_0001, 8), (8, 64, 4)]), abi, info);
        let ss = VcpuSetSingleshotTimer {
            timeout_abs_ns: 5_000_000_000,
            flags: 1,
        };
        check(&layout(12, &[(0, 5_000_000_000, 8), (8, 1, 4)]), abi, ss);
        let p = VcpuSetPeriodicTimer {
            period_ns: 1_000_000,
        };
        check(&layout(8, &[(0, 1_000_000, 8)]), abi, p);
        check(
            &layout(8, &[(0, 3, 4), (4, 0x8000, 4)]),
            abi,
            XenFeatureInfo {
                submap_idx: 3,
                submap: 0x8000,
            },
        );
        check(&layout(4, &[(0, 9, 4)]), abi, PhysdevEoi { irq: 9 });
        let q = PhysdevIrqStatusQuery { irq: 9, flags: 1 };
        check(&layout(8, &[(0, 9, 4), (4, 1, 4)]), abi, q);
    }
}

#[test]
fn runstate_area_handle_and_info_sizes_per_abi() {
    let x = 0xffff_8880_0000_1000;
    check(&layout(8, &[(0, x, 8)]), Abi::X64, RunstateArea { addr: x });
    check(
        &layout(4, &[(0, 0xc100_0000, 4)]),
        Abi::Compat,
        RunstateArea { addr: 0xc100_0000 },
    );
    assert_eq!(RunstateArea::info_size(Abi::X64), 48);
    assert_eq!(RunstateArea::info_size(Abi::Compat), 44);
}

// --- vcpu_hvm_context --------------------------------------------------

const LIM: Limits = Limits {
    phys_bits: 40,
    xsave: true,
    fsgsbase: true,
    nx: true,
};

/// A 64-bit context: paging, PAE and long mode on, RIP and RSP set.
fn ctx64() -> [u8; vcpu_ctx::SIZE] {
    let mut b = [0u8; vcpu_ctx::SIZE];
    let put = |b: &mut [u8; vcpu_ctx::SIZE], off: usize, v: u64| {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    };
    b[0..4].copy_from_slice(&1u32.to_le_bytes());
    put(&mut b, 8 + 8 * 4, 0x9000); // rsp
    put(&mut b, 8 + 8 * 8, 0xffff_ffff_8100_0000); // rip
    put(&mut b, 8 + 8 * 10, 0x8000_0011); // cr0: PG ET PE
    put(&mut b, 8 + 8 * 11, 0x10_0000); // cr3
    put(&mut b, 8 + 8 * 12, 0x20); // cr4: PAE
    put(&mut b, 8 + 8 * 13, 0x100); // efer: LME
    b
}

/// A 32-bit flat protected-mode context.
fn ctx32() -> [u8; vcpu_ctx::SIZE] {
    let mut b = [0u8; vcpu_ctx::SIZE];
    let put32 = |b: &mut [u8; vcpu_ctx::SIZE], off: usize, v: u32| {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    };
    put32(&mut b, 8 + 4 * 8, 0x10_0000); // eip
    put32(&mut b, 8 + 4 * 10, 0x11); // cr0: ET PE
    for i in 0..4 {
        put32(&mut b, 92 + 4 * i, 0xffff_ffff);
    }
    put32(&mut b, 92 + 16, 0x67);
    let attrs: [u16; 5] = [0xc9b, 0xc93, 0xc93, 0xc93, 0x8b];
    for (i, a) in attrs.iter().enumerate() {
        b[112 + 2 * i..114 + 2 * i].copy_from_slice(&a.to_le_bytes());
    }
    b
}

#[test]
fn hvm_context_64_bit_starts_in_long_mode_with_flat_segments() {
    let s = vcpu_ctx::parse(&ctx64(), &LIM).unwrap();
    assert_eq!(s.rip, 0xffff_ffff_8100_0000);
    assert_eq!(s.gprs[vcpu_ctx::Start::RSP], 0x9000);
    assert_eq!(s.efer, 0x500);
    assert_eq!(s.rflags, 2);
    assert_eq!(s.cs.attr, 0xa9b);
}

#[test]
fn hvm_context_64_bit_non_canonical_rip_is_inval() {
    let mut b = ctx64();
    b[72..80].copy_from_slice(&0x0000_8000_0000_0000u64.to_le_bytes());
    assert_eq!(vcpu_ctx::parse(&b, &LIM), Err(Errno::Inval));
}

#[test]
fn hvm_context_nonzero_pad_or_unknown_mode_is_inval() {
    let mut b = ctx64();
    b[4] = 1;
    assert_eq!(vcpu_ctx::parse(&b, &LIM), Err(Errno::Inval));
    let mut b = ctx64();
    b[0] = 2;
    assert_eq!(vcpu_ctx::parse(&b, &LIM), Err(Errno::Inval));
}

#[test]
fn hvm_context_32_bit_flat_start_is_accepted_with_accessed_bits_set() {
    let s = vcpu_ctx::parse(&ctx32(), &LIM).unwrap();
    assert_eq!(s.rip, 0x10_0000);
    assert_eq!(s.cs.attr, 0xc9b);
    assert_eq!(s.ds.attr, 0xc93);
    assert_eq!(s.tr.attr, 0x8b);
    assert_eq!(s.efer, 0);
}

#[test]
fn hvm_context_32_bit_rip_beyond_the_cs_limit_is_inval() {
    let mut b = ctx32();
    b[92..96].copy_from_slice(&0xfffu32.to_le_bytes());
    b[112..114].copy_from_slice(&0x49bu16.to_le_bytes()); // D/B, no G
    assert_eq!(vcpu_ctx::parse(&b, &LIM), Err(Errno::Inval));
}

#[test]
fn hvm_context_32_bit_with_long_mode_is_inval() {
    let mut b = ctx32();
    b[8 + 40..8 + 44].copy_from_slice(&0x8000_0011u32.to_le_bytes()); // PG
    b[8 + 48..8 + 52].copy_from_slice(&0x20u32.to_le_bytes()); // PAE
    b[64..72].copy_from_slice(&0x100u64.to_le_bytes()); // LME
    assert_eq!(vcpu_ctx::parse(&b, &LIM), Err(Errno::Inval));
}

#[test]
fn hvm_context_size_is_128_in_both_abis() {
    assert_eq!(vcpu_ctx::size(Abi::X64), 128);
    assert_eq!(vcpu_ctx::size(Abi::Compat), 128);
}

#[test]
fn add_to_physmap_is_mappable_only_for_shared_info_0_and_grant_frames() {
    let a = |space, idx| AddToPhysmap {
        domid: 0x7ff0,
        size: 0,
        space,
        idx,
        gpfn: 0x30000,
    };
    assert!(a(XENMAPSPACE_SHARED_INFO, 0).mappable());
    assert!(!a(XENMAPSPACE_SHARED_INFO, 1).mappable());
    assert!(a(XENMAPSPACE_GRANT_TABLE, 0x7fff).mappable());
    assert!(!a(XENMAPSPACE_GRANT_TABLE, XENMAPIDX_GRANT_TABLE_STATUS).mappable());
    assert!(!a(XENMAPSPACE_GRANT_TABLE, 1 << 32).mappable());
    assert!(!a(99, 0).mappable());
}
