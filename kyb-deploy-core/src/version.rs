//! Release versions: validated Docker tags, with semantic versions recognised and ordered.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Longest tag Docker accepts.
const MAX_LEN: usize = 128;

/// A release version: a valid Docker tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
///
/// Versions that look like semantic versions (`1.2.3`, `v1.2.3`, `v1.2.3-rc.1`) are
/// recognised and ordered by semver precedence; anything else orders after them by text.
///
/// ```
/// use kyb_deploy_core::Version;
///
/// let a: Version = "v1.2.3".parse().unwrap();
/// let b: Version = "v1.10.0".parse().unwrap();
/// assert!(a < b);
/// assert!(a.semver().is_some());
/// assert!("v1;rm -rf /".parse::<Version>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    raw: String,
    semver: Option<semver::Version>,
}

impl Version {
    /// Parses and validates a version.
    pub fn parse(value: &str) -> Result<Self> {
        let problem = |problem: &str| Error::InvalidVersion {
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        let Some(first) = value.chars().next() else {
            return Err(problem("it is empty"));
        };
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            let shown = if bad.is_whitespace() {
                "whitespace".to_owned()
            } else {
                format!("{bad:?}")
            };
            return Err(problem(&format!("it contains {shown}")));
        }
        if value.len() > MAX_LEN {
            return Err(problem(&format!(
                "it is {} characters long, the limit is {MAX_LEN}",
                value.len()
            )));
        }
        if first == '.' || first == '-' {
            return Err(problem(&format!("it starts with {first:?}")));
        }
        Ok(Self {
            raw: value.to_owned(),
            semver: parse_semver(value),
        })
    }

    /// The version as given, which is also its Docker tag.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The semantic version, when this version is one (`v` prefix allowed).
    pub fn semver(&self) -> Option<&semver::Version> {
        self.semver.as_ref()
    }
}

fn parse_semver(value: &str) -> Option<semver::Version> {
    let bare = value.strip_prefix('v').unwrap_or(value);
    // Only full MAJOR.MINOR.PATCH forms count; "1.2" is a plain tag.
    semver::Version::parse(bare).ok()
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.semver, &other.semver) {
            (Some(a), Some(b)) => a.cmp(b).then_with(|| self.raw.cmp(&other.raw)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.raw.cmp(&other.raw),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_what_the_issue_names() {
        for bad in [
            "v1;rm -rf /",
            "../x",
            "",
            "v1 2",
            " v1",
            "v1\n",
            "-v1",
            ".v1",
        ] {
            let err = Version::parse(bad).unwrap_err().to_string();
            assert!(err.contains("Docker tag"), "{bad:?}: {err}");
        }
        let long = "a".repeat(129);
        let err = Version::parse(&long).unwrap_err().to_string();
        assert!(err.contains("129 characters"), "{err}");
        assert!(Version::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn names_the_problem() {
        let err = Version::parse("v1;rm -rf /").unwrap_err().to_string();
        assert!(err.contains("';'"), "{err}");
        let err = Version::parse("a b").unwrap_err().to_string();
        assert!(err.contains("whitespace"), "{err}");
    }

    #[test]
    fn semver_is_recognised_and_ordered() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("v1.2.3").semver().is_some());
        assert!(v("1.2.3-rc.1").semver().is_some());
        assert!(v("3f9c2ab").semver().is_none());
        assert!(v("1.2").semver().is_none());
        assert!(v("v1.2.3") < v("v1.10.0"));
        assert!(v("v2.0.0-rc.1") < v("v2.0.0"));
        assert!(v("v9.9.9") < v("abc"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let v: Version = serde_json::from_str("\"v1.2.3\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"v1.2.3\"");
        assert!(serde_json::from_str::<Version>("\"../x\"").is_err());
    }

    proptest! {
        #[test]
        fn every_docker_tag_is_accepted(tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}") {
            let v = Version::parse(&tag).unwrap();
            prop_assert_eq!(v.as_str(), tag.as_str());
        }

        #[test]
        fn anything_else_is_rejected(s in "\\PC{0,140}") {
            let valid = !s.is_empty()
                && s.len() <= 128
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !s.starts_with(['.', '-']);
            prop_assert_eq!(Version::parse(&s).is_ok(), valid);
        }

        #[test]
        fn semver_order_matches_semver_crate(
            a in (0u64..50, 0u64..50, 0u64..50),
            b in (0u64..50, 0u64..50, 0u64..50),
        ) {
            let va = Version::parse(&format!("v{}.{}.{}", a.0, a.1, a.2)).unwrap();
            let vb = Version::parse(&format!("v{}.{}.{}", b.0, b.1, b.2)).unwrap();
            prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
        }

        #[test]
        fn order_is_total_and_consistent(a in "[a-z0-9.]{1,8}", b in "[a-z0-9.]{1,8}") {
            let (Ok(va), Ok(vb)) = (Version::parse(&a), Version::parse(&b)) else { return Ok(()); };
            prop_assert_eq!(va.cmp(&vb), vb.cmp(&va).reverse());
            prop_assert_eq!(va.cmp(&vb) == Ordering::Equal, va == vb);
        }
    }
}
