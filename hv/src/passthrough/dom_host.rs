//! What the hypervisor does for `pciback` on behalf of one domain: BAR
//! windows in its nested page tables, I/O ports, device memory, MSI and
//! MSI-X routes behind its pirqs.

use super::{spin_us, Passthrough};
use crate::virt::guest_mem::GuestMemory;
use crate::virt::GuestTables;
use alloc::vec::Vec;
use hv::evtchn::EventChannels;
use platform::pci::BarKind as HostBarKind;
use vmm_glue::log;
use vmm_glue::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost, PciConfig, Sbdf};

/// The guest's local APIC page, never a BAR window.
const LAPIC_PAGE: u64 = 0xfee0_0000;
/// The MSI address window; the destination APIC id (the boot CPU's) goes
/// in bits 19:12, physical mode.
const MSI_ADDRESS: u64 = 0xfee0_0000;
const PAGE: u64 = 4096;

/// What the hypervisor does for `pciback` on behalf of one domain.
pub struct DomHost<'a> {
    pub dom: u16,
    pub pt: &'a mut Passthrough,
    pub mem: &'a GuestMemory,
    pub tables: &'a mut GuestTables,
    /// The BAR windows mapped into the domain, `(gpa, len)`.
    pub windows: &'a mut Vec<(u64, u64)>,
    pub evtchn: &'a mut EventChannels,
    /// The I/O port ranges handed to the domain, `(port, len)`.
    pub ports: &'a mut Vec<(u16, u16)>,
    /// Set when a mapping went away: the guest's TLB must be flushed.
    pub flush: bool,
}

impl core::fmt::Debug for DomHost<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DomHost").field("dom", &self.dom).finish()
    }
}

impl DomHost<'_> {
    /// Whether `[hpa, hpa + len)` lies in a memory BAR of a function this
    /// domain owns.
    fn owns_device_memory(&self, hpa: u64, len: u64) -> bool {
        let Some(end) = hpa.checked_add(len) else {
            return false;
        };
        self.pt.funcs.iter().any(|f| {
            self.pt.pool.registry().owner(f.sbdf) == Some(&pciback::owner::Owner::Domain(self.dom))
                && f.bars.iter().any(|b| {
                    b.kind != HostBarKind::Io
                        && hpa >= b.base
                        && end <= b.base.saturating_add(b.size.max(PAGE))
                })
        })
    }
}

impl PassthroughHost for DomHost<'_> {
    fn config(&mut self) -> &mut dyn PciConfig {
        &mut self.pt.host
    }

    fn map_mmio(&mut self, gpa: u64, hpa: u64, len: u64) -> Result<(), MapError> {
        if len == 0 || !(gpa | hpa | len).is_multiple_of(PAGE) {
            return Err(MapError::Unaligned);
        }
        let gend = gpa.checked_add(len).ok_or(MapError::Unaligned)?;
        if !self.owns_device_memory(hpa, len) {
            return Err(MapError::NotPermitted);
        }
        let overlaps_window = self.windows.iter().any(|&(g, l)| gpa < g + l && g < gend);
        let overlaps_ram = (gpa..gend)
            .step_by(PAGE as usize)
            .any(|p| self.mem.translate(p).is_some() || p == LAPIC_PAGE);
        if overlaps_window || overlaps_ram {
            return Err(MapError::Overlap);
        }
        let mut done = 0;
        while done < len {
            // SAFETY: inside the functions' memory the domain owns
            // (`owns_device_memory` above), a window pciback asked for.
            if unsafe { self.tables.map_mmio_4k(gpa + done, hpa + done) }.is_none() {
                for back in (0..done).step_by(PAGE as usize) {
                    self.tables.unmap_4k(gpa + back);
                }
                self.flush = true;
                return Err(MapError::NoMemory);
            }
            done += PAGE;
        }
        self.windows.push((gpa, len));
        Ok(())
    }

    fn unmap_mmio(&mut self, gpa: u64, len: u64) {
        for p in (0..len).step_by(PAGE as usize) {
            self.tables.unmap_4k(gpa + p);
        }
        self.windows.retain(|&(g, l)| !(g == gpa && l == len));
        self.flush = true;
    }

    fn map_ports(&mut self, port: u16, len: u16) -> Result<(), MapError> {
        let end = u32::from(port) + u32::from(len);
        if len == 0 || end > 0x1_0000 {
            return Err(MapError::Unaligned);
        }
        let owned = self.pt.funcs.iter().any(|f| {
            self.pt.pool.registry().owner(f.sbdf) == Some(&pciback::owner::Owner::Domain(self.dom))
                && f.bars.iter().any(|b| {
                    b.kind == HostBarKind::Io
                        && u64::from(port) >= b.base
                        && u64::from(end) <= b.base + b.size
                })
        });
        if !owned {
            return Err(MapError::NotPermitted);
        }
        let taken = self
            .ports
            .iter()
            .any(|&(p, l)| u32::from(port) < u32::from(p) + u32::from(l) && u32::from(p) < end);
        if taken {
            return Err(MapError::Overlap);
        }
        self.ports.push((port, len));
        Ok(())
    }

    fn unmap_ports(&mut self, port: u16, len: u16) {
        self.ports.retain(|&r| r != (port, len));
    }

    fn mmio_read(&mut self, hpa: u64, size: u8) -> u64 {
        if !self.owns_device_memory(hpa & !(PAGE - 1), PAGE) {
            return u64::MAX;
        }
        // SAFETY: the page is inside a memory BAR of a function assigned
        // to this domain (checked just above).
        unsafe { crate::arch::phys::mmio_read(hpa, size) }.unwrap_or(u64::MAX)
    }

    fn mmio_write(&mut self, hpa: u64, size: u8, value: u64) {
        if self.owns_device_memory(hpa & !(PAGE - 1), PAGE) {
            // SAFETY: the page is inside a memory BAR of a function
            // assigned to this domain (checked just above).
            unsafe { crate::arch::phys::mmio_write(hpa, size, value) };
        }
    }

    fn alloc_msi(&mut self, sbdf: Sbdf, source: MsiSource) -> Result<MsiRoute, IrqError> {
        let (vector, pirq) = self
            .pt
            .routes
            .alloc(self.dom, sbdf)
            .ok_or(IrqError::Exhausted)?;
        let (address, data) = match crate::iommu::route_msi(sbdf, vector) {
            Some(Ok((handle, address, data))) => {
                self.pt.routes.set_handle(vector, handle);
                (address, data)
            }
            Some(Err(e)) => {
                log::warn!(
                    "pciback: dom{}: {sbdf}: no interrupt remapping entry: {e}",
                    self.dom
                );
                self.pt.routes.free(self.dom, pirq);
                return Err(IrqError::Exhausted);
            }
            None if self.pt.pool.insecure() => (
                MSI_ADDRESS | u64::from(crate::arch::lapic::id()) << 12,
                u32::from(vector),
            ),
            None => {
                self.pt.routes.free(self.dom, pirq);
                return Err(IrqError::Refused);
            }
        };
        if self.evtchn.permit_pirq(self.dom, pirq).is_err() {
            self.free_msi(sbdf, pirq);
            return Err(IrqError::Exhausted);
        }
        log::debug!(
            "pciback: dom{}: {sbdf} {source:?} -> vector {vector:#x}, pirq {pirq}, message {address:#x}/{data:#x}",
            self.dom
        );
        Ok(MsiRoute {
            pirq,
            address,
            data,
        })
    }

    fn free_msi(&mut self, _sbdf: Sbdf, pirq: u32) {
        if let Some((_, r)) = self.pt.routes.free(self.dom, pirq) {
            if let Some(h) = r.handle {
                crate::iommu::unroute_msi(r.sbdf, h);
            }
        }
        self.evtchn.revoke_pirq(self.dom, pirq);
    }

    fn delay_us(&mut self, us: u32) {
        spin_us(us);
    }
}
