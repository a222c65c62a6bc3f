//! The runtime both API simulators stand on: the simulated clock, the `docker` CLI and
//! loopback HTTP checks of containers, the load-balancer proxy, and the wildcard patterns of
//! fault rules. Neither simulator reaches into the other; both use these.

mod clock;
pub(crate) mod docker_cli;
mod glob;
pub(crate) mod proxy;

pub use self::clock::SimClock;
pub(crate) use self::glob::glob_matches;
