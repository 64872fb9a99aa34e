//! The Xen guest ABI: event channels, grant tables, xenstore, time and the PV
//! console, checked by the firmware conformance guests.

#[allow(unused_imports)]
use super::*;

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[];
