//! Segment descriptors of a 64-bit PV guest: the checks and fix-ups Xen
//! makes before a descriptor may sit in a guest's GDT or LDT
//! (`pv/descriptor-tables.c check_descriptor`), and the hidden parts of a
//! segment register a descriptor gives (for loading CS and SS when the
//! hypervisor returns the guest to them).

use super::abi::{gdt::FIRST_RESERVED_GDT_ENTRY, sel};

/// Descriptor bits in the high word (`_SEGMENT_*`, bit numbers of the
/// 64-bit descriptor).
mod bit {
    /// Accessed (type bit 0).
    pub const ACCESSED: u64 = 1 << 40;
    /// Code (type bit 3).
    pub const CODE: u64 = 1 << 43;
    /// S: a code or data segment (not a system descriptor).
    pub const S: u64 = 1 << 44;
    pub const DPL_SHIFT: u32 = 45;
    pub const DPL: u64 = 3 << DPL_SHIFT;
    pub const P: u64 = 1 << 47;
    /// L: 64-bit code.
    pub const L: u64 = 1 << 53;
    /// The type field (bits 40-43).
    pub const TYPE: u64 = 0xf << 40;
    /// A 64-bit call gate's type.
    pub const CALL_GATE: u64 = 0xc << 40;
    /// Bits 37-39 of a gate (reserved, must be zero for a 64-bit guest:
    /// Xen checks the whole low byte of the high word, bits 32-39).
    pub const GATE_RESERVED: u64 = 0xff << 32;
}

/// Whether a call gate may name `cs` as its target: a guest GDT selector,
/// `FLAT_KERNEL_CS`, or an LDT selector (`guest_gate_selector_okay`).
pub fn gate_selector_ok(cs: u16) -> bool {
    usize::from(cs >> 3) < FIRST_RESERVED_GDT_ENTRY || cs == sel::FLAT_KERNEL_CS || cs & 4 != 0
}

/// Checks `raw` as a descriptor of a 64-bit PV guest and returns what goes
/// into the table, or `None` when Xen refuses it:
/// - not present: accepted as it is (it always faults);
/// - code and data segments: accepted with the DPL raised to 3 (the guest
///   kernel runs in ring 3), no base or limit check;
/// - type 0 (the second half of a 64-bit call gate): accepted;
/// - a 64-bit call gate whose target is a guest selector: accepted with DPL
///   0 and its DPL kept in the target's RPL, so using it faults and can be
///   emulated; reserved bits must be clear;
/// - every other system descriptor (TSS, LDT, interrupt and trap gates):
///   refused.
pub fn check_descriptor(raw: u64) -> Option<u64> {
    if raw & bit::P == 0 {
        return Some(raw);
    }
    let dpl = ((raw & bit::DPL) >> bit::DPL_SHIFT).max(3);
    let d = (raw & !bit::DPL) | (dpl << bit::DPL_SHIFT);
    if d & bit::S != 0 {
        return Some(d);
    }
    if d & bit::TYPE == 0 {
        return Some(d);
    }
    if d & bit::TYPE != bit::CALL_GATE {
        return None;
    }
    let cs = ((d >> 16) & 0xffff) as u16;
    if !gate_selector_ok(cs) {
        return None;
    }
    let cs = (cs & !3) | dpl as u16;
    let d = (d & !bit::DPL & !(0xffff << 16)) | (u64::from(cs) << 16);
    if d & bit::GATE_RESERVED != 0 {
        return None;
    }
    Some(d)
}

/// The hidden part of a segment register, as the hypervisor loads it: the
/// attribute bits in the VMCB's layout (descriptor bits 40-47 in 0-7,
/// 52-55 in 8-11), base and limit (scaled by G).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hidden {
    pub attrib: u16,
    pub base: u64,
    pub limit: u32,
}

impl Hidden {
    /// The register's contents for descriptor `raw` (accessed bit set, as
    /// the CPU sets it on load).
    pub fn of(raw: u64) -> Self {
        let raw = raw | bit::ACCESSED;
        let attrib = (((raw >> 40) & 0xff) | ((raw >> 44) & 0xf00)) as u16;
        let base = ((raw >> 16) & 0xff_ffff) | (((raw >> 56) & 0xff) << 24);
        let limit = ((raw & 0xffff) | ((raw >> 32) & 0xf_0000)) as u32;
        let limit = if raw & (1 << 55) != 0 {
            (limit << 12) | 0xfff
        } else {
            limit
        };
        Self {
            attrib,
            base,
            limit,
        }
    }
}

/// Why a selector cannot be loaded into CS or SS for a return to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The null selector, or one past the table's limit.
    Missing,
    /// The descriptor is not present.
    NotPresent,
    /// Not a code segment (CS) or not a writable data segment (SS), or a
    /// DPL or RPL other than 3.
    Wrong,
}

/// The CS register for returning to `selector` (RPL 3) with descriptor
/// `raw`: a present code segment of DPL 3 (64-bit or 32-bit compatibility
/// mode).
pub fn code_segment(selector: u16, raw: Option<u64>) -> Result<Hidden, LoadError> {
    let raw = raw
        .filter(|_| selector & !3 != 0)
        .ok_or(LoadError::Missing)?;
    if raw & bit::P == 0 {
        return Err(LoadError::NotPresent);
    }
    let dpl = (raw & bit::DPL) >> bit::DPL_SHIFT;
    if raw & bit::S == 0 || raw & bit::CODE == 0 || dpl != 3 || selector & 3 != 3 {
        return Err(LoadError::Wrong);
    }
    // A 64-bit code segment must not also be 32-bit (L with D is reserved).
    if raw & bit::L != 0 && raw & (1 << 54) != 0 {
        return Err(LoadError::Wrong);
    }
    Ok(Hidden::of(raw))
}

/// The SS register for returning to `selector` (RPL 3) with descriptor
/// `raw`: a present writable data segment of DPL 3.
pub fn stack_segment(selector: u16, raw: Option<u64>) -> Result<Hidden, LoadError> {
    let raw = raw
        .filter(|_| selector & !3 != 0)
        .ok_or(LoadError::Missing)?;
    if raw & bit::P == 0 {
        return Err(LoadError::NotPresent);
    }
    let dpl = (raw & bit::DPL) >> bit::DPL_SHIFT;
    let writable = raw & (1 << 41) != 0;
    if raw & bit::S == 0 || raw & bit::CODE != 0 || !writable || dpl != 3 || selector & 3 != 3 {
        return Err(LoadError::Wrong);
    }
    Ok(Hidden::of(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pv::abi::gdt;

    /// Linux's 64-bit kernel code segment as it writes it (DPL 0).
    const KERNEL_CS64: u64 = 0x00af_9b00_0000_ffff;
    /// Linux's user data segment (DPL 3).
    const USER_DS: u64 = 0x00cf_f300_0000_ffff;

    #[test]
    fn code_and_data_segments_get_dpl_3_and_nothing_else_changes() {
        assert_eq!(check_descriptor(KERNEL_CS64), Some(0x00af_fb00_0000_ffff));
        assert_eq!(check_descriptor(USER_DS), Some(USER_DS));
    }

    #[test]
    fn not_present_and_type_0_descriptors_are_accepted_as_they_are() {
        assert_eq!(check_descriptor(0), Some(0));
        assert_eq!(
            check_descriptor(0x0000_0800_1234_5678),
            Some(0x0000_0800_1234_5678)
        );
        // Present, system, type 0: the second half of a call gate.
        let t0 = 0x0000_8000_0000_0000;
        assert_eq!(check_descriptor(t0), Some(0x0000_e000_0000_0000));
    }

    #[test]
    fn tss_ldt_and_interrupt_gates_are_refused() {
        // Present 64-bit TSS (type 9), LDT (type 2), interrupt gate (type
        // 0xe) and trap gate (0xf).
        for ty in [0x9u64, 0x2, 0xe, 0xf] {
            let d = (1 << 47) | (ty << 40);
            assert_eq!(check_descriptor(d), None, "type {ty:#x}");
        }
    }

    #[test]
    fn a_call_gate_gets_dpl_0_with_its_dpl_kept_in_the_target_rpl() {
        // DPL 3 call gate to selector 0x10, offset 0x1234.
        let gate = (1 << 47) | (3 << 45) | (0xc << 40) | (0x10 << 16) | 0x1234;
        let d = check_descriptor(gate).unwrap();
        assert_eq!((d >> 45) & 3, 0, "gate DPL forced to 0");
        assert_eq!((d >> 16) & 0xffff, 0x13, "old DPL in the target RPL");
        assert_eq!(d & 0xffff, 0x1234);
    }

    #[test]
    fn a_call_gate_to_a_reserved_selector_or_with_reserved_bits_is_refused() {
        let to_xen = (1 << 47) | (0xc << 40) | (0xe008u64 << 16);
        assert_eq!(check_descriptor(to_xen), None);
        let to_flat = (1 << 47) | (0xc << 40) | (u64::from(sel::FLAT_KERNEL_CS) << 16);
        assert!(check_descriptor(to_flat).is_some());
        let reserved = (1 << 47) | (0xc << 40) | (0x10 << 16) | (1 << 32);
        assert_eq!(check_descriptor(reserved), None);
    }

    #[test]
    fn the_reserved_flat_segments_load_as_the_cpu_would() {
        let cs = gdt::RESERVED.iter().find(|e| e.0 == 7174).unwrap().1;
        let h = code_segment(sel::FLAT_KERNEL_CS, Some(cs)).unwrap();
        assert_eq!(h.attrib, 0xafb);
        assert_eq!(h.limit, 0xffff_ffff);
        let ss = gdt::RESERVED.iter().find(|e| e.0 == 7173).unwrap().1;
        let h = stack_segment(sel::FLAT_KERNEL_SS, Some(ss)).unwrap();
        assert_eq!(h.attrib, 0xcf3);
    }

    #[test]
    fn loading_refuses_null_absent_system_and_privileged_segments() {
        assert_eq!(code_segment(0x3, Some(0)), Err(LoadError::Missing));
        assert_eq!(code_segment(0x33, None), Err(LoadError::Missing));
        assert_eq!(
            code_segment(0x33, Some(0x00af_7b00_0000_ffff)),
            Err(LoadError::NotPresent)
        );
        assert_eq!(code_segment(0x33, Some(KERNEL_CS64)), Err(LoadError::Wrong));
        assert_eq!(code_segment(0x33, Some(USER_DS)), Err(LoadError::Wrong));
        assert_eq!(
            stack_segment(0x2b, Some(0x00af_fb00_0000_ffff)),
            Err(LoadError::Wrong)
        );
        assert_eq!(
            stack_segment(0x28, Some(USER_DS)),
            Err(LoadError::Wrong),
            "RPL 0"
        );
        assert!(stack_segment(0x2b, Some(USER_DS)).is_ok());
    }
}
