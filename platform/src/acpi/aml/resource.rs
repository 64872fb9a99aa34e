//! Resource templates (the buffers `_CRS` and `_PRS` return): finding the
//! interrupt a link device is routed to.

/// Small resource item type of the IRQ descriptor (tag byte `0x22` or
/// `0x23`: type 4, length 2 or 3).
const SMALL_IRQ: u8 = 0x04;
/// Small resource item type of the End Tag.
const SMALL_END: u8 = 0x0f;
/// Large resource item name of the Extended Interrupt descriptor.
const LARGE_EXTENDED_IRQ: u8 = 0x89;

/// An interrupt named by a resource descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// The interrupt number: a GSI for an Extended Interrupt descriptor,
    /// an ISA IRQ for an IRQ descriptor.
    pub number: u32,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active-low (else active-high).
    pub active_low: bool,
    /// From an Extended Interrupt descriptor (type 0x89), whose numbers
    /// are GSIs; else from a legacy IRQ descriptor.
    pub extended: bool,
}

/// The first interrupt in a resource template: the first number of the
/// first Extended Interrupt descriptor, or of an IRQ descriptor whose mask
/// has exactly one bit set (a mask of several is a set of choices, not a
/// routing). `None` if there is none, or if the template is malformed
/// before one is found.
///
/// Extended Interrupt (large item 0x89): length (2 bytes), flags (bit 0
/// consumer, bit 1 edge, bit 2 active-low, bit 3 shared), count, then
/// `count` 32-bit interrupt numbers. IRQ (small item type 4): a 16-bit
/// mask, then optionally an information byte (bit 0 edge, bit 3
/// active-low); without it the interrupt is edge, active-high.
pub fn first_interrupt(template: &[u8]) -> Option<Interrupt> {
    let mut pos = 0usize;
    while let Some(&tag) = template.get(pos) {
        if tag & 0x80 != 0 {
            let len = usize::from(u16::from_le_bytes([
                *template.get(pos + 1)?,
                *template.get(pos + 2)?,
            ]));
            let data = template.get(pos + 3..pos + 3 + len)?;
            if tag == LARGE_EXTENDED_IRQ {
                let (&flags, rest) = data.split_first()?;
                let (&count, rest) = rest.split_first()?;
                if count > 0 {
                    let n = rest.get(0..4)?;
                    return Some(Interrupt {
                        number: u32::from_le_bytes([n[0], n[1], n[2], n[3]]),
                        level: flags & 0x02 == 0,
                        active_low: flags & 0x04 != 0,
                        extended: true,
                    });
                }
            }
            pos += 3 + len;
        } else {
            let kind = (tag >> 3) & 0x0f;
            let len = usize::from(tag & 0x07);
            let data = template.get(pos + 1..pos + 1 + len)?;
            match kind {
                SMALL_END => return None,
                SMALL_IRQ if len >= 2 => {
                    let mask = u16::from_le_bytes([data[0], data[1]]);
                    if mask.count_ones() == 1 {
                        let info = data.get(2).copied();
                        return Some(Interrupt {
                            number: mask.trailing_zeros(),
                            level: info.is_some_and(|i| i & 0x01 == 0),
                            active_low: info.is_some_and(|i| i & 0x08 != 0),
                            extended: false,
                        });
                    }
                }
                _ => {}
            }
            pos += 1 + len;
        }
    }
    None
}

/// Each descriptor of a template, as its tag byte and its data, up to the
/// End Tag or the first malformed one.
fn descriptors(template: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = 0usize;
    core::iter::from_fn(move || {
        let &tag = template.get(pos)?;
        let (start, len) = if tag & 0x80 != 0 {
            let l = template.get(pos + 1..pos + 3)?;
            (pos + 3, usize::from(u16::from_le_bytes([l[0], l[1]])))
        } else if (tag >> 3) & 0x0f == SMALL_END {
            return None;
        } else {
            (pos + 1, usize::from(tag & 0x07))
        };
        let data = template.get(start..start + len)?;
        pos = start + len;
        Some((tag, data))
    })
}

/// The trigger and polarity of the first interrupt descriptor in a
/// template, whatever its interrupt count (a link device's `_PRS` lists
/// the choices with the flags the chosen one will have): `(level,
/// active_low)`.
pub fn interrupt_flags(template: &[u8]) -> Option<(bool, bool)> {
    descriptors(template).find_map(|(tag, data)| match tag {
        LARGE_EXTENDED_IRQ => data.first().map(|f| (f & 0x02 == 0, f & 0x04 != 0)),
        t if t & 0x80 == 0 && (t >> 3) & 0x0f == SMALL_IRQ && data.len() >= 2 => Some(
            data.get(2)
                .map_or((false, false), |i| (i & 0x01 == 0, i & 0x08 != 0)),
        ),
        _ => None,
    })
}

/// The first bus number of the first Bus Number Range address space
/// descriptor (Word 0x88, DWord 0x87 or QWord 0x8a with resource type 2)
/// in a host bridge's `_CRS`.
pub fn bus_range_start(template: &[u8]) -> Option<u64> {
    descriptors(template).find_map(|(tag, data)| {
        let width = match tag {
            0x88 => 2,
            0x87 => 4,
            0x8a => 8,
            _ => return None,
        };
        if *data.first()? != 2 {
            return None;
        }
        // Type, general flags, type flags, granularity, then the minimum.
        let min = data.get(3 + width..3 + 2 * width)?;
        Some(min.iter().rev().fold(0, |v, &b| v << 8 | u64::from(b)))
    })
}
