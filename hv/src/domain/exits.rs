//! What a domain's exits were, counted by kind, hypercall, port and
//! exception vector for the end-of-domain summary.

/// Exits taken, by kind.
#[derive(Clone, Copy, Debug)]
pub struct ExitCounts {
    pub cpuid: u64,
    pub msr: u64,
    pub io: u64,
    pub hypercall: u64,
    pub hlt: u64,
    pub npf: u64,
    pub other: u64,
    /// Interrupt-window exits (an interrupt was pending while the guest
    /// could not take it).
    pub window: u64,
    /// Upcalls injected (not exits: counted next to them).
    pub upcalls: u64,
    /// `EVTCHNOP_send` calls.
    pub sends: u64,
    /// Timer expiries delivered.
    pub timers: u64,
    /// Device interrupts (passed-through functions' MSIs) raised as pirqs
    /// of this domain while it ran.
    pub device_irqs: u64,
    /// Exceptions a PV guest took (bounced to it or emulated).
    pub exception: u64,
    /// Exits for a host interrupt (the timer's ticks among them) or the
    /// end of a time slice.
    pub interrupt: u64,
    /// Hypercalls by number (0..64; higher numbers counted in 63).
    pub by_hypercall: [u64; 64],
    /// Port I/O exits by port.
    pub by_port: hv::hvm::ports::PortTally,
    /// A PV guest's exceptions by vector.
    pub by_vector: [u64; 32],
    /// Writes to a PV guest's read-only page tables the hypervisor
    /// emulated (the writable page-table assist).
    pub ptwr: u64,
    /// Exceptions a PV guest's fast-path stub took on guest memory (each
    /// rolled back to the slow path; counted among `exception` too).
    pub stub_faults: u64,
    /// Host interrupts and slice ends that came while a PV guest's
    /// fast-path stub decided about events (each rolled back to the slow
    /// path; counted among `interrupt` too).
    pub stub_interrupts: u64,
    /// PV upcalls the slow path left out: no port pending and unmasked.
    pub empty_upcalls: u64,
}

impl Default for ExitCounts {
    fn default() -> Self {
        Self {
            cpuid: 0,
            msr: 0,
            io: 0,
            hypercall: 0,
            hlt: 0,
            npf: 0,
            other: 0,
            window: 0,
            upcalls: 0,
            sends: 0,
            timers: 0,
            device_irqs: 0,
            exception: 0,
            ptwr: 0,
            interrupt: 0,
            by_hypercall: [0; 64],
            by_port: hv::hvm::ports::PortTally::default(),
            by_vector: [0; 32],
            stub_faults: 0,
            stub_interrupts: 0,
            empty_upcalls: 0,
        }
    }
}
