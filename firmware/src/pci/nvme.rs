//! NVMe (QEMU `nvme`, 1b36:0010), per the NVM Express base specification:
//! the controller registers (CAP, VS, CC, CSTS, AQA, ASQ, ACQ), a disable
//! and re-enable with an admin submission/completion queue pair in guest
//! memory, and Identify Controller whose completion is signalled by MSI-X
//! vector 0 (the admin completion queue's).
//!
//! Measured (TSC cycles): Identify Controller from the doorbell write to
//! the interrupt handler.

use core::sync::atomic::{fence, Ordering};

use super::mmio::Mmio;
use super::{command, wait_for, Function, Irq, Samples, Transport};
use crate::report::{check, check_eq};
use crate::xen::page::{Page, PageBuf};
use crate::{cpu, println};

/// Vendor and device ID.
pub const IDS: u32 = 0x1b36_0010;

/// Controller registers (BAR0).
mod reg {
    /// Controller capabilities (64 bits).
    pub const CAP: u64 = 0x00;
    /// Version.
    pub const VS: u64 = 0x08;
    /// Controller configuration.
    pub const CC: u64 = 0x14;
    /// Controller status.
    pub const CSTS: u64 = 0x1c;
    /// Admin queue attributes.
    pub const AQA: u64 = 0x24;
    /// Admin submission queue base (64 bits).
    pub const ASQ: u64 = 0x28;
    /// Admin completion queue base (64 bits).
    pub const ACQ: u64 = 0x30;
    /// The first doorbell (admin submission queue tail).
    pub const DOORBELLS: u64 = 0x1000;
}

/// CC.EN.
const CC_EN: u32 = 1;
/// CC.IOSQES = 6 (64-byte submission entries) and CC.IOCQES = 4 (16-byte
/// completion entries); QEMU checks them when the controller is enabled.
const CC_ENTRY_SIZES: u32 = (6 << 16) | (4 << 20);
/// CSTS.RDY.
const CSTS_RDY: u32 = 1;
/// CSTS.CFS: controller fatal status.
const CSTS_CFS: u32 = 1 << 1;
/// Admin queue entries (both queues).
const QUEUE: u16 = 16;
/// Admin opcode: Identify.
const OP_IDENTIFY: u32 = 0x06;
/// Identify CNS: the controller data structure.
const CNS_CONTROLLER: u32 = 1;
/// Milliseconds to wait for a command's interrupt.
const TIMEOUT_MS: u64 = 2000;

static SQ: PageBuf = PageBuf::new();
static CQ: PageBuf = PageBuf::new();
static IDENTIFY: PageBuf = PageBuf::new();

/// A completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Completion {
    /// Command identifier.
    cid: u16,
    /// Status field without the phase tag (0: success).
    status: u16,
}

/// The admin queue pair.
struct Admin {
    mmio: Mmio,
    sq: Page,
    cq: Page,
    tail: u16,
    head: u16,
    phase: bool,
    cid: u16,
    stride: u64,
}

impl Admin {
    /// Writes a 16-dword command into the next submission slot and rings
    /// the tail doorbell; returns the command identifier.
    fn submit(&mut self, mut cmd: [u32; 16]) -> u16 {
        self.cid = self.cid.wrapping_add(1);
        cmd[0] = (cmd[0] & 0xffff) | (u32::from(self.cid) << 16);
        let at = usize::from(self.tail) * 64;
        for (i, w) in cmd.iter().enumerate() {
            self.sq.u32(at + 4 * i).store(*w, Ordering::Relaxed);
        }
        self.tail = (self.tail + 1) % QUEUE;
        fence(Ordering::SeqCst);
        self.mmio.write32(reg::DOORBELLS, u32::from(self.tail));
        self.cid
    }

    /// Takes the next completion if its phase tag says it is new, and
    /// rings the completion queue's head doorbell.
    fn complete(&mut self) -> Option<Completion> {
        let at = usize::from(self.head) * 16;
        let dw3 = self.cq.u32(at + 12).load(Ordering::Acquire);
        if (dw3 >> 16) & 1 != u32::from(self.phase) {
            return None;
        }
        self.head = (self.head + 1) % QUEUE;
        if self.head == 0 {
            self.phase = !self.phase;
        }
        self.mmio
            .write32(reg::DOORBELLS + self.stride, u32::from(self.head));
        Some(Completion {
            cid: dw3 as u16,
            status: (dw3 >> 17) as u16,
        })
    }

    /// Submits `cmd` and waits for its interrupt, then its completion.
    /// Returns the completion (if any) and the cycles from the doorbell
    /// to the handler (if the interrupt came).
    fn run(&mut self, irq: Irq, cmd: [u32; 16]) -> (Option<Completion>, Option<u64>) {
        let before = irq.count();
        let t0 = cpu::rdtsc();
        let cid = self.submit(cmd);
        let cycles = irq.wait(before, TIMEOUT_MS).map(|at| at.saturating_sub(t0));
        let mut done = None;
        wait_for(if cycles.is_some() { 100 } else { 0 }, || {
            done = self.complete();
            done.is_some()
        });
        if let Some(c) = done.filter(|c| c.cid != cid) {
            println!(
                "xpci: nvme: completion for command {} while waiting for {cid}",
                c.cid
            );
        }
        (done, cycles)
    }
}

fn identify_cmd(buffer: u64) -> [u32; 16] {
    let mut c = [0u32; 16];
    c[0] = OP_IDENTIFY;
    c[6] = buffer as u32;
    c[7] = (buffer >> 32) as u32;
    c[10] = CNS_CONTROLLER;
    c
}

/// `bytes[range]` as text without trailing spaces or NULs.
fn ascii(page: Page, from: usize, to: usize) -> ([u8; 64], usize) {
    let mut buf = [0u8; 64];
    let n = (to - from).min(buf.len());
    page.read(from, &mut buf[..n]);
    let mut len = n;
    while len > 0 && (buf[len - 1] == b' ' || buf[len - 1] == 0) {
        len -= 1;
    }
    for b in &mut buf[..len] {
        if !b.is_ascii_graphic() && *b != b' ' {
            *b = b'?';
        }
    }
    (buf, len)
}

/// Drives one NVMe controller; `rounds` repeats the Identify measurement.
pub fn run<T: Transport>(t: &mut T, f: &Function, rounds: usize, bench: bool) {
    let Some(bar) = f.bars[0] else {
        check("nvme: BAR0 present", false);
        return;
    };
    let mmio = match Mmio::map(&bar) {
        Ok(m) => m,
        Err(e) => {
            println!("xpci: nvme: BAR0 at {:#x}: {e:?}", bar.addr);
            check("nvme: BAR0 mapped", false);
            return;
        }
    };
    let cmd = super::enable(t, f, f.decode_bits() | command::BUS_MASTER);
    check_eq(
        "nvme: memory decoding and bus mastering on",
        cmd.map(|c| c & (command::MEMORY_SPACE | command::BUS_MASTER)),
        Ok(command::MEMORY_SPACE | command::BUS_MASTER),
    );

    let cap = mmio.read64(reg::CAP);
    let vs = mmio.read32(reg::VS);
    let timeout_ms = ((cap >> 24) & 0xff).max(1) * 500;
    let stride = 4u64 << ((cap >> 32) & 0xf);
    println!(
        "xpci: nvme: version {}.{}.{}, CAP {cap:#018x}: MQES {}, DSTRD {}, timeout {timeout_ms} ms",
        vs >> 16,
        (vs >> 8) & 0xff,
        vs & 0xff,
        (cap & 0xffff) + 1,
        (cap >> 32) & 0xf
    );
    check("nvme: CAP readable (not all ones)", cap != u64::MAX);
    check(
        "nvme: 4 KiB pages allowed (CAP.MPSMIN 0)",
        (cap >> 48) & 0xf == 0,
    );
    check(
        "nvme: NVM command set (CAP.CSS bit 0)",
        (cap >> 37) & 1 == 1,
    );

    let cc = mmio.read32(reg::CC);
    if cc & CC_EN != 0 {
        mmio.write32(reg::CC, cc & !CC_EN);
    }
    let disabled = wait_for(timeout_ms, || mmio.read32(reg::CSTS) & CSTS_RDY == 0);
    check("nvme: disabled (CSTS.RDY 0)", disabled);
    if !disabled {
        return;
    }

    let (sq, cq) = (SQ.page(), CQ.page());
    sq.fill(0);
    cq.fill(0);
    IDENTIFY.page().fill(0);
    let q = u32::from(QUEUE - 1);
    mmio.write32(reg::AQA, (q << 16) | q);
    mmio.write64(reg::ASQ, sq.addr());
    mmio.write64(reg::ACQ, cq.addr());

    let irq = match t.enable_msix(f, 0) {
        Ok(irq) => irq,
        Err(e) => {
            println!("xpci: nvme: enable MSI-X: {e}");
            check("nvme: MSI-X vector 0 enabled", false);
            return;
        }
    };
    println!("xpci: nvme: MSI-X vector 0 as {irq}");
    check("nvme: MSI-X vector 0 enabled", true);

    mmio.write32(reg::CC, CC_ENTRY_SIZES | CC_EN);
    let ready = wait_for(timeout_ms, || {
        mmio.read32(reg::CSTS) & (CSTS_RDY | CSTS_CFS) != 0
    });
    let csts = mmio.read32(reg::CSTS);
    check(
        "nvme: enabled (CSTS.RDY 1)",
        ready && csts & CSTS_RDY != 0 && csts & CSTS_CFS == 0,
    );
    if csts & CSTS_RDY == 0 {
        println!("xpci: nvme: CSTS {csts:#x}");
        let _ = t.disable_msix(f);
        return;
    }

    let mut admin = Admin {
        mmio,
        sq,
        cq,
        tail: 0,
        head: 0,
        phase: true,
        cid: 0,
        stride,
    };
    let buf = IDENTIFY.page();
    let (done, cycles) = admin.run(irq, identify_cmd(buf.addr()));
    check(
        "nvme: Identify completion signalled by MSI-X",
        cycles.is_some(),
    );
    check_eq(
        "nvme: Identify Controller succeeds",
        done.map(|c| c.status),
        Some(0),
    );
    let (model, mlen) = ascii(buf, 24, 64);
    let (serial, slen) = ascii(buf, 4, 24);
    let model = core::str::from_utf8(&model[..mlen]).unwrap_or("?");
    let serial = core::str::from_utf8(&serial[..slen]).unwrap_or("?");
    println!("xpci: nvme: model \"{model}\" serial \"{serial}\"");
    check(
        "nvme: model and serial filled in",
        !model.is_empty() && !serial.is_empty(),
    );
    if let Some(c) = cycles {
        println!("xpci: nvme: Identify took {c} cycles");
    }

    if bench {
        let mut s = Samples::new();
        for _ in 0..rounds {
            match admin.run(irq, identify_cmd(buf.addr())) {
                (Some(c), Some(cycles)) if c.status == 0 => s.push(cycles),
                _ => break,
            }
        }
        s.report("nvme-identify");
    }

    mmio.write32(reg::CC, CC_ENTRY_SIZES);
    let stopped = wait_for(timeout_ms, || mmio.read32(reg::CSTS) & CSTS_RDY == 0);
    check("nvme: disabled again", stopped);
    check_eq("nvme: MSI-X disabled", t.disable_msix(f), Ok(()));
}
