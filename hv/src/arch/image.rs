//! The hypervisor image's own layout, from the linker script's symbols, and
//! walking its stacks.

use core::ptr::addr_of;

extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __image_end: u8;
    static boot_stack_top: u8;
}

/// Where the image's parts are, as `[start, end)` physical ranges.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// The whole image, `.bss` included.
    pub image: (u64, u64),
    /// `.boot` and `.text`: read-only, executable.
    pub text: (u64, u64),
    /// `.rodata`: read-only.
    pub rodata: (u64, u64),
}

/// The image's layout.
pub fn layout() -> Layout {
    // Only the addresses of these linker-defined symbols are taken.
    Layout {
        image: (addr_of!(__image_start) as u64, addr_of!(__image_end) as u64),
        text: (addr_of!(__image_start) as u64, addr_of!(__text_end) as u64),
        rodata: (
            addr_of!(__rodata_start) as u64,
            addr_of!(__rodata_end) as u64,
        ),
    }
}

/// Whether `[addr, addr + len)` lies on one of the hypervisor's stacks (the
/// boot stack or an IST stack).
pub fn is_hypervisor_stack(addr: u64, len: u64) -> bool {
    let top = addr_of!(boot_stack_top) as u64;
    let boot = (top - super::boot::BOOT_STACK_SIZE as u64, top);
    let end = addr.saturating_add(len);
    let inside = |(s, e): (u64, u64)| addr >= s && end <= e;
    inside(boot) || (1..=5).any(|slot| inside(super::gdt::ist_range(slot)))
}

/// Calls `each` with the return addresses found by following the
/// frame-pointer chain from `rbp` (every function keeps one:
/// `-C force-frame-pointers`), at most `max` of them. The walk stops at the
/// first frame pointer that is not on a hypervisor stack.
pub fn walk_frames(mut rbp: u64, max: usize, mut each: impl FnMut(u64)) {
    for _ in 0..max {
        if rbp == 0 || !rbp.is_multiple_of(8) || !is_hypervisor_stack(rbp, 16) {
            break;
        }
        // SAFETY: `rbp` is 8-byte aligned and the 16 bytes at it lie inside
        // one of the hypervisor's own mapped stacks, checked just above.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        each(ret);
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}
