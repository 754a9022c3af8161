//! The authentication port: Access-Request → decision → Access-Accept / -Reject, and
//! Status-Server. Synchronous: nothing here awaits, so no lock is ever held across an await.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use lastmile_radius_codec::dict::microsoft::{self, encryption_policy, encryption_types};
use lastmile_radius_codec::{auth, mschap, AttrType, AuthError, Code, PacketBuilder, PacketRef};

use super::{random, Buffers, Shared};
use crate::accounting::AccountingSink;
use crate::decide::{decide, find_service, AccessRequestView, Decision, Found, RejectReason};
use crate::directory::NasEntry;
use crate::metrics::{DropReason, RejectEvent, RequestKind, RequestResult};
use crate::reply::WriteError;
use crate::retransmit::{Begin, RequestKey};
use crate::sessions::SessionCounter;

/// What the NAS is told in MS-CHAP-Error (clients show it).
const MS_CHAP_MESSAGE: &str = "Authentication failed";

/// Verification before anything is looked at: the NAS, the packet, the signature.
pub(super) enum Verified<'a> {
    /// A request from `nas` that passed verification.
    Ok(PacketRef<'a>, Arc<NasEntry>),
    /// Dropped (and counted).
    Dropped,
}

impl<A: AccountingSink, S: SessionCounter> Shared<A, S> {
    /// Finds the NAS, decodes, checks the code is one of `allowed` and verifies the packet.
    pub(super) fn verify<'a>(
        &self,
        datagram: &'a [u8],
        src: SocketAddr,
        allowed: [Code; 2],
    ) -> Verified<'a> {
        let Some(nas) = self.directory.nas(src.ip()) else {
            self.drop_packet(
                src,
                None,
                DropReason::UnknownNas,
                &"no NAS has this address",
            );
            return Verified::Dropped;
        };
        let packet = match PacketRef::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.drop_packet(src, Some(&nas.name), DropReason::Malformed, &e);
                return Verified::Dropped;
            }
        };
        if !allowed.contains(&packet.code()) {
            self.drop_packet(
                src,
                Some(&nas.name),
                DropReason::UnexpectedCode,
                &packet.code(),
            );
            return Verified::Dropped;
        }
        match auth::verify_request(&packet, &nas.secret, nas.require_message_authenticator) {
            Ok(()) => Verified::Ok(packet, nas),
            Err(AuthError::MissingMessageAuthenticator) => {
                self.drop_packet(
                    src,
                    Some(&nas.name),
                    DropReason::MissingMessageAuthenticator,
                    &"this NAS must send Message-Authenticator",
                );
                Verified::Dropped
            }
            Err(e) => {
                self.drop_packet(src, Some(&nas.name), DropReason::BadAuthenticator, &e);
                Verified::Dropped
            }
        }
    }

    /// Handles one datagram on the authentication port. Returns the NAS when a reply is
    /// ready in `out.reply`.
    pub(super) fn handle_access(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        out: &mut Buffers,
    ) -> Option<Arc<NasEntry>> {
        let Verified::Ok(packet, nas) =
            self.verify(datagram, src, [Code::AccessRequest, Code::StatusServer])
        else {
            return None;
        };
        if packet.code() == Code::StatusServer {
            // RFC 5997: answered, never cached, never counted as a login.
            let b = PacketBuilder::reply(&mut out.reply, &packet, Code::AccessAccept);
            b.finish_reply(&packet, &nas.secret);
            self.metrics.count_request(
                Some(&nas.name),
                RequestKind::StatusServer,
                RequestResult::Accept,
            );
            return Some(nas);
        }
        let key = RequestKey::new(src, &packet);
        match self.auth_cache.begin(key, Instant::now(), &mut out.reply) {
            Begin::New => {}
            Begin::Cached => {
                self.metrics.count_request(
                    Some(&nas.name),
                    RequestKind::Access,
                    RequestResult::Retransmit,
                );
                return Some(nas);
            }
            Begin::InProgress => {
                self.drop_packet(
                    src,
                    Some(&nas.name),
                    DropReason::DuplicateInProgress,
                    &"retransmission of a request being processed",
                );
                return None;
            }
        }

        let view = AccessRequestView::from_packet(&packet, &nas.secret);
        let found = view
            .as_ref()
            .ok()
            .and_then(|v| find_service(&self.directory, v));
        let decision = match &view {
            Ok(v) => {
                let live = found
                    .as_ref()
                    .map_or(0, |(r, _)| self.sessions.live_sessions(r.service_id));
                decide(
                    &nas,
                    v,
                    found.as_ref().map(|(record, matched_by)| Found {
                        record,
                        matched_by: *matched_by,
                    }),
                    live,
                )
            }
            Err(_) => Decision::reject(RejectReason::MalformedRequest, None),
        };

        if let Err(e) = write_reply(&packet, &nas, &decision, out) {
            self.auth_cache.abandon(&key);
            self.drop_packet(src, Some(&nas.name), DropReason::ReplyEncoding, &e);
            return None;
        }
        self.auth_cache.complete(&key, &out.reply);

        let result = match &decision {
            Decision::Accept(a) if a.walled_garden => RequestResult::WalledGarden,
            Decision::Accept(_) => RequestResult::Accept,
            Decision::Reject(r) => RequestResult::Reject(r.reason),
        };
        self.metrics
            .count_request(Some(&nas.name), RequestKind::Access, result);
        if let Decision::Reject(r) = &decision {
            if let Some(service) = r.service_id {
                self.metrics.record_reject(
                    service,
                    RejectEvent {
                        at: Timestamp::now(),
                        reason: r.reason,
                        nas_id: nas.id,
                        nas_name: nas.name.clone(),
                        username: packet
                            .get(AttrType::USER_NAME)
                            .map(|u| String::from_utf8_lossy(u).into_owned()),
                    },
                );
            }
        }
        tracing::debug!(
            nas = %nas.name,
            user = %packet.get(AttrType::USER_NAME).map(String::from_utf8_lossy).unwrap_or_default(),
            method = view.as_ref().map_or("malformed", |v| v.credentials.method()),
            matched_by = found.as_ref().map_or("none", |(_, m)| m.as_str()),
            service = ?decision.service_id(),
            result = result.as_str(),
            "Access-Request decided"
        );
        Some(nas)
    }
}

/// Encodes the decision as the reply to `request` into `out.reply`.
fn write_reply(
    request: &PacketRef<'_>,
    nas: &NasEntry,
    decision: &Decision<'_>,
    out: &mut Buffers,
) -> Result<(), WriteError> {
    let code = if decision.is_accept() {
        Code::AccessAccept
    } else {
        Code::AccessReject
    };
    let mut b = PacketBuilder::reply(&mut out.reply, request, code);
    match decision {
        Decision::Accept(a) => {
            a.attributes.write_to(&mut b)?;
            if let Some(ms) = &a.mschap {
                b.add_vsa(microsoft::MS_CHAP2_SUCCESS, &ms.success_value())?;
                // The salt must be unpredictable; without randomness, no keys rather than
                // guessable ones.
                let salt = random::<2>()
                    .map(u16::from_be_bytes)
                    .ok_or(WriteError::Randomness)?;
                b.add_mppe_keys(&ms.mppe_keys, salt, &nas.secret, request.authenticator())?;
                b.add_vsa_u32(
                    microsoft::MS_MPPE_ENCRYPTION_POLICY,
                    encryption_policy::ALLOWED,
                )?;
                b.add_vsa_u32(
                    microsoft::MS_MPPE_ENCRYPTION_TYPES,
                    encryption_types::RC4_40_OR_128,
                )?;
            }
        }
        Decision::Reject(r) => {
            if let Some(message) = r.reply_message {
                b.add_text(AttrType::REPLY_MESSAGE, message)?;
            }
            if let Some(ident) = r.mschap_ident {
                // R=0: no retry, so the challenge offered for one is never used.
                let challenge = random::<16>().unwrap_or_default();
                mschap::error_value(
                    ident,
                    r.reason.ms_chap_error_code(),
                    false,
                    &challenge,
                    MS_CHAP_MESSAGE,
                    &mut out.scratch,
                );
                b.add_vsa(microsoft::MS_CHAP_ERROR, &out.scratch)?;
            }
        }
    }
    b.copy_proxy_state(request)?;
    b.finish_reply(request, &nas.secret);
    Ok(())
}
