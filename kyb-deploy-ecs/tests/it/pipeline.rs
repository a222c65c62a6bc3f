//! Whole deployments through the pipeline: outcome, ledger, and the simulator's final state.

use kyb_deploy_core::{Outcome, RecordStatus};
use kyb_deploy_testkit::ScriptedProbe;

use crate::support::*;

#[tokio::test]
async fn a_deployment_reaches_completed_and_is_recorded() {
    let h = Harness::new(sim(), "v1", ScriptedProbe::new()).await;
    let report = h.deploy("v2").await;
    assert!(
        matches!(&report.outcome, Outcome::Succeeded { release, .. } if release.version == version("v2")),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.running_image().await, image("v2"));
    let record = h
        .store
        .records()
        .into_iter()
        .find(|r| r.id == report.run_id)
        .unwrap();
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert!(record.rollout_id.unwrap().starts_with("ecs-svc/"));
    assert!(
        record
            .release
            .unwrap()
            .platform_ref
            .unwrap()
            .contains(":task-definition/kyb-api:2")
    );
    let service = h.service_state();
    assert_eq!(
        service["deployments"].as_array().unwrap().len(),
        1,
        "{service:#}"
    );
}
