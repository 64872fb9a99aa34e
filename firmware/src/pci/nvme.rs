//! NVMe (QEMU `nvme`, 1b36:0010).

use super::{Function, Transport};

/// Vendor and device ID.
pub const IDS: u32 = 0x1b36_0010;

/// Drives one NVMe controller.
pub fn run<T: Transport>(_t: &mut T, _f: &Function, _rounds: usize, _bench: bool) {
    crate::report::skip("nvme", "not driven yet");
}
