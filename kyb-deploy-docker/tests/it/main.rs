//! Integration tests of kyb-deploy-docker, against the real Docker engine and the local
//! registry on 127.0.0.1:5000 (`scripts/setup.sh` starts both).

mod image;
mod policy;
mod target;
