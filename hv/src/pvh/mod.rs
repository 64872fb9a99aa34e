//! Loading PVH guest kernels: ELF images, Xen notes, guest memory layout, start info.

pub mod elf;
pub mod layout;
pub mod notes;
pub mod plan;

#[cfg(test)]
mod testimg;
