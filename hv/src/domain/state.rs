//! A domain's side of the Xen ABI: where its shared pages are, how it takes
//! upcalls, what it waits for, its timers and grant frames.

use super::events::{SharedInfo, Wait};
use alloc::vec::Vec;
use hv::hub::BackendPorts;
use hv::vlapic::VLapic;
use hv::xenstore::conn::Connection;

/// The Xen state of one vCPU: where its `vcpu_info` is, what it waits
/// for, its timers, runstate area and local APIC, and whether it is up.
#[derive(Debug)]
pub struct VcpuXen {
    /// The `vcpu_info`, when registered away from the shared info page
    /// (`VCPUOP_register_vcpu_info`); otherwise slot n of that page.
    pub vcpu_info: Option<u64>,
    pub wait: Wait,
    /// The singleshot timer's deadline (system time, ns).
    pub singleshot: Option<u64>,
    /// The periodic timer: period and next deadline (ns).
    pub periodic: Option<(u64, u64)>,
    /// The runstate area the guest registered, if any.
    pub runstate: Option<u64>,
    /// A second `vcpu_time_info` the guest registered
    /// (`VCPUOP_register_vcpu_time_memory_area`, which Linux maps into its
    /// vDSO), by guest-physical address.
    pub time_area: Option<u64>,
    /// The local APIC (its id is the vCPU's index).
    pub lapic: VLapic,
    /// CPUID faulting is on (`MISC_FEATURES_ENABLES` bit 0).
    pub cpuid_faulting: bool,
    /// Has a context: vCPU 0 from the PVH entry, the others from
    /// `VCPUOP_initialise`.
    pub initialised: bool,
    /// Runs (or may run) rather than being down.
    pub up: bool,
    /// A PV vCPU's Xen state (its mode, trap table, callbacks, roots).
    pub pv: Option<alloc::boxed::Box<super::pv::PvVcpu>>,
}

impl VcpuXen {
    /// vCPU `index`: vCPU 0 initialised and up, the others down.
    pub fn new(index: u32) -> Self {
        Self {
            vcpu_info: None,
            wait: Wait::Running,
            singleshot: None,
            periodic: None,
            runstate: None,
            time_area: None,
            lapic: VLapic::new(index),
            cpuid_faulting: false,
            initialised: index == 0,
            up: index == 0,
            pv: None,
        }
    }
}

/// The Xen state of a domain: its shared pages, backends and grant
/// frames, and the per-vCPU state of the vCPU that runs now (`cpu`; the
/// others are parked with their vCPUs, see `Domain`).
#[derive(Debug)]
pub struct XenState {
    pub shared: SharedInfo,
    /// The current vCPU's Xen state.
    pub cpu: VcpuXen,
    /// `HVM_PARAM_CALLBACK_IRQ` of type vector.
    pub callback_vector: Option<u8>,
    /// The xenstore and console ring pages (`HVM_PARAM_STORE_PFN`,
    /// `HVM_PARAM_CONSOLE_PFN`).
    pub store_gpa: u64,
    pub console_gpa: u64,
    /// The channels to the hypervisor's backends.
    pub ports: BackendPorts,
    pub xs_conn: Connection,
    /// Where each grant table frame is placed in the guest (index = frame).
    pub grant_frames: Vec<Option<u64>>,
    /// The guest's memory map: base, length, e820 type.
    pub e820: Vec<(u64, u64, u32)>,
    /// The FIFO event channel state, once the guest switched to it
    /// (`EVTCHNOP_init_control`); the 2-level ABI until then.
    pub fifo: Option<alloc::boxed::Box<hv::evtchn::fifo::Fifo>>,
}

impl XenState {
    pub fn new(id: u16, store_gpa: u64, console_gpa: u64, ports: BackendPorts) -> Self {
        Self {
            shared: SharedInfo::new(),
            cpu: VcpuXen::new(0),
            callback_vector: None,
            store_gpa,
            console_gpa,
            ports,
            xs_conn: Connection::new(id),
            grant_frames: Vec::new(),
            e820: Vec::new(),
            fifo: None,
        }
    }
}
