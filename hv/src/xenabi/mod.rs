//! The argument structures of Xen's hypercalls as a guest lays them out in
//! its memory, decoded into small typed structs and encoded back. Offsets
//! and sizes are those of Xen's public headers (`memory.h`,
//! `hvm/hvm_op.h`, `event_channel.h`, `sched.h`, `grant_table.h`,
//! `vcpu.h`, `hvm/hvm_vcpu.h`) for a 64-bit guest ([`Abi::X64`]) and for a
//! 32-bit one ([`Abi::Compat`]: pointers, `xen_ulong_t` and `xen_pfn_t`
//! are 4 bytes and 8-byte fields are 4-byte aligned).
//!
//! A handler copies exactly `T::size(abi)` bytes from the guest, decodes
//! them, sets the OUT fields of the decoded value and encodes it into the
//! same bytes before copying them back: `encode` writes every field and
//! leaves padding as the guest wrote it, so the guest sees only its OUT
//! fields change.

pub mod control;
mod structs;
pub mod vcpu_ctx;

#[cfg(test)]
mod tests;

pub use structs::*;

/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `idx` bit of `XENMAPSPACE_grant_table` asking for a v2 status frame.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 1 << 31;

impl AddToPhysmap {
    /// Whether `space` and `idx` name something the hypervisor can place:
    /// the shared info page (index 0) or a grant table frame (a 32-bit
    /// index, not a v2 status frame). Checked before anything is placed,
    /// so that a request that fails leaves the guest's memory as it was.
    pub fn mappable(&self) -> bool {
        match self.space {
            XENMAPSPACE_SHARED_INFO => self.idx == 0,
            XENMAPSPACE_GRANT_TABLE => {
                self.idx & XENMAPIDX_GRANT_TABLE_STATUS == 0 && u32::try_from(self.idx).is_ok()
            }
            _ => false,
        }
    }
}

/// Which layout the guest's structures have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// A 64-bit (long mode) guest.
    X64,
    /// A 32-bit guest: Xen's "compat" layouts.
    Compat,
}

impl Abi {
    /// The guest's ABI from whether it runs in long mode.
    pub const fn from_long_mode(long: bool) -> Self {
        if long {
            Abi::X64
        } else {
            Abi::Compat
        }
    }

    /// Bytes of a `xen_ulong_t`, `xen_pfn_t` or guest handle.
    pub const fn ulong_size(self) -> usize {
        match self {
            Abi::X64 => 8,
            Abi::Compat => 4,
        }
    }
}

/// Fewer bytes than the structure's size were given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short {
    /// The structure's size in this ABI.
    pub need: usize,
    /// The bytes given.
    pub got: usize,
}

/// What every argument structure offers: its size, decoding and encoding
/// (generic code such as the fuzz target goes through this).
pub trait XenArg: Sized + Copy + Default + PartialEq + core::fmt::Debug {
    /// Bytes in guest memory.
    fn size(abi: Abi) -> usize;
    /// The fields in the first `size(abi)` bytes of `bytes`.
    fn decode(bytes: &[u8], abi: Abi) -> Result<Self, Short>;
    /// Writes every field into the first `size(abi)` bytes of `out`;
    /// padding is left as it is. `xen_ulong_t` fields keep their low 32
    /// bits in [`Abi::Compat`].
    fn encode(&self, out: &mut [u8], abi: Abi) -> Result<(), Short>;
}

/// `bytes`, cut to `need`, or [`Short`].
fn fit(bytes: &[u8], need: usize) -> Result<&[u8], Short> {
    bytes.get(..need).ok_or(Short {
        need,
        got: bytes.len(),
    })
}

/// `out`, cut to `need`, or [`Short`].
fn fit_mut(out: &mut [u8], need: usize) -> Result<&mut [u8], Short> {
    let got = out.len();
    out.get_mut(..need).ok_or(Short { need, got })
}

/// The little-endian field kinds of the structures, with the field's Rust
/// type: `Ulong` is `xen_ulong_t`, `xen_pfn_t` or a guest handle (8 bytes,
/// or 4 in compat), widened to `u64`.
pub mod wire {
    use super::Abi;

    /// One field kind.
    pub trait Kind {
        /// The decoded type.
        type T;
        /// Reads the field at `off` (0 where `b` is too short: decoders
        /// check the size first).
        fn get(b: &[u8], off: usize, abi: Abi) -> Self::T;
        /// Writes the field at `off` (nothing where `b` is too short).
        fn put(b: &mut [u8], off: usize, abi: Abi, v: Self::T);
    }

    fn get<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
        let mut a = [0u8; N];
        if let Some(s) = b.get(off..off.saturating_add(N)) {
            a.copy_from_slice(s);
        }
        a
    }

    fn put(b: &mut [u8], off: usize, v: &[u8]) {
        if let Some(s) = b.get_mut(off..off.saturating_add(v.len())) {
            s.copy_from_slice(v);
        }
    }

    macro_rules! fixed {
        ($kind:ident, $t:ty) => {
            #[doc = concat!("A `", stringify!($t), "`.")]
            #[derive(Debug)]
            pub struct $kind;
            impl Kind for $kind {
                type T = $t;
                fn get(b: &[u8], off: usize, _: Abi) -> $t {
                    <$t>::from_le_bytes(get(b, off))
                }
                fn put(b: &mut [u8], off: usize, _: Abi, v: $t) {
                    put(b, off, &v.to_le_bytes());
                }
            }
        };
    }
    fixed!(U8, u8);
    fixed!(U16, u16);
    fixed!(I16, i16);
    fixed!(U32, u32);
    fixed!(U64, u64);

    /// `xen_ulong_t`, `xen_pfn_t`, a guest handle.
    #[derive(Debug)]
    pub struct Ulong;
    impl Kind for Ulong {
        type T = u64;
        fn get(b: &[u8], off: usize, abi: Abi) -> u64 {
            match abi {
                Abi::X64 => u64::from_le_bytes(get(b, off)),
                Abi::Compat => u64::from(u32::from_le_bytes(get(b, off))),
            }
        }
        fn put(b: &mut [u8], off: usize, abi: Abi, v: u64) {
            put(b, off, &v.to_le_bytes()[..abi.ulong_size()]);
        }
    }
}

/// Defines one argument structure: its fields with their kind and offset
/// in each ABI (`x64 / compat`), its size in each ABI, `decode`, `encode`
/// and the [`XenArg`] impl.
macro_rules! xen_struct {
    (
        $(#[$sm:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident : $kind:ident @ $x64:literal / $compat:literal ),* $(,)?
        }
        size $sx64:literal / $scompat:literal;
    ) => {
        $(#[$sm])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $field: <$crate::xenabi::wire::$kind as $crate::xenabi::wire::Kind>::T, )*
        }

        impl $name {
            /// Bytes in guest memory.
            pub const fn size(abi: $crate::xenabi::Abi) -> usize {
                match abi {
                    $crate::xenabi::Abi::X64 => $sx64,
                    $crate::xenabi::Abi::Compat => $scompat,
                }
            }

            /// The fields in the first `size(abi)` bytes of `bytes`.
            pub fn decode(
                bytes: &[u8],
                abi: $crate::xenabi::Abi,
            ) -> Result<Self, $crate::xenabi::Short> {
                use $crate::xenabi::wire::Kind as _;
                #[allow(unused_variables)]
                let b = $crate::xenabi::fit(bytes, Self::size(abi))?;
                Ok(Self {
                    $( $field: $crate::xenabi::wire::$kind::get(
                        b,
                        match abi {
                            $crate::xenabi::Abi::X64 => $x64,
                            $crate::xenabi::Abi::Compat => $compat,
                        },
                        abi,
                    ), )*
                })
            }

            /// Writes every field into the first `size(abi)` bytes of
            /// `out`, leaving padding as it is.
            pub fn encode(
                &self,
                out: &mut [u8],
                abi: $crate::xenabi::Abi,
            ) -> Result<(), $crate::xenabi::Short> {
                use $crate::xenabi::wire::Kind as _;
                #[allow(unused_variables)]
                let b = $crate::xenabi::fit_mut(out, Self::size(abi))?;
                $( $crate::xenabi::wire::$kind::put(
                    b,
                    match abi {
                        $crate::xenabi::Abi::X64 => $x64,
                        $crate::xenabi::Abi::Compat => $compat,
                    },
                    abi,
                    self.$field,
                ); )*
                Ok(())
            }
        }

        impl $crate::xenabi::XenArg for $name {
            fn size(abi: $crate::xenabi::Abi) -> usize {
                Self::size(abi)
            }
            fn decode(
                bytes: &[u8],
                abi: $crate::xenabi::Abi,
            ) -> Result<Self, $crate::xenabi::Short> {
                Self::decode(bytes, abi)
            }
            fn encode(
                &self,
                out: &mut [u8],
                abi: $crate::xenabi::Abi,
            ) -> Result<(), $crate::xenabi::Short> {
                self.encode(out, abi)
            }
        }
    };
}
pub(crate) use xen_struct;
