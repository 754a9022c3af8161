//! The retransmission cache (RFC 5080 §2.2.2): a NAS that got no answer in time sends the
//! same request again (same source port, Identifier and Request Authenticator), and must get
//! the same answer without the request being processed twice: an Accounting-Request written
//! twice, an MS-CHAPv2 Accept with different MPPE salts.
//!
//! Entries live in a ring of at most `capacity` slots, oldest overwritten first; since every
//! entry has the same lifetime, insertion order is expiry order and the ring needs no other
//! eviction. A slot's reply buffer is reused by the entry that overwrites it, so a full
//! cache no longer allocates.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lastmile_radius_codec::{Authenticator, PacketRef};

/// What identifies a request and its retransmissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// NAS address.
    pub ip: IpAddr,
    /// NAS source port.
    pub port: u16,
    /// Identifier.
    pub identifier: u8,
    /// Request Authenticator.
    pub authenticator: Authenticator,
}

impl RequestKey {
    /// The key of `packet` received from `src`.
    pub fn new(src: SocketAddr, packet: &PacketRef<'_>) -> Self {
        RequestKey {
            ip: src.ip().to_canonical(),
            port: src.port(),
            identifier: packet.identifier(),
            authenticator: *packet.authenticator(),
        }
    }
}

/// What [`RetransmitCache::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// First sight (or the old entry expired): process it, then [`RetransmitCache::complete`]
    /// or [`RetransmitCache::abandon`].
    New,
    /// Being processed now: drop this copy.
    InProgress,
    /// Answered already: the reply was copied into the caller's buffer; send it again.
    Cached,
}

#[derive(Debug)]
enum State {
    Empty,
    InProgress,
    Done,
}

#[derive(Debug)]
struct Slot {
    key: RequestKey,
    at: Instant,
    state: State,
    reply: Vec<u8>,
}

#[derive(Debug)]
struct Ring {
    map: HashMap<RequestKey, usize>,
    slots: Vec<Slot>,
    next: usize,
}

/// The cache, shared by every socket of one port.
#[derive(Debug)]
pub struct RetransmitCache {
    ring: Mutex<Ring>,
    capacity: usize,
    ttl: Duration,
}

impl RetransmitCache {
    /// RFC 5080 suggests keeping replies for a few seconds past the NAS's retransmission
    /// window; 30 s covers the usual 3 tries × 5-10 s.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
    /// Enough for ~2,000 requests/s over the TTL.
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// A cache of `capacity` entries (at least 1) kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let capacity = capacity.max(1);
        RetransmitCache {
            ring: Mutex::new(Ring {
                map: HashMap::with_capacity(capacity),
                slots: Vec::new(),
                next: 0,
            }),
            capacity,
            ttl,
        }
    }

    /// Looks `key` up at `now`. A new key is marked in progress; a cached reply is copied
    /// into `out` (replacing its contents).
    pub fn begin(&self, key: RequestKey, now: Instant, out: &mut Vec<u8>) -> Begin {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&i) = ring.map.get(&key) {
            if let Some(slot) = ring.slots.get_mut(i) {
                if now.saturating_duration_since(slot.at) < self.ttl {
                    match slot.state {
                        State::InProgress => return Begin::InProgress,
                        State::Done => {
                            out.clear();
                            out.extend_from_slice(&slot.reply);
                            return Begin::Cached;
                        }
                        State::Empty => {}
                    }
                }
                // Expired: start over in the same slot.
                slot.at = now;
                slot.state = State::InProgress;
                return Begin::New;
            }
        }
        let ring = &mut *ring;
        let i = if ring.slots.len() < self.capacity {
            ring.slots.push(Slot {
                key,
                at: now,
                state: State::InProgress,
                reply: Vec::new(),
            });
            ring.slots.len() - 1
        } else {
            let i = ring.next % self.capacity;
            ring.next = (i + 1) % self.capacity;
            if let Some(slot) = ring.slots.get_mut(i) {
                if ring.map.get(&slot.key) == Some(&i) {
                    ring.map.remove(&slot.key);
                }
                slot.key = key;
                slot.at = now;
                slot.state = State::InProgress;
                slot.reply.clear();
            }
            i
        };
        ring.map.insert(key, i);
        Begin::New
    }

    fn with_slot(&self, key: &RequestKey, f: impl FnOnce(&mut Slot)) -> bool {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let ring = &mut *ring;
        let Some(&i) = ring.map.get(key) else {
            return false;
        };
        match ring.slots.get_mut(i) {
            Some(slot) if slot.key == *key => {
                f(slot);
                true
            }
            _ => false,
        }
    }

    /// Stores the reply to `key`. A no-op if the entry was evicted meanwhile.
    pub fn complete(&self, key: &RequestKey, reply: &[u8]) {
        self.with_slot(key, |slot| {
            slot.reply.clear();
            slot.reply.extend_from_slice(reply);
            slot.state = State::Done;
        });
    }

    /// Forgets `key` without a reply (the sink failed): its retransmission is processed anew.
    pub fn abandon(&self, key: &RequestKey) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = ring.map.remove(key) {
            if let Some(slot) = ring.slots.get_mut(i) {
                slot.state = State::Empty;
                slot.reply.clear();
            }
        }
    }

    /// Entries held (in any state).
    pub fn len(&self) -> usize {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> RequestKey {
        RequestKey {
            ip: IpAddr::from([10, 0, 0, 1]),
            port: 1812,
            identifier: id,
            authenticator: [id; 16],
        }
    }

    #[test]
    fn new_in_progress_cached_expired() {
        let c = RetransmitCache::new(8, Duration::from_secs(30));
        let t0 = Instant::now();
        let mut out = Vec::new();
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::New);
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::InProgress);
        c.complete(&key(1), b"reply");
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::Cached);
        assert_eq!(out, b"reply");
        let later = t0 + Duration::from_secs(31);
        assert_eq!(c.begin(key(1), later, &mut out), Begin::New);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn abandon_lets_the_retransmission_through() {
        let c = RetransmitCache::new(8, Duration::from_secs(30));
        let t0 = Instant::now();
        let mut out = Vec::new();
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::New);
        c.abandon(&key(1));
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::New);
    }

    #[test]
    fn the_oldest_entry_is_evicted_and_its_late_reply_ignored() {
        let c = RetransmitCache::new(2, Duration::from_secs(30));
        let t0 = Instant::now();
        let mut out = Vec::new();
        for id in 1..=3 {
            assert_eq!(c.begin(key(id), t0, &mut out), Begin::New);
        }
        assert_eq!(c.len(), 2);
        // Key 1 was overwritten by key 3: its late completion must not land on key 3.
        c.complete(&key(1), b"late");
        assert_eq!(c.begin(key(3), t0, &mut out), Begin::InProgress);
        assert_eq!(c.begin(key(1), t0, &mut out), Begin::New);
        c.complete(&key(2), b"two");
        // Key 2 was evicted by key 1's return.
        assert_eq!(c.begin(key(2), t0, &mut out), Begin::New);
    }
}
