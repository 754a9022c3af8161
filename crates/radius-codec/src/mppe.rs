//! MPPE keys after MS-CHAPv2: deriving them (RFC 3079 §3) and hiding them in
//! MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 §2.4.2, §2.4.3).
//!
//! Derivation: `MasterKey = SHA1(PasswordHashHash + NT-Response + Magic1)[..16]`, then per
//! direction `SHA1(MasterKey + 40 x 0x00 + Magic + 40 x 0xF2)[..16]`. Which magic is which
//! depends on the side: the NAS (server side) sends with the key the client receives with.
//! The RADIUS attributes are named from the NAS's point of view, so MS-MPPE-Send-Key holds the
//! server send key.
//!
//! Hiding: the string `key length octet + key + zero padding` (to a multiple of 16) is XORed
//! with `b1 = MD5(secret + Request Authenticator + salt)`, `b2 = MD5(secret + c1)`, ... and
//! sent after the 2-octet salt, whose top bit must be set and which must differ between the
//! attributes of one packet. The salt is the caller's (this crate draws no random numbers).

use md5::{Digest, Md5};
use sha1::Sha1;

use crate::crypto::xor_in_place;
use crate::error::{DecodeError, EncodeError};
use crate::packet::Authenticator;

/// "This is the MPPE Master Key" (RFC 3079 §3.4).
const MASTER_MAGIC: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 §3.4 Magic2: the client's send key, the server's receive key.
const MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 §3.4 Magic3: the client's receive key, the server's send key.
const MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0x00; 40];
const SHS_PAD2: [u8; 40] = [0xF2; 40];

/// The longest key one attribute can carry: 247 octets of vendor value, minus the salt,
/// rounded down to 16, minus the length octet.
pub const MAX_KEY_LEN: usize = 239;
const MAX_STRING_LEN: usize = MAX_KEY_LEN + 1;
const BLOCK: usize = 16;

/// The two 128-bit MPPE keys, from the NAS's point of view.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// NAS-to-peer key: goes in MS-MPPE-Send-Key.
    pub send_key: [u8; 16],
    /// Peer-to-NAS key: goes in MS-MPPE-Recv-Key.
    pub recv_key: [u8; 16],
}

impl core::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MppeKeys(..)")
    }
}

/// GetMasterKey (RFC 3079 §3.4).
pub fn master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let digest: [u8; 20] = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MASTER_MAGIC)
        .finalize()
        .into();
    first16(&digest)
}

/// GetAsymmetricStartKey (RFC 3079 §3.4) for a 128-bit key.
pub fn asymmetric_start_key(master_key: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic = if is_send == is_server { MAGIC3 } else { MAGIC2 };
    let digest: [u8; 20] = Sha1::new()
        .chain_update(master_key)
        .chain_update(SHS_PAD1)
        .chain_update(magic)
        .chain_update(SHS_PAD2)
        .finalize()
        .into();
    first16(&digest)
}

fn first16(digest: &[u8; 20]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = *d;
    }
    out
}

/// The NAS's keys after a successful MS-CHAPv2 exchange.
pub fn server_keys(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> MppeKeys {
    let master = master_key(password_hash_hash, nt_response);
    MppeKeys {
        send_key: asymmetric_start_key(&master, true, true),
        recv_key: asymmetric_start_key(&master, false, true),
    }
}

/// An MPPE key attribute value (salt and ciphertext), or a recovered key; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBuf {
    buf: [u8; 2 + MAX_STRING_LEN],
    len: usize,
}

impl KeyBuf {
    fn new() -> Self {
        KeyBuf {
            buf: [0; 2 + MAX_STRING_LEN],
            len: 0,
        }
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Drop for KeyBuf {
    fn drop(&mut self) {
        self.buf.fill(0);
        core::hint::black_box(&mut self.buf);
    }
}

impl core::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyBuf({} octets)", self.len)
    }
}

fn keystream(
    data: &mut [u8],
    secret: &[u8],
    authenticator: &Authenticator,
    salt: [u8; 2],
    decrypting: bool,
) {
    let base = Md5::new_with_prefix(secret);
    let mut first = true;
    let mut prev = [0u8; BLOCK];
    for block in data.chunks_exact_mut(BLOCK) {
        let key: [u8; BLOCK] = if first {
            first = false;
            base.clone()
                .chain_update(authenticator)
                .chain_update(salt)
                .finalize()
                .into()
        } else {
            base.clone().chain_update(prev).finalize().into()
        };
        if decrypting {
            prev.copy_from_slice(block);
            xor_in_place(block, &key);
        } else {
            xor_in_place(block, &key);
            prev.copy_from_slice(block);
        }
    }
}

/// Hides `key` for MS-MPPE-Send-Key or MS-MPPE-Recv-Key under the shared secret and the
/// Request Authenticator of the Access-Request being answered. The top bit of `salt` is set
/// here; give each attribute of a packet a different salt.
pub fn encrypt_key(
    key: &[u8],
    salt: u16,
    secret: &[u8],
    request_authenticator: &Authenticator,
) -> Result<KeyBuf, EncodeError> {
    let len = key.len();
    let key_len = u8::try_from(len).map_err(|_| EncodeError::KeyTooLong { len })?;
    if len > MAX_KEY_LEN {
        return Err(EncodeError::KeyTooLong { len });
    }
    let salt = (salt | 0x8000).to_be_bytes();
    let string_len = (len + 1).div_ceil(BLOCK) * BLOCK;
    let mut out = KeyBuf::new();
    let (salt_field, rest) = out.buf.split_at_mut(2);
    salt_field.copy_from_slice(&salt);
    let Some((len_octet, body)) = rest.split_first_mut() else {
        return Err(EncodeError::KeyTooLong { len });
    };
    *len_octet = key_len;
    for (b, k) in body.iter_mut().zip(key) {
        *b = *k;
    }
    let Some(string) = rest.get_mut(..string_len) else {
        return Err(EncodeError::KeyTooLong { len });
    };
    keystream(string, secret, request_authenticator, salt, false);
    out.len = 2 + string_len;
    Ok(out)
}

/// Recovers the key from an MS-MPPE-Send-Key or MS-MPPE-Recv-Key value (a client's job, and
/// the tests').
pub fn decrypt_key(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &Authenticator,
) -> Result<KeyBuf, DecodeError> {
    let Some((salt, string)) = value.split_first_chunk::<2>() else {
        return Err(DecodeError::InvalidMppeKey);
    };
    if string.is_empty() || string.len() % BLOCK != 0 || string.len() > MAX_STRING_LEN {
        return Err(DecodeError::InvalidMppeKey);
    }
    let mut work = KeyBuf::new();
    let Some(plain) = work.buf.get_mut(..string.len()) else {
        return Err(DecodeError::InvalidMppeKey);
    };
    plain.copy_from_slice(string);
    keystream(plain, secret, request_authenticator, *salt, true);
    let Some((&key_len, body)) = plain.split_first() else {
        return Err(DecodeError::InvalidMppeKey);
    };
    let key_len = usize::from(key_len);
    let Some(key) = body.get(..key_len) else {
        return Err(DecodeError::InvalidMppeKey);
    };
    let mut out = KeyBuf::new();
    for (o, k) in out.buf.iter_mut().zip(key) {
        *o = *k;
    }
    out.len = key_len;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_strings_have_rfc_lengths() {
        assert_eq!(MAGIC2.len(), 84);
        assert_eq!(MAGIC3.len(), 84);
        assert_eq!(MASTER_MAGIC.len(), 27);
    }

    #[test]
    fn key_round_trip_and_layout() {
        let auth = [9u8; 16];
        for len in [0usize, 1, 15, 16, 31, 32, MAX_KEY_LEN] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let enc = encrypt_key(&key, 0x1234, b"secret", &auth).unwrap();
            let v = enc.as_bytes();
            assert_eq!(v[0], 0x92, "salt top bit set");
            assert_eq!(v[1], 0x34);
            assert_eq!((v.len() - 2) % 16, 0);
            assert_eq!(v.len() - 2, (len + 1).div_ceil(16) * 16);
            let dec = decrypt_key(v, b"secret", &auth).unwrap();
            assert_eq!(dec.as_bytes(), &key[..]);
        }
        assert_eq!(
            encrypt_key(&[0; 240], 1, b"s", &auth).err(),
            Some(EncodeError::KeyTooLong { len: 240 })
        );
        assert_eq!(
            encrypt_key(&[0; 300], 1, b"s", &auth).err(),
            Some(EncodeError::KeyTooLong { len: 300 })
        );
        // A 16-octet key makes the 34-octet value every NAS expects.
        assert_eq!(
            encrypt_key(&[1; 16], 1, b"s", &auth)
                .unwrap()
                .as_bytes()
                .len(),
            34
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        let auth = [0u8; 16];
        for bad in [&[][..], &[0x80], &[0x80, 0], &[0x80, 0, 1, 2, 3]] {
            assert_eq!(
                decrypt_key(bad, b"s", &auth).err(),
                Some(DecodeError::InvalidMppeKey)
            );
        }
        // Under the wrong secret the key does not come back: an error or other octets.
        let enc = encrypt_key(&[1; 16], 1, b"right", &auth).unwrap();
        for secret in [&b"wrong"[..], b"other", b"third"] {
            match decrypt_key(enc.as_bytes(), secret, &auth) {
                Ok(k) => assert_ne!(k.as_bytes(), &[1; 16]),
                Err(e) => assert_eq!(e, DecodeError::InvalidMppeKey),
            }
        }
    }
}
