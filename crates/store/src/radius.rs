//! What the store keeps for RADIUS: sessions, hourly usage, and the change feed that keeps
//! each RADIUS server's in-memory directory current. Types of the port, and their row
//! decoders (shared by both backends, like `rows`).

use crate::rows::RowGet;
use crate::{Result, StoreError};
use lastmile_domain::ids::*;
use lastmile_domain::plan::PlanTerms;
use lastmile_domain::radius::{HourlyUsage, Octets, RadiusSession};
use lastmile_domain::service::Service;

/// Which sessions to list.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Only open sessions (`Some(true)`), only ended ones (`Some(false)`).
    pub active: Option<bool>,
    pub service_id: Option<ServiceId>,
    pub subscriber_id: Option<SubscriberId>,
    pub nas_id: Option<NasId>,
    /// Framed-IP-Address, in its canonical text form.
    pub framed_ip: Option<String>,
    pub username: Option<String>,
}

/// What a RADIUS directory needs of a service: the service, its plan version's terms and the
/// plan's code (the policy name on policy-based NASes).
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryService {
    pub service: Service,
    pub terms: PlanTerms,
    pub plan_code: String,
}

/// A position in the change feed: every change before it has been read.
///
/// Opaque to callers. On SQLite changes become visible in sequence order and the cursor is
/// the last sequence number read; on PostgreSQL it is a transaction-id horizon (see the
/// migration) with the last sequence number read within that transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeCursor {
    pub tx: i64,
    pub seq: i64,
}

/// What changed: reload this entity (or drop it, if it is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangedEntity {
    Service(ServiceId),
    Nas(NasId),
}

/// Changes from a cursor, and where to continue. A change may be reported more than once
/// (reloading is idempotent); none is ever skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    pub changes: Vec<ChangedEntity>,
    pub next: ChangeCursor,
    /// More changes are waiting past `limit`: read again at once.
    pub more: bool,
}

fn u64_col(r: &impl RowGet, col: &str) -> Result<u64> {
    u64::try_from(r.i64(col)?).map_err(|e| StoreError::corrupt(format!("{col}: {e}")))
}

fn u32_col(r: &impl RowGet, col: &str) -> Result<u32> {
    u32::try_from(r.i64(col)?).map_err(|e| StoreError::corrupt(format!("{col}: {e}")))
}

/// A stored octet count. Counts past `i64::MAX` (8 EiB) do not occur; they saturate.
pub fn octets_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn radius_session(r: &impl RowGet) -> Result<RadiusSession> {
    Ok(RadiusSession {
        id: SessionId(r.uuid("id")?),
        nas_id: NasId(r.uuid("nas_id")?),
        acct_session_id: r.text("acct_session_id")?,
        service_id: r.opt_uuid("service_id")?.map(ServiceId),
        subscriber_id: r.opt_uuid("subscriber_id")?.map(SubscriberId),
        username: r.opt_text("username")?,
        framed_ip: r.opt_parsed("framed_ip")?,
        calling_station_id: r.opt_text("calling_station_id")?,
        nas_port_id: r.opt_text("nas_port_id")?,
        started_at: r.timestamp("started_at")?,
        updated_at: r.timestamp("updated_at")?,
        stopped_at: r.opt_timestamp("stopped_at")?,
        end: r.opt_parsed("end_reason")?,
        terminate_cause: r
            .opt_i64("terminate_cause")?
            .map(|v| u32::try_from(v).map_err(StoreError::corrupt))
            .transpose()?,
        session_time: u32_col(r, "session_time")?,
        total: Octets {
            download: u64_col(r, "download_bytes")?,
            upload: u64_col(r, "upload_bytes")?,
        },
        base: Octets {
            download: u64_col(r, "base_download")?,
            upload: u64_col(r, "base_upload")?,
        },
        accepted_policy: r.opt_text("accepted_policy")?,
        policy_updated_at: r.opt_timestamp("policy_updated_at")?,
    })
}

pub fn hourly_usage(r: &impl RowGet) -> Result<HourlyUsage> {
    Ok(HourlyUsage {
        subscriber_id: SubscriberId(r.uuid("subscriber_id")?),
        service_id: ServiceId(r.uuid("service_id")?),
        hour_start: r.timestamp("hour_start")?,
        octets: Octets {
            download: u64_col(r, "download_bytes")?,
            upload: u64_col(r, "upload_bytes")?,
        },
    })
}

/// A service row joined with its plan version (columns prefixed `v_`) and the plan's `code`
/// (as `plan_code`).
pub fn directory_service(r: &impl RowGet) -> Result<DirectoryService> {
    Ok(DirectoryService {
        service: crate::rows::service(r)?,
        terms: crate::rows::plan_version(r, "v_")?.terms,
        plan_code: r.text("plan_code")?,
    })
}

pub fn directory_change(r: &impl RowGet) -> Result<ChangedEntity> {
    let id = r.uuid("entity_id")?;
    match r.text("entity")?.as_str() {
        "service" => Ok(ChangedEntity::Service(ServiceId(id))),
        "nas" => Ok(ChangedEntity::Nas(NasId(id))),
        o => Err(StoreError::corrupt(format!("directory change of `{o}`"))),
    }
}
