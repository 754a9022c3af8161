//! RADIUS sessions and the usage their accounting reports: the pure maths of turning a NAS's
//! cumulative counters into per-update deltas and hourly buckets.
//!
//! A NAS reports, in every Interim-Update and Stop, the octets of the whole session so far.
//! Packets can arrive twice, late, out of order, or not at all; a NAS can restart and count
//! from zero again. The rules here make sure no byte is counted twice and none is lost:
//! - a packet older than what the session already saw (by Acct-Session-Time, else by event
//!   time) changes nothing;
//! - a counter that went backwards in a newer packet starts a new base: its value is the new
//!   delta (never a negative one);
//! - a Stop or Interim without octets keeps the counters (never zeroes usage);
//! - an Interim or Stop for a session never started (lost Start) opens it, counting from 0.

use crate::ids::{NasId, ServiceId, SessionId, SubscriberId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::str::FromStr;

/// The accounting events the store records (Acct-Status-Type). Other values are answered
/// by the server and not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcctStatus {
    Start,
    InterimUpdate,
    Stop,
    /// The NAS (re)started: it has no sessions.
    AccountingOn,
    /// The NAS is going down: it will have no sessions.
    AccountingOff,
}

/// Octets of a session so far, from the subscriber's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Octets {
    /// Sent towards the subscriber (the NAS's Acct-Output-*).
    pub download: u64,
    /// Received from the subscriber (the NAS's Acct-Input-*).
    pub upload: u64,
}

/// One accounting request, as the server read it (the service already resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountingEvent {
    pub nas_id: NasId,
    pub status: AcctStatus,
    /// Acct-Session-Id; empty only for Accounting-On / -Off.
    pub acct_session_id: String,
    pub service_id: Option<ServiceId>,
    pub subscriber_id: Option<SubscriberId>,
    pub username: Option<String>,
    pub framed_ip: Option<IpAddr>,
    pub calling_station_id: Option<String>,
    pub nas_port_id: Option<String>,
    /// Acct-Session-Time, seconds.
    pub session_time: Option<u32>,
    /// The session's cumulative octets; `None` when the packet carried none.
    pub octets: Option<Octets>,
    pub terminate_cause: Option<u32>,
    /// When it happened (Event-Timestamp, else arrival minus Acct-Delay-Time).
    pub event_time: Timestamp,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SessionEnd {
    /// An Accounting-Request Stop.
    Stop,
    /// The NAS said Accounting-On or -Off: it has no sessions any more.
    NasRestart,
    /// No accounting for several interim intervals: presumed gone (a later update reopens it).
    Stale,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::NasRestart => "nas_restart",
            Self::Stale => "stale",
        }
    }
}

impl FromStr for SessionEnd {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stop" => Ok(Self::Stop),
            "nas_restart" => Ok(Self::NasRestart),
            "stale" => Ok(Self::Stale),
            o => Err(format!("unknown session end `{o}`")),
        }
    }
}

/// A session: one Acct-Session-Id of one NAS, from its first accounting to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RadiusSession {
    pub id: SessionId,
    pub nas_id: NasId,
    pub acct_session_id: String,
    /// `None` when no service matched its login, MAC or circuit (kept: revenue assurance).
    pub service_id: Option<ServiceId>,
    pub subscriber_id: Option<SubscriberId>,
    pub username: Option<String>,
    pub framed_ip: Option<IpAddr>,
    pub calling_station_id: Option<String>,
    pub nas_port_id: Option<String>,
    pub started_at: Timestamp,
    /// Event time of the latest accounting that counted.
    pub updated_at: Timestamp,
    pub stopped_at: Option<Timestamp>,
    pub end: Option<SessionEnd>,
    pub terminate_cause: Option<u32>,
    /// Acct-Session-Time of the latest accounting that counted.
    pub session_time: u32,
    /// Octets attributed to the session (the sum of its deltas).
    pub total: Octets,
    /// The NAS's counters in the latest accounting that counted: the base of the next delta.
    pub base: Octets,
    /// The policy (tier) the NAS last acknowledged by CoA, and when.
    pub accepted_policy: Option<String>,
    pub policy_updated_at: Option<Timestamp>,
}

impl RadiusSession {
    pub fn is_open(&self) -> bool {
        self.stopped_at.is_none()
    }
}

/// Octets a service used between two instants (one accounting update's worth).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    pub service_id: ServiceId,
    pub subscriber_id: SubscriberId,
    pub from: Timestamp,
    pub to: Timestamp,
    pub octets: Octets,
}

/// Octets of one service in one clock hour (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourlyUsage {
    pub subscriber_id: SubscriberId,
    pub service_id: ServiceId,
    pub hour_start: Timestamp,
    pub octets: Octets,
}

/// What an accounting event does to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// A new session row.
    Insert(RadiusSession),
    /// The session's row, updated.
    Update(RadiusSession),
    /// Nothing to write: a duplicate or an out-of-date packet.
    Ignore,
}

/// The effect of `event` on `latest`, the most recent session with the same NAS and
/// Acct-Session-Id (open or not), and the usage it adds. `new_id` names the session if one
/// is created (called only then: most events update a session, and an id costs randomness). Accounting-On / -Off are not for this function (they close a NAS's sessions).
pub fn apply_accounting(
    latest: Option<&RadiusSession>,
    event: &AccountingEvent,
    new_id: impl FnOnce() -> SessionId,
) -> (SessionChange, Option<UsageDelta>) {
    let is_start = event.status == AcctStatus::Start;
    let stop = event.status == AcctStatus::Stop;
    match latest {
        // A Start after the session ended names a new session: NASes reuse Acct-Session-Ids
        // (after a reboot, or counting from a small number).
        Some(s) if is_start && s.end.is_some() => insert(event, new_id()),
        None => insert(event, new_id()),
        Some(s) => {
            if !is_newer(s, event) {
                return (SessionChange::Ignore, None);
            }
            let (delta, base) = match event.octets {
                Some(now) => advance(s.base, now),
                None => (Octets::default(), s.base),
            };
            let mut next = s.clone();
            next.base = base;
            next.total = add(s.total, delta);
            next.updated_at = next.updated_at.max(event.event_time);
            next.session_time = event
                .session_time
                .unwrap_or(s.session_time)
                .max(s.session_time);
            fill(&mut next, event);
            match (stop, s.end) {
                (true, _) => {
                    next.stopped_at = Some(s.stopped_at.unwrap_or(event.event_time));
                    next.end = Some(SessionEnd::Stop);
                    next.terminate_cause = event.terminate_cause.or(s.terminate_cause);
                }
                // An update from a session presumed gone: it is alive after all.
                (false, Some(SessionEnd::Stale | SessionEnd::NasRestart)) if !is_start => {
                    next.stopped_at = None;
                    next.end = None;
                }
                _ => {}
            }
            if next == *s {
                return (SessionChange::Ignore, None);
            }
            let usage = usage(&next, s.updated_at, event.event_time, delta);
            (SessionChange::Update(next), usage)
        }
    }
}

fn insert(event: &AccountingEvent, id: SessionId) -> (SessionChange, Option<UsageDelta>) {
    let counted = event.octets.unwrap_or_default();
    let session_time = event.session_time.unwrap_or(0);
    let started_at = event
        .event_time
        .checked_sub(SignedDuration::from_secs(i64::from(session_time)))
        .unwrap_or(event.event_time);
    let stop = event.status == AcctStatus::Stop;
    let mut s = RadiusSession {
        id,
        nas_id: event.nas_id,
        acct_session_id: event.acct_session_id.clone(),
        service_id: None,
        subscriber_id: None,
        username: None,
        framed_ip: None,
        calling_station_id: None,
        nas_port_id: None,
        started_at,
        updated_at: event.event_time,
        stopped_at: stop.then_some(event.event_time),
        end: stop.then_some(SessionEnd::Stop),
        terminate_cause: event.terminate_cause,
        session_time,
        total: counted,
        base: counted,
        accepted_policy: None,
        policy_updated_at: None,
    };
    fill(&mut s, event);
    let usage = usage(&s, started_at, event.event_time, counted);
    (SessionChange::Insert(s), usage)
}

/// Attributes a later packet may add or correct.
fn fill(s: &mut RadiusSession, e: &AccountingEvent) {
    if e.service_id.is_some() {
        s.service_id = e.service_id;
        s.subscriber_id = e.subscriber_id;
    }
    s.username = e.username.clone().or(s.username.take());
    s.framed_ip = e.framed_ip.or(s.framed_ip);
    s.calling_station_id = e.calling_station_id.clone().or(s.calling_station_id.take());
    s.nas_port_id = e.nas_port_id.clone().or(s.nas_port_id.take());
}

/// Whether `e` is not older than what `s` already counted: by Acct-Session-Time where both
/// have one (the NAS's own clock of the session), else by event time.
fn is_newer(s: &RadiusSession, e: &AccountingEvent) -> bool {
    match e.session_time {
        Some(t) if t != s.session_time => t > s.session_time,
        _ => e.event_time >= s.updated_at,
    }
}

/// The delta from `base` to `now`, per direction, and the next base. A counter below its
/// base restarted (the NAS reset it, or it wrapped without Gigawords): what it shows is new.
pub fn advance(base: Octets, now: Octets) -> (Octets, Octets) {
    let one = |b: u64, n: u64| if n >= b { n - b } else { n };
    (
        Octets {
            download: one(base.download, now.download),
            upload: one(base.upload, now.upload),
        },
        now,
    )
}

fn add(a: Octets, b: Octets) -> Octets {
    Octets {
        download: a.download.saturating_add(b.download),
        upload: a.upload.saturating_add(b.upload),
    }
}

fn usage(s: &RadiusSession, from: Timestamp, to: Timestamp, d: Octets) -> Option<UsageDelta> {
    if d == Octets::default() {
        return None;
    }
    Some(UsageDelta {
        service_id: s.service_id?,
        subscriber_id: s.subscriber_id?,
        from: from.min(to),
        to,
        octets: d,
    })
}

/// The longest span a delta is spread over: a session silent for longer (lost updates) has
/// its bytes spread over its last 31 days, not over years of buckets.
const MAX_SPREAD: SignedDuration = SignedDuration::from_hours(24 * 31);
const HOUR_MICROS: i128 = 3_600_000_000;

/// Splits a delta into clock-hour buckets by time share: the bytes of an update covering
/// 10:50–11:05 go two thirds to 10:00 and one third to 11:00. Exact: the buckets sum to the
/// delta (cumulative rounding). A delta at an instant goes to that instant's hour.
pub fn split_by_hour(d: &UsageDelta) -> Vec<HourlyUsage> {
    let to = d.to.as_microsecond() as i128;
    let earliest = d.to.checked_sub(MAX_SPREAD).unwrap_or(d.to);
    let from = d.from.max(earliest).min(d.to).as_microsecond() as i128;
    let hour_of = |t: i128| t.div_euclid(HOUR_MICROS) * HOUR_MICROS;
    let bucket = |hour: i128, octets| HourlyUsage {
        subscriber_id: d.subscriber_id,
        service_id: d.service_id,
        hour_start: Timestamp::from_microsecond(hour as i64).unwrap_or(d.to),
        octets,
    };
    // The instant `to` belongs to the interval (from, to]: an update at 11:00:00 sharp
    // reports the hour before it.
    let last_hour = hour_of(to - 1);
    if to <= from || hour_of(from) == last_hour {
        return vec![bucket(hour_of((to - 1).max(from)), d.octets)];
    }
    let total = to - from;
    let share = |v: u64, upto: i128| ((v as i128) * (upto - from) / total) as u64;
    let mut out = Vec::new();
    let mut hour = hour_of(from);
    let mut given = Octets::default();
    while hour <= last_hour {
        let end = (hour + HOUR_MICROS).min(to);
        let upto = Octets {
            download: share(d.octets.download, end),
            upload: share(d.octets.upload, end),
        };
        let part = Octets {
            download: upto.download - given.download,
            upload: upto.upload - given.upload,
        };
        if part != Octets::default() {
            out.push(bucket(hour, part));
        }
        given = upto;
        hour += HOUR_MICROS;
    }
    out
}

#[cfg(test)]
mod tests;
