//! Where each object of the state lives in the store, and what a key says about it.

use crate::record::{DeploymentRecord, Operation, RecordStatus};

/// The key layout under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    prefix: String,
}

/// What a record object's key says: when it was written, whose state it is, of which kind
/// of run, with which status. Enough to choose which records to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordKey {
    pub(crate) key: String,
    /// Microseconds since the Unix epoch, on the writer's clock (kept ahead of every record
    /// written before it).
    pub(crate) at: u64,
    /// The run id, as encoded in the key.
    pub(crate) id: String,
    pub(crate) operation: String,
    pub(crate) status: String,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// The prefix every environment's directory is under.
    pub(crate) fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The environment named by a directory [`directories`](super::ObjectStore::directories)
    /// found under [`root`](Self::root).
    pub(crate) fn environment_of(&self, directory: &str) -> Option<String> {
        let name = directory.strip_prefix(&self.root())?.strip_suffix('/')?;
        (!name.is_empty() && !name.contains('/')).then(|| name.to_owned())
    }

    pub(crate) fn records(&self, environment: &str) -> String {
        format!("{}/{environment}/records/", self.prefix)
    }

    pub(crate) fn pointer(&self, environment: &str) -> String {
        format!("{}/{environment}/known-good.json", self.prefix)
    }

    pub(crate) fn lock(&self, environment: &str) -> String {
        format!("{}/{environment}/lock.json", self.prefix)
    }

    pub(crate) fn lock_event(&self, environment: &str, at: u64, what: &str) -> String {
        format!(
            "{}/{environment}/lock-events/{}_{what}.json",
            self.prefix,
            newest_first(at)
        )
    }

    /// The key of `record`'s state written at `at`.
    pub(crate) fn record(&self, at: u64, record: &DeploymentRecord) -> RecordKey {
        let id = encode(&record.id);
        let operation = encode(record.operation.as_str());
        let status = encode(record.status.as_str());
        RecordKey {
            key: format!(
                "{}{}_{id}_{operation}_{status}.json",
                self.records(&record.environment),
                newest_first(at)
            ),
            at,
            id,
            operation,
            status,
        }
    }

    /// What the key of a record object says; `None` for a key that is not one.
    pub(crate) fn parse_record(&self, environment: &str, key: &str) -> Option<RecordKey> {
        let name = key
            .strip_prefix(&self.records(environment))?
            .strip_suffix(".json")?;
        let mut parts = name.split('_');
        let (Some(time), Some(id), Some(operation), Some(status), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if time.len() != 20 {
            return None;
        }
        let at = u64::MAX - time.parse::<u64>().ok()?;
        Some(RecordKey {
            key: key.to_owned(),
            at,
            id: id.to_owned(),
            operation: operation.to_owned(),
            status: status.to_owned(),
        })
    }
}

impl RecordKey {
    /// Whether the state this key names ends its run.
    pub(crate) fn is_final(&self) -> bool {
        RecordStatus::from_name(&decode(&self.status)).is_final()
    }

    /// Whether it is a state of a deploy run.
    pub(crate) fn is_deploy(&self) -> bool {
        decode(&self.operation) == Operation::Deploy.as_str()
    }

    /// [`DeploymentRecord::resolved_earlier_runs`], from the key alone.
    pub(crate) fn resolved_earlier_runs(&self) -> bool {
        self.is_deploy() && decode(&self.status) != RecordStatus::FailedBeforeDeploy.as_str()
    }
}

/// What an object of the state is, as its key says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// One state of a run (`records/…`).
    Record,
    /// The known-good pointer (`known-good.json`).
    Pointer,
    /// The lock (`lock.json`).
    Lock,
    /// A record of a lock taken over or broken (`lock-events/…`).
    LockEvent,
}

impl ObjectKind {
    /// The kind's name, as a label value: `record`, `known-good`, `lock`, `lock-event`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Pointer => "known-good",
            Self::Lock => "lock",
            Self::LockEvent => "lock-event",
        }
    }
}

/// The environment and the kind of the object at `key`, read from its last segments (the
/// prefix may have any number); `None` for a key the state never writes.
#[must_use]
pub fn key_info(key: &str) -> Option<(String, ObjectKind)> {
    let mut segments = key.rsplit('/');
    let last = segments.next()?;
    let parent = segments.next()?;
    let (environment, kind) = match (parent, last) {
        ("records", _) => (segments.next()?, ObjectKind::Record),
        ("lock-events", _) => (segments.next()?, ObjectKind::LockEvent),
        (environment, "known-good.json") => (environment, ObjectKind::Pointer),
        (environment, "lock.json") => (environment, ObjectKind::Lock),
        _ => return None,
    };
    (!environment.is_empty() && segments.next().is_some()).then(|| (environment.to_owned(), kind))
}

/// `at` as 20 digits that sort newest first.
fn newest_first(at: u64) -> String {
    format!("{:020}", u64::MAX - at)
}

/// Keeps letters, digits, '-' and '.'; every other byte as `%XX`. So '_' separates fields.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use crate::version::Version;

    use super::*;

    #[test]
    fn record_keys_sort_newest_first_and_read_back() {
        let layout = Layout::new("/teams/kyb/");
        let mut record = DeploymentRecord::start(
            "20261207T230803123Z-0a1b2c3d",
            Operation::Deploy,
            "staging",
            "ecs",
            Version::parse("v1").unwrap(),
        );
        let older = layout.record(1_000, &record);
        record.status = RecordStatus::Succeeded;
        let newer = layout.record(2_000, &record);
        assert!(newer.key < older.key, "{} !< {}", newer.key, older.key);
        assert!(
            newer.key.starts_with("teams/kyb/staging/records/"),
            "{}",
            newer.key
        );
        assert_eq!(
            layout.parse_record("staging", &newer.key),
            Some(newer.clone())
        );
        assert!(newer.is_final() && newer.is_deploy());
        assert!(!older.is_final());
        assert_eq!(layout.parse_record("production", &newer.key), None);
        assert_eq!(
            layout.parse_record("staging", "teams/kyb/staging/records/x.json"),
            None
        );
    }

    #[test]
    fn any_id_fits_in_a_key() {
        let layout = Layout::new("kyb-deploy");
        let record = DeploymentRecord::start(
            "a_b/c%d é",
            Operation::from_name("my_op"),
            "staging",
            "ecs",
            Version::parse("v1").unwrap(),
        );
        let key = layout.record(7, &record);
        assert_eq!(key.id, "a%5Fb%2Fc%25d%20%C3%A9");
        assert_eq!(decode(&key.id), "a_b/c%d é");
        assert_eq!(layout.parse_record("staging", &key.key), Some(key.clone()));
        assert!(!key.is_deploy());
    }

    #[test]
    fn a_key_says_its_environment_and_kind() {
        let layout = Layout::new("teams/kyb");
        let record = DeploymentRecord::start(
            "r1",
            Operation::Deploy,
            "staging",
            "kubernetes",
            Version::parse("v1").unwrap(),
        );
        let staging = || Some(("staging".to_owned(), ObjectKind::Record));
        assert_eq!(key_info(&layout.record(9, &record).key), staging());
        assert_eq!(
            key_info(&layout.pointer("staging")),
            Some(("staging".into(), ObjectKind::Pointer))
        );
        assert_eq!(
            key_info(&layout.lock("prod")),
            Some(("prod".into(), ObjectKind::Lock))
        );
        assert_eq!(
            key_info(&layout.lock_event("prod", 3, "break")),
            Some(("prod".into(), ObjectKind::LockEvent))
        );
        // No prefix before the environment, or not a key the state writes.
        assert_eq!(key_info("staging/lock.json"), None);
        assert_eq!(key_info("kyb-deploy/staging/other.json"), None);
        assert_eq!(ObjectKind::Pointer.as_str(), "known-good");
    }

    #[test]
    fn environments_are_read_from_directories() {
        let layout = Layout::new("kyb-deploy");
        assert_eq!(
            layout.environment_of("kyb-deploy/staging/"),
            Some("staging".into())
        );
        assert_eq!(layout.environment_of("kyb-deploy/"), None);
        assert_eq!(layout.environment_of("other/staging/"), None);
    }
}
