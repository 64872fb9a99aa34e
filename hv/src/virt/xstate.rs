//! Guest extended processor state: turning XSAVE on for the host (CR4.OSXSAVE
//! and the host's XCR0), and each vCPU's save area and XCR0, which the
//! entry code of both backends restores before every guest run and saves
//! after it with XRSTOR/XSAVE (or FXRSTOR/FXSAVE on a CPU without XSAVE).
//! The host's own state is not saved: nothing of it lives across the entry
//! code (the vector registers are caller-saved), which leaves MXCSR and the
//! x87 control word at their defaults after the exit. The rules are in
//! `hv::hvm::xstate`.

use crate::arch::cpu::{self, cpuid};
use alloc::vec::Vec;
use hv::hvm::xstate::{self as xs, Component, XsetbvFault};
use vmm_glue::log;

/// What the CPU offers for extended state, decided once when
/// virtualisation is enabled.
#[derive(Clone, Copy, Debug)]
pub struct HostXstate {
    /// XSAVE/XRSTOR are used (CPUID.1:ECX.XSAVE); FXSAVE/FXRSTOR otherwise.
    pub xsave: bool,
    /// The XCR0 the host runs with (0 without XSAVE).
    pub host_xcr0: u64,
    /// The XCR0 bits a guest may set (0 without XSAVE).
    pub guest_allowed: u64,
    /// Bytes of a save area: every component the CPU supports fits, so
    /// that even a guest that changed XCR0 without an exit cannot make
    /// XSAVE write past its area.
    pub area_size: usize,
}

/// The size of the standard-format area for `xcr0`, from this CPU's leaf
/// 0xD.
pub fn area_size(xcr0: u64) -> u32 {
    xs::xsave_size(xcr0, |i| {
        let r = cpuid(0xd, i);
        Component {
            size: r.eax,
            offset: r.ebx,
        }
    })
}

/// Turns XSAVE on for the host when the CPU has it: CR4.OSXSAVE, and an
/// XCR0 with every component a guest may use (so the host's own XCR0
/// rarely needs switching).
pub fn enable() -> HostXstate {
    if cpuid(1, 0).ecx & xs::leaf1::XSAVE == 0 {
        log::info!("xstate: no XSAVE; guest x87/SSE state switched with FXSAVE");
        return HostXstate {
            xsave: false,
            host_xcr0: 0,
            guest_allowed: 0,
            area_size: 512,
        };
    }
    cpu::enable_osxsave();
    let d = cpuid(0xd, 0);
    let allowed = xs::allowed_xcr0(u64::from(d.eax) | (u64::from(d.edx) << 32));
    // SAFETY: `allowed` holds x87 and SSE and only components the CPU
    // reports in leaf 0xD, combined as XSETBV requires (`allowed_xcr0`);
    // enabling more components than the host uses changes nothing for code
    // that does not use them.
    unsafe { cpu::xsetbv(0, allowed) };
    let host = HostXstate {
        xsave: true,
        host_xcr0: cpu::xgetbv(0),
        guest_allowed: allowed,
        area_size: area_size(allowed).max(d.ecx) as usize,
    };
    log::info!(
        "xstate: XSAVE, XCR0 {:#x} (CPU supports {:#x}), guest save area {} bytes",
        host.host_xcr0,
        u64::from(d.eax) | (u64::from(d.edx) << 32),
        host.area_size
    );
    host
}

/// 64 bytes, 64-byte aligned: XSAVE areas are built of these.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
struct Line([u8; 64]);

/// A 64-byte-aligned XSAVE (or FXSAVE) area.
#[derive(Debug)]
struct Area(Vec<Line>);

impl Area {
    fn new(size: usize) -> Self {
        Self(alloc::vec![Line([0; 64]); size.div_ceil(64).max(9)])
    }

    fn addr(&mut self) -> u64 {
        self.0.as_mut_ptr() as u64
    }

    /// The 64 bytes at `offset` (a multiple of 64).
    fn line(&mut self, offset: usize) -> &mut [u8; 64] {
        &mut self.0[offset / 64].0
    }
}

/// What the entry code reads to switch extended state; part of each
/// backend's `RunState`, at the offsets its assembly uses.
#[repr(C)]
#[derive(Debug)]
pub struct Switch {
    guest_area: u64,
    /// The MXCSR the host's code runs with (the low 32 bits), loaded
    /// after the guest's state is saved.
    host_mxcsr: u64,
    /// The XCR0 loaded while the guest runs.
    guest_hw_xcr0: u64,
    host_xcr0: u64,
    /// 1: XSAVE/XRSTOR and XSETBV; 0: FXSAVE/FXRSTOR.
    xsave: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(Switch, guest_area) == 0x00);
    assert!(core::mem::offset_of!(Switch, host_mxcsr) == 0x08);
    assert!(core::mem::offset_of!(Switch, guest_hw_xcr0) == 0x10);
    assert!(core::mem::offset_of!(Switch, host_xcr0) == 0x18);
    assert!(core::mem::offset_of!(Switch, xsave) == 0x20);
};

/// One vCPU's extended state: the guest's save area and its XCR0.
#[derive(Debug)]
pub struct GuestXstate {
    guest: Area,
    /// The guest's XCR0 as it set it (1 after reset).
    xcr0: u64,
    allowed: u64,
    xsave: bool,
}

impl GuestXstate {
    /// Reset state: x87 in its initial configuration (an XSAVE header with
    /// no component saved, or FCW 0x37f), MXCSR 0x1f80, XCR0 = x87.
    pub fn new(host: &HostXstate) -> Self {
        let mut guest = Area::new(host.area_size);
        let first = guest.line(0);
        first[xs::MXCSR_OFFSET..xs::MXCSR_OFFSET + 4]
            .copy_from_slice(&xs::MXCSR_DEFAULT.to_le_bytes());
        if !host.xsave {
            first[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        }
        Self {
            guest,
            xcr0: xs::X87,
            allowed: host.guest_allowed,
            xsave: host.xsave,
        }
    }

    /// The switch block for the entry code, pointing at this state's areas
    /// (which never move: their buffers are not resized).
    pub fn switch(&mut self, host: &HostXstate) -> Switch {
        Switch {
            guest_area: self.guest.addr(),
            host_mxcsr: u64::from(xs::MXCSR_DEFAULT),
            guest_hw_xcr0: xs::hardware_xcr0(self.xcr0),
            host_xcr0: host.host_xcr0,
            xsave: u64::from(self.xsave),
        }
    }

    /// After an exit: the XCR0 the guest ran with, as the entry code read
    /// it back. It differs from what was loaded only on a CPU that lets the
    /// guest execute XSETBV without an exit (QEMU's TCG ignores the SVM
    /// intercept); the CPU then checked the value, and it is the guest's.
    pub fn after_exit(&mut self, switch: &Switch) {
        if self.xsave {
            self.xcr0 = xs::xcr0_after_exit(self.xcr0, switch.guest_hw_xcr0);
        }
    }

    /// The guest's XCR0.
    pub fn xcr0(&self) -> u64 {
        self.xcr0
    }

    /// The XCR0 bits the guest may set.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    /// A guest XSETBV: checked, then stored in `self` and in `switch`.
    /// Components the new XCR0 leaves out are marked as in their initial
    /// configuration in the saved state, so that XRSTOR (which refuses a
    /// saved component XCR0 does not enable) keeps working.
    pub fn xsetbv(
        &mut self,
        switch: &mut Switch,
        osxsave: bool,
        cpl: u8,
        ecx: u32,
        value: u64,
    ) -> Result<(), XsetbvFault> {
        if !self.xsave {
            return Err(XsetbvFault::InvalidOpcode);
        }
        let v = xs::check_xsetbv(osxsave, cpl, ecx, value, self.allowed)?;
        self.xcr0 = v;
        let hw = xs::hardware_xcr0(v);
        switch.guest_hw_xcr0 = hw;
        let header = self.guest.line(xs::XSTATE_BV_OFFSET);
        let mut bv = [0u8; 8];
        bv.copy_from_slice(&header[0..8]);
        let bv = xs::xstate_bv_for(u64::from_le_bytes(bv), hw);
        header[0..8].copy_from_slice(&bv.to_le_bytes());
        Ok(())
    }
}
