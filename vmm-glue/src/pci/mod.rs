//! PCI function addresses, the host config-space seam, the register
//! definitions ([`regs`]) and the capability walks ([`caps`]) that the
//! hypervisor, its backend and our guests share.

pub mod caps;
pub mod regs;

use core::fmt;
use core::str::FromStr;

/// A PCI function address: segment, bus, device (slot) and function.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sbdf {
    /// PCI segment group.
    pub seg: u16,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..=31.
    pub dev: u8,
    /// Function number, 0..=7.
    pub func: u8,
}

impl Sbdf {
    /// A function address. `dev` must be below 32 and `func` below 8.
    pub const fn new(seg: u16, bus: u8, dev: u8, func: u8) -> Option<Self> {
        if dev < 32 && func < 8 {
            Some(Self {
                seg,
                bus,
                dev,
                func,
            })
        } else {
            None
        }
    }

    /// The 16-bit requester ID (bus, device, function) as the IOMMU sees it.
    pub const fn rid(self) -> u16 {
        ((self.bus as u16) << 8) | ((self.dev as u16) << 3) | self.func as u16
    }

    /// The function a 16-bit requester ID names in segment `seg`.
    pub const fn from_rid(seg: u16, rid: u16) -> Self {
        Self {
            seg,
            bus: (rid >> 8) as u8,
            dev: ((rid >> 3) & 0x1f) as u8,
            func: (rid & 7) as u8,
        }
    }

    /// The same device's function `func`.
    pub const fn with_func(self, func: u8) -> Self {
        Self { func, ..self }
    }
}

impl fmt::Display for Sbdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.seg, self.bus, self.dev, self.func
        )
    }
}

impl fmt::Debug for Sbdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a text is not a PCI function address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseSbdfError;

impl fmt::Display for ParseSbdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a PCI address 'bb:dd.f' or 'dddd:bb:dd.f' (hexadecimal)")
    }
}

impl FromStr for Sbdf {
    type Err = ParseSbdfError;

    /// Parses `bb:dd.f` or `dddd:bb:dd.f`, all numbers hexadecimal.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn hex<T: TryFrom<u32>>(s: &str, max_digits: usize) -> Result<T, ParseSbdfError> {
            if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseSbdfError);
            }
            let v = u32::from_str_radix(s, 16).map_err(|_| ParseSbdfError)?;
            T::try_from(v).map_err(|_| ParseSbdfError)
        }
        let (bdf, dotf) = s.rsplit_once('.').ok_or(ParseSbdfError)?;
        let func: u8 = hex(dotf, 1)?;
        let mut parts = bdf.rsplitn(3, ':');
        let dev: u8 = hex(parts.next().ok_or(ParseSbdfError)?, 2)?;
        let bus: u8 = hex(parts.next().ok_or(ParseSbdfError)?, 2)?;
        let seg: u16 = match parts.next() {
            Some(seg) => hex(seg, 4)?,
            None => 0,
        };
        Sbdf::new(seg, bus, dev, func).ok_or(ParseSbdfError)
    }
}

/// Access to a host PCI function's configuration space.
///
/// Implemented by `platform` over ECAM or the legacy 0xCF8/0xCFC ports and by
/// scripted fakes in host tests. Offsets are byte offsets; accesses are
/// naturally aligned dwords. A function that does not exist reads all-ones.
pub trait PciConfig {
    /// Reads the dword at `offset` (a multiple of 4).
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32;

    /// Writes the dword at `offset` (a multiple of 4).
    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32);

    /// The size of this function's configuration space: 4096 with ECAM,
    /// 256 through the legacy ports.
    fn config_size(&self, sbdf: Sbdf) -> u16;

    /// Reads the 16-bit word at `offset` (a multiple of 2).
    fn read16(&mut self, sbdf: Sbdf, offset: u16) -> u16 {
        let dword = self.read32(sbdf, offset & !3);
        (dword >> ((offset & 2) * 8)) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&mut self, sbdf: Sbdf, offset: u16) -> u8 {
        let dword = self.read32(sbdf, offset & !3);
        (dword >> ((offset & 3) * 8)) as u8
    }

    /// Writes the 16-bit word at `offset` (a multiple of 2) with a
    /// read-modify-write of the containing dword.
    ///
    /// Callers must not use this on a dword whose other half has write-1-to-clear
    /// bits they do not mean to clear (the command/status pair: write the
    /// status half as zero, as [`write_command`](Self::write_command) does).
    fn write16(&mut self, sbdf: Sbdf, offset: u16, value: u16) {
        let shift = (offset & 2) * 8;
        let old = self.read32(sbdf, offset & !3);
        let new = (old & !(0xffff << shift)) | (u32::from(value) << shift);
        self.write32(sbdf, offset & !3, new);
    }

    /// Writes `size` bytes (1, 2 or 4) at `offset` (a multiple of `size`)
    /// with one access of that size, leaving the other bytes of the dword
    /// unwritten: the write a guest asked for, for registers nothing
    /// virtualises (whose write-1-to-clear bits are unknown).
    ///
    /// The default reads and writes the whole dword back (it would clear
    /// write-1-to-clear bits set in the other bytes); accessors that can
    /// make narrower accesses override it.
    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        let shift = u32::from(offset & 3) * 8;
        let mask = match size {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        } << shift;
        let old = self.read32(sbdf, offset & !3);
        self.write32(sbdf, offset & !3, (old & !mask) | ((value << shift) & mask));
    }

    /// Writes the command register without touching the write-1-to-clear
    /// bits of the status register next to it.
    fn write_command(&mut self, sbdf: Sbdf, command: u16) {
        self.write32(sbdf, 0x04, u32::from(command));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn parses_short_and_long_forms() {
        assert_eq!(
            "00:03.0".parse(),
            Ok(Sbdf {
                seg: 0,
                bus: 0,
                dev: 3,
                func: 0
            })
        );
        assert_eq!(
            "0001:1f:1f.7".parse(),
            Ok(Sbdf {
                seg: 1,
                bus: 0x1f,
                dev: 0x1f,
                func: 7
            })
        );
    }

    #[test]
    fn rejects_out_of_range_device_and_function() {
        assert_eq!("00:20.0".parse::<Sbdf>(), Err(ParseSbdfError));
        assert_eq!("00:1f.8".parse::<Sbdf>(), Err(ParseSbdfError));
        assert_eq!("100:00.0".parse::<Sbdf>(), Err(ParseSbdfError));
        assert_eq!("".parse::<Sbdf>(), Err(ParseSbdfError));
        assert_eq!("+0:00.0".parse::<Sbdf>(), Err(ParseSbdfError));
    }

    #[test]
    fn display_is_the_long_form() {
        let s = Sbdf::new(0, 0, 4, 1).unwrap();
        assert_eq!(s.to_string(), "0000:00:04.1");
        assert_eq!(s.to_string().parse(), Ok(s));
        assert_eq!(s.rid(), 0x21);
    }

    #[test]
    fn requester_ids_round_trip() {
        for rid in [0u16, 0x00a0, 0x0018, 0x01ff, 0xffff] {
            let s = Sbdf::from_rid(2, rid);
            assert_eq!((s.seg, s.rid()), (2, rid));
        }
        assert_eq!(Sbdf::from_rid(0, 0x00a0).to_string(), "0000:00:14.0");
    }
}
