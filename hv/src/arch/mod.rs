//! Everything that touches the x86-64 CPU directly. `unsafe` in `hv` lives
//! here (and, later, in the SVM/VMX backends).

pub mod boot;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod heap;
pub mod idt;
pub mod image;
pub mod lapic;
pub mod libc;
pub mod paging;
pub mod phys;
pub mod serial;
pub mod time;
