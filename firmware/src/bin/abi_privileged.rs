//! What a domU gets from the hypercalls and sub-commands Xen 4.17 keeps
//! for the control domain (its hypercall table and the XSM dummy policy):
//! -EPERM, each reached with a plausible argument (the right interface
//! version, this domain) so that only the permission check can refuse it;
//! and the checks Xen makes before that one (-EFAULT, -EACCES, -ESRCH,
//! -E2BIG) in Xen's order. Hypercalls Xen has no entry for in an HVM/PVH
//! guest's table (`kexec_op`, `mca`) and `physdev_op`'s control commands
//! (which Xen's `hvm_physdev_op` filters for a domain without pirqs) stay
//! -ENOSYS, as under Xen.
#![no_std]
#![no_main]

use firmware::xen::evtchn;
use firmware::xen::grant::{self, st};
use firmware::xen::layout::DOMID_SELF;
use firmware::xen::{self, errno::*, nr};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// A domid in the valid range that no domain has in these tests.
const NO_SUCH_DOMAIN: u16 = 0x7000;
/// The toolstack's domain (the hypervisor), which exists.
const DOM0: u16 = 0;

const PLATFORM_OP: u64 = 7;
const SYSCTL: u64 = 35;
const DOMCTL: u64 = 36;
const KEXEC_OP: u64 = 37;
const DM_OP: u64 = 41;
const HYPFS_OP: u64 = 42;
const MCA: u64 = 48;
const PAGING_DOMCTL_CONT: u64 = 49;

/// `XENPF_INTERFACE_VERSION`, `XEN_SYSCTL_INTERFACE_VERSION`,
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17.
const XENPF_VERSION: u32 = 0x0300_0001;
const SYSCTL_VERSION: u32 = 0x15;
const DOMCTL_VERSION: u32 = 0x15;
/// `XENPF_settime64`, `XEN_SYSCTL_physinfo`, `XEN_DOMCTL_getdomaininfo`,
/// `XEN_DOMCTL_createdomain`, `XEN_DOMCTL_shadow_op`.
const XENPF_SETTIME64: u32 = 62;
const SYSCTL_PHYSINFO: u32 = 3;
const DOMCTL_GETDOMAININFO: u32 = 5;
const DOMCTL_CREATEDOMAIN: u32 = 1;
const DOMCTL_SHADOW_OP: u32 = 10;

/// `struct xen_domctl` (144 bytes; `xen_sysctl` and `xen_platform_op`
/// are its first 136): `cmd`, `interface_version`, `domain`, a union.
#[repr(C, align(8))]
struct ControlOp([u8; 144]);

impl ControlOp {
    fn new(cmd: u32, version: u32, domain: u16) -> Self {
        let mut b = [0u8; 144];
        b[0..4].copy_from_slice(&cmd.to_le_bytes());
        b[4..8].copy_from_slice(&version.to_le_bytes());
        b[8..10].copy_from_slice(&domain.to_le_bytes());
        ControlOp(b)
    }
}

/// Hypercall `nr(op)`.
fn control(nr: u64, op: &mut ControlOp) -> i64 {
    // SAFETY: the hypervisor may read and write the 144 bytes of `op`.
    unsafe { xen::raw(nr, op as *mut ControlOp as u64, 0, 0) }
}

/// Hypercall `nr(a1, a2, a3)` with no pointer to memory this program
/// uses (null, or UNMAPPED).
fn plain(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: no argument points at memory of this program.
    unsafe { xen::raw(nr, a1, a2, a3) }
}

fn main(_start_info: Gpa) -> ! {
    println!("abi_privileged: the control domain's hypercalls");
    if !hypervisor::is_xen() {
        report::skip("control hypercalls", "no Xen CPUID leaves");
        report::finish();
    }
    let me = xen::domid().unwrap_or(1);
    hypercalls(me);
    memory_ops(me);
    other_ops();
    report::finish()
}

fn hypercalls(me: u16) {
    let mut op = ControlOp::new(SYSCTL_PHYSINFO, SYSCTL_VERSION, 0);
    report::check_eq(
        "sysctl(physinfo) is -EPERM",
        control(SYSCTL, &mut op),
        -EPERM,
    );
    let mut op = ControlOp::new(SYSCTL_PHYSINFO, SYSCTL_VERSION - 1, 0);
    report::check_eq(
        "sysctl of another interface version is -EACCES",
        control(SYSCTL, &mut op),
        -EACCES,
    );
    report::check_eq(
        "sysctl with an unreadable argument is -EFAULT",
        plain(SYSCTL, xen::UNMAPPED, 0, 0),
        -EFAULT,
    );

    let mut op = ControlOp::new(DOMCTL_GETDOMAININFO, DOMCTL_VERSION, me);
    report::check_eq(
        "domctl(getdomaininfo) of itself is -EPERM",
        control(DOMCTL, &mut op),
        -EPERM,
    );
    let mut op = ControlOp::new(DOMCTL_CREATEDOMAIN, DOMCTL_VERSION, 0);
    report::check_eq(
        "domctl(createdomain) is -EPERM",
        control(DOMCTL, &mut op),
        -EPERM,
    );
    let mut op = ControlOp::new(DOMCTL_GETDOMAININFO, DOMCTL_VERSION, NO_SUCH_DOMAIN);
    report::check_eq(
        "domctl of a missing domain is -ESRCH",
        control(DOMCTL, &mut op),
        -ESRCH,
    );
    let mut op = ControlOp::new(DOMCTL_GETDOMAININFO, DOMCTL_VERSION + 1, me);
    report::check_eq(
        "domctl of another interface version is -EACCES",
        control(DOMCTL, &mut op),
        -EACCES,
    );

    let mut op = ControlOp::new(XENPF_SETTIME64, XENPF_VERSION, 0);
    report::check_eq(
        "platform_op(settime64) is -EPERM",
        control(PLATFORM_OP, &mut op),
        -EPERM,
    );
    let mut op = ControlOp::new(XENPF_SETTIME64, 0, 0);
    report::check_eq(
        "platform_op of another interface version is -EACCES",
        control(PLATFORM_OP, &mut op),
        -EACCES,
    );

    let mut op = ControlOp::new(DOMCTL_SHADOW_OP, DOMCTL_VERSION, me);
    report::check_eq(
        "paging_domctl_cont(shadow_op) of itself is -EPERM",
        control(PAGING_DOMCTL_CONT, &mut op),
        -EPERM,
    );
    let mut op = ControlOp::new(DOMCTL_GETDOMAININFO, DOMCTL_VERSION, me);
    report::check_eq(
        "paging_domctl_cont of another command is -EOPNOTSUPP",
        control(PAGING_DOMCTL_CONT, &mut op),
        -95,
    );

    report::check_eq(
        "dm_op on itself is -EPERM",
        plain(DM_OP, u64::from(me), 0, 0),
        -EPERM,
    );
    report::check_eq(
        "dm_op on another domain is -EPERM",
        plain(DM_OP, u64::from(DOM0), 0, 0),
        -EPERM,
    );
    report::check_eq(
        "dm_op on a missing domain is -ESRCH",
        plain(DM_OP, u64::from(NO_SUCH_DOMAIN), 0, 0),
        -ESRCH,
    );
    report::check_eq(
        "dm_op with three buffers is -E2BIG",
        plain(DM_OP, u64::from(me), 3, 0),
        -7,
    );
    report::check_eq(
        "dm_op with unreadable buffers is -EFAULT",
        plain(DM_OP, u64::from(me), 1, xen::UNMAPPED),
        -EFAULT,
    );
    report::check_eq(
        "hypfs_op(get_version) is -EPERM",
        plain(HYPFS_OP, 0, 0, 0),
        -EPERM,
    );
    report::check_eq(
        "kexec_op is not an HVM/PVH hypercall: -ENOSYS",
        plain(KEXEC_OP, 0, 0, 0),
        -ENOSYS,
    );
    report::check_eq(
        "mca is not an HVM/PVH hypercall: -ENOSYS",
        plain(MCA, 0, 0, 0),
        -ENOSYS,
    );
}

/// `struct xen_pod_target`.
#[repr(C)]
#[derive(Default)]
struct PodTarget {
    target_pages: u64,
    tot_pages: u64,
    pod_cache_pages: u64,
    pod_entries: u64,
    domid: u16,
}

/// `struct xen_memory_reservation` as `claim_pages` wants it.
#[repr(C)]
#[derive(Default)]
struct Claim {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
}

/// `struct xen_mem_access_op`.
#[repr(C)]
#[derive(Default)]
struct AccessOp {
    op: u8,
    access: u8,
    domid: u16,
    nr: u32,
    pfn: u64,
    pfn_list: u64,
    access_list: u64,
    altp2m_idx: u32,
    pad: u32,
}

fn memory_ops(me: u16) {
    const MACHINE_MEMORY_MAP: u64 = 10;
    const SET_POD_TARGET: u64 = 16;
    const GET_POD_TARGET: u64 = 17;
    const ACCESS_OP: u64 = 21;
    const CLAIM_PAGES: u64 = 24;
    // `struct xen_memory_map` with room for 8 entries.
    let mut entries = [0u64; 3 * 8];
    let mut map = [8u64, entries.as_mut_ptr() as u64];
    report::check_eq(
        "memory_op(machine_memory_map) is -EPERM",
        xen::op(nr::MEMORY_OP, MACHINE_MEMORY_MAP, &mut map),
        -EPERM,
    );
    let mut t = PodTarget {
        domid: DOMID_SELF,
        ..PodTarget::default()
    };
    report::check_eq(
        "memory_op(set_pod_target) is -EPERM",
        xen::op(nr::MEMORY_OP, SET_POD_TARGET, &mut t),
        -EPERM,
    );
    report::check_eq(
        "memory_op(get_pod_target) is -EPERM",
        xen::op(nr::MEMORY_OP, GET_POD_TARGET, &mut t),
        -EPERM,
    );
    t.domid = NO_SUCH_DOMAIN;
    report::check_eq(
        "memory_op(get_pod_target) of a missing domain is -ESRCH",
        xen::op(nr::MEMORY_OP, GET_POD_TARGET, &mut t),
        -ESRCH,
    );
    let mut c = Claim {
        nr_extents: 1,
        domid: me,
        ..Claim::default()
    };
    report::check_eq(
        "memory_op(claim_pages) is -EPERM",
        xen::op(nr::MEMORY_OP, CLAIM_PAGES, &mut c),
        -EPERM,
    );
    c.domid = DOMID_SELF;
    report::check_eq(
        "memory_op(claim_pages) names a domain by id: DOMID_SELF is -EINVAL",
        xen::op(nr::MEMORY_OP, CLAIM_PAGES, &mut c),
        -EINVAL,
    );
    let mut a = AccessOp {
        domid: me,
        ..AccessOp::default()
    };
    report::check_eq(
        "memory_op(access_op) on itself is -EPERM",
        xen::op(nr::MEMORY_OP, ACCESS_OP, &mut a),
        -EPERM,
    );
    report::check_eq(
        "memory_op(get_pod_target) with an unreadable argument is -EFAULT",
        xen::call_unmapped(nr::MEMORY_OP, GET_POD_TARGET),
        -EFAULT,
    );
}

/// Sub-commands of hypercalls a domU may use, kept for the control domain
/// (or a domain's own toolstack) when they name another domain.
fn other_ops() {
    /// `HVM_PARAM_IDENT_PT`: neither read nor written by the guest.
    const PARAM_IDENT_PT: u32 = 12;
    const EVTCHNOP_STATUS: u64 = 5;
    const EVTCHNOP_RESET: u64 = 10;
    report::check_eq(
        "hvm_op get_param(IDENT_PT) is -EPERM",
        xen::get_param(PARAM_IDENT_PT),
        Err(-EPERM),
    );
    report::check_eq(
        "hvm_op set_param(IDENT_PT) is -EPERM",
        xen::set_param_of(DOMID_SELF, PARAM_IDENT_PT, 0x1000),
        -EPERM,
    );
    report::check_eq(
        "hvm_op get_param of another domain is -EPERM",
        xen::get_param_of(DOM0, firmware::xen::hvm::PARAM_STORE_PFN),
        Err(-EPERM),
    );
    report::check_eq(
        "evtchn alloc_unbound in another domain is -EPERM",
        evtchn::alloc_unbound(DOM0, DOMID_SELF),
        Err(-EPERM),
    );
    // `struct evtchn_status` { dom, port, status, vcpu, u } (24 bytes).
    let mut s = [0u32; 6];
    s[0] = u32::from(DOM0);
    s[1] = 1;
    report::check_eq(
        "evtchn status in another domain is -EPERM",
        xen::op(nr::EVENT_CHANNEL_OP, EVTCHNOP_STATUS, &mut s),
        -EPERM,
    );
    let mut r = u32::from(DOM0);
    report::check_eq(
        "evtchn reset of another domain is -EPERM",
        xen::op(nr::EVENT_CHANNEL_OP, EVTCHNOP_RESET, &mut r),
        -EPERM,
    );
    report::check_eq(
        "grant query_size of another domain: GNTST_permission_denied",
        grant::query_size(DOM0).1.status,
        st::PERMISSION_DENIED,
    );
    let mut frames = [0u64; 1];
    report::check_eq(
        "grant setup_table of another domain: GNTST_permission_denied",
        grant::setup_table(DOM0, &mut frames),
        (0, st::PERMISSION_DENIED),
    );
    report::check_eq(
        "grant get_version of another domain is -EPERM",
        grant::get_version(DOM0),
        Err(-EPERM),
    );
    // PHYSDEVOP_manage_pci_add, pci_device_add, setup_gsi, apic_read,
    // map_pirq: Xen's hvm_physdev_op answers a domain without pirqs first.
    let mut arg = [0u64; 5];
    for cmd in [15u64, 25, 21, 8, 13] {
        report::check_eq(
            "physdev_op control command of a PVH domain is -ENOSYS",
            xen::op(nr::PHYSDEV_OP, cmd, &mut arg),
            -ENOSYS,
        );
    }
}
