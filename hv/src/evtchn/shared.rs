//! The 2-level pending and mask bitmaps of a 64-bit guest's shared info
//! page and the per-vCPU upcall flags, as pure functions over the page's
//! bytes (little-endian `u64` words, layouts in
//! [`vmm_glue::xen::shared_info`]).
//!
//! These follow Xen's `evtchn_2l_set_pending` and `evtchn_2l_unmask`: a
//! newly pending, unmasked port sets its word's bit in the vCPU's
//! `evtchn_pending_sel`; a newly set selector bit sets
//! `evtchn_upcall_pending`, and only a newly set `evtchn_upcall_pending`
//! asks for an upcall, so a vCPU that has not yet acknowledged its last
//! upcall is not interrupted again.
//!
//! The page is guest memory: the guest may change it at any time, so
//! callers on real hardware must use atomic read-modify-write on these
//! words; the logic is the same.

use vmm_glue::xen::shared_info::{
    BITS_PER_EVTCHN_WORD, EVTCHN_2L_NR_CHANNELS, SHARED_INFO_EVTCHN_MASK,
    SHARED_INFO_EVTCHN_PENDING, SHARED_INFO_WC_VERSION, VCPU_INFO_PENDING_SEL, VCPU_INFO_SIZE,
    VCPU_INFO_UPCALL_PENDING, XEN_LEGACY_MAX_VCPUS,
};

use super::Port;

/// Where a vCPU's `vcpu_info` lives.
#[derive(Debug)]
pub enum VcpuInfoAt<'a> {
    /// `shared_info.vcpu_info[n]` (n < `XEN_LEGACY_MAX_VCPUS`).
    Legacy(u32),
    /// A `vcpu_info` the guest registered elsewhere
    /// (`VCPUOP_register_vcpu_info`): its 64 bytes.
    Registered(&'a mut [u8]),
}

/// Why a bitmap operation could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitmapError {
    /// The page slice is shorter than the event part of `shared_info`.
    ShortPage,
    /// The port is beyond the 2-level ABI.
    BadPort,
    /// No legacy `vcpu_info` slot for this vCPU, or a registered one is
    /// shorter than 64 bytes.
    BadVcpuInfo,
}

fn test_and_set(buf: &mut [u8], base: usize, bit: usize) -> bool {
    let off = base + (bit / 64) * 8;
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[off..off + 8]);
    let old = u64::from_le_bytes(w);
    let m = 1u64 << (bit % 64);
    buf[off..off + 8].copy_from_slice(&(old | m).to_le_bytes());
    old & m != 0
}

fn test_and_clear(buf: &mut [u8], base: usize, bit: usize) -> bool {
    let off = base + (bit / 64) * 8;
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[off..off + 8]);
    let old = u64::from_le_bytes(w);
    let m = 1u64 << (bit % 64);
    buf[off..off + 8].copy_from_slice(&(old & !m).to_le_bytes());
    old & m != 0
}

fn test(buf: &[u8], base: usize, bit: usize) -> bool {
    let off = base + (bit / 64) * 8;
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(w) & (1u64 << (bit % 64)) != 0
}

/// The event part of a shared info page.
#[derive(Debug)]
pub struct SharedPage<'a> {
    page: &'a mut [u8],
}

impl<'a> SharedPage<'a> {
    /// A view of `page`, which must hold at least the `vcpu_info` array and
    /// both bitmaps (normally the whole 4 KiB page).
    pub fn new(page: &'a mut [u8]) -> Result<Self, BitmapError> {
        if page.len() < SHARED_INFO_WC_VERSION {
            return Err(BitmapError::ShortPage);
        }
        Ok(Self { page })
    }

    fn check(port: Port) -> Result<usize, BitmapError> {
        let p = port as usize;
        if p < EVTCHN_2L_NR_CHANNELS {
            Ok(p)
        } else {
            Err(BitmapError::BadPort)
        }
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: Port) -> Result<bool, BitmapError> {
        Ok(test(
            self.page,
            SHARED_INFO_EVTCHN_PENDING,
            Self::check(port)?,
        ))
    }

    /// Whether `port` is masked.
    pub fn is_masked(&self, port: Port) -> Result<bool, BitmapError> {
        Ok(test(self.page, SHARED_INFO_EVTCHN_MASK, Self::check(port)?))
    }

    /// Sets `port`'s mask bit (what a guest does; for tests and reset).
    pub fn mask(&mut self, port: Port) -> Result<(), BitmapError> {
        test_and_set(self.page, SHARED_INFO_EVTCHN_MASK, Self::check(port)?);
        Ok(())
    }

    /// Clears `port`'s pending bit (a closed port must not stay pending).
    pub fn clear_pending(&mut self, port: Port) -> Result<(), BitmapError> {
        test_and_clear(self.page, SHARED_INFO_EVTCHN_PENDING, Self::check(port)?);
        Ok(())
    }

    /// The `vcpu_info` of `vcpu` within this page.
    fn legacy_slot(vcpu: u32) -> Result<usize, BitmapError> {
        let v = vcpu as usize;
        if v < XEN_LEGACY_MAX_VCPUS {
            Ok(v * VCPU_INFO_SIZE)
        } else {
            Err(BitmapError::BadVcpuInfo)
        }
    }

    /// Sets the selector bit for `port`'s word and, if newly set, the
    /// upcall flag; true when the upcall flag was newly set.
    fn mark(&mut self, port: usize, vcpu: VcpuInfoAt<'_>) -> Result<bool, BitmapError> {
        let (buf, base): (&mut [u8], usize) = match vcpu {
            VcpuInfoAt::Legacy(v) => (&mut *self.page, Self::legacy_slot(v)?),
            VcpuInfoAt::Registered(b) if b.len() >= VCPU_INFO_SIZE => (b, 0),
            VcpuInfoAt::Registered(_) => return Err(BitmapError::BadVcpuInfo),
        };
        if test_and_set(
            buf,
            base + VCPU_INFO_PENDING_SEL,
            port / BITS_PER_EVTCHN_WORD,
        ) {
            return Ok(false);
        }
        let flag = &mut buf[base + VCPU_INFO_UPCALL_PENDING];
        let was = *flag != 0;
        *flag = 1;
        Ok(!was)
    }

    fn check_vcpu(vcpu: &VcpuInfoAt<'_>) -> Result<(), BitmapError> {
        match vcpu {
            VcpuInfoAt::Legacy(v) => Self::legacy_slot(*v).map(|_| ()),
            VcpuInfoAt::Registered(b) if b.len() >= VCPU_INFO_SIZE => Ok(()),
            VcpuInfoAt::Registered(_) => Err(BitmapError::BadVcpuInfo),
        }
    }

    /// Marks `port` pending for the vCPU whose `vcpu_info` is `vcpu`.
    /// Returns true when an upcall must be injected into that vCPU.
    pub fn set_pending(&mut self, port: Port, vcpu: VcpuInfoAt<'_>) -> Result<bool, BitmapError> {
        let p = Self::check(port)?;
        Self::check_vcpu(&vcpu)?;
        if test_and_set(self.page, SHARED_INFO_EVTCHN_PENDING, p) {
            return Ok(false);
        }
        if test(self.page, SHARED_INFO_EVTCHN_MASK, p) {
            return Ok(false);
        }
        self.mark(p, vcpu)
    }

    /// Clears `port`'s mask bit and delivers it if it is pending. Returns
    /// true when an upcall must be injected.
    pub fn unmask(&mut self, port: Port, vcpu: VcpuInfoAt<'_>) -> Result<bool, BitmapError> {
        let p = Self::check(port)?;
        Self::check_vcpu(&vcpu)?;
        if !test_and_clear(self.page, SHARED_INFO_EVTCHN_MASK, p) {
            return Ok(false);
        }
        if !test(self.page, SHARED_INFO_EVTCHN_PENDING, p) {
            return Ok(false);
        }
        self.mark(p, vcpu)
    }
}

/// Reads `evtchn_upcall_pending` and `evtchn_pending_sel` of a legacy
/// `vcpu_info` (for inspection and tests).
pub fn legacy_vcpu_flags(page: &[u8], vcpu: u32) -> Option<(u8, u64)> {
    let base = (vcpu as usize).checked_mul(VCPU_INFO_SIZE)?;
    if vcpu as usize >= XEN_LEGACY_MAX_VCPUS || page.len() < base + VCPU_INFO_SIZE {
        return None;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&page[base + VCPU_INFO_PENDING_SEL..base + VCPU_INFO_PENDING_SEL + 8]);
    Some((page[base + VCPU_INFO_UPCALL_PENDING], u64::from_le_bytes(w)))
}
