//! Debian's Linux 6.1 (PV-capable `vmlinux`, tens of MiB) when a build
//! has fetched it; skipped otherwise.

use super::*;
use crate::pv::abi::sif;

/// Where `cargo xtask` puts it: this checkout's target, or the main
/// checkout's (worktrees share its downloads).
const VMLINUX: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/xtask/guests/vmlinux"
    ),
    "/work/main/target/xtask/guests/vmlinux",
];

fn vmlinux() -> Option<Vec<u8>> {
    VMLINUX.iter().find_map(|path| std::fs::read(path).ok())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The descriptor of the first Xen note of type `kind` in a `PT_NOTE`
/// segment, read straight from the ELF64 headers (what `readelf -n`
/// shows), independently of the code under test.
fn xen_note(image: &[u8], kind: u32) -> Option<Vec<u8>> {
    let phoff = u64_at(image, 32) as usize;
    let phentsize = usize::from(u16::from_le_bytes([image[54], image[55]]));
    let phnum = usize::from(u16::from_le_bytes([image[56], image[57]]));
    for i in 0..phnum {
        let ph = &image[phoff + i * phentsize..];
        if u32_at(ph, 0) != 4 {
            continue;
        }
        let (offset, size) = (u64_at(ph, 8) as usize, u64_at(ph, 32) as usize);
        let area = &image[offset..offset + size];
        let mut at = 0;
        while at + 12 <= area.len() {
            let (namesz, descsz) = (u32_at(area, at) as usize, u32_at(area, at + 4) as usize);
            let name = &area[at + 12..at + 12 + namesz];
            let desc_at = at + 12 + namesz.next_multiple_of(4);
            if name == b"Xen\0" && u32_at(area, at + 8) == kind {
                return Some(area[desc_at..desc_at + descsz].to_vec());
            }
            at = desc_at + descsz.next_multiple_of(4);
        }
    }
    None
}

#[test]
fn debian_linux_6_1_plans_into_256_mib_with_a_1_mib_initrd() {
    let Some(image) = vmlinux() else {
        std::println!("skipped: no vmlinux at {VMLINUX:?} (cargo xtask fetches it)");
        return;
    };
    let desc = xen_note(&image, 1).expect("the image has an ENTRY note");
    let entry = u64::from_le_bytes(desc.try_into().unwrap());
    let nr_pages = (256 << 20) / 4096;
    let cfg = PvBuildConfig {
        ramdisk_len: Some(1 << 20),
        ..config(nr_pages)
    };
    let p = plan(&image, &cfg).unwrap();
    std::println!("{}", p.summary());
    assert_eq!(p.regs.rip, entry);
    assert_eq!(p.virt_base, 0xffff_ffff_8000_0000);
    // Loaded at 16 MiB by physical address, the per-CPU segment included.
    assert_eq!(p.layout.kernel.start, 0x1000);
    assert!(p.kernel.segments.len() >= 4);
    for s in &p.kernel.segments {
        assert!(s.gpa >= 0x100_0000 && s.end() <= p.layout.kernel.end * 4096);
    }
    // Everything fits, in order, the initrd unmapped after the mapping
    // (Linux has MOD_START_PFN), no hypercall page (6.1.121 dropped it).
    let l = &p.layout;
    assert!(l.kernel.end <= l.p2m.start);
    assert_eq!(l.p2m.end - l.p2m.start, 128);
    assert!(l.p2m.end <= l.start_info && l.console < l.tables.l4_pfn);
    assert!(l.stack < l.mapped_pages);
    let r = l.ramdisk.unwrap();
    assert_eq!((r.pfn, r.mapped), (l.mapped_pages, false));
    assert!(p.first_free_pfn() <= nr_pages);
    assert_eq!(p.hypercall_page_pfn(), None);
    assert_eq!(
        p.start_info.flags,
        sif::MOD_START_PFN | sif::VIRT_P2M_4TOOLS
    );
    // Linux grafts the builder's single L2 into its own tables: the whole
    // mapping must sit in the 1 GiB at 0xffffffff80000000.
    assert_eq!(p.layout.tables.count[1..], [1, 1, 1]);
    for pfn in [0, l.kernel.start, l.p2m.start, l.start_info, l.stack] {
        assert_eq!(walk_plan(&p, p.va(pfn)), Ok(pfn * 4096));
    }
    assert_eq!(
        walk_plan(&p, entry).map(|gpa| gpa / 4096 < l.kernel.end),
        Ok(true)
    );
    // And it writes into 256 MiB, the image read in place.
    struct Bounds(u64, usize);
    impl GuestWriter for Bounds {
        type Error = ();
        fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), ()> {
            self.1 += 1;
            (gpa + bytes.len() as u64 <= self.0).then_some(()).ok_or(())
        }
    }
    let mut mem = Bounds(nr_pages * 4096, 0);
    p.write(&image, Some(&alloc::vec![0x1f; 1 << 20]), &mut mem)
        .unwrap();
}
