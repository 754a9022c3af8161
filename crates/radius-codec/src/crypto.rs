//! Small wrappers over the RustCrypto primitives, shared by the modules that sign and hide.

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

pub(crate) type HmacMd5 = hmac::Hmac<Md5>;

/// MD5 over the concatenation of `parts`, without building the concatenation.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// An HMAC-MD5 keyed with the shared secret.
pub(crate) fn hmac_md5(secret: &[u8]) -> HmacMd5 {
    match <HmacMd5 as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC accepts keys of every length (RFC 2104 hashes the long ones), so this arm is
        // never taken; it only keeps the function total without a panic path.
        Err(_) => <HmacMd5 as KeyInit>::new(&Default::default()),
    }
}

/// HMAC-MD5 output as an array.
pub(crate) fn hmac_finish(mac: HmacMd5) -> [u8; 16] {
    mac.finalize().into_bytes().into()
}

/// Equality whose time does not depend on where the inputs differ, so that a forger cannot
/// learn a valid authenticator octet by octet from response timing.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// XORs `key` into `data`, over the shorter of the two.
pub(crate) fn xor_in_place(data: &mut [u8], key: &[u8]) {
    for (d, k) in data.iter_mut().zip(key) {
        *d ^= k;
    }
}

/// One hex digit, uppercase, for the low four bits of `n`.
const fn hex_digit(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 {
        b'0' + n
    } else {
        b'A' + (n - 10)
    }
}

/// Writes `bytes` as uppercase hex into `out` (which must be twice as long; extra is untouched).
pub(crate) fn hex_upper(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = hex_digit(b >> 4);
            *lo = hex_digit(*b);
        }
    }
}
