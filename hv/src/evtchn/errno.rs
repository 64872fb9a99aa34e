//! Xen's errno values (`xen/include/public/errno.h`); a hypercall returns
//! the negated value.

/// An error a hypercall reports to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted.
    Perm = 1,
    /// No such file or directory (here: no such vCPU).
    NoEnt = 2,
    /// No such process (here: no such domain).
    Srch = 3,
    /// No such device or address (here: a frame the domain does not own).
    NxIo = 6,
    /// Argument list too long (here: too many buffers).
    TooBig = 7,
    /// Try again.
    Again = 11,
    /// Out of memory.
    NoMem = 12,
    /// Permission denied.
    Acces = 13,
    /// Bad address.
    Fault = 14,
    /// Device or resource busy.
    Busy = 16,
    /// Exists.
    Exist = 17,
    /// No such device (here: a debug register that does not exist).
    NoDev = 19,
    /// Invalid argument.
    Inval = 22,
    /// No space left (here: no free port).
    NoSpc = 28,
    /// Function not implemented.
    NoSys = 38,
    /// Timer expired (a deadline already in the past).
    Time = 62,
    /// Operation not supported.
    OpNotSupp = 95,
}

impl Errno {
    /// The positive errno value.
    pub const fn value(self) -> i32 {
        self as i32
    }

    /// What the hypercall returns in `rax`: the negated value.
    pub const fn to_ret(self) -> i64 {
        -(self as i64)
    }
}
