//! PAP: the User-Password attribute, hidden with the shared secret (RFC 2865 §5.2).
//!
//! The password is padded with NULs to a multiple of 16 octets and XORed, 16 octets at a time,
//! with a keystream chained through MD5: `b1 = MD5(S + RA)`, `c1 = p1 ^ b1`,
//! `b2 = MD5(S + c1)`, ... The hidden value is 16 to 128 octets.
//!
//! Results live in fixed 128-octet buffers that are wiped when dropped: no allocation, and no
//! cleartext left behind in freed heap memory.

use md5::{Digest, Md5};

use crate::crypto::xor_in_place;
use crate::dict::AttrType;
use crate::error::{DecodeError, EncodeError};
use crate::packet::{Authenticator, PacketRef};

/// The longest password RFC 2865 §5.2 allows.
pub const MAX_PASSWORD_LEN: usize = 128;
const BLOCK: usize = 16;

/// Octets of at most 128, wiped on drop. Used for cleartext passwords and hidden values.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBuf {
    buf: [u8; MAX_PASSWORD_LEN],
    len: usize,
}

impl SecretBuf {
    fn new() -> Self {
        SecretBuf {
            buf: [0; MAX_PASSWORD_LEN],
            len: 0,
        }
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The octets as UTF-8, if they are.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }

    /// Number of octets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none (an empty password).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.buf.fill(0);
        // Keeps the wipe from being optimised away as a dead store.
        core::hint::black_box(&mut self.buf);
    }
}

impl core::fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretBuf({} octets)", self.len)
    }
}

/// A cleartext password recovered from User-Password.
pub type Password = SecretBuf;
/// A hidden User-Password value, ready to be sent.
pub type HiddenPassword = SecretBuf;

/// Runs the RFC 2865 §5.2 keystream over `data` (a multiple of 16 octets). `decrypting` says
/// whether `data` holds ciphertext (the chain then continues from the input block) or
/// cleartext (from the output block).
fn keystream(data: &mut [u8], secret: &[u8], authenticator: &Authenticator, decrypting: bool) {
    let base = Md5::new_with_prefix(secret);
    let mut prev: [u8; BLOCK] = *authenticator;
    for block in data.chunks_exact_mut(BLOCK) {
        let key: [u8; BLOCK] = base.clone().chain_update(prev).finalize().into();
        if decrypting {
            prev.copy_from_slice(block);
            xor_in_place(block, &key);
        } else {
            xor_in_place(block, &key);
            prev.copy_from_slice(block);
        }
    }
}

/// Recovers the password from a hidden User-Password value, given the Request Authenticator of
/// its Access-Request. Trailing NULs (the padding) are removed.
pub fn decrypt(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &Authenticator,
) -> Result<Password, DecodeError> {
    let len = hidden.len();
    if len == 0 || len % BLOCK != 0 || len > MAX_PASSWORD_LEN {
        return Err(DecodeError::PasswordLength { len });
    }
    let mut out = SecretBuf::new();
    let Some(work) = out.buf.get_mut(..len) else {
        return Err(DecodeError::PasswordLength { len });
    };
    work.copy_from_slice(hidden);
    keystream(work, secret, request_authenticator, true);
    let trimmed = work.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.len = trimmed;
    Ok(out)
}

/// Hides `password` for User-Password under `secret` and the Request Authenticator.
pub fn encrypt(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &Authenticator,
) -> Result<HiddenPassword, EncodeError> {
    let len = password.len();
    if len > MAX_PASSWORD_LEN {
        return Err(EncodeError::PasswordTooLong { len });
    }
    let padded = len.div_ceil(BLOCK).max(1) * BLOCK;
    let mut out = SecretBuf::new();
    let Some(work) = out.buf.get_mut(..padded) else {
        return Err(EncodeError::PasswordTooLong { len });
    };
    for (w, p) in work.iter_mut().zip(password) {
        *w = *p;
    }
    keystream(work, secret, request_authenticator, false);
    out.len = padded;
    Ok(out)
}

/// The password of an Access-Request: `Ok(None)` when it has no User-Password.
pub fn decrypt_request(
    request: &PacketRef<'_>,
    secret: &[u8],
) -> Result<Option<Password>, DecodeError> {
    request
        .get(AttrType::USER_PASSWORD)
        .map(|hidden| decrypt(hidden, secret, request.authenticator()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let auth = [0x5a; 16];
        for n in 0..=MAX_PASSWORD_LEN {
            let pw: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = encrypt(&pw, b"secret", &auth).unwrap();
            assert_eq!(hidden.len(), n.div_ceil(16).max(1) * 16);
            if n > 0 {
                assert_ne!(&hidden.as_bytes()[..n.min(16)], &pw[..n.min(16)]);
            }
            let back = decrypt(hidden.as_bytes(), b"secret", &auth).unwrap();
            assert_eq!(back.as_bytes(), &pw[..]);
        }
        assert_eq!(
            encrypt(&[1; 129], b"s", &auth).err(),
            Some(EncodeError::PasswordTooLong { len: 129 })
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        for len in [0, 1, 15, 17, 144] {
            assert_eq!(
                decrypt(&vec![0; len], b"s", &[0; 16]).err(),
                Some(DecodeError::PasswordLength { len })
            );
        }
    }

    #[test]
    fn debug_does_not_print_the_password() {
        let p = encrypt(b"hunter2", b"s", &[0; 16]).unwrap();
        let back = decrypt(p.as_bytes(), b"s", &[0; 16]).unwrap();
        assert_eq!(back.as_str(), Some("hunter2"));
        assert_eq!(format!("{back:?}"), "SecretBuf(7 octets)");
    }
}
