//! The PV console ring page (`struct xencons_interface`, io/console.h):
//! the guest writes its console output into `out` and reads keyboard input
//! from `in`. The hypervisor is the backend: it drains `out` to the serial
//! line and pushes input into `in`.
//!
//! The caller copies the page out of guest memory, calls in here and copies
//! it back (the guest is not running meanwhile). The guest writes
//! `out_prod` and `in_cons`, so both are checked: a producer more than a
//! ring ahead of its consumer is reported and the ring emptied, never read
//! past. Indices are free-running `u32`s that wrap.

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

/// Bytes in the guest-to-backend ring (`out`).
pub const OUT_SIZE: u32 = 2048;
/// Bytes in the backend-to-guest ring (`in`).
pub const IN_SIZE: u32 = 1024;

/// A console page as the caller copies it out of guest memory.
pub type Page = [u8; 4096];

/// The layout of the shared page, for offsets only (the page is handled
/// as bytes).
#[derive(Debug)]
#[repr(C)]
pub struct ConsInterface {
    /// `in`: input for the guest.
    pub input: [u8; IN_SIZE as usize],
    /// `out`: output from the guest.
    pub out: [u8; OUT_SIZE as usize],
    pub in_cons: u32,
    pub in_prod: u32,
    pub out_cons: u32,
    pub out_prod: u32,
}

const _: () = {
    assert!(offset_of!(ConsInterface, input) == 0);
    assert!(offset_of!(ConsInterface, out) == 1024);
    assert!(offset_of!(ConsInterface, in_cons) == 3072);
    assert!(offset_of!(ConsInterface, in_prod) == 3076);
    assert!(offset_of!(ConsInterface, out_cons) == 3080);
    assert!(offset_of!(ConsInterface, out_prod) == 3084);
    assert!(size_of::<ConsInterface>() == 3088);
    assert!(size_of::<ConsInterface>() <= size_of::<Page>());
};

/// Byte offsets of the fields in the page.
pub mod offset {
    use super::ConsInterface;
    use core::mem::offset_of;
    pub const IN: usize = offset_of!(ConsInterface, input);
    pub const OUT: usize = offset_of!(ConsInterface, out);
    pub const IN_CONS: usize = offset_of!(ConsInterface, in_cons);
    pub const IN_PROD: usize = offset_of!(ConsInterface, in_prod);
    pub const OUT_CONS: usize = offset_of!(ConsInterface, out_cons);
    pub const OUT_PROD: usize = offset_of!(ConsInterface, out_prod);
}

/// A producer index more than a ring ahead of its consumer (or behind it),
/// as found on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadIndex {
    pub cons: u32,
    pub prod: u32,
}

/// What [`drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Bytes handed to the sink.
    pub bytes: usize,
    /// `out_cons` moved: the guest must get an event.
    pub notify: bool,
    /// The guest's `out_prod` was out of range; the ring was emptied.
    pub hostile: Option<BadIndex>,
}

/// What [`push_input`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes copied into `in` (the rest did not fit).
    pub taken: usize,
    /// `in_prod` moved: the guest must get an event.
    pub notify: bool,
    /// The guest's `in_cons` was out of range; the ring was emptied first.
    pub hostile: Option<BadIndex>,
}

use crate::le::{get_u32 as get, put_u32 as put};

/// Initialises a fresh console page at domain build: both rings empty.
pub fn init_page(page: &mut Page) {
    page.fill(0);
}

/// Moves up to `max` bytes the guest produced in `out` to `sink`,
/// advancing `out_cons`. If `out_prod` is more than `OUT_SIZE` ahead of
/// `out_cons` the ring is reset to empty (`out_cons = out_prod`) and the
/// indices reported, rather than read past the buffer.
pub fn drain(page: &mut Page, max: usize, mut sink: impl FnMut(u8)) -> Drained {
    let cons = get(page, offset::OUT_CONS);
    let prod = get(page, offset::OUT_PROD);
    let used = prod.wrapping_sub(cons);
    if used > OUT_SIZE {
        put(page, offset::OUT_CONS, prod);
        return Drained {
            bytes: 0,
            notify: true,
            hostile: Some(BadIndex { cons, prod }),
        };
    }
    let n = (used as usize).min(max);
    for i in 0..n {
        let at = offset::OUT + (cons.wrapping_add(i as u32) & (OUT_SIZE - 1)) as usize;
        if let Some(&b) = page.get(at) {
            sink(b);
        }
    }
    put(page, offset::OUT_CONS, cons.wrapping_add(n as u32));
    Drained {
        bytes: n,
        notify: n > 0,
        hostile: None,
    }
}

/// Whether the guest has output waiting in `out` (drain again).
pub fn has_output(page: &Page) -> bool {
    get(page, offset::OUT_PROD) != get(page, offset::OUT_CONS)
}

/// Copies what fits of `bytes` into `in`, advancing `in_prod`. If the
/// guest's `in_cons` is out of range the ring is first reset to empty
/// (`in_prod = in_cons`) and the indices reported.
pub fn push_input(page: &mut Page, bytes: &[u8]) -> Pushed {
    let cons = get(page, offset::IN_CONS);
    let mut prod = get(page, offset::IN_PROD);
    let mut hostile = None;
    if prod.wrapping_sub(cons) > IN_SIZE {
        hostile = Some(BadIndex { cons, prod });
        prod = cons;
        put(page, offset::IN_PROD, prod);
    }
    let room = (IN_SIZE - prod.wrapping_sub(cons)) as usize;
    let n = room.min(bytes.len());
    for (i, &b) in bytes.iter().take(n).enumerate() {
        let at = offset::IN + (prod.wrapping_add(i as u32) & (IN_SIZE - 1)) as usize;
        if let Some(slot) = page.get_mut(at) {
            *slot = b;
        }
    }
    put(page, offset::IN_PROD, prod.wrapping_add(n as u32));
    Pushed {
        taken: n,
        notify: n > 0 || hostile.is_some(),
        hostile,
    }
}

/// Where a line of a guest's console output came from: the hypervisor
/// console (`console_io`, port 0xE9) or the guest's PV console ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Hypervisor = 0,
    Ring = 1,
}

/// How many lines printed one way wait to be matched by the other.
const WINDOW: usize = 32;

/// Prints each line once when a guest writes its console output both to
/// the hypervisor console and to its ring (as XTF-style guests do, and
/// Linux's `xen_raw_console_write` next to hvc0). Xen sends the two to
/// different places (its own serial console, and xenconsoled); here both
/// reach the one serial line. A complete line is printed unless it is the
/// copy of a line printed from the other source and not matched yet (then
/// the lines the other source printed before that one were its own and are
/// no longer waited for); the last [`WINDOW`] unmatched lines of each
/// source wait, as hashes. A guest writing one way only is printed in full.
#[derive(Debug, Default)]
pub struct Once {
    waiting: [Vec<u32>; 2],
}

impl Once {
    /// Whether the complete `line` from `from` is to be printed.
    pub fn admit(&mut self, from: Source, line: &[u8]) -> bool {
        // FNV-1a.
        let h = line.iter().fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let mine = from as usize;
        if let Some(other) = self.waiting.get_mut(1 - mine) {
            if let Some(i) = other.iter().position(|&x| x == h) {
                other.drain(..=i);
                return false;
            }
        }
        if let Some(w) = self.waiting.get_mut(mine) {
            if w.len() == WINDOW {
                w.remove(0);
            }
            w.push(h);
        }
        true
    }
}

#[cfg(test)]
#[path = "pvconsole_tests.rs"]
mod tests;
