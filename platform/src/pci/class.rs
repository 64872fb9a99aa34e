//! Names for PCI class codes.

/// A short name for a class code (class, subclass, programming interface),
/// as precise as the common classes allow and the base class otherwise.
pub fn class_name(class: u8, subclass: u8, prog_if: u8) -> &'static str {
    match (class, subclass, prog_if) {
        (0x00, 0x01, _) => "VGA-compatible unclassified",
        (0x00, _, _) => "unclassified",
        (0x01, 0x00, _) => "storage/SCSI",
        (0x01, 0x01, _) => "storage/IDE",
        (0x01, 0x02, _) => "storage/floppy",
        (0x01, 0x04, _) => "storage/RAID",
        (0x01, 0x05, _) => "storage/ATA",
        (0x01, 0x06, 0x01) => "storage/SATA AHCI",
        (0x01, 0x06, _) => "storage/SATA",
        (0x01, 0x07, _) => "storage/SAS",
        (0x01, 0x08, 0x02) => "storage/NVMe",
        (0x01, 0x08, _) => "storage/NVM",
        (0x01, _, _) => "storage",
        (0x02, 0x00, _) => "network/Ethernet",
        (0x02, _, _) => "network",
        (0x03, 0x00, 0x00) => "display/VGA",
        (0x03, 0x00, _) => "display/8514",
        (0x03, 0x01, _) => "display/XGA",
        (0x03, 0x02, _) => "display/3D",
        (0x03, _, _) => "display",
        (0x04, 0x01, _) => "multimedia/audio",
        (0x04, 0x03, _) => "multimedia/HD audio",
        (0x04, _, _) => "multimedia",
        (0x05, _, _) => "memory controller",
        (0x06, 0x00, _) => "bridge/host",
        (0x06, 0x01, _) => "bridge/ISA",
        (0x06, 0x02, _) => "bridge/EISA",
        (0x06, 0x04, _) => "bridge/PCI-PCI",
        (0x06, 0x05, _) => "bridge/PCMCIA",
        (0x06, 0x07, _) => "bridge/CardBus",
        (0x06, 0x09, _) => "bridge/semi-transparent PCI-PCI",
        (0x06, _, _) => "bridge",
        (0x07, 0x00, _) => "communication/serial",
        (0x07, 0x01, _) => "communication/parallel",
        (0x07, 0x03, _) => "communication/modem",
        (0x07, _, _) => "communication",
        (0x08, 0x00, 0x20) => "system peripheral/IOAPIC",
        (0x08, 0x00, _) => "system peripheral/PIC",
        (0x08, 0x01, _) => "system peripheral/DMA",
        (0x08, 0x02, _) => "system peripheral/timer",
        (0x08, 0x03, _) => "system peripheral/RTC",
        (0x08, 0x05, _) => "system peripheral/SD host",
        (0x08, 0x06, _) => "system peripheral/IOMMU",
        (0x08, _, _) => "system peripheral",
        (0x09, _, _) => "input",
        (0x0a, _, _) => "docking station",
        (0x0b, _, _) => "processor",
        (0x0c, 0x00, _) => "serial bus/FireWire",
        (0x0c, 0x03, 0x00) => "serial bus/USB UHCI",
        (0x0c, 0x03, 0x10) => "serial bus/USB OHCI",
        (0x0c, 0x03, 0x20) => "serial bus/USB EHCI",
        (0x0c, 0x03, 0x30) => "serial bus/USB xHCI",
        (0x0c, 0x03, _) => "serial bus/USB",
        (0x0c, 0x05, _) => "serial bus/SMBus",
        (0x0c, _, _) => "serial bus",
        (0x0d, _, _) => "wireless",
        (0x0e, _, _) => "intelligent I/O",
        (0x0f, _, _) => "satellite communication",
        (0x10, _, _) => "encryption",
        (0x11, _, _) => "signal processing",
        (0x12, _, _) => "processing accelerator",
        (0x13, _, _) => "non-essential instrumentation",
        (0xff, _, _) => "unassigned class",
        _ => "reserved class",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_classes_have_names() {
        assert_eq!(class_name(0x00, 0xff, 0x00), "unclassified");
        assert_eq!(class_name(0x01, 0x08, 0x02), "storage/NVMe");
        assert_eq!(class_name(0x02, 0x00, 0x00), "network/Ethernet");
        assert_eq!(class_name(0x03, 0x00, 0x00), "display/VGA");
        assert_eq!(class_name(0x06, 0x00, 0x00), "bridge/host");
        assert_eq!(class_name(0x06, 0x01, 0x00), "bridge/ISA");
        assert_eq!(class_name(0x06, 0x04, 0x00), "bridge/PCI-PCI");
        assert_eq!(class_name(0x0c, 0x05, 0x00), "serial bus/SMBus");
        assert_eq!(class_name(0x08, 0x06, 0x00), "system peripheral/IOMMU");
        assert_eq!(class_name(0x08, 0x80, 0x00), "system peripheral");
        assert_eq!(class_name(0x42, 0x00, 0x00), "reserved class");
    }
}
