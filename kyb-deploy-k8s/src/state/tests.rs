use proptest::prelude::*;

use super::*;

/// A DNS subdomain as Kubernetes requires of Secret and Lease names.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && label.starts_with(|c: char| c.is_ascii_alphanumeric())
                && label.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

const RECORDS: &str = "kyb-deploy/staging/records/";

#[test]
fn names_are_valid_and_readable_where_the_key_allows() {
    let directory = digest("kyb-deploy/staging");
    assert_eq!(
        object_name("kyb-deploy/staging/known-good.json").unwrap(),
        format!("kyb-{directory}-known-good.json")
    );
    assert_eq!(
        object_name("kyb-deploy/staging/lock.json").unwrap(),
        format!("kyb-{directory}-lock.json")
    );
    let record = object_name(&format!(
        "{RECORDS}18446742309000000000_20261208T021000000Z-0a1b2c3d_deploy_succeeded.json"
    ))
    .unwrap();
    assert!(
        record.starts_with(&format!(
            "kyb-{}.18446742309000000000.5f",
            digest("kyb-deploy/staging/records")
        )),
        "{record}"
    );
    for name in [&record, &object_name("p/e/records/Upper_Case").unwrap()] {
        assert!(is_dns_subdomain(name), "{name}");
    }
    // Too long for a name: an error that says what to shorten.
    let long = object_name(&format!("{RECORDS}1_{}.json", "a".repeat(200))).unwrap_err();
    assert!(long.contains("over Kubernetes' 253"), "{long}");
    assert!(object_name("kyb-deploy/staging/").is_err());
}

#[test]
fn the_root_of_every_kind_of_key_is_the_prefix() {
    for key in [
        "teams/kyb/staging/records/1_a_deploy_succeeded.json",
        "teams/kyb/staging/lock-events/1_takeover.json",
        "teams/kyb/staging/known-good.json",
        "teams/kyb/staging/lock.json",
    ] {
        let (_, kind) = key_info(key).unwrap();
        assert_eq!(root_of(key, kind), "teams/kyb", "{key}");
    }
}

#[test]
fn a_lease_shows_its_holder_and_reads_back_as_written() {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let holder = LockHolder {
        token: "t".into(),
        actor: "ci".into(),
        host: "runner-1".into(),
        pid: 42,
        ci_run_url: None,
        acquired_at: now,
        renewed_at: now,
        expires_at: now + time::Duration::seconds(60),
        took_over_from: Some("pid 7 on runner-0".into()),
    };
    let body = serde_json::to_vec(&holder).unwrap();
    let key = "kyb-deploy/staging/lock.json";
    let lease = lease(key, "kyb-x-lock.json", &body, Some("12")).unwrap();
    let spec = lease.spec.as_ref().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("ci@runner-1 pid 42"));
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(lease.metadata.resource_version.as_deref(), Some("12"));
    let labels = lease.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[STATE_LABEL], "lock");
    assert_eq!(labels[ENVIRONMENT_LABEL], "staging");
    assert_eq!(lease_body(&lease), body);
    // A Lease kyb-deploy did not write reads as its spec: never a lock to take over.
    let mut foreign = lease.clone();
    foreign.metadata.annotations = None;
    assert!(serde_json::from_slice::<LockHolder>(&lease_body(&foreign)).is_err());
}

#[test]
fn a_secret_holds_the_body_compressed_and_records_are_immutable() {
    let body = br#"{"id":"r1","status":"succeeded"}"#.repeat(20);
    let record = format!("{RECORDS}1_r1_deploy_succeeded.json");
    let written = secret(&record, "n", &body, None).unwrap();
    assert_eq!(written.type_.as_deref(), Some(SECRET_TYPE));
    assert_eq!(written.immutable, Some(true));
    let stored = &written.data.as_ref().unwrap()[BODY].0;
    assert!(stored.len() < body.len() / 4, "{} bytes", stored.len());
    assert_eq!(secret_body(&written).unwrap(), body);
    let pointer = secret("kyb-deploy/staging/known-good.json", "n", b"{}", Some("3")).unwrap();
    assert_eq!(pointer.immutable, Some(false));
    assert_eq!(pointer.metadata.resource_version.as_deref(), Some("3"));
    // A Secret that is not kyb-deploy's has no body.
    let mut foreign = pointer;
    foreign.data = None;
    assert_eq!(secret_body(&foreign), None);
}

proptest! {
    /// Within a directory, names sort as keys do (so a paged list reads newest first), and
    /// different keys get different names, each a valid object name.
    #[test]
    fn names_sort_as_keys_and_never_collide(
        a in "[0-9]{20}_[A-Za-z0-9%._-]{1,30}",
        b in "[0-9]{20}_[A-Za-z0-9%._-]{1,30}",
    ) {
        let (ka, kb) = (format!("{RECORDS}{a}"), format!("{RECORDS}{b}"));
        let (na, nb) = (object_name(&ka).unwrap(), object_name(&kb).unwrap());
        prop_assert!(is_dns_subdomain(&na), "{}", na);
        prop_assert_eq!(ka.cmp(&kb), na.cmp(&nb));
    }

    #[test]
    fn any_name_in_a_directory_is_a_valid_object_name(name in "[ -~]{1,40}") {
        prop_assume!(!name.contains('/'));
        let key = format!("kyb-deploy/staging/{name}");
        let object = object_name(&key).unwrap();
        prop_assert!(is_dns_subdomain(&object), "{} -> {}", key, object);
    }
}
