//! MS-CHAPv2 (RFC 2759) as RADIUS carries it (RFC 2548): the NAS forwards the authenticator
//! challenge it sent (MS-CHAP-Challenge, 16 octets) and the peer's answer (MS-CHAP2-Response:
//! ident, flags, peer challenge, 8 reserved octets, NT-Response); the server checks the
//! NT-Response and returns MS-CHAP2-Success, which proves to the peer that the server knows
//! the password too, plus the MPPE keys ([`crate::mppe`]).
//!
//! The server needs the password or its NT hash (MD4 of the UTF-16LE password); the functions
//! take the hash, so a store may keep hashes rather than cleartext.

use std::io::Write as _;

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use md4::Md4;
use sha1::{Digest, Sha1};

use crate::crypto::{ct_eq, hex_upper};
use crate::dict::{microsoft, AttrType};
use crate::error::DecodeError;
use crate::mppe::{self, MppeKeys};
use crate::packet::PacketRef;

/// Size of the MS-CHAP-Challenge value for MS-CHAPv2.
pub const CHALLENGE_LEN: usize = 16;
/// Size of the MS-CHAP2-Response value.
pub const RESPONSE_LEN: usize = 50;
/// Size of "S=" and 40 hex digits.
pub const AUTHENTICATOR_RESPONSE_LEN: usize = 42;

/// "Magic server to client signing constant" (RFC 2759 §8.7).
const MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// "Pad to make it do more than one iteration" (RFC 2759 §8.7).
const MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// Windows error codes for MS-CHAP-Error (RFC 2759 §6).
pub mod error_code {
    /// Logon outside allowed hours.
    pub const RESTRICTED_LOGON_HOURS: u32 = 646;
    /// Account disabled.
    pub const ACCT_DISABLED: u32 = 647;
    /// Password expired.
    pub const PASSWD_EXPIRED: u32 = 648;
    /// No dial-in permission.
    pub const NO_DIALIN_PERMISSION: u32 = 649;
    /// Wrong user name or password.
    pub const AUTHENTICATION_FAILURE: u32 = 691;
    /// Password must be changed.
    pub const CHANGING_PASSWORD: u32 = 709;
}

/// The MS-CHAP2-Response value (RFC 2548 §2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Response {
    /// The PPP CHAP identifier, echoed in MS-CHAP2-Success and MS-CHAP-Error.
    pub ident: u8,
    /// Reserved, zero.
    pub flags: u8,
    /// The peer's 16-octet challenge.
    pub peer_challenge: [u8; 16],
    /// The 24-octet NT-Response.
    pub nt_response: [u8; 24],
}

impl MsChap2Response {
    /// Reads the 50-octet value. The reserved octets and flags are not checked: clients
    /// differ, and RFC 2759 gives them no meaning.
    pub fn parse(value: &[u8]) -> Result<Self, DecodeError> {
        let wrong = DecodeError::ValueLength {
            attr: microsoft::MS_CHAP2_RESPONSE.kind,
            expected: RESPONSE_LEN,
            actual: value.len(),
        };
        let Ok(v) = <&[u8; RESPONSE_LEN]>::try_from(value) else {
            return Err(wrong);
        };
        let [ident, flags, rest @ ..] = v;
        let (peer, rest) = rest.split_first_chunk::<16>().ok_or(wrong)?;
        let (_reserved, nt) = rest.split_first_chunk::<8>().ok_or(wrong)?;
        let nt = <[u8; 24]>::try_from(nt).map_err(|_| wrong)?;
        Ok(MsChap2Response {
            ident: *ident,
            flags: *flags,
            peer_challenge: *peer,
            nt_response: nt,
        })
    }

    /// The 50-octet value (reserved octets zero), for a client or a test.
    pub fn to_bytes(&self) -> [u8; RESPONSE_LEN] {
        let mut out = [0u8; RESPONSE_LEN];
        out[0] = self.ident;
        out[1] = self.flags;
        for (o, p) in out.iter_mut().skip(2).zip(self.peer_challenge) {
            *o = p;
        }
        for (o, n) in out.iter_mut().skip(26).zip(self.nt_response) {
            *o = n;
        }
        out
    }
}

/// The MS-CHAPv2 part of an Access-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Request<'a> {
    /// User-Name as sent, possibly "DOMAIN\user".
    pub user_name: &'a [u8],
    /// MS-CHAP-Challenge: the challenge the NAS sent the peer.
    pub authenticator_challenge: [u8; CHALLENGE_LEN],
    /// MS-CHAP2-Response.
    pub response: MsChap2Response,
}

impl<'a> MsChap2Request<'a> {
    /// Extracts the MS-CHAPv2 attributes of an Access-Request: `Ok(None)` when it carries no
    /// MS-CHAP2-Response (another authentication method); errors when the response is there
    /// but the challenge or User-Name is missing or mis-sized.
    pub fn from_packet(request: &PacketRef<'a>) -> Result<Option<Self>, DecodeError> {
        let Some(resp) = request.vendor(microsoft::MS_CHAP2_RESPONSE) else {
            return Ok(None);
        };
        let response = MsChap2Response::parse(resp)?;
        let challenge =
            request
                .vendor(microsoft::MS_CHAP_CHALLENGE)
                .ok_or(DecodeError::MissingAttribute {
                    attr: microsoft::MS_CHAP_CHALLENGE.kind,
                })?;
        let authenticator_challenge =
            <[u8; CHALLENGE_LEN]>::try_from(challenge).map_err(|_| DecodeError::ValueLength {
                attr: microsoft::MS_CHAP_CHALLENGE.kind,
                expected: CHALLENGE_LEN,
                actual: challenge.len(),
            })?;
        let user_name = request
            .get(AttrType::USER_NAME)
            .ok_or(DecodeError::MissingAttribute {
                attr: AttrType::USER_NAME.0,
            })?;
        Ok(Some(MsChap2Request {
            user_name,
            authenticator_challenge,
            response,
        }))
    }

    /// Checks the NT-Response against the NT hash of the password; on success, returns what
    /// the Access-Accept needs. The user name hashed is User-Name without any "DOMAIN\"
    /// prefix, as Windows clients compute it.
    pub fn verify(&self, password_hash: &[u8; 16]) -> Option<MsChap2Success> {
        let user = strip_domain(self.user_name);
        let challenge = challenge_hash(
            &self.response.peer_challenge,
            &self.authenticator_challenge,
            user,
        );
        let expected = challenge_response(&challenge, password_hash);
        if !ct_eq(&expected, &self.response.nt_response) {
            return None;
        }
        let hash_hash = hash_nt_password_hash(password_hash);
        Some(MsChap2Success {
            ident: self.response.ident,
            authenticator_response: authenticator_response_from_challenge(
                &hash_hash,
                &self.response.nt_response,
                &challenge,
            ),
            mppe_keys: mppe::server_keys(&hash_hash, &self.response.nt_response),
        })
    }

    /// [`verify`](Self::verify) from the cleartext password.
    pub fn verify_password(&self, password: &str) -> Option<MsChap2Success> {
        self.verify(&nt_password_hash(password))
    }
}

/// What a successful MS-CHAPv2 check gives the Access-Accept.
#[derive(Clone, PartialEq, Eq)]
pub struct MsChap2Success {
    /// The CHAP identifier to echo.
    pub ident: u8,
    /// "S=" and 40 uppercase hex digits (RFC 2759 §8.7).
    pub authenticator_response: [u8; AUTHENTICATOR_RESPONSE_LEN],
    /// The MPPE keys, NAS point of view (RFC 3079 §3.4, RFC 2548 §2.4.2).
    pub mppe_keys: MppeKeys,
}

impl MsChap2Success {
    /// The MS-CHAP2-Success value: ident octet, then the authenticator response.
    pub fn success_value(&self) -> [u8; 1 + AUTHENTICATOR_RESPONSE_LEN] {
        success_value(self.ident, &self.authenticator_response)
    }
}

impl core::fmt::Debug for MsChap2Success {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MsChap2Success")
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}

/// User-Name without a leading "DOMAIN\" (everything up to the last backslash).
pub fn strip_domain(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(i) => user_name.get(i + 1..).unwrap_or(&[]),
        None => user_name,
    }
}

/// NtPasswordHash: MD4 of the password in UTF-16LE (RFC 2759 §8.3).
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut h = Md4::new();
    let mut chunk = [0u8; 64];
    let mut used = 0;
    for unit in password.encode_utf16() {
        if let Some(slot) = chunk.get_mut(used..used + 2) {
            slot.copy_from_slice(&unit.to_le_bytes());
            used += 2;
        }
        if used == chunk.len() {
            h.update(chunk);
            used = 0;
        }
    }
    h.update(chunk.get(..used).unwrap_or(&[]));
    h.finalize().into()
}

/// HashNtPasswordHash: MD4 of the NT hash (RFC 2759 §8.4).
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// ChallengeHash: the first 8 octets of SHA1(peer challenge + authenticator challenge + user
/// name) (RFC 2759 §8.2). `user_name` is the name without domain.
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let digest: [u8; 20] = Sha1::new()
        .chain_update(peer_challenge)
        .chain_update(authenticator_challenge)
        .chain_update(user_name)
        .finalize()
        .into();
    let mut out = [0u8; 8];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = d;
    }
    out
}

/// Spreads 7 key octets over the 8 octets DES takes, 7 bits each (the low bit, parity, is
/// ignored by DES and left zero).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let mut bits = 0u64;
    for b in seven.iter().take(7) {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        let shift = 49 - 7 * i as u32;
        *k = (((bits >> shift) & 0x7f) as u8) << 1;
    }
    key
}

/// ChallengeResponse: DES-encrypts the 8-octet challenge under three keys cut from the NT
/// hash padded to 21 octets (RFC 2759 §8.5).
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut padded = [0u8; 21];
    for (p, h) in padded.iter_mut().zip(password_hash) {
        *p = *h;
    }
    let mut out = [0u8; 24];
    for (seven, eight) in padded.chunks_exact(7).zip(out.chunks_exact_mut(8)) {
        let cipher = des::Des::new(&GenericArray::from(des_key(seven)));
        let mut block = GenericArray::from(*challenge);
        cipher.encrypt_block(&mut block);
        eight.copy_from_slice(&block);
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1), for a client or a test. `user_name` is without domain.
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; 16],
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, password_hash)
}

fn authenticator_response_from_challenge(
    password_hash_hash: &[u8; 16],
    nt_response: &[u8; 24],
    challenge: &[u8; 8],
) -> [u8; AUTHENTICATOR_RESPONSE_LEN] {
    let digest: [u8; 20] = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize()
        .into();
    let digest: [u8; 20] = Sha1::new()
        .chain_update(digest)
        .chain_update(challenge)
        .chain_update(MAGIC2)
        .finalize()
        .into();
    let mut out = [0u8; AUTHENTICATOR_RESPONSE_LEN];
    let (prefix, hex) = out.split_at_mut(2);
    prefix.copy_from_slice(b"S=");
    hex_upper(&digest, hex);
    out
}

/// GenerateAuthenticatorResponse (RFC 2759 §8.7): "S=" and 40 uppercase hex digits.
/// `user_name` is without domain.
pub fn authenticator_response(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; AUTHENTICATOR_RESPONSE_LEN] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    authenticator_response_from_challenge(
        &hash_nt_password_hash(password_hash),
        nt_response,
        &challenge,
    )
}

/// The MS-CHAP2-Success value: `ident` then "S=..." (RFC 2548 §2.3.3).
pub fn success_value(
    ident: u8,
    authenticator_response: &[u8; AUTHENTICATOR_RESPONSE_LEN],
) -> [u8; 1 + AUTHENTICATOR_RESPONSE_LEN] {
    let mut out = [0u8; 1 + AUTHENTICATOR_RESPONSE_LEN];
    let (id, rest) = out.split_at_mut(1);
    id.fill(ident);
    rest.copy_from_slice(authenticator_response);
    out
}

/// Writes the MS-CHAP-Error value into `out` (replacing its contents): `ident`, then
/// `E=<code> R=<0|1> C=<32 hex digits> V=3 M=<message>` (RFC 2759 §6). `challenge` is a fresh
/// authenticator challenge for the retry; `retry` tells the peer whether it may try again.
/// Keep `message` short: the whole value must fit a vendor attribute (247 octets).
pub fn error_value(
    ident: u8,
    code: u32,
    retry: bool,
    challenge: &[u8; CHALLENGE_LEN],
    message: &str,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.push(ident);
    let mut hex = [0u8; 2 * CHALLENGE_LEN];
    hex_upper(challenge, &mut hex);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "E={code} R={} C=", u8::from(retry));
    out.extend_from_slice(&hex);
    out.extend_from_slice(b" V=3 M=");
    out.extend_from_slice(message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_domain_cuts_at_the_last_backslash() {
        assert_eq!(strip_domain(b"CORP\\alice"), b"alice");
        assert_eq!(strip_domain(b"alice"), b"alice");
        assert_eq!(strip_domain(b"alice@isp"), b"alice@isp");
        assert_eq!(strip_domain(b"a\\b\\c"), b"c");
        assert_eq!(strip_domain(b"trailing\\"), b"");
    }

    #[test]
    fn des_key_spreads_bits() {
        assert_eq!(des_key(&[0xff; 7]), [0xfe; 8]);
        assert_eq!(des_key(&[0; 7]), [0; 8]);
        assert_eq!(
            des_key(&[0x80, 0, 0, 0, 0, 0, 0]),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(des_key(&[0, 0, 0, 0, 0, 0, 1]), [0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn long_passwords_hash_across_chunks() {
        // 40 UTF-16 units crosses the 64-octet staging chunk.
        let long = "x".repeat(40);
        let mut h = Md4::new();
        for _ in 0..40 {
            h.update([b'x', 0]);
        }
        let expected: [u8; 16] = h.finalize().into();
        assert_eq!(nt_password_hash(&long), expected);
        assert_ne!(nt_password_hash("é"), nt_password_hash("e"));
    }

    #[test]
    fn error_value_format() {
        let mut out = Vec::new();
        error_value(7, 691, false, &[0xAB; 16], "bad password", &mut out);
        assert_eq!(out[0], 7);
        assert_eq!(
            &out[1..],
            b"E=691 R=0 C=ABABABABABABABABABABABABABABABAB V=3 M=bad password"
        );
    }

    #[test]
    fn response_round_trips() {
        let r = MsChap2Response {
            ident: 1,
            flags: 0,
            peer_challenge: [2; 16],
            nt_response: [3; 24],
        };
        assert_eq!(MsChap2Response::parse(&r.to_bytes()), Ok(r));
        assert!(MsChap2Response::parse(&[0; 49]).is_err());
    }
}
