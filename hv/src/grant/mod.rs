//! Grant tables, version 1 (`xen/include/public/grant_table.h`): each
//! domain's table size and version, and the hypervisor-side backend that
//! maps a frame another domain granted.
//!
//! Checks, order and `GNTST_*` results follow `xen/common/grant_table.c`.
//! A granter's table is guest memory; this module reads and updates it
//! only through [`GrantFrames`], so the caller decides how it is reached
//! (and makes the flag updates atomic on real hardware).
//!
//! Xen reports a bad entry type, a grant to another domain and a writable
//! map of a read-only grant all as `GNTST_general_error`, not
//! `GNTST_permission_denied` (which it keeps for policy refusals and for
//! copying by frame from a foreign domain); so does this module.

pub mod copy;
pub mod op;

#[cfg(test)]
mod tests;

use vmm_glue::compact::VecMap;

use vmm_glue::xen::event_channel::DOMID_SELF;
use vmm_glue::xen::grant_table::{gntst, gtf, GrantEntryV1, GrantRef};

use crate::evtchn::{DomId, Errno};

/// Bytes in a grant table frame.
pub const PAGE_SIZE: usize = 4096;

/// Version 1 entries per frame.
pub const ENTRIES_PER_FRAME: u32 = (PAGE_SIZE / GrantEntryV1::SIZE) as u32;

/// Default limit of table frames per domain.
pub const DEFAULT_MAX_FRAMES: u32 = 4;

/// A failed grant operation, as its `GNTST_*` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i16)]
pub enum GrantStatus {
    /// `GNTST_general_error`.
    GeneralError = gntst::GENERAL_ERROR,
    /// `GNTST_bad_domain`.
    BadDomain = gntst::BAD_DOMAIN,
    /// `GNTST_bad_gntref`.
    BadGntref = gntst::BAD_GNTREF,
    /// `GNTST_bad_handle`.
    BadHandle = gntst::BAD_HANDLE,
    /// `GNTST_permission_denied`.
    PermissionDenied = gntst::PERMISSION_DENIED,
    /// `GNTST_bad_page`: a frame that is not the domain's memory.
    BadPage = gntst::BAD_PAGE,
    /// `GNTST_bad_copy_arg`.
    BadCopyArg = gntst::BAD_COPY_ARG,
    /// `GNTST_no_space`.
    NoSpace = gntst::NO_SPACE,
}

impl GrantStatus {
    /// The value written to the operation's `status` field.
    pub const fn status(self) -> i16 {
        self as i16
    }
}

/// A domain's grant table frames as the hypervisor reaches them.
pub trait GrantFrames {
    /// Entry `r`, or None beyond the frames.
    fn entry(&self, r: GrantRef) -> Option<GrantEntryV1>;
    /// Sets the `set` bits and clears the `clear` bits of entry `r`'s flags.
    fn update_flags(&mut self, r: GrantRef, set: u16, clear: u16);
}

fn entry_range(r: GrantRef) -> Option<core::ops::Range<usize>> {
    let start = (r as usize).checked_mul(GrantEntryV1::SIZE)?;
    Some(start..start + GrantEntryV1::SIZE)
}

impl GrantFrames for [u8] {
    fn entry(&self, r: GrantRef) -> Option<GrantEntryV1> {
        let b = self.get(entry_range(r)?)?;
        let mut e = [0u8; GrantEntryV1::SIZE];
        e.copy_from_slice(b);
        Some(GrantEntryV1::from_bytes(&e))
    }

    fn update_flags(&mut self, r: GrantRef, set: u16, clear: u16) {
        let Some(range) = entry_range(r) else { return };
        if let Some(b) = self.get_mut(range.start..range.start + 2) {
            let f = (u16::from_le_bytes([b[0], b[1]]) | set) & !clear;
            b.copy_from_slice(&f.to_le_bytes());
        }
    }
}

/// A domain's grant table: frames in use, its limit and its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantTable {
    nr_frames: u32,
    max_frames: u32,
    version: u32,
}

impl GrantTable {
    /// An empty version 1 table of at most `max_frames` frames.
    pub const fn new(max_frames: u32) -> Self {
        Self {
            nr_frames: 0,
            max_frames,
            version: 1,
        }
    }

    /// Frames in use.
    pub const fn nr_frames(&self) -> u32 {
        self.nr_frames
    }

    /// The frame limit.
    pub const fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Entries the frames in use hold.
    pub const fn nr_entries(&self) -> u32 {
        self.nr_frames * ENTRIES_PER_FRAME
    }

    /// The table format in use.
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// `GNTTABOP_setup_table`: grows the table to at least `nr_frames`
    /// (it never shrinks). `GNTST_general_error` beyond the limit. The
    /// caller then reports the guest frame numbers of frames
    /// `0..nr_frames`.
    pub fn setup_table(&mut self, nr_frames: u32) -> Result<(), GrantStatus> {
        if nr_frames > self.max_frames {
            return Err(GrantStatus::GeneralError);
        }
        self.nr_frames = self.nr_frames.max(nr_frames);
        Ok(())
    }

    /// `XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table` index `idx`:
    /// grows the table to cover frame `idx`; -EINVAL beyond the limit.
    pub fn map_frame(&mut self, idx: u32) -> Result<(), Errno> {
        if idx >= self.max_frames {
            return Err(Errno::Inval);
        }
        self.nr_frames = self.nr_frames.max(idx + 1);
        Ok(())
    }

    /// `GNTTABOP_set_version`: version 1 is accepted; version 2 is
    /// -ENOSYS (not offered, as in Xen with v2 disabled); anything else is
    /// -EINVAL. On success the guest reads back the version in use.
    pub fn set_version(&mut self, version: u32) -> Result<u32, Errno> {
        match version {
            1 => Ok(self.version),
            2 => Err(Errno::NoSys),
            _ => Err(Errno::Inval),
        }
    }
}

/// A successful map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Handle for [`Grants::unmap`].
    pub handle: u32,
    /// The granter's frame (a guest frame number of the granter).
    pub frame: u32,
    /// Whether the mapping is read-only.
    pub readonly: bool,
}

/// One pinned grant (Xen's active entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Active {
    mapper: DomId,
    frame: u32,
    readers: u32,
    writers: u32,
}

/// A live mapping (Xen's maptrack entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Maptrack {
    mapper: DomId,
    granter: DomId,
    gref: GrantRef,
    readonly: bool,
}

/// The grant tables of every domain and the mappings between them.
#[derive(Debug, Default)]
pub struct Grants {
    tables: VecMap<DomId, GrantTable>,
    active: VecMap<(DomId, GrantRef), Active>,
    maps: VecMap<u32, Maptrack>,
    next_handle: u32,
}

/// Result of `GNTTABOP_query_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuerySize {
    /// Frames in use.
    pub nr_frames: u32,
    /// Frame limit.
    pub max_nr_frames: u32,
}

/// Most live mappings in the registry (Xen's maptrack limit per domain is
/// of the same order).
pub const MAX_MAPPINGS: usize = 1024;

impl Grants {
    /// No domains.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a domain with an empty table; -EEXIST if known.
    pub fn add_domain(&mut self, dom: DomId, max_frames: u32) -> Result<(), Errno> {
        if self.tables.contains_key(&dom) {
            return Err(Errno::Exist);
        }
        self.tables.insert(dom, GrantTable::new(max_frames));
        Ok(())
    }

    /// `dom`'s table.
    pub fn table(&self, dom: DomId) -> Option<&GrantTable> {
        self.tables.get(&dom)
    }

    /// `dom`'s table, to set up or change version.
    pub fn table_mut(&mut self, dom: DomId) -> Option<&mut GrantTable> {
        self.tables.get_mut(&dom)
    }

    /// `GNTTABOP_query_size` by `me` for `dom`: only `DOMID_SELF` (or its
    /// own id) is allowed (`GNTST_permission_denied` otherwise);
    /// `GNTST_bad_domain` for an unknown domain.
    pub fn query_size(&self, me: DomId, dom: DomId) -> Result<QuerySize, GrantStatus> {
        let dom = if dom == DOMID_SELF { me } else { dom };
        let t = self.tables.get(&dom).ok_or(GrantStatus::BadDomain)?;
        if dom != me {
            return Err(GrantStatus::PermissionDenied);
        }
        Ok(QuerySize {
            nr_frames: t.nr_frames,
            max_nr_frames: t.max_frames,
        })
    }

    /// Live mappings, for inspection.
    pub fn mappings(&self) -> usize {
        self.maps.len()
    }

    fn free_handle(&mut self) -> Option<u32> {
        if self.maps.len() >= MAX_MAPPINGS {
            return None;
        }
        while self.maps.contains_key(&self.next_handle) {
            self.next_handle = self.next_handle.wrapping_add(1);
        }
        let h = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1);
        Some(h)
    }

    /// `GNTTABOP_map_grant_ref` by `mapper` of `gref` in `granter`'s table
    /// `frames`: `GNTST_bad_domain` for an unknown granter,
    /// `GNTST_no_space` without a free handle, `GNTST_bad_gntref` beyond
    /// the granter's entries, and `GNTST_general_error` for an entry that
    /// is not `permit_access` for `mapper`, or is read-only and `readonly`
    /// is false. While mapped, the entry has `GTF_reading`, and
    /// `GTF_writing` for a writable mapping.
    ///
    /// As in Xen, a grant already pinned by `mapper` is re-checked only
    /// when it gains its first writable mapping; its frame stays the one
    /// read at the first map.
    pub fn map(
        &mut self,
        mapper: DomId,
        granter: DomId,
        frames: &mut (impl GrantFrames + ?Sized),
        gref: GrantRef,
        readonly: bool,
    ) -> Result<Mapping, GrantStatus> {
        let table = *self.tables.get(&granter).ok_or(GrantStatus::BadDomain)?;
        let handle = self.free_handle().ok_or(GrantStatus::NoSpace)?;
        if gref >= table.nr_entries() {
            return Err(GrantStatus::BadGntref);
        }
        let key = (granter, gref);
        let act = self.active.get(&key).copied();
        if let Some(a) = act {
            if a.mapper != mapper {
                return Err(GrantStatus::GeneralError);
            }
        }
        let needs_check = match act {
            None => true,
            Some(a) => !readonly && a.writers == 0,
        };
        let mut frame = act.map_or(0, |a| a.frame);
        if needs_check {
            let e = frames.entry(gref).ok_or(GrantStatus::BadGntref)?;
            if e.flags & gtf::TYPE_MASK != gtf::PERMIT_ACCESS || e.domid != mapper {
                return Err(GrantStatus::GeneralError);
            }
            if !readonly && e.flags & gtf::READONLY != 0 {
                return Err(GrantStatus::GeneralError);
            }
            let set = if readonly {
                gtf::READING
            } else {
                gtf::READING | gtf::WRITING
            };
            frames.update_flags(gref, set, 0);
            if act.is_none() {
                frame = e.frame;
            }
        }
        let a = self.active.entry(key).or_insert(Active {
            mapper,
            frame,
            readers: 0,
            writers: 0,
        });
        if readonly {
            a.readers += 1;
        } else {
            a.writers += 1;
        }
        self.maps.insert(
            handle,
            Maptrack {
                mapper,
                granter,
                gref,
                readonly,
            },
        );
        Ok(Mapping {
            handle,
            frame,
            readonly,
        })
    }

    /// `GNTTABOP_unmap_grant_ref` by `mapper` of `handle`:
    /// `GNTST_bad_handle` if it is not a live mapping of `mapper`. Clears
    /// `GTF_writing` when the last writable mapping goes and `GTF_reading`
    /// when the last mapping goes. `frames` is the granter's table.
    pub fn unmap(
        &mut self,
        mapper: DomId,
        handle: u32,
        frames: &mut (impl GrantFrames + ?Sized),
    ) -> Result<(DomId, GrantRef), GrantStatus> {
        let m = *self.maps.get(&handle).ok_or(GrantStatus::BadHandle)?;
        if m.mapper != mapper {
            return Err(GrantStatus::BadHandle);
        }
        self.maps.remove(&handle);
        let key = (m.granter, m.gref);
        if let Some(a) = self.active.get_mut(&key) {
            if m.readonly {
                a.readers = a.readers.saturating_sub(1);
            } else {
                a.writers = a.writers.saturating_sub(1);
            }
            let mut clear = 0;
            if a.writers == 0 {
                clear |= gtf::WRITING;
            }
            if a.readers == 0 && a.writers == 0 {
                clear |= gtf::READING;
                self.active.remove(&key);
            }
            if clear != 0 {
                frames.update_flags(m.gref, 0, clear);
            }
        }
        Ok(key)
    }

    /// The granter and reference of every live mapping `mapper` holds,
    /// with their handles, so that a dying mapper's mappings can be
    /// unmapped against each granter's frames.
    pub fn mappings_of(&self, mapper: DomId) -> impl Iterator<Item = (u32, DomId, GrantRef)> + '_ {
        self.maps
            .iter()
            .filter(move |(_, m)| m.mapper == mapper)
            .map(|(&h, m)| (h, m.granter, m.gref))
    }

    /// Whether `gref` of `granter` is mapped by anyone.
    pub fn is_mapped(&self, granter: DomId, gref: GrantRef) -> bool {
        self.active.contains_key(&(granter, gref))
    }

    /// The frame behind one grant end of a checked copy (see
    /// [`copy::plan_copy`]), read from `granter`'s table `frames`: the
    /// checks of a map by `me`, writable for a copy destination. Like
    /// Xen's `acquire_grant_for_copy`, a grant pinned by a live mapping
    /// copies from the pinned frame. The flags are not left changed: the
    /// copy completes within the hypercall.
    pub fn copy_frame(
        &self,
        me: DomId,
        granter: DomId,
        frames: &(impl GrantFrames + ?Sized),
        gref: GrantRef,
        writable: bool,
    ) -> Result<u32, GrantStatus> {
        let table = self.tables.get(&granter).ok_or(GrantStatus::BadDomain)?;
        if gref >= table.nr_entries() {
            return Err(GrantStatus::BadGntref);
        }
        let e = frames.entry(gref).ok_or(GrantStatus::BadGntref)?;
        if e.flags & gtf::TYPE_MASK != gtf::PERMIT_ACCESS || e.domid != me {
            return Err(GrantStatus::GeneralError);
        }
        if writable && e.flags & gtf::READONLY != 0 {
            return Err(GrantStatus::GeneralError);
        }
        match self.active.get(&(granter, gref)) {
            Some(a) if a.mapper != me => Err(GrantStatus::GeneralError),
            Some(a) => Ok(a.frame),
            None => Ok(e.frame),
        }
    }

    /// Forgets a domain's table. -EBUSY while others map its grants (unmap
    /// them first).
    pub fn remove_domain(&mut self, dom: DomId) -> Result<(), Errno> {
        if !self.tables.contains_key(&dom) {
            return Err(Errno::Srch);
        }
        if self.active.keys().any(|&(g, _)| g == dom) {
            return Err(Errno::Busy);
        }
        self.tables.remove(&dom);
        Ok(())
    }
}
