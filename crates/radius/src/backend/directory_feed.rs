//! Keeps a [`Directory`] equal to the store: a full load at start, then the store's change
//! feed, polled a few times a second.
//!
//! The cursor is taken *before* the full load, so a change committed while the load pages
//! through the services is read again from the feed afterwards (reloading is idempotent):
//! nothing committed is ever missed, whichever backend (the feed itself guarantees that on
//! PostgreSQL, where transactions commit out of sequence order).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lastmile_app::SecretBox;
use lastmile_domain::ids::{NasId, ServiceId};
use lastmile_domain::nas::Nas;
use lastmile_store::radius::{ChangeCursor, ChangedEntity, DirectoryService};
use lastmile_store::{Page, Store, StoreError};
use tokio::sync::watch;

use crate::directory::{AuthRecord, Directory, DirectoryChange, NasEntry, Tier};

/// Services read per page of the full load.
const LOAD_PAGE: u32 = 2_000;
/// Changes read per poll; more are read at once in further polls.
const FEED_LIMIT: u32 = 10_000;
/// Services reloaded per query when following the feed.
const RELOAD_CHUNK: usize = 500;

/// Loads the directory from the store and follows its change feed.
pub struct DirectoryFeed {
    store: Arc<dyn Store>,
    secrets: SecretBox,
    directory: Arc<Directory>,
    cursor: ChangeCursor,
}

impl core::fmt::Debug for DirectoryFeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirectoryFeed")
            .field("directory", &self.directory)
            .field("cursor", &self.cursor)
            .finish()
    }
}

/// The authorisation record of a stored service: its password decrypted (a password that
/// cannot be decrypted is logged and left out, so that login fails rather than the load).
pub fn auth_record(secrets: &SecretBox, s: &DirectoryService) -> AuthRecord {
    let password = s.service.password_ciphertext.as_deref().and_then(|c| {
        secrets
            .decrypt(c)
            .map_err(|e| {
                tracing::error!(service = %s.service.id, error = %e,
                    "service password cannot be decrypted (wrong secret key?): its logins will fail");
            })
            .ok()
    });
    AuthRecord::from_service(
        &s.service,
        password,
        Tier::from_terms(&s.terms, &s.plan_code),
    )
}

/// The directory entry of a stored NAS, or `None` (logged) if its secret cannot be decrypted:
/// its packets are then dropped as from an unknown NAS.
pub fn nas_entry(secrets: &SecretBox, nas: &Nas) -> Option<NasEntry> {
    match secrets.decrypt(&nas.secret_ciphertext) {
        Ok(secret) => Some(NasEntry::from_nas(nas, secret.into_bytes())),
        Err(e) => {
            tracing::error!(nas = %nas.name, error = %e,
                "NAS shared secret cannot be decrypted (wrong secret key?): its packets will be dropped");
            None
        }
    }
}

impl DirectoryFeed {
    /// Fills `directory` with every NAS and every service that is not terminated, and
    /// returns the feed positioned to follow from before the load.
    pub async fn load(
        store: Arc<dyn Store>,
        secrets: SecretBox,
        directory: Arc<Directory>,
    ) -> Result<Self, StoreError> {
        let cursor = store.directory_cursor().await?;
        let mut nas = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_nas(Page { after, limit: 500 }).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.0);
            nas.extend(page.iter().filter_map(|n| nas_entry(&secrets, n)));
        }
        let mut services = Vec::new();
        let mut after: Option<ServiceId> = None;
        loop {
            let page = store.directory_services(after, LOAD_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.service.id);
            services.extend(page.iter().map(|s| auth_record(&secrets, s)));
        }
        tracing::info!(
            nas = nas.len(),
            services = services.len(),
            "RADIUS directory loaded"
        );
        directory.replace_all(nas, services);
        Ok(DirectoryFeed {
            store,
            secrets,
            directory,
            cursor,
        })
    }

    /// The directory this feed keeps current.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Reads the feed until it is drained and applies what changed; returns how many
    /// entities were reloaded. On error the cursor stays, so the next poll retries.
    pub async fn poll(&mut self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let batch = self
                .store
                .directory_changes(self.cursor, FEED_LIMIT)
                .await?;
            let mut services = BTreeSet::new();
            let mut nas = BTreeSet::new();
            for c in &batch.changes {
                match c {
                    ChangedEntity::Service(id) => services.insert(*id),
                    ChangedEntity::Nas(id) => nas.insert(*id),
                };
            }
            total += services.len() + nas.len();
            let mut changes = self.reload_nas(&nas).await?;
            changes.extend(self.reload_services(&services).await?);
            self.directory.apply(changes);
            self.cursor = batch.next;
            if !batch.more {
                return Ok(total);
            }
        }
    }

    async fn reload_nas(&self, ids: &BTreeSet<NasId>) -> Result<Vec<DirectoryChange>, StoreError> {
        let mut changes = Vec::with_capacity(ids.len());
        for id in ids {
            let change = match self.store.get_nas(*id).await? {
                Some(n) => match nas_entry(&self.secrets, &n) {
                    Some(e) => DirectoryChange::UpsertNas(e),
                    None => DirectoryChange::RemoveNas(*id),
                },
                None => DirectoryChange::RemoveNas(*id),
            };
            changes.push(change);
        }
        Ok(changes)
    }

    /// Terminated services are kept (their logins are rejected as terminated, which tells
    /// support more than "unknown"); services the store no longer has are removed.
    async fn reload_services(
        &self,
        ids: &BTreeSet<ServiceId>,
    ) -> Result<Vec<DirectoryChange>, StoreError> {
        let ids: Vec<ServiceId> = ids.iter().copied().collect();
        let mut changes = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(RELOAD_CHUNK) {
            let found = self.store.directory_services_by_id(chunk).await?;
            let present: BTreeSet<ServiceId> = found.iter().map(|s| s.service.id).collect();
            changes.extend(
                found
                    .iter()
                    .map(|s| DirectoryChange::UpsertService(auth_record(&self.secrets, s))),
            );
            changes.extend(
                chunk
                    .iter()
                    .filter(|id| !present.contains(id))
                    .map(|id| DirectoryChange::RemoveService(*id)),
            );
        }
        Ok(changes)
    }

    /// Polls every `interval` until `shutdown` turns true. A failing poll is logged and
    /// retried at the next tick: the directory keeps answering from what it has.
    pub async fn follow(mut self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tick.tick() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            match self.poll().await {
                Ok(n) => {
                    if failing {
                        tracing::info!("RADIUS directory follows the store again");
                        failing = false;
                    }
                    if n > 0 {
                        tracing::debug!(reloaded = n, "RADIUS directory updated");
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "RADIUS directory cannot read the change feed; answering from the last state");
                }
                Err(_) => {}
            }
        }
    }
}
