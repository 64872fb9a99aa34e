//! Resetting a function between owners, and saving and restoring the
//! config registers a reset clears.
//!
//! The hypervisor resets a function when it assigns it and when its guest
//! releases it, so nothing one guest left in the device (DMA addresses,
//! keys, queue state) reaches the next:
//!
//! ```text
//! let saved = reset::save(host.config(), sbdf);   // at boot, while quiesced
//! reset::reset(host, sbdf, sole_child_of)?;       // on assign and release
//! reset::restore(host.config(), &saved);
//! ```
//!
//! [`reset`] tries, in order (as Linux does): Function Level Reset (PCI
//! Express, when Device Capabilities advertises it), a D3hot -> D0 cycle
//! (when the PM capability's No_Soft_Reset is clear, so the cycle does reset
//! the function), and a secondary bus reset of the bridge above (only when
//! the function is alone below it, which the caller knows from
//! enumeration). Waits follow the PCI Express Base Specification: 100 ms
//! after FLR, 10 ms around D3hot, the reset held 2 ms (minimum 1 ms) and
//! 100 ms after it, then up to a second for the function to answer again.

use alloc::vec::Vec;
use core::fmt;

use vmm_glue::pci::caps::CapWalk;
use vmm_glue::{PassthroughHost, PciConfig, Sbdf};

use crate::regs::{header, msi, msix, pcie, pm};

/// Wait after initiating FLR (PCIe Base Spec 6.6.2: 100 ms).
pub const FLR_WAIT_US: u32 = 100_000;
/// How long Secondary Bus Reset is held (at least 1 ms, PCI-to-PCI Bridge
/// Spec 1.2 section 3.2.5.17 and PCIe Base Spec 7.5.1.3.13).
pub const SBR_ASSERT_US: u32 = 2_000;
/// Wait after Secondary Bus Reset is released before config requests
/// (PCIe Base Spec 6.6.1: 100 ms).
pub const SBR_SETTLE_US: u32 = 100_000;
/// Step of the waits for pending transactions and for the function to
/// answer again after a reset.
pub const POLL_STEP_US: u32 = 100_000;
/// Steps of the wait for the function to answer again (a second in all).
pub const READY_POLLS: u32 = 10;
/// Steps of the wait for pending transactions before FLR.
pub const PENDING_POLLS: u32 = 4;

/// The offset of the first capability `id` of `sbdf`, if any. (Out of
/// line: each reset and save step looks one up.)
#[inline(never)]
pub(crate) fn find_capability(hw: &mut dyn PciConfig, sbdf: Sbdf, id: u8) -> Option<u16> {
    CapWalk::find(hw, sbdf, id)
}

/// A function's config registers as [`save`] read them: the 64-byte
/// header and the control registers of MSI, MSI-X, Power Management and PCI
/// Express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedConfig {
    sbdf: Sbdf,
    header: [u32; 16],
    /// `(dword offset, value)` of the PCI Express and PM registers,
    /// restored before the header, with the write-1-to-clear status halves
    /// zeroed.
    early: Vec<(u16, u32)>,
    /// `(dword offset, value)` of the MSI and MSI-X registers, restored
    /// after the header, the control words last.
    late: Vec<(u16, u32)>,
}

impl SavedConfig {
    /// Whose registers these are.
    pub fn sbdf(&self) -> Sbdf {
        self.sbdf
    }

    /// The saved header dword at `offset` (0x00..0x40).
    pub fn header(&self, offset: u16) -> u32 {
        self.header[usize::from(offset / 4) % 16]
    }
}

/// Reads the registers a reset clears.
pub fn save(hw: &mut dyn PciConfig, sbdf: Sbdf) -> SavedConfig {
    let mut header = [0u32; 16];
    for (i, d) in header.iter_mut().enumerate() {
        *d = hw.read32(sbdf, 4 * i as u16);
    }
    let mut early = Vec::new();
    let mut late = Vec::new();
    if let Some(p) = find_capability(hw, sbdf, pcie::CAP_ID) {
        let v2 = hw.read16(sbdf, p + pcie::FLAGS) & 0xf >= 2;
        // Device Control (without Initiate FLR) and Link Control, their
        // status halves as zero; Device and Link Control 2.
        let devctl = hw.read32(sbdf, p + pcie::DEVCTL) & 0xffff & !u32::from(pcie::DEVCTL_FLR);
        early.push((p + pcie::DEVCTL, devctl));
        early.push((p + 0x10, hw.read32(sbdf, p + 0x10) & 0xffff));
        if v2 {
            early.push((p + 0x28, hw.read32(sbdf, p + 0x28) & 0xffff));
            early.push((p + 0x30, hw.read32(sbdf, p + 0x30) & 0xffff));
        }
    }
    if let Some(p) = find_capability(hw, sbdf, pm::CAP_ID) {
        let pmcsr = hw.read32(sbdf, p + pm::PMCSR) & 0xffff & !u32::from(pm::PME_STATUS);
        early.push((p + pm::PMCSR, pmcsr));
    }
    if let Some(m) = find_capability(hw, sbdf, msi::CAP_ID) {
        let control = hw.read32(sbdf, m);
        let c = (control >> 16) as u16;
        let data = m + if c & msi::ADDR64 != 0 {
            msi::DATA_64
        } else {
            msi::DATA_32
        };
        late.push((m + msi::ADDRESS_LO, hw.read32(sbdf, m + msi::ADDRESS_LO)));
        if c & msi::ADDR64 != 0 {
            late.push((m + msi::ADDRESS_HI, hw.read32(sbdf, m + msi::ADDRESS_HI)));
        }
        late.push((data, hw.read32(sbdf, data)));
        if c & msi::MASKABLE != 0 {
            let mask = data + msi::MASK_FROM_DATA;
            late.push((mask, hw.read32(sbdf, mask)));
        }
        late.push((m, control));
    }
    if let Some(x) = find_capability(hw, sbdf, msix::CAP_ID) {
        late.push((x, hw.read32(sbdf, x)));
    }
    SavedConfig {
        sbdf,
        header,
        early,
        late,
    }
}

/// Writes back what [`save`] read: the capability registers first, then the
/// header from the top down (BARs before the Command register, as after a
/// reset the function decodes nothing until its BARs are back), with the
/// Status register, BIST and Secondary Bus Reset left alone.
pub fn restore(hw: &mut dyn PciConfig, saved: &SavedConfig) {
    let sbdf = saved.sbdf;
    for &(offset, value) in &saved.early {
        hw.write32(sbdf, offset, value);
    }
    let bridge = saved.header[3] >> 16 & 0x7f == 1;
    for i in (4..16).rev() {
        let mut value = saved.header[i];
        if i == 15 && bridge {
            // Bridge Control: Secondary Bus Reset off, and the
            // write-1-to-clear Discard Timer Status (bit 10) not cleared.
            value &= !((u32::from(header::SECONDARY_BUS_RESET) | 1 << 10) << 16);
        }
        hw.write32(sbdf, 4 * i as u16, value);
    }
    // Cache Line Size and Latency Timer; never start BIST.
    hw.write32(
        sbdf,
        header::CACHE_LINE,
        saved.header[3] & 0x00ff_ffff & !(0x40 << 24),
    );
    for &(offset, value) in &saved.late {
        hw.write32(sbdf, offset, value);
    }
    hw.write_command(sbdf, saved.header[1] as u16);
}

/// How a function was reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetMethod {
    /// PCI Express Function Level Reset.
    Flr,
    /// Power Management: D3hot, then D0.
    PmD3hot,
    /// Secondary Bus Reset of the bridge above (the function is alone
    /// below it).
    SecondaryBus {
        /// The bridge.
        bridge: Sbdf,
    },
}

impl fmt::Display for ResetMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flr => f.write_str("function level reset"),
            Self::PmD3hot => f.write_str("D3hot -> D0 power cycle"),
            Self::SecondaryBus { bridge } => write!(f, "secondary bus reset of bridge {bridge}"),
        }
    }
}

/// Why a function could not be reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoResetReason {
    /// Nothing answers at its address (reads all ones).
    NoResponse,
    /// It did not answer again within a second after `method`.
    NotReady {
        /// The reset tried.
        method: ResetMethod,
    },
    /// It has no Function Level Reset, its D3hot -> D0 cycle does not reset
    /// it, and it is not alone below a bridge.
    NoMethod {
        /// It has a PM capability (whose No_Soft_Reset is set).
        has_pm: bool,
    },
    /// The bridge named for a secondary bus reset is not a PCI-to-PCI
    /// bridge.
    NotABridge {
        /// The address given.
        bridge: Sbdf,
    },
}

/// A function [`reset`] could not reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoReset {
    /// The function.
    pub sbdf: Sbdf,
    /// Why.
    pub reason: NoResetReason,
}

impl fmt::Display for NoReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pciback: {} cannot be reset: ", self.sbdf)?;
        match self.reason {
            NoResetReason::NoResponse => f.write_str(
                "nothing answers at that address; check the address in pciback.hide= \
                 and that the device is present",
            ),
            NoResetReason::NotReady { method } => write!(
                f,
                "it did not answer within a second after a {method}; the device may be \
                 broken, do not assign it"
            ),
            NoResetReason::NoMethod { has_pm } => write!(
                f,
                "it has no function level reset, {} and it is not alone below a bridge; \
                 one guest's state would reach the next, so it is not assigned (move it to \
                 a slot where it is alone below a bridge)",
                if has_pm {
                    "its D3hot -> D0 cycle keeps its state (No_Soft_Reset)"
                } else {
                    "it has no power management capability"
                }
            ),
            NoResetReason::NotABridge { bridge } => write!(
                f,
                "{bridge}, named as the bridge above it, is not a PCI-to-PCI bridge"
            ),
        }
    }
}

/// Which reset [`reset`] would use for `sbdf`, without touching it.
/// `sole_child_of_bridge` is the bridge right above the function when the
/// function is the only one below it (then a secondary bus reset is
/// allowed).
pub fn choose(
    hw: &mut dyn PciConfig,
    sbdf: Sbdf,
    sole_child_of_bridge: Option<Sbdf>,
) -> Result<ResetMethod, NoReset> {
    let fail = |reason| Err(NoReset { sbdf, reason });
    if hw.read32(sbdf, header::ID) == u32::MAX {
        return fail(NoResetReason::NoResponse);
    }
    if let Some(p) = find_capability(hw, sbdf, pcie::CAP_ID) {
        if hw.read32(sbdf, p + pcie::DEVCAP) & pcie::DEVCAP_FLR != 0 {
            return Ok(ResetMethod::Flr);
        }
    }
    let pm_cap = find_capability(hw, sbdf, pm::CAP_ID);
    if let Some(p) = pm_cap {
        if hw.read16(sbdf, p + pm::PMCSR) & pm::NO_SOFT_RESET == 0 {
            return Ok(ResetMethod::PmD3hot);
        }
    }
    match sole_child_of_bridge {
        Some(bridge) if hw.read8(bridge, header::HEADER_TYPE) & 0x7f == 1 => {
            Ok(ResetMethod::SecondaryBus { bridge })
        }
        Some(bridge) => fail(NoResetReason::NotABridge { bridge }),
        None => fail(NoResetReason::NoMethod {
            has_pm: pm_cap.is_some(),
        }),
    }
}

/// Resets `sbdf` with the first method that applies (see the module
/// documentation) and waits until it answers again. The caller restores
/// its config with [`restore`] after.
pub fn reset(
    host: &mut dyn PassthroughHost,
    sbdf: Sbdf,
    sole_child_of_bridge: Option<Sbdf>,
) -> Result<ResetMethod, NoReset> {
    let method = choose(host.config(), sbdf, sole_child_of_bridge)?;
    match method {
        ResetMethod::Flr => flr(host, sbdf),
        ResetMethod::PmD3hot => pm_cycle(host, sbdf),
        ResetMethod::SecondaryBus { bridge } => secondary_bus_reset(host, bridge),
    }
    if wait_ready(host, sbdf) {
        Ok(method)
    } else {
        Err(NoReset {
            sbdf,
            reason: NoResetReason::NotReady { method },
        })
    }
}

fn flr(host: &mut dyn PassthroughHost, sbdf: Sbdf) {
    let Some(p) = find_capability(host.config(), sbdf, pcie::CAP_ID) else {
        return;
    };
    // Let outstanding requests finish (they are lost otherwise); go on
    // after the wait either way, as the reset is what matters.
    for _ in 0..PENDING_POLLS {
        if host.config().read16(sbdf, p + pcie::DEVSTA) & pcie::DEVSTA_TRPND == 0 {
            break;
        }
        host.delay_us(POLL_STEP_US);
    }
    let cfg = host.config();
    let devctl = cfg.read32(sbdf, p + pcie::DEVCTL) & 0xffff;
    // Device Status (the upper half) is written as zero: its bits are
    // write-1-to-clear.
    cfg.write32(sbdf, p + pcie::DEVCTL, devctl | u32::from(pcie::DEVCTL_FLR));
    host.delay_us(FLR_WAIT_US);
}

fn pm_cycle(host: &mut dyn PassthroughHost, sbdf: Sbdf) {
    let Some(p) = find_capability(host.config(), sbdf, pm::CAP_ID) else {
        return;
    };
    let cfg = host.config();
    let pmcsr =
        cfg.read16(sbdf, p + pm::PMCSR) & !(pm::STATE_MASK | pm::PME_STATUS | pm::PME_ENABLE);
    cfg.write32(sbdf, p + pm::PMCSR, u32::from(pmcsr | pm::D3HOT));
    host.delay_us(pm::D3HOT_DELAY_US);
    host.config()
        .write32(sbdf, p + pm::PMCSR, u32::from(pmcsr | pm::D0));
    host.delay_us(pm::D3HOT_DELAY_US);
}

fn secondary_bus_reset(host: &mut dyn PassthroughHost, bridge: Sbdf) {
    let sbr = u32::from(header::SECONDARY_BUS_RESET) << 16;
    // Discard Timer Status (bit 10) is write-1-to-clear: never write it 1.
    let dts = 1u32 << 26;
    let cfg = host.config();
    let dword = cfg.read32(bridge, header::INTERRUPT_LINE) & !dts;
    cfg.write32(bridge, header::INTERRUPT_LINE, dword | sbr);
    host.delay_us(SBR_ASSERT_US);
    host.config()
        .write32(bridge, header::INTERRUPT_LINE, dword & !sbr);
    host.delay_us(SBR_SETTLE_US);
}

/// Waits up to a second for `sbdf` to answer config reads again.
fn wait_ready(host: &mut dyn PassthroughHost, sbdf: Sbdf) -> bool {
    for _ in 0..READY_POLLS {
        if host.config().read32(sbdf, header::ID) & 0xffff != 0xffff {
            return true;
        }
        host.delay_us(POLL_STEP_US);
    }
    host.config().read32(sbdf, header::ID) & 0xffff != 0xffff
}

#[cfg(test)]
mod tests;
