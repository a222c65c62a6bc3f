//! The runtime both API simulators stand on: the simulated clock, the `docker` CLI and
//! loopback HTTP checks of containers, one container as the engine runs it, the fleet of a
//! simulator's container agents and service proxies, the load-balancer proxy, serving the
//! API until shutdown, and the wildcard patterns of fault rules. Neither simulator reaches
//! into the other; both use these.

mod clock;
pub(crate) mod container;
pub(crate) mod docker_cli;
pub(crate) mod fleet;
mod glob;
pub(crate) mod proxy;
pub(crate) mod serve;

pub use self::clock::SimClock;
pub(crate) use self::glob::glob_matches;
