//! The debug registers of a PV vCPU (`set_debugreg`, `get_debugreg`, and
//! `mov %dr` emulated after its #GP), checked as Xen's `set_debugreg`
//! checks them. The values are kept for the guest to read back; the
//! breakpoints are not armed in the hardware.

use super::abi::va;
use crate::evtchn::Errno;

/// DR0-DR7 (DR4 and DR5 alias DR6 and DR7, as with CR4.DE clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugRegs(pub [u64; 8]);

impl Default for DebugRegs {
    /// The architectural reset values: DR6's and DR7's reserved bits.
    fn default() -> Self {
        Self([0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400])
    }
}

impl DebugRegs {
    /// Sets `reg`: DR0-3 take canonical addresses outside the
    /// hypervisor's range (-EPERM), DR6 and DR7 32-bit values (-EINVAL),
    /// DR7 not GD (-EPERM); another register is -ENODEV.
    pub fn set(&mut self, reg: u64, value: u64) -> Result<(), Errno> {
        match reg {
            0..=3 => {
                let hole = (va::HYPERVISOR_VIRT_START..va::HYPERVISOR_VIRT_END).contains(&value);
                if !va::canonical(value) || hole {
                    return Err(Errno::Perm);
                }
                self.0[reg as usize] = value;
            }
            4 | 6 => {
                if value >> 32 != 0 {
                    return Err(Errno::Inval);
                }
                self.0[6] = value | 0xffff_0ff0;
            }
            5 | 7 => {
                if value >> 32 != 0 {
                    return Err(Errno::Inval);
                }
                if value & (1 << 13) != 0 {
                    return Err(Errno::Perm);
                }
                self.0[7] = value | 0x400;
            }
            _ => return Err(Errno::NoDev),
        }
        Ok(())
    }

    /// Reads `reg` (-ENODEV beyond DR7).
    pub fn get(&self, reg: u64) -> Result<u64, Errno> {
        match reg {
            0..=3 | 6 | 7 => Ok(self.0[reg as usize]),
            4 => Ok(self.0[6]),
            5 => Ok(self.0[7]),
            _ => Err(Errno::NoDev),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_canonical_and_outside_the_hypervisors_range() {
        let mut d = DebugRegs::default();
        assert_eq!(d.set(0, 0x40_1000), Ok(()));
        assert_eq!(d.set(3, 0xffff_ffff_8100_0000), Ok(()));
        assert_eq!(d.set(1, 0x8000_0000_0000), Err(Errno::Perm));
        assert_eq!(
            d.set(2, va::HYPERVISOR_VIRT_START + 0x1000),
            Err(Errno::Perm)
        );
        assert_eq!(
            (d.get(0), d.get(3)),
            (Ok(0x40_1000), Ok(0xffff_ffff_8100_0000))
        );
        // The refused ones kept their values.
        assert_eq!((d.get(1), d.get(2)), (Ok(0), Ok(0)));
    }

    #[test]
    fn dr6_and_dr7_are_32_bit_keep_their_fixed_bits_and_alias_dr4_dr5() {
        let mut d = DebugRegs::default();
        assert_eq!(d.get(6), Ok(0xffff_0ff0));
        assert_eq!(d.get(7), Ok(0x400));
        assert_eq!(d.set(7, 1), Ok(()));
        assert_eq!(d.get(7), Ok(0x401));
        assert_eq!(d.get(5), Ok(0x401));
        assert_eq!(d.set(4, 0x4000), Ok(()));
        assert_eq!(d.get(6), Ok(0xffff_4ff0));
        assert_eq!(d.set(6, 1 << 32), Err(Errno::Inval));
        assert_eq!(d.set(5, 1 << 32), Err(Errno::Inval));
        // DR7.GD: -EPERM, nothing changed.
        assert_eq!(d.set(7, 1 << 13), Err(Errno::Perm));
        assert_eq!(d.get(7), Ok(0x401));
        assert_eq!(d.set(8, 0), Err(Errno::NoDev));
        assert_eq!(d.get(8), Err(Errno::NoDev));
    }
}
