//! [`SimClock`]: the simulated clock, either real time scaled by a factor or advanced by hand.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The simulator's clock.
///
/// Simulated time starts at the wall-clock time the clock was made. In scaled mode it then
/// runs `scale` times faster than real time (a 60 s rollout takes 1 s at scale 60); in manual
/// mode it stands still until [`SimClock::advance`] moves it, which makes tests deterministic.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_testkit::ecs_sim::SimClock;
///
/// let clock = SimClock::manual();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(90));
/// ```
#[derive(Debug)]
pub struct SimClock {
    /// Simulated time at creation, in seconds since the Unix epoch.
    origin: f64,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Scaled { started: Instant, scale: f64 },
    Manual { elapsed: Mutex<Duration> },
}

impl SimClock {
    /// A clock that runs `scale` times faster than real time; `1.0` is real time.
    ///
    /// # Panics
    ///
    /// Panics when `scale` is not a finite positive number.
    #[must_use]
    pub fn scaled(scale: f64) -> Self {
        assert!(
            scale.is_finite() && scale > 0.0,
            "the time scale must be a finite positive number, not {scale}"
        );
        Self {
            origin: wall_clock_seconds(),
            mode: Mode::Scaled {
                started: Instant::now(),
                scale,
            },
        }
    }

    /// A clock that moves only when [`SimClock::advance`] is called.
    #[must_use]
    pub fn manual() -> Self {
        Self {
            origin: wall_clock_seconds(),
            mode: Mode::Manual {
                elapsed: Mutex::new(Duration::ZERO),
            },
        }
    }

    /// Whether this clock is advanced by hand.
    #[must_use]
    pub fn is_manual(&self) -> bool {
        matches!(self.mode, Mode::Manual { .. })
    }

    /// Simulated time passed since the clock was made.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        match &self.mode {
            Mode::Scaled { started, scale } => started.elapsed().mul_f64(*scale),
            Mode::Manual { elapsed } => *lock(elapsed),
        }
    }

    /// The current simulated time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(self.now_seconds())
    }

    /// The current simulated time in seconds since the Unix epoch, the unit of ECS
    /// timestamps.
    #[must_use]
    pub fn now_seconds(&self) -> f64 {
        self.origin + self.elapsed().as_secs_f64()
    }

    /// Moves a manual clock forward by `by`.
    ///
    /// # Panics
    ///
    /// Panics on a scaled clock, whose time only real time moves.
    pub fn advance(&self, by: Duration) {
        match &self.mode {
            Mode::Manual { elapsed } => *lock(elapsed) += by,
            Mode::Scaled { .. } => {
                panic!("SimClock::advance needs a manual clock; this one follows real time")
            }
        }
    }

    /// The real time it takes this clock to move by `simulated`; zero on a manual clock.
    #[must_use]
    pub fn real_time_for(&self, simulated: Duration) -> Duration {
        match &self.mode {
            Mode::Scaled { scale, .. } => simulated.div_f64(*scale),
            Mode::Manual { .. } => Duration::ZERO,
        }
    }
}

/// The wall clock in seconds since the epoch, rounded to milliseconds like ECS timestamps.
fn wall_clock_seconds() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_millis() as f64) / 1000.0
}

fn lock(elapsed: &Mutex<Duration>) -> std::sync::MutexGuard<'_, Duration> {
    // A panic while the lock is held cannot leave a Duration half-written.
    elapsed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = SimClock::manual();
        let start = clock.now_seconds();
        std::thread::sleep(Duration::from_millis(20));
        assert!((clock.now_seconds() - start).abs() < f64::EPSILON);
        clock.advance(Duration::from_millis(1500));
        assert!((clock.now_seconds() - start - 1.5).abs() < 1e-6);
        assert_eq!(clock.real_time_for(Duration::from_secs(10)), Duration::ZERO);
    }

    #[test]
    fn scaled_clock_runs_faster_than_real_time() {
        let clock = SimClock::scaled(100.0);
        std::thread::sleep(Duration::from_millis(30));
        // At least 30 ms of real time passed, so at least 3 s of simulated time.
        assert!(
            clock.elapsed() >= Duration::from_secs(3),
            "{:?}",
            clock.elapsed()
        );
        assert_eq!(
            clock.real_time_for(Duration::from_secs(60)),
            Duration::from_millis(600)
        );
    }

    #[test]
    #[should_panic(expected = "needs a manual clock")]
    fn advancing_a_scaled_clock_is_a_bug() {
        SimClock::scaled(1.0).advance(Duration::from_secs(1));
    }

    #[test]
    #[should_panic(expected = "finite positive")]
    fn zero_scale_is_rejected() {
        let _ = SimClock::scaled(0.0);
    }
}
