//! Physical memory at boot: the memory map report, the frame allocator, the
//! hypervisor's own page tables and the heap.

use crate::arch::{self, paging, phys};
use core::ptr::addr_of;
use hv::memmap::{self, FixedList, FrameAllocator, Range, RegionKind, PAGE};
use hv::multiboot::BootInfo;

/// The identity-mapped physical address space.
pub static IDENTITY: phys::Identity = phys::Identity;

static FRAMES: spin::Mutex<Option<FrameAllocator<64>>> = spin::Mutex::new(None);

extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __image_end: u8;
    static boot_stack_top: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The image's sections as `(image, text, rodata)` ranges.
fn image_layout() -> ((u64, u64), (u64, u64), (u64, u64)) {
    // SAFETY: only the addresses of these linker symbols are taken.
    unsafe {
        (
            (sym(&*addr_of!(__image_start)), sym(&*addr_of!(__image_end))),
            (sym(&*addr_of!(__image_start)), sym(&*addr_of!(__text_end))),
            (
                sym(&*addr_of!(__rodata_start)),
                sym(&*addr_of!(__rodata_end)),
            ),
        )
    }
}

/// Whether `[addr, addr + len)` lies on one of the hypervisor's stacks (the
/// boot stack or an IST stack): used to follow frame pointers safely.
pub fn is_hypervisor_stack(addr: u64, len: u64) -> bool {
    // SAFETY: only the address of the linker symbol is taken.
    let top = unsafe { sym(&*addr_of!(boot_stack_top)) };
    let boot = (top - arch::boot::BOOT_STACK_SIZE as u64, top);
    let end = addr.saturating_add(len);
    let inside = |(s, e): (u64, u64)| addr >= s && end <= e;
    inside(boot) || (1..=5).any(|slot| inside(arch::gdt::ist_range(slot)))
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Sets up memory from the boot loader's map.
pub fn init(boot: &BootInfo<'_>) {
    let (image, text, rodata) = image_layout();
    log::info!("mem: physical memory map ({} entries):", boot.memory.len());
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
    let mut reserved = FixedList::<Range, 48>::new();
    let mut reserve = |start: u64, end: u64| {
        if reserved.push(Range::new(start, end)).is_err() {
            log::warn!("mem: too many reserved ranges; {start:#x}-{end:#x} not tracked");
        }
    };
    reserve(image.0, image.1);
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

    let free = memmap::free_ranges::<64>(boot.memory.as_slice(), reserved.as_slice());
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
    let mut top = 4u64 << 30;
    for r in boot.memory.as_slice() {
        if matches!(
            r.kind,
            RegionKind::Usable | RegionKind::AcpiReclaimable | RegionKind::AcpiNvs
        ) {
            let _ = ram.push((r.base, r.end()));
            top = top.max(r.end());
        }
    }
    const MAX_MAPPED: u64 = 512 << 30;
    if top > MAX_MAPPED {
        log::warn!("mem: memory above 512 GiB is not mapped and stays unused");
        top = MAX_MAPPED;
    }
    let layout = paging::Layout {
        end: top,
        text,
        rodata,
        image,
        ram: ram.as_slice(),
    };
    let Some(cr3) = paging::build(&layout, || frames.alloc(1, PAGE)) else {
        log::error!("mem: out of memory building the hypervisor's page tables");
        arch::exit::fatal();
    };
    // SAFETY: the new tables identity-map [0, top) which covers the image,
    // its stacks, all RAM (heap and frames come from RAM) and the 4 GiB
    // below which firmware tables and MMIO live.
    unsafe { paging::activate(cr3) };
    phys::set_mapped_end(top.div_ceil(1 << 30) << 30);
    log::info!(
        "mem: page tables at {cr3:#x}: {} GiB identity-mapped, code read-only{}, page 0 read-only",
        top.div_ceil(1 << 30),
        if paging::nx_supported() {
            ", data no-execute"
        } else {
            " (this CPU has no NX bit)"
        }
    );

    // The heap: 1/16 of free memory, between 4 and 64 MiB.
    let heap_bytes = (frames.free_bytes() / 16).clamp(4 << 20, 64 << 20);
    let Some(heap) = frames.alloc(heap_bytes / PAGE, 2 << 20) else {
        log::error!("mem: cannot find {} MiB for the heap", mib(heap_bytes));
        arch::exit::fatal();
    };
    // SAFETY: a fresh allocation, identity-mapped RAM, handed to the heap
    // for good.
    unsafe { arch::heap::init(heap, heap_bytes as usize) };
    log::info!(
        "mem: heap {} MiB at {heap:#x}; {} MiB left for guests and tables",
        mib(heap_bytes),
        mib(frames.free_bytes())
    );
    *FRAMES.lock() = Some(frames);
}

/// Writes to the hypervisor's own code (`debug.fault=write-text`).
pub fn debug_write_text() {
    let (_, text, _) = image_layout();
    arch::cpu::poke(text.0 + 0x1000, 0x90);
}

/// Jumps into the hypervisor's data (`debug.fault=exec-data`).
pub fn debug_exec_data() {
    static RET: [u8; 1] = [0xc3];
    arch::cpu::call_address(RET.as_ptr() as u64);
}
