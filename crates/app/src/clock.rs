//! Time comes from a clock the application owns, never from the database. Timestamps are cut
//! to microseconds, the precision the stores keep, so what a use case returns equals what a
//! later read returns.

use jiff::Timestamp;
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Cuts a timestamp to whole microseconds.
pub fn to_micros(t: Timestamp) -> Timestamp {
    let us = t.as_microsecond();
    Timestamp::from_microsecond(us).unwrap_or(t)
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        to_micros(Timestamp::now())
    }
}

/// A clock that only moves when told: for tests and for seeding history (`lastmile demo`).
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        Self(Mutex::new(to_micros(t)))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to_micros(t);
    }

    pub fn advance(&self, d: jiff::SignedDuration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g = to_micros(g.checked_add(d).unwrap_or(*g));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
