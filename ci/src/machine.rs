//! What a run boots on and how: emulator, IOMMU, boot path.

use std::fmt;

/// The IOMMU the QEMU machine gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iommu {
    /// `-device intel-iommu,intremap=on` (ACPI DMAR).
    Intel,
    /// `-device amd-iommu,intremap=on,pt=off` (ACPI IVRS, a 1022:xxxx function).
    Amd,
    /// No IOMMU.
    None,
}

/// The Bochs CPU model used when none is given: VMX with EPT and
/// unrestricted guest.
pub const DEFAULT_BOCHS_CPU: &str = "corei7_skylake_x";

/// The emulator and its CPU-side configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// QEMU (TCG) with the standard machine (see [`crate::qemu`]); its
    /// PCI devices replaced by `devices` (`-device` arguments' values)
    /// when that is not empty.
    Qemu {
        iommu: Iommu,
        devices: &'static [&'static str],
    },
    /// Bochs with the given `cpu: model=` (for example `corei7_skylake_x`
    /// for VMX, `ryzen` for SVM). Bochs boots only from the ISO.
    Bochs { cpu: &'static str },
}

impl Emulator {
    /// The short name used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Emulator::Qemu { .. } => "QEMU",
            Emulator::Bochs { .. } => "Bochs",
        }
    }
}

/// A multiboot protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Multiboot 1 (GRUB `multiboot`, QEMU `-kernel`).
    Mb1,
    /// Multiboot 2 (GRUB `multiboot2`).
    Mb2,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Mb1 => "multiboot1",
            Protocol::Mb2 => "multiboot2",
        })
    }
}

/// How the image reaches the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// QEMU `-kernel` with `-append` (multiboot1, no GRUB).
    Kernel,
    /// A GRUB rescue ISO whose default entry uses this protocol.
    Grub(Protocol),
    /// The same ISO booted through its EFI image by UEFI firmware (OVMF):
    /// GRUB's x86_64-efi build, multiboot2, boot services exited before
    /// the hypervisor starts.
    GrubUefi,
}

impl Boot {
    /// The protocol of the ISO's default entry, for the GRUB boots.
    pub const fn grub_protocol(self) -> Option<Protocol> {
        match self {
            Boot::Kernel => None,
            Boot::Grub(p) => Some(p),
            Boot::GrubUefi => Some(Protocol::Mb2),
        }
    }
}

impl fmt::Display for Boot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Boot::Kernel => f.write_str("-kernel (multiboot1)"),
            Boot::Grub(p) => write!(f, "GRUB ISO ({p})"),
            Boot::GrubUefi => f.write_str("GRUB EFI ISO (multiboot2) under OVMF"),
        }
    }
}
