//! Test double of table memory for both IOMMUs: a map of frames (with
//! contiguous runs) that counts allocations, records flushes and catches
//! stray accesses and double frees.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::amdvi::ContiguousMemory;
use super::TableMemory;

/// Frames of table memory.
#[derive(Debug, Default)]
pub(crate) struct FakeMem {
    frames: BTreeMap<u64, Vec<u64>>,
    next: u64,
    /// Frames handed out in total.
    pub allocated: usize,
    /// Frames returned in total.
    pub freed: usize,
    /// Allocation fails once this many frames are live.
    pub limit: Option<usize>,
    /// `flush` calls: (address, length).
    pub flushes: Vec<(u64, u64)>,
    /// Contiguous runs handed out and not returned: start, frames.
    runs: BTreeMap<u64, usize>,
    /// Frames ever freed, to catch double frees.
    released: BTreeSet<u64>,
}

impl FakeMem {
    pub(crate) fn new() -> Self {
        Self {
            next: 0x10_0000,
            ..Self::default()
        }
    }

    /// Frames allocated and not freed.
    pub(crate) fn live(&self) -> usize {
        self.frames.len()
    }

    fn word(&mut self, hpa: u64) -> &mut u64 {
        assert_eq!(hpa % 8, 0, "unaligned table access at {hpa:#x}");
        let frame = self
            .frames
            .get_mut(&(hpa & !0xfff))
            .unwrap_or_else(|| panic!("access to {hpa:#x} outside any live frame"));
        &mut frame[((hpa & 0xfff) / 8) as usize]
    }

    fn release(&mut self, hpa: u64) {
        assert!(self.released.insert(hpa), "frame {hpa:#x} freed twice");
        assert!(
            self.frames.remove(&hpa).is_some(),
            "free of {hpa:#x}, never allocated"
        );
        self.freed += 1;
    }
}

impl TableMemory for FakeMem {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        self.alloc_zeroed_contiguous(1)
    }

    fn free(&mut self, hpa: u64) {
        assert!(
            !self.runs.contains_key(&hpa),
            "free of {hpa:#x}, the start of a contiguous run"
        );
        self.release(hpa);
    }

    fn read64(&mut self, hpa: u64) -> u64 {
        *self.word(hpa)
    }

    fn write64(&mut self, hpa: u64, v: u64) {
        *self.word(hpa) = v;
    }

    fn flush(&mut self, hpa: u64, len: u64) {
        self.flushes.push((hpa, len));
    }
}

impl ContiguousMemory for FakeMem {
    fn alloc_zeroed_contiguous(&mut self, frames: usize) -> Option<u64> {
        if self.limit.is_some_and(|l| self.frames.len() + frames > l) {
            return None;
        }
        let hpa = self.next;
        for i in 0..frames as u64 {
            self.frames.insert(hpa + i * 0x1000, alloc::vec![0; 512]);
        }
        self.next += frames as u64 * 0x1000;
        self.allocated += frames;
        if frames > 1 {
            self.runs.insert(hpa, frames);
        }
        Some(hpa)
    }

    fn free_contiguous(&mut self, hpa: u64, frames: usize) {
        if frames > 1 {
            assert_eq!(self.runs.remove(&hpa), Some(frames), "bad run {hpa:#x}");
        }
        for i in 0..frames as u64 {
            self.release(hpa + i * 0x1000);
        }
    }
}

/// Table memory shared between a test and a fake unit (which reads the
/// tables and queues, and writes status words and log entries into it).
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedMem(pub Rc<RefCell<FakeMem>>);

impl SharedMem {
    pub(crate) fn new() -> Self {
        Self(Rc::new(RefCell::new(FakeMem::new())))
    }

    /// Frames allocated and not freed.
    pub(crate) fn live(&self) -> usize {
        self.0.borrow().live()
    }
}

impl TableMemory for SharedMem {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        self.0.borrow_mut().alloc_zeroed()
    }

    fn free(&mut self, hpa: u64) {
        self.0.borrow_mut().free(hpa);
    }

    fn read64(&mut self, hpa: u64) -> u64 {
        self.0.borrow_mut().read64(hpa)
    }

    fn write64(&mut self, hpa: u64, v: u64) {
        self.0.borrow_mut().write64(hpa, v);
    }

    fn flush(&mut self, hpa: u64, len: u64) {
        self.0.borrow_mut().flush(hpa, len);
    }
}

impl ContiguousMemory for SharedMem {
    fn alloc_zeroed_contiguous(&mut self, frames: usize) -> Option<u64> {
        self.0.borrow_mut().alloc_zeroed_contiguous(frames)
    }

    fn free_contiguous(&mut self, hpa: u64, frames: usize) {
        self.0.borrow_mut().free_contiguous(hpa, frames);
    }
}
