//! Xen feature flags (`xen/include/public/features.h`): the bit numbers of
//! submap 0 of `XENVER_get_features`, and their names as a kernel spells
//! them in its `XEN_ELFNOTE_FEATURES` note.

/// The guest may write its page tables directly.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// The guest may write its descriptor tables directly.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// The hypervisor translates pseudo-physical to machine addresses.
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// The guest kernel runs in supervisor mode (ring 0).
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// PAE page directories need not lie below 4 GiB.
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// `MMU_PT_UPDATE_PRESERVE_AD` is available.
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// `MMUEXT_CLEAR_PAGE` / `MMUEXT_COPY_PAGE` are available.
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// `GNTTABOP_map_grant_ref` honours the available-bits flags.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// The HVM callback vector is available.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// The pvclock algorithm is safe to use in an HVM guest.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// HVM guests may use pirqs.
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// The guest may run as dom0.
pub const XENFEAT_DOM0: u32 = 11;
/// `XENMEMF_vnode` is honoured by memory ops.
pub const XENFEAT_MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
/// Arm: the SMC calling convention is supported.
pub const XENFEAT_ARM_SMCCC_SUPPORTED: u32 = 14;
/// x86/PVH: the ACPI RSDP may be placed anywhere.
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;
/// The domain is not direct-mapped (gfn != mfn).
pub const XENFEAT_NOT_DIRECT_MAPPED: u32 = 16;
/// The domain is direct-mapped (gfn == mfn).
pub const XENFEAT_DIRECT_MAPPED: u32 = 17;
/// `VCPUOP_register_runstate_phys_area` is available.
pub const XENFEAT_RUNSTATE_PHYS_AREA: u32 = 18;
/// `VCPUOP_register_vcpu_time_phys_area` is available.
pub const XENFEAT_VCPU_TIME_PHYS_AREA: u32 = 19;
/// Every MSI-X vector-control write reaches the device model.
pub const XENFEAT_DM_MSIX_ALL_WRITES: u32 = 20;

/// `XENFEAT_NR_SUBMAPS`: submaps of 32 bits each.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

/// Every feature of `features.h` by name (without the `XENFEAT_` prefix)
/// and bit. Bit 12 (`grant_map_identity`) is deprecated and commented out
/// in the header, so it has no name here.
pub const XENFEAT_NAMES: [(&str, u32); 20] = [
    ("writable_page_tables", XENFEAT_WRITABLE_PAGE_TABLES),
    (
        "writable_descriptor_tables",
        XENFEAT_WRITABLE_DESCRIPTOR_TABLES,
    ),
    ("auto_translated_physmap", XENFEAT_AUTO_TRANSLATED_PHYSMAP),
    ("supervisor_mode_kernel", XENFEAT_SUPERVISOR_MODE_KERNEL),
    ("pae_pgdir_above_4gb", XENFEAT_PAE_PGDIR_ABOVE_4GB),
    (
        "mmu_pt_update_preserve_ad",
        XENFEAT_MMU_PT_UPDATE_PRESERVE_AD,
    ),
    ("highmem_assist", XENFEAT_HIGHMEM_ASSIST),
    ("gnttab_map_avail_bits", XENFEAT_GNTTAB_MAP_AVAIL_BITS),
    ("hvm_callback_vector", XENFEAT_HVM_CALLBACK_VECTOR),
    ("hvm_safe_pvclock", XENFEAT_HVM_SAFE_PVCLOCK),
    ("hvm_pirqs", XENFEAT_HVM_PIRQS),
    ("dom0", XENFEAT_DOM0),
    (
        "memory_op_vnode_supported",
        XENFEAT_MEMORY_OP_VNODE_SUPPORTED,
    ),
    ("ARM_SMCCC_supported", XENFEAT_ARM_SMCCC_SUPPORTED),
    ("linux_rsdp_unrestricted", XENFEAT_LINUX_RSDP_UNRESTRICTED),
    ("not_direct_mapped", XENFEAT_NOT_DIRECT_MAPPED),
    ("direct_mapped", XENFEAT_DIRECT_MAPPED),
    ("runstate_phys_area", XENFEAT_RUNSTATE_PHYS_AREA),
    ("vcpu_time_phys_area", XENFEAT_VCPU_TIME_PHYS_AREA),
    ("dm_msix_all_writes", XENFEAT_DM_MSIX_ALL_WRITES),
];

/// The bit of the feature called `name`.
pub fn feature_bit(name: &str) -> Option<u32> {
    XENFEAT_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, bit)| bit)
}

/// The name of feature `bit`.
pub fn feature_name(bit: u32) -> Option<&'static str> {
    XENFEAT_NAMES
        .iter()
        .find(|(_, b)| *b == bit)
        .map(|&(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits_map_both_ways() {
        assert_eq!(feature_bit("writable_page_tables"), Some(0));
        assert_eq!(feature_bit("dom0"), Some(11));
        assert_eq!(feature_bit("dm_msix_all_writes"), Some(20));
        assert_eq!(feature_bit("grant_map_identity"), None);
        assert_eq!(feature_bit("Writable_page_tables"), None);
        for (name, bit) in XENFEAT_NAMES {
            assert_eq!(feature_name(bit), Some(name));
            assert!(bit < 32 * XENFEAT_NR_SUBMAPS);
        }
        assert_eq!(feature_name(12), None);
    }
}
