//! Host tests of the VT-d driver against the fakes.

mod context;
mod faults;
mod init;
mod ir;
mod ir_unit;
mod queue;
mod tables;
