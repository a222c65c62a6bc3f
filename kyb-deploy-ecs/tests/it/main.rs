//! Integration tests of the ECS target: against the in-process ECS simulator, and
//! conformance against moto_server.

mod examples;
mod lost_answers;
mod moto;
mod pipeline;
mod s3_state;
mod support;
mod target;
