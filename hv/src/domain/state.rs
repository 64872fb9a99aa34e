//! A domain's side of the Xen ABI: where its shared pages are, how it takes
//! upcalls, what it waits for, its timers and grant frames.

use super::events::{SharedInfo, Wait};
use alloc::vec::Vec;
use hv::hub::BackendPorts;
use hv::vlapic::VLapic;
use hv::xenstore::conn::Connection;

/// The Xen state of a domain with one vCPU.
#[derive(Debug)]
pub struct XenState {
    pub shared: SharedInfo,
    /// vCPU 0's `vcpu_info`, when registered away from the shared info page
    /// (`VCPUOP_register_vcpu_info`).
    pub vcpu_info: Option<u64>,
    /// `HVM_PARAM_CALLBACK_IRQ` of type vector.
    pub callback_vector: Option<u8>,
    /// The xenstore and console ring pages (`HVM_PARAM_STORE_PFN`,
    /// `HVM_PARAM_CONSOLE_PFN`).
    pub store_gpa: u64,
    pub console_gpa: u64,
    /// The channels to the hypervisor's backends.
    pub ports: BackendPorts,
    pub xs_conn: Connection,
    pub wait: Wait,
    /// Where each grant table frame is placed in the guest (index = frame).
    pub grant_frames: Vec<Option<u64>>,
    /// The singleshot timer's deadline (system time, ns).
    pub singleshot: Option<u64>,
    /// The periodic timer: period and next deadline (ns).
    pub periodic: Option<(u64, u64)>,
    /// The runstate area the guest registered, if any.
    pub runstate: Option<u64>,
    /// The guest's memory map: base, length, e820 type.
    pub e820: Vec<(u64, u64, u32)>,
    /// vCPU 0's local APIC.
    pub lapic: VLapic,
}

impl XenState {
    pub fn new(id: u16, store_gpa: u64, console_gpa: u64, ports: BackendPorts) -> Self {
        Self {
            shared: SharedInfo::new(),
            vcpu_info: None,
            callback_vector: None,
            store_gpa,
            console_gpa,
            ports,
            xs_conn: Connection::new(id),
            wait: Wait::Running,
            grant_frames: Vec::new(),
            singleshot: None,
            periodic: None,
            runstate: None,
            e820: Vec::new(),
            lapic: VLapic::new(0),
        }
    }
}
