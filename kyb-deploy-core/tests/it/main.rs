//! Integration tests of kyb-deploy-core.

mod docker_image;
mod docker_policy;
mod docker_target;
mod notify;
mod verify;
