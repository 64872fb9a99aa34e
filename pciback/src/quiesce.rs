//! Making a hidden function harmless until it is assigned: no address
//! decode, no bus mastering (so no DMA and no MSI writes), INTx disabled,
//! MSI and MSI-X off.
//!
//! Every register is read back after the writes, and the report holds what
//! the hardware shows, so the boot log proves the result rather than
//! repeating the intent.

use core::fmt;

use vmm_glue::{PciConfig, Sbdf};

use crate::regs::{command, msi, msix};

/// Where the function's interrupt capabilities are, as found by the
/// caller's walk of the capability list.
///
/// Offsets are those the list gives: dword aligned, in 0x40..=0xfc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuiesceCaps {
    /// Offset of the MSI capability, if the function has one.
    pub msi: Option<u16>,
    /// Offset of the MSI-X capability, if the function has one.
    pub msix: Option<u16>,
}

/// The registers before and after [`quiesce`], as read from the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuiesceReport {
    /// The Command register before.
    pub command_before: u16,
    /// The Command register read back after the write.
    pub command_after: u16,
    /// MSI Message Control before, if the function has MSI.
    pub msi_control_before: Option<u16>,
    /// MSI Message Control read back after the write.
    pub msi_control_after: Option<u16>,
    /// MSI-X Message Control before, if the function has MSI-X.
    pub msix_control_before: Option<u16>,
    /// MSI-X Message Control read back after the write.
    pub msix_control_after: Option<u16>,
}

/// Something the read-back shows still active after [`quiesce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuiesceProblem {
    /// The Command register reads all ones: nothing answers at this address.
    NoResponse,
    /// I/O Space is still on.
    IoDecode,
    /// Memory Space is still on.
    MemoryDecode,
    /// Bus Master is still on.
    BusMaster,
    /// Interrupt Disable did not stick (the function may predate it).
    IntxEnabled,
    /// MSI Enable is still on.
    MsiEnabled,
    /// MSI-X Enable is still on.
    MsixEnabled,
    /// MSI-X Function Mask did not stick.
    MsixUnmasked,
}

impl fmt::Display for QuiesceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoResponse => "the command register reads all ones (no function answers)",
            Self::IoDecode => "I/O decode is still on",
            Self::MemoryDecode => "memory decode is still on",
            Self::BusMaster => "bus mastering is still on",
            Self::IntxEnabled => "INTx disable did not stick",
            Self::MsiEnabled => "MSI is still enabled",
            Self::MsixEnabled => "MSI-X is still enabled",
            Self::MsixUnmasked => "the MSI-X function mask did not stick",
        })
    }
}

impl QuiesceReport {
    /// Whether the read-back shows the function quiet.
    pub fn is_quiet(&self) -> bool {
        self.problems().next().is_none()
    }

    /// What the read-back shows still active, for the log line.
    pub fn problems(&self) -> impl Iterator<Item = QuiesceProblem> {
        use QuiesceProblem as P;
        let cmd = self.command_after;
        let msi = self.msi_control_after.unwrap_or(0);
        let msix = self.msix_control_after.unwrap_or(msix::FUNCTION_MASK);
        let still_on = [
            (cmd & command::IO_SPACE != 0, P::IoDecode),
            (cmd & command::MEMORY_SPACE != 0, P::MemoryDecode),
            (cmd & command::BUS_MASTER != 0, P::BusMaster),
            (cmd & command::INTX_DISABLE == 0, P::IntxEnabled),
            (msi & msi::ENABLE != 0, P::MsiEnabled),
            (msix & msix::ENABLE != 0, P::MsixEnabled),
            (msix & msix::FUNCTION_MASK == 0, P::MsixUnmasked),
        ];
        // Reserved Command bits read 0: all ones means nothing answered, and
        // then the other bits mean nothing.
        let answers = cmd != 0xffff;
        core::iter::once((!answers, P::NoResponse))
            .chain(still_on.map(|(on, problem)| (answers && on, problem)))
            .filter_map(|(active, problem)| active.then_some(problem))
    }
}

/// `command 0x0147 -> 0x0540, MSI control 0x0081 -> 0x0080, MSI-X control
/// 0x8007 -> 0x4007`: the Command register and each Message Control word,
/// before and read back after.
impl fmt::Display for QuiesceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command {:#06x} -> {:#06x}",
            self.command_before, self.command_after
        )?;
        let controls = [
            ("MSI", self.msi_control_before, self.msi_control_after),
            ("MSI-X", self.msix_control_before, self.msix_control_after),
        ];
        for (name, before, after) in controls {
            if let (Some(b), Some(a)) = (before, after) {
                write!(f, ", {name} control {b:#06x} -> {a:#06x}")?;
            }
        }
        Ok(())
    }
}

/// Quiesces `sbdf`: decode and bus mastering off, INTx disabled, MSI off,
/// MSI-X off with its function mask set. Returns what the registers read
/// back; check [`QuiesceReport::is_quiet`].
///
/// The Command register is written with [`PciConfig::write_command`], so the
/// write-1-to-clear Status bits beside it keep their value. Each Message
/// Control word is written with a read-modify-write of its dword, whose other
/// half (capability ID and next pointer) is read-only.
pub fn quiesce(cfg: &mut impl PciConfig, sbdf: Sbdf, caps: QuiesceCaps) -> QuiesceReport {
    let command_before = cfg.read16(sbdf, command::OFFSET);
    let quiet = (command_before
        & !(command::IO_SPACE | command::MEMORY_SPACE | command::BUS_MASTER))
        | command::INTX_DISABLE;
    cfg.write_command(sbdf, quiet);
    let command_after = cfg.read16(sbdf, command::OFFSET);

    let msi = caps.msi.map(|cap| {
        update_control(cfg, sbdf, cap.wrapping_add(msi::CONTROL), |c| {
            c & !msi::ENABLE
        })
    });
    let msix = caps.msix.map(|cap| {
        update_control(cfg, sbdf, cap.wrapping_add(msix::CONTROL), |c| {
            (c | msix::FUNCTION_MASK) & !msix::ENABLE
        })
    });

    QuiesceReport {
        command_before,
        command_after,
        msi_control_before: msi.map(|(before, _)| before),
        msi_control_after: msi.map(|(_, after)| after),
        msix_control_before: msix.map(|(before, _)| before),
        msix_control_after: msix.map(|(_, after)| after),
    }
}

/// Rewrites the Message Control word at `offset` with `change`, returning
/// its value before and read back after.
fn update_control(
    cfg: &mut impl PciConfig,
    sbdf: Sbdf,
    offset: u16,
    change: impl FnOnce(u16) -> u16,
) -> (u16, u16) {
    let before = cfg.read16(sbdf, offset);
    cfg.write16(sbdf, offset, change(before));
    (before, cfg.read16(sbdf, offset))
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::vec::Vec;

    use super::*;
    use crate::fake_config::{Access, FakeConfig};

    const MSI_CAP: u16 = 0x50;
    const MSIX_CAP: u16 = 0x70;

    fn sbdf() -> Sbdf {
        Sbdf::new(0, 0, 3, 0).unwrap()
    }

    /// A function with I/O, memory and bus mastering on, parity and SERR
    /// reporting on, two status error bits latched, MSI enabled (64-bit) and
    /// MSI-X enabled with 8 vectors.
    fn busy_device() -> FakeConfig {
        FakeConfig::new(sbdf())
            .with(0x00, 0x10d3_8086, 0, 0)
            // Status 0xa010: Detected Parity Error, Received Master Abort,
            // Capabilities List. Command 0x0147: IO, MEM, MASTER, PARITY, SERR.
            .with(0x04, 0xa010_0147, 0x0000_0547, 0xf900_0000)
            .with(0x34, MSI_CAP.into(), 0, 0)
            // MSI: ID 0x05, next 0x70, control 0x0081 (64-bit, enabled).
            .with(MSI_CAP, 0x0081_7005, 0x0071_0000, 0)
            // MSI-X: ID 0x11, next 0, control 0x8007 (enabled, 8 vectors).
            .with(MSIX_CAP, 0x8007_0011, 0xc000_0000, 0)
    }

    fn both_caps() -> QuiesceCaps {
        QuiesceCaps {
            msi: Some(MSI_CAP),
            msix: Some(MSIX_CAP),
        }
    }

    #[test]
    fn quiesce_turns_off_decode_and_bus_master_and_disables_intx() {
        let mut cfg = busy_device();
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        let command = cfg.peek(0x04) as u16;
        assert_eq!(command & command::IO_SPACE, 0);
        assert_eq!(command & command::MEMORY_SPACE, 0);
        assert_eq!(command & command::BUS_MASTER, 0);
        assert_ne!(command & command::INTX_DISABLE, 0);
        // Parity and SERR reporting are not the quiesce's business.
        assert_eq!(command, 0x0540);
        assert!(
            report.is_quiet(),
            "{report}: {:?}",
            report.problems().collect::<Vec<_>>()
        );
    }

    #[test]
    fn quiesce_does_not_clear_latched_status_bits() {
        let mut cfg = busy_device();
        quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(cfg.peek(0x04) >> 16, 0xa010);
        let command_write = cfg.writes().into_iter().find(|&(off, _)| off == 0x04);
        assert_eq!(
            command_write,
            Some((0x04, 0x0000_0540)),
            "status half written as zero"
        );
    }

    #[test]
    fn quiesce_disables_msi_and_msix_and_masks_msix() {
        let mut cfg = busy_device();
        quiesce(&mut cfg, sbdf(), both_caps());
        let msi_control = (cfg.peek(MSI_CAP) >> 16) as u16;
        let msix_control = (cfg.peek(MSIX_CAP) >> 16) as u16;
        assert_eq!(msi_control, 0x0080, "enable clear, 64-bit bit kept");
        assert_eq!(
            msix_control, 0x4007,
            "enable clear, mask set, table size kept"
        );
    }

    #[test]
    fn quiesce_leaves_capability_id_and_next_pointer_alone() {
        let mut cfg = busy_device();
        quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(cfg.peek(MSI_CAP) & 0xffff, 0x7005);
        assert_eq!(cfg.peek(MSIX_CAP) & 0xffff, 0x0011);
        // And it wrote them back unchanged, not as zero.
        assert_eq!(
            cfg.writes(),
            [
                (0x04, 0x0000_0540),
                (MSI_CAP, 0x0080_7005),
                (MSIX_CAP, 0x4007_0011)
            ]
        );
    }

    #[test]
    fn quiesce_report_holds_the_registers_as_read_back() {
        let mut cfg = busy_device();
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(
            report,
            QuiesceReport {
                command_before: 0x0147,
                command_after: cfg.peek(0x04) as u16,
                msi_control_before: Some(0x0081),
                msi_control_after: Some((cfg.peek(MSI_CAP) >> 16) as u16),
                msix_control_before: Some(0x8007),
                msix_control_after: Some((cfg.peek(MSIX_CAP) >> 16) as u16),
            }
        );
        assert_eq!(
            format!("{report}"),
            "command 0x0147 -> 0x0540, MSI control 0x0081 -> 0x0080, \
             MSI-X control 0x8007 -> 0x4007"
        );
        // Each value comes from a read issued after the register's write.
        let command = read_back(&cfg, 0x04).map(|v| v as u16);
        assert_eq!(command, Some(report.command_after));
        let msi = read_back(&cfg, MSI_CAP).map(|v| (v >> 16) as u16);
        assert_eq!(msi, report.msi_control_after);
        let msix = read_back(&cfg, MSIX_CAP).map(|v| (v >> 16) as u16);
        assert_eq!(msix, report.msix_control_after);
    }

    /// The value of the last access to the dword at `offset`, if that access
    /// is a read following a write.
    fn read_back(cfg: &FakeConfig, offset: u16) -> Option<u32> {
        let mut accesses = cfg.log.iter().rev().filter(|a| match **a {
            Access::Read { offset: o, .. } | Access::Write { offset: o, .. } => o == offset,
        });
        let last = accesses.next()?;
        let wrote = accesses.any(|a| matches!(a, Access::Write { .. }));
        match *last {
            Access::Read { value, .. } if wrote => Some(value),
            _ => None,
        }
    }

    #[test]
    fn stuck_command_register_is_not_quiet() {
        let mut cfg = busy_device().with(0x04, 0x0010_0007, 0, 0xf900_0000);
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(report.command_after, 0x0007);
        assert!(!report.is_quiet());
        assert_eq!(
            report.problems().collect::<Vec<_>>(),
            [
                QuiesceProblem::IoDecode,
                QuiesceProblem::MemoryDecode,
                QuiesceProblem::BusMaster,
                QuiesceProblem::IntxEnabled
            ]
        );
    }

    #[test]
    fn msi_enable_that_does_not_clear_is_reported() {
        let mut cfg = busy_device().with(MSI_CAP, 0x0081_7005, 0x0070_0000, 0);
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(report.msi_control_after, Some(0x0081));
        assert_eq!(
            report.problems().collect::<Vec<_>>(),
            [QuiesceProblem::MsiEnabled]
        );
    }

    #[test]
    fn device_without_intx_disable_is_not_quiet() {
        let mut cfg = busy_device().with(0x04, 0x0010_0007, 0x0000_0007, 0xf900_0000);
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(report.command_after, 0x0000);
        assert_eq!(
            report.problems().collect::<Vec<_>>(),
            [QuiesceProblem::IntxEnabled]
        );
    }

    #[test]
    fn function_without_msi_capabilities_gets_only_the_command_write() {
        let mut cfg = busy_device();
        let report = quiesce(&mut cfg, sbdf(), QuiesceCaps::default());
        assert_eq!(cfg.writes(), [(0x04, 0x0000_0540)]);
        assert_eq!(report.msi_control_after, None);
        assert_eq!(report.msix_control_after, None);
        assert!(report.is_quiet());
        assert_eq!(format!("{report}"), "command 0x0147 -> 0x0540");
    }

    #[test]
    fn empty_slot_reports_no_response_only() {
        let mut cfg = FakeConfig::empty_slot(sbdf());
        let report = quiesce(&mut cfg, sbdf(), both_caps());
        assert_eq!(
            report.problems().collect::<Vec<_>>(),
            [QuiesceProblem::NoResponse]
        );
        assert!(!report.is_quiet());
    }
}
