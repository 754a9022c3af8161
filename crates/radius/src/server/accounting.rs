//! The accounting port: verify, read the record, hand it to the sink, answer once it is
//! stored. The receive loop does everything up to the sink synchronously ([`Step`]); the wait
//! for the sink runs in a task of its own ([`Shared::finish_accounting`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use lastmile_radius_codec::auth::message_authenticator_offset;
use lastmile_radius_codec::{Code, PacketBuilder, PacketRef};
use tokio::net::UdpSocket;

use super::access::Verified;
use super::{Buffers, Shared};
use crate::accounting::{AccountingRecord, AccountingSink};
use crate::directory::NasEntry;
use crate::metrics::{DropReason, RequestKind, RequestResult};
use crate::retransmit::{Begin, RequestKey};
use crate::sessions::SessionCounter;

/// A record waiting for the sink, with its answer ready.
pub(super) struct Pending {
    /// Its retransmission-cache entry (in progress).
    pub key: RequestKey,
    pub src: SocketAddr,
    pub nas: Arc<NasEntry>,
    pub record: AccountingRecord,
    /// The Accounting-Response, sent once the sink said `Ok`.
    pub response: Vec<u8>,
}

/// What the receive loop does next.
pub(super) enum Step {
    /// Nothing (dropped, counted).
    Done,
    /// Send `out.reply` now (Status-Server, or a cached answer).
    Send(Arc<NasEntry>),
    /// Await the sink, then answer.
    Record(Box<Pending>),
}

/// Builds the Accounting-Response to `request`. Message-Authenticator only if the request
/// had one: some NASes refuse it in accounting.
fn response(request: &PacketRef<'_>, secret: &[u8], out: &mut Vec<u8>) -> bool {
    let mut b = PacketBuilder::reply(out, request, Code::AccountingResponse);
    if !matches!(message_authenticator_offset(request), Ok(Some(_))) {
        b = b.without_message_authenticator();
    }
    if b.copy_proxy_state(request).is_err() {
        return false;
    }
    b.finish_reply(request, secret);
    true
}

impl<A: AccountingSink, S: SessionCounter> Shared<A, S> {
    /// Everything up to the sink, synchronously.
    pub(super) fn prepare_accounting(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        out: &mut Buffers,
    ) -> Step {
        let Verified::Ok(packet, nas) =
            self.verify(datagram, src, [Code::AccountingRequest, Code::StatusServer])
        else {
            return Step::Done;
        };
        if packet.code() == Code::StatusServer {
            let b = PacketBuilder::reply(&mut out.reply, &packet, Code::AccountingResponse);
            b.finish_reply(&packet, &nas.secret);
            self.metrics.count_request(
                Some(&nas.name),
                RequestKind::StatusServer,
                RequestResult::Accept,
            );
            return Step::Send(nas);
        }
        let key = RequestKey::new(src, &packet);
        match self.acct_cache.begin(key, Instant::now(), &mut out.reply) {
            Begin::New => {}
            Begin::Cached => {
                self.metrics.count_request(
                    Some(&nas.name),
                    RequestKind::Accounting,
                    RequestResult::Retransmit,
                );
                return Step::Send(nas);
            }
            Begin::InProgress => {
                // Still being written: answering now would acknowledge an unwritten record,
                // processing it again would write it twice.
                self.drop_packet(
                    src,
                    Some(&nas.name),
                    DropReason::DuplicateInProgress,
                    &"retransmission of an accounting request being written",
                );
                return Step::Done;
            }
        }
        let record =
            match AccountingRecord::from_packet(&packet, &nas, &self.directory, Timestamp::now()) {
                Ok(r) => r,
                Err(e) => {
                    self.acct_cache.abandon(&key);
                    self.drop_packet(src, Some(&nas.name), DropReason::InvalidAccounting, &e);
                    return Step::Done;
                }
            };
        let mut reply = Vec::with_capacity(64);
        if !response(&packet, &nas.secret, &mut reply) {
            self.acct_cache.abandon(&key);
            self.drop_packet(
                src,
                Some(&nas.name),
                DropReason::ReplyEncoding,
                &"Proxy-State does not fit the response",
            );
            return Step::Done;
        }
        Step::Record(Box::new(Pending {
            key,
            src,
            nas,
            record,
            response: reply,
        }))
    }

    /// Awaits the sink; answers only if it stored the record.
    pub(super) async fn finish_accounting(&self, p: Pending, socket: &UdpSocket) {
        let Pending {
            key,
            src,
            nas,
            record,
            response,
        } = p;
        // Before the sink, while the record is still ours; observing twice is harmless.
        self.sessions.observe(&record, &nas);
        let (status, service) = (record.status, record.service_id);
        match self.sink.record(record).await {
            Ok(()) => {
                // Cached before it is sent, so a retransmission racing the send is answered.
                self.acct_cache.complete(&key, &response);
                match socket.send_to(&response, src).await {
                    Ok(_) => self.metrics.count_request(
                        Some(&nas.name),
                        RequestKind::Accounting,
                        RequestResult::Recorded,
                    ),
                    Err(e) => {
                        self.drop_packet(src, Some(&nas.name), DropReason::SendFailed, &e);
                    }
                }
                tracing::debug!(nas = %nas.name, ?status, ?service, "accounting recorded");
            }
            Err(e) => {
                // No answer: the NAS retransmits, and the retransmission is processed anew.
                self.acct_cache.abandon(&key);
                self.drop_packet(src, Some(&nas.name), DropReason::SinkFailed, &e);
            }
        }
    }
}
