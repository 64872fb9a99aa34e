//! The pvclock arithmetic and the hypervisor's side of Xen's time
//! structures.
//!
//! A guest turns the TSC into nanoseconds with the parameters of its
//! `vcpu_time_info` (`xen/include/public/xen.h`):
//!
//! ```text
//! delta  = tsc - tsc_timestamp
//! delta  = tsc_shift >= 0 ? delta << tsc_shift : delta >> -tsc_shift
//! system = system_time + (delta * tsc_to_system_mul) >> 32
//! ```
//!
//! [`scale_for`] picks `tsc_to_system_mul` and `tsc_shift` for a TSC
//! frequency, [`scale_delta`] is the formula above, and [`write_time_info`]
//! and [`write_wallclock`] fill the guest-visible structures under their
//! version counters: odd while an update is in progress, even and changed
//! once it is done, so a guest that reads the version, the fields and the
//! version again retries when the two versions differ or are odd.

use vmm_glue::xen::shared_info::VcpuTimeInfo;
use vmm_glue::xen::time::{
    Wallclock, SHARED_INFO_WC, SHARED_INFO_WC_NSEC, SHARED_INFO_WC_SEC, SHARED_INFO_WC_SEC_HI,
    VCPU_TIME_INFO_SIZE,
};

use core::mem::offset_of;

/// Nanoseconds in a second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;

/// `tsc_to_system_mul` and `tsc_shift` for a TSC running at `tsc_hz`.
///
/// The shift brings the shifted frequency into (1 GHz, 2 GHz], so the
/// multiplier is a fraction in [0.5, 1) with 31 or 32 significant bits:
/// the rate error is below 2^-31 (0.0005 ppm). A frequency of 0 is taken
/// as 1 Hz.
pub fn scale_for(tsc_hz: u64) -> (u32, i8) {
    let hz = u128::from(tsc_hz.max(1));
    let ns = u128::from(NSEC_PER_SEC);
    // Find shift with 1e9 < hz * 2^shift <= 2e9.
    let mut shift: i32 = 0;
    while scaled(hz, shift) <= ns {
        shift += 1;
    }
    while scaled(hz, shift - 1) > ns {
        shift -= 1;
    }
    // mul = round(1e9 * 2^32 / (hz * 2^shift)); 32 - shift is in 2..=66,
    // so the numerator fits easily in 128 bits.
    let num = ns << (32 - shift);
    let mul = (num + hz / 2) / hz;
    (u32::try_from(mul).unwrap_or(u32::MAX), shift as i8)
}

/// `hz * 2^shift` for the search in [`scale_for`], exact for the shifts it
/// tries (`hz` < 2^64, shift in -64..=31); a right shift rounds up so that
/// "greater than 1 GHz" stays exact.
fn scaled(hz: u128, shift: i32) -> u128 {
    if shift >= 0 {
        hz << shift
    } else {
        let s = shift.unsigned_abs();
        (hz >> s) + u128::from(hz & ((1u128 << s) - 1) != 0)
    }
}

/// Nanoseconds for a TSC delta: `((delta << shift or >> -shift) * mul) >> 32`,
/// computed without wrapping and saturated at `u64::MAX`.
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = u128::from(delta);
    let d = if shift >= 0 {
        d << shift.unsigned_abs().min(64)
    } else {
        d >> shift.unsigned_abs().min(64)
    };
    let ns = (d * u128::from(mul)) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The smallest TSC delta (within one TSC tick for negative shifts) whose
/// [`scale_delta`] is at least `ns`: the inverse used for deadlines.
/// Saturates at `u64::MAX`; a zero multiplier gives `u64::MAX`.
pub fn unscale_delta(ns: u64, mul: u32, shift: i8) -> u64 {
    if mul == 0 {
        return u64::MAX;
    }
    let m = u128::from(mul);
    // Shifted ticks t with (t * mul) >> 32 >= ns.
    let t = (u128::from(ns) << 32).div_ceil(m);
    let s = shift.unsigned_abs().min(64);
    let d = if shift >= 0 {
        t.div_ceil(1u128 << s)
    } else {
        t << s
    };
    u64::try_from(d).unwrap_or(u64::MAX)
}

/// Next even version after `old`, with the odd value to hold during the
/// update. A guest may have scribbled an odd value into the page; the
/// update still ends even and different.
fn versions(old: u32) -> (u32, u32) {
    let odd = old.wrapping_add(1) | 1;
    (odd, odd.wrapping_add(1))
}

use crate::le::get_u32;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Fills a `struct vcpu_time_info` (`buf`, at least 32 bytes; the caller
/// slices it out of `vcpu_info` at `VCPU_INFO_TIME`): version made odd,
/// the fields, version made even (old + 2 when the old one was even).
///
/// The guest's vCPU does not run while this runs (one CPU), so plain
/// stores in this order are what it observes. A buffer shorter than the
/// structure is left untouched.
pub fn write_time_info(buf: &mut [u8], tsc: u64, system_ns: u64, mul: u32, shift: i8, flags: u8) {
    if buf.len() < VCPU_TIME_INFO_SIZE {
        return;
    }
    let (odd, even) = versions(get_u32(buf, 0));
    put(buf, offset_of!(VcpuTimeInfo, version), &odd.to_le_bytes());
    put(buf, offset_of!(VcpuTimeInfo, pad0), &0u32.to_le_bytes());
    put(
        buf,
        offset_of!(VcpuTimeInfo, tsc_timestamp),
        &tsc.to_le_bytes(),
    );
    put(
        buf,
        offset_of!(VcpuTimeInfo, system_time),
        &system_ns.to_le_bytes(),
    );
    put(
        buf,
        offset_of!(VcpuTimeInfo, tsc_to_system_mul),
        &mul.to_le_bytes(),
    );
    put(
        buf,
        offset_of!(VcpuTimeInfo, tsc_shift),
        &shift.to_le_bytes(),
    );
    put(buf, offset_of!(VcpuTimeInfo, flags), &[flags]);
    put(buf, offset_of!(VcpuTimeInfo, pad1), &[0, 0]);
    put(buf, offset_of!(VcpuTimeInfo, version), &even.to_le_bytes());
}

/// Fills the wallclock of a `shared_info` page (`shared_info` is the whole
/// page, or at least up to the end of `wc_sec_hi`): the time of day at
/// system time 0 as seconds since 1970 and nanoseconds, under
/// `wc_version` with the same protocol as [`write_time_info`]. A buffer
/// that does not reach `wc_sec_hi` is left untouched; `nsec` is reduced
/// below one second, carrying into `sec`.
pub fn write_wallclock(shared_info: &mut [u8], sec: u64, nsec: u32) {
    if shared_info.len() < SHARED_INFO_WC + core::mem::size_of::<Wallclock>() {
        return;
    }
    let sec = sec.saturating_add(u64::from(nsec) / NSEC_PER_SEC);
    let nsec = (u64::from(nsec) % NSEC_PER_SEC) as u32;
    let (odd, even) = versions(get_u32(shared_info, SHARED_INFO_WC));
    put(shared_info, SHARED_INFO_WC, &odd.to_le_bytes());
    put(shared_info, SHARED_INFO_WC_SEC, &(sec as u32).to_le_bytes());
    put(shared_info, SHARED_INFO_WC_NSEC, &nsec.to_le_bytes());
    put(
        shared_info,
        SHARED_INFO_WC_SEC_HI,
        &((sec >> 32) as u32).to_le_bytes(),
    );
    put(shared_info, SHARED_INFO_WC, &even.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vmm_glue::xen::shared_info::VCPU_INFO_SIZE;
    use vmm_glue::xen::time::{VCPU_INFO_TIME, XEN_PVCLOCK_TSC_STABLE_BIT};

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// What a guest does (Linux `pvclock_clocksource_read`, Xen's
    /// `read_time_info` in its own words): version, fields, version; retry
    /// while odd or changed; then system_time + scaled delta.
    fn guest_read(b: &[u8], tsc_now: u64) -> Option<(u64, u8)> {
        let v1 = get_u32(b, 0);
        let stamp = u64_at(b, 8);
        let system = u64_at(b, 16);
        let mul = get_u32(b, 24);
        let shift = b[28] as i8;
        let flags = b[29];
        let v2 = get_u32(b, 0);
        if v1 & 1 != 0 || v1 != v2 {
            return None;
        }
        let mut delta = tsc_now - stamp;
        if shift >= 0 {
            delta <<= shift;
        } else {
            delta >>= -shift;
        }
        let ns = ((u128::from(delta) * u128::from(mul)) >> 32) as u64;
        Some((system + ns, flags))
    }

    fn rate_error_ppm(hz: u64) -> f64 {
        let (mul, shift) = scale_for(hz);
        // Ten seconds of ticks, so the truncation of the final >> 32 (at
        // most 1 ns) does not dominate.
        let ns = scale_delta(hz * 10, mul, shift) as f64;
        (ns - 1e10).abs() / 1e10 * 1e6
    }

    #[test]
    fn scale_is_within_a_ppm_from_1_mhz_to_10_ghz() {
        let mut hz = 1_000_000u64;
        while hz <= 10_000_000_000 {
            for f in [hz, hz + 1, hz * 3 / 2 + 7, hz * 2 - 1] {
                assert!(rate_error_ppm(f) < 1.0, "{f} Hz: {} ppm", rate_error_ppm(f));
            }
            hz *= 2;
        }
        for f in [1_000_000, 2_399_999_999, 3_000_000_000, 10_000_000_000] {
            assert!(rate_error_ppm(f) < 0.01, "{f} Hz");
        }
    }

    #[test]
    fn scale_for_known_frequencies() {
        // 1 GHz: shift 1 (2 GHz), mul 0.5.
        assert_eq!(scale_for(1_000_000_000), (1 << 31, 1));
        // 2 GHz is in (1, 2] GHz already.
        assert_eq!(scale_for(2_000_000_000), (1 << 31, 0));
        // 4 GHz: shifted right once.
        assert_eq!(scale_for(4_000_000_000), (1 << 31, -1));
        // 1 MHz: 2^10 MHz = 1.024 GHz.
        assert_eq!(scale_for(1_000_000).1, 10);
        assert_eq!(scale_for(0), scale_for(1));
    }

    #[test]
    fn multiplier_keeps_31_significant_bits_even_at_the_extremes() {
        for hz in [1, 2, 999_999_999, 1_000_000_001, u64::MAX / 3, u64::MAX] {
            let (mul, _) = scale_for(hz);
            assert!(mul >= 1 << 31, "{hz} Hz: mul {mul:#x}");
        }
    }

    #[test]
    fn a_large_delta_does_not_overflow() {
        let ten_years_s = 10 * 365 * 86_400u64;
        for hz in [1_000_000u64, 2_500_000_000, 10_000_000_000] {
            let (mul, shift) = scale_for(hz);
            let ns = scale_delta(hz * ten_years_s, mul, shift);
            let want = ten_years_s * NSEC_PER_SEC;
            assert!(ns.abs_diff(want) < want / 1_000_000, "{hz} Hz: {ns}");
        }
        let (mul, shift) = scale_for(1_000_000);
        assert_eq!(scale_delta(u64::MAX, mul, shift), u64::MAX);
        assert_eq!(scale_delta(u64::MAX, u32::MAX, 31), u64::MAX);
        assert_eq!(scale_delta(u64::MAX, u32::MAX, -128), 0);
        assert_eq!(unscale_delta(u64::MAX, 1, 30), u64::MAX);
        assert_eq!(unscale_delta(5, 0, 0), u64::MAX);
        let (mul, shift) = scale_for(2_000_000_000);
        assert_eq!(unscale_delta(0, mul, shift), 0);
    }

    proptest! {
        #[test]
        fn rate_error_below_a_ppm(hz in 1_000_000u64..=10_000_000_000) {
            prop_assert!(rate_error_ppm(hz) < 1.0);
        }

        #[test]
        fn unscale_is_the_deadline_inverse(
            hz in 1_000_000u64..=10_000_000_000,
            ns in 0u64..=1_000_000_000_000_000,
        ) {
            let (mul, shift) = scale_for(hz);
            let d = unscale_delta(ns, mul, shift);
            prop_assert!(scale_delta(d, mul, shift) >= ns);
            // Not later than needed by more than a tick's worth.
            let slack = (1u64 << shift.min(0).unsigned_abs()).max(1);
            prop_assert!(d < slack || scale_delta(d - slack, mul, shift) < ns);
        }

        #[test]
        fn guest_reads_what_was_written(
            hz in 1_000_000u64..=10_000_000_000,
            tsc in 0u64..1 << 60,
            system in 0u64..1 << 60,
            later in 0u64..1 << 40,
            old_version in any::<u32>(),
        ) {
            let (mul, shift) = scale_for(hz);
            let mut b = [0xaau8; 32];
            b[..4].copy_from_slice(&old_version.to_le_bytes());
            write_time_info(&mut b, tsc, system, mul, shift, XEN_PVCLOCK_TSC_STABLE_BIT);
            let v = get_u32(&b, 0);
            prop_assert_eq!(v & 1, 0);
            prop_assert_ne!(v, old_version);
            let (ns, flags) = guest_read(&b, tsc + later).unwrap();
            prop_assert_eq!(flags, XEN_PVCLOCK_TSC_STABLE_BIT);
            let want = system + scale_delta(later, mul, shift);
            prop_assert!(ns.abs_diff(want) <= 1);
            prop_assert_eq!(get_u32(&b, 4), 0);
            prop_assert_eq!(&b[30..32], &[0u8, 0][..]);
        }
    }

    #[test]
    fn version_goes_odd_then_old_plus_two() {
        let mut b = [0u8; 32];
        for round in 1..=3u32 {
            write_time_info(&mut b, 1, 2, 3, 4, 0);
            assert_eq!(get_u32(&b, 0), 2 * round);
        }
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        write_time_info(&mut b, 1, 2, 3, 4, 0);
        assert_eq!(get_u32(&b, 0), 2);
        let (odd, even) = versions(u32::MAX - 1);
        assert_eq!((odd, even), (u32::MAX, 0));
    }

    #[test]
    fn a_guest_reading_mid_update_retries() {
        let mut b = [0u8; 32];
        write_time_info(&mut b, 100, 5, 1 << 31, 1, 0);
        // The state a concurrent reader could see after the first store.
        let (odd, _) = versions(get_u32(&b, 0));
        b[..4].copy_from_slice(&odd.to_le_bytes());
        assert_eq!(guest_read(&b, 200), None);
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let mut b = [7u8; 31];
        write_time_info(&mut b, 1, 2, 3, 4, 5);
        assert_eq!(b, [7u8; 31]);
        let mut page = vec![7u8; SHARED_INFO_WC_SEC_HI + 3];
        write_wallclock(&mut page, 1, 2);
        assert!(page.iter().all(|&x| x == 7));
    }

    #[test]
    fn time_info_lands_in_vcpu_info_slot() {
        let mut page = vec![0u8; 4096];
        let at = 3 * VCPU_INFO_SIZE + VCPU_INFO_TIME;
        write_time_info(&mut page[at..at + 32], 0x1122, 0x3344, 0x5566, -2, 1);
        assert_eq!(u64_at(&page, at + 8), 0x1122);
        assert_eq!(u64_at(&page, at + 16), 0x3344);
        assert_eq!(get_u32(&page, at + 24), 0x5566);
        assert_eq!(page[at + 28], 0xfe);
        assert_eq!(page[at + 29], 1);
        assert!(page[..at].iter().all(|&x| x == 0));
        assert!(page[at + 32..].iter().all(|&x| x == 0));
    }

    #[test]
    fn wallclock_fields_and_version() {
        let mut page = vec![0u8; 4096];
        let sec = 0x1_2345_6789u64;
        write_wallclock(&mut page, sec, 1_500_000_000);
        assert_eq!(get_u32(&page, 0xc00), 2);
        assert_eq!(get_u32(&page, 0xc04), 0x2345_678a);
        assert_eq!(get_u32(&page, 0xc08), 500_000_000);
        assert_eq!(get_u32(&page, 0xc0c), 1);
        assert!(page[..0xc00].iter().all(|&x| x == 0));
        assert!(page[0xc10..].iter().all(|&x| x == 0));
        write_wallclock(&mut page, 5, 6);
        assert_eq!(get_u32(&page, 0xc00), 4);
        assert_eq!(get_u32(&page, 0xc0c), 0);
    }
}
