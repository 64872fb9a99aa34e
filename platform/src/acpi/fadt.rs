//! FADT ("FACP"): fixed hardware ports, boot architecture flags, reset.

use core::fmt;

use super::sdt::Reader;
use super::{AcpiError, AcpiTable, GenericAddress, SdtHeader, Signature};

/// Length of an ACPI 1.0 (revision 1) FADT: everything up to the flags.
const V1_LEN: usize = 116;

/// The Fixed ACPI Description Table. Fields that a short (old) FADT does
/// not have are `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fadt {
    /// The table header; `header.revision` is the FADT major revision.
    pub header: SdtHeader,
    /// FADT minor version (ACPI 5.1 and later).
    pub minor_version: Option<u8>,
    /// 32-bit physical address of the FACS.
    pub firmware_ctrl: u32,
    /// 32-bit physical address of the DSDT.
    pub dsdt: u32,
    /// 64-bit physical address of the DSDT, if present and non-zero.
    pub x_dsdt: Option<u64>,
    /// Preferred power management profile.
    pub preferred_pm_profile: u8,
    /// The interrupt the SCI is wired to (an ISA IRQ on PC-AT machines).
    pub sci_interrupt: u16,
    /// I/O port of the SMI command register (0: no SMM handoff needed).
    pub smi_command_port: u32,
    /// Value to write to the SMI command port to enable ACPI.
    pub acpi_enable: u8,
    /// Value to write to the SMI command port to disable ACPI.
    pub acpi_disable: u8,
    /// PM1a event block port.
    pub pm1a_event_block: u32,
    /// PM1b event block port (0: none).
    pub pm1b_event_block: u32,
    /// PM1a control block port.
    pub pm1a_control_block: u32,
    /// PM1b control block port (0: none).
    pub pm1b_control_block: u32,
    /// PM2 control block port (0: none).
    pub pm2_control_block: u32,
    /// PM timer block port (0: no PM timer).
    pub pm_timer_block: u32,
    /// GPE0 block port.
    pub gpe0_block: u32,
    /// GPE1 block port.
    pub gpe1_block: u32,
    /// Bytes decoded by the PM1 event blocks.
    pub pm1_event_length: u8,
    /// Bytes decoded by the PM1 control blocks.
    pub pm1_control_length: u8,
    /// Bytes decoded by the PM timer block (4 when there is one).
    pub pm_timer_length: u8,
    /// CMOS RTC index of the century byte (0: not supported).
    pub century: u8,
    /// IA-PC boot architecture flags (FADT revision 2 and later).
    pub iapc_boot_arch: Option<IapcBootArch>,
    /// Fixed feature flags.
    pub flags: FadtFlags,
    /// The reset register, if the table is long enough to have one.
    pub reset_register: Option<GenericAddress>,
    /// The value to write to the reset register.
    pub reset_value: Option<u8>,
    /// Extended PM1a event block, if present and non-null.
    pub x_pm1a_event_block: Option<GenericAddress>,
    /// Extended PM1b event block, if present and non-null.
    pub x_pm1b_event_block: Option<GenericAddress>,
    /// Extended PM1a control block, if present and non-null.
    pub x_pm1a_control_block: Option<GenericAddress>,
    /// Extended PM1b control block, if present and non-null.
    pub x_pm1b_control_block: Option<GenericAddress>,
    /// Extended PM timer block, if present and non-null.
    pub x_pm_timer_block: Option<GenericAddress>,
}

/// IA-PC boot architecture flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IapcBootArch(pub u16);

impl IapcBootArch {
    /// Legacy (ISA/LPC) devices are present.
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    /// An 8042 keyboard controller is present.
    pub const I8042: u16 = 1 << 1;
    /// VGA must not be probed.
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    /// MSI must not be enabled.
    pub const MSI_NOT_SUPPORTED: u16 = 1 << 3;
    /// The OS must not change PCIe ASPM settings.
    pub const PCIE_ASPM_CONTROLS: u16 = 1 << 4;
    /// There is no CMOS RTC.
    pub const CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

    const NAMES: [(u16, &'static str); 6] = [
        (Self::LEGACY_DEVICES, "legacy-devices"),
        (Self::I8042, "8042"),
        (Self::VGA_NOT_PRESENT, "no-vga"),
        (Self::MSI_NOT_SUPPORTED, "no-msi"),
        (Self::PCIE_ASPM_CONTROLS, "no-aspm"),
        (Self::CMOS_RTC_NOT_PRESENT, "no-cmos-rtc"),
    ];

    /// Whether legacy devices are present.
    pub const fn legacy_devices(self) -> bool {
        self.0 & Self::LEGACY_DEVICES != 0
    }
    /// Whether an 8042 is present.
    pub const fn has_8042(self) -> bool {
        self.0 & Self::I8042 != 0
    }
    /// Whether VGA must not be probed.
    pub const fn vga_not_present(self) -> bool {
        self.0 & Self::VGA_NOT_PRESENT != 0
    }
    /// Whether MSI must not be used.
    pub const fn msi_not_supported(self) -> bool {
        self.0 & Self::MSI_NOT_SUPPORTED != 0
    }
    /// Whether ASPM must be left alone.
    pub const fn pcie_aspm_controls(self) -> bool {
        self.0 & Self::PCIE_ASPM_CONTROLS != 0
    }
    /// Whether there is no CMOS RTC.
    pub const fn cmos_rtc_not_present(self) -> bool {
        self.0 & Self::CMOS_RTC_NOT_PRESENT != 0
    }
}

impl fmt::Display for IapcBootArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_flag_names(
            f,
            u32::from(self.0),
            &Self::NAMES.map(|(b, n)| (u32::from(b), n)),
        )
    }
}

/// FADT fixed feature flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FadtFlags(pub u32);

impl FadtFlags {
    /// WBINVD works.
    pub const WBINVD: u32 = 1 << 0;
    /// C1 is supported on all processors.
    pub const PROC_C1: u32 = 1 << 2;
    /// The power button is a control method device.
    pub const PWR_BUTTON: u32 = 1 << 4;
    /// The sleep button is a control method device.
    pub const SLP_BUTTON: u32 = 1 << 5;
    /// The PM timer is 32 bits wide (else 24).
    pub const TMR_VAL_EXT: u32 = 1 << 8;
    /// The reset register is supported.
    pub const RESET_REG_SUP: u32 = 1 << 10;
    /// The machine has no local video or input.
    pub const HEADLESS: u32 = 1 << 12;
    /// Hardware-reduced ACPI: no fixed hardware blocks.
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;
    /// APICs must be used in physical destination mode.
    pub const FORCE_APIC_PHYSICAL_DESTINATION_MODE: u32 = 1 << 19;

    const NAMES: [(u32, &'static str); 22] = [
        (Self::WBINVD, "WBINVD"),
        (1 << 1, "WBINVD_FLUSH"),
        (Self::PROC_C1, "PROC_C1"),
        (1 << 3, "P_LVL2_UP"),
        (Self::PWR_BUTTON, "PWR_BUTTON"),
        (Self::SLP_BUTTON, "SLP_BUTTON"),
        (1 << 6, "FIX_RTC"),
        (1 << 7, "RTC_S4"),
        (Self::TMR_VAL_EXT, "TMR_VAL_EXT"),
        (1 << 9, "DCK_CAP"),
        (Self::RESET_REG_SUP, "RESET_REG_SUP"),
        (1 << 11, "SEALED_CASE"),
        (Self::HEADLESS, "HEADLESS"),
        (1 << 13, "CPU_SW_SLP"),
        (1 << 14, "PCI_EXP_WAK"),
        (1 << 15, "USE_PLATFORM_CLOCK"),
        (1 << 16, "S4_RTC_STS_VALID"),
        (1 << 17, "REMOTE_POWER_ON_CAPABLE"),
        (1 << 18, "FORCE_APIC_CLUSTER_MODEL"),
        (
            Self::FORCE_APIC_PHYSICAL_DESTINATION_MODE,
            "FORCE_APIC_PHYSICAL_DESTINATION_MODE",
        ),
        (Self::HW_REDUCED_ACPI, "HW_REDUCED_ACPI"),
        (1 << 21, "LOW_POWER_S0_IDLE_CAPABLE"),
    ];

    /// Whether the bit(s) `mask` are all set.
    pub const fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }
}

impl fmt::Display for FadtFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_flag_names(f, self.0, &Self::NAMES)
    }
}

/// Writes the names of the set bits, blank-separated, and any unnamed bits
/// in hex; "none" when nothing is set.
pub(crate) fn write_flag_names(
    f: &mut fmt::Formatter<'_>,
    value: u32,
    names: &[(u32, &str)],
) -> fmt::Result {
    let mut first = true;
    let mut sep = |f: &mut fmt::Formatter<'_>| {
        let s = if first { "" } else { " " };
        first = false;
        f.write_str(s)
    };
    let mut rest = value;
    for &(bit, name) in names {
        if value & bit != 0 {
            sep(f)?;
            f.write_str(name)?;
            rest &= !bit;
        }
    }
    if rest != 0 {
        sep(f)?;
        write!(f, "{rest:#x}")?;
    }
    if value == 0 {
        f.write_str("none")?;
    }
    Ok(())
}

fn gas_if_present(r: &Reader<'_>, off: usize) -> Result<Option<GenericAddress>, AcpiError> {
    if r.len() < off + 12 {
        return Ok(None);
    }
    let g = r.gas(off)?;
    Ok((!g.is_null()).then_some(g))
}

impl Fadt {
    /// Parses a whole FADT, header included. Tables of at least 116 bytes
    /// (ACPI 1.0) are accepted; later fields are read only when present.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, V1_LEN)?;
        let len = r.len();
        let opt_u8 = |off: usize| -> Result<Option<u8>, AcpiError> {
            if len > off {
                r.u8(off).map(Some)
            } else {
                Ok(None)
            }
        };
        let x_dsdt = if len >= 148 { Some(r.u64(140)?) } else { None };
        Ok(Self {
            header,
            minor_version: opt_u8(131)?,
            firmware_ctrl: r.u32(36)?,
            dsdt: r.u32(40)?,
            x_dsdt: x_dsdt.filter(|&a| a != 0),
            preferred_pm_profile: r.u8(45)?,
            sci_interrupt: r.u16(46)?,
            smi_command_port: r.u32(48)?,
            acpi_enable: r.u8(52)?,
            acpi_disable: r.u8(53)?,
            pm1a_event_block: r.u32(56)?,
            pm1b_event_block: r.u32(60)?,
            pm1a_control_block: r.u32(64)?,
            pm1b_control_block: r.u32(68)?,
            pm2_control_block: r.u32(72)?,
            pm_timer_block: r.u32(76)?,
            gpe0_block: r.u32(80)?,
            gpe1_block: r.u32(84)?,
            pm1_event_length: r.u8(88)?,
            pm1_control_length: r.u8(89)?,
            pm_timer_length: r.u8(91)?,
            century: r.u8(108)?,
            // Reserved in ACPI 1.0 (revision 1).
            iapc_boot_arch: if header.revision >= 2 {
                Some(IapcBootArch(r.u16(109)?))
            } else {
                None
            },
            flags: FadtFlags(r.u32(112)?),
            reset_register: if len >= 128 { Some(r.gas(116)?) } else { None },
            reset_value: opt_u8(128)?,
            x_pm1a_event_block: gas_if_present(&r, 148)?,
            x_pm1b_event_block: gas_if_present(&r, 160)?,
            x_pm1a_control_block: gas_if_present(&r, 172)?,
            x_pm1b_control_block: gas_if_present(&r, 184)?,
            x_pm_timer_block: gas_if_present(&r, 208)?,
        })
    }

    /// The reset register and value, if the FADT has them and says the
    /// reset register is supported.
    pub fn reset(&self) -> Option<(GenericAddress, u8)> {
        if !self.flags.contains(FadtFlags::RESET_REG_SUP) {
            return None;
        }
        match (self.reset_register, self.reset_value) {
            (Some(reg), Some(value)) if !reg.is_null() => Some((reg, value)),
            _ => None,
        }
    }

    /// The PM timer's I/O port, if there is a PM timer in I/O space.
    pub fn pm_timer_port(&self) -> Option<u16> {
        if let Some(x) = self.x_pm_timer_block {
            return match x.space {
                super::AddressSpace::Io => u16::try_from(x.address).ok(),
                _ => None,
            };
        }
        if self.pm_timer_length >= 4 {
            u16::try_from(self.pm_timer_block).ok().filter(|&p| p != 0)
        } else {
            None
        }
    }
}

impl AcpiTable for Fadt {
    const SIGNATURE: Signature = Signature(*b"FACP");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Fadt::parse(bytes)
    }
}

impl fmt::Display for Fadt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FADT: revision {}", self.header.revision)?;
        if let Some(minor) = self.minor_version {
            write!(f, ".{minor}")?;
        }
        write!(
            f,
            ", SCI IRQ {}, SMI command port {:#x}, PM1a event {:#x} control {:#x}",
            self.sci_interrupt,
            self.smi_command_port,
            self.pm1a_event_block,
            self.pm1a_control_block
        )?;
        if self.pm1b_event_block != 0 || self.pm1b_control_block != 0 {
            write!(
                f,
                ", PM1b event {:#x} control {:#x}",
                self.pm1b_event_block, self.pm1b_control_block
            )?;
        }
        match self.pm_timer_port() {
            Some(p) => write!(f, ", PM timer {p:#x}")?,
            None => f.write_str(", no PM timer")?,
        }
        if self.century != 0 {
            write!(f, ", century at CMOS {:#x}", self.century)?;
        }
        match self.iapc_boot_arch {
            Some(arch) => write!(f, "\n  boot arch: {arch}")?,
            None => f.write_str("\n  boot arch: not reported")?,
        }
        write!(f, "\n  flags: {}", self.flags)?;
        if let Some((reg, value)) = self.reset() {
            write!(f, "\n  reset: write {value:#x} to {reg}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{table, Put};
    use crate::acpi::{AcpiErrorKind, AddressSpace};
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The fields up to the flags (offsets 36..116).
    fn v1_body(iapc: u16, flags: u32) -> Vec<u8> {
        let mut b = vec![];
        b.u32(0x7ffe_0000)
            .u32(0x7ffe_0040)
            .u8(0)
            .u8(0)
            .u16(9)
            .u32(0xb2);
        b.u8(0xf1).u8(0xf0).u8(0).u8(0);
        b.u32(0x600)
            .u32(0)
            .u32(0x604)
            .u32(0)
            .u32(0)
            .u32(0x608)
            .u32(0x620)
            .u32(0);
        b.u8(4).u8(2).u8(0).u8(4).u8(16).u8(0).u8(0).u8(0);
        b.u16(0)
            .u16(0)
            .u16(0)
            .u16(0)
            .u8(0)
            .u8(0)
            .u8(0)
            .u8(0)
            .u8(0x32);
        b.u16(iapc).u8(0).u32(flags);
        assert_eq!(b.len(), 80);
        b
    }

    #[test]
    fn revision_1_fadt_reads_only_the_fields_it_has() {
        let t = table(b"FACP", 1, &v1_body(0xffff, 0x4a5));
        assert_eq!(t.len(), 116);
        let f = Fadt::parse(&t).unwrap();
        assert_eq!(f.sci_interrupt, 9);
        assert_eq!(f.smi_command_port, 0xb2);
        assert_eq!(f.acpi_enable, 0xf1);
        assert_eq!(f.pm1a_event_block, 0x600);
        assert_eq!(f.pm1a_control_block, 0x604);
        assert_eq!(f.pm_timer_block, 0x608);
        assert_eq!(f.pm_timer_port(), Some(0x608));
        assert_eq!(f.century, 0x32);
        assert_eq!(f.iapc_boot_arch, None);
        assert_eq!(f.reset_register, None);
        assert_eq!(f.reset(), None);
        assert_eq!(f.x_dsdt, None);
        assert_eq!(f.minor_version, None);
        assert_eq!(
            f.to_string(),
            "FADT: revision 1, SCI IRQ 9, SMI command port 0xb2, PM1a event 0x600 control 0x604, \
             PM timer 0x608, century at CMOS 0x32\n  boot arch: not reported\n  \
             flags: WBINVD PROC_C1 SLP_BUTTON RTC_S4 RESET_REG_SUP"
        );
    }

    #[test]
    fn revision_3_fadt_has_boot_arch_and_reset_register() {
        let mut b = v1_body(0x3, FadtFlags::RESET_REG_SUP | FadtFlags::TMR_VAL_EXT);
        b.gas(1, 8, 1, 0xcf9).u8(0x6).u16(0).u8(0);
        b.u64(0).u64(0x7ffe_0040);
        b.gas(1, 32, 0, 0x600).gas(0, 0, 0, 0).gas(1, 16, 0, 0x604);
        b.gas(0, 0, 0, 0).gas(0, 0, 0, 0).gas(1, 32, 0, 0x608);
        b.gas(1, 128, 0, 0x620).gas(0, 0, 0, 0);
        let t = table(b"FACP", 3, &b);
        assert_eq!(t.len(), 244);
        let f = Fadt::parse(&t).unwrap();
        let arch = f.iapc_boot_arch.unwrap();
        assert!(arch.legacy_devices() && arch.has_8042());
        assert!(!arch.vga_not_present() && !arch.msi_not_supported());
        assert!(!arch.pcie_aspm_controls() && !arch.cmos_rtc_not_present());
        let (reg, value) = f.reset().unwrap();
        assert_eq!(reg.space, AddressSpace::Io);
        assert_eq!(reg.address, 0xcf9);
        assert_eq!(value, 6);
        assert_eq!(f.x_dsdt, Some(0x7ffe_0040));
        assert_eq!(f.x_pm1b_event_block, None);
        assert_eq!(f.x_pm_timer_block.unwrap().address, 0x608);
        assert_eq!(f.pm_timer_port(), Some(0x608));
        assert_eq!(f.minor_version, Some(0));
        let text = f.to_string();
        assert!(text.contains("\n  boot arch: legacy-devices 8042\n"));
        assert!(text.ends_with("\n  reset: write 0x6 to io 0xcf9 (8 bits)"));
    }

    #[test]
    fn every_boot_arch_flag_is_decoded() {
        let a = IapcBootArch(0x3c);
        assert!(a.vga_not_present() && a.msi_not_supported());
        assert!(a.pcie_aspm_controls() && a.cmos_rtc_not_present());
        assert_eq!(a.to_string(), "no-vga no-msi no-aspm no-cmos-rtc");
        assert_eq!(IapcBootArch(0).to_string(), "none");
    }

    /// The revision 1 FADT of QEMU 7.2 `-M pc` (i440FX, SeaBIOS).
    const QEMU_7_2_PC_FADT: &str = "
        464143507400000001f1424f4348532042585043202020200100000042585043
        010000000000fe074000fe0701000900b2000000f1f000000006000000000000
        04060000000000000000000008060000e0af0000000000000402000404000000
        ff0fff0f000000000000000032000000a5800000";

    #[test]
    fn qemu_7_2_pc_fadt_bytes_parse() {
        let f = Fadt::parse(&crate::acpi::testutil::hex(QEMU_7_2_PC_FADT)).unwrap();
        assert!(f.header.checksum_ok);
        assert_eq!(f.header.revision, 1);
        assert_eq!(f.dsdt, 0x07fe_0040);
        assert_eq!((f.sci_interrupt, f.smi_command_port), (9, 0xb2));
        assert_eq!((f.acpi_enable, f.acpi_disable), (0xf1, 0xf0));
        assert_eq!((f.pm1a_event_block, f.pm1a_control_block), (0x600, 0x604));
        assert_eq!((f.gpe0_block, f.pm_timer_port()), (0xafe0, Some(0x608)));
        assert_eq!(f.iapc_boot_arch, None);
        assert_eq!(f.reset(), None);
        assert_eq!(f.flags.0, 0x80a5);
    }

    #[test]
    fn short_fadt_is_an_error() {
        let mut b = v1_body(0, 0);
        b.truncate(60);
        assert!(matches!(
            Fadt::parse(&table(b"FACP", 1, &b)).unwrap_err().kind,
            AcpiErrorKind::LengthTooSmall { length: 96, .. }
        ));
    }
}
