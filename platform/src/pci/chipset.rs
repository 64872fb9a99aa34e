//! Chipset knowledge: where the PCI interrupt router of the PIIX3/PIIX4 and
//! the ICH9 keeps its PIRQ route control registers, which ACPI link
//! devices (`LNKA`..`LNKH`) read to compute their interrupt.
//!
//! Each register: bit 7 set = the PIRQ is not routed; bits 3:0 = the ISA
//! IRQ it drives (3..15 usable). PIIX: PIRQA-D at 0x60-0x63 of the
//! PCI-to-ISA bridge (function 0). ICH9: PIRQA-D at 0x60-0x63 and PIRQE-H
//! at 0x68-0x6b of the LPC bridge (00:1f.0).

/// The config register of PIRQ `x` (0 = A .. 7 = H) in the function with
/// `vendor`, `device` and function number `func`, if it is a PIRQ router
/// this module knows and has that PIRQ.
pub fn pirq_register(vendor: u16, device: u16, func: u8, x: u8) -> Option<u16> {
    match (vendor, device, func) {
        // PIIX3 and PIIX4 PCI-to-ISA bridges: PIRQA-D only.
        (0x8086, 0x7000 | 0x7110, 0) if x < 4 => Some(0x60 + u16::from(x)),
        // ICH9 LPC bridge: A-D, then E-H after a gap of four.
        (0x8086, 0x2918, 0) if x < 8 => Some(if x < 4 { 0x60 } else { 0x64 } + u16::from(x)),
        _ => None,
    }
}

/// The ISA IRQ a PIRQ route control register value routes to, if it
/// routes to one that PCI may use.
pub fn pirq_irq(reg: u8) -> Option<u8> {
    (reg & 0x80 == 0 && (3..16).contains(&(reg & 0xf))).then_some(reg & 0xf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piix_has_four_pirqs_and_ich9_eight_with_a_gap() {
        assert_eq!(pirq_register(0x8086, 0x7000, 0, 0), Some(0x60));
        assert_eq!(pirq_register(0x8086, 0x7110, 0, 3), Some(0x63));
        assert_eq!(pirq_register(0x8086, 0x7110, 0, 4), None);
        assert_eq!(pirq_register(0x8086, 0x2918, 0, 3), Some(0x63));
        assert_eq!(pirq_register(0x8086, 0x2918, 0, 4), Some(0x68));
        assert_eq!(pirq_register(0x8086, 0x2918, 0, 7), Some(0x6b));
        assert_eq!(pirq_register(0x8086, 0x2918, 0, 8), None);
        assert_eq!(pirq_register(0x8086, 0x2918, 1, 0), None);
        assert_eq!(pirq_register(0x1022, 0x790e, 0, 0), None);
    }

    #[test]
    fn a_register_routes_only_with_bit_7_clear_and_a_usable_irq() {
        assert_eq!(pirq_irq(0x0b), Some(11));
        assert_eq!(pirq_irq(0x8b), None);
        assert_eq!(pirq_irq(0x00), None);
        assert_eq!(pirq_irq(0x02), None);
        assert_eq!(pirq_irq(0x0f), Some(15));
    }
}
