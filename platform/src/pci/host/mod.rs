//! The machine's config space accessors: ECAM (memory-mapped, 4096 bytes
//! per function) and the legacy 0xCF8/0xCFC ports (segment 0, 256 bytes),
//! and [`PciHost`], which uses ECAM where an MCFG window covers a bus and
//! the ports elsewhere.
//!
//! The address arithmetic and the routing are plain functions, tested on
//! the host; [`Ecam`] and [`LegacyPorts`] hold the few lines that touch
//! hardware.

use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

use crate::acpi::McfgAllocation;

#[allow(unsafe_code)]
mod ecam;
#[allow(unsafe_code)]
mod ports;

pub use ecam::Ecam;
pub use ports::LegacyPorts;

/// Config space size of a function reached through ECAM.
pub const ECAM_CONFIG_SIZE: u16 = 4096;
/// Config space size of a function reached through the legacy ports.
pub const LEGACY_CONFIG_SIZE: u16 = 256;

/// One ECAM window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamRegion {
    /// Physical address of the window (the hypervisor maps it at the same
    /// virtual address); bus `start_bus` is at its start.
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

impl EcamRegion {
    /// Whether the window decodes `sbdf`'s bus.
    pub const fn covers(&self, sbdf: Sbdf) -> bool {
        sbdf.seg == self.segment && self.start_bus <= sbdf.bus && sbdf.bus <= self.end_bus
    }

    /// Bytes the window spans (1 MiB per bus).
    pub fn size(&self) -> u64 {
        (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
    }

    /// The address of the dword at `offset` (rounded down to a dword) of
    /// `sbdf`'s config space, or `None` if the window does not cover the
    /// function or the offset is beyond 4 KiB.
    pub fn address(&self, sbdf: Sbdf, offset: u16) -> Option<u64> {
        if !self.covers(sbdf) || offset >= ECAM_CONFIG_SIZE || sbdf.dev >= 32 || sbdf.func >= 8 {
            return None;
        }
        let rel = u64::from(sbdf.bus - self.start_bus) << 20
            | u64::from(sbdf.dev) << 15
            | u64::from(sbdf.func) << 12
            | u64::from(offset & !3);
        self.base.checked_add(rel)
    }
}

impl From<&McfgAllocation> for EcamRegion {
    fn from(a: &McfgAllocation) -> Self {
        Self {
            base: a.base,
            segment: a.segment,
            start_bus: a.start_bus,
            end_bus: a.end_bus,
        }
    }
}

/// The 0xCF8 address for the dword at `offset` of `sbdf`, or `None` when
/// the ports cannot reach it (segment other than 0, offset 256 or above).
pub fn legacy_address(sbdf: Sbdf, offset: u16) -> Option<u32> {
    if sbdf.seg != 0 || offset >= LEGACY_CONFIG_SIZE || sbdf.dev >= 32 || sbdf.func >= 8 {
        return None;
    }
    Some(
        0x8000_0000
            | u32::from(sbdf.bus) << 16
            | u32::from(sbdf.dev) << 11
            | u32::from(sbdf.func) << 8
            | u32::from(offset & 0xfc),
    )
}

/// Which accessor serves a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The ECAM window with this index.
    Ecam(usize),
    /// The legacy ports.
    Legacy,
    /// Nothing: reads are all-ones, writes are dropped.
    None,
}

/// Chooses the accessor for `sbdf`: the first ECAM window covering it,
/// else the legacy ports for segment 0 if there are any.
pub fn route(regions: &[EcamRegion], legacy: bool, sbdf: Sbdf) -> Route {
    match regions.iter().position(|r| r.covers(sbdf)) {
        Some(i) => Route::Ecam(i),
        None if legacy && sbdf.seg == 0 => Route::Legacy,
        None => Route::None,
    }
}

/// Config space of the whole machine: ECAM where MCFG has a window, the
/// legacy ports for the rest of segment 0.
#[derive(Debug)]
pub struct PciHost {
    ecam: Ecam,
    legacy: Option<LegacyPorts>,
}

impl PciHost {
    /// Combines the accessors. Pass `None` for `legacy` on machines without
    /// the ports.
    pub fn new(ecam: Ecam, legacy: Option<LegacyPorts>) -> Self {
        Self { ecam, legacy }
    }

    /// The ECAM windows in use.
    pub fn ecam_regions(&self) -> &[EcamRegion] {
        self.ecam.regions()
    }

    fn route(&self, sbdf: Sbdf) -> Route {
        route(self.ecam.regions(), self.legacy.is_some(), sbdf)
    }
}

impl PciConfig for PciHost {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        match (self.route(sbdf), self.legacy.as_mut()) {
            (Route::Ecam(_), _) => self.ecam.read32(sbdf, offset),
            (Route::Legacy, Some(ports)) => ports.read32(sbdf, offset),
            _ => !0,
        }
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        match (self.route(sbdf), self.legacy.as_mut()) {
            (Route::Ecam(_), _) => self.ecam.write32(sbdf, offset, value),
            (Route::Legacy, Some(ports)) => ports.write32(sbdf, offset, value),
            _ => {}
        }
    }

    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        match (self.route(sbdf), self.legacy.as_mut()) {
            (Route::Ecam(_), _) => self.ecam.write_bytes(sbdf, offset, size, value),
            (Route::Legacy, Some(ports)) => ports.write_bytes(sbdf, offset, size, value),
            _ => {}
        }
    }

    fn config_size(&self, sbdf: Sbdf) -> u16 {
        match self.route(sbdf) {
            Route::Ecam(_) => ECAM_CONFIG_SIZE,
            Route::Legacy => LEGACY_CONFIG_SIZE,
            Route::None => 0,
        }
    }
}

/// ECAM windows for the allocations of an MCFG.
pub fn ecam_regions(allocations: &[McfgAllocation]) -> Vec<EcamRegion> {
    allocations.iter().map(EcamRegion::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> Sbdf {
        Sbdf::new(seg, bus, dev, func).unwrap()
    }

    const Q35: EcamRegion = EcamRegion {
        base: 0xb000_0000,
        segment: 0,
        start_bus: 0,
        end_bus: 0xff,
    };

    #[test]
    fn ecam_address_layout() {
        assert_eq!(Q35.address(sbdf(0, 0, 0, 0), 0), Some(0xb000_0000));
        assert_eq!(Q35.address(sbdf(0, 1, 2, 3), 0x104), Some(0xb011_3104));
        assert_eq!(Q35.address(sbdf(0, 0xff, 31, 7), 0xffc), Some(0xbfff_fffc));
        assert_eq!(Q35.address(sbdf(0, 0, 3, 0), 0x1000), None);
        assert_eq!(Q35.address(sbdf(1, 0, 3, 0), 0), None);
        assert_eq!(Q35.address(sbdf(0, 0, 0, 0), 0x17), Some(0xb000_0014));
        let upper = EcamRegion {
            base: 0x40_0000_0000,
            segment: 1,
            start_bus: 0x80,
            end_bus: 0x8f,
        };
        assert_eq!(upper.address(sbdf(1, 0x81, 0, 1), 8), Some(0x40_0010_1008));
        assert_eq!(upper.address(sbdf(1, 0x7f, 0, 0), 0), None);
        assert_eq!(upper.address(sbdf(1, 0x90, 0, 0), 0), None);
        assert_eq!(upper.size(), 16 << 20);
        let top = EcamRegion {
            base: u64::MAX - 0xfff,
            ..Q35
        };
        assert_eq!(top.address(sbdf(0, 1, 0, 0), 0), None);
    }

    #[test]
    fn legacy_address_layout() {
        assert_eq!(legacy_address(sbdf(0, 0, 0, 0), 0), Some(0x8000_0000));
        assert_eq!(legacy_address(sbdf(0, 1, 3, 2), 0x3e), Some(0x8001_1a3c));
        assert_eq!(
            legacy_address(sbdf(0, 0xff, 31, 7), 0xfc),
            Some(0x80ff_fffc)
        );
        assert_eq!(legacy_address(sbdf(0, 0, 0, 0), 0x100), None);
        assert_eq!(legacy_address(sbdf(1, 0, 0, 0), 0), None);
    }

    #[test]
    fn routing_prefers_ecam_and_falls_back_to_the_ports_on_segment_0() {
        let regions = [
            EcamRegion {
                base: 0xb000_0000,
                segment: 0,
                start_bus: 0,
                end_bus: 0x3f,
            },
            EcamRegion {
                base: 0xc000_0000,
                segment: 1,
                start_bus: 0,
                end_bus: 0xff,
            },
        ];
        assert_eq!(route(&regions, true, sbdf(0, 0x3f, 0, 0)), Route::Ecam(0));
        assert_eq!(route(&regions, true, sbdf(1, 0x40, 0, 0)), Route::Ecam(1));
        assert_eq!(route(&regions, true, sbdf(0, 0x40, 0, 0)), Route::Legacy);
        assert_eq!(route(&regions, false, sbdf(0, 0x40, 0, 0)), Route::None);
        assert_eq!(route(&regions, true, sbdf(2, 0, 0, 0)), Route::None);
        assert_eq!(route(&[], true, sbdf(0, 0, 0, 0)), Route::Legacy);
    }
}
