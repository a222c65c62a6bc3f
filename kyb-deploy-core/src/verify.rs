//! Verification: the [`HealthProbe`] seam with what it is asked and what it reports, the
//! HTTP probe that implements it against a service's `/health`, `/ready`, `/status` and
//! `/metrics`, and [`verify_stage`], the verify stage as a command runs it on its own.

mod health_probe;
mod http_probe;
mod latency;
mod probe_tracker;
mod prometheus;
mod stage;

pub(crate) use self::health_probe::soak_passes;
pub use self::health_probe::{
    CheckReport, HealthProbe, LatencySummary, SoakRequest, VerificationReport, VerifyRequest,
};
pub use self::http_probe::HttpHealthProbe;
pub(crate) use self::stage::PROBE_MARGIN;
pub use self::stage::{VerifyOutcome, verify_stage};
