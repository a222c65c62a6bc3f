//! Which release a rollback goes to: after a failed deployment, and on request.

use crate::record::DeploymentRecord;
use crate::record_store::RecordStore;
use crate::release::Release;
use crate::target::Revision;

/// A release to roll back to, and why it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KnownGood {
    /// The release, as the ledger recorded it (with its platform reference).
    pub(super) release: Release,
    /// Why, for the run's progress.
    pub(super) why: String,
}

/// Where a failed deployment of `failed` goes back to in `environment`: `previous` (what
/// served before the run began) when a verified run of the ledger deployed that very image;
/// otherwise the newest verified release whose image is not the one that failed. `None` when
/// the ledger has neither. Never blindly "the one before": a redeployment of the serving
/// version that fails goes back to the serving build, not to an older version.
pub(super) async fn known_good(
    store: &dyn RecordStore,
    environment: &str,
    previous: Option<&Release>,
    failed: Option<&Release>,
) -> crate::Result<Option<KnownGood>> {
    if let Some(previous) = previous {
        let image = previous.image.clone();
        let verified = store
            .find_latest_verified(environment, &move |r: &DeploymentRecord| {
                r.verified_release()
                    .is_some_and(|release| release.image == image)
            })
            .await?;
        if let Some(release) = verified.and_then(|r| r.verified_release().cloned()) {
            return Ok(Some(KnownGood {
                why: format!(
                    "{} served before this run and was verified: going back to it",
                    release.version
                ),
                release,
            }));
        }
    }
    let failed_image = failed.map(|r| r.image.clone());
    let last = store
        .find_latest_verified(environment, &move |r: &DeploymentRecord| {
            r.verified_release()
                .is_some_and(|release| Some(&release.image) != failed_image.as_ref())
        })
        .await?;
    Ok(last.and_then(|r| r.verified_release().cloned()).map(|release| KnownGood {
        why: match previous {
            Some(previous) => format!(
                "{} served before this run but no verified run deployed it; going back to {}, the last verified release",
                previous.version, release.version
            ),
            None => format!(
                "going back to {}, the last verified release",
                release.version
            ),
        },
        release,
    }))
}

/// Where a failed deployment of `failed` goes back to when the ledger names no verified
/// release of `environment` (a first run from a fresh runner against a service deployed
/// before, or a lost ledger): what the platform ran before this run (`previous`), else the
/// newest revision the platform lists (`history`, newest first). Never the failed release
/// nor another carrying its image. `None` when the platform has nothing else either.
pub(super) fn platform_known_good(
    environment: &str,
    previous: Option<&Release>,
    history: &[Revision],
    failed: Option<&Release>,
) -> Option<KnownGood> {
    let other = |r: &&Release| failed.is_none_or(|f| !r.is_same_as(f) && r.image != f.image);
    if let Some(release) = previous.filter(other) {
        return Some(KnownGood {
            why: format!(
                "the ledger names no verified release of {environment}; going back to {}, which served before this run",
                release.version
            ),
            release: release.clone(),
        });
    }
    history
        .iter()
        .map(|r| &r.release)
        .find(other)
        .map(|release| KnownGood {
            why: format!(
                "the ledger names no verified release of {environment}; going back to {}, the newest other revision the platform lists",
                release.version
            ),
            release: release.clone(),
        })
}

/// The release a rollback on request goes to, from the ledger, with the run that vouches
/// for it: the newest verified release of `to` (else its newest run with a release), or
/// without `to` the newest verified release of another version than `running`. The error
/// says why there is none, or that the ledger failed.
pub(super) async fn requested_release(
    store: &dyn RecordStore,
    environment: &str,
    to: Option<&crate::version::Version>,
    running: Option<&Release>,
) -> Result<(Release, DeploymentRecord), String> {
    let ledger_failed = |e: crate::Error| format!("reading the ledger failed: {}", e.chain());
    let verified = |record: DeploymentRecord| {
        let release = record.verified_release().cloned();
        release.map(|release| (release, record))
    };
    let Some(version) = to else {
        let running = running.map(|r| r.version.clone());
        return store
            .find_latest_verified(environment, &move |r: &DeploymentRecord| {
                r.verified_release()
                    .is_some_and(|release| running.as_ref() != Some(&release.version))
            })
            .await
            .map_err(ledger_failed)?
            .and_then(verified)
            .ok_or_else(|| {
                format!(
                    "no known-good release of {environment} other than the running one in the ledger; pass --to VERSION (`kyb-deploy history -e {environment}` lists the versions the platform has)"
                )
            });
    };
    let wanted = version.clone();
    let found = store
        .find_latest_verified(environment, &move |r: &DeploymentRecord| {
            r.verified_release()
                .is_some_and(|release| release.version == wanted)
        })
        .await
        .map_err(ledger_failed)?
        .and_then(verified);
    if let Some(found) = found {
        return Ok(found);
    }
    let wanted = version.clone();
    store
        .find_latest(environment, &move |r: &DeploymentRecord| {
            r.version == wanted && r.release.is_some()
        })
        .await
        .map_err(ledger_failed)?
        .and_then(|record| record.release.clone().map(|release| (release, record)))
        .ok_or_else(|| {
            format!(
                "{version} was never deployed to {environment} according to the ledger; `kyb-deploy history -e {environment}` lists what was"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;

    fn release(version: &str, image: &str, reference: Option<&str>) -> Release {
        Release {
            platform_ref: reference.map(str::to_owned),
            ..Release::new(Version::parse(version).unwrap(), image)
        }
    }

    fn revisions(releases: &[&Release]) -> Vec<Revision> {
        releases
            .iter()
            .map(|r| Revision {
                release: (*r).clone(),
                deployed_at: None,
                active: false,
            })
            .collect()
    }

    #[test]
    fn without_a_ledger_what_served_before_is_gone_back_to() {
        let v2 = release("v2", "repo@sha256:2", Some("td:2"));
        let v3 = release("v3", "repo@sha256:3", Some("td:3"));
        let chosen = platform_known_good("staging", Some(&v2), &[], Some(&v3)).unwrap();
        assert_eq!(chosen.release, v2);
        assert!(
            chosen.why.contains("served before this run"),
            "{}",
            chosen.why
        );
    }

    #[test]
    fn never_the_failed_release_nor_its_image() {
        let v1 = release("v1", "repo@sha256:1", Some("td:1"));
        let v3 = release("v3", "repo@sha256:3", Some("td:3"));
        // The failed release served before (a redeploy), under another reference.
        let again = release("v3", "repo@sha256:3", Some("td:4"));
        let history = revisions(&[&v3, &again, &v1]);
        let chosen = platform_known_good("staging", Some(&again), &history, Some(&v3)).unwrap();
        assert_eq!(chosen.release, v1);
        assert!(
            chosen.why.contains("newest other revision"),
            "{}",
            chosen.why
        );
        // The same reference with another image is the same release too.
        let moved = release("v3b", "repo@sha256:9", Some("td:3"));
        assert_eq!(
            platform_known_good("staging", Some(&moved), &[], Some(&v3)),
            None
        );
        assert_eq!(
            platform_known_good("staging", None, &revisions(&[&v3]), Some(&v3)),
            None
        );
        // With nothing failed (nothing deployed yet), what served is fine.
        assert_eq!(
            platform_known_good("staging", Some(&v1), &[], None).map(|c| c.release),
            Some(v1)
        );
    }
}
