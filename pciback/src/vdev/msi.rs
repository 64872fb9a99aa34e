//! MSI and MSI-X through the pcifront ops: the host owns every message
//! address and data the function sends; the guest gets pirqs.

use alloc::vec::Vec;

use vmm_glue::{IrqError, MsiRoute, MsiSource, PassthroughHost};

use super::{OpError, VirtDevice};
use crate::regs::{msi, msix};

/// `-EPERM`: the host refuses interrupts from this function.
pub const EPERM: i32 = -1;
/// `-ENXIO`: the other interrupt kind is on, or memory decode is off.
pub const ENXIO: i32 = -6;
/// `-ENODEV`: the function has no such capability (or pciback hides it).
pub const ENODEV: i32 = -19;
/// `-EINVAL`: a vector count or table entry out of range, or a duplicate.
pub const EINVAL: i32 = -22;
/// `-ENOSPC`: no free host vector or guest pirq.
pub const ENOSPC: i32 = -28;
/// `-EALREADY`: already enabled.
pub const EALREADY: i32 = -114;

/// The most vectors `XEN_PCI_OP_enable_msix` may ask for
/// (`SH_INFO_MAX_VEC`).
pub const MAX_MSIX_VECTORS: usize = 128;

/// The guest's MSI registers and the route behind them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct MsiState {
    /// Message Address as the guest wrote it (never reaches hardware).
    pub addr_lo: u32,
    /// Message Upper Address as the guest wrote it.
    pub addr_hi: u32,
    /// Message Data as the guest wrote it.
    pub data: u16,
    /// Mask Bits as the guest wrote them.
    pub mask: u32,
    /// The route while MSI is on.
    pub route: Option<MsiRoute>,
}

/// One MSI-X table entry as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Message Address (low) as the guest wrote it.
    pub addr_lo: u32,
    /// Message Upper Address as the guest wrote it.
    pub addr_hi: u32,
    /// Message Data as the guest wrote it.
    pub data: u32,
    /// The guest's mask bit.
    pub masked: bool,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            addr_lo: 0,
            addr_hi: 0,
            data: 0,
            masked: true,
        }
    }
}

/// The guest's MSI-X state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct MsixState {
    /// The table as the guest sees it.
    pub entries: Vec<Entry>,
    /// The routes of the entries enabled through the op, by entry.
    pub routes: Vec<(u16, MsiRoute)>,
    /// MSI-X on.
    pub enabled: bool,
    /// The guest's Function Mask.
    pub function_mask: bool,
}

fn irq_errno(e: IrqError) -> OpError {
    OpError(match e {
        IrqError::Exhausted => ENOSPC,
        IrqError::Refused => EPERM,
    })
}

impl VirtDevice {
    pub(super) fn msi_enable(&mut self, host: &mut dyn PassthroughHost) -> Result<u32, OpError> {
        let Some(m) = self.layout.msi else {
            return Err(OpError(ENODEV));
        };
        if self.msi.route.is_some() {
            return Err(OpError(EALREADY));
        }
        if self.msix.enabled {
            return Err(OpError(ENXIO));
        }
        let sbdf = self.info.sbdf;
        let route = host.alloc_msi(sbdf, MsiSource::Msi).map_err(irq_errno)?;
        let cfg = host.config();
        cfg.write32(sbdf, m.offset + msi::ADDRESS_LO, route.address as u32);
        if m.is64 {
            cfg.write32(
                sbdf,
                m.offset + msi::ADDRESS_HI,
                (route.address >> 32) as u32,
            );
        }
        cfg.write32(sbdf, m.data(), route.data & 0xffff);
        if m.maskable {
            cfg.write32(sbdf, m.mask(), self.msi.mask & 1);
        }
        let header = cfg.read32(sbdf, m.offset) & 0xffff;
        let control = (m.control | msi::ENABLE) & !msi::MME;
        cfg.write32(sbdf, m.offset, header | u32::from(control) << 16);
        self.msi.route = Some(route);
        self.sync_command(host);
        Ok(route.pirq)
    }

    pub(super) fn msi_disable(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        if let (Some(m), Some(route)) = (self.layout.msi, self.msi.route) {
            let sbdf = self.info.sbdf;
            let cfg = host.config();
            let header = cfg.read32(sbdf, m.offset) & 0xffff;
            cfg.write32(sbdf, m.offset, header | u32::from(m.control) << 16);
            host.free_msi(sbdf, route.pirq);
            self.msi.route = None;
            self.sync_command(host);
        }
        self.info.intx_pirq.into()
    }

    /// Writes the guest's MSI mask bit to the hardware while MSI is on.
    pub(super) fn apply_msi_mask(&mut self, host: &mut dyn PassthroughHost) {
        if let (Some(m), Some(_)) = (self.layout.msi, self.msi.route) {
            if m.maskable {
                host.config()
                    .write32(self.info.sbdf, m.mask(), self.msi.mask & 1);
            }
        }
    }

    pub(super) fn msix_enable(
        &mut self,
        host: &mut dyn PassthroughHost,
        entries: &[u16],
    ) -> Result<Vec<u32>, OpError> {
        if entries.is_empty() || entries.len() > MAX_MSIX_VECTORS {
            return Err(OpError(EINVAL));
        }
        let Some(m) = self.layout.msix else {
            return Err(OpError(ENODEV));
        };
        if self.msix.enabled {
            return Err(OpError(EALREADY));
        }
        if self.msi.route.is_some() {
            return Err(OpError(ENXIO));
        }
        if self.cmd & crate::regs::command::MEMORY_SPACE == 0 || self.d3hot {
            return Err(OpError(ENXIO));
        }
        for (i, &e) in entries.iter().enumerate() {
            if e >= m.entries || entries[..i].contains(&e) {
                return Err(OpError(EINVAL));
            }
        }
        let sbdf = self.info.sbdf;
        let mut routes = Vec::with_capacity(entries.len());
        for &e in entries {
            match host.alloc_msi(sbdf, MsiSource::Msix(e)) {
                Ok(r) => routes.push((e, r)),
                Err(err) => {
                    for (_, r) in routes {
                        host.free_msi(sbdf, r.pirq);
                    }
                    return Err(irq_errno(err));
                }
            }
        }
        for &(e, _) in &routes {
            if let Some(v) = self.msix.entries.get_mut(usize::from(e)) {
                v.masked = false;
            }
        }
        self.msix.routes = routes;
        self.msix.enabled = true;
        self.reprogram_msix(host);
        self.sync_command(host);
        Ok(self.msix.routes.iter().map(|(_, r)| r.pirq).collect())
    }

    /// Writes every enabled entry into the hardware table (address, data,
    /// the guest's mask bit) and the Message Control word, with the
    /// function masked while the entries change.
    pub(super) fn reprogram_msix(&mut self, host: &mut dyn PassthroughHost) {
        let Some(m) = self.layout.msix else {
            return;
        };
        if !self.msix.enabled {
            return;
        }
        self.write_msix_control(host, true, true);
        let base = self.info.bars[m.table_bar].base + m.table_offset;
        self.with_memory_decode(host, |dev, host| {
            for &(e, r) in &dev.msix.routes {
                let at = base + u64::from(e) * msix::ENTRY_SIZE;
                let masked = dev
                    .msix
                    .entries
                    .get(usize::from(e))
                    .is_none_or(|v| v.masked);
                host.mmio_write(at, 4, r.address & 0xffff_ffff);
                host.mmio_write(at + 4, 4, r.address >> 32);
                host.mmio_write(at + 8, 4, r.data.into());
                host.mmio_write(at + msix::VECTOR_CONTROL, 4, u64::from(masked));
            }
        });
        self.apply_msix_control(host);
    }

    /// Writes MSI-X Message Control: enable and mask as given.
    fn write_msix_control(&mut self, host: &mut dyn PassthroughHost, enable: bool, mask: bool) {
        let Some(m) = self.layout.msix else {
            return;
        };
        let sbdf = self.info.sbdf;
        let cfg = host.config();
        let dword = cfg.read32(sbdf, m.offset);
        let mut control = (dword >> 16) as u16 & !(msix::ENABLE | msix::FUNCTION_MASK);
        if enable {
            control |= msix::ENABLE;
        }
        if mask {
            control |= msix::FUNCTION_MASK;
        }
        cfg.write32(sbdf, m.offset, (dword & 0xffff) | u32::from(control) << 16);
    }

    /// Writes MSI-X Message Control from the virtual state: enabled as the
    /// op left it, the function mask as the guest has it (always masked
    /// while off).
    pub(super) fn apply_msix_control(&mut self, host: &mut dyn PassthroughHost) {
        let (enable, mask) = (
            self.msix.enabled,
            !self.msix.enabled || self.msix.function_mask,
        );
        self.write_msix_control(host, enable, mask);
    }

    pub(super) fn msix_disable(&mut self, host: &mut dyn PassthroughHost) -> u32 {
        if let (Some(m), true) = (self.layout.msix, self.msix.enabled) {
            let sbdf = self.info.sbdf;
            let base = self.info.bars[m.table_bar].base + m.table_offset;
            self.write_msix_control(host, true, true);
            let routes = core::mem::take(&mut self.msix.routes);
            self.with_memory_decode(host, |_, host| {
                for &(e, _) in &routes {
                    let at = base + u64::from(e) * msix::ENTRY_SIZE;
                    host.mmio_write(at + msix::VECTOR_CONTROL, 4, msix::ENTRY_MASKED.into());
                }
            });
            self.msix.enabled = false;
            self.apply_msix_control(host);
            for (e, r) in routes {
                host.free_msi(sbdf, r.pirq);
                if let Some(v) = self.msix.entries.get_mut(usize::from(e)) {
                    v.masked = true;
                }
            }
            self.sync_command(host);
        }
        self.info.intx_pirq.into()
    }
}
