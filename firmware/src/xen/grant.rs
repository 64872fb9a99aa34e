//! Grant tables, version 1 (`grant_table.h`): the table frames mapped
//! over pages of this image with `XENMAPSPACE_grant_table`, entries
//! written in the order the header asks (domid and frame, then the flags
//! that make the entry live), and the `GNTTABOP_*` calls a frontend makes.

use core::sync::atomic::{fence, Ordering};

use super::layout::{GnttabCopy, GnttabQuerySize, GnttabSetupTable, GrantEntryV1};
use super::page::{Page, PageBuf};
use super::{add_to_physmap, mem, nr};

/// `GNTTABOP_*`.
pub mod cmd {
    /// `GNTTABOP_map_grant_ref`.
    pub const MAP_GRANT_REF: u64 = 0;
    /// `GNTTABOP_unmap_grant_ref`.
    pub const UNMAP_GRANT_REF: u64 = 1;
    /// `GNTTABOP_setup_table`.
    pub const SETUP_TABLE: u64 = 2;
    /// `GNTTABOP_transfer`.
    pub const TRANSFER: u64 = 4;
    /// `GNTTABOP_copy`.
    pub const COPY: u64 = 5;
    /// `GNTTABOP_query_size`.
    pub const QUERY_SIZE: u64 = 6;
    /// `GNTTABOP_unmap_and_replace`.
    pub const UNMAP_AND_REPLACE: u64 = 7;
    /// `GNTTABOP_set_version`.
    pub const SET_VERSION: u64 = 8;
    /// `GNTTABOP_get_version`.
    pub const GET_VERSION: u64 = 10;
}

/// `GNTST_*` per-operation status codes.
pub mod st {
    /// Done.
    pub const OKAY: i16 = 0;
    /// Anything else.
    pub const GENERAL_ERROR: i16 = -1;
    /// No such domain.
    pub const BAD_DOMAIN: i16 = -2;
    /// Reference out of range.
    pub const BAD_GNTREF: i16 = -3;
    /// A guest address could not be written.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// Not allowed.
    pub const PERMISSION_DENIED: i16 = -8;
    /// Offset and length leave the page.
    pub const BAD_COPY_ARG: i16 = -10;
}

/// `GTF_*` entry flags.
pub mod gtf {
    /// The entry grants access to a frame.
    pub const PERMIT_ACCESS: u16 = 1;
    /// Read-only access.
    pub const READONLY: u16 = 1 << 2;
    /// Set by the hypervisor while the frame is being read.
    pub const READING: u16 = 1 << 3;
    /// Set by the hypervisor while the frame is being written.
    pub const WRITING: u16 = 1 << 4;
}

/// `GNTCOPY_*` copy flags.
pub mod copy_flags {
    /// The source is a grant reference.
    pub const SOURCE_GREF: u16 = 1;
    /// The destination is a grant reference.
    pub const DEST_GREF: u16 = 1 << 1;
}

/// Entries per 4 KiB frame of a v1 table.
pub const ENTRIES_PER_FRAME: u32 = 512;
/// Frames this runtime keeps for its table.
pub const FRAMES: usize = 2;

static TABLE: [PageBuf; FRAMES] = [const { PageBuf::new() }; FRAMES];

/// Grant table op `cmd` over `ops` (count = its length).
pub fn gnttab_op<T>(cmd: u64, ops: &mut [T]) -> i64 {
    // SAFETY: `ops` is a live, exclusively borrowed array of the structs
    // `cmd` takes, `ops.len()` of them.
    unsafe {
        super::hypercall(
            nr::GRANT_TABLE_OP,
            cmd,
            ops.as_mut_ptr() as u64,
            ops.len() as u64,
            0,
            0,
        )
    }
}

/// `GNTTABOP_query_size(dom)`.
pub fn query_size(dom: u16) -> (i64, GnttabQuerySize) {
    let mut q = [GnttabQuerySize {
        dom,
        status: 99,
        ..GnttabQuerySize::default()
    }];
    let rc = gnttab_op(cmd::QUERY_SIZE, &mut q);
    (rc, q[0])
}

/// `GNTTABOP_setup_table(dom, frames.len())` writing into `frames`:
/// (hypercall result, op status).
pub fn setup_table(dom: u16, frames: &mut [u64]) -> (i64, i16) {
    let mut op = [GnttabSetupTable {
        dom,
        nr_frames: frames.len() as u32,
        status: 99,
        frame_list: frames.as_mut_ptr() as u64,
    }];
    let rc = gnttab_op(cmd::SETUP_TABLE, &mut op);
    (rc, op[0].status)
}

/// `GNTTABOP_set_version(version)`: (result, the version written back).
pub fn set_version(version: u32) -> (i64, u32) {
    let mut v = [version];
    let rc = gnttab_op(cmd::SET_VERSION, &mut v);
    (rc, v[0])
}

/// `GNTTABOP_get_version(dom)` (`struct gnttab_get_version`: domid,
/// pad, version).
pub fn get_version(dom: u16) -> Result<u32, i64> {
    let mut v = [[u32::from(dom), u32::MAX]];
    let rc = gnttab_op(cmd::GET_VERSION, &mut v);
    if rc < 0 {
        Err(rc)
    } else {
        Ok(v[0][1])
    }
}

/// `GNTTABOP_copy` of each op; returns the hypercall result.
pub fn copy(ops: &mut [GnttabCopy]) -> i64 {
    gnttab_op(cmd::COPY, ops)
}

/// The page kept for table frame `i`.
pub fn frame_page(i: usize) -> Option<Page> {
    TABLE.get(i).map(PageBuf::page)
}

/// Maps table frame `i` over its page of this image.
pub fn map_frame(i: usize) -> i64 {
    match frame_page(i) {
        Some(p) => add_to_physmap(mem::SPACE_GRANT_TABLE, i as u64, p.gfn()),
        None => -super::errno::EINVAL,
    }
}

fn entry_page(gref: u32) -> Option<(Page, usize)> {
    let frame = (gref / ENTRIES_PER_FRAME) as usize;
    let at = (gref % ENTRIES_PER_FRAME) as usize * core::mem::size_of::<GrantEntryV1>();
    Some((frame_page(frame)?, at))
}

/// Fills entry `gref`: `domid` may access `frame` (read-only if asked).
/// The flags go last, after a barrier, as `grant_table.h` requires.
pub fn grant(gref: u32, domid: u16, frame: u64, readonly: bool) -> bool {
    let Some((page, at)) = entry_page(gref) else {
        return false;
    };
    page.u16(at + 2).store(domid, Ordering::SeqCst);
    page.u32(at + 4).store(frame as u32, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    let flags = gtf::PERMIT_ACCESS | if readonly { gtf::READONLY } else { 0 };
    page.u16(at).store(flags, Ordering::SeqCst);
    true
}

/// Writes entry `gref` raw (flags last).
pub fn set_entry(gref: u32, flags: u16, domid: u16, frame: u32) -> bool {
    let Some((page, at)) = entry_page(gref) else {
        return false;
    };
    page.u16(at + 2).store(domid, Ordering::SeqCst);
    page.u32(at + 4).store(frame, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    page.u16(at).store(flags, Ordering::SeqCst);
    true
}

/// Entry `gref` as (flags, domid, frame).
pub fn entry(gref: u32) -> Option<(u16, u16, u32)> {
    let (page, at) = entry_page(gref)?;
    Some((
        page.u16(at).load(Ordering::SeqCst),
        page.u16(at + 2).load(Ordering::SeqCst),
        page.u32(at + 4).load(Ordering::SeqCst),
    ))
}
