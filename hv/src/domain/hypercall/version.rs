//! `xen_version`.

use super::{put, Errno, HcResult, View};
use crate::domain::xen::VERSION;
use hv::xenabi::XenFeatureInfo;

const XENVER_VERSION: u64 = 0;
const XENVER_EXTRAVERSION: u64 = 1;
const XENVER_COMPILE_INFO: u64 = 2;
const XENVER_CAPABILITIES: u64 = 3;
const XENVER_CHANGESET: u64 = 4;
const XENVER_PLATFORM_PARAMETERS: u64 = 5;
const XENVER_GET_FEATURES: u64 = 6;
const XENVER_PAGESIZE: u64 = 7;
const XENVER_GUEST_HANDLE: u64 = 8;
const XENVER_COMMANDLINE: u64 = 9;
const XENVER_BUILD_ID: u64 = 10;

/// `XENFEAT_*` bits of submap 0 this hypervisor offers an HVM/PVH guest:
/// writable page tables (0), auto-translated physmap (2), the callback
/// vector (8) and a pvclock safe to use (9).
pub(super) const FEATURES: u32 = (1 << 0) | (1 << 2) | (1 << 8) | (1 << 9);

/// What a 64-bit PV domU gets of the features Xen offers it: page-table
/// updates that keep the accessed and dirty bits
/// (`MMU_PT_UPDATE_PRESERVE_AD`, 5), the highmem assist (6, a no-op for a
/// 64-bit guest), grant mappings that keep the PTE's available bits
/// (`gnttab_map_avail_bits`, 7: a guest here maps no other guest's grants,
/// so nothing can clear them) and machine frames that are its own
/// (`direct_mapped`, 17: the identity p2m). Linux refuses to run as a PV
/// guest without 5 and 7.
pub(super) const PV_FEATURES: u32 = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 17);

/// `xen_version(cmd, arg)` (`args`) of domain `me`.
pub(super) fn xen_version(me: u16, g: &View<'_>, args: [u64; 5]) -> HcResult {
    let text = |s: &str, n: usize| {
        let mut v = alloc::vec![0u8; n];
        v[..s.len()].copy_from_slice(s.as_bytes());
        v
    };
    match args[0] {
        XENVER_VERSION => Ok(((VERSION.0 << 16) | VERSION.1) as i64),
        XENVER_EXTRAVERSION => g.copy_to_guest(args[1], &text("-hv", 16)).map(|()| 0),
        XENVER_COMPILE_INFO => {
            let mut b = alloc::vec![0u8; 64 + 16 + 32 + 32];
            put(&mut b, 0, b"rustc");
            g.copy_to_guest(args[1], &b).map(|()| 0)
        }
        XENVER_CAPABILITIES if g.mem.pv => g
            .copy_to_guest(args[1], &text("xen-3.0-x86_64", 1024))
            .map(|()| 0),
        XENVER_CAPABILITIES => g
            .copy_to_guest(args[1], &text("hvm-3.0-x86_64 hvm-3.0-x86_32", 1024))
            .map(|()| 0),
        XENVER_CHANGESET => g.copy_to_guest(args[1], &text("", 64)).map(|()| 0),
        XENVER_PLATFORM_PARAMETERS if g.mem.pv => {
            // The start of the hypervisor's hole in a PV guest's space.
            let start = hv::pv::abi::va::HYPERVISOR_VIRT_START;
            g.copy_to_guest(args[1], &start.to_le_bytes()).map(|()| 0)
        }
        XENVER_PLATFORM_PARAMETERS => {
            // { xen_ulong_t virt_start }: no hypervisor hole in an HVM
            // guest's address space.
            let n = g.abi().ulong_size();
            g.copy_to_guest(args[1], &[0u8; 8][..n]).map(|()| 0)
        }
        XENVER_GET_FEATURES => {
            let mut a = g.read_arg::<XenFeatureInfo>(args[1])?;
            // One submap (`XENFEAT_NR_SUBMAPS`); beyond it -EINVAL.
            if a.v.submap_idx != 0 {
                return Err(Errno::Inval);
            }
            a.v.submap = if g.mem.pv { PV_FEATURES } else { FEATURES };
            g.write_arg(args[1], &mut a).map(|()| 0)
        }
        XENVER_PAGESIZE => Ok(4096),
        XENVER_GUEST_HANDLE => {
            // The domain's UUID as the toolstack names it in xenstore
            // (`/vm/00000000-0000-0000-0000-<domid in 12 hex digits>`).
            let mut h = [0u8; 16];
            put(&mut h, 14, &me.to_be_bytes());
            g.copy_to_guest(args[1], &h).map(|()| 0)
        }
        XENVER_COMMANDLINE | XENVER_BUILD_ID => Err(Errno::Perm),
        _ => Err(Errno::NoSys),
    }
}
