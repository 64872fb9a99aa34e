//! Queued invalidation (VT-d specification 6.5.2): a ring of 128-bit
//! descriptors in memory that the unit consumes from IQH to IQT, with an
//! invalidation wait descriptor whose status write tells us the commands
//! before it are done.
//!
//! Descriptor layouts (low 64 bits; the high half is zero unless noted),
//! type in bits 3:0:
//!
//! - context-cache (type 1): bits 5:4 granularity (01 global, 10 domain,
//!   11 device), bits 31:16 DID, bits 47:32 SID, bits 49:48 FM;
//! - IOTLB (type 2): bits 5:4 granularity (01 global, 10 domain, 11
//!   page), bit 6 DW, bit 7 DR, bits 31:16 DID; high: address and mask
//!   for page-selective requests;
//! - interrupt entry cache (type 4): bit 4 granularity (0 global, 1
//!   index), bits 31:27 IM, bits 47:32 IIDX;
//! - invalidation wait (type 5): bit 4 IF, bit 5 SW, bit 6 FN, bits 63:32
//!   status data; high: status address (bits 63:2).

use super::regs::*;
use super::{poll32, VtdError, VtdRegs, POLL_LIMIT};
use crate::iommu::TableMemory;

/// Descriptors in the queue: one 4 KiB page (IQA.QS = 0) of 16-byte
/// descriptors.
pub const QUEUE_LEN: u64 = 256;

/// What the wait descriptor writes when the commands before it are done.
const DONE: u32 = 1;
/// What the status word holds while they are not.
const PENDING: u32 = 0;

/// Which context-cache entries to invalidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextScope {
    /// Every entry.
    Global,
    /// One function's entry (source id) in a domain.
    Device {
        /// The requester id: bus << 8 | devfn.
        sid: u16,
        /// The domain id the entry is (or, in caching mode, was) cached
        /// under.
        did: u16,
    },
}

/// Which IOTLB entries to invalidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbScope {
    /// Every entry.
    Global,
    /// Every entry of one domain.
    Domain(u16),
}

/// A context-cache invalidate descriptor.
pub const fn context_descriptor(scope: ContextScope) -> [u64; 2] {
    match scope {
        ContextScope::Global => [0x1 | 1 << 4, 0],
        ContextScope::Device { sid, did } => {
            [0x1 | 3 << 4 | (did as u64) << 16 | (sid as u64) << 32, 0]
        }
    }
}

/// An IOTLB invalidate descriptor, draining reads and writes if asked.
pub const fn iotlb_descriptor(
    scope: IotlbScope,
    drain_reads: bool,
    drain_writes: bool,
) -> [u64; 2] {
    let drain = (drain_writes as u64) << 6 | (drain_reads as u64) << 7;
    match scope {
        IotlbScope::Global => [0x2 | 1 << 4 | drain, 0],
        IotlbScope::Domain(did) => [0x2 | 2 << 4 | drain | (did as u64) << 16, 0],
    }
}

/// A global interrupt entry cache invalidate descriptor.
pub const fn interrupt_cache_descriptor() -> [u64; 2] {
    [0x4, 0]
}

/// An invalidation wait descriptor that writes `data` to `status`
/// (4-byte aligned) once everything before it is done (SW = 1, and FN
/// = 1: later descriptors wait for it).
pub const fn wait_descriptor(status: u64, data: u32) -> [u64; 2] {
    [0x5 | 1 << 5 | 1 << 6 | (data as u64) << 32, status & !3]
}

/// The invalidation queue of one unit.
#[derive(Debug)]
pub(super) struct Queue {
    /// The descriptor page.
    base: u64,
    /// The page whose first dword the wait descriptors write.
    status: u64,
    /// The next free descriptor.
    tail: u64,
}

impl Queue {
    /// Allocates the queue and turns queued invalidation on: IQT = 0,
    /// IQA = the page with QS = 0 and 128-bit descriptors, GCMD.QIE, wait
    /// for GSTS.QIES.
    pub(super) fn enable(
        regs: &mut impl VtdRegs,
        mem: &mut impl TableMemory,
        coherent: bool,
    ) -> Result<Self, VtdError> {
        let base = mem.alloc_zeroed().ok_or(VtdError::NoMemory)?;
        let Some(status) = mem.alloc_zeroed() else {
            mem.free(base);
            return Err(VtdError::NoMemory);
        };
        if !coherent {
            mem.flush(base, 4096);
        }
        regs.write64(IQT, 0);
        regs.write64(IQA, base);
        let current = regs.read32(GSTS) & G_PERSISTENT;
        regs.write32(GCMD, current | G_QIE);
        if let Err(e) = poll32(regs, GSTS, G_QIE, G_QIE, "GSTS.QIES") {
            mem.free(base);
            mem.free(status);
            return Err(e);
        }
        Ok(Self {
            base,
            status,
            tail: 0,
        })
    }

    /// Queues `descriptors` and a wait descriptor, moves the tail and
    /// waits for the status write. An invalidation queue error (FSTS.IQE,
    /// ICE or ITE) drops what is queued and is returned.
    pub(super) fn submit(
        &mut self,
        regs: &mut impl VtdRegs,
        mem: &mut impl TableMemory,
        coherent: bool,
        descriptors: &[[u64; 2]],
    ) -> Result<(), VtdError> {
        mem.write64(self.status, u64::from(PENDING));
        let wait = wait_descriptor(self.status, DONE);
        for d in descriptors.iter().chain([&wait]) {
            let at = self.base + self.tail * 16;
            mem.write64(at, d[0]);
            mem.write64(at + 8, d[1]);
            if !coherent {
                mem.flush(at, 16);
            }
            self.tail = (self.tail + 1) % QUEUE_LEN;
        }
        regs.write64(IQT, self.tail << 4);
        for _ in 0..POLL_LIMIT {
            if mem.read64(self.status) as u32 == DONE {
                return Ok(());
            }
            let fsts = regs.read32(FSTS);
            if fsts & (FSTS_IQE | FSTS_ICE | FSTS_ITE) != 0 {
                // Skip whatever is left (the unit stopped at IQH) and
                // let it fetch again.
                let head = regs.read64(IQH) & 0x7fff0;
                self.tail = head >> 4;
                regs.write64(IQT, head);
                regs.write32(FSTS, fsts & (FSTS_IQE | FSTS_ICE | FSTS_ITE));
                return Err(VtdError::QueueError(fsts));
            }
        }
        Err(VtdError::Timeout("invalidation wait descriptor"))
    }
}
