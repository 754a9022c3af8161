//! Provisioning jobs: durable instructions to the network, written in the same transaction as
//! the change that caused them (an outbox) and executed by the job runner with retries.

use crate::ids::{JobId, ServiceEventId, ServiceId, SubscriberId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What a job does. The wire and database names are `as_str`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobKind {
    /// Send a CoA so a live session picks up a new tier.
    #[serde(rename = "nas.coa")]
    NasCoa,
    /// Send a Disconnect-Request so the session drops (suspension, termination) or
    /// re-authenticates into its real tier (resume).
    #[serde(rename = "nas.disconnect")]
    NasDisconnect,
    /// Remind a subscriber of an overdue invoice (dunning).
    #[serde(rename = "notification.dunning-reminder")]
    DunningReminder,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [Self::NasCoa, Self::NasDisconnect, Self::DunningReminder];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NasCoa => "nas.coa",
            Self::NasDisconnect => "nas.disconnect",
            Self::DunningReminder => "notification.dunning-reminder",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown job kind `{s}`"))
    }
}

/// Why a NAS job was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobReason {
    PlanChanged,
    Suspended,
    Terminated,
    Resumed,
}

/// The payload of a NAS job (`nas.coa`, `nas.disconnect`), stored as JSON. It names the
/// service rather than copying its plan: the executor reads the current plan when it runs, so a
/// job retried after a second change still sends the newest tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPayload {
    pub service_id: ServiceId,
    pub subscriber_id: SubscriberId,
    /// The timeline event that caused the job.
    pub event_id: ServiceEventId,
    pub reason: JobReason,
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
    pub kind: JobKind,
    /// A [`JobPayload`] for NAS jobs; the dunning reminder's own fields for reminders.
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
    /// The last attempt's outcome as a person reads it, success or failure.
    pub last_result: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;

impl ProvisioningJob {
    pub fn new(
        now: Timestamp,
        kind: JobKind,
        subscriber_id: Option<SubscriberId>,
        service_id: Option<ServiceId>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: JobId::generate(),
            subscriber_id,
            service_id,
            kind,
            payload,
            status: JobStatus::Pending,
            attempts: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_after: now,
            locked_until: None,
            last_error: None,
            last_result: None,
            created_at: now,
            updated_at: now,
        }
    }
}

impl ProvisioningJob {
    /// A NAS job for a service.
    pub fn nas(now: Timestamp, kind: JobKind, payload: &JobPayload) -> Self {
        // Serialising a struct of ids and a unit enum cannot fail; Null keeps this total.
        let json = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
        Self::new(
            now,
            kind,
            Some(payload.subscriber_id),
            Some(payload.service_id),
            json,
        )
    }

    /// The payload of a NAS job; `None` for other kinds or a payload that does not parse.
    pub fn nas_payload(&self) -> Option<JobPayload> {
        match self.kind {
            JobKind::NasCoa | JobKind::NasDisconnect => {
                serde_json::from_value(self.payload.clone()).ok()
            }
            JobKind::DunningReminder => None,
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
    fn kind_names_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("radius.update-policy".parse::<JobKind>().is_err());
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1).as_secs(), 5);
        assert_eq!(backoff(2).as_secs(), 10);
        assert_eq!(backoff(3).as_secs(), 20);
        assert_eq!(backoff(50).as_secs(), 3600);
        assert_eq!(backoff(0).as_secs(), 5);
    }
}
