//! Integration tests of kyb-deploy-core.

mod notify;
mod verify;
