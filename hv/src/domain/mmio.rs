//! Guest accesses outside RAM: a nested page fault (NPT) or EPT violation
//! on a guest-physical address that is not the domain's memory.
//!
//! As under Xen for PVH guests, memory-mapped I/O nobody emulates is
//! absent: reads give all-ones, writes are dropped. The instruction at the
//! guest's RIP is decoded ([`hv::insn`]), its access is carried out against
//! the region the address falls in ([`MmioMap`]), and RIP moves past it.
//! An instruction fetch outside RAM, or an instruction the decoder does
//! not know, ends the domain with the RIP and the instruction bytes in the
//! log.
//!
//! Limits, for now: the code segment's base is taken as 0 (flat segments,
//! as PVH guests run); a 32-bit-or-not decision comes from CR0.PE, since
//! CS.D is not exposed (a 16-bit protected-mode segment decodes as 32-bit);
//! RSP as a load destination or store source is refused (no accessor).

use super::guest_va::fetch_insn;
use super::{Domain, Ending};
use crate::virt::GuestRegs;
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use hv::hub::Hub;
use hv::insn::{self, Access, Mode, Reg, RegFile};
use vmm_glue::log;

/// Absent-MMIO accesses logged per domain (at debug level); after that one
/// line says the rest are not logged.
const LOGGED_ACCESSES: u64 = 16;

/// What answers the accesses to one range of guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RegionKind {
    /// Nothing: reads are all-ones, writes are dropped.
    Absent,
    /// The local APIC's xAPIC register page ([`hv::vlapic`]).
    Lapic,
    /// A page a passed-through function traps (its MSI-X table or PBA).
    Pci,
}

/// An emulated range `[start, start + len)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Region {
    pub start: u64,
    pub len: u64,
    pub kind: RegionKind,
}

/// The emulated MMIO ranges of a domain, sorted and non-overlapping;
/// addresses in none of them are [`RegionKind::Absent`]. (The pages a
/// passed-through function traps, its MSI-X table and PBA, are checked
/// before this map: see `Domain::region_at`.)
#[derive(Clone, Copy, Debug)]
pub(super) struct MmioMap<'a> {
    regions: &'a [Region],
}

impl MmioMap<'_> {
    /// The region `gpa` falls in.
    pub fn lookup(&self, gpa: u64) -> Region {
        self.regions
            .iter()
            .find(|r| gpa.wrapping_sub(r.start) < r.len)
            .copied()
            .unwrap_or(Region {
                start: gpa,
                len: 1,
                kind: RegionKind::Absent,
            })
    }
}

impl Domain {
    /// The region `gpa` falls in now: the xAPIC page while the local APIC is
    /// in xAPIC mode, absent otherwise (x2APIC mode or disabled).
    fn region_at(&self, gpa: u64) -> Region {
        if self.pci_traps(gpa) {
            return Region {
                start: gpa & !0xfff,
                len: 0x1000,
                kind: RegionKind::Pci,
            };
        }
        let lapic = [Region {
            start: hv::vlapic::MMIO_BASE,
            len: 0x1000,
            kind: RegionKind::Lapic,
        }];
        let regions: &[Region] = if self.xen.cpu.lapic.xapic() {
            &lapic
        } else {
            &[]
        };
        MmioMap { regions }.lookup(gpa)
    }

    /// A read of `size` bytes at `gpa` in `region`. The APIC's registers
    /// are 32 bits wide: a smaller read takes its part of the register.
    fn region_read(&mut self, region: Region, gpa: u64, size: u8, hub: &mut Hub) -> u64 {
        match region.kind {
            RegionKind::Absent => insn::mask(size),
            RegionKind::Pci => self.pci_mmio_read(hub, gpa, size),
            RegionKind::Lapic => {
                let off = (gpa - region.start) as u32;
                let word = self.xen.cpu.lapic.mmio_read(off & !3);
                (u64::from(word) >> ((off & 3) * 8)) & insn::mask(size)
            }
        }
    }

    /// A write of the low `size` bytes of `value` at `gpa` in `region`. The
    /// APIC takes aligned 32-bit writes only (others are dropped, as the
    /// SDM leaves them undefined).
    fn region_write(&mut self, region: Region, gpa: u64, size: u8, value: u64, hub: &mut Hub) {
        match region.kind {
            RegionKind::Absent => {}
            RegionKind::Pci => self.pci_mmio_write(hub, gpa, size, value),
            RegionKind::Lapic => {
                let off = (gpa - region.start) as u32;
                if size == 4 && off.is_multiple_of(4) {
                    self.xen.cpu.lapic.mmio_write(off, value as u32);
                    // The ICR's low word sends; its high word holds the
                    // 8-bit destination.
                    if off == 0x300 && self.xen.cpu.lapic.xapic() {
                        let dest = u64::from(self.xen.cpu.lapic.mmio_read(0x310) >> 24);
                        self.ipi_others((dest << 32) | (value & 0xffff_ffff));
                    }
                }
            }
        }
    }
}

/// The guest's general-purpose registers as the decoder numbers them, copied
/// out of the vCPU and written back after a load. RSP (4) is not among
/// them: the caller refuses instructions that name it.
struct Gprs {
    rax: u64,
    rest: GuestRegs,
}

impl Gprs {
    fn slot(&mut self, index: u8) -> Option<&mut u64> {
        match index {
            0 => Some(&mut self.rax),
            n => self.rest.slot(n),
        }
    }
}

impl RegFile for Gprs {
    fn get(&self, index: u8) -> u64 {
        match index {
            0 => self.rax,
            n => self.rest.get(n).unwrap_or(0),
        }
    }

    fn set(&mut self, index: u8, value: u64) {
        if let Some(slot) = self.slot(index) {
            *slot = value;
        }
    }
}

fn names_rsp(r: Reg) -> bool {
    r == Reg::Gpr(4)
}

/// `0f b6 03` for logs.
fn hex_bytes(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in bytes.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(s, "{sep}{b:02x}");
    }
    if s.is_empty() {
        s.push_str("(unreadable)");
    }
    s
}

impl Domain {
    /// The code mode the guest's instructions decode in now.
    fn code_mode(&self) -> Mode {
        let (cr0, ..) = self.vcpu.paging_state();
        if self.vcpu.long_mode() {
            Mode::Bits64
        } else if cr0 & 1 == 0 {
            Mode::Bits16
        } else {
            Mode::Bits32
        }
    }

    /// Answers a nested page fault at `gpa`: emulates the data access, or
    /// ends the domain (instruction fetch, unknown instruction).
    pub(super) fn npf(
        &mut self,
        gpa: u64,
        write: bool,
        fetch: bool,
        hub: &mut Hub,
    ) -> Option<Ending> {
        let rip = self.vcpu.rip();
        // With decode assists the CPU hands over the bytes it fetched;
        // otherwise they are read through the guest's page tables.
        let (bytes, n) = match self.vcpu.exit_insn_bytes() {
            Some((b, n)) if n > 0 => (b, n),
            _ => {
                let mut b = [0u8; insn::MAX_LEN];
                let n = fetch_insn(self, &mut b);
                (b, n)
            }
        };
        if fetch {
            return self.destroy(format!(
                "executed guest-physical {gpa:#x}, which is not its memory (rip {rip:#x})"
            ));
        }
        if n == 0 {
            // The instruction itself is not in RAM: a fetch, whatever the
            // CPU reported.
            return self.destroy(format!(
                "executed at rip {rip:#x}, which is not its memory \
                 (fault at guest-physical {gpa:#x})"
            ));
        }
        if self.mem.read(gpa, &mut [0u8]).is_ok() {
            // Guest RAM is mapped read-write: a fault here is a hypervisor
            // bug, not something to emulate.
            return self.destroy(format!(
                "nested page fault on its own RAM at guest-physical {gpa:#x} (rip {rip:#x})"
            ));
        }
        let bytes = bytes.get(..n).unwrap_or(&[]);
        let how = if write { "write to" } else { "read of" };
        let cannot = |why: &dyn core::fmt::Display| {
            format!(
                "cannot emulate the {how} guest-physical {gpa:#x}, which is not its memory, \
                 at rip {rip:#x}: {why}; instruction bytes {}",
                hex_bytes(bytes)
            )
        };
        let decoded = match insn::decode(bytes, self.code_mode()) {
            Ok(d) => d,
            Err(e) => return self.destroy(cannot(&e)),
        };
        let regs = *self.vcpu.regs();
        let mut gprs = Gprs {
            rax: self.vcpu.rax(),
            rest: regs,
        };
        let region = self.region_at(gpa);
        let (what, size, value) = match decoded.access {
            Access::Load(l) if !write && !names_rsp(l.dst) => {
                let value = self.region_read(region, gpa, l.size, hub);
                insn::apply_load(&mut gprs, &l, value);
                *self.vcpu.regs() = gprs.rest;
                self.vcpu.set_rax(gprs.rax);
                ("read", l.size, value)
            }
            Access::Store(s) if write && !matches!(s.src, insn::Src::Reg(r) if names_rsp(r)) => {
                let value = insn::store_value(&gprs, &s);
                self.region_write(region, gpa, s.size, value, hub);
                ("write", s.size, value)
            }
            Access::Load(_) | Access::Store(_) => {
                return self.destroy(cannot(
                    &"the decoded access does not match the fault or uses RSP",
                ));
            }
        };
        self.vcpu.set_rip(rip.wrapping_add(u64::from(decoded.len)));
        self.log_absent(region.kind, what, size, gpa, value, rip);
        None
    }

    /// The debug line for an access to absent MMIO, for the first
    /// [`LOGGED_ACCESSES`] nested page faults of the domain; then one line
    /// saying the rest are not logged.
    fn log_absent(&self, kind: RegionKind, what: &str, size: u8, gpa: u64, value: u64, rip: u64) {
        if kind != RegionKind::Absent {
            return;
        }
        let n = self.exits.npf;
        if n <= LOGGED_ACCESSES {
            log::debug!(
                "{} absent MMIO: {what} of {size} bytes at guest-physical {gpa:#x} \
                 (value {value:#x}), rip {rip:#x}",
                self.prefix()
            );
        } else if n == LOGGED_ACCESSES + 1 {
            log::debug!(
                "{} absent MMIO: further accesses suppressed (see the npf exit count)",
                self.prefix()
            );
        }
    }
}
