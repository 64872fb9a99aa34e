//! Small Linux programs that run inside the test guests (Debian's kernel
//! with the busybox initramfs `cargo xtask guests` makes), and the lines
//! they print.
//!
//! `pcibench` (src/bin/pcibench.rs) is built for `x86_64-unknown-linux-gnu`
//! with `-C target-feature=+crt-static`, so it needs nothing from the
//! initramfs but the kernel. It measures what a PCI frontend costs a Linux
//! guest: config-space reads through sysfs, sequential NVMe reads and plain
//! system calls. What it does is decided here ([`args`]), the arithmetic
//! ([`stats`]) and the lines it prints, which `cargo xtask bench` reads
//! back ([`report`]), are host-tested; the binary only does the I/O.
#![forbid(unsafe_code)]

pub mod args;
pub mod report;
pub mod stats;

pub use args::Command;
pub use report::Report;
pub use stats::Summary;
