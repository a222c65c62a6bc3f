//! The deployment controller: moves tasks through their lifecycle, starts and stops tasks
//! within `maximumPercent`/`minimumHealthyPercent`, completes deployments, and runs the
//! deployment circuit breaker with its rollback.

use std::collections::BTreeMap;

use rand::rngs::StdRng;

use super::docker_runtime::DockerRuntime;
use super::faults::FaultSet;
use super::lifecycle::{TaskLaunch, advance_task_gated, new_task, stop};
use super::model::{
    Cluster, Deployment, Ids, MAX_EVENTS, Phase, RolloutState, Service, ServiceEvent,
    ServiceStatus, State, Task, TaskDefinition, find_task_definition,
};
use super::service_deployments;

/// Simulated seconds between two controller passes.
const STEP: f64 = 1.0;
/// The most controller passes one catch-up makes; longer gaps take longer steps.
const MAX_STEPS: f64 = 20_000.0;
/// Simulated seconds a stopped task stays listed.
const STOPPED_TASK_RETENTION_SECONDS: f64 = 3600.0;

/// The number of failed tasks that trips the deployment circuit breaker: half the desired
/// count rounded up, at least 3 and at most 200.
#[must_use]
pub(crate) fn breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Task counts of one deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) desired: u32,
    pub(crate) running: u32,
    pub(crate) pending: u32,
}

/// The counts of each deployment of `service`, in the order of `service.deployments`.
pub(crate) fn deployment_counts(service: &Service, tasks: &[Task]) -> Vec<Counts> {
    service
        .deployments
        .iter()
        .enumerate()
        .map(|(index, deployment)| {
            let mut counts = Counts::default();
            let mut active = 0;
            for task in tasks.iter().filter(|task| task.deployment == deployment.id) {
                counts.running += u32::from(task.phase == Phase::Running);
                counts.pending += u32::from(task.phase.is_pending());
                active += u32::from(task.is_active());
            }
            counts.desired = if index == 0 {
                service.desired_count
            } else {
                active
            };
            counts
        })
        .collect()
}

/// Runs the controller of the virtual runtime from where it stopped up to `now`.
#[cfg(test)]
pub(crate) fn advance_to(state: &mut State, now: f64, rng: &mut StdRng, faults: &FaultSet) {
    advance_with(state, now, rng, faults, None);
}

/// Runs the controller from where it stopped up to `now` (simulated epoch seconds), with
/// the tasks' containers in `docker` when the simulator is Docker-backed.
pub(crate) fn advance_with(
    state: &mut State,
    now: f64,
    rng: &mut StdRng,
    faults: &FaultSet,
    docker: Option<&DockerRuntime>,
) {
    let span = now - state.controller_time;
    if span <= 0.0 {
        return;
    }
    let step = (span / MAX_STEPS).max(STEP);
    while state.controller_time < now {
        let at = (state.controller_time + step).min(now);
        for region in state.regions.values_mut() {
            for cluster in region.clusters.values_mut() {
                let mut pass = Pass {
                    region: &region.name,
                    families: &region.families,
                    at,
                    rng,
                    faults,
                    docker,
                };
                pass.run(cluster);
            }
        }
        state.controller_time = at;
    }
}

/// One controller pass over a cluster at simulated time `at`.
struct Pass<'a> {
    region: &'a str,
    families: &'a BTreeMap<String, Vec<TaskDefinition>>,
    at: f64,
    rng: &'a mut StdRng,
    faults: &'a FaultSet,
    docker: Option<&'a DockerRuntime>,
}

impl Pass<'_> {
    fn run(&mut self, cluster: &mut Cluster) {
        let Cluster {
            services,
            tasks,
            name: cluster_name,
            arn: cluster_arn,
            ..
        } = cluster;
        for task in tasks.iter_mut() {
            let mut container_started = true;
            let mut failed = None;
            if let Some(docker) = self.docker {
                let grace = services
                    .get(&task.service)
                    .and_then(|s| s.health_check_grace_period);
                let grace = f64::from(grace.unwrap_or(0));
                (failed, container_started) =
                    docker.sync_task(task, self.at, grace, self.region, self.families);
            }
            let failed = failed.or_else(|| advance_task_gated(task, self.at, container_started));
            if let Some(failed) = failed {
                let deployment = services
                    .get_mut(&failed.service)
                    .and_then(|s| s.deployments.iter_mut().find(|d| d.id == failed.deployment));
                if let Some(deployment) = deployment {
                    deployment.failed_tasks += 1;
                    deployment.updated_at = self.at;
                }
            }
        }
        // ECS forgets stopped tasks about an hour after they stop; so does the simulator, which
        // also keeps a long-running simulation from slowing down.
        let at = self.at;
        tasks.retain(|task| {
            task.times
                .stopped
                .is_none_or(|stopped| at - stopped < STOPPED_TASK_RETENTION_SECONDS)
        });
        for service in services.values_mut() {
            match service.status {
                ServiceStatus::Inactive => continue,
                ServiceStatus::Draining => {
                    // DeleteService stopped its tasks; once none is left running (they may
                    // still be STOPPING) the service is INACTIVE.
                    let running = tasks.iter().any(|t| {
                        t.service == service.name
                            && !matches!(t.phase, Phase::Stopping | Phase::Stopped)
                    });
                    if !running {
                        service.status = ServiceStatus::Inactive;
                    }
                    continue;
                }
                ServiceStatus::Active => {}
            }
            if let Some(docker) = self.docker {
                docker.ensure_proxy(self.region, cluster_name, &service.name);
            }
            self.circuit_breaker(service);
            self.schedule(service, tasks, cluster_name, cluster_arn);
            self.complete(service, tasks);
        }
    }

    fn circuit_breaker(&mut self, service: &mut Service) {
        let at = self.at;
        let primary = &mut service.deployments[0];
        let trips = service.config.circuit_breaker
            && primary.rollout_state == RolloutState::InProgress
            && primary.failed_tasks >= breaker_threshold(service.desired_count);
        if !trips {
            return;
        }
        primary.rollout_state = RolloutState::Failed;
        primary.rollout_state_reason =
            "ECS deployment circuit breaker: tasks failed to start.".into();
        primary.updated_at = at;
        let message = format!(
            "(service {}) (deployment {}) deployment failed: tasks failed to start.",
            service.name, primary.id
        );
        let is_rollback = primary.is_rollback;
        let (record, failed_tasks) = (primary.record.clone(), primary.failed_tasks);
        push_event(service, self.rng, at, message);
        let rollback_to = service
            .last_completed
            .clone()
            .filter(|_| service.config.rollback && !is_rollback);
        let rollback_revision = rollback_to
            .as_ref()
            .map(|(_, _, revision)| revision.clone());
        service_deployments::tripped(service, &record, failed_tasks, rollback_revision, at);
        let Some((completed_id, task_definition, revision)) = rollback_to else {
            return;
        };
        let rollback = Deployment {
            id: Ids::deployment(self.rng),
            task_definition: task_definition.clone(),
            failed_tasks: 0,
            created_at: at,
            updated_at: at,
            rollout_state: RolloutState::InProgress,
            rollout_state_reason: format!(
                "ECS deployment circuit breaker: rolling back to deploymentId {completed_id}."
            ),
            is_rollback: true,
            revision,
            record,
        };
        service.deployments.insert(0, rollback);
        service.task_definition = task_definition;
        service.steady = false;
    }

    fn schedule(
        &mut self,
        service: &mut Service,
        tasks: &mut Vec<Task>,
        cluster: &str,
        cluster_arn: &str,
    ) {
        let primary = service.deployments[0].clone();
        if primary.rollout_state == RolloutState::Failed {
            // Without a rollback a failed deployment launches nothing more; the tasks of the
            // earlier deployment keep serving.
            return;
        }
        let desired = service.desired_count;
        let max_total = desired * service.config.maximum_percent / 100;
        let min_healthy = (desired * service.config.minimum_healthy_percent).div_ceil(100);
        let ours = |task: &Task| task.service == service.name && task.is_active();
        let is_healthy = |task: &Task| task.phase == Phase::Running && task.healthy;

        let mut stopped = Vec::new();
        // Scale in: the primary has more tasks than desired; stop the least advanced first.
        let mut primary_tasks: Vec<usize> = (0..tasks.len())
            .filter(|&i| ours(&tasks[i]) && tasks[i].deployment == primary.id)
            .collect();
        primary_tasks.sort_by_key(|&i| (is_healthy(&tasks[i]), std::cmp::Reverse(i)));
        let excess = primary_tasks.len().saturating_sub(desired as usize);
        for &i in &primary_tasks[..excess] {
            stop(&mut tasks[i], self.at, &primary.id);
            stopped.push(tasks[i].id.clone());
        }

        // Drain the older deployments: unhealthy tasks at once, healthy ones while enough
        // healthy tasks remain.
        let mut healthy = tasks.iter().filter(|t| ours(t) && is_healthy(t)).count();
        let mut old: Vec<usize> = (0..tasks.len())
            .filter(|&i| ours(&tasks[i]) && tasks[i].deployment != primary.id)
            .collect();
        old.sort_by_key(|&i| is_healthy(&tasks[i]));
        for i in old {
            if is_healthy(&tasks[i]) {
                if healthy <= min_healthy as usize {
                    break;
                }
                healthy -= 1;
            }
            stop(&mut tasks[i], self.at, &primary.id);
            stopped.push(tasks[i].id.clone());
        }

        // Launch primary tasks within maximumPercent.
        let active = tasks.iter().filter(|t| ours(t)).count();
        let primary_active = tasks
            .iter()
            .filter(|t| ours(t) && t.deployment == primary.id)
            .count();
        let launch = (desired as usize)
            .saturating_sub(primary_active)
            .min((max_total as usize).saturating_sub(active));
        let mut started = Vec::new();
        for _ in 0..launch {
            let Some(task) = self.new_task(service, &primary, cluster, cluster_arn) else {
                break;
            };
            started.push(task.id.clone());
            tasks.push(task);
        }

        if !stopped.is_empty() {
            let message = format!(
                "(service {}) has stopped {} running tasks: {}.",
                service.name,
                stopped.len(),
                task_list(&stopped)
            );
            push_event(service, self.rng, self.at, message);
        }
        if !started.is_empty() {
            let message = format!(
                "(service {}) has started {} tasks: {}.",
                service.name,
                started.len(),
                task_list(&started)
            );
            push_event(service, self.rng, self.at, message);
        }
        if !stopped.is_empty() || !started.is_empty() {
            service.steady = false;
        }
    }

    fn complete(&mut self, service: &mut Service, tasks: &[Task]) {
        let primary_id = service.deployments[0].id.clone();
        let mut primary_active = 0;
        let mut primary_healthy = 0;
        let mut others_alive = false;
        for task in tasks.iter().filter(|t| t.service == service.name) {
            if task.deployment == primary_id {
                primary_active += u32::from(task.is_active());
                primary_healthy +=
                    u32::from(task.is_active() && task.phase == Phase::Running && task.healthy);
            } else {
                others_alive |= task.phase != Phase::Stopped;
            }
        }
        let settled = primary_active == service.desired_count
            && primary_healthy == service.desired_count
            && !others_alive;
        let primary = &mut service.deployments[0];
        if settled && primary.rollout_state == RolloutState::InProgress {
            primary.rollout_state = RolloutState::Completed;
            primary.rollout_state_reason = format!("ECS deployment {primary_id} completed.");
            primary.updated_at = self.at;
            let task_definition = primary.task_definition.clone();
            let (record, revision) = (primary.record.clone(), primary.revision.clone());
            service.deployments.truncate(1);
            service.last_completed = Some((primary_id.clone(), task_definition, revision));
            service_deployments::completed(service, &record, self.at);
            let message = format!(
                "(service {}) (deployment {primary_id}) deployment completed.",
                service.name
            );
            push_event(service, self.rng, self.at, message);
        }
        let steady = settled && service.deployments.len() == 1;
        if steady && !service.steady {
            let message = format!("(service {}) has reached a steady state.", service.name);
            push_event(service, self.rng, self.at, message);
        }
        service.steady = steady;
    }

    fn new_task(
        &mut self,
        service: &Service,
        deployment: &Deployment,
        cluster: &str,
        cluster_arn: &str,
    ) -> Option<Task> {
        let definition = find_task_definition(self.families, &deployment.task_definition)?;
        let launch = TaskLaunch {
            region: self.region,
            cluster,
            cluster_arn,
            definition,
            launch_type: &service.launch_type,
            network: service.network_configuration.as_ref(),
            grace: f64::from(service.health_check_grace_period.unwrap_or(0)),
            faults: self.faults,
            docker: self.docker.is_some(),
            at: self.at,
        };
        let mut task = new_task(&launch, self.rng);
        task.service = service.name.clone();
        task.deployment = deployment.id.clone();
        task.started_by = Some(deployment.id.clone());
        task.group = format!("service:{}", service.name);
        Some(task)
    }
}

fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn push_event(service: &mut Service, rng: &mut StdRng, at: f64, message: String) {
    service.events.insert(
        0,
        ServiceEvent {
            id: Ids::uuid(rng),
            created_at: at,
            message,
        },
    );
    service.events.truncate(MAX_EVENTS);
}

#[cfg(test)]
mod tests;
