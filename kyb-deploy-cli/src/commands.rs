//! One module per command; each exposes `run`, returning the exit code of a result it
//! printed, or the error that stopped it.

pub(crate) mod check;
pub(crate) mod config_validate;
pub(crate) mod deploy;
pub(crate) mod history;
pub(crate) mod plan;
pub(crate) mod render;
pub(crate) mod rollback;
pub(crate) mod shell;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod verify;
