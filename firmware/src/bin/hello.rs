//! The first guest: says hello, shows what the loader and the hypervisor
//! handed it (start info, command line, memory map, Xen version), checks
//! that they are consistent, and powers off.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::abi::start_info::{MAGIC, MEMMAP_RAM};
use firmware::hypervisor::{self, STUBS, STUB_SIZE};
use firmware::{boot, console, cpu, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

fn main(start_info: Gpa) -> ! {
    println!("hello from a PVH guest");

    let info = match StartInfo::read(start_info) {
        Ok(info) => Some(info),
        Err(e) => {
            println!("start_info: cannot read it at {start_info}: {e:?}");
            None
        }
    };
    if let Some(info) = &info {
        show(info);
    }
    let version = hypervisor::xen_version();
    match hypervisor::xen() {
        Some(_) if version >= 0 => println!("xen_version: {}.{}", version >> 16, version & 0xffff),
        Some(_) => println!("xen_version: error {version}"),
        None => println!("xen_version: no hypervisor"),
    }

    start_info_checks(info.as_ref());
    match hypervisor::xen() {
        Some(xen) => {
            report::check("hypercall page stubs", stubs_follow_the_abi());
            report::check_eq("xen_version matches CPUID", version, i64::from(xen.version));
            report::check_eq(
                "direct hypercall agrees with the page",
                hypervisor::xen_version_direct(),
                version,
            );
            report::check_eq("sched_op yield", hypervisor::sched_yield(), 0);
            report::check(
                "console_io write",
                console::write_bytes(b"console_io: one direct write\n") >= 0,
            );
        }
        None => {
            for name in [
                "hypercall page stubs",
                "xen_version matches CPUID",
                "direct hypercall agrees with the page",
                "sched_op yield",
                "console_io write",
            ] {
                report::skip(name, "no Xen CPUID leaves");
            }
        }
    }
    report::finish()
}

fn show(info: &StartInfo) {
    let raw = &info.raw;
    println!(
        "start_info: magic {:#x} at {}, version {}, flags {:#x}, {} modules, rsdp {:#x}",
        raw.magic, info.gpa, raw.version, raw.flags, raw.nr_modules, raw.rsdp_paddr
    );
    match info.cmdline() {
        None => println!("command line: (none)"),
        Some(line) => {
            let more = if line.truncated { " (truncated)" } else { "" };
            match line.as_str() {
                Some(text) => println!("command line: \"{text}\"{more}"),
                None => println!("command line: {:?}{more} (not UTF-8)", line.as_bytes()),
            }
        }
    }
    println!("memory map: {} entries", info.memmap_len());
    for e in info.memmap_entries() {
        println!(
            "  {:#012x}-{:#012x} type {}",
            e.addr,
            e.addr.saturating_add(e.size),
            e.type_
        );
    }
}

fn start_info_checks(info: Option<&StartInfo>) {
    let (image_start, image_end) = boot::image_range();
    report::check_eq("start_info magic", info.map(|i| i.raw.magic), Some(MAGIC));
    report::check(
        "start_info has a memory map",
        info.is_some_and(|i| i.memmap_len() > 0),
    );
    report::check(
        "memory map has RAM under the image",
        info.is_some_and(|i| {
            i.memmap_entries().any(|e| {
                e.type_ == MEMMAP_RAM
                    && e.addr <= image_start.raw()
                    && e.addr.saturating_add(e.size) >= image_end.raw()
            })
        }),
    );
    report::check(
        "start_info lies outside the image",
        info.is_some_and(|i| {
            let end = i.gpa.raw() + core::mem::size_of_val(&i.raw) as u64;
            end <= image_start.raw() || i.gpa >= image_end
        }),
    );
}

/// Every stub is `mov eax, N; vmcall|vmmcall; ret` with this CPU's
/// instruction (Xen puts `ud2` at `iret`'s, which HVM guests cannot use).
fn stubs_follow_the_abi() -> bool {
    const IRET: usize = 23;
    let insn: [u8; 3] = match cpu::vendor() {
        cpu::Vendor::Amd => [0x0f, 0x01, 0xd9],
        cpu::Vendor::Intel => [0x0f, 0x01, 0xc1],
    };
    for n in 0..STUBS as usize {
        if n == IRET {
            continue;
        }
        let stub = hypervisor::stub(n);
        let imm = u32::from_le_bytes([stub[1], stub[2], stub[3], stub[4]]);
        let ok = stub[0] == 0xb8 && imm as usize == n && stub[5..8] == insn && stub[8] == 0xc3;
        if !ok {
            println!(
                "  stub {n} at {:#x}: {:02x?}",
                hypervisor::hypercall_page().raw() + (n * STUB_SIZE) as u64,
                &stub[..12]
            );
            return false;
        }
    }
    true
}
