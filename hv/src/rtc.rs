//! The CMOS real-time clock's registers as a date, and dates as seconds
//! since 1970-01-01 00:00 UTC.
//!
//! The RTC (MC146818 and its descendants) keeps seconds (register 0x00),
//! minutes (0x02), hours (0x04), day of month (0x07), month (0x08) and the
//! year within the century (0x09), in BCD unless status register B (0x0B)
//! has its DM bit set, with hours in 12-hour form (bit 7 = PM) unless B's
//! 24/12 bit is set. ACPI's FADT may name a register holding the century.
//! The hardware access is in `arch::time`; this is the decoding.

use core::fmt;

/// Status register B: the date is binary, not BCD.
pub const STATUS_B_BINARY: u8 = 1 << 2;
/// Status register B: hours run 0-23 (else 1-12 with bit 7 for PM).
pub const STATUS_B_24H: u8 = 1 << 1;
/// Hours register in 12-hour mode: the time is after noon.
const HOUR_PM: u8 = 1 << 7;

/// The raw time registers, as read from the RTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcRegs {
    /// Register 0x00.
    pub sec: u8,
    /// Register 0x02.
    pub min: u8,
    /// Register 0x04.
    pub hour: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09: the year within the century.
    pub year: u8,
    /// The FADT's century register, when the platform has one.
    pub century: Option<u8>,
    /// Status register B (0x0B).
    pub status_b: u8,
}

/// A calendar date and time of day, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year, e.g. 2026.
    pub year: u32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub min: u32,
    /// 0-59.
    pub sec: u32,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.min, self.sec
        )
    }
}

fn from_bcd(v: u8) -> Option<u32> {
    let (hi, lo) = (v >> 4, v & 0xf);
    (hi < 10 && lo < 10).then(|| u32::from(hi) * 10 + u32::from(lo))
}

/// Decodes the registers; `None` if a field is not a valid BCD digit pair
/// or out of range (a dead or uninitialised RTC). Without a century
/// register, years 70-99 are the 1900s and 00-69 the 2000s.
pub fn decode(r: &RtcRegs) -> Option<DateTime> {
    let binary = r.status_b & STATUS_B_BINARY != 0;
    let num = |v: u8| {
        if binary {
            Some(u32::from(v))
        } else {
            from_bcd(v)
        }
    };
    let pm = r.status_b & STATUS_B_24H == 0 && r.hour & HOUR_PM != 0;
    let mut hour = num(if r.status_b & STATUS_B_24H == 0 {
        r.hour & !HOUR_PM
    } else {
        r.hour
    })?;
    if r.status_b & STATUS_B_24H == 0 {
        // 12 AM is midnight, 12 PM noon.
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let yy = num(r.year)?;
    let year = match r.century {
        Some(c) => num(c)? * 100 + yy,
        None if yy >= 70 => 1900 + yy,
        None => 2000 + yy,
    };
    let t = DateTime {
        year,
        month: num(r.month)?,
        day: num(r.day)?,
        hour,
        min: num(r.min)?,
        sec: num(r.sec)?,
    };
    epoch_secs(&t).map(|_| t)
}

/// Reads the RTC consistently: waits for update-in-progress (`uip`,
/// status A bit 7) to clear, at most `max_polls` reads each time, and
/// takes snapshots until two in a row agree (an update between the two
/// shows as a difference). `None` if the RTC stays busy or never settles.
pub fn read_consistent(
    mut uip: impl FnMut() -> bool,
    mut snapshot: impl FnMut() -> RtcRegs,
    max_polls: u32,
) -> Option<RtcRegs> {
    let mut prev: Option<RtcRegs> = None;
    for _ in 0..8 {
        let mut polls = 0u32;
        while uip() {
            polls += 1;
            if polls >= max_polls {
                return None;
            }
        }
        let now = snapshot();
        if prev == Some(now) {
            return Some(now);
        }
        prev = Some(now);
    }
    None
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the first of March of `year` (a year counted
/// from March, so the leap day is the last day of the year before).
fn days_to_march_first(year: u32) -> i64 {
    let y = i64::from(year);
    let leaps = |y: i64| y / 4 - y / 100 + y / 400;
    // Days from 0000-03-01 to y-03-01, minus those to 1970-03-01, plus
    // the 59 days from 1970-01-01 to 1970-03-01.
    (365 * y + leaps(y)) - (365 * 1970 + leaps(1970)) + 59
}

/// Seconds since 1970-01-01 00:00:00 UTC; `None` for an invalid date or
/// one before 1970.
pub fn epoch_secs(t: &DateTime) -> Option<u64> {
    if !(1970..=9999).contains(&t.year)
        || !(1..=12).contains(&t.month)
        || t.day < 1
        || t.day > days_in_month(t.year, t.month)
        || t.hour > 23
        || t.min > 59
        || t.sec > 59
    {
        return None;
    }
    // Count from March so February's length only matters at the end.
    let (y, m) = if t.month >= 3 {
        (t.year, t.month - 3)
    } else {
        (t.year - 1, t.month + 9)
    };
    // Days before month m (0 = March) of a March-based year: the 153-day
    // five-month cycle 31,30,31,30,31.
    let before = (153 * m + 2) / 5;
    let days = days_to_march_first(y) + i64::from(before) + i64::from(t.day) - 1;
    let secs = days * 86_400 + i64::from(t.hour * 3600 + t.min * 60 + t.sec);
    u64::try_from(secs).ok()
}

/// The date and time for seconds since 1970-01-01 00:00:00 UTC (years
/// past 9999 are not expected and come out as years past 9999).
pub fn from_epoch_secs(secs: u64) -> DateTime {
    let days = secs / 86_400;
    let rem = (secs % 86_400) as u32;
    let mut year = 1970 + (days / 366) as u32;
    // Walk forward from a year that cannot be past the answer.
    while let Some(next) = year_start_day(year + 1) {
        if next > days {
            break;
        }
        year += 1;
    }
    let mut day_of_year = days - year_start_day(year).unwrap_or(0);
    let mut month = 1;
    while day_of_year >= u64::from(days_in_month(year, month)) {
        day_of_year -= u64::from(days_in_month(year, month));
        month += 1;
    }
    DateTime {
        year,
        month,
        day: day_of_year as u32 + 1,
        hour: rem / 3600,
        min: rem / 60 % 60,
        sec: rem % 60,
    }
}

fn year_start_day(year: u32) -> Option<u64> {
    let d = DateTime {
        year,
        month: 1,
        day: 1,
        hour: 0,
        min: 0,
        sec: 0,
    };
    epoch_secs(&d).map(|s| s / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dt(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            min,
            sec,
        }
    }

    #[test]
    fn known_epochs() {
        assert_eq!(epoch_secs(&dt(1970, 1, 1, 0, 0, 0)), Some(0));
        assert_eq!(epoch_secs(&dt(2000, 3, 1, 0, 0, 0)), Some(951_868_800));
        assert_eq!(epoch_secs(&dt(2038, 1, 19, 3, 14, 8)), Some(1 << 31));
        assert_eq!(epoch_secs(&dt(2024, 2, 29, 12, 0, 0)), Some(1_709_208_000));
        assert_eq!(epoch_secs(&dt(2106, 2, 7, 6, 28, 16)), Some(1 << 32));
    }

    #[test]
    fn invalid_dates_are_refused() {
        assert_eq!(epoch_secs(&dt(2023, 2, 29, 0, 0, 0)), None);
        assert_eq!(epoch_secs(&dt(1900, 2, 28, 0, 0, 0)), None);
        assert_eq!(epoch_secs(&dt(2026, 13, 1, 0, 0, 0)), None);
        assert_eq!(epoch_secs(&dt(2026, 4, 31, 0, 0, 0)), None);
        assert_eq!(epoch_secs(&dt(2026, 4, 0, 0, 0, 0)), None);
        assert_eq!(epoch_secs(&dt(2026, 4, 1, 24, 0, 0)), None);
    }

    #[test]
    fn bcd_24_hour_registers() {
        let r = RtcRegs {
            sec: 0x59,
            min: 0x07,
            hour: 0x23,
            day: 0x24,
            month: 0x11,
            year: 0x26,
            century: None,
            status_b: STATUS_B_24H,
        };
        assert_eq!(decode(&r), Some(dt(2026, 11, 24, 23, 7, 59)));
        assert_eq!(
            decode(&r).map(|t| t.to_string()),
            Some("2026-11-24 23:07:59 UTC".into())
        );
    }

    #[test]
    fn binary_12_hour_registers_with_century() {
        let mut r = RtcRegs {
            sec: 5,
            min: 6,
            hour: 12 | HOUR_PM,
            day: 1,
            month: 1,
            year: 99,
            century: Some(19),
            status_b: STATUS_B_BINARY,
        };
        assert_eq!(decode(&r), Some(dt(1999, 1, 1, 12, 6, 5)));
        r.hour = 12;
        assert_eq!(decode(&r).map(|t| t.hour), Some(0));
        r.hour = 1 | HOUR_PM;
        assert_eq!(decode(&r).map(|t| t.hour), Some(13));
        r.hour = 0;
        assert_eq!(decode(&r), None);
    }

    #[test]
    fn garbage_registers_are_refused() {
        let r = RtcRegs {
            sec: 0xff,
            min: 0xff,
            hour: 0xff,
            day: 0xff,
            month: 0xff,
            year: 0xff,
            century: None,
            status_b: STATUS_B_24H,
        };
        assert_eq!(decode(&r), None);
        let r = RtcRegs {
            sec: 0x1a,
            ..Default::default()
        };
        assert_eq!(decode(&r), None);
    }

    #[test]
    fn two_digit_years_pivot_at_1970() {
        let r = RtcRegs {
            day: 1,
            month: 1,
            hour: 0,
            year: 0x69,
            status_b: STATUS_B_24H,
            ..Default::default()
        };
        assert_eq!(decode(&r).map(|t| t.year), Some(2069));
        let r = RtcRegs { year: 0x70, ..r };
        assert_eq!(decode(&r).map(|t| t.year), Some(1970));
    }

    #[test]
    fn read_waits_for_the_update_and_two_agreeing_snapshots() {
        let mut busy = [true, true, false, false, false, false].into_iter();
        let mut secs = [0x58u8, 0x59, 0x59].into_iter();
        let got = read_consistent(
            || busy.next().unwrap_or(false),
            || RtcRegs {
                sec: secs.next().unwrap_or(0),
                ..Default::default()
            },
            100,
        );
        assert_eq!(got.map(|r| r.sec), Some(0x59));
    }

    #[test]
    fn a_stuck_update_or_a_clock_that_never_settles_gives_none() {
        assert_eq!(read_consistent(|| true, RtcRegs::default, 1000), None);
        let mut n = 0u8;
        let got = read_consistent(
            || false,
            || {
                n = n.wrapping_add(1);
                RtcRegs {
                    sec: n,
                    ..Default::default()
                }
            },
            10,
        );
        assert_eq!(got, None);
    }

    proptest! {
        #[test]
        fn epoch_round_trips(secs in 0u64..253_402_300_800) {
            let t = from_epoch_secs(secs);
            prop_assert_eq!(epoch_secs(&t), Some(secs));
        }

        #[test]
        fn consecutive_days_are_a_day_apart(secs in 0u64..253_402_214_400) {
            let a = from_epoch_secs(secs);
            let b = from_epoch_secs(secs + 86_400);
            prop_assert_eq!(epoch_secs(&b).unwrap() - epoch_secs(&a).unwrap(), 86_400);
        }
    }
}
