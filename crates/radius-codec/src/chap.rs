//! CHAP (RFC 1994, carried as RFC 2865 §5.3).
//!
//! CHAP-Password is the CHAP Identifier octet followed by the 16-octet response
//! `MD5(Identifier + password + challenge)`. The challenge is the CHAP-Challenge attribute when
//! present, else the Request Authenticator (the NAS may use it as the challenge, §5.40). The
//! server needs the cleartext password to check it.

use crate::crypto::{self, ct_eq};
use crate::dict::AttrType;
use crate::error::DecodeError;
use crate::packet::PacketRef;

/// Size of CHAP-Password: identifier and MD5 response.
pub const CHAP_PASSWORD_LEN: usize = 17;

/// The CHAP response for `ident`, `password` and `challenge`.
pub fn response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    crypto::md5(&[&[ident], password, challenge])
}

/// The CHAP-Password value (identifier and response), for a client or a test.
pub fn chap_password(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; CHAP_PASSWORD_LEN] {
    let mut out = [0u8; CHAP_PASSWORD_LEN];
    let (id, resp) = out.split_at_mut(1);
    id.fill(ident);
    resp.copy_from_slice(&response(ident, password, challenge));
    out
}

/// Checks a CHAP-Password value against `password` and `challenge`, in constant time.
pub fn verify(
    chap_password: &[u8],
    challenge: &[u8],
    password: &[u8],
) -> Result<bool, DecodeError> {
    let Some((&ident, received)) = chap_password
        .split_first()
        .filter(|_| chap_password.len() == CHAP_PASSWORD_LEN)
    else {
        return Err(DecodeError::ValueLength {
            attr: AttrType::CHAP_PASSWORD.0,
            expected: CHAP_PASSWORD_LEN,
            actual: chap_password.len(),
        });
    };
    Ok(ct_eq(&response(ident, password, challenge), received))
}

/// The challenge of an Access-Request: CHAP-Challenge if present, else its authenticator.
pub fn challenge<'a>(request: &PacketRef<'a>) -> &'a [u8] {
    request
        .get(AttrType::CHAP_CHALLENGE)
        .unwrap_or(request.authenticator())
}

/// Checks the CHAP-Password of an Access-Request against `password`.
pub fn verify_request(request: &PacketRef<'_>, password: &[u8]) -> Result<bool, DecodeError> {
    let chap = request
        .get(AttrType::CHAP_PASSWORD)
        .ok_or(DecodeError::MissingAttribute {
            attr: AttrType::CHAP_PASSWORD.0,
        })?;
    verify(chap, challenge(request), password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_matches_response() {
        let v = chap_password(22, b"secret", b"0123456789abcdef");
        assert_eq!(v[0], 22);
        assert_eq!(verify(&v, b"0123456789abcdef", b"secret"), Ok(true));
        assert_eq!(verify(&v, b"0123456789abcdef", b"Secret"), Ok(false));
        assert_eq!(verify(&v, b"0123456789abcdeF", b"secret"), Ok(false));
        assert_eq!(
            verify(&v[..16], b"x", b"secret"),
            Err(DecodeError::ValueLength {
                attr: 3,
                expected: 17,
                actual: 16
            })
        );
    }
}
