//! The control domain's hypercalls answer a PV domU as Xen's do: -EPERM
//! after the checks Xen makes first, also for the PV-only ones (`kexec_op`,
//! `mca`, `physdev_op`'s control commands); and reservation commands
//! naming another domain do nothing (`memory.c`: the XSM check returns
//! the extents done so far). The same rules as for PVH guests
//! (`abi_privileged`).

use firmware::pv::hypercall::{op, op1};
use firmware::pv::mm;
use firmware::report;
use firmware::xen::errno::{EACCES, EPERM};

const MEMORY_OP: u64 = 12;
const SYSCTL: u64 = 35;
const KEXEC_OP: u64 = 37;
const PHYSDEV_OP: u64 = 33;
const MCA: u64 = 48;
const XENMEM_DECREASE_RESERVATION: u64 = 1;
const XENMEM_MACHINE_MEMORY_MAP: u64 = 10;
const PHYSDEVOP_MANAGE_PCI_ADD: u64 = 15;
/// `XEN_SYSCTL_physinfo`, and Xen 4.17's `XEN_SYSCTL_INTERFACE_VERSION`.
const SYSCTL_PHYSINFO: u32 = 3;
const SYSCTL_VERSION: u32 = 0x15;

pub fn run() {
    let mut sysctl = [0u32; 36];
    sysctl[0] = SYSCTL_PHYSINFO;
    sysctl[1] = SYSCTL_VERSION;
    report::check_eq("sysctl(physinfo): -EPERM", op1(SYSCTL, &mut sysctl), -EPERM);
    sysctl[1] = SYSCTL_VERSION - 1;
    report::check_eq(
        "sysctl of another interface version: -EACCES",
        op1(SYSCTL, &mut sysctl),
        -EACCES,
    );
    let mut none = [0u64; 4];
    report::check_eq(
        "kexec_op(get_range): -EPERM (PV only)",
        op(KEXEC_OP, 2, &mut none),
        -EPERM,
    );
    report::check_eq("mca: -EPERM (PV only)", op1(MCA, &mut none), -EPERM);
    report::check_eq(
        "physdev_op(manage_pci_add): -EPERM",
        op(PHYSDEV_OP, PHYSDEVOP_MANAGE_PCI_ADD, &mut none),
        -EPERM,
    );
    report::check_eq(
        "memory_op(machine_memory_map): -EPERM",
        op(MEMORY_OP, XENMEM_MACHINE_MEMORY_MAP, &mut none),
        -EPERM,
    );
    let Some(page) = mm::take() else {
        report::check("privileged: a pool page", false);
        return;
    };
    let mut list = [page.mfn];
    // `struct xen_memory_reservation` naming domain 0.
    let mut r = [list.as_mut_ptr() as u64, 1, 0, 0];
    report::check_eq(
        "decrease_reservation of another domain does nothing",
        op(MEMORY_OP, XENMEM_DECREASE_RESERVATION, &mut r),
        0,
    );
}
