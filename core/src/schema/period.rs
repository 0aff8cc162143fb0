//! Reporting periods (year, quarter, month, ISO week, day) in China Standard Time.

use std::fmt;
use std::str::FromStr;

use super::Millis;

/// A reporting period. Keys in documents: `2026`, `2026-Q1`, `2026-03`, `2026-W09`
/// (ISO week), `2026-03-15` (a day). Periods are in China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A calendar year.
    Year(i32),
    /// A quarter, 1 to 4.
    Quarter(i32, u32),
    /// A month, 1 to 12.
    Month(i32, u32),
    /// An ISO week, 1 to 53.
    Week(i32, u32),
    /// A single day.
    Day(i32, u32, u32),
}

/// A period key that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed period {0:?}: expected YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD")]
pub struct BadPeriod(pub String);

impl FromStr for Period {
    type Err = BadPeriod;
    fn from_str(s: &str) -> Result<Self, BadPeriod> {
        use chrono::NaiveDate;
        let bad = || BadPeriod(s.to_string());
        let year = |t: &str| -> Result<i32, BadPeriod> {
            if t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let num = |t: &str, len: usize, lo: u32, hi: u32| -> Result<u32, BadPeriod> {
            if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u32 = t.parse().map_err(|_| bad())?;
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(bad())
            }
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            [y] => Ok(Period::Year(year(y)?)),
            [y, q] if q.starts_with('Q') => Ok(Period::Quarter(year(y)?, num(&q[1..], 1, 1, 4)?)),
            [y, w] if w.starts_with('W') => {
                let y = year(y)?;
                let w = num(&w[1..], 2, 1, 53)?;
                NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).ok_or_else(bad)?;
                Ok(Period::Week(y, w))
            }
            [y, m] => Ok(Period::Month(year(y)?, num(m, 2, 1, 12)?)),
            [y, m, d] => {
                let (y, m, d) = (year(y)?, num(m, 2, 1, 12)?, num(d, 2, 1, 31)?);
                NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)?;
                Ok(Period::Day(y, m, d))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Week(y, w) => write!(f, "{y:04}-W{w:02}"),
            Period::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
        }
    }
}

impl Period {
    /// The half-open range `[start, end)` of the period in UTC milliseconds, with the
    /// period's boundaries at midnight China Standard Time (UTC+8, no daylight saving).
    pub fn range_millis(&self) -> (Millis, Millis) {
        use chrono::{Days, Months, NaiveDate};
        let (start, end): (NaiveDate, NaiveDate) = match *self {
            Period::Year(y) => {
                let s = NaiveDate::from_ymd_opt(y, 1, 1).expect("valid year");
                (s, s + Months::new(12))
            }
            Period::Quarter(y, q) => {
                let s = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1).expect("valid quarter");
                (s, s + Months::new(3))
            }
            Period::Month(y, m) => {
                let s = NaiveDate::from_ymd_opt(y, m, 1).expect("valid month");
                (s, s + Months::new(1))
            }
            Period::Week(y, w) => {
                let s = NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).expect("valid week");
                (s, s + Days::new(7))
            }
            Period::Day(y, m, d) => {
                let s = NaiveDate::from_ymd_opt(y, m, d).expect("valid day");
                (s, s + Days::new(1))
            }
        };
        (
            crate::time::cst_midnight(start),
            crate::time::cst_midnight(end),
        )
    }

    /// Whether `t` (UTC milliseconds) falls in this period.
    pub fn contains(&self, t: Millis) -> bool {
        let (s, e) = self.range_millis();
        s <= t && t < e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::month_key;

    #[test]
    fn periods_parse_and_cover_cst_days() {
        for key in ["2026", "2026-Q3", "2026-03", "2026-W09", "2026-02-28"] {
            assert_eq!(key.parse::<Period>().unwrap().to_string(), key);
        }
        for bad in [
            "26",
            "2026-13",
            "2026-Q5",
            "2026-W54",
            "2026-02-30",
            "2026-3",
            "x",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad} parsed");
        }
        // 2026-03-01 00:00 CST is 2026-02-28 16:00 UTC.
        let (start, end) = "2026-03".parse::<Period>().unwrap().range_millis();
        assert_eq!(start, 1_772_294_400_000);
        assert_eq!(end - start, 31 * 86_400_000);
        assert_eq!(month_key(start), "2026-03");
        assert_eq!(month_key(start - 1), "2026-02");
        // Any i64 is a month, however absurd, not a panic.
        assert!(month_key(i64::MAX).ends_with("-12"));
        assert!(month_key(i64::MIN).ends_with("-01"));
    }

    #[test]
    fn periods_on_former_daylight_saving_dates_start_at_16_00_utc() {
        // Asia/Shanghai skipped 1940-06-01 00:00 (DST); CST (UTC+8) does not.
        let day = |y, m, d| Period::Day(y, m, d).range_millis();
        let utc = |y, m, d, h| {
            chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        assert_eq!(day(1940, 6, 1), (utc(1940, 5, 31, 16), utc(1940, 6, 1, 16)));
        assert_eq!(day(1986, 5, 4), (utc(1986, 5, 3, 16), utc(1986, 5, 4, 16)));
        assert_eq!(
            day(1991, 4, 14),
            (utc(1991, 4, 13, 16), utc(1991, 4, 14, 16))
        );
        let (s, e) = Period::Month(1940, 6).range_millis();
        assert_eq!((s, e), (utc(1940, 5, 31, 16), utc(1940, 6, 30, 16)));
        assert_eq!(month_key(s), "1940-06");
        assert_eq!(month_key(s - 1), "1940-05");
        let (s, e) = Period::Year(1946).range_millis();
        assert_eq!((s, e), (utc(1945, 12, 31, 16), utc(1946, 12, 31, 16)));
        assert!(
            Period::Week(1940, 23).range_millis().0 < Period::Quarter(1949, 2).range_millis().0
        );
    }
}
