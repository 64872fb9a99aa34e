//! Loading PVH guest kernels: ELF images, Xen notes, guest memory layout, start info.

pub mod elf;

#[cfg(test)]
mod testimg;
