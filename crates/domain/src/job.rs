//! Provisioning jobs: durable instructions to the network, written in the same transaction as
//! the change that caused them (an outbox) and executed by the job runner with retries.

use crate::ids::{JobId, ServiceId, SubscriberId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Job kinds the core emits. Executors for them arrive with the RADIUS and router work; until
/// then such jobs stay `pending`, visibly.
pub mod kinds {
    /// Re-publish a service's RADIUS policy (status, tier, static IP).
    pub const RADIUS_UPDATE_POLICY: &str = "radius.update-policy";
    /// Send a CoA so a live session picks up a new tier.
    pub const NAS_COA: &str = "nas.coa";
    /// Send a Disconnect-Request so a suspended/terminated service drops off at once.
    pub const NAS_DISCONNECT: &str = "nas.disconnect";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            o => Err(format!("unknown job status `{o}`")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisioningJob {
    pub id: JobId,
    pub subscriber_id: Option<SubscriberId>,
    pub service_id: Option<ServiceId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: JobStatus,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not to be started before this time (backoff).
    pub run_after: Timestamp,
    /// While `running`: the lease; a job whose lease expired is taken over by another worker.
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;

impl ProvisioningJob {
    pub fn new(
        now: Timestamp,
        kind: &str,
        subscriber_id: Option<SubscriberId>,
        service_id: Option<ServiceId>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: JobId::generate(),
            subscriber_id,
            service_id,
            kind: kind.to_string(),
            payload,
            status: JobStatus::Pending,
            attempts: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_after: now,
            locked_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Exponential backoff after the `attempts`-th failed attempt: 5 s, 10 s, 20 s … capped at
/// one hour.
pub fn backoff(attempts: i32) -> SignedDuration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    let secs = 5i64.saturating_mul(1i64 << exp.min(12));
    SignedDuration::from_secs(secs.min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1).as_secs(), 5);
        assert_eq!(backoff(2).as_secs(), 10);
        assert_eq!(backoff(3).as_secs(), 20);
        assert_eq!(backoff(50).as_secs(), 3600);
        assert_eq!(backoff(0).as_secs(), 5);
    }
}
