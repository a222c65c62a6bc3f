//! Integration tests of the ECS target against the in-process ECS simulator.

mod pipeline;
mod support;
mod target;
