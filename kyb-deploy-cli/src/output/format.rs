//! Small formatting helpers shared by the renderers.

use std::time::Duration;

use time::OffsetDateTime;
use time::macros::format_description;

/// `0.4s`, `12.3s`, `2m 05s`, `1h 02m`.
pub(crate) fn elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// A timestamp in UTC to the second: `2025-11-26 06:29:01Z`.
pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| utc.to_string())
}

/// A latency in milliseconds: `12ms`, `1.25s`.
pub(crate) fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

/// `1 check`, `2 checks`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(elapsed(Duration::from_millis(1234)), "1.2s");
        assert_eq!(elapsed(Duration::from_secs(125)), "2m 05s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h 02m");
        assert_eq!(millis(12.4), "12ms");
        assert_eq!(millis(1250.0), "1.25s");
        assert_eq!(count(1, "check", "checks"), "1 check");
    }

    #[test]
    fn timestamps_are_utc() {
        let t = time::macros::datetime!(2025-11-26 08:29:01 +02:00);
        assert_eq!(timestamp(t), "2025-11-26 06:29:01Z");
    }
}
