//! The argument structures, one per Xen structure, with their offsets as
//! `x64 / compat` (Xen's public headers; the compat layouts are those of
//! a 32-bit x86 guest).

use super::{xen_struct, Abi};

// --- memory.h ----------------------------------------------------------

xen_struct! {
    /// `struct xen_add_to_physmap` (`XENMEM_add_to_physmap`).
    pub struct AddToPhysmap {
        /// Which domain (`DOMID_SELF`).
        domid: U16 @ 0 / 0,
        /// Pages for `XENMAPSPACE_gmfn_range`.
        size: U16 @ 2 / 2,
        /// `XENMAPSPACE_*`.
        space: U32 @ 4 / 4,
        /// Index into the space (`xen_ulong_t`).
        idx: Ulong @ 8 / 8,
        /// Where to place it (`xen_pfn_t`).
        gpfn: Ulong @ 16 / 12,
    }
    size 24 / 16;
}

xen_struct! {
    /// `struct xen_memory_map` (`XENMEM_memory_map`).
    pub struct MemoryMap {
        /// IN: entries the buffer holds; OUT: entries written.
        nr_entries: U32 @ 0 / 0,
        /// Handle of the `e820entry` array.
        buffer: Ulong @ 8 / 4,
    }
    size 16 / 8;
}

impl MemoryMap {
    /// The bytes from the start that hold the OUT field (`nr_entries`),
    /// all a handler writes back.
    pub const OUT_SIZE: usize = 4;
    /// One `struct e820entry`: `u64 addr; u64 size; u32 type`, packed.
    pub const E820_ENTRY_SIZE: usize = 20;
}

xen_struct! {
    /// The domain argument of `XENMEM_current_reservation`,
    /// `XENMEM_maximum_reservation` and `XENMEM_maximum_gpfn`.
    pub struct DomidArg {
        /// Which domain (`DOMID_SELF`).
        domid: U16 @ 0 / 0,
    }
    size 2 / 2;
}

// --- hvm/hvm_op.h ------------------------------------------------------

xen_struct! {
    /// `struct xen_hvm_param` (`HVMOP_set_param`, `HVMOP_get_param`).
    pub struct HvmParam {
        /// Which domain (`DOMID_SELF`).
        domid: U16 @ 0 / 0,
        /// `HVM_PARAM_*`.
        index: U32 @ 4 / 4,
        /// IN (set) or OUT (get).
        value: U64 @ 8 / 8,
    }
    size 16 / 16;
}

// --- event_channel.h ---------------------------------------------------

xen_struct! {
    /// `struct evtchn_alloc_unbound`.
    pub struct EvtchnAllocUnbound {
        /// The allocating domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
        /// The domain that may bind it.
        remote_dom: U16 @ 2 / 2,
        /// OUT: the new port.
        port: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct evtchn_bind_interdomain`.
    pub struct EvtchnBindInterdomain {
        /// The remote domain.
        remote_dom: U16 @ 0 / 0,
        /// Its unbound port.
        remote_port: U32 @ 4 / 4,
        /// OUT: the local port.
        local_port: U32 @ 8 / 8,
    }
    size 12 / 12;
}

xen_struct! {
    /// `struct evtchn_bind_virq`.
    pub struct EvtchnBindVirq {
        /// `VIRQ_*`.
        virq: U32 @ 0 / 0,
        /// The vCPU to notify.
        vcpu: U32 @ 4 / 4,
        /// OUT: the port.
        port: U32 @ 8 / 8,
    }
    size 12 / 12;
}

xen_struct! {
    /// `struct evtchn_bind_pirq`.
    pub struct EvtchnBindPirq {
        /// The physical IRQ.
        pirq: U32 @ 0 / 0,
        /// `BIND_PIRQ__WILL_SHARE`.
        flags: U32 @ 4 / 4,
        /// OUT: the port.
        port: U32 @ 8 / 8,
    }
    size 12 / 12;
}

xen_struct! {
    /// `struct evtchn_bind_ipi`.
    pub struct EvtchnBindIpi {
        /// The vCPU to notify.
        vcpu: U32 @ 0 / 0,
        /// OUT: the port.
        port: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct evtchn_close`, `evtchn_send` and `evtchn_unmask`: one port.
    pub struct EvtchnPort {
        /// The port.
        port: U32 @ 0 / 0,
    }
    size 4 / 4;
}

xen_struct! {
    /// The IN head of `struct evtchn_status` (`dom`, `port`): all a handler
    /// reads. The whole 24-byte structure it writes back is
    /// `vmm_glue::xen::event_channel::EvtchnStatus`.
    pub struct EvtchnStatusQuery {
        /// The port's domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
        /// The port.
        port: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct evtchn_bind_vcpu`.
    pub struct EvtchnBindVcpu {
        /// The port.
        port: U32 @ 0 / 0,
        /// The vCPU to notify from now on.
        vcpu: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct evtchn_reset`.
    pub struct EvtchnReset {
        /// The domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
    }
    size 2 / 2;
}

xen_struct! {
    /// `struct evtchn_init_control` (FIFO ABI).
    pub struct EvtchnInitControl {
        /// The frame holding the control block.
        control_gfn: U64 @ 0 / 0,
        /// The block's offset in that frame.
        offset: U32 @ 8 / 8,
        /// The vCPU it serves.
        vcpu: U32 @ 12 / 12,
        /// OUT: `EVTCHN_FIFO_LINK_BITS`.
        link_bits: U8 @ 16 / 16,
    }
    size 24 / 24;
}

xen_struct! {
    /// `struct evtchn_expand_array` (FIFO ABI).
    pub struct EvtchnExpandArray {
        /// The frame to add to the event array.
        array_gfn: U64 @ 0 / 0,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct evtchn_set_priority` (FIFO ABI).
    pub struct EvtchnSetPriority {
        /// The port.
        port: U32 @ 0 / 0,
        /// 0 (highest) to 15.
        priority: U32 @ 4 / 4,
    }
    size 8 / 8;
}

// --- sched.h -----------------------------------------------------------

xen_struct! {
    /// `struct sched_poll`.
    pub struct SchedPoll {
        /// Handle of the `evtchn_port_t` array.
        ports: Ulong @ 0 / 0,
        /// Ports in it.
        nr_ports: U32 @ 8 / 4,
        /// Absolute system time in ns; 0 waits forever.
        timeout: U64 @ 16 / 8,
    }
    size 24 / 16;
}

xen_struct! {
    /// `struct sched_shutdown` (`SCHEDOP_shutdown`, `SCHEDOP_shutdown_code`).
    pub struct SchedShutdown {
        /// `SHUTDOWN_*`.
        reason: U32 @ 0 / 0,
    }
    size 4 / 4;
}

// --- grant_table.h -----------------------------------------------------

xen_struct! {
    /// `struct gnttab_query_size`.
    pub struct GnttabQuerySize {
        /// The domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
        /// OUT: frames in use.
        nr_frames: U32 @ 4 / 4,
        /// OUT: frames the domain may use.
        max_nr_frames: U32 @ 8 / 8,
        /// OUT: `GNTST_*`.
        status: I16 @ 12 / 12,
    }
    size 16 / 16;
}

xen_struct! {
    /// `struct gnttab_setup_table`.
    pub struct GnttabSetupTable {
        /// The domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
        /// Frames wanted.
        nr_frames: U32 @ 4 / 4,
        /// OUT: `GNTST_*`.
        status: I16 @ 8 / 8,
        /// Handle of the `xen_pfn_t` array the frames are written to.
        frame_list: Ulong @ 16 / 12,
    }
    size 24 / 16;
}

impl GnttabSetupTable {
    /// Bytes of one `xen_pfn_t` in the frame list.
    pub const fn pfn_size(abi: Abi) -> usize {
        abi.ulong_size()
    }
}

xen_struct! {
    /// `struct gnttab_set_version`.
    pub struct GnttabSetVersion {
        /// IN: the version wanted; OUT: the version in use.
        version: U32 @ 0 / 0,
    }
    size 4 / 4;
}

xen_struct! {
    /// `struct gnttab_get_version`.
    pub struct GnttabGetVersion {
        /// The domain (`DOMID_SELF`).
        dom: U16 @ 0 / 0,
        /// OUT: the version in use.
        version: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct gnttab_copy`: both ends (`struct gnttab_copy_ptr`, whose
    /// union of `grant_ref_t ref` and `xen_pfn_t gmfn` is `*_u`) flattened.
    pub struct GnttabCopy {
        /// `source.u`: a grant reference or a frame.
        source_u: Ulong @ 0 / 0,
        /// `source.domid`.
        source_domid: U16 @ 8 / 4,
        /// `source.offset`.
        source_offset: U16 @ 10 / 6,
        /// `dest.u`: a grant reference or a frame.
        dest_u: Ulong @ 16 / 8,
        /// `dest.domid`.
        dest_domid: U16 @ 24 / 12,
        /// `dest.offset`.
        dest_offset: U16 @ 26 / 14,
        /// Bytes to copy.
        len: U16 @ 32 / 16,
        /// `GNTCOPY_*`.
        flags: U16 @ 34 / 18,
        /// OUT: `GNTST_*`.
        status: I16 @ 36 / 20,
    }
    size 40 / 24;
}

impl From<GnttabCopy> for vmm_glue::xen::grant_table::GnttabCopy {
    fn from(c: GnttabCopy) -> Self {
        use vmm_glue::xen::grant_table::GnttabCopyPtr;
        Self {
            source: GnttabCopyPtr {
                u: c.source_u,
                domid: c.source_domid,
                offset: c.source_offset,
            },
            dest: GnttabCopyPtr {
                u: c.dest_u,
                domid: c.dest_domid,
                offset: c.dest_offset,
            },
            len: c.len,
            flags: c.flags,
            status: c.status,
        }
    }
}

// --- vcpu.h ------------------------------------------------------------

xen_struct! {
    /// `struct vcpu_register_vcpu_info`.
    pub struct VcpuRegisterVcpuInfo {
        /// The frame holding the `vcpu_info`.
        mfn: U64 @ 0 / 0,
        /// Its offset in the frame.
        offset: U32 @ 8 / 8,
        /// Reserved.
        rsvd: U32 @ 12 / 12,
    }
    size 16 / 16;
}

xen_struct! {
    /// `struct vcpu_set_singleshot_timer`. The 64-bit structure has 4 bytes
    /// of tail padding after `flags`; they are not part of the size here
    /// and never read, so a 64-bit guest's argument is 12 bytes as a
    /// 32-bit guest's.
    pub struct VcpuSetSingleshotTimer {
        /// Absolute system time of the deadline, ns.
        timeout_abs_ns: U64 @ 0 / 0,
        /// `VCPU_SSHOTTMR_*`.
        flags: U32 @ 8 / 8,
    }
    size 12 / 12;
}

xen_struct! {
    /// `struct vcpu_set_periodic_timer`.
    pub struct VcpuSetPeriodicTimer {
        /// The period, ns.
        period_ns: U64 @ 0 / 0,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct vcpu_register_runstate_memory_area`: a handle of a
    /// `struct vcpu_runstate_info`.
    pub struct RunstateArea {
        /// Guest-virtual address of the area.
        addr: Ulong @ 0 / 0,
    }
    size 8 / 4;
}

impl RunstateArea {
    /// Bytes of the `struct vcpu_runstate_info` the handle points to:
    /// state, entry time and four times (8-byte fields 4-byte aligned in
    /// compat).
    pub const fn info_size(abi: Abi) -> usize {
        match abi {
            Abi::X64 => 48,
            Abi::Compat => 44,
        }
    }
}

// --- version.h, physdev.h ----------------------------------------------

xen_struct! {
    /// `struct xen_feature_info` (`XENVER_get_features`).
    pub struct XenFeatureInfo {
        /// Which 32-bit submap.
        submap_idx: U32 @ 0 / 0,
        /// OUT: its bits.
        submap: U32 @ 4 / 4,
    }
    size 8 / 8;
}

xen_struct! {
    /// `struct physdev_eoi`.
    pub struct PhysdevEoi {
        /// The pirq.
        irq: U32 @ 0 / 0,
    }
    size 4 / 4;
}

xen_struct! {
    /// `struct physdev_irq_status_query`.
    pub struct PhysdevIrqStatusQuery {
        /// The pirq.
        irq: U32 @ 0 / 0,
        /// OUT: `XENIRQSTAT_*`.
        flags: U32 @ 4 / 4,
    }
    size 8 / 8;
}

// The 64-bit layouts agree with the `#[repr(C)]` definitions of vmm-glue.
const _: () = {
    use core::mem::{offset_of, size_of};
    use vmm_glue::xen::event_channel as ev;
    use vmm_glue::xen::grant_table as gt;
    assert!(offset_of!(ev::EvtchnStatus, dom) == 0 && offset_of!(ev::EvtchnStatus, port) == 4);
    assert!(EvtchnStatusQuery::size(Abi::X64) <= size_of::<ev::EvtchnStatus>());
    assert!(GnttabQuerySize::size(Abi::X64) == size_of::<gt::GnttabQuerySize>());
    assert!(offset_of!(gt::GnttabQuerySize, nr_frames) == 4);
    assert!(offset_of!(gt::GnttabQuerySize, max_nr_frames) == 8);
    assert!(offset_of!(gt::GnttabQuerySize, status) == 12);
    assert!(GnttabSetupTable::size(Abi::X64) == size_of::<gt::GnttabSetupTable>());
    assert!(offset_of!(gt::GnttabSetupTable, nr_frames) == 4);
    assert!(offset_of!(gt::GnttabSetupTable, status) == 8);
    assert!(offset_of!(gt::GnttabSetupTable, frame_list) == 16);
    assert!(GnttabSetVersion::size(Abi::X64) == size_of::<gt::GnttabSetVersion>());
    assert!(GnttabCopy::size(Abi::X64) == size_of::<gt::GnttabCopy>());
    assert!(offset_of!(gt::GnttabCopy, dest) == 16);
    assert!(offset_of!(gt::GnttabCopy, len) == 32);
    assert!(offset_of!(gt::GnttabCopy, flags) == 34);
    assert!(offset_of!(gt::GnttabCopy, status) == 36);
    assert!(offset_of!(gt::GnttabCopyPtr, domid) == 8);
    assert!(offset_of!(gt::GnttabCopyPtr, offset) == 10);
};
