//! The network side of RADIUS: the AAA server the ISP's routers (NASes) talk to.
//!
//! Shaped like mini-redis: [`RadiusServer`] owns the sockets, a [`Directory`] of NASes and
//! services held in memory (so an Access-Request costs no query), decides with pure
//! functions ([`decide::decide`]) and reaches storage only through the small traits it
//! defines: [`AccountingSink`] (durable accounting writes) and [`SessionCounter`] (live
//! sessions, for simultaneous use). The store integration implements those and keeps the
//! directory current with [`Directory::replace_all`] and [`Directory::apply`]; secrets arrive
//! here in clear, already decrypted by the caller.
//!
//! ```text
//! datagram ─► NAS by source IP ─► decode + verify (codec) ─► retransmission cache
//!   Access-Request:     view ─► find_service ─► decide ─► encode reply ─► send
//!   Accounting-Request: AccountingRecord ─► sink.record().await ─► Ok: send response
//! ```
//!
//! Also here: the CoA / Disconnect client ([`coa`]), Prometheus counters and the last rejects
//! per service ([`metrics`]), and a test/bench client ([`client`]).

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

pub mod accounting;
pub mod backend;
pub mod client;
pub mod coa;
pub mod decide;
pub mod directory;
pub mod dynauth;
pub mod mac;
pub mod metrics;
pub mod ratelog;
pub mod reply;
pub mod retransmit;
pub mod server;
pub mod sessions;
pub mod vendor;

pub use accounting::{AccountingRecord, AccountingSink, DiscardSink, SinkError};
pub use coa::{CoaClient, CoaError, CoaKind, CoaOutcome, SessionIdent};
pub use decide::{decide, AccessRequestView, Decision, RejectReason};
pub use directory::{
    AuthRecord, Directory, DirectoryChange, MatchedBy, NasEntry, SuspendedAction, Tier,
};
pub use mac::MacAddr;
pub use metrics::{DropReason, MetricsSnapshot, RadiusMetrics, RequestKind, RequestResult};
pub use server::{RadiusServer, ServerConfig, ServerParts};
pub use sessions::{InMemorySessions, NoSessionLimit, SessionCounter};
