//! Every hypercall argument decoder of `hv::xenabi` on arbitrary bytes:
//! the first byte picks the ABI (bit 0) and the host limits for the
//! `vcpu_hvm_context` checks (bits 1..4); the rest are the guest's
//! structure. Decoding must not panic and must succeed exactly when the
//! structure's declared size is there; encoding the decoded fields over
//! the same bytes must give them back unchanged (padding included, nothing
//! written past the size); a decode of the encoding into zeroed bytes
//! must give the same fields. Bits 5..7 of the first byte choose how the
//! bytes make an HVM context; an accepted one must be a state the CPU can
//! enter.
#![no_main]

use hv::xenabi::vcpu_ctx::{self, Limits};
use hv::xenabi::*;
use libfuzzer_sys::fuzz_target;

/// Checks one structure whose size is `x64` bytes for a 64-bit guest and
/// `compat` bytes for a 32-bit one (as Xen's headers give them).
fn check<T: XenArg>(bytes: &[u8], abi: Abi, x64: usize, compat: usize) {
    let size = T::size(abi);
    assert_eq!(size, if abi == Abi::X64 { x64 } else { compat });
    let Ok(v) = T::decode(bytes, abi) else {
        assert!(bytes.len() < size);
        return;
    };
    assert!(bytes.len() >= size);
    let mut out = bytes.to_vec();
    v.encode(&mut out, abi).unwrap();
    assert_eq!(out, bytes, "{v:?} re-encoded differently");
    let mut zero = vec![0u8; size];
    v.encode(&mut zero, abi).unwrap();
    assert_eq!(T::decode(&zero, abi).unwrap(), v);
    assert!(v.encode(&mut zero[..size - 1], abi).is_err());
}

/// A 64-bit context: paging, PAE and long mode on.
fn valid_64() -> [u8; vcpu_ctx::SIZE] {
    let mut b = [0u8; vcpu_ctx::SIZE];
    b[0] = 1;
    let regs: [(usize, u64); 5] = [
        (8, 0xffff_ffff_8100_0000), // rip
        (10, 0x8000_0011),          // cr0: PG ET PE
        (11, 0x10_0000),            // cr3
        (12, 0x20),                 // cr4: PAE
        (13, 0x100),                // efer: LME
    ];
    for (i, v) in regs {
        b[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// A flat 32-bit protected-mode context.
fn valid_32() -> [u8; vcpu_ctx::SIZE] {
    let mut b = [0u8; vcpu_ctx::SIZE];
    b[40..44].copy_from_slice(&0x10_0000u32.to_le_bytes()); // eip
    b[48..52].copy_from_slice(&0x11u32.to_le_bytes()); // cr0: ET PE
    let limits: [u32; 5] = [u32::MAX, u32::MAX, u32::MAX, u32::MAX, 0x67];
    let attrs: [u16; 5] = [0xc9b, 0xc93, 0xc93, 0xc93, 0x8b];
    for i in 0..5 {
        b[92 + 4 * i..96 + 4 * i].copy_from_slice(&limits[i].to_le_bytes());
        b[112 + 2 * i..114 + 2 * i].copy_from_slice(&attrs[i].to_le_bytes());
    }
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let abi = if sel & 1 == 0 { Abi::X64 } else { Abi::Compat };
    check::<AddToPhysmap>(bytes, abi, 24, 16);
    check::<MemoryMap>(bytes, abi, 16, 8);
    check::<DomidArg>(bytes, abi, 2, 2);
    check::<HvmParam>(bytes, abi, 16, 16);
    check::<EvtchnAllocUnbound>(bytes, abi, 8, 8);
    check::<EvtchnBindInterdomain>(bytes, abi, 12, 12);
    check::<EvtchnBindVirq>(bytes, abi, 12, 12);
    check::<EvtchnBindPirq>(bytes, abi, 12, 12);
    check::<EvtchnBindIpi>(bytes, abi, 8, 8);
    check::<EvtchnPort>(bytes, abi, 4, 4);
    check::<EvtchnStatusQuery>(bytes, abi, 8, 8);
    check::<EvtchnBindVcpu>(bytes, abi, 8, 8);
    check::<EvtchnReset>(bytes, abi, 2, 2);
    check::<SchedPoll>(bytes, abi, 24, 16);
    check::<SchedShutdown>(bytes, abi, 4, 4);
    check::<GnttabQuerySize>(bytes, abi, 16, 16);
    check::<GnttabSetupTable>(bytes, abi, 24, 16);
    check::<GnttabSetVersion>(bytes, abi, 4, 4);
    check::<GnttabGetVersion>(bytes, abi, 8, 8);
    check::<GnttabCopy>(bytes, abi, 40, 24);
    check::<VcpuRegisterVcpuInfo>(bytes, abi, 16, 16);
    check::<VcpuSetSingleshotTimer>(bytes, abi, 12, 12);
    check::<VcpuSetPeriodicTimer>(bytes, abi, 8, 8);
    check::<RunstateArea>(bytes, abi, 8, 4);
    check::<XenFeatureInfo>(bytes, abi, 8, 8);
    check::<PhysdevEoi>(bytes, abi, 4, 4);
    check::<PhysdevIrqStatusQuery>(bytes, abi, 8, 8);

    // The HVM context: the bytes as they are (zero-padded to its size),
    // or XORed over a context the checks accept (bit 5: a 64-bit one, else
    // a flat 32-bit one), so that inputs near valid ones are common.
    assert_eq!(vcpu_ctx::size(abi), vcpu_ctx::SIZE);
    let mut ctx = match (sel >> 5) & 3 {
        0 => [0u8; vcpu_ctx::SIZE],
        1 | 3 => valid_64(),
        _ => valid_32(),
    };
    for (c, b) in ctx.iter_mut().zip(bytes) {
        *c ^= b;
    }
    let lim = Limits {
        phys_bits: if sel & 2 == 0 { 36 } else { 52 },
        xsave: sel & 4 != 0,
        fsgsbase: sel & 8 != 0,
        nx: sel & 16 != 0,
    };
    if let Ok(s) = vcpu_ctx::parse(&ctx, &lim) {
        // What the CPU needs of any accepted start.
        const EFER_LME: u64 = 1 << 8;
        const EFER_LMA: u64 = 1 << 10;
        assert!(s.cr0 & 1 != 0 && s.cr0 & (1 << 4) != 0, "PE and ET");
        assert!(s.rflags & 2 != 0 && s.rflags & (1 << 17) == 0);
        let lma = s.efer & EFER_LME != 0 && s.cr0 & (1 << 31) != 0;
        assert_eq!(s.efer & EFER_LMA != 0, lma);
        assert!(!lma || s.cr4 & (1 << 5) != 0, "long mode needs PAE");
        assert!(s.cs.attr & 0x80 != 0 && s.ss.attr & 0x80 != 0 && s.tr.attr & 0x80 != 0);
    }
});
