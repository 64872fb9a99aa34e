//! Reading physical memory through the hypervisor's identity map.

use core::sync::atomic::{AtomicU64, Ordering};
use hv::multiboot::PhysRead;
use vmm_glue::log;

/// Physical addresses below this are identity-mapped (the boot page tables
/// map 4 GiB; the hypervisor's own tables may map more).
static MAPPED_END: AtomicU64 = AtomicU64::new(4 << 30);

/// Records how much of the physical address space is identity-mapped.
pub fn set_mapped_end(end: u64) {
    MAPPED_END.store(end, Ordering::Relaxed);
}

/// The identity-mapped physical address space, as a byte source.
#[derive(Debug)]
pub struct Identity;

impl PhysRead for Identity {
    // Out of line, as `mmio_read` and `mmio_write`: called from dozens of
    // places, none of them hot (the image's size: docs/benchmarks.md).
    #[inline(never)]
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let end = pa.checked_add(len as u64)?;
        if end > MAPPED_END.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: [pa, end) is inside the identity map (checked above) (page 0
        // included, mapped read-only). The bytes are firmware or boot-loader data
        // (ACPI tables, boot information, modules) that the hypervisor only
        // reads; the frame allocator never hands out the ranges callers read
        // through here (they are reserved at boot).
        Some(unsafe { core::slice::from_raw_parts(pa as *const u8, len) })
    }
}

/// Zeroes the frame at `pa`.
///
/// # Safety
/// `pa` must be a page-aligned, identity-mapped frame the caller owns.
pub unsafe fn zero_frame(pa: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, 4096) };
}

/// Writes entry `index` of the page-table frame at `table`.
///
/// # Safety
/// `table` must be an identity-mapped page-table frame the caller owns and
/// that no active translation depends on in a way this write would break.
pub unsafe fn write_entry(table: u64, index: usize, value: u64) {
    debug_assert!(index < 512);
    // SAFETY: guaranteed by the caller; index < 512 keeps it in the frame.
    unsafe { core::ptr::write_volatile((table as *mut u64).add(index), value) };
}

/// The machine's PCI configuration space: ECAM for the windows `mcfg`
/// describes that the identity map covers, the legacy ports for the rest of
/// segment 0.
pub fn pci_host(mcfg: Option<&platform::acpi::Mcfg>) -> platform::pci::host::PciHost {
    use platform::pci::host::{ecam_regions, Ecam, LegacyPorts, PciHost};
    let mapped_end = MAPPED_END.load(Ordering::Relaxed);
    let mut regions = mcfg
        .map(|m| ecam_regions(&m.allocations))
        .unwrap_or_default();
    regions.retain(|r| {
        let inside = r.base.checked_add(r.size()).is_some_and(|end| end <= mapped_end);
        if !inside {
            log::warn!(
                "pci: ECAM window at {:#x} for segment {} lies outside the mapped memory; that segment is not scanned",
                r.base,
                r.segment
            );
        }
        inside
    });
    // SAFETY: every remaining window lies inside the identity map, and the
    // page tables map memory that is not RAM uncached (ECAM is reserved in
    // the memory map); no Rust reference points into it.
    let ecam = unsafe { Ecam::new(regions) };
    // SAFETY: the hypervisor runs at CPL 0 on the boot CPU only, and this
    // `PciHost` is the single user of ports 0xCF8/0xCFC.
    let ports = unsafe { LegacyPorts::new() };
    PciHost::new(ecam, Some(ports))
}

/// Fills `[pa, pa + len)` with `byte`.
///
/// # Safety
/// `[pa, pa + len)` must lie in frames the caller owns: handed to it by
/// the frame allocator (`crate::mem::alloc_frames`, or a guest's RAM
/// chunk the caller holds) and not yet given back, so identity-mapped RAM
/// that no Rust reference, other owner or active translation relies on
/// keeping its contents.
pub unsafe fn fill_owned(pa: u64, len: u64, byte: u8) {
    debug_assert!(pa + len <= MAPPED_END.load(Ordering::Relaxed));
    // SAFETY: the caller owns the range (this function's contract).
    unsafe { core::ptr::write_bytes(pa as *mut u8, byte, len as usize) };
}

/// Zeroes `[pa, pa + len)`, whole frames. A frame that already reads as
/// zero is only read, not written: RAM nobody has written stays unwritten.
/// Where the machine backs RAM lazily (an emulator, or a hypervisor below
/// this one), the first write to a page makes the host allocate and clear
/// it, which under QEMU TCG made a 256 MiB domain's build take 0.71 s
/// instead of 0.08 s; reading it does not (docs/benchmarks.md, Linux PVH
/// boot time).
///
/// # Safety
/// As for [`fill_owned`]: frames the caller owns.
pub unsafe fn zero_owned(pa: u64, len: u64) {
    debug_assert!(pa.is_multiple_of(4096) && len.is_multiple_of(4096));
    debug_assert!(pa + len <= MAPPED_END.load(Ordering::Relaxed));
    for frame in (pa..pa + len).step_by(4096) {
        // SAFETY: a whole frame the caller owns (this function's contract).
        unsafe {
            if !frame_is_zero(frame) {
                clear_frame(frame);
            }
        }
    }
}

/// Zeroes the frame at `pa` with 64 bytes of plain stores per iteration.
/// Not `rep stos`: QEMU TCG runs a `rep` string instruction one element
/// per translated-block execution, which made a Linux domain's teardown
/// scrub (256 MiB) 0.54 s instead of 0.33 s (docs/benchmarks.md). Not
/// measured on hardware, where both are bounded by the memory's speed.
///
/// # Safety
/// `pa` must be a page-aligned, identity-mapped frame the caller owns.
unsafe fn clear_frame(pa: u64) {
    let words = pa as *mut u64;
    for i in (0..512).step_by(8) {
        // SAFETY: words `i` to `i + 7` of the frame (the caller's
        // contract). Volatile, so that the loop is not turned back into a
        // `memset`; written out, as opt-level "z" does not unroll.
        let z = |k: usize| unsafe { words.add(i + k).write_volatile(0) };
        z(0);
        z(1);
        z(2);
        z(3);
        z(4);
        z(5);
        z(6);
        z(7);
    }
}

/// Whether every byte of the frame at `pa` is zero, read 64 bytes at a time.
///
/// # Safety
/// `pa` must be a page-aligned, identity-mapped frame the caller owns.
unsafe fn frame_is_zero(pa: u64) -> bool {
    let words = pa as *const u64;
    (0..512).step_by(8).all(|i| {
        // SAFETY: words `i` to `i + 7` of the frame (the caller's
        // contract), aligned.
        let w = |k: usize| unsafe { words.add(i + k).read() };
        w(0) | w(1) | w(2) | w(3) | w(4) | w(5) | w(6) | w(7) == 0
    })
}

/// The first address in `[pa, pa + len)` whose 8-byte word is not zero,
/// read with volatile loads (a device may be writing there).
///
/// # Safety
/// `pa` must be 8-byte aligned and `[pa, pa + len)` identity-mapped RAM
/// (frames the caller holds): a wild address faults in the hypervisor.
pub unsafe fn first_nonzero(pa: u64, len: u64) -> Option<u64> {
    debug_assert!(pa.is_multiple_of(8) && pa + len <= MAPPED_END.load(Ordering::Relaxed));
    (pa..pa + len).step_by(8).find(|&a| {
        // SAFETY: aligned RAM inside the identity map (this function's
        // contract); reading it has no side effect.
        unsafe { (a as *const u64).read_volatile() != 0 }
    })
}

/// Device memory above 4 GiB that [`map_device`] mapped, as `[start,
/// end)` ranges; `len` of them are in use.
struct Windows {
    ranges: [(u64, u64); 16],
    len: usize,
}

static WINDOWS: spin::Mutex<Windows> = spin::Mutex::new(Windows {
    ranges: [(0, 0); 16],
    len: 0,
});

/// Whether device memory `[pa, end)` is mapped: below 4 GiB (the identity
/// map, uncached where there is no RAM) or inside one window.
fn device_mapped(pa: u64, end: u64) -> bool {
    end <= 4 << 30 || {
        let w = WINDOWS.lock();
        w.ranges[..w.len].iter().any(|&(s, e)| s <= pa && end <= e)
    }
}

/// Makes the device memory `[pa, pa + len)` (a memory BAR) reachable by
/// [`mmio_read`] and [`mmio_write`]: below 4 GiB it is already; above, it
/// is mapped uncached into the hypervisor's tables
/// ([`super::paging::map_device`]). `false` (and a warning naming `what`)
/// if it cannot be: no frame for a table, more than 16 windows, or beyond
/// 48 bits.
pub fn map_device(pa: u64, len: u64, what: &dyn core::fmt::Display) -> bool {
    let Some(end) = pa.checked_add(len) else {
        return false;
    };
    if device_mapped(pa, end) {
        return true;
    }
    let mut w = WINDOWS.lock();
    let ok = w.len < w.ranges.len()
        && super::paging::map_device(pa, len, || crate::mem::alloc_frames(1, 4096));
    if ok {
        let i = w.len;
        w.ranges[i] = (pa, end);
        w.len += 1;
        log::info!(
            "mem: {what}: device memory {pa:#x}-{:#x} mapped uncached",
            end - 1
        );
    } else {
        log::warn!(
            "mem: {what}: device memory {pa:#x}-{:#x} cannot be mapped; the hypervisor will not touch it (MSI-X tables there stay unprogrammed)",
            end - 1
        );
    }
    ok
}

/// Reads `size` (1, 2, 4 or 8) bytes of device memory at `pa`; `None` if
/// `pa` is not identity-mapped or the size is not one of those.
///
/// # Safety
/// `pa` must be a register of a device the caller drives for the
/// hypervisor, or inside a memory BAR of a function assigned to the guest
/// it serves: a read of device memory can have effects (a status cleared,
/// a FIFO popped), and one of RAM would read another owner's data.
#[inline(never)]
pub unsafe fn mmio_read(pa: u64, size: u8) -> Option<u64> {
    let end = pa.checked_add(u64::from(size))?;
    if !device_mapped(pa, end) || !pa.is_multiple_of(u64::from(size.max(1))) {
        return None;
    }
    // SAFETY: `pa` is below 4 GiB, which the hypervisor's page tables map
    // (uncached where there is no RAM), or in a device window
    // [`map_device`] mapped uncached, and naturally aligned (checked
    // above); that it is a register the caller may touch is this
    // function's contract.
    unsafe {
        Some(match size {
            1 => u64::from((pa as *const u8).read_volatile()),
            2 => u64::from((pa as *const u16).read_volatile()),
            4 => u64::from((pa as *const u32).read_volatile()),
            8 => (pa as *const u64).read_volatile(),
            _ => return None,
        })
    }
}

/// Writes the low `size` (1, 2, 4 or 8) bytes of `value` to device memory
/// at `pa`; nothing happens where [`mmio_read`] would give `None`.
///
/// # Safety
/// As for [`mmio_read`]: `pa` must be a register of a device the caller
/// drives, or inside a memory BAR of a function assigned to the guest it
/// serves (a write elsewhere could reprogram an IOMMU, an interrupt
/// controller or another guest's device, or corrupt RAM).
#[inline(never)]
pub unsafe fn mmio_write(pa: u64, size: u8, value: u64) {
    let Some(end) = pa.checked_add(u64::from(size)) else {
        return;
    };
    if !device_mapped(pa, end) || !pa.is_multiple_of(u64::from(size.max(1))) {
        return;
    }
    // SAFETY: as in `mmio_read`.
    unsafe {
        match size {
            1 => (pa as *mut u8).write_volatile(value as u8),
            2 => (pa as *mut u16).write_volatile(value as u16),
            4 => (pa as *mut u32).write_volatile(value as u32),
            8 => (pa as *mut u64).write_volatile(value),
            _ => {}
        }
    }
}

/// Reads the 64-bit word at `pa` in a frame the caller owns (an IOMMU
/// table).
///
/// # Safety
/// `pa` must be 8-byte aligned and inside a frame the caller holds from
/// the frame allocator (identity-mapped RAM).
pub unsafe fn read_owned_u64(pa: u64) -> u64 {
    debug_assert!(pa.is_multiple_of(8));
    // SAFETY: aligned, in a frame the caller holds (this function's
    // contract).
    unsafe { (pa as *const u64).read_volatile() }
}

/// Writes the 64-bit word at `pa` in a frame the caller owns.
///
/// # Safety
/// `pa` must be 8-byte aligned and inside a frame the caller owns, as for
/// [`fill_owned`].
pub unsafe fn write_owned_u64(pa: u64, v: u64) {
    debug_assert!(pa.is_multiple_of(8));
    // SAFETY: aligned, in a frame the caller owns (this function's
    // contract).
    unsafe { (pa as *mut u64).write_volatile(v) };
}

/// Copies `data` into `[pa, pa + data.len())`.
///
/// # Safety
/// The range must lie in frames the caller owns, as for [`fill_owned`].
pub unsafe fn copy_to_owned(pa: u64, data: &[u8]) {
    debug_assert!(pa + data.len() as u64 <= MAPPED_END.load(Ordering::Relaxed));
    // SAFETY: the caller owns the range (this function's contract); `data`
    // is a Rust slice, so it cannot be inside frames the caller owns
    // through raw addresses.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) };
}

/// Flips the bits `mask` of the firmware's byte at `pa` (`debug.acpi-xor`).
///
/// # Safety
/// `pa` must be inside an ACPI table the firmware left in RAM, before the
/// hypervisor reads the tables: nothing else may hold a reference to it.
#[cfg(feature = "test-hooks")]
pub unsafe fn xor_firmware_byte(pa: u64, mask: u8) {
    if pa < 0x1000 || pa >= MAPPED_END.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: mapped (checked above, page 0 excluded: it is read-only), and
    // nothing refers to the byte (this function's contract).
    unsafe { *(pa as *mut u8) ^= mask };
}
