//! Legacy configuration mechanism #1: address to port 0xCF8, data at 0xCFC.

use vmm_glue::{PciConfig, Sbdf};

use super::{legacy_address, LEGACY_CONFIG_SIZE};

const ADDRESS_PORT: u16 = 0xcf8;
const DATA_PORT: u16 = 0xcfc;

/// Config space of segment 0 through the 0xCF8/0xCFC ports (256 bytes per
/// function).
#[derive(Debug)]
pub struct LegacyPorts {
    _private: (),
}

impl LegacyPorts {
    /// Config space access through the ports.
    ///
    /// # Safety
    ///
    /// The code must run with I/O privilege for ports 0xCF8 and 0xCFC on a
    /// machine whose host bridge implements configuration mechanism #1,
    /// and while the value lives nothing else may use those ports: every
    /// access is an address write followed by a data access, and another
    /// user in between would redirect it.
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

impl PciConfig for LegacyPorts {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        let Some(address) = legacy_address(sbdf, offset) else {
            return !0;
        };
        // SAFETY: `new`'s contract gives this value the port pair; selecting
        // a config dword and reading it has no other effect.
        unsafe {
            outl(ADDRESS_PORT, address);
            inl(DATA_PORT)
        }
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        let Some(address) = legacy_address(sbdf, offset) else {
            return;
        };
        // SAFETY: as for `read32`; the data write goes to the selected
        // function's config space only.
        unsafe {
            outl(ADDRESS_PORT, address);
            outl(DATA_PORT, value);
        }
    }

    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        let Some(address) = legacy_address(sbdf, offset & !3) else {
            return;
        };
        let port = DATA_PORT + (offset & 3);
        // SAFETY: as for `write32`; a narrower access to 0xCFC-0xCFF
        // writes those bytes of the selected dword only.
        unsafe {
            outl(ADDRESS_PORT, address);
            match size {
                1 => outb(port, value as u8),
                2 => outw(port, value as u16),
                _ => outl(port, value),
            }
        }
    }

    fn config_size(&self, sbdf: Sbdf) -> u16 {
        if sbdf.seg == 0 {
            LEGACY_CONFIG_SIZE
        } else {
            0
        }
    }
}

/// Writes a dword to an I/O port.
///
/// # Safety
///
/// The caller must have I/O privilege and know what the port does.
#[cfg(target_arch = "x86_64")]
unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller vouches for the port; `out` touches no memory,
    // stack or flags.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value,
            options(nomem, nostack, preserves_flags));
    }
}

/// Writes a byte to an I/O port.
///
/// # Safety
///
/// As for [`outl`].
#[cfg(target_arch = "x86_64")]
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: as for `outl`.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value,
            options(nomem, nostack, preserves_flags));
    }
}

/// Writes a word to an I/O port.
///
/// # Safety
///
/// As for [`outl`].
#[cfg(target_arch = "x86_64")]
unsafe fn outw(port: u16, value: u16) {
    // SAFETY: as for `outl`.
    unsafe {
        core::arch::asm!("out dx, ax", in("dx") port, in("ax") value,
            options(nomem, nostack, preserves_flags));
    }
}

/// Reads a dword from an I/O port.
///
/// # Safety
///
/// The caller must have I/O privilege and know what the port does.
#[cfg(target_arch = "x86_64")]
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller vouches for the port; `in` touches no memory,
    // stack or flags.
    unsafe {
        core::arch::asm!("in eax, dx", out("eax") value, in("dx") port,
            options(nomem, nostack, preserves_flags));
    }
    value
}

/// Elsewhere there are no ports: writes vanish.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn outl(_port: u16, _value: u32) {}

/// Elsewhere there are no ports: writes vanish.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn outb(_port: u16, _value: u8) {}

/// Elsewhere there are no ports: writes vanish.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn outw(_port: u16, _value: u16) {}

/// Elsewhere there are no ports: reads float high.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn inl(_port: u16) -> u32 {
    !0
}
