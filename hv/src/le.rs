//! Little-endian 32-bit fields in byte buffers (shared pages, rings):
//! out-of-range offsets read 0 and are not written, so a bad offset can
//! never panic.

/// The `u32` at `off`, 0 if `buf` does not hold four bytes there.
pub fn get_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = buf.get(off..off.saturating_add(4)) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

/// Stores `value` at `off` if `buf` holds four bytes there.
pub fn put_u32(buf: &mut [u8], off: usize, value: u32) {
    if let Some(dst) = buf.get_mut(off..off.saturating_add(4)) {
        dst.copy_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_little_endian() {
        let mut b = [0u8; 8];
        put_u32(&mut b, 2, 0x1122_3344);
        assert_eq!(b, [0, 0, 0x44, 0x33, 0x22, 0x11, 0, 0]);
        assert_eq!(get_u32(&b, 2), 0x1122_3344);
    }

    #[test]
    fn out_of_range_reads_zero_and_writes_nothing() {
        let mut b = [0xffu8; 6];
        assert_eq!(get_u32(&b, 3), 0);
        assert_eq!(get_u32(&b, usize::MAX), 0);
        put_u32(&mut b, 4, 0);
        put_u32(&mut b, usize::MAX, 0);
        assert_eq!(b, [0xff; 6]);
    }
}
