//! Integration tests of kyb-deploy-core.

mod verify;
