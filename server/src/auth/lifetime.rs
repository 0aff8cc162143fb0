//! Token lifetimes: parsing `--ttl`, the longest lifetime, time left, the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dealersync_core::access::Claims;

/// Parses a lifetime such as `30d`, `12h`, `15m`, `90s`, `2w` (a bare number is seconds).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid lifetime {s:?}: expected e.g. 30d, 12h, 15m, 90s"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "invalid lifetime unit {other:?}: use s, m, h, d or w"
            ));
        }
    };
    if n == 0 {
        return Err("a token lifetime must be more than zero".into());
    }
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_TTL.as_secs() => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "lifetime {s:?} is too long: a token lives at most {} days; issue a new one \
             when it runs out",
            MAX_TTL.as_secs() / 86_400
        )),
    }
}

/// The longest token lifetime `token --ttl` and the admin API accept: 366 days. A
/// lost device's token must run out some day even if nobody revokes it.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

/// How long until `claims` expire, zero if they already have: a relay closes a live
/// connection at that moment with an `error` saying the token expired.
pub fn time_left(claims: &Claims) -> Duration {
    Duration::from_secs(claims.exp.saturating_sub(now_secs()))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `secs` since the epoch as RFC 3339 UTC, for error messages and listings.
pub(crate) fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parses_units_and_rejects_nonsense() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_ttl("366d").unwrap(), MAX_TTL);
        for too_long in ["367d", "5000w", "31622401"] {
            let e = parse_ttl(too_long).unwrap_err();
            assert!(e.contains("at most 366 days"), "{too_long}: {e}");
        }
        for bad in ["", "d", "3y", "0d", "-1h", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad} parsed");
        }
    }
}
