//! Serde support for human-readable durations (`"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serialises a duration as a human-readable string.
pub(crate) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

/// Deserialises a duration from a human-readable string.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let raw = String::deserialize(deserializer)?;
    parse(&raw).map_err(serde::de::Error::custom)
}

/// Parses a human-readable duration with an error that shows the accepted form.
pub(crate) fn parse(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        format!("invalid duration {raw:?} ({e}); write a number with a unit, like \"30s\", \"5m\" or \"250ms\"")
    })
}

/// The same for `Option<Duration>`.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
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
        assert!(
            parse("5 minutes please")
                .unwrap_err()
                .contains("like \"30s\"")
        );
        assert!(parse("30").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(ms in 0u64..10_000_000) {
            let d = Duration::from_millis(ms);
            let text = humantime::format_duration(d).to_string();
            prop_assert_eq!(parse(&text).unwrap(), d);
        }
    }
}
