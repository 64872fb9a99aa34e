//! Physical memory at boot: the memory map report, the frame allocator, the
//! hypervisor's own page tables and the heap.

use crate::arch::{self, paging, phys};
use hv::memmap::{self, FixedList, FrameAllocator, Range, RegionKind, PAGE};
use hv::multiboot::BootInfo;
use vmm_glue::log;

/// The identity-mapped physical address space.
pub static IDENTITY: phys::Identity = phys::Identity;

/// Free ranges the allocator keeps: the usable memory split around every
/// reserved range.
const FREE_RANGES: usize = RESERVED_RANGES + 32;

/// Reserved ranges: the image, the boot information, its strings, and
/// each module with its name.
const RESERVED_RANGES: usize = 2 * hv::multiboot::MAX_MODULES + 8;

static FRAMES: spin::Mutex<Option<FrameAllocator<FREE_RANGES>>> = spin::Mutex::new(None);

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Sets up memory from the boot loader's map.
pub fn init(boot: &BootInfo<'_>) {
    let image = arch::image::layout().image;
    let source = if boot.memory_from_efi {
        ", from the EFI memory map"
    } else {
        ""
    };
    log::info!(
        "mem: physical memory map ({} entries{source}):",
        boot.memory.len()
    );
    let mut usable = 0;
    for r in boot.memory.as_slice() {
        log::info!(
            "mem:   {:#014x}-{:#014x} {}",
            r.base,
            r.end().saturating_sub(1),
            r.kind
        );
        if r.kind == RegionKind::Usable {
            usable += r.len;
        }
    }
    if boot.memory_dropped > 0 {
        log::warn!(
            "mem: {} more memory-map entries ignored (table full)",
            boot.memory_dropped
        );
    }

    // Never hand out: the image, the boot information and every string it
    // lends us, and the modules.
    let mut reserved = FixedList::<Range, RESERVED_RANGES>::new();
    let mut reserve = |start: u64, end: u64| {
        if reserved.push(Range::new(start, end)).is_err() {
            log::error!("mem: too many reserved ranges; {start:#x}-{end:#x} not tracked");
        }
    };
    reserve(image.0, image.1);
    // Memory the page tables cannot map stays out of the allocator.
    reserve(paging::MAX_MAPPED, u64::MAX);
    reserve(boot.info.0, boot.info.1);
    let text_range = |s: &str| (s.as_ptr() as u64, s.as_ptr() as u64 + s.len() as u64 + 1);
    for s in [boot.cmdline, boot.loader] {
        let (a, b) = text_range(s);
        reserve(a, b);
    }
    if let Some(rsdp) = boot.rsdp {
        reserve(
            rsdp.as_ptr() as u64,
            rsdp.as_ptr() as u64 + rsdp.len() as u64,
        );
    }
    for m in boot.modules.as_slice() {
        reserve(m.start, m.end);
        let (a, b) = text_range(m.name);
        reserve(a, b);
    }

    let free = memmap::free_ranges::<FREE_RANGES>(boot.memory.as_slice(), reserved.as_slice());
    let mut frames = FrameAllocator::new(free);
    log::info!(
        "mem: {} MiB usable; hypervisor image {:#x}-{:#x} ({} KiB); {} MiB free in {} ranges",
        mib(usable),
        image.0,
        image.1,
        (image.1 - image.0) / 1024,
        mib(frames.free_bytes()),
        frames.ranges().len()
    );

    // The hypervisor's own page tables.
    let mut ram = FixedList::<(u64, u64), 128>::new();
    for r in boot.memory.as_slice() {
        if matches!(
            r.kind,
            RegionKind::Usable | RegionKind::AcpiReclaimable | RegionKind::AcpiNvs
        ) {
            let _ = ram.push((r.base, r.end()));
        }
    }
    if ram
        .as_slice()
        .iter()
        .any(|&(_, end)| end > paging::MAX_MAPPED)
    {
        log::warn!("mem: memory above 512 GiB is not mapped and stays unused");
    }
    let Some((cr3, end)) = paging::install(ram.as_slice(), || frames.alloc(1, PAGE)) else {
        log::error!("mem: out of memory building the hypervisor's page tables");
        arch::exit::fatal();
    };
    log::info!(
        "mem: page tables at {cr3:#x}: {} GiB identity-mapped, code read-only{}, page 0 read-only",
        end >> 30,
        if paging::nx_supported() {
            ", data no-execute"
        } else {
            " (this CPU has no NX bit)"
        }
    );

    // The heap: 1/16 of free memory, between 4 and 64 MiB.
    let heap_bytes = (frames.free_bytes() / 16).clamp(4 << 20, 64 << 20);
    let Some(heap) = arch::heap::init(&mut frames, heap_bytes) else {
        log::error!("mem: cannot find {} MiB for the heap", mib(heap_bytes));
        arch::exit::fatal();
    };
    log::info!(
        "mem: heap {} MiB at {heap:#x}; {} MiB left for guests and tables",
        mib(heap_bytes),
        mib(frames.free_bytes())
    );
    *FRAMES.lock() = Some(frames);
}

/// Writes to the hypervisor's own code (`debug.fault=write-text`).
#[cfg(feature = "test-hooks")]
pub fn debug_write_text() {
    let text = arch::image::layout().text;
    // SAFETY: the hypervisor's code is mapped read-only: the write faults
    // (the point of the test) before changing anything.
    unsafe { arch::cpu::poke(text.0 + 0x1000, 0x90) };
}

/// Jumps into the hypervisor's data (`debug.fault=exec-data`).
#[cfg(feature = "test-hooks")]
pub fn debug_exec_data() {
    static RET: [u8; 1] = [0xc3];
    // SAFETY: `RET` is no-execute data (the fetch faults, the point of
    // the test); were NX missing, it is a RET, which returns.
    unsafe { arch::cpu::call_address(RET.as_ptr() as u64) };
}

/// `count` zeroed, contiguous frames aligned to `align` bytes, or `None`
/// when memory is short.
pub fn alloc_frames(count: u64, align: u64) -> Option<u64> {
    let base = FRAMES.lock().as_mut()?.alloc(count, align)?;
    unnote_scrubbed(base, base + count * PAGE);
    // SAFETY: the allocator just took these frames out of its free list:
    // they are this call's until it returns them to its caller.
    unsafe { arch::phys::zero_owned(base, count * PAGE) };
    Some(base)
}

/// Gives back frames from [`alloc_frames`]. The caller must no longer use
/// them (and must have removed every mapping of them).
pub fn free_frames(base: u64, count: u64) {
    if let Some(frames) = FRAMES.lock().as_mut() {
        frames.free(base, count);
    }
}

/// Domain memory scrubbed and freed since [`watch_scrubbed`]
/// (`debug.canary`) and not handed out again: `[start, end)` ranges.
static SCRUBBED: spin::Mutex<Option<alloc::vec::Vec<Range>>> = spin::Mutex::new(None);

/// Starts recording the domain memory that is scrubbed and freed.
pub fn watch_scrubbed() {
    *SCRUBBED.lock() = Some(alloc::vec::Vec::new());
}

/// Whether [`watch_scrubbed`] was called (`debug.canary`).
pub fn watching_scrubbed() -> bool {
    SCRUBBED.lock().is_some()
}

/// Records `[base, base + len)` as scrubbed and freed, if recording.
pub fn note_scrubbed(base: u64, len: u64) {
    if let Some(v) = SCRUBBED.lock().as_mut() {
        v.push(Range::new(base, base + len));
    }
}

/// Drops `[base, end)` from the recorded ranges: it was handed out again,
/// and its next owner may leave anything there.
fn unnote_scrubbed(base: u64, end: u64) {
    if let Some(v) = SCRUBBED.lock().as_mut() {
        memmap::subtract_all(v, Range::new(base, end));
    }
}

/// The recorded ranges: domain memory scrubbed, freed and not handed out
/// since, which must still read as zero.
pub fn scrubbed_and_free() -> alloc::vec::Vec<Range> {
    SCRUBBED.lock().clone().unwrap_or_default()
}

/// Bytes still free for allocation.
pub fn free_bytes() -> u64 {
    FRAMES.lock().as_ref().map_or(0, FrameAllocator::free_bytes)
}
