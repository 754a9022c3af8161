//! Live sessions per service, for simultaneous-use.
//!
//! The question comes with every Access-Request, so it is answered from memory: the server
//! calls [`SessionCounter::observe`] with every accounting record it handles, and
//! [`InMemorySessions`] keeps the count from Start / Interim-Update / Stop and forgets a NAS's
//! sessions on Accounting-On / -Off (the NAS restarted: it has none). A store-backed counter
//! can seed it from the open sessions at start-up ([`InMemorySessions::seed`]).
//!
//! A lost Stop would lock a subscriber out for good, so sessions not heard of for
//! `stale_after` (three interim intervals by default) stop counting.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use lastmile_domain::ids::{NasId, ServiceId};
use lastmile_radius_codec::acct::AcctStatusType;

use crate::accounting::AccountingRecord;

/// Counts the live sessions of a service.
pub trait SessionCounter: Send + Sync + 'static {
    /// Sessions of `service` open now.
    fn live_sessions(&self, service: ServiceId) -> u32;

    /// Sees an accounting record the server handles (before the sink stores it; it may see a
    /// retransmitted record twice, so implementations must be idempotent). Default: nothing.
    fn observe(&self, _record: &AccountingRecord) {}
}

/// Counts nothing: simultaneous-use is never hit.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSessionLimit;

impl SessionCounter for NoSessionLimit {
    fn live_sessions(&self, _service: ServiceId) -> u32 {
        0
    }
}

#[derive(Debug)]
struct Live {
    nas_id: NasId,
    session_id: Box<str>,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Table {
    by_service: HashMap<ServiceId, Vec<Live>>,
}

impl Table {
    fn upsert(&mut self, service: ServiceId, nas_id: NasId, session_id: &str, now: Instant) {
        let list = self.by_service.entry(service).or_default();
        match list
            .iter_mut()
            .find(|l| l.nas_id == nas_id && &*l.session_id == session_id)
        {
            Some(l) => l.last_seen = now,
            None => list.push(Live {
                nas_id,
                session_id: session_id.into(),
                last_seen: now,
            }),
        }
    }

    fn remove(&mut self, service: ServiceId, nas_id: NasId, session_id: &str) {
        if let Some(list) = self.by_service.get_mut(&service) {
            list.retain(|l| !(l.nas_id == nas_id && &*l.session_id == session_id));
            if list.is_empty() {
                self.by_service.remove(&service);
            }
        }
    }

    fn forget_nas(&mut self, nas_id: NasId) {
        self.by_service.retain(|_, list| {
            list.retain(|l| l.nas_id != nas_id);
            !list.is_empty()
        });
    }
}

/// The in-memory counter (the default).
#[derive(Debug)]
pub struct InMemorySessions {
    table: RwLock<Table>,
    stale_after: Duration,
}

impl Default for InMemorySessions {
    fn default() -> Self {
        InMemorySessions::new(InMemorySessions::DEFAULT_STALE_AFTER)
    }
}

impl InMemorySessions {
    /// Three default interim intervals.
    pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(900);

    /// A counter forgetting sessions silent for `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        InMemorySessions {
            table: RwLock::new(Table::default()),
            stale_after,
        }
    }

    /// Loads sessions known open elsewhere (the store's sessions table at start-up).
    pub fn seed(&self, sessions: impl IntoIterator<Item = (ServiceId, NasId, String)>) {
        let now = Instant::now();
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        for (service, nas, session) in sessions {
            t.upsert(service, nas, &session, now);
        }
    }

    /// Applies one record at instant `now` (what [`SessionCounter::observe`] does with the
    /// current instant).
    pub fn observe_at(&self, record: &AccountingRecord, now: Instant) {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        match record.status {
            AcctStatusType::AccountingOn | AcctStatusType::AccountingOff => {
                t.forget_nas(record.nas_id);
            }
            AcctStatusType::Start | AcctStatusType::InterimUpdate => {
                if let (Some(service), Some(session)) =
                    (record.service_id, record.acct_session_id.as_deref())
                {
                    t.upsert(service, record.nas_id, session, now);
                }
            }
            AcctStatusType::Stop => {
                if let (Some(service), Some(session)) =
                    (record.service_id, record.acct_session_id.as_deref())
                {
                    t.remove(service, record.nas_id, session);
                }
            }
            AcctStatusType::Other(_) => {}
        }
    }

    /// Live sessions of `service` at instant `now`.
    pub fn live_sessions_at(&self, service: ServiceId, now: Instant) -> u32 {
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let Some(list) = t.by_service.get(&service) else {
            return 0;
        };
        let live = list
            .iter()
            .filter(|l| now.saturating_duration_since(l.last_seen) < self.stale_after)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Drops sessions silent for `stale_after` (they no longer count either way; this frees
    /// their memory). Call it now and then, e.g. with every interim interval.
    pub fn prune(&self, now: Instant) {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let stale = self.stale_after;
        t.by_service.retain(|_, list| {
            list.retain(|l| now.saturating_duration_since(l.last_seen) < stale);
            !list.is_empty()
        });
    }
}

impl SessionCounter for InMemorySessions {
    fn live_sessions(&self, service: ServiceId) -> u32 {
        self.live_sessions_at(service, Instant::now())
    }

    fn observe(&self, record: &AccountingRecord) {
        self.observe_at(record, Instant::now());
    }
}

impl<T: SessionCounter> SessionCounter for std::sync::Arc<T> {
    fn live_sessions(&self, service: ServiceId) -> u32 {
        T::live_sessions(self, service)
    }

    fn observe(&self, record: &AccountingRecord) {
        T::observe(self, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn rec(
        status: AcctStatusType,
        nas: NasId,
        service: ServiceId,
        session: &str,
    ) -> AccountingRecord {
        AccountingRecord {
            nas_id: nas,
            status,
            acct_session_id: Some(session.into()),
            acct_multi_session_id: None,
            username: None,
            service_id: Some(service),
            subscriber_id: None,
            framed_ip: None,
            calling_station_id: None,
            nas_port_id: None,
            session_time: None,
            input_octets: None,
            output_octets: None,
            input_packets: 0,
            output_packets: 0,
            terminate_cause: None,
            event_time: Timestamp::UNIX_EPOCH,
            received_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn start_interim_stop_and_nas_restart() {
        let s = InMemorySessions::default();
        let (nas, other_nas, svc) = (NasId::generate(), NasId::generate(), ServiceId::generate());
        let t0 = Instant::now();
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), t0);
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), t0);
        assert_eq!(
            s.live_sessions_at(svc, t0),
            1,
            "a retransmitted Start counts once"
        );
        s.observe_at(&rec(AcctStatusType::InterimUpdate, other_nas, svc, "b"), t0);
        assert_eq!(
            s.live_sessions_at(svc, t0),
            2,
            "an Interim of an unknown session adds it"
        );
        s.observe_at(&rec(AcctStatusType::Stop, nas, svc, "a"), t0);
        assert_eq!(s.live_sessions_at(svc, t0), 1);
        s.observe_at(&rec(AcctStatusType::Stop, nas, svc, "a"), t0);
        assert_eq!(
            s.live_sessions_at(svc, t0),
            1,
            "a repeated Stop is harmless"
        );
        let mut on = rec(AcctStatusType::AccountingOn, other_nas, svc, "");
        on.service_id = None;
        s.observe_at(&on, t0);
        assert_eq!(s.live_sessions_at(svc, t0), 0);
    }

    #[test]
    fn silent_sessions_stop_counting() {
        let s = InMemorySessions::new(Duration::from_secs(60));
        let (nas, svc) = (NasId::generate(), ServiceId::generate());
        let t0 = Instant::now();
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), t0);
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(59)), 1);
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(61)), 0);
        s.prune(t0 + Duration::from_secs(61));
        assert_eq!(s.live_sessions_at(svc, t0), 0);
        s.seed([(svc, nas, "x".to_string())]);
        assert_eq!(s.live_sessions(svc), 1);
    }
}
