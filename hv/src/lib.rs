//! The hypervisor's host-testable logic.
#![cfg_attr(not(test), no_std)]
