//! Time: the one definition of China Standard Time and of "now".
//!
//! Every date in dealersync (periods, month keys, ageing in days, what the CLI prints)
//! is a calendar date in China Standard Time, UTC+8 all year. It is a fixed offset on
//! purpose: the tz database's `Asia/Shanghai` has daylight saving before 1992, so a
//! midnight like 1940-06-01 does not exist there, and a 1940s date would be a gap
//! instead of a day.
//!
//! [`now_ms`] is the one place that reads the wall clock. Nothing else in `core` calls
//! it: the engine and the domain take `now` as an argument; the server, the store and
//! the CLI read it here.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

/// The China Standard Time offset from UTC in milliseconds (+8 h).
pub const CST_OFFSET_MS: Millis = 8 * 3_600_000;

/// China Standard Time: UTC+8, no daylight saving.
pub const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The wall clock, in UTC milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// The UTC instant of midnight CST at the start of `date`.
pub fn cst_midnight(date: NaiveDate) -> Millis {
    let local = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    local.and_utc().timestamp_millis() - CST_OFFSET_MS
}

/// A UTC instant in CST, or `None` beyond chrono's calendar (about ±262,000 years).
pub fn in_cst(t: Millis) -> Option<DateTime<FixedOffset>> {
    CST.timestamp_millis_opt(t).single()
}

/// The month key (`YYYY-MM`) in China Standard Time of a UTC instant. Instants beyond
/// the calendar's range (about ±262,000 years; only a foreign client writes them) are
/// clamped to it rather than panicking.
pub fn month_key(t: Millis) -> String {
    let t = t.clamp(
        DateTime::<Utc>::MIN_UTC.timestamp_millis() + DAY_MS,
        DateTime::<Utc>::MAX_UTC.timestamp_millis() - DAY_MS,
    );
    let dt = in_cst(t).expect("clamped into chrono's range");
    format!("{:04}-{:02}", dt.year(), dt.month())
}

/// The month key (`YYYY-MM`, CST) of the month after the one `t` falls in: what a
/// carry-over run during this month prepares (docs/growth.md).
pub fn next_month_key(t: Millis) -> String {
    let this: crate::schema::Period = month_key(t).parse().expect("month_key gives a month");
    month_key(this.range_millis().1)
}

/// The CST calendar day of a UTC instant, as days since 1970-01-01 (CST).
pub fn cst_day(t: Millis) -> i64 {
    t.saturating_add(CST_OFFSET_MS).div_euclid(DAY_MS)
}

/// Whole CST calendar days from `from` to `to`: 0 on the same CST day, 1 from any time
/// on one day to any time on the next, never negative (a date in the future is 0).
pub fn cst_days_between(from: Millis, to: Millis) -> i64 {
    cst_day(to).saturating_sub(cst_day(from)).max(0)
}

/// An instant as people read it in China: `YYYY-MM-DD HH:MM` in CST.
pub fn cst_minute(t: Millis) -> String {
    in_cst(t).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// A time typed in China Standard Time that is not one: the accepted forms in the
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a time; write YYYY-MM-DD HH:MM in China Standard Time, e.g. 2026-11-28 14:30"
)]
pub struct BadTime {
    /// What was typed.
    pub input: String,
}

/// Parses a wall-clock time typed in China Standard Time, `YYYY-MM-DD HH:MM` (seconds
/// and a `T` separator accepted), to UTC milliseconds: the consultant says when the
/// customer came in, as on the showroom clock.
pub fn parse_cst(input: &str) -> Result<Millis, BadTime> {
    let s = input.trim();
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    .map(|local| local.and_utc().timestamp_millis() - CST_OFFSET_MS)
    .ok_or_else(|| BadTime {
        input: input.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc_ms(y: i32, m: u32, d: u32, h: u32) -> Millis {
        date(y, m, d)
            .and_hms_opt(h, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn the_next_month_follows_the_cst_calendar() {
        // 2026-01-31 20:00 UTC is already February in CST.
        assert_eq!(next_month_key(utc_ms(2026, 1, 31, 20)), "2026-03");
        assert_eq!(next_month_key(utc_ms(2026, 12, 15, 0)), "2027-01");
    }

    #[test]
    fn midnight_is_16_00_utc_the_day_before() {
        assert_eq!(cst_midnight(date(2026, 3, 1)), utc_ms(2026, 2, 28, 16));
        assert_eq!(cst_midnight(date(1970, 1, 1)), -CST_OFFSET_MS);
    }

    #[test]
    fn former_daylight_saving_dates_are_plain_utc_plus_8_days() {
        // Asia/Shanghai had DST in 1919, 1940-1949 and 1986-1991; 1940-06-01 00:00
        // does not exist there. In CST each of these is a day starting at 16:00 UTC.
        for (y, m, d) in [
            (1919, 4, 13),
            (1940, 6, 1),
            (1941, 3, 15),
            (1942, 1, 31),
            (1946, 5, 15),
            (1949, 5, 28),
            (1986, 5, 4),
            (1988, 4, 17),
            (1991, 4, 14),
        ] {
            let start = cst_midnight(date(y, m, d));
            let prev = date(y, m, d).pred_opt().unwrap();
            assert_eq!(start, utc_ms(prev.year(), prev.month(), prev.day(), 16));
            assert_eq!(
                cst_midnight(date(y, m, d).succ_opt().unwrap()) - start,
                DAY_MS
            );
            assert_eq!(in_cst(start).unwrap().offset().local_minus_utc(), 8 * 3600);
        }
    }

    #[test]
    fn month_keys_turn_at_16_00_utc() {
        let turn = utc_ms(2026, 2, 28, 16);
        assert_eq!(month_key(turn - 1), "2026-02");
        assert_eq!(month_key(turn), "2026-03");
        let turn = utc_ms(1940, 5, 31, 16);
        assert_eq!(month_key(turn - 1), "1940-05");
        assert_eq!(month_key(turn), "1940-06");
        let new_year = utc_ms(2025, 12, 31, 16);
        assert_eq!(month_key(new_year - 1), "2025-12");
        assert_eq!(month_key(new_year), "2026-01");
        assert!(month_key(i64::MAX).ends_with("-12"));
        assert!(month_key(i64::MIN).ends_with("-01"));
    }

    #[test]
    fn cst_days_turn_at_midnight_beijing_time() {
        // 2026-03-31 15:59:59.999 UTC is 23:59:59.999 CST; one ms later it is April 1st.
        let before = 1_774_972_799_999;
        assert_eq!(cst_days_between(before, before + 1), 1);
        assert_eq!(cst_days_between(before + 1, before + 1 + DAY_MS - 1), 0);
        assert_eq!(cst_days_between(before + 1, before), 0, "future is clamped");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > utc_ms(2020, 1, 1, 0));
    }

    #[test]
    fn typed_times_are_china_standard_time() {
        // 2026-11-28 14:30 CST is 06:30 UTC the same day.
        let want = utc_ms(2026, 11, 28, 6) + 30 * 60_000;
        for typed in [
            "2026-11-28 14:30",
            " 2026-11-28T14:30 ",
            "2026-11-28 14:30:00",
        ] {
            assert_eq!(parse_cst(typed), Ok(want), "{typed}");
        }
        assert_eq!(cst_minute(want), "2026-11-28 14:30");
        for bad in [
            "2026-11-28",
            "28/11/2026 14:30",
            "2026-11-31 10:00",
            "14:30",
        ] {
            assert!(parse_cst(bad).is_err(), "{bad}");
        }
    }
}
