//! The shared info page of a PV guest: the builder gives its machine
//! address in `start_info.shared_info`, and the guest maps it wherever it
//! likes with `update_va_mapping`. vCPU 0's `vcpu_info` carries the
//! virtual interrupt flag (`evtchn_upcall_mask`), the upcall pending flag
//! and, for PV, the fault address of the last #PF (`arch.cr2`).
//!
//! [`upcall`] is the event callback's work, as `xen.h` describes it: clear
//! `evtchn_upcall_pending`, take `evtchn_pending_sel`, and for each word
//! it names clear the pending bits of the unmasked ports, counting them.
//! Once the guest has switched to the FIFO ABI ([`use_fifo`]) it consumes
//! the queues as Linux does instead (`crate::xen::fifo::consume`).

use core::mem::offset_of;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use vmm_glue::xen::shared_info::{
    ArchVcpuInfo, VcpuInfo, EVTCHN_WORDS, SHARED_INFO_EVTCHN_MASK, SHARED_INFO_EVTCHN_PENDING,
    VCPU_INFO_PENDING_SEL, VCPU_INFO_UPCALL_MASK, VCPU_INFO_UPCALL_PENDING,
};

use super::abi::{pte, uvmf};
use super::hypercall;
use crate::xen::fifo;

/// Offset of vCPU 0's `arch.cr2`.
const VCPU_INFO_CR2: usize = offset_of!(VcpuInfo, arch) + offset_of!(ArchVcpuInfo, cr2);

static VA: AtomicU64 = AtomicU64::new(0);

/// Maps the shared info page (machine address `maddr`) read-write at the
/// page-aligned `va`, which must have an L1 entry in the current tables;
/// returns `update_va_mapping`'s result.
pub fn map(maddr: u64, va: u64) -> i64 {
    let rc = hypercall::update_va_mapping(
        va,
        (maddr & pte::ADDR) | pte::P | pte::RW | pte::A | pte::D | pte::NX,
        uvmf::INVLPG,
    );
    if rc == 0 {
        VA.store(va, Ordering::SeqCst);
    }
    rc
}

/// Where the page is mapped, once [`map`] succeeded.
pub fn va() -> Option<u64> {
    let va = VA.load(Ordering::SeqCst);
    (va != 0).then_some(va)
}

fn byte(offset: usize) -> Option<&'static AtomicU8> {
    let va = va()?;
    // SAFETY: the shared info page is mapped at `va` for the rest of the
    // run; `offset` is inside it; the hypervisor writes it concurrently,
    // hence atomics.
    Some(unsafe { AtomicU8::from_ptr((va + offset as u64) as *mut u8) })
}

fn word(offset: usize) -> Option<&'static AtomicU64> {
    let va = va()?;
    debug_assert!(offset.is_multiple_of(8) && offset < 4096);
    // SAFETY: as for `byte`; `offset` is 8-aligned.
    Some(unsafe { AtomicU64::from_ptr((va + offset as u64) as *mut u64) })
}

/// vCPU 0's `evtchn_upcall_mask`.
pub fn upcall_mask() -> Option<u8> {
    byte(VCPU_INFO_UPCALL_MASK).map(|b| b.load(Ordering::SeqCst))
}

/// Sets vCPU 0's `evtchn_upcall_mask` (1 masks events, 0 enables them).
pub fn set_upcall_mask(mask: u8) {
    if let Some(b) = byte(VCPU_INFO_UPCALL_MASK) {
        b.store(mask, Ordering::SeqCst);
    }
}

/// vCPU 0's `evtchn_upcall_pending`.
pub fn upcall_pending() -> Option<u8> {
    byte(VCPU_INFO_UPCALL_PENDING).map(|b| b.load(Ordering::SeqCst))
}

/// vCPU 0's `arch.cr2`.
pub fn cr2() -> Option<u64> {
    word(VCPU_INFO_CR2).map(|w| w.load(Ordering::SeqCst))
}

fn port_word(base: usize, port: u32) -> Option<(&'static AtomicU64, u64)> {
    let w = port as usize / 64;
    if w >= EVTCHN_WORDS {
        return None;
    }
    Some((word(base + 8 * w)?, 1 << (port % 64)))
}

/// Whether `port` is pending.
pub fn is_pending(port: u32) -> bool {
    port_word(SHARED_INFO_EVTCHN_PENDING, port)
        .is_some_and(|(w, bit)| w.load(Ordering::SeqCst) & bit != 0)
}

/// Sets `port`'s mask bit.
pub fn mask(port: u32) {
    if let Some((w, bit)) = port_word(SHARED_INFO_EVTCHN_MASK, port) {
        w.fetch_or(bit, Ordering::SeqCst);
    }
}

/// vCPU 0's `evtchn_pending_sel`.
pub fn pending_sel() -> Option<u64> {
    word(VCPU_INFO_PENDING_SEL).map(|w| w.load(Ordering::SeqCst))
}

/// Asks for an upcall that finds nothing: `evtchn_pending_sel` names word
/// `w` (which must hold no port pending and unmasked) and
/// `evtchn_upcall_pending` is set, as a guest's own bookkeeping might
/// leave them.
pub fn ask_empty_upcall(w: usize) {
    if let (Some(sel), Some(pending)) =
        (word(VCPU_INFO_PENDING_SEL), byte(VCPU_INFO_UPCALL_PENDING))
    {
        sel.fetch_or(1 << w, Ordering::SeqCst);
        pending.store(1, Ordering::SeqCst);
    }
}

/// Sets `evtchn_upcall_pending`, asking for an upcall whatever is
/// pending.
pub fn ask_upcall() {
    if let Some(pending) = byte(VCPU_INFO_UPCALL_PENDING) {
        pending.store(1, Ordering::SeqCst);
    }
}

static UPCALLS: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);

/// Upcalls handled since the guest started.
pub fn upcalls() -> u64 {
    UPCALLS.load(Ordering::SeqCst)
}

/// Ports 0-63 whose events the upcalls have taken, one bit each, since
/// the last [`take_seen`].
pub fn take_seen() -> u64 {
    SEEN.swap(0, Ordering::SeqCst)
}

/// Where the FIFO control block and the first event array page are
/// mapped, once the guest uses that ABI (0: the 2-level ABI).
static FIFO_CONTROL: AtomicU64 = AtomicU64::new(0);
static FIFO_ARRAY: AtomicU64 = AtomicU64::new(0);
/// Each queue's next port, 0 to start from HEAD (Linux's `q->head`).
static FIFO_NEXT: fifo::Next = [const { AtomicU32::new(0) }; fifo::MAX_QUEUES];

/// From now on the event callback consumes FIFO queues: the control block
/// is mapped read-write at `control` (vCPU 0's, its first byte) and the
/// first event array page at `array`.
pub fn use_fifo(control: u64, array: u64) {
    FIFO_ARRAY.store(array, Ordering::SeqCst);
    FIFO_CONTROL.store(control, Ordering::SeqCst);
}

fn fifo_u32(va: u64) -> &'static AtomicU32 {
    // SAFETY: `va` is 4-aligned inside the control block or the event
    // array page that `use_fifo` was given, mapped for the rest of the
    // run; the hypervisor writes them concurrently, hence atomics.
    unsafe { AtomicU32::from_ptr(va as *mut u32) }
}

/// Port `port`'s event word (ports on the first event array page only).
pub fn fifo_word(port: u32) -> Option<&'static AtomicU32> {
    let array = FIFO_ARRAY.load(Ordering::SeqCst);
    (array != 0 && port < fifo::WORDS_PER_PAGE).then(|| fifo_u32(array + 4 * u64::from(port)))
}

/// The control block's READY word.
pub fn fifo_ready() -> Option<u32> {
    let control = FIFO_CONTROL.load(Ordering::SeqCst);
    (control != 0).then(|| fifo_u32(control).load(Ordering::SeqCst))
}

/// The event callback's work (see the module comment).
pub(crate) fn upcall() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    let Some(pending) = byte(VCPU_INFO_UPCALL_PENDING) else {
        return;
    };
    pending.store(0, Ordering::SeqCst);
    let control = FIFO_CONTROL.load(Ordering::SeqCst);
    if control != 0 {
        fifo::consume(
            fifo_u32(control),
            |q| fifo_u32(control + 8 + 4 * q as u64).load(Ordering::SeqCst),
            fifo_word,
            &FIFO_NEXT,
            |port| {
                if port < 64 {
                    SEEN.fetch_or(1 << port, Ordering::SeqCst);
                }
            },
        );
        return;
    }
    let Some(sel) = word(VCPU_INFO_PENDING_SEL).map(|w| w.swap(0, Ordering::SeqCst)) else {
        return;
    };
    for w in (0..EVTCHN_WORDS).filter(|w| sel & (1 << w) != 0) {
        let (Some(p), Some(m)) = (
            word(SHARED_INFO_EVTCHN_PENDING + 8 * w),
            word(SHARED_INFO_EVTCHN_MASK + 8 * w),
        ) else {
            return;
        };
        let ready = p.load(Ordering::SeqCst) & !m.load(Ordering::SeqCst);
        p.fetch_and(!ready, Ordering::SeqCst);
        if w == 0 {
            SEEN.fetch_or(ready, Ordering::SeqCst);
        }
    }
}
