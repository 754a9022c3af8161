//! Dunning: what happens to a subscriber as their oldest unpaid invoice ages past its due date.

use crate::ids::{DunningPolicyId, InvoiceId, SubscriberId};
use crate::validate::ValidationErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DunningActionKind {
    /// Queue a reminder notification.
    Remind,
    /// Suspend every active service (cause: dunning, so a payment resumes them).
    Suspend,
    /// Terminate every service that is not terminated yet.
    Terminate,
}

impl DunningActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Remind => "remind",
            Self::Suspend => "suspend",
            Self::Terminate => "terminate",
        }
    }
}

impl FromStr for DunningActionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "remind" => Ok(Self::Remind),
            "suspend" => Ok(Self::Suspend),
            "terminate" => Ok(Self::Terminate),
            o => Err(format!("unknown dunning action `{o}`")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DunningStep {
    /// Days after the due date (1 = the day after).
    pub days_overdue: i64,
    pub action: DunningActionKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningPolicy {
    pub id: DunningPolicyId,
    pub code: String,
    pub name: String,
    pub steps: Vec<DunningStep>,
    /// Bill the days services spend suspended by this policy (rating's
    /// `bill_dunning_suspensions`).
    pub bill_suspended_days: bool,
    /// The policy of subscribers that have none of their own.
    pub is_default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

/// Steps must be in strictly increasing days (1–730), nothing may follow a termination, and
/// suspending after terminating makes no sense.
pub fn validate_steps(steps: &[DunningStep]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut last_day = 0;
    let mut terminated = false;
    for (i, s) in steps.iter().enumerate() {
        if !(1..=730).contains(&s.days_overdue) {
            errors.add(
                format!("steps[{i}].days_overdue"),
                "must be between 1 and 730",
            );
        } else if s.days_overdue <= last_day {
            errors.add(
                format!("steps[{i}].days_overdue"),
                "steps must be in strictly increasing days",
            );
        }
        if terminated {
            errors.add(
                format!("steps[{i}].action"),
                "no step may follow a termination",
            );
        }
        terminated |= s.action == DunningActionKind::Terminate;
        last_day = last_day.max(s.days_overdue);
    }
    errors.into_result()
}

/// A step taken for an invoice; unique per (invoice, days, action), so the daily job is
/// idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningAction {
    pub id: crate::ids::DunningActionId,
    pub subscriber_id: SubscriberId,
    pub invoice_id: InvoiceId,
    pub days_overdue: i64,
    pub action: DunningActionKind,
    pub performed_at: Timestamp,
}

/// The steps due for an invoice `days_overdue` days past due that were not taken yet, in
/// order. Only the latest of several due steps of the same kind matters, but taking each is
/// harmless and keeps the record complete.
pub fn due_steps(
    policy: &DunningPolicy,
    days_overdue: i64,
    taken: &[(i64, DunningActionKind)],
) -> Vec<DunningStep> {
    policy
        .steps
        .iter()
        .filter(|s| s.days_overdue <= days_overdue)
        .filter(|s| !taken.contains(&(s.days_overdue, s.action)))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(d: i64, a: DunningActionKind) -> DunningStep {
        DunningStep {
            days_overdue: d,
            action: a,
        }
    }

    fn policy() -> DunningPolicy {
        DunningPolicy {
            id: DunningPolicyId::generate(),
            code: "std".into(),
            name: "Standard".into(),
            steps: vec![
                step(3, DunningActionKind::Remind),
                step(10, DunningActionKind::Suspend),
                step(45, DunningActionKind::Terminate),
            ],
            bill_suspended_days: false,
            is_default: true,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            revision: 1,
        }
    }

    #[test]
    fn due_steps_are_those_reached_and_not_taken() {
        let p = policy();
        assert!(due_steps(&p, 2, &[]).is_empty());
        assert_eq!(due_steps(&p, 3, &[]), vec![p.steps[0]]);
        assert_eq!(
            due_steps(&p, 12, &[(3, DunningActionKind::Remind)]),
            vec![p.steps[1]]
        );
        // A job that did not run for weeks catches up on every step.
        assert_eq!(due_steps(&p, 50, &[]).len(), 3);
    }

    #[test]
    fn steps_are_validated() {
        assert!(validate_steps(&policy().steps).is_ok());
        let e = validate_steps(&[
            step(10, DunningActionKind::Terminate),
            step(5, DunningActionKind::Remind),
            step(0, DunningActionKind::Remind),
        ])
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"steps[1].days_overdue"));
        assert!(fields.contains(&"steps[1].action"));
        assert!(fields.contains(&"steps[2].days_overdue"));
    }
}
