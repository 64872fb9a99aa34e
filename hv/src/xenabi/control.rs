//! The hypercalls and sub-commands Xen 4.17 keeps for the control domain,
//! as a domU meets them. Under Xen's default (dummy XSM) policy a domain
//! without privilege gets -EPERM from each, after Xen has read and checked
//! the argument as far as it does before asking XSM: an unreadable
//! argument is -EFAULT, a wrong interface version -EACCES, a domain that
//! does not exist -ESRCH, in Xen's order. (Hypercalls without an entry in
//! Xen's table for the caller's kind, such as `kexec_op` and `mca` for a
//! PVH domain, stay -ENOSYS, as do `physdev_op`'s commands for a PVH
//! domain without pirqs: Xen's `hvm_physdev_op` filters them first.)
//!
//! | hypercall | Xen's check |
//! |---|---|
//! | `platform_op` (7) | `xsm_platform_op` after the `XENPF_INTERFACE_VERSION` check |
//! | `sysctl` (35) | `xsm_sysctl` after the `XEN_SYSCTL_INTERFACE_VERSION` check |
//! | `domctl` (36) | `xsm_domctl` after the version check and the domain lookup |
//! | `kexec_op` (37), `mca` (48) | `xsm_kexec`, `xsm_do_mca` (PV only) |
//! | `dm_op` (41) | `rcu_lock_remote_domain_by_id` (the caller itself is -EPERM), `xsm_dm_op` |
//! | `hypfs_op` (42) | `xsm_hypfs_op` |
//! | `paging_domctl_cont` (49) | `xsm_domctl` after the version, command and domain checks |
//! | `memory_op` | `machine_memory_map` (10), `set_pod_target` (16), `get_pod_target` (17), `access_op` (21, the caller's own domain is not a "remote" one), `claim_pages` (24) |
//! | `physdev_op` (PV) | `apic_read` (8), `apic_write` (9), `alloc_irq_vector` (10), `map_pirq` (13), `unmap_pirq` (14), `manage_pci_add` (15), `manage_pci_remove` (16), `manage_pci_add_ext` (20), `setup_gsi` (21), `pci_mmcfg_reserved` (24), `pci_device_add` (25), `pci_device_remove` (26), `dbgp_op` (29), `prepare_msix` (30), `release_msix` (31) |
//!
//! Other sub-commands Xen restricts to the control domain already answer
//! as Xen does where they are handled: `HVMOP_get_param`/`set_param` of a
//! parameter the guest may not reach or of another domain, event channel
//! and grant table commands naming another domain.

use crate::evtchn::Errno;

const PLATFORM_OP: u64 = 7;
const KEXEC_OP: u64 = 37;
const SYSCTL: u64 = 35;
const DOMCTL: u64 = 36;
const DM_OP: u64 = 41;
const HYPFS_OP: u64 = 42;
const MCA: u64 = 48;
const PAGING_DOMCTL_CONT: u64 = 49;

/// `XENPF_INTERFACE_VERSION`, `XEN_SYSCTL_INTERFACE_VERSION` and
/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17.
pub const XENPF_VERSION: u32 = 0x0300_0001;
pub const SYSCTL_VERSION: u32 = 0x15;
pub const DOMCTL_VERSION: u32 = 0x15;

/// `struct xen_platform_op` and `struct xen_sysctl` (136 bytes), `struct
/// xen_domctl` (144 bytes): `cmd`, `interface_version`, (`domain`), a
/// 128-byte union.
const OP_SIZE: usize = 136;
const DOMCTL_SIZE: usize = 144;
const DOMCTL_CREATEDOMAIN: u32 = 1;
const DOMCTL_SHADOW_OP: u32 = 10;
/// `dm_op` takes at most two buffers.
const DM_OP_BUFS: u64 = 2;

/// What the checks need from the caller.
pub trait Caller {
    /// Copies guest memory at guest-virtual `gva`; `false` if it cannot.
    fn read(&self, gva: u64, buf: &mut [u8]) -> bool;
    /// Whether domain `domid` exists (`DOMID_SELF` does not).
    fn exists(&self, domid: u16) -> bool;
    /// The caller's domain id.
    fn id(&self) -> u16;
    /// A 32-bit caller (compat layouts).
    fn compat(&self) -> bool;
}

/// `DOMID_SELF`.
const DOMID_SELF: u16 = 0x7ff0;

fn u32_at(b: &[u8], o: usize) -> u32 {
    crate::le::get_u32(b, o)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// Reads `N` bytes of the argument at `gva`: -EFAULT if it cannot.
fn read<const N: usize>(c: &impl Caller, gva: u64) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    if c.read(gva, &mut b) {
        Ok(b)
    } else {
        Err(Errno::Fault)
    }
}

/// `rcu_lock_domain_by_any_id` then XSM: the caller or another domain is
/// -EPERM, a domain that does not exist -ESRCH.
fn any_domain(c: &impl Caller, domid: u16) -> Errno {
    if domid == DOMID_SELF || c.exists(domid) {
        Errno::Perm
    } else {
        Errno::Srch
    }
}

/// The answer to hypercall `nr` when it is one of the control domain's;
/// `None` for the others. `pv`: the caller is a PV domain.
pub fn hypercall(nr: u64, args: [u64; 5], pv: bool, c: &impl Caller) -> Option<Errno> {
    let versioned = |b: &[u8], want: u32| {
        if u32_at(b, 4) == want {
            Errno::Perm
        } else {
            Errno::Acces
        }
    };
    let r = match nr {
        PLATFORM_OP => read::<OP_SIZE>(c, args[0]).map(|b| versioned(&b, XENPF_VERSION)),
        SYSCTL => read::<OP_SIZE>(c, args[0]).map(|b| versioned(&b, SYSCTL_VERSION)),
        DOMCTL => read::<DOMCTL_SIZE>(c, args[0]).map(|b| {
            let dom = u16_at(&b, 8);
            if u32_at(&b, 4) != DOMCTL_VERSION {
                Errno::Acces
            } else if u32_at(&b, 0) != DOMCTL_CREATEDOMAIN && !c.exists(dom) {
                Errno::Srch
            } else {
                Errno::Perm
            }
        }),
        PAGING_DOMCTL_CONT => read::<DOMCTL_SIZE>(c, args[0]).map(|b| {
            if u32_at(&b, 4) != DOMCTL_VERSION || u32_at(&b, 0) != DOMCTL_SHADOW_OP {
                Errno::OpNotSupp
            } else if !c.exists(u16_at(&b, 8)) {
                Errno::Srch
            } else {
                Errno::Perm
            }
        }),
        DM_OP => {
            let (domid, bufs) = (args[0] as u16, args[1] & 0xffff_ffff);
            // `struct xen_dm_op_buf`: a handle and a `xen_ulong_t`.
            let size = if c.compat() { 8 } else { 16 };
            let mut b = [0u8; 32];
            if bufs > DM_OP_BUFS {
                Err(Errno::TooBig)
            } else if !c.read(args[2], &mut b[..(bufs * size) as usize]) {
                Err(Errno::Fault)
            } else if domid != c.id() && !c.exists(domid) {
                Err(Errno::Srch)
            } else {
                Ok(Errno::Perm)
            }
        }
        HYPFS_OP => Ok(Errno::Perm),
        KEXEC_OP | MCA if pv => Ok(Errno::Perm),
        _ => return None,
    };
    Some(r.unwrap_or_else(|e| e))
}

const XENMEM_MACHINE_MEMORY_MAP: u64 = 10;
const XENMEM_SET_POD_TARGET: u64 = 16;
const XENMEM_GET_POD_TARGET: u64 = 17;
const XENMEM_ACCESS_OP: u64 = 21;
const XENMEM_CLAIM_PAGES: u64 = 24;

/// The answer to `memory_op(cmd, arg)` when `cmd` is one of the control
/// domain's; `None` for the others.
pub fn memory_op(cmd: u64, arg: u64, c: &impl Caller) -> Option<Errno> {
    let r = match cmd {
        XENMEM_MACHINE_MEMORY_MAP => Ok(Errno::Perm),
        // `struct xen_pod_target`: four `uint64_t`, then `domid`.
        XENMEM_SET_POD_TARGET | XENMEM_GET_POD_TARGET => {
            read::<34>(c, arg).map(|b| any_domain(c, u16_at(&b, 32)))
        }
        // `struct xen_mem_access_op`: `op`, `access`, `domid`, ... (40
        // bytes); the domain must be another one that exists.
        XENMEM_ACCESS_OP => read::<40>(c, arg).map(|b| {
            let d = u16_at(&b, 2);
            if d == c.id() || c.exists(d) {
                Errno::Perm
            } else {
                Errno::Srch
            }
        }),
        // A `struct xen_memory_reservation` with no list, order 0, no
        // flags, naming a domain by its id.
        XENMEM_CLAIM_PAGES => {
            let (w, o) = if c.compat() { (4, 8) } else { (8, 16) };
            read::<32>(c, arg).map(|b| {
                let list = b[..w].iter().any(|&x| x != 0);
                let (order, flags) = (u32_at(&b, o), u32_at(&b, o + 4));
                if list || order != 0 || flags != 0 || !c.exists(u16_at(&b, o + 8)) {
                    Errno::Inval
                } else {
                    Errno::Perm
                }
            })
        }
        _ => return None,
    };
    Some(r.unwrap_or_else(|e| e))
}

/// The size of the argument of each `physdev_op` command Xen keeps for
/// the control domain (read, and -EFAULT if it cannot be, before XSM is
/// asked), and where a domain id is in it.
const PHYSDEV: [(u64, u8, Option<u8>); 15] = [
    (8, 16, None),     // apic_read: struct physdev_apic
    (9, 16, None),     // apic_write
    (10, 8, None),     // alloc_irq_vector: struct physdev_irq
    (13, 40, Some(0)), // map_pirq: struct physdev_map_pirq
    (14, 8, Some(0)),  // unmap_pirq: struct physdev_unmap_pirq
    (15, 2, None),     // manage_pci_add: struct physdev_manage_pci
    (16, 2, None),     // manage_pci_remove
    (20, 16, None),    // manage_pci_add_ext: struct physdev_manage_pci_ext
    (21, 8, None),     // setup_gsi: struct physdev_setup_gsi
    (24, 16, None),    // pci_mmcfg_reserved
    (25, 12, None),    // pci_device_add: struct physdev_pci_device_add
    (26, 4, None),     // pci_device_remove: struct physdev_pci_device
    (29, 8, None),     // dbgp_op: struct physdev_dbgp_op
    (30, 4, None),     // prepare_msix: struct physdev_pci_device
    (31, 4, None),     // release_msix
];

/// The answer to a PV domain's `physdev_op(cmd, arg)` when `cmd` is one of
/// the control domain's; `None` for the others.
pub fn physdev_op(cmd: u64, arg: u64, c: &impl Caller) -> Option<Errno> {
    let &(_, size, domid) = PHYSDEV.iter().find(|p| p.0 == cmd)?;
    let mut b = [0u8; 40];
    Some(if !c.read(arg, &mut b[..usize::from(size)]) {
        Errno::Fault
    } else if let Some(o) = domid {
        any_domain(c, u16_at(&b, usize::from(o)))
    } else {
        Errno::Perm
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory from 0x1000 (4 KiB), domains 0 and 5 (the caller).
    struct Fake {
        mem: [u8; 4096],
        compat: bool,
    }

    impl Caller for Fake {
        fn read(&self, gva: u64, buf: &mut [u8]) -> bool {
            let Some(off) = gva.checked_sub(0x1000).map(|o| o as usize) else {
                return buf.is_empty();
            };
            match self.mem.get(off..off + buf.len()) {
                Some(s) => {
                    buf.copy_from_slice(s);
                    true
                }
                None => false,
            }
        }
        fn exists(&self, domid: u16) -> bool {
            matches!(domid, 0 | 5)
        }
        fn id(&self) -> u16 {
            5
        }
        fn compat(&self) -> bool {
            self.compat
        }
    }

    fn op(cmd: u32, version: u32, domain: u16) -> Fake {
        let mut mem = [0u8; 4096];
        mem[0..4].copy_from_slice(&cmd.to_le_bytes());
        mem[4..8].copy_from_slice(&version.to_le_bytes());
        mem[8..10].copy_from_slice(&domain.to_le_bytes());
        Fake { mem, compat: false }
    }

    fn call(nr: u64, a: [u64; 3], pv: bool, f: &Fake) -> Option<Errno> {
        hypercall(nr, [a[0], a[1], a[2], 0, 0], pv, f)
    }

    #[test]
    fn sysctl_and_platform_op_check_the_argument_then_the_version_then_refuse() {
        let f = op(3, SYSCTL_VERSION, 0);
        assert_eq!(call(SYSCTL, [0x1000, 0, 0], false, &f), Some(Errno::Perm));
        assert_eq!(call(SYSCTL, [0x9000, 0, 0], false, &f), Some(Errno::Fault));
        let old = op(3, SYSCTL_VERSION - 1, 0);
        assert_eq!(
            call(SYSCTL, [0x1000, 0, 0], false, &old),
            Some(Errno::Acces)
        );
        let pf = op(62, XENPF_VERSION, 0);
        assert_eq!(
            call(PLATFORM_OP, [0x1000, 0, 0], true, &pf),
            Some(Errno::Perm)
        );
        assert_eq!(
            call(PLATFORM_OP, [0x1000, 0, 0], true, &f),
            Some(Errno::Acces)
        );
    }

    #[test]
    fn domctl_looks_the_domain_up_before_it_refuses() {
        let own = op(5, DOMCTL_VERSION, 5);
        assert_eq!(call(DOMCTL, [0x1000, 0, 0], false, &own), Some(Errno::Perm));
        let none = op(5, DOMCTL_VERSION, 0x7000);
        assert_eq!(
            call(DOMCTL, [0x1000, 0, 0], false, &none),
            Some(Errno::Srch)
        );
        let create = op(DOMCTL_CREATEDOMAIN, DOMCTL_VERSION, 0x7000);
        assert_eq!(
            call(DOMCTL, [0x1000, 0, 0], false, &create),
            Some(Errno::Perm)
        );
        let shadow = op(DOMCTL_SHADOW_OP, DOMCTL_VERSION, 5);
        let want = Some(Errno::Perm);
        assert_eq!(
            call(PAGING_DOMCTL_CONT, [0x1000, 0, 0], false, &shadow),
            want
        );
        let want = Some(Errno::OpNotSupp);
        assert_eq!(call(PAGING_DOMCTL_CONT, [0x1000, 0, 0], false, &own), want);
    }

    #[test]
    fn dm_op_refuses_the_caller_itself_and_kexec_is_pv_only() {
        let f = op(0, 0, 0);
        assert_eq!(call(DM_OP, [5, 1, 0x1000], false, &f), Some(Errno::Perm));
        assert_eq!(call(DM_OP, [0x7000, 0, 0], false, &f), Some(Errno::Srch));
        assert_eq!(call(DM_OP, [5, 3, 0x1000], false, &f), Some(Errno::TooBig));
        assert_eq!(call(DM_OP, [5, 1, 0x9000], false, &f), Some(Errno::Fault));
        assert_eq!(call(KEXEC_OP, [0, 0, 0], false, &f), None);
        assert_eq!(call(KEXEC_OP, [0, 0, 0], true, &f), Some(Errno::Perm));
        assert_eq!(call(HYPFS_OP, [0, 0, 0], false, &f), Some(Errno::Perm));
        assert_eq!(call(17, [0, 0, 0], false, &f), None);
    }

    #[test]
    fn control_memory_and_physdev_commands_are_refused_after_their_checks() {
        let mut f = op(0, 0, 0);
        f.mem[32..34].copy_from_slice(&DOMID_SELF.to_le_bytes());
        assert_eq!(
            memory_op(XENMEM_SET_POD_TARGET, 0x1000, &f),
            Some(Errno::Perm)
        );
        assert_eq!(
            memory_op(XENMEM_GET_POD_TARGET, 0x9000, &f),
            Some(Errno::Fault)
        );
        assert_eq!(
            memory_op(XENMEM_MACHINE_MEMORY_MAP, 0, &f),
            Some(Errno::Perm)
        );
        // claim_pages: the domain by its id; DOMID_SELF is -EINVAL.
        let mut c = op(0, 0, 0);
        c.mem[24..26].copy_from_slice(&5u16.to_le_bytes());
        assert_eq!(memory_op(XENMEM_CLAIM_PAGES, 0x1000, &c), Some(Errno::Perm));
        c.mem[24..26].copy_from_slice(&DOMID_SELF.to_le_bytes());
        assert_eq!(
            memory_op(XENMEM_CLAIM_PAGES, 0x1000, &c),
            Some(Errno::Inval)
        );
        assert_eq!(memory_op(6, 0x1000, &c), None);
        assert_eq!(physdev_op(15, 0x1000, &c), Some(Errno::Perm));
        assert_eq!(physdev_op(15, 0x9000, &c), Some(Errno::Fault));
        // map_pirq names a domain: 0x7ff0 (DOMID_SELF) is the caller.
        let m = op(0x7ff0, 0, 0);
        assert_eq!(physdev_op(13, 0x1000, &m), Some(Errno::Perm));
        assert_eq!(physdev_op(13, 0x1000, &op(0x7000, 0, 0)), Some(Errno::Srch));
        assert_eq!(physdev_op(12, 0x1000, &c), None);
    }
}
