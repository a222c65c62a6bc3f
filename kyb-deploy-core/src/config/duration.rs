//! Serde support for human-readable durations (`"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`), and
//! the one parser every duration goes through: configuration keys, `KYB_DEPLOY_*` overrides
//! and the command line's `--timeout`.
//!
//! Every duration is bounded by [`Config::MAX_DURATION`](crate::config::Config::MAX_DURATION) when
//! it is parsed, so that no deadline computed from a setting (`now + timeout`) can overflow:
//! a setting of `"500000000000y"` is refused with the key named instead of ending a run, or
//! its rollback, with a panic.
//!
//! Target backends read their own duration settings the same way:
//! `#[serde(with = "kyb_deploy_core::config::duration")]` (or `kyb_deploy_core::config::duration::option` for
//! an optional one).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration any setting accepts: 7 days. A deployment, a rollback or a probe
/// period that needs longer is a mistake, not a setting.
pub(crate) const MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// [`MAX`] in words, for messages and documentation.
pub(crate) const MAX_TEXT: &str = "7 days";

/// Serialises a duration as a human-readable string.
pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

/// Deserialises a duration from a human-readable string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(deserializer)?;
    parse(&raw).map_err(serde::de::Error::custom)
}

/// Parses a human-readable duration of at most [`MAX`], with an error that says what is
/// wrong and shows the accepted form. The caller names the key.
pub(crate) fn parse(raw: &str) -> Result<Duration, String> {
    let too_long = || {
        format!(
            "{raw:?} is longer than the maximum of {MAX_TEXT}; write a shorter duration, like \"30m\" or \"7d\""
        )
    };
    match humantime::parse_duration(raw.trim()) {
        Ok(duration) if duration <= MAX => Ok(duration),
        Ok(_) => Err(too_long()),
        // humantime reports both too large a number and a fraction finer than a
        // nanosecond as an overflow.
        Err(humantime::DurationError::NumberOverflow) if !raw.contains('.') => Err(too_long()),
        Err(e) => Err(format!(
            "invalid duration {raw:?} ({e}); write a number with a unit, like \"30s\", \"5m\" or \"250ms\""
        )),
    }
}

impl super::Config {
    /// The longest duration any setting or flag accepts (7 days).
    pub const MAX_DURATION: Duration = MAX;

    /// Parses a duration the way every configuration key does: a number with a unit
    /// (`"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`) of at most [`Config::MAX_DURATION`](crate::config::Config::MAX_DURATION).
    /// For flags such as `--timeout`, so that they accept exactly what the file accepts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kyb_deploy_core::config::Config;
    ///
    /// assert_eq!(Config::parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    /// assert!(Config::parse_duration("500000000000y").unwrap_err().contains("maximum of 7 days"));
    /// ```
    ///
    /// # Errors
    ///
    /// A message, without the name of the flag or key, saying what is wrong and how to
    /// write a duration.
    pub fn parse_duration(raw: &str) -> Result<Duration, String> {
        parse(raw)
    }
}

/// The same for `Option<Duration>`.
pub mod option {
    use super::*;

    /// Serialises an optional duration as a human-readable string, or nothing.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises an optional human-readable duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let raw = Option::<String>::deserialize(deserializer)?;
        raw.map(|r| parse(&r).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("7d").unwrap(), MAX);
        assert!(
            parse("5 minutes please")
                .unwrap_err()
                .contains("like \"30s\"")
        );
        assert!(parse("30").is_err());
    }

    #[test]
    fn durations_beyond_the_maximum_are_refused_with_the_maximum_named() {
        for raw in [
            "500000000000y",
            "7d 1ns",
            "8d",
            "2w",
            "1M",
            "99999999999999999999999s",
            "18446744073709551615s",
        ] {
            let err = parse(raw).unwrap_err();
            assert!(
                err.contains("is longer than the maximum of 7 days"),
                "{raw}: {err}"
            );
            assert!(err.contains(&format!("{raw:?}")), "{raw}: {err}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(ms in 0u64..10_000_000) {
            let d = Duration::from_millis(ms);
            let text = humantime::format_duration(d).to_string();
            prop_assert_eq!(parse(&text).unwrap(), d);
        }

        /// Whatever the text, the parser answers within the bound or with a message; it
        /// never panics.
        #[test]
        fn any_text_parses_within_the_bound_or_is_refused(raw in "\\PC{0,24}") {
            match parse(&raw) {
                Ok(d) => prop_assert!(d <= MAX),
                Err(e) => prop_assert!(e.contains(&format!("{raw:?}")), "{}", e),
            }
        }

        #[test]
        fn any_number_with_any_unit_parses_within_the_bound_or_is_refused(
            n in any::<u64>(),
            unit in prop_oneof![
                Just("ns"), Just("us"), Just("ms"), Just("s"), Just("m"), Just("h"),
                Just("d"), Just("w"), Just("M"), Just("y"),
            ],
        ) {
            let raw = format!("{n}{unit}");
            match parse(&raw) {
                Ok(d) => prop_assert!(d <= MAX),
                Err(e) => prop_assert!(e.contains("maximum of 7 days"), "{}", e),
            }
        }
    }
}
