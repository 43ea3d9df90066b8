//! Time behind a trait, so poll and backoff logic is tested in milliseconds
//! with a fake clock instead of real sleeps.

use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// The time left before `deadline`, `None` once it has passed. Zero counts
/// as passed: it is no valid socket or poll timeout (there it means "never"
/// or "do not wait").
pub fn time_left(deadline: Instant) -> Option<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    (!d.is_zero()).then_some(d)
}

/// A deadline that may be "never" (a timeout of 0 means wait forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` zero means no deadline.
    pub fn after(now: Instant, timeout: Duration) -> Self {
        if timeout.is_zero() {
            Deadline(None)
        } else {
            Deadline(now.checked_add(timeout))
        }
    }
    pub fn at(i: Instant) -> Self {
        Deadline(Some(i))
    }
    pub fn instant(&self) -> Option<Instant> {
        self.0
    }
    /// Time left, `None` when there is no deadline; zero once passed.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(now))
    }
    pub fn passed(&self, now: Instant) -> bool {
        matches!(self.0, Some(d) if now >= d)
    }
    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }
    /// Cap `d` to the time left.
    pub fn cap(&self, now: Instant, d: Duration) -> Duration {
        self.remaining(now).map_or(d, |r| r.min(d))
    }
}
