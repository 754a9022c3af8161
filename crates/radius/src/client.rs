//! A small RADIUS client, built from the codec: what the tests, a load generator
//! (`lastmile bench radius`) or a diagnostic tool need to talk to the server.
//!
//! Requests are encoded into a caller's buffer (reuse it: no allocation per request),
//! replies are verified against the request they answer.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use lastmile_radius_codec::acct::AcctStatusType;
use lastmile_radius_codec::dict::{dsl_forum, microsoft};
use lastmile_radius_codec::mschap::{self, MsChap2Response};
use lastmile_radius_codec::{
    auth, chap, AttrType, AuthError, Authenticator, Code, DecodeError, EncodeError, PacketBuilder,
    PacketRef, AUTHENTICATOR_LEN, MAX_PACKET_LEN,
};
use tokio::net::UdpSocket;

/// How an Access-Request proves the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth<'a> {
    /// No password: MAC / circuit authorisation.
    None,
    /// PAP with this password.
    Pap(&'a str),
    /// CHAP with this password; the challenge is CHAP-Challenge if given, else the Request
    /// Authenticator.
    Chap {
        /// CHAP identifier.
        ident: u8,
        /// The password.
        password: &'a str,
        /// CHAP-Challenge to send.
        challenge: Option<[u8; 16]>,
    },
    /// MS-CHAPv2 with this password and these challenges.
    MsChap2 {
        /// MS-CHAP identifier.
        ident: u8,
        /// The password.
        password: &'a str,
        /// MS-CHAP-Challenge (the NAS's challenge).
        authenticator_challenge: [u8; 16],
        /// The peer's challenge.
        peer_challenge: [u8; 16],
    },
}

/// An Access-Request to encode.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Identifier.
    pub identifier: u8,
    /// Request Authenticator (random in real use: see [`random_authenticator`]).
    pub authenticator: Authenticator,
    /// User-Name.
    pub user_name: Option<&'a str>,
    /// The password proof.
    pub auth: ClientAuth<'a>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<&'a str>,
    /// Agent-Circuit-Id.
    pub circuit_id: Option<&'a str>,
    /// NAS-IP-Address.
    pub nas_ip: Option<Ipv4Addr>,
    /// Whether to add Message-Authenticator (do: servers may require it).
    pub message_authenticator: bool,
    /// A Proxy-State to add (the reply must echo it).
    pub proxy_state: Option<&'a [u8]>,
}

impl<'a> AccessRequest<'a> {
    /// A PAP request with Message-Authenticator.
    pub fn pap(
        identifier: u8,
        authenticator: Authenticator,
        user: &'a str,
        password: &'a str,
    ) -> Self {
        AccessRequest {
            auth: ClientAuth::Pap(password),
            ..AccessRequest::new(identifier, authenticator, Some(user))
        }
    }

    /// A request with no credentials yet, with Message-Authenticator.
    pub fn new(identifier: u8, authenticator: Authenticator, user: Option<&'a str>) -> Self {
        AccessRequest {
            identifier,
            authenticator,
            user_name: user,
            auth: ClientAuth::None,
            calling_station_id: None,
            circuit_id: None,
            nas_ip: None,
            message_authenticator: true,
            proxy_state: None,
        }
    }

    /// Encodes the request, signed with `secret`, into `buf`.
    pub fn encode<'b>(&self, buf: &'b mut Vec<u8>, secret: &[u8]) -> Result<&'b [u8], EncodeError> {
        let mut b = PacketBuilder::new(buf, Code::AccessRequest, self.identifier);
        if !self.message_authenticator {
            b = b.without_message_authenticator();
        }
        b.set_authenticator(&self.authenticator);
        if let Some(u) = self.user_name {
            b.add_text(AttrType::USER_NAME, u)?;
        }
        match self.auth {
            ClientAuth::None => {}
            ClientAuth::Pap(p) => {
                b.add_user_password(p.as_bytes(), secret)?;
            }
            ClientAuth::Chap {
                ident,
                password,
                challenge,
            } => {
                let ch: &[u8] = match &challenge {
                    Some(c) => c,
                    None => &self.authenticator,
                };
                b.add(
                    AttrType::CHAP_PASSWORD,
                    &chap::chap_password(ident, password.as_bytes(), ch),
                )?;
                if let Some(c) = &challenge {
                    b.add(AttrType::CHAP_CHALLENGE, c)?;
                }
            }
            ClientAuth::MsChap2 {
                ident,
                password,
                authenticator_challenge,
                peer_challenge,
            } => {
                let user = mschap::strip_domain(self.user_name.unwrap_or("").as_bytes());
                let nt_response = mschap::generate_nt_response(
                    &authenticator_challenge,
                    &peer_challenge,
                    user,
                    &mschap::nt_password_hash(password),
                );
                let response = MsChap2Response {
                    ident,
                    flags: 0,
                    peer_challenge,
                    nt_response,
                };
                b.add_vsa(microsoft::MS_CHAP_CHALLENGE, &authenticator_challenge)?;
                b.add_vsa(microsoft::MS_CHAP2_RESPONSE, &response.to_bytes())?;
            }
        }
        if let Some(c) = self.calling_station_id {
            b.add_text(AttrType::CALLING_STATION_ID, c)?;
        }
        if let Some(c) = self.circuit_id {
            b.add_vsa_text(dsl_forum::AGENT_CIRCUIT_ID, c)?;
        }
        if let Some(ip) = self.nas_ip {
            b.add_ipv4(AttrType::NAS_IP_ADDRESS, ip)?;
        }
        if let Some(p) = self.proxy_state {
            b.add(AttrType::PROXY_STATE, p)?;
        }
        Ok(b.finish_request(secret))
    }
}

/// The MS-CHAP2-Success value a server must return for an [`ClientAuth::MsChap2`] request.
pub fn expected_ms_chap2_success(
    user: &str,
    password: &str,
    ident: u8,
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
) -> [u8; 1 + mschap::AUTHENTICATOR_RESPONSE_LEN] {
    let user = mschap::strip_domain(user.as_bytes());
    let hash = mschap::nt_password_hash(password);
    let nt = mschap::generate_nt_response(authenticator_challenge, peer_challenge, user, &hash);
    let resp =
        mschap::authenticator_response(&hash, &nt, peer_challenge, authenticator_challenge, user);
    mschap::success_value(ident, &resp)
}

/// An Accounting-Request to encode. Octet counts are 64-bit: they are split into
/// Acct-*-Octets and Acct-*-Gigawords.
#[derive(Debug, Clone, Copy)]
pub struct AccountingRequest<'a> {
    /// Identifier.
    pub identifier: u8,
    /// Acct-Status-Type.
    pub status: AcctStatusType,
    /// Acct-Session-Id.
    pub session_id: Option<&'a str>,
    /// User-Name.
    pub user_name: Option<&'a str>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<&'a str>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// From the subscriber.
    pub input_octets: Option<u64>,
    /// To the subscriber.
    pub output_octets: Option<u64>,
    /// Acct-Input-Packets.
    pub input_packets: Option<u32>,
    /// Acct-Output-Packets.
    pub output_packets: Option<u32>,
    /// Acct-Session-Time.
    pub session_time: Option<u32>,
    /// Acct-Terminate-Cause.
    pub terminate_cause: Option<u32>,
    /// Event-Timestamp.
    pub event_timestamp: Option<u32>,
    /// Acct-Delay-Time.
    pub delay_time: Option<u32>,
    /// Whether to add Message-Authenticator (most NASes do not in accounting).
    pub message_authenticator: bool,
    /// A Proxy-State to add.
    pub proxy_state: Option<&'a [u8]>,
}

impl<'a> AccountingRequest<'a> {
    /// A request with nothing but its status.
    pub fn new(identifier: u8, status: AcctStatusType) -> Self {
        AccountingRequest {
            identifier,
            status,
            session_id: None,
            user_name: None,
            calling_station_id: None,
            framed_ip: None,
            input_octets: None,
            output_octets: None,
            input_packets: None,
            output_packets: None,
            session_time: None,
            terminate_cause: None,
            event_timestamp: None,
            delay_time: None,
            message_authenticator: false,
            proxy_state: None,
        }
    }

    /// Encodes the request, signed with `secret`, into `buf`.
    pub fn encode<'b>(&self, buf: &'b mut Vec<u8>, secret: &[u8]) -> Result<&'b [u8], EncodeError> {
        let mut b = PacketBuilder::new(buf, Code::AccountingRequest, self.identifier);
        if !self.message_authenticator {
            b = b.without_message_authenticator();
        }
        b.add_u32(AttrType::ACCT_STATUS_TYPE, self.status.as_u32())?;
        if let Some(s) = self.session_id {
            b.add_text(AttrType::ACCT_SESSION_ID, s)?;
        }
        if let Some(u) = self.user_name {
            b.add_text(AttrType::USER_NAME, u)?;
        }
        if let Some(c) = self.calling_station_id {
            b.add_text(AttrType::CALLING_STATION_ID, c)?;
        }
        if let Some(ip) = self.framed_ip {
            b.add_ipv4(AttrType::FRAMED_IP_ADDRESS, ip)?;
        }
        // Splitting a u64 into its low 32 bits and its gigawords is exactly what the casts do.
        if let Some(o) = self.input_octets {
            b.add_u32(AttrType::ACCT_INPUT_OCTETS, o as u32)?;
            b.add_u32(AttrType::ACCT_INPUT_GIGAWORDS, (o >> 32) as u32)?;
        }
        if let Some(o) = self.output_octets {
            b.add_u32(AttrType::ACCT_OUTPUT_OCTETS, o as u32)?;
            b.add_u32(AttrType::ACCT_OUTPUT_GIGAWORDS, (o >> 32) as u32)?;
        }
        for (kind, v) in [
            (AttrType::ACCT_INPUT_PACKETS, self.input_packets),
            (AttrType::ACCT_OUTPUT_PACKETS, self.output_packets),
            (AttrType::ACCT_SESSION_TIME, self.session_time),
            (AttrType::ACCT_TERMINATE_CAUSE, self.terminate_cause),
            (AttrType::EVENT_TIMESTAMP, self.event_timestamp),
            (AttrType::ACCT_DELAY_TIME, self.delay_time),
        ] {
            if let Some(v) = v {
                b.add_u32(kind, v)?;
            }
        }
        if let Some(p) = self.proxy_state {
            b.add(AttrType::PROXY_STATE, p)?;
        }
        Ok(b.finish_request(secret))
    }
}

/// A Status-Server (RFC 5997), Message-Authenticator included.
pub fn status_server<'b>(
    buf: &'b mut Vec<u8>,
    identifier: u8,
    authenticator: Authenticator,
    secret: &[u8],
) -> &'b [u8] {
    let mut b = PacketBuilder::new(buf, Code::StatusServer, identifier);
    b.set_authenticator(&authenticator);
    b.finish_request(secret)
}

/// Sixteen random octets for a Request Authenticator.
pub fn random_authenticator() -> Option<Authenticator> {
    crate::server::random::<AUTHENTICATOR_LEN>()
}

/// Why a reply is not the answer to a request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing came in time.
    #[error("no reply in time")]
    Timeout,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The request bytes given are not a packet.
    #[error("not a RADIUS packet: {0}")]
    Decode(#[from] DecodeError),
    /// The reply answers another request.
    #[error("reply identifier {got} does not match request {want}")]
    Identifier {
        /// The reply's.
        got: u8,
        /// The request's.
        want: u8,
    },
    /// The reply is not signed with the secret.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Checks that `reply` answers `request` (identifier, Response Authenticator,
/// Message-Authenticator if present, or always when `require_message_authenticator`).
pub fn verify_reply<'r>(
    reply: &'r [u8],
    request: &[u8],
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<PacketRef<'r>, ClientError> {
    let req = PacketRef::decode(request)?;
    let rep = PacketRef::decode(reply)?;
    if rep.identifier() != req.identifier() {
        return Err(ClientError::Identifier {
            got: rep.identifier(),
            want: req.identifier(),
        });
    }
    auth::verify_reply(
        &rep,
        req.authenticator(),
        secret,
        require_message_authenticator,
    )?;
    Ok(rep)
}

/// A UDP socket talking to one server.
#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    buf: Vec<u8>,
}

impl Client {
    /// A client on an ephemeral port of the loopback (or unspecified) address of `server`'s
    /// family.
    pub async fn connect(server: SocketAddr) -> io::Result<Client> {
        let local = match server {
            SocketAddr::V4(a) if a.ip().is_loopback() => SocketAddr::from((*a.ip(), 0)),
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        Client::connect_from(local, server).await
    }

    /// A client sending from `local` (e.g. 127.0.0.2:0, to look like another NAS).
    pub async fn connect_from(local: SocketAddr, server: SocketAddr) -> io::Result<Client> {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        Ok(Client {
            socket,
            buf: vec![0; MAX_PACKET_LEN],
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends a datagram.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send(bytes).await.map(|_| ())
    }

    /// Receives one datagram, waiting at most `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, ClientError> {
        match tokio::time::timeout(timeout, self.socket.recv(&mut self.buf)).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(r) => {
                let n = r?;
                Ok(self.buf.get(..n).unwrap_or(&[]).to_vec())
            }
        }
    }

    /// A datagram already waiting, if any (never waits).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        match self.socket.try_recv(&mut self.buf) {
            Ok(n) => Some(self.buf.get(..n).unwrap_or(&[]).to_vec()),
            Err(_) => None,
        }
    }

    /// Sends `request` and returns the first reply within `timeout`.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(request).await?;
        self.recv(timeout).await
    }
}
