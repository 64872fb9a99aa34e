//! shared_info: mapping it over a page of this image with
//! `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`, the event channel
//! bitmaps, vCPU 0's `vcpu_info` and the time it publishes (pvclock
//! `vcpu_time_info`, the wallclock).

use core::sync::atomic::{AtomicU64, Ordering};

use super::layout::{shared_info as si, time_info as ti, vcpu_info as vi};
use super::page::{Page, PageBuf};
use super::{add_to_physmap, mem};

/// The page handed to the hypervisor as shared_info.
static SHARED_INFO: PageBuf = PageBuf::new();

/// Set once the mapping succeeded.
static MAPPED: AtomicU64 = AtomicU64::new(0);

/// Maps shared_info at this image's page; returns the hypercall result.
/// On success every event channel is masked (Xen leaves the mask bits to
/// the guest; a port is unmasked when a guest binds it).
pub fn map() -> i64 {
    let page = SHARED_INFO.page();
    let rc = add_to_physmap(mem::SPACE_SHARED_INFO, 0, page.gfn());
    if rc == 0 {
        MAPPED.store(page.addr(), Ordering::Release);
        for w in 0..si::EVTCHN_WORDS {
            page.u64(si::EVTCHN_MASK + 8 * w)
                .store(u64::MAX, Ordering::SeqCst);
        }
    }
    rc
}

/// The shared_info page, once [`map`] succeeded.
pub fn page() -> Option<Page> {
    let addr = MAPPED.load(Ordering::Acquire);
    (addr != 0).then(|| SHARED_INFO.page())
}

/// The page [`map`] hands over, mapped or not.
pub fn buffer() -> Page {
    SHARED_INFO.page()
}

fn word(offset: usize, port: u32) -> Option<(&'static AtomicU64, u64)> {
    let w = usize::try_from(port / 64).ok()?;
    if w >= si::EVTCHN_WORDS {
        return None;
    }
    Some((page()?.u64(offset + 8 * w), 1u64 << (port % 64)))
}

/// Whether `port`'s pending bit is set.
pub fn is_pending(port: u32) -> bool {
    word(si::EVTCHN_PENDING, port).is_some_and(|(w, bit)| w.load(Ordering::SeqCst) & bit != 0)
}

/// Clears `port`'s pending bit; returns whether it was set.
pub fn clear_pending(port: u32) -> bool {
    word(si::EVTCHN_PENDING, port)
        .is_some_and(|(w, bit)| w.fetch_and(!bit, Ordering::SeqCst) & bit != 0)
}

/// Whether `port`'s mask bit is set.
pub fn is_masked(port: u32) -> bool {
    word(si::EVTCHN_MASK, port).is_some_and(|(w, bit)| w.load(Ordering::SeqCst) & bit != 0)
}

/// Sets `port`'s mask bit.
pub fn mask(port: u32) {
    if let Some((w, bit)) = word(si::EVTCHN_MASK, port) {
        w.fetch_or(bit, Ordering::SeqCst);
    }
}

/// The pending word `w` with the masked ports taken out.
pub fn deliverable(w: usize) -> u64 {
    let Some(p) = page().filter(|_| w < si::EVTCHN_WORDS) else {
        return 0;
    };
    p.u64(si::EVTCHN_PENDING + 8 * w).load(Ordering::SeqCst)
        & !p.u64(si::EVTCHN_MASK + 8 * w).load(Ordering::SeqCst)
}

/// vCPU 0's `evtchn_upcall_pending`.
pub fn upcall_pending() -> u8 {
    page().map_or(0, |p| p.u8(vi::UPCALL_PENDING).load(Ordering::SeqCst))
}

/// Clears vCPU 0's `evtchn_upcall_pending`.
pub fn clear_upcall_pending() {
    if let Some(p) = page() {
        p.u8(vi::UPCALL_PENDING).store(0, Ordering::SeqCst);
    }
}

/// Takes vCPU 0's `evtchn_pending_sel` (atomic exchange with 0).
pub fn take_pending_sel() -> u64 {
    page().map_or(0, |p| p.u64(vi::PENDING_SEL).swap(0, Ordering::SeqCst))
}

/// vCPU 0's `evtchn_pending_sel`, unchanged.
pub fn pending_sel() -> u64 {
    page().map_or(0, |p| p.u64(vi::PENDING_SEL).load(Ordering::SeqCst))
}

/// One consistent copy of vCPU 0's `vcpu_time_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeInfo {
    /// The (even) version the copy was taken at.
    pub version: u32,
    /// TSC at `system_time`.
    pub tsc_timestamp: u64,
    /// System time (ns since boot) at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC ticks to ns: multiplier (32.32 fixed point).
    pub mul: u32,
    /// TSC ticks to ns: shift applied first.
    pub shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
}

impl TimeInfo {
    /// Nanoseconds of system time at TSC value `tsc` (pvclock formula).
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if self.shift >= 0 {
            delta << self.shift
        } else {
            delta >> -i32::from(self.shift)
        };
        let ns = (u128::from(delta) * u128::from(self.mul)) >> 32;
        self.system_time.wrapping_add(ns as u64)
    }

    /// TSC ticks in `ns` nanoseconds (the inverse of the formula, roughly).
    pub fn ticks_for(&self, ns: u64) -> u64 {
        if self.mul == 0 {
            return 0;
        }
        let t = (u128::from(ns) << 32) / u128::from(self.mul);
        let t = if self.shift >= 0 {
            t >> self.shift
        } else {
            t << -i32::from(self.shift)
        };
        t as u64
    }
}

/// Reads vCPU 0's `vcpu_time_info` with the version protocol: retry while
/// the version is odd or changed during the copy. `None` before [`map`] or
/// after 1000 torn reads.
pub fn time_info() -> Option<TimeInfo> {
    let p = page()?;
    let base = vi::TIME;
    for _ in 0..1000 {
        let v1 = p.u32(base + ti::VERSION).load(Ordering::SeqCst);
        if v1 & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        let t = TimeInfo {
            version: v1,
            tsc_timestamp: p.u64(base + ti::TSC_TIMESTAMP).load(Ordering::SeqCst),
            system_time: p.u64(base + ti::SYSTEM_TIME).load(Ordering::SeqCst),
            mul: p.u32(base + ti::MUL).load(Ordering::SeqCst),
            shift: p.u8(base + ti::SHIFT).load(Ordering::SeqCst) as i8,
            flags: p.u8(base + ti::FLAGS).load(Ordering::SeqCst),
        };
        if p.u32(base + ti::VERSION).load(Ordering::SeqCst) == v1 {
            return Some(t);
        }
    }
    None
}

/// Current system time in ns (pvclock over the TSC), `None` before [`map`].
pub fn now() -> Option<u64> {
    let t = time_info()?;
    Some(t.system_time_at(crate::cpu::rdtsc()))
}

/// The wallclock: (version, seconds since the epoch, ns), read with the
/// version protocol.
pub fn wallclock() -> Option<(u32, u64, u32)> {
    let p = page()?;
    for _ in 0..1000 {
        let v1 = p.u32(si::WC_VERSION).load(Ordering::SeqCst);
        if v1 & 1 != 0 {
            continue;
        }
        let sec = u64::from(p.u32(si::WC_SEC).load(Ordering::SeqCst))
            | (u64::from(p.u32(si::WC_SEC_HI).load(Ordering::SeqCst)) << 32);
        let nsec = p.u32(si::WC_NSEC).load(Ordering::SeqCst);
        if p.u32(si::WC_VERSION).load(Ordering::SeqCst) == v1 {
            return Some((v1, sec, nsec));
        }
    }
    None
}
