//! Loading a checked start state (`VCPUOP_initialise`, or a STARTUP
//! IPI's real mode) into a VMCB.

use super::{flat32, SvmVcpu, EFER_SVME};
use crate::virt::start::{StartSeg, StartState};
use crate::virt::GuestRegs;
use vmcb::Segment;

use super::vmcb;

/// A segment of the start state; in real mode (`real`) its selector is
/// its base / 16, as the CPU would have loaded it.
fn seg(s: StartSeg, real: bool) -> Segment {
    Segment {
        selector: if real { (s.base >> 4) as u16 } else { 0 },
        attrib: s.attr,
        limit: s.limit,
        base: s.base,
    }
}

impl SvmVcpu {
    /// Loads `s` (see [`crate::virt::Vcpu::load_start_state`]); the
    /// checks VMRUN makes are already done by common code.
    pub fn load_start_state(&mut self, s: &StartState) -> bool {
        let g = &s.gprs;
        self.run.regs = GuestRegs {
            rcx: g[1],
            rdx: g[2],
            rbx: g[3],
            rbp: g[5],
            rsi: g[6],
            rdi: g[7],
            ..GuestRegs::default()
        };
        self.exit_insn_len = None;
        self.insn_bytes = None;
        // Every field is new.
        self.dirty = super::clean::ALL;
        let b = self.vmcb_mut();
        let c = &mut b.control;
        c.event_inject = 0;
        c.interrupt_shadow = 0;
        c.vintr &= !(1 << 8); // no virtual interrupt pending
        c.tlb_control = 1;
        let v = &mut b.save;
        v.rax = g[0];
        v.rsp = g[StartState::RSP];
        v.rip = s.rip;
        v.rflags = s.rflags;
        v.cr0 = s.cr0;
        v.cr3 = s.cr3;
        v.cr4 = s.cr4;
        v.efer = s.efer | EFER_SVME;
        // Real mode (a STARTUP IPI's start) has FS and GS like DS;
        // protected and long mode flat data segments.
        let real = s.cr0 & 1 == 0; // CR0.PE clear
        v.cs = seg(s.cs, real);
        v.ds = seg(s.ds, real);
        v.ss = seg(s.ss, real);
        v.es = seg(s.es, real);
        v.tr = seg(s.tr, false);
        v.fs = if real { v.ds } else { flat32(0xc93) };
        v.gs = v.fs;
        v.ldtr = Segment {
            selector: 0,
            attrib: 0x82,
            limit: 0,
            base: 0,
        };
        v.gdtr = Segment {
            limit: 0xffff,
            ..Segment::default()
        };
        v.idtr = v.gdtr;
        v.cpl = ((s.ss.attr >> 5) & 3) as u8;
        v.dr6 = 0xffff_0ff0;
        v.dr7 = 0x400;
        true
    }
}
