//! Address newtypes: one per address space.

use core::fmt;

macro_rules! address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// This address plus `off`, or `None` on overflow.
            pub const fn checked_add(self, off: u64) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// The address rounded down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address!(
    /// A host-physical address.
    Hpa
);
address!(
    /// A guest-physical address (what a guest believes is physical memory).
    Gpa
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_down_clears_low_bits() {
        assert_eq!(Hpa(0x1234).align_down(0x1000), Hpa(0x1000));
        assert_eq!(Gpa(0x2000).align_down(0x1000), Gpa(0x2000));
    }

    #[test]
    fn checked_add_reports_overflow() {
        assert_eq!(Hpa(u64::MAX).checked_add(1), None);
        assert_eq!(Hpa(1).checked_add(1), Some(Hpa(2)));
    }
}
