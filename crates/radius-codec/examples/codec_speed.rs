//! One Access-Request's worth of server work, timed: decode a ~150-octet PAP Access-Request
//! carrying a Message-Authenticator, verify it, decrypt the password, and encode a signed
//! Access-Accept with four attributes (plus its Message-Authenticator).
//!
//! Run with `cargo run --release -p lastmile-radius-codec --example codec_speed`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use lastmile_radius_codec::auth::verify_request;
use lastmile_radius_codec::dict::{mikrotik, nas_port_type, service_type};
use lastmile_radius_codec::{pap, AttrType, Code, PacketBuilder, PacketRef};

const SECRET: &[u8] = b"a-typical-nas-secret";
const ROUNDS: u32 = 1_000_000;

fn request() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 1);
    b.set_authenticator(&[0x5e; 16]);
    let filled = (|| {
        b.add_text(AttrType::USER_NAME, "subscriber-000123")?
            .add_user_password(b"s3cr3t-pass", SECRET)?
            .add_ipv4(AttrType::NAS_IP_ADDRESS, Ipv4Addr::new(10, 0, 0, 1))?
            .add_u32(AttrType::NAS_PORT, 15728640)?
            .add_u32(AttrType::NAS_PORT_TYPE, nas_port_type::ETHERNET)?
            .add_u32(AttrType::SERVICE_TYPE, service_type::FRAMED)?
            .add_text(AttrType::CALLING_STATION_ID, "AA:BB:CC:DD:EE:FF")?
            .add_text(AttrType::CALLED_STATION_ID, "bras-01")?
            .add_text(AttrType::NAS_IDENTIFIER, "bras-01.pop1")?
            .add_text(AttrType::NAS_PORT_ID, "eth1.100:200")?;
        Ok::<(), lastmile_radius_codec::EncodeError>(())
    })();
    filled.expect("fits");
    b.finish_request(SECRET);
    buf
}

fn serve(datagram: &[u8], out: &mut Vec<u8>) -> usize {
    let req = PacketRef::decode(datagram).expect("valid request");
    verify_request(&req, SECRET, true).expect("signed request");
    let password = pap::decrypt_request(&req, SECRET)
        .expect("valid password")
        .expect("has password");
    black_box(password.as_bytes());
    let mut b = PacketBuilder::reply(out, &req, Code::AccessAccept);
    b.add_u32(AttrType::SERVICE_TYPE, service_type::FRAMED)
        .and_then(|b| b.add_ipv4(AttrType::FRAMED_IP_ADDRESS, Ipv4Addr::new(100, 64, 1, 2)))
        .and_then(|b| b.add_u32(AttrType::ACCT_INTERIM_INTERVAL, 300))
        .and_then(|b| b.add_vsa(mikrotik::RATE_LIMIT, b"50M/100M"))
        .expect("fits");
    b.finish_reply(&req, SECRET).len()
}

fn main() {
    let datagram = request();
    let mut out = Vec::with_capacity(512);
    println!(
        "request: {} octets, reply: {} octets",
        datagram.len(),
        serve(&datagram, &mut out)
    );
    for _ in 0..10_000 {
        black_box(serve(black_box(&datagram), &mut out));
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(serve(black_box(&datagram), &mut out));
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!(
        "decode + verify Message-Authenticator + PAP decrypt + signed Accept: {ns:.0} ns/op \
         ({:.0} requests/s on one core)",
        1e9 / ns
    );
}
