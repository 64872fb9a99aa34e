//! The command buffer (specification section 2.4): a ring of 128-bit
//! commands in memory that the unit consumes from the head pointer to the
//! tail pointer.
//!
//! Every command has its opcode in bits 63:60 (bits 31:28 of its second
//! dword). The layouts used here (low 64 bits, high 64 bits):
//!
//! - COMPLETION_WAIT (01h): bit 0 S (store), bit 1 I (interrupt), bit 2 F
//!   (flush queue), bits 51:3 the store address; high: the 64-bit store
//!   data;
//! - INVALIDATE_DEVTAB_ENTRY (02h): bits 15:0 DeviceID; high: 0;
//! - INVALIDATE_IOMMU_PAGES (03h): bits 19:0 PASID, bits 47:32 DomainID;
//!   high: bit 0 S (size: the range is given by the first zero address
//!   bit from bit 12 up), bit 1 PDE (directory entries too), bit 2 GN
//!   (guest), bits 63:12 the address;
//! - INVALIDATE_INTERRUPT_TABLE (05h): bits 15:0 DeviceID; high: 0;
//! - INVALIDATE_IOMMU_ALL (08h): no operands (needs EFR.IASup).

use super::regs::*;
use super::{AmdViError, AmdViRegs, POLL_LIMIT};
use crate::iommu::TableMemory;

/// Entries in the command buffer (ComLen = 8: one 4 KiB page).
pub const CMD_ENTRIES: u64 = 256;

/// INVALIDATE_IOMMU_PAGES address with S = 1 that covers every page: the
/// first zero bit is bit 63 (bits 62:12 set).
pub const ALL_PAGES: u64 = 0x7fff_ffff_ffff_f000;

/// One command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// COMPLETION_WAIT with S = 1: once every earlier command is done the
    /// unit writes `data` to `store` (8-byte aligned).
    CompletionWait {
        /// Where the unit stores `data`.
        store: u64,
        /// What it stores.
        data: u64,
    },
    /// INVALIDATE_DEVTAB_ENTRY: drop the cached device table entry of a
    /// device id.
    InvalidateDevtabEntry(u16),
    /// INVALIDATE_IOMMU_PAGES for every page of a domain (S = 1, PDE = 1,
    /// address [`ALL_PAGES`]).
    InvalidateDomain(u16),
    /// INVALIDATE_INTERRUPT_TABLE: drop the cached remapping entries of a
    /// device id.
    InvalidateInterruptTable(u16),
    /// INVALIDATE_IOMMU_ALL: drop every cached entry of every kind.
    InvalidateAll,
}

impl Command {
    /// The 128-bit command, low and high 64 bits.
    pub const fn encode(self) -> [u64; 2] {
        match self {
            Self::CompletionWait { store, data } => {
                [0x1 << 60 | (store & 0x000f_ffff_ffff_fff8) | 1, data]
            }
            Self::InvalidateDevtabEntry(devid) => [0x2 << 60 | devid as u64, 0],
            Self::InvalidateDomain(domain) => [0x3 << 60 | (domain as u64) << 32, ALL_PAGES | 0b11],
            Self::InvalidateInterruptTable(devid) => [0x5 << 60 | devid as u64, 0],
            Self::InvalidateAll => [0x8 << 60, 0],
        }
    }

    /// The specification's name of the command.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CompletionWait { .. } => "COMPLETION_WAIT",
            Self::InvalidateDevtabEntry(_) => "INVALIDATE_DEVTAB_ENTRY",
            Self::InvalidateDomain(_) => "INVALIDATE_IOMMU_PAGES",
            Self::InvalidateInterruptTable(_) => "INVALIDATE_INTERRUPT_TABLE",
            Self::InvalidateAll => "INVALIDATE_IOMMU_ALL",
        }
    }
}

/// Commands queued per completion wait: the ring holds 255 (one slot
/// stays free so a full ring differs from an empty one), one of which is
/// the wait.
const BATCH: usize = CMD_ENTRIES as usize - 2;

/// The command buffer of one unit and the word its completion waits
/// write.
#[derive(Debug)]
pub(super) struct CommandRing {
    /// The ring's page.
    pub(super) base: u64,
    /// The page whose first word the completion waits write.
    pub(super) status: u64,
    /// The next free entry.
    pub(super) tail: u64,
    /// The last value a completion wait was asked to store.
    seq: u64,
}

impl CommandRing {
    pub(super) const fn new(base: u64, status: u64) -> Self {
        Self {
            base,
            status,
            tail: 0,
            seq: 0,
        }
    }

    /// Queues `commands`, each batch followed by a COMPLETION_WAIT, moves
    /// the tail pointer and waits for the wait's store. A unit that stops
    /// fetching commands (Status.CmdBufRun clear: an illegal command or a
    /// hardware error, logged as an event) makes this fail with
    /// [`AmdViError::CommandHalted`]; the ring is then reset and
    /// restarted so later commands can run.
    pub(super) fn submit(
        &mut self,
        regs: &mut impl AmdViRegs,
        mem: &mut impl TableMemory,
        commands: impl IntoIterator<Item = Command>,
    ) -> Result<(), AmdViError> {
        let mut commands = commands.into_iter().peekable();
        while let Some(first) = commands.peek().copied() {
            self.seq = self.seq.wrapping_add(1);
            mem.write64(self.status, self.seq.wrapping_sub(1));
            for c in commands.by_ref().take(BATCH) {
                self.push(mem, c);
            }
            self.push(
                mem,
                Command::CompletionWait {
                    store: self.status,
                    data: self.seq,
                },
            );
            regs.write64(CMD_TAIL, self.tail << 4);
            self.wait(regs, mem, first.name())?;
        }
        Ok(())
    }

    fn push(&mut self, mem: &mut impl TableMemory, c: Command) {
        let [lo, hi] = c.encode();
        let at = self.base + self.tail * 16;
        mem.write64(at, lo);
        mem.write64(at + 8, hi);
        self.tail = (self.tail + 1) % CMD_ENTRIES;
    }

    fn wait(
        &mut self,
        regs: &mut impl AmdViRegs,
        mem: &mut impl TableMemory,
        what: &'static str,
    ) -> Result<(), AmdViError> {
        for _ in 0..POLL_LIMIT {
            if mem.read64(self.status) == self.seq {
                return Ok(());
            }
            if regs.read64(STATUS) & ST_CMD_BUF_RUN == 0 {
                self.restart(regs);
                return Err(AmdViError::CommandHalted(what));
            }
        }
        Err(AmdViError::Timeout(what))
    }

    /// Restarts a halted command buffer: CmdBufEn off, head and tail
    /// back to 0 (dropping what was queued), CmdBufEn on.
    fn restart(&mut self, regs: &mut impl AmdViRegs) {
        let control = regs.read64(CONTROL);
        regs.write64(CONTROL, control & !CTL_CMD_BUF_EN);
        regs.write64(CMD_HEAD, 0);
        regs.write64(CMD_TAIL, 0);
        self.tail = 0;
        regs.write64(CONTROL, control | CTL_CMD_BUF_EN);
    }
}
