//! Host tests of the AMD-Vi driver against the fakes.

mod attach;
mod delivery;
mod events;
mod init;
mod irq;
mod tables;

use vmm_glue::Sbdf;

use super::fake::{FakeRegs, SharedMem, EFR_QEMU};
use super::AmdVi;

/// A unit like QEMU's with a device table for buses 0 and 1, and the
/// commands init ran already taken.
fn unit() -> (AmdVi<FakeRegs>, SharedMem) {
    let mut mem = SharedMem::new();
    let regs = FakeRegs::new(EFR_QEMU, &mem);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 1).unwrap();
    unit.regs.take_commands();
    unit.regs.take_writes();
    (unit, mem)
}

fn sbdf(bus: u8, dev: u8, func: u8) -> Sbdf {
    Sbdf::new(0, bus, dev, func).unwrap()
}

/// Completion waits [`unit`]'s init queued: 512 INVALIDATE_DEVTAB_ENTRY
/// and an INVALIDATE_IOMMU_ALL, 254 commands per wait.
const INIT_WAITS: u64 = 3;

/// The `n`th completion wait after [`unit`]'s init: opcode 01h, the
/// store page, S; high: the count of waits so far.
fn wait(n: u64) -> [u64; 2] {
    [0x1000_0000_0010_7001, INIT_WAITS + n]
}
