//! The capability walks: the standard list from the Capabilities Pointer
//! and the PCI Express extended list from 0x100. One implementation for
//! the hypervisor's discovery, its backend, its reset code and our guests.
//!
//! A list is the function's (or, for a guest's frontend, the backend's)
//! to make up, so a walk never trusts it: pointers are masked to dword
//! alignment, an offset seen before ends the walk (a loop), as do a
//! pointer out of the list's range, an ID of 0xFF (the function went
//! away) and the most entries the range can hold.
//!
//! The walks are steppers rather than iterators: each step is handed the
//! read it needs, so the caller can read the capability it found (with
//! the same accessor) before taking the next step.

use super::regs::header;
use super::{PciConfig, Sbdf};

/// A capability found in a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The capability ID (standard: 8 bits; extended: 16 bits).
    pub id: u16,
    /// Extended capabilities: the version (bits 19:16); 0 otherwise.
    pub version: u8,
    /// Its offset in config space.
    pub offset: u16,
}

/// The walk of the standard list (offsets 0x40..0x100).
#[derive(Clone, Debug)]
pub struct CapWalk {
    next: u16,
    seen: u64,
}

impl CapWalk {
    /// A walk from the Capabilities Pointer `cap_ptr`, or an empty one
    /// when `status` (the Status register) has no Capabilities List bit
    /// or reads all ones.
    pub fn new(status: u16, cap_ptr: u8) -> Self {
        let listed = status != 0xffff && status & super::regs::status::CAP_LIST != 0;
        Self {
            next: if listed { u16::from(cap_ptr & !3) } else { 0 },
            seen: 0,
        }
    }

    /// The walk of `sbdf`'s list, its Status register and pointer read
    /// from `cfg` (the CardBus pointer for a CardBus header).
    pub fn of<C: PciConfig + ?Sized>(cfg: &mut C, sbdf: Sbdf) -> Self {
        let layout = cfg.read8(sbdf, header::HEADER_TYPE) & !header::MULTIFUNCTION;
        let ptr = if layout == header::TYPE_CARDBUS {
            header::CARDBUS_CAP_PTR
        } else {
            header::CAP_PTR
        };
        let status = cfg.read16(sbdf, super::regs::status::OFFSET);
        Self::new(status, cfg.read8(sbdf, ptr))
    }

    /// The next capability; `read16(offset)` reads the ID and next
    /// pointer word at `offset`. `None` at the end of the list.
    pub fn step(&mut self, read16: impl FnOnce(u16) -> u16) -> Option<Found> {
        let at = self.next;
        // Offsets 0x40..0x100 are dwords 16..64 of the bitmap.
        if !(header::END..0x100).contains(&at) || self.seen & 1 << (at / 4) != 0 {
            return None;
        }
        self.seen |= 1 << (at / 4);
        let [id, next] = read16(at).to_le_bytes();
        if id == 0xff {
            self.next = 0;
            return None;
        }
        self.next = u16::from(next & !3);
        Some(Found {
            id: u16::from(id),
            version: 0,
            offset: at,
        })
    }

    /// The offset of the first capability `id` of `sbdf`, read live.
    pub fn find<C: PciConfig + ?Sized>(cfg: &mut C, sbdf: Sbdf, id: u8) -> Option<u16> {
        let mut walk = Self::of(cfg, sbdf);
        while let Some(c) = walk.step(|at| cfg.read16(sbdf, at)) {
            if c.id == u16::from(id) {
                return Some(c.offset);
            }
        }
        None
    }
}

/// The walk of the PCI Express extended list (offsets 0x100..0x1000).
#[derive(Clone, Debug)]
pub struct ExtCapWalk {
    next: u16,
    seen: [u64; 16],
}

impl Default for ExtCapWalk {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtCapWalk {
    /// A walk from 0x100. Callers check first that the function has 4096
    /// bytes of config space.
    pub const fn new() -> Self {
        Self {
            next: header::EXT_CAP_START,
            seen: [0; 16],
        }
    }

    /// The next capability; `read32(offset)` reads the header dword at
    /// `offset` (`None` if the read failed). A header of 0 or all ones
    /// ends the list.
    pub fn step(&mut self, read32: impl FnOnce(u16) -> Option<u32>) -> Option<Found> {
        let at = self.next;
        let slot = usize::from(at / 4);
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if !(header::EXT_CAP_START..0x1000).contains(&at) || self.seen[word] & bit != 0 {
            return None;
        }
        self.seen[word] |= bit;
        let head = read32(at).filter(|&h| h != 0 && h != !0);
        let Some(head) = head else {
            self.next = 0;
            return None;
        };
        // Bits 31:20 hold the next offset, below 0x1000 by construction.
        self.next = ((head >> 20) & 0xffc) as u16;
        Some(Found {
            id: head as u16,
            version: ((head >> 16) & 0xf) as u8,
            offset: at,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A 4 KiB config space as bytes.
    struct Space([u8; 4096]);

    impl Space {
        fn new(status: u16, cap_ptr: u8) -> Self {
            let mut s = Self([0; 4096]);
            s.0[6..8].copy_from_slice(&status.to_le_bytes());
            s.0[0x34] = cap_ptr;
            s
        }
        fn cap(mut self, at: usize, id: u8, next: u8) -> Self {
            self.0[at] = id;
            self.0[at + 1] = next;
            self
        }
        fn ext(mut self, at: usize, head: u32) -> Self {
            self.0[at..at + 4].copy_from_slice(&head.to_le_bytes());
            self
        }
        fn r16(&self, at: u16) -> u16 {
            let a = usize::from(at);
            u16::from_le_bytes([self.0[a], self.0[a + 1]])
        }
        fn r32(&self, at: u16) -> Option<u32> {
            let a = usize::from(at);
            Some(u32::from_le_bytes(self.0[a..a + 4].try_into().unwrap()))
        }
        fn walk(&self) -> Vec<(u16, u16)> {
            let mut w = CapWalk::new(self.r16(6), self.0[0x34]);
            let mut out = Vec::new();
            while let Some(c) = w.step(|at| self.r16(at)) {
                out.push((c.id, c.offset));
            }
            out
        }
        fn ext_walk(&self) -> Vec<(u16, u8, u16)> {
            let mut w = ExtCapWalk::new();
            let mut out = Vec::new();
            while let Some(c) = w.step(|at| self.r32(at)) {
                out.push((c.id, c.version, c.offset));
            }
            out
        }
    }

    const LISTED: u16 = 1 << 4;

    #[test]
    fn a_list_is_followed_in_order_with_pointers_masked_to_dwords() {
        let s = Space::new(LISTED, 0x52)
            .cap(0x50, 0x01, 0x63)
            .cap(0x60, 0x05, 0x70)
            .cap(0x70, 0x11, 0);
        assert_eq!(s.walk(), [(0x01, 0x50), (0x05, 0x60), (0x11, 0x70)]);
    }

    #[test]
    fn no_list_bit_or_an_absent_function_gives_nothing() {
        let s = Space::new(0, 0x50).cap(0x50, 0x01, 0);
        assert_eq!(s.walk(), []);
        let s = Space::new(0xffff, 0x50).cap(0x50, 0x01, 0);
        assert_eq!(s.walk(), []);
    }

    #[test]
    fn loops_pointers_into_the_header_and_id_ff_end_the_walk() {
        let looped = Space::new(LISTED, 0x40)
            .cap(0x40, 0x01, 0x50)
            .cap(0x50, 0x05, 0x40);
        assert_eq!(looped.walk(), [(0x01, 0x40), (0x05, 0x50)]);
        let into_header = Space::new(LISTED, 0x40).cap(0x40, 0x01, 0x3c);
        assert_eq!(into_header.walk(), [(0x01, 0x40)]);
        let gone = Space::new(LISTED, 0x40)
            .cap(0x40, 0xff, 0x50)
            .cap(0x50, 1, 0);
        assert_eq!(gone.walk(), []);
    }

    #[test]
    fn every_pointer_chain_ends_within_48_steps() {
        // Each capability points at the next dword, the last back at the
        // first: 48 entries, then the loop is seen.
        let mut s = Space::new(LISTED, 0x40);
        for at in (0x40..0x100).step_by(4) {
            let next = if at == 0xfc { 0x40 } else { at + 4 };
            s = s.cap(at, 0x09, next as u8);
        }
        assert_eq!(s.walk().len(), 48);
    }

    #[test]
    fn the_extended_list_gives_ids_versions_and_ends_at_zero_or_a_loop() {
        let s = Space::new(0, 0)
            .ext(0x100, 0x1401_0001)
            .ext(0x140, 0x1002_000e);
        assert_eq!(s.ext_walk(), [(0x0001, 1, 0x100), (0x000e, 2, 0x140)]);
        let looped = Space::new(0, 0)
            .ext(0x100, 0x1001_0001)
            .ext(0x100, 0x1001_0001);
        assert_eq!(looped.ext_walk(), [(0x0001, 1, 0x100)]);
        let absent = Space::new(0, 0).ext(0x100, !0);
        assert_eq!(absent.ext_walk(), []);
    }
}
