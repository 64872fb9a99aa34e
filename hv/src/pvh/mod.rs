//! Loading PVH guest kernels: ELF images, Xen notes, guest memory layout, start info.
//!
//! The steps, each its own module and each checked without hardware:
//! 1. [`layout::GuestLayout::new`]: the guest's memory map around the
//!    host's holes, and where the special pages go;
//! 2. [`prepare`]: parse the image ([`elf`]), find its Xen notes
//!    ([`notes`]) and plan where its segments go ([`plan`]);
//! 3. [`layout::GuestLayout::place_modules`]: where the modules go;
//! 4. [`start_info::build_start_info`]: the bytes the guest finds in `ebx`.

pub mod acpi;
pub mod elf;
pub mod layout;
pub mod mptable;
pub mod notes;
pub mod plan;
pub mod start_info;

#[cfg(test)]
pub(crate) mod testimg;

use crate::memmap::Region;
use core::fmt;

pub use layout::{GuestLayout, SpecialPages};
pub use notes::XenNotes;
pub use plan::{LoadPlan, Segment};
pub use start_info::build_start_info;

/// Why a kernel image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    Elf(elf::ElfError),
    Notes(notes::NoteError),
    Plan(plan::PlanError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "bad ELF image: {e}"),
            Self::Notes(e) => e.fmt(f),
            Self::Plan(e) => write!(f, "cannot load the image: {e}"),
        }
    }
}

impl From<elf::ElfError> for LoadError {
    fn from(e: elf::ElfError) -> Self {
        Self::Elf(e)
    }
}

impl From<notes::NoteError> for LoadError {
    fn from(e: notes::NoteError) -> Self {
        Self::Notes(e)
    }
}

impl From<plan::PlanError> for LoadError {
    fn from(e: plan::PlanError) -> Self {
        Self::Plan(e)
    }
}

/// Checks `image` as a PVH kernel for a guest with memory map `memmap`: its
/// Xen notes (for the log) and its load plan.
pub fn prepare<'a>(
    image: &'a [u8],
    memmap: &[Region],
) -> Result<(XenNotes<'a>, LoadPlan), LoadError> {
    let elf = elf::Elf::parse(image)?;
    let notes = notes::xen_notes(&elf)?;
    let plan = plan::plan(&elf, notes.phys32_entry, memmap)?;
    Ok((notes, plan))
}

#[cfg(test)]
mod tests {
    use super::elf::Class;
    use super::layout::{GuestLayout, START_INFO_BYTES};
    use super::testimg::{note, phys32, pvh_kernel, Builder};
    use super::*;
    use crate::memmap::Range;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use vmm_glue::xen::elfnote::XEN_ELFNOTE_GUEST_OS;

    const Q35: [Range; 2] = [
        Range::new(0xB000_0000, 0xC000_0000),
        Range::new(0xFE00_0000, 0x1_0000_0000),
    ];

    #[test]
    fn a_linux_like_kernel_gets_a_plan_modules_and_start_info() {
        let mut b = pvh_kernel(Class::Elf64, 0x100_0000);
        b.note_segment(&note(b"Xen", XEN_ELFNOTE_GUEST_OS, b"linux\0"));
        let image = b.build();
        let layout = GuestLayout::new(512 << 20, &Q35).unwrap();
        let (notes, plan) = prepare(&image, &layout.e820).unwrap();
        assert_eq!(notes.guest_os, Some("linux"));
        assert_eq!(plan.entry, 0x100_0040);
        let modules = layout.place_modules(plan.image_end, &[0x80_0000]).unwrap();
        assert_eq!(modules, [0x100_3000]);
        let (blob, ebx) = build_start_info(
            layout.special.start_info,
            "console=hvc0",
            &[(modules[0], 0x80_0000, "initrd")],
            &layout.e820,
            0,
        )
        .unwrap();
        assert_eq!(ebx, layout.special.start_info);
        assert!(ebx + (blob.len() as u64) <= layout.special.xenstore);
        assert!(blob.len() as u64 <= START_INFO_BYTES);
    }

    #[test]
    fn load_errors_say_which_step_failed() {
        let layout = GuestLayout::new(64 << 20, &Q35).unwrap();
        assert_eq!(
            prepare(b"MZ\x90\x00", &layout.e820)
                .unwrap_err()
                .to_string(),
            "bad ELF image: the 4-byte image is too short for an ELF header (16 bytes)"
        );
        let mut b = Builder::new(Class::Elf32);
        b.load(0x10_0000, &[0xf4; 16], 16);
        assert_eq!(
            prepare(&b.build(), &layout.e820).unwrap_err().to_string(),
            "no XEN_ELFNOTE_PHYS32_ENTRY note: this image is not a PVH kernel"
        );
        let image = pvh_kernel(Class::Elf64, 0x1000_0000).build();
        assert!(prepare(&image, &layout.e820)
            .unwrap_err()
            .to_string()
            .starts_with("cannot load the image: program header 0"));
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

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Runs every step a guest image goes through; must never panic.
    fn exercise(image: &[u8], memmap: &[crate::memmap::Region]) {
        match prepare(image, memmap) {
            Ok((_, plan)) => {
                for s in &plan.segments {
                    assert!(s.bytes(image).is_some());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        if let Ok(elf) = elf::Elf::parse(image) {
            for (_, list) in notes::note_areas(&elf) {
                for n in list {
                    if let Err(e) = n {
                        let _ = e.to_string();
                    }
                }
            }
        }
    }

    #[test]
    fn the_loader_never_panics_on_random_or_mangled_images() {
        let layout = GuestLayout::new(64 << 20, &Q35).unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        for class in [Class::Elf32, Class::Elf64] {
            let mut b = pvh_kernel(class, 0x10_0000);
            b.note_section(&phys32(0x10_0040));
            b.note_segment(&note(b"Xen", XEN_ELFNOTE_GUEST_OS, b"linux"));
            seeds.push(b.build());
        }
        for seed in &seeds {
            exercise(seed, &layout.e820);
        }
        for round in 0..30_000 {
            let image: Vec<u8> = if round % 4 == 0 {
                // Random bytes behind a valid identification.
                let len = rng.below(600);
                let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let ident = [0x7f, b'E', b'L', b'F', 1 + (round / 4 % 2) as u8, 1, 1];
                let n = ident.len().min(v.len());
                v[..n].copy_from_slice(&ident[..n]);
                v
            } else {
                // A valid image with a few bytes changed, maybe cut short.
                let mut v = seeds[round % seeds.len()].clone();
                for _ in 0..1 + rng.below(6) {
                    // Mostly the headers, where the structure is.
                    let at = if rng.below(4) == 0 {
                        rng.below(v.len())
                    } else {
                        rng.below(v.len().min(400))
                    };
                    v[at] = match rng.below(4) {
                        0 => 0xff,
                        1 => 0,
                        _ => rng.next() as u8,
                    };
                }
                if rng.below(8) == 0 {
                    v.truncate(rng.below(v.len() + 1));
                }
                v
            };
            exercise(&image, &layout.e820);
        }
    }
}
