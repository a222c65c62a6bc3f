//! Integration tests of the kyb-deploy CLI: the binary itself (help and error snapshots, exit
//! codes, the seed-compatible script), and whole runs in process through `run_with` against
//! the testkit's fake target and scripted probe.

mod binary;
mod commands;
mod config_validation;
mod docker_e2e;
mod docker_faults_e2e;
mod ecs_e2e;
mod k8s_e2e;
mod render;
mod runs;
mod script;
mod shared_state;
mod signals;
mod snapshots;
mod state_commands;
mod support;
mod workflows;
