//! Live sessions per service, for simultaneous-use.
//!
//! The question comes with every Access-Request, so it is answered from memory: the server
//! calls [`SessionCounter::observe`] with every accounting record it handles, and
//! [`InMemorySessions`] keeps the count from Start / Interim-Update / Stop and forgets a NAS's
//! sessions on Accounting-On / -Off (the NAS restarted: it has none). A store-backed counter
//! can seed it from the open sessions at start-up ([`InMemorySessions::seed`]).
//!
//! A lost Stop would lock a subscriber out for good, so a session not heard of for its NAS's
//! `stale_session_multiplier` interim intervals (the window the store's stale sweep uses)
//! stops counting. A NAS sending no interim updates, and a session seeded from the store
//! before its NAS is heard from, get the counter's default window.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use lastmile_domain::ids::{NasId, ServiceId};
use lastmile_radius_codec::acct::AcctStatusType;

use crate::accounting::AccountingRecord;
use crate::directory::NasEntry;

/// Counts the live sessions of a service.
pub trait SessionCounter: Send + Sync + 'static {
    /// Sessions of `service` open now.
    fn live_sessions(&self, service: ServiceId) -> u32;

    /// Sees an accounting record the server handles from `nas` (before the sink stores it; it
    /// may see a retransmitted record twice, so implementations must be idempotent).
    /// Default: nothing.
    fn observe(&self, _record: &AccountingRecord, _nas: &NasEntry) {}
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
    /// Silence after which it stops counting.
    window: Duration,
}

impl Live {
    fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) < self.window
    }
}

#[derive(Debug, Default)]
struct Table {
    by_service: HashMap<ServiceId, Vec<Live>>,
}

impl Table {
    fn upsert(
        &mut self,
        service: ServiceId,
        nas_id: NasId,
        session_id: &str,
        now: Instant,
        window: Duration,
    ) {
        let list = self.by_service.entry(service).or_default();
        match list
            .iter_mut()
            .find(|l| l.nas_id == nas_id && &*l.session_id == session_id)
        {
            Some(l) => {
                l.last_seen = now;
                l.window = window;
            }
            None => list.push(Live {
                nas_id,
                session_id: session_id.into(),
                last_seen: now,
                window,
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
    /// The window where the NAS gives none (no interim updates) or is not known yet.
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

    /// A counter forgetting sessions silent for their NAS's window, or `stale_after`.
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
            t.upsert(service, nas, &session, now, self.stale_after);
        }
    }

    /// How long a session of `nas` may be silent: its stale-session multiplier of interim
    /// intervals, or the default for a NAS sending no interim updates.
    pub fn window(&self, nas: &NasEntry) -> Duration {
        match nas.interim_interval {
            0 => self.stale_after,
            i => Duration::from_secs(u64::from(i) * u64::from(nas.stale_session_multiplier.max(1))),
        }
    }

    /// Applies one record from a NAS whose window is `window` at instant `now` (what
    /// [`SessionCounter::observe`] does with the NAS's window and the current instant).
    pub fn observe_at(&self, record: &AccountingRecord, window: Duration, now: Instant) {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        match record.status {
            AcctStatusType::AccountingOn | AcctStatusType::AccountingOff => {
                t.forget_nas(record.nas_id);
            }
            AcctStatusType::Start | AcctStatusType::InterimUpdate => {
                if let (Some(service), Some(session)) =
                    (record.service_id, record.acct_session_id.as_deref())
                {
                    t.upsert(service, record.nas_id, session, now, window);
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
        let live = list.iter().filter(|l| l.alive(now)).count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Drops sessions silent past their window (they no longer count either way; this frees
    /// their memory). Call it now and then, e.g. with every interim interval.
    pub fn prune(&self, now: Instant) {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        t.by_service.retain(|_, list| {
            list.retain(|l| l.alive(now));
            !list.is_empty()
        });
    }
}

impl SessionCounter for InMemorySessions {
    fn live_sessions(&self, service: ServiceId) -> u32 {
        self.live_sessions_at(service, Instant::now())
    }

    fn observe(&self, record: &AccountingRecord, nas: &NasEntry) {
        self.observe_at(record, self.window(nas), Instant::now());
    }
}

impl<T: SessionCounter> SessionCounter for std::sync::Arc<T> {
    fn live_sessions(&self, service: ServiceId) -> u32 {
        T::live_sessions(self, service)
    }

    fn observe(&self, record: &AccountingRecord, nas: &NasEntry) {
        T::observe(self, record, nas);
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
        let w = InMemorySessions::DEFAULT_STALE_AFTER;
        let (nas, other_nas, svc) = (NasId::generate(), NasId::generate(), ServiceId::generate());
        let t0 = Instant::now();
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), w, t0);
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), w, t0);
        assert_eq!(
            s.live_sessions_at(svc, t0),
            1,
            "a retransmitted Start counts once"
        );
        s.observe_at(
            &rec(AcctStatusType::InterimUpdate, other_nas, svc, "b"),
            w,
            t0,
        );
        assert_eq!(
            s.live_sessions_at(svc, t0),
            2,
            "an Interim of an unknown session adds it"
        );
        s.observe_at(&rec(AcctStatusType::Stop, nas, svc, "a"), w, t0);
        assert_eq!(s.live_sessions_at(svc, t0), 1);
        s.observe_at(&rec(AcctStatusType::Stop, nas, svc, "a"), w, t0);
        assert_eq!(
            s.live_sessions_at(svc, t0),
            1,
            "a repeated Stop is harmless"
        );
        let mut on = rec(AcctStatusType::AccountingOn, other_nas, svc, "");
        on.service_id = None;
        s.observe_at(&on, w, t0);
        assert_eq!(s.live_sessions_at(svc, t0), 0);
    }

    #[test]
    fn silent_sessions_stop_counting() {
        let s = InMemorySessions::new(Duration::from_secs(60));
        let w = Duration::from_secs(60);
        let (nas, svc) = (NasId::generate(), ServiceId::generate());
        let t0 = Instant::now();
        s.observe_at(&rec(AcctStatusType::Start, nas, svc, "a"), w, t0);
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(59)), 1);
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(61)), 0);
        s.prune(t0 + Duration::from_secs(61));
        assert_eq!(s.live_sessions_at(svc, t0), 0);
        s.seed([(svc, nas, "x".to_string())]);
        assert_eq!(s.live_sessions(svc), 1);
    }

    #[test]
    fn each_nas_has_its_own_window() {
        use lastmile_domain::nas::VendorProfile;
        let s = InMemorySessions::new(Duration::from_secs(900));
        let entry = |interim: u32, multiplier: u32| {
            let mut n = NasEntry::new(
                NasId::generate(),
                "nas",
                std::net::IpAddr::from([127, 0, 0, 1]),
                b"secret".to_vec(),
                VendorProfile::Mikrotik,
            );
            n.interim_interval = interim;
            n.stale_session_multiplier = multiplier;
            n
        };
        let (quick, silent) = (entry(60, 2), entry(0, 3));
        assert_eq!(s.window(&quick), Duration::from_secs(120));
        assert_eq!(
            s.window(&silent),
            Duration::from_secs(900),
            "no interims: the default"
        );
        assert_eq!(
            s.window(&entry(300, 0)),
            Duration::from_secs(300),
            "multiplier at least 1"
        );

        let svc = ServiceId::generate();
        let t0 = Instant::now();
        s.observe_at(
            &rec(AcctStatusType::Start, quick.id, svc, "q"),
            s.window(&quick),
            t0,
        );
        s.observe_at(
            &rec(AcctStatusType::Start, silent.id, svc, "s"),
            s.window(&silent),
            t0,
        );
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(119)), 2);
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(121)), 1);
        // An update renews the session's window.
        let t1 = t0 + Duration::from_secs(100);
        s.observe_at(
            &rec(AcctStatusType::InterimUpdate, quick.id, svc, "q"),
            s.window(&quick),
            t1,
        );
        assert_eq!(s.live_sessions_at(svc, t0 + Duration::from_secs(219)), 2);
        s.prune(t0 + Duration::from_secs(901));
        assert_eq!(s.live_sessions_at(svc, t0), 0);
    }
}
