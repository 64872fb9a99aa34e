//! ECAM accesses: volatile 32-bit loads and stores in the MCFG windows.

use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

use super::{EcamRegion, ECAM_CONFIG_SIZE};

/// Config space through ECAM windows mapped at their physical addresses.
#[derive(Debug)]
pub struct Ecam {
    regions: Vec<EcamRegion>,
}

impl Ecam {
    /// Config space access through `regions`.
    ///
    /// # Safety
    ///
    /// For as long as the value lives, every byte of each region (`base` up
    /// to `base + size()`) must be mapped at the virtual address equal to
    /// its physical address, as device memory (uncached) that is ECAM
    /// config space or reads all-ones, and no Rust reference may point into
    /// it. Regions whose base is not dword aligned are never accessed.
    pub unsafe fn new(regions: Vec<EcamRegion>) -> Self {
        Self { regions }
    }

    /// The windows.
    pub fn regions(&self) -> &[EcamRegion] {
        &self.regions
    }

    /// The dword-aligned address of `offset` in `sbdf`'s config space, if a
    /// region covers it.
    fn address(&self, sbdf: Sbdf, offset: u16) -> Option<*mut u32> {
        let addr = self
            .regions
            .iter()
            .filter(|r| r.base % 4 == 0)
            .find_map(|r| r.address(sbdf, offset))?;
        let addr = usize::try_from(addr).ok()?;
        Some(core::ptr::with_exposed_provenance_mut(addr))
    }
}

impl PciConfig for Ecam {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        match self.address(sbdf, offset) {
            // SAFETY: the address lies inside a region, which `new`'s
            // contract says is mapped ECAM space with no references into
            // it; the region base and the offset are dword aligned.
            Some(ptr) => unsafe { ptr.read_volatile() },
            None => !0,
        }
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        if let Some(ptr) = self.address(sbdf, offset) {
            // SAFETY: as for `read32`; a store to ECAM space is a config
            // write to this function and touches no memory Rust owns.
            unsafe { ptr.write_volatile(value) }
        }
    }

    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        let Some(ptr) = self.address(sbdf, offset & !3) else {
            return;
        };
        let at = (offset & 3) as usize;
        // SAFETY: as for `write32`; the access stays inside the dword and
        // is aligned to its size (the caller's contract).
        unsafe {
            match size {
                1 => ptr.cast::<u8>().add(at).write_volatile(value as u8),
                2 => ptr.cast::<u16>().add(at / 2).write_volatile(value as u16),
                _ => ptr.write_volatile(value),
            }
        }
    }

    fn config_size(&self, sbdf: Sbdf) -> u16 {
        if self.regions.iter().any(|r| r.covers(sbdf)) {
            ECAM_CONFIG_SIZE
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn reads_and_writes_land_at_the_ecam_offsets() {
        // One bus of ECAM space, backed by ordinary memory.
        let mut backing = vec![0u32; (1 << 20) / 4];
        let base = backing.as_mut_ptr().expose_provenance() as u64;
        let region = EcamRegion {
            base,
            segment: 0,
            start_bus: 5,
            end_bus: 5,
        };
        // SAFETY: `backing` is 1 MiB, matching the one-bus region, lives
        // until the end of the test and is not touched while `ecam` is used.
        let mut ecam = unsafe { Ecam::new(vec![region]) };
        let f = Sbdf::new(0, 5, 1, 2).unwrap();
        ecam.write32(f, 0x104, 0xdead_beef);
        assert_eq!(ecam.read32(f, 0x104), 0xdead_beef);
        assert_eq!(ecam.read16(f, 0x106), 0xdead);
        assert_eq!(ecam.config_size(f), 4096);
        let other_bus = Sbdf::new(0, 6, 1, 2).unwrap();
        assert_eq!(ecam.read32(other_bus, 0), !0);
        assert_eq!(ecam.config_size(other_bus), 0);
        ecam.write32(f, 0x1000, 1);
        drop(ecam);
        assert_eq!(backing[(1 << 15 | 2 << 12 | 0x104) / 4], 0xdead_beef);
        assert_eq!(backing.iter().filter(|&&w| w != 0).count(), 1);
    }

    #[test]
    fn narrow_writes_store_only_their_bytes() {
        let mut backing = vec![0u32; (1 << 20) / 4];
        let base = backing.as_mut_ptr().expose_provenance() as u64;
        let region = EcamRegion {
            base,
            segment: 0,
            start_bus: 0,
            end_bus: 0,
        };
        // SAFETY: as in the test above.
        let mut ecam = unsafe { Ecam::new(vec![region]) };
        let f = Sbdf::new(0, 0, 3, 0).unwrap();
        ecam.write32(f, 0x40, 0x8000_0000);
        ecam.write_bytes(f, 0x41, 1, 0x55);
        ecam.write_bytes(f, 0x42, 2, 0x1234);
        assert_eq!(ecam.read32(f, 0x40), 0x1234_5500);
        ecam.write_bytes(f, 0x40, 1, 0xaa);
        assert_eq!(ecam.read32(f, 0x40), 0x1234_55aa);
    }
}
