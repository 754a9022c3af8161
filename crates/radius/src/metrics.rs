//! Counters per NAS and outcome, and the last rejects per service.
//!
//! Counters are plain atomics in a fixed array per NAS (found by name under a read lock), so
//! counting costs an atomic add. [`RadiusMetrics::register`] exposes them to Prometheus as a
//! collector that reads them at scrape time; [`RadiusMetrics::snapshot`] gives the same
//! numbers to code and tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use jiff::Timestamp;
use lastmile_domain::ids::{NasId, ServiceId};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

use crate::decide::RejectReason;

/// The `nas` label of packets from no known NAS.
pub const UNKNOWN_NAS: &str = "unknown";

/// What a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Access-Request.
    Access,
    /// Accounting-Request.
    Accounting,
    /// Status-Server (RFC 5997), on either port.
    StatusServer,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 3] = [
        RequestKind::Access,
        RequestKind::Accounting,
        RequestKind::StatusServer,
    ];

    /// The `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Accounting => "accounting",
            RequestKind::StatusServer => "status_server",
        }
    }

    fn index(self) -> usize {
        match self {
            RequestKind::Access => 0,
            RequestKind::Accounting => 1,
            RequestKind::StatusServer => 2,
        }
    }
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestResult {
    /// Access-Accept (or the answer to Status-Server).
    Accept,
    /// Access-Accept into the walled garden.
    WalledGarden,
    /// Access-Reject, and why.
    Reject(RejectReason),
    /// Accounting-Response after the sink stored the record.
    Recorded,
    /// A retransmission answered from the cache.
    Retransmit,
}

const N_RESULTS: usize = 4 + RejectReason::ALL.len();
const N_KINDS: usize = RequestKind::ALL.len();

impl RequestResult {
    /// The `result` label: `accept`, `walled_garden`, `recorded`, `retransmit`, or the
    /// reject reason (`wrong_password`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestResult::Accept => "accept",
            RequestResult::WalledGarden => "walled_garden",
            RequestResult::Recorded => "recorded",
            RequestResult::Retransmit => "retransmit",
            RequestResult::Reject(r) => r.as_str(),
        }
    }

    fn index(self) -> usize {
        match self {
            RequestResult::Accept => 0,
            RequestResult::WalledGarden => 1,
            RequestResult::Recorded => 2,
            RequestResult::Retransmit => 3,
            RequestResult::Reject(r) => 4 + r.index(),
        }
    }

    fn from_index(i: usize) -> Option<RequestResult> {
        Some(match i {
            0 => RequestResult::Accept,
            1 => RequestResult::WalledGarden,
            2 => RequestResult::Recorded,
            3 => RequestResult::Retransmit,
            n => RequestResult::Reject(*RejectReason::ALL.get(n - 4)?),
        })
    }
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// From an address no NAS has.
    UnknownNas,
    /// Not a RADIUS packet (bad lengths, unknown code).
    Malformed,
    /// A code this port does not take (a reply, a CoA-Request...).
    UnexpectedCode,
    /// An Access-Request without Message-Authenticator where the NAS must send it.
    MissingMessageAuthenticator,
    /// Message-Authenticator or Request Authenticator wrong: usually the wrong secret.
    BadAuthenticator,
    /// A retransmission of a request still being worked on.
    DuplicateInProgress,
    /// An Accounting-Request that cannot be recorded (no Acct-Status-Type, bad values).
    InvalidAccounting,
    /// The accounting sink failed: no answer, the NAS retransmits.
    SinkFailed,
    /// The reply could not be encoded (a value too long, a packet over 4096 octets).
    ReplyEncoding,
    /// Sending the reply failed.
    SendFailed,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [DropReason; 10] = [
        DropReason::UnknownNas,
        DropReason::Malformed,
        DropReason::UnexpectedCode,
        DropReason::MissingMessageAuthenticator,
        DropReason::BadAuthenticator,
        DropReason::DuplicateInProgress,
        DropReason::InvalidAccounting,
        DropReason::SinkFailed,
        DropReason::ReplyEncoding,
        DropReason::SendFailed,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownNas => "unknown_nas",
            DropReason::Malformed => "malformed",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::DuplicateInProgress => "duplicate_in_progress",
            DropReason::InvalidAccounting => "invalid_accounting",
            DropReason::SinkFailed => "sink_failed",
            DropReason::ReplyEncoding => "reply_encoding",
            DropReason::SendFailed => "send_failed",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::UnknownNas => 0,
            DropReason::Malformed => 1,
            DropReason::UnexpectedCode => 2,
            DropReason::MissingMessageAuthenticator => 3,
            DropReason::BadAuthenticator => 4,
            DropReason::DuplicateInProgress => 5,
            DropReason::InvalidAccounting => 6,
            DropReason::SinkFailed => 7,
            DropReason::ReplyEncoding => 8,
            DropReason::SendFailed => 9,
        }
    }
}

#[derive(Debug, Default)]
struct NasCounters {
    requests: [[AtomicU64; N_RESULTS]; N_KINDS],
    dropped: [AtomicU64; DropReason::ALL.len()],
}

/// One Access-Reject of a service, for support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectEvent {
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: RejectReason,
    /// Through which NAS.
    pub nas_id: NasId,
    /// Its name.
    pub nas_name: String,
    /// The User-Name of the request, if it had one (a typo shows here).
    pub username: Option<String>,
}

/// Rejects kept per service.
pub const REJECTS_PER_SERVICE: usize = 10;
/// Services whose rejects are kept; past that, the service rejected first is forgotten.
pub const REJECT_SERVICES: usize = 65_536;

#[derive(Debug, Default)]
struct RejectLog {
    by_service: HashMap<ServiceId, VecDeque<RejectEvent>>,
    order: VecDeque<ServiceId>,
}

/// The server's counters and reject log. Share it as `Arc<RadiusMetrics>`.
#[derive(Debug, Default)]
pub struct RadiusMetrics {
    per_nas: RwLock<HashMap<Box<str>, Arc<NasCounters>>>,
    unknown: NasCounters,
    rejects: Mutex<RejectLog>,
}

/// One non-zero request counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// NAS name, or [`UNKNOWN_NAS`].
    pub nas: String,
    /// Kind of request.
    pub kind: RequestKind,
    /// Outcome.
    pub result: RequestResult,
    /// How many.
    pub count: u64,
}

/// One non-zero drop counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCount {
    /// NAS name, or [`UNKNOWN_NAS`].
    pub nas: String,
    /// Why.
    pub reason: DropReason,
    /// How many.
    pub count: u64,
}

/// Every non-zero counter at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Requests answered.
    pub requests: Vec<RequestCount>,
    /// Datagrams dropped.
    pub dropped: Vec<DropCount>,
}

impl MetricsSnapshot {
    /// The request counter for (`nas`, `kind`, `result`), 0 if never counted.
    pub fn requests(&self, nas: &str, kind: RequestKind, result: RequestResult) -> u64 {
        self.requests
            .iter()
            .filter(|c| c.nas == nas && c.kind == kind && c.result == result)
            .map(|c| c.count)
            .sum()
    }

    /// The drop counter for (`nas`, `reason`), 0 if never counted.
    pub fn dropped(&self, nas: &str, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .filter(|c| c.nas == nas && c.reason == reason)
            .map(|c| c.count)
            .sum()
    }

    /// Every drop with `reason`, whatever the NAS.
    pub fn dropped_total(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .filter(|c| c.reason == reason)
            .map(|c| c.count)
            .sum()
    }
}

impl RadiusMetrics {
    /// Empty counters.
    pub fn new() -> Self {
        RadiusMetrics::default()
    }

    fn with_nas<R>(&self, nas: Option<&str>, f: impl FnOnce(&NasCounters) -> R) -> R {
        let Some(name) = nas else {
            return f(&self.unknown);
        };
        let found = self
            .per_nas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        let counters = match found {
            Some(c) => c,
            None => self
                .per_nas
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(Box::from(name))
                .or_default()
                .clone(),
        };
        f(&counters)
    }

    /// Counts a request answered for NAS `nas` (`None`: unknown).
    pub fn count_request(&self, nas: Option<&str>, kind: RequestKind, result: RequestResult) {
        self.with_nas(nas, |c| {
            if let Some(n) = c
                .requests
                .get(kind.index())
                .and_then(|row| row.get(result.index()))
            {
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Counts a dropped datagram.
    pub fn count_drop(&self, nas: Option<&str>, reason: DropReason) {
        self.with_nas(nas, |c| {
            if let Some(n) = c.dropped.get(reason.index()) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Remembers a reject of `service`: the last [`REJECTS_PER_SERVICE`] are kept.
    pub fn record_reject(&self, service: ServiceId, event: RejectEvent) {
        let mut log = self.rejects.lock().unwrap_or_else(PoisonError::into_inner);
        if !log.by_service.contains_key(&service) {
            if log.by_service.len() >= REJECT_SERVICES {
                if let Some(oldest) = log.order.pop_front() {
                    log.by_service.remove(&oldest);
                }
            }
            log.order.push_back(service);
        }
        let ring = log.by_service.entry(service).or_default();
        if ring.len() >= REJECTS_PER_SERVICE {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The last rejects of `service`, oldest first: "why can't this subscriber connect?".
    pub fn last_rejects(&self, service: ServiceId) -> Vec<RejectEvent> {
        let log = self.rejects.lock().unwrap_or_else(PoisonError::into_inner);
        log.by_service
            .get(&service)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn each_nas(&self, mut f: impl FnMut(&str, &NasCounters)) {
        f(UNKNOWN_NAS, &self.unknown);
        let map = self.per_nas.read().unwrap_or_else(PoisonError::into_inner);
        for (name, c) in map.iter() {
            f(name, c);
        }
    }

    /// Every non-zero counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut snap = MetricsSnapshot::default();
        self.each_nas(|nas, c| {
            for (kind, row) in RequestKind::ALL.iter().zip(&c.requests) {
                for (i, n) in row.iter().enumerate() {
                    let count = n.load(Ordering::Relaxed);
                    if let (true, Some(result)) = (count > 0, RequestResult::from_index(i)) {
                        snap.requests.push(RequestCount {
                            nas: nas.to_string(),
                            kind: *kind,
                            result,
                            count,
                        });
                    }
                }
            }
            for (reason, n) in DropReason::ALL.iter().zip(&c.dropped) {
                let count = n.load(Ordering::Relaxed);
                if count > 0 {
                    snap.dropped.push(DropCount {
                        nas: nas.to_string(),
                        reason: *reason,
                        count,
                    });
                }
            }
        });
        snap
    }

    /// Registers the counters with `registry`, as `radius_requests_total{nas, kind, result}`
    /// and `radius_dropped_total{nas, reason}` under the registry's prefix: in the
    /// `lastmile`-prefixed registry of `lastmile-http` they are
    /// `lastmile_radius_requests_total` and `lastmile_radius_dropped_total`.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register_collector(Box::new(MetricsCollector(self.clone())));
    }
}

#[derive(Debug)]
struct MetricsCollector(Arc<RadiusMetrics>);

impl Collector for MetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.snapshot();
        let c0 = ConstCounter::new(0u64);
        {
            let mut m = encoder.encode_descriptor(
                "radius_requests",
                "RADIUS requests answered, by NAS, kind and result",
                None,
                c0.metric_type(),
            )?;
            for r in &snap.requests {
                let labels = [
                    ("nas", r.nas.as_str()),
                    ("kind", r.kind.as_str()),
                    ("result", r.result.as_str()),
                ];
                ConstCounter::new(r.count).encode(m.encode_family(&labels)?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "radius_dropped",
            "RADIUS datagrams dropped without an answer, by NAS and reason",
            None,
            c0.metric_type(),
        )?;
        for d in &snap.dropped {
            let labels = [("nas", d.nas.as_str()), ("reason", d.reason.as_str())];
            ConstCounter::new(d.count).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastmile_domain::service::ServiceStatus;

    #[test]
    fn indexes_round_trip() {
        for r in RejectReason::ALL {
            let rr = RequestResult::Reject(r);
            assert_eq!(RequestResult::from_index(rr.index()), Some(rr));
        }
        for i in 0..N_RESULTS {
            assert_eq!(RequestResult::from_index(i).map(|r| r.index()), Some(i));
        }
        assert_eq!(RequestResult::from_index(N_RESULTS), None);
        for (i, d) in DropReason::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
    }

    #[test]
    fn counts_snapshot_and_prometheus_text() {
        let m = Arc::new(RadiusMetrics::new());
        m.count_request(Some("core-1"), RequestKind::Access, RequestResult::Accept);
        m.count_request(Some("core-1"), RequestKind::Access, RequestResult::Accept);
        m.count_request(
            Some("core-1"),
            RequestKind::Access,
            RequestResult::Reject(RejectReason::NotActive(ServiceStatus::Suspended)),
        );
        m.count_drop(None, DropReason::UnknownNas);
        let s = m.snapshot();
        assert_eq!(
            s.requests("core-1", RequestKind::Access, RequestResult::Accept),
            2
        );
        assert_eq!(s.dropped(UNKNOWN_NAS, DropReason::UnknownNas), 1);
        assert_eq!(s.dropped_total(DropReason::Malformed), 0);

        let mut registry = Registry::with_prefix("lastmile");
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"lastmile_radius_requests_total{nas="core-1",kind="access",result="accept"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"result="not_active_suspended"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"lastmile_radius_dropped_total{nas="unknown",reason="unknown_nas"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn reject_log_keeps_the_last_ten() {
        let m = RadiusMetrics::new();
        let svc = ServiceId::generate();
        let nas = NasId::generate();
        for i in 0..12 {
            let reason = if i < 11 {
                RejectReason::WrongPassword
            } else {
                RejectReason::SimultaneousUse
            };
            m.record_reject(
                svc,
                RejectEvent {
                    at: Timestamp::from_second(i).unwrap(),
                    reason,
                    nas_id: nas,
                    nas_name: "core-1".into(),
                    username: Some("jo@isp".into()),
                },
            );
        }
        let last = m.last_rejects(svc);
        assert_eq!(last.len(), REJECTS_PER_SERVICE);
        assert_eq!(last[0].at, Timestamp::from_second(2).unwrap());
        assert_eq!(last[9].reason, RejectReason::SimultaneousUse);
        assert!(m.last_rejects(ServiceId::generate()).is_empty());
    }
}
