//! Rendering: live progress, run reports, tables, errors, JSON documents.

pub(crate) mod errors;
pub(crate) mod format;
pub(crate) mod github;
pub(crate) mod json;
pub(crate) mod progress;
pub(crate) mod run;
pub(crate) mod style;
pub(crate) mod table;
pub(crate) mod writer;
