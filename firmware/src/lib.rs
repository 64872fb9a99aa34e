//! Guest-side runtime and the test and demo guests.
//!
//! Empty until the hypervisor runs guests: the PVH entry, hypercall page,
//! console and the frontend guests land here with that work.
#![no_std]
