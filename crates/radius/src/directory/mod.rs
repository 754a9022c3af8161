//! The directory: every NAS and every service's authorisation record, in memory, so an
//! Access-Request is answered without a query.
//!
//! Two shapes, for two rates of change:
//! - NAS entries (hundreds, rarely changed) sit in one `HashMap` behind `RwLock<Arc<..>>`;
//!   a change copies the map and swaps the `Arc`, and a reader holds the lock only to clone it.
//! - Services (100,000+, changed one at a time by operators and dunning) are spread over
//!   [`SHARDS`] `RwLock<Shard>`s by the hash of each key, so an update write-locks one shard
//!   for one map operation and readers of the other shards never notice. A full reload builds
//!   new shards outside the locks and swaps each in.
//!
//! Writers are serialised by a mutex of their own (they are rare), so two updates of one
//! service cannot interleave; readers never take it.

mod records;

pub use records::{
    AuthRecord, NasEntry, SuspendedAction, Tier, DEFAULT_COA_PORT, DEFAULT_INTERIM_INTERVAL,
};

use std::borrow::Borrow;
use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use lastmile_domain::ids::{NasId, ServiceId};
use lastmile_domain::service::ServiceStatus;

use crate::mac::MacAddr;

/// How many shards the services are spread over.
pub const SHARDS: usize = 32;

/// One change to the directory, as the store side sees them happen.
#[derive(Debug, Clone)]
pub enum DirectoryChange {
    /// A service was created or changed (status, plan, credentials, keys): its record
    /// replaces the old one, and keys it no longer has stop finding it.
    UpsertService(AuthRecord),
    /// A service is gone (deleted; a terminated service is better upserted, so that its
    /// login is rejected as terminated rather than unknown).
    RemoveService(ServiceId),
    /// A NAS was created or changed.
    UpsertNas(NasEntry),
    /// A NAS was deleted: its packets are dropped from now on.
    RemoveNas(NasId),
}

/// Which key found a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchedBy {
    /// User-Name as the login.
    Username,
    /// A MAC address (Calling-Station-Id, or User-Name in MAC authentication).
    Mac,
    /// Agent-Circuit-Id.
    CircuitId,
}

impl MatchedBy {
    /// Label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Username => "username",
            MatchedBy::Mac => "mac",
            MatchedBy::CircuitId => "circuit_id",
        }
    }
}

type NasTable = HashMap<IpAddr, Arc<NasEntry>>;

#[derive(Default)]
struct Shard {
    by_username: HashMap<Box<str>, Arc<AuthRecord>>,
    by_mac: HashMap<MacAddr, Arc<AuthRecord>>,
    by_circuit: HashMap<Box<[u8]>, Arc<AuthRecord>>,
    by_id: HashMap<ServiceId, Arc<AuthRecord>>,
}

/// The in-memory directory. Share it as `Arc<Directory>`.
pub struct Directory {
    nas: RwLock<Arc<NasTable>>,
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    writer: Mutex<()>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory::new()
    }
}

impl core::fmt::Debug for Directory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Directory")
            .field("nas", &self.nas_count())
            .field("services", &self.service_count())
            .finish()
    }
}

/// A NAS source address as the table keys it: IPv4-mapped IPv6 (a dual-stack socket's view
/// of an IPv4 NAS) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Puts `rec` under `key` unless a live service holds it and `rec` is terminated: usernames,
/// MACs and static IPs are unique among live services only, so a terminated service may
/// share a key with its live successor, and the live one must win whatever the load order.
fn take_key<K: Eq + Hash>(map: &mut HashMap<K, Arc<AuthRecord>>, key: K, rec: &Arc<AuthRecord>) {
    match map.entry(key) {
        Entry::Vacant(e) => {
            e.insert(rec.clone());
        }
        Entry::Occupied(mut e) => {
            let cur = e.get();
            let shadowed = rec.status == ServiceStatus::Terminated
                && cur.status != ServiceStatus::Terminated
                && cur.service_id != rec.service_id;
            if !shadowed {
                e.insert(rec.clone());
            }
        }
    }
}

/// Removes `key` if it still finds service `id` (another service may have taken it since).
fn release_key<K, Q>(map: &mut HashMap<K, Arc<AuthRecord>>, key: &Q, id: ServiceId)
where
    K: Eq + Hash + Borrow<Q>,
    Q: Eq + Hash + ?Sized,
{
    if map.get(key).is_some_and(|r| r.service_id == id) {
        map.remove(key);
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Directory {
            nas: RwLock::new(Arc::new(HashMap::new())),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            writer: Mutex::new(()),
        }
    }

    fn shard_of<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn read_shard<R>(&self, index: usize, f: impl FnOnce(&Shard) -> R) -> Option<R> {
        let shard = self.shards.get(index)?;
        let guard = shard.read().unwrap_or_else(PoisonError::into_inner);
        Some(f(&guard))
    }

    fn write_shard(&self, index: usize, f: impl FnOnce(&mut Shard)) {
        if let Some(shard) = self.shards.get(index) {
            let mut guard = shard.write().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard);
        }
    }

    // ---- reads: the request path ----

    /// The NAS whose packets come from `ip`.
    pub fn nas(&self, ip: IpAddr) -> Option<Arc<NasEntry>> {
        let table = self.nas.read().unwrap_or_else(PoisonError::into_inner);
        table.get(&canonical(ip)).cloned()
    }

    /// Every NAS, in no particular order.
    pub fn nas_entries(&self) -> Vec<Arc<NasEntry>> {
        let table = self.nas.read().unwrap_or_else(PoisonError::into_inner);
        table.values().cloned().collect()
    }

    /// The NAS with catalogue id `id` (a scan: for the CoA path, not per packet).
    pub fn nas_by_id(&self, id: NasId) -> Option<Arc<NasEntry>> {
        let table = self.nas.read().unwrap_or_else(PoisonError::into_inner);
        table.values().find(|n| n.id == id).cloned()
    }

    /// The service whose login is `username` (exact, case-sensitive, as RADIUS compares).
    pub fn by_username(&self, username: &str) -> Option<Arc<AuthRecord>> {
        self.read_shard(self.shard_of(username), |s| {
            s.by_username.get(username).cloned()
        })
        .flatten()
    }

    /// The service registered with `mac`.
    pub fn by_mac(&self, mac: MacAddr) -> Option<Arc<AuthRecord>> {
        self.read_shard(self.shard_of(&mac), |s| s.by_mac.get(&mac).cloned())
            .flatten()
    }

    /// The service on the line `circuit_id` (Agent-Circuit-Id octets).
    pub fn by_circuit_id(&self, circuit_id: &[u8]) -> Option<Arc<AuthRecord>> {
        self.read_shard(self.shard_of(circuit_id), |s| {
            s.by_circuit.get(circuit_id).cloned()
        })
        .flatten()
    }

    /// The record of service `id`.
    pub fn service(&self, id: ServiceId) -> Option<Arc<AuthRecord>> {
        self.read_shard(self.shard_of(&id), |s| s.by_id.get(&id).cloned())
            .flatten()
    }

    /// How many services are loaded.
    pub fn service_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).by_id.len())
            .sum()
    }

    /// How many NAS are loaded.
    pub fn nas_count(&self) -> usize {
        self.nas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    // ---- writes ----

    /// Replaces everything: the initial load, or a periodic full resync. Builds the new
    /// tables without holding any lock readers take, then swaps them in shard by shard.
    pub fn replace_all(
        &self,
        nas: impl IntoIterator<Item = NasEntry>,
        services: impl IntoIterator<Item = AuthRecord>,
    ) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let table: NasTable = nas
            .into_iter()
            .map(|n| (canonical(n.ip), Arc::new(n)))
            .collect();
        let mut fresh: Vec<Shard> = (0..SHARDS).map(|_| Shard::default()).collect();
        for rec in services {
            let rec = Arc::new(rec);
            self.index_into(&mut fresh, &rec);
        }
        *self.nas.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        for (slot, new) in self.shards.iter().zip(fresh) {
            *slot.write().unwrap_or_else(PoisonError::into_inner) = new;
        }
    }

    /// Indexes `rec` into shards being built (no locks: they are not shared yet).
    fn index_into(&self, shards: &mut [Shard], rec: &Arc<AuthRecord>) {
        if let Some(u) = rec.username.as_deref() {
            if let Some(s) = shards.get_mut(self.shard_of(u)) {
                take_key(&mut s.by_username, Box::from(u), rec);
            }
        }
        if let Some(m) = rec.mac {
            if let Some(s) = shards.get_mut(self.shard_of(&m)) {
                take_key(&mut s.by_mac, m, rec);
            }
        }
        if let Some(c) = rec.circuit_id.as_deref() {
            if let Some(s) = shards.get_mut(self.shard_of(c.as_bytes())) {
                take_key(&mut s.by_circuit, Box::from(c.as_bytes()), rec);
            }
        }
        if let Some(s) = shards.get_mut(self.shard_of(&rec.service_id)) {
            s.by_id.insert(rec.service_id, rec.clone());
        }
    }

    /// Applies changes one record at a time: each service change locks only the shards of
    /// the keys it touches, each briefly; NAS changes copy the (small) NAS table once.
    pub fn apply(&self, changes: impl IntoIterator<Item = DirectoryChange>) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut nas_table: Option<NasTable> = None;
        for change in changes {
            match change {
                DirectoryChange::UpsertService(rec) => self.upsert_service(rec),
                DirectoryChange::RemoveService(id) => self.remove_service(id),
                DirectoryChange::UpsertNas(entry) => {
                    let table = nas_table.get_or_insert_with(|| self.nas_table_copy());
                    table.retain(|_, n| n.id != entry.id);
                    table.insert(canonical(entry.ip), Arc::new(entry));
                }
                DirectoryChange::RemoveNas(id) => {
                    let table = nas_table.get_or_insert_with(|| self.nas_table_copy());
                    table.retain(|_, n| n.id != id);
                }
            }
        }
        if let Some(table) = nas_table {
            *self.nas.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        }
    }

    fn nas_table_copy(&self) -> NasTable {
        let current = self.nas.read().unwrap_or_else(PoisonError::into_inner);
        NasTable::clone(&current)
    }

    fn upsert_service(&self, rec: AuthRecord) {
        let id = rec.service_id;
        let old = self.service(id);
        let new = Arc::new(rec);
        // New keys first, then the old ones it no longer has: a concurrent reader finds the
        // service under one key or the other, never under neither.
        if let Some(u) = new.username.as_deref() {
            self.write_shard(self.shard_of(u), |s| {
                take_key(&mut s.by_username, Box::from(u), &new);
            });
        }
        if let Some(m) = new.mac {
            self.write_shard(self.shard_of(&m), |s| take_key(&mut s.by_mac, m, &new));
        }
        if let Some(c) = new.circuit_id.as_deref() {
            self.write_shard(self.shard_of(c.as_bytes()), |s| {
                take_key(&mut s.by_circuit, Box::from(c.as_bytes()), &new);
            });
        }
        self.write_shard(self.shard_of(&id), |s| {
            s.by_id.insert(id, new.clone());
        });
        if let Some(old) = old {
            if old.username != new.username {
                self.release_username(&old);
            }
            if old.mac != new.mac {
                self.release_mac(&old);
            }
            if old.circuit_id != new.circuit_id {
                self.release_circuit(&old);
            }
        }
    }

    fn remove_service(&self, id: ServiceId) {
        let mut old = None;
        self.write_shard(self.shard_of(&id), |s| old = s.by_id.remove(&id));
        if let Some(old) = old {
            self.release_username(&old);
            self.release_mac(&old);
            self.release_circuit(&old);
        }
    }

    fn release_username(&self, old: &AuthRecord) {
        if let Some(u) = old.username.as_deref() {
            self.write_shard(self.shard_of(u), |s| {
                release_key(&mut s.by_username, u, old.service_id);
            });
        }
    }

    fn release_mac(&self, old: &AuthRecord) {
        if let Some(m) = old.mac {
            self.write_shard(self.shard_of(&m), |s| {
                release_key(&mut s.by_mac, &m, old.service_id);
            });
        }
    }

    fn release_circuit(&self, old: &AuthRecord) {
        if let Some(c) = old.circuit_id.as_deref() {
            self.write_shard(self.shard_of(c.as_bytes()), |s| {
                release_key(&mut s.by_circuit, c.as_bytes(), old.service_id);
            });
        }
    }
}

#[cfg(test)]
mod tests;
