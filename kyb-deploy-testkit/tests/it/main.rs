//! Integration tests of the testkit: the sample service, and the pipeline engine driven
//! through the fakes.

mod ecs_sim;
mod harness;
mod k8s_sim;
mod main_job;
mod pipeline;
mod reliability;
mod run_shape;
mod sample_api;
mod sigkill;
