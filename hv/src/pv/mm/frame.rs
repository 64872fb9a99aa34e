//! Per-frame bookkeeping (Xen's `struct page_info`: `count_info` and
//! `type_info`) and what a frame number in an entry refers to.

use super::{FrameState, PageType, PgOwner, PvMm};

const PINNED: u8 = 1 << 0;
const VALIDATED: u8 = 1 << 1;
const REMOVED: u8 = 1 << 2;
const SPECIAL: u8 = 1 << 3;

/// 12 bytes per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Frame {
    /// Typed references (`PGT_count_mask`).
    pub count: u32,
    /// General references (`PGC_count_mask` less the allocation reference).
    pub refs: u32,
    /// `linear_pt_count`.
    pub linear: i16,
    /// The current type, or the last one while `count` is 0.
    pub ty: PageType,
    bits: u8,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 12);

impl Frame {
    /// A shared Xen page: writable for good, with the type reference
    /// `share_xen_page_with_guest` takes.
    pub fn special() -> Frame {
        Frame {
            count: 1,
            ty: PageType::Writable,
            bits: VALIDATED | SPECIAL,
            ..Frame::default()
        }
    }

    pub fn pinned(&self) -> bool {
        self.bits & PINNED != 0
    }
    pub fn validated(&self) -> bool {
        self.bits & VALIDATED != 0
    }
    pub fn removed(&self) -> bool {
        self.bits & REMOVED != 0
    }
    pub fn special_frame(&self) -> bool {
        self.bits & SPECIAL != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }
    pub fn set_pinned(&mut self, on: bool) {
        self.set(PINNED, on);
    }
    pub fn set_validated(&mut self, on: bool) {
        self.set(VALIDATED, on);
    }
    pub fn set_removed(&mut self, on: bool) {
        self.set(REMOVED, on);
    }

    /// Whether a new reference may be taken (`get_page`): the frame is the
    /// domain's, or was removed but is still referenced (Xen frees a page
    /// only when its last reference goes).
    pub fn owned(&self) -> bool {
        !self.removed() || self.refs > 0
    }

    /// A removed frame whose last reference went is free: its type goes
    /// too (`cleanup_page_mappings`).
    pub fn reset_if_free(&mut self) {
        if self.removed() && self.refs == 0 {
            *self = Frame::default();
            self.set_removed(true);
        }
    }

    pub fn state(&self) -> FrameState {
        FrameState {
            ty: self.ty,
            count: self.count,
            refs: self.refs,
            pinned: self.pinned(),
            validated: self.validated(),
            linear: self.linear,
            removed: self.removed(),
        }
    }
}

/// What a frame number in an L1 entry refers to (`get_page_from_l1e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// RAM or a special frame of the domain.
    Own,
    /// I/O memory the domain was given.
    Io { read_only: bool },
    /// A frame Xen has a page for that is not the domain's (another
    /// domain's, free, or removed from this one).
    Foreign,
    /// No page at all (beyond the frame limit): MMIO without permission.
    NoPage,
}

impl PvMm {
    pub(super) fn special_index(&self, mfn: u64) -> Option<usize> {
        self.special.binary_search_by_key(&mfn, |(m, _)| *m).ok()
    }

    pub(super) fn ram_frame(&self, mfn: u64) -> Option<&Frame> {
        usize::try_from(mfn).ok().and_then(|i| self.ram.get(i))
    }

    pub(super) fn ram_mut(&mut self, mfn: u64) -> Option<&mut Frame> {
        usize::try_from(mfn).ok().and_then(|i| self.ram.get_mut(i))
    }

    /// The bookkeeping of a RAM or special frame.
    pub(super) fn frame(&self, mfn: u64) -> Option<&Frame> {
        match self.ram_frame(mfn) {
            Some(f) => Some(f),
            None => self.special_index(mfn).map(|i| &self.special[i].1),
        }
    }

    pub(super) fn frame_mut(&mut self, mfn: u64) -> Option<&mut Frame> {
        if mfn < self.nr_pages() {
            return self.ram_mut(mfn);
        }
        let i = self.special_index(mfn)?;
        self.special.get_mut(i).map(|(_, f)| f)
    }

    /// Every RAM and special frame with its number.
    pub(super) fn frames(&self) -> impl Iterator<Item = (u64, &Frame)> {
        let ram = self.ram.iter().enumerate().map(|(i, f)| (i as u64, f));
        ram.chain(self.special.iter().map(|(m, f)| (*m, f)))
    }

    /// The I/O range holding `mfn`: whether it is read-only.
    pub(super) fn in_io(&self, mfn: u64) -> Option<bool> {
        self.io
            .iter()
            .find(|r| (r.start..r.end).contains(&mfn))
            .map(|r| r.read_only)
    }

    /// Whether `mfn` is the domain's and may take a new reference.
    pub(super) fn owned(&self, mfn: u64) -> bool {
        self.frame(mfn).is_some_and(Frame::owned)
    }

    pub(super) fn target(&self, mfn: u64) -> Target {
        if self.owned(mfn) {
            Target::Own
        } else if let Some(read_only) = self.in_io(mfn) {
            Target::Io { read_only }
        } else if mfn < self.frame_limit {
            Target::Foreign
        } else {
            Target::NoPage
        }
    }

    /// Take a general reference (`get_page(page, d)`): false if the frame
    /// is not the domain's (or the count would overflow).
    pub(super) fn get_page(&mut self, mfn: u64) -> bool {
        match self.frame_mut(mfn) {
            Some(f) if f.owned() && f.refs < u32::MAX => {
                f.refs += 1;
                true
            }
            _ => false,
        }
    }

    /// Drop a general reference (`put_page`). Never underflows: a count the
    /// guest's own DMA into its tables has made inconsistent stays at 0.
    pub(super) fn put_page(&mut self, mfn: u64) {
        if let Some(f) = self.frame_mut(mfn) {
            f.refs = f.refs.saturating_sub(1);
            f.reset_if_free();
        }
    }

    /// Whether `owner` may map the domain's own frames in an L1 entry: not
    /// with `DOMID_IO` (Xen refuses in `get_page_from_l1e` through
    /// `xsm_priv_mapping`: -EBUSY).
    pub(super) fn owner_maps_ram(owner: PgOwner) -> bool {
        owner == PgOwner::Own
    }
}
