//! The Xen public ABI, written from the documented layouts in Xen's public headers, with compile-time layout checks.

pub mod elfnote;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hypercall;
pub mod pciif;
pub mod shared_info;
pub mod start_info;
pub mod time;
