//! The seams between the hypervisor and its IOMMUs.
//!
//! The hypervisor decides *which* function belongs to which domain and
//! which vector an interrupt becomes; an implementation of these traits
//! (`platform::iommu::IommuSet`, over every VT-d and AMD-Vi unit the
//! firmware describes) makes the units enforce it:
//!
//! - [`DmaRemapping`]: a function assigned to a domain reaches exactly that
//!   domain's RAM, at I/O virtual address = guest-physical address; a
//!   function without an owner reaches nothing.
//! - [`InterruptRemapping`]: every interrupt a passed-through function (or
//!   an I/O APIC input wired to one) sends goes through an entry that only
//!   that source may use.
//!
//! Domain ids are the hypervisor's (from 1); they double as the units'
//! domain ids (IOTLB tags).

use core::fmt;

use crate::addr::{Gpa, Hpa};
use crate::pci::Sbdf;

/// One piece of a domain's RAM: guest-physical `[gpa, gpa + len)` is
/// host-physical `[hpa, hpa + len)`. All three are multiples of 4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// Where the guest sees it.
    pub gpa: Gpa,
    /// Where it is.
    pub hpa: Hpa,
    /// Its length in bytes.
    pub len: u64,
}

/// The message an interrupt-remapped function must send for one
/// interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemappedMsi {
    /// The remapping entry's index; give it back to
    /// [`InterruptRemapping::unroute_msi`].
    pub handle: u16,
    /// The message address to program into the function.
    pub address: u64,
    /// The message data to program into the function.
    pub data: u32,
}

/// How an I/O APIC input reaches the remapping entry made for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemappedIoapic {
    /// The remapping entry's index; give it back to
    /// [`InterruptRemapping::unroute_ioapic`].
    pub handle: u16,
    /// VT-d: the redirection entry is in remappable format and names
    /// `handle`. Otherwise (AMD-Vi) it is in the ordinary format with
    /// `handle` as its vector: the unit takes the index from the message
    /// data (the vector, delivery mode fixed), and the local APIC's EOI
    /// broadcast still matches the entry.
    pub remappable_format: bool,
}

/// Longest driver message an [`IommuError`] keeps (longer ones are cut).
pub const DETAIL_LEN: usize = 96;

/// A unit driver's own description of a failure, kept as text so the
/// error stays `Copy` and needs no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    text: [u8; DETAIL_LEN],
    len: u8,
}

impl Detail {
    /// `what`'s `Display` text, cut to [`DETAIL_LEN`] bytes (at a
    /// character boundary).
    pub fn new(what: &dyn fmt::Display) -> Self {
        let mut d = Self {
            text: [0; DETAIL_LEN],
            len: 0,
        };
        // Writing into the buffer never fails; a cut is not an error.
        let _ = fmt::write(&mut d, format_args!("{what}"));
        d
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.text.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Write for Detail {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut buf = [0; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes();
            let at = usize::from(self.len);
            let Some(slot) = self.text.get_mut(at..at + enc.len()) else {
                return Ok(());
            };
            slot.copy_from_slice(enc);
            self.len += enc.len() as u8;
        }
        Ok(())
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why an IOMMU operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IommuError {
    /// No unit translates for the function.
    NotCovered,
    /// The remapping table the entry would go in has no free entry.
    TableFull,
    /// The domain's tables could not be built (no memory for them, or its
    /// RAM map was refused); the driver's words.
    Tables(Detail),
    /// Mapping the domain's RAM into its new tables failed; the driver's
    /// words.
    Mapping(Detail),
    /// The unit failed the operation (an invalidation timed out, a command
    /// was refused, an entry was out of range); the driver's words.
    Unit(Detail),
}

impl fmt::Display for IommuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCovered => f.write_str("no IOMMU unit translates for it"),
            Self::TableFull => f.write_str("the interrupt remapping table is full"),
            Self::Tables(d) | Self::Unit(d) => write!(f, "{d}"),
            Self::Mapping(d) => write!(f, "mapping its RAM: {d}"),
        }
    }
}

/// DMA remapping: who may DMA where.
pub trait DmaRemapping {
    /// Whether a unit translates `dev`'s DMA (so [`attach`](Self::attach)
    /// can confine it).
    fn covers(&self, dev: Sbdf) -> bool;

    /// Lets `dev` DMA into domain `dom`'s RAM, and nowhere else. The first
    /// function of `dom` on a unit has the domain's tables built there,
    /// mapping exactly `ram`; later ones share them (`ram` is then not
    /// read). On AMD-Vi the function also gets its interrupt remapping
    /// table, every entry blocked until one is routed.
    fn attach(&mut self, dom: u16, ram: &[RamRange], dev: Sbdf) -> Result<(), IommuError>;

    /// Blocks `dev`'s DMA (and on AMD-Vi its interrupts) again, flushed,
    /// then reads back what the unit now walks for it: `Ok(true)` when
    /// that entry blocks it, `Ok(false)` when it still lets it through.
    /// A function that was not attached is blocked already (`Ok(true)`).
    fn detach(&mut self, dev: Sbdf) -> Result<bool, IommuError>;

    /// Flushes and frees domain `dom`'s tables on every unit. Its
    /// functions must be detached already.
    fn remove_domain(&mut self, dom: u16);
}

/// Interrupt remapping: which interrupts a source may raise.
///
/// Every entry delivers a fixed vector to one local APIC in physical
/// destination mode.
pub trait InterruptRemapping {
    /// Whether `dev`'s interrupts go through a remapping table.
    fn remaps(&self, dev: Sbdf) -> bool;

    /// An entry sending `vector` to the local APIC `dest_apic`, usable
    /// only by `dev`, and the message `dev` must send to use it.
    /// `Ok(None)` when `dev`'s interrupts are not remapped.
    fn route_msi(
        &mut self,
        dev: Sbdf,
        vector: u8,
        dest_apic: u32,
    ) -> Result<Option<RemappedMsi>, IommuError>;

    /// Frees entry `handle` that [`route_msi`](Self::route_msi) gave `dev`
    /// (interrupts using it are blocked again).
    fn unroute_msi(&mut self, dev: Sbdf, handle: u16);

    /// A level-triggered entry for an input of the I/O APIC with APIC id
    /// `ioapic_id` (a PCI INTx line), sending `vector` to the local APIC
    /// `dest_apic`, usable only by that I/O APIC, and how the redirection
    /// entry must name it. `Ok(None)` when that I/O APIC's interrupts are
    /// not remapped; an error when they would be blocked (a unit remaps
    /// interrupts but none lists that I/O APIC).
    fn route_ioapic(
        &mut self,
        ioapic_id: u8,
        vector: u8,
        dest_apic: u32,
    ) -> Result<Option<RemappedIoapic>, IommuError>;

    /// Frees entry `handle` that [`route_ioapic`](Self::route_ioapic) gave
    /// I/O APIC `ioapic_id`.
    fn unroute_ioapic(&mut self, ioapic_id: u8, handle: u16);
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn detail_keeps_short_text_and_cuts_long_text_at_a_character() {
        assert_eq!(Detail::new(&"timed out").as_str(), "timed out");
        let long = "é".repeat(DETAIL_LEN);
        let d = Detail::new(&long);
        assert_eq!(d.as_str().len(), DETAIL_LEN);
        assert!(d.as_str().chars().all(|c| c == 'é'));
    }

    #[test]
    fn errors_say_what_failed() {
        let d = Detail::new(&"no memory");
        assert_eq!(
            IommuError::Mapping(d).to_string(),
            "mapping its RAM: no memory"
        );
        assert_eq!(IommuError::Unit(d).to_string(), "no memory");
        assert_eq!(
            IommuError::NotCovered.to_string(),
            "no IOMMU unit translates for it"
        );
    }
}
