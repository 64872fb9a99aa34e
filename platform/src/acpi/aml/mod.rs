//! A small static reader of AML, the bytecode in the DSDT and SSDTs, for
//! the one thing the hypervisor needs from it: which global system
//! interrupt (GSI) each PCI slot's INTx pins are wired to (`_PRT`).
//!
//! This is not an interpreter. The reader walks the definition blocks
//! (`Scope`, `Device`, `Name`, `Method`, ...) and records every named
//! object with its absolute path; `Name` values that are data (integers,
//! strings, buffers, packages) are decoded, `Method` bodies are kept as
//! byte ranges and never run. A method body can still be searched for the
//! objects it returns, and a `_PRT` method is walked as it would run in
//! APIC mode (`\_PIC(1)`), deciding only what is statically known
//! (`eval`): which of two tables it returns, a method it calls for the
//! table, a package it builds in a local variable by a plain store. What
//! depends on run-time state (an NVS byte, a table built in a loop) is
//! reported as undecided, never guessed ([`Routing`]).
//!
//! Everything is bounds-checked against the enclosing `PkgLength`, nesting
//! is limited, and bad bytes give an [`AmlError`] with the offset (from the
//! start of the table, header included, as a hex dump shows it) rather than a
//! panic. Opcodes the reader does not know end the walk of the term list
//! they appear in (the error is kept in [`Namespace::errors`]); the objects
//! after it in the enclosing scopes are still found.
//!
//! What it does not do, by design: run methods (so a `_CRS` that is a
//! method, such as the PIIX/ICH link devices' reads of the PIRQ routing
//! registers, is reported as needing the chipset's routing, see
//! [`PrtSource`]); follow `If`/`Else` blocks at definition level (their
//! contents depend on run-time state); record the field units named in
//! `Field`, `IndexField` and `BankField` lists; follow `Alias`es; load
//! tables at run time (`Load`, `LoadTable`). Which bridge's `_PRT` serves
//! a function, and the swizzle where a bridge has none, is the caller's to
//! apply ([`Routing::child`] finds a bridge's device by `_ADR`).
//!
//! Encodings are those of the ACPI specification 6.x, chapter 20 ("ACPI
//! Machine Language (AML) Specification"); the routing table is described
//! under "_PRT (PCI Routing Table)" and the resource descriptors under
//! "Resource Data Types for ACPI".

mod cursor;
mod error;
mod eval;
mod method;
mod name;
mod namespace;
mod prt;
mod resource;
mod routing;
mod term;

#[cfg(test)]
mod tests;

pub use error::{AmlError, AmlErrorKind};
pub use eval::Undecided;
pub use method::Returned;
pub use name::{AmlPath, NameSeg, NameString};
pub use namespace::{Namespace, Object, ObjectKind, Value, ValueKind};
pub use prt::{gsi_for, PrtEntry, PrtSource, Route};
pub use resource::{bus_range_start, first_interrupt, interrupt_flags, Interrupt};
pub use routing::{pci_routes, HostBridge, Prt, PrtError, Routing};
