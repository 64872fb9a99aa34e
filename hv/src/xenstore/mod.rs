//! An in-hypervisor xenstore: the key/value tree that Xen guests and the
//! in-hypervisor toolstack and backends use to find each other
//! (docs/misc/xenstore.txt in Xen). Pure logic: the ring page and event
//! channel are driven elsewhere.

pub mod ring;
pub mod store;
pub mod wire;
