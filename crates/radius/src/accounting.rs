//! Accounting (RFC 2866, RFC 2869): the record read out of an Accounting-Request, and the
//! sink that must hold it durably before the NAS hears back.
//!
//! The Accounting-Response is the NAS's receipt: once it has one it forgets the record. So
//! the server answers only after [`AccountingSink::record`] returned `Ok`, and on `Err` it
//! answers nothing and lets the NAS retransmit.

use core::future::Future;
use std::net::Ipv4Addr;

use jiff::{SignedDuration, Timestamp};
use lastmile_domain::ids::{NasId, ServiceId, SubscriberId};
use lastmile_domain::radius::Octets;
use lastmile_radius_codec::acct::{self, AcctStatusType, Counters};
use lastmile_radius_codec::dict::dsl_forum;
use lastmile_radius_codec::{AttrType, DecodeError, PacketRef};

use crate::directory::{AuthRecord, Directory, NasEntry};
use crate::mac::MacAddr;
use std::sync::Arc;

/// One Accounting-Request, as the sink stores it.
///
/// Directions are the NAS's: *input* is what the NAS received from the subscriber (their
/// upload), *output* what it sent them (their download). Use [`download`](Self::download) and
/// [`upload`](Self::upload) rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRecord {
    /// The NAS that sent it.
    pub nas_id: NasId,
    /// Start, Interim-Update, Stop, Accounting-On / -Off, or another value.
    pub status: AcctStatusType,
    /// Acct-Session-Id: with `nas_id`, names the session.
    pub acct_session_id: Option<String>,
    /// Acct-Multi-Session-Id.
    pub acct_multi_session_id: Option<String>,
    /// User-Name.
    pub username: Option<String>,
    /// The service, resolved from the login, the MAC or the circuit; `None` if none matches
    /// (and always for Accounting-On / -Off).
    pub service_id: Option<ServiceId>,
    /// Its subscriber (time-series rows are keyed by subscriber first).
    pub subscriber_id: Option<SubscriberId>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Calling-Station-Id (usually the subscriber's MAC), as sent.
    pub calling_station_id: Option<String>,
    /// NAS-Port-Id (the interface or VLAN).
    pub nas_port_id: Option<String>,
    /// Acct-Session-Time, seconds.
    pub session_time: Option<u32>,
    /// Octets the NAS received from the subscriber: the subscriber's **upload**
    /// (Acct-Input-Octets + Acct-Input-Gigawords × 2³²). `None` when absent: a Stop without
    /// counters must not read as "0 bytes so far".
    pub input_octets: Option<u64>,
    /// Octets the NAS sent to the subscriber: the subscriber's **download**
    /// (Acct-Output-Octets + Acct-Output-Gigawords × 2³²). `None` when absent.
    pub output_octets: Option<u64>,
    /// Acct-Input-Packets (from the subscriber). 0 when absent.
    pub input_packets: u32,
    /// Acct-Output-Packets (to the subscriber). 0 when absent.
    pub output_packets: u32,
    /// Acct-Terminate-Cause (values in `lastmile_radius_codec::dict::acct_terminate_cause`).
    pub terminate_cause: Option<u32>,
    /// When the event happened: Event-Timestamp, else `received_at` − Acct-Delay-Time.
    pub event_time: Timestamp,
    /// When the server received the packet.
    pub received_at: Timestamp,
}

impl AccountingRecord {
    /// Octets sent to the subscriber (Acct-Output-*); 0 when absent.
    pub fn download(&self) -> u64 {
        self.output_octets.unwrap_or(0)
    }

    /// Octets received from the subscriber (Acct-Input-*); 0 when absent.
    pub fn upload(&self) -> u64 {
        self.input_octets.unwrap_or(0)
    }

    /// The session's cumulative octets from the subscriber's side, if the packet carried any
    /// counter (a missing direction then counts as 0).
    pub fn octets(&self) -> Option<Octets> {
        (self.input_octets.is_some() || self.output_octets.is_some()).then(|| Octets {
            download: self.download(),
            upload: self.upload(),
        })
    }
}

/// The Accounting-Request cannot be recorded: it is not answered (and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccounting {
    /// No Acct-Status-Type.
    #[error("Acct-Status-Type is missing")]
    MissingStatusType,
    /// A counter, address or time of the wrong size.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Text attributes as text: not UTF-8 is replaced, not refused; losing a Stop over a
/// strange session id would be worse than storing it with a replacement character.
fn text(p: &PacketRef<'_>, kind: AttrType) -> Option<String> {
    p.get(kind).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The service accounting is about: the login, then the User-Name as a MAC, then
/// Calling-Station-Id as a MAC, then Agent-Circuit-Id. Unlike authentication there is no
/// password to protect here; the NAS says whose session it is.
pub fn resolve_service(directory: &Directory, request: &PacketRef<'_>) -> Option<Arc<AuthRecord>> {
    let user = request.get(AttrType::USER_NAME);
    user.and_then(|u| core::str::from_utf8(u).ok())
        .and_then(|u| directory.by_username(u))
        .or_else(|| {
            user.and_then(MacAddr::parse)
                .and_then(|m| directory.by_mac(m))
        })
        .or_else(|| {
            request
                .get(AttrType::CALLING_STATION_ID)
                .and_then(MacAddr::parse)
                .and_then(|m| directory.by_mac(m))
        })
        .or_else(|| {
            request
                .vendor(dsl_forum::AGENT_CIRCUIT_ID)
                .and_then(|c| directory.by_circuit_id(c))
        })
}

impl AccountingRecord {
    /// Reads a verified Accounting-Request from `nas`, received at `received_at`, resolving
    /// the service through `directory`.
    pub fn from_packet(
        request: &PacketRef<'_>,
        nas: &NasEntry,
        directory: &Directory,
        received_at: Timestamp,
    ) -> Result<AccountingRecord, InvalidAccounting> {
        let status = acct::status_type(request)?.ok_or(InvalidAccounting::MissingStatusType)?;
        let counters = Counters::from_packet(request)?;
        let event_time = match request.integer(AttrType::EVENT_TIMESTAMP)? {
            Some(secs) => Timestamp::from_second(i64::from(secs)).unwrap_or(received_at),
            None => {
                let delay = request.integer(AttrType::ACCT_DELAY_TIME)?.unwrap_or(0);
                received_at
                    .checked_sub(SignedDuration::from_secs(i64::from(delay)))
                    .unwrap_or(received_at)
            }
        };
        let service = match status {
            AcctStatusType::AccountingOn | AcctStatusType::AccountingOff => None,
            _ => resolve_service(directory, request),
        };
        Ok(AccountingRecord {
            nas_id: nas.id,
            status,
            acct_session_id: text(request, AttrType::ACCT_SESSION_ID),
            acct_multi_session_id: text(request, AttrType::ACCT_MULTI_SESSION_ID),
            username: text(request, AttrType::USER_NAME),
            service_id: service.as_ref().map(|s| s.service_id),
            subscriber_id: service.as_ref().map(|s| s.subscriber_id),
            framed_ip: request.ipv4(AttrType::FRAMED_IP_ADDRESS)?,
            calling_station_id: text(request, AttrType::CALLING_STATION_ID),
            nas_port_id: text(request, AttrType::NAS_PORT_ID),
            session_time: counters.session_time,
            input_octets: counters.input_octets,
            output_octets: counters.output_octets,
            input_packets: counters.input_packets.unwrap_or(0),
            output_packets: counters.output_packets.unwrap_or(0),
            terminate_cause: request.integer(AttrType::ACCT_TERMINATE_CAUSE)?,
            event_time,
            received_at,
        })
    }
}

/// The sink could not store the record. The NAS will retransmit.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The backend failed (database down, disk full, ...).
    #[error("accounting backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend is shutting down and takes no more writes.
    #[error("accounting backend is shutting down")]
    ShuttingDown,
}

impl SinkError {
    /// A backend failure from any error.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SinkError::Backend(e.into())
    }
}

/// Where accounting records go. `record` returns once the record is durable (committed):
/// only then does the NAS get its Accounting-Response.
///
/// A NAS retransmits until answered, and a retransmission whose first copy is already
/// written is answered from the retransmission cache for about 30 s only; past that, or when
/// the NAS changes Acct-Delay-Time (and so the packet) on retransmit, the same record may
/// arrive twice. Make `record` idempotent on (NAS, Acct-Session-Id, status, event time).
pub trait AccountingSink: Send + Sync + 'static {
    /// Stores `record` durably.
    fn record(
        &self,
        record: AccountingRecord,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<T: AccountingSink> AccountingSink for Arc<T> {
    fn record(
        &self,
        record: AccountingRecord,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        T::record(self, record)
    }
}

/// A sink that stores nothing and always succeeds: for an auth-only server, and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardSink;

impl AccountingSink for DiscardSink {
    async fn record(&self, _record: AccountingRecord) -> Result<(), SinkError> {
        Ok(())
    }
}
