//! Rate-limited logging of dropped datagrams: a misconfigured NAS (wrong secret) or a scan
//! sends thousands of packets a second, and one log line per packet would drown the logs and
//! cost more than the drop. At most one line per (source address, reason) per interval; the
//! counters still count every packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Remembered (address, reason) pairs at most; a flood from spoofed addresses then logs
/// nothing new until old entries expire, rather than growing the table.
const MAX_ENTRIES: usize = 4096;

/// Decides whether a drop is worth a log line.
#[derive(Debug)]
pub struct LogLimiter {
    last: Mutex<HashMap<(IpAddr, &'static str), Instant>>,
    interval: Duration,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter::new(Duration::from_secs(10))
    }
}

impl LogLimiter {
    /// At most one line per (address, reason) per `interval`.
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            last: Mutex::new(HashMap::new()),
            interval,
        }
    }

    /// Whether to log an event `what` (a drop reason's label, say) about `ip` at `now`; if so,
    /// the next one for that pair is logged no earlier than `now + interval`.
    pub fn allow(&self, ip: IpAddr, what: &'static str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = last.get_mut(&(ip, what)) {
            if now.saturating_duration_since(*at) < self.interval {
                return false;
            }
            *at = now;
            return true;
        }
        if last.len() >= MAX_ENTRIES {
            let interval = self.interval;
            last.retain(|_, at| now.saturating_duration_since(*at) < interval);
            if last.len() >= MAX_ENTRIES {
                return false;
            }
        }
        last.insert((ip, what), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DropReason;

    #[test]
    fn one_line_per_pair_per_interval() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        assert!(l.allow(a, DropReason::BadAuthenticator.as_str(), t0));
        assert!(!l.allow(
            a,
            DropReason::BadAuthenticator.as_str(),
            t0 + Duration::from_secs(9)
        ));
        assert!(l.allow(a, DropReason::Malformed.as_str(), t0));
        assert!(l.allow(b, DropReason::BadAuthenticator.as_str(), t0));
        assert!(l.allow(
            a,
            DropReason::BadAuthenticator.as_str(),
            t0 + Duration::from_secs(10)
        ));
    }

    #[test]
    fn the_table_is_bounded() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES as u32 {
            assert!(l.allow(
                IpAddr::from(i.to_be_bytes()),
                DropReason::UnknownNas.as_str(),
                t0
            ));
        }
        let extra = IpAddr::from([250, 0, 0, 1]);
        assert!(!l.allow(extra, DropReason::UnknownNas.as_str(), t0));
        // Once the old entries expire there is room again.
        assert!(l.allow(
            extra,
            DropReason::UnknownNas.as_str(),
            t0 + Duration::from_secs(11)
        ));
    }
}
