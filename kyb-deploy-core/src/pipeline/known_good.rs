//! Which release a rollback goes to: after a failed deployment, and on request.

use crate::record::DeploymentRecord;
use crate::record_store::RecordStore;
use crate::release::Release;

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
            .find_latest(environment, &move |r: &DeploymentRecord| {
                r.is_known_good()
                    && r.release
                        .as_ref()
                        .is_some_and(|release| release.image == image)
            })
            .await?;
        if let Some(release) = verified.and_then(|r| r.release) {
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
        .find_latest(environment, &move |r: &DeploymentRecord| {
            r.is_known_good()
                && r.release
                    .as_ref()
                    .is_some_and(|release| Some(&release.image) != failed_image.as_ref())
        })
        .await?;
    Ok(last.and_then(|r| r.release).map(|release| KnownGood {
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

/// The ledger record a rollback on request goes to: the newest verified run of `to` (else
/// its newest run with a release), or without `to` the newest verified release of another
/// version than `running`. The error says why there is none, or that the ledger failed.
pub(super) async fn requested_release(
    store: &dyn RecordStore,
    environment: &str,
    to: Option<&crate::version::Version>,
    running: Option<&Release>,
) -> Result<DeploymentRecord, String> {
    let ledger_failed = |e: crate::Error| format!("reading the ledger failed: {}", e.chain());
    let Some(version) = to else {
        let running = running.map(|r| r.version.clone());
        return store
            .find_latest(environment, &move |r: &DeploymentRecord| {
                r.is_known_good() && running.as_ref() != Some(&r.version)
            })
            .await
            .map_err(ledger_failed)?
            .ok_or_else(|| {
                format!(
                    "no known-good release of {environment} other than the running one; pass --to VERSION"
                )
            });
    };
    let wanted = version.clone();
    let verified = store
        .find_latest(environment, &move |r: &DeploymentRecord| {
            r.is_known_good() && r.version == wanted
        })
        .await
        .map_err(ledger_failed)?;
    if let Some(record) = verified {
        return Ok(record);
    }
    let wanted = version.clone();
    store
        .find_latest(environment, &move |r: &DeploymentRecord| {
            r.version == wanted && r.release.is_some()
        })
        .await
        .map_err(ledger_failed)?
        .ok_or_else(|| {
            format!(
                "{version} was never deployed to {environment} according to the ledger; `kyb-deploy history -e {environment}` lists what was"
            )
        })
}
