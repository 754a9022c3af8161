//! The CoA / Disconnect client (RFC 5176): tell a NAS to change a live session's tier, or to
//! end it.
//!
//! One request per call, from an ephemeral socket connected to the NAS (so only its replies
//! reach us): signed with the NAS secret, with a Message-Authenticator, a random Identifier,
//! resent unchanged on timeout (`retries` times), and answered only by a reply that carries
//! our Identifier, the right code and a valid Response Authenticator (and
//! Message-Authenticator, when present: MikroTik, among others, sends none in its ACKs).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use lastmile_radius_codec::dict::ErrorCause;
use lastmile_radius_codec::{
    auth, AttrType, Authenticator, Code, EncodeError, PacketBuilder, PacketRef, AUTHENTICATOR_LEN,
    MAX_PACKET_LEN,
};
use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

use crate::directory::{NasEntry, Tier};
use crate::reply::{ReplyAttrs, WriteError};
use crate::server::random;
use crate::vendor::coa_attributes;

/// CoA-Request or Disconnect-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoaKind {
    /// Change the session's authorisation (the tier).
    Coa,
    /// End the session.
    Disconnect,
}

impl CoaKind {
    fn codes(self) -> (Code, Code, Code) {
        match self {
            CoaKind::Coa => (Code::CoaRequest, Code::CoaAck, Code::CoaNak),
            CoaKind::Disconnect => (
                Code::DisconnectRequest,
                Code::DisconnectAck,
                Code::DisconnectNak,
            ),
        }
    }
}

/// Which session: the NAS matches on whatever is given (send what accounting reported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionIdent {
    /// User-Name.
    pub user_name: Option<String>,
    /// Acct-Session-Id.
    pub acct_session_id: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// NAS-IP-Address (the NAS's own address, which some NASes insist on).
    pub nas_ip_address: Option<Ipv4Addr>,
}

/// How the NAS answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoaOutcome {
    /// CoA-ACK / Disconnect-ACK.
    Ack,
    /// CoA-NAK / Disconnect-NAK, with its Error-Cause if any (503: no such session).
    Nak {
        /// Error-Cause.
        error_cause: Option<ErrorCause>,
    },
}

/// Why no answer was had.
#[derive(Debug, thiserror::Error)]
pub enum CoaError {
    /// No valid reply within the timeout, after every retry.
    #[error("no reply from the NAS")]
    Timeout,
    /// The socket failed.
    #[error("CoA socket error: {0}")]
    Io(#[from] io::Error),
    /// Replies came, none valid (wrong secret on one side, most likely).
    #[error("the NAS replied, but not validly: {0}")]
    BadReply(&'static str),
    /// The request could not be built (an attribute too long).
    #[error("CoA request could not be built: {0}")]
    Build(#[from] WriteError),
    /// The OS gave no random Identifier.
    #[error("no randomness available")]
    Randomness,
}

impl From<EncodeError> for CoaError {
    fn from(e: EncodeError) -> Self {
        CoaError::Build(WriteError::Encode(e))
    }
}

/// Sends CoA and Disconnect requests.
#[derive(Debug, Clone, Default)]
pub struct CoaClient {
    source: Option<IpAddr>,
}

impl CoaClient {
    /// A client sending from whatever address routes to the NAS.
    pub fn new() -> Self {
        CoaClient { source: None }
    }

    /// A client sending from `source` (NASes accept CoA only from their RADIUS server's
    /// address).
    pub fn with_source(source: IpAddr) -> Self {
        CoaClient {
            source: Some(source),
        }
    }

    /// Sends one request of `kind` about `session` with `attributes` (the new tier for a
    /// CoA) to `nas`, waiting `timeout` for a reply and resending up to `retries` times.
    pub async fn send(
        &self,
        nas: &NasEntry,
        kind: CoaKind,
        session: &SessionIdent,
        attributes: &ReplyAttrs<'_>,
        timeout: Duration,
        retries: u32,
    ) -> Result<CoaOutcome, CoaError> {
        let (code, ack, nak) = kind.codes();
        let [identifier] = random::<1>().ok_or(CoaError::Randomness)?;
        let mut buf = Vec::with_capacity(256);
        build_request(&mut buf, code, identifier, nas, session, attributes)?;
        let request_auth: Authenticator = buf
            .get(4..4 + AUTHENTICATOR_LEN)
            .and_then(|a| a.try_into().ok())
            .ok_or(CoaError::BadReply("request authenticator"))?;

        let target = SocketAddr::new(nas.ip, nas.coa_port);
        let local = match (self.source, nas.ip) {
            (Some(ip), _) => SocketAddr::new(ip, 0),
            (None, IpAddr::V4(_)) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            (None, IpAddr::V6(_)) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(target).await?;

        let mut rx = vec![0u8; MAX_PACKET_LEN];
        let mut bad: Option<&'static str> = None;
        for _attempt in 0..=retries {
            socket.send(&buf).await?;
            let deadline = Instant::now() + timeout;
            loop {
                let n = match timeout_at(deadline, socket.recv(&mut rx)).await {
                    Err(_) => break,
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        // ICMP port unreachable: nothing listens; retrying may still help
                        // (a NAS rebooting), so treat it like silence.
                        break;
                    }
                    Ok(r) => r?,
                };
                match check_reply(
                    rx.get(..n).unwrap_or(&[]),
                    identifier,
                    &request_auth,
                    nas,
                    ack,
                    nak,
                ) {
                    Ok(outcome) => return Ok(outcome),
                    Err(Skip::NotOurs) => {}
                    Err(Skip::Invalid(why)) => bad = Some(why),
                }
            }
        }
        Err(bad.map_or(CoaError::Timeout, CoaError::BadReply))
    }

    /// Moves a live session to `tier`: a CoA with the vendor's tier attributes where the
    /// vendor can change rates live, else a Disconnect (the subscriber reconnects and gets the
    /// tier in the Accept). Returns which was sent and how the NAS answered.
    pub async fn apply_tier(
        &self,
        nas: &NasEntry,
        session: &SessionIdent,
        tier: &Tier,
        timeout: Duration,
        retries: u32,
    ) -> Result<(CoaKind, CoaOutcome), CoaError> {
        let (live, attrs) = coa_attributes(nas.vendor, tier);
        let (kind, attrs) = if live {
            (CoaKind::Coa, attrs)
        } else {
            (CoaKind::Disconnect, ReplyAttrs::new())
        };
        let outcome = self
            .send(nas, kind, session, &attrs, timeout, retries)
            .await?;
        Ok((kind, outcome))
    }
}

fn build_request(
    buf: &mut Vec<u8>,
    code: Code,
    identifier: u8,
    nas: &NasEntry,
    session: &SessionIdent,
    attributes: &ReplyAttrs<'_>,
) -> Result<(), CoaError> {
    let mut b = PacketBuilder::new(buf, code, identifier);
    if let Some(u) = &session.user_name {
        b.add_text(AttrType::USER_NAME, u)?;
    }
    if let Some(s) = &session.acct_session_id {
        b.add_text(AttrType::ACCT_SESSION_ID, s)?;
    }
    if let Some(ip) = session.framed_ip {
        b.add_ipv4(AttrType::FRAMED_IP_ADDRESS, ip)?;
    }
    if let Some(ip) = session.nas_ip_address {
        b.add_ipv4(AttrType::NAS_IP_ADDRESS, ip)?;
    }
    attributes.write_to(&mut b)?;
    b.finish_request(&nas.secret);
    Ok(())
}

enum Skip {
    /// Another identifier: a late reply to something else; keep waiting.
    NotOurs,
    /// Ours by identifier but failing verification.
    Invalid(&'static str),
}

fn check_reply(
    bytes: &[u8],
    identifier: u8,
    request_auth: &Authenticator,
    nas: &NasEntry,
    ack: Code,
    nak: Code,
) -> Result<CoaOutcome, Skip> {
    let reply = PacketRef::decode(bytes).map_err(|_| Skip::Invalid("malformed reply"))?;
    if reply.identifier() != identifier {
        return Err(Skip::NotOurs);
    }
    if reply.code() != ack && reply.code() != nak {
        return Err(Skip::Invalid("unexpected reply code"));
    }
    auth::verify_reply(&reply, request_auth, &nas.secret, false)
        .map_err(|_| Skip::Invalid("reply authenticator does not verify"))?;
    if reply.code() == ack {
        return Ok(CoaOutcome::Ack);
    }
    let error_cause = reply
        .integer(AttrType::ERROR_CAUSE)
        .ok()
        .flatten()
        .map(ErrorCause::from_u32);
    Ok(CoaOutcome::Nak { error_cause })
}
