//! Unit tests of the deployment controller, driven through the API dispatch on a state of
//! their own.

use proptest::prelude::*;
use rand::SeedableRng as _;
use serde_json::{Value, json};

use super::*;
use crate::ecs_sim::api::{Context, dispatch};
use crate::ecs_sim::faults::Fault;

struct World {
    state: State,
    rng: StdRng,
    faults: FaultSet,
    now: f64,
}

impl World {
    fn new(faults: Vec<Fault>) -> Self {
        let mut set = FaultSet::default();
        for fault in faults {
            set.add(fault);
        }
        let now = 1_800_000_000.0;
        let mut world = Self {
            state: State {
                controller_time: now,
                ..State::default()
            },
            rng: StdRng::seed_from_u64(3),
            faults: set,
            now,
        };
        world.call("CreateCluster", json!({"clusterName": "c"}));
        for image in ["app:v1", "app:v2"] {
            world.call(
                "RegisterTaskDefinition",
                json!({"family": "app", "containerDefinitions": [
                    {"name": "app", "image": image, "memory": 128}
                ]}),
            );
        }
        world
    }

    fn call(&mut self, operation: &str, body: Value) -> Value {
        let region = "us-east-1";
        let context = Context {
            now: self.now,
            rng: &mut self.rng,
            faults: &self.faults,
            docker: false,
        };
        dispatch(operation, &mut self.state, region, &body, context)
            .unwrap_or_else(|error| panic!("{operation} failed: {error:?}"))
    }

    fn advance(&mut self, seconds: f64) {
        self.now += seconds;
        advance_to(&mut self.state, self.now, &mut self.rng, &self.faults);
    }

    fn cluster(&self) -> &Cluster {
        &self.state.regions["us-east-1"].clusters["c"]
    }

    fn service(&self) -> &Service {
        &self.cluster().services["s"]
    }

    fn counts(&self) -> Vec<Counts> {
        deployment_counts(self.service(), &self.cluster().tasks)
    }

    /// Advances a second at a time until `done` holds; panics after `limit` seconds.
    fn run_until(
        &mut self,
        limit: u32,
        mut check: impl FnMut(&Self),
        done: impl Fn(&Self) -> bool,
    ) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            self.advance(1.0);
            check(self);
        }
        panic!(
            "not done within {limit} s: {:#?}",
            self.service().deployments
        );
    }
}

fn create_service(world: &mut World, desired: u32, configuration: Value, grace: u32) {
    world.call(
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "app:1",
               "desiredCount": desired, "deploymentConfiguration": configuration,
               "healthCheckGracePeriodSeconds": grace}),
    );
}

fn primary_state(world: &World) -> RolloutState {
    world.service().deployments[0].rollout_state
}

#[test]
fn breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    let cases = [
        (0, 3),
        (1, 3),
        (2, 3),
        (6, 3),
        (7, 4),
        (10, 5),
        (399, 200),
        (1000, 200),
    ];
    for (desired, threshold) in cases {
        assert_eq!(breaker_threshold(desired), threshold, "desired {desired}");
    }
}

#[test]
fn rollout_completes_with_the_events_ecs_writes() {
    let mut world = World::new(Vec::new());
    create_service(&mut world, 2, json!({}), 0);
    world.run_until(120, |_| {}, |w| w.service().steady);
    world.call(
        "UpdateService",
        json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}),
    );
    assert_eq!(world.service().deployments.len(), 2);
    world.run_until(120, |_| {}, |w| primary_state(w) == RolloutState::Completed);

    let service = world.service();
    assert_eq!(service.deployments.len(), 1);
    assert!(service.task_definition.ends_with("task-definition/app:2"));
    assert_eq!(
        world.counts()[0],
        Counts {
            desired: 2,
            running: 2,
            pending: 0
        }
    );
    let messages: Vec<&str> = service.events.iter().map(|e| e.message.as_str()).collect();
    let id = &service.deployments[0].id;
    assert_eq!(messages[0], "(service s) has reached a steady state.");
    assert_eq!(
        messages[1],
        format!("(service s) (deployment {id}) deployment completed.")
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service s) has started 2 tasks: (task "))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service s) has stopped 2 running tasks"))
    );
    // The steady-state event is written once, not on every pass.
    let written = messages.len();
    world.advance(30.0);
    assert_eq!(world.service().events.len(), written);
}

#[test]
fn failing_image_trips_the_breaker_and_rolls_back() {
    let mut world = World::new(vec![Fault::fail_to_start(
        "app:v2",
        "CannotPullContainerError: nope",
    )]);
    let breaker = json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true}});
    create_service(&mut world, 2, breaker, 0);
    world.run_until(120, |_| {}, |w| primary_state(w) == RolloutState::Completed);
    world.call(
        "UpdateService",
        json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}),
    );
    world.run_until(200, |_| {}, |w| w.service().deployments[0].is_rollback);
    let service = world.service();
    assert_eq!(service.deployments[1].rollout_state, RolloutState::Failed);
    // Both tasks of a round fail together, so the count can pass the threshold of 3.
    assert!(service.deployments[1].failed_tasks >= 3);
    assert!(service.deployments[0].task_definition.ends_with("app:1"));
    world.run_until(200, |_| {}, |w| primary_state(w) == RolloutState::Completed);
    assert!(world.service().task_definition.ends_with("app:1"));
    let failed = world.cluster().tasks.iter().filter(|t| t.failed).count();
    assert!(failed >= 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the settings, the counts agree, the tasks stay within maximumPercent, and the
    /// deployment completes (or, with a failing image, fails) within a bounded time.
    #[test]
    fn rollouts_respect_their_limits_and_end(
        desired in 1_u32..7,
        min_healthy in prop::sample::select(vec![0_u32, 25, 50, 75, 100]),
        max_percent in prop::sample::select(vec![100_u32, 125, 150, 200]),
        grace in 0_u32..30,
        failing in any::<bool>(),
        rollback in any::<bool>(),
    ) {
        let max_total = desired * max_percent / 100;
        let min_total = (desired * min_healthy).div_ceil(100);
        // With no room above the desired count and no task allowed down, ECS stalls too.
        prop_assume!(max_total > desired || min_total < desired);
        let faults = if failing {
            vec![Fault::fail_to_start("app:v2", "CannotPullContainerError: nope")]
        } else {
            Vec::new()
        };
        let mut world = World::new(faults);
        let configuration = json!({
            "minimumHealthyPercent": min_healthy,
            "maximumPercent": max_percent,
            "deploymentCircuitBreaker": {"enable": failing, "rollback": rollback},
        });
        create_service(&mut world, desired, configuration, grace);
        let check = |w: &World| {
            let counts = w.counts();
            let active: u32 = counts.iter().map(|c| c.running + c.pending).sum();
            assert!(active <= max_total, "{active} tasks > {max_total}: {counts:?}");
            let service = w.service();
            let running = w.cluster().tasks.iter().filter(|t| t.phase == Phase::Running).count();
            assert_eq!(running as u32, counts.iter().map(|c| c.running).sum::<u32>());
            assert!(!service.deployments.is_empty());
        };
        world.run_until(600, check, |w| primary_state(w) == RolloutState::Completed);
        world.call("UpdateService", json!({"cluster": "c", "service": "s", "taskDefinition": "app:2"}));
        let ended = |w: &World| match primary_state(w) {
            RolloutState::Completed => true,
            RolloutState::Failed => !rollback,
            RolloutState::InProgress => false,
        };
        world.run_until(3000, check, ended);
        let service = world.service();
        if failing {
            prop_assert!(service.deployments.iter().any(|d| d.rollout_state == RolloutState::Failed)
                || service.task_definition.ends_with("app:1"));
            prop_assert!(service.task_definition.ends_with("app:1") || !rollback);
        } else {
            prop_assert!(service.task_definition.ends_with("app:2"));
            prop_assert_eq!(world.counts()[0], Counts { desired, running: desired, pending: 0 });
        }
    }
}
