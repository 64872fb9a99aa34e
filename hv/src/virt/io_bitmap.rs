//! The port bitmap a vCPU's I/O intercepts are read from (SVM's IOPM, VMX's
//! I/O bitmaps A and B, one layout: a set bit intercepts its port), shared
//! by the vCPUs of a domain whose passed-through functions have I/O BARs.

/// A domain's port bitmap (`Vcpu::set_io_bitmap`): 12 KiB, a set bit
/// intercepts its port; every port starts intercepted.
#[derive(Debug)]
pub struct IoBitmap {
    /// The bitmap's first frame: three from the frame allocator, owned
    /// until drop (private, so that `set` writes only there).
    pa: u64,
}

impl IoBitmap {
    const FRAMES: u64 = 3;

    /// A bitmap intercepting every port; `None` when memory is short.
    pub fn new() -> Option<Self> {
        let pa = crate::mem::alloc_frames(Self::FRAMES, 4096)?;
        // SAFETY: the frames the allocator just handed over.
        unsafe { crate::arch::phys::fill_owned(pa, Self::FRAMES * 4096, 0xff) };
        Some(Self { pa })
    }

    /// The bitmap's first frame, for the CPU.
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// Intercepts `len` ports from `port` (`intercept`) or lets them
    /// through.
    pub fn set(&self, port: u16, len: u16, intercept: bool) {
        for p in u64::from(port)..u64::from(port) + u64::from(len) {
            let word = self.pa + p / 64 * 8;
            let bit = 1u64 << (p % 64);
            // SAFETY: `p` < 0x10000, so `word` is inside the first two of
            // the bitmap's own frames, 8-byte aligned.
            unsafe {
                let v = crate::arch::phys::read_owned_u64(word);
                let v = if intercept { v | bit } else { v & !bit };
                crate::arch::phys::write_owned_u64(word, v);
            }
        }
    }
}

impl Drop for IoBitmap {
    fn drop(&mut self) {
        crate::mem::free_frames(self.pa, Self::FRAMES);
    }
}
