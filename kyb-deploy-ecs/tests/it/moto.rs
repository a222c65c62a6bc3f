//! Conformance against `moto_server`, a third-party AWS emulator that checks requests
//! against the AWS API models: [`EcsTarget`] plans, deploys and reads history through the
//! real SDK calls it makes against ECS, and [`EcrLogin`] logs in through ECR's
//! GetAuthorizationToken. What the target did is then read back with the real AWS CLI, so
//! that neither side of the check is kyb-deploy's own code.
//!
//! moto never runs tasks, so no rollout ever progresses: these tests deploy without
//! waiting. moto 5 also differs from ECS in ways the tests work around or assert as they
//! are (each is explained where it matters):
//! - UpdateService changes the service's `taskDefinition` but keeps its deployment, with
//!   that deployment's old task definition and id, where ECS starts a new PRIMARY deployment
//!   of the new task definition;
//! - ListTaskDefinitions ignores `sort` (and `maxResults`) and lists revisions oldest first
//!   (kyb-deploy orders revisions by number itself);
//! - CreateService with an awsvpc configuration needs existing subnets *and* security
//!   groups (without `securityGroups` it fails with a 500), where ECS takes the VPC's
//!   default security group;
//! - task definitions have no `registeredAt`.
//!
//! The test set-up (`scripts/test.sh`) installs moto and the AWS CLI and exports
//! `KYB_MOTO_SERVER`; each test starts its own `moto_server` on a free port of 127.0.0.1
//! and kills it when it ends, however it ends.

mod peer;

use std::collections::BTreeMap;
use std::sync::Arc;

use kyb_deploy_core::{RegistryLogin as _, Release, Target as _};
use kyb_deploy_docker::CredentialSource;
use kyb_deploy_ecs::EcrLogin;
use kyb_deploy_ecs::VERSION_LABEL;
use serde_json::json;

use self::peer::{
    Aws, Moto, cluster_and_initial_definition, create_service, ecr_client, ecs_client, primary,
    register_as_kyb_deploy, target,
};
use crate::support::{FAMILY, REPO, image, version};

/// The account moto answers for.
const ACCOUNT: &str = "123456789012";

/// An ECR registry host of moto's account.
const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The digest of the release image: the pipeline deploys images by digest once pushed.
const DIGEST: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0d2a5f3b1c9b4f1e2d3c4a5";

/// The task definition ARN of revision `revision` of the tests' family.
fn task_definition_arn(revision: u32) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{FAMILY}:{revision}")
}

/// The release the tests deploy: version `v`, its image by tag and digest.
fn release(v: &str) -> Release {
    Release::new(version(v), format!("{REPO}:{v}@{DIGEST}"))
}

/// Checks through the CLI that the service is set up as the environment asks: the
/// deployment configuration, and `arn` as its task definition.
async fn assert_service_points_at(aws: &Aws, arn: &str) {
    let service = aws.service().await;
    assert_eq!(service["taskDefinition"], arn, "{service:#}");
    let configuration = &service["deploymentConfiguration"];
    assert_eq!(configuration["minimumHealthyPercent"], 100, "{service:#}");
    assert_eq!(configuration["maximumPercent"], 200, "{service:#}");
    assert_eq!(
        configuration["deploymentCircuitBreaker"],
        json!({"enable": true, "rollback": true}),
        "{service:#}"
    );
}

/// Checks through the CLI that `arn` is the template filled in with `release` and the
/// environment's variables.
async fn assert_registered_release(aws: &Aws, arn: &str, release: &Release) {
    let definition = aws.task_definition(arn).await;
    let at = format!("{arn}: {definition:#}");
    assert_eq!(definition["family"], FAMILY, "{at}");
    assert_eq!(definition["cpu"], "256", "{at}");
    assert_eq!(definition["memory"], "512", "{at}");
    assert_eq!(definition["networkMode"], "awsvpc", "{at}");
    assert_eq!(
        definition["requiresCompatibilities"],
        json!(["FARGATE"]),
        "{at}"
    );
    assert_eq!(
        definition["executionRoleArn"], "arn:aws:iam::123456789012:role/kyb-api-execution",
        "{at}"
    );
    let containers = definition["containerDefinitions"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{at}");
    let api = &containers[0];
    assert_eq!(api["name"], "api", "{at}");
    assert_eq!(api["image"], release.image.as_str(), "{at}");
    assert_eq!(api["essential"], true, "{at}");
    assert_eq!(
        api["dockerLabels"][VERSION_LABEL],
        release.version.as_str(),
        "{at}"
    );
    assert_eq!(api["portMappings"][0]["containerPort"], 8080, "{at}");
    // The environment's variables are merged into the template's, in whatever order.
    let environment: BTreeMap<&str, &str> = api["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        environment,
        BTreeMap::from([("ENVIRONMENT", "staging"), ("LOG_FORMAT", "json")]),
        "{at}"
    );
    assert_eq!(
        api["secrets"],
        json!([{
            "name": "DATABASE_URL",
            "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kyb/db",
        }]),
        "{at}"
    );
    assert_eq!(api["logConfiguration"]["logDriver"], "awslogs", "{at}");
    assert_eq!(
        api["logConfiguration"]["options"],
        json!({
            "awslogs-group": "/ecs/kyb-api",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "api",
        }),
        "{at}"
    );
    let health = &api["healthCheck"];
    assert_eq!(
        health["command"],
        json!([
            "CMD-SHELL",
            "curl -f http://localhost:8080/health || exit 1"
        ]),
        "{at}"
    );
    assert_eq!(health["interval"], 10, "{at}");
    assert_eq!(health["retries"], 3, "{at}");
}

/// The verification note is TagResource on the service, read back by ListTagsForResource:
/// moto accepts both, the AWS CLI sees the tags, and only the run the note names finds its
/// release.
#[tokio::test]
async fn a_verification_note_is_a_service_tag_the_cli_reads() {
    let moto = Moto::start().await;
    let aws = Aws::new(&moto);
    let client = ecs_client(&moto);
    let initial = cluster_and_initial_definition(&client).await;
    create_service(&client, &aws, &initial).await;
    let target = target(&client);
    let serving = target.current_release().await.unwrap().unwrap();

    assert!(target.mark_verified(&serving, "run-1").await.unwrap());
    let service = aws.service().await;
    let tags = aws.tags(service["serviceArn"].as_str().unwrap()).await;
    let tag = |key: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| t["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        tag("kyb-deploy:verified-run").as_deref(),
        Some("run-1"),
        "{tags:#}"
    );
    assert_eq!(
        tag("kyb-deploy:verified-task-definition").as_deref(),
        Some(initial.as_str()),
        "{tags:#}"
    );

    let found = target
        .verified_by("run-1")
        .await
        .unwrap()
        .expect("run-1's note");
    assert_eq!(found.version, version("v1"));
    assert_eq!(found.platform_ref.as_deref(), Some(initial.as_str()));
    assert_eq!(found.record_id.as_deref(), Some("run-1"));
    assert_eq!(target.verified_by("run-2").await.unwrap(), None);

    // A later run's note replaces it.
    assert!(target.mark_verified(&serving, "run-2").await.unwrap());
    assert_eq!(target.verified_by("run-1").await.unwrap(), None);
    assert!(target.verified_by("run-2").await.unwrap().is_some());
}

#[tokio::test]
async fn a_deploy_registers_the_release_and_points_the_service_at_it() {
    let moto = Moto::start().await;
    let aws = Aws::new(&moto);
    let client = ecs_client(&moto);
    let initial = cluster_and_initial_definition(&client).await;
    create_service(&client, &aws, &initial).await;
    let target = target(&client);
    let release = release("v2");

    let plan = target.plan(&release).await.unwrap();
    let current = plan.current.as_ref().expect("the service runs v1");
    assert_eq!(current.version, version("v1"));
    assert_eq!(current.platform_ref.as_deref(), Some(initial.as_str()));
    let change = |resource: &str, field: &str| {
        plan.changes
            .iter()
            .find(|c| c.resource == resource && c.field == field)
            .unwrap_or_else(|| panic!("no {field} of {resource} in {:#?}", plan.changes))
    };
    let new_revision = change("service kyb-api", "taskDefinition");
    assert_eq!(new_revision.from.as_deref(), Some(initial.as_str()));
    let image_change = change("container api", "image");
    assert_eq!(image_change.from.as_deref(), Some(image("v1").as_str()));
    assert_eq!(image_change.to.as_deref(), Some(release.image.as_str()));
    let breaker = change(
        "service kyb-api",
        "deploymentConfiguration.deploymentCircuitBreaker",
    );
    assert_eq!(breaker.to.as_deref(), Some("enable true, rollback true"));
    // Planning changed nothing.
    assert_eq!(aws.revisions().await, [initial.as_str()]);

    // moto 5 applies UpdateService to the service (its taskDefinition and deployment
    // configuration) but keeps its one deployment, with the old task definition and id,
    // where ECS starts a new PRIMARY deployment of the new task definition. kyb-deploy
    // checks that the PRIMARY deployment runs what it deployed, so against moto the deploy
    // reports that mismatch after both writes; what they did is checked below. (The
    // rollout id is checked against moto where the deployment matches: see
    // `deploying_the_release_the_service_runs_registers_no_new_revision`.)
    let error = target.deploy(&release).await.expect_err(
        "moto 5 keeps the old deployment on UpdateService; if it now starts a new PRIMARY \
         deployment as ECS does, check handle.rollout_id against it here instead",
    );
    let service = aws.service().await;
    let deployment = primary(&service);
    let revisions = aws.revisions().await;
    assert_eq!(revisions.len(), 2, "one new revision: {revisions:?}");
    let registered = task_definition_arn(2);
    assert!(revisions.contains(&registered), "{revisions:?}");
    assert_eq!(
        deployment["taskDefinition"],
        initial.as_str(),
        "{service:#}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "ecs target: UpdateService succeeded but the primary deployment {} runs {initial}, not {registered}",
            deployment["id"].as_str().unwrap()
        )
    );

    assert_service_points_at(&aws, &registered).await;
    assert_registered_release(&aws, &registered, &release).await;
}

#[tokio::test]
async fn deploying_the_release_the_service_runs_registers_no_new_revision() {
    let moto = Moto::start().await;
    let aws = Aws::new(&moto);
    let client = ecs_client(&moto);
    cluster_and_initial_definition(&client).await;
    let target = target(&client);
    let release = release("v2");
    // The service already runs what kyb-deploy registers for the release. (Deploying it
    // twice on a service that ran v1 cannot show this on moto: moto's deployment keeps
    // running v1, so every deploy there sees v1 and registers again.)
    let running = register_as_kyb_deploy(&client, &target, &release).await;
    assert_eq!(running, task_definition_arn(2));
    create_service(&client, &aws, &running).await;
    assert_registered_release(&aws, &running, &release).await;
    let revisions = aws.revisions().await;
    assert_eq!(revisions.len(), 2, "{revisions:?}");

    // moto's answer, defaults and empty lists included, compares equal to the template.
    let plan = target.plan(&release).await.unwrap();
    assert!(
        plan.changes
            .iter()
            .all(|c| c.resource == "service kyb-api"
                && c.field.starts_with("deploymentConfiguration.")),
        "only the deployment configuration changes: {:#?}",
        plan.changes
    );

    for attempt in 1..=2 {
        let handle = target.deploy(&release).await.unwrap();
        assert_eq!(
            aws.revisions().await,
            revisions,
            "deploy #{attempt} registered a revision"
        );
        assert_eq!(
            handle.release.platform_ref.as_deref(),
            Some(running.as_str())
        );
        assert_eq!(handle.release.version, release.version);
        assert_eq!(handle.release.image, release.image);
        let service = aws.service().await;
        assert_eq!(
            primary(&service)["id"].as_str(),
            Some(handle.rollout_id.as_str()),
            "deploy #{attempt}: {service:#}"
        );
        assert_service_points_at(&aws, &running).await;
    }
    // The deployment configuration is in place now: nothing is left to change.
    let plan = target.plan(&release).await.unwrap();
    assert_eq!(plan.changes, []);
}

#[tokio::test]
async fn current_release_and_history_come_from_the_registered_revisions() {
    let moto = Moto::start().await;
    let aws = Aws::new(&moto);
    let client = ecs_client(&moto);
    let v1 = cluster_and_initial_definition(&client).await;
    let target = target(&client);
    let v2 = register_as_kyb_deploy(&client, &target, &release("v2")).await;
    create_service(&client, &aws, &v2).await;
    // A newer revision the service does not run (registered, never rolled out).
    let v3 = register_as_kyb_deploy(&client, &target, &release("v3")).await;
    assert_eq!(
        [v1.as_str(), v2.as_str(), v3.as_str()],
        [1, 2, 3].map(task_definition_arn)
    );

    let current = target.current_release().await.unwrap().unwrap();
    assert_eq!(current.version, version("v2"));
    assert_eq!(current.image, release("v2").image);
    assert_eq!(current.platform_ref.as_deref(), Some(v2.as_str()));

    let history = target.history().await.unwrap();
    let seen: Vec<(&str, &str, &str, bool)> = history
        .iter()
        .map(|r| {
            (
                r.release.platform_ref.as_deref().unwrap_or_default(),
                r.release.version.as_str(),
                r.release.image.as_str(),
                r.active,
            )
        })
        .collect();
    // Each revision's release, and whether the service runs it.
    let (image_v1, image_v2, image_v3) = (image("v1"), release("v2").image, release("v3").image);
    let known = BTreeMap::from([
        (v1.as_str(), ("v1", image_v1.as_str(), false)),
        (v2.as_str(), ("v2", image_v2.as_str(), true)),
        (v3.as_str(), ("v3", image_v3.as_str(), false)),
    ]);
    // Newest first by revision number, whatever order the server lists them in (moto
    // ignores `sort` and lists oldest first): the CLI's listing, sorted by revision.
    let mut listed = aws.revisions().await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    listed.sort_by_key(|arn| {
        std::cmp::Reverse(arn.rsplit(':').next().unwrap().parse::<u32>().unwrap())
    });
    assert_eq!(listed, [v3.clone(), v2.clone(), v1.clone()]);
    let expected: Vec<(&str, &str, &str, bool)> = listed
        .iter()
        .map(|arn| {
            let (v, image, active) = known[arn.as_str()];
            (arn.as_str(), v, image, active)
        })
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn ecr_login_issues_credentials_for_ecr_hosts_only() {
    let moto = Moto::start().await;
    let login = EcrLogin::with_client(ecr_client(&moto));
    assert!(login.handles(ECR_HOST));
    assert!(!login.handles("127.0.0.1:5000"));

    let credentials = login.login(ECR_HOST).await.unwrap();
    assert_eq!(credentials.username(), "AWS");
    assert_eq!(
        credentials.origin(),
        "ECR GetAuthorizationToken in us-east-1"
    );

    let source = CredentialSource::anonymous().with_login(Arc::new(login));
    let resolved = source.resolve(ECR_HOST).await.unwrap();
    assert_eq!(resolved.as_ref().map(|c| c.username()), Some("AWS"));
    assert_eq!(
        resolved.as_ref().map(|c| c.origin()),
        Some("ECR GetAuthorizationToken in us-east-1")
    );
    assert_eq!(source.resolve("127.0.0.1:5000").await.unwrap(), None);
}
