//! Tests of the PV builder: layouts of small Linux-like images, the boot
//! page tables walked as the CPU would, the bytes written, every error,
//! and Debian's Linux when it is at hand.

mod errors;
mod layout;
mod linux;
mod tables;
mod write;

use super::*;
use crate::gpt::{translate, WalkError};
use crate::pv::testimg::{linux_notes, pv_kernel, XenNote};
use alloc::vec::Vec;
use std::collections::BTreeMap;

/// 32 MiB: the test kernel sits at 16 MiB, as Linux does.
const NR_PAGES: u64 = 0x2000;

/// CR0.PE|PG, CR4.PAE, EFER.LME|LMA: 4-level long mode.
const CR0: u64 = (1 << 31) | 1;
const CR4: u64 = 1 << 5;
const EFER: u64 = (1 << 8) | (1 << 10);

fn config(nr_pages: u64) -> PvBuildConfig<'static> {
    PvBuildConfig {
        nr_pages,
        cmdline: "console=hvc0 root=/dev/xvda1",
        shared_info_maddr: 0x200_0000,
        store_evtchn: 1,
        console_evtchn: 2,
        ..PvBuildConfig::default()
    }
}

fn image(notes: &[XenNote]) -> Vec<u8> {
    pv_kernel(notes).build()
}

fn plan_of(notes: &[XenNote], cfg: &PvBuildConfig<'_>) -> Result<PvPlan, BuildError> {
    plan(&image(notes), cfg)
}

/// The domain's RAM, pfn 0..nr_pages, as pages written so far; a page
/// never written reads as 0xee (RAM that is not zero, so the tests see
/// what the plan zeroes).
struct Mem {
    nr_pages: u64,
    pages: BTreeMap<u64, Vec<u8>>,
    writes: usize,
}

const UNWRITTEN: u8 = 0xee;

impl Mem {
    fn new(nr_pages: u64) -> Self {
        Self {
            nr_pages,
            pages: BTreeMap::new(),
            writes: 0,
        }
    }

    fn byte(&self, gpa: u64) -> u8 {
        self.pages
            .get(&(gpa / PAGE_SIZE))
            .map_or(UNWRITTEN, |p| p[(gpa % PAGE_SIZE) as usize])
    }

    fn bytes(&self, gpa: u64, len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| self.byte(gpa + i)).collect()
    }

    fn u64_at(&self, gpa: u64) -> u64 {
        let b = self.bytes(gpa, 8);
        u64::from_le_bytes(b.try_into().unwrap())
    }

    /// Reads a page-table entry for `gpt::translate`.
    fn entry(&self, gpa: u64, size: usize) -> Option<u64> {
        assert_eq!(size, 8);
        (gpa / PAGE_SIZE < self.nr_pages).then(|| self.u64_at(gpa))
    }
}

impl GuestWriter for Mem {
    type Error = &'static str;

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), Self::Error> {
        if gpa + bytes.len() as u64 > self.nr_pages * PAGE_SIZE {
            return Err("outside RAM");
        }
        self.writes += 1;
        for (i, &b) in bytes.iter().enumerate() {
            let at = gpa + i as u64;
            let page = self
                .pages
                .entry(at / PAGE_SIZE)
                .or_insert_with(|| alloc::vec![UNWRITTEN; PAGE_SIZE as usize]);
            page[(at % PAGE_SIZE) as usize] = b;
        }
        Ok(())
    }
}

/// Plans and writes the test kernel with `notes` into a fresh `Mem`.
fn written(notes: &[XenNote], cfg: &PvBuildConfig<'_>, ramdisk: Option<&[u8]>) -> (PvPlan, Mem) {
    let image = image(notes);
    let p = plan(&image, cfg).unwrap();
    let mut mem = Mem::new(cfg.nr_pages);
    p.write(&image, ramdisk, &mut mem).unwrap();
    (p, mem)
}

/// Walks the plan's own tables (not memory): guest-physical of `va`.
fn walk_plan(p: &PvPlan, va: u64) -> Result<u64, WalkError> {
    translate(CR0, p.l4_pfn() * PAGE_SIZE, CR4, EFER, va, |gpa, size| {
        assert_eq!(size, 8);
        p.table(gpa / PAGE_SIZE)
            .map(|t| t[(gpa % PAGE_SIZE / 8) as usize])
    })
}

/// The L4..L1 entries on the way to `va` in the tables written to `mem`.
fn entries_to(mem: &Mem, l4_pfn: u64, va: u64) -> Vec<u64> {
    let mut table = l4_pfn * PAGE_SIZE;
    let mut out = Vec::new();
    for level in (1..=4u32).rev() {
        let index = (va >> (12 + 9 * (level - 1))) & 511;
        let e = mem.u64_at(table + index * 8);
        out.push(e);
        if e & 1 == 0 {
            break;
        }
        table = e & 0x000f_ffff_ffff_f000;
    }
    out
}

/// xorshift64: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn the_summary_names_every_placement_on_one_line() {
    let cfg = PvBuildConfig {
        ramdisk_len: Some(0x10_0000),
        ..config(NR_PAGES)
    };
    let p = plan_of(&linux_notes(), &cfg).unwrap();
    let s = p.summary().to_string();
    assert!(!s.contains('\n'));
    assert_eq!(
        s,
        "entry 0xffffffff81000040, virt base 0xffffffff80000000; pfns: kernel 0x1000-0x1006, \
         p2m 0x1007+16, start info 0x1017, xenstore 0x1018, console 0x1019, 13 page tables at \
         0x101a, stack 0x1027; mapped to 0xffffffff81400000 (20 MiB), unmapped initrd 0x1400 \
         (1024 KiB); 0xb00 of 0x2000 pages free from 0x1500"
    );
}

/// Plans random configurations of the test kernel: a plan or an error,
/// never a panic, and a plan always inside the domain.
#[test]
fn random_configurations_plan_inside_the_domain_or_fail_cleanly() {
    use crate::pv::testimg::{num, with};
    use vmm_glue::xen::elfnote::{XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_VIRT_BASE};
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..2000 {
        let virt_base = match rng.below(4) {
            0 => 0,
            1 => 0xffff_ffff_8000_0000,
            2 => rng.next() & !0xfff,
            _ => (rng.next() & 0x0000_7fff_ffff_f000) | (rng.below(2) << 63),
        };
        let notes = with(
            &with(&linux_notes(), num(XEN_ELFNOTE_VIRT_BASE, virt_base)),
            num(XEN_ELFNOTE_PADDR_OFFSET, rng.below(3) * 0x80_0000),
        );
        let cfg = PvBuildConfig {
            nr_pages: rng.below(0x4000),
            ramdisk_len: (rng.below(2) == 0).then(|| rng.below(0x40_0000)),
            ..config(0)
        };
        match plan_of(&notes, &cfg) {
            Ok(p) => {
                assert!(p.first_free_pfn() <= cfg.nr_pages);
                assert!(p.layout.mapped_pages <= cfg.nr_pages);
                assert_eq!(
                    walk_plan(&p, p.va(p.layout.stack)),
                    Ok(p.layout.stack * 4096)
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
