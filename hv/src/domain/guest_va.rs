//! Reading and writing guest memory by guest-virtual address, and decoding
//! the length of an exiting instruction when the CPU does not report it.

use super::space::GuestSpace;
use super::Domain;
use crate::virt::guest_mem::{GuestMemory, OutOfRange};
use crate::virt::Vcpu;
use hv::guestview::{Fault, GuestCpu, GuestPhys, GuestView};

/// The guest access a hypercall handler borrows: the domain's memory as
/// its current vCPU sees it ([`hv::guestview`]).
pub(super) type View<'a> = GuestView<'a, GuestSpace, Vcpu>;

impl GuestPhys for GuestSpace {
    #[inline]
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Fault> {
        GuestMemory::read(self, gpa, buf).map_err(|_: OutOfRange| Fault)
    }

    #[inline]
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), Fault> {
        GuestMemory::write(self, gpa, data).map_err(|_: OutOfRange| Fault)
    }

    #[inline]
    fn read_entry(&self, gpa: u64, size: usize) -> Option<u64> {
        GuestMemory::read_entry(self, gpa, size)
    }

    #[inline]
    fn pv(&self) -> bool {
        self.pv
    }
}

impl GuestCpu for Vcpu {
    #[inline]
    fn paging_state(&self) -> (u64, u64, u64, u64) {
        Vcpu::paging_state(self)
    }

    #[inline]
    fn long_mode(&self) -> bool {
        Vcpu::long_mode(self)
    }
}

/// The guest access of `vcpu` to `space`: built by the dispatcher from the
/// domain's fields beside the others a handler changes.
#[inline]
pub(super) fn view<'a>(space: &'a GuestSpace, vcpu: &'a Vcpu) -> View<'a> {
    GuestView {
        mem: space,
        cpu: vcpu,
    }
}

/// Reads guest-virtual memory into `buf`.
pub(super) fn read_virt(dom: &Domain, gva: u64, buf: &mut [u8]) -> Result<(), ()> {
    dom.view().read_virt(gva, buf).map_err(|_| ())
}

/// Writes `data` to guest-virtual memory.
pub(super) fn write_virt(dom: &Domain, gva: u64, data: &[u8]) -> Result<(), ()> {
    dom.view().write_virt(gva, data).map_err(|_| ())
}

/// Where the current vCPU's code page was last found: the page of its RIP
/// and what it translated to under the paging state of the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CodePage {
    vcpu: u32,
    paging: (u64, u64, u64, u64),
    va: u64,
    gpa: u64,
}

/// Reads the 15 bytes at the guest's RIP (at its linear address). Without
/// next-RIP save every hypercall and CPUID exit needs them; the RIP's page
/// is translated once and remembered for the same vCPU, page and paging
/// state (a guest that remaps its code page under the same CR3 and exits
/// from it before any other exit may have the old page's bytes decoded, as
/// a CPU may use a stale TLB entry; the bytes are still checked against the
/// exit's instruction, and only the guest's own RIP depends on them). PV
/// guests, whose addresses are checked against the hypervisor's range,
/// always walk.
fn read_code(dom: &Domain, bytes: &mut [u8; 15]) -> Result<(), ()> {
    let rip = dom.vcpu.pc();
    let va = rip & !0xfff;
    if dom.is_pv() || (rip & 0xfff) + bytes.len() as u64 > 4096 {
        return read_virt(dom, rip, bytes);
    }
    let paging = dom.vcpu.paging_state();
    let key = |gpa| CodePage {
        vcpu: dom.vcpus.cur,
        paging,
        va,
        gpa,
    };
    let gpa = match dom.code_page.get() {
        Some(c) if c == key(c.gpa) => c.gpa,
        _ => {
            let gpa = dom.view().gpa(va).ok_or(())?;
            dom.code_page.set(Some(key(gpa)));
            gpa
        }
    };
    dom.mem.read(gpa + (rip & 0xfff), bytes).map_err(|_| ())
}

/// The length of the instruction at the guest's RIP if it is `opcode`
/// after optional prefixes; `None` if the bytes are something else.
pub(super) fn insn_len(dom: &Domain, opcode: &[u8]) -> Option<u64> {
    let mut bytes = [0u8; 15];
    read_code(dom, &mut bytes).ok()?;
    let long = dom.vcpu.long_mode();
    let mut i = 0;
    while i < 14 {
        match bytes[i] {
            0x66 | 0x67 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0xf0 => i += 1,
            0x40..=0x4f if long => i += 1,
            _ => break,
        }
    }
    bytes
        .get(i..i + opcode.len())
        .filter(|b| *b == opcode)
        .map(|_| (i + opcode.len()) as u64)
}

/// Reads the instruction bytes at the guest's RIP into `buf`, as many as
/// can be read (the instruction may end before an unmapped page); returns
/// the count.
pub(super) fn fetch_insn(dom: &Domain, buf: &mut [u8; 15]) -> usize {
    let rip = dom.vcpu.pc();
    let first = (4096 - (rip & 0xfff) as usize).min(buf.len());
    let (head, tail) = buf.split_at_mut(first);
    if read_virt(dom, rip, head).is_err() {
        return 0;
    }
    if tail.is_empty() || read_virt(dom, rip.wrapping_add(first as u64), tail).is_err() {
        return first;
    }
    buf.len()
}
